/* The spm CLI's subcommands: one file each, dispatched from the table in
 * main.c. Each returns a process exit code and prints its own usage. */
#ifndef SPM_CLI_COMMANDS_H
#define SPM_CLI_COMMANDS_H

int spm_cmd_ca(int argc, char **argv);
int spm_cmd_platform(int argc, char **argv);
int spm_cmd_keygen(int argc, char **argv);
int spm_cmd_sign(int argc, char **argv);
int spm_cmd_inspect(int argc, char **argv);
int spm_cmd_checkpoint(int argc, char **argv);
int spm_cmd_restore(int argc, char **argv);
int spm_cmd_criu_action(int argc, char **argv);
int spm_cmd_migrate(int argc, char **argv);
int spm_cmd_recover(int argc, char **argv);
/* cmd_host_cert.c: `spm ca issue` (argv[0] "issue") and `spm host-cert`. */
int spm_cmd_ca_issue(int argc, char **argv);
int spm_cmd_host_cert(int argc, char **argv);

#endif
