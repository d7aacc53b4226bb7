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

/* Receive side: the message being assembled and validated, and why reading is paused. Only
 * the input path writes it (the send path may take over rx.msg while it is being delivered:
 * see sy_ws_send). */
typedef struct sy_ws_rx {
    sy_ws_parser parser;
    sy_utf8 utf8; /* text validation of the message being received */
    uint8_t *msg; /* assembly buffer for fragmented/compressed messages; NULL when idle */
    size_t msg_len, msg_cap;
    uint8_t opcode; /* of the message being received */
    uint8_t compressed;
    uint8_t paused_bp;      /* the peer does not read what we send: we stop reading too */
    uint8_t paused_rate;    /* the inflate budget is spent until resume_ms */
    int64_t inflate_credit; /* bytes that may still be inflated (negative: owed) */
    uint64_t credit_ms;     /* when inflate_credit was last refilled */
    uint64_t resume_ms;
} sy_ws_rx;

/* Send side: the fragmented message being sent. Only the send functions write it. */
typedef struct sy_ws_tx {
    uint8_t frag_sending; /* a streaming send is in progress */
    uint8_t frag_opcode;
    uint8_t frag_compressed;
    uint8_t bp_flagged; /* a send returned BACKPRESSURE: call on_drain at low water */
    sy_utf8 utf8;       /* text validation of the fragments sent so far */
} sy_ws_tx;

struct sy_ws {
    sy_bstream *c; /* the byte stream; NULL once on_close has run (it is freed after) */
    sy_loop *loop; /* the connection's loop, for calls from other threads */
    const sy_ws_opts *opts;
    sy_ws_opts *owned_opts; /* client: its own copy */
    const sy_ws_cbs *cbs;   /* the route options' callbacks, or the client's copy */
    void *ud;
    sy_pmd *pmd; /* NULL when permessage-deflate was not negotiated */
    sy_ws_rx rx;
    sy_ws_tx tx;
    uint8_t is_client;
    uint8_t open_done;
    uint8_t close_sent;
    uint8_t close_received;
    uint8_t failed;
    uint8_t ping_outstanding;
    uint8_t dead;        /* on_close delivered */
    uint8_t got_message; /* a message arrived (the funnel's first message was counted) */
    atomic_int refs;
    int close_code;
    int cause;
    const char *detail;
    uint64_t last_rx_ms;
    uint64_t ping_deadline;
    uint64_t close_deadline;
    char *close_reason; /* allocated when the close starts (idle connections carry none) */
    char *subprotocol;  /* NULL = none */
    char *extensions;   /* NULL = none */
    sy_uplog *log;
    sy_http_metrics *m;     /* the worker's counters, or NULL (client) */
    const sy_req *open_req; /* the upgrade request, set only while on_open runs */
    /* Layers above the engine (pub/sub subscriptions): ext_end runs once when the
     * connection closes, right after on_close. */
    void *ext;
    void (*ext_end)(sy_ws *ws);
    /* client state (src/ws/client.c) */
    void *client;
    void (*client_free)(sy_ws *ws);
};

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
/* Drop a reference; the last one frees the handle. */
void sy__ws_unref(sy_ws *ws);
char *sy__ws_strdup(const char *s, size_t n);
/* Fill defaults. */
void sy__ws_opts_defaults(sy_ws_opts *o);
int sy__ws_opts_copy(sy_ws_opts **out, const sy_ws_opts *src);

#endif
