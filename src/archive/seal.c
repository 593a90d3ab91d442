/*
 * seal.c - HKDF, scrypt and AES-256-GCM through OpenSSL 3's EVP interfaces.
 */
#include "archive/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "crypto/hash.h"

static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt, size_t salt_len,
                const char *info, unsigned char *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!ctx)
        return CF_ENOMEM;
    OSSL_PARAM params[5], *p = params;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? 0 : CF_EINTERNAL;
}

int cf_master_key_from_bytes(const void *p, size_t n, cf_master_key *out, cf_err *err)
{
    if (n != CF_ARCHIVE_KEY_LEN)
        return cf_err_set(err, CF_EINVAL, "master key is %zu bytes, expected %d", n, CF_ARCHIVE_KEY_LEN);
    memcpy(out->key, p, n);
    /* The id comes from the key alone so that every snapshot under one key shows the same id. */
    unsigned char id[CF_ARCHIVE_KEY_ID_LEN / 2];
    int rc = hkdf(out->key, n, NULL, 0, "coffer key id v1", id, sizeof id);
    if (rc) {
        cf_master_key_cleanup(out);
        return cf_err_set(err, rc, "cannot derive the key id");
    }
    cf_hex_encode(id, sizeof id, out->key_id);
    return 0;
}

int cf_master_key_from_file(const char *path, cf_master_key *out, cf_err *err)
{
    unsigned char raw[80];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open key file \"%s\"", path);
    size_t n = 0;
    while (n < sizeof raw) {
        ssize_t r = read(fd, raw + n, sizeof raw - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return cf_err_sys(err, CF_EIO, e, "cannot read key file \"%s\"", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    int rc;
    if (n == CF_ARCHIVE_KEY_LEN) {
        rc = cf_master_key_from_bytes(raw, n, out, err);
    } else {
        size_t h = n;
        while (h > 0 && (raw[h - 1] == '\n' || raw[h - 1] == '\r'))
            h--;
        unsigned char key[CF_ARCHIVE_KEY_LEN];
        if (h == 2 * CF_ARCHIVE_KEY_LEN && cf_hex_decode((const char *)raw, CF_ARCHIVE_KEY_LEN, key) == 0) {
            rc = cf_master_key_from_bytes(key, sizeof key, out, err);
            OPENSSL_cleanse(key, sizeof key);
        } else {
            rc = cf_err_set(err, CF_EINVAL,
                            "key file \"%s\" must hold 32 raw bytes or 64 hex digits (has %zu%s "
                            "bytes); hint: head -c 32 /dev/urandom > keyfile",
                            path, n, n == sizeof raw ? " or more" : "");
        }
    }
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int cf_master_key_from_passphrase(const char *pass, size_t len, cf_scrypt_params *params, cf_master_key *out,
                                  cf_err *err)
{
    if (!params->n)
        params->n = 1u << 15;
    if (!params->r)
        params->r = 8;
    if (!params->p)
        params->p = 1;
    if (params->n < 2 || (params->n & (params->n - 1)) || params->n > (1ull << 24) || params->r > 64 ||
        params->p > 64)
        return cf_err_set(err, CF_EINVAL,
                          "scrypt parameters N=%llu r=%u p=%u out of range "
                          "(N a power of two up to 2^24, r and p up to 64)",
                          (unsigned long long)params->n, params->r, params->p);
    unsigned char key[CF_ARCHIVE_KEY_LEN];
    /* scrypt needs 128 * r * N bytes (32 MiB at the defaults); allow that plus slack rather
     * than OpenSSL's 32 MiB default cap, which the defaults would just exceed. */
    uint64_t maxmem = 128ull * params->r * params->n * (params->p + 1) + (16u << 20);
    if (EVP_PBE_scrypt(pass, len, params->salt, sizeof params->salt, params->n, params->r, params->p, maxmem,
                       key, sizeof key) != 1)
        return cf_err_set(err, CF_ENOMEM, "scrypt key derivation failed (N=%llu r=%u p=%u)",
                          (unsigned long long)params->n, params->r, params->p);
    int rc = cf_master_key_from_bytes(key, sizeof key, out, err);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

void cf_master_key_cleanup(cf_master_key *k)
{
    if (k)
        OPENSSL_cleanse(k, sizeof *k);
}

int cf_archive_key_derive(const cf_master_key *master, const unsigned char salt[CF_ARCHIVE_SALT_LEN],
                          cf_archive_key *out, cf_err *err)
{
    int rc = hkdf(master->key, sizeof master->key, salt, CF_ARCHIVE_SALT_LEN, "coffer archive v1", out->key,
                  sizeof out->key);
    if (rc)
        return cf_err_set(err, rc, "cannot derive the snapshot key");
    memcpy(out->key_id, master->key_id, sizeof out->key_id);
    return 0;
}

void cf_archive_key_cleanup(cf_archive_key *k)
{
    if (k)
        OPENSSL_cleanse(k, sizeof *k);
}

static void make_nonce(uint64_t index, unsigned char nonce[CF_ARCHIVE_NONCE_LEN])
{
    memset(nonce, 0, CF_ARCHIVE_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        nonce[CF_ARCHIVE_NONCE_LEN - 1 - i] = (unsigned char)(index >> (8 * i));
}

static int gcm(int enc, const cf_archive_key *k, uint64_t index, int last, const unsigned char *in, size_t n,
               unsigned char *out, unsigned char tag[CF_ARCHIVE_TAG_LEN])
{
    if (n > (size_t)INT32_MAX)
        return CF_ETOOBIG;
    unsigned char nonce[CF_ARCHIVE_NONCE_LEN], aad = last ? 1 : 0;
    make_nonce(index, nonce);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return CF_ENOMEM;
    int rc = CF_EINTERNAL, len;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, nonce, enc) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, NULL, &len, &aad, 1) != 1)
        goto out;
    if (n && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CF_ARCHIVE_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n, &len) != 1) {
        rc = enc ? CF_EINTERNAL : CF_EAUTH;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CF_ARCHIVE_TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int cf_archive_seal(const cf_archive_key *k, uint64_t index, int last, unsigned char *buf, size_t n,
                    cf_err *err)
{
    int rc = gcm(1, k, index, last, buf, n, buf, buf + n);
    if (rc)
        return cf_err_set(err, rc, "cannot encrypt chunk %llu", (unsigned long long)index);
    return 0;
}

int cf_archive_open(const cf_archive_key *k, uint64_t index, int last, const unsigned char *in, size_t n,
                    unsigned char *out, cf_err *err)
{
    if (n < CF_ARCHIVE_TAG_LEN)
        return cf_err_set(err, CF_ECORRUPT, "chunk %llu is %zu bytes, shorter than its tag",
                          (unsigned long long)index, n);
    unsigned char tag[CF_ARCHIVE_TAG_LEN];
    memcpy(tag, in + n - CF_ARCHIVE_TAG_LEN, CF_ARCHIVE_TAG_LEN);
    int rc = gcm(0, k, index, last, in, n - CF_ARCHIVE_TAG_LEN, out, tag);
    if (rc == CF_EAUTH)
        return rc;
    if (rc)
        return cf_err_set(err, rc, "cannot decrypt chunk %llu", (unsigned long long)index);
    return 0;
}
