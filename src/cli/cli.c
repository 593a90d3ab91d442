#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: coffer <command> [options]\n"
                            "\n"
                            "commands:\n"
                            "  server     run the S3-compatible object server\n"
                            "  admin      manage access keys and public buckets of a running server\n"
                            "  snapshot   create, list and restore snapshots in a bucket or a directory\n"
                            "  mirror     make a directory or bucket hold what another holds\n"
                            "  presign    print a presigned URL for one object (GET, HEAD or PUT)\n"
                            "  console    serve the snapshot download site (web page and JSON API)\n"
                            "  health     exit 0 when a URL answers 200 (the container's health check)\n"
                            "  version    print the version\n"
                            "\n"
                            "Run 'coffer <command> --help' for a command's options.\n";

int cf_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CF_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "server") == 0)
        return cf_cmd_server(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0)
        return cf_cmd_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "snapshot") == 0)
        return cf_cmd_snapshot(argc - 1, argv + 1);
    if (strcmp(cmd, "mirror") == 0)
        return cf_cmd_mirror(argc - 1, argv + 1);
    if (strcmp(cmd, "presign") == 0)
        return cf_cmd_presign(argc - 1, argv + 1);
    if (strcmp(cmd, "console") == 0)
        return cf_cmd_console(argc - 1, argv + 1);
    if (strcmp(cmd, "health") == 0)
        return cf_cmd_health(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("coffer %s\n", COFFER_VERSION);
        return CF_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return CF_EXIT_OK;
    }
    fprintf(stderr, "coffer: unknown command '%s'\n\n%s", cmd, usage);
    return CF_EXIT_USAGE;
}
