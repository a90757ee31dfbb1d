/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm inspect: not built yet\n");
    return 1;
}
