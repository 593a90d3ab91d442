/*
 * users.h - the console's accounts: a name, a tier and a crypt(3) password hash per user.
 *
 * The text form is one "NAME:TIER:HASH" line per user; '#' starts a comment line, blank lines
 * are skipped, a trailing '\r' is tolerated. Names are [A-Za-z0-9._@-]{1,64}, tiers
 * [a-z0-9-]{1,32}, hashes bcrypt ("$2b$", "$2a$", "$2y$") or yescrypt ("$y$"); a name appears
 * once. A parse error names the line number and what is wrong with it.
 *
 * Files are written atomically (a temporary file in the same directory, fsync, rename, fsync of
 * the directory) with mode 0600. Loading refuses a file that group or others may write (anyone
 * who can write it can give themselves an account) and warns about one they may read (the hashes
 * are salted and slow, and Kubernetes mounts secrets 0644 by default, so refusing would break
 * the common deployment). docs/console.md, "Users and sessions", has the rules.
 *
 * A cf_users is immutable once loaded for the console; the editing functions below serve
 * `coffer console user …`. Not thread-safe for editing; concurrent cf_users_check calls on an
 * unchanging cf_users are safe (crypt_r keeps its state in the caller's buffer).
 */
#ifndef CF_CONSOLE_USERS_H
#define CF_CONSOLE_USERS_H

#include <stddef.h>

#include "core/err.h"
#include "core/log.h"

#define CF_USER_NAME_MAX 64
#define CF_USER_TIER_MAX 32
#define CF_USERS_FILE_MAX (16u << 20) /* a users file larger than this is refused */
#define CF_USERS_DEFAULT_COST 12      /* bcrypt's log2 rounds */

typedef struct cf_users cf_users;

/* Parses text (need not be NUL-terminated). *out: caller frees with cf_users_free. */
int cf_users_parse(const char *text, size_t len, cf_users **out, cf_err *err);
/* Reads and parses path; group/world-writable: CF_EDENIED; group/world-readable: a warning on
 * stderr. A missing file is CF_ENOTFOUND. */
int cf_users_load_file(const char *path, cf_users **out, cf_err *err);
/* The same, warnings through log (NULL: discarded). */
int cf_users_load_file_log(const char *path, const cf_logger *log, cf_users **out, cf_err *err);
/* The users the console serves: --users-file, else COFFER_CONSOLE_USERS_FILE (a mounted secret),
 * else COFFER_CONSOLE_USERS (the lines themselves, separated by newlines or ';' — no field can
 * hold a ';', and a one-line value is easier to pass through `docker run -e` or a manifest);
 * none: *out is an empty set, nobody can log in (anonymous only). users_file may be NULL. */
int cf_users_from_env_or_file(const char *users_file, cf_users **out, cf_err *err);
int cf_users_from_env_or_file_log(const char *users_file, const cf_logger *log, cf_users **out, cf_err *err);
void cf_users_free(cf_users *u);

/* Constant-time-ish check: always runs crypt_r (against a dummy hash for unknown users). 0 ok,
 * CF_EDENIED wrong user or password (same message for both). *tier points into u. */
int cf_users_check(const cf_users *u, const char *name, const char *password, const char **tier, cf_err *err);

/* An empty set (NULL: out of memory). */
cf_users *cf_users_new(void);
size_t cf_users_count(const cf_users *u);
/* The i-th user in file order; pointers borrowed until u is changed or freed. */
const char *cf_users_name(const cf_users *u, size_t i);
const char *cf_users_tier(const cf_users *u, size_t i);
/* The index of name, or -1. */
long cf_users_find(const cf_users *u, const char *name);
/* 1 when name / tier is well formed, else 0. */
int cf_users_valid_name(const char *name);
int cf_users_valid_tier(const char *tier);

/* A new bcrypt ("$2b$") hash of password at cost (4..31; 0: CF_USERS_DEFAULT_COST) with a fresh
 * salt. *hash: caller frees. */
int cf_users_hash_password(const char *password, unsigned cost, char **hash, cf_err *err);
/* Adds a user; CF_EEXISTS when the name is taken, CF_EINVAL for a bad name, tier or hash. */
int cf_users_add(cf_users *u, const char *name, const char *tier, const char *hash, cf_err *err);
/* Replaces a user's hash; CF_ENOTFOUND when absent. */
int cf_users_set_hash(cf_users *u, const char *name, const char *hash, cf_err *err);
/* Removes a user; CF_ENOTFOUND when absent. */
int cf_users_remove(cf_users *u, const char *name, cf_err *err);
/* The text form ("NAME:TIER:HASH\n" each, a header comment first). *text: caller frees. */
int cf_users_format(const cf_users *u, char **text, size_t *len, cf_err *err);
/* Writes u to path atomically with mode 0600 (see above). */
int cf_users_write_file(const cf_users *u, const char *path, cf_err *err);

/* Serialises editors of path: an exclusive flock on "PATH.lock" (created 0600), so that two
 * `user add` never lose one another's user; the lock file is left in place (removing it would
 * race a waiter). *lock_fd: pass to cf_users_unlock. */
int cf_users_lock(const char *path, int *lock_fd, cf_err *err);
void cf_users_unlock(int lock_fd);

#endif
