/* Stress: handlers that answer from other threads while clients abort at random.
 *
 * An in-process server serves
 *   /a    asynchronous streaming: a helper thread posts sy_resp_start, several sy_resp_write and
 *         sy_resp_end to the worker, all in one task or one task per call, and keeps calling
 *         after an error (the contract: the final call releases the request, whatever failed
 *         before; accessors stay valid until then);
 *   /r    an asynchronous sy_respond from a posted task;
 *   /s    a synchronous sy_respond;
 *   /ws   WebSocket: a second thread sends to every open socket with sy_ws_send_async;
 *   /raw  a raw "echo" upgrade.
 * Client threads open batches of connections and, for each one, either read a whole response
 * and check that it carries only its own id, or reset the connection (SO_LINGER 0) at a
 * random moment: right away, after a partial read, after pipelining, after a WebSocket or a
 * raw upgrade. Every body is "id=N;" repeated, with N unique per request, so bytes written for
 * one client that reach another are caught; before each response call the posted task checks
 * that the handle still describes its own request, which catches a recycled handle without a
 * sanitizer (and under ASan, a freed one).
 *
 * A failed write must not hand the request back to the server while the handler still holds
 * it: the task's next call would touch freed memory, or a request recycled for another
 * client (whose client then receives this one's data).
 *
 * Environment: SY_STRESS_SECONDS (default 4) sets how long clients run; SY_STRESS_CLIENTS (3)
 * the client threads; SY_STRESS_WORKERS (2) the server's workers; SY_STRESS_SEED the random
 * seed (printed at start). When changing the request lifecycle, run it for minutes under both
 * sanitizers: scripts/stress.sh asan 120 3 and scripts/stress.sh tsan 120 1 (builds with
 * `make SAN=1` / `make SAN=thread`). */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_CLIENTS 8
#define MAX_BATCH 32
#define HELPERS 2
#define WS_SET_CAP 4096
#define NORMAL_DEADLINE_MS 15000 /* a small response later than this is a hang */

/* ---- counters and failure notes ---- */

static atomic_long n_normal_ok, n_reset, n_pipelined, n_ws, n_raw;
static atomic_long n_resp_errors, n_ws_sent;
static atomic_long f_cross, f_recycled, f_bad_body, f_hang, f_connect, f_upgrade, f_post;
static atomic_long outstanding; /* requests handed to helpers whose final call has not run */
static atomic_uint next_id = 1;
static uint64_t seed;

static void note(atomic_long *counter, const char *fmt, ...)
{
    static atomic_int printed;
    atomic_fetch_add(counter, 1);
    if (atomic_fetch_add(&printed, 1) >= 20)
        return; /* the first ones tell the story */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("  problem: %s\n", buf);
    fflush(stdout);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Per-thread xorshift: the test's randomness must not be a shared variable (TSan). */
static _Thread_local uint64_t rng;

static unsigned rnd(unsigned n)
{
    if (!rng) {
        static atomic_ulong salt;
        rng = seed ^ (0x9e3779b97f4a7c15ull * (atomic_fetch_add(&salt, 1) + 1));
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (unsigned)(rng % n) : 0;
}

static size_t tag_of(unsigned id, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "id=%u;", id);
}

/* ---- loops seen, for the final barrier ---- */

static pthread_mutex_t loops_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_loop *loops[16];
static int nloops;

static void note_loop(sy_loop *l)
{
    pthread_mutex_lock(&loops_mu);
    int i = 0;
    while (i < nloops && loops[i] != l)
        i++;
    if (i == nloops && (size_t)nloops < sizeof(loops) / sizeof(loops[0]))
        loops[nloops++] = l;
    pthread_mutex_unlock(&loops_mu);
}

/* ---- asynchronous handlers: jobs, a delay queue and helper threads ---- */

enum { JOB_STREAM, JOB_RESPOND };

typedef struct job {
    struct job *next;
    sy_req *req;
    sy_loop *loop;
    int kind;
    int split; /* one posted task per response call */
    int step;  /* next call: 0 start, 1..nwrites write, nwrites + 1 end */
    int nwrites;
    char *chunk; /* the tag repeated: one write, or the whole sy_respond body */
    size_t chunk_len;
    char target[96];
    size_t target_len;
    int reported; /* one note per job is enough */
    uint64_t due_ns;
} job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head;
    int stop;
} jobq = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void schedule(job *j, unsigned delay_us)
{
    j->due_ns = now_ns() + (uint64_t)delay_us * 1000u;
    pthread_mutex_lock(&jobq.mu);
    j->next = jobq.head;
    jobq.head = j;
    pthread_cond_signal(&jobq.cv);
    pthread_mutex_unlock(&jobq.mu);
}

static void job_done(job *j)
{
    free(j->chunk);
    free(j);
    atomic_fetch_sub(&outstanding, 1);
}

/* Accessors are valid until the final call: a handle that now describes another request (or
 * nothing) was handed back to the server behind the handler's back. */
static void check_handle(job *j)
{
    size_t len = 0;
    const char *t = sy_req_target(j->req, &len);
    if ((t && len == j->target_len && memcmp(t, j->target, len) == 0) || j->reported)
        return;
    j->reported = 1;
    note(&f_recycled, "the handle of %s was recycled before its final call (now \"%.*s\")",
         j->target, t ? (int)(len < 80 ? len : 80) : 6, t ? t : "(none)");
}

/* One response call of a streaming job; returns 1 after the final one (the job is gone). */
static int stream_step(job *j)
{
    int e;
    check_handle(j);
    if (j->step == 0) {
        e = sy_resp_start(j->req, 200);
    } else if (j->step <= j->nwrites) {
        e = sy_resp_write(j->req, j->chunk, j->chunk_len);
    } else {
        e = sy_resp_end(j->req); /* releases the request whatever happened before */
        if (e)
            atomic_fetch_add(&n_resp_errors, 1);
        job_done(j);
        return 1;
    }
    if (e)
        atomic_fetch_add(&n_resp_errors, 1); /* and carry on: that is the pattern under test */
    j->step++;
    return 0;
}

static void task_run(sy_loop *loop, void *ud)
{
    job *j = ud;
    (void)loop;
    if (j->kind == JOB_RESPOND) {
        check_handle(j);
        if (sy_respond(j->req, 200, "text/plain", j->chunk, j->chunk_len))
            atomic_fetch_add(&n_resp_errors, 1);
        job_done(j);
        return;
    }
    int final;
    do
        final = stream_step(j);
    while (!final && !j->split);
    if (!final)
        schedule(j, rnd(3001));
}

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&jobq.mu);
    while (!jobq.stop) {
        job **best = NULL;
        for (job **p = &jobq.head; *p; p = &(*p)->next)
            if (!best || (*p)->due_ns < (*best)->due_ns)
                best = p;
        if (!best) {
            pthread_cond_wait(&jobq.cv, &jobq.mu);
            continue;
        }
        uint64_t now = now_ns();
        if ((*best)->due_ns > now) {
            uint64_t wait = (*best)->due_ns - now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000000000u);
            ts.tv_nsec += (long)(wait % 1000000000u);
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&jobq.cv, &jobq.mu, &ts);
            continue;
        }
        job *j = *best;
        *best = j->next;
        pthread_mutex_unlock(&jobq.mu);
        int e = sy_loop_post(j->loop, task_run, j);
        if (e) {
            /* The server is only stopped once every job has finished, so this is a bug. */
            note(&f_post, "sy_loop_post failed for %s: %s", j->target, sy_err_name(e));
            job_done(j);
        }
        pthread_mutex_lock(&jobq.mu);
    }
    pthread_mutex_unlock(&jobq.mu);
    return NULL;
}

static unsigned long query_num(const char *q, size_t qlen, const char *name, unsigned long dflt)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < qlen; i++) {
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, name, nl) == 0 && q[i + nl] == '=') {
            unsigned long v = 0;
            for (size_t k = i + nl + 1; k < qlen && q[k] >= '0' && q[k] <= '9'; k++)
                v = v * 10 + (unsigned long)(q[k] - '0');
            return v;
        }
    }
    return dflt;
}

/* "id=N;" repeated reps times; a client that sees another id got someone else's bytes. */
static char *tag_body(unsigned id, size_t reps, size_t *len)
{
    char tag[32];
    size_t tl = tag_of(id, tag, sizeof(tag));
    char *b = malloc(tl * reps + 1);
    if (!b)
        abort();
    for (size_t i = 0; i < reps; i++)
        memcpy(b + i * tl, tag, tl);
    *len = tl * reps;
    return b;
}

static void h_async(sy_req *req, void *ud)
{
    size_t ql = 0, tl = 0;
    const char *qs = sy_req_query(req, &ql);
    const char *t = sy_req_target(req, &tl);
    job *j = calloc(1, sizeof(*j));
    if (!j || !qs || tl >= sizeof(j->target))
        abort(); /* the clients below only send targets that fit */
    j->kind = (int)(intptr_t)ud;
    j->req = req;
    j->loop = sy_req_loop(req);
    j->nwrites = (int)query_num(qs, ql, "n", 3);
    j->split = (int)query_num(qs, ql, "split", 0);
    j->chunk =
        tag_body((unsigned)query_num(qs, ql, "id", 0), query_num(qs, ql, "reps", 1), &j->chunk_len);
    memcpy(j->target, t, tl);
    j->target[tl] = 0;
    j->target_len = tl;
    note_loop(j->loop);
    atomic_fetch_add(&outstanding, 1);
    schedule(j, rnd(3001));
}

static void h_sync(sy_req *req, void *ud)
{
    size_t ql = 0, len;
    const char *qs = sy_req_query(req, &ql);
    (void)ud;
    char *b = tag_body((unsigned)query_num(qs, qs ? ql : 0, "id", 0),
                       query_num(qs, qs ? ql : 0, "reps", 1), &len);
    if (sy_respond(req, 200, "text/plain", b, len))
        atomic_fetch_add(&n_resp_errors, 1);
    free(b);
}

/* ---- WebSocket: a locked set of open sockets and a sender thread ---- */

static pthread_mutex_t ws_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_ws *ws_set[WS_SET_CAP];
static int ws_count;
static atomic_int ws_stop;

static void ws_open(sy_ws *ws, void *ud)
{
    (void)ud;
    note_loop(sy_ws_loop(ws));
    pthread_mutex_lock(&ws_mu);
    if (ws_count < WS_SET_CAP)
        ws_set[ws_count++] = ws;
    pthread_mutex_unlock(&ws_mu);
}

/* The handle is freed after on_close returns: removing it under the lock the sender holds
 * while posting keeps the sender from ever using a freed one. */
static void ws_closed(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)info;
    (void)ud;
    pthread_mutex_lock(&ws_mu);
    for (int i = 0; i < ws_count; i++) {
        if (ws_set[i] == ws) {
            ws_set[i] = ws_set[--ws_count];
            break;
        }
    }
    pthread_mutex_unlock(&ws_mu);
}

static void *ws_sender_main(void *arg)
{
    static const char msg[] = "tick tick tick tick tick tick tick tick tick tick tick tick tick "
                              "tick tick tick tick tick tick tick tick tick tick tick tick tick";
    (void)arg;
    while (!atomic_load(&ws_stop)) {
        pthread_mutex_lock(&ws_mu);
        for (int i = 0; i < ws_count; i++)
            if (sy_ws_send_async(ws_set[i], SY_WS_TEXT, msg, 4 + rnd(sizeof(msg) - 4)) == 0)
                atomic_fetch_add(&n_ws_sent, 1);
        pthread_mutex_unlock(&ws_mu);
        sleep_us(500 + rnd(1000));
    }
    return NULL;
}

static void raw_data(sy_stream *s, const void *data, size_t len, void *ud)
{
    (void)ud;
    (void)sy_stream_write(s, data, len);
}

static void raw_open(sy_stream *s, sy_req *req, void *ud)
{
    (void)req;
    sy_stream_cbs cbs = {.on_data = raw_data};
    sy_stream_set_cbs(s, &cbs, ud);
}

/* ---- clients ---- */

enum {
    ACT_NORMAL,        /* read the whole response; check it carries only our id */
    ACT_RESET_NOW,     /* reset after 0-3 ms, without reading */
    ACT_RESET_PARTIAL, /* reset after reading part of the response */
    ACT_PIPELINE,      /* three requests in one write, then reset */
    ACT_WS,            /* WebSocket handshake, maybe a message, then reset */
    ACT_RAW,           /* raw upgrade, echo check, then reset */
};

typedef struct cconn {
    int fd;
    int act;
    unsigned id;
    size_t expect_reps; /* ACT_NORMAL: tags in the body */
    char what[96];      /* the first request target, for messages */
} cconn;

static int port;

static int connect_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = NORMAL_DEADLINE_MS / 1000};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void reset_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read into buf until EOF, `want` appears, cap is reached or deadline_ms passes.
 * Returns 1 on EOF or `want`, 0 on a timeout, -1 on an error. */
static int read_until(int fd, char *buf, size_t cap, size_t *len, const char *want, int ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    for (;;) {
        if (want && *len && memmem(buf, *len, want, strlen(want)))
            return 1;
        if (*len + 1 >= cap)
            return 1;
        uint64_t now = now_ns();
        if (now >= end)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)((end - now) / 1000000u) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue; /* the deadline check above decides */
        ssize_t n = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EINTR ? 1 : -1;
        *len += (size_t)n;
        buf[*len] = 0;
    }
}

/* The body of a complete response (Content-Length or chunked) into out; 0 or -1. */
static int response_body(const char *r, size_t len, char *out, size_t cap, size_t *out_len)
{
    const char *end = memmem(r, len, "\r\n\r\n", 4);
    if (!end || len < 12 || memcmp(r, "HTTP/1.1 200", 12) != 0)
        return -1;
    size_t hl = (size_t)(end - r) + 4;
    const char *p = r + hl, *lim = r + len;
    *out_len = 0;
    if (!memmem(r, hl, "Transfer-Encoding: chunked", 26)) {
        const char *cl = memmem(r, hl, "Content-Length: ", 16);
        if (!cl)
            return -1;
        size_t n = strtoul(cl + 16, NULL, 10);
        if (n > (size_t)(lim - p) || n > cap)
            return -1;
        memcpy(out, p, n);
        *out_len = n;
        return 0;
    }
    for (;;) {
        char *e;
        size_t n = strtoul(p, &e, 16);
        if (e == p || lim - e < 2 || memcmp(e, "\r\n", 2) != 0)
            return -1;
        p = e + 2;
        if (n == 0)
            return lim - p >= 2 && memcmp(p, "\r\n", 2) == 0 ? 0 : -1;
        if (n + 2 > (size_t)(lim - p) || *out_len + n > cap || memcmp(p + n, "\r\n", 2) != 0)
            return -1;
        memcpy(out + *out_len, p, n);
        *out_len += n;
        p += n + 2;
    }
}

/* Another request's id anywhere in the bytes means data crossed between clients. */
static unsigned foreign_id(const char *p, size_t len, unsigned own)
{
    for (const char *s = p; (s = memmem(s, len - (size_t)(s - p), "id=", 3)); s += 3) {
        unsigned v = (unsigned)strtoul(s + 3, NULL, 10);
        if (v != own)
            return v;
    }
    return 0;
}

static void finish_normal(cconn *c)
{
    static _Thread_local char resp[65536], body[65536];
    size_t len = 0, blen = 0;
    int r = read_until(c->fd, resp, sizeof(resp), &len, NULL, NORMAL_DEADLINE_MS);
    close(c->fd);
    const char *hend = memmem(resp, len, "\r\n\r\n", 4);
    unsigned other = hend ? foreign_id(hend, len - (size_t)(hend - resp), c->id) : 0;
    if (other) {
        note(&f_cross, "client of %s received data tagged id=%u", c->what, other);
        return;
    }
    if (r == 0) {
        note(&f_hang, "no complete response to %s within %d ms (%zu bytes)", c->what,
             NORMAL_DEADLINE_MS, len);
        return;
    }
    char tag[32];
    size_t tl = tag_of(c->id, tag, sizeof(tag));
    int ok =
        response_body(resp, len, body, sizeof(body), &blen) == 0 && blen == tl * c->expect_reps;
    for (size_t i = 0; ok && i < c->expect_reps; i++)
        ok = memcmp(body + i * tl, tag, tl) == 0;
    if (!ok) {
        note(&f_bad_body, "bad response to %s (%zu bytes read, body %zu, want %zu)", c->what, len,
             blen, tl * c->expect_reps);
        return;
    }
    atomic_fetch_add(&n_normal_ok, 1);
}

static const char ws_head[] =
    "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

/* Big responses for the connections that will be reset: blind writes of up to 256 KiB fill
 * the socket, so the reset meets a blocked flush and pending posted calls. */
static int big_request(char *out, size_t cap, unsigned id, int respond)
{
    static const unsigned sizes[] = {1024, 16384, 65536, 262144};
    char tag[32];
    size_t reps = sizes[rnd(4)] / tag_of(id, tag, sizeof(tag));
    if (respond)
        return snprintf(out, cap, "GET /r?id=%u&reps=%zu HTTP/1.1\r\nHost: t\r\n\r\n", id, reps);
    return snprintf(out, cap, "GET /a?id=%u&n=%u&reps=%zu&split=%u HTTP/1.1\r\nHost: t\r\n\r\n", id,
                    2 + rnd(10), reps, rnd(4) != 0);
}

static void start_conn(cconn *c)
{
    char req[1024];
    int n = 0;
    unsigned r = rnd(100);
    c->act = r < 40   ? ACT_NORMAL
             : r < 65 ? ACT_RESET_NOW
             : r < 85 ? ACT_RESET_PARTIAL
             : r < 91 ? ACT_PIPELINE
             : r < 96 ? ACT_WS
                      : ACT_RAW;
    c->id = atomic_fetch_add(&next_id, 1);
    c->fd = connect_port();
    if (c->fd < 0) {
        note(&f_connect, "connect: %s", strerror(errno));
        return;
    }
    switch (c->act) {
    case ACT_NORMAL: {
        unsigned k = rnd(3);
        c->expect_reps = 20;
        if (k == 0) {
            unsigned nw = 1 + rnd(4);
            snprintf(c->what, sizeof(c->what), "/a?id=%u&n=%u&reps=20&split=%u", c->id, nw, rnd(2));
            c->expect_reps = 20 * nw;
        } else {
            snprintf(c->what, sizeof(c->what), "/%c?id=%u&reps=20", k == 1 ? 'r' : 's', c->id);
        }
        n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     c->what);
        break;
    }
    case ACT_RESET_NOW:
    case ACT_RESET_PARTIAL:
        n = big_request(req, sizeof(req), c->id, rnd(4) == 0);
        break;
    case ACT_PIPELINE:
        for (int i = 0; i < 3; i++)
            n += big_request(req + n, sizeof(req) - (size_t)n,
                             i ? atomic_fetch_add(&next_id, 1) : c->id, rnd(3) == 0);
        break;
    case ACT_WS:
        n = snprintf(req, sizeof(req), "%s%s\r\n", ws_head,
                     rnd(2) ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
        break;
    case ACT_RAW:
        n = snprintf(req, sizeof(req),
                     "GET /raw HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n"
                     "Upgrade: echo\r\n\r\necho-%u",
                     c->id);
        break;
    }
    if (c->act != ACT_NORMAL)
        snprintf(c->what, sizeof(c->what), "%.*s", (int)strcspn(req, "\r"), req);
    if (send_all(c->fd, req, (size_t)n) < 0) {
        note(&f_connect, "send %s: %s", c->what, strerror(errno));
        close(c->fd);
        c->fd = -1;
    }
}

static void finish_conn(cconn *c)
{
    static _Thread_local char buf[300000];
    size_t len = 0;
    if (c->fd < 0)
        return;
    switch (c->act) {
    case ACT_NORMAL:
        finish_normal(c);
        return;
    case ACT_RESET_NOW:
        sleep_us(rnd(3001));
        atomic_fetch_add(&n_reset, 1);
        break;
    case ACT_RESET_PARTIAL:
        /* Some bytes, or the head only, or up to a whole 256 KiB write: then reset. */
        (void)read_until(c->fd, buf, 2 + rnd(sizeof(buf) - 2), &len, NULL, (int)rnd(20));
        atomic_fetch_add(&n_reset, 1);
        break;
    case ACT_PIPELINE:
        (void)read_until(c->fd, buf, 2 + rnd(sizeof(buf) - 2), &len, NULL, (int)rnd(10));
        atomic_fetch_add(&n_pipelined, 1);
        break;
    case ACT_WS:
        if (read_until(c->fd, buf, 4096, &len, "\r\n\r\n", NORMAL_DEADLINE_MS) != 1 || len < 12 ||
            memcmp(buf, "HTTP/1.1 101", 12) != 0)
            note(&f_upgrade, "WebSocket handshake failed (%zu bytes)", len);
        else if (rnd(2))
            (void)read_until(c->fd, buf, sizeof(buf), &len, "tick", (int)rnd(10));
        atomic_fetch_add(&n_ws, 1);
        break;
    case ACT_RAW: {
        char want[32];
        snprintf(want, sizeof(want), "echo-%u", c->id);
        if (rnd(4) &&
            (read_until(c->fd, buf, 4096, &len, want, NORMAL_DEADLINE_MS) != 1 || len < 12 ||
             memcmp(buf, "HTTP/1.1 101", 12) != 0 || !memmem(buf, len, want, strlen(want))))
            note(&f_upgrade, "raw echo of %s failed (%zu bytes)", want, len);
        atomic_fetch_add(&n_raw, 1);
        break;
    }
    }
    reset_close(c->fd);
}

static uint64_t clients_end_ns;

/* Batches of connections open at once, so that many requests are in flight per worker while
 * others are reset; each batch is finished in a random order. */
static void *client_main(void *arg)
{
    (void)arg;
    while (now_ns() < clients_end_ns) {
        cconn cs[MAX_BATCH];
        int n = 6 + (int)rnd(MAX_BATCH - 5);
        for (int i = 0; i < n; i++)
            start_conn(&cs[i]);
        for (int i = n - 1; i > 0; i--) {
            int k = (int)rnd((unsigned)i + 1);
            cconn t = cs[i];
            cs[i] = cs[k];
            cs[k] = t;
        }
        for (int i = 0; i < n; i++)
            finish_conn(&cs[i]);
    }
    return NULL;
}

/* ---- the run ---- */

static atomic_int barrier_hits;

static void barrier_task(sy_loop *loop, void *ud)
{
    (void)loop;
    (void)ud;
    atomic_fetch_add(&barrier_hits, 1);
}

/* Tasks run in posting order: once a task posted now has run, every earlier one has too
 * (sy_ws_send_async tasks would otherwise be dropped, unrun, by the server's shutdown). */
static int barrier(void)
{
    pthread_mutex_lock(&loops_mu);
    int n = nloops;
    for (int i = 0; i < n; i++)
        if (sy_loop_post(loops[i], barrier_task, NULL))
            n = -1;
    pthread_mutex_unlock(&loops_mu);
    for (int t = 0; t < 10000 && n > 0 && atomic_load(&barrier_hits) < n; t++)
        sleep_us(1000);
    return n >= 0 && atomic_load(&barrier_hits) == n ? 0 : -1;
}

static int run_failed_to_finish, barrier_failed, ws_left;

static void run(void)
{
    sy_server *srv;
    sy_ws_opts *o;
    const char *env = getenv("SY_STRESS_SECONDS");
    double secs = env ? strtod(env, NULL) : 4;
    env = getenv("SY_STRESS_CLIENTS");
    int nclients = env ? atoi(env) : 3;
    nclients = nclients < 1 ? 1 : nclients > MAX_CLIENTS ? MAX_CLIENTS : nclients;
    env = getenv("SY_STRESS_WORKERS");
    int nworkers = env ? atoi(env) : 2;
    env = getenv("SY_STRESS_SEED");
    seed = env ? strtoull(env, NULL, 0) : now_ns();
    printf("# %.1f s, %d client threads, seed %" PRIu64 " (SY_STRESS_SEED to repeat)\n", secs,
           nclients, seed);
    fflush(stdout);

    sy_set_log(NULL, 0, NULL); /* resets are expected; the outcome counters tell the story */
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, (uint64_t)nworkers) ||
        sy_server_set(srv, SY_OPT_DRAIN_TIMEOUT_MS, 2000) || sy_ws_opts_new(&o))
        abort();
    sy_ws_cbs cbs = {.on_open = ws_open, .on_close = ws_closed};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *a =
        sy_server_route(srv, "GET", "/a", SY_ROUTE_EXACT, h_async, (void *)(intptr_t)JOB_STREAM);
    sy_route *r =
        sy_server_route(srv, "GET", "/r", SY_ROUTE_EXACT, h_async, (void *)(intptr_t)JOB_RESPOND);
    sy_route *s = sy_server_route(srv, "GET", "/s", SY_ROUTE_EXACT, h_sync, NULL);
    sy_route *w = sy_server_route(srv, NULL, "/ws", SY_ROUTE_EXACT, NULL, NULL);
    sy_route *raw = sy_server_route(srv, NULL, "/raw", SY_ROUTE_EXACT, NULL, NULL);
    if (!a || !r || !s || !w || !raw || sy_route_websocket(w, o) ||
        sy_route_upgrade_raw(raw, "echo", NULL, raw_open, NULL) || sy_server_start(srv))
        abort();
    sy_ws_opts_free(o);
    port = sy_server_port(srv, 0);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&jobq.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t helpers[HELPERS], sender, clients[MAX_CLIENTS];
    for (int i = 0; i < HELPERS; i++)
        pthread_create(&helpers[i], NULL, helper_main, NULL);
    pthread_create(&sender, NULL, ws_sender_main, NULL);
    clients_end_ns = now_ns() + (uint64_t)(secs * 1e9);
    for (int i = 0; i < nclients; i++)
        pthread_create(&clients[i], NULL, client_main, NULL);
    for (int i = 0; i < nclients; i++)
        pthread_join(clients[i], NULL);

    /* Clean shutdown: every handed-out request gets its final call before the server stops
     * (a post to a stopped server would fail and leave the request unreleased). */
    for (int t = 0; t < 30000 && atomic_load(&outstanding) > 0; t++)
        sleep_us(1000);
    if (atomic_load(&outstanding) > 0) {
        run_failed_to_finish = 1;
        return; /* helpers still hold requests: tearing the server down would crash */
    }
    atomic_store(&ws_stop, 1);
    pthread_join(sender, NULL);
    pthread_mutex_lock(&jobq.mu);
    jobq.stop = 1;
    pthread_cond_broadcast(&jobq.cv);
    pthread_mutex_unlock(&jobq.mu);
    for (int i = 0; i < HELPERS; i++)
        pthread_join(helpers[i], NULL);
    barrier_failed = barrier() != 0;
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    pthread_mutex_lock(&ws_mu);
    ws_left = ws_count;
    pthread_mutex_unlock(&ws_mu);
}

TEST(no_data_crossed_between_clients)
{
    CHECK_EQ(atomic_load(&f_cross), 0);
}

TEST(request_handle_valid_until_the_final_call)
{
    CHECK_EQ(atomic_load(&f_recycled), 0);
}

TEST(normal_requests_complete_with_their_own_body)
{
    CHECK_EQ(atomic_load(&f_bad_body), 0);
    CHECK_EQ(atomic_load(&f_hang), 0);
    CHECK_EQ(atomic_load(&f_connect), 0);
}

TEST(upgrades_answer)
{
    CHECK_EQ(atomic_load(&f_upgrade), 0);
}

TEST(every_request_got_its_final_call)
{
    CHECK_EQ(run_failed_to_finish, 0);
    CHECK_EQ(atomic_load(&f_post), 0);
    CHECK_EQ(atomic_load(&outstanding), 0);
}

TEST(clean_shutdown)
{
    CHECK_EQ(run_failed_to_finish, 0);
    CHECK_EQ(barrier_failed, 0);
    CHECK_EQ(ws_left, 0);
}

/* A run that did nothing proves nothing (the box may be slow, but not this slow). */
TEST(traffic_happened)
{
    CHECK(atomic_load(&n_normal_ok) >= 10);
    CHECK(atomic_load(&n_reset) >= 10);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    run();
    printf("# %ld normal responses checked, %ld resets, %ld pipelined resets, %ld WebSocket, "
           "%ld raw; %ld response calls failed (expected after resets), %ld ws messages posted\n",
           atomic_load(&n_normal_ok), atomic_load(&n_reset), atomic_load(&n_pipelined),
           atomic_load(&n_ws), atomic_load(&n_raw), atomic_load(&n_resp_errors),
           atomic_load(&n_ws_sent));
    RUN(no_data_crossed_between_clients);
    RUN(request_handle_valid_until_the_final_call);
    RUN(normal_requests_complete_with_their_own_body);
    RUN(upgrades_answer);
    RUN(every_request_got_its_final_call);
    RUN(clean_shutdown);
    RUN(traffic_happened);
    return sy_t_summary();
}
