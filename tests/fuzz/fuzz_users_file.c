/*
 * fuzz_users_file.c - the users file, and COFFER_CONSOLE_USERS, are text an operator (or a
 * mounted secret) hands the console; a bad one must be refused with the line named, never crash.
 *
 * Postconditions: a refusal is CF_EINVAL with a message naming a line; an acceptance holds only
 * well-formed names and tiers, no name twice, and formatting it and parsing the text again gives
 * the same users in the same order (the file `coffer console user` writes reads back as itself).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "console/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_users *u = NULL;
    cf_err err = {0};
    int rc = cf_users_parse((const char *)data, size, &u, &err);
    if (rc) {
        check(rc == CF_EINVAL && u == NULL && strstr(err.msg, " line "));
        return 0;
    }
    size_t n = cf_users_count(u);
    for (size_t i = 0; i < n; i++) {
        check(cf_users_valid_name(cf_users_name(u, i)) && cf_users_valid_tier(cf_users_tier(u, i)));
        check(cf_users_find(u, cf_users_name(u, i)) == (long)i);
    }
    char *text = NULL;
    size_t len = 0;
    check(cf_users_format(u, &text, &len, NULL) == 0);
    cf_users *back = NULL;
    check(cf_users_parse(text, len, &back, NULL) == 0);
    check(cf_users_count(back) == n);
    for (size_t i = 0; i < n; i++)
        check(strcmp(cf_users_name(back, i), cf_users_name(u, i)) == 0 &&
              strcmp(cf_users_tier(back, i), cf_users_tier(u, i)) == 0);
    free(text);
    cf_users_free(back);
    cf_users_free(u);
    return 0;
}
