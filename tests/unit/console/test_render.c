/*
 * test_render.c - the API's JSON written without jansson (console/render.h) is byte for byte what
 * jansson's json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) writes for the same data: strings with
 * quotes, backslashes, every control character, DEL, non-ASCII UTF-8 in and beyond the BMP; a
 * snapshot's every field (no height, encrypted, sizes above 2^63, a creation time in the future);
 * and, through a real catalogue on a directory repository, the fragments kept per view (first
 * render and cached copy alike), chain summaries, and a new view after a refresh. Bytes that are
 * not UTF-8 (which jansson refuses outright) still give valid JSON.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "console/console_int.h"
#include "console/render.h"
#include "core/fs.h"

#define NOW 1796529600LL /* 2026-12-06T04:00:00Z */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

static const char *const tricky[] = {
    "",
    "plain height 123",
    "a \"quoted\" label",
    "back\\slash\\\\ and /slash/",
    "\x01\x02\x03\x04\x05\x06\x07\b\t\n\x0b\f\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c"
    "\x1d"
    "\x1e\x1f",
    "del \x7f end",
    "caf\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac", /* é € 日本 */
    "emoji \xf0\x9f\x98\x80 and \xf4\x8f\xbf\xbf",       /* U+1F600, U+10FFFF */
    "edges \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf", /* U+0080 U+07FF U+0800 U+FFFF */
    "</script><!-- \"'\\u0000 -->",
};

static void assert_same_string(const char *s)
{
    json_t *j = json_string(s);
    assert_non_null(j);
    char *want = json_dumps(j, DUMP_FLAGS);
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    assert_int_equal(cf_render_json_string(&b, s), 0);
    assert_string_equal(b.data, want);
    cf_buf_cleanup(&b);
    free(want);
    json_decref(j);
}

static void test_render_strings_match_jansson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++)
        assert_same_string(tricky[i]);
    char all[128];
    for (int c = 1; c < 128; c++)
        all[c - 1] = (char)c;
    all[127] = '\0';
    assert_same_string(all);
}

/* Not UTF-8: jansson will not make such a string; ours is still one JSON string, each bad byte
 * U+FFFD and the valid text around it kept. */
static void test_render_invalid_utf8_stays_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x80",
        "lone \xbf continuation",
        "\xc0\xaf overlong slash",
        "\xc1\xbf",
        "\xe0\x80\xaf",
        "\xed\xa0\x80 surrogate",
        "\xf4\x90\x80\x80 above U+10FFFF",
        "\xf5\x80\x80\x80",
        "\xff\xfe",
        "cut \xe2\x82",
        "cut \xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cf_buf b;
        cf_buf_init(&b, 1 << 16);
        assert_int_equal(cf_render_json_string(&b, bad[i]), 0);
        json_error_t jerr;
        json_t *back = json_loads(b.data, JSON_DECODE_ANY, &jerr);
        if (!back)
            fail_msg("'%s' is not JSON: %s", b.data, jerr.text);
        assert_true(json_is_string(back));
        assert_non_null(strstr(b.data, "\\uFFFD"));
        json_decref(back);
        cf_buf_cleanup(&b);
    }
}

static int64_t fixed_now_ns(void *ctx)
{
    (void)ctx;
    return NOW * 1000000000LL;
}

static const cf_clock fixed_clock = {.now_ns = fixed_now_ns};

/* What jansson writes for s through the console's own cf_console_snapshot_json. */
static char *jansson_snapshot(const cf_cat_snapshot *s)
{
    static cf_console console; /* only its clock is read */
    console.clock = &fixed_clock;
    json_t *o = cf_console_snapshot_json(&console, s);
    char *text = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    assert_non_null(text);
    return text;
}

static void assert_snapshot_matches(const cf_cat_snapshot *s)
{
    char *want = jansson_snapshot(s);
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    assert_int_equal(cf_render_snapshot_uncached(&b, s, NOW), 0);
    assert_string_equal(b.data, want);
    cf_buf_cleanup(&b);
    free(want);
}

static void test_render_snapshot_matches_jansson(void **state)
{
    (void)state;
    size_t n = sizeof tricky / sizeof tricky[0];
    cf_label *labels = calloc(n, sizeof *labels);
    char keys[16][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu \"\\\x01\xc3\xa9", i);
        labels[i].key = keys[i];
        labels[i].value = (char *)tricky[(i + 3) % n];
    }
    cf_cat_snapshot s = {
        .id = "20261206T030000Z-00ab",
        .chain = "chain-\"0\"",
        .created = NOW - 3600,
        .created_ns = 123456789,
        .size = 512,
        .raw_size = 2048,
        .files = 7,
        .compression = "lz4",
        .level = 0,
        .encrypted = 0,
        .sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        .archive_key = "chain-\"0\"/20261206T030000Z-00ab.tar.lz4",
        .labels = labels,
        .nlabels = n,
        .height = (char *)tricky[6],
    };
    assert_snapshot_matches(&s);

    s.height = NULL; /* "height": null */
    s.encrypted = 1;
    s.compression[0] = '\0';
    strcpy(s.compression, "zstd");
    s.level = -7;
    s.size = UINT64_MAX; /* as json_int_t: -1 */
    s.raw_size = (uint64_t)1 << 63;
    s.created = NOW + 86400; /* made "tomorrow" by a skewed clock: age 0, not negative */
    s.created_ns = 0;
    s.nlabels = 0;
    assert_snapshot_matches(&s);

    s.created = 0; /* 1970 */
    s.archive_key = NULL;
    s.nlabels = 4;
    labels[1].value = NULL;             /* a label the catalogue could not copy is left out, */
    labels[2].key = (char *)"bad \xff"; /* and so is one jansson refuses */
    labels[3].value = (char *)"cut \xe2\x82";
    assert_snapshot_matches(&s);
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    assert_int_equal(cf_render_snapshot_uncached(&b, &s, NOW), 0);
    assert_non_null(strstr(b.data, "\"labels\":{\"k0 "));
    assert_null(strstr(b.data, "\"k3 "));
    cf_buf_cleanup(&b);
    free(labels);
}

/* ---- through a catalogue ---- */

/* <chain>/<id>.json with the labels given, as cf_manifest_write writes it. */
static void write_manifest(cf_repo *repo, const char *chain, int64_t t, cf_label *labels, size_t nlabels,
                           char id[CF_SNAPSHOT_ID_LEN + 1])
{
    cf_err err;
    assert_int_equal(cf_snapshot_id_new(NULL, (time_t)t, id, &err), 0);
    char archive_key[300];
    snprintf(archive_key, sizeof archive_key, "%s/%s.tar.zst", chain, id);
    cf_archive_chunk chunk = {0, 512, 2048, 0xdeadbeef};
    cf_manifest m = {
        .format = CF_MANIFEST_FORMAT,
        .ns = (char *)chain,
        .created = (time_t)t,
        .created_ns = (int32_t)(t % 1000) * 1000,
        .source = {.kind = CF_SOURCE_STREAM, .host = "node-\xe2\x82\xac"},
        .labels = labels,
        .nlabels = nlabels,
        .archive = {.key = archive_key,
                    .compression = CF_CODEC_ZSTD,
                    .level = 3,
                    .size = 512,
                    .raw_size = 2048,
                    .files = 1},
        .chunks = &chunk,
        .nchunks = 1,
        .tool = "coffer test",
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    memset(m.archive.sha256, 0xab, sizeof m.archive.sha256);
    char *text, key[300];
    size_t len;
    assert_int_equal(cf_manifest_write(&m, &text, &len, &err), 0);
    snprintf(key, sizeof key, "%s/%s.json", chain, id);
    cf_repo_writer *w;
    assert_int_equal(cf_repo_writer_begin(repo, key, len, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, text, len, &err), 0);
    assert_int_equal(cf_repo_writer_commit(w, &err), 0);
    free(text);
}

/* The chain summary as api.c packed it with jansson before render.c. */
static char *jansson_chain(const cf_cat_chain *ch, const char *url)
{
    static cf_console console;
    console.clock = &fixed_clock;
    json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "name", ch->name, "repository", url, "snapshots",
                          (json_int_t)ch->nsnaps, "latest",
                          ch->nsnaps ? cf_console_snapshot_json(&console, &ch->snaps[0]) : json_null());
    char *text = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    assert_non_null(text);
    return text;
}

static void assert_view_matches(cf_rendered *rv, const char *url)
{
    const cf_cat_view *v = cf_rendered_view(rv);
    for (size_t c = 0; c < v->nchains; c++) {
        const cf_cat_chain *ch = &v->chains[c];
        for (int round = 0; round < 2; round++) { /* the first renders, the second copies */
            char *want = jansson_chain(ch, url);
            cf_buf b;
            cf_buf_init(&b, 1 << 20);
            assert_int_equal(cf_render_chain(rv, &b, ch, NOW), 0);
            assert_string_equal(b.data, want);
            free(want);
            for (size_t i = 0; i < ch->nsnaps; i++) {
                cf_buf_reset(&b);
                want = jansson_snapshot(&ch->snaps[i]);
                assert_int_equal(cf_render_snapshot(rv, &b, ch, i, NOW), 0);
                assert_string_equal(b.data, want);
                free(want);
            }
            cf_buf_cleanup(&b);
        }
    }
}

static void test_render_view_matches_jansson_and_follows_refresh(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-test-render-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cf_repo *repo;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(dir, &repo, &err), 0);
    char id[CF_SNAPSHOT_ID_LEN + 1];
    size_t n = sizeof tricky / sizeof tricky[0];
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "label \"%zu\" \\ \xf0\x9f\x98\x80", i);
        cf_label labels[] = {
            {"height", (char *)tricky[i]}, {key, (char *)tricky[(i + 1) % n]}, {"chain_id", "mainnet"}};
        write_manifest(repo, i % 2 ? "chain-b" : "chain-a", NOW - 86400 + (int64_t)i * 600, labels, i % 3 + 1,
                       id);
    }
    cf_cat_repo repos[] = {{.url = "s3://snap\"shots/pre\\fix", .repo = repo}};
    cf_catalogue_opts o = {.repos = repos, .nrepos = 1};
    cf_catalogue *cat;
    assert_int_equal(cf_catalogue_new(&o, &cat, &err), 0);
    assert_int_equal(cf_catalogue_refresh(cat, &err), 0);
    const char *urls[] = {repos[0].url};
    cf_render *r;
    assert_int_equal(cf_render_new(cat, urls, 1, &r, &err), 0);

    cf_rendered *rv = cf_render_acquire(r);
    assert_non_null(rv);
    assert_int_equal(cf_rendered_view(rv)->nchains, 2);
    assert_view_matches(rv, repos[0].url);
    cf_rendered *again = cf_render_acquire(r);
    assert_ptr_equal(again, rv); /* same view: same fragments */
    cf_render_release(again);

    /* A new manifest: the next acquire renders the new view, the old one stays usable. */
    cf_label one[] = {{"height", "9999999"}};
    write_manifest(repo, "chain-b", NOW - 10, one, 1, id);
    assert_int_equal(cf_catalogue_refresh(cat, &err), 0);
    cf_rendered *next = cf_render_acquire(r);
    assert_ptr_not_equal(next, rv);
    const cf_cat_chain *b = cf_cat_find_chain(cf_rendered_view(next), "chain-b");
    assert_non_null(b);
    assert_string_equal(b->snaps[0].id, id);
    assert_view_matches(next, repos[0].url);
    assert_view_matches(rv, repos[0].url);
    cf_render_release(rv);
    cf_render_release(next);

    cf_render_free(r);
    cf_catalogue_free(cat);
    cf_repo_close(repo);
    cf_fs_remove_tree(dir, NULL);
}

typedef struct racer {
    cf_render *render;
    atomic_int *stop;
    size_t answers;
} racer;

/* Renders every snapshot of whatever view is current, again and again: each answer must parse. */
static void *race(void *arg)
{
    racer *a = arg;
    while (!atomic_load(a->stop)) {
        cf_rendered *rv = cf_render_acquire(a->render);
        assert_non_null(rv);
        const cf_cat_view *v = cf_rendered_view(rv);
        for (size_t c = 0; c < v->nchains; c++) {
            cf_buf b;
            cf_buf_init(&b, 1 << 20);
            assert_int_equal(cf_render_chain(rv, &b, &v->chains[c], NOW), 0);
            for (size_t i = 0; i < v->chains[c].nsnaps; i++) {
                cf_buf_putc(&b, ',');
                assert_int_equal(cf_render_snapshot(rv, &b, &v->chains[c], i, NOW), 0);
            }
            assert_non_null(strstr(b.data, "\"latest\":{\"chain\":"));
            cf_buf_cleanup(&b);
            a->answers++;
        }
        cf_render_release(rv);
    }
    return NULL;
}

/* Readers on four threads while refreshes swap views under them (run under ASan and TSan): no
 * fragment is used after its view's last reader let go, none leaks. */
static void test_render_readers_while_views_change(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-test-render-race-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cf_repo *repo;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(dir, &repo, &err), 0);
    char id[CF_SNAPSHOT_ID_LEN + 1];
    cf_label height[] = {{"height", "1"}};
    write_manifest(repo, "race", NOW - 1000, height, 1, id);
    cf_cat_repo repos[] = {{.url = "s3://race", .repo = repo}};
    cf_catalogue_opts o = {.repos = repos, .nrepos = 1};
    cf_catalogue *cat;
    assert_int_equal(cf_catalogue_new(&o, &cat, &err), 0);
    assert_int_equal(cf_catalogue_refresh(cat, &err), 0);
    const char *urls[] = {repos[0].url};
    cf_render *r;
    assert_int_equal(cf_render_new(cat, urls, 1, &r, &err), 0);
    atomic_int stop = 0;
    racer racers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        racers[i] = (racer){.render = r, .stop = &stop};
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        write_manifest(repo, i % 2 ? "race" : "race-2", NOW - 999 + i, height, 1, id);
        assert_int_equal(cf_catalogue_refresh(cat, &err), 0);
    }
    atomic_store(&stop, 1);
    size_t answers = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        answers += racers[i].answers;
    }
    assert_true(answers > 0);
    cf_rendered *rv = cf_render_acquire(r);
    assert_int_equal(cf_rendered_view(rv)->nchains, 2);
    cf_render_release(rv);
    cf_render_free(r);
    cf_catalogue_free(cat);
    cf_repo_close(repo);
    cf_fs_remove_tree(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_strings_match_jansson),
        cmocka_unit_test(test_render_invalid_utf8_stays_json),
        cmocka_unit_test(test_render_snapshot_matches_jansson),
        cmocka_unit_test(test_render_view_matches_jansson_and_follows_refresh),
        cmocka_unit_test(test_render_readers_while_views_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
