/*
 * fuzz_resume_state.c - an interrupted create's state comes from the repository, which anyone
 * with write access to the bucket could have changed. Whatever parses must hold to the bounds
 * the create trusts (an id of the right shape, an upload id that fits, parts in order), and
 * must write back to a state that parses to the same content.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/resume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    cf_resume_state st = {.key = "ns/.resume/x.json"};
    cf_err err;
    if (cf_resume_parse((const char *)data, size, &st, &err) != 0) {
        cf_resume_reset(&st);
        return 0;
    }
    if (!cf_snapshot_id_valid(st.id) || strlen(st.upload_id) >= sizeof st.upload_id || !st.part_size ||
        (st.nparts && (!st.sizes || !st.crcs)))
        abort();
    for (size_t i = 0; i < st.nparts; i++)
        if (st.sizes[i] == 0)
            abort();
    cf_resume_reset(&st);
    return 0;
}
