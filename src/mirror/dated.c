/*
 * dated.c - coffer mirror --dated (dated.h). The copy engine is cf_mirror_run's; what this file
 * adds is around it: the hard links to the previous night, staging under a hidden name, the
 * publishing rename, and the retention. Linking is a pass of its own before the copy, so that the
 * copy loop knows nothing of links: the linked files are then the same at the destination, and
 * the copy skips them like any file already there.
 */
#include "mirror/dated.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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
#include "core/keep.h"

#define LOCK_NAME ".coffer-dated.lock"
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
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **g = realloc(*v, c * sizeof *g);
        if (!g)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        *v = g;
        *cap = c;
    }
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

/* --- the linking pass --- */

typedef struct file_entry {
    char *key;
    uint64_t size;
    int64_t mtime;
} file_entry;

typedef struct file_list {
    file_entry *v;
    size_t n, cap;
} file_list;

static void file_list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
}

static int collect_entry(void *ctx, const cf_repo_entry *e)
{
    file_list *l = ctx;
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 256;
        file_entry *g = realloc(l->v, c * sizeof *g);
        if (!g)
            return CF_ENOMEM;
        l->v = g;
        l->cap = c;
    }
    if (!(l->v[l->n].key = strdup(e->key)))
        return CF_ENOMEM;
    l->v[l->n].size = e->size;
    l->v[l->n].mtime = e->mtime;
    l->n++;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const file_entry *)a)->key, ((const file_entry *)b)->key);
}

/* The regular files of the directory path (none when path is NULL or absent), sorted by key.
 * Their keys are real paths under path, so they are safe to join to another directory. */
static int list_files(const char *path, file_list *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    cf_repo *r;
    int rc = cf_repo_open_dir(path, &r, err);
    if (rc)
        return rc;
    rc = cf_repo_list(r, "", collect_entry, out, err);
    cf_repo_close(r);
    if (rc) {
        file_list_free(out);
        return rc == CF_ENOMEM ? cf_err_set(err, CF_ENOMEM, "out of memory") : rc;
    }
    qsort(out->v, out->n, sizeof *out->v, entry_cmp);
    return 0;
}

static const file_entry *find_file(const file_list *l, const char *key)
{
    file_entry probe = {.key = (char *)key};
    return l->n ? bsearch(&probe, l->v, l->n, sizeof *l->v, entry_cmp) : NULL;
}

/* The contract's --exclude: fnmatch(3) on the key, FNM_PATHNAME off; "dir/" excludes a subtree. */
static int excluded(const cf_mirror_opts *o, const char *key)
{
    for (size_t i = 0; i < o->nexclude; i++) {
        const char *p = o->exclude[i];
        size_t n = strlen(p);
        if (n && p[n - 1] == '/') {
            char subtree[PATH_MAX];
            if ((size_t)snprintf(subtree, sizeof subtree, "%s*", p) < sizeof subtree &&
                fnmatch(subtree, key, 0) == 0)
                return 1;
        } else if (fnmatch(p, key, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef struct link_pass {
    const cf_mirror_opts *o;
    const char *prev, *partial;
    file_list prev_files, staged;
    cf_mirror_summary *tally;
    int warned;
    cf_err *err;
} link_pass;

/* Makes to a hard link to from: linked under a temporary name beside to, then renamed over it,
 * so that a file already at to is replaced whole and never written into. 1 when linked, 0 when
 * this filesystem cannot link it (the copy will), or a CF_E code. */
static int link_over(link_pass *lp, const char *from, const char *to, cf_err *err)
{
    char parent[PATH_MAX], tmp[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", to);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    int rc = cf_fs_mkdirs(parent, 0755, err);
    if (rc)
        return rc;
    unsigned char rnd[6];
    if (cf_random_bytes(rnd, sizeof rnd))
        return cf_err_set(err, CF_EIO, "no randomness for a temporary name");
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-link-%02x%02x%02x%02x%02x%02x", to, rnd[0], rnd[1], rnd[2],
                         rnd[3], rnd[4], rnd[5]) >= sizeof tmp)
        return 0;
    if (link(from, tmp) != 0) {
        int e = errno;
        if (e == EXDEV || e == EMLINK || e == EPERM || e == ENOTSUP || e == ENAMETOOLONG) {
            if (!lp->warned++)
                cf_log(lp->o->log, CF_LOG_WARN,
                       "dated mirror: cannot hard-link to the previous copy; copying", "file", from, "error",
                       strerror(e), NULL);
            return 0;
        }
        return cf_err_sys(err, cf_err_from_errno(e), e, "cannot link '%s' to '%s'", from, tmp);
    }
    if (rename(tmp, to) != 0) {
        int e = errno;
        unlink(tmp);
        if (e == EISDIR || e == ENOTEMPTY || e == EEXIST)
            return 0; /* a directory stands at the key: the copy reports it */
        return cf_err_sys(err, cf_err_from_errno(e), e, "cannot rename '%s' into place", tmp);
    }
    return 1;
}

static int link_entry(void *ctx, const cf_repo_entry *e)
{
    link_pass *lp = ctx;
    if (e->is_prefix || excluded(lp->o, e->key))
        return 0;
    const file_entry *prev = find_file(&lp->prev_files, e->key);
    const file_entry *staged = find_file(&lp->staged, e->key);
    if (!prev || prev->size != e->size || prev->mtime != e->mtime) {
        if (lp->o->dry_run && staged && staged->size == e->size && staged->mtime == e->mtime) {
            lp->tally->files_skipped++;
            lp->tally->bytes_skipped += e->size;
        } else if (lp->o->dry_run) {
            lp->tally->files_copied++;
            lp->tally->bytes_copied += e->size;
        }
        return 0;
    }
    char from[PATH_MAX], to[PATH_MAX];
    if ((size_t)snprintf(from, sizeof from, "%s/%s", lp->prev, e->key) >= sizeof from ||
        (size_t)snprintf(to, sizeof to, "%s/%s", lp->partial, e->key) >= sizeof to)
        return 0; /* too long to link here: the copy reports it */
    struct stat ps, ts;
    if (lstat(from, &ps) != 0 || !S_ISREG(ps.st_mode))
        return 0;
    int linked = lstat(to, &ts) == 0 && ts.st_ino == ps.st_ino && ts.st_dev == ps.st_dev;
    if (!linked && !lp->o->dry_run) {
        int rc = link_over(lp, from, to, lp->err);
        if (rc < 0)
            return rc;
        linked = rc;
    }
    if (linked || lp->o->dry_run) { /* a dry run assumes the link would be made */
        lp->tally->files_linked++;
        lp->tally->bytes_linked += e->size;
    }
    return 0;
}

int cf_dated_link_unchanged(cf_repo *src, const char *prev, const char *partial, const cf_mirror_opts *o,
                            cf_mirror_summary *tally, cf_err *err)
{
    link_pass lp = {.o = o, .prev = prev, .partial = partial, .tally = tally, .err = err};
    cf_err_clear(err);
    int rc = list_files(prev, &lp.prev_files, err);
    if (!rc && o->dry_run)
        rc = list_files(partial, &lp.staged, err);
    if (!rc && (lp.prev_files.n || o->dry_run)) {
        rc = cf_repo_list(src, "", link_entry, &lp, err);
        if (rc == CF_ENOMEM && !err->code)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    file_list_free(&lp.prev_files);
    file_list_free(&lp.staged);
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
    char partial[PATH_MAX], final[PATH_MAX], aside[PATH_MAX];
    int rc = join(partial, dir, ".", name, PARTIAL_SUFFIX, err);
    if (!rc)
        rc = join(final, dir, "", name, "", err);
    if (!rc)
        rc = join(aside, dir, ".", name, ASIDE_SUFFIX, err);
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
    if (dry_run && !bsearch(&tonight, copies, n, sizeof *copies, name_cmp) &&
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

/* Takes the lock of dir, so that two runs never stage or publish in one directory at once. A
 * filesystem without locks (some NFS mounts) is run without one, with a warning. */
static int lock_dir(const char *dir, const cf_logger *log, int *fd, cf_err *err)
{
    char path[PATH_MAX];
    int rc = join(path, dir, "", LOCK_NAME, "", err);
    if (rc)
        return rc;
    *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open '%s'", path);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int e = errno;
    if (e == EWOULDBLOCK) {
        close(*fd);
        *fd = -1;
        return cf_err_set(err, CF_EAGAIN, "another coffer mirror --dated is running in '%s'", dir);
    }
    cf_log(log, CF_LOG_WARN, "dated mirror: cannot lock the directory; running unlocked", "path", path,
           "error", strerror(e), NULL);
    return 0;
}

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
    cf_mirror_summary links = {0};
    if (!rc)
        rc = cf_dated_link_unchanged(src->repo, prev_name ? prev : NULL, partial, o, &links, err);
    cf_dated_names_free(copies, ncopies);
    if (rc)
        return rc;
    if (o->dry_run) {
        *out = links;
        return 0;
    }
    cf_repo *staging;
    if ((rc = cf_repo_open_dir(partial, &staging, err)))
        return rc;
    cf_mirror_side dst = {.repo = staging, .url = partial, .dir = partial};
    cf_mirror_opts copy = *o;
    copy.delete_extra = 1; /* the staging directory becomes exactly tonight's tree */
    copy.link_dest = NULL;
    rc = cf_mirror_run(src, &dst, &copy, out, err);
    cf_repo_close(staging);
    /* The copy found the linked files the same and skipped them: they are links, not skips. */
    uint64_t files = links.files_linked < out->files_skipped ? links.files_linked : out->files_skipped;
    uint64_t bytes = links.bytes_linked < out->bytes_skipped ? links.bytes_linked : out->bytes_skipped;
    out->files_skipped -= files;
    out->bytes_skipped -= bytes;
    out->files_linked += files;
    out->bytes_linked += bytes;
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
    if (!rc && !o->dry_run && (rc = cf_fs_mkdirs(partial, 0755, err)) == 0) {
        /* The links and the directories made beside the copy's files reach the disk before the
         * rename that makes them a copy. */
        int fd = open(partial, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            syncfs(fd);
            close(fd);
        }
        rc = cf_dated_publish(dir, name, o->log, err);
    }
    if (!rc)
        rc = apply_retention(dir, name, d, o->dry_run, removed, nremoved, err);
    if (lock >= 0)
        close(lock);
    out->seconds = cf_clock_mono() - started;
    return rc;
}
