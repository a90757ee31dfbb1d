/* ELF validation: the linker-built enclave fixture is accepted, and each
 * refusal the spec lists is reached with its own reason, either from a
 * real hosted binary (DT_NEEDED, PT_INTERP) or by changing one field of the
 * valid fixture or of a synthetic ELF. Also: every truncation and random
 * corruption is refused or accepted without a crash (run under the
 * 'sanitize' option to make that mean something).
 * argv: enclave fixture, hosted shared library, hosted executable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/image/image.h"
#include "test_util.h"

static const char *g_enclave_path, *g_hosted_lib_path, *g_hosted_exe_path;

struct fixture {
    uint8_t *file;
    size_t size;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->file = tu_read(g_enclave_path, &f->size);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->file);
    free(f);
    return 0;
}

/* A private copy of the fixture to mutate. */
static uint8_t *copy(const struct fixture *f)
{
    uint8_t *c = malloc(f->size);
    assert_non_null(c);
    memcpy(c, f->file, f->size);
    return c;
}

static Elf64_Phdr *load_with(uint8_t *file, uint32_t want, uint32_t reject)
{
    for (unsigned i = 0; i < tu_phnum(file); i++) {
        Elf64_Phdr *ph = tu_phdr(file, i);
        if (ph->p_type == PT_LOAD && (ph->p_flags & want) == want && !(ph->p_flags & reject))
            return ph;
    }
    fail_msg("fixture has no such PT_LOAD");
    return NULL;
}

static Elf64_Rela *first_rela(uint8_t *file)
{
    Elf64_Dyn *rela = tu_dynamic_entry(file, DT_RELA);
    return (Elf64_Rela *)(file + tu_vaddr_to_offset(file, rela->d_un.d_ptr));
}

static void test_valid_fixture(void **state)
{
    struct fixture *f = *state;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_load(g_enclave_path, &img), 0);
    assert_true(img.segment_count >= 3);
    assert_int_equal(img.segments[0].vaddr, 0);
    assert_int_equal(img.file_size, f->size);
    assert_int_equal(img.image_size % 4096, 0);
    assert_true(img.image_size > 0);
    assert_int_equal(img.entry, ((Elf64_Ehdr *)f->file)->e_entry);
    Elf64_Shdr *meta = tu_section(f->file, ".spm_meta");
    assert_int_equal(img.meta_offset, meta->sh_offset);
    assert_int_equal(img.meta.magic, 0); /* unsigned */
    bool rw = false, rx = false;
    for (uint32_t i = 0; i < img.segment_count; i++) {
        rw |= img.segments[i].flags == (PF_R | PF_W);
        rx |= img.segments[i].flags == (PF_R | PF_X);
    }
    assert_true(rw && rx);
    /* The fixture does have RELATIVE relocations, so they were checked. */
    assert_true(tu_dynamic_entry(f->file, DT_RELASZ)->d_un.d_val >= 3 * sizeof(Elf64_Rela));
    spm_elf_free(&img);
    assert_null(img.file);

    /* spm_elf_parse copies: the caller's buffer may go away. */
    uint8_t *c = copy(f);
    assert_int_equal(spm_elf_parse(c, f->size, &img), 0);
    memset(c, 0, f->size);
    free(c);
    assert_memory_equal(img.file, f->file, f->size);
    spm_elf_free(&img);
}

static void test_hosted_binaries_refused(void **state)
{
    (void)state;
    size_t size;
    uint8_t *lib = tu_read(g_hosted_lib_path, &size);
    tu_expect_refusal(lib, size, "DT_NEEDED");
    free(lib);
    uint8_t *exe = tu_read(g_hosted_exe_path, &size);
    tu_expect_refusal(exe, size, "PT_INTERP");
    free(exe);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct spm_elf_image img;
    tu_capture_begin();
    int ret = spm_elf_load("/nonexistent/enclave.elf", &img);
    free(tu_capture_end());
    assert_int_equal(ret, -ENOENT);
}

static void test_header_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)c;

    eh->e_type = ET_EXEC;
    tu_expect_refusal(c, f->size, "not ET_DYN");
    eh->e_type = ET_DYN;
    eh->e_machine = EM_386;
    tu_expect_refusal(c, f->size, "not x86-64");
    eh->e_machine = EM_X86_64;
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    tu_expect_refusal(c, f->size, "ELF64");
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[0] = 0;
    tu_expect_refusal(c, f->size, "no ELF magic");
    eh->e_ident[0] = ELFMAG0;
    eh->e_phoff = f->size - 8;
    tu_expect_refusal(c, f->size, "program headers");
    eh->e_phoff = UINT64_MAX - 8; /* wraps if added naively */
    tu_expect_refusal(c, f->size, "program headers");
    memcpy(c, f->file, f->size);
    eh->e_entry = load_with(c, PF_W, 0)->p_vaddr;
    tu_expect_refusal(c, f->size, "entry point");
    free(c);
}

static void test_segment_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);

    load_with(c, PF_R | PF_W, 0)->p_flags |= PF_X;
    tu_expect_refusal(c, f->size, "W+X");

    memcpy(c, f->file, f->size);
    load_with(c, PF_R | PF_X, 0)->p_vaddr += 0x10;
    tu_expect_refusal(c, f->size, "not page-aligned");

    memcpy(c, f->file, f->size);
    tu_phdr(c, 0)->p_vaddr = 0x1000; /* still congruent with offset 0 */
    tu_expect_refusal(c, f->size, "first PT_LOAD");

    memcpy(c, f->file, f->size);
    Elf64_Phdr *data = load_with(c, PF_W, 0);
    data->p_filesz = f->size; /* past the end of the file */
    tu_expect_refusal(c, f->size, "past the end of the file");
    data->p_filesz = UINT64_MAX - data->p_offset + 1; /* offset + size wraps to 0 */
    tu_expect_refusal(c, f->size, "past the end of the file");

    memcpy(c, f->file, f->size);
    data = load_with(c, PF_W, 0);
    data->p_memsz = UINT64_MAX - data->p_vaddr + 1;
    tu_expect_refusal(c, f->size, "64 GiB");

    memcpy(c, f->file, f->size);
    load_with(c, PF_R | PF_X, 0)->p_vaddr = 0; /* overlaps the first */
    load_with(c, PF_R | PF_X, 0)->p_offset = 0;
    tu_expect_refusal(c, f->size, "overlaps or precedes");

    memcpy(c, f->file, f->size);
    load_with(c, PF_W, 0)->p_flags = PF_W;
    tu_expect_refusal(c, f->size, "not readable");
    free(c);
}

static void test_segment_count_limit(void **state)
{
    (void)state;
    struct tu_segment segs[SPM_ELF_MAX_SEGMENTS + 1];
    for (unsigned i = 0; i <= SPM_ELF_MAX_SEGMENTS; i++)
        segs[i] = (struct tu_segment){.vaddr = 0x1000ull * i,
                                      .offset = 0x1000ull * i,
                                      .filesz = 0x1000,
                                      .memsz = 0x1000,
                                      .flags = PF_R | (i == 0 ? PF_X : 0)};
    size_t size;
    uint8_t *file = tu_build_elf(segs, SPM_ELF_MAX_SEGMENTS + 1, 0x100, &size);
    tu_expect_refusal(file, size, "more than 16 PT_LOAD");
    free(file);

    file = tu_build_elf(segs, SPM_ELF_MAX_SEGMENTS, 0x100, &size);
    struct spm_elf_image img;
    assert_int_equal(spm_elf_parse(file, size, &img), 0);
    assert_int_equal(img.segment_count, SPM_ELF_MAX_SEGMENTS);
    spm_elf_free(&img);
    free(file);
}

static void test_shared_page_wx_refused(void **state)
{
    (void)state;
    /* Neither segment is W+X, but the page they share would be. */
    const struct tu_segment segs[] = {
        {.vaddr = 0, .offset = 0, .filesz = 0x1800, .memsz = 0x1800, .flags = PF_R | PF_X},
        {.vaddr = 0x1900, .offset = 0x1900, .filesz = 0x100, .memsz = 0x100, .flags = PF_R | PF_W},
    };
    size_t size;
    uint8_t *file = tu_build_elf(segs, 2, 0x100, &size);
    tu_expect_refusal(file, size, "shared by a writable and an executable");
    free(file);
}

static void test_dynamic_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);
    /* DT_DEBUG is harmless; each case turns it into something that is not. */
    static const struct {
        int64_t tag;
        uint64_t value;
        const char *reason;
    } cases[] = {
        {DT_NEEDED, 1, "DT_NEEDED"},
        {DT_REL, 0x268, "DT_REL"},
        {DT_RELSZ, 24, "DT_REL"},
        {DT_TEXTREL, 0, "DT_TEXTREL"},
        {DT_FLAGS, DF_TEXTREL, "DF_TEXTREL"},
        {DT_PLTRELSZ, 24, "PLT relocations"},
        {36 /* DT_RELR */, 0x268, "DT_RELR"},
        {DT_RELA, 0x268, "more than one DT_RELA"},
        {DT_NULL, 0, NULL},
    };
    for (size_t i = 0; cases[i].reason; i++) {
        memcpy(c, f->file, f->size);
        Elf64_Dyn *d = tu_dynamic_entry(c, DT_DEBUG);
        d->d_tag = cases[i].tag;
        d->d_un.d_val = cases[i].value;
        tu_expect_refusal(c, f->size, cases[i].reason);
    }

    /* A DT_JMPREL with DT_PLTRELSZ 0 describes nothing: accepted. */
    memcpy(c, f->file, f->size);
    Elf64_Dyn *d = tu_dynamic_entry(c, DT_DEBUG);
    d->d_tag = DT_JMPREL;
    d->d_un.d_ptr = 0x268;
    struct spm_elf_image img;
    assert_int_equal(spm_elf_parse(c, f->size, &img), 0);
    spm_elf_free(&img);

    memcpy(c, f->file, f->size);
    tu_dynamic_entry(c, DT_RELAENT)->d_un.d_val = 16;
    tu_expect_refusal(c, f->size, "DT_RELAENT");
    memcpy(c, f->file, f->size);
    tu_dynamic_entry(c, DT_RELASZ)->d_un.d_val += 1;
    tu_expect_refusal(c, f->size, "not a multiple");
    memcpy(c, f->file, f->size);
    tu_dynamic_entry(c, DT_RELASZ)->d_un.d_val = 24ull << 36;
    tu_expect_refusal(c, f->size, "not inside a PT_LOAD");
    memcpy(c, f->file, f->size);
    tu_dynamic_entry(c, DT_RELA)->d_un.d_ptr = UINT64_MAX - 8;
    tu_expect_refusal(c, f->size, "not inside a PT_LOAD");

    /* No DT_NULL within PT_DYNAMIC. */
    memcpy(c, f->file, f->size);
    for (unsigned i = 0; i < tu_phnum(c); i++) {
        Elf64_Phdr *ph = tu_phdr(c, i);
        if (ph->p_type != PT_DYNAMIC)
            continue;
        Elf64_Dyn *dyn = (Elf64_Dyn *)(c + ph->p_offset);
        for (uint64_t k = 0; k < ph->p_filesz / sizeof(*dyn); k++)
            if (dyn[k].d_tag == DT_NULL)
                dyn[k].d_tag = DT_DEBUG;
    }
    tu_expect_refusal(c, f->size, "DT_NULL");
    free(c);
}

static void test_relocation_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);

    Elf64_Rela *r = first_rela(c);
    r->r_info = ELF64_R_INFO(0, R_X86_64_64);
    tu_expect_refusal(c, f->size, "R_X86_64_64");

    memcpy(c, f->file, f->size);
    first_rela(c)->r_info = ELF64_R_INFO(0, R_X86_64_JUMP_SLOT);
    tu_expect_refusal(c, f->size, "only R_X86_64_RELATIVE");

    memcpy(c, f->file, f->size);
    first_rela(c)->r_info = ELF64_R_INFO(1, R_X86_64_RELATIVE);
    tu_expect_refusal(c, f->size, "names a symbol");

    /* A target in text, in read-only data, and one straddling the end of
     * the writable segment. */
    memcpy(c, f->file, f->size);
    first_rela(c)->r_offset = ((Elf64_Ehdr *)c)->e_entry;
    tu_expect_refusal(c, f->size, "outside every writable PT_LOAD");
    memcpy(c, f->file, f->size);
    first_rela(c)->r_offset = 0;
    tu_expect_refusal(c, f->size, "outside every writable PT_LOAD");
    memcpy(c, f->file, f->size);
    Elf64_Phdr *data = load_with(c, PF_W, 0);
    first_rela(c)->r_offset = data->p_vaddr + data->p_memsz - 4;
    tu_expect_refusal(c, f->size, "outside every writable PT_LOAD");
    memcpy(c, f->file, f->size);
    first_rela(c)->r_offset = UINT64_MAX - 3;
    tu_expect_refusal(c, f->size, "outside every writable PT_LOAD");

    /* Rewriting the dynamic section at run time. */
    memcpy(c, f->file, f->size);
    for (unsigned i = 0; i < tu_phnum(c); i++)
        if (tu_phdr(c, i)->p_type == PT_DYNAMIC)
            first_rela(c)->r_offset = tu_phdr(c, i)->p_vaddr + 16;
    tu_expect_refusal(c, f->size, "dynamic section");
    free(c);
}

static void test_meta_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);

    /* Renamed: no .spm_meta at all. */
    Elf64_Ehdr *eh = (Elf64_Ehdr *)c;
    Elf64_Shdr *sh = (Elf64_Shdr *)(c + eh->e_shoff);
    char *name = (char *)c + sh[eh->e_shstrndx].sh_offset + tu_section(c, ".spm_meta")->sh_name;
    name[8] = 'x';
    tu_expect_refusal(c, f->size, "no .spm_meta section");

    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_size = 4095;
    tu_expect_refusal(c, f->size, "is 4095 bytes");
    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_size = 8192;
    tu_expect_refusal(c, f->size, "is 8192 bytes");

    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_offset = f->size - 100;
    tu_expect_refusal(c, f->size, "past the end");

    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_offset = load_with(c, PF_X, 0)->p_offset;
    tu_expect_refusal(c, f->size, "overlaps the file bytes of PT_LOAD");

    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_flags |= SHF_ALLOC;
    tu_expect_refusal(c, f->size, "non-allocated");

    /* Two sections named .spm_meta. */
    memcpy(c, f->file, f->size);
    uint32_t meta_name = tu_section(c, ".spm_meta")->sh_name;
    tu_section(c, ".comment")->sh_name = meta_name;
    tu_expect_refusal(c, f->size, "two .spm_meta");

    /* No section headers; section names out of bounds. */
    memcpy(c, f->file, f->size);
    ((Elf64_Ehdr *)c)->e_shnum = 0;
    tu_expect_refusal(c, f->size, "no section headers");
    memcpy(c, f->file, f->size);
    ((Elf64_Ehdr *)c)->e_shstrndx = 0xfff0;
    tu_expect_refusal(c, f->size, "section name table");
    memcpy(c, f->file, f->size);
    eh = (Elf64_Ehdr *)c;
    sh = (Elf64_Shdr *)(c + eh->e_shoff);
    sh[eh->e_shstrndx].sh_size = UINT64_MAX;
    tu_expect_refusal(c, f->size, "section name table");
    memcpy(c, f->file, f->size);
    tu_section(c, ".spm_meta")->sh_name = 0xfffffff0u; /* now simply not found */
    tu_expect_refusal(c, f->size, "no .spm_meta");
    free(c);
}

static void test_every_truncation_refused(void **state)
{
    struct fixture *f = *state;
    for (size_t len = 0; len < f->size; len++) {
        struct spm_elf_image img;
        tu_capture_begin();
        int ret = spm_elf_parse(f->file, len, &img);
        free(tu_capture_end());
        if (ret != -EINVAL)
            fail_msg("truncation to %zu of %zu bytes: got %d", len, f->size, ret);
    }
}

/* Not a proof, a smoke test for the fuzzer to come: random corruption of
 * the headers never crashes the parser, and an accepted result is sane. */
static void test_random_corruption(void **state)
{
    struct fixture *f = *state;
    uint8_t *c = copy(f);
    srand(12345);
    unsigned accepted = 0;
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f->file;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(c, f->file, f->size);
        int flips = 1 + rand() % 4;
        for (int k = 0; k < flips; k++) {
            size_t pos;
            switch (rand() % 3) {
            case 0: /* ELF and program headers */
                pos = (size_t)rand() % (64 + tu_phnum(f->file) * sizeof(Elf64_Phdr));
                break;
            case 1: /* section headers */
                pos = eh->e_shoff + (size_t)rand() % (eh->e_shnum * sizeof(Elf64_Shdr));
                break;
            default: /* anywhere below 4 KiB: dynamic, relocations */
                pos = (size_t)rand() % (f->size < 0x3000 ? f->size : 0x3000);
                break;
            }
            c[pos] ^= (uint8_t)(1u << (rand() % 8));
        }
        size_t len = rand() % 8 ? f->size : (size_t)rand() % f->size;
        struct spm_elf_image img;
        tu_capture_begin();
        int ret = spm_elf_parse(c, len, &img);
        free(tu_capture_end());
        assert_true(ret == 0 || ret == -EINVAL);
        if (ret == 0) {
            accepted++;
            assert_true(img.segment_count >= 1 && img.segment_count <= SPM_ELF_MAX_SEGMENTS);
            assert_true(img.meta_offset + SPM_META_SECTION_SIZE <= len);
            assert_true(img.image_size > 0 && img.image_size % 4096 == 0);
            spm_elf_free(&img);
        }
    }
    printf("# random corruption: %u of 20000 variants still accepted\n", accepted);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s ENCLAVE_FIXTURE HOSTED_LIB HOSTED_EXE\n", argv[0]);
        return 2;
    }
    g_enclave_path = argv[1];
    g_hosted_lib_path = argv[2];
    g_hosted_exe_path = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_fixture),
        cmocka_unit_test(test_hosted_binaries_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_segment_refusals),
        cmocka_unit_test(test_segment_count_limit),
        cmocka_unit_test(test_shared_page_wx_refused),
        cmocka_unit_test(test_dynamic_refusals),
        cmocka_unit_test(test_relocation_refusals),
        cmocka_unit_test(test_meta_refusals),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
