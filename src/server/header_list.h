/* header_list.h - the headers stored with an object, as a request builds them (header_list.c). */
#ifndef CF_SERVER_HEADER_LIST_H
#define CF_SERVER_HEADER_LIST_H

#include <stddef.h>

#include "store/store.h"

/* Headers to store with an object, lowercase names, in a stable order. */
typedef struct cf_header_list {
    cf_store_kv *kv;
    size_t n, cap;
    size_t meta_bytes; /* of x-amz-meta-* names and values, for the 2 KB limit */
    int failed;
} cf_header_list;
int cf_header_add(cf_header_list *h, const char *name, size_t nlen, const char *value);
void cf_header_list_cleanup(cf_header_list *h);

#endif
