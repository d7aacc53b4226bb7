/* The allocator hooks. Every allocation in the library goes through here so that an
 * embedder can substitute its allocator and tests can fail the Nth allocation. */
#include "core/common.h"

#include <stdlib.h>

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void (*g_free)(void *) = free;

SY_EXPORT void sy_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                                void (*free_fn)(void *))
{
    if (malloc_fn && realloc_fn && free_fn) {
        g_malloc = malloc_fn;
        g_realloc = realloc_fn;
        g_free = free_fn;
    } else {
        g_malloc = malloc;
        g_realloc = realloc;
        g_free = free;
    }
}

void *sy__malloc(size_t n)
{
    return g_malloc(n ? n : 1);
}

void *sy__calloc(size_t count, size_t n)
{
    if (n && count > SIZE_MAX / n)
        return NULL;
    size_t total = count * n;
    void *p = g_malloc(total ? total : 1);
    if (p)
        memset(p, 0, total);
    return p;
}

void *sy__realloc(void *p, size_t n)
{
    return g_realloc(p, n ? n : 1);
}

void sy__free(void *p)
{
    if (p)
        g_free(p);
}
