/* The checkpoint engine's AES-256-GCM (tc_gcm_key, tc_gcm_chunk_*), written
 * for AES-NI and PCLMULQDQ because it is the bulk of an export's and an
 * import's cost: BearSSL runs CTR and GHASH as two passes over the data and
 * reduces GHASH after every block. Here an export encrypts and
 * authenticates in one pass, and GHASH reduces once per 8 blocks.
 *
 * Every SGX CPU has AES-NI, PCLMULQDQ and SSE4.1, so they are required
 * outright (CPUID faults inside an enclave); nothing newer is used: VAES
 * and AVX-512 are missing on most SGX parts, and even AVX on the SGX Atoms
 * (Goldmont Plus). AES-NI and carry-less multiplication have no
 * data-dependent timing, and nothing here branches on or indexes by a
 * secret.
 *
 * GHASH has the structure of Gueron and Kounavis, "Intel Carry-Less
 * Multiplication Instruction and its Usage for Computing the GCM Mode":
 *  - each block is byte-reversed into a 128-bit integer ("reflected"):
 *    bit i holds the coefficient of x^(127-i) of GCM's polynomial;
 *  - a 128 x 128-bit product is three 64 x 64-bit PCLMULQDQs (Karatsuba);
 *  - 8 blocks are absorbed at once, Y' = (Y + C1) H^8 + C2 H^7 + ... + C8 H:
 *    their 256-bit products are summed and reduced once (aggregated
 *    reduction), with H^1..H^8 computed when the key is;
 *  - the reduction modulo g = x^128 + x^7 + x^2 + x + 1 folds the low half
 *    of the reflected product into the high half 64 bits at a time, each
 *    fold a PCLMULQDQ by 0xC2 << 56 (g's low terms, reflected). It is a
 *    Montgomery reduction, so it returns x A B rather than A B; instead of
 *    shifting each product left by one bit (the paper's way), the powers of
 *    H are stored times x^-1.
 * tc_gcm_chunk_encrypt stitches the two: while 8 counter blocks go through
 * their 14 AES rounds, the previous 8 ciphertext blocks, still in
 * registers, are multiplied in, so the AES and the carry-less multiply
 * units work side by side. */
#include "crypto.h"

#include <smmintrin.h>
#include <string.h>
#include <wmmintrin.h>

#include "spm/trts.h"

/* Every function that touches a vector carries this (no per-file flags). */
#define NI __attribute__((target("aes,pclmul,sse4.1")))

#define ROUNDS 14 /* AES-256 */
#define WIDTH  8  /* blocks per reduction and per stitched step */

/* struct tc_gcm_key's contents. Read-only once initialised. */
struct gcm_key_impl {
    __m128i round_keys[ROUNDS + 1];
    __m128i h[WIDTH];      /* h[i] = H^(i+1) x^-1, reflected */
    __m128i h_fold[WIDTH]; /* h[i]'s two halves xored, in both halves (Karatsuba) */
};
_Static_assert(sizeof(struct gcm_key_impl) <= sizeof(((struct tc_gcm_key *)0)->opaque),
               "GCM key storage");
_Static_assert(_Alignof(struct gcm_key_impl) <= _Alignof(struct tc_gcm_key), "GCM key alignment");

static const struct gcm_key_impl *gcm_key(const struct tc_gcm_key *key)
{
    return (const struct gcm_key_impl *)key->opaque;
}

static inline NI __m128i reflect(__m128i v)
{
    return _mm_shuffle_epi8(v, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* ---- AES-256 ---- */

/* Adds (xor) to each word of `prev` all the words before it, then `word`:
 * the next four words of the key schedule. */
static inline NI __m128i schedule_step(__m128i prev, __m128i word)
{
    prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
    prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 8));
    return _mm_xor_si128(prev, word);
}

/* FIPS 197's key expansion: w[8j] takes SubWord(RotWord(w[8j-1])) ^ Rcon,
 * w[8j+4] takes SubWord(w[8j+3]); AESKEYGENASSIST computes both (with
 * Rcon 0 here, added by hand so the round constant can be a variable). */
static NI void aes256_expand(__m128i round_keys[ROUNDS + 1], const uint8_t key[32])
{
    __m128i a = _mm_loadu_si128((const __m128i *)key);
    __m128i b = _mm_loadu_si128((const __m128i *)(key + 16));
    round_keys[0] = a;
    round_keys[1] = b;
    int rcon = 1;
    for (int i = 2; i <= ROUNDS; i += 2, rcon <<= 1) {
        __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, 0), 0xff);
        a = schedule_step(a, _mm_xor_si128(t, _mm_set1_epi32(rcon)));
        round_keys[i] = a;
        if (i == ROUNDS)
            break;
        b = schedule_step(b, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa));
        round_keys[i + 1] = b;
    }
}

static inline NI __m128i aes_block(const struct gcm_key_impl *k, __m128i block)
{
    block = _mm_xor_si128(block, k->round_keys[0]);
    for (int r = 1; r < ROUNDS; r++)
        block = _mm_aesenc_si128(block, k->round_keys[r]);
    return _mm_aesenclast_si128(block, k->round_keys[ROUNDS]);
}

/* ---- Counter blocks ----
 * A counter block is nonce || be32(counter). It is kept with the counter
 * word little-endian, so that one _mm_add_epi32 steps it (GCM's inc32:
 * modulo 2^32, nonce untouched), and put in GCM's byte order when used. */

static inline NI __m128i counter_load(const struct tc_gcm_chunk *chunk, uint32_t counter)
{
    uint8_t block[16];
    memcpy(block, chunk->nonce, 12);
    memcpy(block + 12, &counter, 4);
    return _mm_loadu_si128((const __m128i *)block);
}

static inline NI __m128i counter_block(__m128i counter)
{
    return _mm_shuffle_epi8(counter,
                            _mm_set_epi8(12, 13, 14, 15, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
}

static inline NI __m128i counter_next(__m128i counter)
{
    return _mm_add_epi32(counter, _mm_set_epi32(1, 0, 0, 0));
}

/* ---- GHASH ---- */

/* An unreduced sum of 256-bit products a b, as Karatsuba's three parts:
 * lo = a0 b0, hi = a1 b1, mid = (a0 + a1)(b0 + b1). */
struct clmul_sum {
    __m128i lo, mid, hi;
};

static inline NI void clmul_add(struct clmul_sum *s, __m128i a, __m128i b, __m128i b_fold)
{
    __m128i a_fold = _mm_xor_si128(a, _mm_shuffle_epi32(a, 0x4e));
    s->lo = _mm_xor_si128(s->lo, _mm_clmulepi64_si128(a, b, 0x00));
    s->hi = _mm_xor_si128(s->hi, _mm_clmulepi64_si128(a, b, 0x11));
    s->mid = _mm_xor_si128(s->mid, _mm_clmulepi64_si128(a_fold, b_fold, 0x00));
}

/* The sum's 256-bit value [hi:lo] reduced to 128 bits. Each step adds
 * q g' to the value, q its low 64 bits and g' the reflected g (which is
 * 1 + x^-121 + x^-126 + x^-127 + x^-128 in the integer's powers of two):
 * that clears the low 64 bits, and the value moves down by 64. The result
 * is x times the product (see the top of the file). */
static inline NI __m128i ghash_reduce(const struct clmul_sum *s)
{
    const __m128i g_low = _mm_set_epi64x(0, (long long)0xc200000000000000ull);
    __m128i mid = _mm_xor_si128(s->mid, _mm_xor_si128(s->lo, s->hi)); /* a0 b1 + a1 b0 */
    __m128i lo = _mm_xor_si128(s->lo, _mm_slli_si128(mid, 8));
    __m128i hi = _mm_xor_si128(s->hi, _mm_srli_si128(mid, 8));
    lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, g_low, 0x00));
    lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, g_low, 0x00));
    return _mm_xor_si128(hi, lo);
}

/* Absorbs reflected blocks x[0..count), 1 <= count <= WIDTH, into y:
 * (y + x0) H^count + x1 H^(count-1) + ... + x(count-1) H, one reduction. */
static inline NI __m128i ghash_blocks(const struct gcm_key_impl *k, __m128i y, const __m128i *x,
                                      size_t count)
{
    struct clmul_sum s = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    clmul_add(&s, _mm_xor_si128(y, x[0]), k->h[count - 1], k->h_fold[count - 1]);
#pragma GCC unroll 8
    for (size_t i = 1; i < count; i++)
        clmul_add(&s, x[i], k->h[count - 1 - i], k->h_fold[count - 1 - i]);
    return ghash_reduce(&s);
}

/* Loads `count` blocks from p into x, reflected; stores each to `copy`
 * first when it is not NULL. */
static inline NI void load_blocks(const uint8_t *p, uint8_t *copy, __m128i *x, size_t count)
{
#pragma GCC unroll 8
    for (size_t i = 0; i < count; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
        if (copy)
            _mm_storeu_si128((__m128i *)(copy + 16 * i), v);
        x[i] = reflect(v);
    }
}

/* GHASH over `size` bytes at `p`, the last block zero-padded. When `copy`
 * is not NULL the bytes are also copied there, and what is absorbed is
 * what was stored (p may change meanwhile). */
static NI __m128i ghash_run(const struct gcm_key_impl *k, __m128i y, const uint8_t *p,
                            uint8_t *copy, size_t size)
{
    __m128i x[WIDTH];
    for (; size >= 16 * WIDTH; p += 16 * WIDTH, size -= 16 * WIDTH) {
        load_blocks(p, copy, x, WIDTH);
        y = ghash_blocks(k, y, x, WIDTH);
        copy = copy ? copy + 16 * WIDTH : NULL;
    }
    for (; size >= 16; p += 16, size -= 16) { /* the rest a block at a time */
        load_blocks(p, copy, x, 1);
        y = ghash_blocks(k, y, x, 1);
        copy = copy ? copy + 16 : NULL;
    }
    if (size > 0) {
        uint8_t last[16] = {0};
        memcpy(last, p, size);
        if (copy)
            memcpy(copy, last, size);
        x[0] = reflect(_mm_loadu_si128((const __m128i *)last));
        y = ghash_blocks(k, y, x, 1);
    }
    return y;
}

/* ---- CTR ---- */

/* CTR over WIDTH blocks from `in` to `out`; when `x` is not NULL it
 * receives the ciphertext, reflected for GHASH, as computed (never read
 * back from `out`). */
static inline NI void ctr_width(const struct gcm_key_impl *k, __m128i *counter, const uint8_t *in,
                                uint8_t *out, __m128i *x)
{
    __m128i b[WIDTH];
#pragma GCC unroll 8
    for (int j = 0; j < WIDTH; j++) {
        b[j] = _mm_xor_si128(counter_block(*counter), k->round_keys[0]);
        *counter = counter_next(*counter);
    }
#pragma GCC unroll 16
    for (int r = 1; r < ROUNDS; r++)
#pragma GCC unroll 8
        for (int j = 0; j < WIDTH; j++)
            b[j] = _mm_aesenc_si128(b[j], k->round_keys[r]);
#pragma GCC unroll 8
    for (int j = 0; j < WIDTH; j++) {
        __m128i c = _mm_aesenclast_si128(b[j], k->round_keys[ROUNDS]);
        c = _mm_xor_si128(c, _mm_loadu_si128((const __m128i *)(in + 16 * j)));
        _mm_storeu_si128((__m128i *)(out + 16 * j), c);
        if (x)
            x[j] = reflect(c);
    }
}

/* CTR over one whole block; returns the ciphertext reflected. */
static inline NI __m128i ctr_block(const struct gcm_key_impl *k, __m128i *counter,
                                   const uint8_t *in, uint8_t *out)
{
    __m128i c =
        _mm_xor_si128(aes_block(k, counter_block(*counter)), _mm_loadu_si128((const __m128i *)in));
    *counter = counter_next(*counter);
    _mm_storeu_si128((__m128i *)out, c);
    return reflect(c);
}

/* CTR over a last, partial block of `size` (1..15) bytes; returns its
 * ciphertext zero-padded and reflected, for GHASH. */
static NI __m128i ctr_partial(const struct gcm_key_impl *k, __m128i *counter, const uint8_t *in,
                              uint8_t *out, size_t size)
{
    uint8_t block[16] = {0};
    memcpy(block, in, size);
    __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)block),
                              aes_block(k, counter_block(*counter)));
    *counter = counter_next(*counter);
    _mm_storeu_si128((__m128i *)block, c);
    memcpy(out, block, size);
    memset(block + size, 0, sizeof(block) - size); /* unused keystream */
    return reflect(_mm_loadu_si128((const __m128i *)block));
}

/* CTR over any number of bytes, and GHASH of the ciphertext into *y when
 * y is not NULL; blocks of WIDTH are stitched. */
static NI void ctr_run(const struct gcm_key_impl *k, __m128i *counter, const uint8_t *in,
                       uint8_t *out, size_t size, __m128i *y)
{
    /* Locals, not *counter and *y, which the stores to out could alias. */
    __m128i ctr = *counter, hash = y ? *y : _mm_setzero_si128();
    __m128i x[WIDTH]; /* ciphertext blocks GHASH has not absorbed yet */
    if (y && size >= 16 * WIDTH) {
        ctr_width(k, &ctr, in, out, x);
        in += 16 * WIDTH;
        out += 16 * WIDTH;
        size -= 16 * WIDTH;
        for (; size >= 16 * WIDTH; in += 16 * WIDTH, out += 16 * WIDTH, size -= 16 * WIDTH) {
            __m128i b[WIDTH];
            struct clmul_sum s = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
#pragma GCC unroll 8
            for (int j = 0; j < WIDTH; j++) {
                b[j] = _mm_xor_si128(counter_block(ctr), k->round_keys[0]);
                ctr = counter_next(ctr);
            }
            /* Round r of the 8 blocks, then block r - 1 of GHASH. */
#pragma GCC unroll 16
            for (int r = 1; r < ROUNDS; r++) {
#pragma GCC unroll 8
                for (int j = 0; j < WIDTH; j++)
                    b[j] = _mm_aesenc_si128(b[j], k->round_keys[r]);
                if (r <= WIDTH)
                    clmul_add(&s, r == 1 ? _mm_xor_si128(hash, x[0]) : x[r - 1], k->h[WIDTH - r],
                              k->h_fold[WIDTH - r]);
            }
            hash = ghash_reduce(&s);
#pragma GCC unroll 8
            for (int j = 0; j < WIDTH; j++) {
                __m128i c = _mm_aesenclast_si128(b[j], k->round_keys[ROUNDS]);
                c = _mm_xor_si128(c, _mm_loadu_si128((const __m128i *)(in + 16 * j)));
                _mm_storeu_si128((__m128i *)(out + 16 * j), c);
                x[j] = reflect(c);
            }
        }
        hash = ghash_blocks(k, hash, x, WIDTH);
    }
    for (; size >= 16 * WIDTH; in += 16 * WIDTH, out += 16 * WIDTH, size -= 16 * WIDTH)
        ctr_width(k, &ctr, in, out, NULL);
    size_t count = 0;
    for (; size >= 16; in += 16, out += 16, size -= 16)
        x[count++] = ctr_block(k, &ctr, in, out);
    if (size > 0)
        x[count++] = ctr_partial(k, &ctr, in, out, size);
    if (y && count > 0)
        hash = ghash_blocks(k, hash, x, count);
    *counter = ctr;
    if (y)
        *y = hash;
}

/* ---- The chunk API (crypto.h) ---- */

NI void tc_gcm_key_init(struct tc_gcm_key *key, const uint8_t k[32])
{
    struct gcm_key_impl *impl = (struct gcm_key_impl *)key->opaque;
    aes256_expand(impl->round_keys, k);
    /* H = AES_K(0^128). H x^-1 is H shifted left by one bit in the reflected
     * order; the bit shifted out stands for x^-1 = x^127 + x^6 + x + 1,
     * reflected 0xC2000000000000000000000000000001. */
    __m128i h = reflect(aes_block(impl, _mm_setzero_si128()));
    __m128i carry = _mm_srli_epi64(h, 63);
    __m128i top = _mm_srai_epi32(_mm_shuffle_epi32(h, 0xff), 31); /* all ones if bit 127 */
    h = _mm_or_si128(_mm_slli_epi64(h, 1), _mm_slli_si128(carry, 8));
    h = _mm_xor_si128(h, _mm_and_si128(top, _mm_set_epi64x((long long)0xc200000000000000ull, 1)));
    impl->h[0] = h;
    impl->h_fold[0] = _mm_xor_si128(h, _mm_shuffle_epi32(h, 0x4e));
    for (int i = 1; i < WIDTH; i++) {
        /* (H^i x^-1)(H x^-1) times the reduction's x is H^(i+1) x^-1. */
        struct clmul_sum s = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
        clmul_add(&s, impl->h[i - 1], impl->h[0], impl->h_fold[0]);
        impl->h[i] = ghash_reduce(&s);
        impl->h_fold[i] = _mm_xor_si128(impl->h[i], _mm_shuffle_epi32(impl->h[i], 0x4e));
    }
}

void tc_gcm_key_wipe(struct tc_gcm_key *key)
{
    spm_wipe(key, sizeof(*key));
}

NI void tc_gcm_chunk_start(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                           const uint8_t nonce[12], const void *aad, size_t aad_size)
{
    memcpy(chunk->nonce, nonce, sizeof(chunk->nonce));
    chunk->counter = 2; /* block 1 is J0, which masks the tag */
    chunk->aad_size = aad_size;
    chunk->data_size = 0;
    __m128i y = ghash_run(gcm_key(key), _mm_setzero_si128(), aad, NULL, aad_size);
    _mm_storeu_si128((__m128i *)chunk->y, y); /* reflected */
}

NI void tc_gcm_chunk_encrypt(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                             const void *src, void *dst, size_t size)
{
    __m128i counter = counter_load(chunk, chunk->counter);
    __m128i y = _mm_loadu_si128((const __m128i *)chunk->y);
    ctr_run(gcm_key(key), &counter, src, dst, size, &y);
    _mm_storeu_si128((__m128i *)chunk->y, y);
    chunk->counter = (uint32_t)_mm_extract_epi32(counter, 3);
    chunk->data_size += size;
}

NI void tc_gcm_chunk_ctr(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, void *data,
                         size_t size)
{
    __m128i counter = counter_load(chunk, chunk->counter);
    ctr_run(gcm_key(key), &counter, data, data, size, NULL);
    chunk->counter = (uint32_t)_mm_extract_epi32(counter, 3);
}

NI void tc_gcm_chunk_ghash(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                           const void *ciphertext, size_t size)
{
    __m128i y = _mm_loadu_si128((const __m128i *)chunk->y);
    y = ghash_run(gcm_key(key), y, ciphertext, NULL, size);
    _mm_storeu_si128((__m128i *)chunk->y, y);
    chunk->data_size += size;
}

NI void tc_gcm_chunk_ghash_copy(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk,
                                const void *src, void *dst, size_t size)
{
    __m128i y = _mm_loadu_si128((const __m128i *)chunk->y);
    y = ghash_run(gcm_key(key), y, src, dst, size);
    _mm_storeu_si128((__m128i *)chunk->y, y);
    chunk->data_size += size;
}

NI void tc_gcm_chunk_tag(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, uint8_t tag[16])
{
    const struct gcm_key_impl *k = gcm_key(key);
    /* The lengths block be64(AAD bits) || be64(data bits), reflected. */
    __m128i lengths =
        _mm_set_epi64x((long long)(chunk->aad_size << 3), (long long)(chunk->data_size << 3));
    __m128i y = ghash_blocks(k, _mm_loadu_si128((const __m128i *)chunk->y), &lengths, 1);
    __m128i j0 = counter_block(counter_load(chunk, 1));
    _mm_storeu_si128((__m128i *)tag, _mm_xor_si128(reflect(y), aes_block(k, j0)));
    spm_wipe(chunk, sizeof(*chunk));
}
