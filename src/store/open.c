/*
 * open.c - opening, recovering and closing the store.
 *
 * Recovery is the whole crash story (docs/internals/store.md): every write makes its data file
 * durable before the LMDB commit that references it, and unlinks replaced data only after the
 * commit that dereferenced it. So after a crash there can be only (a) files in tmp/, (b) files
 * listed in garbage, (c) files renamed into objects/ whose commit never happened. Open removes
 * all three.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "store/record.h"
#include "store/store_int.h"
#include "store/txn.h"

#define CLEAN_MARKER "clean-shutdown"
#define MAP_SIZE ((size_t)256 << 30) /* address space only: LMDB grows the file as needed */

static int unlink_garbage(cf_store *s, cf_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = mdb_cursor_open(txn, s->garbage, &cur);
    size_t n = 0;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        char path[PATH_MAX];
        if (k.mv_size != CF_STORE_ID_LEN)
            continue;
        cf_store_data_path(s, k.mv_data, path);
        if (unlink(path) == 0)
            n++;
    }
    if (!rc)
        mdb_cursor_close(cur);
    if (!rc)
        rc = mdb_drop(txn, s->garbage, 0);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "garbage collection");
    if (n) {
        char count[24];
        snprintf(count, sizeof count, "%zu", n);
        cf_log(&s->log, CF_LOG_INFO, "reclaimed replaced data files", "count", count, NULL);
    }
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, CF_STORE_ID_LEN);
}

typedef struct id_set {
    unsigned char (*ids)[CF_STORE_ID_LEN];
    size_t n, cap;
} id_set;

static int id_set_add_record(id_set *set, const void *rec, size_t len)
{
    cf_object_info info;
    int rc = cf_record_decode_meta(rec, len, &info);
    if (rc)
        return rc;
    for (size_t i = 0; i < info.nsegs; i++) {
        if (set->n == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 1024;
            void *p = realloc(set->ids, cap * CF_STORE_ID_LEN);
            if (!p) {
                cf_object_info_cleanup(&info);
                return CF_ENOMEM;
            }
            set->ids = p;
            set->cap = cap;
        }
        memcpy(set->ids[set->n++], info.segs[i].id, CF_STORE_ID_LEN);
    }
    cf_object_info_cleanup(&info);
    return 0;
}

/* Every segment id any object or part record references, sorted for bsearch. */
static int referenced_ids(cf_store *s, id_set *set, cf_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = cf_store_read_cursor(s, s->objects, &txn, &cur, err);
    if (rc)
        return rc;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        const unsigned char *kb = k.mv_data;
        if (k.mv_size == s->head_max + 1 && kb[k.mv_size - 1] == 0xFF) {
            uint32_t count = 0;
            if (v.mv_size >= 5)
                memcpy(&count, (const char *)v.mv_data + 1, 4);
            cf_group_entry *e = malloc(sizeof *e * (count + 1));
            long n = e ? cf_group_parse(v.mv_data, v.mv_size, e, count) : CF_ENOMEM;
            for (long i = 0; n >= 0 && !rc && i < n; i++)
                rc = id_set_add_record(set, e[i].rec, e[i].reclen);
            if (n < 0)
                rc = (int)n;
            free(e);
        } else {
            rc = id_set_add_record(set, v.mv_data, v.mv_size);
        }
    }
    mdb_cursor_close(cur);
    if (!rc && !(rc = mdb_cursor_open(txn, s->parts, &cur) ? CF_EIO : 0)) {
        for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT)
            rc = id_set_add_record(set, v.mv_data, v.mv_size);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    if (rc)
        return cf_err_set(err, rc, "cannot read the index to find unreferenced data: %s", cf_strerror(rc));
    if (set->n)
        qsort(set->ids, set->n, CF_STORE_ID_LEN, cmp_id);
    return 0;
}

/* Removes data files that no record references: left by a crash between rename and commit. */
static int remove_orphans(cf_store *s, cf_err *err)
{
    id_set set = {0};
    int rc = referenced_ids(s, &set, err);
    if (rc)
        return rc;
    size_t removed = 0;
    DIR *d1 = opendir(s->objects_dir);
    struct dirent *e1, *e2, *e3;
    while (d1 && (e1 = readdir(d1))) {
        if (e1->d_name[0] == '.')
            continue;
        char p1[PATH_MAX];
        snprintf(p1, sizeof p1, "%s/%s", s->objects_dir, e1->d_name);
        DIR *d2 = opendir(p1);
        while (d2 && (e2 = readdir(d2))) {
            if (e2->d_name[0] == '.')
                continue;
            char p2[PATH_MAX];
            snprintf(p2, sizeof p2, "%s/%s", p1, e2->d_name);
            DIR *d3 = opendir(p2);
            while (d3 && (e3 = readdir(d3))) {
                if (e3->d_name[0] == '.')
                    continue;
                unsigned char id[CF_STORE_ID_LEN];
                int known = strlen(e3->d_name) == CF_STORE_ID_LEN * 2 &&
                            cf_hex_decode(e3->d_name, CF_STORE_ID_LEN, id) == 0 && set.n &&
                            bsearch(id, set.ids, set.n, CF_STORE_ID_LEN, cmp_id);
                if (!known && unlinkat(dirfd(d3), e3->d_name, 0) == 0)
                    removed++;
            }
            if (d3)
                closedir(d3);
        }
        if (d2)
            closedir(d2);
    }
    if (d1)
        closedir(d1);
    free(set.ids);
    if (removed) {
        char n[24];
        snprintf(n, sizeof n, "%zu", removed);
        cf_log(&s->log, CF_LOG_INFO, "removed data files of uncommitted writes", "count", n, NULL);
    }
    return 0;
}

static int open_env(cf_store *s, cf_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/index.lmdb", s->dir);
    int rc = cf_fs_mkdirs(path, 0700, err);
    if (rc)
        return rc;
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 16)) ||
        (rc = mdb_env_set_maxreaders(s->env, 1024)) || (rc = mdb_env_set_mapsize(s->env, MAP_SIZE)))
        return cf_store_lmdb_err(err, rc, "setup");
    /* NOTLS: read transactions are short and may be taken on any server thread. */
    rc = mdb_env_open(s->env, path, MDB_NOTLS, 0600);
    if (rc)
        return cf_err_set(err, CF_EIO, "cannot open index '%s': %s", path, mdb_strerror(rc));
    s->head_max = (size_t)mdb_env_get_maxkeysize(s->env) - 1;

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        return cf_store_lmdb_err(err, rc, "begin");
    if ((rc = mdb_dbi_open(txn, "buckets", MDB_CREATE, &s->buckets)) ||
        (rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->objects)) ||
        (rc = mdb_dbi_open(txn, "uploads", MDB_CREATE, &s->uploads)) ||
        (rc = mdb_dbi_open(txn, "parts", MDB_CREATE, &s->parts)) ||
        (rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &s->keys)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "garbage", MDB_CREATE, &s->garbage)) ||
        (rc = mdb_dbi_open(txn, "completed", MDB_CREATE, &s->completed))) {
        mdb_txn_abort(txn);
        return cf_store_lmdb_err(err, rc, "open tables");
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "commit");
    /* LMDB syncs its files but never their directory: on a first start data.mdb's name would
     * not survive a power cut, and with it every write acknowledged since. */
    return cf_fs_fsync_dir(path, err);
}

int cf_store_open(const char *dir, const cf_logger *log, cf_store **out, cf_err *err)
{
    cf_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return cf_err_set(err, CF_ENOMEM, "out of memory opening store '%s'", dir);
    }
    if (cf_md5_gather_new(&s->md5) != 0) {
        free(s->dir);
        free(s);
        return cf_err_set(err, CF_ENOMEM, "out of memory opening store '%s'", dir);
    }
    if (log)
        s->log = *log;
    cf_store_txn_init(s);
    s->inline_max = CF_STORE_INLINE_MAX;
    snprintf(s->objects_dir, sizeof s->objects_dir, "%s/objects", dir);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", dir);

    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/" CLEAN_MARKER, dir);
    int rc = cf_fs_mkdirs(dir, 0700, err);
    if (!rc)
        rc = cf_fs_remove_tree(s->tmp_dir, err);
    if (!rc)
        rc = cf_fs_mkdirs(s->tmp_dir, 0700, err);
    if (!rc)
        rc = cf_fs_mkdirs(s->objects_dir, 0700, err);
    if (!rc)
        rc = open_env(s, err);
    if (!rc)
        rc = unlink_garbage(s, err);
    if (!rc && access(marker, F_OK) != 0)
        rc = remove_orphans(s, err);
    /* From here on a crash must trigger the orphan scan again. */
    if (!rc && unlink(marker) == 0)
        rc = cf_fs_fsync_dir(dir, err);
    if (rc) {
        if (s->env)
            mdb_env_close(s->env);
        cf_store_txn_cleanup(s);
        cf_md5_gather_free(s->md5);
        free(s->dir);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void cf_store_close(cf_store *s)
{
    if (!s)
        return;
    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/" CLEAN_MARKER, s->dir);
    mdb_env_sync(s->env, 1);
    mdb_env_close(s->env);
    cf_fs_write_atomic(marker, "", 0, 0600, NULL);
    cf_store_txn_cleanup(s);
    cf_md5_gather_free(s->md5);
    free(s->dir);
    free(s);
}

void cf_store_md5_stats(cf_store *s, uint64_t *alone, uint64_t *side_by_side)
{
    cf_md5_gather_stats(s->md5, alone, side_by_side);
}

int cf_store_check_ready(cf_store *s, cf_err *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    mdb_txn_abort(txn);
    char path[PATH_MAX];
    unsigned char r[8];
    char hex[17];
    cf_random_bytes(r, sizeof r);
    cf_hex_encode(r, sizeof r, hex);
    snprintf(path, sizeof path, "%s/ready-%s", s->tmp_dir, hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_err_sys(err, CF_EIO, errno, "data directory '%s' is not writable", s->tmp_dir);
    int wrc = cf_fs_write_all(fd, "ok", 2, path, err);
    close(fd);
    unlink(path);
    return wrc;
}
