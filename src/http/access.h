/* Access-log entries for requests and for upgraded connections, and the counters that go with
 * them: every request ends here, and every switched connection begins and ends here. */
#ifndef SY_HTTP_ACCESS_H
#define SY_HTTP_ACCESS_H

#include "http/req.h"

/* A request is finished (response done, or an error answered): count it and log it. */
void sy__access_log_req(sy_req *r, int status);

/* An upgraded connection's record, from the switch to its close: what the log line needs from
 * the request, and the counters of its protocol. */
/* NULL without memory: the switch must not go on (the record holds the route set). */
sy_uplog *sy__uplog_begin(sy_req *r, const sy_upgrade_entry *e, const char *token,
                          size_t token_len);
/* The first message (WebSocket) or bytes (raw stream) of a switched connection arrived. */
void sy__uplog_first_message(sy_uplog *u);
/* The connection closed: cause names why ("peer", "idle", "eof", ...: NULL when it only
 * handed over, as h2c), code is a WebSocket close code or 0, detail a sentence or NULL. Frees
 * u (NULL is fine). */
void sy__uplog_end(sy_uplog *u, sy_bstream *bs, const char *cause, int code, const char *detail);
/* Every switched connection holds one of these for its whole life, so only what the counters
 * and the route set need comes first; the rest exists only with an access log (an idle
 * WebSocket of a server without one holds 24 bytes here, not 120). */
struct sy_uplog {
    sy_http_metrics *m;
    sy_http_conf *conf;      /* a reference on the route set of the switch */
    uint64_t switch_us : 56; /* when the switch was answered (µs: 2,000 years) */
    uint64_t kind : 6;       /* SY_UP_* */
    uint64_t first_seen : 1; /* the first message was counted */
    uint64_t logged : 1;     /* the part below is there: the access log is on */
    /* ---- for the access log only ---- */
    const sy_http_app *app;
    uint64_t start_us; /* the request's */
    uint64_t id;
    int version;
    int status;           /* 101, or 200 for an HTTP/2 extended CONNECT */
    const char *protocol; /* static string */
    char *method, *target, *token;
    char buf[];
};

/* The counters of the worker the record belongs to, or NULL. Inline: the WebSocket engine
 * counts every message through it (rather than keep its own copy of the pointer). */
static inline sy_http_metrics *sy__uplog_metrics(const sy_uplog *u)
{
    return u ? u->m : NULL;
}

#endif
