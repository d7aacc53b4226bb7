/* The network side of sy_server: listen addresses, listeners (one SO_REUSEPORT socket per
 * worker and address, or one shared), worker threads, accepting, and graceful shutdown. The
 * protocol on each connection comes from the composing layer (hooks->accept). */
#include "net/worker.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

int sy__server_new(sy_server **out)
{
    sy_server *s = sy__calloc(1, sizeof(*s));
    if (!s)
        return SY_ENOMEM;
    s->cfg.workers = 0;
    s->cfg.max_conns = 10000;
    s->cfg.drain_timeout_ms = 5000;
    s->cfg.flush_timeout_ms = 30000;
    atomic_init(&s->spare_fd, -1);
    *out = s;
    return 0;
}

SY_EXPORT void sy_server_free(sy_server *s)
{
    if (!s)
        return;
    /* Still running (no sy_server_stop and sy_server_wait first): stop it and wait here
     * rather than free what the worker threads are using. */
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i].thread_started) {
            sy_server_stop(s);
            sy_server_wait(s);
            break;
        }
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        sy_worker *w = &s->workers[i];
        for (size_t j = 0; j < w->nlisteners; j++)
            if (w->listeners[j].io.fd >= 0 && (!s->cfg.shared_listener || i == 0))
                close(w->listeners[j].io.fd);
        sy__free(w->listeners);
        if (s->hooks && s->hooks->worker_free)
            s->hooks->worker_free(w);
        if (w->loop)
            sy_loop_free(w->loop);
    }
    sy__free(s->workers);
    int spare = atomic_load(&s->spare_fd);
    if (spare >= 0)
        close(spare);
    for (size_t i = 0; i < s->naddrs; i++) {
        sy__free(s->addrs[i].text);
        if (s->addrs[i].tp)
            s->addrs[i].tp->release(s->addrs[i].tp_ctx);
    }
    sy__free(s->addrs);
    if (s->hooks && s->hooks->server_free)
        s->hooks->server_free(s);
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

int sy__server_set_net(sy_server *s, enum sy_server_opt opt, uint64_t v)
{
    if (s->started && opt == SY_OPT_MAX_CONNS) {
        /* The one network limit a running server takes: each accept reads it. */
        atomic_store_explicit(&s->cfg.max_conns, v ? v : 1, memory_order_relaxed);
        return 0;
    }
    int net = opt == SY_OPT_WORKERS || opt == SY_OPT_DRAIN_TIMEOUT_MS ||
              opt == SY_OPT_SHARED_LISTENER || opt == SY_OPT_MAX_CONNS;
    if (s->started)
        return net ? SY_ESTATE : SY_EINVAL;
    switch (opt) {
    case SY_OPT_WORKERS:
        if (v > 256)
            return SY_ERANGE;
        s->cfg.workers = v;
        return 0;
    case SY_OPT_MAX_CONNS:
        atomic_store(&s->cfg.max_conns, v ? v : 1);
        return 0;
    case SY_OPT_DRAIN_TIMEOUT_MS:
        s->cfg.drain_timeout_ms = v;
        return 0;
    case SY_OPT_SHARED_LISTENER:
        s->cfg.shared_listener = v != 0;
        return 0;
    default:
        return SY_EINVAL;
    }
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
    sy_listen_stats *st = sy__conn_stats(c);
    if (st) {
        sy__ctr_inc(&st->closed);
        uint64_t now = c->loop->now_ms;
        sy__hist_observe(&w->conn_lifetime, &sy__hist_lifetime,
                         (now > c->born_ms ? now - c->born_ms : 0) * 1000u);
    }
    if (w->draining && w->nconns == 0)
        sy_loop_stop(w->loop);
}

/* ---- accepting, and what to do when accept fails ---- */

#define ACCEPT_PAUSE_MIN_MS 100
#define ACCEPT_PAUSE_MAX_MS 1000
#define STARVED_LOG_EVERY_MS 10000

/* Keep a descriptor in reserve, unless one is kept already (then close ours). */
static void spare_fd_refill(sy_server *s)
{
    if (atomic_load_explicit(&s->spare_fd, memory_order_relaxed) >= 0)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int none = -1;
    if (fd >= 0 && !atomic_compare_exchange_strong(&s->spare_fd, &none, fd))
        close(fd);
}

/* Out of descriptors: close the spare one and use its slot to accept and close what is
 * pending on l, so those clients see a close instead of waiting on a server that cannot take
 * them. Another thread may take the freed slot first; then nothing is refused this time. */
static void refuse_pending(sy_worker *w, sy_listener *l)
{
    sy_server *s = w->srv;
    int spare = atomic_exchange(&s->spare_fd, -1);
    if (spare < 0)
        return;
    close(spare);
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->io.fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        close(fd);
        atomic_fetch_add_explicit(&s->fd_refused_conns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->starved_refused, 1, memory_order_relaxed);
    }
    spare_fd_refill(s);
}

/* An episode of failing accepts starts: count it, and log it unless one was logged lately
 * (descriptors hovering at the limit would otherwise log a pair of lines per pause). */
static void starved_begin(sy_worker *w, int err)
{
    sy_server *s = w->srv;
    atomic_fetch_add_explicit(&s->accept_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->starved_errors, 1, memory_order_relaxed);
    if (atomic_exchange(&s->starved, 1))
        return;
    uint64_t now = w->loop->now_ms;
    uint_fast64_t last = atomic_load(&s->starved_log_ms);
    if (last && now < last + STARVED_LOG_EVERY_MS)
        return;
    if (!atomic_compare_exchange_strong(&s->starved_log_ms, &last, now))
        return;
    atomic_store(&s->starved_logged, 1);
    int nofd = err == EMFILE || err == ENFILE;
    sy__log(SY_LOG_ERROR, "accept: %s: %s; accepting paused (retried every %d..%d ms)%s",
            strerror(err), nofd ? "out of file descriptors" : "cannot accept", ACCEPT_PAUSE_MIN_MS,
            ACCEPT_PAUSE_MAX_MS,
            nofd ? ", connections past the limit are closed (raise ulimit -n)" : "");
}

/* A connection was accepted: the episode, if any, is over. */
static void starved_end(sy_server *s)
{
    if (!atomic_exchange(&s->starved, 0) || !atomic_exchange(&s->starved_logged, 0))
        return;
    size_t refused = atomic_exchange(&s->starved_refused, 0);
    size_t errors = atomic_exchange(&s->starved_errors, 0);
    sy__log(SY_LOG_WARN,
            "accepting resumed; while out of file descriptors or memory, %zu connections were "
            "refused and accept failed %zu times",
            refused, errors);
    spare_fd_refill(s);
}

static void listeners_stop(sy_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].io.events)
            sy__io_stop(w->loop, &w->listeners[i].io);
}

/* Stop watching the listeners for a while: they stay readable while accept fails, and a
 * level-triggered loop would spin on them (and log each failure). */
static void accept_pause(sy_worker *w, int err)
{
    starved_begin(w, err);
    listeners_stop(w);
    w->accept_paused = 1;
    uint32_t ms = w->accept_backoff_ms ? w->accept_backoff_ms * 2 : ACCEPT_PAUSE_MIN_MS;
    w->accept_backoff_ms = SY_MIN(ms, ACCEPT_PAUSE_MAX_MS);
    sy__timer_start(w->loop, &w->accept_timer, w->loop->now_ms + w->accept_backoff_ms);
}

static void accept_resume_cb(sy_timer *t)
{
    sy_worker *w = sy_container_of(t, sy_worker, accept_timer);
    if (w->draining)
        return;
    w->accept_paused = 0;
    for (size_t i = 0; i < w->nlisteners; i++) {
        sy_listener *l = &w->listeners[i];
        if (l->io.fd >= 0 && !l->io.events &&
            sy__io_start(w->loop, &l->io, EPOLLIN | EPOLLEXCLUSIVE) < 0) {
            accept_pause(w, errno); /* epoll is out of memory too: try again later */
            return;
        }
    }
}

/* accept() failed with err: return 1 to go on accepting, 0 to stop for now. */
static int accept_failed(sy_worker *w, sy_listener *l, int err)
{
    switch (err) {
    case EAGAIN:
        return 0;
    case EINTR:
    case ECONNABORTED:
    /* Errors already pending on the new connection, which accept reports instead of
     * returning it (accept(2), "Error handling"): that connection is gone, go on. */
    case EPERM:
    case EPROTO:
    case ENOPROTOOPT:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case EOPNOTSUPP:
        return 1;
    case EMFILE:
    case ENFILE:
        refuse_pending(w, l);
        accept_pause(w, err);
        return 0;
    default:
        /* ENOBUFS, ENOMEM, or a broken listener: retrying at once cannot help. */
        accept_pause(w, err);
        return 0;
    }
}

/* Responses are written whole, so Nagle's algorithm would only delay them. The listener
 * has TCP_NODELAY set and Linux passes it on to accepted sockets: one system call less per
 * connection. Checked once per listener; where it is not inherited, set on each. */
static void set_nodelay(sy_listener *l, int fd)
{
    int one = 1;
    if (l->nodelay_inherited == 0) {
        int v = 0;
        socklen_t vl = sizeof(v);
        l->nodelay_inherited = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v ? 1 : -1;
    }
    if (l->nodelay_inherited < 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void accept_cb(sy_io *io, uint32_t events)
{
    sy_listener *l = sy_container_of(io, sy_listener, io);
    sy_worker *w = l->worker;
    sy_server *s = w->srv;
    (void)events;
    if (w->accept_paused || w->draining)
        return; /* an event from the same epoll_wait batch as the pause or the shutdown */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (accept_failed(w, l, errno))
                continue;
            return;
        }
        w->accept_backoff_ms = 0;
        if (atomic_load_explicit(&s->starved, memory_order_relaxed))
            starved_end(s);
        if (atomic_fetch_add(&s->conns, 1) >=
            atomic_load_explicit(&s->cfg.max_conns, memory_order_relaxed)) {
            /* Over the limit: close at once (the peer sees EOF) and count it. */
            atomic_fetch_sub(&s->conns, 1);
            atomic_fetch_add(&s->rejected_conns, 1);
            sy__ctr_inc(&l->stats.refused);
            close(fd);
            continue;
        }
        set_nodelay(l, fd);
        sy_conn *c = sy__conn_new_tail(w->loop, fd, &sy__tcp_transport, NULL, NULL, s->conn_tail);
        if (c)
            sy__conn_set_peer(c, (const struct sockaddr *)&ss, sl);
        const sy_listen_addr *a = &s->addrs[l->addr_idx];
        if (!c || (a->tp && a->tp->attach(c, a->tp_ctx) < 0) ||
            s->hooks->accept(c, w, l->addr_idx) < 0) {
            if (c)
                sy__conn_close(c, SY_ENOMEM, 0);
            else
                close(fd);
            atomic_fetch_sub(&s->conns, 1);
            continue;
        }
        c->server = w;
        /* Its counters are found from the worker and this index (2 bytes, not a pointer). */
        c->listener = l - w->listeners < UINT16_MAX ? (uint16_t)(l - w->listeners + 1) : 0;
        c->born_ms = w->loop->now_ms;
        sy__ctr_inc(&l->stats.accepted);
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
    sy__timer_stop(loop, &w->accept_timer);
    /* With shared listeners the last worker to stop closes them. Each worker counts itself
     * only after removing them from its own epoll, so that when the count is complete no
     * worker can still be inside accept or epoll_ctl on them. */
    for (size_t i = 0; i < w->nlisteners; i++)
        sy__io_stop(loop, &w->listeners[i].io);
    int last = !w->srv->cfg.shared_listener ||
               atomic_fetch_add(&w->srv->stopped_workers, 1) + 1 == w->srv->nworkers;
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (last)
            close(w->listeners[i].io.fd);
        w->listeners[i].io.fd = -1;
    }
    for (sy_conn *c = w->conns; c; c = c->next) {
        if (c->proto && c->proto->on_shutdown)
            c->proto->on_shutdown(&c->bs);
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
    sy__timer_stop(w->loop, &w->accept_timer);
    return NULL;
}

/* Our workers share each port through SO_REUSEPORT, which would as well let a second
 * process (another switchyard, say) join the port and split the traffic with us, silently.
 * A socket without SO_REUSEPORT cannot bind a port anyone listens on: try one first. */
static int port_taken(const sy_listen_addr *a)
{
    if (a->port <= 0)
        return 0; /* the kernel picks a free port */
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is fine */
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    int taken = bind(fd, (const struct sockaddr *)&a->ss, a->sslen) < 0 && errno == EADDRINUSE;
    close(fd);
    if (taken)
        errno = EADDRINUSE;
    return taken;
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
    /* Set here, it comes with every accepted socket (see set_nodelay). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

/* Every connection is a descriptor: say so at startup when the open-file limit cannot hold
 * SY_OPT_MAX_CONNS, instead of leaving it to be found out at the limit. */
static void check_fd_limit(const sy_server *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    size_t listeners = s->naddrs * (s->cfg.shared_listener ? 1 : s->nworkers);
    /* stdio, each loop's epoll and eventfd, the listeners, the spare, and a margin for files
     * being sent and the application's own descriptors */
    uint64_t reserve = 3 + 2 * (uint64_t)s->nworkers + listeners + 1 + 16;
    uint64_t usable = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 0;
    uint64_t max_conns = atomic_load(&s->cfg.max_conns);
    if (max_conns > usable)
        sy__log(SY_LOG_WARN,
                "the connection limit (%llu) is above what the open-file limit (%llu) allows, "
                "about %llu connections: past that, new connections are closed at once (raise "
                "ulimit -n or lower the connection limit)",
                (unsigned long long)max_conns, (unsigned long long)rl.rlim_cur,
                (unsigned long long)usable);
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
        w->index = i;
        if ((err = sy_loop_new(&w->loop)) < 0)
            break;
        w->loop->on_signal = worker_signal;
        w->loop->on_signal_ud = w;
        w->drain_timer.cb = drain_timeout_cb;
        w->accept_timer.cb = accept_resume_cb;
        if ((err = sy__timer_reserve(w->loop, 2)) < 0) /* drain_timer, accept_timer */
            break;
        if (s->hooks && s->hooks->worker_init && (err = s->hooks->worker_init(w)) < 0)
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
            int fd = s->cfg.shared_listener && i > 0 ? s->workers[0].listeners[j].io.fd
                     : i == 0 && port_taken(&s->addrs[j])
                         ? -1
                         : open_listener(&s->addrs[j], nw > 1 && !s->cfg.shared_listener);
            if (fd < 0) {
                sy__log(SY_LOG_ERROR, "cannot listen on %s: %s", s->addrs[j].text, strerror(errno));
                err = errno == EADDRINUSE      ? SY_EADDRINUSE
                      : errno == EADDRNOTAVAIL ? SY_EADDR
                                               : SY_EIO;
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
    spare_fd_refill(s);
    check_fd_limit(s);
    s->conn_tail = s->hooks && s->hooks->conn_tail ? s->hooks->conn_tail(s) : 0;
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

SY_EXPORT size_t sy_server_loop_count(const sy_server *s)
{
    return s->started ? s->nworkers : 0;
}

SY_EXPORT sy_loop *sy_server_loop(const sy_server *s, size_t i)
{
    return s->started && i < s->nworkers ? s->workers[i].loop : NULL;
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
    memset(out, 0, sizeof(*out));
    out->open_conns = atomic_load_explicit(&((sy_server *)s)->conns, memory_order_relaxed);
    out->rejected_conns =
        atomic_load_explicit(&((sy_server *)s)->rejected_conns, memory_order_relaxed);
    out->accept_errors =
        atomic_load_explicit(&((sy_server *)s)->accept_errors, memory_order_relaxed);
    out->fd_refused_conns =
        atomic_load_explicit(&((sy_server *)s)->fd_refused_conns, memory_order_relaxed);
    if (s->hooks && s->hooks->stats)
        s->hooks->stats(s, out);
}

SY_EXPORT void sy_server_stop(sy_server *s)
{
    for (size_t i = 0; i < s->nworkers; i++)
        if (s->workers[i].loop)
            sy__loop_signal(s->workers[i].loop, SY_LOOP_SIG_SHUTDOWN);
}
