/* A tiny unit-test harness: one binary per source file, each test a function.
 * Every binary prints "ok NAME" / "FAIL NAME: file:line: expr" per test and ends with
 * "N passed, N failed"; tests/run adds the counts up. */
#ifndef SY_TEST_HARNESS_H
#define SY_TEST_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int sy_t_passed, sy_t_failed, sy_t_cur_failed;
static const char *sy_t_cur_name;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s: %s:%d: %s\n", sy_t_cur_name, __FILE__, __LINE__, #cond);              \
            sy_t_cur_failed = 1;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long sy_t_a = (long long)(a), sy_t_b = (long long)(b);                                \
        if (sy_t_a != sy_t_b) {                                                                    \
            printf("FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", sy_t_cur_name, __FILE__, __LINE__, \
                   #a, #b, sy_t_a, sy_t_b);                                                        \
            sy_t_cur_failed = 1;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(p, lit_or_ptr, n)                                                                \
    do {                                                                                           \
        if (memcmp((p), (lit_or_ptr), (n)) != 0) {                                                 \
            printf("FAIL %s: %s:%d: memcmp(%s, %s, %s)\n", sy_t_cur_name, __FILE__, __LINE__, #p,  \
                   #lit_or_ptr, #n);                                                               \
            sy_t_cur_failed = 1;                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define TEST(name) static void name(void)
#define RUN(name) sy_t_run(#name, name)

static inline void sy_t_run(const char *name, void (*fn)(void))
{
    /* SY_TEST=name runs only the tests whose name contains it (while debugging one). */
    const char *only = getenv("SY_TEST");
    if (only && *only && !strstr(name, only))
        return;
    sy_t_cur_name = name;
    sy_t_cur_failed = 0;
    fn();
    if (sy_t_cur_failed) {
        sy_t_failed++;
    } else {
        sy_t_passed++;
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

static inline int sy_t_summary(void)
{
    printf("%d passed, %d failed\n", sy_t_passed, sy_t_failed);
    return sy_t_failed ? 1 : 0;
}

/* Copy len bytes so that they end exactly at a PROT_NONE page: any read past the end faults.
 * Release with sy_t_guard_free. */
static inline void *sy_t_guard_copy(const void *data, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t pages = (len + (size_t)pg - 1) / (size_t)pg + 1;
    char *base =
        mmap(NULL, pages * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        abort();
    char *guard = base + (pages - 1) * (size_t)pg;
    mprotect(guard, (size_t)pg, PROT_NONE);
    char *p = guard - len;
    if (len)
        memcpy(p, data, len);
    return p;
}

static inline void sy_t_guard_free(void *p, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *end = (char *)p + len;
    char *guard = (char *)(((uintptr_t)end + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1));
    if ((uintptr_t)end % (uintptr_t)pg == 0)
        guard = end;
    size_t pages = (len + (size_t)pg - 1) / (size_t)pg + 1;
    munmap(guard - (pages - 1) * (size_t)pg, pages * (size_t)pg);
}

#endif
