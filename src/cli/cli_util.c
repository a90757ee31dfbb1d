/* Argument helpers shared by the spm subcommands, so every subcommand
 * accepts options the same way. */
#include "cli_util.h"

#include <string.h>

bool spm_cli_is_help(const char *arg, bool accept_word)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ||
           (accept_word && strcmp(arg, "help") == 0);
}

int spm_cli_option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t length = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, length) != 0)
        return 0;
    if (arg[length] == '=') {
        *value = arg + length + 1;
    } else if (arg[length] == 0) {
        if (*i + 1 >= argc)
            return -1;
        *value = argv[++*i];
    } else {
        return 0;
    }
    return (*value)[0] ? 1 : -1;
}
