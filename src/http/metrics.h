/* The HTTP side's counters, one set per worker (in the worker's sy_http_worker), written only
 * by that worker's thread and summed by the scraper (src/server/metrics.c). The protocols
 * above (http1, http2, ws, raw streams) count through the helpers below; a connection with no
 * worker (the WebSocket client) has no counters and passes NULL. */
#ifndef SY_HTTP_METRICS_H
#define SY_HTTP_METRICS_H

#include "core/metrics.h"

/* How a request reached us (sy_req.protocol). */
enum { SY_MP_HTTP10, SY_MP_HTTP11, SY_MP_H2, SY_MP_H2C, SY_MP_H2C_UPGRADE, SY_MP_N };
/* Method classes. */
enum {
    SY_MM_GET,
    SY_MM_HEAD,
    SY_MM_POST,
    SY_MM_PUT,
    SY_MM_DELETE,
    SY_MM_OPTIONS,
    SY_MM_PATCH,
    SY_MM_CONNECT,
    SY_MM_OTHER,
    SY_MM_N
};
/* Upgradable protocols, by plug-in: the WebSocket, raw streams, h2c; "other" is a token no
 * route registers. */
enum { SY_UP_WEBSOCKET, SY_UP_RAW, SY_UP_H2C, SY_UP_OTHER, SY_UP_N };
/* Why an upgrade request did not switch (sy_req.refusal; check hooks set it). */
enum {
    SY_REFUSE_NONE = 0,
    SY_REFUSE_METHOD,         /* WebSocket: not GET */
    SY_REFUSE_VERSION,        /* Sec-WebSocket-Version missing or not 13 */
    SY_REFUSE_KEY,            /* Sec-WebSocket-Key missing, repeated or malformed */
    SY_REFUSE_ORIGIN,         /* Origin not allowed */
    SY_REFUSE_SUBPROTOCOL,    /* a subprotocol is required and none matched */
    SY_REFUSE_APP,            /* the application's hook refused */
    SY_REFUSE_MEMORY,         /* out of memory */
    SY_REFUSE_BODY_TOO_LARGE, /* the request's body is over the limit (413) */
    SY_REFUSE_NOT_REGISTERED, /* the route has no such protocol (served normally, 426, 501) */
    SY_REFUSE_DECLINED,       /* a check hook declined (served normally) */
    SY_REFUSE_NOT_FOUND,      /* no route (404) */
    SY_REFUSE_BAD_REQUEST,    /* the request itself was malformed (400, 431, ...) */
    SY_REFUSE_N
};
/* WebSocket close causes: enum sy_ws_cause (1..11), 0 unknown. */
#define SY_MW_CAUSES 12
/* Close codes received from a peer: 1000..1015 each, 3xxx, 4xxx, none (1005), other. */
enum { SY_MW_CODE_3XXX = 16, SY_MW_CODE_4XXX, SY_MW_CODE_OTHER, SY_MW_CODES };
/* Raw stream ends: the on_close err. */
enum { SY_MR_EOF, SY_MR_TIMEOUT, SY_MR_LIMIT, SY_MR_IO, SY_MR_MEMORY, SY_MR_OTHER, SY_MR_N };

typedef struct sy_http_metrics {
    sy_ctr requests[SY_MP_N][SY_MM_N][6]; /* status class 1..5, 0 anything else */
    sy_hist request_duration;             /* head received -> response done */
    /* the upgrade funnel, per protocol */
    sy_ctr up_requested[SY_UP_N];
    sy_ctr up_accepted[SY_UP_N];    /* the check hook accepted */
    sy_ctr up_switched[SY_UP_N][2]; /* answered: [0] 101 (HTTP/1.1), [1] 200 (RFC 8441) */
    sy_ctr up_first_message[SY_UP_N];
    sy_ctr up_closed[SY_UP_N];
    sy_ctr up_refused[SY_UP_N][SY_REFUSE_N];
    sy_hist up_handshake[SY_UP_N]; /* first byte of the request -> switch answered */
    sy_hist up_lifetime[SY_UP_N];  /* switch -> close */
    /* WebSocket traffic (payload bytes, after inflate / before deflate) */
    sy_ctr ws_msgs_in, ws_msgs_out, ws_bytes_in, ws_bytes_out;
    sy_ctr ws_close_cause[SY_MW_CAUSES];
    sy_ctr ws_peer_code[SY_MW_CODES];
    sy_ctr raw_close[SY_MR_N];
    sy_ctr raw_bytes_in, raw_bytes_out;
    /* HTTP/2 */
    sy_ctr h2_conns_opened, h2_conns_closed, h2_streams_opened, h2_streams_closed;
} sy_http_metrics;

/* The kind of an upgrade plug-in by its name (sy_upgrade_proto.name). */
int sy__metrics_up_kind(const char *proto_name);

#endif
