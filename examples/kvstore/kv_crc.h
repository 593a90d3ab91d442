/* CRC-32C over a byte range; chain calls by passing the previous result (start with 0). */
#ifndef KV_CRC_H
#define KV_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t kv_crc32c(uint32_t crc, const void *data, size_t len);

#endif
