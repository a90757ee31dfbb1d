/* Helpers shared by the image module's unit tests: files, captured log
 * output (to assert on the reason of a refusal, not just the refusal), a
 * builder for synthetic enclave ELFs with exactly the segments a test needs,
 * and locators for mutating a real linker-built ELF one field at a time. */
#ifndef SPM_TEST_IMAGE_UTIL_H
#define SPM_TEST_IMAGE_UTIL_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whole file into a malloc'd buffer; aborts the test on failure. */
uint8_t *tu_read(const char *path, size_t *size);
void tu_write(const char *path, const void *data, size_t size);

/* A fresh directory under $TMPDIR (or /tmp); tu_rmdir removes it and its
 * files (one level). Both return malloc'd / take paths. */
char *tu_mkdtemp(void);
void tu_rmdir(const char *dir);
/* "<dir>/<name>" in a static rotating buffer (valid for a few calls). */
const char *tu_path(const char *dir, const char *name);

/* Redirects fd 2 to a temporary file until tu_capture_end, which returns
 * what was written (malloc'd, NUL-terminated). */
void tu_capture_begin(void);
char *tu_capture_end(void);

/* spm_elf_parse must refuse data with -EINVAL and log `reason`. */
void tu_expect_refusal(const uint8_t *data, size_t size, const char *reason);

/* A synthetic enclave ELF: segments laid out as given, the file filled
 * with 0xA5 junk everywhere else (so bytes leaking from outside a segment
 * show), segment file bytes (i * 7 + seg) & 0xff, then a zero .spm_meta. */
struct tu_segment {
    uint64_t vaddr, offset, filesz, memsz;
    uint32_t flags;
};
uint8_t *tu_build_elf(const struct tu_segment *segments, unsigned count, uint64_t entry,
                      size_t *size);

/* Locators in a (valid) ELF buffer; they assert what they look for exists. */
Elf64_Phdr *tu_phdr(uint8_t *file, unsigned index);
unsigned tu_phnum(const uint8_t *file);
Elf64_Shdr *tu_section(uint8_t *file, const char *name);
Elf64_Dyn *tu_dynamic_entry(uint8_t *file, int64_t tag);
/* File offset of virtual address `vaddr` through the PT_LOADs. */
uint64_t tu_vaddr_to_offset(const uint8_t *file, uint64_t vaddr);

#endif
