/* A struct with implicit padding and an asserted size: the ABI header check
 * must refuse it ("abi header check rejects padding"). */
#include <stdint.h>
struct abi_padded_example {
    uint8_t tag;
    uint64_t value; /* 7 bytes of padding before this */
};
_Static_assert(sizeof(struct abi_padded_example) == 16, "padded example");
