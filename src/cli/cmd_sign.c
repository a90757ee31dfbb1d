/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_sign(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm sign: not built yet\n");
    return 1;
}
