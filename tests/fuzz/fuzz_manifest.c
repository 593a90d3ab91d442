/*
 * fuzz_manifest.c - a manifest comes from the repository, which anyone with write access to the
 * bucket could have changed. Whatever parses must be consistent enough for restore to trust
 * its bounds, and must write back to a manifest that parses to the same content.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    cf_manifest m;
    cf_err err;
    if (cf_manifest_parse((const char *)data, size, &m, &err) != 0)
        return 0;
    if (!cf_snapshot_id_valid(m.id) || !m.ns || !m.archive.key)
        abort();
    char *json = NULL;
    size_t len = 0;
    if (cf_manifest_write(&m, &json, &len, &err) != 0)
        abort();
    cf_manifest again;
    if (cf_manifest_parse(json, len, &again, &err) != 0)
        abort();
    if (strcmp(again.id, m.id) || strcmp(again.ns, m.ns) || again.created != m.created ||
        again.created_ns != m.created_ns || again.nchunks != m.nchunks ||
        again.archive.size != m.archive.size || again.archive.raw_size != m.archive.raw_size ||
        memcmp(again.archive.sha256, m.archive.sha256, 32) != 0 || (!again.encryption) != (!m.encryption))
        abort();
    for (size_t i = 0; i < m.nchunks; i++)
        if (memcmp(&again.chunks[i], &m.chunks[i], sizeof m.chunks[i]) != 0)
            abort();
    cf_manifest_cleanup(&again);
    free(json);
    cf_manifest_cleanup(&m);
    return 0;
}
