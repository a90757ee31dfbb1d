/* The bodies two spmds send each other (src/daemon/wire.c), every message
 * type through its decoder: what serve_peer, recv_expect and the post-copy
 * tunnel run on a peer's bytes before acting on them.
 *
 * Input: byte 0 picks the message type (enum spmd_wire_type, modulo its
 * count; 0 tests an image file name alone), byte 1 is the receiver's
 * context (RESTORE: the migration's mode; ERROR: the text buffer's size;
 * FILE_DATA: the file's size and what already arrived, from the next 16
 * bytes), the rest is the body, copied into a buffer of exactly its size
 * so ASan sees any read past it.
 *
 * Properties: an accepted body has its type's exact size; strings come out
 * NUL-terminated within their fields; an accepted image file name is
 * 1..SPMD_WIRE_NAME_MAX printable bytes with no '/', no leading '.' (so
 * never "." or ".."), equal to the bytes sent; values are copies of the
 * body's bytes; re-encoding a decoded FILE_BEGIN or ERROR (and the fixed
 * structs) gives bytes that decode to the same value; each refusal comes
 * with a reason when the decoder writes one. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spm/abi/me_abi.h"
#include "wire.h"

static void check_why(const char *why, size_t why_size)
{
    assert(memchr(why, 0, why_size) != NULL);
    assert(why[0] != 0);
}

static void check_name(const char *name)
{
    size_t len = strnlen(name, SPMD_WIRE_NAME_MAX + 1);
    assert(len >= 1 && len <= SPMD_WIRE_NAME_MAX);
    assert(name[0] != '.' && strchr(name, '/') == NULL);
    for (size_t i = 0; i < len; i++)
        assert((unsigned char)name[i] > 0x20 && (unsigned char)name[i] < 0x7f);
}

static void fuzz_name(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    assert(name);
    memcpy(name, data, size);
    name[size] = 0;
    if (spmd_wire_image_name_ok(name)) {
        check_name(name);
        /* FILE_BEGIN carries exactly the names the check accepts. */
        uint8_t begin[sizeof(struct spmd_wire_file) + SPMD_WIRE_NAME_MAX];
        size_t begin_size = 0;
        assert(spmd_wire_file_begin_encode(7, 0600, name, begin, &begin_size) == 0);
        struct spmd_wire_file f;
        char again[SPMD_WIRE_NAME_MAX + 1];
        assert(spmd_wire_file_begin_decode(begin, begin_size, &f, again, NULL, 0) == 0);
        assert(strcmp(again, name) == 0 && f.size == 7 && f.mode == 0600);
    }
    free(name);
}

static void fuzz_hello(const uint8_t *body, size_t size)
{
    struct spmd_wire_hello h;
    char why[128];
    int ret = spmd_wire_hello_decode(body, size, &h, why, sizeof(why));
    if (ret < 0) {
        assert(ret == (size != sizeof(h) ? -EPROTO : -EPROTONOSUPPORT));
        check_why(why, sizeof(why));
        return;
    }
    assert(size == sizeof(h));
    assert(h.version == SPMD_WIRE_VERSION);
    assert(h.flags == SPMD_HELLO_MIGRATE || h.flags == SPMD_HELLO_RESUME ||
           h.flags == SPMD_HELLO_TUNNEL);
    assert(h.mode <= SPMD_MODE_PRE);
    assert(memchr(h.source, 0, sizeof(h.source)) && memchr(h.name, 0, sizeof(h.name)));
    /* Everything but the two forced NULs is the body's. */
    assert(memcmp(&h, body, offsetof(struct spmd_wire_hello, source) + sizeof(h.source) - 1) == 0);
    struct spmd_wire_hello again;
    assert(spmd_wire_hello_decode((const uint8_t *)&h, sizeof(h), &again, NULL, 0) == 0);
    assert(memcmp(&again, &h, sizeof(h)) == 0);
}

static void fuzz_me(const uint8_t *body, size_t size)
{
    uint16_t type;
    if (spmd_wire_me_from_peer(body, size, &type) < 0)
        return;
    struct spm_me_message_header h;
    assert(size >= sizeof(h));
    memcpy(&h, body, sizeof(h));
    assert(type == h.type);
    assert(type == SPM_ME_MSG_PEER_OFFER || type == SPM_ME_MSG_PEER_CONFIRM ||
           type == SPM_ME_MSG_PEER_SEALED);
}

static void fuzz_file_begin(const uint8_t *body, size_t size)
{
    struct spmd_wire_file f;
    char name[SPMD_WIRE_NAME_MAX + 1];
    char why[128];
    int ret = spmd_wire_file_begin_decode(body, size, &f, name, why, sizeof(why));
    if (ret < 0) {
        assert(ret == -EBADMSG);
        check_why(why, sizeof(why));
        return;
    }
    check_name(name);
    assert(f.reserved == 0 && f.size <= SPMD_WIRE_MAX_IMAGE_BYTES);
    assert(f.name_size == strlen(name) && size == sizeof(f) + f.name_size);
    assert(memcmp(body + sizeof(f), name, f.name_size) == 0);
    uint8_t again[sizeof(struct spmd_wire_file) + SPMD_WIRE_NAME_MAX];
    size_t again_size = 0;
    assert(spmd_wire_file_begin_encode(f.size, f.mode, name, again, &again_size) == 0);
    assert(again_size == size && memcmp(again, body, size) == 0);
}

static void fuzz_file_data(const uint8_t *body, size_t size)
{
    uint64_t file_size = 0, got = 0;
    if (size >= 16) {
        memcpy(&file_size, body, 8);
        memcpy(&got, body + 8, 8);
        size -= 16;
    }
    char why[128];
    int ret = spmd_wire_file_data_decode(size, file_size, got, why, sizeof(why));
    if (ret < 0) {
        check_why(why, sizeof(why));
        assert(got > file_size || size > file_size - got);
        return;
    }
    assert(got <= file_size && size <= file_size - got && got + size <= file_size);
}

/* A fixed-size body: accepted exactly at its size, as a copy. */
#define FIXED(decode, type)                                                                        \
    do {                                                                                           \
        type v;                                                                                    \
        int ret = decode(body, size, &v);                                                          \
        assert(ret == 0 || ret == -EBADMSG);                                                       \
        assert((ret == 0) == (size == sizeof(v)));                                                 \
        if (ret == 0) {                                                                            \
            assert(memcmp(&v, body, sizeof(v)) == 0);                                              \
            type again;                                                                            \
            assert(decode((const uint8_t *)&v, sizeof(v), &again) == 0);                           \
            assert(memcmp(&again, &v, sizeof(v)) == 0);                                            \
        }                                                                                          \
    } while (0)

static void fuzz_restore(const uint8_t *body, size_t size, uint8_t context)
{
    uint32_t mode = context % 4; /* the three modes and one unknown */
    struct spmd_wire_restore rs;
    char why[128];
    int ret = spmd_wire_restore_decode(body, size, mode, &rs, why, sizeof(why));
    if (ret < 0) {
        assert(ret == (size != sizeof(rs) ? -EBADMSG : -EINVAL));
        check_why(why, sizeof(why));
        return;
    }
    assert(size == sizeof(rs));
    assert((rs.flags & ~SPMD_RESTORE_LAZY) == 0);
    assert(((rs.flags & SPMD_RESTORE_LAZY) != 0) == (mode == SPMD_MODE_POST));
    assert(memchr(rs.service_ip, 0, sizeof(rs.service_ip)));
    assert(strspn(rs.service_ip, "0123456789./") == strlen(rs.service_ip));
    assert(memcmp(rs.service_ip, body + offsetof(struct spmd_wire_restore, service_ip),
                  strlen(rs.service_ip)) == 0);
    struct spmd_wire_restore again;
    assert(spmd_wire_restore_decode((const uint8_t *)&rs, sizeof(rs), mode, &again, NULL, 0) == 0);
    assert(memcmp(&again, &rs, sizeof(rs)) == 0);
}

static void fuzz_error(const uint8_t *body, size_t size, uint8_t context)
{
    size_t text_size = (size_t)context + 1; /* 1..256, also shorter than the text */
    char *text = malloc(text_size);
    assert(text);
    int ret = spmd_wire_error_decode(body, size, text, text_size);
    if (ret == -EBADMSG) {
        free(text);
        return;
    }
    struct spmd_wire_error e;
    assert(size >= sizeof(e));
    memcpy(&e, body, sizeof(e));
    assert(ret < 0 && ret == e.status);
    assert(e.text_size <= SPMD_WIRE_TEXT_MAX && size == sizeof(e) + e.text_size);
    size_t n = strlen(text);
    assert(n == (e.text_size < text_size - 1 ? e.text_size : text_size - 1));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        assert(c >= 0x20 && c <= 0x7e);
        assert(c == body[sizeof(e) + i] || c == '?');
    }
    /* What a receiver shows, sent on, reads back the same. */
    uint8_t again[sizeof(struct spmd_wire_error) + SPMD_WIRE_TEXT_MAX];
    size_t again_size = spmd_wire_error_encode(ret, text, again);
    assert(again_size == sizeof(e) + n);
    char *text2 = malloc(text_size);
    assert(text2);
    assert(spmd_wire_error_decode(again, again_size, text2, text_size) == ret);
    assert(strcmp(text, text2) == 0);
    free(text2);
    free(text);
}

static void fuzz_tunnel_end(const uint8_t *body, size_t size)
{
    int32_t status;
    int ret = spmd_wire_tunnel_end_decode(body, size, &status);
    assert((ret == 0) == (size == sizeof(struct spmd_wire_tunnel_end)));
    if (ret == 0) {
        struct spmd_wire_tunnel_end end;
        memcpy(&end, body, sizeof(end));
        assert(status == end.status);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned type = data[0] % (SPMD_WIRE_TUNNEL_END + 1);
    uint8_t context = data[1];
    size_t body_size = size - 2;
    uint8_t *body = malloc(body_size ? body_size : 1);
    assert(body);
    memcpy(body, data + 2, body_size);
    size = body_size;

    switch (type) {
    case 0:
        fuzz_name(body, size);
        break;
    case SPMD_WIRE_HELLO:
        fuzz_hello(body, size);
        break;
    case SPMD_WIRE_ME:
        fuzz_me(body, size);
        break;
    case SPMD_WIRE_FILE_BEGIN:
        fuzz_file_begin(body, size);
        break;
    case SPMD_WIRE_FILE_DATA:
        fuzz_file_data(body, size);
        break;
    case SPMD_WIRE_FILE_END:
        FIXED(spmd_wire_file_end_decode, struct spmd_wire_file_end);
        break;
    case SPMD_WIRE_IMAGES_DONE:
        FIXED(spmd_wire_images_done_decode, struct spmd_wire_images_done);
        break;
    case SPMD_WIRE_RESTORE:
        fuzz_restore(body, size, context);
        break;
    case SPMD_WIRE_RESTORED:
        FIXED(spmd_wire_restored_decode, struct spmd_wire_restored);
        break;
    case SPMD_WIRE_RUNNING:
        FIXED(spmd_wire_running_decode, struct spmd_wire_running);
        break;
    case SPMD_WIRE_QUERY:
    case SPMD_WIRE_STATE:
        FIXED(spmd_wire_state_decode, struct spmd_wire_state);
        break;
    case SPMD_WIRE_GO:
    case SPMD_WIRE_DISCARD:
    case SPMD_WIRE_OK:
        assert((spmd_wire_empty_decode(size) == 0) == (size == 0));
        break;
    case SPMD_WIRE_ERROR:
        fuzz_error(body, size, context);
        break;
    case SPMD_WIRE_TUNNEL_DATA:
        assert((spmd_wire_tunnel_data_decode(size) == 0) == (size != 0));
        break;
    case SPMD_WIRE_TUNNEL_END:
        fuzz_tunnel_end(body, size);
        break;
    }
    free(body);
    return 0;
}
