/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm run: not built yet\n");
    return 1;
}
