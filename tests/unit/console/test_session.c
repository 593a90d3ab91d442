/* test_session.c - sealed session cookies: a round trip, every altered byte refused, wrong key,
 * expiry, garbage, the size cap, and the layout checked against an independent OpenSSL seal (so
 * docs/console.md's description of the format is the truth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log_capture.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "console/session.h"
#include "core/fs.h"

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";
static const int64_t now = 1796529600; /* 2026-12-06 */

static cf_session_keys *keys_of(const char *s)
{
    cf_session_keys *k = NULL;
    cf_err err = {0};
    assert_int_equal(cf_session_keys_new(s, strlen(s), &k, &err), 0);
    return k;
}

static char *sealed(const cf_session_keys *k, const cf_session *s)
{
    char *cookie = NULL;
    cf_err err = {0};
    assert_int_equal(cf_session_seal(k, s, &cookie, &err), 0);
    return cookie;
}

static void expect_refused(const cf_session_keys *k, const char *cookie, int detail, const char *what)
{
    cf_session out;
    memset(&out, 0x5a, sizeof out);
    cf_err err = {0};
    assert_int_equal(cf_session_open(k, cookie, now, &out, &err), CF_EDENIED);
    assert_int_equal(err.detail, detail);
    if (!strstr(err.msg, what))
        fail_msg("message '%s' lacks '%s'", err.msg, what);
    /* A refusal leaves the output alone: nothing half-filled can be mistaken for a session. */
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(((unsigned char *)&out)[i], 0x5a);
}

static void test_round_trip_with_a_fresh_csrf_and_nonce(void **state)
{
    (void)state;
    cf_session_keys *k = keys_of(secret);
    cf_session s, back;
    cf_err err = {0};
    assert_int_equal(cf_session_new("alice@example.com", "premium", now, 3600, &s, &err), 0);
    assert_int_equal(s.issued, now);
    assert_int_equal(s.expires, now + 3600);
    assert_int_equal(strlen(s.csrf), 43);
    assert_int_equal(strspn(s.csrf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    cf_session s2;
    assert_int_equal(cf_session_new("alice@example.com", "premium", now, 3600, &s2, &err), 0);
    assert_string_not_equal(s.csrf, s2.csrf);

    char *a = sealed(k, &s), *b = sealed(k, &s);
    assert_string_not_equal(a, b); /* a fresh nonce per seal */
    assert_true(strlen(a) <= 248);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(a));
    assert_int_equal(cf_session_open(k, a, now + 3599, &back, &err), 0);
    assert_string_equal(back.user, "alice@example.com");
    assert_string_equal(back.tier, "premium");
    assert_int_equal(back.issued, now);
    assert_int_equal(back.expires, now + 3600);
    assert_string_equal(back.csrf, s.csrf);

    /* Longest fields fit. */
    char name[65], tier[33];
    memset(name, 'n', 64);
    name[64] = '\0';
    memset(tier, 't', 32);
    tier[32] = '\0';
    cf_session big;
    assert_int_equal(cf_session_new(name, tier, now, 60, &big, &err), 0);
    char *c = sealed(k, &big);
    assert_int_equal(strlen(c), 248);
    assert_int_equal(cf_session_open(k, c, now, &back, &err), 0);
    assert_string_equal(back.user, name);
    free(a);
    free(b);
    free(c);
    cf_session_keys_free(k);
}

static void test_new_and_seal_refuse_bad_fields(void **state)
{
    (void)state;
    cf_session s;
    cf_err err = {0};
    assert_int_equal(cf_session_new("a b", "free", now, 60, &s, &err), CF_EINVAL);
    assert_int_equal(cf_session_new("alice", "Free", now, 60, &s, &err), CF_EINVAL);
    assert_int_equal(cf_session_new("alice", "free", now, 0, &s, &err), CF_EINVAL);
    assert_int_equal(cf_session_new("alice", "free", INT64_MAX - 5, 60, &s, &err), CF_EINVAL);
    cf_session_keys *k = keys_of(secret);
    assert_int_equal(cf_session_new("alice", "free", now, 60, &s, &err), 0);
    char *cookie = NULL;
    s.csrf[10] = '\0';
    assert_int_equal(cf_session_seal(k, &s, &cookie, &err), CF_EINVAL);
    assert_int_equal(cf_session_new("alice", "free", now, 60, &s, &err), 0);
    memset(s.user, 'x', sizeof s.user); /* no terminator */
    assert_int_equal(cf_session_seal(k, &s, &cookie, &err), CF_EINVAL);
    assert_null(cookie);
    cf_session_keys_free(k);
}

static const char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void test_every_altered_character_is_refused(void **state)
{
    (void)state;
    cf_session_keys *k = keys_of(secret);
    cf_session s;
    assert_int_equal(cf_session_new("alice", "free", now, 3600, &s, NULL), 0);
    char *cookie = sealed(k, &s);
    size_t len = strlen(cookie);
    char *copy = strdup(cookie);
    for (size_t i = 0; i < len; i++) {
        /* Three replacements per position, one of them changing only the low bits. */
        const char *at = strchr(url_alphabet, cookie[i]);
        size_t pos = (size_t)(at - url_alphabet);
        size_t subs[3] = {(pos + 1) % 64, (pos + 32) % 64, pos ^ 3};
        for (int j = 0; j < 3; j++) {
            strcpy(copy, cookie);
            copy[i] = url_alphabet[subs[j]];
            expect_refused(k, copy, CF_SESSION_INVALID, "session cookie refused");
        }
    }
    /* Cut short or lengthened. */
    for (size_t cut = 0; cut < len; cut++) {
        strcpy(copy, cookie);
        copy[cut] = '\0';
        expect_refused(k, copy, CF_SESSION_INVALID, "refused");
    }
    char *longer = malloc(len + 5);
    snprintf(longer, len + 5, "%sAAAA", cookie);
    expect_refused(k, longer, CF_SESSION_INVALID, "refused");
    free(longer);
    free(copy);
    free(cookie);
    cf_session_keys_free(k);
}

static void test_wrong_key_expired_and_garbage(void **state)
{
    (void)state;
    cf_session_keys *k = keys_of(secret), *other = keys_of("another secret, also of at least 32 bytes");
    cf_session s, back;
    assert_int_equal(cf_session_new("alice", "free", now - 100, 100, &s, NULL), 0);
    char *cookie = sealed(k, &s);
    cf_err err = {0};
    /* expires == now: over. */
    assert_int_equal(cf_session_open(k, cookie, now, &back, &err), CF_EDENIED);
    assert_int_equal(err.detail, CF_SESSION_EXPIRED);
    assert_non_null(strstr(err.msg, "expired"));
    assert_int_equal(cf_session_open(k, cookie, now - 1, &back, &err), 0);
    assert_int_equal(cf_session_open(other, cookie, now - 1, &back, &err), CF_EDENIED);
    assert_int_equal(err.detail, CF_SESSION_INVALID);
    assert_non_null(strstr(err.msg, "not sealed by this console's secret"));

    expect_refused(k, NULL, CF_SESSION_INVALID, "absent");
    expect_refused(k, "", CF_SESSION_INVALID, "too short");
    expect_refused(k, "A", CF_SESSION_INVALID, "base64url");
    expect_refused(k, "!!!!", CF_SESSION_INVALID, "base64url");
    expect_refused(k, "abc=", CF_SESSION_INVALID, "base64url");
    expect_refused(k, "ab+/", CF_SESSION_INVALID, "base64url");
    expect_refused(k, "coffer_session=abc", CF_SESSION_INVALID, "base64url");
    expect_refused(k, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CF_SESSION_INVALID, "too short");

    char *huge = malloc(CF_SESSION_COOKIE_MAX + 2);
    memset(huge, 'A', CF_SESSION_COOKIE_MAX + 1);
    huge[CF_SESSION_COOKIE_MAX + 1] = '\0';
    expect_refused(k, huge, CF_SESSION_INVALID, "longer than 4096");
    huge[CF_SESSION_COOKIE_MAX] = '\0'; /* 4096 characters: decodable, but no session is that long */
    expect_refused(k, huge, CF_SESSION_INVALID, "too long");
    free(huge);
    free(cookie);
    cf_session_keys_free(other);
    cf_session_keys_free(k);
}

static void test_short_secrets_are_refused(void **state)
{
    (void)state;
    cf_session_keys *k = (cf_session_keys *)1;
    cf_err err = {0};
    assert_int_equal(cf_session_keys_new("0123456789abcdef0123456789abcde", 31, &k, &err), CF_EINVAL);
    assert_null(k);
    assert_non_null(strstr(err.msg, "at least 32 bytes"));
    assert_null(strstr(err.msg, "0123456789abcdef"));
    assert_int_equal(cf_session_keys_new(NULL, 40, &k, &err), CF_EINVAL);
    assert_int_equal(cf_session_keys_new("0123456789abcdef0123456789abcdef", 32, &k, &err), 0);
    cf_session_keys_free(k);
}

/* The documented format, built here with OpenSSL alone: HKDF-SHA256(secret, info), then
 * nonce | AES-256-GCM(plaintext) | tag in base64url. */
static char *independent_seal(const char *sec, const unsigned char *plain, size_t n)
{
    unsigned char key[32], nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, buf[512];
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)sec, strlen(sec)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)"coffer console session v1", 25),
        OSSL_PARAM_construct_end(),
    };
    assert_int_equal(EVP_KDF_derive(kctx, key, sizeof key, params), 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    memcpy(buf, nonce, 12);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, buf + 12, &len, plain, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, buf + 12 + len, &fin), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + n), 1);
    EVP_CIPHER_CTX_free(ctx);
    size_t total = 12 + n + 16;
    char *out = malloc(4 * total / 3 + 4);
    int enc = EVP_EncodeBlock((unsigned char *)out, buf, (int)total);
    while (enc && out[enc - 1] == '=')
        out[--enc] = '\0';
    for (int i = 0; i < enc; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static size_t v1_plaintext(unsigned char version, const char *user, const char *tier, int64_t issued,
                           int64_t expires, unsigned char *p)
{
    size_t n = 0;
    p[n++] = version;
    p[n++] = (unsigned char)strlen(user);
    memcpy(p + n, user, strlen(user));
    n += strlen(user);
    p[n++] = (unsigned char)strlen(tier);
    memcpy(p + n, tier, strlen(tier));
    n += strlen(tier);
    for (int i = 7; i >= 0; i--)
        p[n++] = (unsigned char)((uint64_t)issued >> (8 * i));
    for (int i = 7; i >= 0; i--)
        p[n++] = (unsigned char)((uint64_t)expires >> (8 * i));
    memset(p + n, 'c', 43);
    return n + 43;
}

static void test_layout_matches_the_documented_format_and_versions(void **state)
{
    (void)state;
    cf_session_keys *k = keys_of(secret);
    unsigned char p[256];
    size_t n = v1_plaintext(1, "bob", "free", now - 10, now + 10, p);
    char *cookie = independent_seal(secret, p, n);
    cf_session back;
    cf_err err = {0};
    assert_int_equal(cf_session_open(k, cookie, now, &back, &err), 0);
    assert_string_equal(back.user, "bob");
    assert_string_equal(back.tier, "free");
    assert_int_equal(back.issued, now - 10);
    assert_int_equal(back.csrf[42], 'c');
    free(cookie);

    n = v1_plaintext(2, "bob", "free", now - 10, now + 10, p);
    cookie = independent_seal(secret, p, n);
    expect_refused(k, cookie, CF_SESSION_INVALID, "version 2 is not supported");
    free(cookie);

    /* Authentic but malformed insides (a future layout under version 1 by mistake) are refused too. */
    n = v1_plaintext(1, "bob", "free", now - 10, now + 10, p);
    p[1] = 200;
    cookie = independent_seal(secret, p, n);
    expect_refused(k, cookie, CF_SESSION_INVALID, "user field");
    free(cookie);
    n = v1_plaintext(1, "b b", "free", now - 10, now + 10, p);
    cookie = independent_seal(secret, p, n);
    expect_refused(k, cookie, CF_SESSION_INVALID, "bad user or tier");
    free(cookie);
    n = v1_plaintext(1, "bob", "free", now - 10, now + 10, p);
    cookie = independent_seal(secret, p, n - 1);
    expect_refused(k, cookie, CF_SESSION_INVALID, "length");
    free(cookie);
    cf_session_keys_free(k);
}

static char dir[] = "/tmp/coffer-session-XXXXXX";

static void test_secret_from_env_file_first_then_value(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/coffer-session-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/secret", dir);
    const char *file_secret = "file-secret-0123456789abcdef0123456789\n";
    assert_int_equal(cf_fs_write_atomic(path, file_secret, strlen(file_secret), 0600, NULL), 0);
    char *got = NULL;
    size_t len = 0;
    cf_err err = {0};
    captured c = {{0}};
    cf_logger log = {CF_LOG_DEBUG, capture, &c};

    unsetenv("COFFER_CONSOLE_SESSION_SECRET_FILE");
    unsetenv("COFFER_CONSOLE_SESSION_SECRET");
    assert_int_equal(cf_session_secret_from_env_log(&log, &got, &len, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "COFFER_CONSOLE_SESSION_SECRET_FILE"));

    setenv("COFFER_CONSOLE_SESSION_SECRET", "value-secret-0123456789abcdef0123456789", 1);
    assert_int_equal(cf_session_secret_from_env_log(&log, &got, &len, &err), 0);
    assert_string_equal(got, "value-secret-0123456789abcdef0123456789");
    free(got);

    setenv("COFFER_CONSOLE_SESSION_SECRET_FILE", path, 1);
    assert_int_equal(cf_session_secret_from_env_log(&log, &got, &len, &err), 0);
    assert_int_equal(len, strlen(file_secret) - 1); /* one trailing newline trimmed */
    assert_memory_equal(got, file_secret, len);
    assert_string_equal(c.lines, "");
    free(got);

    /* Only one newline goes: the rest is the secret's. */
    const char *two = "file-secret-0123456789abcdef0123456789\n\n";
    assert_int_equal(cf_fs_write_atomic(path, two, strlen(two), 0644, NULL), 0);
    assert_int_equal(cf_session_secret_from_env_log(&log, &got, &len, &err), 0);
    assert_int_equal(len, strlen(two) - 1);
    assert_non_null(strstr(c.lines, "readable or writable by group or others"));
    assert_null(strstr(c.lines, "file-secret"));
    free(got);

    const char *short_secret = "short-secret\n";
    assert_int_equal(cf_fs_write_atomic(path, short_secret, strlen(short_secret), 0600, NULL), 0);
    assert_int_equal(cf_session_secret_from_env_log(&log, &got, &len, &err), CF_EINVAL);
    assert_null(got);
    assert_non_null(strstr(err.msg, "at least 32 bytes"));
    assert_non_null(strstr(err.msg, "COFFER_CONSOLE_SESSION_SECRET_FILE"));
    assert_null(strstr(err.msg, "short-secret"));

    unsetenv("COFFER_CONSOLE_SESSION_SECRET_FILE");
    setenv("COFFER_CONSOLE_SESSION_SECRET", "tiny", 1);
    assert_int_equal(cf_session_secret_from_env(&got, &len, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "at least 32 bytes"));
    assert_null(strstr(err.msg, "tiny"));

    setenv("COFFER_CONSOLE_SESSION_SECRET_FILE", dir, 1);
    assert_int_equal(cf_session_secret_from_env(&got, &len, &err), CF_EINVAL);
    snprintf(path, sizeof path, "%s/absent", dir);
    setenv("COFFER_CONSOLE_SESSION_SECRET_FILE", path, 1);
    assert_int_equal(cf_session_secret_from_env(&got, &len, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, path));
    unsetenv("COFFER_CONSOLE_SESSION_SECRET_FILE");
    unsetenv("COFFER_CONSOLE_SESSION_SECRET");
    cf_fs_remove_tree(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_with_a_fresh_csrf_and_nonce),
        cmocka_unit_test(test_new_and_seal_refuse_bad_fields),
        cmocka_unit_test(test_every_altered_character_is_refused),
        cmocka_unit_test(test_wrong_key_expired_and_garbage),
        cmocka_unit_test(test_short_secrets_are_refused),
        cmocka_unit_test(test_layout_matches_the_documented_format_and_versions),
        cmocka_unit_test(test_secret_from_env_file_first_then_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
