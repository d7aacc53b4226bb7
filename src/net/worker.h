/* The network side of a server: listen addresses, listeners, worker threads (one loop each,
 * SO_REUSEPORT or one shared listener), accepting, connection limits and graceful shutdown.
 * It knows no protocol: the layer that composes the server (src/server) installs one on
 * each accepted connection through sy_net_hooks, and keeps its own state in `app`. */
#ifndef SY_NET_WORKER_H
#define SY_NET_WORKER_H

#include "net/conn.h"

#include <netinet/in.h>
#include <stdatomic.h>

typedef struct sy_worker sy_worker;

/* A listener's transport plug-in (TLS, from src/tls), for listeners that are not plain TCP. */
typedef struct sy_listen_tp {
    /* Put an accepted connection under the transport, before any protocol. 0 or -err. */
    int (*attach)(sy_conn *c, void *ctx);
    /* The server is being freed: release ctx. */
    void (*release)(void *ctx);
} sy_listen_tp;

typedef struct sy_listen_addr {
    char *text;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int port;               /* bound port */
    const sy_listen_tp *tp; /* NULL: plain TCP */
    void *tp_ctx;           /* tp's state (a TLS context) */
} sy_listen_addr;

/* Per listener and worker, written by the worker's thread only (core/metrics.h). Open
 * connections are accepted - closed. */
struct sy_listen_stats {
    sy_ctr accepted;
    sy_ctr refused; /* over SY_OPT_MAX_CONNS: accepted and closed at once */
    sy_ctr closed;
    sy_ctr bytes_in, bytes_out; /* as read from and written to the transport (TLS included) */
};

typedef struct sy_listener {
    sy_io io;
    sy_listen_stats stats;
    sy_worker *worker;
    size_t addr_idx;
    /* Accepted sockets inherit TCP_NODELAY from the listener (Linux does): 0 not known yet
     * (checked on the first one), 1 yes, -1 no (set it on each). */
    int nodelay_inherited;
} sy_listener;

/* The counters of the listener that accepted c, or NULL. */
static inline sy_listen_stats *sy__conn_stats(const sy_conn *c);

struct sy_worker {
    sy_server *srv;
    sy_loop *loop;
    pthread_t thread;
    int thread_started;
    sy_listener *listeners;
    size_t nlisteners;
    sy_conn *conns; /* doubly linked list of live connections */
    size_t nconns;
    int draining;
    sy_timer drain_timer;
    /* Accepting pauses while accept() fails for lack of descriptors or memory (the listener
     * stays readable, so retrying at once would spin); this timer resumes it. */
    sy_timer accept_timer;
    uint32_t accept_backoff_ms; /* the last pause; doubles while accept keeps failing */
    int accept_paused;
    void *upper;           /* per-worker state of the layer above (freed by hooks->worker_free) */
    size_t index;          /* in srv->workers */
    sy_hist conn_lifetime; /* accepted connections, at close */
};

static inline sy_listen_stats *sy__conn_stats(const sy_conn *c)
{
    return c->listener ? &((const sy_worker *)c->server)->listeners[c->listener - 1].stats : NULL;
}

typedef struct sy_net_cfg {
    uint64_t workers;
    _Atomic uint64_t max_conns; /* may change while running (a reload): read at each accept */
    uint64_t drain_timeout_ms;
    uint64_t flush_timeout_ms; /* a closing flush that makes no progress this long is cut */
    uint64_t shared_listener;
} sy_net_cfg;

/* What the composing layer plugs in. */
typedef struct sy_net_hooks {
    /* A connection was accepted (from listen address addr_idx): install a protocol on it.
     * Return 0, or -err to close it. */
    int (*accept)(sy_conn *c, sy_worker *w, size_t addr_idx);
    /* A worker's loop is about to be freed: release w->upper. */
    void (*worker_free)(sy_worker *w);
    /* The server is being freed: release srv->app. */
    void (*server_free)(sy_server *srv);
    /* Optional: a worker's loop was created (sy_server_start, before its thread runs): set
     * up per-worker state. Return 0, or -err to fail the start. */
    int (*worker_init)(sy_worker *w);
    /* Optional: fill the upper layers' fields of the stats (any thread). */
    void (*stats)(const sy_server *srv, sy_server_stats *out);
    /* Optional: the server starts: the bytes each accepted connection reserves after itself
     * for the state of a protocol that may take it over (sy__bs_tail). */
    size_t (*conn_tail)(sy_server *srv);
} sy_net_hooks;

struct sy_server {
    sy_net_cfg cfg;
    const sy_net_hooks *hooks;
    void *app;    /* the composing layer's state (src/http: routes, HTTP limits, access log) */
    void *pubsub; /* topics and their fan-out (src/pubsub), owned by the composing layer */
    sy_listen_addr *addrs;
    size_t naddrs;
    sy_worker *workers;
    size_t nworkers;
    atomic_size_t conns;
    atomic_size_t rejected_conns;
    atomic_size_t stopped_workers;
    /* Running out of descriptors: a spare fd (/dev/null) is closed to accept and close the
     * pending connections, so that their clients see a close instead of hanging. */
    atomic_int spare_fd;
    atomic_size_t accept_errors;
    atomic_size_t fd_refused_conns;
    /* One episode of failing accepts is logged once, when it starts and when it ends. */
    atomic_int starved;        /* an episode is in progress */
    atomic_int starved_logged; /* its start was logged (at most one per 10 s) */
    atomic_uint_fast64_t starved_log_ms;
    atomic_size_t starved_refused, starved_errors; /* since the last logged end */
    size_t conn_tail;                              /* hooks->conn_tail, asked at start */
    int started;
};

/* Create the network side with defaults; the composing layer sets hooks and app. */
int sy__server_new(sy_server **out);
/* Set a network option (workers, connection limit, drain, shared listener). Returns 0,
 * SY_ERANGE, SY_ESTATE after start, or SY_EINVAL when opt is not a network option. */
int sy__server_set_net(sy_server *s, enum sy_server_opt opt, uint64_t v);

/* A connection accepted by a worker is going away (called from conn_free). */
void sy__worker_conn_freed(sy_conn *c);
static inline sy_worker *sy__conn_worker(const sy_conn *c)
{
    return (sy_worker *)c->server;
}

#define SY_LOOP_SIG_SHUTDOWN 1

#endif
