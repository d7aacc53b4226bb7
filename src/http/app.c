/* The HTTP side of a server: defaults, options, routes and matching (see app.h). */
#include "http/app.h"
#include "core/log.h"
#include "http/upgrade.h"

#include <string.h>

static void cfg_defaults(sy_http_cfg *c)
{
    c->header_timeout_ms = 10000;
    c->keepalive_timeout_ms = 60000;
    c->body_timeout_ms = 30000;
    c->max_request_line = 8192;
    c->max_head = 65536;
    c->max_headers = 100;
    c->max_body = 8u << 20;
    c->write_timeout_ms = 30000;
}

static sy_http_conf *conf_new(const sy_http_cfg *cfg)
{
    sy_http_conf *c = sy__calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->cfg = *cfg;
    return c;
}

sy_http_app *sy__http_app_new(void)
{
    sy_http_app *a = sy__calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    sy_http_cfg cfg;
    cfg_defaults(&cfg);
    a->conf = conf_new(&cfg);
    if (!a->conf) {
        sy__free(a);
        return NULL;
    }
    a->building = a->conf;
    a->h2c = 1;
    pthread_mutex_init(&a->mu, NULL);
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

void sy__http_conf_ref(sy_http_conf *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void sy__http_conf_unref(sy_http_conf *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < c->nroutes; i++)
        route_free(c->routes[i]);
    sy__free(c->routes);
    if (c->retired)
        c->retired(c->retired_ud);
    sy__free(c);
}

void sy__http_app_free(sy_http_app *a)
{
    if (!a)
        return;
    sy__http_conf_unref(a->pending);
    sy__http_conf_unref(a->conf);
    entries_free(a->upgrades, a->nupgrades);
    pthread_mutex_destroy(&a->mu);
    sy__free(a);
}

sy_http_conf *sy__http_worker_conf(sy_worker *w)
{
    sy_http_app *a = sy__http_app(w->srv);
    sy_http_worker *hw = w->upper;
    if (!hw)
        return a->conf; /* no per-worker state (tests): nothing reloads under us */
    uint64_t gen = atomic_load_explicit(&a->gen, memory_order_acquire);
    if (hw->conf && hw->conf_gen == gen)
        return hw->conf;
    /* A reload happened (or first use): take the current set under the lock, so that it
     * cannot be retired between reading the pointer and taking the reference. */
    pthread_mutex_lock(&a->mu);
    sy_http_conf *c = a->conf;
    sy__http_conf_ref(c);
    gen = atomic_load_explicit(&a->gen, memory_order_relaxed);
    pthread_mutex_unlock(&a->mu);
    sy__http_conf_unref(hw->conf);
    hw->conf = c;
    hw->conf_gen = gen;
    return c;
}

/* ---- reload ---- */

SY_EXPORT int sy_server_reload_begin(sy_server *srv)
{
    sy_http_app *a = sy__http_app(srv);
    if (a->pending)
        return SY_ESTATE;
    a->pending = conf_new(&a->conf->cfg);
    if (!a->pending)
        return SY_ENOMEM;
    a->building = a->pending;
    return 0;
}

SY_EXPORT void sy_server_on_routes_retired(sy_server *srv, void (*fn)(void *ud), void *ud)
{
    sy_http_app *a = sy__http_app(srv);
    if (a->building) {
        a->building->retired = fn;
        a->building->retired_ud = ud;
    }
}

SY_EXPORT int sy_server_reload_commit(sy_server *srv)
{
    sy_http_app *a = sy__http_app(srv);
    if (!a->pending)
        return SY_ESTATE;
    pthread_mutex_lock(&a->mu);
    sy_http_conf *old = a->conf;
    a->conf = a->pending;
    atomic_fetch_add_explicit(&a->gen, 1, memory_order_release);
    pthread_mutex_unlock(&a->mu);
    a->pending = NULL;
    a->building = srv->started ? NULL : a->conf;
    sy__http_conf_unref(old); /* retired once the connections that use it are gone */
    return 0;
}

SY_EXPORT void sy_server_reload_abort(sy_server *srv)
{
    sy_http_app *a = sy__http_app(srv);
    if (!a->pending)
        return;
    sy__http_conf_unref(a->pending);
    a->pending = NULL;
    a->building = srv->started ? NULL : a->conf;
}

int sy__http_app_set(sy_http_app *a, int started, enum sy_server_opt opt, uint64_t v)
{
    if (opt == SY_OPT_H2C || opt == SY_OPT_ACCESS_LOG_SWITCH) {
        if (v > 1)
            return SY_ERANGE;
        if (started)
            return SY_ESTATE; /* they decide how connections start */
        if (opt == SY_OPT_H2C)
            a->h2c = (int)v;
        else
            a->log_switch = (int)v;
        return 0;
    }
    if (!a->building || (started && a->building == a->conf))
        return SY_ESTATE; /* running: only a set being built by a reload */
    sy_http_cfg *c = &a->building->cfg;
    switch (opt) {
    case SY_OPT_HEADER_TIMEOUT_MS:
        c->header_timeout_ms = v;
        return 0;
    case SY_OPT_KEEPALIVE_TIMEOUT_MS:
        c->keepalive_timeout_ms = v;
        return 0;
    case SY_OPT_BODY_TIMEOUT_MS:
        c->body_timeout_ms = v;
        return 0;
    case SY_OPT_MAX_REQUEST_LINE:
        if (v < 16 || v > (1u << 20))
            return SY_ERANGE;
        c->max_request_line = v;
        return 0;
    case SY_OPT_MAX_HEAD:
        if (v < 64 || v > (1u << 24))
            return SY_ERANGE;
        c->max_head = v;
        return 0;
    case SY_OPT_MAX_HEADERS:
        if (v < 1 || v > 10000)
            return SY_ERANGE;
        c->max_headers = v;
        return 0;
    case SY_OPT_MAX_BODY:
        c->max_body = v;
        return 0;
    case SY_OPT_WRITE_TIMEOUT_MS:
        c->write_timeout_ms = v;
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
    sy_http_app *a = sy__http_app(srv);
    /* Once started, only a set being built by a reload takes routes. */
    sy_http_conf *s = srv->started && a->building == a->conf ? NULL : a->building;
    const int known = SY_ROUTE_PREFIX | SY_ROUTE_STREAM_BODY | SY_ROUTE_UPGRADE_REQUIRED;
    const char *why = NULL;
    if (!pattern || pattern[0] != '/')
        why = "the pattern must start with '/'";
    else if (flags & ~known)
        why = "unknown route flags";
    else if (!s)
        why = "routes are added before sy_server_start, or between sy_server_reload_begin "
              "and sy_server_reload_commit";
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

/* Does route r's pattern cover path? */
static int path_matches(const sy_route *r, const char *path, size_t path_len)
{
    if (!(r->flags & SY_ROUTE_PREFIX))
        return r->pattern_len == path_len && memcmp(r->pattern, path, path_len) == 0;
    if (r->pattern_len > path_len || memcmp(r->pattern, path, r->pattern_len) != 0)
        return 0;
    /* "/static" matches "/static" and "/static/x" but not "/staticky". */
    return !(r->pattern_len > 1 && r->pattern[r->pattern_len - 1] != '/' &&
             path_len > r->pattern_len && path[r->pattern_len] != '/');
}

size_t sy__route_allow(const sy_http_conf *s, const char *path, size_t path_len, char *out,
                       size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const sy_route *r = s->routes[i];
        if (!r->method || !path_matches(r, path, path_len))
            continue;
        const char *m[2] = {r->method, strcmp(r->method, "GET") == 0 ? "HEAD" : NULL};
        for (int k = 0; k < 2 && m[k]; k++) {
            size_t ml = strlen(m[k]), at = 0;
            int seen = 0;
            /* already listed? (the list is short: a linear look is fine) */
            while (at < o && !seen) {
                size_t e = at;
                while (e < o && out[e] != ',')
                    e++;
                seen = e - at == ml && memcmp(out + at, m[k], ml) == 0;
                at = e + 2;
            }
            if (seen || o + ml + 3 > cap)
                continue;
            if (o) {
                memcpy(out + o, ", ", 2);
                o += 2;
            }
            memcpy(out + o, m[k], ml);
            o += ml;
            out[o] = 0;
        }
    }
    return o;
}

int sy__route_method_known(const sy_http_conf *s, const char *method, size_t method_len)
{
    static const char *const std[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                      "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < SY_ARRAY_LEN(std); i++)
        if (strlen(std[i]) == method_len && memcmp(std[i], method, method_len) == 0)
            return 1;
    for (size_t i = 0; i < s->nroutes; i++) {
        const char *m = s->routes[i]->method;
        if (m && strlen(m) == method_len && memcmp(m, method, method_len) == 0)
            return 1;
    }
    return 0;
}

const sy_route *sy__route_match(const sy_http_conf *s, const char *path, size_t path_len,
                                const char *method, size_t method_len, int *method_mismatch)
{
    const sy_route *best = NULL;
    size_t best_len = 0;
    int best_exact = 0;
    *method_mismatch = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const sy_route *r = s->routes[i];
        int exact = !(r->flags & SY_ROUTE_PREFIX);
        if (!path_matches(r, path, path_len))
            continue;
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
