#include "snapshot/retention.h"

#include <stdlib.h>

static int newest_first(const void *a, const void *b)
{
    const cf_retention_item *const *x = a, *const *y = b;
    return cf_snapshot_key_cmp(&(*y)->key, &(*x)->key);
}

int cf_retention_apply(const cf_retention *policy, cf_retention_item *items, size_t n, cf_err *err)
{
    if (!cf_keep_has_rule(policy))
        return cf_err_set(err, CF_EINVAL,
                          "no retention rule given: prune would remove every snapshot; "
                          "hint: --keep-last, --keep-within or --keep-daily and friends");
    cf_retention_item **order = malloc((n ? n : 1) * sizeof *order);
    int64_t *times = malloc((n ? n : 1) * sizeof *times);
    unsigned *kept_by = malloc((n ? n : 1) * sizeof *kept_by);
    if (!order || !times || !kept_by) {
        free(order);
        free(times);
        free(kept_by);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &items[i];
    qsort(order, n, sizeof *order, newest_first);
    for (size_t i = 0; i < n; i++)
        times[i] = order[i]->key.created;
    cf_keep_select(policy, times, n, kept_by);
    for (size_t i = 0; i < n; i++) {
        order[i]->keep = kept_by[i] != 0;
        cf_keep_reasons(kept_by[i], order[i]->reasons, sizeof order[i]->reasons);
    }
    free(order);
    free(times);
    free(kept_by);
    return 0;
}
