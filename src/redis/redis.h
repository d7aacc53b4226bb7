/* A Redis connection on a loop: hiredis's asynchronous client driven by our epoll loop (its
 * ev.addRead/delRead/addWrite/delWrite/cleanup hooks map to one fd watcher), kept connected:
 * connect timeout, reconnect with backoff, and a reply watchdog (hiredis 0.14 has no timers
 * of its own). One thread: the loop's. */
#ifndef SY_REDIS_REDIS_H
#define SY_REDIS_REDIS_H

#include "core/loop.h"

#include <hiredis/async.h>

typedef struct sy_redis sy_redis;

typedef struct sy_redis_cfg {
    const char *host;
    int port;
    uint32_t connect_timeout_ms; /* a connect that takes longer is abandoned and retried */
    uint32_t reply_timeout_ms;   /* replies awaited (sy_redis_sent) for longer: reconnect */
    uint32_t backoff_min_ms;     /* first retry delay, doubling up to backoff_max_ms */
    uint32_t backoff_max_ms;
} sy_redis_cfg;

/* The connection came up (up = 1: commands may be sent through sy_redis_ctx) or went down
 * (up = 0, why says why: a connect that failed, or a lost connection; a retry is scheduled).
 * Called on the loop's thread, never from inside sy_redis_free. When a connection drops,
 * hiredis first calls every pending command callback with a NULL reply. */
typedef void (*sy_redis_state_fn)(sy_redis *r, int up, const char *why, void *ud);

struct sy_redis {
    sy_loop *loop;
    sy_io io;
    uint8_t io_added;
    uint8_t up;            /* connected: ac accepts commands */
    uint8_t freeing;       /* sy_redis_free is running: report nothing, retry nothing */
    uint32_t want;         /* EPOLLIN/EPOLLOUT hiredis asked for */
    redisAsyncContext *ac; /* NULL while waiting to retry */
    sy_timer timer;        /* connect timeout, retry delay, or reply watchdog */
    uint32_t backoff_ms;
    uint64_t pending;     /* replies awaited */
    uint64_t progress_ms; /* when a reply last arrived (or the first was awaited) */
    sy_redis_cfg cfg;
    char host[256];
    char why[160];
    sy_redis_state_fn on_state;
    void *ud;
};

/* Create and start connecting. Reserves the loop timer it needs. Returns 0 or SY_ENOMEM. */
int sy_redis_new(sy_loop *loop, const sy_redis_cfg *cfg, sy_redis_state_fn on_state, void *ud,
                 sy_redis **out);
/* Disconnect (pending command callbacks run with a NULL reply) and free. */
void sy_redis_free(sy_redis *r);
/* The hiredis context while connected, else NULL. */
static inline redisAsyncContext *sy_redis_ctx(const sy_redis *r)
{
    return r->up ? r->ac : NULL;
}
/* A command whose reply is awaited was sent / its reply (or its failure) arrived: the
 * watchdog drops a connection whose replies stall longer than reply_timeout_ms. */
void sy_redis_sent(sy_redis *r);
void sy_redis_replied(sy_redis *r);
/* Parse "redis://HOST[:PORT][/...]" or "HOST[:PORT]" (port 6379 by default; "[v6]" hosts).
 * Returns 0 or SY_EADDR. */
int sy_redis_parse_url(const char *url, char *host, size_t host_cap, int *port);

#endif
