/*
 * object_index.h - the objects table inside a transaction (object_index.c): composite keys
 * "bucket\0key" to records, overflow groups hidden. Internal to src/store/.
 *
 * Each returns 0 or a CF_E… code (CF_ENOTFOUND, CF_ECORRUPT, CF_ENOMEM, CF_ETOOBIG, CF_EIO,
 * CF_ENOSPACE); the caller writes the message, as it knows which object it was about.
 */
#ifndef CF_STORE_OBJECT_INDEX_H
#define CF_STORE_OBJECT_INDEX_H

#include "store/store_int.h"

int cf_index_get(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *info);
/* Puts rec under comp. When an older record was there, decodes it into *old and sets *had_old. */
int cf_index_put(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, const void *rec, size_t reclen,
                 cf_object_info *old, int *had_old);
int cf_index_del(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *old,
                 int *had_old);
/* Builds "bucket\0key" into a heap buffer (caller frees); NULL when out of memory. */
char *cf_index_composite(const char *bucket, const char *key, size_t keylen, size_t *complen);

#endif
