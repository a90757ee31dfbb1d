/* RESP2 request parsing for the kvs host: turns the bytes a client sent
 * into commands (argument lists) without trusting any of them. Both request
 * forms Redis accepts are understood: arrays of bulk strings (what
 * redis-cli, redis-benchmark and client libraries send) and inline commands
 * (a line of words, with Redis's "double" and 'single' quoting, for telnet
 * and nc users).
 *
 * The parser is a pure function over a buffer: no I/O, no allocation, no
 * global state. A command that arrives over several reads is resumed where
 * the previous call stopped, so a slow client costs linear, not quadratic,
 * work. Every count and size is checked against limits before it is used. */
#ifndef KVS_RESP_H
#define KVS_RESP_H

#include <stddef.h>
#include <stdint.h>

struct resp_limits {
    uint32_t max_argc;       /* arguments in one command */
    size_t max_bulk_size;    /* bytes in one argument */
    size_t max_command_size; /* argument bytes in one command */
    size_t max_inline_size;  /* bytes in one inline command line */
};

/* One argument of a parsed command. `offset` and `raw_size` locate it in the
 * buffer (relative to the start of the command); `size` is its length after
 * inline unquoting, which resp_arg_copy performs. */
struct resp_arg {
    size_t offset;
    size_t raw_size;
    size_t size;
    int quoted; /* nonzero: an inline word that needs unquoting */
};

/* Parser state for the command at the start of the caller's buffer. Zero it
 * (or resp_parser_init) before the first call and keep it across calls until
 * a command completes; it resets itself then. */
struct resp_parser {
    struct resp_limits limits;
    size_t pos;        /* bytes of the current command already parsed */
    uint32_t argc;     /* declared argument count, once its header is parsed */
    uint32_t parsed;   /* arguments complete so far */
    int64_t bulk_size; /* size of the bulk being read, -1 before its "$N" line */
    size_t total_size; /* argument bytes so far */
    const char *error; /* after -EPROTO: what was wrong, in Redis's words */
};

/* Redis's own limits, except that one argument is capped at 32 MiB: kvs
 * passes every command into the enclave, and a reply must fit an ecall. */
#define RESP_DEFAULT_MAX_ARGC         65536u
#define RESP_DEFAULT_MAX_BULK_SIZE    (32u << 20)
#define RESP_DEFAULT_MAX_COMMAND_SIZE (48u << 20)
#define RESP_DEFAULT_MAX_INLINE_SIZE  (64u << 10)

/* Starts a parser with `limits`, or with the defaults above when NULL. */
void resp_parser_init(struct resp_parser *parser, const struct resp_limits *limits);

/* Parses the command at the start of buf[0, size). `args` has room for
 * args_capacity arguments and is written as arguments are found, so the
 * same array must be passed back when resuming.
 *
 * Returns 0 when a command is complete: *argc arguments are in args and
 * *consumed bytes of buf belong to it (the next command starts there). An
 * empty command (blank line, "*0") has *argc 0 and still consumes bytes.
 * Otherwise nothing is consumed and it returns
 *   -EAGAIN   the command is incomplete: call again with the same buffer
 *             start and more bytes (the bytes already seen must not change);
 *   -ENOBUFS  the command has parser->argc arguments, more than
 *             args_capacity: grow args (keeping its contents) and call again;
 *   -EPROTO   the input is malformed or over a limit; parser->error says
 *             how. The connection cannot be resynchronised: close it. */
int resp_parse(struct resp_parser *parser, const uint8_t *buf, size_t size, struct resp_arg *args,
               size_t args_capacity, uint32_t *argc, size_t *consumed)
    __attribute__((warn_unused_result));

/* Writes argument `arg` of the command starting at `command` to dst (which
 * has room for arg->size bytes), undoing inline quoting. */
void resp_arg_copy(const uint8_t *command, const struct resp_arg *arg, uint8_t *dst);

#endif
