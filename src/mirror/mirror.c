/* mirror.c - cf_mirror_run: list, plan (plan.c), copy and delete on a pool of workers. */
#include <stdlib.h>
#include <string.h>

#include "mirror/mirror.h"

int cf_mirror_run(const cf_mirror_side *src, const cf_mirror_side *dst, const cf_mirror_opts *o,
                  cf_mirror_summary *out, cf_err *err)
{
    (void)src;
    (void)dst;
    (void)o;
    memset(out, 0, sizeof *out);
    return cf_err_set(err, CF_ENOTSUP, "coffer mirror: not built yet");
}

void cf_mirror_summary_free(cf_mirror_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfailures; i++) {
        free(s->failures[i].key);
        free(s->failures[i].why);
    }
    free(s->failures);
    s->failures = NULL;
    s->nfailures = 0;
}
