/* Argument helpers shared by the spm subcommands. */
#ifndef SPM_CLI_UTIL_H
#define SPM_CLI_UTIL_H

#include <stdbool.h>

/* True for "--help", "-h" and, where a subcommand is expected, "help". */
bool spm_cli_is_help(const char *arg, bool accept_word);

/* Matches `name` as "--name VALUE" or "--name=VALUE" at argv[*i]: 1 with
 * *value set (advancing *i past a separate value), 0 if argv[*i] is another
 * option, -1 if the value is missing or empty. */
int spm_cli_option_value(int argc, char **argv, int *i, const char *name, const char **value);

#endif
