/*
 * fuzz_query_auth.c - a presigned URL's X-Amz-* parameters are untrusted. The input is a query
 * string ("name=value&name2=value2", already decoded, '&'-separated); it is parsed as the server
 * parses it.
 *
 * Postconditions: a parse that succeeds yields the fields AWS requires in the forms the parser
 * promises (a 64-digit signature, a 16-character date whose day is the credential's, an expiry
 * of 1 to 7 days in seconds); a failure names no signature in its message; and
 * cf_sigv4_has_query_auth agrees with the presence of the X-Amz-* names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "crypto/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192 || memchr(data, '\0', size))
        return 0;
    char *text = malloc(size + 1);
    check(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    cf_sigv4_param params[MAX_PARAMS];
    size_t n = 0;
    int named = 0;
    for (char *save, *tok = strtok_r(text, "&", &save); tok && n < MAX_PARAMS; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        params[n].name = tok;
        params[n].value = eq ? eq + 1 : "";
        named |= !strcmp(tok, "X-Amz-Algorithm") || !strcmp(tok, "X-Amz-Credential") || !strcmp(tok, "X-Amz-Signature");
        n++;
    }
    check(cf_sigv4_has_query_auth(params, n) == named);

    cf_sigv4_query_auth q;
    cf_err err = {0};
    if (cf_sigv4_parse_query_auth(params, n, &q, &err) == 0) {
        check(strlen(q.auth.signature) == 64);
        for (const char *c = q.auth.signature; *c; c++)
            check((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
        check(strlen(q.amz_date) == 16 && q.amz_date[8] == 'T' && q.amz_date[15] == 'Z');
        check(strncmp(q.amz_date, q.auth.date, 8) == 0);
        check(q.expires >= 1 && q.expires <= 604800);
        check(q.auth.access_key[0] != '\0' && q.auth.signed_headers[0] != '\0');
    } else {
        check(err.code != 0 && err.msg[0] != '\0');
        /* A signature-like value (16+ hex digits) must not be echoed; other text may coincide
         * with words of the message. */
        for (size_t i = 0; i < n; i++)
            if (!strcmp(params[i].name, "X-Amz-Signature") && strlen(params[i].value) >= 16 &&
                strspn(params[i].value, "0123456789abcdefABCDEF") == strlen(params[i].value))
                check(strstr(err.msg, params[i].value) == NULL);
    }
    free(text);
    return 0;
}
