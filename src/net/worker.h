/* The server, its routes and its workers (one loop per thread, SO_REUSEPORT listeners). */
#ifndef SY_NET_WORKER_H
#define SY_NET_WORKER_H

#include "net/conn.h"

#include <netinet/in.h>
#include <stdatomic.h>

typedef struct sy_worker sy_worker;

enum sy_upgrade_kind { SY_UPGRADE_RAW = 1, SY_UPGRADE_WS = 2 };

typedef struct sy_upgrade_entry {
    char *token; /* as registered; matched case-insensitively */
    int kind;
    sy_upgrade_check_fn check;
    sy_stream_open_fn on_open; /* RAW */
    void *ud;
    sy_ws_opts *ws_opts; /* WS: owned copy */
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

typedef struct sy_listen_addr {
    char *text;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int port; /* bound port */
} sy_listen_addr;

typedef struct sy_listener {
    sy_io io;
    sy_worker *worker;
    size_t addr_idx;
} sy_listener;

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
    void *req_cache; /* free list of request objects (src/http) */
    size_t req_cache_len;
};

typedef struct sy_server_cfg {
    uint64_t workers;
    uint64_t max_conns;
    uint64_t header_timeout_ms;
    uint64_t keepalive_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t drain_timeout_ms;
    uint64_t max_request_line;
    uint64_t max_head;
    uint64_t max_headers;
    uint64_t max_body;
    uint64_t write_timeout_ms;
    uint64_t shared_listener;
} sy_server_cfg;

struct sy_server {
    sy_server_cfg cfg;
    sy_listen_addr *addrs;
    size_t naddrs;
    sy_route **routes;
    size_t nroutes;
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
    int started;
    sy_access_log_fn access_log;
    void *access_log_ud;
};

/* A connection accepted by a worker is going away (called from conn_free). */
void sy__worker_conn_freed(sy_conn *c);
static inline sy_worker *sy__conn_worker(const sy_conn *c)
{
    return (sy_worker *)c->server;
}

#define SY_LOOP_SIG_SHUTDOWN 1

#endif
