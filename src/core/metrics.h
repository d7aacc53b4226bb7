/* Counters and histograms for /metrics, kept per worker and summed when scraped.
 *
 * Each counter has exactly one writer, the thread of the loop that owns it, so an increment
 * needs no atomic read-modify-write (a `lock xadd` on a line other threads read would cost
 * more than everything else a message does). It is a relaxed atomic load, an add and a
 * relaxed atomic store: on x86_64 and arm64 plain loads and stores of an aligned 64-bit word,
 * never torn. A scraper on another thread reads with relaxed loads: each value is one that
 * was really written; values of different counters may be a few events apart, which
 * Prometheus tolerates (rates are computed per counter).
 *
 * Built with -DSY_METRICS=0 (make METRICS=0), updates compile to nothing: the reference for
 * measuring what the metrics cost (bench/metrics_cost.sh). */
#ifndef SY_CORE_METRICS_H
#define SY_CORE_METRICS_H

#include "core/common.h"

#include <stdatomic.h>

#ifndef SY_METRICS
#define SY_METRICS 1
#endif

typedef _Atomic uint64_t sy_ctr;

static inline void sy__ctr_add(sy_ctr *c, uint64_t n)
{
#if SY_METRICS
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
#else
    (void)c;
    (void)n;
#endif
}

static inline void sy__ctr_inc(sy_ctr *c)
{
    sy__ctr_add(c, 1);
}

static inline uint64_t sy__ctr_get(const sy_ctr *c)
{
    return atomic_load_explicit((sy_ctr *)c, memory_order_relaxed);
}

/* A histogram of durations in microseconds over fixed upper bounds (a sy_hist_bounds). The
 * buckets count what fell in each (not cumulative); the scraper adds them up. */
#define SY_HIST_MAX 20

typedef struct sy_hist_bounds {
    size_t n;                    /* finite bounds; bucket n is +Inf */
    uint64_t le_us[SY_HIST_MAX]; /* ascending */
} sy_hist_bounds;

typedef struct sy_hist {
    sy_ctr bucket[SY_HIST_MAX + 1];
    sy_ctr count;
    sy_ctr sum_us;
} sy_hist;

static inline void sy__hist_observe(sy_hist *h, const sy_hist_bounds *b, uint64_t us)
{
#if SY_METRICS
    size_t i = 0;
    while (i < b->n && us > b->le_us[i])
        i++; /* short values, the common case, stop at once */
    sy__ctr_inc(&h->bucket[i]);
    sy__ctr_inc(&h->count);
    sy__ctr_add(&h->sum_us, us);
#else
    (void)h;
    (void)b;
    (void)us;
#endif
}

/* Bounds used by the library: short latencies (50 us .. 10 s) and lifetimes (1 ms .. 1 h). */
extern const sy_hist_bounds sy__hist_latency;
extern const sy_hist_bounds sy__hist_lifetime;

#endif
