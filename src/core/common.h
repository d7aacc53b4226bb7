/* Internal helpers shared by every layer: branch hints, container_of, slices and the
 * allocator hooks. Nothing here touches I/O. */
#ifndef SY_CORE_COMMON_H
#define SY_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "switchyard.h"

/* Public symbols are exported from the shared library; everything else is hidden. */
#define SY_EXPORT __attribute__((visibility("default")))

#define sy_likely(x) __builtin_expect(!!(x), 1)
#define sy_unlikely(x) __builtin_expect(!!(x), 0)
#define sy_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define SY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SY_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SY_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocation goes through these so an embedder's hooks (sy_set_allocator) and the
 * fail-allocation tests see every allocation. They never abort: callers handle NULL. */
void *sy__malloc(size_t n);
void *sy__calloc(size_t count, size_t n);
void *sy__realloc(void *p, size_t n);
void sy__free(void *p);

/* ASCII case-insensitive comparison of a slice with a NUL-terminated lowercase literal. */
static inline int sy__ieq(const char *s, size_t len, const char *lower_lit)
{
    size_t n = strlen(lower_lit);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower_lit[i])
            return 0;
    }
    return 1;
}

#endif
