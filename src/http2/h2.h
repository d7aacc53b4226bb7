/* The HTTP/2 connection and its streams, shared by the files of src/http2 (not an interface
 * for anyone else: see http2/server.h).
 *
 * session.c  the connection: nghttp2 session on a sy_bstream, input, the send pass, the timer,
 *            limits and flood counters, GOAWAY
 * stream.c   request streams: the head as a sy_req, bodies, the response ops and the data
 *            provider (file ranges by reference)
 * tunnel.c   RFC 8441: a stream as a sy_bstream for an upgraded protocol (WebSocket)
 * guard.c    RFC 9113 checks nghttp2 leaves undone, on the input before nghttp2 reads it
 * upgrade.c  h2c: the Upgrade plug-in and the HTTP2-Settings check */
#ifndef SY_HTTP2_H2_H
#define SY_HTTP2_H2_H

#include "http/req.h"
#include "http2/flood.h"
#include "http2/guard.h"

#include <nghttp2/nghttp2.h>

typedef struct h2_conn h2_conn;
typedef struct h2_stream h2_stream;

/* How the connection came to speak HTTP/2 (for logs). */
enum { H2_MODE_TLS = 0, H2_MODE_PRIOR, H2_MODE_UPGRADE };

/* A piece of output waiting for the data provider: bytes copied in (data[pos..len)), or a
 * range of a shared file. Memory pieces are handed to the connection by reference, so they
 * are counted: one for the queue, one per range still in the connection's write queue. */
typedef struct h2_seg {
    struct h2_seg *next;
    sy_fileref *file; /* NULL: memory */
    off_t off;        /* file: next offset */
    size_t flen;      /* file: bytes left */
    uint32_t pos, len, cap, refs;
    uint8_t data[];
} h2_seg;

typedef struct h2_outq {
    h2_seg *head, *tail;
    size_t bytes; /* pending bytes (memory and file) */
    size_t mem;   /* of which in memory */
} h2_outq;

enum { H2S_REQUEST = 0, H2S_TUNNEL };

struct h2_stream {
    h2_conn *h;
    int32_t id;
    uint8_t kind;
    h2_stream *prev, *next; /* the connection's streams */
    sy_req *req;
    h2_outq out;
    uint64_t resp_left;      /* Content-Length bytes still to write, or UINT64_MAX */
    size_t head_bytes;       /* header bytes received so far (name + value + 32 each) */
    size_t consume_owed;     /* DATA bytes received, not yet returned to the peer's window */
    size_t body_counted;     /* bytes of the buffered body counted in h->body_bytes */
    int head_err;            /* status to answer once the head is in (431), or 0 */
    const char *head_detail; /* why */
    /* offsets into the request's hbuf while the head arrives (see stream.c) */
    size_t m_off, m_len, p_off, p_len, a_off, a_len, pr_off, pr_len;
    uint8_t has_method, has_path, has_authority, has_protocol;
    uint8_t scheme_https;  /* :scheme is https (the default port for the Host check) */
    uint8_t head_done;     /* the head was handed to dispatch */
    uint8_t submitted;     /* response HEADERS submitted with a data provider */
    uint8_t deferred;      /* the data provider said DEFERRED: resume when output comes */
    uint8_t out_end;       /* the output ends after the queue (END_STREAM) */
    uint8_t closed;        /* nghttp2 closed the stream */
    uint8_t in_end;        /* the peer's END_STREAM arrived */
    uint8_t discard;       /* incoming DATA is not wanted (answered early, or too large) */
    uint8_t buffering;     /* the body is buffered (counts against the connection budget) */
    uint8_t drain_wanted;  /* call the response's drain_fn (or the tunnel's on_drain) */
    uint64_t drain_seq;    /* h->frames_sent when the drain was asked for */
    uint8_t reset_after;   /* RST_STREAM(NO_ERROR) once our END_STREAM went out */
    uint8_t cancelled;     /* a response failed: RST_STREAM(INTERNAL_ERROR) submitted */
    uint8_t peer_reset;    /* the client sent RST_STREAM */
    struct h2_tunnel *tun; /* H2S_TUNNEL */
};

struct h2_conn {
    sy_bstream *bs;
    sy_worker *w;
    sy_http_conf *conf; /* routes and limits (a reference once installed) */
    nghttp2_session *ng;
    sy_deferred d;              /* the send pass, once per loop turn */
    h2_stream *streams;         /* every stream with state here */
    size_t nstreams;            /* open streams (for idleness) */
    size_t body_bytes;          /* buffered request bodies, all streams */
    size_t out_mem;             /* memory response bytes pending in stream queues */
    uint64_t last_active;       /* ms: the last stream closed or a frame arrived */
    uint64_t last_in, last_out; /* byte counts at the last timer check */
    sy_h2_flood flood;
    uint32_t cont_frames;  /* CONTINUATION frames of the current header block */
    size_t block_bytes;    /* bytes of the current header block */
    int fatal;             /* GOAWAY error code decided by us (flood, guard.c), or 0 */
    const char *fatal_why; /* for the log */
    uint8_t mode;
    uint8_t dying;    /* GOAWAY queued for an error: flush it, then close */
    uint8_t draining; /* graceful GOAWAY sent (shutdown): close when streams are done */
    uint8_t peer_eof;
    uint8_t closed;        /* on_close ran: the connection is gone */
    uint8_t free_in_defer; /* on_close ran while the send pass was queued: free it there */
    uint8_t paused;        /* reading paused: too much output queued */
    uint8_t connect_proto; /* SETTINGS_ENABLE_CONNECT_PROTOCOL advertised */
    size_t conn_owed;      /* DATA bytes of gone streams to return to the connection window */
    uint64_t frames_sent;  /* HEADERS and DATA frames sent: progress for the drains */
    h2_guard guard;
};

/* Limits. */
#define H2_MAX_STREAMS 100
#define H2_OUT_HIGH (256u << 10)       /* connection queue above this: nghttp2 waits (WOULDBLOCK) */
#define H2_READ_PAUSE (1u << 20)       /* connection queue above this: stop reading the peer */
#define H2_STREAM_LOW (64u << 10)      /* a stream's queue at or below this: its drain fires */
#define H2_OUT_SOFT (4u << 20)         /* memory pending over all streams: each looks that full */
#define H2_OUT_HARD (64u << 20)        /* memory pending over all streams: writes fail */
#define H2_BODY_BUDGET_MIN (16u << 20) /* buffered bodies beyond: the window stays shut */

static inline const sy_http_cfg *h2_cfg(const h2_conn *h)
{
    return &h->conf->cfg;
}

/* session.c */
void sy__h2_schedule(h2_conn *h); /* a send pass at the end of this loop turn */
h2_stream *sy__h2_stream_new(h2_conn *h, int32_t id);
/* Stop with GOAWAY(code): flush what is queued, then close the connection. */
void sy__h2_fail(h2_conn *h, uint32_t code, const char *why);

/* stream.c */
extern const sy_req_ops sy__h2_req_ops;
/* A HEADERS frame opened stream id: give it a request. 0 or NGHTTP2 callback error. */
int sy__h2_on_begin_request(h2_conn *h, int32_t id);
int sy__h2_on_header(h2_conn *h, h2_stream *s, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl);
/* The head is complete (end_stream: no body follows). */
void sy__h2_on_head(h2_conn *h, h2_stream *s, int end_stream);
void sy__h2_on_data(h2_conn *h, h2_stream *s, const uint8_t *data, size_t len);
void sy__h2_on_end_stream(h2_conn *h, h2_stream *s);
/* The stream is gone (closed by nghttp2 or with the connection): let go of its request. */
void sy__h2_stream_release(h2_conn *h, h2_stream *s, int err);
/* Response output: the data provider and the DATA writer. */
ssize_t sy__h2_data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);
int sy__h2_data_send(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *ud);
/* Queue helpers shared with tunnel.c. */
int sy__h2_outq_write(h2_conn *h, h2_outq *q, const void *data, size_t len);
uint8_t *sy__h2_outq_reserve(h2_conn *h, h2_outq *q, size_t want, size_t *got);
void sy__h2_outq_commit(h2_conn *h, h2_outq *q, size_t n);
void sy__h2_outq_clear(h2_conn *h, h2_outq *q);
/* New output on s: resume its data provider. */
void sy__h2_kick(h2_stream *s);
/* Pending output of s as the application sees it (its own plus the connection's excess). */
size_t sy__h2_buffered(const h2_stream *s);
/* h2c: answer the HTTP/1.1 request src (valid during the call) on stream 1. */
void sy__h2_upgrade_request(h2_conn *h, const sy_req *src);
/* Submit a response on s from a finished sy_req head; provider when a body follows. */
int sy__h2_submit_head(h2_stream *s, int status, int has_len, uint64_t body_len, int with_body);

/* guard.c */
void sy__h2_guard_init(h2_conn *h, int upgraded);
/* nghttp2_session_mem_recv with the checks first: the same return values (h->fatal set when
 * a check failed). */
ssize_t sy__h2_guard_recv(h2_conn *h, const uint8_t *data, size_t len);
void sy__h2_guard_closed(h2_conn *h, const h2_stream *s);         /* before s is freed */
void sy__h2_guard_settings_begin(h2_conn *h);                     /* a SETTINGS frame starts */
int sy__h2_guard_settings(h2_conn *h, const nghttp2_settings *f); /* ... arrived: 0 or error */

/* tunnel.c */
/* Extended CONNECT (RFC 8441): switch s to the route's protocol for :protocol, or answer. */
void sy__h2_connect(h2_conn *h, h2_stream *s);
void sy__h2_tunnel_data(h2_stream *s, const uint8_t *data, size_t len);
void sy__h2_tunnel_eof(h2_stream *s);
void sy__h2_tunnel_release(h2_stream *s, int err);
void sy__h2_tunnel_flush(h2_stream *s); /* the send pass: pending input, drains, timers */
void sy__h2_tunnel_sent(h2_stream *s);  /* a DATA frame of s went to the connection */
void sy__h2_tunnel_ended(h2_stream *s); /* our END_STREAM went out */
void sy__h2_tunnel_shutdown(h2_stream *s);
int sy__h2_tunnel_drain(h2_stream *s); /* on_drain if due; 1 when called */

#endif
