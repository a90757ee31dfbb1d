/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_ca(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm ca: not built yet\n");
    return 1;
}
