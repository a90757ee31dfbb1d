/* placeholder: being written */
#include <stdio.h>
#include "commands.h"
int spm_cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spm keygen: not built yet\n");
    return 1;
}
