/*
 * fuzz_mirror_plan.c - the keys of a listing come from whoever filled the bucket. Whatever the
 * keys, the plan for a directory destination must copy none that could leave the directory
 * (absolute, '.' or '..' segments, empty segments, control characters), must be in key order,
 * and must account for every key once. Input: source keys, one per line, then an empty line, then
 * destination keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "mirror/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The plan's own rule, said again independently: could key leave a directory? */
static int escapes(const char *key)
{
    if (!*key || key[0] == '/')
        return 1;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    for (const char *seg = key; seg;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (!n || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return 1;
        char name[256];
        if (n < sizeof name) {
            memcpy(name, seg, n);
            name[n] = '\0';
            if (cf_repo_dir_temporary(name))
                return 1; /* would be taken for a write in flight: hidden, then swept */
        }
        seg = slash ? slash + 1 : NULL;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cf_plan_list lists[2] = {{0}, {0}};
    int side = 0;
    for (char *line = text, *next; line && side < 2; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line) {
            side++;
            continue;
        }
        cf_repo_entry e = {line, strlen(line) % 3, (int64_t)(strlen(line) % 2), "\"e\"", 0, 0};
        if (cf_plan_list_add(&lists[side], &e) != 0)
            break;
    }
    cf_plan_list_sort(&lists[0]);
    cf_plan_list_sort(&lists[1]);
    cf_plan p;
    if (cf_plan_build(&lists[0], CF_SIDE_S3, &lists[1], CF_SIDE_DIR, NULL, 0, 1, &p, NULL) == 0) {
        size_t from_src = 0;
        for (size_t i = 0; i < p.n; i++) {
            const cf_plan_item *it = &p.v[i];
            const char *key = it->src ? it->src->key : it->dst->key;
            if (it->action == CF_PLAN_COPY)
                check(!escapes(key));
            if (i) {
                const cf_plan_item *prev = &p.v[i - 1];
                check(strcmp(prev->src ? prev->src->key : prev->dst->key, key) <= 0);
            }
            from_src += it->src != NULL;
        }
        check(from_src == lists[0].n);
        cf_plan_free(&p);
    }
    cf_plan_list_free(&lists[0]);
    cf_plan_list_free(&lists[1]);
    free(text);
    return 0;
}
