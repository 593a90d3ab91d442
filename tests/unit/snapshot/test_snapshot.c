/* test_snapshot.c - the engine on a directory repository: many snapshots made in one second get
 * ids of their own, and @latest, the listing and prune name the same newest one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/fs.h"
#include "snapshot/snapshot.h"

#define T 1795361400 /* 2026-11-22T15:30:00Z */
/* 4 random hex digits give 65,536 ids per second: 400 draws repeat one about 70% of the time
 * unless create draws again. */
#define MANY 400

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
    cf_clock_set_override(0);
    cf_repo_close(f->repo);
    cf_fs_remove_tree(dir, NULL);
    free(f);
    return 0;
}

typedef struct listed {
    char ids[MANY][CF_SNAPSHOT_ID_LEN + 1];
    size_t n;
} listed;

static int note(void *ctx, const cf_manifest *m)
{
    listed *l = ctx;
    assert_true(l->n < MANY);
    assert_int_equal(m->created, T);
    assert_int_equal(m->created_ns, 0); /* the clock is held still: every one at .000000000 */
    memcpy(l->ids[l->n++], m->id, sizeof l->ids[0]);
    return 0;
}

typedef struct fates {
    char kept[CF_SNAPSHOT_ID_LEN + 1];
    size_t removed;
} fates;

static void fate(void *ctx, const char *id, const char *reasons)
{
    fates *f = ctx;
    if (reasons)
        snprintf(f->kept, sizeof f->kept, "%s", id);
    else
        f->removed++;
}

static void test_one_second_many_snapshots(void **state)
{
    fixture *f = *state;
    cf_clock_set_override(T);
    cf_snapshot_create_opts o = {.source = f->src, .codec = CF_CODEC_NONE, .threads = 1};
    cf_err err;
    char id[CF_SNAPSHOT_ID_LEN + 1];
    for (int i = 0; i < MANY; i++) {
        int rc = cf_snapshot_create(f->repo, "ns", &o, id, NULL, &err);
        if (rc)
            fail_msg("create %d: %s", i, err.msg);
    }
    static listed l;
    assert_int_equal(cf_snapshot_list(f->repo, "ns", note, &l, &err), 0);
    assert_int_equal(l.n, MANY);
    /* All at the same instant: the id decides, and no two are alike. */
    for (size_t i = 1; i < l.n; i++)
        assert_true(strcmp(l.ids[i - 1], l.ids[i]) < 0);
    char latest[CF_SNAPSHOT_ID_LEN + 1];
    assert_int_equal(cf_snapshot_latest(f->repo, "ns", latest, &err), 0);
    assert_string_equal(latest, l.ids[MANY - 1]);
    cf_retention keep_last = {.last = 1};
    fates fa = {"", 0};
    assert_int_equal(cf_snapshot_prune(f->repo, "ns", &keep_last, 86400, 1, fate, &fa, NULL, &err), 0);
    assert_string_equal(fa.kept, latest);
    assert_int_equal(fa.removed, MANY - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_second_many_snapshots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
