"""libcoffer as an application sees it: `make install DESTDIR=stage PREFIX=/usr` of the build
under test, a C program that includes only <coffer/coffer.h> compiled and linked with
`pkg-config --cflags --libs coffer` (shared, and static with --static) against the staged copy, run
against a real coffer server as an s3:// repository; and libcoffer.so exports only coffer_*
symbols, under the soname libcoffer.so.0."""
import os
import re
import subprocess

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, ROOT, SECRET_KEY, s3_client

BUILD_DIR = os.path.dirname(COFFER_BIN)

PROGRAM = r"""
#include <coffer/coffer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct got { unsigned char *p; size_t n; } got;

static int keep(void *ctx, const void *p, size_t n)
{
    got *g = ctx;
    g->p = realloc(g->p, g->n + n);
    memcpy(g->p + g->n, p, n);
    g->n += n;
    return COFFER_OK;
}

static int lines;
static void count_lines(void *ctx, coffer_log_level level, const char *line, size_t len)
{
    (void)ctx; (void)level; (void)line; (void)len;
    lines++;
}

#define CHECK(call) do { coffer_error e_; int rc_ = (call); (void)e_; if (rc_) { \
    fprintf(stderr, "%s: %s\n", #call, coffer_strerror(rc_)); return 1; } } while (0)

int main(int argc, char **argv)
{
    /* argv: URL ENDPOINT; the keys come from the program's own environment, handed over
     * explicitly: the library itself reads none. ENDPOINT "-": the library is asked to follow
     * the command line's rule (COFFER_ENDPOINT, AWS_ACCESS_KEY_ID, ...) instead. */
    int from_env = argc == 3 && strcmp(argv[2], "-") == 0;
    coffer_repo_options o = {.struct_size = sizeof o, .endpoint = from_env ? NULL : argv[2],
                             .region = from_env ? NULL : "us-east-1",
                             .access_key = from_env ? NULL : getenv("APP_ACCESS_KEY"),
                             .secret_key = from_env ? NULL : getenv("APP_SECRET_KEY"),
                             .use_environment = from_env, .log = count_lines, .log_level = COFFER_LOG_INFO};
    coffer_repo *repo;
    coffer_error e;
    if (argc != 3 || coffer_repo_open(argv[1], &o, &repo, &e)) {
        fprintf(stderr, "open: %s\n", argc == 3 ? e.message : "usage");
        return 1;
    }
    printf("version %s %s\n", coffer_version(), COFFER_VERSION_STRING);
    size_t size = 3u << 20;
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 7 + i / 4099);
    coffer_result ids[3];
    coffer_label label = {"index", "10000"};
    coffer_create_options co = {.struct_size = sizeof co, .labels = &label, .nlabels = 1,
                                .compression = COFFER_COMPRESSION_GZIP};
    for (int k = 0; k < 3; k++) {
        coffer_writer *w;
        CHECK(coffer_writer_begin(repo, "topic-0", &co, &w, &e));
        for (size_t off = 0; off < size; off += 100000)
            CHECK(coffer_writer_write(w, data + off, size - off < 100000 ? size - off : 100000, &e));
        ids[k].struct_size = sizeof ids[k];
        CHECK(coffer_writer_commit(w, &ids[k], &e));
    }
    coffer_writer *aborted;
    CHECK(coffer_writer_begin(repo, "topic-0", NULL, &aborted, &e));
    CHECK(coffer_writer_write(aborted, data, size, &e));
    coffer_writer_abort(aborted);

    coffer_snapshot_info *list;
    size_t n;
    CHECK(coffer_list(repo, "topic-0", &list, &n, &e));
    printf("listed %zu newest %s label %s\n", n, list[n - 1].id, list[n - 1].labels[0].value);
    coffer_list_free(list, n);

    got g = {0};
    coffer_result restored = {.struct_size = sizeof restored};
    CHECK(coffer_restore_cb(repo, "topic-0", NULL, keep, &g, NULL, &restored, &e));
    printf("restored %s same %d raw %d\n", restored.id, g.n == size && memcmp(g.p, data, size) == 0,
           restored.raw_size == size && ids[2].raw_size == size);
    CHECK(coffer_verify(repo, "topic-0", ids[0].id, NULL, &e));

    char *json;
    CHECK(coffer_show(repo, "topic-0", ids[1].id, &json, NULL, &e));
    printf("show gzip %d\n", strstr(json, "\"gzip\"") != NULL);
    coffer_free(json);

    coffer_retention keep1 = {.struct_size = sizeof keep1, .keep_last = 1};
    size_t removed;
    CHECK(coffer_prune(repo, "topic-0", &keep1, &removed, &e));
    CHECK(coffer_list(repo, "topic-0", &list, &n, &e));
    printf("pruned %zu left %zu %s\n", removed, n, n ? list[0].id : "");
    coffer_list_free(list, n);
    int missing = coffer_verify(repo, "topic-0", ids[0].id, NULL, &e);
    printf("verify removed %s http %d s3 '%s'\n", coffer_strerror(missing), e.http_status, e.s3_code);
    /* The same status for a missing bucket; the S3 answer tells them apart. */
    coffer_repo *nobucket;
    CHECK(coffer_repo_open("s3://libcoffer-no-such-bucket/kv", &o, &nobucket, &e));
    missing = coffer_list(nobucket, "topic-0", &list, &n, &e);
    printf("missing bucket %s http %d s3 '%s'\n", coffer_strerror(missing), e.http_status, e.s3_code);
    coffer_repo_close(nobucket);
    printf("ids %s %s %s\nlog lines %d\n", ids[0].id, ids[1].id, ids[2].id, lines);
    coffer_repo_close(repo);
    free(data);
    free(g.p);
    return 0;
}
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    if not os.path.exists(os.path.join(BUILD_DIR, "CMakeCache.txt")):
        pytest.skip(f"{COFFER_BIN} is not in a CMake build directory")
    stage = tmp_path_factory.mktemp("stage")
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install", f"BUILD={BUILD_DIR}",
                        f"DESTDIR={stage}", "PREFIX=/usr"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    return stage


def sanitized():
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        return "COFFER_SANITIZE:BOOL=ON" in f.read()


def pkg_config(stage, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=str(stage / "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(stage))
    p = subprocess.run(["pkg-config", *args, "coffer"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def compile_program(stage, tmp_path, static):
    src = tmp_path / "app.c"
    src.write_text(PROGRAM)
    exe = tmp_path / ("app-static" if static else "app")
    flags = pkg_config(stage, "--cflags")
    assert flags[0] == f"-I{stage}/usr/include", flags  # then what Requires.private adds
    libs = pkg_config(stage, "--libs")
    if static:
        # libcoffer from its archive, the system's libraries it requires (Requires.private) shared:
        # `--static` would ask for their own static archives, which a system need not have.
        requires = pkg_config(stage, "--print-requires-private")
        p = subprocess.run(["pkg-config", "--libs", *requires], capture_output=True, text=True, check=True)
        libs = [f"{stage}/usr/lib/libcoffer.a", *p.stdout.split(), "-lpthread"]
    san = ["-fsanitize=address,undefined"] if sanitized() else []
    p = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *san, *flags, str(src), "-o", str(exe),
                        *libs], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return exe


@pytest.mark.parametrize("static,from_env", [(False, False), (True, False), (False, True)],
                         ids=["shared", "static", "shared-environment"])
def test_program_against_installed_library(server, staged, tmp_path, static, from_env):
    exe = compile_program(staged, tmp_path, static)
    bucket = "libcoffer-" + ("static" if static else "shared") + ("-env" if from_env else "")
    s3_client(server.endpoint).create_bucket(Bucket=bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COFFER_"))}
    env.update(APP_ACCESS_KEY=ACCESS_KEY, APP_SECRET_KEY=SECRET_KEY, LD_LIBRARY_PATH=str(staged / "usr/lib"),
               HOME=str(tmp_path))
    if from_env:
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "COFFER_ENDPOINT": server.endpoint})
    else:
        # The library takes nothing from the environment it was not told to: wrong keys and a dead
        # endpoint here change nothing.
        env.update({"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong",
                    "COFFER_ENDPOINT": "http://0.0.0.0:1"})
    p = subprocess.run([str(exe), f"s3://{bucket}/apps/kv", "-" if from_env else server.endpoint],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "version 0.1.0 0.1.0" in out
    ids = re.search(r"^ids (\S+) (\S+) (\S+)$", out, re.M).groups()
    assert f"listed 3 newest {ids[2]} label 10000" in out, out
    assert f"restored {ids[2]} same 1 raw 1" in out, out
    assert "show gzip 1" in out
    assert f"pruned 2 left 1 {ids[2]}" in out, out
    assert "verify removed not found http 404 s3 'NoSuchKey'" in out, out
    assert "missing bucket not found http 404 s3 'NoSuchBucket'" in out, out
    # At info and above: 3 creates, 1 abort, 1 restore, 1 verify, 2 prunes, the failed verify (a
    # failed listing logs nothing).
    assert "log lines 9" in out, out
    if not static:
        ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=env).stdout
        assert re.search(r"libcoffer\.so\.0 => \S*" + re.escape(str(staged)), ldd), ldd
    # What the server holds: the survivor's archive and manifest, nothing of the aborted stream.
    keys = sorted(o["Key"] for o in s3_client(server.endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))
    assert keys == [f"apps/kv/topic-0/{ids[2]}.json", f"apps/kv/topic-0/{ids[2]}.tar.gz"] or \
        keys == [f"apps/kv/topic-0/{ids[2]}.gz", f"apps/kv/topic-0/{ids[2]}.json"], keys


def test_shared_library_exports_only_the_api(staged):
    lib = staged / "usr/lib/libcoffer.so"
    assert os.readlink(lib) == "libcoffer.so.0"
    p = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    names = [line.split()[-1] for line in p.stdout.splitlines() if line.strip()]
    assert "coffer_repo_open" in names and "coffer_writer_commit" in names and "coffer_strerror" in names
    assert [n for n in names if not n.startswith("coffer_")] == [], names
    p = subprocess.run(["objdump", "-p", str(lib)], capture_output=True, text=True, check=True)
    assert re.search(r"SONAME\s+libcoffer\.so\.0$", p.stdout, re.M), p.stdout
    pc = (staged / "usr/lib/pkgconfig/coffer.pc").read_text()
    assert "prefix=/usr\n" in pc and "Version: 0.1.0" in pc
    assert (staged / "usr/include/coffer/coffer.h").is_file()
