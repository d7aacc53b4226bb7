/* The WebSocket engine (see ws.h). Runs the sans-I/O frame codec over the connection's bytes,
 * assembles messages (a message that arrives whole in one read is delivered straight from
 * the read buffer, without a copy), and turns sends into frames queued in one piece. */
#include "ws/ws.h"
#include "core/log.h"
#include "ws/mask.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>

static ssize_t ws_on_read(sy_bstream *c, uint8_t *data, size_t len);
static void ws_on_drain(sy_bstream *c);
static void ws_on_eof(sy_bstream *c);
static void ws_on_timer(sy_bstream *c);
static void ws_on_shutdown(sy_bstream *c);
static void ws_on_close(sy_bstream *c, int err);

static uint8_t *ws_read_into(sy_bstream *c, size_t *len, size_t *next);
static const sy_bstream_proto ws_proto = {
    "websocket", ws_on_read,     ws_on_drain, ws_on_eof,
    ws_on_timer, ws_on_shutdown, ws_on_close, ws_read_into,
};

static void schedule_timer(sy_ws *ws);

sy_ws *sy__ws_attach(sy_bstream *c, const sy_ws_opts *opts, int is_client, sy_pmd *pmd)
{
    /* In the connection's own allocation when it reserved room: one block per WebSocket. */
    sy_ws *ws = sy__bs_tail(c, sizeof(*ws));
    int in_tail = ws != NULL;
    if (!ws && !(ws = sy__calloc(1, sizeof(*ws))))
        return NULL;
    ws->in_tail = (unsigned)in_tail;
    ws->ud = opts->ud;
    atomic_init(&ws->refs, 1);
    sy__ws_start(ws, c, opts, is_client, pmd);
    return ws;
}

void sy__ws_start(sy_ws *ws, sy_bstream *c, const sy_ws_opts *opts, int is_client, sy_pmd *pmd)
{
    ws->c = c;
    ws->loop = c->loop;
    ws->opts = opts;
    ws->is_client = (uint8_t)is_client;
    ws->pmd = pmd;
    sy_ws_parser_init(&ws->rx.parser, !is_client, pmd ? SY_WS_RSV1 : 0);
    ws->last_rx_ms = c->loop->now_ms;
    if (pmd) {
        pmd->inflate_credit = (int64_t)opts->max_inflate_rate; /* one second's worth */
        pmd->credit_ms = c->loop->now_ms;
    }
    ws->close_code = 1006;
    c->proto = &ws_proto;
    c->proto_data = ws;
    /* The codec consumes payload as it comes: only frame headers wait, 64 KiB at most. */
    sy__bs_set_limits(c, 1 << 16, (uint32_t)SY_MIN(opts->low_water, UINT32_MAX));
    schedule_timer(ws);
}

/* A heap copy of s[0..n) (NUL-terminated), or NULL. */
char *sy__ws_strdup(const char *s, size_t n)
{
    char *d = sy__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

sy_ws_cold *sy__ws_cold(sy_ws *ws)
{
    if (!ws->cold)
        ws->cold = sy__calloc(1, sizeof(*ws->cold));
    return ws->cold;
}

static void set_reason(sy_ws *ws, const char *s, size_t n)
{
    sy_ws_cold *k = sy__ws_cold(ws);
    if (!k)
        return;
    sy__free(k->close_reason);
    k->close_reason = sy__ws_strdup(s ? s : "", s ? SY_MIN(n, 123) : 0);
}

static void set_detail(sy_ws *ws, const char *detail)
{
    sy_ws_cold *k = sy__ws_cold(ws);
    if (k)
        k->detail = detail;
}

static const char *get_detail(const sy_ws *ws)
{
    return ws->cold ? ws->cold->detail : NULL;
}

void sy__ws_unref(sy_ws *ws)
{
    if (atomic_fetch_sub(&ws->refs, 1) == 1) {
        if (ws->is_client && ws->opts)
            sy_ws_opts_free((sy_ws_opts *)ws->opts); /* a client's own copy */
        if (ws->cold) {
            sy__free(ws->cold->close_reason);
            sy__free(ws->cold->subprotocol);
            sy__free(ws->cold->extensions);
            sy__free(ws->cold);
        }
        if (ws->in_tail)
            sy__bs_tail_release(ws);
        else
            sy__free(ws);
    }
}

/* ---- output ---- */

/* Per-thread buffers, reused so that steady traffic allocates nothing per message:
 * `scratch` receives compressed output before it is framed; `spare` is a message-assembly
 * buffer handed from one message to the next (a message that completes within one read
 * borrows it and gives it back at delivery). Freed when the thread exits. */
typedef struct ws_thread {
    uint8_t *scratch;
    size_t scratch_len, scratch_cap;
    sy_ws_msgbuf *spare;
    sy_ws_msgbuf *big; /* one large buffer (up to BIG_SPARE_MAX) kept for the next big message */
    /* Bytes on the wire (header and payload) of the last large uncompressed data frame
     * received on this thread, 0 if none: reads are sized to whole frames of that size
     * (ws_read_into), so steady traffic of one frame size is not cut between reads. */
    uint32_t frame_hint;
    /* The message being delivered right now (on_message), so that sending it back (echo,
     * relay) skips re-validating it and, when it sits in its own buffer, moves that buffer
     * to the write queue instead of copying it. Its opcode is recorded here, at delivery:
     * nothing the send side does meanwhile can change what was received. */
    struct ws_deliv {
        const sy_ws *ws;
        const uint8_t *data;
        size_t len;
        int opcode;
    } deliv;
} ws_thread;

static __thread ws_thread tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_release(void *p)
{
    ws_thread *t = p;
    sy__free(t->scratch);
    sy__free(t->spare);
    sy__free(t->big);
    memset(t, 0, sizeof(*t));
}

static void tls_key_init(void)
{
    pthread_key_create(&tls_key, tls_release);
}

static void tls_register(void)
{
    /* A non-NULL value makes the key's destructor run at thread exit. */
    pthread_once(&tls_once, tls_key_init);
    if (!pthread_getspecific(tls_key))
        pthread_setspecific(tls_key, &tls);
}

/* Large message buffers cycle through one per-thread slot instead of going back to the
 * allocator (for big messages that is an mmap/munmap and a page fault per page each time). */
#define BIG_SPARE_MAX (4u << 20)

/* Keep a message buffer in a free per-thread slot (small or big), else free it. */
static void recycle(sy_ws_msgbuf *b)
{
    if (!tls.spare && b->cap <= (256u << 10)) {
        tls_register();
        tls.spare = b;
    } else if (!tls.big && b->cap <= BIG_SPARE_MAX) {
        tls_register();
        tls.big = b;
    } else {
        sy__free(b);
    }
}

/* A message buffer of at least cap bytes: the big spare when it fits, else a new one. */
static sy_ws_msgbuf *msgbuf_new(size_t cap)
{
    if (tls.big && tls.big->cap >= cap) {
        sy_ws_msgbuf *b = tls.big;
        tls.big = NULL;
        return b;
    }
    if (cap > SIZE_MAX - sizeof(sy_ws_msgbuf))
        return NULL;
    sy_ws_msgbuf *b = sy__malloc(sizeof(*b) + cap);
    if (b)
        b->cap = cap;
    return b;
}

/* Write-queue release of a message buffer queued by reference (ud is the buffer). */
static void free_owned(const void *data, void *ud)
{
    (void)data;
    recycle(ud);
}

/* Queue one frame: header and payload land in the same chunk when they fit, so a small
 * message costs one copy and one iovec. Client frames are masked while copying. */
static int queue_frame(sy_ws *ws, uint8_t opcode, int fin, uint8_t rsv, const uint8_t *payload,
                       size_t len)
{
    sy_bstream *c = ws->c;
    uint8_t key[4];
    const uint8_t *mask = NULL;
    if (ws->is_client) {
        if (RAND_bytes(key, 4) != 1)
            return SY_EINTERNAL;
        mask = key;
    }
    uint8_t hdr[14];
    size_t hl = sy_ws_frame_header(hdr, opcode, fin, rsv, len, mask);
    size_t got;
    uint8_t *p = sy__bs_reserve(c, hl + len, &got);
    if (!p)
        return SY_ENOMEM;
    if (got >= hl + len) {
        memcpy(p, hdr, hl);
        if (mask)
            sy_ws_mask_copy(p + hl, payload, len, mask, 0);
        else if (len)
            memcpy(p + hl, payload, len);
        sy__bs_commit(c, hl + len);
        return 0;
    }
    /* Large payload: header first, then the payload. From 64 KiB on, one buffer of its own
     * (a single copy and a single iovec) beats many pooled chunks. */
    int e = sy__bs_write(c, hdr, hl);
    if (e)
        return e;
    if (len >= 65536) {
        sy_ws_msgbuf *own = msgbuf_new(len);
        if (!own)
            return SY_ENOMEM;
        if (mask)
            sy_ws_mask_copy(own->data, payload, len, mask, 0);
        else
            memcpy(own->data, payload, len);
        return sy__bs_write_ref(c, own->data, len, free_owned, own);
    }
    if (!mask)
        return sy__bs_write(c, payload, len);
    unsigned off = 0;
    while (len) {
        uint8_t *dst = sy__bs_reserve(c, len, &got);
        if (!dst)
            return SY_ENOMEM;
        size_t n = SY_MIN(got, len);
        off = sy_ws_mask_copy(dst, payload, n, mask, off);
        sy__bs_commit(c, n);
        payload += n;
        len -= n;
    }
    return 0;
}

static int scratch_sink(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    if (tls.scratch_len + len > tls.scratch_cap) {
        size_t cap = SY_MAX(tls.scratch_cap * 2, SY_MAX(tls.scratch_len + len, 16384));
        uint8_t *n = sy__realloc(tls.scratch, cap);
        if (!n)
            return SY_ENOMEM;
        tls_register();
        tls.scratch = n;
        tls.scratch_cap = cap;
    }
    memcpy(tls.scratch + tls.scratch_len, data, len);
    tls.scratch_len += len;
    return 0;
}

static void fail(sy_ws *ws, int code, int cause, const char *detail);

static int send_close_frame(sy_ws *ws, int code, const char *reason)
{
    uint8_t buf[125];
    size_t n = 0;
    if (code && code != 1005) {
        buf[0] = (uint8_t)(code >> 8);
        buf[1] = (uint8_t)code;
        n = 2;
        if (reason) {
            size_t rl = strlen(reason);
            if (rl > 123)
                rl = 123;
            /* Never cut a UTF-8 sequence in half. */
            while (rl && !sy_utf8_valid((const uint8_t *)reason, rl))
                rl--;
            memcpy(buf + 2, reason, rl);
            n += rl;
        }
    }
    ws->close_sent = 1;
    return queue_frame(ws, SY_WS_OP_CLOSE, 1, 0, buf, n);
}

/* What the backpressure policy says about a message of len payload bytes with buffered bytes
 * already queued: 0 it goes, 1 it is dropped, 2 the connection closes (high-water mark), 3
 * the connection closes (maximum). No side effects: sy__ws_send_run asks it about frames it
 * has not queued yet. */
static inline int bp_verdict(const sy_ws_opts *o, size_t buffered, size_t len)
{
    if (buffered < o->high_water)
        return 0;
    switch (o->bp_policy) {
    case SY_WS_BP_DROP:
        return 1;
    case SY_WS_BP_CLOSE:
        return 2;
    default:
        return buffered + len > o->max_buffer ? 3 : 0;
    }
}

/* Apply a verdict other than 0. */
static int bp_refuse(sy_ws *ws, int verdict)
{
    if (verdict == 2)
        fail(ws, 1008, SY_WS_CAUSE_BACKPRESSURE, "send buffer above the high-water mark");
    else if (verdict == 3)
        fail(ws, 1008, SY_WS_CAUSE_BACKPRESSURE, "send buffer above its maximum");
    return SY_WS_SEND_DROPPED;
}

/* Backpressure gate before queueing `len` more bytes. Returns -1 to queue normally,
 * otherwise the sy_ws_send result to return without queueing. */
static int bp_gate(sy_ws *ws, size_t len)
{
    int v = bp_verdict(ws->opts, sy__bs_buffered(ws->c), len);
    return v ? bp_refuse(ws, v) : -1;
}

/* A message (or, with fin 0, a fragment of one) was queued: count it. */
static inline void count_out(sy_ws *ws, size_t len, int fin)
{
    sy_http_metrics *m = sy__uplog_metrics(ws->log);
    if (m) {
        sy__ctr_add(&m->ws_bytes_out, len);
        if (fin)
            sy__ctr_inc(&m->ws_msgs_out);
    }
}

static int after_send(sy_ws *ws)
{
    if (sy__bs_buffered(ws->c) >= ws->opts->high_water) {
        ws->bp_flagged = 1;
        sy__bs_want_drain(ws->c);
        return SY_WS_SEND_BACKPRESSURE;
    }
    return SY_WS_SEND_OK;
}

static int send_message(sy_ws *ws, int opcode, const void *data, size_t len, int fin, int first)
{
    uint8_t op = first ? (uint8_t)opcode : SY_WS_OP_CONT;
    int compress = ws->pmd && sy_pmd_can_compress(ws->pmd) &&
                   (first ? (len >= ws->opts->deflate_threshold || !fin) : ws->frag_compressed);
    if (!compress)
        return queue_frame(ws, op, fin, 0, data, len);
    tls.scratch_len = 0;
    int e = sy_pmd_deflate(ws->pmd, data, len, fin, scratch_sink, NULL);
    if (e)
        return e;
    if (first)
        ws->frag_compressed = 1;
    e = queue_frame(ws, op, fin, first ? SY_WS_RSV1 : 0, tls.scratch, tls.scratch_len);
    if (tls.scratch_cap > (4u << 20)) {
        /* a one-off giant message should not stay pinned in the thread */
        sy__free(tls.scratch);
        tls.scratch = NULL;
        tls.scratch_cap = 0;
    }
    return e;
}

/* Non-zero when data is exactly the message being delivered to this connection's callback. */
static int is_delivered(const sy_ws *ws, const void *data, size_t len)
{
    return tls.deliv.ws == ws && data == (const void *)tls.deliv.data && len == tls.deliv.len;
}

/* 0 when frames may be queued now. Checks dead first: after on_close ws->c is NULL. A client
 * handle exists before its handshake is done, but nothing may be sent before the 101. */
static int check_open(const sy_ws *ws)
{
    if (ws->dead || ws->close_sent || sy__bs_state(ws->c) != SY_BS_OPEN)
        return SY_ECLOSED;
    if (!ws->open_done)
        return SY_ESTATE;
    return 0;
}

static int check_sendable(sy_ws *ws, int opcode, const void *data, size_t len)
{
    int e = check_open(ws);
    if (e)
        return e;
    if (opcode != SY_WS_TEXT && opcode != SY_WS_BINARY)
        return SY_EINVAL;
    /* A text message being delivered was validated on arrival. */
    if (opcode == SY_WS_TEXT &&
        !(is_delivered(ws, data, len) && tls.deliv.opcode == SY_WS_OP_TEXT) &&
        !sy_utf8_valid(data, len))
        return SY_EINVAL;
    return 0;
}

/* From this size on, a message echoed from the input is sent by reference (a separate iovec)
 * rather than copied next to its header. */
#define INPUT_REF_MIN 4096

SY_EXPORT int sy_ws_send(sy_ws *ws, int opcode, const void *data, size_t len)
{
    int e = check_sendable(ws, opcode, data, len);
    if (e)
        return e;
    if (ws->frag_sending)
        return SY_ESTATE;
    int g = bp_gate(ws, len);
    if (g >= 0)
        return g;
    if (len >= 65536 && ws->rx.msg && data == ws->rx.msg->data && is_delivered(ws, data, len) &&
        !ws->is_client && !(ws->pmd && sy_pmd_can_compress(ws->pmd))) {
        /* Sending back the assembled message: its buffer moves to the write queue (which
         * frees nothing before the end of this loop iteration, so data stays valid for the
         * rest of on_message; the receive side starts the next message in a new buffer). */
        uint8_t hdr[14];
        size_t hl = sy_ws_frame_header(hdr, (uint8_t)opcode, 1, 0, len, NULL);
        sy_ws_msgbuf *buf = ws->rx.msg;
        ws->rx.msg = NULL;
        if ((e = sy__bs_write(ws->c, hdr, hl)) < 0 ||
            (e = sy__bs_write_ref(ws->c, buf->data, len, free_owned, buf)) < 0) {
            fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory while sending");
            return e;
        }
        count_out(ws, len, 1);
        return after_send(ws);
    }
    if (len >= INPUT_REF_MIN && is_delivered(ws, data, len) &&
        !(ws->rx.msg && data == ws->rx.msg->data) && !ws->is_client &&
        !(ws->pmd && sy_pmd_can_compress(ws->pmd))) {
        /* Sending back a message delivered straight from the input (an echo): the payload
         * goes by reference into that input, which the stream writes or copies as soon as
         * this read is processed; no copy when the socket takes it at once. */
        uint8_t hdr[14];
        size_t hl = sy_ws_frame_header(hdr, (uint8_t)opcode, 1, 0, len, NULL);
        if ((e = sy__bs_write(ws->c, hdr, hl)) < 0 ||
            (e = sy__bs_write_input(ws->c, data, len)) < 0) {
            fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory while sending");
            return e;
        }
        return after_send(ws);
    }
    if ((e = send_message(ws, opcode, data, len, 1, 1)) < 0) {
        fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory while sending");
        return e;
    }
    count_out(ws, len, 1);
    return after_send(ws);
}

SY_EXPORT int sy_ws_send_zc(sy_ws *ws, int opcode, const void *data, size_t len,
                            void (*free_fn)(const void *data, void *free_ud), void *free_ud)
{
    int e = check_sendable(ws, opcode, data, len);
    int direct = !e && !ws->frag_sending && !ws->is_client &&
                 !(ws->pmd && sy_pmd_can_compress(ws->pmd) && len >= ws->opts->deflate_threshold);
    if (!direct) {
        if (!e)
            e = sy_ws_send(ws, opcode, data, len);
        if (free_fn)
            free_fn(data, free_ud);
        return e;
    }
    int g = bp_gate(ws, len);
    if (g >= 0) {
        if (free_fn)
            free_fn(data, free_ud);
        return g;
    }
    uint8_t hdr[14];
    size_t hl = sy_ws_frame_header(hdr, (uint8_t)opcode, 1, 0, len, NULL);
    if ((e = sy__bs_write(ws->c, hdr, hl)) < 0 ||
        (e = sy__bs_write_ref(ws->c, data, len, free_fn, free_ud)) < 0)
        return e;
    count_out(ws, len, 1);
    return after_send(ws);
}

int sy__ws_send_frame(sy_ws *ws, const uint8_t *frame, size_t len, size_t payload_len,
                      int shared_deflate, void (*free_fn)(const void *frame, void *ud), void *ud)
{
    int e = check_open(ws);
    if (!e && (ws->frag_sending || ws->is_client))
        e = SY_ESTATE; /* a message cannot go in between fragments; client frames are masked */
    int g = e ? -1 : bp_gate(ws, payload_len);
    if (e || g >= 0) {
        if (free_fn)
            free_fn(frame, ud);
        return e ? e : g;
    }
    if (shared_deflate && ws->pmd)
        sy_pmd_tx_stale(ws->pmd);
    e = free_fn ? sy__bs_write_ref(ws->c, frame, len, free_fn, ud)
                : sy__bs_write(ws->c, frame, len);
    if (e < 0) {
        fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory while sending");
        return e;
    }
    count_out(ws, payload_len, 1);
    return after_send(ws);
}

int sy__ws_send_run(sy_ws *ws, const uint8_t *run, const uint32_t *ends, const uint32_t *pends,
                    size_t n, void (*free_fn)(const void *run, void *ud), void *ud, size_t *queued)
{
    *queued = 0;
    int e = check_open(ws);
    if (!e && (ws->frag_sending || ws->is_client))
        e = SY_ESTATE;
    if (e || !n) {
        free_fn(run, ud);
        return e;
    }
    /* Frame i goes if the policy lets it through with the frames before it queued: the
     * frames that go are a prefix (once one is refused, so is every later one, as with one
     * sy__ws_send_frame per frame). Usually the whole run is under the high-water mark. */
    const sy_ws_opts *o = ws->opts;
    size_t b = sy__bs_buffered(ws->c), k = n;
    int v = 0;
    if (b + (n > 1 ? ends[n - 2] : 0) >= o->high_water) {
        for (k = 0; k < n; k++) {
            size_t before = k ? ends[k - 1] : 0, plen = pends[k] - (k ? pends[k - 1] : 0);
            if ((v = bp_verdict(o, b + before, plen)) != 0)
                break;
        }
    }
    if (!k) {
        free_fn(run, ud);
        return bp_refuse(ws, v);
    }
    if ((e = sy__bs_write_ref(ws->c, run, ends[k - 1], free_fn, ud)) < 0) {
        fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory while sending");
        return e;
    }
    *queued = k;
    sy_http_metrics *m = sy__uplog_metrics(ws->log);
    if (m) {
        sy__ctr_add(&m->ws_bytes_out, pends[k - 1]);
        sy__ctr_add(&m->ws_msgs_out, k);
    }
    int r = after_send(ws); /* as the last frame queued would have (flags the drain) */
    return k < n ? bp_refuse(ws, v) : r;
}

SY_EXPORT int sy_ws_send_fragment(sy_ws *ws, int opcode, const void *data, size_t len, int fin)
{
    int first = !ws->frag_sending;
    int e = check_open(ws);
    if (e)
        return e;
    if (first && opcode != SY_WS_TEXT && opcode != SY_WS_BINARY)
        return SY_EINVAL;
    if (!first && opcode != 0)
        return SY_EINVAL;
    /* Text is validated across fragments; a refused fragment leaves the state as it was. The
     * state between fragments lives out of line (streamed text sends are rare). */
    int text = first ? opcode == SY_WS_TEXT : ws->frag_text;
    sy_utf8 utf8;
    if (first || !ws->cold)
        sy_utf8_init(&utf8);
    else
        utf8 = ws->cold->tx_utf8;
    if (text && (sy_utf8_feed(&utf8, data, len) >= 0 || (fin && !sy_utf8_complete(&utf8))))
        return SY_EINVAL;
    if (text && !fin && !sy__ws_cold(ws))
        return SY_ENOMEM;
    int g = bp_gate(ws, len);
    if (g >= 0)
        return g;
    if (first) {
        ws->frag_compressed = 0;
        ws->frag_text = opcode == SY_WS_TEXT;
    }
    e = send_message(ws, opcode, data, len, fin, first);
    if (e < 0)
        return e;
    if (text && !fin)
        ws->cold->tx_utf8 = utf8;
    ws->frag_sending = !fin;
    count_out(ws, len, fin);
    return after_send(ws);
}

SY_EXPORT int sy_ws_ping(sy_ws *ws, const void *data, size_t len)
{
    if (len > 125)
        return SY_EINVAL;
    int e = check_open(ws);
    if (e)
        return e;
    return queue_frame(ws, SY_WS_OP_PING, 1, 0, data, len);
}

/* A close code we may send (1005: none) and a reason that fits a close frame. */
static int close_args_valid(int code, const char *reason)
{
    if (code != 1005 && (!sy_ws_close_code_valid((unsigned)code) || code == 1015))
        return 0;
    return !reason ||
           (strlen(reason) <= 123 && sy_utf8_valid((const uint8_t *)reason, strlen(reason)));
}

SY_EXPORT int sy_ws_close(sy_ws *ws, int code, const char *reason)
{
    if (ws->dead || ws->close_sent)
        return SY_ECLOSED;
    if (!ws->open_done)
        return SY_ESTATE;
    if (!close_args_valid(code, reason))
        return SY_EINVAL;
    ws->cause = SY_WS_CAUSE_LOCAL;
    ws->close_code = (unsigned)code;
    set_reason(ws, reason, reason ? strlen(reason) : 0);
    int e = send_close_frame(ws, code, reason);
    ws->deadline = ws->c->loop->now_ms + ws->opts->close_timeout_ms;
    ws->close_timer = 1;
    schedule_timer(ws);
    return e;
}

SY_EXPORT size_t sy_ws_buffered(const sy_ws *ws)
{
    return ws->dead ? 0 : sy__bs_buffered(ws->c);
}

SY_EXPORT void sy_ws_set_ud(sy_ws *ws, void *ud)
{
    ws->ud = ud;
}

SY_EXPORT void *sy_ws_ud(const sy_ws *ws)
{
    return ws->ud;
}

SY_EXPORT sy_loop *sy_ws_loop(const sy_ws *ws)
{
    return ws->loop;
}

SY_EXPORT const char *sy_ws_subprotocol(const sy_ws *ws)
{
    return ws->cold && ws->cold->subprotocol ? ws->cold->subprotocol : "";
}

SY_EXPORT const char *sy_ws_extensions(const sy_ws *ws)
{
    return ws->cold && ws->cold->extensions ? ws->cold->extensions : "";
}

/* ---- cross-thread sends ---- */

typedef struct ws_task {
    sy_ws *ws;
    int opcode; /* 0 = close */
    int code;
    size_t len;
    char reason[124];
    uint8_t data[];
} ws_task;

static void ws_task_run(sy_loop *loop, void *ud)
{
    ws_task *t = ud;
    (void)loop;
    if (!t->ws->dead) {
        if (t->opcode)
            (void)sy_ws_send(t->ws, t->opcode, t->data, t->len);
        else
            (void)sy_ws_close(t->ws, t->code, t->reason[0] ? t->reason : NULL);
    }
    sy__ws_unref(t->ws);
    sy__free(t);
}

static int post_task(sy_ws *ws, ws_task *t)
{
    t->ws = ws;
    atomic_fetch_add(&ws->refs, 1);
    /* ws->loop, not ws->c->loop: this runs on any thread, and the connection may be freed
     * on the loop thread at any moment (the handle is not, while a task holds it). */
    int e = sy_loop_post(ws->loop, ws_task_run, t);
    if (e) {
        atomic_fetch_sub(&ws->refs, 1);
        sy__free(t);
    }
    return e;
}

/* The async calls check their arguments on the caller's thread: the task's own result is
 * lost on the loop thread, so an invalid call must fail here, not silently there. */
SY_EXPORT int sy_ws_send_async(sy_ws *ws, int opcode, const void *data, size_t len)
{
    if (opcode != SY_WS_TEXT && opcode != SY_WS_BINARY) /* 0 would run as a close */
        return SY_EINVAL;
    if (opcode == SY_WS_TEXT && !sy_utf8_valid(data, len))
        return SY_EINVAL;
    ws_task *t = sy__malloc(sizeof(*t) + len);
    if (!t)
        return SY_ENOMEM;
    t->opcode = opcode;
    t->code = 0;
    t->len = len;
    t->reason[0] = 0;
    if (len)
        memcpy(t->data, data, len);
    return post_task(ws, t);
}

SY_EXPORT int sy_ws_close_async(sy_ws *ws, int code, const char *reason)
{
    if (!close_args_valid(code, reason)) /* (a longer reason would be cut, not refused) */
        return SY_EINVAL;
    ws_task *t = sy__malloc(sizeof(*t));
    if (!t)
        return SY_ENOMEM;
    t->opcode = 0;
    t->code = code;
    t->len = 0;
    snprintf(t->reason, sizeof(t->reason), "%s", reason ? reason : "");
    return post_task(ws, t);
}

/* ---- input ---- */

/* Fail the connection: send a close frame with code (once), then close after flushing. */
static void fail(sy_ws *ws, int code, int cause, const char *detail)
{
    if (ws->failed)
        return;
    ws->failed = 1;
    if (!ws->cause || ws->cause == SY_WS_CAUSE_LOCAL)
        ws->cause = (unsigned)cause;
    set_detail(ws, detail);
    if (!ws->close_sent) {
        ws->close_code = (unsigned)code;
        set_reason(ws, detail, detail ? strlen(detail) : 0);
        send_close_frame(ws, code, detail);
    }
    sy__log(SY_LOG_INFO, "websocket %s: closing %d: %s", sy__bs_peer(ws->c), code,
            detail ? detail : "");
    sy__bs_close(ws->c, 0, 1);
}

static inline size_t msg_len(const sy_ws *ws)
{
    return ws->rx.msg ? ws->rx.msg->len : 0;
}

static int msg_reserve(sy_ws *ws, size_t extra)
{
    sy_ws_msgbuf *m = ws->rx.msg;
    size_t len = m ? m->len : 0, need = len + extra, cap = m ? m->cap : 0;
    if (need <= cap)
        return 0;
    if (!m) {
        /* A recycled buffer when one fits (the small spare first), else a new one. */
        if (tls.big && need > (tls.spare ? tls.spare->cap : 0) && need <= tls.big->cap) {
            m = tls.big;
            tls.big = NULL;
        } else if (tls.spare) {
            m = tls.spare;
            tls.spare = NULL;
        }
        if (m) {
            m->len = 0;
            ws->rx.msg = m;
            if (need <= m->cap)
                return 0;
            cap = m->cap;
        }
    }
    size_t ncap = SY_MAX(need, SY_MAX(cap * 2, 4096));
    if (ncap > ws->opts->max_message)
        ncap = SY_MAX(need, (size_t)ws->opts->max_message);
    if (ncap > SIZE_MAX - sizeof(*m))
        return SY_ENOMEM;
    sy_ws_msgbuf *n = sy__realloc(m, sizeof(*n) + ncap);
    if (!n)
        return SY_ENOMEM;
    if (!m)
        n->len = 0;
    n->cap = ncap;
    ws->rx.msg = n;
    return 0;
}

/* Validate the next piece of a text message; ascii: the piece is known to be all ASCII
 * (seen while unmasking), which needs no check at a character boundary. */
static int text_ok(sy_ws *ws, const uint8_t *data, size_t len, int ascii)
{
    if (ascii && sy_utf8_complete(&ws->rx.utf8))
        return 1;
    return sy_utf8_feed(&ws->rx.utf8, data, len) < 0;
}

/* Append message bytes (already inflated), validating text as it comes so that invalid
 * UTF-8 fails at the first bad byte, not at the end of a large message. */
static int msg_append(sy_ws *ws, const uint8_t *data, size_t len, int ascii)
{
    if (msg_len(ws) + len > ws->opts->max_message)
        return SY_EWS_TOO_BIG;
    if (ws->rx.opcode == SY_WS_OP_TEXT && !text_ok(ws, data, len, ascii))
        return SY_EWS_UTF8;
    if (!len)
        return 0;
    if (msg_reserve(ws, len) < 0)
        return SY_ENOMEM;
    uint8_t *tail = ws->rx.msg->data + ws->rx.msg->len;
    if (data != tail) /* read there directly (ws_read_into) */
        memcpy(tail, data, len);
    ws->rx.msg->len += len;
    return 0;
}

static int inflate_sink(void *ud, const uint8_t *data, size_t len)
{
    sy_ws *ws = ud;
    if (ws->opts->max_inflate_rate)
        ws->pmd->inflate_credit -= (int64_t)len;
    return msg_append(ws, data, len, 0);
}

static void msg_reset(sy_ws *ws)
{
    if (ws->rx.msg) {
        /* Idle connections hold no message buffer: the thread keeps it for the next one. */
        recycle(ws->rx.msg);
        ws->rx.msg = NULL;
    }
}

static void deliver(sy_ws *ws, const uint8_t *data, size_t len)
{
    sy_http_metrics *m = sy__uplog_metrics(ws->log);
    if (m) {
        sy__ctr_inc(&m->ws_msgs_in);
        sy__ctr_add(&m->ws_bytes_in, len);
        if (!ws->got_message) {
            ws->got_message = 1;
            sy__uplog_first_message(ws->log);
        }
    }
    if (!ws->opts->cbs.on_message)
        return;
    /* Saved and restored, not cleared: whatever on_message does, the record stays right. */
    struct ws_deliv saved = tls.deliv;
    tls.deliv = (struct ws_deliv){ws, data, len, ws->rx.opcode};
    ws->opts->cbs.on_message(ws, ws->rx.opcode, data, len, ws->ud);
    tls.deliv = saved;
}

static void fail_err(sy_ws *ws, int err, const char *detail)
{
    switch (err) {
    case SY_EWS_TOO_BIG:
        fail(ws, 1009, SY_WS_CAUSE_TOO_BIG, detail ? detail : "message too big");
        break;
    case SY_EWS_UTF8:
        fail(ws, 1007, SY_WS_CAUSE_PROTOCOL, detail ? detail : "invalid UTF-8 in a text message");
        break;
    case SY_EWS_EXTENSION:
        fail(ws, 1007, SY_WS_CAUSE_PROTOCOL, detail ? detail : "invalid compressed data");
        break;
    case SY_ENOMEM:
        fail(ws, 1011, SY_WS_CAUSE_PROTOCOL, "out of memory");
        break;
    default:
        fail(ws, 1002, SY_WS_CAUSE_PROTOCOL, detail ? detail : "protocol error");
    }
}

/* A large uncompressed data frame of payload bytes ended: remember its size on the wire
 * for ws_read_into (frames from 16 KiB, where a cut costs a copy worth avoiding, to a
 * quarter of the read buffer, so a read still holds several). */
static void note_frame(const sy_ws *ws, uint64_t payload)
{
    if (payload < (16u << 10) || payload > SY_READ_BUF_SIZE / 4) {
        tls.frame_hint = 0;
        return;
    }
    unsigned hdr = 2 + (payload > 65535 ? 8 : 2) + (ws->rx.parser.expect_masked ? 4 : 0);
    tls.frame_hint = (uint32_t)(payload + hdr);
}

static int on_data(sy_ws *ws, const sy_ws_event *ev)
{
    if (ev->msg_start) {
        ws->rx.opcode = ev->opcode;
        ws->rx.compressed = ev->compressed;
        if (ws->rx.msg)
            ws->rx.msg->len = 0;
        sy_utf8_init(&ws->rx.utf8);
    }
    /* After our close, messages the peer sent before seeing it are still delivered (until
     * its close arrives); after a failure nothing is (ws_on_read stops parsing). */
    const char *detail = NULL;
    if (ws->rx.compressed) {
        int e = sy_pmd_inflate(ws->pmd, ev->data, ev->len, ev->msg_end, ws->opts->max_message,
                               inflate_sink, ws, &detail);
        if (e < 0) {
            fail_err(ws, e, detail);
            return e;
        }
    } else if (ev->msg_start && ev->msg_end) {
        note_frame(ws, ev->len);
        /* The whole message is in the read buffer: validate and deliver in place. */
        if (ev->len > ws->opts->max_message) {
            fail_err(ws, SY_EWS_TOO_BIG, NULL);
            return SY_EWS_TOO_BIG;
        }
        if (ev->opcode == SY_WS_OP_TEXT) {
            if (!text_ok(ws, ev->data, ev->len, ev->ascii) || !sy_utf8_complete(&ws->rx.utf8)) {
                fail_err(ws, SY_EWS_UTF8, NULL);
                return SY_EWS_UTF8;
            }
        }
        deliver(ws, ev->data, ev->len);
        return 0;
    } else {
        /* Fail fast on size: the rest of this frame is already announced. */
        uint64_t announced = msg_len(ws) + ev->len + ws->rx.parser.remaining;
        if (announced > ws->opts->max_message) {
            fail_err(ws, SY_EWS_TOO_BIG, NULL);
            return SY_EWS_TOO_BIG;
        }
        /* Size the buffer for the whole frame at once instead of growing it step by step. */
        if (msg_reserve(ws, (size_t)(announced - msg_len(ws))) < 0) {
            fail_err(ws, SY_ENOMEM, NULL);
            return SY_ENOMEM;
        }
        int e = msg_append(ws, ev->data, ev->len, ev->ascii);
        if (e < 0) {
            fail_err(ws, e, NULL);
            return e;
        }
    }
    if (ev->msg_end) {
        if (ws->rx.opcode == SY_WS_OP_TEXT && !sy_utf8_complete(&ws->rx.utf8)) {
            fail_err(ws, SY_EWS_UTF8, "text message ends inside a UTF-8 sequence");
            return SY_EWS_UTF8;
        }
        if (!ws->rx.compressed && ws->rx.parser.opcode != SY_WS_OP_CONT)
            note_frame(ws, msg_len(ws)); /* one frame, cut between reads */
        deliver(ws, ws->rx.msg ? ws->rx.msg->data : NULL, msg_len(ws));
        msg_reset(ws);
    }
    return 0;
}

static void on_close_frame(sy_ws *ws, const sy_ws_event *ev)
{
    ws->close_received = 1;
    if (!ws->close_sent) {
        ws->cause = SY_WS_CAUSE_PEER;
        ws->close_code = ev->close_code;
        set_reason(ws, ev->reason, ev->reason_len);
        /* Echo the status code (RFC 6455 §5.5.1). */
        send_close_frame(ws, ev->close_code == 1005 ? 0 : ev->close_code, NULL);
    }
    /* Both closes seen: the server closes TCP first (RFC 6455 §7.1.1). The peer sends nothing
     * after its close frame, so there is no unread input to linger for. */
    if (ws->is_client) {
        ws->deadline = ws->c->loop->now_ms + 1000;
        ws->close_timer = 1;
        schedule_timer(ws);
        sy__bs_close(ws->c, 0, SY_CLOSE_FLUSH);
    } else {
        sy__bs_close(ws->c, 0, SY_CLOSE_FLUSH_NO_LINGER);
    }
}

/* ---- reading pauses ---- */

/* Reading pauses for two independent reasons (our output backs up; the inflate budget is
 * spent) and resumes only when neither holds. */
static void update_read(sy_ws *ws)
{
    if (ws->rx.paused_bp || ws->rx.paused_rate)
        sy__bs_pause_read(ws->c);
    else
        sy__bs_resume_read(ws->c);
}

/*
 * The inflate budget. Inflating is the one cost a peer can multiply: a few hundred bytes of
 * deflate data expand to a megabyte, which an echo then compresses again. Each connection has
 * a bucket of max_inflate_rate bytes per second that may hold one second's worth; every
 * inflated byte is taken from it. When it is empty, reading pauses (TCP pushes back on the
 * peer; nothing is closed) until the bucket has refilled. One event may overdraw it by up to
 * one message (max_message); the pause then lasts correspondingly longer, so the long-run
 * rate holds.
 */
static void rate_refill(sy_ws *ws, uint64_t now)
{
    uint64_t rate = ws->opts->max_inflate_rate;
    sy_pmd *p = ws->pmd;
    if (!p)
        return; /* nothing to inflate */
    uint64_t dt = now - p->credit_ms;
    /* rate <= 2^40 (sy_ws_opts_set), so rate * dt stays far from overflow below 2 s. */
    int64_t add = dt >= 2000 ? (int64_t)rate : (int64_t)(rate * dt / 1000);
    if (!add && rate)
        return; /* less than a byte so far (slow rates, frequent reads): let time add up */
    p->credit_ms = now;
    p->inflate_credit = SY_MIN(p->inflate_credit + add, (int64_t)rate);
}

/* The bucket is empty: stop reading until it has refilled to above zero. */
static void rate_pause(sy_ws *ws)
{
    uint64_t rate = ws->opts->max_inflate_rate;
    uint64_t owed = (uint64_t)(-ws->pmd->inflate_credit) + 1;
    ws->pmd->resume_ms = ws->c->loop->now_ms + owed * 1000 / rate + 1;
    ws->rx.paused_rate = 1;
    update_read(ws);
    schedule_timer(ws);
}

static void rate_resume(sy_ws *ws, uint64_t now)
{
    rate_refill(ws, now);
    ws->rx.paused_rate = 0;
    /* We chose not to read; the peer was not silent: idle and ping timers restart now. */
    ws->last_rx_ms = now;
    if (ws->ping_outstanding && !ws->close_timer)
        ws->deadline = SY_MAX(ws->deadline, now + ws->opts->pong_timeout_ms);
    update_read(ws);
}

/* A data frame whose header just arrived already tells its size: one that cannot fit in the
 * message is refused now, not when its first payload byte comes (which may be never). The
 * compressed size says nothing about the inflated one, so compressed messages are checked as
 * they inflate. */
static int announced_too_big(const sy_ws *ws)
{
    const sy_ws_parser *p = &ws->rx.parser;
    return p->hdr_len == 0 && p->remaining && p->opcode < SY_WS_OP_CLOSE && !p->msg_compressed &&
           msg_len(ws) + p->remaining > ws->opts->max_message;
}

static ssize_t read_frames(sy_ws *ws, sy_bstream *c, uint8_t *data, size_t len)
{
    size_t off = 0;
    if (ws->rx.paused_rate)
        return 0; /* the inflate budget is spent: nothing more until it refills */
    ws->last_rx_ms = c->loop->now_ms;
    rate_refill(ws, c->loop->now_ms);
    if (ws->ping_outstanding) {
        /* Any traffic after our ping shows the peer is alive, not only the pong. */
        ws->ping_outstanding = 0;
        schedule_timer(ws);
    }
    while (off < len) {
        if (ws->failed || ws->close_received)
            return (ssize_t)len; /* discard anything after the end */
        sy_ws_event ev;
        uint16_t code = 0;
        const char *detail = NULL;
        ssize_t n = sy_ws_parse(&ws->rx.parser, data + off, len - off, &ev, &code, &detail);
        if (n < 0) {
            fail(ws, code ? code : 1002, SY_WS_CAUSE_PROTOCOL, detail);
            return (ssize_t)len;
        }
        off += (size_t)n;
        switch (ev.type) {
        case SY_WS_EV_NONE:
            if (announced_too_big(ws)) {
                fail_err(ws, SY_EWS_TOO_BIG, NULL);
                return (ssize_t)len;
            }
            if (n == 0)
                return (ssize_t)off;
            break;
        case SY_WS_EV_DATA:
            if (on_data(ws, &ev) < 0)
                return (ssize_t)len;
            break;
        case SY_WS_EV_PING:
            if (!ws->close_sent)
                queue_frame(ws, SY_WS_OP_PONG, 1, 0, ev.data, ev.len);
            break;
        case SY_WS_EV_PONG:
            if (ws->opts->cbs.on_pong)
                ws->opts->cbs.on_pong(ws, ev.data, ev.len, ws->ud);
            break;
        case SY_WS_EV_CLOSE:
            on_close_frame(ws, &ev);
            return (ssize_t)len;
        }
        if (sy__bs_state(c) == SY_BS_CLOSED)
            return (ssize_t)len;
        if (ws->pmd && ws->pmd->inflate_credit < 0 && ws->opts->max_inflate_rate) {
            /* The rest stays in the connection's buffer until the bucket has refilled. */
            rate_pause(ws);
            return (ssize_t)off;
        }
    }
    if (!ws->rx.paused_bp && sy__bs_buffered(c) >= ws->opts->high_water) {
        if (ws->opts->bp_policy == SY_WS_BP_CLOSE) {
            /* The policy closes a peer that reads too slowly. Pausing would leave that to
             * the next send, which an application answering messages never makes. */
            fail(ws, 1008, SY_WS_CAUSE_BACKPRESSURE, "send buffer above the high-water mark");
            return (ssize_t)len;
        }
        /* Our peer is not reading what we send: stop reading what it sends (TCP flow
         * control pushes back on it) until the queue drains. */
        ws->rx.paused_bp = 1;
        update_read(ws);
        sy__bs_want_drain(c);
    }
    return (ssize_t)off;
}

/* A data frame being assembled (its first piece is in the message buffer, which was sized for
 * the whole frame): its rest may be read straight behind that piece, so it is never copied
 * out of the read buffer. Uncompressed frames only (compressed ones inflate elsewhere). And
 * whatever the state, *next asks for a read of whole frames of the size this thread last
 * saw (note_frame), so that steady traffic is not cut in the first place. */
static uint8_t *ws_read_into(sy_bstream *c, size_t *len, size_t *next)
{
    sy_ws *ws = c->proto_data;
    sy_ws_msgbuf *m = ws->rx.msg;
    uint64_t left = sy_ws_parser_data_left(&ws->rx.parser);
    if (tls.frame_hint)
        *next = (SY_READ_BUF_SIZE / tls.frame_hint) * tls.frame_hint;
    if (!m || !left || ws->rx.compressed || ws->failed || ws->close_received ||
        m->cap - m->len < left)
        return NULL;
    *len = (size_t)left;
    return m->data + m->len;
}

static ssize_t ws_on_read(sy_bstream *c, uint8_t *data, size_t len)
{
    sy_ws *ws = c->proto_data;
    ssize_t n = read_frames(ws, c, data, len);
    /* A control frame that arrived split was gathered in a buffer: gone once reported. */
    sy_ws_parser_trim(&ws->rx.parser);
    return n;
}

static void ws_on_drain(sy_bstream *c)
{
    sy_ws *ws = c->proto_data;
    if (ws->rx.paused_bp) {
        ws->rx.paused_bp = 0;
        update_read(ws);
    }
    if (ws->bp_flagged) {
        ws->bp_flagged = 0;
        if (ws->opts->cbs.on_drain)
            ws->opts->cbs.on_drain(ws, ws->ud);
    }
}

static void ws_on_eof(sy_bstream *c)
{
    sy_ws *ws = c->proto_data;
    if (!ws->close_received && !ws->failed) {
        ws->cause = ws->cause ? ws->cause : SY_WS_CAUSE_ABNORMAL;
        ws->close_code = 1006;
    }
    sy__bs_close(c, 0, 0);
}

static void schedule_timer(sy_ws *ws)
{
    const sy_ws_opts *o = ws->opts;
    uint64_t now = ws->c->loop->now_ms, next = UINT64_MAX;
    /* While the inflate budget pauses reading, only the resume (and a close deadline) is
     * due: heartbeats and the idle timeout would blame the peer for our own pause. */
    int paused = ws->rx.paused_rate;
    if (ws->close_timer)
        next = ws->deadline;
    else if (!paused && ws->ping_outstanding)
        next = ws->deadline;
    else if (!paused && o->ping_interval_ms)
        next = ws->last_rx_ms + o->ping_interval_ms;
    if (paused)
        next = SY_MIN(next, ws->pmd->resume_ms);
    if (o->idle_timeout_ms && !ws->close_sent && !paused)
        next = SY_MIN(next, ws->last_rx_ms + o->idle_timeout_ms);
    if (next == UINT64_MAX)
        sy__bs_set_timeout(ws->c, 0);
    else
        sy__bs_set_timeout(ws->c, next > now ? next - now : 1);
}

static void ws_on_timer(sy_bstream *c)
{
    sy_ws *ws = c->proto_data;
    const sy_ws_opts *o = ws->opts;
    uint64_t now = c->loop->now_ms;
    if (ws->close_timer && now >= ws->deadline) {
        if (!ws->close_received && ws->cause == SY_WS_CAUSE_LOCAL)
            ws->cause = SY_WS_CAUSE_CLOSE_TIMEOUT;
        sy__bs_close(c, SY_ETIMEDOUT, 0);
        return;
    }
    if (ws->rx.paused_rate) {
        if (now >= ws->pmd->resume_ms)
            rate_resume(ws, now);
        schedule_timer(ws);
        return;
    }
    if (o->idle_timeout_ms && !ws->close_sent && now >= ws->last_rx_ms + o->idle_timeout_ms) {
        ws->cause = SY_WS_CAUSE_IDLE;
        fail(ws, 1001, SY_WS_CAUSE_IDLE, "idle timeout");
        return;
    }
    if (ws->ping_outstanding) {
        if (now >= ws->deadline && !ws->close_timer) {
            ws->cause = SY_WS_CAUSE_PING_TIMEOUT;
            ws->close_code = 1006;
            set_detail(ws, "no pong within the pong timeout");
            sy__bs_close(c, SY_ETIMEDOUT, 0);
            return;
        }
    } else if (o->ping_interval_ms && !ws->close_sent &&
               now >= ws->last_rx_ms + o->ping_interval_ms) {
        ws->ping_outstanding = 1;
        ws->deadline = now + o->pong_timeout_ms;
        queue_frame(ws, SY_WS_OP_PING, 1, 0, NULL, 0);
    }
    schedule_timer(ws);
}

static void ws_on_shutdown(sy_bstream *c)
{
    sy_ws *ws = c->proto_data;
    if (ws->close_sent)
        return;
    ws->cause = SY_WS_CAUSE_SHUTDOWN;
    ws->close_code = 1001;
    set_reason(ws, "server shutting down", 20);
    send_close_frame(ws, 1001, "server shutting down");
    ws->deadline = c->loop->now_ms + ws->opts->close_timeout_ms;
    ws->close_timer = 1;
    schedule_timer(ws);
}

static void ws_on_close(sy_bstream *c, int err)
{
    sy_ws *ws = c->proto_data;
    c->proto_data = NULL;
    if (!ws->cause)
        ws->cause = SY_WS_CAUSE_ABNORMAL;
    if (!ws->close_received && !ws->close_sent)
        ws->close_code = 1006;
    if (err == SY_ETIMEDOUT && ws->cause == SY_WS_CAUSE_LOCAL)
        ws->cause = SY_WS_CAUSE_CLOSE_TIMEOUT;
    ws->dead = 1;
    const char *reason = ws->cold && ws->cold->close_reason ? ws->cold->close_reason : "";
    sy_ws_close_info info = {ws->close_code, reason, ws->cause, get_detail(ws)};
    if (ws->open_done && ws->opts->cbs.on_close)
        ws->opts->cbs.on_close(ws, &info, ws->ud);
    if (ws->ext) {
        ws->ext->end(ws); /* subscriptions end with the connection (it clears ws->ext) */
        ws->ext = NULL;
    }
    static const char *const causes[SY_MW_CAUSES] = {
        "?",    "peer",         "local",         "protocol", "too-big",  "ping-timeout",
        "idle", "backpressure", "close-timeout", "abnormal", "shutdown", "handshake"};
    int cause = ws->cause > 0 && ws->cause < SY_MW_CAUSES ? ws->cause : 0;
    sy_http_metrics *m = sy__uplog_metrics(ws->log);
    if (m) {
        sy__ctr_inc(&m->ws_close_cause[cause]);
        if (ws->cause == SY_WS_CAUSE_PEER) {
            int k = ws->close_code;
            sy__ctr_inc(&m->ws_peer_code[k >= 1000 && k <= 1015   ? k - 1000
                                         : k >= 3000 && k <= 3999 ? SY_MW_CODE_3XXX
                                         : k >= 4000 && k <= 4999 ? SY_MW_CODE_4XXX
                                                                  : SY_MW_CODE_OTHER]);
        }
    }
    if (ws->log) {
        char detail[200];
        const char *why = get_detail(ws);
        snprintf(detail, sizeof(detail), "close=%d cause=%s%s%s", ws->close_code, causes[cause],
                 why ? ": " : "", why ? why : "");
        sy__uplog_end(ws->log, c, causes[cause], ws->close_code, detail);
    }
    ws->log = NULL;
    msg_reset(ws);
    sy_ws_parser_release(&ws->rx.parser);
    if (ws->pmd) {
        sy_pmd_free(ws->pmd);
        sy__free(ws->pmd);
        ws->pmd = NULL;
    }
    if (ws->cold && ws->cold->client_free)
        ws->cold->client_free(ws);
    ws->c = NULL; /* freed after this returns; every public call checks ws->dead first */
    sy__ws_unref(ws);
}
