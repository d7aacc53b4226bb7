/* The HTTP side of a server: defaults, options, routes and matching (see app.h). */
#include "http/app.h"
#include "core/log.h"
#include "http/upgrade.h"

#include <string.h>

sy_http_app *sy__http_app_new(void)
{
    sy_http_app *a = sy__calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg.header_timeout_ms = 10000;
    a->cfg.keepalive_timeout_ms = 60000;
    a->cfg.body_timeout_ms = 30000;
    a->cfg.max_request_line = 8192;
    a->cfg.max_head = 65536;
    a->cfg.max_headers = 100;
    a->cfg.max_body = 8u << 20;
    a->cfg.write_timeout_ms = 30000;
    a->cfg.h2c = 1;
    return a;
}

static void entries_free(sy_upgrade_entry *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sy_upgrade_entry *e = &list[i];
        sy__free(e->token);
        if (e->opts && e->proto && e->proto->free_opts)
            e->proto->free_opts(e->opts);
    }
    sy__free(list);
}

static void route_free(sy_route *r)
{
    entries_free(r->upgrades, r->nupgrades);
    sy__free(r->method);
    sy__free(r->pattern);
    sy__free(r);
}

void sy__http_app_free(sy_http_app *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nroutes; i++)
        route_free(a->routes[i]);
    sy__free(a->routes);
    entries_free(a->upgrades, a->nupgrades);
    sy__free(a);
}

int sy__http_app_set(sy_http_app *a, enum sy_server_opt opt, uint64_t v)
{
    switch (opt) {
    case SY_OPT_HEADER_TIMEOUT_MS:
        a->cfg.header_timeout_ms = v;
        return 0;
    case SY_OPT_KEEPALIVE_TIMEOUT_MS:
        a->cfg.keepalive_timeout_ms = v;
        return 0;
    case SY_OPT_BODY_TIMEOUT_MS:
        a->cfg.body_timeout_ms = v;
        return 0;
    case SY_OPT_MAX_REQUEST_LINE:
        if (v < 16 || v > (1u << 20))
            return SY_ERANGE;
        a->cfg.max_request_line = v;
        return 0;
    case SY_OPT_MAX_HEAD:
        if (v < 64 || v > (1u << 24))
            return SY_ERANGE;
        a->cfg.max_head = v;
        return 0;
    case SY_OPT_MAX_HEADERS:
        if (v < 1 || v > 10000)
            return SY_ERANGE;
        a->cfg.max_headers = v;
        return 0;
    case SY_OPT_MAX_BODY:
        a->cfg.max_body = v;
        return 0;
    case SY_OPT_WRITE_TIMEOUT_MS:
        a->cfg.write_timeout_ms = v;
        return 0;
    case SY_OPT_H2C:
        if (v > 1)
            return SY_ERANGE;
        a->cfg.h2c = v;
        return 0;
    case SY_OPT_ACCESS_LOG_SWITCH:
        if (v > 1)
            return SY_ERANGE;
        a->log_switch = (int)v;
        return 0;
    default:
        return SY_EINVAL;
    }
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s);
    char *d = sy__malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

SY_EXPORT sy_route *sy_server_route(sy_server *srv, const char *method, const char *pattern,
                                    int flags, sy_handler_fn handler, void *ud)
{
    sy_http_app *s = sy__http_app(srv);
    const int known = SY_ROUTE_PREFIX | SY_ROUTE_STREAM_BODY | SY_ROUTE_UPGRADE_REQUIRED;
    const char *why = NULL;
    if (!pattern || pattern[0] != '/')
        why = "the pattern must start with '/'";
    else if (flags & ~known)
        why = "unknown route flags";
    else if (srv->started)
        why = "routes are added before sy_server_start";
    for (size_t i = 0; !why && i < s->nroutes; i++) {
        const sy_route *o = s->routes[i];
        int same_method =
            (!o->method && !method) || (o->method && method && strcmp(o->method, method) == 0);
        if (same_method && strcmp(o->pattern, pattern) == 0 &&
            (o->flags & SY_ROUTE_PREFIX) == (flags & SY_ROUTE_PREFIX))
            why = "this method and pattern are already routed";
    }
    if (why) {
        sy__log(SY_LOG_WARN, "sy_server_route(%s %s): %s", method ? method : "*",
                pattern ? pattern : "(null)", why);
        return NULL;
    }
    sy_route *r = sy__calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->pattern = dupstr(pattern);
    r->method = method ? dupstr(method) : NULL;
    sy_route **n = sy__realloc(s->routes, (s->nroutes + 1) * sizeof(*n));
    if (!r->pattern || (method && !r->method) || !n) {
        if (n)
            s->routes = n;
        route_free(r);
        return NULL;
    }
    r->pattern_len = strlen(pattern);
    r->flags = flags;
    r->handler = handler;
    r->ud = ud;
    s->routes = n;
    s->routes[s->nroutes++] = r;
    return r;
}

SY_EXPORT void sy_server_set_access_log(sy_server *srv, sy_access_log_fn fn, void *ud)
{
    sy_http_app *a = sy__http_app(srv);
    a->access_log = fn;
    a->access_log_ud = ud;
}

const sy_route *sy__route_match(const sy_http_app *s, const char *path, size_t path_len,
                                const char *method, size_t method_len, int *method_mismatch)
{
    const sy_route *best = NULL;
    size_t best_len = 0;
    int best_exact = 0;
    *method_mismatch = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const sy_route *r = s->routes[i];
        int exact = !(r->flags & SY_ROUTE_PREFIX);
        if (exact) {
            if (r->pattern_len != path_len || memcmp(r->pattern, path, path_len) != 0)
                continue;
        } else {
            if (r->pattern_len > path_len || memcmp(r->pattern, path, r->pattern_len) != 0)
                continue;
            /* "/static" matches "/static" and "/static/x" but not "/staticky". */
            if (r->pattern_len > 1 && r->pattern[r->pattern_len - 1] != '/' &&
                path_len > r->pattern_len && path[r->pattern_len] != '/')
                continue;
        }
        if (r->method) {
            size_t ml = strlen(r->method);
            int ok = ml == method_len && memcmp(r->method, method, ml) == 0;
            /* A GET route also answers HEAD. */
            if (!ok && method_len == 4 && memcmp(method, "HEAD", 4) == 0 &&
                strcmp(r->method, "GET") == 0)
                ok = 1;
            if (!ok) {
                *method_mismatch = 1;
                continue;
            }
        }
        if (!best || r->pattern_len > best_len ||
            (r->pattern_len == best_len && exact && !best_exact)) {
            best = r;
            best_len = r->pattern_len;
            best_exact = exact;
        }
    }
    if (best)
        *method_mismatch = 0;
    return best;
}
