/* header_list.c - the headers stored with an object: names lowercased, in the order added. */
#include "server/header_list.h"

#include <stdlib.h>
#include <string.h>

int cf_header_add(cf_header_list *h, const char *name, size_t nlen, const char *value)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        cf_store_kv *kv = realloc(h->kv, cap * sizeof *kv);
        if (!kv)
            return CF_ENOMEM;
        h->kv = kv;
        h->cap = cap;
    }
    char *n = strndup(name, nlen), *v = strdup(value ? value : "");
    if (!n || !v) {
        free(n);
        free(v);
        return CF_ENOMEM;
    }
    for (char *c = n; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    h->kv[h->n++] = (cf_store_kv){n, v};
    return 0;
}

void cf_header_list_cleanup(cf_header_list *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->kv[i].name);
        free(h->kv[i].value);
    }
    free(h->kv);
}
