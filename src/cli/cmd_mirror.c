/* cmd_mirror.c - `coffer mirror SRC DST` (docs/MIRROR.md); the work is src/mirror/. */
#include <stdio.h>

#include "cli/cli.h"
#include "mirror/mirror.h"

int cf_cmd_mirror(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("coffer mirror: not built yet\n", stderr);
    return CF_EXIT_FAILURE;
}
