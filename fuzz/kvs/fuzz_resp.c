/* kvs's RESP parser (examples/kvs/host/resp.c) on a client's byte stream,
 * delivered the way kvs_host reads it: in pieces, resuming each command
 * where the last call stopped, growing the argument array on -ENOBUFS.
 *
 * Input: byte 0 picks the read size (1..64 bytes, or all at once) and
 * whether tight limits apply; the rest is what the client sent. Every
 * command the parser completes must lie inside the bytes seen, each
 * argument inside its command, and a second parse of the same complete
 * command in one call must agree with the resumed one. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static const struct resp_limits tight = {
    .max_argc = 8, .max_bulk_size = 64, .max_command_size = 256, .max_inline_size = 128};

static void check_command(const uint8_t *cmd, size_t consumed, const struct resp_arg *args,
                          uint32_t argc, const struct resp_limits *limits)
{
    for (uint32_t i = 0; i < argc; i++) {
        assert(args[i].offset <= consumed && args[i].raw_size <= consumed - args[i].offset);
        assert(args[i].size <= args[i].raw_size);
        if (!args[i].quoted)
            assert(args[i].size == args[i].raw_size);
        if (limits && cmd[0] == '*') /* inline words are bounded by the line */
            assert(args[i].size <= limits->max_bulk_size);
        /* Exactly arg->size bytes: ASan reports any write past them. */
        uint8_t *copy = malloc(args[i].size ? args[i].size : 1);
        assert(copy);
        resp_arg_copy(cmd, &args[i], copy);
        free(copy);
    }
    if (limits)
        assert(argc <= limits->max_argc);

    /* The same command in one call, fresh parser, exact capacity. */
    struct resp_parser again;
    resp_parser_init(&again, limits);
    struct resp_arg *args2 = calloc(argc ? argc : 1, sizeof(*args2));
    assert(args2);
    uint32_t argc2 = 0;
    size_t consumed2 = 0;
    int ret = resp_parse(&again, cmd, consumed, args2, argc ? argc : 1, &argc2, &consumed2);
    assert(ret == 0 && argc2 == argc && consumed2 == consumed);
    for (uint32_t i = 0; i < argc; i++)
        assert(args2[i].offset == args[i].offset && args2[i].size == args[i].size);
    free(args2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *stream = data + 1;
    size_t stream_size = size - 1;
    size_t step = (mode & 0x3f) ? (mode & 0x3f) : stream_size; /* 0: all at once */
    const struct resp_limits *limits = (mode & 0x40) ? &tight : NULL;

    struct resp_parser parser;
    resp_parser_init(&parser, limits);
    size_t capacity = (mode & 0x80) ? 1 : 4;
    struct resp_arg *args = calloc(capacity, sizeof(*args));
    assert(args);

    size_t start = 0; /* the current command's first byte */
    size_t seen = 0;  /* bytes delivered so far */
    while (start < stream_size) {
        if (seen < stream_size)
            seen = (stream_size - seen > step) ? seen + step : stream_size;
        /* A private copy of exactly the bytes seen, so any over-read shows. */
        size_t avail = seen - start;
        uint8_t *buf = malloc(avail ? avail : 1);
        assert(buf);
        memcpy(buf, stream + start, avail);
        uint32_t argc = 0;
        size_t consumed = 0;
        int ret = resp_parse(&parser, buf, avail, args, capacity, &argc, &consumed);
        if (ret == -ENOBUFS) {
            assert(parser.argc > capacity);
            struct resp_arg *more = realloc(args, sizeof(*more) * parser.argc);
            assert(more);
            args = more;
            capacity = parser.argc;
            free(buf);
            continue; /* same bytes again, larger array */
        }
        if (ret == 0) {
            assert(consumed > 0 && consumed <= avail);
            check_command(buf, consumed, args, argc, limits);
            start += consumed;
            free(buf);
            continue;
        }
        free(buf);
        if (ret == -EPROTO) {
            assert(parser.error && parser.error[0]);
            break;
        }
        assert(ret == -EAGAIN);
        if (seen == stream_size)
            break; /* the stream ends mid-command */
    }
    free(args);
    return 0;
}
