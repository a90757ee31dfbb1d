/* Whole-file reads and crash-safe writes: SPM's state files (platform
 * secrets, keys, escrow) must never be half-written or world-readable. */
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int spm_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        spm_error("cannot open %s: %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        spm_error("cannot stat %s: %s", path, strerror(err));
        return -err;
    }
    if ((uint64_t)st.st_size > max_size) {
        close(fd);
        spm_error("%s is %lld bytes, more than the %zu allowed", path, (long long)st.st_size,
                  max_size);
        return -EFBIG;
    }
    size_t want = (size_t)st.st_size;
    uint8_t *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            spm_error("cannot read %s: %s", path, n < 0 ? strerror(err) : "file shrank");
            return -err;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[want] = 0;
    *data = buf;
    *size = want;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t size)
{
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int spm_write_file_atomic(const char *path, const void *data, size_t size, unsigned mode)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    char *dir_copy = strdup(path);
    if (!tmp || !dir_copy) {
        free(tmp);
        free(dir_copy);
        return -ENOMEM;
    }
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int ret = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ret = -errno;
        spm_error("cannot create a temporary file next to %s: %s", path, strerror(-ret));
        goto out;
    }
    if (fchmod(fd, mode) < 0 || (ret = write_all(fd, data, size)) < 0 || fsync(fd) < 0) {
        if (ret == 0)
            ret = -errno;
        spm_error("cannot write %s: %s", tmp, strerror(-ret));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        ret = -errno;
        spm_error("cannot rename %s to %s: %s", tmp, path, strerror(-ret));
        unlink(tmp);
        goto out;
    }
    int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(dir_copy);
    free(tmp);
    return ret;
}

int spm_mkdir_p(const char *path, unsigned mode)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, mode) < 0 && errno != EEXIST) {
            int err = errno;
            spm_error("cannot create directory %s: %s", buf, strerror(err));
            return -err;
        }
        buf[i] = saved;
    }
    return 0;
}

int spm_ct_memcmp(const void *a, const void *b, size_t size)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < size; i++)
        diff |= x[i] ^ y[i];
    return diff != 0;
}

void spm_wipe(void *p, size_t size)
{
    volatile uint8_t *v = p;
    while (size--)
        *v++ = 0;
}

void spm_hex(const uint8_t *bytes, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * size] = 0;
}
