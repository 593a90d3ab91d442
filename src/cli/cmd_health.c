/*
 * cmd_health.c - `coffer health URL`: exit 0 when URL answers 200, 1 otherwise.
 *
 * The container image's HEALTHCHECK probes the server with it: the image holds no shell and no
 * curl, so the probe has to be the one program it has. Only http and https, no redirects (a probe
 * that followed one would report another service's health), and a bounded wait so that a hung
 * server is reported unhealthy instead of stalling the checker.
 */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/duration.h"

static const char health_usage[] =
    "usage: coffer health [--timeout D] URL\n"
    "\n"
    "Exits 0 when a GET of URL answers 200 (e.g. http://127.0.0.1:9000/health/ready), 1 when it\n"
    "answers anything else or cannot be reached within D (default 5s), 2 on a bad command line.\n";

/* The body is not looked at: the status says it all. */
static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    return size * n;
}

static int probe(const char *url, int64_t timeout_s)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fputs("coffer health: cannot start an HTTP client\n", stderr);
        return CF_EXIT_FAILURE;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "coffer health: cannot reach %s: %s\n", url, curl_easy_strerror(cc));
        return CF_EXIT_FAILURE;
    }
    if (status != 200) {
        fprintf(stderr, "coffer health: %s answered %ld\n", url, status);
        return CF_EXIT_FAILURE;
    }
    return CF_EXIT_OK;
}

int cf_cmd_health(int argc, char **argv)
{
    const char *url = NULL;
    int64_t timeout_s = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(health_usage, stdout);
            return CF_EXIT_OK;
        }
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (cf_duration_parse(argv[++i], &timeout_s) != 0) {
                fprintf(stderr, "coffer health: --timeout '%s' is not a duration (5s, 1m)\n", argv[i]);
                return CF_EXIT_USAGE;
            }
        } else if (!url && (strncmp(argv[i], "http://", 7) == 0 || strncmp(argv[i], "https://", 8) == 0)) {
            url = argv[i];
        } else {
            fprintf(stderr, "coffer health: unexpected '%s'\n%s", argv[i], health_usage);
            return CF_EXIT_USAGE;
        }
    }
    if (!url) {
        fputs(health_usage, stderr);
        return CF_EXIT_USAGE;
    }
    return probe(url, timeout_s);
}
