/* The decoders of the bodies two spmds send each other (wire.h): every
 * byte a peer writes into a message body is read here first, and nowhere
 * else, so one fuzz target (fuzz/daemon/fuzz_wire.c) covers them all. Pure
 * functions: no I/O, no state, no logging; the session in migrate.c and
 * tunnel.c checks order and totals and acts. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spm/abi/me_abi.h"

static void set_why(char *why, size_t why_size, const char *text)
{
    if (why && why_size)
        snprintf(why, why_size, "%s", text);
}

int spmd_wire_empty_decode(size_t size)
{
    return size == 0 ? 0 : -EBADMSG;
}

int spmd_wire_hello_decode(const uint8_t *body, size_t size, struct spmd_wire_hello *out, char *why,
                           size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (size != sizeof(*out)) {
        set_why(why, why_size, "expected HELLO");
        return -EPROTO;
    }
    memcpy(out, body, sizeof(*out));
    out->source[sizeof(out->source) - 1] = 0;
    out->name[sizeof(out->name) - 1] = 0;
    if (out->version != SPMD_WIRE_VERSION ||
        !(out->flags == SPMD_HELLO_MIGRATE || out->flags == SPMD_HELLO_RESUME ||
          out->flags == SPMD_HELLO_TUNNEL) ||
        out->mode > SPMD_MODE_PRE) {
        if (why && why_size)
            snprintf(why, why_size, "wire version %u flags %u not supported", out->version,
                     out->flags);
        return -EPROTONOSUPPORT;
    }
    return 0;
}

int spmd_wire_me_from_peer(const uint8_t *body, size_t size, uint16_t *me_type)
{
    struct spm_me_message_header h;
    *me_type = 0;
    if (size < sizeof(h))
        return -EPROTO;
    memcpy(&h, body, sizeof(h));
    if (h.type != SPM_ME_MSG_PEER_OFFER && h.type != SPM_ME_MSG_PEER_CONFIRM &&
        h.type != SPM_ME_MSG_PEER_SEALED)
        return -EPROTO;
    *me_type = h.type;
    return 0;
}

bool spmd_wire_image_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (!len || len > SPMD_WIRE_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/')
            return false;
    }
    return true;
}

int spmd_wire_file_begin_decode(const uint8_t *body, size_t size, struct spmd_wire_file *out,
                                char name[SPMD_WIRE_NAME_MAX + 1], char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    name[0] = 0;
    if (size < sizeof(*out)) {
        set_why(why, why_size, "FILE_BEGIN out of order or short");
        return -EBADMSG;
    }
    memcpy(out, body, sizeof(*out));
    if (out->reserved || out->name_size == 0 || out->name_size > SPMD_WIRE_NAME_MAX ||
        size != sizeof(*out) + out->name_size || out->size > SPMD_WIRE_MAX_IMAGE_BYTES) {
        set_why(why, why_size, "FILE_BEGIN malformed or over the limits");
        return -EBADMSG;
    }
    memcpy(name, body + sizeof(*out), out->name_size);
    name[out->name_size] = 0;
    /* A NUL inside would cut the name short of what was sent. */
    if (strlen(name) != out->name_size || !spmd_wire_image_name_ok(name)) {
        name[0] = 0;
        set_why(why, why_size, "image file name refused");
        return -EBADMSG;
    }
    return 0;
}

int spmd_wire_file_begin_encode(uint64_t file_size, uint32_t mode, const char *name, uint8_t *out,
                                size_t *out_size)
{
    if (!spmd_wire_image_name_ok(name))
        return -EINVAL;
    size_t name_size = strlen(name);
    struct spmd_wire_file f = {.size = file_size, .mode = mode, .name_size = (uint16_t)name_size};
    memcpy(out, &f, sizeof(f));
    memcpy(out + sizeof(f), name, name_size);
    *out_size = sizeof(f) + name_size;
    return 0;
}

int spmd_wire_file_data_decode(size_t size, uint64_t file_size, uint64_t got, char *why,
                               size_t why_size)
{
    if (got > file_size || size > file_size - got) {
        set_why(why, why_size, "FILE_DATA out of order or beyond the file's size");
        return -EBADMSG;
    }
    return 0;
}

/* A body that is exactly one fixed-size struct. */
static int fixed_decode(const uint8_t *body, size_t size, void *out, size_t out_size)
{
    memset(out, 0, out_size);
    if (size != out_size)
        return -EBADMSG;
    memcpy(out, body, out_size);
    return 0;
}

int spmd_wire_file_end_decode(const uint8_t *body, size_t size, struct spmd_wire_file_end *out)
{
    return fixed_decode(body, size, out, sizeof(*out));
}

int spmd_wire_images_done_decode(const uint8_t *body, size_t size,
                                 struct spmd_wire_images_done *out)
{
    return fixed_decode(body, size, out, sizeof(*out));
}

int spmd_wire_restored_decode(const uint8_t *body, size_t size, struct spmd_wire_restored *out)
{
    return fixed_decode(body, size, out, sizeof(*out));
}

int spmd_wire_running_decode(const uint8_t *body, size_t size, struct spmd_wire_running *out)
{
    return fixed_decode(body, size, out, sizeof(*out));
}

int spmd_wire_state_decode(const uint8_t *body, size_t size, struct spmd_wire_state *out)
{
    return fixed_decode(body, size, out, sizeof(*out));
}

int spmd_wire_restore_decode(const uint8_t *body, size_t size, uint32_t mode,
                             struct spmd_wire_restore *out, char *why, size_t why_size)
{
    if (fixed_decode(body, size, out, sizeof(*out)) < 0) {
        set_why(why, why_size, "RESTORE malformed or before the images arrived");
        return -EBADMSG;
    }
    out->service_ip[sizeof(out->service_ip) - 1] = 0;
    if ((out->flags & ~SPMD_RESTORE_LAZY) ||
        !(out->flags & SPMD_RESTORE_LAZY) != (mode != SPMD_MODE_POST)) {
        if (why && why_size)
            snprintf(why, why_size, "RESTORE flags %#x do not match the migration's mode",
                     out->flags);
        return -EINVAL;
    }
    if (out->service_ip[0] && strspn(out->service_ip, "0123456789./") != strlen(out->service_ip)) {
        set_why(why, why_size, "service address refused");
        return -EINVAL;
    }
    return 0;
}

int spmd_wire_error_decode(const uint8_t *body, size_t size, char *text, size_t text_size)
{
    struct spmd_wire_error e;
    if (size < sizeof(e))
        return -EBADMSG;
    memcpy(&e, body, sizeof(e));
    if (e.text_size > SPMD_WIRE_TEXT_MAX || size != sizeof(e) + e.text_size || e.status >= 0)
        return -EBADMSG;
    size_t n = e.text_size < text_size - 1 ? e.text_size : text_size - 1;
    memcpy(text, body + sizeof(e), n);
    text[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            text[i] = '?';
    return e.status;
}

size_t spmd_wire_error_encode(int32_t status, const char *text, uint8_t *out)
{
    size_t n = strnlen(text, SPMD_WIRE_TEXT_MAX);
    struct spmd_wire_error e = {.status = status, .text_size = (uint16_t)n};
    memcpy(out, &e, sizeof(e));
    memcpy(out + sizeof(e), text, n);
    return sizeof(e) + n;
}

int spmd_wire_tunnel_data_decode(size_t size)
{
    return size ? 0 : -EBADMSG;
}

int spmd_wire_tunnel_end_decode(const uint8_t *body, size_t size, int32_t *status)
{
    struct spmd_wire_tunnel_end end;
    *status = 0;
    if (fixed_decode(body, size, &end, sizeof(end)) < 0)
        return -EBADMSG;
    *status = end.status;
    return 0;
}
