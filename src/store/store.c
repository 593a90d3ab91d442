/*
 * store.c - the ground floor of the store: what every other file of src/store/ may call, as it
 * calls none of them: LMDB's errors as CF_E… codes, where a data file lives, and the settings
 * of an open store.
 */
#include <errno.h>
#include <stdio.h>

#include "crypto/hash.h"
#include "store/store_int.h"

int cf_store_lmdb_err(cf_err *err, int mdb_rc, const char *what)
{
    int code = mdb_rc == MDB_MAP_FULL ? CF_ENOSPACE : mdb_rc == ENOSPC ? CF_ENOSPACE : CF_EIO;
    return cf_err_set(err, code, "index %s failed: %s", what, mdb_strerror(mdb_rc));
}

void cf_store_data_path(const cf_store *s, const unsigned char id[CF_STORE_ID_LEN], char *path)
{
    char hex[CF_STORE_ID_LEN * 2 + 1];
    cf_hex_encode(id, CF_STORE_ID_LEN, hex);
    snprintf(path, PATH_MAX, "%s/%.2s/%.2s/%s", s->objects_dir, hex, hex + 2, hex);
}

const char *cf_store_dir(const cf_store *s)
{
    return s->dir;
}

void cf_store_set_inline_max(cf_store *s, size_t max)
{
    s->inline_max = max;
}

void cf_store_fail_nth_write(cf_store *s, int n)
{
    atomic_store(&s->fail_nth_write, n);
}

int cf_store_read_cursor(cf_store *s, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur, cf_err *err)
{
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    if ((rc = mdb_cursor_open(*txn, dbi, cur))) {
        mdb_txn_abort(*txn);
        return cf_store_lmdb_err(err, rc, "cursor");
    }
    return 0;
}
