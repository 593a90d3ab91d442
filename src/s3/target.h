/*
 * target.h - what an S3 request names: the bucket and key, from its path (percent-encoded, as
 * received) and, in virtual-host style, its Host header ("BUCKET.DOMAIN[:port]"). Both come
 * from the client untrusted.
 */
#ifndef CF_S3_TARGET_H
#define CF_S3_TARGET_H

#include <stddef.h>

typedef struct cf_s3_target {
    char *bucket;      /* decoded; "" for the service ("/") */
    char *key;         /* decoded; "" for a bucket; holds no NUL byte */
    size_t keylen;     /* strlen(key) */
    char *resource;    /* the decoded path in path style ("/bucket/key"), for error documents */
    char *signed_path; /* virtual-host style only: the decoded path as sent, which SigV4 covers */
} cf_s3_target;

/* The length of the bucket that host names as "BUCKET.domain[:port]" (the domain compared
 * without case), or 0 when host does not (path style). NULL or "" domain: always 0. */
size_t cf_s3_vhost_bucket(const char *host, const char *domain);

/* Parses the raw request path (no query) with the Host header (may be NULL) against the
 * virtual-host domain (NULL or "": path style only). Decoded paths longer than max_len bytes
 * are refused. Returns 0 with *t filled (cf_s3_target_cleanup frees it), CF_EINVAL for a bad
 * percent-escape, a %00 or a path too long (*t then holds nothing), or CF_ENOMEM. */
int cf_s3_target_parse(const char *raw_path, const char *host, const char *domain, size_t max_len,
                       cf_s3_target *t);
void cf_s3_target_cleanup(cf_s3_target *t);

#endif
