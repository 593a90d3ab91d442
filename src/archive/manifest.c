/*
 * manifest.c - manifest JSON through jansson, and snapshot ids.
 */
#include "archive/manifest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "crypto/hash.h"

#define ALG_NAME "aes-256-gcm-stream"
#define KDF_NAME "hkdf-sha256"

int cf_snapshot_id_new(const cf_clock *clock, time_t t, char out[CF_SNAPSHOT_ID_LEN + 1], cf_err *err)
{
    struct tm tm;
    unsigned char r[2];
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return cf_err_set(err, CF_EINVAL, "time %lld out of range for a snapshot id", (long long)t);
    if (cf_clock_random(clock, r, sizeof r) != 0)
        return cf_err_set(err, CF_EIO, "no randomness for a snapshot id");
    snprintf(out, CF_SNAPSHOT_ID_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ-%02x%02x", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, r[0], r[1]);
    return 0;
}

int cf_snapshot_id_valid(const char *s)
{
    static const char shape[] = "DDDDDDDDTDDDDDDZ-hhhh";
    if (!s || strlen(s) != CF_SNAPSHOT_ID_LEN)
        return 0;
    for (size_t i = 0; i < CF_SNAPSHOT_ID_LEN; i++) {
        char c = s[i], want = shape[i];
        if (want == 'D'   ? !(c >= '0' && c <= '9')
            : want == 'h' ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                          : c != want)
            return 0;
    }
    return 1;
}

static void format_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *hex_json(const unsigned char *p, size_t n)
{
    char hex[2 * 64 + 1];
    cf_hex_encode(p, n, hex);
    return json_string(hex);
}

/* json_object_set_new that remembers a failure instead of returning it at every call. */
static void put(json_t *o, const char *k, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        *bad = 1;
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *juint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

int cf_manifest_write(const cf_manifest *m, char **out, size_t *len, cf_err *err)
{
    int bad = 0;
    char created[32];
    format_time(m->created, created);
    json_t *root = json_object(), *src = json_object(), *labels = json_object(), *arch = json_object(),
           *chunks = json_array(), *enc = NULL;
    put(root, "format", json_integer(m->format ? m->format : CF_MANIFEST_FORMAT), &bad);
    put(root, "id", json_string(m->id), &bad);
    put(root, "namespace", jstr(m->ns), &bad);
    put(root, "created", json_string(created), &bad);
    /* A field of its own rather than a fraction in "created": readers that predate it ignore it
     * and keep reading the snapshot. */
    put(root, "created_ns", json_integer(m->created_ns), &bad);

    put(src, "kind", json_string(m->source.kind == CF_SOURCE_DIR ? "dir" : "stream"), &bad);
    put(src, "host", jstr(m->source.host), &bad);
    if (m->source.kind == CF_SOURCE_DIR) {
        put(src, "path", jstr(m->source.path), &bad);
        json_t *ex = json_array(), *sk = json_array();
        for (size_t i = 0; ex && i < m->source.nexclude; i++)
            if (json_array_append_new(ex, jstr(m->source.exclude[i])) != 0)
                bad = 1;
        put(src, "exclude", ex, &bad);
        put(src, "one_file_system", json_boolean(m->source.one_file_system), &bad);
        for (size_t i = 0; sk && i < m->source.nskipped; i++) {
            json_t *o = json_object();
            put(o, "path", jstr(m->source.skipped[i].path), &bad);
            put(o, "error", jstr(m->source.skipped[i].error), &bad);
            if (!o || json_array_append_new(sk, o) != 0)
                bad = 1;
        }
        put(src, "skipped", sk, &bad);
    } else
        put(src, "command", jstr(m->source.command), &bad);
    put(root, "source", src, &bad);

    for (size_t i = 0; i < m->nlabels; i++)
        put(labels, m->labels[i].key, jstr(m->labels[i].value), &bad);
    put(root, "labels", labels, &bad);

    put(arch, "key", jstr(m->archive.key), &bad);
    put(arch, "compression", json_string(cf_codec_name(m->archive.compression)), &bad);
    put(arch, "level", json_integer(m->archive.level), &bad);
    put(arch, "size", juint(m->archive.size), &bad);
    put(arch, "sha256", hex_json(m->archive.sha256, 32), &bad);
    put(arch, "raw_size", juint(m->archive.raw_size), &bad);
    put(arch, "files", juint(m->archive.files), &bad);
    put(root, "archive", arch, &bad);

    for (size_t i = 0; chunks && i < m->nchunks; i++) {
        const cf_archive_chunk *c = &m->chunks[i];
        json_t *o = json_object();
        put(o, "offset", juint(c->offset), &bad);
        put(o, "size", juint(c->size), &bad);
        put(o, "raw_size", juint(c->raw_size), &bad);
        put(o, "crc32c", juint(c->crc32c), &bad);
        if (!o || json_array_append_new(chunks, o) != 0)
            bad = 1;
    }
    put(root, "chunks", chunks, &bad);

    if (m->encryption) {
        const cf_manifest_encryption *e = m->encryption;
        enc = json_object();
        put(enc, "alg", json_string(ALG_NAME), &bad);
        put(enc, "kdf", json_string(KDF_NAME), &bad);
        put(enc, "salt", hex_json(e->salt, sizeof e->salt), &bad);
        put(enc, "key_id", json_string(e->key_id), &bad);
        put(enc, "key_source", json_string(e->passphrase ? "passphrase" : "file"), &bad);
        if (e->passphrase) {
            json_t *s = json_object();
            put(s, "n", juint(e->scrypt.n), &bad);
            put(s, "r", juint(e->scrypt.r), &bad);
            put(s, "p", juint(e->scrypt.p), &bad);
            put(s, "salt", hex_json(e->scrypt.salt, sizeof e->scrypt.salt), &bad);
            put(enc, "scrypt", s, &bad);
        } else {
            put(enc, "scrypt", json_null(), &bad);
        }
    }
    put(root, "encryption", enc ? enc : json_null(), &bad);
    put(root, "tool", jstr(m->tool), &bad);

    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "cannot build the manifest of \"%s\"", m->id);
    /* Our callers free with free(); jansson's default allocator is malloc, so the text is too. */
    *out = text;
    if (len)
        *len = strlen(text);
    return 0;
}

/* ---- parsing ---- */

typedef struct ctx {
    cf_err *err;
    char path[128]; /* the field being read, for messages */
} ctx;

static int field_err(ctx *c, const char *what)
{
    return cf_err_set(c->err, CF_ECORRUPT, "manifest field \"%s\" %s", c->path, what);
}

/* Looks up o[k], setting c->path to prefix.k; NULL with the error set when missing or of the
 * wrong type. type -1 accepts anything. */
static json_t *get(ctx *c, json_t *o, const char *prefix, const char *k, int type, int *rc)
{
    if (prefix && *prefix)
        snprintf(c->path, sizeof c->path, "%s.%s", prefix, k);
    else
        snprintf(c->path, sizeof c->path, "%s", k);
    json_t *v = json_object_get(o, k);
    if (!v) {
        *rc = field_err(c, "is missing");
        return NULL;
    }
    if (type >= 0 && (int)json_typeof(v) != type) {
        static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                            "a number",  "true",     "false",    "null"};
        char what[64];
        snprintf(what, sizeof what, "must be %s",
                 type == JSON_TRUE || type == JSON_FALSE ? "a boolean" : names[type]);
        *rc = field_err(c, what);
        return NULL;
    }
    return v;
}

static int get_str(ctx *c, json_t *o, const char *prefix, const char *k, int nullable, char **out)
{
    int rc = 0;
    json_t *v = get(c, o, prefix, k, -1, &rc);
    if (!v)
        return rc;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return field_err(c, nullable ? "must be a string or null" : "must be a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return field_err(c, "must not contain NUL characters");
    *out = strdup(json_string_value(v));
    return *out ? 0 : cf_err_set(c->err, CF_ENOMEM, "out of memory");
}

static int get_uint(ctx *c, json_t *o, const char *prefix, const char *k, uint64_t max, uint64_t *out)
{
    int rc = 0;
    json_t *v = get(c, o, prefix, k, JSON_INTEGER, &rc);
    if (!v)
        return rc;
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i > max)
        return field_err(c, "is out of range");
    *out = (uint64_t)i;
    return 0;
}

static int get_hex(ctx *c, json_t *o, const char *prefix, const char *k, unsigned char *out, size_t n)
{
    int rc = 0;
    json_t *v = get(c, o, prefix, k, JSON_STRING, &rc);
    if (!v)
        return rc;
    const char *s = json_string_value(v);
    if (json_string_length(v) != 2 * n || cf_hex_decode(s, n, out) != 0) {
        char what[64];
        snprintf(what, sizeof what, "must be %zu hex digits", 2 * n);
        return field_err(c, what);
    }
    return 0;
}

static int parse_time(ctx *c, const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return field_err(c, "must be a UTC time like \"2026-11-22T15:30:00Z\"");
    *out = timegm(&tm);
    return 0;
}

/* The id is named after the creation second, and @latest finds the newest snapshot from the
 * names alone: a manifest whose time disagrees with its name would sort differently in ls than
 * in @latest and prune. */
static int created_matches_id(time_t created, const char *id)
{
    struct tm tm;
    char named[32];
    return gmtime_r(&created, &tm) && strftime(named, sizeof named, "%Y%m%dT%H%M%SZ", &tm) == 16 &&
           strncmp(named, id, 16) == 0;
}

/* Optional: manifests written before it record whole seconds, which sort as .000000000. */
static int parse_created_ns(ctx *c, json_t *root, cf_manifest *m)
{
    uint64_t ns = 0;
    int rc = json_object_get(root, "created_ns") ? get_uint(c, root, "", "created_ns", 999999999, &ns) : 0;
    m->created_ns = (int32_t)ns;
    return rc;
}

/* exclude, one_file_system and skipped: optional, since the first manifests had none. */
static int parse_dir_source(ctx *c, json_t *src, cf_manifest *m)
{
    int rc = 0;
    json_t *ex = json_object_get(src, "exclude"), *fs = json_object_get(src, "one_file_system"),
           *sk = json_object_get(src, "skipped");
    if (ex && !(ex = get(c, src, "source", "exclude", JSON_ARRAY, &rc)))
        return rc;
    if (fs && !json_is_boolean(fs)) {
        snprintf(c->path, sizeof c->path, "source.one_file_system");
        return field_err(c, "must be a boolean");
    }
    m->source.one_file_system = fs && json_is_true(fs);
    if (sk && !(sk = get(c, src, "source", "skipped", JSON_ARRAY, &rc)))
        return rc;
    size_t nex = ex ? json_array_size(ex) : 0, nsk = sk ? json_array_size(sk) : 0;
    if ((nex && !(m->source.exclude = calloc(nex, sizeof *m->source.exclude))) ||
        (nsk && !(m->source.skipped = calloc(nsk, sizeof *m->source.skipped))))
        return cf_err_set(c->err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < nex; i++) {
        json_t *v = json_array_get(ex, i);
        snprintf(c->path, sizeof c->path, "source.exclude[%zu]", i);
        if (!json_is_string(v))
            return field_err(c, "must be a string");
        if (!(m->source.exclude[m->source.nexclude++] = strdup(json_string_value(v))))
            return cf_err_set(c->err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nsk; i++) {
        json_t *v = json_array_get(sk, i);
        char at[48];
        snprintf(at, sizeof at, "source.skipped[%zu]", i);
        if (!json_is_object(v)) {
            snprintf(c->path, sizeof c->path, "%s", at);
            return field_err(c, "must be an object");
        }
        cf_manifest_skipped *k = &m->source.skipped[m->source.nskipped++];
        if ((rc = get_str(c, v, at, "path", 0, &k->path)) != 0 ||
            (rc = get_str(c, v, at, "error", 0, &k->error)) != 0)
            return rc;
    }
    return 0;
}

static int parse_encryption(ctx *c, json_t *e, cf_manifest_encryption *out)
{
    char *s = NULL;
    int rc;
    static const char *const fixed[][2] = {{"alg", ALG_NAME}, {"kdf", KDF_NAME}};
    for (int i = 0; i < 2; i++) {
        if ((rc = get_str(c, e, "encryption", fixed[i][0], 0, &s)) != 0)
            return rc;
        int ok = strcmp(s, fixed[i][1]) == 0;
        free(s);
        if (!ok) {
            char what[96];
            snprintf(what, sizeof what, "must be \"%s\" (the only one this version knows)", fixed[i][1]);
            return field_err(c, what);
        }
    }
    if ((rc = get_hex(c, e, "encryption", "salt", out->salt, sizeof out->salt)) != 0)
        return rc;
    if ((rc = get_str(c, e, "encryption", "key_id", 0, &s)) != 0)
        return rc;
    size_t n = strlen(s);
    unsigned char tmp[CF_ARCHIVE_KEY_ID_LEN / 2];
    if (n == CF_ARCHIVE_KEY_ID_LEN && cf_hex_decode(s, n / 2, tmp) == 0)
        memcpy(out->key_id, s, n + 1);
    free(s);
    if (n != CF_ARCHIVE_KEY_ID_LEN || !out->key_id[0])
        return field_err(c, "must be 16 hex digits");
    if ((rc = get_str(c, e, "encryption", "key_source", 0, &s)) != 0)
        return rc;
    out->passphrase = strcmp(s, "passphrase") == 0;
    int known = out->passphrase || strcmp(s, "file") == 0;
    free(s);
    if (!known)
        return field_err(c, "must be \"file\" or \"passphrase\"");
    json_t *sc = get(c, e, "encryption", "scrypt", -1, &rc);
    if (!sc)
        return rc;
    if (!out->passphrase)
        return json_is_null(sc) ? 0 : field_err(c, "must be null when key_source is \"file\"");
    if (!json_is_object(sc))
        return field_err(c, "must be an object when key_source is \"passphrase\"");
    uint64_t r = 0, p = 0;
    if ((rc = get_uint(c, sc, "encryption.scrypt", "n", 1ull << 24, &out->scrypt.n)) != 0 ||
        (rc = get_uint(c, sc, "encryption.scrypt", "r", 64, &r)) != 0 ||
        (rc = get_uint(c, sc, "encryption.scrypt", "p", 64, &p)) != 0 ||
        (rc = get_hex(c, sc, "encryption.scrypt", "salt", out->scrypt.salt, sizeof out->scrypt.salt)) != 0)
        return rc;
    out->scrypt.r = (uint32_t)r;
    out->scrypt.p = (uint32_t)p;
    if (out->scrypt.n < 2 || (out->scrypt.n & (out->scrypt.n - 1)) || !r || !p) {
        snprintf(c->path, sizeof c->path, "encryption.scrypt");
        return field_err(c, "has impossible parameters (n a power of two, r and p at least 1)");
    }
    return 0;
}

static int parse_root(ctx *c, json_t *root, cf_manifest *m)
{
    int rc = 0;
    json_t *v;
    uint64_t u;
    char *s = NULL;
    if (!json_is_object(root))
        return cf_err_set(c->err, CF_ECORRUPT, "manifest is not a JSON object");
    if (!(v = get(c, root, "", "format", JSON_INTEGER, &rc)))
        return rc;
    if (json_integer_value(v) != CF_MANIFEST_FORMAT)
        return cf_err_set(c->err, CF_ENOTSUP,
                          "manifest format %" JSON_INTEGER_FORMAT " is not supported (this coffer "
                          "reads format %d); hint: upgrade coffer",
                          json_integer_value(v), CF_MANIFEST_FORMAT);
    m->format = CF_MANIFEST_FORMAT;

    if ((rc = get_str(c, root, "", "id", 0, &s)) != 0)
        return rc;
    int ok = cf_snapshot_id_valid(s);
    if (ok)
        memcpy(m->id, s, CF_SNAPSHOT_ID_LEN + 1);
    free(s);
    if (!ok)
        return field_err(c, "must be a snapshot id like \"20261122T153000Z-7f3a\"");
    if ((rc = get_str(c, root, "", "namespace", 0, &m->ns)) != 0)
        return rc;
    if (!(v = get(c, root, "", "created", JSON_STRING, &rc)))
        return rc;
    if ((rc = parse_time(c, json_string_value(v), &m->created)) != 0)
        return rc;
    if (!created_matches_id(m->created, m->id))
        return field_err(c, "must be the second the id names");
    if ((rc = parse_created_ns(c, root, m)) != 0)
        return rc;

    json_t *src = get(c, root, "", "source", JSON_OBJECT, &rc);
    if (!src)
        return rc;
    if ((rc = get_str(c, src, "source", "kind", 0, &s)) != 0)
        return rc;
    int dir = strcmp(s, "dir") == 0, stream = strcmp(s, "stream") == 0;
    free(s);
    if (!dir && !stream)
        return field_err(c, "must be \"dir\" or \"stream\"");
    m->source.kind = dir ? CF_SOURCE_DIR : CF_SOURCE_STREAM;
    if ((rc = get_str(c, src, "source", "host", 1, &m->source.host)) != 0)
        return rc;
    if (dir ? (rc = get_str(c, src, "source", "path", 0, &m->source.path)) != 0
            : (rc = get_str(c, src, "source", "command", 1, &m->source.command)) != 0)
        return rc;
    if (dir && (rc = parse_dir_source(c, src, m)) != 0)
        return rc;

    json_t *labels = get(c, root, "", "labels", JSON_OBJECT, &rc);
    if (!labels)
        return rc;
    size_t nl = json_object_size(labels);
    if (nl && !(m->labels = calloc(nl, sizeof *m->labels)))
        return cf_err_set(c->err, CF_ENOMEM, "out of memory");
    const char *k;
    json_object_foreach(labels, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(c->path, sizeof c->path, "labels.%s", k);
            return field_err(c, "must be a string");
        }
        m->labels[m->nlabels].key = strdup(k);
        m->labels[m->nlabels].value = strdup(json_string_value(v));
        m->nlabels++;
        if (!m->labels[m->nlabels - 1].key || !m->labels[m->nlabels - 1].value)
            return cf_err_set(c->err, CF_ENOMEM, "out of memory");
    }

    json_t *a = get(c, root, "", "archive", JSON_OBJECT, &rc);
    if (!a)
        return rc;
    if ((rc = get_str(c, a, "archive", "key", 0, &m->archive.key)) != 0)
        return rc;
    if ((rc = get_str(c, a, "archive", "compression", 0, &s)) != 0)
        return rc;
    rc = cf_codec_from_name(s, &m->archive.compression);
    free(s);
    if (rc)
        return field_err(c, "must be \"none\", \"zstd\", \"lz4\" or \"gzip\"");
    if (!(v = get(c, a, "archive", "level", JSON_INTEGER, &rc)))
        return rc;
    json_int_t level = json_integer_value(v);
    if (level < -1000 || level > 1000 || cf_codec_check_level(m->archive.compression, (int)level, NULL) != 0)
        return field_err(c, "is out of range for the compression");
    m->archive.level = (int)level;
    if ((rc = get_uint(c, a, "archive", "size", INT64_MAX, &m->archive.size)) != 0 ||
        (rc = get_hex(c, a, "archive", "sha256", m->archive.sha256, 32)) != 0 ||
        (rc = get_uint(c, a, "archive", "raw_size", INT64_MAX, &m->archive.raw_size)) != 0 ||
        (rc = get_uint(c, a, "archive", "files", INT64_MAX, &m->archive.files)) != 0)
        return rc;

    json_t *ch = get(c, root, "", "chunks", JSON_ARRAY, &rc);
    if (!ch)
        return rc;
    size_t n = json_array_size(ch);
    if (n == 0)
        return field_err(c, "must hold at least one chunk");
    if (!(m->chunks = calloc(n, sizeof *m->chunks)))
        return cf_err_set(c->err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "chunks[%zu]", i);
        json_t *o = json_array_get(ch, i);
        if (!json_is_object(o)) {
            snprintf(c->path, sizeof c->path, "%s", prefix);
            return field_err(c, "must be an object");
        }
        cf_archive_chunk *cc = &m->chunks[i];
        if ((rc = get_uint(c, o, prefix, "offset", INT64_MAX, &cc->offset)) != 0 ||
            (rc = get_uint(c, o, prefix, "size", INT64_MAX, &cc->size)) != 0 ||
            (rc = get_uint(c, o, prefix, "raw_size", INT64_MAX, &cc->raw_size)) != 0 ||
            (rc = get_uint(c, o, prefix, "crc32c", UINT32_MAX, &u)) != 0)
            return rc;
        cc->crc32c = (uint32_t)u;
        m->nchunks++;
    }

    json_t *e = get(c, root, "", "encryption", -1, &rc);
    if (!e)
        return rc;
    if (!json_is_null(e)) {
        if (!json_is_object(e))
            return field_err(c, "must be an object or null");
        if (!(m->encryption = calloc(1, sizeof *m->encryption)))
            return cf_err_set(c->err, CF_ENOMEM, "out of memory");
        if ((rc = parse_encryption(c, e, m->encryption)) != 0)
            return rc;
    }
    return get_str(c, root, "", "tool", 0, &m->tool);
}

int cf_manifest_parse(const char *text, size_t len, cf_manifest *m, cf_err *err)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return cf_err_set(err, CF_ECORRUPT, "manifest is not valid JSON: %s at line %d column %d", je.text,
                          je.line, je.column);
    ctx c = {.err = err};
    int rc = parse_root(&c, root, m);
    json_decref(root);
    if (rc)
        cf_manifest_cleanup(m);
    return rc;
}

void cf_manifest_cleanup(cf_manifest *m)
{
    if (!m)
        return;
    free(m->ns);
    free(m->source.host);
    free(m->source.path);
    free(m->source.command);
    for (size_t i = 0; i < m->source.nexclude; i++)
        free(m->source.exclude[i]);
    free(m->source.exclude);
    for (size_t i = 0; i < m->source.nskipped; i++) {
        free(m->source.skipped[i].path);
        free(m->source.skipped[i].error);
    }
    free(m->source.skipped);
    for (size_t i = 0; i < m->nlabels; i++) {
        free(m->labels[i].key);
        free(m->labels[i].value);
    }
    free(m->labels);
    free(m->archive.key);
    free(m->chunks);
    free(m->encryption);
    free(m->tool);
    memset(m, 0, sizeof *m);
}
