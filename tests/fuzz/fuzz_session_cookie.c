/*
 * fuzz_session_cookie.c - the session cookie arrives from any browser or script, so
 * cf_session_open must refuse every value it did not seal, without crashing or reading past it.
 *
 * The input is a cookie value opened under a fixed key at the end of time. Postconditions: it
 * is refused with CF_EDENIED and a reason, as invalid, or as expired only when it is authentic
 * (the committed corpus holds a few sealed under the fuzz key, so that the fuzzer reaches the
 * layout checks behind the tag); the output is left untouched; an authentic one opened at time
 * 0 holds a well-formed user and tier. Then the input's bytes become a session (user and tier
 * mapped into their alphabets), which must survive seal and open unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "console/session.h"
#include "console/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_secret[] = "coffer fuzz session secret, 32+ bytes long";

static void map_into(const uint8_t *p, size_t n, const char *alphabet, char *out, size_t max)
{
    size_t alen = strlen(alphabet), len = n < max ? n : max;
    if (len == 0)
        len = 1;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[(i < n ? p[i] : 0) % alen];
    out[len] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cf_session_keys *keys;
    if (!keys && cf_session_keys_new(fuzz_secret, strlen(fuzz_secret), &keys, NULL) != 0)
        abort();
    char *cookie = malloc(size + 1);
    check(cookie);
    memcpy(cookie, data, size);
    cookie[size] = '\0';
    cf_session out;
    memset(&out, 0x77, sizeof out);
    cf_err err = {0};
    int rc = cf_session_open(keys, cookie, INT64_MAX, &out, &err);
    check(rc == CF_EDENIED && err.msg[0]);
    check(err.detail == CF_SESSION_INVALID || err.detail == CF_SESSION_EXPIRED);
    for (size_t i = 0; i < sizeof out; i++)
        check(((unsigned char *)&out)[i] == 0x77);
    if (err.detail == CF_SESSION_EXPIRED) {
        rc = cf_session_open(keys, cookie, INT64_MIN, &out, &err);
        check(rc == 0 || err.detail == CF_SESSION_EXPIRED);
        check(rc != 0 || (cf_users_valid_name(out.user) && cf_users_valid_tier(out.tier)));
    }
    free(cookie);

    cf_session s;
    char user[65], tier[33];
    size_t half = size / 2;
    map_into(data, half, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-", user, 64);
    map_into(data + half, size - half, "abcdefghijklmnopqrstuvwxyz0123456789-", tier, 32);
    int64_t issued = size >= 8 ? (int64_t)((uint64_t)data[0] << 40 | (uint64_t)data[size - 1] << 8) : 1;
    check(cf_session_new(user, tier, issued, 1 + (int64_t)size, &s, NULL) == 0);
    char *sealed = NULL;
    check(cf_session_seal(keys, &s, &sealed, NULL) == 0);
    cf_session back;
    check(cf_session_open(keys, sealed, issued, &back, NULL) == 0);
    check(strcmp(back.user, user) == 0 && strcmp(back.tier, tier) == 0 && strcmp(back.csrf, s.csrf) == 0);
    check(back.issued == issued && back.expires == issued + 1 + (int64_t)size);
    check(cf_session_open(keys, sealed, back.expires, &back, &err) == CF_EDENIED &&
          err.detail == CF_SESSION_EXPIRED);
    free(sealed);
    return 0;
}
