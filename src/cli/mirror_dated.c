#include "cli/mirror_dated.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/clock.h"

int cf_cli_mirror_dated_check(int dated, const cf_dated_opts *d, int delete_extra, int dst_is_dir)
{
    const char *wrong = NULL;
    char name[CF_DATED_NAME_LEN];
    cf_err err;
    if (!dated && (d->as_of || d->keep_daily || d->keep_weekly || d->keep_monthly))
        wrong = "--as-of, --keep-daily, --keep-weekly and --keep-monthly apply to --dated only";
    else if (dated && delete_extra)
        wrong = "--delete cannot be used with --dated (each dated copy is the whole source)";
    else if (dated && !dst_is_dir)
        wrong = "--dated needs a directory destination (dated copies are hard-linked directories)";
    else if (d->keep_daily < 0 || d->keep_weekly < 0 || d->keep_monthly < 0)
        wrong = "--keep-daily, --keep-weekly and --keep-monthly take a count of 0 or more";
    else if (dated && cf_dated_name(d, (int64_t)cf_clock_now(), name, &err) != 0)
        wrong = err.msg;
    if (!wrong)
        return 0;
    fprintf(stderr, "coffer mirror: %s\n", wrong);
    return CF_EXIT_USAGE;
}

int cf_cli_mirror_dated(const cf_mirror_side *src, const cf_mirror_side *dst, const cf_mirror_opts *o,
                        const cf_dated_opts *d, cf_mirror_summary *out, json_t **json, cf_err *err)
{
    char **removed = NULL;
    size_t nremoved = 0;
    char name[CF_DATED_NAME_LEN] = "", path[PATH_MAX];
    cf_dated_name(d, (int64_t)cf_clock_now(), name, NULL);
    int rc = cf_mirror_dated(src, dst->dir, o, d, out, &removed, &nremoved, err);
    snprintf(path, sizeof path, "%s/%s", dst->dir, name);
    json_t *names = json_array();
    for (size_t i = 0; names && i < nremoved; i++)
        json_array_append_new(names, json_string(removed[i]));
    cf_dated_names_free(removed, nremoved);
    /* A failure after the publishing rename (the retention) still published the copy: the
     * staging directory is gone then, and the copy is there. */
    char partial[PATH_MAX];
    snprintf(partial, sizeof partial, "%s/.%s.partial", dst->dir, name);
    struct stat st;
    int published = !o->dry_run && (rc == 0 || (stat(partial, &st) != 0 && stat(path, &st) == 0));
    *json = names ? json_pack("{s:s, s:s, s:b, s:o}", "name", name, "path", path, "published", published,
                              "removed", names)
                  : NULL;
    return rc;
}

void cf_cli_mirror_dated_print(FILE *f, const json_t *json)
{
    if (!json)
        return;
    const char *path = json_string_value(json_object_get(json, "path"));
    const json_t *removed = json_object_get(json, "removed");
    if (!json_is_true(json_object_get(json, "published"))) {
        fprintf(f, "dated copy %s not published\n", path ? path : "");
        return;
    }
    fprintf(f, "dated copy %s", path ? path : "");
    size_t n = json_array_size(removed);
    if (n)
        fprintf(f, ", removed %zu:", n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s %s", i ? "," : "", json_string_value(json_array_get(removed, i)));
    fputc('\n', f);
}
