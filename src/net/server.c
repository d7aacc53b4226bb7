/* sy_server: configuration, listeners (one SO_REUSEPORT socket per worker and address),
 * worker threads, accepting, and graceful shutdown. */
#include "net/worker.h"
#include "core/log.h"
#include "http/req.h"
#include "http1/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

SY_EXPORT int sy_server_new(sy_server **out)
{
    sy_server *s = sy__calloc(1, sizeof(*s));
    if (!s)
        return SY_ENOMEM;
    s->cfg.workers = 0;
    s->cfg.max_conns = 10000;
    s->cfg.header_timeout_ms = 10000;
    s->cfg.keepalive_timeout_ms = 60000;
    s->cfg.body_timeout_ms = 30000;
    s->cfg.drain_timeout_ms = 5000;
    s->cfg.max_request_line = 8192;
    s->cfg.max_head = 65536;
    s->cfg.max_headers = 100;
    s->cfg.max_body = 8u << 20;
    s->cfg.write_timeout_ms = 30000;
    *out = s;
    return 0;
}

static void route_free(sy_route *r)
{
    for (size_t i = 0; i < r->nupgrades; i++) {
        sy__free(r->upgrades[i].token);
        if (r->upgrades[i].ws_opts)
            sy_ws_opts_free(r->upgrades[i].ws_opts);
    }
    sy__free(r->upgrades);
    sy__free(r->method);
    sy__free(r->pattern);
    sy__free(r);
}

SY_EXPORT void sy_server_free(sy_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nworkers; i++) {
        sy_worker *w = &s->workers[i];
        for (size_t j = 0; j < w->nlisteners; j++)
            if (w->listeners[j].io.fd >= 0 && (!s->cfg.shared_listener || i == 0))
                close(w->listeners[j].io.fd);
        sy__free(w->listeners);
        sy__http_req_cache_clear(w);
        if (w->loop)
            sy_loop_free(w->loop);
    }
    sy__free(s->workers);
    for (size_t i = 0; i < s->naddrs; i++)
        sy__free(s->addrs[i].text);
    sy__free(s->addrs);
    for (size_t i = 0; i < s->nroutes; i++)
        route_free(s->routes[i]);
    sy__free(s->routes);
    sy__free(s);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s);
    char *d = sy__malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* Parse "host:port", "[v6]:port" or ":port" into a sockaddr. */
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *port;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
            return SY_EADDR;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return SY_EADDR;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = 0;
        port = colon + 1;
    }
    char *endp;
    long p = strtol(port, &endp, 10);
    if (!*port || *endp || p < 0 || p > 65535)
        return SY_EADDR;
    memset(ss, 0, sizeof(*ss));
    if (!host[0]) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof(*sin);
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        *len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*sin6);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return SY_EADDR;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        sin->sin_port = htons((uint16_t)p);
    else
        sin6->sin6_port = htons((uint16_t)p);
    return 0;
}

SY_EXPORT int sy_server_listen(sy_server *s, const char *addr)
{
    if (!addr || s->started)
        return SY_EINVAL;
    sy_listen_addr la = {0};
    if (parse_addr(addr, &la.ss, &la.sslen) < 0)
        return SY_EADDR;
    la.text = dupstr(addr);
    if (!la.text)
        return SY_ENOMEM;
    sy_listen_addr *n = sy__realloc(s->addrs, (s->naddrs + 1) * sizeof(*n));
    if (!n) {
        sy__free(la.text);
        return SY_ENOMEM;
    }
    s->addrs = n;
    s->addrs[s->naddrs++] = la;
    return 0;
}

SY_EXPORT int sy_server_set(sy_server *s, enum sy_server_opt opt, uint64_t v)
{
    if (s->started)
        return SY_ESTATE;
    switch (opt) {
    case SY_OPT_WORKERS:
        if (v > 256)
            return SY_ERANGE;
        s->cfg.workers = v;
        return 0;
    case SY_OPT_MAX_CONNS:
        s->cfg.max_conns = v ? v : 1;
        return 0;
    case SY_OPT_HEADER_TIMEOUT_MS:
        s->cfg.header_timeout_ms = v;
        return 0;
    case SY_OPT_KEEPALIVE_TIMEOUT_MS:
        s->cfg.keepalive_timeout_ms = v;
        return 0;
    case SY_OPT_BODY_TIMEOUT_MS:
        s->cfg.body_timeout_ms = v;
        return 0;
    case SY_OPT_DRAIN_TIMEOUT_MS:
        s->cfg.drain_timeout_ms = v;
        return 0;
    case SY_OPT_MAX_REQUEST_LINE:
        if (v < 16 || v > (1u << 20))
            return SY_ERANGE;
        s->cfg.max_request_line = v;
        return 0;
    case SY_OPT_MAX_HEAD:
        if (v < 64 || v > (1u << 24))
            return SY_ERANGE;
        s->cfg.max_head = v;
        return 0;
    case SY_OPT_MAX_HEADERS:
        if (v < 1 || v > 10000)
            return SY_ERANGE;
        s->cfg.max_headers = v;
        return 0;
    case SY_OPT_MAX_BODY:
        s->cfg.max_body = v;
        return 0;
    case SY_OPT_WRITE_TIMEOUT_MS:
        s->cfg.write_timeout_ms = v;
        return 0;
    case SY_OPT_SHARED_LISTENER:
        s->cfg.shared_listener = v != 0;
        return 0;
    }
    return SY_EINVAL;
}

SY_EXPORT void sy_server_set_access_log(sy_server *s, sy_access_log_fn fn, void *ud)
{
    s->access_log = fn;
    s->access_log_ud = ud;
}

SY_EXPORT sy_route *sy_server_route(sy_server *s, const char *method, const char *pattern,
                                    int flags, sy_handler_fn handler, void *ud)
{
    if (!pattern || pattern[0] != '/' || s->started)
        return NULL;
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

/* ---- workers ---- */

void sy__worker_conn_freed(sy_conn *c)
{
    sy_worker *w = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->srv->conns, 1);
    if (w->draining && w->nconns == 0)
        sy_loop_stop(w->loop);
}

static void accept_cb(sy_io *io, uint32_t events)
{
    sy_listener *l = sy_container_of(io, sy_listener, io);
    sy_worker *w = l->worker;
    sy_server *s = w->srv;
    (void)events;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                sy__log(SY_LOG_ERROR, "accept: %s (raise the fd limit)", strerror(errno));
            return;
        }
        if (atomic_fetch_add(&s->conns, 1) >= s->cfg.max_conns) {
            /* Over the limit: close at once (the peer sees EOF) and count it. */
            atomic_fetch_sub(&s->conns, 1);
            atomic_fetch_add(&s->rejected_conns, 1);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sy_conn *c = sy__conn_new(w->loop, fd, &sy__tcp_transport, NULL, NULL);
        if (!c || sy__http1_attach(c, w) < 0) {
            if (c) {
                c->server = NULL;
                sy__conn_close(c, SY_ENOMEM, 0);
            } else {
                close(fd);
            }
            atomic_fetch_sub(&s->conns, 1);
            continue;
        }
        c->server = w;
        memcpy(&c->peer, &ss, SY_MIN(sizeof(c->peer), (size_t)sl));
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
    }
}

static void drain_timeout_cb(sy_timer *t)
{
    sy_worker *w = sy_container_of(t, sy_worker, drain_timer);
    for (sy_conn *c = w->conns; c; c = c->next)
        sy__conn_close(c, SY_ECLOSED, 0);
}

static void worker_signal(sy_loop *loop, int flags, void *ud)
{
    sy_worker *w = ud;
    if (!(flags & SY_LOOP_SIG_SHUTDOWN) || w->draining)
        return;
    w->draining = 1;
    /* With shared listeners the last worker to stop closes them (all others removed them
     * from their epoll first, so none is inside accept on them). */
    int last = !w->srv->cfg.shared_listener ||
               atomic_fetch_add(&w->srv->stopped_workers, 1) + 1 == w->srv->nworkers;
    for (size_t i = 0; i < w->nlisteners; i++) {
        sy__io_stop(loop, &w->listeners[i].io);
        if (last)
            close(w->listeners[i].io.fd);
        w->listeners[i].io.fd = -1;
    }
    for (sy_conn *c = w->conns; c; c = c->next) {
        if (c->proto && c->proto->on_shutdown)
            c->proto->on_shutdown(c);
        else
            sy__conn_close(c, 0, 1);
    }
    if (w->nconns == 0) {
        sy_loop_stop(loop);
        return;
    }
    sy__timer_start(loop, &w->drain_timer, loop->now_ms + w->srv->cfg.drain_timeout_ms);
}

static void *worker_main(void *arg)
{
    sy_worker *w = arg;
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* signals go to the embedding thread */
    int err = sy_loop_run(w->loop);
    if (err < 0)
        sy__log(SY_LOG_ERROR, "worker loop failed: %s (this worker stops serving)",
                strerror(errno));
    sy__timer_stop(w->loop, &w->drain_timer);
    return NULL;
}

static int open_listener(sy_listen_addr *a, int reuse_port)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    struct sockaddr_storage ss = a->ss;
    if (a->port > 0) {
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)a->port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)a->port);
    }
    if (bind(fd, (struct sockaddr *)&ss, a->sslen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (a->port <= 0) {
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        a->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

SY_EXPORT int sy_server_start(sy_server *s)
{
    if (s->started || s->naddrs == 0)
        return SY_EINVAL;
    size_t nw = s->cfg.workers;
    if (!nw) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nw = n > 0 ? (size_t)n : 1;
    }
    s->workers = sy__calloc(nw, sizeof(*s->workers));
    if (!s->workers)
        return SY_ENOMEM;
    s->nworkers = nw;
    for (size_t i = 0; i < s->naddrs; i++) {
        uint16_t p = ntohs(s->addrs[i].ss.ss_family == AF_INET
                               ? ((struct sockaddr_in *)&s->addrs[i].ss)->sin_port
                               : ((struct sockaddr_in6 *)&s->addrs[i].ss)->sin6_port);
        s->addrs[i].port = p;
    }
    int err = 0;
    for (size_t i = 0; i < nw && !err; i++) {
        sy_worker *w = &s->workers[i];
        w->srv = s;
        if ((err = sy_loop_new(&w->loop)) < 0)
            break;
        w->loop->on_signal = worker_signal;
        w->loop->on_signal_ud = w;
        w->drain_timer.cb = drain_timeout_cb;
        if ((err = sy__timer_reserve(w->loop, 1)) < 0) /* drain_timer */
            break;
        w->listeners = sy__calloc(s->naddrs, sizeof(*w->listeners));
        if (!w->listeners) {
            err = SY_ENOMEM;
            break;
        }
        for (size_t j = 0; j < s->naddrs; j++) {
            sy_listener *l = &w->listeners[j];
            l->io.fd = -1;
            /* SO_REUSEPORT: one socket per worker, the kernel hashes connections across them.
             * Shared: one socket registered with EPOLLEXCLUSIVE in every worker, so an idle
             * worker takes the next connection (better balance for few long connections). */
            int fd = s->cfg.shared_listener && i > 0
                         ? s->workers[0].listeners[j].io.fd
                         : open_listener(&s->addrs[j], nw > 1 && !s->cfg.shared_listener);
            if (fd < 0) {
                sy__log(SY_LOG_ERROR, "cannot listen on %s: %s", s->addrs[j].text, strerror(errno));
                err = errno == EADDRINUSE || errno == EADDRNOTAVAIL ? SY_EADDR : SY_EIO;
                break;
            }
            l->io.fd = fd;
            l->io.cb = accept_cb;
            l->worker = w;
            l->addr_idx = j;
            w->nlisteners++;
            if (sy__io_start(w->loop, &l->io, EPOLLIN | EPOLLEXCLUSIVE) < 0) {
                sy__log(SY_LOG_ERROR, "cannot watch the listener on %s: %s", s->addrs[j].text,
                        strerror(errno));
                err = SY_EIO;
                break;
            }
        }
    }
    if (err)
        return err;
    s->started = 1;
    /* sendfile(2) has no MSG_NOSIGNAL: a default SIGPIPE disposition would kill the process
     * when a client goes away mid-file. Leave an application's own handler alone. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < nw; i++) {
        sy_worker *w = &s->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            sy_server_stop(s);
            return SY_EIO;
        }
        w->thread_started = 1;
    }
    return 0;
}

SY_EXPORT int sy_server_port(const sy_server *s, size_t idx)
{
    if (idx >= s->naddrs)
        return SY_EINVAL;
    return s->addrs[idx].port;
}

SY_EXPORT int sy_server_wait(sy_server *s)
{
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i].thread_started) {
            pthread_join(s->workers[i].thread, NULL);
            s->workers[i].thread_started = 0;
        }
    }
    return 0;
}

SY_EXPORT void sy_server_get_stats(const sy_server *s, sy_server_stats *out)
{
    out->open_conns = atomic_load_explicit(&((sy_server *)s)->conns, memory_order_relaxed);
    out->rejected_conns =
        atomic_load_explicit(&((sy_server *)s)->rejected_conns, memory_order_relaxed);
}

SY_EXPORT void sy_server_stop(sy_server *s)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (s->workers[i].loop)
            sy__loop_signal(s->workers[i].loop, SY_LOOP_SIG_SHUTDOWN);
}
