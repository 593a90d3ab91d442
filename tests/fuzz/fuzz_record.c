/* fuzz_record.c - object records and overflow groups read back from the index must never be
 * trusted blindly (a damaged disk is input too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_object_info info, again;
    if (cf_record_decode(data, size, &info) == 0) {
        cf_buf b1, b2;
        cf_buf_init(&b1, size + 64);
        cf_buf_init(&b2, size + 64);
        /* encode is a fixed point after one decode: encode(decode(encode(r))) == encode(r). */
        if (cf_record_encode(&info, &b1) != 0 || cf_record_decode(b1.data, b1.len, &again) != 0 ||
            cf_record_encode(&again, &b2) != 0 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0 ||
            again.size != info.size || again.nsegs != info.nsegs)
            abort();
        cf_buf_cleanup(&b1);
        cf_buf_cleanup(&b2);
        cf_object_info_cleanup(&again);
        cf_object_info_cleanup(&info);
    }
    cf_group_entry e[64];
    long n = cf_group_parse(data, size, e, 64);
    for (long i = 0; i < n; i++)
        if (e[i].key < (const char *)data || e[i].key + e[i].keylen > (const char *)data + size)
            abort();
    return 0;
}
