/* Access-log entries. Built only when the server has a sink, so logging costs nothing when
 * it is off. */
#include "http/access.h"

#include <arpa/inet.h>
#include <stdio.h>

void sy__access_log_req(sy_req *r, int status)
{
    const sy_http_app *s = r->worker ? sy__http_app(r->worker->srv) : NULL;
    if (!s || !s->access_log || !r->conn)
        return;
    char method[32], target[512];
    size_t ml = SY_MIN(r->method_len, sizeof(method) - 1);
    size_t tl = SY_MIN(r->target_len, sizeof(target) - 1);
    if (r->method)
        memcpy(method, r->method, ml);
    else
        ml = 0;
    if (r->target)
        memcpy(target, r->target, tl);
    else
        tl = 0;
    method[ml] = 0;
    target[tl] = 0;
    sy_access_entry e = {
        .peer = sy__conn_peer_str(r->conn),
        .method = ml ? method : "-",
        .target = tl ? target : "-",
        .version = r->version ? r->version : 11,
        .status = status,
        .upgraded = NULL,
        .bytes_in = r->body_received,
        .bytes_out = r->resp_wire_bytes ? r->resp_wire_bytes : r->resp_bytes,
        .duration_us = r->start_us ? sy__now_us() - r->start_us : 0,
        .detail = r->detail,
        .protocol = r->protocol ? r->protocol : "http/1.1",
    };
    s->access_log(&e, s->access_log_ud);
}

struct sy_uplog {
    const sy_http_app *app;
    uint64_t start_us;
    int version;
    int status;           /* 101, or 200 for an HTTP/2 extended CONNECT */
    const char *protocol; /* static string */
    char *method, *target, *token;
    char buf[];
};

sy_uplog *sy__uplog_begin(sy_req *r, const char *token, size_t token_len)
{
    const sy_http_app *s = r->worker ? sy__http_app(r->worker->srv) : NULL;
    if (!s || !s->access_log)
        return NULL;
    size_t tl = SY_MIN(r->target_len, 1024);
    size_t ml = SY_MIN(r->method_len, 32);
    size_t kl = SY_MIN(token_len, 64);
    sy_uplog *u = sy__malloc(sizeof(*u) + ml + tl + kl + 3);
    if (!u)
        return NULL;
    u->app = s;
    u->start_us = r->start_us;
    u->version = r->version;
    u->status = r->version >= 20 ? 200 : 101;
    u->protocol = r->protocol ? r->protocol : "http/1.1";
    u->method = u->buf;
    memcpy(u->method, r->method, ml);
    u->method[ml] = 0;
    u->target = u->method + ml + 1;
    memcpy(u->target, r->target, tl);
    u->target[tl] = 0;
    u->token = u->target + tl + 1;
    memcpy(u->token, token, kl);
    u->token[kl] = 0;
    return u;
}

void sy__uplog_end(sy_uplog *u, sy_bstream *bs, const char *detail)
{
    if (!u)
        return;
    const sy_http_app *s = u->app;
    if (s->access_log) {
        uint64_t in, out;
        sy__bs_counts(bs, &in, &out);
        sy_access_entry e = {
            .peer = sy__bs_peer(bs),
            .method = u->method,
            .target = u->target,
            .version = u->version,
            .status = u->status,
            .upgraded = u->token,
            .bytes_in = in,
            .bytes_out = out,
            .duration_us = sy__now_us() - u->start_us,
            .detail = detail,
            .protocol = u->protocol,
        };
        s->access_log(&e, s->access_log_ud);
    }
    sy__free(u);
}
