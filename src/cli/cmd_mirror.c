/* cmd_mirror.c - `coffer mirror SRC DST` (docs/MIRROR.md); the work is src/mirror/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mirror/mirror.h"

int cf_cmd_mirror(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--fix-content-types"))
            return cmd_mirror_fix_types(argc, argv);
    fputs("coffer mirror: not built yet\n", stderr);
    return CF_EXIT_FAILURE;
}
