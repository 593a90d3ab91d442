/*
 * session.h - the console's login sessions, sealed in the cookie itself so that replicas share
 * nothing but the secret.
 *
 * Cookie value = base64url without padding of nonce(12) | AES-256-GCM ciphertext | tag(16); key
 * = HKDF-SHA256(secret, info "coffer console session v1"); a fresh random nonce per seal. The
 * plaintext is a versioned fixed layout (session.c, "plaintext"). A value longer than
 * CF_SESSION_COOKIE_MAX is refused before any decoding.
 *
 * What this does not do: revoke. A sealed cookie stays valid until it expires, whatever logout
 * does, because no replica remembers anything; keep the TTL short. docs/console.md has the rest.
 *
 * cf_session_keys is immutable after creation: seal and open may run on many threads at once.
 */
#ifndef CF_CONSOLE_SESSION_H
#define CF_CONSOLE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"

#define CF_SESSION_SECRET_MIN 32
#define CF_SESSION_COOKIE_MAX 4096

/* cf_err.detail that cf_session_open sets on CF_EDENIED, so that a caller can say which. */
enum { CF_SESSION_INVALID = 1, CF_SESSION_EXPIRED = 2 };

typedef struct cf_session_keys cf_session_keys;
/* < 32 bytes: CF_EINVAL ("at least 32 bytes"). *out: caller frees with cf_session_keys_free. */
int cf_session_keys_new(const void *secret, size_t len, cf_session_keys **out, cf_err *err);
/* COFFER_CONSOLE_SESSION_SECRET_FILE (file, one trailing newline trimmed; a group/world-readable
 * file is warned about on stderr, not refused: Kubernetes mounts secrets 0644) else
 * COFFER_CONSOLE_SESSION_SECRET. Neither set: CF_ENOTFOUND. Shorter than 32 bytes: CF_EINVAL.
 * *secret: caller frees (after wiping). */
int cf_session_secret_from_env(char **secret, size_t *len, cf_err *err);
/* The same, the warning through log (NULL: discarded). */
int cf_session_secret_from_env_log(const cf_logger *log, char **secret, size_t *len, cf_err *err);
void cf_session_keys_free(cf_session_keys *k);

typedef struct cf_session {
    char user[65];
    char tier[33];
    int64_t issued, expires; /* unix seconds */
    char csrf[44];           /* 32 random bytes, base64url without padding */
} cf_session;

/* A session for user/tier issued at now, expiring at now + ttl_s, with a fresh csrf token.
 * CF_EINVAL for a bad name or tier or ttl_s <= 0. */
int cf_session_new(const char *user, const char *tier, int64_t now, int64_t ttl_s, cf_session *out,
                   cf_err *err);
/* *cookie_value: caller frees. */
int cf_session_seal(const cf_session_keys *k, const cf_session *s, char **cookie_value, cf_err *err);
/* CF_EDENIED for forged/garbled/wrong-key (detail CF_SESSION_INVALID) and for expires <= now
 * (message "session expired", detail CF_SESSION_EXPIRED). *out is written only on success. */
int cf_session_open(const cf_session_keys *k, const char *cookie_value, int64_t now, cf_session *out,
                    cf_err *err);

#endif
