/* The raw protocol: after 101 the application gets the connection's bytes as they are. */
#include "http/upgrade.h"

struct sy_stream {
    sy_conn *c;
    sy_stream_cbs cbs;
    void *ud;
    sy_uplog *log;
    uint8_t drain_wanted;
};

static ssize_t raw_on_read(sy_conn *c, uint8_t *data, size_t len)
{
    sy_stream *s = c->proto_data;
    if (s->cbs.on_data)
        s->cbs.on_data(s, data, len, s->ud);
    return (ssize_t)len;
}

static void raw_on_drain(sy_conn *c)
{
    sy_stream *s = c->proto_data;
    if (s->cbs.on_drain)
        s->cbs.on_drain(s, s->ud);
}

static void raw_on_eof(sy_conn *c)
{
    /* The peer finished sending: flush what the application queued, then close. */
    sy__conn_close(c, 0, 1);
}

static void raw_on_timer(sy_conn *c)
{
    (void)c;
}

static void raw_on_shutdown(sy_conn *c)
{
    sy__conn_close(c, 0, 1);
}

static void raw_on_close(sy_conn *c, int err)
{
    sy_stream *s = c->proto_data;
    if (s->cbs.on_close)
        s->cbs.on_close(s, err, s->ud);
    sy__uplog_end(s->log, c, NULL);
    sy__free(s);
    c->proto_data = NULL;
}

static const sy_conn_proto raw_proto = {
    "raw", raw_on_read, raw_on_drain, raw_on_eof, raw_on_timer, raw_on_shutdown, raw_on_close,
};

int sy__stream_open(sy_conn *c, sy_req *req, const sy_upgrade_entry *e, sy_uplog *log)
{
    sy_stream *s = sy__calloc(1, sizeof(*s));
    if (!s) {
        sy__uplog_end(log, c, "out of memory");
        return SY_ENOMEM;
    }
    s->c = c;
    s->log = log;
    c->proto = &raw_proto;
    c->proto_data = s;
    c->rmax = 1 << 16;
    sy__conn_set_timeout(c, 0);
    e->on_open(s, req, e->ud);
    return 0;
}

SY_EXPORT void sy_stream_set_cbs(sy_stream *s, const sy_stream_cbs *cbs, void *ud)
{
    s->cbs = *cbs;
    s->ud = ud;
}

SY_EXPORT int sy_stream_write(sy_stream *s, const void *data, size_t len)
{
    int e = sy__conn_write(s->c, data, len);
    if (!e && s->cbs.on_drain && sy__conn_buffered(s->c) > s->c->low_water)
        sy__conn_want_drain(s->c);
    return e;
}

SY_EXPORT size_t sy_stream_buffered(const sy_stream *s)
{
    return sy__conn_buffered(s->c);
}

SY_EXPORT void sy_stream_close(sy_stream *s)
{
    sy__conn_close(s->c, 0, 1);
}

SY_EXPORT sy_loop *sy_stream_loop(const sy_stream *s)
{
    return s->c->loop;
}
