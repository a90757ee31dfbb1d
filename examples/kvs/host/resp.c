/* RESP2 request parser (see resp.h). Follows what redis-server accepts,
 * with two deliberate differences: it insists on CRLF where Redis merely
 * skips two bytes, and it caps header lines and argument sizes lower, since
 * every byte here is an untrusted client's and ends up in an ecall. */
#include "resp.h"
#include "kvs_integer.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* "*N" and "$N" lines hold at most 20 digits and a sign; anything much
 * longer is garbage, and a short cap keeps re-scanning a slow line cheap. */
#define HEADER_LINE_MAX 32u

void resp_parser_init(struct resp_parser *parser, const struct resp_limits *limits)
{
    static const struct resp_limits defaults = {
        .max_argc = RESP_DEFAULT_MAX_ARGC,
        .max_bulk_size = RESP_DEFAULT_MAX_BULK_SIZE,
        .max_command_size = RESP_DEFAULT_MAX_COMMAND_SIZE,
        .max_inline_size = RESP_DEFAULT_MAX_INLINE_SIZE,
    };
    *parser = (struct resp_parser){.limits = limits ? *limits : defaults, .bulk_size = -1};
}

static void reset(struct resp_parser *parser)
{
    resp_parser_init(parser, &parser->limits);
}

static int fail(struct resp_parser *parser, const char *error)
{
    parser->error = error;
    return -EPROTO;
}

/* Reads the "*N\r\n" or "$N\r\n" line at buf[pos]. Returns 0 with the number
 * and *line_size (CRLF included), -EAGAIN, or -EPROTO with too_long as the
 * error when no CR comes within HEADER_LINE_MAX bytes. */
static int header_line(struct resp_parser *parser, const uint8_t *buf, size_t size, size_t pos,
                       int64_t *value, size_t *line_size, const char *too_long, const char *invalid)
{
    size_t avail = size - pos;
    size_t search = avail < HEADER_LINE_MAX ? avail : HEADER_LINE_MAX;
    const uint8_t *cr = memchr(buf + pos, '\r', search);
    if (!cr)
        return avail >= HEADER_LINE_MAX ? fail(parser, too_long) : -EAGAIN;
    size_t cr_index = (size_t)(cr - buf);
    if (cr_index + 1 >= size)
        return -EAGAIN;
    if (buf[cr_index + 1] != '\n')
        return fail(parser, "Protocol error: expected CRLF after a length");
    if (!kvs_parse_i64(buf + pos + 1, cr_index - pos - 1, value))
        return fail(parser, invalid);
    *line_size = cr_index + 2 - pos;
    return 0;
}

static int parse_multibulk(struct resp_parser *parser, const uint8_t *buf, size_t size,
                           struct resp_arg *args, size_t args_capacity, uint32_t *argc,
                           size_t *consumed)
{
    const struct resp_limits *limits = &parser->limits;
    int ret;
    if (parser->pos == 0) {
        int64_t count;
        size_t line;
        ret = header_line(parser, buf, size, 0, &count, &line,
                          "Protocol error: too big mbulk count string",
                          "Protocol error: invalid multibulk length");
        if (ret < 0)
            return ret;
        if (count > (int64_t)limits->max_argc)
            return fail(parser, "Protocol error: invalid multibulk length");
        if (count <= 0) { /* "*0" and "*-1": nothing to run, as in Redis */
            *argc = 0;
            *consumed = line;
            reset(parser);
            return 0;
        }
        parser->pos = line;
        parser->argc = (uint32_t)count;
    }
    if (parser->argc > args_capacity)
        return -ENOBUFS;
    while (parser->parsed < parser->argc) {
        size_t pos = parser->pos;
        if (parser->bulk_size < 0) {
            if (pos == size)
                return -EAGAIN;
            if (buf[pos] != '$')
                return fail(parser, "Protocol error: expected '$'");
            int64_t bulk;
            size_t line;
            ret = header_line(parser, buf, size, pos, &bulk, &line,
                              "Protocol error: too big bulk count string",
                              "Protocol error: invalid bulk length");
            if (ret < 0)
                return ret;
            if (bulk < 0 || (uint64_t)bulk > limits->max_bulk_size)
                return fail(parser, "Protocol error: invalid bulk length");
            if ((uint64_t)bulk > limits->max_command_size - parser->total_size)
                return fail(parser, "Protocol error: command too large");
            parser->bulk_size = bulk;
            parser->total_size += (size_t)bulk;
            parser->pos = pos += line;
        }
        size_t bulk = (size_t)parser->bulk_size;
        /* bulk <= max_bulk_size and pos <= size: no overflow here. */
        if (size - pos < bulk + 2)
            return -EAGAIN;
        if (buf[pos + bulk] != '\r' || buf[pos + bulk + 1] != '\n')
            return fail(parser, "Protocol error: expected CRLF after bulk string");
        args[parser->parsed++] = (struct resp_arg){pos, bulk, bulk, 0};
        parser->pos = pos + bulk + 2;
        parser->bulk_size = -1;
    }
    *argc = parser->argc;
    *consumed = parser->pos;
    reset(parser);
    return 0;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One inline word at line[0, size), which starts with a non-space, by the
 * rules of Redis's sdssplitargs: "..." with \n \r \t \b \a \xHH and \"
 * escapes, '...' with \' only, quotes may start mid-word, and a closing
 * quote must be followed by a space or the end of the line. *raw_size is the
 * word's length in line; *size its decoded length; dst (NULL to measure
 * only) receives the decoded bytes. -EPROTO on unbalanced quotes. */
static int inline_word(const uint8_t *line, size_t size, size_t *raw_size, size_t *decoded_size,
                       int *quoted, uint8_t *dst)
{
    bool in_double = false, in_single = false;
    size_t i = 0, out = 0;
    *quoted = 0;
    for (;;) {
        bool end = i >= size;
        uint8_t c = end ? 0 : line[i];
        uint8_t emit;
        if (in_double) {
            if (end)
                return -EPROTO;
            if (c == '\\' && i + 3 < size && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
                hex_value(line[i + 3]) >= 0) {
                emit = (uint8_t)(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3]));
                i += 3;
            } else if (c == '\\' && i + 1 < size) {
                c = line[++i];
                emit = c == 'n'   ? '\n'
                       : c == 'r' ? '\r'
                       : c == 't' ? '\t'
                       : c == 'b' ? '\b'
                       : c == 'a' ? '\a'
                                  : c;
            } else if (c == '"') {
                if (i + 1 < size && !is_space(line[i + 1]))
                    return -EPROTO;
                i++;
                break;
            } else {
                emit = c;
            }
        } else if (in_single) {
            if (end)
                return -EPROTO;
            if (c == '\\' && i + 1 < size && line[i + 1] == '\'') {
                i++;
                emit = '\'';
            } else if (c == '\'') {
                if (i + 1 < size && !is_space(line[i + 1]))
                    return -EPROTO;
                i++;
                break;
            } else {
                emit = c;
            }
        } else {
            if (end || is_space(c))
                break;
            if (c == '"' || c == '\'') {
                in_double = c == '"';
                in_single = c == '\'';
                *quoted = 1;
                i++;
                continue;
            }
            emit = c;
        }
        if (dst)
            dst[out] = emit;
        out++;
        i++;
    }
    *raw_size = i;
    *decoded_size = out;
    return 0;
}

static int parse_inline(struct resp_parser *parser, const uint8_t *buf, size_t size,
                        struct resp_arg *args, size_t args_capacity, uint32_t *argc,
                        size_t *consumed)
{
    const struct resp_limits *limits = &parser->limits;
    /* parser->pos: bytes already searched for the newline. */
    size_t limit = limits->max_inline_size + 1; /* the line and its '\n' */
    size_t search_end = size < limit ? size : limit;
    const uint8_t *newline = NULL;
    if (search_end > parser->pos)
        newline = memchr(buf + parser->pos, '\n', search_end - parser->pos);
    if (!newline) {
        if (size >= limit)
            return fail(parser, "Protocol error: too big inline request");
        parser->pos = search_end;
        return -EAGAIN;
    }
    size_t line_size = (size_t)(newline - buf);
    size_t total = line_size + 1;
    if (line_size > 0 && buf[line_size - 1] == '\r')
        line_size--;
    /* Like Redis (a C string), a NUL ends the line's words. */
    const uint8_t *nul = memchr(buf, 0, line_size);
    if (nul)
        line_size = (size_t)(nul - buf);

    /* Count and measure the words first: nothing is written to args unless
     * all of them fit. */
    uint32_t count = 0;
    for (size_t pos = 0;;) {
        while (pos < line_size && is_space(buf[pos]))
            pos++;
        if (pos == line_size)
            break;
        size_t raw, decoded;
        int quoted;
        if (inline_word(buf + pos, line_size - pos, &raw, &decoded, &quoted, NULL) < 0)
            return fail(parser, "Protocol error: unbalanced quotes in request");
        if (count == limits->max_argc)
            return fail(parser, "Protocol error: too many arguments");
        if (count < args_capacity)
            args[count] = (struct resp_arg){pos, raw, decoded, quoted};
        count++;
        pos += raw;
    }
    if (count > args_capacity) {
        parser->argc = count;
        return -ENOBUFS;
    }
    *argc = count;
    *consumed = total;
    reset(parser);
    return 0;
}

int resp_parse(struct resp_parser *parser, const uint8_t *buf, size_t size, struct resp_arg *args,
               size_t args_capacity, uint32_t *argc, size_t *consumed)
{
    if (size == 0)
        return -EAGAIN;
    if (size < parser->pos) /* the caller broke the contract: restart cleanly */
        return fail(parser, "Protocol error: internal parser state");
    if (buf[0] == '*')
        return parse_multibulk(parser, buf, size, args, args_capacity, argc, consumed);
    return parse_inline(parser, buf, size, args, args_capacity, argc, consumed);
}

void resp_arg_copy(const uint8_t *command, const struct resp_arg *arg, uint8_t *dst)
{
    if (!arg->quoted) {
        memcpy(dst, command + arg->offset, arg->size);
        return;
    }
    size_t raw, decoded;
    int quoted;
    /* Already validated by resp_parse: the same bytes decode the same way. */
    (void)inline_word(command + arg->offset, arg->raw_size, &raw, &decoded, &quoted, dst);
}
