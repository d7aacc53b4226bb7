/* A connection: a transport (TCP or TLS, behind sy_transport_ops) plus the protocol
 * currently running on it (HTTP/1, WebSocket, a raw stream), behind sy_conn_proto.
 *
 * Reads: bytes are read into the loop's shared buffer and offered to the protocol; whatever
 * it does not consume is copied into a connection-owned buffer, which is freed as soon as it
 * is empty, so an idle connection holds no read buffer.
 * Writes: queued (copied into pooled chunks, or by reference with a free callback, or as a
 * file range) and flushed once at the end of the loop iteration with writev; EPOLLOUT is
 * armed only when something is left.
 * Closing: sy__conn_close only marks; the connection is freed in the loop's deferred phase,
 * so closing from inside any callback is safe. */
#ifndef SY_NET_CONN_H
#define SY_NET_CONN_H

#include "core/loop.h"
#include "net/bstream.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef struct sy_conn sy_conn;
typedef struct sy_listen_stats sy_listen_stats;

/* The protocol on a connection implements sy_bstream_proto (net/bstream.h): its callbacks
 * receive &c->bs. HTTP/1 works on the connection itself (sy__conn_of); the protocols that
 * could as well run on an HTTP/2 stream (WebSocket, raw streams) use only the sy_bstream. */
typedef sy_bstream_proto sy_conn_proto;

/* Downward: the byte transport under the protocols: TCP (below) and TLS (src/tls). The
 * first three are required; the rest may be NULL (TCP leaves them NULL). Per-connection
 * state lives in c->tp_data. A failing transport may store a precise sy_err in c->close_err
 * before returning < 0 (the connection otherwise closes with SY_EIO). */
typedef struct sy_transport_ops {
    ssize_t (*read)(sy_conn *c, void *buf, size_t len); /* -EAGAIN, 0 eof */
    /* Optional: read into several buffers in order (the protocol's read_into room, then the
     * loop's buffer); same results as read. NULL: the transport reads into one. */
    ssize_t (*readv)(sy_conn *c, const struct iovec *iov, int iovcnt);
    ssize_t (*writev)(sy_conn *c, const struct iovec *iov, int iovcnt); /* -EAGAIN */
    void (*shutdown_write)(sy_conn *c);
    /* Write iov[0..iovcnt) (possibly none), then up to flen bytes of file fd from offset off.
     * Returns the bytes written over both, -EAGAIN or -err; fewer than offered means "wait
     * for EPOLLOUT". NULL: the memory part goes through writev and the file through
     * sendfile(2) on the socket. */
    ssize_t (*write_file)(sy_conn *c, const struct iovec *iov, int iovcnt, int fd, off_t off,
                          size_t flen);
    /* Non-zero when bytes already taken off the socket wait inside the transport (decrypted
     * TLS records): epoll will not report them, so the connection reads again by itself. */
    int (*pending)(const sy_conn *c);
    /* The connection is being freed (after the protocol's on_close; the fd is still open). */
    void (*destroy)(sy_conn *c);
    /* The application protocol negotiated by the transport (ALPN), or NULL. */
    const char *(*alpn)(const sy_conn *c, size_t *len);
    /* Why the transport failed (a sentence), or NULL. */
    const char *(*error)(const sy_conn *c);
} sy_transport_ops;

/* c->tp_wants: a transport that needs the opposite readiness sets these before returning
 * -EAGAIN (a TLS handshake or alert to send while reading, a handshake message to receive
 * while writing); the connection then waits for that event instead and retries. */
enum { SY_TP_READ_WANTS_OUT = 1, SY_TP_WRITE_WANTS_IN = 2 };

/* Write-queue entry kinds. */
enum {
    SY_WQ_CHUNK = 0,  /* bytes copied into a pooled chunk */
    SY_WQ_REF = 1,    /* caller's bytes, released through ref.fn */
    SY_WQ_FILE = 2,   /* a file range */
    SY_WQ_INPUT = 3,  /* bytes of the input being delivered (sy__conn_write_input) */
    SY_WQ_INLINE = 4, /* a few bytes kept in the entry itself (ptr points into inl) */
};

typedef struct sy_wq_ent {
    const uint8_t *ptr; /* next byte to write (all kinds but FILE) */
    size_t len;         /* bytes left */
    uint8_t kind;       /* SY_WQ_* */
    union {
        uint8_t inl[24]; /* INLINE */
        sy_chunk *chunk; /* chunk: owning chunk; fill is tracked via ptr+len */
        struct {
            void (*fn)(const void *data, void *ud);
            const void *data;
            void *ud;
        } ref;
        struct {
            int fd;
            off_t off;       /* next offset */
            sy_fileref *ref; /* shared descriptor (unreferenced, not closed), or NULL */
        } file;
    } u;
} sy_wq_ent;

struct sy_conn {
    /* The byte-stream view (&c->bs) that protocols receive, and the same fields under the
     * names the connection code uses: an anonymous struct of the same members in the same
     * order (checked below), so neither side needs casts or accessors. */
    union {
        sy_bstream bs;
        struct {
            const sy_bstream_ops *bs_ops;
            const sy_conn_proto *proto;
            void *proto_data;
            sy_loop *loop;
        };
    };
    sy_io io;
    const sy_transport_ops *tp;
    void *tp_data;        /* the transport's per-connection state (TLS), or NULL */
    void *server;         /* the worker that accepted it (NULL for client connections) */
    sy_conn *prev, *next; /* the worker's list of live connections */
    uint8_t *rbuf;        /* pending unconsumed bytes (owned), or NULL */
    sy_wq_ent *wq;        /* the write queue (a ring), or NULL when nothing is queued */
    size_t wbytes;        /* bytes queued */
    uint64_t bytes_in, bytes_out;
    uint64_t born_ms;    /* loop time when accepted */
    uint64_t flush_mark; /* bytes_out when the closing flush was last seen moving */
    sy_deferred d;       /* end-of-iteration work: see `pending` */
    sy_timer timer;
    uint32_t rlen, rcap;
    uint32_t rmax; /* cap on pending bytes: beyond it the connection is closed */
    uint32_t wq_head, wq_len, wq_cap;
    uint32_t low_water;
    unsigned pending : 3;  /* SY_CONN_FLUSH | SY_CONN_CLOSE | SY_CONN_RESUME */
    unsigned tp_wants : 2; /* SY_TP_READ_WANTS_OUT | SY_TP_WRITE_WANTS_IN */
    unsigned closing : 1;  /* close requested; freed in the deferred phase */
    unsigned close_after_flush : 1;
    unsigned read_paused : 1;
    unsigned write_blocked : 1; /* EPOLLOUT armed */
    unsigned eof : 1;
    unsigned lingering : 1; /* write side shut, discarding input until timeout */
    unsigned no_linger : 1; /* the protocol knows the peer sends nothing more: close after flush */
    unsigned drain_wanted : 1;
    unsigned in_read : 1;
    unsigned secure : 1;           /* the transport encrypts (set by whoever installs TLS) */
    unsigned first_bytes_seen : 1; /* the composition layer's first-bytes step saw some */
    unsigned has_input : 1;        /* SY_WQ_INPUT entries are queued: settle them after the read */
    unsigned tail_used : 1;        /* the tail holds a protocol's state (sy__bs_tail) */
    unsigned tail_kept : 1;        /* the connection is gone; the block lives on for its tail */
    /* The peer's address, for logs: IPv4 as a v4-mapped IPv6 address (sy__conn_set_peer). */
    uint8_t peer_family; /* AF_INET, AF_INET6, or 0 (unknown) */
    uint16_t peer_port;  /* host order */
    uint8_t peer_addr[16];
    uint16_t tail_size; /* bytes reserved at SY_CONN_TAIL_OFF for a protocol's state */
    /* 1 + the index of the listener that accepted it in its worker (whose counters it adds
     * to: sy__conn_stats), or 0 (client connections). */
    uint16_t listener;
    int16_t close_err; /* why it closes: 0 or an sy_err (all fit) */
};

/* Where a connection's tail starts: the protocol that takes the connection over (the
 * WebSocket engine) keeps its state there, in the connection's own allocation. */
#define SY_CONN_TAIL_OFF ((sizeof(sy_conn) + 7) & ~(size_t)7)

_Static_assert(offsetof(sy_conn, proto) == offsetof(sy_bstream, proto) &&
                   offsetof(sy_conn, proto_data) == offsetof(sy_bstream, proto_data) &&
                   offsetof(sy_conn, loop) == offsetof(sy_bstream, loop),
               "sy_conn's names must alias its sy_bstream");

/* The connection behind a protocol callback's stream (connection-level protocols only). */
static inline sy_conn *sy__conn_of(sy_bstream *s)
{
    return (sy_conn *)s;
}

enum { SY_CONN_FLUSH = 1, SY_CONN_CLOSE = 2, SY_CONN_RESUME = 4 };

/* Create a connection for an accepted/connected non-blocking fd and start reading. */
sy_conn *sy__conn_new(sy_loop *loop, int fd, const sy_transport_ops *tp, const sy_conn_proto *proto,
                      void *proto_data);
/* The same, reserving tail bytes after the connection (up to 65535) for sy__bs_tail. */
sy_conn *sy__conn_new_tail(sy_loop *loop, int fd, const sy_transport_ops *tp,
                           const sy_conn_proto *proto, void *proto_data, size_t tail);

/* Queue bytes (copied into pooled chunks; consecutive small writes share a chunk). */
int sy__conn_write(sy_conn *c, const void *data, size_t len);
/* Queue bytes by reference: free_fn(data, ud) runs when written or on close. */
int sy__conn_write_ref(sy_conn *c, const void *data, size_t len,
                       void (*free_fn)(const void *data, void *ud), void *ud);
/* Queue bytes that lie in the input being delivered (on_read's data, during that call) by
 * reference: right after on_read returns they are written, and whatever the socket did not
 * take is copied, before that input buffer is reused. An echo thus sends from the read
 * buffer without copying it. */
int sy__conn_write_input(sy_conn *c, const void *data, size_t len);
/* Queue a file range; the fd is closed when done or on close. */
int sy__conn_write_file(sy_conn *c, int fd, off_t off, size_t len);
/* Queue a range of a shared file: a reference is taken until it is written or dropped. */
int sy__conn_write_fileref(sy_conn *c, sy_fileref *f, off_t off, size_t len);
/* Reserve up to `want` contiguous writable bytes at the tail of the queue (at least
 * min(want, SY_CHUNK_SIZE)); commit what was written with sy__conn_commit. Lets callers build
 * frames/heads in place without an extra copy. */
uint8_t *sy__conn_reserve(sy_conn *c, size_t want, size_t *got);
void sy__conn_commit(sy_conn *c, size_t n);
static inline size_t sy__conn_buffered(const sy_conn *c)
{
    return c->wbytes;
}

/* Close: flush first when flush is set (then shut down the write side and discard input for
 * a short time so that the peer reads our last response before any RST). */
void sy__conn_close(sy_conn *c, int err, int flush);
void sy__conn_pause_read(sy_conn *c);
/* Resume reading; pending bytes are offered to the protocol at the end of this iteration. */
void sy__conn_resume_read(sy_conn *c);
/* Arm the connection timer at now + ms (ms 0 stops it). */
void sy__conn_set_timeout(sy_conn *c, uint64_t ms);
/* Ask for on_drain when the queue falls to low_water. */
static inline void sy__conn_want_drain(sy_conn *c)
{
    c->drain_wanted = 1;
}

/* Record the peer's address (from accept). */
void sy__conn_set_peer(sy_conn *c, const struct sockaddr *sa, socklen_t len);
/* "addr:port" of the peer, in a per-thread buffer valid until the next call. */
const char *sy__conn_peer_str(sy_conn *c);

/* The application protocol the transport negotiated (ALPN), or NULL (TCP, none). */
static inline const char *sy__conn_alpn(const sy_conn *c, size_t *len)
{
    *len = 0;
    return c->tp->alpn ? c->tp->alpn(c, len) : NULL;
}

extern const sy_transport_ops sy__tcp_transport;

#endif
