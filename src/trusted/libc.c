/* The few libc functions enclave code and BearSSL need, with no libc: memory
 * and string primitives (their fortified __*_chk forms too), the stack
 * protector's failure hook, and time() as an ocall. rep movsb/stosb are the
 * fast path on every CPU with ERMS, which SGX-capable CPUs all have. */
#include "trts_internal.h"

#include <string.h>

void *memcpy(void *dst, const void *src, size_t size)
{
    void *ret = dst;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(size) : : "memory");
    return ret;
}

void *memmove(void *dst, const void *src, size_t size)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + size)
        return memcpy(dst, src, size);
    d += size - 1;
    s += size - 1;
    __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(size) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t size)
{
    void *ret = dst;
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(size) : "a"(c) : "memory");
    return ret;
}

int memcmp(const void *a, const void *b, size_t size)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < size; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (a[i] != b[i] || !a[i])
            return (unsigned char)a[i] - (unsigned char)b[i];
    }
    return 0;
}

int spm_ct_equal(const void *a, const void *b, size_t size)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < size; i++)
        diff |= x[i] ^ y[i];
    return diff != 0;
}

void spm_wipe(void *p, size_t size)
{
    memset(p, 0, size);
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Fortified variants, called by code built with _FORTIFY_SOURCE (Debian's
 * libbearssl.a). An overflow they detect aborts the enclave. */
void *__memcpy_chk(void *dst, const void *src, size_t size, size_t dst_size);
void *__memmove_chk(void *dst, const void *src, size_t size, size_t dst_size);
void *__memset_chk(void *dst, int c, size_t size, size_t dst_size);
void __stack_chk_fail(void);
long time(long *out);

void *__memcpy_chk(void *dst, const void *src, size_t size, size_t dst_size)
{
    if (size > dst_size)
        trts_abort();
    return memcpy(dst, src, size);
}

void *__memmove_chk(void *dst, const void *src, size_t size, size_t dst_size)
{
    if (size > dst_size)
        trts_abort();
    return memmove(dst, src, size);
}

void *__memset_chk(void *dst, int c, size_t size, size_t dst_size)
{
    if (size > dst_size)
        trts_abort();
    return memset(dst, c, size);
}

void __stack_chk_fail(void)
{
    trts_abort();
}

/* BearSSL's X.509 validation asks for the time; it comes from the host and is
 * therefore only as trustworthy as the host. */
long time(long *out)
{
    long now = (long)spm_untrusted_time();
    if (out)
        *out = now;
    return now;
}

void spm_spin_lock(struct spm_spinlock *l)
{
    while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
    }
}

void spm_spin_unlock(struct spm_spinlock *l)
{
    __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}
