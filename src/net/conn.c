/* Connection I/O: the read path, the write queue and deferred closing. See conn.h. */
#include "net/conn.h"
#include "net/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define LINGER_MS 2000
#define WQ_MAX_ENTRIES 65536

static void conn_io_cb(sy_io *io, uint32_t events);
static void deferred_cb(sy_deferred *d);
static void conn_defer(sy_conn *c, unsigned what);
static void flush_work(sy_conn *c);
static void settle_input(sy_conn *c);
static void resume_work(sy_conn *c);
static void timer_cb(sy_timer *t);
static void update_events(sy_conn *c);
static void wq_array_put(sy_loop *loop, sy_wq_ent *a, size_t cap);
static const sy_bstream_ops conn_bs_ops;

/* A protocol's read_into room smaller than this is not used: copying that much out of the
 * shared read buffer costs less than the scattered read. */
#define SY_READ_INTO_MIN 4096

/* ---- the TCP transport ---- */

static ssize_t tcp_read(sy_conn *c, void *buf, size_t len)
{
    ssize_t n = read(c->io.fd, buf, len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    return n;
}

static ssize_t tcp_writev(sy_conn *c, const struct iovec *iov, int iovcnt)
{
    /* sendmsg rather than writev: MSG_NOSIGNAL keeps a closed peer from raising SIGPIPE. */
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    return n;
}

static ssize_t tcp_readv(sy_conn *c, const struct iovec *iov, int iovcnt)
{
    ssize_t n = readv(c->io.fd, iov, iovcnt);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    return n;
}

static void tcp_shutdown_write(sy_conn *c)
{
    shutdown(c->io.fd, SHUT_WR);
}

const sy_transport_ops sy__tcp_transport = {.read = tcp_read,
                                            .readv = tcp_readv,
                                            .writev = tcp_writev,
                                            .shutdown_write = tcp_shutdown_write};

static inline int tp_pending(const sy_conn *c)
{
    return c->tp->pending && c->tp->pending(c);
}

/* ---- lifecycle ---- */

sy_conn *sy__conn_new(sy_loop *loop, int fd, const sy_transport_ops *tp, const sy_conn_proto *proto,
                      void *proto_data)
{
    return sy__conn_new_tail(loop, fd, tp, proto, proto_data, 0);
}

sy_conn *sy__conn_new_tail(sy_loop *loop, int fd, const sy_transport_ops *tp,
                           const sy_conn_proto *proto, void *proto_data, size_t tail)
{
    if (tail > UINT16_MAX)
        tail = 0;
    sy_conn *c = sy__calloc(1, tail ? SY_CONN_TAIL_OFF + tail : sizeof(*c));
    if (!c)
        return NULL;
    c->tail_size = (uint16_t)tail;
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    c->bs_ops = &conn_bs_ops;
    c->loop = loop;
    c->tp = tp;
    c->proto = proto;
    c->proto_data = proto_data;
    c->rmax = 1 << 20;
    c->low_water = 16384;
    c->d.cb = deferred_cb;
    c->timer.cb = timer_cb;
    /* The connection timer's heap slot is taken now, while refusing is still clean: later,
     * arming it (header, idle, linger timeouts) cannot fail and leave the connection without
     * a timeout. */
    if (sy__timer_reserve(loop, 1) < 0) {
        sy__free(c);
        return NULL;
    }
    if (sy__io_start(loop, &c->io, EPOLLIN) < 0) {
        sy__timer_release(loop, 1);
        sy__free(c);
        return NULL;
    }
    return c;
}

static void wq_release(sy_conn *c, sy_wq_ent *e)
{
    switch (e->kind) {
    case SY_WQ_CHUNK:
        if (e->u.chunk)
            sy__chunk_put(c->loop, e->u.chunk);
        break;
    case SY_WQ_REF:
        if (e->u.ref.fn)
            e->u.ref.fn(e->u.ref.data, e->u.ref.ud);
        break;
    case SY_WQ_FILE:
        if (e->u.file.ref)
            sy__fileref_unref(e->u.file.ref);
        else
            close(e->u.file.fd);
        break;
    default: /* INPUT, INLINE: nothing owned */
        break;
    }
}

static void conn_free(sy_conn *c)
{
    sy_loop *loop = c->loop;
    if (c->proto && c->proto->on_close) {
        const sy_conn_proto *p = c->proto;
        c->proto = NULL;
        p->on_close(&c->bs, c->close_err);
    }
    if (c->tp->destroy)
        c->tp->destroy(c);
    for (size_t i = 0; i < c->wq_len; i++)
        wq_release(c, &c->wq[(c->wq_head + i) % c->wq_cap]);
    if (c->wq)
        wq_array_put(loop, c->wq, c->wq_cap);
    sy__free(c->rbuf);
    sy__timer_stop(loop, &c->timer);
    sy__timer_release(loop, 1);
    /* close() removes the fd from epoll (we never dup it): no EPOLL_CTL_DEL needed. */
    close(c->io.fd);
    if (c->server)
        sy__worker_conn_freed(c);
    if (c->tail_used) {
        /* A handle in the tail is still referenced (a task posted from another thread): the
         * block goes when it lets go (sy__bs_tail_release). */
        c->tail_kept = 1;
        return;
    }
    sy__free(c);
}

void sy__bs_tail_release(void *tail)
{
    sy_conn *c = (sy_conn *)(void *)((uint8_t *)tail - SY_CONN_TAIL_OFF);
    c->tail_used = 0;
    if (c->tail_kept)
        sy__free(c);
}

static void conn_defer(sy_conn *c, unsigned what)
{
    c->pending |= what;
    sy__defer(c->loop, &c->d);
}

/* A closing flush that makes no progress this long is cut: the server's setting, read when
 * needed rather than kept in every connection. */
static uint64_t flush_timeout_ms(const sy_conn *c)
{
    return c->server ? ((const sy_worker *)c->server)->srv->cfg.flush_timeout_ms : 30000;
}

/* One deferred entry per connection runs its end-of-iteration work in order: pending input
 * first, then the write flush, and the free last, once nothing re-queued work. */
static void deferred_cb(sy_deferred *d)
{
    sy_conn *c = sy_container_of(d, sy_conn, d);
    unsigned p = c->pending;
    c->pending &= ~(unsigned)(SY_CONN_RESUME | SY_CONN_FLUSH);
    if (p & SY_CONN_RESUME)
        resume_work(c);
    if (p & SY_CONN_FLUSH)
        flush_work(c);
    if (sy__deferred_queued(d))
        return; /* more work was queued meanwhile; it runs (and frees) next */
    if (c->pending & SY_CONN_CLOSE)
        conn_free(c);
}

static void start_linger(sy_conn *c)
{
    /* Half-close, then keep reading (and discarding) for a while: closing a socket with
     * unread input makes the kernel send RST, which can destroy the response the peer has
     * not read yet. */
    c->lingering = 1;
    c->tp->shutdown_write(c);
    sy__timer_start(c->loop, &c->timer, c->loop->now_ms + LINGER_MS);
    if (c->read_paused) {
        c->read_paused = 0;
        sy__io_modify(c->loop, &c->io, EPOLLIN | (c->write_blocked ? EPOLLOUT : 0));
    }
}

/* Nothing left to write: end the connection (lingering unless the peer already finished). */
static void finish_close(sy_conn *c)
{
    if (c->eof || c->no_linger) {
        c->close_after_flush = 0;
        conn_defer(c, SY_CONN_CLOSE);
    } else {
        start_linger(c);
    }
}

void sy__conn_close(sy_conn *c, int err, int flush)
{
    if (c->closing && !(c->close_after_flush && !flush))
        return;
    if (!c->close_err)
        c->close_err = (int16_t)SY_MAX(err, INT16_MIN);
    c->closing = 1;
    if (flush) {
        if (flush == SY_CLOSE_FLUSH_NO_LINGER)
            c->no_linger = 1;
        c->close_after_flush = 1;
        if (c->wbytes) {
            /* A peer that stops reading must not hold the connection through the flush:
             * from here on the timer only checks that the flush moves (see timer_cb). */
            c->flush_mark = c->bytes_out;
            if (!c->lingering)
                sy__timer_start(c->loop, &c->timer, c->loop->now_ms + flush_timeout_ms(c));
            conn_defer(c, SY_CONN_FLUSH);
        } else {
            finish_close(c);
        }
        return;
    }
    c->close_after_flush = 0;
    conn_defer(c, SY_CONN_CLOSE);
}

void sy__conn_set_timeout(sy_conn *c, uint64_t ms)
{
    if (c->lingering || (c->closing && c->close_after_flush))
        return; /* the close owns the timer now (linger, or the flush watchdog) */
    if (!ms)
        sy__timer_stop(c->loop, &c->timer);
    else
        sy__timer_start(c->loop, &c->timer, c->loop->now_ms + ms);
}

static void timer_cb(sy_timer *t)
{
    sy_conn *c = sy_container_of(t, sy_conn, timer);
    if (c->lingering) {
        sy__conn_close(c, 0, 0);
        return;
    }
    if (c->closing) {
        if (!c->close_after_flush)
            return;
        /* Flushing before the close: give up when nothing left for a whole period. */
        if (c->bytes_out == c->flush_mark) {
            sy__conn_close(c, SY_ETIMEDOUT, 0);
            return;
        }
        c->flush_mark = c->bytes_out;
        sy__timer_start(c->loop, &c->timer, c->loop->now_ms + flush_timeout_ms(c));
        return;
    }
    if (c->proto && c->proto->on_timer)
        c->proto->on_timer(&c->bs);
    else
        sy__conn_close(c, SY_ETIMEDOUT, 0);
}

/* ---- read path ---- */

/* Offer data[0..len) to the protocol (possibly switching protocols midway) until it is
 * taken, the protocol pauses or the connection closes; return what is left unconsumed, or
 * -1 when the connection is closing. same_read: data is the second part of a scattered read
 * whose first part the protocol took whole, so a pause it asked for while taking that part
 * counts from the next read, as it would have had both parts come in one buffer. */
static ssize_t deliver_part(sy_conn *c, uint8_t *data, size_t len, int same_read)
{
    size_t off = 0;
    c->in_read = 1;
    while (off < len && !c->closing && (!c->read_paused || same_read)) {
        const sy_conn_proto *p = c->proto;
        ssize_t n = p->on_read(&c->bs, data + off, len - off);
        if (n < 0) {
            c->in_read = 0;
            sy__conn_close(c, (int)n, 0);
            return -1;
        }
        off += (size_t)n;
        if (c->proto == p)
            break; /* same protocol, it took what it could */
    }
    c->in_read = 0;
    if (c->closing && !c->close_after_flush)
        return -1;
    return (ssize_t)(len - off);
}

static ssize_t deliver(sy_conn *c, uint8_t *data, size_t len)
{
    return deliver_part(c, data, len, 0);
}

static int keep_pending(sy_conn *c, const uint8_t *data, size_t left)
{
    if (left == 0) {
        sy__free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
        return 0;
    }
    if (c->rbuf && data >= c->rbuf && data < c->rbuf + c->rcap) {
        memmove(c->rbuf, data, left);
        c->rlen = left;
        return 0;
    }
    if (left > c->rcap) {
        size_t cap = SY_MAX(left, 4096);
        uint8_t *nb = sy__malloc(cap);
        if (!nb)
            return SY_ENOMEM;
        sy__free(c->rbuf);
        c->rbuf = nb;
        c->rcap = cap;
    }
    memmove(c->rbuf, data, left);
    c->rlen = left;
    return 0;
}

/* Add len bytes behind the pending input. */
static int append_pending(sy_conn *c, const uint8_t *data, size_t len)
{
    if (c->rlen + len > c->rcap) {
        size_t cap = SY_MAX(c->rlen + len, 4096);
        uint8_t *nb = sy__realloc(c->rbuf, cap);
        if (!nb)
            return SY_ENOMEM;
        c->rbuf = nb;
        c->rcap = cap;
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    return 0;
}

/* A scattered read: first the bytes that landed in the protocol's room, then those in the
 * shared buffer, each offered as on_read expects. What the protocol leaves of either is kept
 * pending in order, as after any read. */
static void read_into_done(sy_conn *c, uint8_t *into, size_t ilen, uint8_t *buf, size_t blen)
{
    ssize_t left = deliver(c, into, ilen);
    if (left < 0)
        return;
    if (c->has_input)
        settle_input(c);
    if (c->closing)
        return; /* the rest is discarded, as input arriving after a close is */
    if (left == 0 && blen) {
        /* The room was filled and taken: the rest is what followed it in the same read. */
        left = deliver_part(c, buf, blen, 1);
        if (left < 0)
            return;
        if (c->has_input)
            settle_input(c);
        into = buf;
        ilen = blen;
        blen = 0;
    }
    /* Pending: the end of the first part not taken, then (when the protocol stopped inside
     * its room, e.g. paused) all of the second. */
    if (keep_pending(c, into + (ilen - (size_t)left), (size_t)left) < 0 ||
        (blen && append_pending(c, buf, blen) < 0)) {
        sy__conn_close(c, SY_ENOMEM, 0);
        return;
    }
}

static void do_read(sy_conn *c)
{
    uint8_t *buf, *into = NULL;
    size_t room, into_len = 0;
    if (c->rlen) {
        /* Bytes are pending: read behind them in the connection's own buffer. */
        if (c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap * 2;
            if (cap > c->rmax + 4096)
                cap = c->rmax + 4096;
            if (cap <= c->rcap) {
                /* The protocol refuses to consume a full buffer: its limits failed. */
                sy__conn_close(c, SY_ELIMIT, 0);
                return;
            }
            uint8_t *nb = sy__realloc(c->rbuf, cap);
            if (!nb) {
                sy__conn_close(c, SY_ENOMEM, 0);
                return;
            }
            c->rbuf = nb;
            c->rcap = cap;
        }
        buf = c->rbuf + c->rlen;
        room = c->rcap - c->rlen;
    } else {
        buf = c->loop->rbuf;
        room = SY_READ_BUF_SIZE;
        /* The protocol is in the middle of a large piece (a WebSocket frame being assembled):
         * its rest goes straight where it will stay, the shared buffer takes what follows. */
        size_t next = 0;
        if (c->proto && c->proto->read_into && c->tp->readv)
            into = c->proto->read_into(&c->bs, &into_len, &next);
        if (into && into_len < SY_READ_INTO_MIN)
            into = NULL; /* a copy costs less than the scattered read */
        if (next && next < room)
            room = next; /* end at a frame boundary when the socket holds more */
    }
    ssize_t n;
    if (into) {
        struct iovec iov[2] = {{into, into_len}, {buf, room}};
        n = c->tp->readv(c, iov, 2);
    } else {
        n = c->tp->read(c, buf, room);
    }
    if (n == -EAGAIN) {
        update_events(c); /* the transport may wait for EPOLLOUT (c->tp_wants) */
        return;
    }
    if (n <= 0) {
        c->eof = 1;
        if (c->lingering || n < 0 || (c->closing && !c->wbytes)) {
            sy__conn_close(c, n < 0 ? SY_EIO : 0, 0);
            return;
        }
        if (c->closing) {
            /* Stop watching for input: level-triggered EOF would wake us forever. */
            update_events(c);
            return; /* the pending flush finishes the close */
        }
        if (c->proto && c->proto->on_eof)
            c->proto->on_eof(&c->bs);
        else
            sy__conn_close(c, 0, 0);
        /* The same, unless the protocol closed outright: the connection is freed in this
         * iteration (close() takes it out of epoll), so telling epoll first is a wasted
         * system call on every connection the client ends. */
        if (!c->closing || c->close_after_flush)
            update_events(c);
        return;
    }
    c->bytes_in += (uint64_t)n;
    sy_listen_stats *st = sy__conn_stats(c);
    if (st)
        sy__ctr_add(&st->bytes_in, (uint64_t)n);
    if (c->lingering || c->closing)
        return; /* discard: nothing more will be processed */
    if (into) {
        read_into_done(c, into, SY_MIN((size_t)n, into_len), buf,
                       (size_t)n - SY_MIN((size_t)n, into_len));
        return;
    }
    uint8_t *data = c->rlen ? c->rbuf : buf;
    size_t len = c->rlen + (size_t)n;
    ssize_t left = deliver(c, data, len);
    if (left < 0)
        return;
    if (c->has_input)
        settle_input(c);
    if (keep_pending(c, data + (len - (size_t)left), (size_t)left) < 0) {
        sy__conn_close(c, SY_ENOMEM, 0);
        return;
    }
    /* The buffer filled while the transport still holds input: read it this iteration. */
    if (!c->closing && !c->read_paused && tp_pending(c))
        conn_defer(c, SY_CONN_RESUME);
}

static void resume_work(sy_conn *c)
{
    if (c->closing || c->read_paused)
        return;
    if (c->rlen) {
        size_t len = c->rlen;
        ssize_t left = deliver(c, c->rbuf, len);
        if (left < 0)
            return;
        if (c->has_input)
            settle_input(c);
        if (keep_pending(c, c->rbuf + (len - (size_t)left), (size_t)left) < 0) {
            sy__conn_close(c, SY_ENOMEM, 0);
            return;
        }
    }
    if (!c->closing && !c->read_paused && tp_pending(c))
        do_read(c);
}

static void update_events(sy_conn *c)
{
    uint32_t ev = 0;
    unsigned wants = c->tp_wants;
    if ((!c->read_paused && !c->eof) || (wants & SY_TP_WRITE_WANTS_IN))
        ev |= EPOLLIN;
    if ((c->write_blocked && !(wants & SY_TP_WRITE_WANTS_IN)) || (wants & SY_TP_READ_WANTS_OUT))
        ev |= EPOLLOUT;
    if (sy__io_modify(c->loop, &c->io, ev) < 0)
        sy__conn_close(c, SY_EIO, 0);
}

void sy__conn_pause_read(sy_conn *c)
{
    if (c->read_paused)
        return;
    c->read_paused = 1;
    update_events(c);
}

void sy__conn_resume_read(sy_conn *c)
{
    if (!c->read_paused)
        return;
    c->read_paused = 0;
    update_events(c);
    if (c->rlen || tp_pending(c))
        conn_defer(c, SY_CONN_RESUME);
}

/* ---- write path ---- */

/* Write-queue arrays of the first size are recycled through the loop: a connection holds one
 * only while it has output queued, and steady traffic does not allocate one per message. The
 * pool keeps up to 1024 (384 KiB per loop, only after that many connections had output in one
 * turn): a fan-out to 1000 subscribers queues to all of them before the turn's flushes, and
 * with 128 the other 872 arrays were malloc'd and freed every turn (and the heap top trimmed
 * and faulted in again). */
#define WQ_FIRST_CAP 8
#define WQ_POOL_MAX 1024

static sy_wq_ent *wq_array_get(sy_loop *loop)
{
    void *p = loop->wq_free;
    if (p) {
        memcpy(&loop->wq_free, p, sizeof(void *));
        loop->wq_free_count--;
        return p;
    }
    return sy__malloc(WQ_FIRST_CAP * sizeof(sy_wq_ent));
}

static void wq_array_put(sy_loop *loop, sy_wq_ent *a, size_t cap)
{
    if (cap != WQ_FIRST_CAP || loop->wq_free_count >= WQ_POOL_MAX) {
        sy__free(a);
        return;
    }
    memcpy(a, &loop->wq_free, sizeof(void *));
    loop->wq_free = a;
    loop->wq_free_count++;
}

static sy_wq_ent *wq_push(sy_conn *c)
{
    if (c->wq_len == c->wq_cap) {
        if (c->wq_cap >= WQ_MAX_ENTRIES)
            return NULL;
        size_t cap = c->wq_cap ? c->wq_cap * 2 : WQ_FIRST_CAP;
        sy_wq_ent *n = cap == WQ_FIRST_CAP ? wq_array_get(c->loop) : sy__malloc(cap * sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = 0; i < c->wq_len; i++) {
            const sy_wq_ent *o = &c->wq[(c->wq_head + i) % c->wq_cap];
            n[i] = *o;
            if (o->kind == SY_WQ_INLINE) /* its bytes moved with it */
                n[i].ptr = n[i].u.inl + (o->ptr - o->u.inl);
        }
        if (c->wq)
            wq_array_put(c->loop, c->wq, c->wq_cap);
        c->wq = n;
        c->wq_cap = cap;
        c->wq_head = 0;
    }
    sy_wq_ent *e = &c->wq[(c->wq_head + c->wq_len) % c->wq_cap];
    memset(e, 0, sizeof(*e));
    c->wq_len++;
    return e;
}

static inline sy_wq_ent *wq_tail(sy_conn *c)
{
    return c->wq_len ? &c->wq[(c->wq_head + c->wq_len - 1) % c->wq_cap] : NULL;
}

static void schedule_flush(sy_conn *c)
{
    if (!c->write_blocked)
        conn_defer(c, SY_CONN_FLUSH);
}

uint8_t *sy__conn_reserve(sy_conn *c, size_t want, size_t *got)
{
    sy_wq_ent *t = wq_tail(c);
    if (t && t->kind == SY_WQ_CHUNK && t->u.chunk) {
        uint8_t *end = (uint8_t *)t->ptr + t->len;
        size_t room = (size_t)(t->u.chunk->data + SY_CHUNK_SIZE - end);
        if (room >= want || room >= 1024) {
            *got = room;
            return end;
        }
    }
    sy_chunk *ch = sy__chunk_get(c->loop);
    if (!ch)
        return NULL;
    sy_wq_ent *e = wq_push(c);
    if (!e) {
        sy__chunk_put(c->loop, ch);
        return NULL;
    }
    e->kind = SY_WQ_CHUNK;
    e->u.chunk = ch;
    e->ptr = ch->data;
    e->len = 0;
    *got = SY_CHUNK_SIZE;
    return ch->data;
}

void sy__conn_commit(sy_conn *c, size_t n)
{
    sy_wq_ent *t = wq_tail(c);
    t->len += n;
    c->wbytes += n;
    schedule_flush(c);
}

int sy__conn_write(sy_conn *c, const void *data, size_t len)
{
    if (c->closing && !c->close_after_flush)
        return SY_ECLOSED;
    sy_wq_ent *t = wq_tail(c);
    if (t && (t->kind == SY_WQ_REF || t->kind == SY_WQ_INPUT) && len <= sizeof(t->u.inl)) {
        /* A few bytes after a payload queued by reference (a frame header between two
         * echoed messages): kept in the entry, where a chunk would be taken for them. */
        sy_wq_ent *e = wq_push(c);
        if (!e)
            return SY_ENOMEM;
        e->kind = SY_WQ_INLINE;
        memcpy(e->u.inl, data, len);
        e->ptr = e->u.inl;
        e->len = len;
        c->wbytes += len;
        schedule_flush(c);
        return 0;
    }
    const uint8_t *p = data;
    while (len) {
        size_t got;
        uint8_t *dst = sy__conn_reserve(c, len, &got);
        if (!dst)
            return SY_ENOMEM;
        size_t n = SY_MIN(got, len);
        memcpy(dst, p, n);
        sy__conn_commit(c, n);
        p += n;
        len -= n;
    }
    return 0;
}

int sy__conn_write_ref(sy_conn *c, const void *data, size_t len,
                       void (*free_fn)(const void *data, void *ud), void *ud)
{
    if (c->closing && !c->close_after_flush) {
        if (free_fn)
            free_fn(data, ud);
        return SY_ECLOSED;
    }
    sy_wq_ent *e = wq_push(c);
    if (!e) {
        if (free_fn)
            free_fn(data, ud);
        return SY_ENOMEM;
    }
    e->kind = SY_WQ_REF;
    e->ptr = data;
    e->len = len;
    e->u.ref.fn = free_fn;
    e->u.ref.data = data;
    e->u.ref.ud = ud;
    c->wbytes += len;
    schedule_flush(c);
    return 0;
}

int sy__conn_write_input(sy_conn *c, const void *data, size_t len)
{
    if (c->closing && !c->close_after_flush)
        return SY_ECLOSED;
    sy_wq_ent *e = wq_push(c);
    if (!e)
        return SY_ENOMEM;
    e->kind = SY_WQ_INPUT;
    e->ptr = data;
    e->len = len;
    c->wbytes += len;
    c->has_input = 1;
    schedule_flush(c);
    return 0;
}

static void free_copy(const void *data, void *ud)
{
    (void)ud;
    sy__free((void *)data);
}

/* The input on_read was given is about to be reused (or moved): send the bytes queued from
 * it now, and copy what the socket did not take. */
static void settle_input(sy_conn *c)
{
    c->has_input = 0;
    if (!c->write_blocked) {
        c->pending &= ~(unsigned)SY_CONN_FLUSH;
        flush_work(c);
    }
    if (c->closing && !c->close_after_flush)
        return; /* nothing more is written: the entries are dropped with the queue */
    for (size_t i = 0; i < c->wq_len; i++) {
        sy_wq_ent *e = &c->wq[(c->wq_head + i) % c->wq_cap];
        if (e->kind != SY_WQ_INPUT)
            continue;
        uint8_t *copy = sy__malloc(e->len);
        if (!copy) {
            sy__conn_close(c, SY_ENOMEM, 0);
            return;
        }
        memcpy(copy, e->ptr, e->len);
        e->kind = SY_WQ_REF;
        e->ptr = copy;
        e->u.ref.fn = free_copy;
        e->u.ref.data = copy;
        e->u.ref.ud = NULL;
    }
}

int sy__conn_write_file(sy_conn *c, int fd, off_t off, size_t len)
{
    if (c->closing && !c->close_after_flush) {
        close(fd);
        return SY_ECLOSED;
    }
    sy_wq_ent *e = wq_push(c);
    if (!e) {
        close(fd);
        return SY_ENOMEM;
    }
    e->kind = SY_WQ_FILE;
    e->u.file.fd = fd;
    e->u.file.off = off;
    e->len = len;
    c->wbytes += len;
    schedule_flush(c);
    return 0;
}

int sy__conn_write_fileref(sy_conn *c, sy_fileref *f, off_t off, size_t len)
{
    if (c->closing && !c->close_after_flush)
        return SY_ECLOSED;
    sy_wq_ent *e = wq_push(c);
    if (!e)
        return SY_ENOMEM;
    f->refs++;
    e->kind = SY_WQ_FILE;
    e->u.file.fd = f->fd;
    e->u.file.off = off;
    e->u.file.ref = f;
    e->len = len;
    c->wbytes += len;
    schedule_flush(c);
    return 0;
}

sy_fileref *sy__fileref_new(int fd)
{
    sy_fileref *f = sy__malloc(sizeof(*f));
    if (f) {
        f->fd = fd;
        f->refs = 1;
    }
    return f;
}

void sy__fileref_unref(sy_fileref *f)
{
    if (--f->refs == 0) {
        close(f->fd);
        sy__free(f);
    }
}

static void wq_pop_done(sy_conn *c)
{
    sy_wq_ent *e = &c->wq[c->wq_head];
    wq_release(c, e);
    c->wq_head = (c->wq_head + 1) % c->wq_cap;
    c->wq_len--;
}

/* The file-range path of transports without write_file (TCP): the memory part with writev,
 * then sendfile(2) straight from the file to the socket. */
static ssize_t sendfile_range(sy_conn *c, const struct iovec *iov, int iovcnt, size_t head, int fd,
                              off_t off, size_t flen)
{
    ssize_t done = 0;
    if (iovcnt) {
        done = c->tp->writev(c, iov, iovcnt);
        if (done < 0 || (size_t)done < head)
            return done;
    }
    ssize_t n = sendfile(c->io.fd, fd, &off, flen);
    if (n < 0) {
        if (done)
            return done;
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    }
    if (n == 0 && flen)
        return done ? done : -EIO; /* the file shrank under us */
    return done + n;
}

/* n bytes left: advance the queue past them (file ranges included). */
static void wq_consume(sy_conn *c, size_t left)
{
    c->wbytes -= left;
    c->bytes_out += (uint64_t)left;
    sy_listen_stats *st = sy__conn_stats(c);
    if (st)
        sy__ctr_add(&st->bytes_out, (uint64_t)left);
    while (c->wq_len) {
        sy_wq_ent *e = &c->wq[c->wq_head];
        if (e->len > left) {
            if (e->kind == SY_WQ_FILE)
                e->u.file.off += (off_t)left;
            else
                e->ptr += left;
            e->len -= left;
            return;
        }
        left -= e->len;
        e->len = 0;
        /* Keep a partly filled tail chunk only if more may be appended this turn; the
         * queue is empty after this, so release it: idle connections own nothing. */
        wq_pop_done(c);
    }
}

/* Write as much as the socket takes. Returns 0 (all written or would block) or -err. */
static int flush_now(sy_conn *c)
{
    while (c->wq_len) {
        /* The memory entries at the head, up to a file range (which goes in the same call,
         * so that a transport can put a response head and the file's start in one record). */
        struct iovec iov[64];
        int cnt = 0;
        size_t want = 0;
        sy_wq_ent *file = NULL;
        for (size_t i = 0; i < c->wq_len && cnt < 64; i++) {
            sy_wq_ent *e = &c->wq[(c->wq_head + i) % c->wq_cap];
            if (e->kind == SY_WQ_FILE) {
                file = e->len ? e : NULL;
                break;
            }
            if (!e->len)
                continue;
            iov[cnt].iov_base = (void *)e->ptr;
            iov[cnt].iov_len = e->len;
            want += e->len;
            cnt++;
        }
        if (cnt == 0 && !file) {
            /* only empty entries (e.g. a reserved chunk never committed, an empty range) */
            while (c->wq_len && !c->wq[c->wq_head].len)
                wq_pop_done(c);
            continue;
        }
        ssize_t n;
        if (file) {
            size_t flen = SY_MIN(file->len, (size_t)1 << 30);
            n = c->tp->write_file
                    ? c->tp->write_file(c, iov, cnt, file->u.file.fd, file->u.file.off, flen)
                    : sendfile_range(c, iov, cnt, want, file->u.file.fd, file->u.file.off, flen);
            want += flen;
        } else {
            n = c->tp->writev(c, iov, cnt);
        }
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return SY_EIO;
        wq_consume(c, (size_t)n);
        if ((size_t)n < want)
            return 0; /* the socket is full (or the transport yields): wait for EPOLLOUT */
    }
    return 0;
}

static void after_flush(sy_conn *c, int err)
{
    if (err) {
        sy__conn_close(c, err, 0);
        return;
    }
    int blocked = c->wq_len != 0;
    if (blocked != c->write_blocked || blocked) {
        /* also while blocked: the transport may have changed what it waits for */
        c->write_blocked = blocked;
        update_events(c);
    }
    if (!blocked && c->wq) {
        wq_array_put(c->loop, c->wq, c->wq_cap);
        c->wq = NULL;
        c->wq_cap = c->wq_len = c->wq_head = 0;
    }
    if (c->close_after_flush && !blocked) {
        if (!c->lingering)
            finish_close(c);
        return;
    }
    if (c->drain_wanted && c->wbytes <= c->low_water && !c->closing) {
        c->drain_wanted = 0;
        if (c->proto && c->proto->on_drain)
            c->proto->on_drain(&c->bs);
    }
}

static void flush_work(sy_conn *c)
{
    if (c->closing && !c->close_after_flush)
        return;
    if (c->write_blocked)
        return; /* EPOLLOUT will tell us when the socket has room */
    after_flush(c, flush_now(c));
}

static void conn_io_cb(sy_io *io, uint32_t events)
{
    sy_conn *c = sy_container_of(io, sy_conn, io);
    if (c->closing && !c->close_after_flush && !c->lingering)
        return;
    int in = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0, out = (events & EPOLLOUT) != 0;
    unsigned wants = c->tp_wants;
    if (out || (in && (wants & SY_TP_WRITE_WANTS_IN))) {
        c->tp_wants &= ~(unsigned)SY_TP_WRITE_WANTS_IN;
        after_flush(c, flush_now(c));
        if (c->closing && !c->close_after_flush && !c->lingering)
            return;
    }
    if (in || (out && (wants & SY_TP_READ_WANTS_OUT))) {
        c->tp_wants &= ~(unsigned)SY_TP_READ_WANTS_OUT;
        if (events & EPOLLERR) {
            sy__conn_close(c, SY_EIO, 0);
            return;
        }
        if (!c->read_paused || c->lingering)
            do_read(c);
        else if (events & (EPOLLHUP))
            sy__conn_close(c, 0, 0);
    }
    /* What the input produced leaves now, not at the end of the iteration: everything this
     * read queued is in already, and the chunks go back to the loop's pool before the next
     * connection's turn. Deferred, every connection of a busy iteration (a handshake storm:
     * hundreds) held a 16 KiB chunk at once, which the allocator then kept as free holes
     * between connections; and the same few chunks stay warm in the cache. */
    if ((c->pending & SY_CONN_FLUSH) && !c->write_blocked) {
        c->pending &= ~(unsigned)SY_CONN_FLUSH;
        flush_work(c);
    }
}

void sy__conn_set_peer(sy_conn *c, const struct sockaddr *sa, socklen_t len)
{
    /* Only what a log line shows: 19 bytes instead of a 28-byte sockaddr_in6. */
    c->peer_family = 0;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        memset(c->peer_addr, 0, 10);
        memset(c->peer_addr + 10, 0xff, 2);
        memcpy(c->peer_addr + 12, &s->sin_addr, 4);
        c->peer_port = ntohs(s->sin_port);
        c->peer_family = AF_INET;
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        memcpy(c->peer_addr, &s->sin6_addr, 16);
        c->peer_port = ntohs(s->sin6_port);
        c->peer_family = AF_INET6;
    }
}

const char *sy__conn_peer_str(sy_conn *c)
{
    /* Formatted on demand into a per-thread buffer: connections don't carry the string. */
    static __thread char buf[64];
    char host[INET6_ADDRSTRLEN] = "?";
    if (c->peer_family == AF_INET) {
        inet_ntop(AF_INET, c->peer_addr + 12, host, sizeof(host));
        snprintf(buf, sizeof(buf), "%s:%d", host, c->peer_port);
    } else if (c->peer_family == AF_INET6) {
        inet_ntop(AF_INET6, c->peer_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "[%s]:%d", host, c->peer_port);
    } else {
        snprintf(buf, sizeof(buf), "-");
    }
    return buf;
}

/* ---- the connection as a byte stream (net/bstream.h) ---- */

static int bs_write(sy_bstream *s, const void *data, size_t len)
{
    return sy__conn_write(sy__conn_of(s), data, len);
}

static int bs_write_ref(sy_bstream *s, const void *data, size_t len,
                        void (*free_fn)(const void *data, void *ud), void *ud)
{
    return sy__conn_write_ref(sy__conn_of(s), data, len, free_fn, ud);
}

static uint8_t *bs_reserve(sy_bstream *s, size_t want, size_t *got)
{
    return sy__conn_reserve(sy__conn_of(s), want, got);
}

static void bs_commit(sy_bstream *s, size_t n)
{
    sy__conn_commit(sy__conn_of(s), n);
}

static size_t bs_buffered(const sy_bstream *s)
{
    return sy__conn_buffered((const sy_conn *)s);
}

static void bs_want_drain(sy_bstream *s)
{
    sy__conn_want_drain(sy__conn_of(s));
}

static void bs_pause_read(sy_bstream *s)
{
    sy__conn_pause_read(sy__conn_of(s));
}

static void bs_resume_read(sy_bstream *s)
{
    sy__conn_resume_read(sy__conn_of(s));
}

static void bs_set_timeout(sy_bstream *s, uint64_t ms)
{
    sy__conn_set_timeout(sy__conn_of(s), ms);
}

static void bs_close(sy_bstream *s, int err, int how)
{
    sy__conn_close(sy__conn_of(s), err, how);
}

static int bs_state(const sy_bstream *s)
{
    const sy_conn *c = (const sy_conn *)s;
    if (!c->closing)
        return SY_BS_OPEN;
    return c->close_after_flush ? SY_BS_FLUSHING : SY_BS_CLOSED;
}

static void bs_set_limits(sy_bstream *s, uint32_t max_pending_input, uint32_t low_water)
{
    sy_conn *c = sy__conn_of(s);
    c->rmax = max_pending_input;
    c->low_water = low_water;
}

static uint64_t bs_delivered(const sy_bstream *s)
{
    /* Written to the socket minus what the kernel still holds unsent or unacknowledged. */
    const sy_conn *c = (const sy_conn *)s;
    int q = 0;
    if (ioctl(c->io.fd, SIOCOUTQ, &q) < 0 || q < 0)
        q = 0;
    return c->bytes_out - SY_MIN(c->bytes_out, (uint64_t)q);
}

static void bs_counts(const sy_bstream *s, uint64_t *in, uint64_t *out)
{
    const sy_conn *c = (const sy_conn *)s;
    *in = c->bytes_in;
    *out = c->bytes_out;
}

static const char *bs_peer(const sy_bstream *s)
{
    return sy__conn_peer_str((sy_conn *)s);
}

static int bs_write_file(sy_bstream *s, sy_fileref *f, off_t off, size_t len)
{
    return sy__conn_write_fileref(sy__conn_of(s), f, off, len);
}

static int bs_write_input(sy_bstream *s, const void *data, size_t len)
{
    return sy__conn_write_input(sy__conn_of(s), data, len);
}

static void *bs_tail(sy_bstream *s, size_t size)
{
    sy_conn *c = sy__conn_of(s);
    if (c->tail_used || size > c->tail_size)
        return NULL;
    c->tail_used = 1;
    uint8_t *t = (uint8_t *)c + SY_CONN_TAIL_OFF;
    memset(t, 0, size);
    return t;
}

static const sy_bstream_ops conn_bs_ops = {
    bs_write,      bs_write_ref,   bs_reserve,     bs_commit,     bs_buffered,    bs_want_drain,
    bs_pause_read, bs_resume_read, bs_set_timeout, bs_close,      bs_state,       bs_set_limits,
    bs_delivered,  bs_counts,      bs_peer,        bs_write_file, bs_write_input, bs_tail,
};
