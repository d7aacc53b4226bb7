/* The event loop's internal interface: fd watchers (epoll), timers (binary min-heap, sized in
 * advance by reservations), end-of-iteration work (deferred calls), cross-thread tasks (eventfd),
 * and per-loop shared resources (the read buffer, the write-chunk pool, the Date cache). */
#ifndef SY_CORE_LOOP_H
#define SY_CORE_LOOP_H

#include "core/common.h"
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

typedef struct sy_io sy_io;
typedef void (*sy_io_fn)(sy_io *io, uint32_t events);

/* An fd watcher. Embed it in the owner and recover the owner with sy_container_of. */
struct sy_io {
    int fd;
    uint32_t events; /* EPOLLIN/EPOLLOUT currently registered (0 = not registered) */
    sy_io_fn cb;
};

typedef struct sy_timer sy_timer;
typedef void (*sy_timer_fn)(sy_timer *t);

/* A timer in the loop's heap. deadline is absolute loop time in ms. */
struct sy_timer {
    uint64_t deadline;
    size_t heap_idx; /* 0 = not scheduled; otherwise index + 1 */
    sy_timer_fn cb;
};

/* Work run once at the end of the current loop iteration (write flushes, deferred frees).
 * Queued exactly when next is non-NULL (the last one points at a sentinel): no flag, so
 * that every connection's entry is two words. */
typedef struct sy_deferred sy_deferred;
struct sy_deferred {
    sy_deferred *next;
    void (*cb)(sy_deferred *d);
};

typedef struct sy_task {
    struct sy_task *next;
    sy_task_fn fn;
    void *ud;
} sy_task;

/* A recycled write chunk: fixed size, kept in a per-loop free list. */
#define SY_CHUNK_SIZE 16384
#define SY_CHUNK_POOL_MAX 16 /* 256 KiB per loop kept for reuse */

typedef struct sy_chunk {
    struct sy_chunk *next;
    uint8_t data[];
} sy_chunk;

#define SY_READ_BUF_SIZE (256 * 1024)

/* How late a loop is (per-worker "loop lag" in /metrics), written by the loop's thread only
 * (see core/metrics.h). busy: from epoll_wait's return to the next call, i.e. how long an
 * event that arrived meanwhile waited at most. timer_lag: how long after its deadline the
 * first due timer of an iteration ran (deadlines are in ms: values under 1 ms are noise). */
typedef struct sy_loop_stats {
    sy_hist busy; /* its count is the number of iterations */
    sy_hist timer_lag;
} sy_loop_stats;

struct sy_loop {
    int epfd;
    sy_io wake; /* eventfd */
    uint64_t now_ms;
    uint64_t now_us; /* the same clock reading in microseconds */
    sy_timer **heap;
    size_t heap_len, heap_cap;
    size_t timer_reserved; /* timers that may be armed at once; heap_cap >= timer_reserved */
    sy_deferred *defer_head;
    sy_deferred **defer_tail;
    pthread_mutex_t task_mu;
    sy_task *tasks_head, *tasks_tail;
    int tasks_closed;
    atomic_int refs; /* the owner's, plus one per orphaned request (see sy__loop_ref) */
    atomic_int stop_requested;
    atomic_int signal_flags; /* set from other threads/signal handlers; see on_wake */
    void (*on_signal)(sy_loop *loop, int flags, void *ud);
    void *on_signal_ud;
    int running;
    uint8_t *rbuf; /* shared read buffer, SY_READ_BUF_SIZE */
    sy_chunk *chunk_free;
    size_t chunk_free_count;
    void *wq_free; /* recycled 8-entry write-queue arrays (src/net/conn.c), linked through
                      their first word */
    size_t wq_free_count;
    char date[64]; /* "Date: ...\r\n" */
    size_t date_len;
    uint64_t date_sec;
    uint64_t date_until_ms;     /* now_ms before which date is still this second's */
    sy_loop_timer *user_timers; /* public timers (core/timer.c), detached at sy_loop_free */
    void *topics; /* the pub/sub registry of a server worker's loop (src/pubsub), or NULL;
                     its owner frees it before the loop */
    sy_loop_stats stats;
};

/* A public timer: the heap entry plus what the application gave. */
struct sy_loop_timer {
    sy_timer t;
    sy_loop *loop; /* NULL once the loop was freed (the timer is then inert) */
    sy_loop_timer_fn fn;
    void *ud;
    uint64_t repeat_ms;
    sy_loop_timer *prev, *next; /* loop->user_timers */
    uint8_t in_cb;              /* its callback is running */
    uint8_t touched;            /* started or stopped from inside its own callback */
    uint8_t freed;              /* freed from inside its own callback: released when it returns */
};

/* Forget the public timers of a loop being freed (they stay valid memory, inert). */
void sy__loop_timers_detach(sy_loop *loop);

/* The loop running on the calling thread (inside sy_loop_run), or NULL. */
sy_loop *sy__loop_current(void);

int sy__io_start(sy_loop *loop, sy_io *io, uint32_t events);
int sy__io_modify(sy_loop *loop, sy_io *io, uint32_t events);
void sy__io_stop(sy_loop *loop, sy_io *io);

/* Timers are pre-sized so that arming one can never fail: every owner of a timer reserves a
 * heap slot when it is created, where an allocation failure can still be refused cleanly (a
 * connection is not accepted), and releases it when it goes away. sy__timer_reserve returns 0
 * or SY_ENOMEM (nothing reserved). */
int sy__timer_reserve(sy_loop *loop, size_t n);
void sy__timer_release(sy_loop *loop, size_t n);

/* (Re)schedule t to fire at absolute time deadline (ms). Never allocates: at most as many
 * timers as reserved may be armed (arming more is a bug, and aborts rather than drop one). */
void sy__timer_start(sy_loop *loop, sy_timer *t, uint64_t deadline);
void sy__timer_stop(sy_loop *loop, sy_timer *t);
static inline int sy__timer_active(const sy_timer *t)
{
    return t->heap_idx != 0;
}

void sy__defer(sy_loop *loop, sy_deferred *d);
/* Run the deferred work now, at most max entries (0: until none is left). The loop does this
 * itself each iteration; harnesses that drive a loop by hand (fuzz/) call it. */
void sy__loop_run_deferred(sy_loop *loop, size_t max);
static inline int sy__deferred_queued(const sy_deferred *d)
{
    return d->next != NULL;
}

/* Keep the loop struct (not its resources) alive past sy_loop_free, so that sy_loop_post
 * from another thread stays safe and answers SY_ECLOSED. Thread-safe. */
void sy__loop_ref(sy_loop *loop);
void sy__loop_unref(sy_loop *loop);

/* Set flags (bit mask) from any thread or a signal handler; the loop's on_signal callback
 * receives them on its thread. Async-signal-safe. */
void sy__loop_signal(sy_loop *loop, int flags);

sy_chunk *sy__chunk_get(sy_loop *loop);
void sy__chunk_put(sy_loop *loop, sy_chunk *c);

/* The current "Date: ...\r\n" header line. */
const char *sy__loop_date(sy_loop *loop, size_t *len);
/* Refresh now_ms from CLOCK_MONOTONIC. */
void sy__loop_update_time(sy_loop *loop);

#endif
