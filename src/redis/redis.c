/* hiredis on our loop (see redis.h).
 *
 * hiredis owns the context and frees it itself when the connection fails; the last thing it
 * calls before that is ev.cleanup, so cleanup is where this side learns that the context is
 * gone: it forgets the pointer, stops watching the fd and schedules the retry. Everything
 * else only reads r->ac after checking it. */
#include "redis/redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void schedule(sy_redis *r, uint64_t ms)
{
    sy__timer_start(r->loop, &r->timer, r->loop->now_ms + ms);
}

static void update_io(sy_redis *r)
{
    if (!r->ac)
        return;
    if (!r->io_added) {
        if (sy__io_start(r->loop, &r->io, r->want) == 0)
            r->io_added = 1;
        return;
    }
    sy__io_modify(r->loop, &r->io, r->want);
}

static void ev_add_read(void *p)
{
    sy_redis *r = p;
    r->want |= EPOLLIN;
    update_io(r);
}

static void ev_del_read(void *p)
{
    sy_redis *r = p;
    r->want &= ~(uint32_t)EPOLLIN;
    update_io(r);
}

static void ev_add_write(void *p)
{
    sy_redis *r = p;
    r->want |= EPOLLOUT;
    update_io(r);
}

static void ev_del_write(void *p)
{
    sy_redis *r = p;
    r->want &= ~(uint32_t)EPOLLOUT;
    update_io(r);
}

/* The context is being freed by hiredis (error, or our own redisAsyncFree). */
static void ev_cleanup(void *p)
{
    sy_redis *r = p;
    redisAsyncContext *ac = r->ac;
    if (r->io_added)
        sy__io_stop(r->loop, &r->io);
    r->io_added = 0;
    r->io.fd = -1;
    r->want = 0;
    int was_up = r->up;
    r->ac = NULL;
    r->up = 0;
    r->pending = 0;
    if (r->freeing)
        return;
    if (ac && ac->err)
        snprintf(r->why, sizeof(r->why), "%s", ac->errstr);
    else if (!r->why[0])
        snprintf(r->why, sizeof(r->why), "connection closed");
    schedule(r, r->backoff_ms);
    r->backoff_ms = (uint32_t)SY_MIN((uint64_t)r->backoff_ms * 2, r->cfg.backoff_max_ms);
    (void)was_up;
    r->on_state(r, 0, r->why, r->ud);
}

static void io_cb(sy_io *io, uint32_t events)
{
    sy_redis *r = sy_container_of(io, sy_redis, io);
    if (r->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleRead(r->ac);
    if (r->ac && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleWrite(r->ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sy_redis *r = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context right after this: cleanup reports and retries. */
        snprintf(r->why, sizeof(r->why), "%s", ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    r->up = 1;
    r->why[0] = 0;
    r->backoff_ms = r->cfg.backoff_min_ms;
    sy__timer_stop(r->loop, &r->timer);
    /* A dead peer (a machine gone, not a process) is noticed without traffic too. */
    redisEnableKeepAlive((redisContext *)&ac->c);
    r->on_state(r, 1, NULL, r->ud);
}

static void start_connect(sy_redis *r)
{
    r->why[0] = 0;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->cfg.port);
    if (!ac || ac->err) {
        snprintf(r->why, sizeof(r->why), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac); /* no hooks installed yet: nothing is called back */
        schedule(r, r->backoff_ms);
        r->backoff_ms = (uint32_t)SY_MIN((uint64_t)r->backoff_ms * 2, r->cfg.backoff_max_ms);
        r->on_state(r, 0, r->why, r->ud);
        return;
    }
    r->ac = ac;
    ac->data = r;
    r->io.fd = ac->c.fd;
    r->io.cb = io_cb;
    r->io.events = 0;
    r->io_added = 0;
    r->want = 0;
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    /* The connect completes when the socket turns writable (hiredis checks it then). */
    ev_add_write(r);
    schedule(r, r->cfg.connect_timeout_ms);
}

static void drop(sy_redis *r, const char *why)
{
    snprintf(r->why, sizeof(r->why), "%s", why);
    redisAsyncFree(r->ac); /* pending callbacks get NULL, then cleanup */
}

static void timer_cb(sy_timer *t)
{
    sy_redis *r = sy_container_of(t, sy_redis, timer);
    if (!r->ac) {
        start_connect(r);
        return;
    }
    if (!r->up) {
        drop(r, "connect timed out");
        return;
    }
    if (r->pending && r->loop->now_ms >= r->progress_ms + r->cfg.reply_timeout_ms) {
        drop(r, "no reply in time");
        return;
    }
    if (r->pending)
        schedule(r, r->progress_ms + r->cfg.reply_timeout_ms - r->loop->now_ms);
}

void sy_redis_sent(sy_redis *r)
{
    if (!r->pending++) {
        r->progress_ms = r->loop->now_ms;
        schedule(r, r->cfg.reply_timeout_ms);
    }
}

void sy_redis_replied(sy_redis *r)
{
    if (!r->pending)
        return; /* the connection was reset meanwhile */
    r->progress_ms = r->loop->now_ms;
    if (!--r->pending && r->up)
        sy__timer_stop(r->loop, &r->timer);
}

int sy_redis_new(sy_loop *loop, const sy_redis_cfg *cfg, sy_redis_state_fn on_state, void *ud,
                 sy_redis **out)
{
    sy_redis *r = sy__calloc(1, sizeof(*r));
    if (!r)
        return SY_ENOMEM;
    if (sy__timer_reserve(loop, 1) < 0) {
        sy__free(r);
        return SY_ENOMEM;
    }
    r->loop = loop;
    r->cfg = *cfg;
    snprintf(r->host, sizeof(r->host), "%s", cfg->host);
    r->cfg.host = r->host;
    r->backoff_ms = cfg->backoff_min_ms;
    r->timer.cb = timer_cb;
    r->io.fd = -1;
    r->on_state = on_state;
    r->ud = ud;
    *out = r;
    start_connect(r);
    return 0;
}

void sy_redis_free(sy_redis *r)
{
    if (!r)
        return;
    r->freeing = 1;
    if (r->ac)
        redisAsyncFree(r->ac);
    sy__timer_stop(r->loop, &r->timer);
    sy__timer_release(r->loop, 1);
    sy__free(r);
}

int sy_redis_parse_url(const char *url, char *host, size_t host_cap, int *port)
{
    const char *p = url;
    if (!p)
        return SY_EADDR;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    const char *end = p + strcspn(p, "/?");
    const char *colon = NULL, *hs = p, *he;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return SY_EADDR;
        hs = p + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return SY_EADDR;
            colon = rb + 1;
        }
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
    }
    size_t hl = (size_t)(he - hs);
    if (!hl || hl >= host_cap || memchr(hs, '@', hl))
        return SY_EADDR; /* no credentials here: AUTH is not supported */
    memcpy(host, hs, hl);
    host[hl] = 0;
    *port = 6379;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v <= 0 || v > 65535)
            return SY_EADDR;
        *port = (int)v;
    }
    return 0;
}
