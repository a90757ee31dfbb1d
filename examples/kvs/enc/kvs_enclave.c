/* The trusted half of kvs: the key-value data lives only here, in the
 * enclave heap, and so does the ECDSA key that KVS.SIGN uses. The host hands
 * in batches of already-split commands (kvs_abi.h) and gets back the exact
 * RESP2 bytes to send, so the host can neither read the data nor forge a
 * reply; it can only drop or reorder whole batches.
 *
 * Everything in a batch is the host's claim: the whole batch is walked and
 * bounds-checked before the first command runs, and a malformed one is
 * refused whole. The table is a chained hash table keyed with SipHash under
 * a random key (clients choose the keys, so they must not be able to choose
 * collisions), grown by incremental rehashing so that no single command pays
 * for moving hundreds of thousands of entries. One spinlock guards it:
 * enclave threads cannot sleep, and each command holds it only for a lookup
 * and a pointer swap (values are copied before the lock is taken). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spm/trts.h"
#include "kvs_abi.h"
#include "kvs_integer.h"

/* Any reply that does not echo client data fits in this many bytes (the
 * longest is "unknown command", whose quoted parts are capped at 128). */
#define SMALL_REPLY_MAX 512u
#define INITIAL_BUCKETS 64u
#define MAX_BUCKETS     (1ull << 30)
#define INT64_TEXT_MAX  KVS_INT64_TEXT_MAX

/* ---- The table ---- */

struct entry {
    struct entry *next;
    uint64_t hash;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t value_capacity; /* INCR rewrites the value in place when it fits */
    uint32_t reserved;
    uint8_t data[]; /* key, then value */
};

struct table {
    struct entry **buckets; /* NULL when unused */
    uint64_t mask;          /* bucket count - 1; the count is a power of two */
};

static struct {
    struct spm_spinlock lock;
    bool ready;
    uint8_t hash_key[16];
    struct table tables[2]; /* [1] is the target while rehashing */
    bool rehashing;
    uint64_t rehash_index; /* next bucket of tables[0] to move */
    uint64_t count;
} g_db;

static struct {
    struct spm_spinlock lock;
    bool ready; /* written with release after the key exists */
    uint8_t private_key[32];
    uint8_t public_key[65];
} g_signer;

static uint8_t *entry_value(struct entry *e)
{
    return e->data + e->key_size;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* x86-64 is little-endian */
    return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3, as Redis uses for its dictionaries: fast, and keyed so that
 * colliding keys cannot be computed offline. */
static uint64_t hash_key(const uint8_t *in, size_t size)
{
    uint64_t k0 = load_le64(g_db.hash_key), k1 = load_le64(g_db.hash_key + 8);
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    const uint8_t *end = in + (size & ~(size_t)7);
    uint64_t b = (uint64_t)size << 56;
    for (; in != end; in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (size & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* First use: the hash key and an empty table. Called with g_db.lock held. */
static int db_init_locked(void)
{
    if (g_db.ready)
        return 0;
    int ret = spm_random(g_db.hash_key, sizeof(g_db.hash_key));
    if (ret < 0)
        return ret;
    g_db.tables[0].buckets = calloc(INITIAL_BUCKETS, sizeof(struct entry *));
    if (!g_db.tables[0].buckets)
        return -ENOMEM;
    g_db.tables[0].mask = INITIAL_BUCKETS - 1;
    __atomic_store_n(&g_db.ready, true, __ATOMIC_RELEASE);
    return 0;
}

/* Moves up to `steps` non-empty buckets from tables[0] to tables[1],
 * looking at no more than 10 empty buckets per step so a sparse table
 * cannot stall a command either. */
static void rehash_step(unsigned steps)
{
    if (!g_db.rehashing)
        return;
    struct table *from = &g_db.tables[0], *to = &g_db.tables[1];
    unsigned empty_budget = steps * 10;
    while (steps > 0 && g_db.rehash_index <= from->mask) {
        struct entry *e = from->buckets[g_db.rehash_index];
        if (!e) {
            g_db.rehash_index++;
            if (--empty_budget == 0)
                break;
            continue;
        }
        while (e) {
            struct entry *next = e->next;
            uint64_t slot = e->hash & to->mask;
            e->next = to->buckets[slot];
            to->buckets[slot] = e;
            e = next;
        }
        from->buckets[g_db.rehash_index++] = NULL;
        steps--;
    }
    if (g_db.rehash_index > from->mask) {
        free(from->buckets);
        *from = *to;
        *to = (struct table){0};
        g_db.rehashing = false;
    }
}

/* Starts doubling once there are as many entries as buckets. Running out of
 * heap for a bigger bucket array is not an error: chains just get longer. */
static void maybe_grow(void)
{
    uint64_t buckets = g_db.tables[0].mask + 1;
    if (g_db.rehashing || g_db.count < buckets || buckets >= MAX_BUCKETS)
        return;
    struct entry **bigger = calloc(buckets * 2, sizeof(*bigger));
    if (!bigger)
        return;
    g_db.tables[1].buckets = bigger;
    g_db.tables[1].mask = buckets * 2 - 1;
    g_db.rehashing = true;
    g_db.rehash_index = 0;
}

/* Returns the link that points at the entry for key (so callers can unlink
 * or replace it), or NULL. */
static struct entry **find_link(const uint8_t *key, size_t key_size, uint64_t hash)
{
    for (int t = 0; t < (g_db.rehashing ? 2 : 1); t++) {
        struct table *table = &g_db.tables[t];
        struct entry **link = &table->buckets[hash & table->mask];
        for (; *link; link = &(*link)->next) {
            struct entry *e = *link;
            if (e->hash == hash && e->key_size == key_size && memcmp(e->data, key, key_size) == 0)
                return link;
        }
    }
    return NULL;
}

static struct entry *find(const uint8_t *key, size_t key_size, uint64_t hash)
{
    struct entry **link = find_link(key, key_size, hash);
    return link ? *link : NULL;
}

static void insert_new(struct entry *e)
{
    struct table *table = &g_db.tables[g_db.rehashing ? 1 : 0];
    uint64_t slot = e->hash & table->mask;
    e->next = table->buckets[slot];
    table->buckets[slot] = e;
    g_db.count++;
    maybe_grow();
}

/* Allocates an entry outside the lock; key and value sizes are already
 * bounded by KVS_MAX_ARG_SIZE, so the sum cannot overflow. */
static struct entry *entry_new(const uint8_t *key, uint32_t key_size, uint64_t hash,
                               const uint8_t *value, uint32_t value_size, uint32_t value_capacity)
{
    struct entry *e = malloc(sizeof(*e) + (size_t)key_size + value_capacity);
    if (!e)
        return NULL;
    *e = (struct entry){.hash = hash,
                        .key_size = key_size,
                        .value_size = value_size,
                        .value_capacity = value_capacity};
    memcpy(e->data, key, key_size);
    if (value_size)
        memcpy(e->data + key_size, value, value_size);
    return e;
}

static void free_chain(struct entry *e)
{
    while (e) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
}

/* ---- Replies ---- */

struct arg {
    const uint8_t *data;
    uint32_t size;
};

/* One batch's output. `needed` is set when a command's reply would not fit;
 * `overflow` catches a reply that outgrew its own reservation (a bug), so
 * that the enclave never writes past the buffer even then. */
struct ctx {
    uint8_t *buf;
    size_t capacity, size;
    size_t needed;
    bool overflow;
};

static bool reserve(struct ctx *c, size_t size)
{
    if (size > c->capacity - c->size) {
        c->needed = size;
        return false;
    }
    return true;
}

static void put(struct ctx *c, const void *p, size_t size)
{
    if (size > c->capacity - c->size) {
        c->overflow = true;
        return;
    }
    memcpy(c->buf + c->size, p, size);
    c->size += size;
}

static void put_str(struct ctx *c, const char *s)
{
    put(c, s, strlen(s));
}

/* Writes v in decimal to out (room for INT64_TEXT_MAX bytes), no NUL. */
static size_t format_u64(uint64_t v, char *out)
{
    char tmp[INT64_TEXT_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t format_i64(int64_t v, char *out)
{
    if (v >= 0)
        return format_u64((uint64_t)v, out);
    out[0] = '-';
    return 1 + format_u64(-(uint64_t)v, out + 1);
}

static void put_prefixed_u64(struct ctx *c, char prefix, uint64_t v)
{
    char text[1 + INT64_TEXT_MAX + 2];
    text[0] = prefix;
    size_t n = 1 + format_u64(v, text + 1);
    text[n++] = '\r';
    text[n++] = '\n';
    put(c, text, n);
}

static void reply_integer(struct ctx *c, int64_t v)
{
    char text[1 + INT64_TEXT_MAX + 2];
    text[0] = ':';
    size_t n = 1 + format_i64(v, text + 1);
    text[n++] = '\r';
    text[n++] = '\n';
    put(c, text, n);
}

static size_t bulk_size(size_t size)
{
    char digits[INT64_TEXT_MAX];
    return 1 + format_u64(size, digits) + 2 + size + 2;
}

static void reply_bulk(struct ctx *c, const void *data, size_t size)
{
    put_prefixed_u64(c, '$', size);
    put(c, data, size);
    put(c, "\r\n", 2);
}

static void reply_null(struct ctx *c)
{
    put_str(c, "$-1\r\n");
}

static void reply_ok(struct ctx *c)
{
    put_str(c, "+OK\r\n");
}

static void reply_error(struct ctx *c, const char *message)
{
    put(c, "-", 1);
    put_str(c, message);
    put(c, "\r\n", 2);
}

/* Client bytes inside an error line: at most `limit` of them, CR and LF
 * turned into spaces (as Redis does) so they cannot end the line early. */
static void put_sanitized(struct ctx *c, const struct arg *a, size_t limit)
{
    size_t size = a->size < limit ? a->size : limit;
    for (size_t i = 0; i < size; i++) {
        uint8_t ch = a->data[i];
        put(c, ch == '\r' || ch == '\n' ? " " : (const char *)&ch, 1);
    }
}

static const char ERR_NOT_INTEGER[] = "ERR value is not an integer or out of range";
static const char ERR_OVERFLOW[] = "ERR increment or decrement would overflow";
static const char ERR_SYNTAX[] = "ERR syntax error";
static const char ERR_OOM[] = "OOM enclave heap exhausted";

static void reply_hex(struct ctx *c, const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    put_prefixed_u64(c, '$', size * 2);
    for (size_t i = 0; i < size; i++) {
        char pair[2] = {digits[data[i] >> 4], digits[data[i] & 15]};
        put(c, pair, 2);
    }
    put(c, "\r\n", 2);
}

/* ---- Arguments ---- */

static bool arg_is(const struct arg *a, const char *word)
{
    size_t size = strlen(word);
    if (a->size != size)
        return false;
    for (size_t i = 0; i < size; i++) {
        uint8_t ch = a->data[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (uint8_t)(ch - 'A' + 'a');
        if (ch != (uint8_t)word[i])
            return false;
    }
    return true;
}

/* ---- Commands ----
 * Each runs with at least SMALL_REPLY_MAX bytes of output free; one whose
 * reply carries client or stored data reserves its exact size first and
 * returns -ENOSPC, having changed nothing, when it does not fit. */

typedef int (*command_fn)(struct ctx *c, uint32_t argc, const struct arg *argv);

static int cmd_ping(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    if (argc == 1) {
        put_str(c, "+PONG\r\n");
        return 0;
    }
    if (!reserve(c, bulk_size(argv[1].size)))
        return -ENOSPC;
    reply_bulk(c, argv[1].data, argv[1].size);
    return 0;
}

static int cmd_echo(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    if (!reserve(c, bulk_size(argv[1].size)))
        return -ENOSPC;
    reply_bulk(c, argv[1].data, argv[1].size);
    return 0;
}

static int cmd_quit(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    (void)argv;
    reply_ok(c); /* the host closes the connection after sending this */
    return 0;
}

static int cmd_get(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    uint64_t hash = hash_key(argv[1].data, argv[1].size);
    spm_spin_lock(&g_db.lock);
    rehash_step(1);
    struct entry *e = find(argv[1].data, argv[1].size, hash);
    if (e && !reserve(c, bulk_size(e->value_size))) {
        spm_spin_unlock(&g_db.lock);
        return -ENOSPC;
    }
    if (e)
        reply_bulk(c, entry_value(e), e->value_size);
    else
        reply_null(c);
    spm_spin_unlock(&g_db.lock);
    return 0;
}

/* SET key value [NX|XX] [GET] [KEEPTTL]. kvs has no expiry: KEEPTTL is
 * trivially honoured, and EX/PX/EXAT/PXAT are refused rather than ignored,
 * since silently keeping a key meant to expire would be a wrong answer. */
static int cmd_set(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    bool nx = false, xx = false, get = false;
    for (uint32_t i = 3; i < argc; i++) {
        if (arg_is(&argv[i], "nx") && !xx) {
            nx = true;
        } else if (arg_is(&argv[i], "xx") && !nx) {
            xx = true;
        } else if (arg_is(&argv[i], "get")) {
            get = true;
        } else if (arg_is(&argv[i], "keepttl")) {
        } else if (arg_is(&argv[i], "ex") || arg_is(&argv[i], "px") || arg_is(&argv[i], "exat") ||
                   arg_is(&argv[i], "pxat")) {
            reply_error(c, "ERR kvs does not support key expiry (SET EX/PX/EXAT/PXAT)");
            return 0;
        } else {
            reply_error(c, ERR_SYNTAX);
            return 0;
        }
    }
    const struct arg *key = &argv[1], *value = &argv[2];
    uint64_t hash = hash_key(key->data, key->size);
    /* Copy the value before taking the lock: it may be megabytes. */
    struct entry *fresh =
        entry_new(key->data, key->size, hash, value->data, value->size, value->size);
    if (!fresh) {
        reply_error(c, ERR_OOM);
        return 0;
    }
    struct entry *old = NULL;
    spm_spin_lock(&g_db.lock);
    rehash_step(2);
    struct entry **link = find_link(key->data, key->size, hash);
    struct entry *existing = link ? *link : NULL;
    if (get && existing && !reserve(c, bulk_size(existing->value_size))) {
        spm_spin_unlock(&g_db.lock);
        free(fresh);
        return -ENOSPC;
    }
    if (get) {
        if (existing)
            reply_bulk(c, entry_value(existing), existing->value_size);
        else
            reply_null(c);
    }
    if ((nx && existing) || (xx && !existing)) {
        spm_spin_unlock(&g_db.lock);
        free(fresh);
        if (!get)
            reply_null(c);
        return 0;
    }
    if (existing) {
        fresh->next = existing->next;
        *link = fresh;
        old = existing;
    } else {
        insert_new(fresh);
    }
    spm_spin_unlock(&g_db.lock);
    free(old);
    if (!get)
        reply_ok(c);
    return 0;
}

/* DEL counts keys removed; EXISTS counts keys present, a repeated key as
 * often as it is named (both as Redis does). */
static int cmd_del(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    struct entry *removed = NULL;
    int64_t count = 0;
    for (uint32_t i = 1; i < argc; i++) {
        uint64_t hash = hash_key(argv[i].data, argv[i].size);
        spm_spin_lock(&g_db.lock);
        rehash_step(1);
        struct entry **link = find_link(argv[i].data, argv[i].size, hash);
        if (link) {
            struct entry *e = *link;
            *link = e->next;
            e->next = removed;
            removed = e;
            g_db.count--;
            count++;
        }
        spm_spin_unlock(&g_db.lock);
    }
    free_chain(removed);
    reply_integer(c, count);
    return 0;
}

static int cmd_exists(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    int64_t count = 0;
    for (uint32_t i = 1; i < argc; i++) {
        uint64_t hash = hash_key(argv[i].data, argv[i].size);
        spm_spin_lock(&g_db.lock);
        rehash_step(1);
        if (find(argv[i].data, argv[i].size, hash))
            count++;
        spm_spin_unlock(&g_db.lock);
    }
    reply_integer(c, count);
    return 0;
}

static void incr_by(struct ctx *c, const struct arg *key, int64_t delta)
{
    uint64_t hash = hash_key(key->data, key->size);
    struct entry *old = NULL;
    spm_spin_lock(&g_db.lock);
    rehash_step(2);
    struct entry **link = find_link(key->data, key->size, hash);
    struct entry *e = link ? *link : NULL;
    int64_t value = 0;
    if (e && !kvs_parse_i64(entry_value(e), e->value_size, &value)) {
        spm_spin_unlock(&g_db.lock);
        reply_error(c, ERR_NOT_INTEGER);
        return;
    }
    if ((delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta)) {
        spm_spin_unlock(&g_db.lock);
        reply_error(c, ERR_OVERFLOW);
        return;
    }
    value += delta;
    char text[INT64_TEXT_MAX];
    size_t size = format_i64(value, text);
    if (e && size <= e->value_capacity) {
        memcpy(entry_value(e), text, size);
        e->value_size = (uint32_t)size;
    } else {
        /* A small allocation under the lock: the key is new, or a long
         * string value is being replaced by a number. Room for any int64
         * so later increments stay in place. */
        struct entry *fresh =
            entry_new(key->data, key->size, hash, (const uint8_t *)text, size, INT64_TEXT_MAX);
        if (!fresh) {
            spm_spin_unlock(&g_db.lock);
            reply_error(c, ERR_OOM);
            return;
        }
        if (e) {
            fresh->next = e->next;
            *link = fresh;
            old = e;
        } else {
            insert_new(fresh);
        }
    }
    spm_spin_unlock(&g_db.lock);
    free(old);
    reply_integer(c, value);
}

static int cmd_incr(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], 1);
    return 0;
}

static int cmd_decr(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    incr_by(c, &argv[1], -1);
    return 0;
}

static int cmd_incrby(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    int64_t delta;
    if (!kvs_parse_i64(argv[2].data, argv[2].size, &delta)) {
        reply_error(c, ERR_NOT_INTEGER);
        return 0;
    }
    incr_by(c, &argv[1], delta);
    return 0;
}

static int cmd_decrby(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    int64_t delta;
    if (!kvs_parse_i64(argv[2].data, argv[2].size, &delta) || delta == INT64_MIN) {
        reply_error(c, ERR_NOT_INTEGER);
        return 0;
    }
    incr_by(c, &argv[1], -delta);
    return 0;
}

static int cmd_dbsize(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    (void)argv;
    spm_spin_lock(&g_db.lock);
    uint64_t count = g_db.count;
    spm_spin_unlock(&g_db.lock);
    reply_integer(c, (int64_t)count);
    return 0;
}

/* FLUSHALL [ASYNC|SYNC]: detaches everything under the lock and frees it
 * after, so other threads wait for a pointer swap, not for the frees. */
static int cmd_flushall(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    if (argc == 2 && !arg_is(&argv[1], "async") && !arg_is(&argv[1], "sync")) {
        reply_error(c, ERR_SYNTAX);
        return 0;
    }
    struct entry **empty = calloc(INITIAL_BUCKETS, sizeof(*empty));
    if (!empty) {
        reply_error(c, ERR_OOM);
        return 0;
    }
    spm_spin_lock(&g_db.lock);
    struct table old[2] = {g_db.tables[0], g_db.tables[1]};
    g_db.tables[0] = (struct table){empty, INITIAL_BUCKETS - 1};
    g_db.tables[1] = (struct table){0};
    g_db.rehashing = false;
    g_db.count = 0;
    spm_spin_unlock(&g_db.lock);
    for (int t = 0; t < 2; t++) {
        if (!old[t].buckets)
            continue;
        for (uint64_t i = 0; i <= old[t].mask; i++)
            free_chain(old[t].buckets[i]);
        free(old[t].buckets);
    }
    reply_ok(c);
    return 0;
}

/* kvs's only "configuration" is what it does not do: it saves nothing and
 * keeps no append-only file. CONFIG GET reports those two, as name/value
 * pairs like Redis, and an empty array for any other name; redis-benchmark
 * asks for exactly these two and warns if they are missing. Names match
 * exactly (case-insensitively); glob patterns are not expanded. */
static const struct {
    const char *name, *value;
} g_config[] = {{"save", ""}, {"appendonly", "no"}};
#define CONFIG_PAIR_REPLY_MAX 40u /* "$10\r\nappendonly\r\n$2\r\nno\r\n" and then some */

static int cmd_config(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    if (!arg_is(&argv[1], "get")) {
        put_str(c, "-ERR unknown subcommand '");
        put_sanitized(c, &argv[1], 128);
        put_str(c, "'. kvs answers only CONFIG GET\r\n");
        return 0;
    }
    if (argc < 3) {
        reply_error(c, "ERR wrong number of arguments for 'config|get' command");
        return 0;
    }
    uint64_t pairs = 0;
    for (uint32_t i = 2; i < argc; i++)
        for (size_t k = 0; k < sizeof(g_config) / sizeof(g_config[0]); k++)
            pairs += arg_is(&argv[i], g_config[k].name);
    if (!reserve(c, 32 + pairs * CONFIG_PAIR_REPLY_MAX))
        return -ENOSPC;
    put_prefixed_u64(c, '*', pairs * 2);
    for (uint32_t i = 2; i < argc; i++) {
        for (size_t k = 0; k < sizeof(g_config) / sizeof(g_config[0]); k++) {
            if (!arg_is(&argv[i], g_config[k].name))
                continue;
            reply_bulk(c, g_config[k].name, strlen(g_config[k].name));
            reply_bulk(c, g_config[k].value, strlen(g_config[k].value));
        }
    }
    return 0;
}

/* COMMAND (and COMMAND DOCS, which interactive redis-cli sends) get an
 * empty array: there is no command metadata to offer. */
static int cmd_command(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    (void)argv;
    put_str(c, "*0\r\n");
    return 0;
}

static int cmd_select(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    int64_t index;
    if (!kvs_parse_i64(argv[1].data, argv[1].size, &index))
        reply_error(c, ERR_NOT_INTEGER);
    else if (index != 0)
        reply_error(c, "ERR DB index is out of range");
    else
        reply_ok(c);
    return 0;
}

/* The signing key is created inside the enclave on first use and never
 * leaves it; only the public key and signatures do. */
static int signer_ready(void)
{
    if (__atomic_load_n(&g_signer.ready, __ATOMIC_ACQUIRE))
        return 0;
    spm_spin_lock(&g_signer.lock);
    int ret = 0;
    if (!g_signer.ready) {
        ret = spm_ecdsa_p256_keygen(g_signer.private_key, g_signer.public_key);
        if (ret == 0)
            __atomic_store_n(&g_signer.ready, true, __ATOMIC_RELEASE);
    }
    spm_spin_unlock(&g_signer.lock);
    return ret;
}

/* KVS.PUBKEY: the 65-byte uncompressed P-256 point (04 || X || Y) as a
 * 130-character lowercase hex bulk string. */
static int cmd_pubkey(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    (void)argv;
    if (signer_ready() < 0) {
        reply_error(c, "ERR enclave signing key unavailable");
        return 0;
    }
    reply_hex(c, g_signer.public_key, sizeof(g_signer.public_key));
    return 0;
}

/* KVS.SIGN msg: ECDSA P-256 over SHA-256(msg), r || s (32 bytes each,
 * big-endian) as a 128-character lowercase hex bulk string. */
static int cmd_sign(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    (void)argc;
    uint8_t signature[64];
    if (signer_ready() < 0 ||
        spm_ecdsa_p256_sign(g_signer.private_key, argv[1].data, argv[1].size, signature) < 0) {
        reply_error(c, "ERR enclave signing failed");
        return 0;
    }
    reply_hex(c, signature, sizeof(signature));
    return 0;
}

struct command {
    const char *name; /* lowercase, as Redis names it in errors */
    command_fn fn;
    uint32_t min_argc, max_argc; /* max 0: no limit */
};

static const struct command g_commands[] = {
    {"get", cmd_get, 2, 2},           {"set", cmd_set, 3, 0},
    {"incr", cmd_incr, 2, 2},         {"ping", cmd_ping, 1, 2},
    {"del", cmd_del, 2, 0},           {"exists", cmd_exists, 2, 0},
    {"incrby", cmd_incrby, 3, 3},     {"decr", cmd_decr, 2, 2},
    {"decrby", cmd_decrby, 3, 3},     {"echo", cmd_echo, 2, 2},
    {"dbsize", cmd_dbsize, 1, 1},     {"flushall", cmd_flushall, 1, 2},
    {"config", cmd_config, 2, 0},     {"command", cmd_command, 1, 0},
    {"select", cmd_select, 2, 2},     {"quit", cmd_quit, 1, 0},
    {"kvs.pubkey", cmd_pubkey, 1, 1}, {"kvs.sign", cmd_sign, 2, 2},
};

/* Redis's wording, so clients and scripts that match on it keep working. */
static void reply_unknown_command(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    put_str(c, "-ERR unknown command '");
    put_sanitized(c, &argv[0], 128);
    put_str(c, "', with args beginning with: ");
    size_t shown = 0;
    for (uint32_t i = 1; i < argc && shown < 128; i++) {
        size_t limit = 128 - shown;
        put(c, "'", 1);
        put_sanitized(c, &argv[i], limit);
        put(c, "' ", 2);
        shown += (argv[i].size < limit ? argv[i].size : limit) + 3;
    }
    put(c, "\r\n", 2);
}

static int run_command(struct ctx *c, uint32_t argc, const struct arg *argv)
{
    if (!reserve(c, SMALL_REPLY_MAX))
        return -ENOSPC;
    for (size_t i = 0; i < sizeof(g_commands) / sizeof(g_commands[0]); i++) {
        const struct command *cmd = &g_commands[i];
        if (!arg_is(&argv[0], cmd->name))
            continue;
        if (argc < cmd->min_argc || (cmd->max_argc && argc > cmd->max_argc)) {
            put_str(c, "-ERR wrong number of arguments for '");
            put_str(c, cmd->name);
            put_str(c, "' command\r\n");
            return 0;
        }
        return cmd->fn(c, argc, argv);
    }
    reply_unknown_command(c, argc, argv);
    return 0;
}

/* ---- The batch ecall ---- */

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Walks the whole batch once, checking every count and size against what
 * is left of the buffer and against the limits, before anything runs. */
static int validate_batch(const uint8_t *in, size_t in_size, uint32_t command_count)
{
    size_t pos = sizeof(struct kvs_batch_header);
    for (uint32_t i = 0; i < command_count; i++) {
        if (in_size - pos < 4)
            return -EBADMSG;
        uint32_t argc = load_u32(in + pos);
        pos += 4;
        if (argc == 0 || argc > KVS_MAX_ARGC)
            return -EBADMSG;
        size_t command_size = 0;
        for (uint32_t a = 0; a < argc; a++) {
            if (in_size - pos < 4)
                return -EBADMSG;
            uint32_t size = load_u32(in + pos);
            pos += 4;
            if (size > KVS_MAX_ARG_SIZE || size > in_size - pos)
                return -EBADMSG;
            command_size += size;
            if (command_size > KVS_MAX_COMMAND_SIZE)
                return -EBADMSG;
            pos += size;
        }
    }
    return pos == in_size ? 0 : -EBADMSG;
}

static int e_batch(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_capacity,
                   size_t *out_size)
{
    struct kvs_batch_header header;
    struct kvs_batch_reply reply = {0};
    if (out_capacity < sizeof(reply))
        return -ENOSPC;
    if (in_size < sizeof(header))
        return -EBADMSG;
    memcpy(&header, in, sizeof(header));
    if (header.magic != KVS_BATCH_MAGIC)
        return -EBADMSG;
    int ret = validate_batch(in, in_size, header.command_count);
    if (ret < 0)
        return ret;
    if (!__atomic_load_n(&g_db.ready, __ATOMIC_ACQUIRE)) {
        spm_spin_lock(&g_db.lock);
        ret = db_init_locked();
        spm_spin_unlock(&g_db.lock);
        if (ret < 0)
            return ret;
    }

    struct ctx c = {.buf = out + sizeof(reply), .capacity = out_capacity - sizeof(reply)};
    struct arg small_argv[16];
    size_t pos = sizeof(header);
    for (; reply.commands_done < header.command_count; reply.commands_done++) {
        uint32_t argc = load_u32(in + pos);
        pos += 4;
        struct arg *argv = small_argv;
        if (argc > sizeof(small_argv) / sizeof(small_argv[0]) &&
            !(argv = malloc(sizeof(*argv) * argc))) {
            if (!reserve(&c, SMALL_REPLY_MAX)) {
                reply.status = -ENOSPC;
                reply.needed_size = c.needed;
                break;
            }
            reply_error(&c, ERR_OOM);
            /* Skip the arguments (already validated) to reach the next command. */
            for (uint32_t a = 0; a < argc; a++)
                pos += 4 + load_u32(in + pos);
            continue;
        }
        for (uint32_t a = 0; a < argc; a++) {
            argv[a].size = load_u32(in + pos);
            argv[a].data = in + pos + 4;
            pos += 4 + argv[a].size;
        }
        ret = run_command(&c, argc, argv);
        if (argv != small_argv)
            free(argv);
        if (ret == -ENOSPC) {
            reply.status = -ENOSPC;
            reply.needed_size = c.needed;
            break;
        }
    }
    if (c.overflow)
        return -EOVERFLOW;
    memcpy(out, &reply, sizeof(reply));
    *out_size = sizeof(reply) + c.size;
    return 0;
}

const struct spm_ecall_entry spm_app_ecalls[] = {
    [KVS_ECALL_BATCH] = {e_batch},
};
const uint32_t spm_app_ecall_count = sizeof(spm_app_ecalls) / sizeof(spm_app_ecalls[0]);
