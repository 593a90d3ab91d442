/*
 * test_manifest.c - manifest JSON round trips and strict rejection, snapshot ids, and
 * master keys from key files and passphrases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "archive/manifest.h"
#include "archive/seal.h"
#include "core/err.h"
#include "crypto/hash.h"

static cf_label labels[] = {{"chain_id", "cosmoshub-4"}, {"height", "19234567"}};
static cf_archive_chunk chunks[] = {{0, 1000, 8388608, 0xdeadbeef}, {1000, 17, 5, 7}};

static void sample(cf_manifest *m, cf_manifest_encryption *enc)
{
    memset(m, 0, sizeof *m);
    m->format = CF_MANIFEST_FORMAT;
    strcpy(m->id, "20261122T153000Z-7f3a");
    m->ns = "cosmoshub/node-0";
    m->created = 1795361400; /* 2026-11-22T15:30:00Z */
    m->created_ns = 250000001;
    m->source.kind = CF_SOURCE_DIR;
    m->source.host = "node-0";
    m->source.path = "/var/lib/gaia/data";
    m->labels = labels;
    m->nlabels = 2;
    m->archive.key = "cosmoshub/node-0/20261122T153000Z-7f3a.tar.zst.enc";
    m->archive.compression = CF_CODEC_ZSTD;
    m->archive.level = 3;
    m->archive.size = 1017;
    m->archive.raw_size = 8388613;
    m->archive.files = 42;
    memset(m->archive.sha256, 0xab, 32);
    m->chunks = chunks;
    m->nchunks = 2;
    m->tool = "coffer 0.1.0";
    if (enc) {
        memset(enc, 0, sizeof *enc);
        memset(enc->salt, 0x11, sizeof enc->salt);
        strcpy(enc->key_id, "0123456789abcdef");
        enc->passphrase = 1;
        enc->scrypt.n = 1u << 15;
        enc->scrypt.r = 8;
        enc->scrypt.p = 1;
        memset(enc->scrypt.salt, 0x22, sizeof enc->scrypt.salt);
        m->encryption = enc;
    }
}

static void assert_same(const cf_manifest *a, const cf_manifest *b)
{
    assert_int_equal(a->format, b->format);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->ns, b->ns);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->created_ns, b->created_ns);
    assert_int_equal(a->source.kind, b->source.kind);
    assert_string_equal(a->source.host, b->source.host);
    if (a->source.kind == CF_SOURCE_DIR)
        assert_string_equal(a->source.path, b->source.path);
    else if (a->source.command || b->source.command)
        assert_string_equal(a->source.command, b->source.command);
    assert_int_equal(a->nlabels, b->nlabels);
    for (size_t i = 0; i < a->nlabels; i++) {
        assert_string_equal(a->labels[i].key, b->labels[i].key);
        assert_string_equal(a->labels[i].value, b->labels[i].value);
    }
    assert_string_equal(a->archive.key, b->archive.key);
    assert_int_equal(a->archive.compression, b->archive.compression);
    assert_int_equal(a->archive.level, b->archive.level);
    assert_int_equal(a->archive.size, b->archive.size);
    assert_int_equal(a->archive.raw_size, b->archive.raw_size);
    assert_int_equal(a->archive.files, b->archive.files);
    assert_memory_equal(a->archive.sha256, b->archive.sha256, 32);
    assert_int_equal(a->nchunks, b->nchunks);
    assert_memory_equal(a->chunks, b->chunks, a->nchunks * sizeof *a->chunks);
    assert_int_equal(!a->encryption, !b->encryption);
    if (a->encryption) {
        assert_memory_equal(a->encryption->salt, b->encryption->salt, CF_ARCHIVE_SALT_LEN);
        assert_string_equal(a->encryption->key_id, b->encryption->key_id);
        assert_int_equal(a->encryption->passphrase, b->encryption->passphrase);
        if (a->encryption->passphrase) {
            assert_int_equal(a->encryption->scrypt.n, b->encryption->scrypt.n);
            assert_int_equal(a->encryption->scrypt.r, b->encryption->scrypt.r);
            assert_int_equal(a->encryption->scrypt.p, b->encryption->scrypt.p);
            assert_memory_equal(a->encryption->scrypt.salt, b->encryption->scrypt.salt, 32);
        }
    }
    assert_string_equal(a->tool, b->tool);
}

static void test_manifest_round_trip(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        cf_manifest m, back;
        cf_manifest_encryption enc;
        sample(&m, variant ? &enc : NULL);
        if (variant == 2) {
            enc.passphrase = 0;
            m.source.kind = CF_SOURCE_STREAM;
            m.source.command = variant == 2 ? "pg_dump -Fc shop" : NULL;
            m.nlabels = 0;
        }
        char *text;
        size_t len;
        cf_err err;
        assert_int_equal(cf_manifest_write(&m, &text, &len, &err), 0);
        assert_int_equal(strlen(text), len);
        assert_non_null(strstr(text, "\"created\": \"2026-11-22T15:30:00Z\""));
        int rc = cf_manifest_parse(text, len, &back, &err);
        if (rc)
            fail_msg("%s\n%s", err.msg, text);
        assert_same(&m, &back);
        cf_manifest_cleanup(&back);
        free(text);
    }
}

/* Writes the sample, lets edit change it through jansson, and expects the parse to fail with
 * code and a message containing needle. */
static void expect_rejected(void (*edit)(json_t *root), int code, const char *needle)
{
    cf_manifest m, back;
    cf_manifest_encryption enc;
    sample(&m, &enc);
    char *text;
    assert_int_equal(cf_manifest_write(&m, &text, NULL, NULL), 0);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    free(text);
    edit(root);
    text = json_dumps(root, 0);
    json_decref(root);
    cf_err err;
    cf_err_clear(&err);
    int rc = cf_manifest_parse(text, strlen(text), &back, &err);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("want %s containing '%s', got %s: '%s'", cf_strerror(code), needle, cf_strerror(rc),
                 err.msg);
    free(text);
}

static json_t *at(json_t *root, const char *obj)
{
    return json_object_get(root, obj);
}

static void future_format(json_t *r)
{
    json_object_set_new(r, "format", json_integer(2));
}
static void format_string(json_t *r)
{
    json_object_set_new(r, "format", json_string("1"));
}
static void no_sha(json_t *r)
{
    json_object_del(at(r, "archive"), "sha256");
}
static void short_sha(json_t *r)
{
    json_object_set_new(at(r, "archive"), "sha256", json_string("ab"));
}
static void crc_string(json_t *r)
{
    json_object_set_new(json_array_get(at(r, "chunks"), 1), "crc32c", json_string("7"));
}
static void crc_too_big(json_t *r)
{
    json_object_set_new(json_array_get(at(r, "chunks"), 0), "crc32c", json_integer(1ll << 32));
}
static void negative_size(json_t *r)
{
    json_object_set_new(at(r, "archive"), "size", json_integer(-1));
}
static void bad_id(json_t *r)
{
    json_object_set_new(r, "id", json_string("latest"));
}
static void bad_codec(json_t *r)
{
    json_object_set_new(at(r, "archive"), "compression", json_string("bzip2"));
}
static void bad_level(json_t *r)
{
    json_object_set_new(at(r, "archive"), "level", json_integer(99));
}
static void no_chunks(json_t *r)
{
    json_array_clear(at(r, "chunks"));
}
static void chunk_not_object(json_t *r)
{
    json_array_set_new(at(r, "chunks"), 0, json_integer(3));
}
static void bad_time(json_t *r)
{
    json_object_set_new(r, "created", json_string("yesterday"));
}
static void created_not_the_ids_second(json_t *r)
{
    json_object_set_new(r, "created", json_string("2026-11-22T15:30:01Z"));
}
static void created_ns_too_big(json_t *r)
{
    json_object_set_new(r, "created_ns", json_integer(1000000000));
}
static void created_ns_string(json_t *r)
{
    json_object_set_new(r, "created_ns", json_string("5"));
}
static void bad_kind(json_t *r)
{
    json_object_set_new(at(r, "source"), "kind", json_string("tape"));
}
static void no_path(json_t *r)
{
    json_object_del(at(r, "source"), "path");
}
static void label_number(json_t *r)
{
    json_object_set_new(at(r, "labels"), "height", json_integer(5));
}
static void bad_alg(json_t *r)
{
    json_object_set_new(at(r, "encryption"), "alg", json_string("chacha20-poly1305"));
}
static void bad_key_id(json_t *r)
{
    json_object_set_new(at(r, "encryption"), "key_id", json_string("xyz"));
}
static void scrypt_missing_n(json_t *r)
{
    json_object_del(json_object_get(at(r, "encryption"), "scrypt"), "n");
}
static void scrypt_n_not_pow2(json_t *r)
{
    json_object_set_new(json_object_get(at(r, "encryption"), "scrypt"), "n", json_integer(1000));
}
static void encryption_string(json_t *r)
{
    json_object_set_new(r, "encryption", json_string("yes"));
}
static void no_tool(json_t *r)
{
    json_object_del(r, "tool");
}
static void not_object(json_t *r)
{
    json_object_clear(r);
}

static void test_malformed_manifests_name_the_field(void **state)
{
    (void)state;
    expect_rejected(future_format, CF_ENOTSUP, "manifest format 2 is not supported");
    expect_rejected(format_string, CF_ECORRUPT, "\"format\" must be an integer");
    expect_rejected(no_sha, CF_ECORRUPT, "\"archive.sha256\" is missing");
    expect_rejected(short_sha, CF_ECORRUPT, "\"archive.sha256\" must be 64 hex digits");
    expect_rejected(crc_string, CF_ECORRUPT, "\"chunks[1].crc32c\" must be an integer");
    expect_rejected(crc_too_big, CF_ECORRUPT, "\"chunks[0].crc32c\" is out of range");
    expect_rejected(negative_size, CF_ECORRUPT, "\"archive.size\" is out of range");
    expect_rejected(bad_id, CF_ECORRUPT, "\"id\" must be a snapshot id");
    expect_rejected(bad_codec, CF_ECORRUPT, "\"archive.compression\" must be");
    expect_rejected(bad_level, CF_ECORRUPT, "\"archive.level\" is out of range");
    expect_rejected(no_chunks, CF_ECORRUPT, "\"chunks\" must hold at least one chunk");
    expect_rejected(chunk_not_object, CF_ECORRUPT, "\"chunks[0]\" must be an object");
    expect_rejected(bad_time, CF_ECORRUPT, "\"created\" must be a UTC time");
    expect_rejected(created_not_the_ids_second, CF_ECORRUPT, "\"created\" must be the second the id names");
    expect_rejected(created_ns_too_big, CF_ECORRUPT, "\"created_ns\" is out of range");
    expect_rejected(created_ns_string, CF_ECORRUPT, "\"created_ns\" must be an integer");
    expect_rejected(bad_kind, CF_ECORRUPT, "\"source.kind\" must be");
    expect_rejected(no_path, CF_ECORRUPT, "\"source.path\" is missing");
    expect_rejected(label_number, CF_ECORRUPT, "\"labels.height\" must be a string");
    expect_rejected(bad_alg, CF_ECORRUPT, "\"encryption.alg\" must be \"aes-256-gcm-stream\"");
    expect_rejected(bad_key_id, CF_ECORRUPT, "\"encryption.key_id\" must be 16 hex digits");
    expect_rejected(scrypt_missing_n, CF_ECORRUPT, "\"encryption.scrypt.n\" is missing");
    expect_rejected(scrypt_n_not_pow2, CF_ECORRUPT, "\"encryption.scrypt\" has impossible");
    expect_rejected(encryption_string, CF_ECORRUPT, "\"encryption\" must be an object or null");
    expect_rejected(no_tool, CF_ECORRUPT, "\"tool\" is missing");
    expect_rejected(not_object, CF_ECORRUPT, "\"format\" is missing");
}

/* Manifests written before created_ns existed record whole seconds: they still parse, as .0. */
static void test_manifest_without_created_ns_is_whole_seconds(void **state)
{
    (void)state;
    cf_manifest m, back;
    sample(&m, NULL);
    char *text;
    size_t len;
    cf_err err;
    assert_int_equal(cf_manifest_write(&m, &text, &len, &err), 0);
    assert_non_null(strstr(text, "\"created_ns\": 250000001"));
    json_t *r = json_loadb(text, len, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_object_del(r, "created_ns"), 0);
    char *old = json_dumps(r, 0);
    json_decref(r);
    assert_int_equal(cf_manifest_parse(old, strlen(old), &back, &err), 0);
    assert_int_equal(back.created, m.created);
    assert_int_equal(back.created_ns, 0);
    cf_manifest_cleanup(&back);
    free(old);
    free(text);
}

static void test_manifest_rejects_bad_json(void **state)
{
    (void)state;
    cf_manifest m;
    cf_err err;
    const char *bad[] = {"", "{", "[1]", "{\"format\": 1, \"format\": 1}", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cf_manifest_parse(bad[i], strlen(bad[i]), &m, &err), CF_ECORRUPT);
    assert_int_equal(cf_manifest_parse("[1]", 3, &m, &err), CF_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a JSON object"));
}

static void test_snapshot_id_shape(void **state)
{
    (void)state;
    char id[CF_SNAPSHOT_ID_LEN + 1], id2[CF_SNAPSHOT_ID_LEN + 1];
    assert_int_equal(cf_snapshot_id_new(NULL, 1795361400, id, NULL), 0);
    assert_int_equal(strlen(id), CF_SNAPSHOT_ID_LEN);
    assert_memory_equal(id, "20261122T153000Z-", 17);
    assert_true(cf_snapshot_id_valid(id));
    /* 4 random hex digits: ten draws all equal would mean no randomness. */
    int differ = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cf_snapshot_id_new(NULL, 1795361400, id2, NULL), 0);
        differ |= strcmp(id, id2) != 0;
    }
    assert_true(differ);
    assert_false(cf_snapshot_id_valid("20261122T153000Z-7F3A"));
    assert_false(cf_snapshot_id_valid("20261122T153000Z-7f3"));
    assert_false(cf_snapshot_id_valid("20261122 153000Z-7f3a"));
    assert_false(cf_snapshot_id_valid(NULL));
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_key_files(void **state)
{
    (void)state;
    char path[] = "/tmp/cf_keyfile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unsigned char raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    cf_master_key a, b;
    cf_err err;
    write_file(path, raw, 32);
    assert_int_equal(cf_master_key_from_file(path, &a, &err), 0);
    assert_memory_equal(a.key, raw, 32);
    assert_int_equal(strlen(a.key_id), CF_ARCHIVE_KEY_ID_LEN);
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    write_file(path, hex, strlen(hex));
    assert_int_equal(cf_master_key_from_file(path, &b, &err), 0);
    assert_memory_equal(b.key, raw, 32);
    assert_string_equal(a.key_id, b.key_id);
    write_file(path, raw, 31);
    assert_int_equal(cf_master_key_from_file(path, &b, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    assert_int_equal(cf_master_key_from_file(path, &b, &err), CF_ENOTFOUND);
    cf_master_key_cleanup(&a);
    cf_master_key_cleanup(&b);
}

static void test_passphrase_keys(void **state)
{
    (void)state;
    cf_scrypt_params p = {.n = 1024, .r = 8, .p = 1};
    memset(p.salt, 3, sizeof p.salt);
    cf_master_key a, b, c;
    cf_err err;
    assert_int_equal(cf_master_key_from_passphrase("correct horse", 13, &p, &a, &err), 0);
    assert_int_equal(cf_master_key_from_passphrase("correct horse", 13, &p, &b, &err), 0);
    assert_memory_equal(a.key, b.key, 32);
    assert_int_equal(cf_master_key_from_passphrase("correct horsf", 13, &p, &c, &err), 0);
    assert_string_not_equal(a.key_id, c.key_id);
    p.salt[0] ^= 1;
    assert_int_equal(cf_master_key_from_passphrase("correct horse", 13, &p, &c, &err), 0);
    assert_memory_not_equal(a.key, c.key, 32);
    /* The defaults are filled in for the manifest, and work within scrypt's memory limit. */
    cf_scrypt_params d = {0};
    assert_int_equal(cf_master_key_from_passphrase("pw", 2, &d, &c, &err), 0);
    assert_int_equal(d.n, 1u << 15);
    assert_int_equal(d.r, 8);
    assert_int_equal(d.p, 1);
    cf_scrypt_params bad = {.n = 1000};
    assert_int_equal(cf_master_key_from_passphrase("pw", 2, &bad, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "N=1000"));
    cf_master_key_cleanup(&a);
    cf_master_key_cleanup(&b);
    cf_master_key_cleanup(&c);
}

/* The vectors in docs/FORMAT.md, computed independently with `openssl kdf … HKDF` and Python's
 * cryptography AESGCM, so a third-party reader can check itself against them. */
static void test_known_answers_match_format_doc(void **state)
{
    (void)state;
    unsigned char raw[32], salt[32], buf[5 + CF_ARCHIVE_TAG_LEN];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    memset(salt, 0x5a, sizeof salt);
    cf_master_key m;
    cf_archive_key k;
    assert_int_equal(cf_master_key_from_bytes(raw, sizeof raw, &m, NULL), 0);
    assert_string_equal(m.key_id, "13ec5fd1dd82bea2");
    assert_int_equal(cf_archive_key_derive(&m, salt, &k, NULL), 0);
    char hex[2 * 32 + 1];
    cf_hex_encode(k.key, sizeof k.key, hex);
    assert_string_equal(hex, "3880ac3498474eebdf804d89c093fc2ed4b1e12fcaf77448943c477d57761ebf");
    memcpy(buf, "hello", 5);
    assert_int_equal(cf_archive_seal(&k, 1, 1, buf, 5, NULL), 0);
    cf_hex_encode(buf, sizeof buf, hex);
    assert_string_equal(hex, "eed9d3a2bab706c2a28785e6949939e552f240ac4d");
    unsigned char out[5];
    assert_int_equal(cf_archive_open(&k, 1, 1, buf, sizeof buf, out, NULL), 0);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(cf_archive_open(&k, 1, 0, buf, sizeof buf, out, NULL), CF_EAUTH);
    assert_int_equal(cf_archive_open(&k, 0, 1, buf, sizeof buf, out, NULL), CF_EAUTH);
    cf_master_key_cleanup(&m);
    cf_archive_key_cleanup(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_round_trip),
        cmocka_unit_test(test_malformed_manifests_name_the_field),
        cmocka_unit_test(test_manifest_without_created_ns_is_whole_seconds),
        cmocka_unit_test(test_manifest_rejects_bad_json),
        cmocka_unit_test(test_snapshot_id_shape),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_passphrase_keys),
        cmocka_unit_test(test_known_answers_match_format_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
