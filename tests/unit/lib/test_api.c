/* test_api.c - libcoffer's public API on a directory repository: every way in (a directory, a
 * file descriptor, a stream the application pushes) and out (a directory, a file descriptor, a
 * callback) gives back the bytes that went in; abort leaves nothing listed; prune keeps the
 * newest; two handles log only to their own callbacks; each misuse answers its documented status
 * and a message; a result is written only as far as its struct_size. On an s3:// repository of a
 * real coffer server: the S3 answer behind a failure is in coffer_error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "coffer/coffer.h"
#include "core/fs.h"
#include "s3client/s3client.h"

#include "../live_server.h"

static char dir[256];

typedef struct fixture {
    coffer_repo *repo;
    char repo_path[300], src[300];
} fixture;

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Bytes that compress poorly and differ at every offset, so that a misplaced chunk shows. */
static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-test-api-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->repo_path, sizeof f->repo_path, "%s/repo", dir);
    snprintf(f->src, sizeof f->src, "%s/src", dir);
    assert_int_equal(mkdir(f->src, 0700), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/a.txt", f->src);
    write_file(path, "alpha\n", 6);
    snprintf(path, sizeof path, "%s/sub", f->src);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/sub/b.bin", f->src);
    unsigned char *b = pattern(300000, 1);
    write_file(path, b, 300000);
    free(b);
    coffer_error e;
    assert_int_equal(coffer_repo_open(f->repo_path, NULL, &f->repo, &e), COFFER_OK);
    assert_string_equal(e.message, "");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    coffer_repo_close(f->repo);
    cf_fs_remove_tree(dir, NULL);
    free(f);
    return 0;
}

static void expect(int rc, const coffer_error *e, int status, const char *in_message)
{
    assert_int_equal(rc, status);
    assert_int_equal(e->status, status);
    if (!strstr(e->message, in_message))
        fail_msg("message '%s' does not hold '%s'", e->message, in_message);
}

static void test_version_and_strerror(void **state)
{
    (void)state;
    assert_string_equal(coffer_version(), COFFER_VERSION_STRING);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", COFFER_VERSION_MAJOR, COFFER_VERSION_MINOR, COFFER_VERSION_PATCH);
    assert_string_equal(v, COFFER_VERSION_STRING);
    assert_string_equal(coffer_strerror(COFFER_OK), "success");
    assert_string_equal(coffer_strerror(COFFER_EINVAL), "invalid argument");
    assert_string_equal(coffer_strerror(COFFER_EDIGEST), "checksum mismatch");
    assert_string_equal(coffer_strerror(COFFER_EINTERNAL), "internal error");
    assert_string_equal(coffer_strerror(COFFER_EABORTED), "aborted by the application");
    assert_string_equal(coffer_strerror(-1000), "unknown status");
    assert_string_equal(coffer_strerror(5), "unknown status");
}

static void test_dir_in_dir_out(void **state)
{
    fixture *f = *state;
    coffer_label labels[] = {{"app", "kv"}, {"index", "10000"}};
    coffer_create_options co = {.struct_size = sizeof co, .labels = labels, .nlabels = 2};
    coffer_result made = {.struct_size = sizeof made};
    coffer_error e;
    assert_int_equal(coffer_create_dir(f->repo, "chain-1", f->src, &co, &made, &e), COFFER_OK);
    const char *id = made.id;
    assert_int_equal(made.files, 3);
    assert_true(made.raw_size > 300000 && made.stored_size > 0);
    assert_int_equal(made.skipped, 0);
    assert_int_equal(strlen(id), 21);

    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "chain-1", &list, &n, &e), COFFER_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, id);
    assert_false(list[0].is_stream);
    assert_int_equal(list[0].files, 3); /* two files and the directory sub */
    assert_int_equal(list[0].nlabels, 2);
    assert_string_equal(list[0].labels[1].key, "index");
    assert_string_equal(list[0].labels[1].value, "10000");
    assert_string_equal(list[0].compression, "zstd");
    coffer_list_free(list, n);

    char *json;
    size_t len;
    assert_int_equal(coffer_show(f->repo, "chain-1", NULL, &json, &len, &e), COFFER_OK);
    assert_int_equal(strlen(json), len);
    assert_non_null(strstr(json, id));
    assert_non_null(strstr(json, "\"index\""));
    coffer_free(json);

    char dest[400], path[500];
    coffer_result back = {.struct_size = sizeof back};
    snprintf(dest, sizeof dest, "%s/restored", dir);
    assert_int_equal(coffer_restore_dir(f->repo, "chain-1", NULL, dest, NULL, &back, &e), COFFER_OK);
    assert_string_equal(back.id, id);
    assert_int_equal(back.files, 3);
    assert_int_equal(back.raw_size, made.raw_size);
    size_t an, bn;
    snprintf(path, sizeof path, "%s/a.txt", dest);
    char *a = read_file(path, &an);
    assert_int_equal(an, 6);
    assert_memory_equal(a, "alpha\n", 6);
    free(a);
    snprintf(path, sizeof path, "%s/sub/b.bin", dest);
    char *b = read_file(path, &bn);
    unsigned char *want = pattern(300000, 1);
    assert_int_equal(bn, 300000);
    assert_memory_equal(b, want, 300000);
    free(b);
    free(want);

    /* A second restore over it is refused unless force, and leaves it whole. */
    assert_int_equal(coffer_restore_dir(f->repo, "chain-1", id, dest, NULL, NULL, &e), COFFER_EEXISTS);
    assert_int_equal(e.status, COFFER_EEXISTS);
    assert_non_null(strstr(e.message, "not empty"));
    /* The library's words name its option field, not the command line's flag. */
    assert_non_null(strstr(e.message, "the restore option force replaces it"));
    assert_null(strstr(e.message, "--"));
    coffer_restore_options ro = {.struct_size = sizeof ro, .force = 1};
    assert_int_equal(coffer_restore_dir(f->repo, "chain-1", id, dest, &ro, NULL, &e), COFFER_OK);
    assert_int_equal(coffer_verify(f->repo, "chain-1", id, NULL, &e), COFFER_OK);
    assert_int_equal(coffer_verify(f->repo, "chain-1", NULL, NULL, NULL), COFFER_OK);
}

typedef struct collected {
    unsigned char *p;
    size_t n, cap;
    int fail_with; /* a status to answer with once n passes 100000 */
} collected;

static int collect(void *ctx, const void *p, size_t n)
{
    collected *c = ctx;
    if (c->fail_with && c->n > 100000)
        return c->fail_with;
    if (c->n + n > c->cap) {
        c->cap = (c->n + n) * 2;
        c->p = realloc(c->p, c->cap);
    }
    memcpy(c->p + c->n, p, n);
    c->n += n;
    return COFFER_OK;
}

typedef struct progress_seen {
    int calls;
    uint64_t last_done, last_total;
    int backwards;
} progress_seen;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_seen *p = ctx;
    p->backwards |= done < p->last_done;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
}

static void test_fd_in_fd_and_callback_out(void **state)
{
    fixture *f = *state;
    size_t size = 5 * 1000 * 1000 + 17; /* several 2 MiB chunks and a short one */
    unsigned char *data = pattern(size, 7);
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/state.bin", dir);
    snprintf(out, sizeof out, "%s/state.out", dir);
    write_file(in, data, size);
    int fd = open(in, O_RDONLY);
    assert_true(fd >= 0);
    coffer_result made = {.struct_size = sizeof made};
    coffer_error e;
    progress_seen making = {0}, restoring = {0};
    coffer_create_options co = {.struct_size = sizeof co,
                                .compression = COFFER_COMPRESSION_LZ4,
                                .expected_size = size,
                                .progress = on_progress,
                                .progress_ctx = &making};
    assert_int_equal(coffer_create_fd(f->repo, "p-0", fd, &co, &made, &e), COFFER_OK);
    const char *id = made.id;
    assert_int_equal(made.raw_size, size);
    assert_true(making.calls >= 1);
    assert_false(making.backwards);
    assert_int_equal(making.last_done, size);
    assert_int_equal(making.last_total, size);
    assert_int_equal(fcntl(fd, F_GETFD), 0); /* still the caller's, open */
    close(fd);

    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(ofd >= 0);
    assert_int_equal(coffer_restore_fd(f->repo, "p-0", id, ofd, NULL, NULL, &e), COFFER_OK);
    assert_int_equal(close(ofd), 0);
    size_t n;
    char *back = read_file(out, &n);
    assert_int_equal(n, size);
    assert_memory_equal(back, data, size);
    free(back);

    collected c = {0};
    coffer_result got = {.struct_size = sizeof got};
    coffer_restore_options ro = {
        .struct_size = sizeof ro, .progress = on_progress, .progress_ctx = &restoring};
    assert_int_equal(coffer_restore_cb(f->repo, "p-0", NULL, collect, &c, &ro, &got, &e), COFFER_OK);
    assert_true(restoring.calls >= 1);
    assert_false(restoring.backwards);
    assert_int_equal(restoring.last_done, size);
    assert_int_equal(restoring.last_total, size);
    assert_string_equal(got.id, id);
    assert_int_equal(got.raw_size, size);
    assert_int_equal(c.n, size);
    assert_memory_equal(c.p, data, size);
    free(c.p);

    /* The callback's own status comes back, with a message naming it. */
    collected failing = {.fail_with = COFFER_ENOSPACE};
    assert_int_equal(coffer_restore_cb(f->repo, "p-0", id, collect, &failing, NULL, NULL, &e),
                     COFFER_ENOSPACE);
    assert_int_equal(e.status, COFFER_ENOSPACE);
    assert_non_null(strstr(e.message, "callback"));
    free(failing.p);
    /* A status that is not negative is the documented COFFER_ECALLBACK. */
    collected odd = {.fail_with = 3};
    assert_int_equal(coffer_restore_cb(f->repo, "p-0", id, collect, &odd, NULL, NULL, &e), COFFER_ECALLBACK);
    free(odd.p);
    free(data);
}

static void list_count(coffer_repo *r, const char *ns, size_t want)
{
    coffer_snapshot_info *list;
    size_t n;
    coffer_error e;
    assert_int_equal(coffer_list(r, ns, &list, &n, &e), COFFER_OK);
    assert_int_equal(n, want);
    coffer_list_free(list, n);
}

/* Appends a byte to the file being read, once, the first time the create reports progress. */
static void append_once(void *ctx, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    const char **path = ctx;
    if (!*path)
        return;
    FILE *f = fopen(*path, "ab");
    assert_non_null(f);
    fputc('!', f);
    fclose(f);
    *path = NULL;
}

/* A file by its path: a stream snapshot of its bytes whose size the progress knows without
 * expected_size; what is no regular file or FIFO is refused, naming it. */
static void test_file_by_path(void **state)
{
    fixture *f = *state;
    size_t size = 3 * 1000 * 1000 + 5;
    unsigned char *data = pattern(size, 11);
    char in[400], link[400];
    snprintf(in, sizeof in, "%s/dump.bin", dir);
    snprintf(link, sizeof link, "%s/dump.link", dir);
    write_file(in, data, size);
    assert_int_equal(symlink(in, link), 0);
    coffer_result made = {.struct_size = sizeof made};
    coffer_error e;
    progress_seen making = {0};
    coffer_create_options co = {
        .struct_size = sizeof co, .resume = 1, .progress = on_progress, .progress_ctx = &making};
    assert_int_equal(coffer_create_file(f->repo, "files", link, &co, &made, &e), COFFER_OK);
    assert_int_equal(made.raw_size, size);
    assert_int_equal(making.last_done, size);
    assert_int_equal(making.last_total, size);
    collected c = {0};
    assert_int_equal(coffer_restore_cb(f->repo, "files", made.id, collect, &c, NULL, NULL, &e), COFFER_OK);
    assert_int_equal(c.n, size);
    assert_memory_equal(c.p, data, size);
    free(c.p);
    char *json = NULL;
    assert_int_equal(coffer_show(f->repo, "files", made.id, &json, NULL, &e), COFFER_OK);
    assert_non_null(strstr(json, "\"stream\""));
    coffer_free(json);
    char out[400];
    snprintf(out, sizeof out, "%s/restored", dir);
    expect(coffer_restore_dir(f->repo, "files", made.id, out, NULL, NULL, &e), &e, COFFER_EINVAL,
           "holds a stream");

    /* Written to while it is read: no snapshot mixing two versions of it. */
    const char *grow = in;
    coffer_create_options racing = {
        .struct_size = sizeof racing, .progress = append_once, .progress_ctx = &grow};
    expect(coffer_create_file(f->repo, "files", in, &racing, &made, &e), &e, COFFER_EIO,
           "changed while it was read");
    assert_null(grow);

    expect(coffer_create_file(f->repo, "files", f->src, &co, &made, &e), &e, COFFER_EINVAL, "is a directory");
    expect(coffer_create_file(f->repo, "files", "/dev/null", &co, &made, &e), &e, COFFER_EINVAL,
           "'/dev/null' is a character device");
    expect(coffer_create_file(f->repo, "files", "/nonexistent/dump", &co, &made, &e), &e, COFFER_EINVAL,
           "'/nonexistent/dump': No such file");
    expect(coffer_create_file(f->repo, "files", "-", &co, &made, &e), &e, COFFER_EINVAL, "a file path");
    expect(coffer_create_dir(f->repo, "files", in, &co, &made, &e), &e, COFFER_EINVAL, "not a directory");
    list_count(f->repo, "files", 1);
    free(data);
}

static void test_pushed_stream_commit_and_abort(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_writer *w;
    coffer_label label = {"term", "4"};
    coffer_create_options co = {.struct_size = sizeof co, .labels = &label, .nlabels = 1};
    assert_int_equal(coffer_writer_begin(f->repo, "kv", &co, &w, &e), COFFER_OK);
    label.value = "changed after begin"; /* the writer copied it */
    size_t size = 3 * 1000 * 1000;
    unsigned char *data = pattern(size, 3);
    for (size_t off = 0; off < size; off += 65537)
        assert_int_equal(coffer_writer_write(w, data + off, size - off < 65537 ? size - off : 65537, &e),
                         COFFER_OK);
    coffer_result made = {.struct_size = sizeof made};
    assert_int_equal(coffer_writer_commit(w, &made, &e), COFFER_OK);
    const char *id = made.id;
    assert_int_equal(made.raw_size, size);

    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "kv", &list, &n, &e), COFFER_OK);
    assert_int_equal(n, 1);
    assert_true(list[0].is_stream);
    assert_int_equal(list[0].raw_size, size);
    assert_string_equal(list[0].labels[0].value, "4");
    coffer_list_free(list, n);
    collected c = {0};
    assert_int_equal(coffer_restore_cb(f->repo, "kv", id, collect, &c, NULL, NULL, &e), COFFER_OK);
    assert_int_equal(c.n, size);
    assert_memory_equal(c.p, data, size);
    free(c.p);

    /* Aborted after some bytes, and aborted before any: nothing more is listed, and no archive
     * is left behind in the namespace either. */
    assert_int_equal(coffer_writer_begin(f->repo, "kv", NULL, &w, &e), COFFER_OK);
    assert_int_equal(coffer_writer_write(w, data, size, &e), COFFER_OK);
    coffer_writer_abort(w);
    assert_int_equal(coffer_writer_begin(f->repo, "kv", NULL, &w, &e), COFFER_OK);
    coffer_writer_abort(w);
    coffer_writer_abort(NULL);
    list_count(f->repo, "kv", 1);
    char nsdir[400];
    snprintf(nsdir, sizeof nsdir, "%s/kv", f->repo_path);
    int entries = 0;
    FILE *ls = NULL;
    char cmd[500];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", nsdir);
    ls = popen(cmd, "r");
    char line[256];
    while (fgets(line, sizeof line, ls))
        entries++;
    pclose(ls);
    assert_int_equal(entries, 2); /* the committed snapshot's archive and manifest */

    /* An empty stream is a snapshot too. */
    assert_int_equal(coffer_writer_begin(f->repo, "kv", NULL, &w, &e), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, NULL, &e), COFFER_OK);
    list_count(f->repo, "kv", 2);
    free(data);
}

/* The engine fails as soon as it starts (the namespace is a file, not a directory): the
 * application's writes neither block nor kill the process, later writes and commit answer the
 * engine's failure, and nothing is listed. */
static void test_pushed_stream_engine_failure(void **state)
{
    fixture *f = *state;
    char blocker[400];
    snprintf(blocker, sizeof blocker, "%s/blocked", f->repo_path);
    write_file(blocker, "x", 1);
    coffer_error e;
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "blocked", NULL, &w, &e), COFFER_OK);
    unsigned char *data = pattern(1 << 20, 5); /* far more than a pipe holds */
    int first_failure = COFFER_OK;
    /* The failure is seen by the first write after the engine has stopped: however slow the
     * build (TSan), it comes long before 4 GiB. */
    for (int i = 0; i < 4096 && !first_failure; i++)
        first_failure = coffer_writer_write(w, data, 1 << 20, &e);
    assert_int_not_equal(first_failure, COFFER_OK);
    assert_non_null(strstr(e.message, "blocked"));
    int rc = coffer_writer_commit(w, NULL, &e);
    assert_int_equal(rc, first_failure);
    assert_true(strlen(e.message) > 0);
    free(data);
}

/* Encrypted with a key (from a file descriptor) and with a passphrase (a pushed stream): each
 * opens with its secret only; without it, or with another, restore and verify answer
 * COFFER_EAUTH or a failed check, and deliver nothing. */
static void test_encrypted(void **state)
{
    fixture *f = *state;
    unsigned char key[COFFER_KEY_SIZE], other[COFFER_KEY_SIZE];
    for (int i = 0; i < COFFER_KEY_SIZE; i++) {
        key[i] = (unsigned char)(i * 13 + 1);
        other[i] = (unsigned char)(i * 13 + 2);
    }
    size_t size = 2500000;
    unsigned char *data = pattern(size, 11);
    char in[400];
    snprintf(in, sizeof in, "%s/secret.bin", dir);
    write_file(in, data, size);
    int fd = open(in, O_RDONLY);
    coffer_error e;
    coffer_result kr = {.struct_size = sizeof kr}, pr = {.struct_size = sizeof pr};
    coffer_create_options both = {
        .struct_size = sizeof both, .key = key, .passphrase = "long enough", .passphrase_len = 11};
    expect(coffer_create_fd(f->repo, "sealed", fd, &both, &kr, &e), &e, COFFER_EINVAL, "not both");
    coffer_create_options shortpass = {
        .struct_size = sizeof shortpass, .passphrase = "short", .passphrase_len = 5};
    expect(coffer_create_fd(f->repo, "sealed", fd, &shortpass, &kr, &e), &e, COFFER_EINVAL, "8 bytes");
    coffer_create_options ck = {.struct_size = sizeof ck, .key = key};
    assert_int_equal(coffer_create_fd(f->repo, "sealed", fd, &ck, &kr, &e), COFFER_OK);
    close(fd);

    char pass[] = "correct horse battery";
    coffer_create_options cp = {.struct_size = sizeof cp, .passphrase = pass, .passphrase_len = strlen(pass)};
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "sealed", &cp, &w, &e), COFFER_OK);
    memset(pass, 'x', sizeof pass - 1); /* the writer copied it */
    assert_int_equal(coffer_writer_write(w, data, size, &e), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, &pr, &e), COFFER_OK);

    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "sealed", &list, &n, &e), COFFER_OK);
    assert_int_equal(n, 2);
    assert_true(list[0].encrypted && list[1].encrypted);
    coffer_list_free(list, n);

    const char *kid = kr.id, *pid = pr.id;
    collected c = {0};
    expect(coffer_restore_cb(f->repo, "sealed", kid, collect, &c, NULL, NULL, &e), &e, COFFER_EAUTH,
           "is encrypted with a key; none was given");
    assert_int_equal(c.n, 0);
    expect(coffer_verify(f->repo, "sealed", pid, NULL, &e), &e, COFFER_EAUTH,
           "is encrypted with a passphrase; none was given");
    assert_null(strstr(e.message, "--")); /* no command-line option named to a library's caller */
    coffer_restore_options wrong = {.struct_size = sizeof wrong, .key = other};
    assert_int_not_equal(coffer_restore_cb(f->repo, "sealed", kid, collect, &c, &wrong, NULL, &e), COFFER_OK);
    assert_int_not_equal(coffer_verify(f->repo, "sealed", kid, &wrong, &e), COFFER_OK);
    free(c.p);

    coffer_restore_options rk = {.struct_size = sizeof rk, .key = key};
    coffer_restore_options rp = {
        .struct_size = sizeof rp, .passphrase = "correct horse battery", .passphrase_len = 21};
    assert_int_equal(coffer_verify(f->repo, "sealed", kid, &rk, &e), COFFER_OK);
    assert_int_equal(coffer_verify(f->repo, "sealed", pid, &rp, &e), COFFER_OK);
    collected ck_out = {0}, cp_out = {0};
    assert_int_equal(coffer_restore_cb(f->repo, "sealed", kid, collect, &ck_out, &rk, NULL, &e), COFFER_OK);
    assert_int_equal(coffer_restore_cb(f->repo, "sealed", pid, collect, &cp_out, &rp, NULL, &e), COFFER_OK);
    assert_int_equal(ck_out.n, size);
    assert_memory_equal(ck_out.p, data, size);
    assert_int_equal(cp_out.n, size);
    assert_memory_equal(cp_out.p, data, size);
    free(ck_out.p);
    free(cp_out.p);
    free(data);
}

/* n small stream snapshots of ns, oldest first, into made. */
static void commit_streams(coffer_repo *repo, const char *ns, int n, coffer_result *made)
{
    coffer_error e;
    for (int i = 0; i < n; i++) {
        coffer_writer *w;
        assert_int_equal(coffer_writer_begin(repo, ns, NULL, &w, &e), COFFER_OK);
        assert_int_equal(coffer_writer_write(w, &i, sizeof i, &e), COFFER_OK);
        made[i].struct_size = sizeof made[i];
        assert_int_equal(coffer_writer_commit(w, &made[i], &e), COFFER_OK);
    }
}

static void test_remove_and_prune_keep_last(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result ids[5];
    commit_streams(f->repo, "topic-3", 5, ids);
    coffer_retention none = {.struct_size = sizeof none};
    assert_int_equal(coffer_prune(f->repo, "topic-3", &none, NULL, &e), COFFER_EINVAL);
    list_count(f->repo, "topic-3", 5);

    coffer_retention dry = {.struct_size = sizeof dry, .keep_last = 3, .dry_run = 1};
    size_t removed = 99;
    assert_int_equal(coffer_prune(f->repo, "topic-3", &dry, &removed, &e), COFFER_OK);
    assert_int_equal(removed, 2);
    list_count(f->repo, "topic-3", 5);

    coffer_retention keep3 = {.struct_size = sizeof keep3, .keep_last = 3};
    assert_int_equal(coffer_prune(f->repo, "topic-3", &keep3, &removed, &e), COFFER_OK);
    assert_int_equal(removed, 2);
    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "topic-3", &list, &n, &e), COFFER_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(list[i].id, ids[i + 2].id); /* the newest three, oldest first */
    coffer_list_free(list, n);

    assert_int_equal(coffer_remove(f->repo, "topic-3", ids[3].id, &e), COFFER_OK);
    list_count(f->repo, "topic-3", 2);
    assert_int_equal(coffer_remove(f->repo, "topic-3", ids[3].id, &e), COFFER_ENOTFOUND);
    assert_non_null(strstr(e.message, ids[3].id));
    assert_int_equal(coffer_remove(f->repo, "topic-3", NULL, &e), COFFER_EINVAL);
}

static void count_leftover(void *ctx, const char *id, const char *reasons)
{
    (void)id;
    if (reasons && !*reasons)
        ++*(int *)ctx;
}

/* An archive whose manifest never came stays through the default grace (a day, also for a
 * struct from before grace_as_given), and goes at once with grace_as_given and grace_s 0. */
static void test_prune_grace_as_given(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result made[2];
    commit_streams(f->repo, "left", 2, made);
    char manifest[400];
    snprintf(manifest, sizeof manifest, "%s/left/%s.json", f->repo_path, made[0].id);
    assert_int_equal(unlink(manifest), 0);
    int leftovers = 0;
    size_t swept = 99;
    coffer_retention old = {.struct_size = offsetof(coffer_retention, grace_as_given), .keep_last = 5};
    old.fn = count_leftover;
    old.ctx = &leftovers;
    assert_int_equal(coffer_prune(f->repo, "left", &old, NULL, &e), COFFER_OK);
    assert_int_equal(leftovers, 0);
    coffer_retention zero = {
        .struct_size = sizeof zero, .keep_last = 5, .grace_as_given = 1, .swept = &swept};
    zero.fn = count_leftover;
    zero.ctx = &leftovers;
    zero.dry_run = 1;
    assert_int_equal(coffer_prune(f->repo, "left", &zero, NULL, &e), COFFER_OK);
    assert_int_equal(leftovers, 1);
    zero.dry_run = 0;
    assert_int_equal(coffer_prune(f->repo, "left", &zero, NULL, &e), COFFER_OK);
    assert_int_equal(leftovers, 2);
    assert_int_equal(swept, 0);
    assert_int_equal(coffer_prune(f->repo, "left", &zero, NULL, &e), COFFER_OK);
    assert_int_equal(leftovers, 2); /* gone: not reported again */
    list_count(f->repo, "left", 1);
}

/* A file descriptor that refuses the bytes fails the restore with the system's reason, as
 * `coffer snapshot restore REPO -` has always said it. */
static void test_restore_fd_names_the_system_error(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result made = {.struct_size = sizeof made};
    commit_streams(f->repo, "fdfail", 1, &made);
    int fd = open(f->repo_path, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    expect(coffer_restore_fd(f->repo, "fdfail", NULL, fd, NULL, NULL, &e), &e, COFFER_EIO,
           "cannot write the restored stream: Bad file descriptor");
    close(fd);
}

typedef struct skips {
    int n;
    char first[64];
} skips;

static void on_skip(void *ctx, const char *path, const char *why)
{
    skips *k = ctx;
    if (!k->n++)
        snprintf(k->first, sizeof k->first, "%s", path);
    (void)why;
}

/* In a child without root's reach (nobody), the source's mode 0700 "sub" cannot be read: with
 * allow_unreadable the callback hears of it, the result counts it, progress still runs. Exit 0
 * when all held. */
static int create_with_unreadable(const char *src, const char *repo_path)
{
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 10;
    coffer_repo *repo;
    coffer_error e;
    if (coffer_repo_open(repo_path, NULL, &repo, &e) != COFFER_OK)
        return 11;
    skips k = {0};
    coffer_create_options o = {.struct_size = sizeof o, .allow_unreadable = 1, .skipped = on_skip};
    o.skipped_ctx = &k;
    coffer_result res = {.struct_size = sizeof res};
    int st = coffer_create_dir(repo, "skips", src, &o, &res, &e);
    coffer_repo_close(repo);
    if (st != COFFER_OK)
        return 12;
    return k.n == 1 && strcmp(k.first, "sub") == 0 && res.skipped == 1 ? 0 : 13;
}

static void test_create_reports_skipped_files(void **state)
{
    fixture *f = *state;
    char repo_path[400];
    snprintf(repo_path, sizeof repo_path, "%s/nobody-repo", dir);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(chmod(f->src, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(create_with_unreadable(f->src, repo_path));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A shell command as the source and as the destination (coffer snapshot create --from-command,
 * restore --to-command): the bytes go through, the command is in the manifest, and a command
 * that fails stores nothing or fails the restore. */
static void test_commands(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result made = {.struct_size = sizeof made};
    assert_int_equal(coffer_create_command(f->repo, "cmd", "printf 'rows 1-3'", NULL, &made, &e), COFFER_OK);
    assert_int_equal(made.raw_size, 8);
    char *json;
    assert_int_equal(coffer_show(f->repo, "cmd", NULL, &json, NULL, &e), COFFER_OK);
    assert_non_null(strstr(json, "printf 'rows 1-3'"));
    coffer_free(json);
    int st = coffer_create_command(f->repo, "cmd", "printf partial; exit 3", NULL, NULL, &e);
    assert_true(st < 0);
    assert_int_equal(e.status, st);
    assert_non_null(strstr(e.message, "3"));
    list_count(f->repo, "cmd", 1);
    expect(coffer_create_command(f->repo, "cmd", NULL, NULL, NULL, &e), &e, COFFER_EINVAL,
           "a command is needed");

    char out[400], command[500];
    snprintf(out, sizeof out, "%s/restored", dir);
    snprintf(command, sizeof command, "cat > '%s'", out);
    coffer_result res = {.struct_size = sizeof res};
    assert_int_equal(coffer_restore_command(f->repo, "cmd", NULL, command, NULL, &res, &e), COFFER_OK);
    assert_string_equal(res.id, made.id);
    size_t n;
    char *got = read_file(out, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(got, "rows 1-3", 8);
    free(got);
    st = coffer_restore_command(f->repo, "cmd", made.id, "cat >/dev/null; exit 4", NULL, NULL, &e);
    assert_true(st < 0);
    assert_non_null(strstr(e.message, "4"));
    expect(coffer_restore_command(f->repo, "cmd", NULL, NULL, NULL, NULL, &e), &e, COFFER_EINVAL,
           "a command is needed");
}

/* What the command line needs beyond the first API: which snapshot "the newest" is, and the
 * repository's name for its messages, the same whether opened by path or file:// URL. */
static void test_latest_and_repo_name(void **state)
{
    fixture *f = *state;
    coffer_error e;
    char id[COFFER_ID_SIZE] = "x";
    expect(coffer_latest(f->repo, "empty", id, &e), &e, COFFER_ENOTFOUND, "no snapshot of 'empty' in ");
    expect(coffer_latest(f->repo, "../up", id, &e), &e, COFFER_EINVAL, "namespace '../up' is invalid");
    expect(coffer_latest(f->repo, "ns", NULL, &e), &e, COFFER_EINVAL, "id is NULL");
    coffer_result made[2];
    commit_streams(f->repo, "ns", 2, made);
    assert_int_equal(coffer_latest(f->repo, "ns", id, &e), COFFER_OK);
    assert_string_equal(id, made[1].id);
    assert_string_equal(e.message, "");
    assert_string_equal(coffer_repo_name(f->repo), f->repo_path);
    assert_string_equal(coffer_repo_name(NULL), "");

    char url[400];
    snprintf(url, sizeof url, "file://%s", f->repo_path);
    coffer_repo *again;
    assert_int_equal(coffer_repo_open(url, NULL, &again, &e), COFFER_OK);
    assert_string_equal(coffer_repo_name(again), f->repo_path);
    assert_int_equal(coffer_latest(again, "ns", id, &e), COFFER_OK);
    assert_string_equal(id, made[1].id);
    coffer_repo_close(again);

    /* One '/' ends an S3 prefix; more belong to it (the command line's s3://b/a//ns keeps its
     * keys under "a//"). Opening sends nothing, so no server is needed. */
    coffer_repo_options o = {
        .struct_size = sizeof o, .endpoint = "http://127.0.0.1:1", .access_key = "AK", .secret_key = "SK"};
    const char *urls[][2] = {{"s3://b", "s3://b/"},
                             {"s3://b/", "s3://b/"},
                             {"s3://b/a", "s3://b/a/"},
                             {"s3://b/a/", "s3://b/a/"},
                             {"s3://b/a//", "s3://b/a//"}};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        assert_int_equal(coffer_repo_open(urls[i][0], &o, &again, &e), COFFER_OK);
        assert_string_equal(coffer_repo_name(again), urls[i][1]);
        coffer_repo_close(again);
    }
}

/* ---- coffer_result's struct_size ---- */

static int count_calls(void *ctx, const void *p, size_t n)
{
    (void)p;
    (void)n;
    (*(int *)ctx)++;
    return COFFER_OK;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A result without struct_size is refused before anything is done: nothing read, run, stored or
 * restored. */
static void test_result_struct_size_unset(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result unset = {0}, tiny = {.struct_size = sizeof(size_t) - 1};
    expect(coffer_create_dir(f->repo, "rs", f->src, NULL, &unset, &e), &e, COFFER_EINVAL,
           "coffer_result: struct_size is 0; set it to sizeof(coffer_result)");
    expect(coffer_create_dir(f->repo, "rs", f->src, NULL, &tiny, &e), &e, COFFER_EINVAL, "struct_size is 7");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "unread", 6), 6);
    expect(coffer_create_fd(f->repo, "rs", fds[0], NULL, &unset, &e), &e, COFFER_EINVAL, "struct_size");
    char buf[8];
    assert_int_equal(read(fds[0], buf, sizeof buf), 6); /* the library read nothing of it */
    char ran[400], cmd[500];
    snprintf(ran, sizeof ran, "%s/ran", dir);
    snprintf(cmd, sizeof cmd, "touch %s", ran);
    expect(coffer_create_command(f->repo, "rs", cmd, NULL, &unset, &e), &e, COFFER_EINVAL, "struct_size");
    assert_false(exists(ran));
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "rs", NULL, &w, &e), COFFER_OK);
    assert_int_equal(coffer_writer_write(w, "bytes", 5, &e), COFFER_OK);
    /* commit frees the writer whatever the outcome: here, aborted (ASan: nothing leaks) */
    expect(coffer_writer_commit(w, &unset, &e), &e, COFFER_EINVAL, "struct_size");
    list_count(f->repo, "rs", 0);

    coffer_result made[1];
    commit_streams(f->repo, "rs", 1, made);
    char dest[400];
    snprintf(dest, sizeof dest, "%s/dest", dir);
    expect(coffer_restore_dir(f->repo, "rs", made[0].id, dest, NULL, &unset, &e), &e, COFFER_EINVAL,
           "struct_size");
    assert_false(exists(dest));
    expect(coffer_restore_fd(f->repo, "rs", made[0].id, fds[1], NULL, &tiny, &e), &e, COFFER_EINVAL,
           "struct_size");
    int calls = 0;
    expect(coffer_restore_cb(f->repo, "rs", NULL, count_calls, &calls, NULL, &unset, &e), &e, COFFER_EINVAL,
           "struct_size");
    assert_int_equal(calls, 0);
    snprintf(cmd, sizeof cmd, "cat > %s", ran);
    expect(coffer_restore_command(f->repo, "rs", NULL, cmd, NULL, &unset, &e), &e, COFFER_EINVAL,
           "struct_size");
    assert_false(exists(ran));
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(unset.struct_size, 0); /* and the refused results were not written */
    assert_string_equal(unset.id, "");
}

/* Room for a result as a later libcoffer may define it, bytes past what is written marked. */
typedef union wide_result {
    coffer_result r;
    unsigned char b[sizeof(coffer_result) + 32];
} wide_result;

static void assert_untouched(const wide_result *w, size_t from)
{
    for (size_t i = from; i < sizeof w->b; i++)
        if (w->b[i] != 0xA5)
            fail_msg("byte %zu of the result was written (struct_size %zu)", i, w->r.struct_size);
}

/* An older program's shorter result gets the fields that fit, nothing past them (not even part
 * of a field); a newer program's longer one gets every field this library knows, the rest left
 * as it was. */
static void test_result_struct_size_short_and_long(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_result full = {.struct_size = sizeof full};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "twelve bytes", 12), 12);
    close(fds[1]);
    assert_int_equal(coffer_create_fd(f->repo, "rs", fds[0], NULL, &full, &e), COFFER_OK);
    close(fds[0]);
    assert_int_equal(full.raw_size, 12);

    wide_result w;
    size_t sizes[] = {sizeof(size_t), offsetof(coffer_result, raw_size),
                      offsetof(coffer_result, raw_size) + 4, offsetof(coffer_result, files)};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        memset(&w, 0xA5, sizeof w);
        w.r.struct_size = sizes[k];
        collected c = {0};
        assert_int_equal(coffer_restore_cb(f->repo, "rs", NULL, collect, &c, NULL, &w.r, &e), COFFER_OK);
        free(c.p);
        assert_int_equal(w.r.struct_size, sizes[k]);
        size_t written = sizes[k] < offsetof(coffer_result, raw_size) ? sizeof(size_t)
                         : sizes[k] < offsetof(coffer_result, files)  ? offsetof(coffer_result, raw_size)
                                                                      : offsetof(coffer_result, files);
        if (written > sizeof(size_t))
            assert_string_equal(w.r.id, full.id);
        if (written > offsetof(coffer_result, raw_size))
            assert_int_equal(w.r.stored_size, full.stored_size);
        assert_untouched(&w, written);
    }
    memset(&w, 0xA5, sizeof w);
    w.r.struct_size = sizeof w;
    collected c = {0};
    assert_int_equal(coffer_restore_cb(f->repo, "rs", NULL, collect, &c, NULL, &w.r, &e), COFFER_OK);
    free(c.p);
    assert_int_equal(w.r.struct_size, sizeof w);
    assert_string_equal(w.r.id, full.id);
    assert_int_equal(w.r.raw_size, 12);
    assert_int_equal(w.r.stored_size, full.stored_size);
    assert_int_equal(w.r.files, 0);
    assert_int_equal(w.r.skipped, 0);
    assert_untouched(&w, sizeof(coffer_result));
}

/* ---- the S3 answer behind a failure, from a real coffer server ---- */

#define LIVE_USER "apitestadmin"
#define LIVE_PASS "apitestsecret123"
#define LIVE_BUCKET "api-answers"

static live_server server;
static char live_dir[256];

static int start_live(void **state)
{
    (void)state;
    snprintf(live_dir, sizeof live_dir, "/tmp/coffer-test-api-live-XXXXXX");
    if (!mkdtemp(live_dir) || live_server_start(&server, live_dir, LIVE_USER, LIVE_PASS) != 0)
        return -1;
    cf_s3c_config cfg = {0};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", server.port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, LIVE_USER);
    snprintf(cfg.secret_key, sizeof cfg.secret_key, LIVE_PASS);
    cf_s3c *c;
    if (cf_s3c_new(&cfg, &c, NULL) != 0)
        return -1;
    int rc = cf_s3c_create_bucket(c, LIVE_BUCKET, NULL);
    cf_s3c_free(c);
    return rc;
}

static int stop_live(void **state)
{
    (void)state;
    live_server_stop(&server);
    cf_fs_remove_tree(live_dir, NULL);
    return 0;
}

static coffer_repo *open_live(const char *url, const char *secret)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", server.port);
    coffer_repo_options o = {
        .struct_size = sizeof o, .endpoint = endpoint, .access_key = LIVE_USER, .secret_key = secret};
    coffer_repo *r = NULL;
    coffer_error e;
    assert_int_equal(coffer_repo_open(url, &o, &r, &e), COFFER_OK);
    return r;
}

static void expect_answer(const coffer_error *e, int http_status, const char *s3_code)
{
    assert_int_equal(e->http_status, http_status);
    assert_string_equal(e->s3_code, s3_code);
}

static void test_s3_answer_in_errors(void **state)
{
    (void)state;
    coffer_error e;
    memset(&e, 0x5A, sizeof e); /* whatever the caller's struct held */
    coffer_snapshot_info *list;
    size_t n;
    char *json;
    const char *absent = "20200101T000000Z-0000";

    /* A missing bucket and a missing snapshot are both COFFER_ENOTFOUND; the answer tells which,
     * also where the library's message names the snapshot rather than S3's words. */
    coffer_repo *nobucket = open_live("s3://api-no-such-bucket/p", LIVE_PASS);
    expect(coffer_list(nobucket, "ns", &list, &n, &e), &e, COFFER_ENOTFOUND, "NoSuchBucket");
    expect_answer(&e, 404, "NoSuchBucket");
    expect(coffer_show(nobucket, "ns", absent, &json, NULL, &e), &e, COFFER_ENOTFOUND, "no snapshot ns@");
    expect_answer(&e, 404, "NoSuchBucket");
    coffer_repo_close(nobucket);
    coffer_repo *repo = open_live("s3://" LIVE_BUCKET "/p", LIVE_PASS);
    expect(coffer_show(repo, "ns", absent, &json, NULL, &e), &e, COFFER_ENOTFOUND, "no snapshot ns@");
    expect_answer(&e, 404, "NoSuchKey");

    /* Success, and a failure found by the library itself, clear what the last failure left. */
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(repo, "ns", NULL, &w, &e), COFFER_OK);
    expect_answer(&e, 0, "");
    assert_int_equal(coffer_writer_write(w, "state", 5, &e), COFFER_OK);
    coffer_result made = {.struct_size = sizeof made};
    assert_int_equal(coffer_writer_commit(w, &made, &e), COFFER_OK);
    expect(coffer_list(repo, "no/such", &list, &n, &e), &e, COFFER_EINVAL, "namespace");
    expect_answer(&e, 0, "");

    /* COFFER_EAUTH: credentials the server refused (403) from a missing encryption key (no
     * answer involved). */
    coffer_repo *badkey = open_live("s3://" LIVE_BUCKET "/p", "not-the-secret");
    expect(coffer_list(badkey, "ns", &list, &n, &e), &e, COFFER_EAUTH, "SignatureDoesNotMatch");
    expect_answer(&e, 403, "SignatureDoesNotMatch");
    coffer_repo_close(badkey);
    unsigned char key[COFFER_KEY_SIZE] = {1, 2, 3};
    coffer_create_options ck = {.struct_size = sizeof ck, .key = key};
    assert_int_equal(coffer_writer_begin(repo, "sealed", &ck, &w, &e), COFFER_OK);
    assert_int_equal(coffer_writer_write(w, "secret", 6, &e), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, &made, &e), COFFER_OK);
    expect(coffer_verify(repo, "sealed", made.id, NULL, &e), &e, COFFER_EAUTH, "encrypted with a key");
    expect_answer(&e, 0, "");
    coffer_repo_close(repo);
}

/* ---- two handles, two logs ---- */

typedef struct log_box {
    pthread_mutex_t mu;
    int lines;
    char text[8192];
} log_box;

static void log_into(void *ctx, coffer_log_level level, const char *line, size_t len)
{
    log_box *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->lines++;
    size_t have = strlen(b->text);
    if (have + len < sizeof b->text)
        memcpy(b->text + have, line, len + 1);
    pthread_mutex_unlock(&b->mu);
}

typedef struct worker {
    coffer_repo *repo;
    const char *ns;
    int rc;
} worker;

static void *create_three(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 3 && !w->rc; i++) {
        coffer_writer *wr;
        coffer_error e;
        if ((w->rc = coffer_writer_begin(w->repo, w->ns, NULL, &wr, &e)))
            break;
        w->rc = coffer_writer_write(wr, w->ns, strlen(w->ns), &e);
        int crc = coffer_writer_commit(wr, NULL, &e);
        if (!w->rc)
            w->rc = crc;
    }
    return NULL;
}

/* The network limits reach the repository's S3 client: against a port where nothing listens (a
 * refused connection is worth retrying), 100 tries are allowed, but a retry budget of 1 s ends
 * the call and the message says so. Values past the limits are refused before anything is made. */
static void test_network_options(void **state)
{
    (void)state;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", live_free_port());
    coffer_repo_options o = {.struct_size = sizeof o,
                             .endpoint = endpoint,
                             .access_key = "AK",
                             .secret_key = "SK",
                             .max_attempts = COFFER_MAX_ATTEMPTS_MAX + 1};
    coffer_repo *r = NULL;
    coffer_error e;
    assert_int_equal(coffer_repo_open("s3://b/p", &o, &r, &e), COFFER_EINVAL);
    assert_non_null(strstr(e.message, "max_attempts is at most 100"));
    assert_null(r);
    o.max_attempts = COFFER_MAX_ATTEMPTS_MAX;
    o.stall_timeout_ms = COFFER_NET_TIMEOUT_MAX_MS + 1;
    assert_int_equal(coffer_repo_open("s3://b/p", &o, &r, &e), COFFER_EINVAL);
    o.stall_timeout_ms = 0;
    o.retry_budget_ms = COFFER_NET_TIMEOUT_MAX_MS + 1;
    assert_int_equal(coffer_repo_open("s3://b/p", &o, &r, &e), COFFER_EINVAL);
    o.retry_budget_ms = 1000;
    assert_int_equal(coffer_repo_open("s3://b/p", &o, &r, &e), COFFER_OK);
    coffer_snapshot_info *list = NULL;
    size_t n = 0;
    assert_int_equal(coffer_list(r, "ns", &list, &n, &e), COFFER_EIO);
    assert_non_null(strstr(e.message, "the retry budget of 1 s is spent"));
    assert_int_equal(e.http_status, 0);
    coffer_repo_close(r);
}

static void test_two_handles_log_apart(void **state)
{
    (void)state;
    log_box a = {.mu = PTHREAD_MUTEX_INITIALIZER}, b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    coffer_repo_options oa = {.struct_size = sizeof oa, .log = log_into, .log_ctx = &a};
    coffer_repo_options ob = {
        .struct_size = sizeof ob, .log = log_into, .log_ctx = &b, .log_level = COFFER_LOG_INFO};
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/repo-a", dir);
    snprintf(pb, sizeof pb, "file://%s/repo-b", dir);
    coffer_repo *ra, *rb;
    coffer_error e;
    assert_int_equal(coffer_repo_open(pa, &oa, &ra, &e), COFFER_OK);
    assert_int_equal(coffer_repo_open(pb, &ob, &rb, &e), COFFER_OK);
    worker wa = {ra, "alpha-ns", 0}, wb = {rb, "beta-ns", 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, create_three, &wa), 0);
    assert_int_equal(pthread_create(&tb, NULL, create_three, &wb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(wa.rc, COFFER_OK);
    assert_int_equal(wb.rc, COFFER_OK);
    /* a logs debug too (the open), b from info: 3 creates each. */
    assert_int_equal(a.lines, 4);
    assert_int_equal(b.lines, 3);
    assert_non_null(strstr(a.text, "namespace=alpha-ns"));
    assert_null(strstr(a.text, "beta-ns"));
    assert_non_null(strstr(b.text, "namespace=beta-ns"));
    assert_null(strstr(b.text, "alpha-ns"));
    assert_null(strstr(b.text, "repository opened"));
    list_count(ra, "alpha-ns", 3);
    list_count(rb, "beta-ns", 3);
    list_count(ra, "beta-ns", 0);
    coffer_repo_close(ra);
    coffer_repo_close(rb);
}

/* ---- misuse ---- */

static void test_errors(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_repo *r = NULL;
    expect(coffer_repo_open(NULL, NULL, &r, &e), &e, COFFER_EINVAL, "URL");
    expect(coffer_repo_open("s3://", NULL, &r, &e), &e, COFFER_EINVAL, "s3://BUCKET");
    expect(coffer_repo_open("s3://bucket/prefix", NULL, &r, &e), &e, COFFER_EINVAL, "access key");
    coffer_repo_options bad = {0};
    expect(coffer_repo_open(f->repo_path, &bad, &r, &e), &e, COFFER_EINVAL, "struct_size");
    /* A newer program's larger struct: accepted when what it adds is zero. */
    struct {
        coffer_repo_options o;
        int newer_field;
    } bigger = {{.struct_size = sizeof bigger}, 0};
    assert_int_equal(coffer_repo_open(f->repo_path, &bigger.o, &r, &e), COFFER_OK);
    coffer_repo_close(r);
    bigger.newer_field = 1;
    expect(coffer_repo_open(f->repo_path, &bigger.o, &r, &e), &e, COFFER_ENOTSUP, "newer");
    coffer_repo_options level = {.struct_size = sizeof level, .log_level = (coffer_log_level)9};
    expect(coffer_repo_open(f->repo_path, &level, &r, &e), &e, COFFER_EINVAL, "log_level");

    coffer_result made = {.struct_size = sizeof made};
    expect(coffer_create_dir(f->repo, "../up", f->src, NULL, &made, &e), &e, COFFER_EINVAL, "namespace");
    expect(coffer_create_dir(f->repo, "a/b", f->src, NULL, &made, &e), &e, COFFER_EINVAL, "namespace");
    expect(coffer_create_dir(f->repo, "", f->src, NULL, &made, &e), &e, COFFER_EINVAL, "namespace");
    expect(coffer_create_dir(NULL, "ns", f->src, NULL, &made, &e), &e, COFFER_EINVAL, "NULL handle");
    expect(coffer_create_dir(f->repo, "ns", "/nonexistent/coffer", NULL, &made, &e), &e, COFFER_EINVAL,
           "'/nonexistent/coffer': No such file or directory");
    expect(coffer_create_fd(f->repo, "ns", -1, NULL, &made, &e), &e, COFFER_EINVAL, "negative");
    coffer_create_options co = {.struct_size = sizeof co, .compression = (coffer_compression)42};
    expect(coffer_create_fd(f->repo, "ns", 0, &co, &made, &e), &e, COFFER_EINVAL, "compression");
    coffer_label eq = {"a=b", "c"};
    coffer_create_options lab = {.struct_size = sizeof lab, .labels = &eq, .nlabels = 1};
    expect(coffer_create_dir(f->repo, "ns", f->src, &lab, &made, &e), &e, COFFER_EINVAL, "label");
    coffer_create_options lvl = {.struct_size = sizeof lvl, .level = 99};
    expect(coffer_create_dir(f->repo, "ns", f->src, &lvl, &made, &e), &e, COFFER_EINVAL, "level");
    list_count(f->repo, "ns", 0);

    expect(coffer_show(f->repo, "ns", "nope", &(char *){0}, NULL, &e), &e, COFFER_EINVAL,
           "not a snapshot id");
    expect(coffer_show(f->repo, "ns", "../../etc/passwd", &(char *){0}, NULL, &e), &e, COFFER_EINVAL,
           "not a snapshot id");
    expect(coffer_verify(f->repo, "ns", NULL, NULL, &e), &e, COFFER_ENOTFOUND, "ns");
    expect(
        coffer_restore_cb(f->repo, "ns", "20261122T153000Z-7f3a", collect, &(collected){0}, NULL, NULL, &e),
        &e, COFFER_ENOTFOUND, "20261122T153000Z-7f3a");
    expect(coffer_restore_cb(f->repo, "ns", NULL, NULL, NULL, NULL, NULL, &e), &e, COFFER_EINVAL, "NULL");
    expect(coffer_restore_dir(f->repo, "ns", NULL, "-", NULL, NULL, &e), &e, COFFER_EINVAL, "destination");
    coffer_retention neg = {.struct_size = sizeof neg, .keep_last = -1};
    expect(coffer_prune(f->repo, "ns", &neg, NULL, &e), &e, COFFER_EINVAL, "negative");
    expect(coffer_prune(f->repo, "ns", NULL, NULL, &e), &e, COFFER_EINVAL, "policy");
    /* A NULL error is allowed everywhere. */
    assert_int_equal(coffer_verify(f->repo, "ns", NULL, NULL, NULL), COFFER_ENOTFOUND);

    /* A damaged archive: verify says so, and a restore leaves its destination untouched. */
    assert_int_equal(coffer_create_dir(f->repo, "dmg", f->src, NULL, &made, &e), COFFER_OK);
    const char *id = made.id;
    char archive[500];
    snprintf(archive, sizeof archive, "%s/dmg/%s.tar.zst", f->repo_path, id);
    size_t n;
    char *bytes = read_file(archive, &n);
    bytes[n / 2] ^= 0x40;
    write_file(archive, bytes, n);
    free(bytes);
    int rc = coffer_verify(f->repo, "dmg", id, NULL, &e);
    assert_true(rc == COFFER_EDIGEST || rc == COFFER_ECORRUPT);
    assert_int_equal(e.status, rc);
    assert_true(strlen(e.message) > 0);
    char dest[400];
    snprintf(dest, sizeof dest, "%s/never", dir);
    assert_int_equal(coffer_restore_dir(f->repo, "dmg", id, dest, NULL, NULL, &e), rc);
    struct stat st;
    assert_int_equal(stat(dest, &st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_strerror),
        cmocka_unit_test_setup_teardown(test_dir_in_dir_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_in_fd_and_callback_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_by_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pushed_stream_commit_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pushed_stream_engine_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_prune_keep_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest_and_repo_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_struct_size_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_struct_size_short_and_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_grace_as_given, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_reports_skipped_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_fd_names_the_system_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_log_apart, setup, teardown),
        cmocka_unit_test(test_network_options),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_s3_answer_in_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("api_s3", live, start_live, stop_live);
    return failed || server.unclean ? 1 : 0;
}
