/* Access-log entries and the request/upgrade counters. Entries are built only when the server
 * has a sink, so logging costs nothing when it is off; counting costs a few stores. */
#include "http/access.h"
#include "http/upgrade.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>

int sy__metrics_up_kind(const char *name)
{
    if (!name)
        return SY_UP_OTHER;
    if (!strcmp(name, "websocket"))
        return SY_UP_WEBSOCKET;
    if (!strcmp(name, "h2c"))
        return SY_UP_H2C;
    if (!strcmp(name, "raw"))
        return SY_UP_RAW;
    return SY_UP_OTHER;
}

static int proto_index(const char *p)
{
    if (!p || !strcmp(p, "http/1.1"))
        return SY_MP_HTTP11;
    if (!strcmp(p, "http/1.0"))
        return SY_MP_HTTP10;
    if (!strcmp(p, "h2"))
        return SY_MP_H2;
    if (!strcmp(p, "h2c"))
        return SY_MP_H2C;
    if (!strcmp(p, "h2c-upgrade"))
        return SY_MP_H2C_UPGRADE;
    return SY_MP_HTTP11;
}

static int method_index(const char *m, size_t n)
{
    static const char *const names[] = {"GET",    "HEAD",    "POST",  "PUT",
                                        "DELETE", "OPTIONS", "PATCH", "CONNECT"};
    for (size_t i = 0; m && i < SY_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == n && !memcmp(names[i], m, n))
            return (int)i;
    return SY_MM_OTHER;
}

/* Why an upgrade request that was answered with status did not switch. */
static int refusal_of(const sy_req *r, int status)
{
    if (r->refusal)
        return r->refusal;
    switch (status) {
    case 413:
        return SY_REFUSE_BODY_TOO_LARGE;
    case 404:
        return SY_REFUSE_NOT_FOUND;
    case 426:
    case 501:
        return SY_REFUSE_NOT_REGISTERED;
    case 503:
        return SY_REFUSE_MEMORY;
    default:
        return status < 400 ? SY_REFUSE_NOT_REGISTERED : SY_REFUSE_BAD_REQUEST;
    }
}

static void count_req(sy_req *r, int status, uint64_t dur_us)
{
    sy_http_metrics *m = sy__http_metrics(r->worker);
    if (!m)
        return;
    int sc = status >= 100 && status < 600 ? status / 100 : 0;
    sy__ctr_inc(&m->requests[proto_index(r->protocol)][method_index(r->method, r->method_len)][sc]);
    sy__hist_observe(&m->request_duration, &sy__hist_latency, dur_us);
    if (r->up_kind)
        sy__ctr_inc(&m->up_refused[r->up_kind - 1][refusal_of(r, status)]);
}

void sy__access_log_req(sy_req *r, int status)
{
    uint64_t dur = r->start_us ? sy__now_us() - r->start_us : 0;
    count_req(r, status, dur);
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
        .duration_us = dur,
        .detail = r->detail,
        .protocol = r->protocol ? r->protocol : "http/1.1",
        .request_id = r->id,
        .event = SY_ACCESS_REQUEST,
    };
    s->access_log(&e, s->access_log_ud);
}

sy_uplog *sy__uplog_begin(sy_req *r, const sy_upgrade_entry *e, const char *token, size_t token_len)
{
    const sy_http_app *s = r->worker ? sy__http_app(r->worker->srv) : NULL;
    sy_http_metrics *m = sy__http_metrics(r->worker);
    int kind = sy__metrics_up_kind(e && e->proto ? e->proto->name : NULL);
    uint64_t now = sy__now_us();
    uint64_t began = r->recv_us ? r->recv_us : r->start_us;
    int h2 = r->version >= 20;
    if (m) {
        sy__ctr_inc(&m->up_switched[kind][h2]);
        sy__hist_observe(&m->up_handshake[kind], &sy__hist_latency, now > began ? now - began : 0);
    }
    size_t tl = SY_MIN(r->target_len, 1024);
    size_t ml = SY_MIN(r->method_len, 32);
    size_t kl = SY_MIN(token_len, 64);
    int logged = s && s->access_log;
    sy_uplog *u = sy__malloc(logged ? sizeof(*u) + ml + tl + kl + 3 : offsetof(sy_uplog, app));
    if (!u) {
        if (m) /* it will close without a record: count the close now */
            sy__ctr_inc(&m->up_closed[kind]);
        return NULL;
    }
    u->m = m;
    /* The route's options (the protocol's, its user data) stay valid while the connection
     * lives, whatever a reload does meanwhile. */
    u->conf = r->conf;
    if (u->conf)
        sy__http_conf_ref(u->conf);
    u->switch_us = now & ((UINT64_C(1) << 56) - 1);
    u->kind = (unsigned)kind & 63;
    u->first_seen = 0;
    u->logged = (unsigned)logged;
    if (!logged)
        return u;
    u->app = s;
    u->start_us = r->start_us;
    u->id = r->id;
    u->version = r->version;
    u->status = h2 ? 200 : 101;
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
    if (u->app->log_switch && r->conn) {
        sy_access_entry le = {
            .peer = sy__conn_peer_str(r->conn),
            .method = u->method,
            .target = u->target,
            .version = u->version,
            .status = u->status,
            .upgraded = u->token,
            .bytes_in = r->body_received,
            .bytes_out = 0,
            .duration_us = now > began ? now - began : 0,
            .protocol = u->protocol,
            .request_id = u->id,
            .event = SY_ACCESS_SWITCH,
        };
        u->app->access_log(&le, u->app->access_log_ud);
    }
    return u;
}

void sy__uplog_first_message(sy_uplog *u)
{
    if (!u || u->first_seen)
        return;
    u->first_seen = 1;
    if (u->m)
        sy__ctr_inc(&u->m->up_first_message[u->kind]);
}

void sy__uplog_end(sy_uplog *u, sy_bstream *bs, const char *cause, int code, const char *detail)
{
    if (!u)
        return;
    uint64_t now = sy__now_us();
    if (u->m) {
        sy__ctr_inc(&u->m->up_closed[u->kind]);
        sy__hist_observe(&u->m->up_lifetime[u->kind], &sy__hist_lifetime,
                         now > u->switch_us ? now - u->switch_us : 0);
    }
    const sy_http_app *s = u->logged ? u->app : NULL;
    if (s && s->access_log) {
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
            .duration_us = now - u->start_us,
            .detail = detail,
            .protocol = u->protocol,
            .request_id = u->id,
            .event = SY_ACCESS_CLOSE,
            .close_cause = cause,
            .close_code = code,
        };
        s->access_log(&e, s->access_log_ud);
    }
    sy__http_conf_unref(u->conf);
    sy__free(u);
}
