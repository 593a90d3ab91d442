/* target.c - the bucket and key a request names, in path style or virtual-host style. */
#include "s3/target.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "s3/request.h"

size_t cf_s3_vhost_bucket(const char *host, const char *domain)
{
    if (!domain || !*domain || !host)
        return 0;
    size_t hl = strlen(host), dl = strlen(domain);
    const char *colon = memchr(host, ':', hl);
    if (colon)
        hl = (size_t)(colon - host);
    if (hl <= dl + 1 || host[hl - dl - 1] != '.' || strncasecmp(host + hl - dl, domain, dl) != 0)
        return 0;
    return hl - dl - 1;
}

void cf_s3_target_cleanup(cf_s3_target *t)
{
    free(t->bucket);
    free(t->key);
    free(t->resource);
    free(t->signed_path);
    memset(t, 0, sizeof *t);
}

int cf_s3_target_parse(const char *raw_path, const char *host, const char *domain, size_t max_len,
                       cf_s3_target *t)
{
    memset(t, 0, sizeof *t);
    cf_buf path;
    cf_buf_init(&path, max_len + 1);
    int rc = cf_s3_url_decode(&path, raw_path, strlen(raw_path));
    if (rc) {
        cf_buf_cleanup(&path);
        return rc == CF_ENOMEM ? rc : CF_EINVAL;
    }
    if (!path.data && cf_buf_puts(&path, "/") != 0)
        return CF_ENOMEM;
    size_t vlen = cf_s3_vhost_bucket(host, domain);
    if (vlen) {
        if (!(t->signed_path = strndup(path.data, path.len))) {
            cf_buf_cleanup(&path);
            return CF_ENOMEM;
        }
        /* Rewrite to the path-style form, which everything after this point expects. */
        cf_buf full;
        cf_buf_init(&full, max_len + 512);
        rc = cf_buf_puts(&full, "/");
        if (!rc)
            rc = cf_buf_append(&full, host, vlen);
        if (!rc)
            rc = cf_buf_append(&full, path.data, path.len);
        cf_buf_cleanup(&path);
        if (rc) {
            cf_buf_cleanup(&full);
            cf_s3_target_cleanup(t);
            return rc == CF_ENOMEM ? rc : CF_EINVAL;
        }
        path = full;
    }
    if (memchr(path.data, '\0', path.len)) { /* %00 cannot name a key */
        cf_buf_cleanup(&path);
        cf_s3_target_cleanup(t);
        return CF_EINVAL;
    }
    const char *p = path.data[0] == '/' ? path.data + 1 : path.data;
    const char *slash = strchr(p, '/');
    size_t blen = slash ? (size_t)(slash - p) : strlen(p);
    t->bucket = strndup(p, blen);
    t->key = strdup(slash ? slash + 1 : "");
    t->keylen = t->key ? strlen(t->key) : 0;
    t->resource = cf_buf_steal(&path, NULL);
    if (!t->bucket || !t->key || !t->resource) {
        cf_s3_target_cleanup(t);
        return CF_ENOMEM;
    }
    return 0;
}
