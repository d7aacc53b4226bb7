/* Sans-I/O HTTP/1.1 response head parser, for the WebSocket client (and the probe). */
#ifndef SY_HTTP1_RESPONSE_H
#define SY_HTTP1_RESPONSE_H

#include "http1/parse.h"

typedef struct sy_http1_response {
    int minor_version;
    int status;
    const char *reason;
    size_t reason_len;
    sy_http1_header *headers;
    size_t num_headers;
} sy_http1_response;

/* Parse a response head from buf[0..len). Returns its length (> 0) when complete, 0 when
 * more bytes are needed, or SY_EHTTP_SYNTAX / SY_EHTTP_HEAD_LARGE with *detail set. Lines must
 * end in CRLF; field syntax is checked as for requests. */
ssize_t sy_http1_parse_response(const char *buf, size_t len, size_t max_head,
                                sy_http1_response *resp, sy_http1_header *headers, size_t cap,
                                const char **detail);

#endif
