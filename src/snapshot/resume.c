#include "snapshot/resume.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/fs.h"

/* Each field ends with a newline and strings are length-prefixed, so that no two option sets
 * hash alike by running into each other. */
static void hash_str(cf_hash *h, const char *s)
{
    char len[24];
    int n = snprintf(len, sizeof len, "%zu:", s ? strlen(s) : (size_t)0);
    cf_hash_update(h, len, (size_t)n);
    if (s)
        cf_hash_update(h, s, strlen(s));
    cf_hash_update(h, "\n", 1);
}

void cf_resume_key(const char *ns, const char *host, const char *source, int stream, cf_codec codec,
                   int level, size_t chunk_size, const char *key_mode, const char *const *exclude,
                   size_t nexclude, int one_file_system, int allow_unreadable, const cf_label *labels,
                   size_t nlabels, char key[512])
{
    unsigned char d[CF_SHA256_LEN];
    char hex[2 * CF_SHA256_LEN + 1], line[128];
    cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    if (h) {
        snprintf(line, sizeof line, "v%d %d %d %d %zu %d %d %zu %zu", CF_RESUME_FORMAT, stream, (int)codec,
                 level, chunk_size, one_file_system, allow_unreadable, nexclude, nlabels);
        hash_str(h, line);
        hash_str(h, ns);
        hash_str(h, host);
        hash_str(h, source);
        hash_str(h, key_mode);
        for (size_t i = 0; i < nexclude; i++)
            hash_str(h, exclude[i]);
        for (size_t i = 0; i < nlabels; i++) {
            hash_str(h, labels[i].key);
            hash_str(h, labels[i].value);
        }
    }
    /* Out of memory: a name of its own that no other run shares (that run is not resumable). */
    if (!h || cf_hash_final(h, d) != 0)
        cf_random_bytes(d, sizeof d);
    cf_hash_free(h);
    cf_hex_encode(d, 16, hex);
    snprintf(key, 512, "%s/.resume/%s.json", ns, hex);
}

void cf_resume_file_fingerprint(const struct stat *st, unsigned char sha256[CF_SHA256_LEN])
{
    char line[160];
    /* "file" first: no directory's walk digest can be fed these bytes (it starts with a path). */
    int n = snprintf(line, sizeof line, "file %llu %llu %lld %lld.%09ld %lld.%09ld\n",
                     (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
                     st->st_ctim.tv_nsec);
    if (cf_sha256(line, (size_t)n, sha256) != 0)
        cf_random_bytes(sha256, CF_SHA256_LEN); /* no digest: one no run shares, so "changed" */
}

int cf_resume_note_part(cf_resume_state *st, unsigned number, uint64_t size, uint32_t crc32c)
{
    if (number == 0 || number > st->nparts + 1)
        return CF_EINTERNAL;
    if (number > st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 64;
        uint64_t *s = realloc(st->sizes, cap * sizeof *s);
        if (s)
            st->sizes = s;
        uint32_t *c = s ? realloc(st->crcs, cap * sizeof *c) : NULL;
        if (!c)
            return CF_ENOMEM;
        st->crcs = c;
        st->cap = cap;
    }
    st->sizes[number - 1] = size;
    st->crcs[number - 1] = crc32c;
    st->nparts = number;
    return 0;
}

void cf_resume_reset(cf_resume_state *st)
{
    free(st->sizes);
    free(st->crcs);
    st->sizes = NULL;
    st->crcs = NULL;
    st->nparts = st->cap = 0;
}

static json_t *hex_of(const unsigned char *p, size_t n)
{
    char hex[2 * CF_ARCHIVE_SALT_LEN + 1];
    cf_hex_encode(p, n, hex);
    return json_string(hex);
}

int cf_resume_save(cf_repo *repo, const cf_resume_state *st, cf_err *err)
{
    json_t *parts = json_array();
    for (size_t i = 0; parts && i < st->nparts; i++)
        if (json_array_append_new(parts,
                                  json_pack("[I,I]", (json_int_t)st->sizes[i], (json_int_t)st->crcs[i])))
            json_decref(parts), parts = NULL;
    json_t *enc = NULL;
    if (st->encrypted)
        enc = json_pack("{s:o,s:s,s:b,s:I,s:I,s:I,s:o}", "salt", hex_of(st->enc.salt, sizeof st->enc.salt),
                        "key_id", st->enc.key_id, "passphrase", st->enc.passphrase, "scrypt_n",
                        (json_int_t)st->enc.scrypt.n, "scrypt_r", (json_int_t)st->enc.scrypt.r, "scrypt_p",
                        (json_int_t)st->enc.scrypt.p, "scrypt_salt",
                        hex_of(st->enc.scrypt.salt, sizeof st->enc.scrypt.salt));
    json_t *doc = parts && (enc || !st->encrypted)
                      ? json_pack("{s:i,s:s,s:I,s:b,s:o,s:s,s:I,s:o,s:o}", "format", CF_RESUME_FORMAT, "id",
                                  st->id, "created_ns", (json_int_t)st->created_ns, "stream", st->stream,
                                  "fingerprint", hex_of(st->fingerprint, sizeof st->fingerprint), "upload_id",
                                  st->upload_id, "part_size", (json_int_t)st->part_size, "encryption",
                                  enc ? enc : json_null(), "parts", parts)
                      : NULL;
    if (!doc) {
        json_decref(parts);
        json_decref(enc);
    }
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory writing the resume state");
    int rc = cf_snapshot_put_small(repo, st->key, text, strlen(text), err);
    free(text);
    return rc;
}

int cf_snapshot_put_small(cf_repo *repo, const char *key, const void *p, size_t n, cf_err *err)
{
    cf_repo_writer *w = NULL;
    int rc = cf_repo_writer_begin(repo, key, n, &w, err);
    if (!rc)
        rc = cf_repo_writer_write(w, p, n, err);
    if (!rc) {
        rc = cf_repo_writer_commit(w, err);
        w = NULL;
    }
    cf_repo_writer_abort(w);
    return rc;
}

static int append(void *ctx, const void *p, size_t n, cf_err *err)
{
    return cf_buf_append(ctx, p, n) ? cf_err_set(err, CF_ECORRUPT, "the resume state is too large") : 0;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    return s && strlen(s) == 2 * n && cf_hex_decode(s, n, out) == 0 ? 0 : -1;
}

int cf_resume_load(cf_repo *repo, cf_resume_state *st, cf_err *err)
{
    cf_buf b;
    cf_buf_init(&b, (size_t)4 << 20); /* 10,000 parts take about 250 KiB */
    int rc = cf_repo_get(repo, st->key, 0, UINT64_MAX, append, &b, err);
    if (!rc)
        rc = cf_resume_parse(b.data ? b.data : "", b.len, st, err);
    cf_buf_cleanup(&b);
    return rc;
}

int cf_resume_parse(const char *text, size_t len, cf_resume_state *st, cf_err *err)
{
    json_t *doc = json_loadb(text, len, 0, NULL);
    int rc = 0;
    const char *id = NULL, *fp = NULL, *upload = NULL;
    json_int_t format = 0, created = 0, part_size = 0;
    int stream = 0;
    json_t *enc = NULL, *parts = NULL;
    cf_resume_reset(st);
    if (!doc ||
        json_unpack(doc, "{s:I,s:s,s:I,s:b,s:s,s:s,s:I,s:o,s:o}", "format", &format, "id", &id, "created_ns",
                    &created, "stream", &stream, "fingerprint", &fp, "upload_id", &upload, "part_size",
                    &part_size, "encryption", &enc, "parts", &parts) != 0 ||
        format != CF_RESUME_FORMAT || !cf_snapshot_id_valid(id) ||
        unhex(fp, st->fingerprint, CF_SHA256_LEN) || strlen(upload) >= sizeof st->upload_id ||
        part_size <= 0 || !json_is_array(parts))
        rc = CF_ECORRUPT;
    if (!rc) {
        snprintf(st->id, sizeof st->id, "%s", id);
        snprintf(st->upload_id, sizeof st->upload_id, "%s", upload);
        st->created_ns = created;
        st->stream = stream;
        st->part_size = (size_t)part_size;
        st->encrypted = json_is_object(enc);
        memset(&st->enc, 0, sizeof st->enc);
    }
    if (!rc && st->encrypted) {
        const char *salt = NULL, *key_id = NULL, *ssalt = NULL;
        json_int_t n = 0, r = 0, p = 0;
        int pass = 0;
        if (json_unpack(enc, "{s:s,s:s,s:b,s:I,s:I,s:I,s:s}", "salt", &salt, "key_id", &key_id, "passphrase",
                        &pass, "scrypt_n", &n, "scrypt_r", &r, "scrypt_p", &p, "scrypt_salt", &ssalt) != 0 ||
            unhex(salt, st->enc.salt, sizeof st->enc.salt) ||
            unhex(ssalt, st->enc.scrypt.salt, sizeof st->enc.scrypt.salt) ||
            strlen(key_id) != CF_ARCHIVE_KEY_ID_LEN || n < 0 || r < 0 || p < 0 || r > UINT32_MAX ||
            p > UINT32_MAX)
            rc = CF_ECORRUPT;
        else {
            snprintf(st->enc.key_id, sizeof st->enc.key_id, "%s", key_id);
            st->enc.passphrase = pass;
            st->enc.scrypt.n = (uint64_t)n;
            st->enc.scrypt.r = (uint32_t)r;
            st->enc.scrypt.p = (uint32_t)p;
        }
    }
    for (size_t i = 0; !rc && i < json_array_size(parts); i++) {
        json_int_t size = -1, crc = -1;
        if (json_unpack(json_array_get(parts, i), "[I,I]", &size, &crc) != 0 || size <= 0 || crc < 0 ||
            crc > UINT32_MAX)
            rc = CF_ECORRUPT;
        else
            rc = cf_resume_note_part(st, (unsigned)i + 1, (uint64_t)size, (uint32_t)crc);
    }
    json_decref(doc);
    if (rc == CF_ECORRUPT)
        return cf_err_set(err, rc, "resume state '%s' is not one this version of coffer wrote", st->key);
    return rc ? cf_err_set(err, rc, "out of memory reading the resume state") : 0;
}

int cf_restore_state_add_dir(cf_restore_state *st, const cf_tar_entry_info *e)
{
    if (st->ndirs == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 64;
        cf_tar_entry_info *v = realloc(st->dirs, cap * sizeof *v);
        if (!v)
            return CF_ENOMEM;
        st->dirs = v;
        st->cap = cap;
    }
    cf_tar_entry_info *d = &st->dirs[st->ndirs];
    *d = *e;
    if (!(d->rel = strdup(e->rel)))
        return CF_ENOMEM;
    st->ndirs++;
    return 0;
}

void cf_restore_state_free(cf_restore_state *st)
{
    for (size_t i = 0; i < st->ndirs; i++)
        free((char *)st->dirs[i].rel);
    free(st->dirs);
    st->dirs = NULL;
    st->ndirs = st->cap = 0;
}

int cf_restore_state_save(const char *path, const cf_restore_state *st, cf_err *err)
{
    json_t *dirs = json_array();
    for (size_t i = 0; dirs && i < st->ndirs; i++) {
        const cf_tar_entry_info *d = &st->dirs[i];
        if (json_array_append_new(dirs,
                                  json_pack("[s,i,I,I,I,I]", d->rel, (int)d->mode, (json_int_t)d->mtime,
                                            (json_int_t)d->mtime_ns, (json_int_t)d->uid, (json_int_t)d->gid)))
            json_decref(dirs), dirs = NULL;
    }
    json_t *doc = dirs ? json_pack("{s:i,s:s,s:o,s:I,s:I,s:o}", "format", CF_RESUME_FORMAT, "id", st->id,
                                   "sha256", hex_of(st->sha256, sizeof st->sha256), "offset",
                                   (json_int_t)st->offset, "done", (json_int_t)st->done, "dirs", dirs)
                       : NULL;
    if (!doc)
        json_decref(dirs);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory writing the restore state");
    int rc = cf_fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

int cf_restore_state_load(const char *path, cf_restore_state *st, cf_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = cf_fs_read_small(path, (size_t)256 << 20, &text, &len, err);
    if (rc)
        return rc;
    json_t *doc = json_loadb(text, len, 0, NULL), *dirs = NULL;
    free(text);
    const char *id = NULL, *sha = NULL;
    json_int_t format = 0, offset = -1, done = -1;
    memset(st, 0, sizeof *st);
    if (!doc ||
        json_unpack(doc, "{s:I,s:s,s:s,s:I,s:I,s:o}", "format", &format, "id", &id, "sha256", &sha, "offset",
                    &offset, "done", &done, "dirs", &dirs) != 0 ||
        format != CF_RESUME_FORMAT || !cf_snapshot_id_valid(id) || unhex(sha, st->sha256, CF_SHA256_LEN) ||
        offset < 0 || done < 0 || !json_is_array(dirs))
        rc = CF_ECORRUPT;
    if (!rc) {
        snprintf(st->id, sizeof st->id, "%s", id);
        st->offset = (uint64_t)offset;
        st->done = (uint64_t)done;
    }
    for (size_t i = 0; !rc && i < json_array_size(dirs); i++) {
        const char *rel = NULL;
        int mode = 0;
        json_int_t mtime = 0, ns = 0, uid = 0, gid = 0;
        if (json_unpack(json_array_get(dirs, i), "[s,i,I,I,I,I]", &rel, &mode, &mtime, &ns, &uid, &gid) !=
                0 ||
            !*rel || rel[0] == '/' || strstr(rel, "..") || ns < 0 || ns > 999999999)
            rc = CF_ECORRUPT;
        else {
            cf_tar_entry_info e = {.rel = rel,
                                   .is_dir = 1,
                                   .mode = (unsigned)mode,
                                   .mtime = mtime,
                                   .mtime_ns = (long)ns,
                                   .uid = uid,
                                   .gid = gid};
            rc = cf_restore_state_add_dir(st, &e);
        }
    }
    json_decref(doc);
    if (rc) {
        cf_restore_state_free(st);
        return rc == CF_ECORRUPT
                   ? cf_err_set(err, rc, "restore state '%s' is not one this version wrote", path)
                   : cf_err_set(err, rc, "out of memory reading the restore state");
    }
    return 0;
}
