/* The kvs host's RESP2 request parser, on its own: both request forms,
 * commands split across reads at every byte, pipelines, every kind of
 * malformed input, and each limit. The parser sees only untrusted client
 * bytes, so each refusal here is a crash or an over-read it must not have. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp.h"

#define MAX_ARGS 64

struct parsed {
    int ret;
    uint32_t argc;
    size_t consumed;
    char args[MAX_ARGS][256];
    size_t sizes[MAX_ARGS];
    const char *error;
};

/* Parses one command from the start of buf with the given limits (NULL:
 * defaults), copying out its arguments. */
static struct parsed parse_with(const struct resp_limits *limits, const void *buf, size_t size)
{
    struct parsed p = {0};
    struct resp_parser parser;
    struct resp_arg args[MAX_ARGS];
    resp_parser_init(&parser, limits);
    p.ret = resp_parse(&parser, buf, size, args, MAX_ARGS, &p.argc, &p.consumed);
    p.error = parser.error;
    if (p.ret == 0) {
        for (uint32_t i = 0; i < p.argc; i++) {
            assert_true(args[i].size < sizeof(p.args[i]));
            resp_arg_copy(buf, &args[i], (uint8_t *)p.args[i]);
            p.sizes[i] = args[i].size;
        }
    }
    return p;
}

static struct parsed parse(const char *text)
{
    return parse_with(NULL, text, strlen(text));
}

static void assert_args(const struct parsed *p, uint32_t argc, const char *const *expected)
{
    assert_int_equal(p->ret, 0);
    assert_int_equal(p->argc, argc);
    for (uint32_t i = 0; i < argc; i++) {
        assert_int_equal(p->sizes[i], strlen(expected[i]));
        assert_memory_equal(p->args[i], expected[i], p->sizes[i]);
    }
}

static void assert_protocol_error(const struct parsed *p, const char *error)
{
    assert_int_equal(p->ret, -EPROTO);
    assert_non_null(p->error);
    assert_string_equal(p->error, error);
}

static void test_array_of_bulk_strings(void **state)
{
    (void)state;
    const char *text = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    struct parsed p = parse(text);
    assert_args(&p, 3, (const char *[]){"SET", "key", "value"});
    assert_int_equal(p.consumed, strlen(text));

    /* Binary-safe: CR, LF and NUL inside a bulk are data; empty bulks too. */
    static const char binary[] = "*3\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n";
    p = parse_with(NULL, binary, sizeof(binary) - 1);
    assert_int_equal(p.ret, 0);
    assert_int_equal(p.argc, 3);
    assert_int_equal(p.sizes[1], 5);
    assert_memory_equal(p.args[1], "a\r\n\0b", 5);
    assert_int_equal(p.sizes[2], 0);
    assert_int_equal(p.consumed, sizeof(binary) - 1);

    /* "*0" and "*-1" are empty commands: consumed, nothing to run. */
    p = parse("*0\r\n*1\r\n$4\r\nPING\r\n");
    assert_int_equal(p.ret, 0);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.consumed, 4);
    p = parse("*-1\r\n");
    assert_int_equal(p.ret, 0);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.consumed, 5);
}

static void test_inline_commands(void **state)
{
    (void)state;
    struct parsed p = parse("SET key value\r\n");
    assert_args(&p, 3, (const char *[]){"SET", "key", "value"});
    assert_int_equal(p.consumed, 15);

    /* A bare LF ends a line too, and runs of blanks separate words. */
    p = parse("  get \t key  \n");
    assert_args(&p, 2, (const char *[]){"get", "key"});
    assert_int_equal(p.consumed, 14);

    /* Redis's quoting: escapes in "...", only \' in '...', quotes mid-word. */
    p = parse("SET \"a b\" 'it\\'s' \"x\\x41\\n\\\"\" pre\"fix\" \"\"\r\n");
    assert_args(&p, 6, (const char *[]){"SET", "a b", "it's", "xA\n\"", "prefix", ""});

    /* A blank line is an empty command that still consumes its bytes. */
    p = parse("\r\nPING\r\n");
    assert_int_equal(p.ret, 0);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.consumed, 2);
}

/* Feeds `text` one more byte at a time to one parser, as a slow client
 * would: every proper prefix must ask for more, the whole must parse to
 * the same command as in one piece. */
static void check_byte_by_byte(const char *text, uint32_t argc, const char *const *expected)
{
    struct resp_parser parser;
    struct resp_arg args[MAX_ARGS];
    resp_parser_init(&parser, NULL);
    size_t size = strlen(text);
    uint32_t got_argc = 0;
    size_t consumed = 0;
    for (size_t have = 0; have < size; have++)
        assert_int_equal(
            resp_parse(&parser, (const uint8_t *)text, have, args, MAX_ARGS, &got_argc, &consumed),
            -EAGAIN);
    assert_int_equal(
        resp_parse(&parser, (const uint8_t *)text, size, args, MAX_ARGS, &got_argc, &consumed), 0);
    assert_int_equal(consumed, size);
    assert_int_equal(got_argc, argc);
    for (uint32_t i = 0; i < argc; i++) {
        char copy[256];
        assert_int_equal(args[i].size, strlen(expected[i]));
        resp_arg_copy((const uint8_t *)text, &args[i], (uint8_t *)copy);
        assert_memory_equal(copy, expected[i], args[i].size);
    }
}

static void test_partial_input(void **state)
{
    (void)state;
    check_byte_by_byte("*3\r\n$3\r\nSET\r\n$11\r\nkey\r\nwith\r\n\r\n$0\r\n\r\n", 3,
                       (const char *[]){"SET", "key\r\nwith\r\n", ""});
    check_byte_by_byte("SET 'a b' c\r\n", 3, (const char *[]){"SET", "a b", "c"});

    /* Resuming across a buffer that moved between reads (the host compacts
     * and reallocates): state is offsets, not pointers. */
    const char *text = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
    struct resp_parser parser;
    struct resp_arg args[4];
    uint32_t argc;
    size_t consumed;
    resp_parser_init(&parser, NULL);
    char *first = strdup(text);
    assert_int_equal(resp_parse(&parser, (uint8_t *)first, 17, args, 4, &argc, &consumed), -EAGAIN);
    char *second = strdup(text);
    memset(first, 'X', strlen(text));
    free(first);
    assert_int_equal(
        resp_parse(&parser, (uint8_t *)second, strlen(text), args, 4, &argc, &consumed), 0);
    char copy[8];
    resp_arg_copy((uint8_t *)second, &args[1], (uint8_t *)copy);
    assert_memory_equal(copy, "hello", 5);
    free(second);
}

static void test_pipelined_commands(void **state)
{
    (void)state;
    const char *text =
        "PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nGET k\r\n*2\r\n$3";
    const char *const expected[][2] = {{"PING"}, {"PING"}, {"ECHO", "hi"}, {"GET", "k"}};
    const uint32_t counts[] = {1, 1, 2, 2};
    size_t pos = 0, size = strlen(text);
    struct resp_parser parser;
    struct resp_arg args[MAX_ARGS];
    resp_parser_init(&parser, NULL);
    for (int i = 0; i < 4; i++) {
        uint32_t argc;
        size_t consumed;
        const uint8_t *command = (const uint8_t *)text + pos;
        assert_int_equal(resp_parse(&parser, command, size - pos, args, MAX_ARGS, &argc, &consumed),
                         0);
        assert_int_equal(argc, counts[i]);
        for (uint32_t a = 0; a < argc; a++) {
            char copy[16];
            resp_arg_copy(command, &args[a], (uint8_t *)copy);
            assert_int_equal(args[a].size, strlen(expected[i][a]));
            assert_memory_equal(copy, expected[i][a], args[a].size);
        }
        pos += consumed;
    }
    /* What is left is the start of a fifth command. */
    uint32_t argc;
    size_t consumed;
    assert_int_equal(resp_parse(&parser, (const uint8_t *)text + pos, size - pos, args, MAX_ARGS,
                                &argc, &consumed),
                     -EAGAIN);
}

static void test_malformed_input(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"*x\r\n", "Protocol error: invalid multibulk length"},
        {"*01\r\n", "Protocol error: invalid multibulk length"},
        {"*+1\r\n", "Protocol error: invalid multibulk length"},
        {"*1 \r\n", "Protocol error: invalid multibulk length"},
        {"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"},
        {"*1\rX", "Protocol error: expected CRLF after a length"},
        {"*2\r\n$3\r\nGET\r\nfoo\r\n", "Protocol error: expected '$'"},
        {"*1\r\n:3\r\n", "Protocol error: expected '$'"},
        {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$3\r\nabcd\r\n", "Protocol error: expected CRLF after bulk string"},
        {"*1\r\n$3\r\nabc\n\r", "Protocol error: expected CRLF after bulk string"},
        {"*11111111111111111111111111111111111", "Protocol error: too big mbulk count string"},
        {"*1\r\n$1111111111111111111111111111111111", "Protocol error: too big bulk count string"},
        {"SET \"a b\r\n", "Protocol error: unbalanced quotes in request"},
        {"SET 'a b\r\n", "Protocol error: unbalanced quotes in request"},
        {"SET \"a\"b\r\n", "Protocol error: unbalanced quotes in request"},
        {"SET 'a'b\r\n", "Protocol error: unbalanced quotes in request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p = parse(cases[i].text);
        if (p.ret != -EPROTO)
            fail_msg("case %zu (%s): got %d", i, cases[i].text, p.ret);
        assert_protocol_error(&p, cases[i].error);
    }
    /* Empty input is not an error, just nothing yet. */
    assert_int_equal(parse("").ret, -EAGAIN);
}

static void test_limits(void **state)
{
    (void)state;
    const struct resp_limits small = {
        .max_argc = 3, .max_bulk_size = 8, .max_command_size = 12, .max_inline_size = 16};
    const char *at_limits = "*3\r\n$1\r\na\r\n$8\r\n12345678\r\n$3\r\nxyz\r\n";
    struct parsed p = parse_with(&small, at_limits, strlen(at_limits));
    assert_int_equal(p.ret, 0); /* exactly at every limit */
    p = parse_with(&small, "*4\r\n", 4);
    assert_protocol_error(&p, "Protocol error: invalid multibulk length");
    p = parse_with(&small, "*1\r\n$9\r\n", 8);
    assert_protocol_error(&p, "Protocol error: invalid bulk length");
    p = parse_with(&small, "*2\r\n$8\r\n12345678\r\n$5\r\n", 22);
    assert_protocol_error(&p, "Protocol error: command too large");
    p = parse_with(&small, "a b c d\r\n", 9);
    assert_protocol_error(&p, "Protocol error: too many arguments");
    /* An inline line may be max_inline_size long; one byte more without a
     * newline is refused before the newline ever arrives. */
    p = parse_with(&small, "PING 0123456789a\n", 17);
    assert_int_equal(p.ret, 0);
    p = parse_with(&small, "PING 0123456789ab", 17);
    assert_protocol_error(&p, "Protocol error: too big inline request");

    /* The defaults: a 32 MiB bulk is allowed, one byte more is not. */
    char header[64];
    int n = snprintf(header, sizeof(header), "*1\r\n$%u\r\n", RESP_DEFAULT_MAX_BULK_SIZE);
    p = parse_with(NULL, header, (size_t)n);
    assert_int_equal(p.ret, -EAGAIN);
    n = snprintf(header, sizeof(header), "*1\r\n$%u\r\n", RESP_DEFAULT_MAX_BULK_SIZE + 1);
    p = parse_with(NULL, header, (size_t)n);
    assert_protocol_error(&p, "Protocol error: invalid bulk length");
    n = snprintf(header, sizeof(header), "*%u\r\n", RESP_DEFAULT_MAX_ARGC + 1);
    p = parse_with(NULL, header, (size_t)n);
    assert_protocol_error(&p, "Protocol error: invalid multibulk length");
}

/* More arguments than the caller's array holds: -ENOBUFS says how many,
 * and parsing resumes after the caller grows the array. */
static void test_argument_array_growth(void **state)
{
    (void)state;
    const char *array = "*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n";
    const char *line = "a b c d e\r\n";
    const char *inputs[] = {array, line};
    for (int i = 0; i < 2; i++) {
        struct resp_parser parser;
        resp_parser_init(&parser, NULL);
        struct resp_arg *args = calloc(2, sizeof(*args));
        uint32_t argc;
        size_t consumed;
        const uint8_t *buf = (const uint8_t *)inputs[i];
        size_t size = strlen(inputs[i]);
        assert_int_equal(resp_parse(&parser, buf, size, args, 2, &argc, &consumed), -ENOBUFS);
        assert_int_equal(parser.argc, 5);
        struct resp_arg *more = realloc(args, 5 * sizeof(*args));
        assert_non_null(more);
        args = more;
        assert_int_equal(resp_parse(&parser, buf, size, args, 5, &argc, &consumed), 0);
        assert_int_equal(argc, 5);
        assert_int_equal(consumed, size);
        for (uint32_t a = 0; a < 5; a++) {
            uint8_t c;
            resp_arg_copy(buf, &args[a], &c);
            assert_int_equal(c, 'a' + a);
        }
        free(args);
    }
}

/* Random bytes and random splits of valid input: the parser must return
 * a defined status and never report an argument outside the buffer. */
static void test_random_input_stays_in_bounds(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    uint8_t buf[256];
    struct resp_arg args[MAX_ARGS];
    static const char alphabet[] = "*$\r\n0123456789-\"' \\xaG";
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t size = x % sizeof(buf);
        for (size_t i = 0; i < size; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[i] = (uint8_t)alphabet[x % (sizeof(alphabet) - 1)];
        }
        struct resp_parser parser;
        resp_parser_init(&parser, NULL);
        uint32_t argc;
        size_t consumed;
        int ret = resp_parse(&parser, buf, size, args, MAX_ARGS, &argc, &consumed);
        assert_true(ret == 0 || ret == -EAGAIN || ret == -EPROTO || ret == -ENOBUFS);
        if (ret != 0)
            continue;
        assert_true(consumed > 0 && consumed <= size);
        for (uint32_t a = 0; a < argc; a++) {
            assert_true(args[a].offset + args[a].raw_size <= consumed);
            assert_true(args[a].size <= args[a].raw_size);
            uint8_t copy[256];
            resp_arg_copy(buf, &args[a], copy);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_of_bulk_strings),
        cmocka_unit_test(test_inline_commands),
        cmocka_unit_test(test_partial_input),
        cmocka_unit_test(test_pipelined_commands),
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_argument_array_growth),
        cmocka_unit_test(test_random_input_stays_in_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
