/* The HTTP side of a server, whatever the HTTP version: limits and timeouts, routes with
 * their upgradable protocols, and the access-log sink. Hangs off sy_server->app. */
#ifndef SY_HTTP_APP_H
#define SY_HTTP_APP_H

#include "http/metrics.h"
#include "net/worker.h"

typedef struct sy_uplog sy_uplog;

typedef struct sy_upgrade_proto sy_upgrade_proto;

/* A protocol registered on a route (see http/upgrade.h for the plug-in interface). */
typedef struct sy_upgrade_entry {
    char *token; /* as registered; matched case-insensitively */
    const sy_upgrade_proto *proto;
    sy_upgrade_check_fn check;
    void *opts;                /* the protocol's own options, freed by proto->free_opts */
    sy_stream_open_fn on_open; /* raw streams */
    void *ud;
    /* Bytes of per-connection state the protocol keeps in the connection's own allocation
     * when there is room (sy__bs_tail): connections reserve the largest of these. */
    size_t conn_state;
} sy_upgrade_entry;

struct sy_route {
    char *method; /* NULL = any */
    char *pattern;
    size_t pattern_len;
    int flags;
    sy_handler_fn handler;
    void *ud;
    sy_upgrade_entry *upgrades;
    size_t nupgrades;
};

typedef struct sy_http_cfg {
    uint64_t header_timeout_ms;
    uint64_t keepalive_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t max_request_line;
    uint64_t max_head;
    uint64_t max_headers;
    uint64_t max_body;
    uint64_t write_timeout_ms;
} sy_http_cfg;

/* Routes and limits: what a reload replaces. Connections keep the set that was current when
 * they were accepted, through a reference (and so do what outlives them: orphaned requests,
 * switched connections); new connections take the current one. The last reference frees it
 * and tells the application (retired), whose route data it may then free. */
typedef struct sy_http_conf {
    atomic_int refs;
    sy_http_cfg cfg;
    sy_route **routes;
    size_t nroutes;
    void (*retired)(void *ud);
    void *retired_ud;
} sy_http_conf;

void sy__http_conf_ref(sy_http_conf *c);
void sy__http_conf_unref(sy_http_conf *c);

typedef struct sy_http_app {
    /* The current routes and limits (one reference held here). Swapped by a reload under mu;
     * gen counts swaps, so that a worker notices with one load (sy__http_worker_conf). */
    sy_http_conf *conf;
    sy_http_conf *pending;  /* being built between sy_server_reload_begin and _commit */
    sy_http_conf *building; /* where sy_server_route and sy_server_set go: conf before the
                               start, pending during a reload, else NULL */
    pthread_mutex_t mu;
    _Atomic uint64_t gen;
    int h2c; /* cleartext HTTP/2 (not reloadable: it decides how connections start) */
    sy_access_log_fn access_log;
    void *access_log_ud;
    int log_switch; /* SY_OPT_ACCESS_LOG_SWITCH */
    /* Server-wide protocols (h2c), tried when none of the route's entries matched a token
     * of the request's Upgrade. Registered by the composition layer. */
    sy_upgrade_entry *upgrades;
    size_t nupgrades;
} sy_http_app;

static inline sy_http_app *sy__http_app(const sy_server *s)
{
    return (sy_http_app *)s->app;
}

/* The HTTP side's per-worker state (sy_worker.upper), made when the worker is (see
 * src/server): the cache of request objects, the request-id sequence, the counters. */
typedef struct sy_http_worker {
    sy_req *cache_head;
    size_t cache_len;
    uint64_t next_id;
    sy_http_conf *conf; /* the routes and limits new connections get (a reference) */
    uint64_t conf_gen;  /* app->gen when conf was taken */
    sy_http_metrics m;
} sy_http_worker;

/* The routes and limits for a connection accepted on w now (not a new reference: take one
 * to keep it). */
sy_http_conf *sy__http_worker_conf(sy_worker *w);

/* Make w's state (0 or SY_ENOMEM); sy__http_req_cache_clear (http/req.h) frees it. */
int sy__http_worker_init(sy_worker *w);

/* w's counters, or NULL (no worker: client connections, tests without a server). */
static inline sy_http_metrics *sy__http_metrics(const sy_worker *w)
{
    return w && w->upper ? &((sy_http_worker *)w->upper)->m : NULL;
}

/* Create the HTTP side with default limits. */
sy_http_app *sy__http_app_new(void);
void sy__http_app_free(sy_http_app *a);
/* Set an HTTP option. Returns 0, SY_ERANGE, or SY_EINVAL when opt is not an HTTP option. */
int sy__http_app_set(sy_http_app *a, int started, enum sy_server_opt opt, uint64_t v);

/* Find the route for the request path and method. *method_mismatch is set when a route
 * matched the path but not the method. */
/* Add a server-wide upgrade entry (the token is copied). */
int sy__http_app_add_upgrade(sy_http_app *a, const sy_upgrade_entry *tmpl);

/* The methods of the routes whose pattern covers path, as an Allow list ("GET, HEAD, POST";
 * a GET route brings HEAD), written to out (cap bytes with the NUL). Returns its length. */
size_t sy__route_allow(const sy_http_conf *c, const char *path, size_t path_len, char *out,
                       size_t cap);

/* Non-zero when method is one RFC 9110 defines (or PATCH), or a route's. */
int sy__route_method_known(const sy_http_conf *c, const char *method, size_t method_len);

const sy_route *sy__route_match(const sy_http_conf *c, const char *path, size_t path_len,
                                const char *method, size_t method_len, int *method_mismatch);

#endif
