/* `spm sign`: the enclave author's step. Turns a freestanding static-PIE into
 * a signed enclave image: chooses the layout config, measures, signs with the
 * author key and prints the identity (MRENCLAVE, MRSIGNER) that attestation
 * verifiers will pin. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "host/common/fileio.h"
#include "host/image/image.h"

#define DEFAULT_HEAP_SIZE       (16ull << 20)
#define DEFAULT_STACK_SIZE      (256ull << 10)
#define DEFAULT_TCS_COUNT       4u
#define DEFAULT_SSA_FRAME_PAGES 1u
#define DEFAULT_SSA_FRAME_COUNT 2u

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spm sign --key KEY.pem --in ENCLAVE.elf --out ENCLAVE.signed [options]\n\n"
            "Lays the enclave out in ELRANGE, computes MRENCLAVE and writes a SIGSTRUCT\n"
            "signed with KEY.pem into the image's .spm_meta section.\n\n"
            "options:\n"
            "  --isvprodid N     ISVPRODID, 0..65535 (default 0)\n"
            "  --isvsvn N        ISVSVN, 0..65535 (default 0)\n"
            "  --debug           make a DEBUG enclave (its memory is readable by the host)\n"
            "  --tcs N           threads that may be inside at once, 1..256 (default 4)\n"
            "  --heap SIZE       heap size (default 16M)\n"
            "  --stack SIZE      stack size per thread (default 256K)\n"
            "  --elrange SIZE    ELRANGE size, a power of two (default: the smallest that fits)\n"
            "  --ssa-frames N    SSA frames per thread, 1..8 (default 2)\n\n"
            "SIZE is a number of bytes with an optional K, M or G suffix (powers of 1024).\n");
}

/* Parses an unsigned decimal (or 0x hex) number with an optional K/M/G
 * suffix; false on garbage or overflow. */
static bool parse_size(const char *s, bool allow_suffix, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    unsigned shift = 0;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            return false;
        }
        end++;
    }
    if (*end)
        return false;
    if (shift && value > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)value << shift;
    return true;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    return parse_size(s, false, out) && *out <= max;
}

/* Exit codes: 0 ok, 1 failure, 2 usage. */
int spm_cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *in = NULL, *out = NULL;
    struct spm_enclave_config config = {
        .heap_size = DEFAULT_HEAP_SIZE,
        .stack_size = DEFAULT_STACK_SIZE,
        .elrange_size = 0,
        .tcs_count = DEFAULT_TCS_COUNT,
        .ssa_frame_pages = DEFAULT_SSA_FRAME_PAGES,
        .ssa_frame_count = DEFAULT_SSA_FRAME_COUNT,
        .attributes_flags = SGX_FLAGS_MODE64BIT,
        .attributes_xfrm = SGX_XFRM_LEGACY,
    };

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (spm_cli_is_help(arg, false)) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--debug") == 0) {
            config.attributes_flags |= SGX_FLAGS_DEBUG;
            continue;
        }
        /* Every other option takes a value: --opt VALUE or --opt=VALUE. */
        const char *value = NULL;
        char name[32];
        const char *eq = strchr(arg, '=');
        if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof(name)) {
            memcpy(name, arg, (size_t)(eq - arg));
            name[eq - arg] = 0;
            value = eq + 1;
        } else if (strlen(arg) < sizeof(name)) {
            strcpy(name, arg);
            if (i + 1 < argc)
                value = argv[++i];
        } else {
            fprintf(stderr, "spm sign: unknown argument '%s'\n\n", arg);
            usage(stderr);
            return 2;
        }
        uint64_t n = 0;
        bool ok = value != NULL;
        if (strcmp(name, "--key") == 0) {
            key = value;
        } else if (strcmp(name, "--in") == 0) {
            in = value;
        } else if (strcmp(name, "--out") == 0) {
            out = value;
        } else if (strcmp(name, "--isvprodid") == 0) {
            ok = ok && parse_uint(value, UINT16_MAX, &n);
            config.isv_prod_id = (uint16_t)n;
        } else if (strcmp(name, "--isvsvn") == 0) {
            ok = ok && parse_uint(value, UINT16_MAX, &n);
            config.isv_svn = (uint16_t)n;
        } else if (strcmp(name, "--tcs") == 0) {
            ok = ok && parse_uint(value, 256, &n) && n >= 1;
            config.tcs_count = (uint32_t)n;
        } else if (strcmp(name, "--ssa-frames") == 0) {
            ok = ok && parse_uint(value, 8, &n) && n >= 1;
            config.ssa_frame_count = (uint32_t)n;
        } else if (strcmp(name, "--heap") == 0) {
            ok = ok && parse_size(value, true, &n);
            config.heap_size = n;
        } else if (strcmp(name, "--stack") == 0) {
            ok = ok && parse_size(value, true, &n);
            config.stack_size = n;
        } else if (strcmp(name, "--elrange") == 0) {
            ok = ok && parse_size(value, true, &n);
            config.elrange_size = n;
        } else {
            fprintf(stderr, "spm sign: unknown argument '%s'\n\n", name);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            if (!value)
                fprintf(stderr, "spm sign: %s needs a value\n", name);
            else
                fprintf(stderr, "spm sign: bad value '%s' for %s (see --help for the range)\n",
                        value, name);
            return 2;
        }
    }
    if (!key || !in || !out || !*key || !*in || !*out) {
        fprintf(stderr, "spm sign: --key, --in and --out are all required\n\n");
        usage(stderr);
        return 2;
    }

    int ret = spm_image_sign(in, key, &config, out);
    if (ret < 0) {
        fprintf(stderr, "spm sign: cannot sign %s with %s: %s\n", in, key,
                ret == -EINVAL ? "refused (see the reason above)" : strerror(-ret));
        return 1;
    }

    /* Read back what was written, through the loader's own checks. */
    struct spm_elf_image img;
    struct spm_layout layout;
    uint8_t mrenclave[32], mrsigner[32];
    char hex[65];
    ret = spm_image_open_signed(out, &img, &layout, mrenclave, mrsigner);
    if (ret < 0) {
        fprintf(stderr, "spm sign: %s was written but does not verify: %s\n", out, strerror(-ret));
        return 1;
    }
    printf("signed %s -> %s (%s, ELRANGE %#" PRIx64 ")\n", in, out,
           (config.attributes_flags & SGX_FLAGS_DEBUG) ? "DEBUG" : "production",
           layout.info.elrange_size);
    spm_hex(mrenclave, 32, hex);
    printf("MRENCLAVE %s\n", hex);
    spm_hex(mrsigner, 32, hex);
    printf("MRSIGNER  %s\n", hex);
    spm_elf_free(&img);
    return 0;
}
