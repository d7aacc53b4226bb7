/* The composition layer: a sy_server is the network side (src/net: listeners, workers) with
 * the HTTP side (src/http: routes, limits) on top, and HTTP/1 installed on every accepted
 * connection. This is the one place that knows which protocols exist; the layers below only
 * see hooks and plug-ins. */
#include "http/app.h"
#include "http/req.h"
#include "http1/server.h"

static int accept_conn(sy_conn *c, sy_worker *w, size_t addr_idx)
{
    (void)addr_idx;
    return sy__http1_attach(c, w);
}

static void free_app(sy_server *srv)
{
    sy__http_app_free(sy__http_app(srv));
    srv->app = NULL;
}

static const sy_net_hooks http_hooks = {accept_conn, sy__http_req_cache_clear, free_app};

SY_EXPORT int sy_server_new(sy_server **out)
{
    sy_server *s;
    int e = sy__server_new(&s);
    if (e < 0)
        return e;
    s->app = sy__http_app_new();
    if (!s->app) {
        sy_server_free(s);
        return SY_ENOMEM;
    }
    s->hooks = &http_hooks;
    *out = s;
    return 0;
}

SY_EXPORT int sy_server_set(sy_server *s, enum sy_server_opt opt, uint64_t v)
{
    if (s->started)
        return SY_ESTATE;
    if (opt == SY_OPT_WRITE_TIMEOUT_MS)
        s->cfg.flush_timeout_ms = v; /* the network side cuts stalled closing flushes too */
    int e = sy__server_set_net(s, opt, v);
    if (e != SY_EINVAL)
        return e;
    return sy__http_app_set(sy__http_app(s), opt, v);
}
