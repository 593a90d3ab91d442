/*
 * upload.h - what upload.c lends to the bucket's deletion (store.c). Internal to src/store/.
 */
#ifndef CF_STORE_UPLOAD_H
#define CF_STORE_UPLOAD_H

#include "store/store_int.h"

/* Drops, inside txn, the uploads of bucket (when non-NULL) or those initiated before
 * cutoff_ns, listing their data as garbage and appending it to *freed for cf_store_reclaim. */
int cf_store_uploads_drop_in(cf_store *s, MDB_txn *txn, const char *bucket, int64_t cutoff_ns,
                             cf_object_info *freed, size_t *dropped);

#endif
