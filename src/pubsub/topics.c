/* Topics: per-worker registries, the ordered inboxes, and the fan-out (see pubsub.h). */
#include "pubsub/pubsub.h"
#include "ws/utf8.h"
#include "ws/ws.h"

#include <sys/random.h>
#include <time.h>

/* Frames up to this size go into runs (below) or, for compressing subscribers, are copied
 * into each subscriber's queue; longer ones are queued by reference to the one shared
 * buffer. */
#define PS_COPY_MAX 4096
/* Consecutive small messages for one topic are framed end to end into one shared buffer (a
 * run), which every subscriber that does not compress queues by reference in one piece: no
 * copy per subscriber, one write queue entry per subscriber for the whole run. */
#define PS_RUN_MSGS 256
#define PS_RUN_BYTES 65536
/* Shared compressors per worker: one per distinct (window, level, memLevel) of subscribers. */
#define PS_DEFLATERS 8

/* ---- a chained hash of byte-string keys ---- */

typedef struct ps_node {
    struct ps_node *next;
    const char *name;
    uint32_t len, hash;
} ps_node;

typedef struct ps_table {
    ps_node **b;
    size_t nb, n;
} ps_table;

/* Seeded per process, so that topic names chosen by clients (a room in a query string) cannot
 * be picked to collide. */
static uint32_t ps_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static int tab_init(ps_table *t)
{
    t->nb = 64;
    t->n = 0;
    t->b = sy__calloc(t->nb, sizeof(*t->b));
    return t->b ? 0 : SY_ENOMEM;
}

static ps_node *tab_find(const ps_table *t, const char *name, size_t len, uint32_t hash)
{
    for (ps_node *n = t->b[hash & (t->nb - 1)]; n; n = n->next)
        if (n->hash == hash && n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    return NULL;
}

static void tab_insert(ps_table *t, ps_node *n)
{
    if (t->n >= t->nb) {
        /* Grow; without memory the chains just get longer. */
        size_t nb = t->nb * 2;
        ps_node **b = sy__calloc(nb, sizeof(*b));
        if (b) {
            for (size_t i = 0; i < t->nb; i++) {
                for (ps_node *x = t->b[i], *next; x; x = next) {
                    next = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
            }
            sy__free(t->b);
            t->b = b;
            t->nb = nb;
        }
    }
    ps_node **head = &t->b[n->hash & (t->nb - 1)];
    n->next = *head;
    *head = n;
    t->n++;
}

static void tab_remove(ps_table *t, ps_node *n)
{
    ps_node **p = &t->b[n->hash & (t->nb - 1)];
    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    t->n--;
}

/* ---- per-worker state ---- */

typedef struct ps_topic ps_topic;

/* One subscription: a connection on a topic, listed in both. */
typedef struct ps_sub {
    sy_ws *ws;
    ps_topic *topic;
    uint32_t idx;  /* in topic->subs */
    uint32_t cidx; /* in the connection's list */
} ps_sub;

struct ps_topic {
    ps_node node;
    ps_sub **subs;
    uint32_t nsubs, cap;
    uint32_t iterating; /* a fan-out walks subs: removals leave holes (NULL) until it ends */
    uint32_t holes;
    char name[];
};

/* A connection's subscriptions (ws->ext points at ext: the engine ends them). */
typedef struct ps_conn {
    sy_ws_ext ext;
    ps_worker *w;
    ps_sub **subs;
    uint32_t n, cap;
} ps_conn;

/* A shared compressor (no context takeover: each message stands alone). */
typedef struct ps_deflater {
    uint8_t used;
    uint8_t wbits, level, mem_level;
    sy_pmd pmd;
} ps_deflater;

/* A compressed frame built for one message on one worker; its references are taken and
 * dropped on that worker's thread only. */
typedef struct ps_cframe {
    uint32_t refs;
    size_t len, plen;
    uint8_t data[];
} ps_cframe;

struct ps_worker {
    sy_pubsub *ps;
    size_t idx;
    sy_loop *loop;
    ps_table topics;
    pthread_mutex_t mu; /* the inbox */
    ps_msg **inbox;
    size_t in_len, in_cap, in_bytes;
    int posted; /* a task to empty the inbox is queued on the loop */
    ps_msg **work;
    size_t work_cap;
    ps_deflater defl[PS_DEFLATERS];
    uint8_t *scratch;
    size_t scratch_len, scratch_cap;
    uint32_t run_ends[PS_RUN_MSGS], run_pends[PS_RUN_MSGS]; /* of the run being fanned out */
};

/* The frames of a run, end to end; its references are taken and dropped on the worker's
 * thread only (one per subscriber queue holding it, one for the fan-out itself). */
typedef struct ps_run {
    uint32_t refs;
    uint8_t data[];
} ps_run;

/* Distinct topics over all workers, for the stats. */
typedef struct ps_gtopic {
    ps_node node;
    uint32_t workers;
    char name[];
} ps_gtopic;

ps_worker *sy__ps_current_worker(const sy_pubsub *ps)
{
    sy_loop *l = sy__loop_current();
    ps_worker *w = l ? l->topics : NULL;
    return w && w->ps == ps ? w : NULL;
}

sy_pubsub *sy__ps_worker_pubsub(const ps_worker *w)
{
    return w->ps;
}

size_t sy__ps_worker_index(const ps_worker *w)
{
    return w->idx;
}

sy_loop *sy__ps_worker_loop(const ps_worker *w)
{
    return w->loop;
}

/* ---- messages ---- */

ps_msg *sy__ps_msg_new(sy_pubsub *ps, const char *topic, size_t tlen, const void *data, size_t len,
                       int opcode)
{
    uint8_t hdr[14];
    size_t hl = sy_ws_frame_header(hdr, (uint8_t)opcode, 1, 0, len, NULL);
    ps_msg *m = sy__malloc(sizeof(*m) + tlen + hl + len);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->opcode = (uint8_t)opcode;
    m->hash = ps_hash(ps->seed, topic, tlen);
    m->topic_len = (uint32_t)tlen;
    m->len = len;
    m->hl = hl;
    memcpy(m->data, topic, tlen);
    memcpy(m->data + tlen, hdr, hl);
    if (len)
        memcpy(m->data + tlen + hl, data, len);
    return m;
}

void sy__ps_msg_unref(ps_msg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        sy__free(m);
}

static void msg_frame_free(const void *frame, void *ud)
{
    (void)frame;
    sy__ps_msg_unref(ud);
}

/* ---- inboxes: one order for every worker ---- */

static size_t msg_cost(const ps_msg *m)
{
    return sizeof(*m) + m->topic_len + m->hl + m->len;
}

static void inbox_task(sy_loop *loop, void *ud);

int sy__ps_enqueue(sy_pubsub *ps, ps_msg *m)
{
    size_t cost = msg_cost(m);
    int err = 0;
    pthread_mutex_lock(&ps->order_mu);
    /* All or none: first make sure every inbox has room (only this thread, holding order_mu,
     * adds to inboxes, so the room stays), then append. */
    for (size_t i = 0; i < ps->nworkers && !err; i++) {
        ps_worker *w = ps->workers[i];
        if (!w)
            continue;
        pthread_mutex_lock(&w->mu);
        if (w->in_len >= SY_PS_INBOX_MAX_MSGS || w->in_bytes + cost > SY_PS_INBOX_MAX_BYTES) {
            err = SY_EAGAIN;
        } else if (w->in_len == w->in_cap) {
            size_t cap = w->in_cap ? w->in_cap * 2 : 64;
            ps_msg **n = sy__realloc(w->inbox, cap * sizeof(*n));
            if (n) {
                w->inbox = n;
                w->in_cap = cap;
            } else {
                err = SY_ENOMEM;
            }
        }
        pthread_mutex_unlock(&w->mu);
    }
    for (size_t i = 0; i < ps->nworkers && !err; i++) {
        ps_worker *w = ps->workers[i];
        if (!w)
            continue;
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        pthread_mutex_lock(&w->mu);
        w->inbox[w->in_len++] = m;
        w->in_bytes += cost;
        int post = !w->posted;
        w->posted = 1;
        pthread_mutex_unlock(&w->mu);
        /* One task per batch, not per message. If it cannot be posted (no memory), the next
         * publish tries again. */
        if (post && sy_loop_post(w->loop, inbox_task, NULL) < 0) {
            pthread_mutex_lock(&w->mu);
            w->posted = 0;
            pthread_mutex_unlock(&w->mu);
        }
    }
    pthread_mutex_unlock(&ps->order_mu);
    return err;
}

/* ---- subscriptions ---- */

static int gtopic_add(sy_pubsub *ps, const char *name, size_t len, uint32_t hash)
{
    int err = 0;
    pthread_mutex_lock(&ps->gtopics_mu);
    ps_table *t = ps->gtopics;
    ps_gtopic *g = (ps_gtopic *)tab_find(t, name, len, hash);
    if (!g) {
        g = sy__malloc(sizeof(*g) + len);
        if (g) {
            memcpy(g->name, name, len);
            g->node.name = g->name;
            g->node.len = (uint32_t)len;
            g->node.hash = hash;
            g->workers = 0;
            tab_insert(t, &g->node);
            atomic_fetch_add_explicit(&ps->topics, 1, memory_order_relaxed);
        } else {
            err = SY_ENOMEM;
        }
    }
    if (g)
        g->workers++;
    pthread_mutex_unlock(&ps->gtopics_mu);
    return err;
}

static void gtopic_del(sy_pubsub *ps, const char *name, size_t len, uint32_t hash)
{
    pthread_mutex_lock(&ps->gtopics_mu);
    ps_table *t = ps->gtopics;
    ps_gtopic *g = (ps_gtopic *)tab_find(t, name, len, hash);
    if (g && --g->workers == 0) {
        tab_remove(t, &g->node);
        sy__free(g);
        atomic_fetch_sub_explicit(&ps->topics, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&ps->gtopics_mu);
}

static ps_topic *topic_new(ps_worker *w, const char *name, size_t len, uint32_t hash)
{
    ps_topic *t = sy__calloc(1, sizeof(*t) + len);
    if (!t)
        return NULL;
    if (gtopic_add(w->ps, name, len, hash) < 0) {
        sy__free(t);
        return NULL;
    }
    memcpy(t->name, name, len);
    t->node.name = t->name;
    t->node.len = (uint32_t)len;
    t->node.hash = hash;
    tab_insert(&w->topics, &t->node);
    return t;
}

static void topic_free(ps_worker *w, ps_topic *t)
{
    tab_remove(&w->topics, &t->node);
    gtopic_del(w->ps, t->name, t->node.len, t->node.hash);
    sy__free(t->subs);
    sy__free(t);
}

/* After a fan-out: close the holes that removals left, and drop a topic nobody wants. */
static void topic_settle(ps_worker *w, ps_topic *t)
{
    if (t->iterating)
        return;
    if (t->holes) {
        uint32_t j = 0;
        for (uint32_t i = 0; i < t->nsubs; i++) {
            if (t->subs[i]) {
                t->subs[j] = t->subs[i];
                t->subs[j]->idx = j;
                j++;
            }
        }
        t->nsubs = j;
        t->holes = 0;
    }
    if (!t->nsubs)
        topic_free(w, t);
}

/* Take s out of its topic (the connection's list is the caller's business). */
static void sub_detach(ps_worker *w, ps_sub *s)
{
    ps_topic *t = s->topic;
    if (t->iterating) {
        t->subs[s->idx] = NULL;
        t->holes++;
    } else {
        ps_sub *last = t->subs[--t->nsubs];
        t->subs[s->idx] = last;
        last->idx = s->idx;
    }
    atomic_fetch_sub_explicit(&w->ps->subscriptions, 1, memory_order_relaxed);
    topic_settle(w, t);
}

static ps_sub *find_sub(const ps_conn *c, const ps_topic *t, const sy_ws *ws)
{
    if (!c || !t)
        return NULL;
    /* Scan the shorter list: a topic with few subscribers, or a connection with few topics. */
    if (t->nsubs < c->n) {
        for (uint32_t i = 0; i < t->nsubs; i++)
            if (t->subs[i] && t->subs[i]->ws == ws)
                return t->subs[i];
        return NULL;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (c->subs[i]->topic == t)
            return c->subs[i];
    return NULL;
}

/* Room for need entries of sub pointers: returns the array (moved or not), NULL without
 * memory (the old one is then still valid). */
static ps_sub **grow(ps_sub **arr, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return arr;
    uint32_t n = *cap ? *cap * 2 : 4;
    while (n < need)
        n *= 2;
    ps_sub **p = sy__realloc(arr, (size_t)n * sizeof(*p));
    if (p)
        *cap = n;
    return p;
}

/* The connection closed (after its on_close): its subscriptions end. */
static void conn_end(sy_ws *ws)
{
    ps_conn *c = (ps_conn *)ws->ext;
    ws->ext = NULL;
    if (!c)
        return;
    for (uint32_t i = c->n; i-- > 0;) {
        ps_sub *s = c->subs[i];
        sub_detach(c->w, s);
        sy__free(s);
    }
    sy__free(c->subs);
    sy__free(c);
}

SY_EXPORT int sy_ws_subscribe(sy_ws *ws, const char *topic)
{
    size_t tl = topic ? strlen(topic) : 0;
    if (!tl || tl > SY_PS_TOPIC_MAX)
        return SY_EINVAL;
    if (ws->dead || ws->close_sent || sy__bs_state(ws->c) != SY_BS_OPEN)
        return SY_ECLOSED;
    ps_worker *w = ws->is_client ? NULL : ws->loop->topics;
    if (!w)
        return SY_ESTATE;
    uint32_t hash = ps_hash(w->ps->seed, topic, tl);
    ps_topic *t = (ps_topic *)tab_find(&w->topics, topic, tl, hash);
    ps_conn *c = (ps_conn *)ws->ext;
    if (find_sub(c, t, ws))
        return SY_EEXIST;
    if (!c) {
        if (!(c = sy__calloc(1, sizeof(*c))))
            return SY_ENOMEM;
        c->w = w;
        c->ext.end = conn_end;
        ws->ext = &c->ext;
    }
    int fresh = !t;
    if (fresh && !(t = topic_new(w, topic, tl, hash)))
        return SY_ENOMEM;
    ps_sub *s = sy__malloc(sizeof(*s)), **cs = NULL, **ts = NULL;
    if (s && (cs = grow(c->subs, &c->cap, c->n + 1)))
        c->subs = cs;
    if (cs && (ts = grow(t->subs, &t->cap, t->nsubs + 1)))
        t->subs = ts;
    if (!ts) {
        sy__free(s);
        if (fresh)
            topic_free(w, t);
        return SY_ENOMEM;
    }
    s->ws = ws;
    s->topic = t;
    s->idx = t->nsubs;
    s->cidx = c->n;
    t->subs[t->nsubs++] = s;
    c->subs[c->n++] = s;
    atomic_fetch_add_explicit(&w->ps->subscriptions, 1, memory_order_relaxed);
    return 0;
}

SY_EXPORT int sy_ws_unsubscribe(sy_ws *ws, const char *topic)
{
    ps_conn *c = (ps_conn *)ws->ext;
    size_t tl = topic ? strlen(topic) : 0;
    if (!c || !tl)
        return SY_ENOTFOUND;
    ps_worker *w = c->w;
    ps_topic *t = (ps_topic *)tab_find(&w->topics, topic, tl, ps_hash(w->ps->seed, topic, tl));
    ps_sub *s = find_sub(c, t, ws);
    if (!s)
        return SY_ENOTFOUND;
    ps_sub *last = c->subs[--c->n];
    c->subs[s->cidx] = last;
    last->cidx = s->cidx;
    sub_detach(w, s);
    sy__free(s);
    return 0;
}

/* ---- fan-out ---- */

static int scratch_sink(void *ud, const uint8_t *data, size_t len)
{
    ps_worker *w = ud;
    if (w->scratch_len + len > w->scratch_cap) {
        size_t cap = SY_MAX(w->scratch_cap * 2, SY_MAX(w->scratch_len + len, 4096));
        uint8_t *n = sy__realloc(w->scratch, cap);
        if (!n)
            return SY_ENOMEM;
        w->scratch = n;
        w->scratch_cap = cap;
    }
    memcpy(w->scratch + w->scratch_len, data, len);
    w->scratch_len += len;
    return 0;
}

/* The shared compressor for a subscriber's deflate settings, or -1 (none free, or no zlib
 * budget: the subscriber then compresses with its own context). */
static int deflater_for(ps_worker *w, const sy_pmd *p)
{
    int free_slot = -1;
    for (int i = 0; i < PS_DEFLATERS; i++) {
        ps_deflater *d = &w->defl[i];
        if (!d->used) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (d->wbits == p->params.tx_window_bits && d->level == p->level &&
            d->mem_level == p->mem_level)
            return i;
    }
    if (free_slot < 0)
        return -1;
    ps_deflater *d = &w->defl[free_slot];
    sy_pmd_params params = {.tx_window_bits = p->params.tx_window_bits,
                            .rx_window_bits = 9,
                            .tx_no_context_takeover = 1};
    size_t cost = sy_pmd_cost(&params, p->mem_level);
    if (!sy_pmd_reserve(cost, SY_PMD_CHEAP))
        return -1;
    memset(&d->pmd, 0, sizeof(d->pmd));
    sy_pmd_init(&d->pmd, &params, p->mem_level);
    d->pmd.level = p->level;
    d->pmd.reserved = cost; /* released by sy_pmd_free */
    d->used = 1;
    d->wbits = p->params.tx_window_bits;
    d->level = p->level;
    d->mem_level = p->mem_level;
    return free_slot;
}

static ps_cframe *compress_msg(ps_worker *w, ps_deflater *d, const ps_msg *m)
{
    w->scratch_len = 0;
    if (sy_pmd_deflate(&d->pmd, ps_msg_payload(m), m->len, 1, scratch_sink, w) < 0)
        return NULL;
    uint8_t hdr[14];
    size_t hl = sy_ws_frame_header(hdr, m->opcode, 1, SY_WS_RSV1, w->scratch_len, NULL);
    ps_cframe *f = sy__malloc(sizeof(*f) + hl + w->scratch_len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = hl + w->scratch_len;
    f->plen = w->scratch_len;
    memcpy(f->data, hdr, hl);
    memcpy(f->data + hl, w->scratch, w->scratch_len);
    if (w->scratch_cap > (1u << 20)) {
        sy__free(w->scratch); /* a one-off giant message should not stay pinned */
        w->scratch = NULL;
        w->scratch_cap = 0;
    }
    return f;
}

static void cframe_unref(ps_cframe *f)
{
    if (--f->refs == 0)
        sy__free(f);
}

static void cframe_free(const void *frame, void *ud)
{
    (void)frame;
    cframe_unref(ud);
}

typedef struct fan {
    ps_cframe *cf[PS_DEFLATERS];
    uint8_t cf_failed[PS_DEFLATERS];
} fan;

static int deliver(ps_worker *w, const ps_msg *m, sy_ws *ws, fan *f)
{
    sy_pmd *p = ws->pmd;
    if (p && sy_pmd_can_compress(p) && m->len >= ws->opts->deflate_threshold) {
        int k = deflater_for(w, p);
        if (k < 0) /* the subscriber's own compressor, as sy_ws_send would */
            return sy_ws_send(ws, m->opcode, ps_msg_payload(m), m->len);
        if (!f->cf[k] && !f->cf_failed[k] && !(f->cf[k] = compress_msg(w, &w->defl[k], m)))
            f->cf_failed[k] = 1;
        ps_cframe *c = f->cf[k];
        if (c && c->len <= PS_COPY_MAX)
            return sy__ws_send_frame(ws, c->data, c->len, c->plen, 1, NULL, NULL);
        if (c) {
            c->refs++;
            return sy__ws_send_frame(ws, c->data, c->len, c->plen, 1, cframe_free, c);
        }
        /* Compression failed (no memory): uncompressed is always allowed (RFC 7692 §6). */
    }
    size_t len = m->hl + m->len;
    if (len <= PS_COPY_MAX)
        return sy__ws_send_frame(ws, ps_msg_frame(m), len, m->len, 0, NULL, NULL);
    atomic_fetch_add_explicit(&((ps_msg *)m)->refs, 1, memory_order_relaxed);
    return sy__ws_send_frame(ws, ps_msg_frame(m), len, m->len, 0, msg_frame_free, (void *)m);
}

static void fanout(ps_worker *w, const ps_msg *m)
{
    ps_topic *t = (ps_topic *)tab_find(&w->topics, ps_msg_topic(m), m->topic_len, m->hash);
    if (!t)
        return;
    fan f;
    memset(&f, 0, sizeof(f));
    uint64_t delivered = 0, dropped = 0;
    /* Subscribers added meanwhile (nothing here calls the application, but be safe) start
     * with the next message; those removed meanwhile leave holes. */
    uint32_t n = t->nsubs;
    t->iterating++;
    for (uint32_t i = 0; i < n; i++) {
        ps_sub *s = t->subs[i];
        if (!s)
            continue;
        int r = deliver(w, m, s->ws, &f);
        if (r < 0 || r == SY_WS_SEND_DROPPED)
            dropped++;
        else
            delivered++;
    }
    t->iterating--;
    topic_settle(w, t);
    for (int k = 0; k < PS_DEFLATERS; k++)
        if (f.cf[k])
            cframe_unref(f.cf[k]);
    if (delivered)
        atomic_fetch_add_explicit(&w->ps->delivered, delivered, memory_order_relaxed);
    if (dropped)
        atomic_fetch_add_explicit(&w->ps->dropped, dropped, memory_order_relaxed);
}

static void run_unref(ps_run *r)
{
    if (--r->refs == 0)
        sy__free(r);
}

static void run_free(const void *data, void *ud)
{
    (void)data;
    run_unref(ud);
}

/* Whether m can join a run (a small frame) and, with first given, the run of first. */
static int run_fits(const ps_msg *m, const ps_msg *first)
{
    if (m->hl + m->len > PS_COPY_MAX)
        return 0;
    return !first || (m->hash == first->hash && m->topic_len == first->topic_len &&
                      memcmp(ps_msg_topic(m), ps_msg_topic(first), m->topic_len) == 0);
}

/* Fan out the n messages of a run (n >= 1, all small, one topic): subscribers that do not
 * compress get the frames in one shared piece; the others message by message (their frames
 * differ). Each subscriber gets the run's messages in order, and under its own backpressure
 * policy exactly the ones it would get message by message. */
static void fanout_run(ps_worker *w, ps_msg *const *msgs, size_t n)
{
    const ps_msg *m0 = msgs[0];
    ps_topic *t = (ps_topic *)tab_find(&w->topics, ps_msg_topic(m0), m0->topic_len, m0->hash);
    if (!t)
        return;
    size_t bytes = 0, payload = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += msgs[i]->hl + msgs[i]->len;
        payload += msgs[i]->len;
        w->run_ends[i] = (uint32_t)bytes;
        w->run_pends[i] = (uint32_t)payload;
    }
    ps_run *r = sy__malloc(sizeof(*r) + bytes);
    if (!r) { /* message by message, copied */
        for (size_t i = 0; i < n; i++)
            fanout(w, msgs[i]);
        return;
    }
    r->refs = 1;
    for (size_t i = 0, off = 0; i < n; i++) {
        size_t fl = msgs[i]->hl + msgs[i]->len;
        memcpy(r->data + off, ps_msg_frame(msgs[i]), fl);
        off += fl;
    }
    uint64_t delivered = 0, dropped = 0;
    uint32_t ns = t->nsubs, compressing = 0;
    t->iterating++;
    for (uint32_t i = 0; i < ns; i++) {
        ps_sub *s = t->subs[i];
        if (!s)
            continue;
        sy_ws *ws = s->ws;
        if (ws->pmd && sy_pmd_can_compress(ws->pmd)) {
            compressing++;
            continue;
        }
        size_t q;
        r->refs++;
        (void)sy__ws_send_run(ws, r->data, w->run_ends, w->run_pends, n, run_free, r, &q);
        delivered += q;
        dropped += n - q;
    }
    run_unref(r);
    /* Then those that compress, message by message (each subscriber still in order). */
    for (size_t k = 0; k < n && compressing; k++) {
        const ps_msg *m = msgs[k];
        fan f;
        memset(&f, 0, sizeof(f));
        for (uint32_t i = 0; i < ns; i++) {
            ps_sub *s = t->subs[i];
            if (!s || !(s->ws->pmd && sy_pmd_can_compress(s->ws->pmd)))
                continue;
            int res = deliver(w, m, s->ws, &f);
            if (res < 0 || res == SY_WS_SEND_DROPPED)
                dropped++;
            else
                delivered++;
        }
        for (int j = 0; j < PS_DEFLATERS; j++)
            if (f.cf[j])
                cframe_unref(f.cf[j]);
    }
    t->iterating--;
    topic_settle(w, t);
    if (delivered)
        atomic_fetch_add_explicit(&w->ps->delivered, delivered, memory_order_relaxed);
    if (dropped)
        atomic_fetch_add_explicit(&w->ps->dropped, dropped, memory_order_relaxed);
}

/* Take what the inbox holds (in order) and fan it out. The messages are copied out under the
 * lock rather than the arrays swapped: publishers size the inbox before they fill it, and a
 * swap would hand them a smaller array in between. */
static void inbox_task(sy_loop *loop, void *ud)
{
    (void)ud;
    ps_worker *w = loop->topics;
    if (!w)
        return; /* the registry is gone (run inside sy_loop_free): it freed the messages */
    pthread_mutex_lock(&w->mu);
    size_t want = w->in_len;
    pthread_mutex_unlock(&w->mu);
    if (want > w->work_cap) {
        ps_msg **n = sy__realloc(w->work, want * sizeof(*n));
        if (n) { /* else: in pieces of what we have */
            w->work = n;
            w->work_cap = want;
        }
    }
    pthread_mutex_lock(&w->mu);
    size_t n = SY_MIN(w->in_len, w->work_cap), bytes = 0;
    memcpy(w->work, w->inbox, n * sizeof(*w->work));
    memmove(w->inbox, w->inbox + n, (w->in_len - n) * sizeof(*w->inbox));
    w->in_len -= n;
    for (size_t i = 0; i < n; i++)
        bytes += msg_cost(w->work[i]);
    w->in_bytes -= bytes;
    /* What arrived meanwhile waits for the next turn of the loop (a task of its own), so
     * that a steady stream of publishes never keeps this loop from its sockets. */
    int more = w->in_len != 0;
    if (!more)
        w->posted = 0;
    pthread_mutex_unlock(&w->mu);
    /* Runs of small messages for one topic go out together; others one by one. */
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        if (run_fits(w->work[i], NULL)) {
            size_t rb = w->work[i]->hl + w->work[i]->len;
            while (j < n && j - i < PS_RUN_MSGS && run_fits(w->work[j], w->work[i]) &&
                   rb + w->work[j]->hl + w->work[j]->len <= PS_RUN_BYTES) {
                rb += w->work[j]->hl + w->work[j]->len;
                j++;
            }
            fanout_run(w, w->work + i, j - i);
        } else {
            fanout(w, w->work[i]);
        }
        for (; i < j; i++)
            sy__ps_msg_unref(w->work[i]);
    }
    if (more && sy_loop_post(loop, inbox_task, NULL) < 0) {
        pthread_mutex_lock(&w->mu);
        w->posted = 0; /* the next publish posts again */
        pthread_mutex_unlock(&w->mu);
    }
}

/* ---- publish ---- */

SY_EXPORT int sy_server_publish(sy_server *srv, const char *topic, const void *data, size_t len,
                                int opcode)
{
    sy_pubsub *ps = srv ? srv->pubsub : NULL;
    size_t tl = topic ? strlen(topic) : 0;
    if (!ps || !tl || tl > SY_PS_TOPIC_MAX || (!data && len) ||
        (opcode != SY_WS_TEXT && opcode != SY_WS_BINARY))
        return SY_EINVAL;
    if (opcode == SY_WS_TEXT && !sy_utf8_valid(data, len))
        return SY_EINVAL;
    if (!srv->started || !ps->workers)
        return SY_ESTATE;
    int e;
    if (ps->redis) {
        e = sy__ps_redis_publish(ps, topic, tl, data, len, opcode);
    } else {
        ps_msg *m = sy__ps_msg_new(ps, topic, tl, data, len, opcode);
        if (!m)
            return SY_ENOMEM;
        e = sy__ps_enqueue(ps, m);
        sy__ps_msg_unref(m);
    }
    if (e == SY_EAGAIN)
        atomic_fetch_add_explicit(&ps->publish_refused, 1, memory_order_relaxed);
    else if (!e)
        atomic_fetch_add_explicit(&ps->published, 1, memory_order_relaxed);
    return e;
}

/* ---- lifecycle ---- */

sy_pubsub *sy__pubsub_new(sy_server *srv)
{
    sy_pubsub *ps = sy__calloc(1, sizeof(*ps));
    ps_table *g = sy__calloc(1, sizeof(*g));
    if (!ps || !g || tab_init(g) < 0) {
        sy__free(g);
        sy__free(ps);
        return NULL;
    }
    ps->srv = srv;
    ps->gtopics = g;
    pthread_mutex_init(&ps->order_mu, NULL);
    pthread_mutex_init(&ps->gtopics_mu, NULL);
    if (getrandom(&ps->seed, sizeof(ps->seed), GRND_NONBLOCK) != sizeof(ps->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ps->seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)ps;
    }
    return ps;
}

void sy__pubsub_free(sy_pubsub *ps)
{
    if (!ps)
        return;
    sy__ps_redis_free(ps);
    ps_table *g = ps->gtopics;
    for (size_t i = 0; i < g->nb; i++) {
        for (ps_node *n = g->b[i], *next; n; n = next) {
            next = n->next;
            sy__free(n);
        }
    }
    sy__free(g->b);
    sy__free(g);
    sy__free(ps->workers);
    pthread_mutex_destroy(&ps->order_mu);
    pthread_mutex_destroy(&ps->gtopics_mu);
    sy__free(ps);
}

int sy__pubsub_worker_init(sy_worker *sw)
{
    sy_server *srv = sw->srv;
    sy_pubsub *ps = srv->pubsub;
    if (!ps)
        return 0;
    if (!ps->workers) {
        ps->workers = sy__calloc(srv->nworkers, sizeof(*ps->workers));
        if (!ps->workers)
            return SY_ENOMEM;
        ps->nworkers = srv->nworkers;
    }
    ps_worker *w = sy__calloc(1, sizeof(*w));
    if (!w || tab_init(&w->topics) < 0) {
        sy__free(w);
        return SY_ENOMEM;
    }
    w->ps = ps;
    w->idx = (size_t)(sw - srv->workers);
    w->loop = sw->loop;
    w->work_cap = 256;
    if (!(w->work = sy__malloc(w->work_cap * sizeof(*w->work)))) {
        sy__free(w->topics.b);
        sy__free(w);
        return SY_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    ps->workers[w->idx] = w;
    sw->loop->topics = w;
    if (ps->redis)
        return sy__ps_redis_worker_init(ps, w->idx, sw->loop);
    return 0;
}

void sy__pubsub_worker_free(sy_worker *sw)
{
    ps_worker *w = sw->loop ? sw->loop->topics : NULL;
    if (!w)
        return;
    sy_pubsub *ps = w->ps;
    if (ps->redis)
        sy__ps_redis_worker_free(ps, w->idx);
    /* No publisher may reach this inbox any more. */
    pthread_mutex_lock(&ps->order_mu);
    ps->workers[w->idx] = NULL;
    pthread_mutex_unlock(&ps->order_mu);
    sw->loop->topics = NULL;
    /* Connections still subscribed (the loop stopped with them open) forget their lists. */
    for (size_t i = 0; i < w->topics.nb; i++) {
        for (ps_node *n = w->topics.b[i], *next; n; n = next) {
            next = n->next;
            ps_topic *t = (ps_topic *)n;
            for (uint32_t j = 0; j < t->nsubs; j++) {
                ps_sub *s = t->subs[j];
                if (!s)
                    continue;
                ps_conn *c = (ps_conn *)s->ws->ext;
                if (c) {
                    sy__free(c->subs);
                    sy__free(c);
                    s->ws->ext = NULL;
                }
                sy__free(s);
                atomic_fetch_sub_explicit(&ps->subscriptions, 1, memory_order_relaxed);
            }
            gtopic_del(ps, t->name, t->node.len, t->node.hash);
            sy__free(t->subs);
            sy__free(t);
        }
    }
    sy__free(w->topics.b);
    for (size_t i = 0; i < w->in_len; i++)
        sy__ps_msg_unref(w->inbox[i]);
    sy__free(w->inbox);
    sy__free(w->work);
    for (int i = 0; i < PS_DEFLATERS; i++)
        if (w->defl[i].used)
            sy_pmd_free(&w->defl[i].pmd);
    sy__free(w->scratch);
    pthread_mutex_destroy(&w->mu);
    sy__free(w);
}

void sy__pubsub_stats(const sy_server *srv, sy_server_stats *out)
{
    sy_pubsub *ps = srv->pubsub;
    if (!ps)
        return;
    out->topics = atomic_load_explicit(&ps->topics, memory_order_relaxed);
    out->subscriptions = atomic_load_explicit(&ps->subscriptions, memory_order_relaxed);
    out->published = atomic_load_explicit(&ps->published, memory_order_relaxed);
    out->publish_refused = atomic_load_explicit(&ps->publish_refused, memory_order_relaxed);
    out->delivered = atomic_load_explicit(&ps->delivered, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&ps->dropped, memory_order_relaxed);
    if (ps->redis)
        sy__ps_redis_stats(ps, out);
}
