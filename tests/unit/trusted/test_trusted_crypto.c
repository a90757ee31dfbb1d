/* Known-answer and cross-implementation tests of the trusted crypto adapter
 * (src/trusted/crypto/crypto.c), compiled here for the host: AES-CMAC against
 * RFC 4493 (including the padded path no report MAC exercises), AES-GCM
 * against the GCM specification's test cases, the checkpoint engine's chunk
 * GCM (pieces, separate CTR and GHASH) against OpenSSL's AES-256-GCM, HMAC
 * against RFC 4231, and ECDSA/ECDH against OpenSSL through the host crypto
 * module. */
#include <errno.h>
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
#include "host/crypto/ecdsa.h"

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
    return n;
}

static void test_cmac_rfc4493(void **state)
{
    (void)state;
    static const char *message = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                                 "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    static const struct {
        size_t size;
        const char *mac;
    } cases[] = {
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    uint8_t key[16], m[64], want[16], mac[16];
    unhex("2b7e151628aed2a6abf7158809cf4f3c", key);
    unhex(message, m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unhex(cases[i].mac, want);
        tc_aes128_cmac(key, m, cases[i].size, mac);
        assert_memory_equal(mac, want, 16);
    }
}

/* GCM specification (McGrew, Viega), test cases 4 (AES-128) and 16 (AES-256). */
static void test_gcm_vectors(void **state)
{
    (void)state;
    static const char *plain = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                               "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    static const struct {
        const char *key, *cipher, *tag;
    } cases[] = {
        {"feffe9928665731c6d6a8f9467308308",
         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
         "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
         "5bc94fbc3221a5db94fae95ae7121a47"},
        {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
         "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
         "76fc6ece0f4e1768cddf8853bb2d551b"},
    };
    uint8_t iv[12], aad[20], p[60], c[60], data[60], tag[16], want_tag[16], key[32];
    unhex("cafebabefacedbaddecaf888", iv);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    unhex(plain, p);
    for (size_t i = 0; i < 2; i++) {
        size_t key_size = unhex(cases[i].key, key);
        unhex(cases[i].cipher, c);
        unhex(cases[i].tag, want_tag);
        memcpy(data, p, sizeof(p));
        assert_int_equal(tc_aes_gcm(key, key_size, iv, 12, aad, 20, data, 60, true, tag), 0);
        assert_memory_equal(data, c, 60);
        assert_memory_equal(tag, want_tag, 16);
        assert_int_equal(tc_aes_gcm(key, key_size, iv, 12, aad, 20, data, 60, false, tag), 0);
        assert_memory_equal(data, p, 60);
        /* A flipped bit in ciphertext, AAD or tag is refused. */
        memcpy(data, c, 60);
        data[7] ^= 1;
        assert_int_equal(tc_aes_gcm(key, key_size, iv, 12, aad, 20, data, 60, false, tag),
                         -EBADMSG);
        memcpy(data, c, 60);
        aad[0] ^= 1;
        assert_int_equal(tc_aes_gcm(key, key_size, iv, 12, aad, 20, data, 60, false, tag),
                         -EBADMSG);
        aad[0] ^= 1;
        tag[15] ^= 1;
        memcpy(data, c, 60);
        assert_int_equal(tc_aes_gcm(key, key_size, iv, 12, aad, 20, data, 60, false, tag),
                         -EBADMSG);
    }
}

/* OpenSSL's one-shot AES-256-GCM encryption: the reference. */
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

/* Feeds `data` to `fn` in pieces of the given sizes (multiples of 16; the
 * remainder goes last), the way the engine walks runs. */
static void in_pieces(void (*fn)(const struct tc_gcm_key *, struct tc_gcm_chunk *, void *, size_t),
                      const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, uint8_t *data,
                      size_t size, const size_t *pieces, size_t piece_count)
{
    size_t done = 0;
    for (size_t i = 0; i < piece_count && done < size; i++) {
        size_t n = pieces[i] < size - done ? pieces[i] : size - done;
        fn(key, chunk, data + done, n);
        done += n;
    }
    if (done < size)
        fn(key, chunk, data + done, size - done);
}

static void ghash_piece(const struct tc_gcm_key *key, struct tc_gcm_chunk *chunk, void *data,
                        size_t size)
{
    tc_gcm_chunk_ghash(key, chunk, data, size);
}

/* The chunk API produces OpenSSL's ciphertext and tag for any split into
 * 16-byte multiples, sizes with a partial last block included, and its
 * verify-then-decrypt order refuses any flipped bit. */
static void test_gcm_chunks_against_openssl(void **state)
{
    (void)state;
    uint8_t k[32], nonce[12], aad[32];
    for (size_t i = 0; i < 32; i++) {
        k[i] = (uint8_t)(i * 29 + 7);
        aad[i] = (uint8_t)(255 - i * 3);
    }
    memcpy(nonce, "ckpt-id!", 8);
    static const size_t sizes[] = {0, 16, 4096, 4096 * 3 + 48, 65536, 1000, 70001};
    static const size_t pieces[][4] = {
        {16, 16, 16, 16},
        {4096, 16384, 32, 48},
        {65536, 0, 0, 0},
        {48, 4096, 4000 + 96, 16},
    };
    struct tc_gcm_key key;
    tc_gcm_key_init(&key, k);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t size = sizes[s];
        uint8_t *plain = malloc(size + 1), *want = malloc(size + 1), *data = malloc(size + 1);
        for (size_t i = 0; i < size; i++)
            plain[i] = (uint8_t)(i * 131 + s);
        uint8_t want_tag[16], tag[16];
        nonce[8] = 0, nonce[9] = 0, nonce[10] = (uint8_t)(s >> 8), nonce[11] = (uint8_t)s;
        openssl_gcm256(k, nonce, aad, sizeof(aad), plain, size, want, want_tag);
        for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
            struct tc_gcm_chunk chunk;
            /* Export: CTR then GHASH of each piece. */
            memcpy(data, plain, size);
            tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
            size_t done = 0;
            for (size_t i = 0; done < size; i++) {
                size_t n = i < 4 && pieces[p][i] ? pieces[p][i] : size - done;
                if (n > size - done)
                    n = size - done;
                tc_gcm_chunk_ctr(&key, &chunk, data + done, n);
                tc_gcm_chunk_ghash(&key, &chunk, data + done, n);
                done += n;
            }
            tc_gcm_chunk_tag(&key, &chunk, tag);
            assert_memory_equal(data, want, size);
            assert_memory_equal(tag, want_tag, 16);

            /* Import: GHASH all, compare, then CTR all. */
            tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
            in_pieces(ghash_piece, &key, &chunk, data, size, pieces[p], 4);
            tc_gcm_chunk_tag(&key, &chunk, tag);
            assert_memory_equal(tag, want_tag, 16);
            tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
            in_pieces(tc_gcm_chunk_ctr, &key, &chunk, data, size, pieces[p], 4);
            assert_memory_equal(data, plain, size);
        }
        /* Any flipped ciphertext or AAD bit changes the tag. */
        for (size_t bit = 0; bit < 8 * size; bit += 8 * size / 5 + 13) {
            struct tc_gcm_chunk chunk;
            want[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
            tc_gcm_chunk_ghash(&key, &chunk, want, size);
            tc_gcm_chunk_tag(&key, &chunk, tag);
            assert_memory_not_equal(tag, want_tag, 16);
            want[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        struct tc_gcm_chunk chunk;
        aad[5] ^= 0x20;
        tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
        tc_gcm_chunk_ghash(&key, &chunk, want, size);
        tc_gcm_chunk_tag(&key, &chunk, tag);
        assert_memory_not_equal(tag, want_tag, 16);
        aad[5] ^= 0x20;
        free(plain);
        free(want);
        free(data);
    }
    tc_gcm_key_wipe(&key);
    for (size_t i = 0; i < sizeof(key); i++)
        assert_int_equal(((uint8_t *)&key)[i], 0);
}

/* GCM specification test case 16 (AES-256, 20-byte AAD, 60 bytes) through
 * the chunk API: the AAD's zero padding and a partial last block. */
static void test_gcm_chunk_spec_vector(void **state)
{
    (void)state;
    uint8_t k[32], nonce[12], aad[20], data[64], want[60], want_tag[16], tag[16];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", k);
    unhex("cafebabefacedbaddecaf888", nonce);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          data);
    unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
          want);
    unhex("76fc6ece0f4e1768cddf8853bb2d551b", want_tag);
    struct tc_gcm_key key;
    struct tc_gcm_chunk chunk;
    tc_gcm_key_init(&key, k);
    tc_gcm_chunk_start(&key, &chunk, nonce, aad, sizeof(aad));
    tc_gcm_chunk_ctr(&key, &chunk, data, 32);
    tc_gcm_chunk_ctr(&key, &chunk, data + 32, 28);
    tc_gcm_chunk_ghash(&key, &chunk, data, 48);
    tc_gcm_chunk_ghash(&key, &chunk, data + 48, 12);
    tc_gcm_chunk_tag(&key, &chunk, tag);
    assert_memory_equal(data, want, 60);
    assert_memory_equal(tag, want_tag, 16);
    tc_gcm_key_wipe(&key);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    static const char data[] = "what do ya want for nothing?";
    uint8_t mac[32], want[32];
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want);
    tc_hmac_sha256("Jefe", 4, data, strlen(data), mac);
    assert_memory_equal(mac, want, 32);
}

static void test_ecdsa_and_ecdh_against_openssl(void **state)
{
    (void)state;
    uint8_t drbg[TC_DRBG_SIZE], seed[48] = {1, 2, 3};
    tc_drbg_init(drbg, seed, sizeof(seed));
    uint8_t a_priv[32], a_pub[65], b_priv[32], b_pub[65];
    assert_int_equal(tc_p256_keygen(drbg, a_priv, a_pub), 0);
    assert_int_equal(tc_p256_keygen(drbg, b_priv, b_pub), 0);
    assert_memory_not_equal(a_priv, b_priv, 32);

    /* BearSSL signs, OpenSSL verifies. */
    static const char msg[] = "signed inside an enclave";
    uint8_t hash[32], sig[64];
    tc_sha256(msg, strlen(msg), hash);
    assert_int_equal(tc_p256_sign(a_priv, hash, sig), 0);
    assert_true(spm_ec_verify(a_pub + 1, msg, strlen(msg), sig));
    assert_false(spm_ec_verify(b_pub + 1, msg, strlen(msg), sig));

    /* OpenSSL signs, BearSSL verifies. */
    struct spm_ec_key *key;
    uint8_t xy[64], pub[65], sig2[64];
    assert_int_equal(spm_ec_key_generate(&key), 0);
    assert_int_equal(spm_ec_key_public(key, xy), 0);
    assert_int_equal(spm_ec_sign(key, msg, strlen(msg), sig2), 0);
    spm_ec_key_free(key);
    pub[0] = 4;
    memcpy(pub + 1, xy, 64);
    assert_true(tc_p256_verify(pub, hash, sig2));
    sig2[10] ^= 1;
    assert_false(tc_p256_verify(pub, hash, sig2));

    /* ECDH agrees both ways; a point off the curve is refused. */
    uint8_t s1[32], s2[32];
    assert_int_equal(tc_p256_ecdh(a_priv, b_pub, s1), 0);
    assert_int_equal(tc_p256_ecdh(b_priv, a_pub, s2), 0);
    assert_memory_equal(s1, s2, 32);
    uint8_t bad[65];
    memcpy(bad, b_pub, 65);
    bad[64] ^= 1;
    assert_int_equal(tc_p256_ecdh(a_priv, bad, s1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmac_rfc4493),
        cmocka_unit_test(test_gcm_vectors),
        cmocka_unit_test(test_gcm_chunks_against_openssl),
        cmocka_unit_test(test_gcm_chunk_spec_vector),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_ecdsa_and_ecdh_against_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
