/* What a peer spmd may make this one do through two of the wire decoders
 * (src/daemon/wire.c): name a file outside the migration's incoming
 * directory (FILE_BEGIN's name becomes "<incoming>/<name>"), and drive this
 * host's Migration Enclave as if it were this host's own daemon (an ME
 * message relayed from a peer). The fuzz harness fuzz/daemon/fuzz_wire.c
 * checks properties of what the decoders accept; this test names the
 * attacks and the one legitimate form of each, in every build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spm/abi/me_abi.h"
#include "wire.h"

/* An image file name as sent: `size` bytes, which may hold a NUL. */
struct sent_name {
    const char *label;
    char bytes[SPMD_WIRE_NAME_MAX + 2];
    size_t size;
};

#define NAME(text)                                                                                 \
    {                                                                                              \
        text, text, sizeof(text) - 1                                                               \
    }

static const struct sent_name g_refused[] = {
    NAME(".."),
    NAME("."),
    NAME(".x"),
    NAME("a/b"),
    NAME("../../etc/x"),
    NAME("/etc/x"),
    NAME("pages 1.img"),
    NAME("pages\x7f.img"),
    NAME("pages\t.img"),
    NAME("p\xc3\xa9"),
    NAME(""),
};

/* One byte too long, and the longest allowed, of 'a's. */
static void name_of_length(struct sent_name *n, size_t size)
{
    memset(n, 0, sizeof(*n));
    n->label =
        size > SPMD_WIRE_NAME_MAX ? "SPMD_WIRE_NAME_MAX + 1 bytes" : "SPMD_WIRE_NAME_MAX bytes";
    memset(n->bytes, 'a', size);
    n->size = size;
}

/* FILE_BEGIN's body for a 4096-byte file named by `n`; its size. */
static size_t file_begin_body(const struct sent_name *n, uint8_t *out)
{
    struct spmd_wire_file f = {.size = 4096, .mode = 0600, .name_size = (uint16_t)n->size};
    memcpy(out, &f, sizeof(f));
    memcpy(out + sizeof(f), n->bytes, n->size);
    return sizeof(f) + n->size;
}

static void expect_decoded(const struct sent_name *n, bool accepted)
{
    uint8_t body[sizeof(struct spmd_wire_file) + sizeof(n->bytes)];
    size_t size = file_begin_body(n, body);
    struct spmd_wire_file f;
    char name[SPMD_WIRE_NAME_MAX + 1];
    char why[128] = "";
    int ret = spmd_wire_file_begin_decode(body, size, &f, name, why, sizeof(why));
    if ((ret == 0) != accepted)
        fprintf(stderr, "FILE_BEGIN naming %s: decoder returned %d\n", n->label, ret);
    if (accepted) {
        assert_int_equal(ret, 0);
        assert_int_equal(f.size, 4096);
        assert_int_equal(f.name_size, n->size);
        assert_memory_equal(name, n->bytes, n->size + 1);
    } else {
        assert_int_equal(ret, -EBADMSG);
        assert_int_equal(name[0], 0);
        assert_true(why[0] != 0);
    }
}

static void test_names_escaping_or_unprintable_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(g_refused) / sizeof(g_refused[0]); i++) {
        if (spmd_wire_image_name_ok(g_refused[i].bytes))
            fprintf(stderr, "name %s accepted\n", g_refused[i].label);
        assert_false(spmd_wire_image_name_ok(g_refused[i].bytes));
        expect_decoded(&g_refused[i], false);
    }
    struct sent_name long_name;
    name_of_length(&long_name, SPMD_WIRE_NAME_MAX + 1);
    assert_false(spmd_wire_image_name_ok(long_name.bytes));
    expect_decoded(&long_name, false);
    /* The encoder refuses them too: this spmd never sends one. */
    uint8_t body[sizeof(struct spmd_wire_file) + SPMD_WIRE_NAME_MAX];
    size_t size = 0;
    assert_int_equal(spmd_wire_file_begin_encode(1, 0600, "../x", body, &size), -EINVAL);
}

/* A NUL inside the name: the check on the C string would see only "pages"
 * (allowed), while the bytes sent go on to "/../x". */
static void test_name_with_embedded_nul_refused(void **state)
{
    (void)state;
    const struct sent_name cut[] = {
        {"pages\\0/../x", "pages\0/../x", 11},
        {"pages-1.img\\0", "pages-1.img\0", 12},
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        assert_true(spmd_wire_image_name_ok(cut[i].bytes)); /* up to the NUL */
        expect_decoded(&cut[i], false);
    }
}

static void test_image_names_accepted(void **state)
{
    (void)state;
    const struct sent_name plain = NAME("pages-1.img");
    assert_true(spmd_wire_image_name_ok(plain.bytes));
    expect_decoded(&plain, true);
    struct sent_name longest;
    name_of_length(&longest, SPMD_WIRE_NAME_MAX);
    assert_true(spmd_wire_image_name_ok(longest.bytes));
    expect_decoded(&longest, true);
    /* What the encoder writes, the decoder takes back. */
    uint8_t body[sizeof(struct spmd_wire_file) + SPMD_WIRE_NAME_MAX];
    size_t size = 0;
    assert_int_equal(spmd_wire_file_begin_encode(4096, 0600, "pages-1.img", body, &size), 0);
    struct spmd_wire_file f;
    char name[SPMD_WIRE_NAME_MAX + 1];
    assert_int_equal(spmd_wire_file_begin_decode(body, size, &f, name, NULL, 0), 0);
    assert_string_equal(name, "pages-1.img");
}

/* An ME message of `type` as a peer relays it: the header, then a body
 * the filter never reads. */
static int from_peer(uint16_t type, uint16_t *me_type)
{
    uint8_t body[sizeof(struct spm_me_message_header) + 16] = {0};
    struct spm_me_message_header h = {
        .magic = SPM_ME_MAGIC, .version = SPM_ME_VERSION, .type = type, .size = 16};
    memcpy(body, &h, sizeof(h));
    *me_type = 0xffff;
    return spmd_wire_me_from_peer(body, sizeof(body), me_type);
}

static void test_me_types_a_peer_may_not_send_refused(void **state)
{
    (void)state;
    /* The local daemon's requests (open a hand-over, hand over, resolve,
     * list), an application enclave's channel, and the ME's own replies. */
    const uint16_t refused[] = {
        SPM_ME_MSG_TARGET_INFO,
        SPM_ME_MSG_HELLO,
        SPM_ME_MSG_SEALED,
        SPM_ME_MSG_ERROR,
        SPM_ME_MSG_PEER_OPEN,
        SPM_ME_MSG_PEER_ACCEPT,
        SPM_ME_MSG_PEER_STATUS,
        SPM_ME_MSG_PEER_HANDOVER,
        SPM_ME_MSG_PEER_RESOLVE,
        SPM_ME_MSG_PEER_LIST,
        0,
        0xffff,
    };
    uint16_t me_type;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (from_peer(refused[i], &me_type) != -EPROTO)
            fprintf(stderr, "ME message type %u accepted from a peer\n", refused[i]);
        assert_int_equal(from_peer(refused[i], &me_type), -EPROTO);
        assert_int_equal(me_type, 0);
    }
    /* Every other value too: exactly three are accepted. */
    unsigned accepted = 0;
    for (uint32_t type = 0; type <= UINT16_MAX; type++)
        if (from_peer((uint16_t)type, &me_type) == 0) {
            accepted++;
            assert_int_equal(me_type, type);
        }
    assert_int_equal(accepted, 3);
    /* Shorter than a header. */
    uint8_t short_body[sizeof(struct spm_me_message_header) - 1] = {0};
    assert_int_equal(spmd_wire_me_from_peer(short_body, sizeof(short_body), &me_type), -EPROTO);
}

static void test_me_types_of_the_peer_protocol_accepted(void **state)
{
    (void)state;
    const uint16_t accepted[] = {SPM_ME_MSG_PEER_OFFER, SPM_ME_MSG_PEER_CONFIRM,
                                 SPM_ME_MSG_PEER_SEALED};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        uint16_t me_type = 0;
        assert_int_equal(from_peer(accepted[i], &me_type), 0);
        assert_int_equal(me_type, accepted[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_escaping_or_unprintable_refused),
        cmocka_unit_test(test_name_with_embedded_nul_refused),
        cmocka_unit_test(test_image_names_accepted),
        cmocka_unit_test(test_me_types_a_peer_may_not_send_refused),
        cmocka_unit_test(test_me_types_of_the_peer_protocol_accepted),
    };
    return cmocka_run_group_tests_name("spmd wire: image names and ME types from a peer", tests,
                                       NULL, NULL);
}
