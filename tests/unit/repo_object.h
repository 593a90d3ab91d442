/* repo_object.h - objects laid into a cf_repo by a test, and their user metadata read back: what
 * the tests of the repository's mirror operations, of the content-type fix and of the mirror's
 * verification build their buckets with. Static inline: each test file takes what it needs. */
#ifndef CF_TEST_REPO_OBJECT_H
#define CF_TEST_REPO_OBJECT_H

#include <string.h>

#include "storage/repo.h"

/* Stores the n bytes at p as key with the options o (NULL: the defaults); anything else fails
 * the test, naming the key and the repository's reason. */
static inline void put_object(cf_repo *r, const char *key, const void *p, size_t n, const cf_repo_put_opts *o)
{
    cf_repo_writer *w;
    cf_err err;
    if (cf_repo_writer_begin_opts(r, key, n, o, &w, &err) != 0)
        fail_msg("put '%s': %s", key, err.msg);
    if (cf_repo_writer_write(w, p, n, &err) != 0 || cf_repo_writer_commit(w, &err) != 0)
        fail_msg("put '%s': %s", key, err.msg);
}

/* The value of the user metadata name, or NULL. */
static inline const char *meta_of(const cf_repo_info *info, const char *name)
{
    for (size_t i = 0; i < info->nmeta; i++)
        if (!strcmp(info->meta[i].name, name))
            return info->meta[i].value;
    return NULL;
}

#endif
