/* test_snapshot.c - the engine on a directory repository: snapshots made in one second get ids
 * of their own, and @latest, the listing and prune name the same newest one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/fs.h"
#include "snapshot/order.h"
#include "snapshot/snapshot.h"

#define T 1795361400LL /* 2026-11-22T15:30:00Z */
#define N 6

static char dir[256];

typedef struct fixture {
    cf_repo *repo;
    char src[300];
} fixture;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-test-snapshot-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fixture *f = calloc(1, sizeof *f);
    char repo[300];
    snprintf(repo, sizeof repo, "%s/repo", dir);
    snprintf(f->src, sizeof f->src, "%s/src", dir);
    cf_err err;
    assert_int_equal(cf_fs_mkdirs(f->src, 0700, &err), 0);
    char file[320];
    snprintf(file, sizeof file, "%s/f", f->src);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("one second", fp);
    fclose(fp);
    assert_int_equal(cf_repo_open_dir(repo, &f->repo, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cf_repo_close(f->repo);
    cf_fs_remove_tree(dir, NULL);
    free(f);
    return 0;
}

typedef struct listed {
    cf_snapshot_key keys[N];
    size_t n;
} listed;

static int note(void *ctx, const cf_manifest *m)
{
    listed *l = ctx;
    assert_true(l->n < N);
    cf_snapshot_key *k = &l->keys[l->n++];
    k->created = m->created;
    k->created_ns = m->created_ns;
    memcpy(k->id, m->id, sizeof k->id);
    return 0;
}

typedef struct fates {
    char kept[CF_SNAPSHOT_ID_LEN + 1];
    size_t removed;
} fates;

static void fate(void *ctx, const char *id, const char *reasons)
{
    fates *f = ctx;
    if (reasons && *reasons)
        snprintf(f->kept, sizeof f->kept, "%s", id);
    else
        f->removed++; /* a snapshot (NULL), or an archive without a manifest ("") */
}

static int by_key(const void *a, const void *b)
{
    return cf_snapshot_key_cmp(a, b);
}

/* Every create draws its id from a clock with the same seed, so that each one's first draws are
 * the ids already taken: without a second draw, the second snapshot would overwrite the first.
 * The fractions are not in the order of creation (nor of the ids), and two are the same instant. */
static void test_one_second_many_snapshots(void **state)
{
    fixture *f = *state;
    static const int32_t fraction[N] = {500000000, 100, 999999999, 100, 0, 42};
    char ids[N][CF_SNAPSHOT_ID_LEN + 1];
    cf_err err;
    for (int i = 0; i < N; i++) {
        cf_fixed_clock clock;
        cf_fixed_clock_init(&clock, T * 1000000000 + fraction[i], 7);
        cf_snapshot_create_opts o = {
            .source = f->src, .codec = CF_CODEC_NONE, .threads = 1, .clock = &clock.clock};
        int rc = cf_snapshot_create(f->repo, "ns", &o, ids[i], NULL, &err);
        if (rc)
            fail_msg("create %d: %s", i, err.msg);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    static listed l;
    assert_int_equal(cf_snapshot_list(f->repo, "ns", note, &l, &err), 0);
    assert_int_equal(l.n, N);
    cf_snapshot_key want[N];
    for (int i = 0; i < N; i++) {
        want[i] = (cf_snapshot_key){T, fraction[i], ""};
        memcpy(want[i].id, ids[i], sizeof want[i].id);
    }
    qsort(want, N, sizeof *want, by_key);
    for (int i = 0; i < N; i++) {
        assert_int_equal(l.keys[i].created, T);
        assert_int_equal(l.keys[i].created_ns, want[i].created_ns);
        assert_string_equal(l.keys[i].id, want[i].id);
    }
    char latest[CF_SNAPSHOT_ID_LEN + 1];
    assert_int_equal(cf_snapshot_latest(f->repo, "ns", latest, &err), 0);
    assert_string_equal(latest, ids[2]); /* .999999999 */
    cf_retention keep_last = {.last = 1};
    fates fa = {"", 0};
    assert_int_equal(cf_snapshot_prune(f->repo, "ns", &keep_last, 86400, 0, fate, &fa, NULL, &err), 0);
    assert_string_equal(fa.kept, latest);
    assert_int_equal(fa.removed, N - 1);
    listed after = {0};
    assert_int_equal(cf_snapshot_list(f->repo, "ns", note, &after, &err), 0);
    assert_int_equal(after.n, 1);
    assert_string_equal(after.keys[0].id, latest);
}

static void put_old(const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/repo/ns/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    struct timespec old[2] = {{1600000000, 0}, {1600000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
}

static int exists(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/repo/ns/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* A manifest whose name is no real instant (31 November) has no place in the order, so every
 * command passes it by; prune still counts it as the manifest of its archive and removes
 * neither. An archive without any manifest is removed once past the grace period. */
static void test_names_outside_the_order_are_passed_by(void **state)
{
    fixture *f = *state;
    cf_snapshot_create_opts o = {.source = f->src, .codec = CF_CODEC_NONE, .threads = 1};
    char id[CF_SNAPSHOT_ID_LEN + 1], latest[CF_SNAPSHOT_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_snapshot_create(f->repo, "ns", &o, id, NULL, &err), 0);
    put_old("20261131T000000Z-abcd.json", "{}");
    put_old("20261131T000000Z-abcd.tar", "not ours to judge");
    put_old("20200101T000000Z-dead.tar", "left by an interrupted create");
    assert_int_equal(cf_snapshot_latest(f->repo, "ns", latest, &err), 0);
    assert_string_equal(latest, id);
    listed l = {0};
    assert_int_equal(cf_snapshot_list(f->repo, "ns", note, &l, &err), 0);
    assert_int_equal(l.n, 1);
    cf_retention keep_last = {.last = 1};
    fates fa = {"", 0};
    assert_int_equal(cf_snapshot_prune(f->repo, "ns", &keep_last, 3600, 0, fate, &fa, NULL, &err), 0);
    assert_string_equal(fa.kept, id);
    assert_true(exists("20261131T000000Z-abcd.json") && exists("20261131T000000Z-abcd.tar"));
    assert_false(exists("20200101T000000Z-dead.tar"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_second_many_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_outside_the_order_are_passed_by, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
