/*
 * users.c - the console's users file: parsing, checking a password, editing, atomic writes.
 */
#include "console/users.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/fs.h"

/* A bcrypt hash of cost 12 with a fixed salt and no user behind it: what an unknown name is
 * checked against when the set has no user to borrow a cost from (below). */
static const char no_user_hash[] = "$2b$12$yYBRAAerLHXc6BiHGyApruBja1DMl6dckLCN7zosfR7fbl6JhnFX.";

/* bcrypt keys only the first 72 bytes: a longer password would be silently cut, so it is
 * refused when set; a check of one longer than this cannot match. */
#define PASSWORD_MAX 72

typedef struct user {
    char name[CF_USER_NAME_MAX + 1];
    char tier[CF_USER_TIER_MAX + 1];
    char *hash;
} user;

struct cf_users {
    user *v;
    size_t n, cap;
};

cf_users *cf_users_new(void)
{
    return calloc(1, sizeof(cf_users));
}

void cf_users_free(cf_users *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].hash);
    free(u->v);
    free(u);
}

size_t cf_users_count(const cf_users *u)
{
    return u->n;
}

const char *cf_users_name(const cf_users *u, size_t i)
{
    return i < u->n ? u->v[i].name : NULL;
}

const char *cf_users_tier(const cf_users *u, size_t i)
{
    return i < u->n ? u->v[i].tier : NULL;
}

long cf_users_find(const cf_users *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int all_in(const char *s, size_t len, size_t max, const char *extra, int upper)
{
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
                 (c != '\0' && strchr(extra, c));
        if (!ok)
            return 0;
    }
    return 1;
}

static int valid_name_n(const char *s, size_t len)
{
    return all_in(s, len, CF_USER_NAME_MAX, "._@-", 1);
}

static int valid_tier_n(const char *s, size_t len)
{
    return all_in(s, len, CF_USER_TIER_MAX, "-", 0);
}

int cf_users_valid_name(const char *name)
{
    return name && valid_name_n(name, strlen(name));
}

int cf_users_valid_tier(const char *tier)
{
    return tier && valid_tier_n(tier, strlen(tier));
}

static int crypt_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* bcrypt: "$2b$" two cost digits "$" then 53 characters of salt and digest. yescrypt: "$y$"
 * then parameter, salt and digest fields in crypt's alphabet. NULL when well formed, else what
 * is wrong. */
static const char *hash_problem(const char *h, size_t len)
{
    if (len >= 4 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
        h[3] == '$') {
        if (len != 60 || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$')
            return "is not a well-formed bcrypt hash (\"$2b$NN$\" and 53 characters)";
        int cost = (h[4] - '0') * 10 + (h[5] - '0');
        if (cost < 4 || cost > 31)
            return "has a bcrypt cost outside 04..31";
        for (size_t i = 7; i < len; i++)
            if (!crypt_char(h[i]))
                return "has a character outside crypt's alphabet";
        return NULL;
    }
    if (len >= 3 && memcmp(h, "$y$", 3) == 0) {
        int dollars = 0;
        for (size_t i = 3; i < len; i++) {
            if (h[i] == '$')
                dollars++;
            else if (!crypt_char(h[i]))
                return "has a character outside crypt's alphabet";
        }
        if (dollars != 2 || h[len - 1] == '$' || len > 128)
            return "is not a well-formed yescrypt hash (\"$y$PARAMS$SALT$HASH\")";
        return NULL;
    }
    return "is neither bcrypt (\"$2b$\") nor yescrypt (\"$y$\"); hint: make one with `coffer console user "
           "add`";
}

static int push(cf_users *u, const char *name, size_t nlen, const char *tier, size_t tlen, const char *hash,
                size_t hlen)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 8;
        user *v = realloc(u->v, cap * sizeof *v);
        if (!v)
            return CF_ENOMEM;
        u->v = v;
        u->cap = cap;
    }
    user *e = &u->v[u->n];
    memset(e, 0, sizeof *e);
    /* Not strndup: the hash may end the caller's buffer with no NUL after it, and strndup may
     * look for one past hlen. */
    if (!(e->hash = malloc(hlen + 1)))
        return CF_ENOMEM;
    memcpy(e->hash, hash, hlen);
    e->hash[hlen] = '\0';
    memcpy(e->name, name, nlen);
    memcpy(e->tier, tier, tlen);
    u->n++;
    return 0;
}

/* One line (without its newline); source names the text in messages. */
static int parse_line(cf_users *u, const char *line, size_t len, const char *source, size_t lineno,
                      cf_err *err)
{
    if (len && line[len - 1] == '\r')
        len--;
    size_t lead = 0;
    while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
        lead++;
    if (lead == len || line[lead] == '#')
        return 0;
    if (memchr(line, '\0', len))
        return cf_err_set(err, CF_EINVAL, "%s line %zu: holds a NUL byte", source, lineno);
    const char *c1 = memchr(line, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line + len - c1 - 1)) : NULL;
    if (!c2)
        return cf_err_set(err, CF_EINVAL, "%s line %zu: expected NAME:TIER:HASH (%s)", source, lineno,
                          c1 ? "one ':' found, two needed" : "no ':' found");
    size_t nlen = (size_t)(c1 - line), tlen = (size_t)(c2 - c1 - 1), hlen = (size_t)(line + len - c2 - 1);
    if (!valid_name_n(line, nlen))
        return cf_err_set(err, CF_EINVAL,
                          "%s line %zu: the user name must be 1 to %d characters of A-Z a-z 0-9 . _ @ -",
                          source, lineno, CF_USER_NAME_MAX);
    if (!valid_tier_n(c1 + 1, tlen))
        return cf_err_set(err, CF_EINVAL,
                          "%s line %zu: the tier of '%.*s' must be 1 to %d characters of a-z 0-9 -", source,
                          lineno, (int)nlen, line, CF_USER_TIER_MAX);
    const char *problem = hash_problem(c2 + 1, hlen);
    if (problem)
        return cf_err_set(err, CF_EINVAL, "%s line %zu: the hash of '%.*s' %s", source, lineno, (int)nlen,
                          line, problem);
    for (size_t i = 0; i < u->n; i++)
        if (strlen(u->v[i].name) == nlen && memcmp(u->v[i].name, line, nlen) == 0)
            return cf_err_set(err, CF_EINVAL, "%s line %zu: user '%.*s' appears a second time", source,
                              lineno, (int)nlen, line);
    if (push(u, line, nlen, c1 + 1, tlen, c2 + 1, hlen))
        return cf_err_set(err, CF_ENOMEM, "out of memory reading %s", source);
    return 0;
}

static int parse_named(const char *text, size_t len, const char *source, char separator, cf_users **out,
                       cf_err *err)
{
    *out = NULL;
    cf_users *u = cf_users_new();
    if (!u)
        return cf_err_set(err, CF_ENOMEM, "out of memory reading %s", source);
    size_t lineno = 0;
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        const char *sep = separator ? memchr(text + start, separator, len - start) : NULL;
        if (sep && (!nl || sep < nl))
            nl = sep;
        size_t end = nl ? (size_t)(nl - text) : len;
        int rc = parse_line(u, text + start, end - start, source, ++lineno, err);
        if (rc) {
            cf_users_free(u);
            return rc;
        }
        start = end + 1;
    }
    *out = u;
    return 0;
}

int cf_users_parse(const char *text, size_t len, cf_users **out, cf_err *err)
{
    return parse_named(text, len, "users", '\0', out, err);
}

int cf_users_load_file_log(const char *path, const cf_logger *log, cf_users **out, cf_err *err)
{
    *out = NULL;
    /* Symbolic links are followed: Kubernetes mounts secrets as links into a ..data directory. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open users file '%s'", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot stat users file '%s'", path);
    else if (!S_ISREG(st.st_mode))
        rc = cf_err_set(err, CF_EINVAL, "users file '%s' is not a regular file", path);
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        rc = cf_err_set(err, CF_EDENIED,
                        "users file '%s' is writable by group or others (mode %04o): anyone who can write it "
                        "can give themselves an account; hint: chmod 600 '%s'",
                        path, (unsigned)(st.st_mode & 07777), path);
    else if ((size_t)st.st_size > CF_USERS_FILE_MAX)
        rc = cf_err_set(err, CF_ETOOBIG, "users file '%s' is larger than %u bytes", path, CF_USERS_FILE_MAX);
    if (rc) {
        close(fd);
        return rc;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        cf_log(log, CF_LOG_WARN,
               "users file is readable by group or others; chmod 600 unless it is a mounted secret", "path",
               path, "mode", mode, NULL);
    }
    cf_buf b;
    cf_buf_init(&b, CF_USERS_FILE_MAX);
    char chunk[8192];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cf_err_sys(err, CF_EIO, errno, "cannot read users file '%s'", path);
            break;
        }
        if (r == 0)
            break;
        if (cf_buf_append(&b, chunk, (size_t)r)) {
            rc = cf_err_set(err, cf_buf_error(&b),
                            "users file '%s' is larger than %u bytes (or out of memory)", path,
                            CF_USERS_FILE_MAX);
            break;
        }
    }
    close(fd);
    if (!rc) {
        char source[600];
        snprintf(source, sizeof source, "users file '%s'", path);
        rc = parse_named(b.data ? b.data : "", b.len, source, '\0', out, err);
    }
    cf_buf_cleanup(&b);
    return rc;
}

int cf_users_load_file(const char *path, cf_users **out, cf_err *err)
{
    cf_logger log = cf_logger_stderr(CF_LOG_WARN);
    return cf_users_load_file_log(path, &log, out, err);
}

int cf_users_from_env_or_file_log(const char *users_file, const cf_logger *log, cf_users **out, cf_err *err)
{
    *out = NULL;
    if (users_file && *users_file)
        return cf_users_load_file_log(users_file, log, out, err);
    const char *file = getenv("COFFER_CONSOLE_USERS_FILE");
    if (file && *file)
        return cf_users_load_file_log(file, log, out, err);
    const char *lines = getenv("COFFER_CONSOLE_USERS");
    if (lines && *lines)
        return parse_named(lines, strlen(lines), "COFFER_CONSOLE_USERS", ';', out, err);
    *out = cf_users_new();
    return *out ? 0 : cf_err_set(err, CF_ENOMEM, "out of memory");
}

int cf_users_from_env_or_file(const char *users_file, cf_users **out, cf_err *err)
{
    cf_logger log = cf_logger_stderr(CF_LOG_WARN);
    return cf_users_from_env_or_file_log(users_file, &log, out, err);
}

int cf_users_check(const cf_users *u, const char *name, const char *password, const char **tier, cf_err *err)
{
    *tier = NULL;
    long i = name ? cf_users_find(u, name) : -1;
    /* An unknown name costs what a known one does: the first user's hash serves as the setting
     * (same algorithm and cost as the file's users, which `user add` makes alike), so the time
     * taken does not tell which names exist. Its result is thrown away. */
    const char *setting = i >= 0 ? u->v[i].hash : u->n ? u->v[0].hash : no_user_hash;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return cf_err_set(err, CF_ENOMEM, "out of memory checking a password");
    int ok = 0;
    if (password && strlen(password) <= PASSWORD_MAX * 16) {
        const char *got = crypt_r(password, setting, cd);
        size_t want_len = strlen(setting);
        ok = got && got[0] == '$' && strlen(got) == want_len && CRYPTO_memcmp(got, setting, want_len) == 0;
    }
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    if (!ok || i < 0)
        return cf_err_set(err, CF_EDENIED, "wrong user name or password");
    *tier = u->v[i].tier;
    return 0;
}

int cf_users_hash_password(const char *password, unsigned cost, char **hash, cf_err *err)
{
    *hash = NULL;
    if (cost == 0)
        cost = CF_USERS_DEFAULT_COST;
    if (cost < 4 || cost > 31)
        return cf_err_set(err, CF_EINVAL, "bcrypt cost %u is outside 4..31", cost);
    size_t len = strlen(password);
    if (len == 0)
        return cf_err_set(err, CF_EINVAL, "the password is empty");
    if (len > PASSWORD_MAX)
        return cf_err_set(err, CF_EINVAL, "the password is %zu bytes; bcrypt uses at most %d", len,
                          PASSWORD_MAX);
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    /* NULL random bytes: libxcrypt draws the salt from the kernel itself. */
    if (!crypt_gensalt_rn("$2b$", cost, NULL, 0, setting, (int)sizeof setting))
        return cf_err_sys(err, CF_EINTERNAL, errno, "cannot make a bcrypt salt");
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return cf_err_set(err, CF_ENOMEM, "out of memory hashing a password");
    const char *got = crypt_r(password, setting, cd);
    int rc = 0;
    if (!got || got[0] != '$' || hash_problem(got, strlen(got)))
        rc = cf_err_set(err, CF_EINTERNAL, "crypt_r could not make a bcrypt hash");
    else if (!(*hash = strdup(got)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory hashing a password");
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return rc;
}

static int check_fields(const char *name, const char *tier, const char *hash, cf_err *err)
{
    if (!cf_users_valid_name(name))
        return cf_err_set(err, CF_EINVAL, "user name must be 1 to %d characters of A-Z a-z 0-9 . _ @ -",
                          CF_USER_NAME_MAX);
    if (tier && !cf_users_valid_tier(tier))
        return cf_err_set(err, CF_EINVAL, "tier '%.40s' must be 1 to %d characters of a-z 0-9 -", tier,
                          CF_USER_TIER_MAX);
    const char *problem = hash ? hash_problem(hash, strlen(hash)) : "is missing";
    if (problem)
        return cf_err_set(err, CF_EINVAL, "the hash of '%s' %s", name, problem);
    return 0;
}

int cf_users_add(cf_users *u, const char *name, const char *tier, const char *hash, cf_err *err)
{
    int rc = check_fields(name, tier ? tier : "", hash, err);
    if (rc)
        return rc;
    if (cf_users_find(u, name) >= 0)
        return cf_err_set(err, CF_EEXISTS, "user '%s' already exists; hint: `coffer console user passwd %s`",
                          name, name);
    if (push(u, name, strlen(name), tier, strlen(tier), hash, strlen(hash)))
        return cf_err_set(err, CF_ENOMEM, "out of memory adding user '%s'", name);
    return 0;
}

int cf_users_set_hash(cf_users *u, const char *name, const char *hash, cf_err *err)
{
    int rc = check_fields(name, NULL, hash, err);
    if (rc)
        return rc;
    long i = cf_users_find(u, name);
    if (i < 0)
        return cf_err_set(err, CF_ENOTFOUND, "no user '%s'", name);
    char *copy = strdup(hash);
    if (!copy)
        return cf_err_set(err, CF_ENOMEM, "out of memory changing user '%s'", name);
    free(u->v[i].hash);
    u->v[i].hash = copy;
    return 0;
}

int cf_users_remove(cf_users *u, const char *name, cf_err *err)
{
    long i = cf_users_find(u, name);
    if (i < 0)
        return cf_err_set(err, CF_ENOTFOUND, "no user '%.80s'", name);
    free(u->v[i].hash);
    memmove(&u->v[i], &u->v[i + 1], (u->n - (size_t)i - 1) * sizeof *u->v);
    u->n--;
    return 0;
}

int cf_users_format(const cf_users *u, char **text, size_t *len, cf_err *err)
{
    cf_buf b;
    cf_buf_init(&b, CF_USERS_FILE_MAX);
    cf_buf_puts(&b, "# coffer console users: NAME:TIER:HASH, managed by `coffer console user`\n");
    for (size_t i = 0; i < u->n; i++)
        cf_buf_printf(&b, "%s:%s:%s\n", u->v[i].name, u->v[i].tier, u->v[i].hash);
    int rc = cf_buf_error(&b);
    if (rc) {
        cf_buf_cleanup(&b);
        return cf_err_set(err, rc, "the users do not fit in %u bytes (or out of memory)", CF_USERS_FILE_MAX);
    }
    *text = cf_buf_steal(&b, len);
    return 0;
}

int cf_users_write_file(const cf_users *u, const char *path, cf_err *err)
{
    char *text;
    size_t len;
    int rc = cf_users_format(u, &text, &len, err);
    if (rc)
        return rc;
    rc = cf_fs_write_atomic(path, text, len, 0600, err);
    free(text);
    return rc;
}

int cf_users_lock(const char *path, int *lock_fd, cf_err *err)
{
    *lock_fd = -1;
    char lock_path[4096];
    if (snprintf(lock_path, sizeof lock_path, "%s.lock", path) >= (int)sizeof lock_path)
        return cf_err_set(err, CF_EINVAL, "users file path '%.80s…' is too long", path);
    /* Not followed when a link: the lock must not create or open a file elsewhere. */
    int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open lock file '%s'", lock_path);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return cf_err_sys(err, CF_EIO, e, "cannot lock '%s'", lock_path);
        }
    }
    *lock_fd = fd;
    return 0;
}

void cf_users_unlock(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd); /* closing the last descriptor releases the flock */
}
