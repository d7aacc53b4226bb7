/* The epoll event loop. One iteration: wait (bounded by the earliest timer), dispatch fd
 * events, run due timers, then run deferred work (write flushes, frees) so that everything a
 * connection queued during the iteration leaves in one writev. */
#include "core/loop.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void wake_cb(sy_io *io, uint32_t events);

void sy__loop_update_time(sy_loop *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    loop->now_ms = loop->now_us / 1000u;
}

/* Microseconds on the loop's clock, read now (not the cached iteration time). */
static inline uint64_t clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const sy_hist_bounds sy__hist_latency = {
    17,
    {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
     2500000, 5000000, 10000000},
};
const sy_hist_bounds sy__hist_lifetime = {
    14,
    {1000, 10000, 100000, 500000, 1000000, 5000000, 10000000, 30000000, 60000000, 300000000,
     900000000, 1800000000, 3600000000u, 86400000000u},
};

SY_EXPORT uint64_t sy_loop_now_ms(const sy_loop *loop)
{
    return loop->now_ms;
}

SY_EXPORT int sy_loop_new(sy_loop **out)
{
    sy_loop *loop = sy__calloc(1, sizeof(*loop));
    if (!loop)
        return SY_ENOMEM;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->rbuf = sy__malloc(SY_READ_BUF_SIZE);
    if (loop->epfd < 0 || loop->wake.fd < 0 || !loop->rbuf) {
        int err = loop->rbuf ? SY_EIO : SY_ENOMEM;
        if (loop->epfd >= 0)
            close(loop->epfd);
        if (loop->wake.fd >= 0)
            close(loop->wake.fd);
        sy__free(loop->rbuf);
        sy__free(loop);
        return err;
    }
    loop->wake.cb = wake_cb;
    if (sy__io_start(loop, &loop->wake, EPOLLIN) < 0) {
        /* Without the wake fd, posted tasks and the shutdown signal would never run. */
        close(loop->epfd);
        close(loop->wake.fd);
        sy__free(loop->rbuf);
        sy__free(loop);
        return SY_EIO;
    }
    pthread_mutex_init(&loop->task_mu, NULL);
    atomic_init(&loop->refs, 1);
    loop->defer_tail = &loop->defer_head;
    sy__loop_update_time(loop);
    *out = loop;
    return 0;
}

/* The loop struct outlives sy_loop_free while something that may still be used from another
 * thread refers to it (an orphaned request: see src/http/req.c): sy_loop_post on it then
 * answers SY_ECLOSED instead of touching freed memory. Everything else goes at once. */
void sy__loop_ref(sy_loop *loop)
{
    atomic_fetch_add(&loop->refs, 1);
}

void sy__loop_unref(sy_loop *loop)
{
    if (atomic_fetch_sub(&loop->refs, 1) == 1) {
        pthread_mutex_destroy(&loop->task_mu);
        sy__free(loop);
    }
}

SY_EXPORT void sy_loop_free(sy_loop *loop)
{
    if (!loop)
        return;
    /* Tasks posted before now still run (here, on this thread): a task may be the only thing
     * that releases what it carries (a request answered later, a WebSocket reference). The
     * wake fd is closed under the lock so that a concurrent sy_loop_post never pokes a
     * closed (or reused) descriptor. */
    pthread_mutex_lock(&loop->task_mu);
    sy_task *t = loop->tasks_head;
    loop->tasks_head = loop->tasks_tail = NULL;
    loop->tasks_closed = 1;
    close(loop->wake.fd);
    loop->wake.fd = -1;
    pthread_mutex_unlock(&loop->task_mu);
    while (t) {
        sy_task *next = t->next;
        t->fn(loop, t->ud);
        sy__free(t);
        t = next;
    }
    while (loop->wq_free) {
        void *p = loop->wq_free;
        memcpy(&loop->wq_free, p, sizeof(void *));
        sy__free(p);
    }
    while (loop->chunk_free) {
        sy_chunk *c = loop->chunk_free;
        loop->chunk_free = c->next;
        sy__free(c);
    }
    sy__loop_timers_detach(loop);
    close(loop->epfd);
    sy__free(loop->heap);
    loop->heap = NULL;
    sy__free(loop->rbuf);
    loop->rbuf = NULL;
    sy__loop_unref(loop);
}

int sy__io_start(sy_loop *loop, sy_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return SY_EIO;
    io->events = events;
    return 0;
}

int sy__io_modify(sy_loop *loop, sy_io *io, uint32_t events)
{
    if (io->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return SY_EIO;
    io->events = events;
    return 0;
}

void sy__io_stop(sy_loop *loop, sy_io *io)
{
    if (io->fd >= 0)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->events = 0;
}

/* ---- timers: a binary min-heap of pointers; each timer knows its slot ---- */

static void heap_swap(sy_loop *loop, size_t a, size_t b)
{
    sy_timer *ta = loop->heap[a], *tb = loop->heap[b];
    loop->heap[a] = tb;
    loop->heap[b] = ta;
    tb->heap_idx = a + 1;
    ta->heap_idx = b + 1;
}

static void heap_up(sy_loop *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->deadline <= loop->heap[i]->deadline)
            break;
        heap_swap(loop, parent, i);
        i = parent;
    }
}

static void heap_down(sy_loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->deadline < loop->heap[m]->deadline)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->deadline < loop->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

void sy__timer_stop(sy_loop *loop, sy_timer *t)
{
    if (!t->heap_idx)
        return;
    size_t i = t->heap_idx - 1;
    size_t last = loop->heap_len - 1;
    if (i != last) {
        heap_swap(loop, i, last);
        loop->heap_len--;
        heap_down(loop, i);
        heap_up(loop, i);
    } else {
        loop->heap_len--;
    }
    t->heap_idx = 0;
}

int sy__timer_reserve(sy_loop *loop, size_t n)
{
    size_t want = loop->timer_reserved + n;
    if (want > loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap : 64;
        while (cap < want)
            cap *= 2;
        sy_timer **h = sy__realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return SY_ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    loop->timer_reserved = want;
    return 0;
}

void sy__timer_release(sy_loop *loop, size_t n)
{
    /* The heap keeps its size: the next burst of connections reuses it. */
    loop->timer_reserved -= SY_MIN(n, loop->timer_reserved);
}

void sy__timer_start(sy_loop *loop, sy_timer *t, uint64_t deadline)
{
    if (t->heap_idx) {
        uint64_t old = t->deadline;
        t->deadline = deadline;
        if (deadline < old)
            heap_up(loop, t->heap_idx - 1);
        else if (deadline > old)
            heap_down(loop, t->heap_idx - 1);
        return;
    }
    if (loop->heap_len >= loop->timer_reserved) {
        /* An owner armed a timer it never reserved. Growing here could fail and lose the
         * timer (a connection that never times out); make the bug loud instead. */
        sy__log(SY_LOG_ERROR, "timer armed without a reservation (%zu armed, %zu reserved)",
                loop->heap_len, loop->timer_reserved);
        abort();
    }
    t->deadline = deadline;
    loop->heap[loop->heap_len] = t;
    t->heap_idx = ++loop->heap_len;
    heap_up(loop, loop->heap_len - 1);
}

static void run_timers(sy_loop *loop)
{
    if (loop->heap_len && loop->heap[0]->deadline <= loop->now_ms) {
        uint64_t due_us = loop->heap[0]->deadline * 1000u;
        sy__hist_observe(&loop->stats.timer_lag, &sy__hist_latency,
                         loop->now_us > due_us ? loop->now_us - due_us : 0);
    }
    while (loop->heap_len && loop->heap[0]->deadline <= loop->now_ms) {
        sy_timer *t = loop->heap[0];
        sy__timer_stop(loop, t);
        t->cb(t);
    }
}

/* ---- deferred work ---- */

/* What the last queued entry points at. */
static sy_deferred defer_end;

void sy__defer(sy_loop *loop, sy_deferred *d)
{
    if (d->next)
        return; /* already queued */
    d->next = &defer_end;
    *loop->defer_tail = d;
    loop->defer_tail = &d->next;
}

static void run_deferred(sy_loop *loop)
{
    sy__loop_run_deferred(loop, 0);
}

void sy__loop_run_deferred(sy_loop *loop, size_t max)
{
    /* Callbacks may defer more work (a flush that closes, a close that frees); keep going
     * until the list is empty so nothing waits for the next epoll_wait. */
    for (size_t n = 0; loop->defer_head && (!max || n < max); n++) {
        sy_deferred *d = loop->defer_head;
        loop->defer_head = d->next == &defer_end ? NULL : d->next;
        if (!loop->defer_head)
            loop->defer_tail = &loop->defer_head;
        d->next = NULL;
        d->cb(d);
    }
}

/* ---- cross-thread tasks and signals ---- */

static void poke(sy_loop *loop)
{
    uint64_t one = 1;
    ssize_t r = write(loop->wake.fd, &one, sizeof(one));
    (void)r; /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
}

SY_EXPORT int sy_loop_post(sy_loop *loop, sy_task_fn fn, void *ud)
{
    sy_task *t = sy__malloc(sizeof(*t));
    if (!t)
        return SY_ENOMEM;
    t->fn = fn;
    t->ud = ud;
    t->next = NULL;
    pthread_mutex_lock(&loop->task_mu);
    if (loop->tasks_closed) {
        pthread_mutex_unlock(&loop->task_mu);
        sy__free(t);
        return SY_ECLOSED;
    }
    if (loop->tasks_tail)
        loop->tasks_tail->next = t;
    else
        loop->tasks_head = t;
    loop->tasks_tail = t;
    poke(loop); /* under the lock: sy_loop_free closes the fd under it */
    pthread_mutex_unlock(&loop->task_mu);
    return 0;
}

void sy__loop_signal(sy_loop *loop, int flags)
{
    atomic_fetch_or(&loop->signal_flags, flags);
    poke(loop);
}

SY_EXPORT void sy_loop_stop(sy_loop *loop)
{
    atomic_store(&loop->stop_requested, 1);
    poke(loop);
}

static void wake_cb(sy_io *io, uint32_t events)
{
    sy_loop *loop = sy_container_of(io, sy_loop, wake);
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    (void)events;
    int flags = atomic_exchange(&loop->signal_flags, 0);
    if (flags && loop->on_signal)
        loop->on_signal(loop, flags, loop->on_signal_ud);
    pthread_mutex_lock(&loop->task_mu);
    sy_task *t = loop->tasks_head;
    loop->tasks_head = loop->tasks_tail = NULL;
    pthread_mutex_unlock(&loop->task_mu);
    while (t) {
        sy_task *next = t->next;
        t->fn(loop, t->ud);
        sy__free(t);
        t = next;
    }
}

/* ---- shared resources ---- */

sy_chunk *sy__chunk_get(sy_loop *loop)
{
    sy_chunk *c = loop->chunk_free;
    if (c) {
        loop->chunk_free = c->next;
        loop->chunk_free_count--;
        return c;
    }
    return sy__malloc(sizeof(sy_chunk) + SY_CHUNK_SIZE);
}

void sy__chunk_put(sy_loop *loop, sy_chunk *c)
{
    if (loop->chunk_free_count >= SY_CHUNK_POOL_MAX) {
        sy__free(c);
        return;
    }
    c->next = loop->chunk_free;
    loop->chunk_free = c;
    loop->chunk_free_count++;
}

const char *sy__loop_date(sy_loop *loop, size_t *len)
{
    /* Responses of one loop turn share its time (now_ms); the wall clock is read only once
     * that time may have crossed into the next second, not for every response. */
    if (loop->now_ms >= loop->date_until_ms || !loop->date_len) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if ((uint64_t)ts.tv_sec != loop->date_sec || !loop->date_len) {
            struct tm tm;
            time_t now = ts.tv_sec;
            gmtime_r(&now, &tm);
            loop->date_len = strftime(loop->date, sizeof(loop->date),
                                      "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
            loop->date_sec = (uint64_t)ts.tv_sec;
        }
        loop->date_until_ms = loop->now_ms + (1000 - (uint64_t)ts.tv_nsec / 1000000u);
    }
    *len = loop->date_len;
    return loop->date;
}

/* ---- run ---- */

static __thread sy_loop *current_loop;

sy_loop *sy__loop_current(void)
{
    return current_loop;
}

SY_EXPORT int sy_loop_run(sy_loop *loop)
{
    struct epoll_event events[256];
    sy_loop *outer = current_loop; /* a loop run from inside another's callback (tests) */
    current_loop = loop;
    loop->running = 1;
    while (!atomic_load(&loop->stop_requested)) {
        int timeout = -1;
        if (loop->defer_head) {
            timeout = 0;
        } else if (loop->heap_len) {
            uint64_t d = loop->heap[0]->deadline;
            timeout = d <= loop->now_ms ? 0 : (int)SY_MIN(d - loop->now_ms, 60000);
        }
        int n = epoll_wait(loop->epfd, events, (int)SY_ARRAY_LEN(events), timeout);
        if (n < 0 && errno != EINTR) {
            loop->running = 0;
            current_loop = outer;
            return SY_EIO;
        }
        sy__loop_update_time(loop);
        for (int i = 0; i < n; i++) {
            sy_io *io = events[i].data.ptr;
            io->cb(io, events[i].events);
        }
        run_deferred(loop);
        run_timers(loop);
        run_deferred(loop);
#if SY_METRICS
        /* One clock read per iteration: the price of knowing the loop's lag. */
        uint64_t end = clock_us();
        sy__hist_observe(&loop->stats.busy, &sy__hist_latency,
                         end > loop->now_us ? end - loop->now_us : 0);
#endif
    }
    atomic_store(&loop->stop_requested, 0);
    loop->running = 0;
    current_loop = outer;
    return 0;
}
