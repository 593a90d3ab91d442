/*
 * fuzz_console_render.c - the console's own JSON writer (console/render.h) against jansson, on
 * snapshots whose strings come from manifests anyone can write.
 *
 * The input is split at newlines into fields: chain, height (an empty field: none), archive key,
 * compression, then label key/value pairs; its length and first bytes give the numbers.
 * Postconditions:
 *   - the rendered SNAP and each rendered string always parse as JSON (strict jansson), whatever
 *     bytes they hold;
 *   - a string that is valid UTF-8 parses back to itself;
 *   - when jansson can represent the snapshot (its fields valid UTF-8; labels that are not are
 *     left out by both), the rendered bytes are exactly
 *     json_dumps(cf_console_snapshot_json(...), JSON_COMPACT | JSON_ENSURE_ASCII);
 *   - no key appears twice in the rendered labels.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_int.h"
#include "console/render.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1796529600LL
#define MAX_FIELDS 64

static int64_t fixed_now_ns(void *ctx)
{
    (void)ctx;
    return NOW * 1000000000LL;
}

static const cf_clock fixed_clock = {.now_ns = fixed_now_ns};

/* The rendered string parses to one JSON string, and to s itself when s is UTF-8. */
static void check_string(const char *s)
{
    cf_buf b;
    cf_buf_init(&b, (size_t)1 << 24);
    check(cf_render_json_string(&b, s) == 0);
    json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    check(back && json_is_string(back));
    json_t *own = json_string(s);
    if (own)
        check(strcmp(json_string_value(back), s) == 0);
    json_decref(own);
    json_decref(back);
    cf_buf_cleanup(&b);
}

static uint64_t number_at(const uint8_t *data, size_t size, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (at + i < size ? data[at + i] : 0);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* fields end at the first NUL, as C strings from a manifest would */
    char *field[MAX_FIELDS];
    size_t n = 0;
    for (char *p = text; n < MAX_FIELDS;) {
        field[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    for (size_t i = 0; i < n; i++)
        check_string(field[i]);

    cf_label labels[MAX_FIELDS / 2];
    size_t nlabels = 0;
    for (size_t i = 4; i + 1 < n; i += 2) {
        int seen = 0; /* keys are unique in the catalogue: they come from a JSON object */
        for (size_t k = 0; k < nlabels; k++)
            seen |= strcmp(labels[k].key, field[i]) == 0;
        if (!seen)
            labels[nlabels++] = (cf_label){field[i], field[i + 1]};
    }
    cf_cat_snapshot s = {
        .id = "20261206T030000Z-00ab",
        .chain = n > 0 ? field[0] : "",
        .created = (int64_t)number_at(data, size, 0) % (400LL * 365 * 86400),
        .created_ns = (int32_t)(number_at(data, size, 8) % 1000000000),
        .size = number_at(data, size, 16),
        .raw_size = number_at(data, size, 24),
        .files = size,
        .level = (int)(int8_t)(size & 0xff),
        .encrypted = (int)(size & 1),
        .sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        .archive_key = n > 2 ? field[2] : NULL,
        .labels = labels,
        .nlabels = nlabels,
        .height = n > 1 && field[1][0] ? field[1] : NULL,
    };
    snprintf(s.compression, sizeof s.compression, "%s", n > 3 ? field[3] : "none");

    cf_buf b;
    cf_buf_init(&b, (size_t)1 << 24);
    check(cf_render_snapshot_uncached(&b, &s, NOW) == 0);
    json_t *back = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    check(back && json_is_object(back));
    json_decref(back);

    static cf_console console; /* only its clock is read */
    console.clock = &fixed_clock;
    json_t *want = cf_console_snapshot_json(&console, &s);
    if (want) {
        char *dump = json_dumps(want, JSON_COMPACT | JSON_ENSURE_ASCII);
        check(dump && strcmp(dump, b.data) == 0);
        free(dump);
    }
    json_decref(want);
    cf_buf_cleanup(&b);
    free(text);
    return 0;
}
