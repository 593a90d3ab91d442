/*
 * fuzz_console_api.c - what the console parses from a request: the login body, the page
 * parameters of a snapshot listing, a proxy download's token and its Range header.
 *
 * The input is split at newlines into fields: the whole input is also tried as a login body and
 * as a Range header. Postconditions:
 *   - a login body accepted gives a non-empty user name of at most 64 bytes and a non-empty
 *     password of at most 1024, neither holding a NUL, and the pair written back as JSON parses
 *     to itself; a refusal names its problem;
 *   - page parameters accepted give a limit in 1..1000; a refusal names the parameter;
 *   - a token check accepts exactly the signature computed for its fields (and only before
 *     expiry): the same signature with one digit changed, or for another tier, is refused;
 *   - a range accepted lies inside the object and is not empty;
 *   - an archive key accepted for a chain starts with "CHAIN/" and has no empty, "." or ".."
 *     segment and no control character or backslash; "CHAIN/x" is accepted for a chain with no
 *     '/' or control character.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_int.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[CF_SHA256_LEN] = "fuzz-console-download-key-012345";

static void check_login(const char *text, size_t len)
{
    char *user, *password;
    int malformed;
    cf_err err = {0};
    int rc = cf_console_login_body(text, len, &user, &password, &malformed, &err);
    if (rc) {
        check(rc == CF_EINVAL || rc == CF_ENOMEM);
        check(err.msg[0] != '\0');
        check(!malformed || strstr(err.msg, "JSON"));
        return;
    }
    size_t ul = strlen(user), pl = strlen(password);
    check(ul >= 1 && ul <= 64 && pl >= 1 && pl <= 1024);
    json_t *again = json_pack("{s:s,s:s}", "username", user, "password", password);
    char *text2 = again ? json_dumps(again, JSON_COMPACT) : NULL;
    if (text2) {
        char *u2, *p2;
        check(cf_console_login_body(text2, strlen(text2), &u2, &p2, &malformed, &err) == 0);
        check(strcmp(u2, user) == 0 && strcmp(p2, password) == 0);
        free(u2);
        free(p2);
    }
    free(text2);
    json_decref(again);
    free(user);
    free(password);
}

static void check_page(const char *limit, const char *cursor)
{
    long n = -5;
    cf_err err = {0};
    int rc = cf_console_page_params(limit, cursor, &n, &err);
    if (rc == 0)
        check(n >= 1 && n <= 1000);
    else
        check(rc == CF_EINVAL && (strstr(err.msg, "limit") || strstr(err.msg, "cursor")));
}

static void check_token(const char *chain, const char *id, const char *tier, const char *expires,
                        const char *sig)
{
    cf_err err = {0};
    int64_t now = 1700000000;
    int rc = cf_console_token_check(key, chain, id, tier, expires, sig, now, &err);
    /* The fuzzer cannot forge an HMAC: whatever it sends as sig is refused, unless it is the
     * one computed below. */
    if (rc == 0)
        check(sig && strlen(sig) == 64);
    else
        check(err.msg[0] != '\0');
    /* The signature for these fields, as download.c makes it. */
    char msg[4096];
    int n = snprintf(msg, sizeof msg, "v1\n%s\n%s\n%s\n%s", chain, id, tier, expires);
    if (n < 0 || (size_t)n >= sizeof msg)
        return;
    unsigned char mac[CF_SHA256_LEN];
    char hex[2 * CF_SHA256_LEN + 1];
    check(cf_hmac_sha256(key, sizeof key, msg, (size_t)n, mac) == 0);
    cf_hex_encode(mac, sizeof mac, hex);
    size_t elen = strlen(expires);
    int well_formed = elen >= 1 && elen <= 18 && strspn(expires, "0123456789") == elen;
    rc = cf_console_token_check(key, chain, id, tier, expires, hex, now, &err);
    if (!well_formed)
        check(rc == CF_EDENIED);
    else
        check(rc == (strtoll(expires, NULL, 10) > now ? 0 : CF_EPRECOND));
    hex[5] = hex[5] == '0' ? '1' : '0';
    check(cf_console_token_check(key, chain, id, tier, expires, hex, now, &err) == CF_EDENIED);
    hex[5] = hex[5] == '0' ? '1' : '0';
    if (well_formed && strcmp(tier, "premium") != 0)
        check(cf_console_token_check(key, chain, id, "premium", expires, hex, now, &err) == CF_EDENIED);
}

static void check_range(const char *h)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 1 << 20, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint64_t start = 7, len = 7;
        int rc = cf_console_range(h, sizes[i], &start, &len);
        check(rc == 0 || rc == CF_EINVAL || rc == CF_ERANGE);
        if (rc == 0)
            check(len >= 1 && start < sizes[i] && len <= sizes[i] - start);
        else
            check(start == 7 && len == 7);
    }
}

static void check_archive_key(const char *chain, const char *k)
{
    size_t n = strlen(chain);
    if (cf_console_archive_key_ok(chain, k)) {
        check(strncmp(k, chain, n) == 0 && k[n] == '/');
        const char *rest = k + n + 1;
        check(*rest && rest[strlen(rest) - 1] != '/' && !strstr(rest, "//") && !strchr(rest, '\\'));
        check(strcmp(rest, ".") && strcmp(rest, "..") && strncmp(rest, "./", 2) && strncmp(rest, "../", 3));
        check(!strstr(rest, "/./") && !strstr(rest, "/../"));
        size_t rl = strlen(rest);
        check(!(rl >= 2 && !strcmp(rest + rl - 2, "/.")) && !(rl >= 3 && !strcmp(rest + rl - 3, "/..")));
        for (const unsigned char *p = (const unsigned char *)rest; *p; p++)
            check(*p >= 0x20 && *p != 0x7f);
    }
    char ok[600];
    if (n < 500) {
        snprintf(ok, sizeof ok, "%s/x", chain);
        check(cf_console_archive_key_ok(chain, ok));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    check(text);
    memcpy(text, data, size);
    text[size] = '\0';
    check_login(text, size);
    check_range(text);

    char *field[5] = {"", "", "", "", ""};
    size_t nf = 0;
    for (char *p = text; nf < 5; nf++) {
        field[nf] = p;
        char *nl = strchr(p, '\n');
        if (!nl) {
            nf++;
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    check_page(nf > 0 ? field[0] : NULL, nf > 1 && field[1][0] ? field[1] : NULL);
    check_token(field[0], field[1], field[2], field[3], field[4]);
    check_archive_key(field[0], field[1]);
    free(text);
    return 0;
}
