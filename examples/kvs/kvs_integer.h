/* Redis's string-to-integer rule, shared by the host's RESP parser and the
 * trusted command code (it is freestanding: no libc). */
#ifndef SPM_KVS_INTEGER_H
#define SPM_KVS_INTEGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVS_INT64_TEXT_MAX 20u /* "-9223372036854775808" */

/* Redis's string2ll: optional '-', digits, no '+', no spaces, no leading
 * zero, no "-0", within int64. */
static inline bool kvs_parse_i64(const uint8_t *p, size_t size, int64_t *out)
{
    if (size == 0 || size > KVS_INT64_TEXT_MAX)
        return false;
    if (size == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    bool negative = p[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == size || p[i] < '1' || p[i] > '9')
        return false;
    uint64_t v = 0;
    for (; i < size; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (v > (uint64_t)INT64_MAX + (negative ? 1 : 0))
        return false;
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

#endif
