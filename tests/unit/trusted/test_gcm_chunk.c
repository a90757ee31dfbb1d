/* Tests of the checkpoint engine's chunk AES-256-GCM
 * (src/trusted/crypto/gcm_chunk.c), compiled for the host, through every
 * way the engine feeds it data: one pass (tc_gcm_chunk_encrypt) in and out
 * of place, CTR and GHASH as separate passes, and GHASH while copying.
 *  - Known answers: the GCM specification's AES-256 test cases 13 to 16
 *    (McGrew and Viega: 0, 16 and 64 bytes without AAD, 60 bytes with),
 *    and longer vectors of whole 128-byte groups, which take the stitched
 *    loop (computed with OpenSSL and checked against a textbook bit-by-bit
 *    GCM when written).
 *  - A randomized cross-check against OpenSSL's EVP AES-256-GCM: every
 *    multiple of 16 up to 4 KiB and some odd tails, random keys, nonces and
 *    AAD, pieces split at random 16-byte boundaries, buffers at random
 *    alignments, bytes around each output checked untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "crypto/crypto.h"

#define MAX_SIZE   (4096u + 64u)
#define MAX_PIECES 8u
#define GUARD      0xa5

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
    return n;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}

static void random_bytes(uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)rng();
}

/* Piece sizes for `size` bytes: multiples of 16 at random, the rest last. */
static size_t split(size_t size, size_t pieces[MAX_PIECES])
{
    size_t count = 0;
    for (size_t done = 0; done < size; done += pieces[count++]) {
        size_t left = size - done, n = left;
        if (count + 1 < MAX_PIECES && left >= 16 && rng() % 4 != 0)
            n = 16 * (1 + rng() % (left / 16));
        pieces[count] = n;
    }
    return count;
}

static void openssl_gcm256(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad,
                           size_t aad_size, const uint8_t *plain, size_t size, uint8_t *cipher,
                           uint8_t tag[16])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_size), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, cipher, &n, plain, (int)size), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, cipher + n, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(ctx);
}

/* How the data goes through a chunk. */
enum feed {
    ENCRYPT,          /* tc_gcm_chunk_encrypt from in to out */
    ENCRYPT_IN_PLACE, /* tc_gcm_chunk_encrypt with out == in */
    CTR_THEN_GHASH,   /* tc_gcm_chunk_ctr then _ghash on each piece, in place */
    CTR,              /* tc_gcm_chunk_ctr alone, in place (no tag) */
    GHASH,            /* tc_gcm_chunk_ghash alone over in (out untouched) */
    GHASH_COPY,       /* tc_gcm_chunk_ghash_copy from in to out */
};

/* Runs one chunk over `in` in the given pieces; out-of-place feeds write
 * `out`, in-place ones `in`. Returns the tag in `tag`. */
static void run_chunk(const struct tc_gcm_key *key, const uint8_t nonce[12], const uint8_t *aad,
                      size_t aad_size, enum feed feed, uint8_t *in, uint8_t *out,
                      const size_t *pieces, size_t piece_count, uint8_t tag[16])
{
    struct tc_gcm_chunk chunk;
    tc_gcm_chunk_start(key, &chunk, nonce, aad, aad_size);
    for (size_t i = 0, done = 0; i < piece_count; done += pieces[i++]) {
        uint8_t *p = in + done, *q = out ? out + done : NULL;
        size_t n = pieces[i];
        switch (feed) {
        case ENCRYPT:
            tc_gcm_chunk_encrypt(key, &chunk, p, q, n);
            break;
        case ENCRYPT_IN_PLACE:
            tc_gcm_chunk_encrypt(key, &chunk, p, p, n);
            break;
        case CTR_THEN_GHASH:
            tc_gcm_chunk_ctr(key, &chunk, p, n);
            tc_gcm_chunk_ghash(key, &chunk, p, n);
            break;
        case CTR:
            tc_gcm_chunk_ctr(key, &chunk, p, n);
            break;
        case GHASH:
            tc_gcm_chunk_ghash(key, &chunk, p, n);
            break;
        case GHASH_COPY:
            tc_gcm_chunk_ghash_copy(key, &chunk, p, q, n);
            break;
        }
    }
    tc_gcm_chunk_tag(key, &chunk, tag);
    for (size_t i = 0; i < sizeof(chunk); i++)
        assert_int_equal(((uint8_t *)&chunk)[i], 0); /* the tag wipes the chunk */
}

/* Checks one chunk's plaintext, ciphertext and tag (with want_tag NULL when
 * it is not known) through every feed, pieces split at random. */
static void check_all_feeds(const uint8_t k[32], const uint8_t nonce[12], const uint8_t *aad,
                            size_t aad_size, const uint8_t *plain, const uint8_t *cipher,
                            size_t size, const uint8_t want_tag[16])
{
    static uint8_t in_buffer[MAX_SIZE + 32], out_buffer[MAX_SIZE + 32];
    assert_true(size <= MAX_SIZE);
    struct tc_gcm_key key;
    tc_gcm_key_init(&key, k);
    static const enum feed feeds[] = {ENCRYPT, ENCRYPT_IN_PLACE, CTR_THEN_GHASH, CTR,
                                      GHASH,   GHASH_COPY};
    for (size_t f = 0; f < sizeof(feeds) / sizeof(feeds[0]); f++) {
        enum feed feed = feeds[f];
        bool decrypting = feed == CTR && rng() % 2; /* CTR runs both ways */
        bool from_cipher = feed == GHASH || feed == GHASH_COPY || decrypting;
        /* Random alignments; guard bytes around both buffers. */
        uint8_t *in = in_buffer + rng() % 16, *out = out_buffer + rng() % 16;
        memset(in_buffer, GUARD, sizeof(in_buffer));
        memset(out_buffer, GUARD, sizeof(out_buffer));
        memcpy(in, from_cipher ? cipher : plain, size);
        size_t pieces[MAX_PIECES];
        size_t piece_count = split(size, pieces);
        uint8_t tag[16];
        run_chunk(&key, nonce, aad, aad_size, feed, in, out, pieces, piece_count, tag);

        bool out_of_place = feed == ENCRYPT || feed == GHASH_COPY;
        const uint8_t *result = out_of_place ? out : in;
        assert_memory_equal(result, decrypting ? plain : cipher, size);
        if (out_of_place)
            assert_memory_equal(in, from_cipher ? cipher : plain, size); /* source kept */
        for (size_t i = 0; i < sizeof(out_buffer); i++)
            if (out_buffer + i < out || out_buffer + i >= out + (out_of_place ? size : 0))
                assert_int_equal(out_buffer[i], GUARD);
        for (size_t i = 0; i < sizeof(in_buffer); i++)
            if (in_buffer + i < in || in_buffer + i >= in + size)
                assert_int_equal(in_buffer[i], GUARD);
        if (feed != CTR && want_tag)
            assert_memory_equal(tag, want_tag, 16);
    }
    tc_gcm_key_wipe(&key);
    for (size_t i = 0; i < sizeof(key); i++)
        assert_int_equal(((uint8_t *)&key)[i], 0);
}

/* GCM specification (McGrew, Viega), AES-256 test cases 13 to 16 (17 and 18
 * have nonces other than 96 bits, which the chunk API does not take). */
static void test_spec_vectors(void **state)
{
    (void)state;
    static const char *tc15_plain =
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    static const char *tc15_cipher =
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    static const struct {
        const char *key, *nonce, *aad, *tag;
        size_t size;
        bool zero_plaintext;
    } cases[] = {
        {"0000000000000000000000000000000000000000000000000000000000000000",
         "000000000000000000000000", "", "530f8afbc74536b9a963b4f1c4cb738b", 0, true},
        {"0000000000000000000000000000000000000000000000000000000000000000",
         "000000000000000000000000", "", "d0d1c8a799996bf0265b98b5d48ab919", 16, true},
        {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
         "cafebabefacedbaddecaf888", "", "b094dac5d93471bdec1a502270e3cc6c", 64, false},
        {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
         "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
         "76fc6ece0f4e1768cddf8853bb2d551b", 60, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[32], nonce[12], aad[20], plain[64] = {0}, cipher[64], tag[16];
        unhex(cases[i].key, key);
        unhex(cases[i].nonce, nonce);
        size_t aad_size = unhex(cases[i].aad, aad);
        unhex(cases[i].tag, tag);
        if (cases[i].zero_plaintext) {
            unhex("cea7403d4d606b6e074ec5d3baf39d18", cipher); /* test case 14 */
        } else {
            unhex(tc15_plain, plain);
            unhex(tc15_cipher, cipher);
        }
        for (int round = 0; round < 8; round++) /* different splits and alignments */
            check_all_feeds(key, nonce, aad, aad_size, plain, cipher, cases[i].size, tag);
    }
}

/* Whole 128-byte groups: one group (no stitching), three (the stitched loop
 * once), 8 and 32. Key and nonce of test case 15, with and without its AAD;
 * plaintext byte i is i * 37 + 11; the ciphertext is given by its SHA-256. */
static void test_long_vectors(void **state)
{
    (void)state;
    static const struct {
        size_t size;
        bool aad;
        const char *tag, *cipher_sha256;
    } cases[] = {
        {128, false, "38982cd32ac68d2692424141f248985e",
         "a04f1206afa06a065f1446c7e46bab4ed71d010c19d253c8b0b09fa288fd1ff0"},
        {128, true, "ee62d1b606e90f7372e3a77819d17887",
         "a04f1206afa06a065f1446c7e46bab4ed71d010c19d253c8b0b09fa288fd1ff0"},
        {384, true, "496618fcd4699c6bbe12da62a0b7f9d1",
         "aaf78502eee9b2f5934a104bffe6795d1f2db1c79e564894011e56467450015a"},
        {1024, false, "e20562d5ba427d288e815fe089224cf3",
         "570b11423cb4162fe899a0856ba3e8f31a108a3c1e1ea437ced00bc1ccf0cf6a"},
        {4096, true, "641d2ba45c85ea23ed754fb2c95e98bd",
         "518a73a8e798334f069f21bf22f8297eb7a731c286832f8eaef22d41ddd62c4c"},
    };
    uint8_t key[32], nonce[12], aad[20];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key);
    unhex("cafebabefacedbaddecaf888", nonce);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    static uint8_t plain[4096], cipher[4096];
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (uint8_t)(i * 37 + 11);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t size = cases[i].size, aad_size = cases[i].aad ? sizeof(aad) : 0;
        uint8_t tag[16], want_tag[16], digest[32], want_digest[32];
        unhex(cases[i].tag, want_tag);
        unhex(cases[i].cipher_sha256, want_digest);
        /* The ciphertext from one pass in one piece, then every feed. */
        struct tc_gcm_key k;
        struct tc_gcm_chunk chunk;
        tc_gcm_key_init(&k, key);
        tc_gcm_chunk_start(&k, &chunk, nonce, aad, aad_size);
        tc_gcm_chunk_encrypt(&k, &chunk, plain, cipher, size);
        tc_gcm_chunk_tag(&k, &chunk, tag);
        tc_gcm_key_wipe(&k);
        tc_sha256(cipher, size, digest);
        assert_memory_equal(digest, want_digest, 32);
        assert_memory_equal(tag, want_tag, 16);
        for (int round = 0; round < 8; round++)
            check_all_feeds(key, nonce, aad, aad_size, plain, cipher, size, want_tag);
    }
}

/* Every multiple of 16 up to 4 KiB and some odd tails against OpenSSL,
 * with random keys (so H takes both values of the bit its x^-1 multiple
 * depends on), nonces, AAD of any length, and data. */
static void test_random_against_openssl(void **state)
{
    (void)state;
    static const size_t odd[] = {1, 15, 17, 60, 127, 129, 1000, 4095, 4096 + 1, 4096 + 63};
    static uint8_t plain[MAX_SIZE], cipher[MAX_SIZE];
    size_t count = 4096 / 16 + 1 + sizeof(odd) / sizeof(odd[0]);
    for (size_t i = 0; i < count; i++) {
        size_t size = i <= 4096 / 16 ? 16 * i : odd[i - 4096 / 16 - 1];
        uint8_t key[32], nonce[12], aad[64], tag[16];
        size_t aad_size = rng() % (sizeof(aad) + 1);
        random_bytes(key, sizeof(key));
        random_bytes(nonce, sizeof(nonce));
        random_bytes(aad, aad_size);
        random_bytes(plain, size);
        openssl_gcm256(key, nonce, aad, aad_size, plain, size, cipher, tag);
        check_all_feeds(key, nonce, aad, aad_size, plain, cipher, size, tag);
    }
}

/* The tag changes with any flipped bit of the ciphertext or the AAD. */
static void test_tag_detects_changes(void **state)
{
    (void)state;
    static uint8_t cipher[1024];
    uint8_t key[32], nonce[12], aad[32], tag[16], want_tag[16];
    random_bytes(key, sizeof(key));
    random_bytes(nonce, sizeof(nonce));
    random_bytes(aad, sizeof(aad));
    random_bytes(cipher, sizeof(cipher));
    struct tc_gcm_key k;
    tc_gcm_key_init(&k, key);
    size_t pieces[1] = {sizeof(cipher)};
    run_chunk(&k, nonce, aad, sizeof(aad), GHASH, cipher, NULL, pieces, 1, want_tag);
    for (int i = 0; i < 64; i++) {
        size_t bit = rng() % (8 * sizeof(cipher));
        cipher[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        run_chunk(&k, nonce, aad, sizeof(aad), GHASH, cipher, NULL, pieces, 1, tag);
        assert_memory_not_equal(tag, want_tag, 16);
        cipher[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    aad[7] ^= 0x10;
    run_chunk(&k, nonce, aad, sizeof(aad), GHASH, cipher, NULL, pieces, 1, tag);
    assert_memory_not_equal(tag, want_tag, 16);
    aad[7] ^= 0x10;
    run_chunk(&k, nonce, aad, sizeof(aad), GHASH, cipher, NULL, pieces, 1, tag);
    assert_memory_equal(tag, want_tag, 16);
    tc_gcm_key_wipe(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vectors),
        cmocka_unit_test(test_long_vectors),
        cmocka_unit_test(test_random_against_openssl),
        cmocka_unit_test(test_tag_detects_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
