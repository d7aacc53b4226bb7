/* The raw protocol: after 101 the application gets the connection's bytes as they are.
 *
 * Flow control belongs to the application, which alone knows how its output relates to its
 * input: sy_stream_write says BACKPRESSURE at the high-water mark, on_drain follows at the
 * low-water mark, and sy_stream_pause_read/resume_read let TCP push back on the peer
 * meanwhile. The library enforces only what keeps the server safe when the application does
 * not: a hard cap on queued output, and an idle timeout so that a stream on which nothing moves
 * gives its connection slot back. */
#include "http/upgrade.h"

/* 60 s, like the keep-alive timeout: holding a slot with an idle raw stream should cost an
 * attacker as much as holding it with an idle HTTP connection. Raw streams have no ping of their
 * own, so protocols that stay silent longer than this set their own timeout. */
#define STREAM_IDLE_MS 60000
#define STREAM_HIGH_WATER (1u << 20)
#define STREAM_LOW_WATER (256u << 10)
#define STREAM_MAX_BUFFER (16u << 20)

struct sy_stream {
    sy_bstream *c; /* the byte stream it runs on */
    sy_stream_cbs cbs;
    void *ud;
    sy_uplog *log;
    size_t high_water, low_water, max_buffer;
    uint64_t idle_ms;   /* 0 = off (until closing: see begin_close) */
    uint64_t active_ms; /* when progress was last seen, in either direction */
    uint64_t acked;     /* bytes the peer had taken at the last check */
    uint8_t bp_flagged; /* a write returned BACKPRESSURE: the application is owed on_drain */
    uint8_t closing;    /* flushing before the close: no more writes, no more on_data */
    uint64_t out0;      /* bytes out at the switch (the 101 included) */
    sy_http_metrics *m; /* the worker's counters, or NULL */
    uint8_t got_data;   /* the funnel's first message was counted */
};

static void arm_idle(sy_stream *s)
{
    if (!s->idle_ms) {
        sy__bs_set_timeout(s->c, 0);
        return;
    }
    uint64_t now = s->c->loop->now_ms, due = s->active_ms + s->idle_ms;
    sy__bs_set_timeout(s->c, due > now ? due - now : 1);
}

/* Reads mark activity at once (cheap); output progress is sampled when the timer fires, so a
 * stream whose peer stopped reading goes within one to two timeouts of its last progress. */
static void raw_on_timer(sy_bstream *c)
{
    sy_stream *s = c->proto_data;
    uint64_t now = c->loop->now_ms, taken = sy__bs_delivered(c);
    if (taken > s->acked) {
        s->acked = taken;
        s->active_ms = now;
    }
    if (s->idle_ms && now >= s->active_ms + s->idle_ms) {
        /* Nothing moved either way: whatever is queued would not leave either. */
        sy__bs_close(c, SY_ETIMEDOUT, SY_CLOSE_NOW);
        return;
    }
    arm_idle(s);
}

static void apply_low_water(sy_stream *s)
{
    if (!s->closing)
        sy__bs_set_limits(s->c, 1 << 16, (uint32_t)SY_MIN(s->low_water, s->high_water));
}

/* Stop taking input and close once the queue is written, bounded by the idle timeout (on even
 * if the application turned it off: nobody is left to notice a stuck flush). */
static void begin_close(sy_stream *s)
{
    sy_bstream *c = s->c;
    if (s->closing)
        return;
    s->closing = 1;
    sy__bs_pause_read(c);
    if (!sy__bs_buffered(c)) {
        sy__bs_close(c, 0, SY_CLOSE_FLUSH);
        return;
    }
    sy__bs_set_limits(c, 1 << 16, 0);
    sy__bs_want_drain(c);
    if (!s->idle_ms) {
        s->idle_ms = STREAM_IDLE_MS;
        arm_idle(s);
    }
}

static ssize_t raw_on_read(sy_bstream *c, uint8_t *data, size_t len)
{
    sy_stream *s = c->proto_data;
    if (s->closing)
        return (ssize_t)len;
    s->active_ms = c->loop->now_ms;
    if (s->m) {
        if (!s->got_data) {
            s->got_data = 1;
            sy__uplog_first_message(s->log);
        }
        sy__ctr_add(&s->m->raw_bytes_in, len);
    }
    if (s->cbs.on_data)
        s->cbs.on_data(s, data, len, s->ud);
    return (ssize_t)len;
}

static void raw_on_drain(sy_bstream *c)
{
    sy_stream *s = c->proto_data;
    s->active_ms = c->loop->now_ms;
    if (s->closing) {
        if (!sy__bs_buffered(c))
            sy__bs_close(c, 0, SY_CLOSE_FLUSH);
        else
            sy__bs_want_drain(c);
        return;
    }
    if (s->bp_flagged) {
        s->bp_flagged = 0;
        if (s->cbs.on_drain)
            s->cbs.on_drain(s, s->ud);
    }
}

static void raw_on_eof(sy_bstream *c)
{
    /* The peer finished sending: flush what the application queued, then close. */
    begin_close(c->proto_data);
}

static void raw_on_shutdown(sy_bstream *c)
{
    begin_close(c->proto_data);
}

static const char *close_detail(int err)
{
    switch (err) {
    case 0:
        return NULL;
    case SY_ETIMEDOUT:
        return "idle timeout";
    case SY_ELIMIT:
        return "output buffer above its cap";
    default:
        return sy_strerror(err);
    }
}

static void raw_on_close(sy_bstream *c, int err)
{
    sy_stream *s = c->proto_data;
    s->closing = 1; /* calls from on_close fail with SY_ECLOSED */
    if (s->cbs.on_close)
        s->cbs.on_close(s, err, s->ud);
    static const char *const names[SY_MR_N] = {"eof", "idle", "limit", "io", "memory", "other"};
    int why = err == 0              ? SY_MR_EOF
              : err == SY_ETIMEDOUT ? SY_MR_TIMEOUT
              : err == SY_ELIMIT    ? SY_MR_LIMIT
              : err == SY_EIO       ? SY_MR_IO
              : err == SY_ENOMEM    ? SY_MR_MEMORY
                                    : SY_MR_OTHER;
    sy_http_metrics *m = sy__uplog_metrics(s->log);
    if (m) {
        uint64_t in, out;
        sy__bs_counts(c, &in, &out);
        sy__ctr_inc(&m->raw_close[why]);
        sy__ctr_add(&m->raw_bytes_out, out - SY_MIN(out, s->out0));
    }
    sy__uplog_end(s->log, c, names[why], 0, close_detail(err));
    sy__free(s);
    c->proto_data = NULL;
}

static const sy_bstream_proto raw_proto = {
    "raw", raw_on_read, raw_on_drain, raw_on_eof, raw_on_timer, raw_on_shutdown, raw_on_close, NULL,
};

static int stream_open(sy_bstream *c, sy_req *req, const sy_upgrade_entry *e, sy_uplog *log)
{
    sy_stream *s = sy__calloc(1, sizeof(*s));
    if (!s) {
        sy__uplog_end(log, c, "memory", 0, "out of memory");
        return SY_ENOMEM;
    }
    s->c = c;
    s->log = log;
    s->m = sy__uplog_metrics(log);
    s->high_water = STREAM_HIGH_WATER;
    s->low_water = STREAM_LOW_WATER;
    s->max_buffer = STREAM_MAX_BUFFER;
    s->idle_ms = STREAM_IDLE_MS;
    s->active_ms = c->loop->now_ms;
    /* The 101 is queued: the peer taking it is not activity of the stream. */
    uint64_t in, out;
    sy__bs_counts(c, &in, &out);
    s->acked = out + sy__bs_buffered(c);
    s->out0 = s->acked;
    c->proto = &raw_proto;
    c->proto_data = s;
    apply_low_water(s); /* and at most 64 KiB of input left unconsumed */
    arm_idle(s);
    e->on_open(s, req, e->ud);
    void *ud;
    (void)sy__req_take_open_ud(req, &ud); /* handed over through sy_req_open_ud */
    return 0;
}

SY_EXPORT void sy_stream_set_cbs(sy_stream *s, const sy_stream_cbs *cbs, void *ud)
{
    s->cbs = *cbs;
    s->ud = ud;
}

SY_EXPORT int sy_stream_set(sy_stream *s, enum sy_stream_opt opt, uint64_t value)
{
    switch (opt) {
    case SY_STREAM_OPT_IDLE_TIMEOUT_MS:
        if (value > UINT32_MAX)
            return SY_ERANGE;
        if (s->closing && !value)
            value = STREAM_IDLE_MS;
        s->idle_ms = value;
        if (sy__bs_state(s->c) == SY_BS_OPEN)
            arm_idle(s);
        return 0;
    case SY_STREAM_OPT_HIGH_WATER:
        if (!value || value > SIZE_MAX)
            return SY_ERANGE;
        s->high_water = (size_t)value;
        break;
    case SY_STREAM_OPT_LOW_WATER:
        if (value > UINT32_MAX)
            return SY_ERANGE;
        s->low_water = (size_t)value;
        break;
    case SY_STREAM_OPT_MAX_BUFFER:
        if (!value || value > SIZE_MAX)
            return SY_ERANGE;
        s->max_buffer = (size_t)value;
        return 0;
    default:
        return SY_EINVAL;
    }
    apply_low_water(s);
    return 0;
}

SY_EXPORT int sy_stream_write(sy_stream *s, const void *data, size_t len)
{
    sy_bstream *c = s->c;
    if (s->closing)
        return SY_ECLOSED;
    size_t buffered = sy__bs_buffered(c);
    if (buffered > s->max_buffer || len > s->max_buffer - buffered) {
        /* The application ignored backpressure (or wrote one piece bigger than the cap): the
         * peer cannot be made to read, and the memory is ours. */
        s->closing = 1;
        sy__bs_close(c, SY_ELIMIT, SY_CLOSE_NOW);
        return SY_ELIMIT;
    }
    int e = sy__bs_write(c, data, len);
    if (e == SY_ENOMEM) {
        /* Part of the bytes may be queued: the stream's contents are broken. */
        s->closing = 1;
        sy__bs_close(c, SY_ENOMEM, SY_CLOSE_NOW);
    }
    if (e < 0)
        return e;
    if (sy__bs_buffered(c) >= s->high_water) {
        s->bp_flagged = 1;
        sy__bs_want_drain(c);
        return SY_STREAM_WRITE_BACKPRESSURE;
    }
    return SY_STREAM_WRITE_OK;
}

SY_EXPORT size_t sy_stream_buffered(const sy_stream *s)
{
    return sy__bs_buffered(s->c);
}

SY_EXPORT void sy_stream_pause_read(sy_stream *s)
{
    if (!s->closing)
        sy__bs_pause_read(s->c);
}

SY_EXPORT void sy_stream_resume_read(sy_stream *s)
{
    if (!s->closing)
        sy__bs_resume_read(s->c);
}

SY_EXPORT void sy_stream_close(sy_stream *s)
{
    begin_close(s);
}

SY_EXPORT sy_loop *sy_stream_loop(const sy_stream *s)
{
    return s->c->loop;
}

const sy_upgrade_proto sy__raw_upgrade = {"raw", stream_open, NULL};
