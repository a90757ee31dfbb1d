/* See test_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/image/image.h"

uint8_t *tu_read(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

void tu_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = malloc(4096);
    assert_non_null(tmpl);
    snprintf(tmpl, 4096, "%s/spm-image-test-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

void tu_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(tu_path(dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[4][4096];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

static int g_saved_stderr = -1;
static FILE *g_capture;

void tu_capture_begin(void)
{
    fflush(stderr);
    g_capture = tmpfile();
    assert_non_null(g_capture);
    g_saved_stderr = dup(2);
    assert_true(g_saved_stderr >= 0);
    assert_true(dup2(fileno(g_capture), 2) >= 0);
}

char *tu_capture_end(void)
{
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    long n = ftell(g_capture);
    char *out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    assert_non_null(out);
    rewind(g_capture);
    if (n > 0)
        assert_int_equal(fread(out, 1, (size_t)n, g_capture), (size_t)n);
    fclose(g_capture);
    return out;
}

void tu_expect_refusal(const uint8_t *data, size_t size, const char *reason)
{
    struct spm_elf_image img;
    tu_capture_begin();
    int ret = spm_elf_parse(data, size, &img);
    char *log = tu_capture_end();
    if (ret != -EINVAL || !strstr(log, reason)) {
        if (ret == 0)
            spm_elf_free(&img);
        fail_msg("expected a refusal mentioning '%s', got %d with log:\n%s", reason, ret, log);
    }
    free(log);
    assert_null(img.file);
}

uint8_t *tu_build_elf(const struct tu_segment *segments, unsigned count, uint64_t entry,
                      size_t *size)
{
    static const char names[] = "\0.shstrtab\0.spm_meta\0";
    uint64_t end = sizeof(Elf64_Ehdr) + count * sizeof(Elf64_Phdr);
    for (unsigned i = 0; i < count; i++)
        if (segments[i].offset + segments[i].filesz > end)
            end = segments[i].offset + segments[i].filesz;
    uint64_t meta_off = end, names_off = meta_off + SPM_META_SECTION_SIZE;
    uint64_t sh_off = (names_off + sizeof(names) + 7) & ~7ull;
    uint64_t total = sh_off + 3 * sizeof(Elf64_Shdr);

    uint8_t *f = malloc(total);
    assert_non_null(f);
    memset(f, 0xA5, total);
    Elf64_Ehdr eh = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
        .e_type = ET_DYN,
        .e_machine = EM_X86_64,
        .e_version = EV_CURRENT,
        .e_entry = entry,
        .e_phoff = sizeof(Elf64_Ehdr),
        .e_shoff = sh_off,
        .e_ehsize = sizeof(Elf64_Ehdr),
        .e_phentsize = sizeof(Elf64_Phdr),
        .e_phnum = (uint16_t)count,
        .e_shentsize = sizeof(Elf64_Shdr),
        .e_shnum = 3,
        .e_shstrndx = 1,
    };
    for (unsigned i = 0; i < count; i++) {
        const struct tu_segment *s = &segments[i];
        for (uint64_t b = 0; b < s->filesz; b++)
            f[s->offset + b] = (uint8_t)(b * 7 + i);
    }
    /* Headers last: a segment at file offset 0 includes them, like ld's. */
    memcpy(f, &eh, sizeof(eh));
    for (unsigned i = 0; i < count; i++) {
        Elf64_Phdr ph = {
            .p_type = PT_LOAD,
            .p_flags = segments[i].flags,
            .p_offset = segments[i].offset,
            .p_vaddr = segments[i].vaddr,
            .p_paddr = segments[i].vaddr,
            .p_filesz = segments[i].filesz,
            .p_memsz = segments[i].memsz,
            .p_align = 4096,
        };
        memcpy(f + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
    }
    memset(f + meta_off, 0, SPM_META_SECTION_SIZE);
    memcpy(f + names_off, names, sizeof(names));
    Elf64_Shdr sh[3] = {
        {0},
        {.sh_name = 1, .sh_type = SHT_STRTAB, .sh_offset = names_off, .sh_size = sizeof(names)},
        {.sh_name = 11,
         .sh_type = SHT_PROGBITS,
         .sh_offset = meta_off,
         .sh_size = SPM_META_SECTION_SIZE},
    };
    memcpy(f + sh_off, sh, sizeof(sh));
    *size = total;
    return f;
}

unsigned tu_phnum(const uint8_t *file)
{
    return ((const Elf64_Ehdr *)file)->e_phnum;
}

Elf64_Phdr *tu_phdr(uint8_t *file, unsigned index)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    assert_true(index < eh->e_phnum);
    return (Elf64_Phdr *)(file + eh->e_phoff + index * sizeof(Elf64_Phdr));
}

Elf64_Shdr *tu_section(uint8_t *file, const char *name)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    Elf64_Shdr *sh = (Elf64_Shdr *)(file + eh->e_shoff);
    const char *names = (const char *)file + sh[eh->e_shstrndx].sh_offset;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (strcmp(names + sh[i].sh_name, name) == 0)
            return &sh[i];
    fail_msg("no section %s", name);
    return NULL;
}

Elf64_Dyn *tu_dynamic_entry(uint8_t *file, int64_t tag)
{
    for (unsigned i = 0; i < tu_phnum(file); i++) {
        Elf64_Phdr *ph = tu_phdr(file, i);
        if (ph->p_type != PT_DYNAMIC)
            continue;
        Elf64_Dyn *d = (Elf64_Dyn *)(file + ph->p_offset);
        for (; d->d_tag != DT_NULL; d++)
            if (d->d_tag == tag)
                return d;
    }
    fail_msg("no dynamic entry with tag %lld", (long long)tag);
    return NULL;
}

uint64_t tu_vaddr_to_offset(const uint8_t *file, uint64_t vaddr)
{
    for (unsigned i = 0; i < tu_phnum(file); i++) {
        const Elf64_Phdr *ph = tu_phdr((uint8_t *)file, i);
        if (ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr && vaddr < ph->p_vaddr + ph->p_filesz)
            return ph->p_offset + (vaddr - ph->p_vaddr);
    }
    fail_msg("vaddr %#llx is not file-backed", (unsigned long long)vaddr);
    return 0;
}
