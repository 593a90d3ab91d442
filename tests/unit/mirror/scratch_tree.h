/* scratch_tree.h - a scratch directory per test, and files laid out in it with given bytes and
 * mtimes: what the mirror's tests of directory sides and dated copies build their trees with.
 * Included by one test file each (static functions). */
#ifndef CF_TEST_MIRROR_SCRATCH_TREE_H
#define CF_TEST_MIRROR_SCRATCH_TREE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/coffer-test-mirror-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_fs_remove_tree(root, NULL);
    return 0;
}

/* rel under the scratch directory; the last eight results stay valid. */
static const char *at(const char *rel)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", root, rel);
    return p;
}

/* Writes rel under root with the given bytes and mtime, making its directories. */
static void file(const char *rel, const char *bytes, int64_t mtime)
{
    const char *path = at(rel);
    char parent[512];
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    assert_int_equal(cf_fs_mkdirs(parent, 0755, NULL), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(bytes, f);
    fclose(f);
    struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static char *slurp(const char *rel)
{
    char *s = NULL;
    size_t n;
    assert_int_equal(cf_fs_read_small(at(rel), 1 << 20, &s, &n, NULL), 0);
    return s;
}

#endif
