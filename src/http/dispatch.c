/* Version-neutral request dispatch (see dispatch.h). */
#include "http/dispatch.h"

#include <stdio.h>

static const sy_http_conf *conf_of(const sy_req *r)
{
    return r->conf ? r->conf : sy__http_app(r->worker->srv)->conf;
}

int sy__http_route(sy_req *r)
{
    int mismatch = 0;
    r->route =
        sy__route_match(conf_of(r), r->path, r->path_len, r->method, r->method_len, &mismatch);
    return !r->route && mismatch;
}

void sy__http_respond_405(sy_req *r)
{
    const sy_http_conf *c = conf_of(r);
    if (!sy__route_method_known(c, r->method, r->method_len)) {
        /* RFC 9110 §9.1: a method no one here knows ("get", "FOO") is 501, not 405. */
        static const char body[] = "501 Not Implemented: unknown method\n";
        r->detail = "unknown method";
        sy_respond(r, 501, "text/plain; charset=utf-8", body, sizeof(body) - 1);
        return;
    }
    /* RFC 9110 §15.5.6: a 405 MUST list what the resource supports. */
    char allow[256];
    if (sy__route_allow(c, r->path, r->path_len, allow, sizeof(allow)))
        sy_resp_header(r, "Allow", allow);
    static const char body[] = "405 Method Not Allowed\n";
    sy_respond(r, 405, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

int sy__http_streams_body(const sy_req *r)
{
    const sy_route *route = r->route;
    if (!route || !(route->flags & SY_ROUTE_STREAM_BODY) || route->nupgrades)
        return 0;
    /* A request that asks to switch may meet a server-wide protocol: read its body first. */
    return !(r->upgrade && r->worker && sy__http_app(r->worker->srv)->nupgrades);
}

void sy__http_call_handler(sy_req *r)
{
    sy__req_hand_out(r);
    r->route->handler(r, r->route->ud);
}

static void respond_426(sy_req *r)
{
    const sy_route *route = r->route;
    char list[256];
    size_t o = 0;
    for (size_t k = 0; k < route->nupgrades && o < sizeof(list) - 2; k++) {
        int n =
            snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", route->upgrades[k].token);
        if (n < 0 || (size_t)n >= sizeof(list) - o)
            break;
        o += (size_t)n;
    }
    list[o] = 0;
    sy_resp_header(r, "Upgrade", list);
    static const char body[] = "426 Upgrade Required: this resource needs a protocol upgrade\n";
    r->detail = "upgrade required";
    r->upgrade_hint = 1;
    sy_respond(r, 426, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

void sy__http_dispatch(sy_req *r)
{
    const sy_route *route = r->route;
    if (route && (route->flags & SY_ROUTE_UPGRADE_REQUIRED)) {
        respond_426(r);
    } else if (r->path[0] == '*' && r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0) {
        sy_resp_header(r, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS");
        sy_respond(r, 200, NULL, NULL, 0);
    } else if (route && route->handler) {
        sy__http_call_handler(r);
        /* A streamed-body handler on a request without a body (Content-Length: 0): the end
         * is known now, so say it at once. */
        if (r->body_complete)
            sy__req_body_end(r);
    } else {
        static const char nf[] = "404 Not Found\n";
        sy_respond(r, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
    }
}
