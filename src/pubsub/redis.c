/* Topics across processes through Redis pub/sub (sy_server_set_redis).
 *
 * Publishing: each worker has a connection that sends PUBLISH (channel = prefix + topic,
 * payload = one opcode byte + the message). A publish from a worker's thread goes through that
 * worker's connection, one from any other thread through worker 0's, so the messages of one
 * thread reach Redis in the order they were published. Every publish waits in its worker's
 * outbox until both that connection and the process's subscription are up (publishing while
 * our own subscription is down would lose our own subscribers' copy), bounded process-wide.
 *
 * Delivering: worker 0 holds the process's one subscription (PSUBSCRIBE prefix*). Each message
 * it receives goes into every worker's inbox through the same ordered path as a local publish
 * (pubsub/topics.c). Nothing is delivered locally at publish time, so there is no echo to
 * suppress: the sender's own process gets its copy from Redis like every other process, and
 * all subscribers everywhere see the order Redis saw. */
#include "core/log.h"
#include "pubsub/pubsub.h"
#include "redis/redis.h"
#include "ws/utf8.h"

#include <stdio.h>
#include <strings.h>

#define PS_REDIS_MAX_PENDING 10000
#define PS_REDIS_MAX_PENDING_BYTES (64u << 20)

/* A publish waiting for its connection: channel bytes, then the payload (opcode + message). */
typedef struct ps_out {
    struct ps_out *next;
    size_t chan_len, payload_len;
    char data[];
} ps_out;

typedef struct ps_rworker {
    sy_pubsub *ps;
    size_t idx;
    sy_loop *loop;
    sy_redis *pub;
    sy_redis *sub; /* worker 0 only */
    pthread_mutex_t mu;
    ps_out *head, *tail;
    int posted;        /* a flush task is queued on the loop */
    uint64_t lost_now; /* in-flight publishes failed by the current disconnect */
} ps_rworker;

enum { RS_INIT = 0, RS_UP, RS_DOWN };

struct sy_ps_redis {
    char host[256];
    int port;
    char *prefix;
    size_t prefix_len;
    char *pattern; /* prefix with glob characters escaped, then '*' */
    size_t pattern_len;
    ps_rworker **workers;
    size_t nworkers;
    atomic_uint_fast64_t pending, pending_bytes; /* accepted, not yet confirmed by Redis */
    atomic_uint_fast64_t failed, received, bad;
    atomic_int sub_ready;
    atomic_int state; /* for logging each change once */
};

static void flush(ps_rworker *rw);

static ps_rworker *rworker_of(sy_loop *loop)
{
    ps_worker *w = loop->topics;
    if (!w)
        return NULL;
    sy_ps_redis *R = sy__ps_worker_pubsub(w)->redis;
    size_t i = sy__ps_worker_index(w);
    return R && R->workers && i < R->nworkers ? R->workers[i] : NULL;
}

static void flush_task(sy_loop *loop, void *ud)
{
    (void)ud;
    ps_rworker *rw = rworker_of(loop);
    if (!rw)
        return; /* freed (run inside sy_loop_free): the outbox was released with it */
    pthread_mutex_lock(&rw->mu);
    rw->posted = 0;
    pthread_mutex_unlock(&rw->mu);
    flush(rw);
}

/* Ask worker rw's loop to flush its outbox (any thread). */
static void poke(ps_rworker *rw)
{
    pthread_mutex_lock(&rw->mu);
    int post = !rw->posted;
    rw->posted = 1;
    pthread_mutex_unlock(&rw->mu);
    if (post && sy_loop_post(rw->loop, flush_task, NULL) < 0) {
        pthread_mutex_lock(&rw->mu);
        rw->posted = 0; /* no memory for the task: the next publish tries again */
        pthread_mutex_unlock(&rw->mu);
    }
}

static void settle(sy_ps_redis *R, size_t bytes)
{
    atomic_fetch_sub_explicit(&R->pending, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&R->pending_bytes, bytes, memory_order_relaxed);
}

static void pub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sy_redis *r = ac->data;
    ps_rworker *rw = r->ud;
    sy_ps_redis *R = rw->ps->redis;
    settle(R, (size_t)(uintptr_t)priv);
    redisReply *rep = reply;
    if ((!rep || rep->type == REDIS_REPLY_ERROR) && !r->freeing) {
        /* NULL: the connection dropped with this PUBLISH unconfirmed (Redis may or may not
         * have delivered it); an error reply: Redis refused it. */
        atomic_fetch_add_explicit(&R->failed, 1, memory_order_relaxed);
        rw->lost_now++;
    }
    sy_redis_replied(r);
}

static void flush(ps_rworker *rw)
{
    sy_ps_redis *R = rw->ps->redis;
    redisAsyncContext *ac = sy_redis_ctx(rw->pub);
    if (!ac || !atomic_load(&R->sub_ready))
        return;
    for (;;) {
        pthread_mutex_lock(&rw->mu);
        ps_out *o = rw->head;
        if (o && !(rw->head = o->next))
            rw->tail = NULL;
        pthread_mutex_unlock(&rw->mu);
        if (!o)
            return;
        const char *argv[3] = {"PUBLISH", o->data, o->data + o->chan_len};
        size_t lens[3] = {7, o->chan_len, o->payload_len};
        size_t bytes = o->chan_len + o->payload_len;
        if (redisAsyncCommandArgv(ac, pub_reply, (void *)(uintptr_t)bytes, 3, argv, lens) !=
            REDIS_OK) {
            /* The context is going away: keep the publish, first in line, for the next one. */
            pthread_mutex_lock(&rw->mu);
            o->next = rw->head;
            rw->head = o;
            if (!rw->tail)
                rw->tail = o;
            pthread_mutex_unlock(&rw->mu);
            return;
        }
        sy_redis_sent(rw->pub);
        sy__free(o); /* hiredis copied it */
    }
}

static void pub_state(sy_redis *r, int up, const char *why, void *ud)
{
    ps_rworker *rw = ud;
    (void)r;
    (void)why;
    if (up) {
        flush(rw);
        return;
    }
    if (rw->lost_now) {
        sy__log(SY_LOG_WARN,
                "redis: %llu publishes in flight were lost with the connection (Redis may or "
                "may not have delivered them)",
                (unsigned long long)rw->lost_now);
        rw->lost_now = 0;
    }
}

/* A message from the subscription: into every worker's inbox. */
static void sub_message(ps_rworker *rw, const redisReply *chan, const redisReply *payload)
{
    sy_pubsub *ps = rw->ps;
    sy_ps_redis *R = ps->redis;
    atomic_fetch_add_explicit(&R->received, 1, memory_order_relaxed);
    if (chan->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING ||
        (size_t)chan->len <= R->prefix_len || (size_t)chan->len - R->prefix_len > SY_PS_TOPIC_MAX ||
        memcmp(chan->str, R->prefix, R->prefix_len) != 0 || payload->len < 1) {
        atomic_fetch_add_explicit(&R->bad, 1, memory_order_relaxed);
        return;
    }
    int opcode = (uint8_t)payload->str[0];
    const uint8_t *data = (const uint8_t *)payload->str + 1;
    size_t len = (size_t)payload->len - 1;
    /* Anyone can PUBLISH to Redis: never frame what we would not send ourselves. */
    if ((opcode != SY_WS_TEXT && opcode != SY_WS_BINARY) ||
        (opcode == SY_WS_TEXT && !sy_utf8_valid(data, len))) {
        atomic_fetch_add_explicit(&R->bad, 1, memory_order_relaxed);
        return;
    }
    ps_msg *m = sy__ps_msg_new(ps, chan->str + R->prefix_len, (size_t)chan->len - R->prefix_len,
                               data, len, opcode);
    if (!m || sy__ps_enqueue(ps, m) < 0)
        atomic_fetch_add_explicit(&ps->dropped, 1, memory_order_relaxed);
    if (m)
        sy__ps_msg_unref(m);
}

static void sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    ps_rworker *rw = priv;
    sy_ps_redis *R = rw->ps->redis;
    const redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (!strcasecmp(kind, "pmessage") && rep->elements == 4) {
        sub_message(rw, rep->element[2], rep->element[3]);
    } else if (!strcasecmp(kind, "psubscribe")) {
        atomic_store(&R->sub_ready, 1);
        int was = atomic_exchange(&R->state, RS_UP);
        if (was != RS_UP)
            sy__log(SY_LOG_WARN, "redis: %s %s:%d, subscribed to '%s'",
                    was == RS_INIT ? "connected to" : "connection restored to", R->host, R->port,
                    R->pattern);
        /* Publishes held back while we were not subscribed can go now. */
        for (size_t i = 0; i < R->nworkers; i++)
            if (R->workers[i])
                i == rw->idx ? flush(R->workers[i]) : poke(R->workers[i]);
    }
}

static void sub_state(sy_redis *r, int up, const char *why, void *ud)
{
    ps_rworker *rw = ud;
    sy_ps_redis *R = rw->ps->redis;
    if (up) {
        if (redisAsyncCommand(sy_redis_ctx(r), sub_reply, rw, "PSUBSCRIBE %b", R->pattern,
                              R->pattern_len) != REDIS_OK)
            sy__log(SY_LOG_ERROR, "redis: cannot send PSUBSCRIBE");
        return;
    }
    atomic_store(&R->sub_ready, 0);
    int was = atomic_exchange(&R->state, RS_DOWN);
    if (was == RS_UP)
        sy__log(SY_LOG_WARN,
                "redis: lost the connection to %s:%d (%s); reconnecting with backoff. Until it "
                "is back, publishes wait in a queue (up to %d) and subscribers here receive "
                "nothing",
                R->host, R->port, why ? why : "?", PS_REDIS_MAX_PENDING);
    else if (was == RS_INIT)
        sy__log(SY_LOG_WARN,
                "redis: cannot connect to %s:%d (%s); retrying with backoff, publishes wait in "
                "a queue (up to %d)",
                R->host, R->port, why ? why : "?", PS_REDIS_MAX_PENDING);
}

int sy__ps_redis_publish(sy_pubsub *ps, const char *topic, size_t tl, const void *data, size_t len,
                         int opcode)
{
    sy_ps_redis *R = ps->redis;
    size_t chan_len = R->prefix_len + tl, bytes = chan_len + 1 + len;
    /* The bound may be passed by a few bytes when threads publish at the same instant. */
    if (atomic_load_explicit(&R->pending, memory_order_relaxed) >= PS_REDIS_MAX_PENDING ||
        atomic_load_explicit(&R->pending_bytes, memory_order_relaxed) + bytes >
            PS_REDIS_MAX_PENDING_BYTES)
        return SY_EAGAIN;
    ps_worker *cw = sy__ps_current_worker(ps);
    ps_rworker *rw = R->workers ? R->workers[cw ? sy__ps_worker_index(cw) : 0] : NULL;
    if (!rw)
        return SY_ESTATE;
    ps_out *o = sy__malloc(sizeof(*o) + bytes);
    if (!o)
        return SY_ENOMEM;
    o->next = NULL;
    o->chan_len = chan_len;
    o->payload_len = 1 + len;
    memcpy(o->data, R->prefix, R->prefix_len);
    memcpy(o->data + R->prefix_len, topic, tl);
    o->data[chan_len] = (char)opcode;
    if (len)
        memcpy(o->data + chan_len + 1, data, len);
    atomic_fetch_add_explicit(&R->pending, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&R->pending_bytes, bytes, memory_order_relaxed);
    pthread_mutex_lock(&rw->mu);
    if (rw->tail)
        rw->tail->next = o;
    else
        rw->head = o;
    rw->tail = o;
    pthread_mutex_unlock(&rw->mu);
    if (cw)
        flush(rw); /* on its own loop: hiredis writes it at the end of this iteration */
    else
        poke(rw);
    return 0;
}

/* ---- configuration and lifecycle ---- */

SY_EXPORT int sy_server_set_redis(sy_server *srv, const char *url, const char *prefix)
{
    sy_pubsub *ps = srv ? srv->pubsub : NULL;
    if (!ps)
        return SY_EINVAL;
    if (srv->started)
        return SY_ESTATE;
    return sy__ps_redis_config(ps, url, prefix);
}

int sy__ps_redis_config(sy_pubsub *ps, const char *url, const char *prefix)
{
    char host[256];
    int port;
    if (sy_redis_parse_url(url, host, sizeof(host), &port) < 0)
        return SY_EADDR;
    if (!prefix)
        prefix = "switchyard:";
    size_t pl = strlen(prefix);
    sy_ps_redis *R = sy__calloc(1, sizeof(*R));
    char *pfx = sy__malloc(pl + 1), *pat = sy__malloc(2 * pl + 2);
    if (!R || !pfx || !pat) {
        sy__free(R);
        sy__free(pfx);
        sy__free(pat);
        return SY_ENOMEM;
    }
    memcpy(pfx, prefix, pl + 1);
    size_t n = 0;
    for (size_t i = 0; i < pl; i++) {
        if (strchr("*?[]\\", prefix[i]))
            pat[n++] = '\\'; /* a literal prefix, whatever it contains */
        pat[n++] = prefix[i];
    }
    pat[n++] = '*';
    pat[n] = 0;
    memcpy(R->host, host, strlen(host) + 1);
    R->port = port;
    R->prefix = pfx;
    R->prefix_len = pl;
    R->pattern = pat;
    R->pattern_len = n;
    sy__ps_redis_free(ps); /* a second call replaces the first */
    ps->redis = R;
    return 0;
}

int sy__ps_redis_worker_init(sy_pubsub *ps, size_t idx, sy_loop *loop)
{
    sy_ps_redis *R = ps->redis;
    if (!R->workers) {
        R->workers = sy__calloc(ps->nworkers, sizeof(*R->workers));
        if (!R->workers)
            return SY_ENOMEM;
        R->nworkers = ps->nworkers;
    }
    ps_rworker *rw = sy__calloc(1, sizeof(*rw));
    if (!rw)
        return SY_ENOMEM;
    rw->ps = ps;
    rw->idx = idx;
    rw->loop = loop;
    pthread_mutex_init(&rw->mu, NULL);
    R->workers[idx] = rw;
    sy_redis_cfg cfg = {.host = R->host,
                        .port = R->port,
                        .connect_timeout_ms = 2000,
                        .reply_timeout_ms = 5000,
                        .backoff_min_ms = 50,
                        .backoff_max_ms = 2000};
    if (sy_redis_new(loop, &cfg, pub_state, rw, &rw->pub) < 0)
        return SY_ENOMEM;
    if (idx == 0 && sy_redis_new(loop, &cfg, sub_state, rw, &rw->sub) < 0)
        return SY_ENOMEM;
    return 0;
}

void sy__ps_redis_worker_free(sy_pubsub *ps, size_t idx)
{
    sy_ps_redis *R = ps->redis;
    ps_rworker *rw = R->workers && idx < R->nworkers ? R->workers[idx] : NULL;
    if (!rw)
        return;
    sy_redis_free(rw->sub);
    sy_redis_free(rw->pub);
    for (ps_out *o = rw->head, *next; o; o = next) {
        next = o->next;
        settle(R, o->chan_len + o->payload_len);
        sy__free(o);
    }
    R->workers[idx] = NULL;
    pthread_mutex_destroy(&rw->mu);
    sy__free(rw);
}

void sy__ps_redis_stats(const sy_pubsub *ps, sy_server_stats *out)
{
    sy_ps_redis *R = ps->redis;
    out->redis_connected = atomic_load(&R->sub_ready);
    out->redis_queued = atomic_load_explicit(&R->pending, memory_order_relaxed);
    out->redis_failed = atomic_load_explicit(&R->failed, memory_order_relaxed);
    out->redis_received = atomic_load_explicit(&R->received, memory_order_relaxed);
}

void sy__ps_redis_free(sy_pubsub *ps)
{
    sy_ps_redis *R = ps->redis;
    if (!R)
        return;
    for (size_t i = 0; i < R->nworkers; i++)
        sy__ps_redis_worker_free(ps, i); /* normally done with each worker already */
    sy__free(R->workers);
    sy__free(R->prefix);
    sy__free(R->pattern);
    sy__free(R);
    ps->redis = NULL;
}
