/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_platform(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm platform: not built yet\n");
    return 1;
}
