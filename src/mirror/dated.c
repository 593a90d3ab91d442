/*
 * dated.c - coffer mirror --dated (dated.h). The copying, and the hard links to the previous
 * night, are cf_mirror_run's (link_dest: the copy loop already has the plan, the excludes and
 * the workers, so a link is one more way to make a file, beside a server-side copy and a
 * stream); what this file adds is around it: which copy to link to, staging under a hidden name,
 * the reuse of what a failed run staged, the publishing rename, and the retention.
 */
#include "mirror/dated.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/grow.h"
#include "core/keep.h"

#define PARTIAL_SUFFIX ".partial"
#define ASIDE_SUFFIX ".old"

void cf_dated_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int cf_dated_parse(const char *name, int64_t *day)
{
    int y, m, d;
    if (!name || strlen(name) != 10 || name[4] != '-' || name[7] != '-' || !digits(name, 4, &y) ||
        !digits(name + 5, 2, &m) || !digits(name + 8, 2, &d))
        return CF_EINVAL;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1] + (m == 2 && leap))
        return CF_EINVAL;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    *day = (int64_t)timegm(&tm);
    return 0;
}

int cf_dated_name(const cf_dated_opts *d, int64_t now, char out[CF_DATED_NAME_LEN], cf_err *err)
{
    int64_t day;
    if (d->as_of) {
        if (cf_dated_parse(d->as_of, &day))
            return cf_err_set(err, CF_EINVAL,
                              "--as-of '%.40s' is not a calendar date written YYYY-MM-DD (1970 to 9999)",
                              d->as_of);
        memcpy(out, d->as_of, CF_DATED_NAME_LEN);
        return 0;
    }
    time_t t = (time_t)now;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, CF_DATED_NAME_LEN, "%Y-%m-%d", &tm) != 10)
        return cf_err_set(err, CF_EINVAL, "the clock's date cannot name a dated copy");
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cf_dated_retain(const cf_dated_opts *d, const char *keep_name, const char *const *names, size_t n,
                    int *keep, cf_err *err)
{
    cf_retention policy = {.daily = d->keep_daily, .weekly = d->keep_weekly, .monthly = d->keep_monthly};
    for (size_t i = 0; i < n; i++)
        keep[i] = 1;
    if (!cf_keep_has_rule(&policy) || !n)
        return 0;
    /* The rules want the copies newest first; a name sorts as its date does. */
    const char **order = malloc(n * sizeof *order);
    int64_t *times = malloc(n * sizeof *times);
    unsigned *kept_by = malloc(n * sizeof *kept_by);
    int rc = 0;
    if (!order || !times || !kept_by) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(order, names, n * sizeof *order);
    qsort(order, n, sizeof *order, name_cmp);
    for (size_t i = 0; i < n; i++) {
        const char *newest_first = order[n - 1 - i];
        if (cf_dated_parse(newest_first, &times[i])) {
            rc = cf_err_set(err, CF_EINVAL, "'%.40s' is not a dated copy's name", newest_first);
            goto out;
        }
    }
    cf_keep_select(&policy, times, n, kept_by);
    for (size_t i = 0; i < n; i++) {
        size_t rank = 0;
        while (strcmp(order[n - 1 - rank], names[i]) != 0)
            rank++;
        keep[i] = kept_by[rank] != 0 || (keep_name && strcmp(names[i], keep_name) == 0);
    }
out:
    free(order);
    free(times);
    free(kept_by);
    return rc;
}

/* Grows a vector of names by one copy of name. */
static int push_name(char ***v, size_t *n, size_t *cap, const char *name, cf_err *err)
{
    char **g = cf_grow(*v, cap, *n, sizeof *g, 16);
    if (!g)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    *v = g;
    if (!((*v)[*n] = strdup(name)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    (*n)++;
    return 0;
}

/* Whether dir/name is a directory itself (not a symbolic link to one). */
static int is_real_dir(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* The dates of the directories in dir named DATE (hidden NULL: the dated copies) or .DATE<hidden>
 * (".partial": staging directories; ".old": copies set aside), sorted. */
static int list_names(const char *dir, const char *hidden, char ***names, size_t *n, cf_err *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0
                               : cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot list '%s'", dir);
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char date[CF_DATED_NAME_LEN];
        int64_t day;
        if (hidden) {
            size_t len = strlen(e->d_name);
            if (len != 1 + 10 + strlen(hidden) || e->d_name[0] != '.' || strcmp(e->d_name + 11, hidden) != 0)
                continue;
            memcpy(date, e->d_name + 1, 10);
            date[10] = '\0';
        } else if (strlen(e->d_name) == 10) {
            memcpy(date, e->d_name, CF_DATED_NAME_LEN);
        } else {
            continue;
        }
        if (cf_dated_parse(date, &day) == 0 && is_real_dir(dirfd(d), e->d_name))
            rc = push_name(names, n, &cap, date, err);
    }
    closedir(d);
    if (rc) {
        cf_dated_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*names, *n, sizeof **names, name_cmp);
    return 0;
}

int cf_dated_list(const char *dir, char ***names, size_t *n, cf_err *err)
{
    return list_names(dir, NULL, names, n, err);
}

static int remove_tree_at(int parent, const char *name, cf_err *err)
{
    /* O_NOFOLLOW: a symbolic link (even one swapped in meanwhile) is never entered, only unlinked. */
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR && errno != ELOOP)
            return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open '%s' to remove it", name);
        if (unlinkat(parent, name, 0) != 0 && errno != ENOENT)
            return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot remove '%s'", name);
        return 0;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot list '%s' to remove it", name);
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
            rc = remove_tree_at(dirfd(d), e->d_name, err);
        else if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
            rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot remove '%s'", e->d_name);
    }
    closedir(d);
    if (!rc && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot remove directory '%s'", name);
    return rc;
}

int cf_dated_remove_tree(const char *dir, const char *name, cf_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open '%s'", dir);
    int rc = remove_tree_at(fd, name, err);
    close(fd);
    return rc;
}

/* --- publishing --- */

static int join(char *out, const char *dir, const char *prefix, const char *name, const char *suffix,
                cf_err *err)
{
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s%s%s", dir, prefix, name, suffix) >= PATH_MAX)
        return cf_err_set(err, CF_ETOOBIG, "path '%s/%s%s%s' is too long", dir, prefix, name, suffix);
    return 0;
}

static int exists_at(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int cf_dated_publish(const char *dir, const char *name, const cf_logger *log, cf_err *err)
{
    char partial[PATH_MAX], final[PATH_MAX];
    int rc = join(partial, dir, ".", name, PARTIAL_SUFFIX, err);
    if (!rc)
        rc = join(final, dir, "", name, "", err);
    if (rc)
        return rc;
    if (!exists_at(final)) {
        if (rename(partial, final) != 0)
            return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot publish '%s' as '%s'", partial,
                              final);
        return cf_fs_fsync_dir(dir, err);
    }
    /* Tonight's copy exists (a second run the same night): one exchange where the filesystem can,
     * so that DIR/NAME is at every instant either the old copy or the new one. */
    if (renameat2(AT_FDCWD, partial, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
        if ((rc = cf_fs_fsync_dir(dir, err)))
            return rc;
        /* The old copy now has the partial's name: removing it can fail or be cut short safely,
         * as the next run reuses whatever a partial directory holds. */
        return cf_dated_remove_tree(dir, partial + strlen(dir) + 1, err);
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot exchange '%s' and '%s'", partial,
                          final);
    cf_log(log, CF_LOG_DEBUG, "dated mirror: no atomic exchange here; the old copy is set aside first",
           "path", final, NULL);
    return cf_dated_publish_in_steps(dir, name, log, err);
}

int cf_dated_publish_in_steps(const char *dir, const char *name, const cf_logger *log, cf_err *err)
{
    char partial[PATH_MAX], final[PATH_MAX], aside[PATH_MAX];
    int rc = join(partial, dir, ".", name, PARTIAL_SUFFIX, err);
    if (!rc)
        rc = join(final, dir, "", name, "", err);
    if (!rc)
        rc = join(aside, dir, ".", name, ASIDE_SUFFIX, err);
    if (rc)
        return rc;
    if ((rc = cf_dated_remove_tree(dir, aside + strlen(dir) + 1, err)))
        return rc;
    if (rename(final, aside) != 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot set '%s' aside", final);
    if (rename(partial, final) != 0) {
        int e = errno;
        if (rename(aside, final) != 0)
            cf_log(log, CF_LOG_ERROR, "dated mirror: the previous copy stays aside", "path", aside, NULL);
        return cf_err_sys(err, cf_err_from_errno(e), e, "cannot publish '%s' as '%s'", partial, final);
    }
    if ((rc = cf_fs_fsync_dir(dir, err)))
        return rc;
    return cf_dated_remove_tree(dir, aside + strlen(dir) + 1, err);
}

/* A copy set aside by a publish that did not finish goes back, or, when its replacement made it,
 * goes. */
static int restore_aside(const char *dir, const char *name, const cf_logger *log, cf_err *err)
{
    char final[PATH_MAX], aside[PATH_MAX];
    int rc = join(final, dir, "", name, "", err);
    if (!rc)
        rc = join(aside, dir, ".", name, ASIDE_SUFFIX, err);
    if (rc)
        return rc;
    if (exists_at(final))
        return cf_dated_remove_tree(dir, aside + strlen(dir) + 1, err);
    cf_log(log, CF_LOG_WARN, "dated mirror: restoring a copy an interrupted run set aside", "path", final,
           NULL);
    if (rename(aside, final) != 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot restore '%s'", aside);
    return 0;
}

/* What a crash left of earlier runs, made usable before tonight's: the copies set aside
 * (restore_aside); and when tonight has no staging directory, the newest earlier night's (a
 * failed run's) becomes it, so that what that run copied is not copied again. */
static int recover(const char *dir, const char *name, const char *partial, const cf_logger *log, cf_err *err)
{
    char **set_aside;
    size_t n;
    int rc = list_names(dir, ASIDE_SUFFIX, &set_aside, &n, err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = restore_aside(dir, set_aside[i], log, err);
    cf_dated_names_free(set_aside, n);
    if (rc || exists_at(partial))
        return rc;
    char **staged;
    if ((rc = list_names(dir, PARTIAL_SUFFIX, &staged, &n, err)))
        return rc;
    const char *adopt = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(staged[i], name) < 0)
            adopt = staged[i];
    if (adopt) {
        char from[PATH_MAX];
        if (!(rc = join(from, dir, ".", adopt, PARTIAL_SUFFIX, err))) {
            cf_log(log, CF_LOG_INFO, "dated mirror: reusing a failed night's files", "from", from, NULL);
            if (rename(from, partial) != 0)
                rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot reuse '%s'", from);
        }
    }
    cf_dated_names_free(staged, n);
    return rc;
}

/* The newest copy dated before name, or NULL. */
static const char *previous_copy(char *const *copies, size_t n, const char *name)
{
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(copies[i], name) < 0)
            prev = copies[i];
    return prev;
}

/* The retention over the copies in dir; tonight's (name) is never removed. */
static int apply_retention(const char *dir, const char *name, const cf_dated_opts *d, int dry_run,
                           char ***removed, size_t *nremoved, cf_err *err)
{
    char **copies;
    size_t n, cap;
    int rc = cf_dated_list(dir, &copies, &n, err);
    if (rc)
        return rc;
    const char *tonight = name;
    cap = n; /* the next push reallocates */
    if (dry_run && !(n && bsearch(&tonight, copies, n, sizeof *copies, name_cmp)) &&
        (rc = push_name(&copies, &n, &cap, name, err)) == 0) /* as if published */
        qsort(copies, n, sizeof *copies, name_cmp);
    int *keep = rc ? NULL : malloc((n ? n : 1) * sizeof *keep);
    if (!rc && !keep)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (!rc)
        rc = cf_dated_retain(d, name, (const char *const *)copies, n, keep, err);
    size_t removed_cap = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (keep[i])
            continue;
        if (!dry_run)
            rc = cf_dated_remove_tree(dir, copies[i], err);
        if (!rc)
            rc = push_name(removed, nremoved, &removed_cap, copies[i], err);
    }
    free(keep);
    cf_dated_names_free(copies, n);
    return rc;
}

/* Takes the lock of dir (flock on the directory itself, as the copy locks its destination: no
 * file of ours in DIR), so that two runs never stage or publish in one directory at once. A
 * filesystem without locks (some NFS mounts) is run without one, with a warning. */
static int lock_dir(const char *dir, const cf_logger *log, int *fd, cf_err *err)
{
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open '%s'", dir);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int e = errno;
    if (e == EWOULDBLOCK) {
        close(*fd);
        *fd = -1;
        return cf_err_set(err, CF_EAGAIN, "another coffer mirror --dated is running in '%s'", dir);
    }
    cf_log(log, CF_LOG_WARN, "dated mirror: cannot lock the directory; running unlocked", "path", dir,
           "error", strerror(e), NULL);
    return 0;
}

/* Fills the staging directory with tonight's tree: the copy, with links to the newest earlier
 * copy, and without what the staging directory holds beyond the source. */
static int stage(const cf_mirror_side *src, const char *dir, const char *name, const char *partial,
                 const cf_mirror_opts *o, cf_mirror_summary *out, cf_err *err)
{
    char **copies;
    size_t ncopies;
    int rc = cf_dated_list(dir, &copies, &ncopies, err);
    if (rc)
        return rc;
    const char *prev_name = previous_copy(copies, ncopies, name);
    char prev[PATH_MAX];
    if (prev_name && (rc = join(prev, dir, "", prev_name, "", err)) == 0)
        cf_log(o->log, CF_LOG_INFO, "dated mirror: linking files unchanged since", "copy", prev, NULL);
    cf_dated_names_free(copies, ncopies);
    cf_repo *staging = NULL;
    /* A dry run plans against tonight's staging directory as it is (what it holds counts as
     * done; a missing one lists empty) and makes nothing. */
    if (!rc && o->dry_run)
        rc = cf_repo_open_dir_as_is(partial, &staging, err);
    else if (!rc && (rc = cf_fs_mkdirs(partial, 0755, err)) == 0) /* a copy is as readable as DIR's files */
        rc = cf_repo_open_dir(partial, &staging, err);
    if (!rc) {
        cf_mirror_side dst = {.repo = staging, .url = partial, .dir = partial};
        cf_mirror_opts copy = *o;
        copy.delete_extra = 1; /* the staging directory becomes exactly tonight's tree */
        copy.link_dest = prev_name ? prev : NULL;
        rc = cf_mirror_run(src, &dst, &copy, out, err);
        /* Whatever the copy left to one sync reaches the disk before the rename that makes it a
         * copy. */
        if (!rc && !o->dry_run && !out->files_failed)
            rc = cf_repo_sync(staging, err);
        cf_repo_close(staging);
    }
    return rc;
}

int cf_mirror_dated(const cf_mirror_side *src, const char *dir, const cf_mirror_opts *o,
                    const cf_dated_opts *d, cf_mirror_summary *out, char ***removed, size_t *nremoved,
                    cf_err *err)
{
    double started = cf_clock_mono();
    memset(out, 0, sizeof *out);
    *removed = NULL;
    *nremoved = 0;
    char name[CF_DATED_NAME_LEN], partial[PATH_MAX], final[PATH_MAX];
    int rc = cf_dated_name(d, (int64_t)cf_clock_now(), name, err);
    if (rc)
        return rc;
    if (o->delete_extra)
        return cf_err_set(err, CF_EINVAL, "--dated makes whole copies: --delete does not apply to it");
    if (o->link_dest)
        return cf_err_set(err, CF_EINVAL,
                          "--dated chooses the copy to link to itself: link_dest must be NULL");
    if (d->keep_daily < 0 || d->keep_weekly < 0 || d->keep_monthly < 0)
        return cf_err_set(err, CF_EINVAL,
                          "--keep-daily, --keep-weekly and --keep-monthly cannot be negative");
    if ((rc = join(partial, dir, ".", name, PARTIAL_SUFFIX, err)) ||
        (rc = join(final, dir, "", name, "", err)))
        return rc;
    struct stat st;
    if (lstat(final, &st) == 0 && !S_ISDIR(st.st_mode))
        return cf_err_set(err, CF_EEXISTS, "'%s' exists and is not a dated copy: it is left alone", final);
    int lock = -1;
    if (!o->dry_run && !(rc = cf_fs_mkdirs(dir, 0755, err)) && !(rc = lock_dir(dir, o->log, &lock, err)))
        rc = recover(dir, name, partial, o->log, err);
    if (!rc)
        rc = stage(src, dir, name, partial, o, out, err);
    if (!rc && out->files_failed)
        rc = cf_err_set(err, CF_EIO,
                        "%llu file(s) failed: '%s' is not published; the next run resumes from '%s'",
                        (unsigned long long)out->files_failed, final, partial);
    if (!rc && !o->dry_run)
        rc = cf_dated_publish(dir, name, o->log, err);
    if (!rc)
        rc = apply_retention(dir, name, d, o->dry_run, removed, nremoved, err);
    if (lock >= 0)
        close(lock);
    out->seconds = cf_clock_mono() - started;
    return rc;
}
