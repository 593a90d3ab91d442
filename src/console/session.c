/*
 * session.c - sealed session cookies: HKDF-SHA256 for the key, AES-256-GCM for the seal.
 *
 * The plaintext, version 1 (fixed layout, all integers big-endian):
 *
 *   version(1) = 1 | user_len(1) | user | tier_len(1) | tier | issued(8) | expires(8) | csrf(43)
 *
 * at most 158 bytes, so a cookie is at most 248 characters. A new layout takes a new version
 * byte; an unknown one is refused, so old replicas never misread new cookies during a rollout.
 */
#include "console/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "console/users.h"
#include "crypto/hash.h"

#define SESSION_VERSION 1
#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define CSRF_RAW 32
#define CSRF_LEN 43
#define PLAIN_MAX (1 + 1 + CF_USER_NAME_MAX + 1 + CF_USER_TIER_MAX + 8 + 8 + CSRF_LEN)
#define PLAIN_MIN (1 + 1 + 1 + 1 + 1 + 8 + 8 + CSRF_LEN)
#define SECRET_FILE_MAX 65536

static const char hkdf_info[] = "coffer console session v1";

struct cf_session_keys {
    unsigned char key[KEY_LEN];
};

/* base64url without padding, through the strict standard codec of crypto/hash.h: out holds
 * 4 * ((n + 2) / 3) + 1 bytes. Returns the length. */
static size_t b64url_encode(const unsigned char *p, size_t n, char *out)
{
    size_t len = cf_base64_encode(p, n, out);
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return len;
}

/* Strict: only the url alphabet, no padding, and (through cf_base64_decode) the unused low bits
 * of the last character zero, so that each byte string has exactly one encoding and a changed
 * character is a changed cookie. len <= CF_SESSION_COOKIE_MAX. Returns the decoded length or -1. */
static long b64url_decode(const char *s, size_t len, unsigned char *out, size_t outmax)
{
    char std[CF_SESSION_COOKIE_MAX + 4];
    if (len % 4 == 1 || len > CF_SESSION_COOKIE_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=')
            return -1;
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    size_t padded = len;
    while (padded % 4)
        std[padded++] = '=';
    long n = cf_base64_decode(std, padded, out, outmax);
    return n < 0 ? -1 : n;
}

int cf_session_keys_new(const void *secret, size_t len, cf_session_keys **out, cf_err *err)
{
    *out = NULL;
    if (!secret || len < CF_SESSION_SECRET_MIN)
        return cf_err_set(err, CF_EINVAL,
                          "the session secret is %zu bytes; it must be at least %d bytes (hint: head -c 48 "
                          "/dev/urandom | base64)",
                          secret ? len : 0, CF_SESSION_SECRET_MIN);
    cf_session_keys *k = calloc(1, sizeof *k);
    if (!k)
        return cf_err_set(err, CF_ENOMEM, "out of memory deriving the session key");
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)hkdf_info, sizeof hkdf_info - 1),
        OSSL_PARAM_construct_end(),
    };
    int ok = kctx && EVP_KDF_derive(kctx, k->key, sizeof k->key, params) == 1;
    EVP_KDF_CTX_free(kctx);
    if (!ok) {
        cf_session_keys_free(k);
        return cf_err_set(err, CF_EINTERNAL, "cannot derive the session key (HKDF-SHA256)");
    }
    *out = k;
    return 0;
}

void cf_session_keys_free(cf_session_keys *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

static int read_secret_file(const char *path, const cf_logger *log, char **secret, size_t *len, cf_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno,
                          "cannot open the session secret file '%s' (COFFER_CONSOLE_SESSION_SECRET_FILE)",
                          path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SECRET_FILE_MAX) {
        close(fd);
        return cf_err_set(err, CF_EINVAL,
                          "session secret file '%s' is not a regular file of at most %d bytes", path,
                          SECRET_FILE_MAX);
    }
    /* Warned about, not refused: Kubernetes mounts secrets 0644 unless told otherwise. */
    if (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) {
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        cf_log(log, CF_LOG_WARN, "session secret file is readable or writable by group or others", "path",
               path, "mode", mode, NULL);
    }
    char *buf = malloc((size_t)SECRET_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return cf_err_set(err, CF_ENOMEM, "out of memory reading the session secret");
    }
    size_t n = 0;
    int rc = 0;
    while (n <= SECRET_FILE_MAX) {
        ssize_t r = read(fd, buf + n, (size_t)SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = cf_err_sys(err, CF_EIO, errno, "cannot read the session secret file '%s'", path);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!rc && n > SECRET_FILE_MAX)
        rc = cf_err_set(err, CF_ETOOBIG, "session secret file '%s' is larger than %d bytes", path,
                        SECRET_FILE_MAX);
    if (rc) {
        OPENSSL_cleanse(buf, (size_t)SECRET_FILE_MAX + 1);
        free(buf);
        return rc;
    }
    /* One trailing newline only: `echo` adds one, anything else is part of the secret. */
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *secret = buf;
    *len = n;
    return 0;
}

int cf_session_secret_from_env_log(const cf_logger *log, char **secret, size_t *len, cf_err *err)
{
    *secret = NULL;
    *len = 0;
    const char *file = getenv("COFFER_CONSOLE_SESSION_SECRET_FILE");
    const char *value = getenv("COFFER_CONSOLE_SESSION_SECRET");
    const char *source = "COFFER_CONSOLE_SESSION_SECRET_FILE";
    char *s = NULL;
    size_t n = 0;
    if (file && *file) {
        int rc = read_secret_file(file, log, &s, &n, err);
        if (rc)
            return rc;
    } else if (value && *value) {
        source = "COFFER_CONSOLE_SESSION_SECRET";
        n = strlen(value);
        if (!(s = strdup(value)))
            return cf_err_set(err, CF_ENOMEM, "out of memory reading the session secret");
    } else {
        return cf_err_set(err, CF_ENOTFOUND,
                          "no session secret: set COFFER_CONSOLE_SESSION_SECRET_FILE (a file) or "
                          "COFFER_CONSOLE_SESSION_SECRET, at least %d bytes",
                          CF_SESSION_SECRET_MIN);
    }
    if (n < CF_SESSION_SECRET_MIN) {
        OPENSSL_cleanse(s, n);
        free(s);
        return cf_err_set(
            err, CF_EINVAL,
            "the session secret from %s is %zu bytes; it must be at least %d bytes (hint: head -c "
            "48 /dev/urandom | base64)",
            source, n, CF_SESSION_SECRET_MIN);
    }
    *secret = s;
    *len = n;
    return 0;
}

int cf_session_secret_from_env(char **secret, size_t *len, cf_err *err)
{
    cf_logger log = cf_logger_stderr(CF_LOG_WARN);
    return cf_session_secret_from_env_log(&log, secret, len, err);
}

int cf_session_new(const char *user, const char *tier, int64_t now, int64_t ttl_s, cf_session *out,
                   cf_err *err)
{
    if (!cf_users_valid_name(user))
        return cf_err_set(err, CF_EINVAL, "session: bad user name");
    if (!cf_users_valid_tier(tier))
        return cf_err_set(err, CF_EINVAL, "session: bad tier");
    if (ttl_s <= 0 || now > INT64_MAX - ttl_s)
        return cf_err_set(err, CF_EINVAL, "session: lifetime %lld s is not positive", (long long)ttl_s);
    unsigned char raw[CSRF_RAW];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return cf_err_set(err, CF_EIO, "session: cannot draw random bytes for the csrf token");
    memset(out, 0, sizeof *out);
    snprintf(out->user, sizeof out->user, "%s", user);
    snprintf(out->tier, sizeof out->tier, "%s", tier);
    out->issued = now;
    out->expires = now + ttl_s;
    char csrf[4 * ((CSRF_RAW + 2) / 3) + 1]; /* room for the padding dropped after encoding */
    b64url_encode(raw, sizeof raw, csrf);
    memcpy(out->csrf, csrf, CSRF_LEN + 1);
    return 0;
}

static void put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (unsigned char)u;
}

static int64_t get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

/* enc 1: seal in[0..n) into out (ciphertext | tag); enc 0: open in (ciphertext | tag, n bytes
 * in all) into out. 1 on success. */
static int gcm(const cf_session_keys *k, int enc, const unsigned char nonce[NONCE_LEN],
               const unsigned char *in, size_t n, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return 0;
    size_t body = enc ? n : n - TAG_LEN;
    int len = 0, fin = 0;
    int ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, nonce, enc) == 1 &&
             EVP_CipherUpdate(ctx, out, &len, in, (int)body) == 1 &&
             (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(in + body)) == 1) &&
             EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + body) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int cf_session_seal(const cf_session_keys *k, const cf_session *s, char **cookie_value, cf_err *err)
{
    *cookie_value = NULL;
    size_t ulen = strnlen(s->user, sizeof s->user), tlen = strnlen(s->tier, sizeof s->tier);
    if (!cf_users_valid_name(s->user) || ulen >= sizeof s->user)
        return cf_err_set(err, CF_EINVAL, "session: bad user name");
    if (!cf_users_valid_tier(s->tier) || tlen >= sizeof s->tier)
        return cf_err_set(err, CF_EINVAL, "session: bad tier");
    if (strnlen(s->csrf, sizeof s->csrf) != CSRF_LEN)
        return cf_err_set(err, CF_EINVAL, "session: the csrf token is not %d characters", CSRF_LEN);
    unsigned char plain[PLAIN_MAX], sealed[NONCE_LEN + PLAIN_MAX + TAG_LEN];
    size_t n = 0;
    plain[n++] = SESSION_VERSION;
    plain[n++] = (unsigned char)ulen;
    memcpy(plain + n, s->user, ulen);
    n += ulen;
    plain[n++] = (unsigned char)tlen;
    memcpy(plain + n, s->tier, tlen);
    n += tlen;
    put64(plain + n, s->issued);
    put64(plain + n + 8, s->expires);
    n += 16;
    memcpy(plain + n, s->csrf, CSRF_LEN);
    n += CSRF_LEN;
    /* Random nonces: 2^32 seals under one key keep the collision odds below 2^-32. */
    if (RAND_bytes(sealed, NONCE_LEN) != 1)
        return cf_err_set(err, CF_EIO, "session: cannot draw a nonce");
    int ok = gcm(k, 1, sealed, plain, n, sealed + NONCE_LEN);
    OPENSSL_cleanse(plain, sizeof plain);
    if (!ok)
        return cf_err_set(err, CF_EINTERNAL, "session: AES-256-GCM sealing failed");
    size_t total = NONCE_LEN + n + TAG_LEN;
    char *out = malloc(4 * ((total + 2) / 3) + 1);
    if (!out)
        return cf_err_set(err, CF_ENOMEM, "out of memory sealing a session");
    b64url_encode(sealed, total, out);
    *cookie_value = out;
    return 0;
}

static int invalid(cf_err *err, const char *why)
{
    int rc = cf_err_set(err, CF_EDENIED, "session cookie refused: %s", why);
    if (err)
        err->detail = CF_SESSION_INVALID;
    return rc;
}

int cf_session_open(const cf_session_keys *k, const char *cookie_value, int64_t now, cf_session *out,
                    cf_err *err)
{
    if (!cookie_value)
        return invalid(err, "absent");
    size_t clen = strnlen(cookie_value, CF_SESSION_COOKIE_MAX + 1);
    if (clen > CF_SESSION_COOKIE_MAX)
        return invalid(err, "longer than 4096 bytes");
    unsigned char raw[CF_SESSION_COOKIE_MAX];
    long n = b64url_decode(cookie_value, clen, raw, sizeof raw);
    if (n < 0)
        return invalid(err, "not base64url");
    if ((size_t)n < NONCE_LEN + PLAIN_MIN + TAG_LEN)
        return invalid(err, "too short");
    if ((size_t)n > NONCE_LEN + PLAIN_MAX + TAG_LEN)
        return invalid(err, "too long for any session");
    unsigned char plain[PLAIN_MAX];
    size_t plen = (size_t)n - NONCE_LEN - TAG_LEN;
    if (!gcm(k, 0, raw, raw + NONCE_LEN, (size_t)n - NONCE_LEN, plain))
        return invalid(err, "it was not sealed by this console's secret, or was altered");
    /* Authentic from here on, so a bad layout means another version wrote it, not an attacker. */
    cf_session s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    size_t p = 0;
    if (plain[p++] != SESSION_VERSION) {
        char why[64];
        snprintf(why, sizeof why, "version %u is not supported (this console reads 1)", plain[0]);
        rc = invalid(err, why);
        goto out;
    }
    size_t ulen = plain[p++];
    if (ulen < 1 || ulen > CF_USER_NAME_MAX || p + ulen + 1 > plen) {
        rc = invalid(err, "bad user field");
        goto out;
    }
    memcpy(s.user, plain + p, ulen);
    p += ulen;
    size_t tlen = plain[p++];
    if (tlen < 1 || tlen > CF_USER_TIER_MAX || p + tlen + 16 + CSRF_LEN != plen) {
        rc = invalid(err, "bad tier field or length");
        goto out;
    }
    memcpy(s.tier, plain + p, tlen);
    p += tlen;
    s.issued = get64(plain + p);
    s.expires = get64(plain + p + 8);
    p += 16;
    memcpy(s.csrf, plain + p, CSRF_LEN);
    if (!cf_users_valid_name(s.user) || !cf_users_valid_tier(s.tier)) {
        rc = invalid(err, "bad user or tier");
        goto out;
    }
    if (s.expires <= now) {
        rc = cf_err_set(err, CF_EDENIED, "session expired");
        if (err)
            err->detail = CF_SESSION_EXPIRED;
        goto out;
    }
    *out = s;
out:
    OPENSSL_cleanse(plain, sizeof plain);
    OPENSSL_cleanse(&s, sizeof s);
    return rc;
}
