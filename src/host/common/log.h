/* Host-side diagnostics. Library code logs where a decision is made, with
 * what failed and on what; only the CLI decides what the user finally sees.
 * SPM_LOG=debug|info|error selects the level (default: error). */
#ifndef SPM_HOST_LOG_H
#define SPM_HOST_LOG_H

enum spm_log_level { SPM_LOG_ERROR = 0, SPM_LOG_INFO = 1, SPM_LOG_DEBUG = 2 };

void spm_log(enum spm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define spm_error(...) spm_log(SPM_LOG_ERROR, __VA_ARGS__)
#define spm_info(...)  spm_log(SPM_LOG_INFO, __VA_ARGS__)
#define spm_debug(...) spm_log(SPM_LOG_DEBUG, __VA_ARGS__)

#endif
