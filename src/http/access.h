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
/* The counters of the worker the record belongs to, or NULL. */
sy_http_metrics *sy__uplog_metrics(const sy_uplog *u);

#endif
