/* Whole-file reads and atomic, mode-0600 writes for SPM's state files. */
#ifndef SPM_HOST_FILEIO_H
#define SPM_HOST_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads all of `path` into a malloc'd buffer (*data, owned by the caller;
 * NUL-terminated one byte past *size for text use). Fails with -ENOENT,
 * -EFBIG (over max_size) or another -errno; logs which file. */
int spm_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size)
    __attribute__((warn_unused_result));

/* Writes `size` bytes to `path` atomically (temp file in the same directory,
 * fsync, rename, fsync of the directory) with the given mode. */
int spm_write_file_atomic(const char *path, const void *data, size_t size, unsigned mode)
    __attribute__((warn_unused_result));

/* mkdir -p with `mode` for each created component. */
int spm_mkdir_p(const char *path, unsigned mode) __attribute__((warn_unused_result));

/* Constant-time comparison; 0 when equal. */
int spm_ct_memcmp(const void *a, const void *b, size_t size);

/* Overwrites memory the compiler may not elide. */
void spm_wipe(void *p, size_t size);

/* Lower-case hex of `size` bytes into out (2*size+1 bytes). */
void spm_hex(const uint8_t *bytes, size_t size, char *out);

#endif
