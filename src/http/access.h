/* Access-log entries for requests and for upgraded connections. */
#ifndef SY_HTTP_ACCESS_H
#define SY_HTTP_ACCESS_H

#include "http/req.h"

/* Log a finished request (no-op without an access-log sink). */
void sy__access_log_req(sy_req *r, int status);

/* An upgraded connection's log line is written when it closes, with its bytes and duration;
 * this record carries what is needed from the request. */
sy_uplog *sy__uplog_begin(sy_req *r, const char *token, size_t token_len);
void sy__uplog_end(sy_uplog *u, sy_bstream *bs, const char *detail);

#endif
