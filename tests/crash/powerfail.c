/*
 * powerfail.c - an LD_PRELOAD layer that lets a test lose power, not just the process.
 *
 * kill -9 keeps the page cache: every write the process made survives it, synced or not, so a
 * missing fsync never shows. This layer keeps, beside the real data directory, a shadow of what
 * a power cut would leave of it, and can kill the process at the Nth file-system call it sees;
 * recover() in tests/integration/helpers_powerloss.py then rebuilds the directory from the
 * shadow alone.
 *
 * The model (docs/internals/store.md, "Power-loss testing"):
 *   - a file's bytes and size are durable as they were at the last fsync/fdatasync/syncfs/sync
 *     that returned, or msync of a shared mapping of it; a write through a descriptor opened
 *     O_DSYNC or O_SYNC (LMDB's meta page) is durable for the range it wrote once it returns;
 *   - a directory's names are durable as they were at the last fsync of the directory (or
 *     syncfs/sync): a rename, unlink, link, mkdir or create is lost until then;
 *   - content belongs to the inode, not to the name: a file synced in tmp/ and renamed keeps its
 *     synced bytes under its new name once that directory is synced;
 *   - everything in the directory when the process starts is durable (the baseline);
 *   - a file named durably whose inode was never synced comes back empty.
 * With POWERFAIL_MODEL=eager-names, every change of a name is durable at once instead (a file
 * system journaling metadata in order): a rename before the bytes' fsync then shows.
 * Not modelled: torn or reordered writes inside one sync interval (unsynced writes vanish
 * whole), partial survival of unsynced data, names kept out of order, extended attributes and
 * modes.
 *
 * Shadow layout (POWERFAIL_SHADOW):
 *   root            "<ino>.<gen>" of the data directory
 *   files/<ino>.<gen>  durable bytes of a regular file (absent: nothing durable, empty)
 *   dirs/<ino>.<gen>   durable entries of a directory: records "<type> <mode> <ino>.<gen> <name>\0"
 * <gen> tells apart inodes whose number the file system reused after an unlink: 0 for what was
 * there at the start, a fresh number for every file or directory created since.
 *
 * Environment: POWERFAIL_ROOT (the directory to watch; nothing is done without it),
 * POWERFAIL_SHADOW, POWERFAIL_LOG (one line per counted call: "<n> <kind> <path>"),
 * POWERFAIL_CTL (a file holding the number of the call to crash at, and optionally its kind,
 * read at each call, so a test can arm the crash once the server is up), POWERFAIL_MODEL
 * ("eager-names": every change of a name is durable at once, as on a file system journaling
 * metadata in order; bytes still only when synced).
 *
 * A preloaded library has no caller to hand its state to: the state below is the process's by
 * nature, guarded by one mutex.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define FD_SLOTS 65536
#define FD_TRACKED 1u
#define FD_DSYNC 2u
#define GEN_SLOTS 65536

typedef struct gen_slot {
    uint64_t dev, ino, gen; /* gen 0: empty slot */
} gen_slot;

static struct {
    pthread_mutex_t mu;
    int on;
    int eager_names; /* POWERFAIL_MODEL=eager-names */
    char root[PATH_MAX];
    size_t rootlen;
    char shadow[PATH_MAX];
    char ctl[PATH_MAX];
    int log_fd;
    unsigned long count;
    uint64_t next_gen;
    unsigned char fd_flags[FD_SLOTS];
    gen_slot gens[GEN_SLOTS];
} pf = {.mu = PTHREAD_MUTEX_INITIALIZER, .log_fd = -1};

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...)                                                                         \
    static ret (*real_##name)(__VA_ARGS__);                                                                  \
    static void resolve_##name(void)                                                                         \
    {                                                                                                        \
        if (!real_##name)                                                                                    \
            *(void **)&real_##name = dlsym(RTLD_NEXT, #name);                                                \
    }

DECLARE_REAL(int, openat, int, const char *, int, ...)
DECLARE_REAL(int, close, int)
DECLARE_REAL(ssize_t, write, int, const void *, size_t)
DECLARE_REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
DECLARE_REAL(ssize_t, writev, int, const struct iovec *, int)
DECLARE_REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
DECLARE_REAL(int, ftruncate, int, off_t)
DECLARE_REAL(int, fallocate, int, int, off_t, off_t)
DECLARE_REAL(ssize_t, copy_file_range, int, off_t *, int, off_t *, size_t, unsigned)
DECLARE_REAL(int, fsync, int)
DECLARE_REAL(int, fdatasync, int)
DECLARE_REAL(int, sync_file_range, int, off_t, off_t, unsigned)
DECLARE_REAL(int, syncfs, int)
DECLARE_REAL(void, sync, void)
DECLARE_REAL(int, msync, void *, size_t, int)
DECLARE_REAL(int, rename, const char *, const char *)
DECLARE_REAL(int, renameat, int, const char *, int, const char *)
DECLARE_REAL(int, renameat2, int, const char *, int, const char *, unsigned)
DECLARE_REAL(int, unlink, const char *)
DECLARE_REAL(int, unlinkat, int, const char *, int)
DECLARE_REAL(int, rmdir, const char *)
DECLARE_REAL(int, mkdir, const char *, mode_t)
DECLARE_REAL(int, mkdirat, int, const char *, mode_t)
DECLARE_REAL(int, link, const char *, const char *)
DECLARE_REAL(int, linkat, int, const char *, int, const char *, int)

/* glibc's checked forms of open (_FORTIFY_SOURCE); its headers declare them only then. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);

/* ---- inode generations ---- */

static gen_slot *gen_find(uint64_t dev, uint64_t ino, int insert)
{
    size_t h = (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) % GEN_SLOTS;
    for (size_t i = 0; i < GEN_SLOTS; i++) {
        gen_slot *s = &pf.gens[(h + i) % GEN_SLOTS];
        if (s->gen && s->dev == dev && s->ino == ino)
            return s;
        if (!s->gen)
            return insert ? s : NULL;
    }
    return NULL;
}

static uint64_t gen_of(const struct stat *st)
{
    gen_slot *s = gen_find(st->st_dev, st->st_ino, 0);
    return s ? s->gen : 0;
}

/* A new inode: whatever the shadow holds under its number belongs to a file since unlinked. */
static void gen_new(const struct stat *st)
{
    gen_slot *s = gen_find(st->st_dev, st->st_ino, 1);
    if (!s)
        return;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->gen = pf.next_gen++;
}

static void ref_name(const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%llu.%llu", (unsigned long long)st->st_ino, (unsigned long long)gen_of(st));
}

/* ---- helpers on the real calls ---- */

static void die(const char *what)
{
    char msg[PATH_MAX + 64];
    int n = snprintf(msg, sizeof msg, "powerfail: %s: %s\n", what, strerror(errno));
    resolve_write();
    if (n > 0)
        (void)real_write(2, msg, (size_t)n);
    abort();
}

static int under_root(const char *abs)
{
    return pf.on && strncmp(abs, pf.root, pf.rootlen) == 0 && (abs[pf.rootlen] == '/' || !abs[pf.rootlen]);
}

static int fd_path(int fd, char *out, size_t n)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, out, n - 1);
    if (len < 0)
        return -1;
    out[len] = '\0';
    return 0;
}

/* The absolute form of a path given relative to dirfd, without resolving links. */
static void abs_path(int dirfd, const char *path, char *out, size_t n)
{
    char base[PATH_MAX];
    if (path[0] == '/') {
        snprintf(out, n, "%s", path);
        return;
    }
    if (dirfd == AT_FDCWD ? !getcwd(base, sizeof base) : fd_path(dirfd, base, sizeof base) != 0)
        base[0] = '\0';
    snprintf(out, n, "%s/%s", base, path);
}

static int shadow_open(const char *kind, const char *ref, int flags)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s/%s", pf.shadow, kind, ref);
    resolve_openat();
    return real_openat(AT_FDCWD, p, flags, 0600);
}

static void shadow_commit(const char *kind, const char *ref)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/%s/%s.new", pf.shadow, kind, ref);
    snprintf(to, sizeof to, "%s/%s/%s", pf.shadow, kind, ref);
    resolve_rename();
    if (real_rename(from, to) != 0)
        die("cannot replace a shadow file");
}

static void write_all(int fd, const void *p, size_t n)
{
    resolve_write();
    while (n) {
        ssize_t w = real_write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("cannot write to the shadow");
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Opens the next version of st's shadow (kind "files" or "dirs"), committed by shadow_commit;
 * with fd given, *path becomes its name under /proc (proc holds it). */
static int shadow_begin(const char *kind, int fd, const char **path, const struct stat *st, char ref[64],
                        char proc[64])
{
    char newref[80];
    ref_name(st, ref, 64);
    snprintf(newref, sizeof newref, "%s.new", ref);
    if (fd >= 0) {
        snprintf(proc, 64, "/proc/self/fd/%d", fd);
        *path = proc;
    }
    int out = shadow_open(kind, newref, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    if (out < 0)
        die("cannot create a shadow file");
    return out;
}

/* The file's current bytes become its durable bytes. fd: an open descriptor of it, or -1. */
static void snapshot_file(int fd, const char *path, const struct stat *st)
{
    char ref[64], proc[64];
    int out = shadow_begin("files", fd, &path, st, ref, proc);
    resolve_openat();
    resolve_close();
    int in = real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        real_close(out);
        return; /* gone meanwhile: nothing of it can matter */
    }
    char buf[1 << 16];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        write_all(out, buf, (size_t)r);
    real_close(in);
    real_close(out);
    shadow_commit("files", ref);
}

/* The directory's current entries become its durable entries. */
static void snapshot_dir(int fd, const char *path, const struct stat *st)
{
    char ref[64], proc[64];
    int out = shadow_begin("dirs", fd, &path, st, ref, proc);
    resolve_close();
    DIR *d = opendir(path);
    if (!d) {
        real_close(out);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat est;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), e->d_name, &est, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        char kind = S_ISDIR(est.st_mode) ? 'd' : S_ISREG(est.st_mode) ? 'f' : 'o';
        char eref[64], rec[PATH_MAX + 128];
        ref_name(&est, eref, sizeof eref);
        int n =
            snprintf(rec, sizeof rec, "%c %o %s %s", kind, (unsigned)(est.st_mode & 07777), eref, e->d_name);
        write_all(out, rec, (size_t)n + 1);
    }
    closedir(d);
    real_close(out);
    shadow_commit("dirs", ref);
}

/* Everything under path is durable now (the baseline, syncfs, sync). */
static void snapshot_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISREG(st.st_mode)) {
        snapshot_file(-1, path, &st);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    snapshot_dir(-1, path, &st);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        snapshot_tree(child);
    }
    if (d)
        closedir(d);
}

/* ---- crash points ---- */

/* Whether the call numbered pf.count, of this kind, is the one to crash at. The control file
 * holds "<n>" (that call) or "<n> <kind>" (the first call of that kind from n on: threads may
 * shift a kind by a few places from one run to the next). */
static int crash_here(const char *kind)
{
    if (!pf.ctl[0])
        return 0;
    resolve_openat();
    resolve_close();
    int fd = real_openat(AT_FDCWD, pf.ctl, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    real_close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *rest;
    unsigned long at = strtoul(buf, &rest, 10);
    rest += strspn(rest, " ");
    rest[strcspn(rest, " \n")] = '\0';
    if (!*rest)
        return pf.count == at;
    return pf.count >= at && !strcmp(rest, kind);
}

static void log_line(const char *what, const char *kind, const char *path)
{
    if (pf.log_fd < 0)
        return;
    char line[PATH_MAX + 96];
    int n = snprintf(line, sizeof line, "%s%lu %s %s\n", what, pf.count, kind, path);
    if (n > 0)
        write_all(pf.log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* One call that may change what a power cut leaves: counted, logged, and maybe the last. */
static void crash_point(const char *kind, const char *path)
{
    pthread_mutex_lock(&pf.mu);
    pf.count++;
    log_line("", kind, path);
    if (crash_here(kind)) {
        log_line("crash ", kind, path);
        kill(getpid(), SIGKILL);
        for (;;)
            pause();
    }
    pthread_mutex_unlock(&pf.mu);
}

static unsigned fd_flags_of(int fd)
{
    return pf.on && fd >= 0 && fd < FD_SLOTS ? pf.fd_flags[fd] : 0;
}

static void path_point(const char *kind, int dirfd, const char *path)
{
    char abs[PATH_MAX];
    if (!pf.on || !path)
        return;
    abs_path(dirfd, path, abs, sizeof abs);
    if (under_root(abs))
        crash_point(kind, abs);
}

/* After a successful rename, unlink, create, mkdir or link: in the eager-names model the
 * directory holding path is durable at once (a journaling file system that commits metadata in
 * order but file data only when synced), so a name can outlive the bytes it was given. */
static int names_changed(int r, int dirfd, const char *path)
{
    char abs[PATH_MAX];
    struct stat st;
    if (r != 0 || !pf.eager_names || !path)
        return r;
    abs_path(dirfd, path, abs, sizeof abs);
    char *slash = strrchr(abs, '/');
    if (!slash || slash == abs)
        return r;
    *slash = '\0';
    if (under_root(abs) && lstat(abs, &st) == 0 && S_ISDIR(st.st_mode)) {
        pthread_mutex_lock(&pf.mu);
        snapshot_dir(-1, abs, &st);
        pthread_mutex_unlock(&pf.mu);
    }
    return r;
}

/* Counts a call on fd when it is a file under the root; 1 if it is. */
static int fd_point(const char *kind, int fd)
{
    if (!(fd_flags_of(fd) & FD_TRACKED))
        return 0;
    char p[PATH_MAX];
    if (fd_path(fd, p, sizeof p) != 0)
        p[0] = '\0';
    crash_point(kind, p);
    return 1;
}

/* After a write of n bytes at off through an O_DSYNC descriptor: that range is durable. */
static void dsync_wrote(int fd, const struct iovec *iov, int iovcnt, off_t off, ssize_t n)
{
    struct stat st;
    if (n <= 0 || !(fd_flags_of(fd) & FD_DSYNC) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    char ref[64];
    pthread_mutex_lock(&pf.mu);
    ref_name(&st, ref, sizeof ref);
    int out = shadow_open("files", ref, O_WRONLY | O_CREAT | O_CLOEXEC);
    if (out < 0)
        die("cannot open a shadow file");
    for (int i = 0; i < iovcnt && n > 0; i++) {
        size_t len = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;
        resolve_pwrite();
        if (real_pwrite(out, iov[i].iov_base, len, off) != (ssize_t)len)
            die("cannot write a shadow file");
        off += (off_t)len;
        n -= (ssize_t)len;
    }
    resolve_close();
    real_close(out);
    pthread_mutex_unlock(&pf.mu);
}

static off_t dsync_offset(int fd)
{
    if (!(fd_flags_of(fd) & FD_DSYNC))
        return 0;
    int fl = fcntl(fd, F_GETFL);
    struct stat st;
    if (fl >= 0 && (fl & O_APPEND))
        return fstat(fd, &st) == 0 ? st.st_size : 0;
    return lseek(fd, 0, SEEK_CUR);
}

/* fsync and friends: the file's bytes, or the directory's names, are durable now. */
static void synced(int fd)
{
    struct stat st;
    char p[PATH_MAX];
    if (!pf.on || fd_path(fd, p, sizeof p) != 0 || !under_root(p) || fstat(fd, &st) != 0)
        return;
    pthread_mutex_lock(&pf.mu);
    if (S_ISDIR(st.st_mode))
        snapshot_dir(fd, NULL, &st);
    else if (S_ISREG(st.st_mode))
        snapshot_file(fd, NULL, &st);
    pthread_mutex_unlock(&pf.mu);
}

/* ---- set-up ---- */

__attribute__((constructor)) static void powerfail_init(void)
{
    const char *root = getenv("POWERFAIL_ROOT"), *shadow = getenv("POWERFAIL_SHADOW");
    const char *logp = getenv("POWERFAIL_LOG"), *ctl = getenv("POWERFAIL_CTL");
    if (!root || !shadow)
        return;
    if (!realpath(root, pf.root))
        die("POWERFAIL_ROOT must exist");
    pf.rootlen = strlen(pf.root);
    snprintf(pf.shadow, sizeof pf.shadow, "%s", shadow);
    snprintf(pf.ctl, sizeof pf.ctl, "%s", ctl ? ctl : "");
    pf.next_gen = ((uint64_t)getpid() << 24) + 1;
    const char *model = getenv("POWERFAIL_MODEL");
    pf.eager_names = model && !strcmp(model, "eager-names");
    char p[PATH_MAX + 16];
    resolve_mkdir();
    resolve_openat();
    real_mkdir(shadow, 0700);
    snprintf(p, sizeof p, "%s/files", shadow);
    real_mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/dirs", shadow);
    real_mkdir(p, 0700);
    if (logp &&
        (pf.log_fd = real_openat(AT_FDCWD, logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
        die("cannot open POWERFAIL_LOG");
    snprintf(p, sizeof p, "%s/root", shadow);
    if (access(p, F_OK) != 0) {
        /* The first process on this shadow: what is there now is the durable baseline. */
        struct stat st;
        if (stat(pf.root, &st) != 0)
            die("cannot stat POWERFAIL_ROOT");
        snapshot_tree(pf.root);
        char ref[64];
        ref_name(&st, ref, sizeof ref);
        int fd = real_openat(AT_FDCWD, p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            die("cannot write the shadow root");
        write_all(fd, ref, strlen(ref));
        resolve_close();
        real_close(fd);
    }
    pf.on = 1;
}

/* ---- the interposed calls ---- */

static int after_open(int fd, const char *abs, int flags, int existed)
{
    if (fd < 0 || !pf.on || fd >= FD_SLOTS)
        return fd;
    char p[PATH_MAX];
    if (fd_path(fd, p, sizeof p) != 0 || !under_root(p)) {
        pf.fd_flags[fd] = 0;
        return fd;
    }
    pf.fd_flags[fd] = (unsigned char)(FD_TRACKED | ((flags & O_DSYNC) ? FD_DSYNC : 0));
    if (!existed) {
        struct stat st;
        if (fstat(fd, &st) == 0) {
            pthread_mutex_lock(&pf.mu);
            gen_new(&st);
            pthread_mutex_unlock(&pf.mu);
        }
        if ((flags & O_TMPFILE) != O_TMPFILE)
            names_changed(0, AT_FDCWD, abs);
    }
    return fd;
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
    char abs[PATH_MAX];
    int existed = 1;
    if (pf.on && path) {
        abs_path(dirfd, path, abs, sizeof abs);
        int tmpfile = (flags & O_TMPFILE) == O_TMPFILE;
        if (under_root(abs) && ((flags & (O_CREAT | O_TRUNC)) || tmpfile)) {
            struct stat st;
            existed = !tmpfile && fstatat(dirfd, path, &st, 0) == 0;
            crash_point((flags & O_TRUNC) ? "open-trunc" : existed ? "open-creat" : "create", abs);
        }
    } else {
        abs[0] = '\0';
    }
    resolve_openat();
    int fd = real_openat(dirfd, path, flags, mode);
    return after_open(fd, abs, flags, existed);
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* The variadic open family: one body, four names (the 64-bit forms are the same call here). */
#define DEFINE_OPEN(name, params, dirfd)                                                                     \
    int name params                                                                                          \
    {                                                                                                        \
        va_list ap;                                                                                          \
        va_start(ap, flags);                                                                                 \
        mode_t mode = open_mode(flags, ap);                                                                  \
        va_end(ap);                                                                                          \
        return do_open(dirfd, path, flags, mode);                                                            \
    }

DEFINE_OPEN(openat, (int dirfd, const char *path, int flags, ...), dirfd)
DEFINE_OPEN(openat64, (int dirfd, const char *path, int flags, ...), dirfd)
DEFINE_OPEN(open, (const char *path, int flags, ...), AT_FDCWD)
DEFINE_OPEN(open64, (const char *path, int flags, ...), AT_FDCWD)

int __open_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    return do_open(dirfd, path, flags, 0);
}

int creat(const char *path, mode_t mode)
{
    return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int close(int fd)
{
    resolve_close();
    if (fd >= 0 && fd < FD_SLOTS)
        pf.fd_flags[fd] = 0;
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    resolve_write();
    if (!fd_point("write", fd))
        return real_write(fd, buf, n);
    off_t off = dsync_offset(fd);
    ssize_t r = real_write(fd, buf, n);
    struct iovec iov = {(void *)buf, n};
    dsync_wrote(fd, &iov, 1, off, r);
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    resolve_pwrite();
    fd_point("pwrite", fd);
    ssize_t r = real_pwrite(fd, buf, n, off);
    struct iovec iov = {(void *)buf, n};
    dsync_wrote(fd, &iov, 1, off, r);
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    resolve_writev();
    if (!fd_point("writev", fd))
        return real_writev(fd, iov, iovcnt);
    off_t off = dsync_offset(fd);
    ssize_t r = real_writev(fd, iov, iovcnt);
    dsync_wrote(fd, iov, iovcnt, off, r);
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    resolve_pwritev();
    fd_point("pwritev", fd);
    ssize_t r = real_pwritev(fd, iov, iovcnt, off);
    dsync_wrote(fd, iov, iovcnt, off, r);
    return r;
}

int ftruncate(int fd, off_t len)
{
    resolve_ftruncate();
    fd_point("ftruncate", fd);
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    return ftruncate(fd, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    resolve_fallocate();
    fd_point("fallocate", fd);
    return real_fallocate(fd, mode, off, len);
}

ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t len, unsigned flags)
{
    resolve_copy_file_range();
    fd_point("copy_file_range", out);
    ssize_t r = real_copy_file_range(in, inoff, out, outoff, len, flags);
    if (r > 0 && (fd_flags_of(out) & FD_DSYNC))
        synced(out); /* over-approximates: the whole file, not the range */
    return r;
}

/* fdatasync counts as fsync: the model keeps bytes and size, which both make durable. */
static int file_sync(int (*real)(int), const char *kind, int fd)
{
    fd_point(kind, fd);
    int r = real(fd);
    if (r == 0)
        synced(fd);
    return r;
}

int fsync(int fd)
{
    resolve_fsync();
    return file_sync(real_fsync, "fsync", fd);
}

int fdatasync(int fd)
{
    resolve_fdatasync();
    return file_sync(real_fdatasync, "fdatasync", fd);
}

/* Starts write-back, promises nothing: a crash point, never a sync. */
int sync_file_range(int fd, off_t off, off_t n, unsigned flags)
{
    resolve_sync_file_range();
    fd_point("sync_file_range", fd);
    return real_sync_file_range(fd, off, n, flags);
}

int syncfs(int fd)
{
    resolve_syncfs();
    char p[PATH_MAX];
    int ours = pf.on && fd_path(fd, p, sizeof p) == 0 && under_root(p);
    if (ours)
        crash_point("syncfs", p);
    int r = real_syncfs(fd);
    if (r == 0 && ours) {
        pthread_mutex_lock(&pf.mu);
        snapshot_tree(pf.root);
        pthread_mutex_unlock(&pf.mu);
    }
    return r;
}

void sync(void)
{
    resolve_sync();
    if (pf.on)
        crash_point("sync", pf.root);
    real_sync();
    if (pf.on) {
        pthread_mutex_lock(&pf.mu);
        snapshot_tree(pf.root);
        pthread_mutex_unlock(&pf.mu);
    }
}

/* The file of a shared mapping holding addr, from /proc/self/maps; 0 when found. */
static int mapped_file(const void *addr, char *path, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[PATH_MAX + 256];
    int found = -1;
    while (f && found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) < 2 || !at)
            continue;
        if ((uintptr_t)addr < lo || (uintptr_t)addr >= hi || line[at] != '/')
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(path, n, "%s", line + at);
        found = 0;
    }
    if (f)
        fclose(f);
    return found;
}

int msync(void *addr, size_t len, int flags)
{
    resolve_msync();
    char p[PATH_MAX];
    int ours = pf.on && mapped_file(addr, p, sizeof p) == 0 && under_root(p);
    if (ours)
        crash_point("msync", p);
    int r = real_msync(addr, len, flags);
    struct stat st;
    if (r == 0 && ours && (flags & MS_SYNC) && stat(p, &st) == 0) {
        pthread_mutex_lock(&pf.mu);
        snapshot_file(-1, p, &st); /* over-approximates: the whole file, not the range */
        pthread_mutex_unlock(&pf.mu);
    }
    return r;
}

int rename(const char *from, const char *to)
{
    resolve_rename();
    path_point("rename", AT_FDCWD, to);
    int r = names_changed(real_rename(from, to), AT_FDCWD, from);
    return names_changed(r, AT_FDCWD, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    resolve_renameat();
    path_point("renameat", tofd, to);
    int r = names_changed(real_renameat(fromfd, from, tofd, to), fromfd, from);
    return names_changed(r, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    resolve_renameat2();
    path_point("renameat2", tofd, to);
    int r = names_changed(real_renameat2(fromfd, from, tofd, to, flags), fromfd, from);
    return names_changed(r, tofd, to);
}

int unlink(const char *path)
{
    resolve_unlink();
    path_point("unlink", AT_FDCWD, path);
    return names_changed(real_unlink(path), AT_FDCWD, path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    resolve_unlinkat();
    path_point("unlinkat", dirfd, path);
    return names_changed(real_unlinkat(dirfd, path, flags), dirfd, path);
}

int rmdir(const char *path)
{
    resolve_rmdir();
    path_point("rmdir", AT_FDCWD, path);
    return names_changed(real_rmdir(path), AT_FDCWD, path);
}

static int after_mkdir(int r, int dirfd, const char *path)
{
    struct stat st;
    if (r == 0 && pf.on && fstatat(dirfd, path, &st, 0) == 0) {
        pthread_mutex_lock(&pf.mu);
        gen_new(&st);
        pthread_mutex_unlock(&pf.mu);
    }
    return names_changed(r, dirfd, path);
}

int mkdir(const char *path, mode_t mode)
{
    resolve_mkdir();
    path_point("mkdir", AT_FDCWD, path);
    return after_mkdir(real_mkdir(path, mode), AT_FDCWD, path);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    resolve_mkdirat();
    path_point("mkdirat", dirfd, path);
    return after_mkdir(real_mkdirat(dirfd, path, mode), dirfd, path);
}

int link(const char *from, const char *to)
{
    resolve_link();
    path_point("link", AT_FDCWD, to);
    return names_changed(real_link(from, to), AT_FDCWD, to);
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
    resolve_linkat();
    path_point("linkat", tofd, to);
    return names_changed(real_linkat(fromfd, from, tofd, to, flags), tofd, to);
}
