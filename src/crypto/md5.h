/*
 * md5.h - MD5 for the ETags of stored bodies, with the blocks of bodies received at the same
 * time hashed side by side (see md5.c). Each body has its own cf_md5_ctx, used by one thread at
 * a time. The bodies hashed side by side are those that share a cf_md5_gather: its owner (the
 * store, for the bodies it writes) creates one and passes it to cf_md5_init; a context without
 * one hashes alone, as fast as one body can be. A gather is thread-safe. A context is linked
 * into its gather's list from its first large update until final or done, so it must not move
 * (be copied or reallocated) in between, and the gather must outlive it.
 */
#ifndef CF_CRYPTO_MD5_H
#define CF_CRYPTO_MD5_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Pairs the bodies being hashed at the same time. */
typedef struct cf_md5_gather cf_md5_gather;
/* 0, or CF_ENOMEM when out of memory (or of mutexes); free with cf_md5_gather_free. */
int cf_md5_gather_new(cf_md5_gather **out);
/* No context may still be linked to it (each one finalised or done). NULL is a no-op. */
void cf_md5_gather_free(cf_md5_gather *g);
/* Bytes of full blocks hashed so far by the contexts of g, alone and side by side with other
 * bodies' (for the server's metrics), in whole 64-byte blocks, MD5's padding included. */
void cf_md5_gather_stats(cf_md5_gather *g, uint64_t *alone, uint64_t *side_by_side);

typedef struct cf_md5_ctx {
    uint32_t st[4];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
    cf_md5_gather *gather; /* borrowed; NULL: hashed alone */
    /* Internal: while counted among the bodies whose blocks are hashed side by side. */
    int sharing;
    int in_pass;        /* its queued blocks are in a thread's pass */
    int has_queued;     /* it has blocks in the queue, not yet in a pass */
    pthread_t producer; /* the thread that queued its last blocks */
    uint64_t last_queued;
    struct cf_md5_ctx *prev_body, *next_body;
} cf_md5_ctx;

/* gather may be NULL (the body is hashed alone); else it is borrowed until final or done. */
void cf_md5_init(cf_md5_ctx *m, cf_md5_gather *gather);
void cf_md5_update(cf_md5_ctx *m, const void *p, size_t n);
/* Writes the digest; m must be initialised again before more use. */
void cf_md5_final(cf_md5_ctx *m, unsigned char out[16]);
/* For a body abandoned before final: stops counting it among the bodies hashed side by side
 * (the others would wait for its blocks). final does this itself; a second call is a no-op. */
void cf_md5_done(cf_md5_ctx *m);

/* The block functions under it, for tests and benchmarks. */
#define CF_MD5_LANES 4
/* nblocks 64-byte blocks at p into st. */
void cf_md5_blocks(uint32_t st[4], const unsigned char *p, size_t nblocks);
/* nblocks blocks of each of n bodies (1 <= n <= CF_MD5_LANES), interleaved: body i reads p[i]
 * and updates st[i]. */
void cf_md5_blocks_lanes(unsigned n, uint32_t *const st[], const unsigned char *const p[], size_t nblocks);
/* MD5's initial state, for hashing with the block functions. */
void cf_md5_state_init(uint32_t st[4]);
/* m (hashed alone) goes on from st, the state the block functions left after len bytes (a
 * multiple of 64): so that update and final add the tail and the padding, written once here. */
void cf_md5_resume(cf_md5_ctx *m, const uint32_t st[4], uint64_t len);

#endif
