/* The WebSocket engine on a byte stream: message assembly, UTF-8, permessage-deflate, the
 * close handshake, heartbeats, backpressure, and the application callbacks. Shared by the
 * server (after a 101) and the client (after its handshake). */
#ifndef SY_WS_WS_H
#define SY_WS_WS_H

#include "http/access.h"
#include "ws/frame.h"
#include "ws/pmd.h"
#include "ws/utf8.h"

#include <stdatomic.h>

struct sy_ws_opts {
    uint64_t max_message;
    uint64_t ping_interval_ms;
    uint64_t pong_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t close_timeout_ms;
    uint64_t high_water;
    uint64_t low_water;
    uint64_t max_buffer;
    uint64_t max_inflate_rate; /* inflated bytes per second per connection; 0 = unlimited */
    int bp_policy;
    int deflate;
    uint64_t deflate_threshold;
    int window_bits;
    int mem_level;
    int level;
    int no_context_takeover;
    int require_subprotocol;
    char **subprotocols;
    size_t nsub;
    char **origins;
    size_t norigins;
    sy_ws_accept_fn accept;
    sy_ws_cbs cbs;
    void *ud;
};

/* A message being assembled (fragmented or compressed): its bookkeeping sits in front of
 * its bytes, so an engine that is not assembling one holds a single NULL pointer. */
typedef struct sy_ws_msgbuf {
    size_t len, cap;
    uint8_t data[];
} sy_ws_msgbuf;

/* Receive side: the message being assembled and validated, and why reading is paused. Only
 * the input path writes it (the send path may take over rx.msg while it is being delivered:
 * see sy_ws_send). */
typedef struct sy_ws_rx {
    sy_ws_parser parser;
    sy_ws_msgbuf *msg; /* NULL when idle, or when a message arrives whole in one read */
    sy_utf8 utf8;      /* text validation of the message being received */
    uint8_t opcode;    /* of the message being received */
    unsigned compressed : 1;
    unsigned paused_bp : 1;   /* the peer does not read what we send: we stop reading too */
    unsigned paused_rate : 1; /* the inflate budget (in ws->pmd) is spent until its resume */
} sy_ws_rx;

/* What a layer above the engine hangs on a connection (ws->ext): the first member of its own
 * per-connection state, so the engine can end it without knowing it. */
typedef struct sy_ws_ext {
    void (*end)(sy_ws *ws); /* runs once when the connection closes, right after on_close */
} sy_ws_ext;

/* What an idle server connection does not need, out of line: allocated when the close starts,
 * when a subprotocol or extension was negotiated, and for clients. */
typedef struct sy_ws_cold {
    char *close_reason; /* the close's reason (NUL-terminated), or NULL */
    const char *detail; /* why we closed (static text), or NULL */
    char *subprotocol;  /* NULL = none */
    char *extensions;   /* NULL = none */
    /* client state (src/client/ws_client.c) */
    void *client;
    void (*client_free)(sy_ws *ws);
    sy_utf8 tx_utf8; /* text validation of the fragments sent so far (sy_ws_send_fragment) */
} sy_ws_cold;

/* The engine's state for one connection. Every byte here is paid by every idle WebSocket:
 * see docs/memory.md before adding a field. */
struct sy_ws {
    sy_bstream *c;          /* the byte stream; NULL once on_close has run (it is freed after) */
    sy_loop *loop;          /* the connection's loop, for calls from other threads */
    const sy_ws_opts *opts; /* the route's options (callbacks included); a client's own copy */
    void *ud;
    sy_pmd *pmd;      /* NULL when permessage-deflate was not negotiated */
    sy_ws_cold *cold; /* NULL until needed (see sy_ws_cold) */
    sy_uplog *log;    /* access-log record, or NULL */
    /* Layers above the engine (pub/sub subscriptions): ext->end runs once when the
     * connection closes, right after on_close. */
    sy_ws_ext *ext;
    uint64_t last_rx_ms;
    uint64_t deadline; /* close_timer ? the close handshake's : the outstanding ping's */
    sy_ws_rx rx;
    atomic_int refs;
    unsigned close_code : 13; /* 1000..4999 */
    unsigned cause : 4;       /* SY_WS_CAUSE_* */
    unsigned in_tail : 1;     /* lives in the connection's allocation (sy__bs_tail) */
    unsigned is_client : 1;
    unsigned open_done : 1;
    unsigned close_sent : 1;
    unsigned close_received : 1;
    unsigned failed : 1;
    unsigned ping_outstanding : 1;
    unsigned dead : 1;        /* on_close delivered */
    unsigned close_timer : 1; /* our close waits for the peer's until `deadline` */
    unsigned got_message : 1; /* a message arrived (the funnel's first message was counted) */
    /* Send side (only the send functions write these): the fragmented message being sent. */
    unsigned frag_sending : 1; /* a streaming send is in progress */
    unsigned frag_text : 1;
    unsigned frag_compressed : 1;
    unsigned bp_flagged : 1; /* a send returned BACKPRESSURE: call on_drain at low water */
};

/* The cold part, allocated on first use; NULL without memory (what it would hold is lost). */
sy_ws_cold *sy__ws_cold(sy_ws *ws);

/* Start the engine on c (the handshake is done). Takes ownership of pmd (may be NULL). */
sy_ws *sy__ws_attach(sy_bstream *c, const sy_ws_opts *opts, int is_client, sy_pmd *pmd);
/* Start the engine on an already allocated handle (the client creates it before its
 * handshake). */
void sy__ws_start(sy_ws *ws, sy_bstream *c, const sy_ws_opts *opts, int is_client, sy_pmd *pmd);
/* Queue a ready-made, unmasked frame (header + payload) of a published message on a server
 * connection, under the connection's backpressure policy (payload_len is what it counts).
 * shared_deflate: the payload was compressed without this connection's context. free_fn NULL:
 * the frame is copied; else it is queued by reference and free_fn(frame, ud) runs once it is
 * written or dropped, also when nothing was queued. Returns an enum sy_ws_send_result or -err
 * (SY_ECLOSED closing, SY_ESTATE in the middle of a fragmented send, SY_ENOMEM). */
int sy__ws_send_frame(sy_ws *ws, const uint8_t *frame, size_t len, size_t payload_len,
                      int shared_deflate, void (*free_fn)(const void *frame, void *ud), void *ud);
/* Queue a run of n ready-made, unmasked frames laid end to end in run (frame i ends at byte
 * ends[i], and the payloads up to it make pends[i] bytes) by reference, in one piece: the
 * frames the backpressure policy lets through, which are a prefix of the run (the same
 * frames n calls of sy__ws_send_frame would queue). free_fn(run, ud) runs once that piece is
 * written or dropped, or now when nothing was queued. *queued gets the number of frames
 * queued. Returns what sy__ws_send_frame would for the last frame: SY_WS_SEND_OK or
 * SY_WS_SEND_BACKPRESSURE when all went, SY_WS_SEND_DROPPED when some did not, or -err. */
int sy__ws_send_run(sy_ws *ws, const uint8_t *run, const uint32_t *ends, const uint32_t *pends,
                    size_t n, void (*free_fn)(const void *run, void *ud), void *ud, size_t *queued);
/* Drop a reference; the last one frees the handle. */
void sy__ws_unref(sy_ws *ws);
char *sy__ws_strdup(const char *s, size_t n);
/* Fill defaults. */
void sy__ws_opts_defaults(sy_ws_opts *o);
int sy__ws_opts_copy(sy_ws_opts **out, const sy_ws_opts *src);

#endif
