#include "snapshot/order.h"

#include <string.h>

int cf_snapshot_key_cmp(const cf_snapshot_key *a, const cf_snapshot_key *b)
{
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    if (a->created_ns != b->created_ns)
        return a->created_ns < b->created_ns ? -1 : 1;
    return strcmp(a->id, b->id);
}
