/*
 * test_catalogue.c - the console's catalogue on directory repositories holding real manifests
 * (written with cf_manifest_write, and made by cf_snapshot_create): chains and their order,
 * fields and labels, refreshes that read only what changed, manifests that do not parse, removed
 * snapshots, manifests and repositories that cannot be read for a while, a chain name in two
 * repositories, lookups, and readers acquiring views while the background thread swaps them
 * (run under ThreadSanitizer).
 *
 * The repositories are wrapped in a backend of this file that forwards to a directory, counts
 * manifest reads, and can be told to fail its reads or fail or slow its listings.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "console/catalogue.h"
#include "core/fs.h"
#include "snapshot/order.h"
#include "snapshot/snapshot.h"
#include "storage/repo_int.h"

#include "log_capture.h"

#define T0 1795361400LL /* 2026-11-22T15:30:00Z */

/* ---- a directory repository that counts reads and fails listings on demand ---- */

typedef struct probe_repo {
    cf_repo base;
    cf_repo *dir;
    atomic_int fail_list;  /* 1: every listing fails; 2: listings below the root fail */
    atomic_int slow_list;  /* milliseconds each root listing waits */
    atomic_int root_lists; /* root listings begun */
    atomic_int gets;
    atomic_int fail_get; /* 1: every read fails as a network error would */
    atomic_long bytes;   /* read */
} probe_repo;

typedef struct counted {
    probe_repo *p;
    cf_repo_data_fn fn;
    void *ctx;
} counted;

static int count_bytes(void *ctx, const void *data, size_t n, cf_err *err)
{
    counted *c = ctx;
    atomic_fetch_add(&c->p->bytes, (long)n);
    return c->fn(c->ctx, data, n, err);
}

static int probe_get(cf_repo *r, const char *key, uint64_t off, uint64_t len, cf_repo_data_fn fn, void *ctx,
                     cf_err *err)
{
    probe_repo *p = (probe_repo *)r;
    atomic_fetch_add(&p->gets, 1);
    if (atomic_load(&p->fail_get))
        return cf_err_set(err, CF_EIO, "reading '%s': connection reset (the test says so)", key);
    counted c = {p, fn, ctx};
    return cf_repo_get(p->dir, key, off, len, count_bytes, &c, err);
}

static int probe_list_dir(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    probe_repo *p = (probe_repo *)r;
    int fail = atomic_load(&p->fail_list);
    if (!*prefix) {
        atomic_fetch_add(&p->root_lists, 1);
        int ms = atomic_load(&p->slow_list);
        if (ms)
            nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
    }
    if (fail == 1 || (fail == 2 && *prefix))
        return cf_err_set(err, CF_EIO, "listing '%s': the test says no", prefix);
    return cf_repo_list_dir(p->dir, prefix, fn, ctx, err);
}

static void probe_close(cf_repo *r)
{
    (void)r;
}

static const cf_repo_ops probe_ops = {.close = probe_close, .get = probe_get, .list_dir = probe_list_dir};

typedef struct fixture {
    char dir[128];
    probe_repo probe[2];
    cf_cat_repo repos[2];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/coffer-test-catalogue-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (int i = 0; i < 2; i++) {
        char path[200];
        snprintf(path, sizeof path, "%s/repo%d", f->dir, i);
        cf_err err;
        assert_int_equal(cf_repo_open_dir(path, &f->probe[i].dir, &err), 0);
        f->probe[i].base.ops = &probe_ops;
        f->probe[i].base.name = i ? "test-repo-1" : "test-repo-0";
        f->repos[i].repo = &f->probe[i].base;
        f->repos[i].url = i ? "s3://second/snapshots" : "s3://first";
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 2; i++)
        cf_repo_close(f->probe[i].dir);
    cf_fs_remove_tree(f->dir, NULL);
    free(f);
    return 0;
}

/* ---- what the catalogue logs ---- */

static int count_lines(const captured *l, const char *needle)
{
    int n = 0;
    for (const char *p = l->lines; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- manifests ---- */

static void make_id(int64_t t, unsigned rnd, char id[CF_SNAPSHOT_ID_LEN + 1])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char when[20];
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(id, CF_SNAPSHOT_ID_LEN + 1, "%s-%04x", when, rnd & 0xffff);
}

static void put_object(cf_repo *repo, const char *key, const char *text, size_t len)
{
    cf_repo_writer *w;
    cf_err err;
    assert_int_equal(cf_repo_writer_begin(repo, key, len, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, text, len, &err), 0);
    assert_int_equal(cf_repo_writer_commit(w, &err), 0);
}

/* The shape of a manifest beyond its identity: how many chunks (a real one has one per 2 MiB of
 * archive), how many --exclude patterns (they come before the chunks), and how many bytes to cut
 * off its end (a damaged file). */
typedef struct shape {
    size_t nchunks, nexclude, cut;
    int passphrase;
} shape;

/* Writes <chain>/<id>.json, a manifest like the ones `coffer snapshot create` writes; height
 * NULL: no height label. */
static void put_shaped_manifest(cf_repo *repo, const char *chain, const char *id, int64_t t, int32_t ns,
                                const char *height, cf_codec codec, int encrypted, shape sh)
{
    size_t nchunks = sh.nchunks ? sh.nchunks : 2;
    cf_archive_chunk *chunks = calloc(nchunks, sizeof *chunks);
    for (size_t i = 0; i < nchunks; i++)
        chunks[i] = (cf_archive_chunk){i * 512, 512, 2048, (uint32_t)(0xdeadbeef + i)};
    char **exclude = calloc(sh.nexclude + 1, sizeof *exclude);
    for (size_t i = 0; i < sh.nexclude; i++) {
        exclude[i] = malloc(64);
        snprintf(exclude[i], 64, "var/cache/pattern-%06zu-*.tmp", i);
    }
    cf_label labels[] = {{"chain_id", (char *)chain}, {"height", (char *)height}};
    char archive_key[300];
    snprintf(archive_key, sizeof archive_key, "%s/%s%s%s", chain, id, cf_codec_suffix(codec),
             encrypted ? ".enc" : "");
    cf_manifest_encryption enc = {.key_id = "0123456789abcdef", .passphrase = sh.passphrase};
    memset(enc.salt, 0x11, sizeof enc.salt);
    enc.scrypt.n = 1u << 15;
    enc.scrypt.r = 8;
    enc.scrypt.p = 1;
    memset(enc.scrypt.salt, 0x22, sizeof enc.scrypt.salt);
    cf_manifest m = {
        .format = CF_MANIFEST_FORMAT,
        .ns = (char *)chain,
        .created = (time_t)t,
        .created_ns = ns,
        .source = {.kind = CF_SOURCE_DIR,
                   .host = "node-0",
                   .path = "/var/lib/node/data",
                   .exclude = exclude,
                   .nexclude = sh.nexclude},
        .labels = labels,
        .nlabels = height ? 2 : 1,
        .archive = {.key = archive_key,
                    .compression = codec,
                    .level = codec == CF_CODEC_ZSTD ? 3 : 0,
                    .size = 512 * nchunks,
                    .raw_size = 2048 * nchunks,
                    .files = 7},
        .chunks = chunks,
        .nchunks = nchunks,
        .encryption = encrypted ? &enc : NULL,
        .tool = "coffer 0.1.0",
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    for (int i = 0; i < 32; i++)
        m.archive.sha256[i] = (unsigned char)(t + i);
    char *text;
    size_t len;
    cf_err err;
    assert_int_equal(cf_manifest_write(&m, &text, &len, &err), 0);
    char key[300];
    snprintf(key, sizeof key, "%s/%s.json", chain, id);
    put_object(repo, key, text, len - sh.cut);
    free(text);
    free(chunks);
    for (size_t i = 0; i < sh.nexclude; i++)
        free(exclude[i]);
    free(exclude);
}

static void put_manifest(cf_repo *repo, const char *chain, const char *id, int64_t t, int32_t ns,
                         const char *height, cf_codec codec, int encrypted)
{
    put_shaped_manifest(repo, chain, id, t, ns, height, codec, encrypted, (shape){0});
}

/* A manifest made at second T0 + i, height 1000 + i. */
static void put_nth(cf_repo *repo, const char *chain, int i, char id[CF_SNAPSHOT_ID_LEN + 1])
{
    char height[32];
    snprintf(height, sizeof height, "%d", 1000 + i);
    make_id(T0 + i, (unsigned)i * 7919u, id);
    put_manifest(repo, chain, id, T0 + i, 0, height, CF_CODEC_LZ4, 0);
}

static void remove_key(cf_repo *repo, const char *key)
{
    cf_err err;
    assert_int_equal(cf_repo_delete(repo, key, &err), 0);
}

/* ---- the catalogue ---- */

static cf_catalogue *open_catalogue(fixture *f, size_t nrepos, double interval, const cf_logger *log)
{
    cf_catalogue_opts o = {.repos = f->repos, .nrepos = nrepos, .refresh_interval_s = interval, .log = log};
    cf_catalogue *c;
    cf_err err;
    assert_int_equal(cf_catalogue_new(&o, &c, &err), 0);
    return c;
}

static double metric(cf_catalogue *c, const char *name)
{
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    assert_int_equal(cf_catalogue_render_metrics(c, &b), 0);
    const char *p = b.data;
    double v = -1;
    size_t nl = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == b.data || p[-1] == '\n') && p[nl] == ' ') {
            v = strtod(p + nl + 1, NULL);
            break;
        }
        p += nl;
    }
    cf_buf_cleanup(&b);
    return v;
}

#define REFRESHES_OK "coffer_console_catalogue_refreshes_total{result=\"ok\"}"
#define REFRESHES_ERR "coffer_console_catalogue_refreshes_total{result=\"error\"}"
#define READS "coffer_console_catalogue_manifest_reads_total"

static void refresh_ok(cf_catalogue *c)
{
    cf_err err = {0};
    int rc = cf_catalogue_refresh(c, &err);
    if (rc)
        fail_msg("refresh: %s", err.msg);
}

static void test_catalogue_empty_repository(void **state)
{
    fixture *f = *state;
    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    assert_non_null(v);
    assert_int_equal(v->ready, 0);
    assert_int_equal(v->nchains, 0);
    assert_null(cf_cat_find_chain(v, "anything"));
    cf_catalogue_release(c, v);
    assert_int_equal(atomic_load(&f->probe[0].root_lists), 0); /* new does no I/O */

    refresh_ok(c);
    v = cf_catalogue_acquire(c);
    assert_int_equal(v->ready, 1);
    assert_int_equal(v->nchains, 0);
    assert_true(v->refreshed_at > 0);
    cf_catalogue_release(c, v);
    assert_true(metric(c, REFRESHES_OK) == 1);
    assert_true(metric(c, "coffer_console_catalogue_chains") == 0);
    assert_true(metric(c, "coffer_console_catalogue_snapshots") == 0);
    cf_catalogue_free(c);
}

/* Newest first in snapshot/order.h's order: the fraction of a second decides within one second,
 * the id within one instant; files that are no manifest are no snapshot. */
static void test_catalogue_chains_and_order(void **state)
{
    fixture *f = *state;
    cf_repo *dir = f->probe[0].dir;
    char a[CF_SNAPSHOT_ID_LEN + 1], b[CF_SNAPSHOT_ID_LEN + 1], d[CF_SNAPSHOT_ID_LEN + 1],
        e[CF_SNAPSHOT_ID_LEN + 1], g[CF_SNAPSHOT_ID_LEN + 1];
    make_id(T0, 0xffff, a);      /* oldest second, largest id */
    make_id(T0 + 60, 0x0001, b); /* same second as d and e, latest fraction */
    make_id(T0 + 60, 0x9999, d); /* same instant as e: the larger id is newer */
    make_id(T0 + 60, 0x1000, e);
    make_id(T0 + 30, 0x0002, g);
    put_manifest(dir, "osmosis-1", a, T0, 0, "100", CF_CODEC_ZSTD, 0);
    put_manifest(dir, "osmosis-1", b, T0 + 60, 900000000, "400", CF_CODEC_ZSTD, 0);
    put_manifest(dir, "osmosis-1", d, T0 + 60, 5, "300", CF_CODEC_ZSTD, 1);
    put_manifest(dir, "osmosis-1", e, T0 + 60, 5, NULL, CF_CODEC_NONE, 0);
    put_manifest(dir, "osmosis-1", g, T0 + 30, 0, "200", CF_CODEC_LZ4, 0);
    char id[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(dir, "cosmoshub-4", 1, id);
    put_nth(dir, "akash", 2, id);
    put_object(dir, "osmosis-1/notes.json", "{}", 2);        /* not ID.json */
    put_object(dir, "osmosis-1/old/x.json", "{}", 2);        /* a level deeper */
    put_object(dir, "README.json", "{}", 2);                 /* no chain */
    put_object(dir, "empty-chain/readme.txt", "nothing", 7); /* a chain without snapshots */
    char junk[64];
    snprintf(junk, sizeof junk, "osmosis-1/%s.tar.zst", a);
    put_object(dir, junk, "archive", 7);

    /* Names `coffer snapshot` could not have given a namespace are no chains, whatever a bucket
     * holds: a control character (here a terminal escape) must reach neither the API nor the log. */
    char odd[300], manifest[400];
    const char *odd_names[] = {"esc\x1b[2Jchain", "cr\rchain", "at@chain", "back\\slash"};
    for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++) {
        snprintf(odd, sizeof odd, "%s/repo0/%s", f->dir, odd_names[i]);
        assert_int_equal(mkdir(odd, 0700), 0);
        snprintf(manifest, sizeof manifest, "%s/%s.json", odd, a);
        FILE *fp = fopen(manifest, "w");
        assert_non_null(fp);
        fputs("{}", fp);
        fclose(fp);
    }

    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    assert_int_equal(v->nchains, 4);
    assert_string_equal(v->chains[0].name, "akash");
    assert_string_equal(v->chains[1].name, "cosmoshub-4");
    assert_string_equal(v->chains[2].name, "empty-chain");
    assert_string_equal(v->chains[3].name, "osmosis-1");
    assert_int_equal(v->chains[2].nsnaps, 0);
    const cf_cat_chain *ch = cf_cat_find_chain(v, "osmosis-1");
    assert_ptr_equal(ch, &v->chains[3]);
    assert_int_equal(ch->nsnaps, 5);
    assert_int_equal(ch->repo_index, 0);
    const char *want[] = {b, d, e, g, a};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(ch->snaps[i].id, want[i]);

    /* The same order as `coffer snapshot ls` (oldest first there). */
    cf_snapshot_key keys[5];
    for (size_t i = 0; i < 5; i++) {
        keys[i] = (cf_snapshot_key){.created = ch->snaps[i].created, .created_ns = ch->snaps[i].created_ns};
        memcpy(keys[i].id, ch->snaps[i].id, sizeof keys[i].id);
        if (i)
            assert_true(cf_snapshot_key_cmp(&keys[i - 1], &keys[i]) > 0);
    }

    /* Every field, from the manifest. */
    const cf_cat_snapshot *s = &ch->snaps[1];
    assert_string_equal(s->chain, "osmosis-1");
    assert_int_equal(s->created, T0 + 60);
    assert_int_equal(s->created_ns, 5);
    assert_int_equal(s->size, 1024);
    assert_int_equal(s->raw_size, 4096);
    assert_int_equal(s->files, 7);
    assert_string_equal(s->compression, "zstd");
    assert_int_equal(s->level, 3);
    assert_int_equal(s->encrypted, 1);
    char archive_key[80], manifest_key[80], sha[65];
    snprintf(archive_key, sizeof archive_key, "osmosis-1/%s.tar.zst.enc", d);
    snprintf(manifest_key, sizeof manifest_key, "osmosis-1/%s.json", d);
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", (unsigned char)(T0 + 60 + i));
    assert_string_equal(s->archive_key, archive_key);
    assert_string_equal(s->manifest_key, manifest_key);
    assert_string_equal(s->sha256, sha);
    assert_int_equal(s->nlabels, 2);
    assert_string_equal(s->labels[0].key, "chain_id");
    assert_string_equal(s->labels[0].value, "osmosis-1");
    assert_string_equal(s->height, "300");
    assert_int_equal(s->repo_index, 0);
    assert_null(ch->snaps[2].height); /* no height label */
    assert_string_equal(ch->snaps[2].compression, "none");
    assert_int_equal(ch->snaps[2].encrypted, 0);
    assert_string_equal(ch->snaps[3].compression, "lz4");
    assert_string_equal(ch->snaps[0].height, "400");

    assert_true(metric(c, "coffer_console_catalogue_chains") == 4);
    assert_true(metric(c, "coffer_console_catalogue_snapshots") == 7);
    assert_true(metric(c, "coffer_console_catalogue_refresh_seconds") >= 0);
    assert_true(metric(c, "coffer_console_catalogue_last_refresh_timestamp_seconds") ==
                (double)v->refreshed_at);
    cf_catalogue_release(c, v);
    cf_catalogue_free(c);
}

/* Snapshots made by the engine itself, with a height label, read back as `snapshot ls` lists them. */
typedef struct listed {
    char ids[4][CF_SNAPSHOT_ID_LEN + 1];
    size_t n;
} listed;

static int note_listed(void *ctx, const cf_manifest *m)
{
    listed *l = ctx;
    assert_true(l->n < 4);
    memcpy(l->ids[l->n++], m->id, CF_SNAPSHOT_ID_LEN + 1);
    return 0;
}

static void test_catalogue_reads_real_snapshots(void **state)
{
    fixture *f = *state;
    char src[200], file[220];
    snprintf(src, sizeof src, "%s/src", f->dir);
    cf_err err;
    assert_int_equal(cf_fs_mkdirs(src, 0700, &err), 0);
    snprintf(file, sizeof file, "%s/blocks.db", src);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("block data", fp);
    fclose(fp);
    cf_fixed_clock clock;
    cf_fixed_clock_init(&clock, (T0 + 5) * 1000000000LL, 42);
    for (int i = 0; i < 3; i++) {
        char height[16];
        snprintf(height, sizeof height, "%d", 19000000 + i);
        cf_label labels[] = {{"height", height}};
        cf_snapshot_create_opts o = {.source = src,
                                     .codec = i == 2 ? CF_CODEC_LZ4 : CF_CODEC_ZSTD,
                                     .threads = 1,
                                     .labels = labels,
                                     .nlabels = 1,
                                     .clock = &clock.clock};
        char id[CF_SNAPSHOT_ID_LEN + 1];
        if (cf_snapshot_create(f->probe[0].dir, "osmosis-1", &o, id, NULL, &err))
            fail_msg("create: %s", err.msg);
        clock.now_ns += i ? 1000000000LL : 250000000LL; /* two in one second, one later */
    }
    listed l = {0};
    assert_int_equal(cf_snapshot_list(f->probe[0].dir, "osmosis-1", note_listed, &l, &err), 0);
    assert_int_equal(l.n, 3);

    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    const cf_cat_chain *ch = cf_cat_find_chain(v, "osmosis-1");
    assert_non_null(ch);
    assert_int_equal(ch->nsnaps, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(ch->snaps[i].id, l.ids[2 - i]); /* newest first: ls reversed */
        char height[16];
        snprintf(height, sizeof height, "%zu", 19000002 - i);
        assert_string_equal(ch->snaps[i].height, height);
        assert_true(ch->snaps[i].size > 0);
        assert_int_equal(ch->snaps[i].files, 1);
        assert_int_equal(ch->snaps[i].raw_size > 0, 1);
        cf_repo_info info;
        assert_int_equal(cf_repo_stat(f->probe[0].dir, ch->snaps[i].archive_key, &info, &err), 0);
        assert_int_equal(info.size, ch->snaps[i].size);
    }
    assert_string_equal(ch->snaps[0].compression, "lz4");
    assert_string_equal(ch->snaps[1].compression, "zstd");
    cf_catalogue_release(c, v);
    cf_catalogue_free(c);
}

/* A refresh after the first reads only new and changed manifests; a removed one disappears. */
static void test_catalogue_refresh_reads_only_what_changed(void **state)
{
    fixture *f = *state;
    cf_repo *dir = f->probe[0].dir;
    char ids[40][CF_SNAPSHOT_ID_LEN + 1];
    for (int i = 0; i < 40; i++)
        put_nth(dir, i % 2 ? "juno-1" : "stride-1", i, ids[i]);
    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), 40);
    assert_true(metric(c, READS) == 40);
    const cf_cat_view *first = cf_catalogue_acquire(c);

    refresh_ok(c); /* nothing changed: listings only */
    assert_int_equal(atomic_load(&f->probe[0].gets), 40);
    assert_true(metric(c, READS) == 40);
    assert_true(metric(c, REFRESHES_OK) == 2);

    char added[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(dir, "juno-1", 100, added);
    /* A changed manifest (rewritten: new ETag) is read again, and what it says now is shown. */
    put_manifest(dir, "stride-1", ids[0], T0, 0, "999999", CF_CODEC_LZ4, 0);
    char key[80];
    snprintf(key, sizeof key, "juno-1/%s.json", ids[1]);
    remove_key(dir, key);
    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), 42);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    const cf_cat_chain *juno = cf_cat_find_chain(v, "juno-1"), *stride = cf_cat_find_chain(v, "stride-1");
    assert_int_equal(juno->nsnaps, 20);
    assert_string_equal(juno->snaps[0].id, added);
    assert_null(cf_cat_find_snapshot(juno, ids[1]));
    assert_string_equal(cf_cat_find_snapshot(stride, ids[0])->height, "999999");
    assert_true(metric(c, "coffer_console_catalogue_snapshots") == 40);

    /* The first view is untouched by the refreshes since: views are immutable. */
    const cf_cat_chain *old_juno = cf_cat_find_chain(first, "juno-1");
    assert_int_equal(old_juno->nsnaps, 20);
    assert_non_null(cf_cat_find_snapshot(old_juno, ids[1]));
    assert_null(cf_cat_find_snapshot(old_juno, added));
    assert_string_equal(cf_cat_find_snapshot(cf_cat_find_chain(first, "stride-1"), ids[0])->height, "1000");
    cf_catalogue_release(c, first);

    /* A chain whose directory is gone is gone. */
    cf_catalogue_release(c, v);
    char path[300];
    snprintf(path, sizeof path, "%s/repo0/stride-1", f->dir);
    assert_int_equal(cf_fs_remove_tree(path, NULL), 0);
    refresh_ok(c);
    v = cf_catalogue_acquire(c);
    assert_int_equal(v->nchains, 1);
    assert_null(cf_cat_find_chain(v, "stride-1"));
    cf_catalogue_release(c, v);
    assert_int_equal(atomic_load(&f->probe[0].gets), 42);
    cf_catalogue_free(c);
}

/* A manifest that does not parse is left out with one warning, and not read again until it
 * changes; the refresh itself succeeds. */
static void test_catalogue_corrupt_manifest_skipped(void **state)
{
    fixture *f = *state;
    cf_repo *dir = f->probe[0].dir;
    char good[CF_SNAPSHOT_ID_LEN + 1], bad[CF_SNAPSHOT_ID_LEN + 1], other[CF_SNAPSHOT_ID_LEN + 1],
        alien[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(dir, "evmos", 1, good);
    make_id(T0 + 2, 0xbad, bad);
    char key[80];
    snprintf(key, sizeof key, "evmos/%s.json", bad);
    put_object(dir, key, "{\"format\": 1, \"id\": ", 20);
    /* A real manifest, but of another snapshot, stored under this one's name: no snapshot either. */
    put_nth(dir, "scratch", 3, other);
    make_id(T0 + 3, 0xa11e, alien);
    char other_key[80], alien_key[80];
    snprintf(other_key, sizeof other_key, "scratch/%s.json", other);
    snprintf(alien_key, sizeof alien_key, "evmos/%s.json", alien);
    cf_err err;
    assert_int_equal(cf_repo_copy(dir, other_key, alien_key, NULL, &err), 0);

    captured *lines = calloc(1, sizeof *lines);
    cf_logger log = {.min = CF_LOG_DEBUG, .sink = capture, .sink_ctx = lines};
    cf_catalogue *c = open_catalogue(f, 1, 0, &log);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    const cf_cat_chain *ch = cf_cat_find_chain(v, "evmos");
    assert_int_equal(ch->nsnaps, 1);
    assert_string_equal(ch->snaps[0].id, good);
    assert_null(cf_cat_find_snapshot(ch, bad));
    assert_null(cf_cat_find_snapshot(ch, alien));
    assert_null(cf_cat_find_snapshot(ch, other));
    assert_int_equal(cf_cat_find_chain(v, "scratch")->nsnaps, 1);
    cf_catalogue_release(c, v);
    assert_int_equal(count_lines(lines, "does not parse"), 2);
    assert_non_null(strstr(lines->lines, key));
    assert_non_null(strstr(lines->lines, alien_key));
    assert_true(metric(c, "coffer_console_catalogue_invalid_manifests") == 2);
    int gets = atomic_load(&f->probe[0].gets);
    assert_int_equal(gets, 4);

    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), gets);    /* neither read again */
    assert_int_equal(count_lines(lines, "does not parse"), 2); /* nor warned about again */
    assert_true(metric(c, REFRESHES_OK) == 2);
    assert_true(metric(c, REFRESHES_ERR) == 0);

    /* One more, in a chain that sorts first, found while the others are known: none of the
     * three is read again after. */
    char early[CF_SNAPSHOT_ID_LEN + 1], early_key[80];
    make_id(T0 + 9, 0xea, early);
    snprintf(early_key, sizeof early_key, "alpha/%s.json", early);
    put_object(dir, early_key, "[]", 2);
    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), ++gets);
    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), gets);
    assert_int_equal(count_lines(lines, "does not parse"), 3);
    remove_key(dir, early_key);

    /* Repaired: read again, and listed. */
    put_manifest(dir, "evmos", bad, T0 + 2, 0, "7", CF_CODEC_ZSTD, 0);
    refresh_ok(c);
    assert_int_equal(atomic_load(&f->probe[0].gets), gets + 1);
    v = cf_catalogue_acquire(c);
    ch = cf_cat_find_chain(v, "evmos");
    assert_int_equal(ch->nsnaps, 2);
    assert_string_equal(ch->snaps[0].id, bad);
    assert_string_equal(ch->snaps[0].height, "7");
    cf_catalogue_release(c, v);
    assert_true(metric(c, "coffer_console_catalogue_invalid_manifests") == 1);
    assert_int_equal(count_lines(lines, "does not parse"), 3);
    cf_catalogue_free(c);
    free(lines);
}

/* Stale beats empty: a repository (or a chain) that cannot be listed keeps what the previous
 * view had, and the refresh counts as failed. */
static void test_catalogue_unlistable_repository_keeps_chains(void **state)
{
    fixture *f = *state;
    char id[CF_SNAPSHOT_ID_LEN + 1];
    for (int i = 0; i < 3; i++)
        put_nth(f->probe[0].dir, "kava", i, id);
    put_nth(f->probe[1].dir, "sei", 0, id);
    cf_catalogue *c = open_catalogue(f, 2, 0, NULL);

    /* Nothing loaded yet and nothing listable: not ready, a failure. */
    atomic_store(&f->probe[0].fail_list, 1);
    atomic_store(&f->probe[1].fail_list, 1);
    cf_err err = {0};
    assert_int_equal(cf_catalogue_refresh(c, &err), CF_EIO);
    assert_non_null(strstr(err.msg, "the test says no"));
    const cf_cat_view *v = cf_catalogue_acquire(c);
    assert_int_equal(v->ready, 0);
    cf_catalogue_release(c, v);
    assert_true(metric(c, REFRESHES_ERR) == 1);

    atomic_store(&f->probe[0].fail_list, 0);
    atomic_store(&f->probe[1].fail_list, 0);
    refresh_ok(c);
    put_nth(f->probe[0].dir, "kava", 9, id);
    char key[80];
    snprintf(key, sizeof key, "sei/%s.json", id);

    atomic_store(&f->probe[0].fail_list, 1); /* the whole first repository */
    put_nth(f->probe[1].dir, "sei", 5, id);
    assert_int_equal(cf_catalogue_refresh(c, &err), CF_EIO);
    v = cf_catalogue_acquire(c);
    assert_int_equal(v->ready, 1);
    assert_int_equal(v->nchains, 2);
    assert_int_equal(cf_cat_find_chain(v, "kava")->nsnaps, 3); /* as before: the new one unseen */
    assert_int_equal(cf_cat_find_chain(v, "sei")->nsnaps, 2);  /* the other repository refreshed */
    cf_catalogue_release(c, v);
    assert_true(metric(c, REFRESHES_ERR) == 2);

    atomic_store(&f->probe[0].fail_list, 2); /* the chain's listing only */
    assert_int_equal(cf_catalogue_refresh(c, &err), CF_EIO);
    v = cf_catalogue_acquire(c);
    assert_int_equal(cf_cat_find_chain(v, "kava")->nsnaps, 3);
    cf_catalogue_release(c, v);

    atomic_store(&f->probe[0].fail_list, 0);
    refresh_ok(c);
    v = cf_catalogue_acquire(c);
    assert_int_equal(cf_cat_find_chain(v, "kava")->nsnaps, 4);
    cf_catalogue_release(c, v);
    assert_true(metric(c, REFRESHES_ERR) == 3);
    assert_true(metric(c, REFRESHES_OK) == 2);
    cf_catalogue_free(c);
}

/* A large manifest (its chunk list) is read as its head and its tail, not whole; one whose head
 * is too long for that is read whole; a damaged one is still refused. */
static void test_catalogue_large_manifests_read_in_part(void **state)
{
    fixture *f = *state;
    cf_repo *dir = f->probe[0].dir;
    char enc[CF_SNAPSHOT_ID_LEN + 1], plain[CF_SNAPSHOT_ID_LEN + 1], wide[CF_SNAPSHOT_ID_LEN + 1],
        cut[CF_SNAPSHOT_ID_LEN + 1], key[80];
    make_id(T0 + 1, 1, enc);
    make_id(T0 + 2, 2, plain);
    make_id(T0 + 3, 3, wide);
    make_id(T0 + 4, 4, cut);
    /* 20,000 chunks: about 2 MB of manifest, as for a 40 GiB archive. */
    put_shaped_manifest(dir, "archway-1", enc, T0 + 1, 10, "111", CF_CODEC_ZSTD, 1,
                        (shape){.nchunks = 20000, .passphrase = 1});
    put_shaped_manifest(dir, "archway-1", plain, T0 + 2, 20, "222", CF_CODEC_LZ4, 0,
                        (shape){.nchunks = 20000});
    /* 3,000 --exclude patterns put the chunk list beyond the head that is read. */
    put_shaped_manifest(dir, "archway-1", wide, T0 + 3, 30, "333", CF_CODEC_ZSTD, 1,
                        (shape){.nchunks = 3000, .nexclude = 3000});
    put_shaped_manifest(dir, "archway-1", cut, T0 + 4, 40, "444", CF_CODEC_ZSTD, 0,
                        (shape){.nchunks = 20000, .cut = 3});
    cf_repo_info info;
    cf_err err;
    snprintf(key, sizeof key, "archway-1/%s.json", plain);
    assert_int_equal(cf_repo_stat(dir, key, &info, &err), 0);
    assert_true(info.size > 1000000);
    uint64_t plain_size = info.size;
    snprintf(key, sizeof key, "archway-1/%s.json", wide);
    assert_int_equal(cf_repo_stat(dir, key, &info, &err), 0);
    uint64_t wide_size = info.size;
    snprintf(key, sizeof key, "archway-1/%s.json", cut);
    assert_int_equal(cf_repo_stat(dir, key, &info, &err), 0);
    uint64_t cut_size = info.size;

    captured *lines = calloc(1, sizeof *lines);
    cf_logger log = {.min = CF_LOG_DEBUG, .sink = capture, .sink_ctx = lines};
    cf_catalogue *c = open_catalogue(f, 1, 0, &log);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    const cf_cat_chain *ch = cf_cat_find_chain(v, "archway-1");
    assert_int_equal(ch->nsnaps, 3);
    const cf_cat_snapshot *s = cf_cat_find_snapshot(ch, enc);
    assert_int_equal(s->encrypted, 1);
    assert_string_equal(s->height, "111");
    assert_int_equal(s->created_ns, 10);
    assert_int_equal(s->size, 512 * 20000);
    assert_int_equal(s->raw_size, 2048 * 20000);
    assert_string_equal(s->compression, "zstd");
    assert_int_equal(s->sha256[0], "0123456789abcdef"[((T0 + 1) & 0xff) >> 4]);
    s = cf_cat_find_snapshot(ch, plain);
    assert_int_equal(s->encrypted, 0);
    assert_string_equal(s->height, "222");
    assert_string_equal(s->compression, "lz4");
    s = cf_cat_find_snapshot(ch, wide);
    assert_int_equal(s->encrypted, 1);
    assert_string_equal(s->height, "333");
    assert_null(cf_cat_find_snapshot(ch, cut));
    cf_catalogue_release(c, v);
    assert_int_equal(count_lines(lines, "does not parse"), 1);
    assert_non_null(strstr(lines->lines, cut));
    /* Two ranges of 68 KiB for each of the two that fit; the others' ranges, then the whole. */
    long want = 2 * (68 << 10) + 2 * (68 << 10) + (long)wide_size + (long)cut_size;
    assert_int_equal(atomic_load(&f->probe[0].bytes), want);
    assert_true(want < (long)plain_size * 3);
    cf_catalogue_free(c);
    free(lines);
}

/* A manifest that cannot be read for a while (the network, the store) is not a bad manifest:
 * what the previous refresh saw stands, the refresh counts as failed, and the next one reads it. */
static void test_catalogue_unreadable_manifest_tried_again(void **state)
{
    fixture *f = *state;
    cf_repo *dir = f->probe[0].dir;
    char old[CF_SNAPSHOT_ID_LEN + 1], added[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(dir, "cronos", 1, old);
    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    refresh_ok(c);

    put_manifest(dir, "cronos", old, T0 + 1, 0, "555", CF_CODEC_LZ4, 0); /* changed */
    put_nth(dir, "cronos", 2, added);                                    /* new */
    atomic_store(&f->probe[0].fail_get, 1);
    cf_err err = {0};
    assert_int_equal(cf_catalogue_refresh(c, &err), CF_EIO);
    assert_non_null(strstr(err.msg, "connection reset"));
    const cf_cat_view *v = cf_catalogue_acquire(c);
    const cf_cat_chain *ch = cf_cat_find_chain(v, "cronos");
    assert_int_equal(ch->nsnaps, 1);
    assert_string_equal(cf_cat_find_snapshot(ch, old)->height, "1001");
    assert_null(cf_cat_find_snapshot(ch, added));
    cf_catalogue_release(c, v);
    assert_true(metric(c, REFRESHES_ERR) == 1);
    assert_true(metric(c, "coffer_console_catalogue_invalid_manifests") == 0);

    atomic_store(&f->probe[0].fail_get, 0);
    refresh_ok(c);
    v = cf_catalogue_acquire(c);
    ch = cf_cat_find_chain(v, "cronos");
    assert_int_equal(ch->nsnaps, 2);
    assert_string_equal(ch->snaps[0].id, added);
    assert_string_equal(cf_cat_find_snapshot(ch, old)->height, "555");
    cf_catalogue_release(c, v);
    cf_catalogue_free(c);
}

/* A chain name in two repositories: the first repository's chain, and one warning. */
static void test_catalogue_same_chain_in_two_repositories(void **state)
{
    fixture *f = *state;
    char first[CF_SNAPSHOT_ID_LEN + 1], id[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(f->probe[0].dir, "noble-1", 1, first);
    put_nth(f->probe[1].dir, "noble-1", 2, id);
    put_nth(f->probe[1].dir, "noble-1", 3, id);
    put_nth(f->probe[1].dir, "agoric-3", 4, id);
    captured *lines = calloc(1, sizeof *lines);
    cf_logger log = {.min = CF_LOG_DEBUG, .sink = capture, .sink_ctx = lines};
    cf_catalogue *c = open_catalogue(f, 2, 0, &log);
    refresh_ok(c);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    assert_int_equal(v->nchains, 2);
    const cf_cat_chain *noble = cf_cat_find_chain(v, "noble-1"), *agoric = cf_cat_find_chain(v, "agoric-3");
    assert_int_equal(noble->repo_index, 0);
    assert_int_equal(noble->nsnaps, 1);
    assert_string_equal(noble->snaps[0].id, first);
    assert_int_equal(noble->snaps[0].repo_index, 0);
    assert_int_equal(agoric->repo_index, 1);
    assert_int_equal(agoric->snaps[0].repo_index, 1);
    cf_catalogue_release(c, v);
    assert_int_equal(count_lines(lines, "in two repositories"), 1);
    assert_non_null(strstr(lines->lines, "s3://second/snapshots"));
    /* The hidden chain's manifests are not even read. */
    assert_int_equal(atomic_load(&f->probe[1].gets), 1);
    cf_catalogue_free(c);
    free(lines);
}

static void test_catalogue_lookups(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    char(*ids)[CF_SNAPSHOT_ID_LEN + 1] = calloc(N, sizeof *ids);
    const char *chains[] = {"zeta", "alpha", "mu", "beta-2", "omega"};
    for (int i = 0; i < N; i++) {
        /* Ids whose order is not the time order: the random part runs backwards. */
        make_id(T0 + (i / 3), 0xffffu - (unsigned)i, ids[i]);
        put_manifest(f->probe[0].dir, chains[i % 5], ids[i], T0 + i / 3, 0, "1", CF_CODEC_ZSTD, 0);
    }
    cf_catalogue *c = open_catalogue(f, 1, 0, NULL);
    refresh_ok(c);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    assert_int_equal(v->nchains, 5);
    for (size_t i = 1; i < v->nchains; i++)
        assert_true(strcmp(v->chains[i - 1].name, v->chains[i].name) < 0);
    for (int i = 0; i < 5; i++)
        assert_string_equal(cf_cat_find_chain(v, chains[i])->name, chains[i]);
    assert_null(cf_cat_find_chain(v, "alph"));
    assert_null(cf_cat_find_chain(v, "zzz"));
    assert_null(cf_cat_find_chain(v, ""));
    assert_null(cf_cat_find_chain(v, NULL));
    assert_null(cf_cat_find_chain(NULL, "alpha"));
    for (int i = 0; i < N; i++) {
        const cf_cat_chain *ch = cf_cat_find_chain(v, chains[i % 5]);
        const cf_cat_snapshot *s = cf_cat_find_snapshot(ch, ids[i]);
        assert_non_null(s);
        assert_string_equal(s->id, ids[i]);
        assert_true(s >= ch->snaps && s < ch->snaps + ch->nsnaps);
        assert_null(cf_cat_find_snapshot(cf_cat_find_chain(v, chains[(i + 1) % 5]), ids[i]));
    }
    const cf_cat_chain *alpha = cf_cat_find_chain(v, "alpha");
    assert_null(cf_cat_find_snapshot(alpha, "20261122T153000Z-0000"));
    assert_null(cf_cat_find_snapshot(alpha, ""));
    assert_null(cf_cat_find_snapshot(alpha, NULL));
    assert_null(cf_cat_find_snapshot(NULL, ids[0]));
    assert_null(cf_cat_find_snapshot(&v->chains[0], "../../etc/passwd"));
    cf_catalogue_release(c, v);
    cf_catalogue_free(c);
    free(ids);
}

static void test_catalogue_refused_options(void **state)
{
    fixture *f = *state;
    cf_catalogue *c = (cf_catalogue *)1;
    cf_err err;
    cf_catalogue_opts o = {.repos = f->repos, .nrepos = 1, .refresh_interval_s = -1};
    assert_int_equal(cf_catalogue_new(&o, &c, &err), CF_EINVAL);
    assert_null(c);
    cf_cat_repo none = {.url = "s3://nothing"};
    o = (cf_catalogue_opts){.repos = &none, .nrepos = 1};
    assert_int_equal(cf_catalogue_new(&o, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "s3://nothing"));
    cf_catalogue_free(NULL);
}

/* ---- the background thread ---- */

static int wait_for(cf_catalogue *c, const char *name, double at_least, double seconds)
{
    for (double waited = 0; waited < seconds; waited += 0.005) {
        if (metric(c, name) >= at_least)
            return 1;
        nanosleep(&(struct timespec){0, 5000000L}, NULL);
    }
    return 0;
}

/* Requests made while a refresh runs make one more refresh, not one each; free does not wait
 * for the interval. */
static void test_catalogue_requests_coalesce_and_free_is_prompt(void **state)
{
    fixture *f = *state;
    char id[CF_SNAPSHOT_ID_LEN + 1];
    put_nth(f->probe[0].dir, "dydx-mainnet-1", 1, id);
    cf_catalogue *c = open_catalogue(f, 1, 3600, NULL);
    cf_err err;
    assert_int_equal(cf_catalogue_start(c, &err), 0);
    assert_int_equal(cf_catalogue_start(c, &err), CF_EINVAL);
    assert_true(wait_for(c, REFRESHES_OK, 1, 10)); /* not loaded: the thread loads at once */
    nanosleep(&(struct timespec){0, 50000000L}, NULL);
    assert_true(metric(c, REFRESHES_OK) == 1); /* and then waits the interval */

    atomic_store(&f->probe[0].slow_list, 300);
    int lists = atomic_load(&f->probe[0].root_lists);
    cf_catalogue_request_refresh(c);
    while (atomic_load(&f->probe[0].root_lists) == lists)
        nanosleep(&(struct timespec){0, 1000000L}, NULL);
    for (int i = 0; i < 20; i++)
        cf_catalogue_request_refresh(c);
    assert_true(wait_for(c, REFRESHES_OK, 3, 10));
    nanosleep(&(struct timespec){0, 400000000L}, NULL);
    assert_true(metric(c, REFRESHES_OK) == 3);

    double t0 = cf_clock_mono();
    cf_catalogue_free(c);
    assert_true(cf_clock_mono() - t0 < 1.0);
}

/* Readers acquire and walk views while the background thread refreshes and swaps them. */
typedef struct reader_ctx {
    cf_catalogue *c;
    atomic_int *stop;
    long views;
    char wrong[200]; /* cmocka's failures must come from the test's own thread */
} reader_ctx;

#define READER_WRONG(...)                                                                                    \
    do {                                                                                                     \
        snprintf(r->wrong, sizeof r->wrong, __VA_ARGS__);                                                    \
        cf_catalogue_release(r->c, v);                                                                       \
        return NULL;                                                                                         \
    } while (0)

static void *reader(void *arg)
{
    reader_ctx *r = arg;
    while (!atomic_load(r->stop)) {
        const cf_cat_view *v = cf_catalogue_acquire(r->c);
        for (size_t i = 0; i < v->nchains; i++) {
            const cf_cat_chain *ch = &v->chains[i];
            if (cf_cat_find_chain(v, ch->name) != ch)
                READER_WRONG("chain %s not found by name", ch->name);
            for (size_t j = 0; j < ch->nsnaps; j++) {
                if (cf_cat_find_snapshot(ch, ch->snaps[j].id) != &ch->snaps[j])
                    READER_WRONG("snapshot %s not found by id", ch->snaps[j].id);
                if (j && ch->snaps[j - 1].created < ch->snaps[j].created)
                    READER_WRONG("chain %s is not newest first", ch->name);
                if (strcmp(ch->snaps[j].chain, ch->name) || !ch->snaps[j].height)
                    READER_WRONG("snapshot %s is not whole", ch->snaps[j].id);
            }
        }
        cf_catalogue_release(r->c, v);
        r->views++;
    }
    return NULL;
}

/* Two chains in each repository; i and i - 60 name the same one. */
static const char *chain_for(int i)
{
    static const char *names[] = {"neutron-1", "celestia", "injective-1", "osmosis-1"};
    return names[(i % 2) * 2 + (i % 3 != 0)];
}

static void test_catalogue_readers_while_refreshes_swap(void **state)
{
    fixture *f = *state;
    char ids[120][CF_SNAPSHOT_ID_LEN + 1];
    for (int i = 0; i < 60; i++)
        put_nth(f->probe[i % 2].dir, chain_for(i), i, ids[i]);
    cf_catalogue *c = open_catalogue(f, 2, 0.002, NULL);
    cf_err err;
    assert_int_equal(cf_catalogue_start(c, &err), 0);
    atomic_int stop;
    atomic_init(&stop, 0);
    reader_ctx readers[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        readers[i] = (reader_ctx){.c = c, .stop = &stop};
        assert_int_equal(pthread_create(&t[i], NULL, reader, &readers[i]), 0);
    }
    /* Snapshots come and go, requests come in, while the readers read. */
    for (int i = 60; i < 120; i++) {
        put_nth(f->probe[i % 2].dir, chain_for(i), i, ids[i]);
        char key[80];
        snprintf(key, sizeof key, "%s/%s.json", chain_for(i - 60), ids[i - 60]);
        remove_key(f->probe[i % 2].dir, key);
        cf_catalogue_request_refresh(c);
        nanosleep(&(struct timespec){0, 2000000L}, NULL);
    }
    double ok = metric(c, REFRESHES_OK);
    assert_true(wait_for(c, REFRESHES_OK, ok + 2, 20));
    atomic_store(&stop, 1);
    long views = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (readers[i].wrong[0])
            fail_msg("reader %d: %s", i, readers[i].wrong);
        views += readers[i].views;
    }
    assert_true(views > 0);
    assert_true(metric(c, REFRESHES_OK) > 2);
    assert_true(metric(c, REFRESHES_ERR) == 0);
    const cf_cat_view *v = cf_catalogue_acquire(c);
    size_t total = 0;
    for (size_t i = 0; i < v->nchains; i++)
        total += v->chains[i].nsnaps;
    assert_int_equal(total, 60);
    assert_int_equal(v->nchains, 4);
    assert_non_null(cf_cat_find_snapshot(cf_cat_find_chain(v, chain_for(119)), ids[119]));
    assert_null(cf_cat_find_snapshot(cf_cat_find_chain(v, chain_for(59)), ids[59]));
    cf_catalogue_release(c, v);
    cf_catalogue_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalogue_empty_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_chains_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_reads_real_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_refresh_reads_only_what_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_corrupt_manifest_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_unlistable_repository_keeps_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_large_manifests_read_in_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_unreadable_manifest_tried_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_same_chain_in_two_repositories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_refused_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_requests_coalesce_and_free_is_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_readers_while_refreshes_swap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
