/*
 * mirror_dated.h - the --dated part of `coffer mirror` (docs/MIRROR.md, "Dated mirrors"), for
 * cmd_mirror.c: it parses --dated, --as-of and --keep-daily/weekly/monthly into an int and a
 * cf_dated_opts, checks them here once the command line is read, and runs the night here instead
 * of cf_mirror_run.
 */
#ifndef CF_CLI_MIRROR_DATED_H
#define CF_CLI_MIRROR_DATED_H

#include <jansson.h>
#include <stdio.h>

#include "mirror/dated.h"

/* The combination of flags: --as-of and --keep-* only with --dated; --dated needs a directory
 * destination and refuses --delete; --as-of a calendar date. Says what is wrong on stderr
 * ("coffer mirror: ...") and returns CF_EXIT_USAGE, else 0. */
int cf_cli_mirror_dated_check(int dated, const cf_dated_opts *d, int delete_extra, int dst_is_dir);
/* Runs the night into dst->dir. *json gets the object for --json's "dated" member:
 * {"name","path","published","removed":[...]} (NULL when out of memory). The result is
 * cf_mirror_dated's: out and err as it fills them. */
int cf_cli_mirror_dated(const cf_mirror_side *src, const cf_mirror_side *dst, const cf_mirror_opts *o,
                        const cf_dated_opts *d, cf_mirror_summary *out, json_t **json, cf_err *err);
/* The human summary's line of the night: "dated copy PATH, removed N: NAME, ..." (or "not
 * published"). */
void cf_cli_mirror_dated_print(FILE *f, const json_t *json);

#endif
