/* The SPMW frame header (src/host/net/tls.c spm_tls_frame_decode): the
 * 16 bytes spm_tls_recv reads from a peer and checks before it reads any
 * body byte, or waits for the server's ACCEPTED frame in spm_tls_connect.
 *
 * Input: byte 0's low bit says whether the ACCEPTED frame is awaited; the
 * next 16 bytes are the header (shorter inputs are padded with zeros, as
 * an exact-size copy). Properties: the decoded fields are the header's
 * little-endian fields; an accepted header is exactly what
 * spm_tls_frame_encode writes for its type and size, within
 * SPM_WIRE_MAX_BODY, of a type the caller may receive (ACCEPTED only when
 * awaited, and then empty); a refused one names why. */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool accepted = data[0] & 1;
    uint8_t *header = calloc(1, SPM_WIRE_HEADER_SIZE);
    assert(header);
    memcpy(header, data + 1, size - 1 < SPM_WIRE_HEADER_SIZE ? size - 1 : SPM_WIRE_HEADER_SIZE);

    struct spm_wire_frame_header h;
    const char *wrong = "unset";
    int ret = spm_tls_frame_decode(header, accepted, &h, &wrong);
    assert(h.magic ==
           (uint32_t)(header[0] | header[1] << 8 | header[2] << 16 | (uint32_t)header[3] << 24));
    assert(h.version == (uint16_t)(header[4] | header[5] << 8));
    assert(h.type == (uint16_t)(header[6] | header[7] << 8));
    assert(h.size ==
           (uint32_t)(header[8] | header[9] << 8 | header[10] << 16 | (uint32_t)header[11] << 24));
    if (ret < 0) {
        assert(ret == -EBADMSG && wrong && wrong[0]);
    } else {
        assert(ret == 0 && wrong == NULL);
        assert(h.magic == SPM_WIRE_MAGIC && h.version == SPM_WIRE_VERSION && h.reserved == 0);
        assert(h.size <= SPM_WIRE_MAX_BODY);
        if (accepted)
            assert(h.type == SPM_WIRE_TYPE_ACCEPTED && h.size == 0);
        else
            assert(h.type != SPM_WIRE_TYPE_ACCEPTED);
        uint8_t again[SPM_WIRE_HEADER_SIZE];
        spm_tls_frame_encode(again, h.type, h.size);
        assert(memcmp(again, header, SPM_WIRE_HEADER_SIZE) == 0);
    }
    /* What the sender writes, the receiver takes. */
    uint8_t sent[SPM_WIRE_HEADER_SIZE];
    spm_tls_frame_encode(sent, h.type, h.size);
    struct spm_wire_frame_header back;
    ret = spm_tls_frame_decode(sent, accepted, &back, &wrong);
    bool sendable =
        h.size <= SPM_WIRE_MAX_BODY && (accepted ? h.type == SPM_WIRE_TYPE_ACCEPTED && h.size == 0
                                                 : h.type != SPM_WIRE_TYPE_ACCEPTED);
    assert((ret == 0) == sendable);
    assert(back.type == h.type && back.size == h.size);
    free(header);
    return 0;
}
