/* cli_format.c - quantities for people (cli_format.h). */
#include "cli/cli_format.h"

#include <stdio.h>

void cf_cli_human_bytes(double bytes, int decimals, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, n, "%.*f %s", u ? decimals : 0, bytes, units[u]);
}
