/* Validation of enclave ELF files. The file is attacker input to both the
 * signer and the loader (and a fuzz target), so every header, offset and
 * size is bounds-checked with overflow in mind before it is used, and
 * everything is read with memcpy from a private copy (no unaligned access,
 * no TOCTOU). What is accepted is deliberately narrow: a static-PIE whose
 * loadable bytes the layout can measure as-is and whose only run-time fixups
 * are R_X86_64_RELATIVE into writable memory, which the trusted runtime
 * applies to itself. Anything else is refused with the reason. */
#include "image.h"
#include "image_internal.h"
#include "host/common/fileio.h"
#include "host/common/log.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE SGX_PAGE_SIZE

#ifndef DT_RELR
#define DT_RELR 36
#endif

struct elf_ctx {
    const uint8_t *file;
    size_t size;
    const char *name;
    Elf64_Ehdr eh;
    struct spm_elf_image *img;
    bool has_dynamic;
    Elf64_Phdr dynamic;
};

static int refuse(const struct elf_ctx *cx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(const struct elf_ctx *cx, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    spm_error("%s: not an acceptable enclave image: %s", cx->name, why);
    return -EINVAL;
}

/* [off, off + len) lies inside the file. */
static bool in_file(const struct elf_ctx *cx, uint64_t off, uint64_t len)
{
    return off <= cx->size && len <= cx->size - off;
}

static bool ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
    /* Both ranges were bounds-checked against the file or ELRANGE, so the
     * sums cannot wrap. */
    return a_len && b_len && a < b + b_len && b < a + a_len;
}

static const char *reloc_type_name(uint32_t type)
{
    switch (type) {
    case R_X86_64_NONE:
        return "R_X86_64_NONE";
    case R_X86_64_64:
        return "R_X86_64_64";
    case R_X86_64_PC32:
        return "R_X86_64_PC32";
    case R_X86_64_COPY:
        return "R_X86_64_COPY";
    case R_X86_64_GLOB_DAT:
        return "R_X86_64_GLOB_DAT";
    case R_X86_64_JUMP_SLOT:
        return "R_X86_64_JUMP_SLOT";
    case R_X86_64_DTPMOD64:
        return "R_X86_64_DTPMOD64";
    case R_X86_64_DTPOFF64:
        return "R_X86_64_DTPOFF64";
    case R_X86_64_TPOFF64:
        return "R_X86_64_TPOFF64";
    case R_X86_64_IRELATIVE:
        return "R_X86_64_IRELATIVE";
    default:
        return "another type";
    }
}

static int check_ehdr(struct elf_ctx *cx)
{
    if (cx->size < sizeof(Elf64_Ehdr))
        return refuse(cx, "file is %zu bytes, too small for an ELF header", cx->size);
    memcpy(&cx->eh, cx->file, sizeof(cx->eh));
    const Elf64_Ehdr *eh = &cx->eh;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return refuse(cx, "no ELF magic");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
        return refuse(cx, "not a little-endian ELF64 file of version 1");
    if (eh->e_machine != EM_X86_64)
        return refuse(cx, "e_machine is %u, not x86-64", eh->e_machine);
    if (eh->e_type != ET_DYN)
        return refuse(cx,
                      "e_type is %u, not ET_DYN; enclaves are position-independent "
                      "(link with -static-pie -nostdlib)",
                      eh->e_type);
    if (eh->e_ehsize != sizeof(Elf64_Ehdr) || eh->e_phentsize != sizeof(Elf64_Phdr))
        return refuse(cx, "unexpected ELF header or program header entry size");
    if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
        return refuse(cx, "e_phnum is %u", eh->e_phnum);
    if (!in_file(cx, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
        return refuse(cx, "program headers (offset %#llx, %u entries) run past the end of the file",
                      (unsigned long long)eh->e_phoff, eh->e_phnum);
    return 0;
}

static int check_load(struct elf_ctx *cx, unsigned index, const Elf64_Phdr *ph)
{
    struct spm_elf_image *img = cx->img;
    uint64_t end;
    if (img->segment_count == SPM_ELF_MAX_SEGMENTS)
        return refuse(cx, "more than %u PT_LOAD segments", SPM_ELF_MAX_SEGMENTS);
    if (!in_file(cx, ph->p_offset, ph->p_filesz))
        return refuse(cx, "PT_LOAD %u: file bytes [%#llx, +%#llx) run past the end of the file",
                      index, (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz);
    if (ph->p_memsz == 0)
        return refuse(cx, "PT_LOAD %u is empty (p_memsz 0)", index);
    if (ph->p_filesz > ph->p_memsz)
        return refuse(cx, "PT_LOAD %u: p_filesz %#llx exceeds p_memsz %#llx", index,
                      (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
    if (img_add_overflow(ph->p_vaddr, ph->p_memsz, &end) || end > SPM_ELRANGE_MAX_SIZE)
        return refuse(cx, "PT_LOAD %u: [%#llx, +%#llx) does not fit in a 64 GiB ELRANGE", index,
                      (unsigned long long)ph->p_vaddr, (unsigned long long)ph->p_memsz);
    if (ph->p_vaddr % PAGE != ph->p_offset % PAGE)
        return refuse(cx,
                      "PT_LOAD %u is not page-aligned: p_vaddr %#llx and p_offset %#llx differ "
                      "modulo 4096 (link with -z max-page-size=4096)",
                      index, (unsigned long long)ph->p_vaddr, (unsigned long long)ph->p_offset);
    if (ph->p_align > 1 &&
        (!img_is_pow2(ph->p_align) || ph->p_vaddr % ph->p_align != ph->p_offset % ph->p_align))
        return refuse(cx, "PT_LOAD %u: inconsistent p_align %#llx", index,
                      (unsigned long long)ph->p_align);
    if ((ph->p_flags & PF_W) && (ph->p_flags & PF_X))
        return refuse(cx, "PT_LOAD %u is both writable and executable (W+X)", index);
    if ((ph->p_flags & PF_W) && !(ph->p_flags & PF_R))
        return refuse(cx, "PT_LOAD %u is writable but not readable, which SGX cannot map", index);
    if (img->segment_count == 0 && ph->p_vaddr != 0)
        return refuse(cx, "the first PT_LOAD is at %#llx, not 0 (link a static-PIE at address 0)",
                      (unsigned long long)ph->p_vaddr);
    if (img->segment_count > 0) {
        const struct spm_elf_segment *prev = &img->segments[img->segment_count - 1];
        if (ph->p_vaddr < prev->vaddr + prev->memsz)
            return refuse(cx, "PT_LOAD %u at %#llx overlaps or precedes the previous one", index,
                          (unsigned long long)ph->p_vaddr);
    }
    img->segments[img->segment_count++] = (struct spm_elf_segment){
        .vaddr = ph->p_vaddr,
        .memsz = ph->p_memsz,
        .filesz = ph->p_filesz,
        .offset = ph->p_offset,
        .flags = ph->p_flags & (PF_R | PF_W | PF_X),
    };
    return 0;
}

static int check_phdrs(struct elf_ctx *cx)
{
    for (unsigned i = 0; i < cx->eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, cx->file + cx->eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        int ret = 0;
        switch (ph.p_type) {
        case PT_LOAD:
            ret = check_load(cx, i, &ph);
            break;
        case PT_INTERP:
            ret = refuse(cx, "it has a PT_INTERP (a dynamically linked program); link with "
                             "-static-pie -Wl,--no-dynamic-linker");
            break;
        case PT_TLS:
            ret = refuse(cx, "it has a PT_TLS segment: the trusted runtime sets up no "
                             "thread-local storage (use per-thread data instead)");
            break;
        case PT_DYNAMIC:
            if (cx->has_dynamic)
                ret = refuse(cx, "more than one PT_DYNAMIC");
            cx->has_dynamic = true;
            cx->dynamic = ph;
            break;
        default:
            break;
        }
        if (ret < 0)
            return ret;
    }
    struct spm_elf_image *img = cx->img;
    if (img->segment_count == 0)
        return refuse(cx, "no PT_LOAD segment");

    /* Segments sharing a page are added as one page with the union of their
     * permissions, so W+X must be refused per page too. */
    uint64_t last_page = UINT64_MAX, last_flags = 0;
    for (uint32_t i = 0; i < img->segment_count; i++) {
        const struct spm_elf_segment *s = &img->segments[i];
        uint64_t first = s->vaddr / PAGE, last = (s->vaddr + s->memsz - 1) / PAGE;
        uint64_t flags = s->flags | (first == last_page ? last_flags : 0);
        if ((flags & PF_W) && (flags & PF_X))
            return refuse(cx, "page %#llx is shared by a writable and an executable segment (W+X)",
                          (unsigned long long)(first * PAGE));
        last_flags = first == last ? flags : s->flags;
        last_page = last;
    }
    const struct spm_elf_segment *top = &img->segments[img->segment_count - 1];
    img->image_size = (top->vaddr + top->memsz + PAGE - 1) / PAGE * PAGE;
    return 0;
}

/* After check_dynamic: a hosted library's missing entry point is a less
 * useful reason than its DT_NEEDED. */
static int check_entry(struct elf_ctx *cx)
{
    struct spm_elf_image *img = cx->img;
    img->entry = cx->eh.e_entry;
    for (uint32_t i = 0; i < img->segment_count; i++) {
        const struct spm_elf_segment *s = &img->segments[i];
        if ((s->flags & PF_X) && img->entry >= s->vaddr && img->entry - s->vaddr < s->filesz)
            return 0;
    }
    return refuse(cx, "entry point %#llx is not inside an executable segment's file bytes",
                  (unsigned long long)img->entry);
}

/* File offset of [vaddr, vaddr + len) if a PT_LOAD maps it from the file. */
static bool vaddr_to_file(const struct elf_ctx *cx, uint64_t vaddr, uint64_t len, uint64_t *off)
{
    for (uint32_t i = 0; i < cx->img->segment_count; i++) {
        const struct spm_elf_segment *s = &cx->img->segments[i];
        if (vaddr >= s->vaddr && vaddr - s->vaddr <= s->filesz &&
            len <= s->filesz - (vaddr - s->vaddr)) {
            *off = s->offset + (vaddr - s->vaddr);
            return true;
        }
    }
    return false;
}

static bool in_writable_segment(const struct elf_ctx *cx, uint64_t vaddr, uint64_t len)
{
    for (uint32_t i = 0; i < cx->img->segment_count; i++) {
        const struct spm_elf_segment *s = &cx->img->segments[i];
        if ((s->flags & PF_W) && vaddr >= s->vaddr && vaddr - s->vaddr <= s->memsz &&
            len <= s->memsz - (vaddr - s->vaddr))
            return true;
    }
    return false;
}

static int check_relocations(const struct elf_ctx *cx, uint64_t rela, uint64_t rela_size)
{
    uint64_t file_off;
    if (!vaddr_to_file(cx, rela, rela_size, &file_off))
        return refuse(cx, "DT_RELA table [%#llx, +%#llx) is not inside a PT_LOAD's file bytes",
                      (unsigned long long)rela, (unsigned long long)rela_size);
    uint64_t count = rela_size / sizeof(Elf64_Rela);
    for (uint64_t i = 0; i < count; i++) {
        Elf64_Rela r;
        memcpy(&r, cx->file + file_off + i * sizeof(r), sizeof(r));
        uint32_t type = ELF64_R_TYPE(r.r_info);
        if (type != R_X86_64_RELATIVE)
            return refuse(cx,
                          "relocation %llu at %#llx has type %u (%s); only R_X86_64_RELATIVE "
                          "is allowed (is something linked against a shared library?)",
                          (unsigned long long)i, (unsigned long long)r.r_offset, type,
                          reloc_type_name(type));
        if (ELF64_R_SYM(r.r_info) != 0)
            return refuse(cx, "R_X86_64_RELATIVE relocation %llu names a symbol",
                          (unsigned long long)i);
        if (!in_writable_segment(cx, r.r_offset, 8))
            return refuse(cx,
                          "relocation %llu targets %#llx, outside every writable PT_LOAD "
                          "(text relocation? link with -z norelro and build with -fPIE)",
                          (unsigned long long)i, (unsigned long long)r.r_offset);
        if (ranges_overlap(r.r_offset, 8, rela, rela_size) ||
            ranges_overlap(r.r_offset, 8, cx->dynamic.p_vaddr, cx->dynamic.p_memsz))
            return refuse(cx,
                          "relocation %llu at %#llx rewrites the relocation table or "
                          "the dynamic section",
                          (unsigned long long)i, (unsigned long long)r.r_offset);
    }
    return 0;
}

static int check_dynamic(struct elf_ctx *cx)
{
    if (!cx->has_dynamic)
        return 0; /* no dynamic section: nothing to relocate */
    const Elf64_Phdr *dyn = &cx->dynamic;
    uint64_t mapped;
    /* The runtime reads _DYNAMIC from memory: what is checked here must be
     * exactly the measured bytes it will see there. */
    if (!in_file(cx, dyn->p_offset, dyn->p_filesz) ||
        !vaddr_to_file(cx, dyn->p_vaddr, dyn->p_filesz, &mapped) || mapped != dyn->p_offset ||
        dyn->p_memsz != dyn->p_filesz)
        return refuse(cx, "PT_DYNAMIC [%#llx, +%#llx) is not file-backed inside a PT_LOAD",
                      (unsigned long long)dyn->p_vaddr, (unsigned long long)dyn->p_filesz);

    bool has_rela = false, has_relasz = false, has_relaent = false;
    uint64_t rela = 0, rela_size = 0, rela_ent = 0, pltrel_size = 0;
    uint64_t count = dyn->p_filesz / sizeof(Elf64_Dyn);
    bool terminated = false;
    for (uint64_t i = 0; i < count && !terminated; i++) {
        Elf64_Dyn d;
        memcpy(&d, cx->file + dyn->p_offset + i * sizeof(d), sizeof(d));
        switch (d.d_tag) {
        case DT_NULL:
            terminated = true;
            break;
        case DT_NEEDED:
            return refuse(cx, "it needs a shared library (DT_NEEDED); enclaves are linked "
                              "-static-pie -nostdlib with everything inside");
        case DT_REL:
        case DT_RELSZ:
        case DT_RELENT:
            return refuse(cx, "it has DT_REL relocations; only DT_RELA is supported on x86-64");
        case DT_RELR:
            return refuse(cx, "it has DT_RELR (packed) relocations; link without "
                              "-z pack-relative-relocs");
        case DT_TEXTREL:
            return refuse(cx, "it has text relocations (DT_TEXTREL); build with -fPIE");
        case DT_FLAGS:
            if (d.d_un.d_val & DF_TEXTREL)
                return refuse(cx, "it has text relocations (DF_TEXTREL); build with -fPIE");
            break;
        case DT_PLTRELSZ: /* a DT_JMPREL without it describes no relocation */
            pltrel_size = d.d_un.d_val;
            break;
        case DT_RELA:
            if (has_rela)
                return refuse(cx, "more than one DT_RELA");
            has_rela = true;
            rela = d.d_un.d_ptr;
            break;
        case DT_RELASZ:
            if (has_relasz)
                return refuse(cx, "more than one DT_RELASZ");
            has_relasz = true;
            rela_size = d.d_un.d_val;
            break;
        case DT_RELAENT:
            has_relaent = true;
            rela_ent = d.d_un.d_val;
            break;
        default:
            break;
        }
    }
    if (!terminated)
        return refuse(cx, "the dynamic section has no DT_NULL terminator");
    if (pltrel_size != 0)
        return refuse(cx,
                      "it has PLT relocations (DT_PLTRELSZ %llu); enclaves call nothing "
                      "outside themselves",
                      (unsigned long long)pltrel_size);
    if (has_rela != has_relasz)
        return refuse(cx, "DT_RELA and DT_RELASZ must come together");
    if (!has_rela)
        return 0;
    if (!has_relaent || rela_ent != sizeof(Elf64_Rela))
        return refuse(cx, "DT_RELAENT is missing or not %zu", sizeof(Elf64_Rela));
    if (rela_size % sizeof(Elf64_Rela) != 0)
        return refuse(cx, "DT_RELASZ %llu is not a multiple of %zu", (unsigned long long)rela_size,
                      sizeof(Elf64_Rela));
    return check_relocations(cx, rela, rela_size);
}

/* The caller checked that all e_shnum headers are inside the file. */
static void read_shdr(const struct elf_ctx *cx, uint32_t index, Elf64_Shdr *sh)
{
    memcpy(sh, cx->file + cx->eh.e_shoff + (uint64_t)index * sizeof(*sh), sizeof(*sh));
}

static int find_meta(struct elf_ctx *cx)
{
    const Elf64_Ehdr *eh = &cx->eh;
    struct spm_elf_image *img = cx->img;
    if (eh->e_shoff == 0 || eh->e_shnum == 0)
        return refuse(cx,
                      "no section headers, so no %s section (was it stripped with "
                      "--strip-section-headers?)",
                      SPM_META_SECTION);
    if (eh->e_shentsize != sizeof(Elf64_Shdr))
        return refuse(cx, "e_shentsize is %u, not %zu", eh->e_shentsize, sizeof(Elf64_Shdr));
    if (!in_file(cx, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
        return refuse(cx, "section headers run past the end of the file");
    uint32_t strndx = eh->e_shstrndx;
    Elf64_Shdr sh;
    if (strndx == SHN_XINDEX) {
        read_shdr(cx, 0, &sh);
        strndx = sh.sh_link;
    }
    if (strndx == SHN_UNDEF || strndx >= eh->e_shnum)
        return refuse(cx, "no section name table (e_shstrndx %u)", strndx);
    Elf64_Shdr strtab;
    read_shdr(cx, strndx, &strtab);
    if (strtab.sh_type != SHT_STRTAB || !in_file(cx, strtab.sh_offset, strtab.sh_size))
        return refuse(cx, "the section name table is not a string table inside the file");
    const char *names = (const char *)cx->file + strtab.sh_offset;

    static const char wanted[] = SPM_META_SECTION;
    bool found = false;
    Elf64_Shdr meta = {0};
    for (uint32_t i = 0; i < eh->e_shnum; i++) {
        read_shdr(cx, i, &sh);
        if (sh.sh_name >= strtab.sh_size || strtab.sh_size - sh.sh_name < sizeof(wanted) ||
            memcmp(names + sh.sh_name, wanted, sizeof(wanted)) != 0)
            continue;
        if (found)
            return refuse(cx, "two %s sections", SPM_META_SECTION);
        found = true;
        meta = sh;
    }
    if (!found)
        return refuse(cx,
                      "no %s section; the SPM trusted runtime reserves it (is this an SPM "
                      "enclave, and was it linked with the runtime?)",
                      SPM_META_SECTION);
    if (meta.sh_type != SHT_PROGBITS || (meta.sh_flags & SHF_ALLOC))
        return refuse(cx, "%s must be a non-allocated PROGBITS section", SPM_META_SECTION);
    if (meta.sh_size != SPM_META_SECTION_SIZE)
        return refuse(cx, "%s is %llu bytes, not %u (runtime and tools out of date?)",
                      SPM_META_SECTION, (unsigned long long)meta.sh_size, SPM_META_SECTION_SIZE);
    if (!in_file(cx, meta.sh_offset, meta.sh_size))
        return refuse(cx, "%s runs past the end of the file", SPM_META_SECTION);

    /* Signing rewrites these bytes: they must not be anything measured or
     * anything the parser needs to find them again. */
    uint64_t off = meta.sh_offset, len = meta.sh_size;
    if (ranges_overlap(off, len, 0, sizeof(Elf64_Ehdr)) ||
        ranges_overlap(off, len, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)) ||
        ranges_overlap(off, len, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
        ranges_overlap(off, len, strtab.sh_offset, strtab.sh_size))
        return refuse(cx, "%s overlaps the ELF headers or the section name table",
                      SPM_META_SECTION);
    for (uint32_t i = 0; i < img->segment_count; i++)
        if (ranges_overlap(off, len, img->segments[i].offset, img->segments[i].filesz))
            return refuse(cx, "%s overlaps the file bytes of PT_LOAD segment %u", SPM_META_SECTION,
                          i);
    img->meta_offset = (size_t)off;
    memcpy(&img->meta, cx->file + off, sizeof(img->meta));
    return 0;
}

/* Validates img->file (already owned by img); fills the rest of img. */
static int elf_validate(struct spm_elf_image *img, const char *name)
{
    struct elf_ctx cx = {.file = img->file, .size = img->file_size, .name = name, .img = img};
    int ret = check_ehdr(&cx);
    if (ret == 0)
        ret = check_phdrs(&cx);
    if (ret == 0)
        ret = check_dynamic(&cx);
    if (ret == 0)
        ret = check_entry(&cx);
    if (ret == 0)
        ret = find_meta(&cx);
    return ret;
}

int spm_elf_parse(const uint8_t *data, size_t size, struct spm_elf_image *img)
{
    memset(img, 0, sizeof(*img));
    if (size > SPM_ELF_MAX_FILE_SIZE) {
        spm_error("enclave image buffer is %zu bytes, more than the %u allowed", size,
                  SPM_ELF_MAX_FILE_SIZE);
        return -EFBIG;
    }
    img->file = malloc(size ? size : 1);
    if (!img->file)
        return -ENOMEM;
    if (size)
        memcpy(img->file, data, size);
    img->file_size = size;
    int ret = elf_validate(img, "enclave image");
    if (ret < 0)
        spm_elf_free(img);
    return ret;
}

int spm_elf_load(const char *path, struct spm_elf_image *img)
{
    memset(img, 0, sizeof(*img));
    uint8_t *data = NULL;
    size_t size = 0;
    int ret = spm_read_file(path, SPM_ELF_MAX_FILE_SIZE, &data, &size);
    if (ret < 0)
        return ret;
    img->file = data;
    img->file_size = size;
    ret = elf_validate(img, path);
    if (ret < 0)
        spm_elf_free(img);
    return ret;
}

void spm_elf_free(struct spm_elf_image *img)
{
    if (!img)
        return;
    free(img->file);
    memset(img, 0, sizeof(*img));
}
