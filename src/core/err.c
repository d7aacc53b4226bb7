/* Names and sentences for enum sy_err, and for the non-negative results calls return. */
#include "core/common.h"

struct err_entry {
    int code;
    const char *name;
    const char *text;
};

/* Non-negative values are results, not errors: 0 from any call, and the positive results of
 * sy_ws_send and sy_stream_write. Those two enums share their values (checked below), so one
 * entry names both; it carries the sy_ws_send name. */
static const struct err_entry results[] = {
    {SY_OK, "SY_OK", "ok"},
    {SY_WS_SEND_BACKPRESSURE, "SY_WS_SEND_BACKPRESSURE",
     "queued, but the send buffer is above its high-water mark"},
    {SY_WS_SEND_DROPPED, "SY_WS_SEND_DROPPED",
     "not queued: dropped by the backpressure policy or closing"},
};
_Static_assert((int)SY_WS_SEND_OK == (int)SY_OK && (int)SY_STREAM_WRITE_OK == (int)SY_OK &&
                   (int)SY_STREAM_WRITE_BACKPRESSURE == (int)SY_WS_SEND_BACKPRESSURE,
               "sy_ws_send and sy_stream_write results share their values and their text");

static const struct err_entry unknown_result = {0, "SY_EUNKNOWN", "unknown result"};
static const struct err_entry unknown_error = {0, "SY_EUNKNOWN", "unknown error"};

static const struct err_entry errs[] = {
    {SY_EINVAL, "SY_EINVAL", "invalid argument"},
    {SY_ESTATE, "SY_ESTATE", "operation not allowed in the current state"},
    {SY_ENOTFOUND, "SY_ENOTFOUND", "not found"},
    {SY_EEXIST, "SY_EEXIST", "already registered"},
    {SY_ERANGE, "SY_ERANGE", "value out of range"},
    {SY_EIO, "SY_EIO", "system call failed"},
    {SY_ECLOSED, "SY_ECLOSED", "connection closed"},
    {SY_EADDR, "SY_EADDR", "invalid or unresolvable address"},
    {SY_EADDRINUSE, "SY_EADDRINUSE", "address already in use"},
    {SY_ETIMEDOUT, "SY_ETIMEDOUT", "timed out"},
    {SY_EAGAIN, "SY_EAGAIN", "try again later"},
    {SY_ELIMIT, "SY_ELIMIT", "limit reached"},
    {SY_EHTTP_SYNTAX, "SY_EHTTP_SYNTAX", "malformed HTTP request"},
    {SY_EHTTP_URI_LONG, "SY_EHTTP_URI_LONG", "request line too long"},
    {SY_EHTTP_HEAD_LARGE, "SY_EHTTP_HEAD_LARGE", "request header section too large"},
    {SY_EHTTP_VERSION, "SY_EHTTP_VERSION", "HTTP version not supported"},
    {SY_EHTTP_FRAMING, "SY_EHTTP_FRAMING",
     "invalid message framing (Content-Length/Transfer-Encoding)"},
    {SY_EHTTP_CODING, "SY_EHTTP_CODING", "transfer coding not implemented"},
    {SY_EHTTP_BODY_LARGE, "SY_EHTTP_BODY_LARGE", "request body too large"},
    {SY_EHTTP_EXPECT, "SY_EHTTP_EXPECT", "expectation not supported"},
    {SY_EHTTP_CHUNK, "SY_EHTTP_CHUNK", "malformed chunked body"},
    {SY_EWS_PROTOCOL, "SY_EWS_PROTOCOL", "WebSocket protocol violation"},
    {SY_EWS_UTF8, "SY_EWS_UTF8", "invalid UTF-8 in WebSocket text"},
    {SY_EWS_TOO_BIG, "SY_EWS_TOO_BIG", "WebSocket message too big"},
    {SY_EWS_HANDSHAKE, "SY_EWS_HANDSHAKE", "WebSocket handshake failed"},
    {SY_EWS_EXTENSION, "SY_EWS_EXTENSION", "WebSocket extension error"},
    {SY_EWS_POLICY, "SY_EWS_POLICY", "WebSocket policy violation"},
    {SY_ETLS, "SY_ETLS", "TLS handshake or record error"},
    {SY_ETLS_CERT, "SY_ETLS_CERT", "certificate or key cannot be used"},
    {SY_ETLS_VERIFY, "SY_ETLS_VERIFY", "the server's certificate did not verify"},
    {SY_ENOMEM, "SY_ENOMEM", "out of memory"},
    {SY_EINTERNAL, "SY_EINTERNAL", "internal error"},
};

/* The entry for err: a result when err >= 0, an error when < 0; never NULL. */
static const struct err_entry *find(int err)
{
    const struct err_entry *t = err < 0 ? errs : results;
    size_t n = err < 0 ? SY_ARRAY_LEN(errs) : SY_ARRAY_LEN(results);
    for (size_t i = 0; i < n; i++)
        if (t[i].code == err)
            return &t[i];
    return err < 0 ? &unknown_error : &unknown_result;
}

SY_EXPORT const char *sy_strerror(int err)
{
    return find(err)->text;
}

SY_EXPORT const char *sy_err_name(int err)
{
    return find(err)->name;
}

SY_EXPORT int sy_err_is_fatal(int err)
{
    return err <= -900;
}
