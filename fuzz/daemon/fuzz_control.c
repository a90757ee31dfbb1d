/* The control channel's lines (src/host/control/control.c): the request
 * line a process's control server (src/host/urts/control_server.c) takes
 * from whoever connects to its socket, and the reply lines the CRIU
 * plugin, the action script, `spm` and spmd read back from a process.
 *
 * Input: byte 0 picks what is fuzzed, byte 1 a size or a key; the rest is
 * the text, in an exact-size buffer.
 *   0  request: the bytes the server received (up to SPM_CONTROL_MAX_LINE,
 *      as read_line takes them) through spm_control_request_line, then
 *      spm_control_parse_request; an accepted request has its fields in
 *      range, paths absolute and free of control bytes, and the canonical
 *      line for it (encoded paths) parses back to the same request;
 *   1  reply: spm_control_reply_value (key picked by byte 1, into a buffer
 *      of byte 1's size), spm_control_reply_u64 and spm_control_parse_refs;
 *      a value is a piece of the reply, a number its decimal text, refs
 *      formatted again are the reply's refs (case aside);
 *   2  value: spm_control_decode_value of the text then encode and decode
 *      again (the same bytes), and encode of the text then decode (the
 *      text back). */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/control.h"

static void check_path(const char *path)
{
    if (!path[0])
        return;
    assert(path[0] == '/');
    for (const char *p = path; *p; p++)
        assert((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
}

/* The request line that says what req says, with its own spellings. */
static void canonical_line(const struct spm_control_request *req, char *line, size_t size)
{
    int n = 0;
    switch (req->op) {
    case SPM_CONTROL_OP_EXPORT:
        n = snprintf(line, size, "export");
        if (req->timeout_ms)
            n += snprintf(line + n, size - (size_t)n, " timeout_ms=%u", req->timeout_ms);
        if (req->threads)
            n += snprintf(line + n, size - (size_t)n, " threads=%u", req->threads);
        if (req->lazy)
            n += snprintf(line + n, size - (size_t)n, " lazy=1");
        break;
    case SPM_CONTROL_OP_STATUS:
        n = snprintf(line, size, "status");
        if (req->wait_ms)
            n += snprintf(line + n, size - (size_t)n, " wait_ms=%u", req->wait_ms);
        break;
    case SPM_CONTROL_OP_RESUME: {
        n = snprintf(line, size, "resume");
        static char encoded[SPM_CONTROL_MAX_LINE];
        if (req->platform[0]) {
            assert(spm_control_encode_value(req->platform, encoded, sizeof(encoded)) == 0);
            n += snprintf(line + n, size - (size_t)n, " platform=%s", encoded);
        }
        if (req->spmd[0]) {
            assert(spm_control_encode_value(req->spmd, encoded, sizeof(encoded)) == 0);
            n += snprintf(line + n, size - (size_t)n, " spmd=%s", encoded);
        }
        break;
    }
    }
    assert(n > 0 && (size_t)n < size);
}

static void fuzz_request(const uint8_t *text, size_t size)
{
    if (size > SPM_CONTROL_MAX_LINE)
        size = SPM_CONTROL_MAX_LINE;
    char *buf = malloc(size + 1); /* read_line's buffer: got bytes and a NUL */
    assert(buf);
    memcpy(buf, text, size);
    if (spm_control_request_line(buf, size) < 0) {
        assert(memchr(text, '\n', strnlen((const char *)text, size)) == NULL);
        free(buf);
        return;
    }
    size_t len = strlen(buf);
    assert(len < size && text[len] == '\n' && memcmp(buf, text, len) == 0);

    static struct spm_control_request req, again;
    int ret = spm_control_parse_request(buf, &req);
    if (ret < 0) {
        assert(ret == -EINVAL);
        free(buf);
        return;
    }
    switch (req.op) {
    case SPM_CONTROL_OP_EXPORT:
        assert(req.timeout_ms <= SPM_CONTROL_MAX_MS && req.threads <= SPM_CONTROL_MAX_THREADS);
        assert(!req.wait_ms && !req.platform[0] && !req.spmd[0]);
        break;
    case SPM_CONTROL_OP_STATUS:
        assert(req.wait_ms <= SPM_CONTROL_MAX_MS);
        assert(!req.timeout_ms && !req.threads && !req.lazy && !req.platform[0] && !req.spmd[0]);
        break;
    case SPM_CONTROL_OP_RESUME:
        assert(!req.timeout_ms && !req.threads && !req.lazy && !req.wait_ms);
        check_path(req.platform);
        check_path(req.spmd);
        break;
    default:
        assert(0 && "unknown op");
    }
    static char line[3 * SPM_CONTROL_MAX_LINE * 2 + 64];
    canonical_line(&req, line, sizeof(line));
    if (strlen(line) < SPM_CONTROL_MAX_LINE) {
        assert(spm_control_parse_request(line, &again) == 0);
        assert(memcmp(&again, &req, sizeof(req)) == 0);
    }
    free(buf);
}

static void fuzz_reply(const char *reply, uint8_t choice)
{
    static const char *keys[] = {"refs", "msg", "errno", "enclaves", "bytes", "state", "x"};
    const char *key = keys[choice % (sizeof(keys) / sizeof(keys[0]))];
    size_t value_size = (size_t)(choice >> 3) * 8 + 1;
    char *value = malloc(value_size);
    assert(value);
    int ret = spm_control_reply_value(reply, key, value, value_size);
    if (ret == 0) {
        size_t len = strlen(value);
        assert(len < value_size);
        const char *at = strstr(reply, value);
        assert(at);
        if (strcmp(key, "msg") != 0)
            assert(strchr(value, ' ') == NULL);
    } else {
        assert(ret == -ENOENT || ret == -ENOSPC);
    }
    unsigned long long number;
    ret = spm_control_reply_u64(reply, key, &number);
    if (ret == 0) {
        char whole[4096];
        assert(spm_control_reply_value(reply, key, whole, sizeof(whole)) == 0);
        char *end;
        assert(strtoull(whole, &end, 10) == number && *end == 0 && whole[0] >= '0' &&
               whole[0] <= '9');
    }
    struct spm_me_checkpoint_ref refs[4];
    size_t capacity = choice % 5, count = 99;
    ret = spm_control_parse_refs(reply, refs, capacity, &count);
    if (ret == 0) {
        assert(count >= 1 && count <= capacity);
        static char whole[SPM_CONTROL_MAX_LINE * 4];
        assert(spm_control_reply_value(reply, "refs", whole, sizeof(whole)) == 0);
        char joined[5 * (SPM_CONTROL_REF_MAX_TEXT + 1)] = "";
        size_t used = 0;
        for (size_t i = 0; i < count; i++) {
            char one[SPM_CONTROL_REF_MAX_TEXT + 1];
            assert(spm_control_format_ref(&refs[i], one, sizeof(one)) == 0);
            used +=
                (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? "," : "", one);
        }
        assert(strcasecmp(joined, whole) == 0);
    } else {
        assert(count == 99);
        assert(ret == -ENOENT || ret == -EINVAL || ret == -ENOSPC);
    }
    free(value);
}

static void fuzz_value(const char *text, size_t len, uint8_t choice)
{
    size_t out_size = (size_t)choice * 16 + 1;
    char *out = malloc(out_size), *back = malloc(out_size * 3 + 1);
    assert(out && back);
    /* text as an encoded value */
    if (spm_control_decode_value(text, len, out, out_size) == 0) {
        size_t n = strlen(out);
        assert(n <= len);
        for (size_t i = 0; i < n; i++)
            assert((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] != 0x7f);
        char *enc = malloc(out_size * 3 + 1);
        assert(enc);
        assert(spm_control_encode_value(out, enc, out_size * 3 + 1) == 0);
        assert(strchr(enc, ' ') == NULL && strchr(enc, '=') == NULL);
        assert(spm_control_decode_value(enc, strlen(enc), back, out_size * 3 + 1) == 0);
        assert(strcmp(back, out) == 0);
        free(enc);
    }
    /* text as a value to encode */
    if (spm_control_encode_value(text, out, out_size) == 0) {
        assert(strchr(out, ' ') == NULL && strchr(out, '=') == NULL);
        assert(spm_control_decode_value(out, strlen(out), back, out_size * 3 + 1) == 0);
        assert(strcmp(back, text) == 0);
    }
    free(back);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t what = data[0] % 3, choice = data[1];
    size_t text_size = size - 2;
    if (what == 1 && text_size > SPM_CONTROL_MAX_LINE)
        text_size = SPM_CONTROL_MAX_LINE; /* the most spm_control_request takes */
    char *text = malloc(text_size + 1);
    assert(text);
    memcpy(text, data + 2, text_size);
    text[text_size] = 0;
    if (what == 0)
        fuzz_request((const uint8_t *)text, text_size);
    else if (what == 1)
        fuzz_reply(text, choice);
    else
        fuzz_value(text, strlen(text), choice);
    free(text);
    return 0;
}
