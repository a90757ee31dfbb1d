/* The enclave heap allocator, over the heap range of ELRANGE. Small blocks
 * (<= 1 KiB) come from size-class free lists; larger ones from an
 * address-ordered free list with first fit and coalescing. New memory is
 * carved from a bump pointer ("wilderness") that starts at the heap's base,
 * so an enclave that allocates little touches little. One spinlock guards it
 * all: enclave threads cannot sleep on a futex. All state is in the enclave's
 * data and heap, so a checkpoint carries the allocator along, and captures
 * the heap only up to the wilderness: above it nothing was ever written. */
#include "trts_internal.h"

#include <string.h>

#define HEAP_ALIGN    16u
#define HEADER_SIZE   16u
#define LARGE_CLASS   0xffffu
#define LARGE_GRANULE 64u

static const uint32_t class_sizes[] = {32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
#define CLASS_COUNT (sizeof(class_sizes) / sizeof(class_sizes[0]))

/* The header before every payload. `size` is the block size, header included. */
struct block {
    uint64_t size;
    uint64_t class_index; /* LARGE_CLASS for large blocks */
};
struct free_node {
    struct free_node *next;
};

static struct {
    struct spm_spinlock lock;
    uint8_t *start, *wilderness, *end;
    struct free_node *small[CLASS_COUNT];
    struct block *large; /* address-ordered; next pointer in the payload */
    size_t used;
} g_heap;

void trts_heap_init(void *start, size_t size)
{
    g_heap.start = g_heap.wilderness = start;
    g_heap.end = (uint8_t *)start + size;
}

uint64_t trts_heap_high_water(void)
{
    /* The checkpoint engine asks while no thread runs enclave code, but a
     * thread parked in an ocall may have been stopped anywhere except
     * inside malloc (which never leaves the enclave), so the lock is free. */
    spm_spin_lock(&g_heap.lock);
    uint64_t high = (uint64_t)g_heap.wilderness;
    spm_spin_unlock(&g_heap.lock);
    return (high + SGX_PAGE_SIZE - 1) & ~(uint64_t)(SGX_PAGE_SIZE - 1);
}

void spm_heap_stats(size_t *used, size_t *total)
{
    *used = g_heap.used;
    *total = (size_t)(g_heap.end - g_heap.start);
}

static struct block **large_next(struct block *b)
{
    return (struct block **)(b + 1);
}

static void *carve(size_t block_size)
{
    if ((size_t)(g_heap.end - g_heap.wilderness) < block_size)
        return NULL;
    struct block *b = (struct block *)g_heap.wilderness;
    g_heap.wilderness += block_size;
    b->size = block_size;
    return b;
}

static struct block *large_take(size_t block_size)
{
    for (struct block **link = &g_heap.large; *link; link = large_next(*link)) {
        struct block *b = *link;
        if (b->size < block_size)
            continue;
        if (b->size - block_size >= HEADER_SIZE + LARGE_GRANULE) {
            struct block *rest = (struct block *)((uint8_t *)b + block_size);
            rest->size = b->size - block_size;
            rest->class_index = LARGE_CLASS;
            *large_next(rest) = *large_next(b);
            *link = rest;
            b->size = block_size;
        } else {
            *link = *large_next(b);
        }
        return b;
    }
    return NULL;
}

static void large_put(struct block *b)
{
    struct block *prev = NULL, *next = g_heap.large;
    while (next && next < b) {
        prev = next;
        next = *large_next(next);
    }
    if (next && (uint8_t *)b + b->size == (uint8_t *)next) {
        b->size += next->size;
        next = *large_next(next);
    }
    *large_next(b) = next;
    if (prev && (uint8_t *)prev + prev->size == (uint8_t *)b) {
        prev->size += b->size;
        *large_next(prev) = next;
    } else if (prev) {
        *large_next(prev) = b;
    } else {
        g_heap.large = b;
    }
}

void *malloc(size_t size)
{
    if (size > (size_t)(g_heap.end - g_heap.start))
        return NULL;
    struct block *b = NULL;
    spm_spin_lock(&g_heap.lock);
    size_t need = size + HEADER_SIZE;
    uint32_t cls = 0;
    while (cls < CLASS_COUNT && class_sizes[cls] < need)
        cls++;
    if (cls < CLASS_COUNT) {
        if (g_heap.small[cls]) {
            b = (struct block *)g_heap.small[cls] - 1;
            g_heap.small[cls] = g_heap.small[cls]->next;
        } else {
            b = carve(class_sizes[cls]);
            if (!b && (b = large_take(class_sizes[cls] + LARGE_GRANULE)))
                cls = LARGE_CLASS; /* served from a large block; freed as one */
        }
        if (b && cls != LARGE_CLASS)
            b->size = class_sizes[cls];
    } else {
        cls = LARGE_CLASS;
        need = (need + LARGE_GRANULE - 1) & ~(size_t)(LARGE_GRANULE - 1);
        b = large_take(need);
        if (!b)
            b = carve(need);
    }
    if (b) {
        b->class_index = cls;
        g_heap.used += b->size;
    }
    spm_spin_unlock(&g_heap.lock);
    return b ? b + 1 : NULL;
}

void free(void *p)
{
    if (!p)
        return;
    struct block *b = (struct block *)p - 1;
    if ((uint8_t *)b < g_heap.start || (uint8_t *)p >= g_heap.wilderness)
        trts_abort(); /* not ours: heap corruption, stop before it spreads */
    spm_spin_lock(&g_heap.lock);
    g_heap.used -= b->size;
    if (b->class_index == LARGE_CLASS) {
        large_put(b);
    } else if (b->class_index < CLASS_COUNT) {
        struct free_node *n = p;
        n->next = g_heap.small[b->class_index];
        g_heap.small[b->class_index] = n;
    } else {
        trts_abort();
    }
    spm_spin_unlock(&g_heap.lock);
}

void *calloc(size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size)
        return NULL;
    void *p = malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    struct block *b = (struct block *)p - 1;
    size_t usable = b->size - HEADER_SIZE;
    if (size <= usable)
        return p;
    void *q = malloc(size);
    if (q) {
        memcpy(q, p, usable);
        free(p);
    }
    return q;
}
