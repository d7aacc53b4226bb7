/* pubsub_load: a fan-out load generator for WebSocket publish/subscribe servers.
 *
 *   pubsub_load [-n SUBSCRIBERS] [-s BYTES] [-w WINDOW] [-t SECONDS] [-T THREADS]
 *               ws://127.0.0.1:PORT/chat?room=bench [ws://127.0.0.1:PORT2/... ...]
 *
 * With several URLs (processes sharing a room through Redis, say) the connections are
 * spread over them in turn; the publisher is on the first.
 * Opens -n connections to the URL (all in one room), then one of them publishes binary
 * messages of -s bytes: the server must send each message to every connection in the room
 * (the publisher included). At most -w messages are outstanding (sent but not yet received by
 * every subscriber): a closed loop, so the numbers measure the server's fan-out, not a
 * backlog. Each message carries its send time; every subscriber records the delivery
 * latency. Prints one line: "result delivered_per_s=... msgs_per_s=... p50_us=... p99_us=...".
 *
 * Standalone: libc only. Non-blocking sockets on epoll, -T threads (subscribers spread
 * over them; the publisher is connection 0, in thread 0).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING 65536
#define MAX_US 1000000 /* latency histogram: 1 us buckets up to 1 s, one overflow bucket */

typedef struct conn {
    int fd, idx, url;
    int open;
    uint8_t *buf;
    size_t have;
} conn;

typedef struct thr {
    pthread_t th;
    int ep;
    conn **conns;
    int nconns;
    uint64_t delivered;
    uint32_t *hist;
} thr;

static int g_n = 1000, g_size = 32, g_window = 16, g_threads = 1;
static double g_secs = 3;
#define MAX_URLS 8
static char g_host[MAX_URLS][64], g_path[MAX_URLS][512];
static int g_port[MAX_URLS], g_nurls;
static conn *g_conns;
static thr *g_thr;
static atomic_int g_failed;
static atomic_uint g_ring[RING]; /* receipts per sequence number (mod RING) */
static atomic_int g_phase;       /* 0 connecting, 1 warm-up, 2 measuring, 3 done */
static uint64_t g_sent, g_done_seq;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue; /* the publisher's few bytes: spinning briefly is fine */
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int conn_open(conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int u = c->url;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port[u])};
    inet_pton(AF_INET, g_host[u], &a.sin_addr);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[1024];
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 g_path[u], g_host[u], g_port[u]);
    if (send_all(c->fd, req, (size_t)n) < 0)
        return -1;
    /* Blocking read of the 101 (the server sends nothing else before a publish). */
    char head[2048];
    size_t got = 0;
    while (got < sizeof(head) - 1) {
        ssize_t r = recv(c->fd, head + got, sizeof(head) - 1 - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        head[got] = 0;
        char *end = strstr(head, "\r\n\r\n");
        if (end) {
            if (!strstr(head, " 101 "))
                return -1;
            size_t hl = (size_t)(end + 4 - head);
            c->have = got - hl;
            memcpy(c->buf, head + hl, c->have);
            c->open = 1;
            return 0;
        }
    }
    return -1;
}

/* One masked binary frame carrying (send time, sequence) and padding. */
static int publish_one(uint64_t seq)
{
    static uint8_t frame[1 << 20];
    size_t len = (size_t)g_size, h = 0;
    frame[h++] = 0x82;
    if (len < 126) {
        frame[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(len >> 8);
        frame[h++] = (uint8_t)len;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (uint8_t)(len >> (8 * i));
    }
    memset(frame + h, 0, 4); /* mask key 0: the payload goes as is */
    h += 4;
    uint64_t t = now_ns();
    memcpy(frame + h, &t, 8);
    memcpy(frame + h + 8, &seq, 8);
    memset(frame + h + 16, 'p', len - 16);
    return send_all(g_conns[0].fd, frame, h + len);
}

static void on_payload(thr *t, const uint8_t *p, size_t len)
{
    if (len < 16)
        return;
    uint64_t ts, seq;
    memcpy(&ts, p, 8);
    memcpy(&seq, p + 8, 8);
    atomic_fetch_add_explicit(&g_ring[seq % RING], 1, memory_order_release);
    if (atomic_load_explicit(&g_phase, memory_order_relaxed) != 2)
        return;
    uint64_t us = (now_ns() - ts) / 1000;
    t->hist[us < MAX_US ? us : MAX_US]++;
    t->delivered++;
}

/* Parse whole server frames (unmasked) from the front of c->buf. */
static void parse(thr *t, conn *c)
{
    size_t off = 0;
    while (c->have - off >= 2) {
        const uint8_t *b = c->buf + off;
        uint64_t len = b[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (c->have - off < 4)
                break;
            len = (uint64_t)b[2] << 8 | b[3];
            h = 4;
        } else if (len == 127) {
            if (c->have - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | b[2 + i];
            h = 10;
        }
        if (c->have - off < h + len)
            break;
        if ((b[0] & 0x0f) == 2)
            on_payload(t, b + h, (size_t)len);
        off += h + (size_t)len;
    }
    memmove(c->buf, c->buf + off, c->have - off);
    c->have -= off;
}

static void pump_publisher(void)
{
    /* Retire messages every subscriber has, then fill the window again. */
    while (g_done_seq < g_sent && atomic_load_explicit(&g_ring[g_done_seq % RING],
                                                       memory_order_acquire) >= (unsigned)g_n) {
        atomic_store_explicit(&g_ring[g_done_seq % RING], 0, memory_order_relaxed);
        g_done_seq++;
    }
    while (g_sent - g_done_seq < (uint64_t)g_window && atomic_load(&g_phase) < 3)
        if (publish_one(g_sent++) < 0) {
            fprintf(stderr, "pubsub_load: publisher connection failed\n");
            exit(1);
        }
}

static void *thr_main(void *arg)
{
    thr *t = arg;
    struct epoll_event evs[256];
    int is_pub = t == &g_thr[0];
    while (atomic_load(&g_phase) < 1)
        usleep(1000);
    while (atomic_load(&g_phase) < 3) {
        if (is_pub)
            pump_publisher();
        int n = epoll_wait(t->ep, evs, 256, is_pub ? 1 : 10);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            /* One read per event (level-triggered: more data means another event), so the
             * client spends one system call per delivery batch, not two. */
            ssize_t r = recv(c->fd, c->buf + c->have, 65536 - c->have, 0);
            if (r > 0) {
                c->have += (size_t)r;
                parse(t, c);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
                c->open = 0;
                atomic_fetch_add(&g_failed, 1);
            }
        }
    }
    return NULL;
}

static int parse_url(int u, const char *url)
{
    if (strncmp(url, "ws://", 5))
        return -1;
    const char *h = url + 5, *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || (slash && colon > slash) || (size_t)(colon - h) >= sizeof(g_host[u]))
        return -1;
    memcpy(g_host[u], h, (size_t)(colon - h));
    g_host[u][colon - h] = 0;
    g_port[u] = atoi(colon + 1);
    snprintf(g_path[u], sizeof(g_path[u]), "%s", slash ? slash : "/");
    return g_port[u] > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "n:s:w:t:T:")) != -1) {
        switch (o) {
        case 'n':
            g_n = atoi(optarg);
            break;
        case 's':
            g_size = atoi(optarg);
            break;
        case 'w':
            g_window = atoi(optarg);
            break;
        case 't':
            g_secs = atof(optarg);
            break;
        case 'T':
            g_threads = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    for (int i = optind; i < argc && g_nurls < MAX_URLS; i++)
        if (parse_url(g_nurls++, argv[i]) < 0)
            g_nurls = -1000;
    if (g_nurls < 1 || g_n < 1 || g_size < 16 || g_size > (1 << 19) || g_window < 1 ||
        g_window > RING / 2 || g_threads < 1) {
        fprintf(stderr, "usage: pubsub_load [-n subs] [-s bytes>=16] [-w window] [-t secs] "
                        "[-T threads] ws://HOST:PORT/PATH...\n");
        return 2;
    }
    g_conns = calloc((size_t)g_n, sizeof(*g_conns));
    g_thr = calloc((size_t)g_threads, sizeof(*g_thr));
    for (int i = 0; i < g_threads; i++) {
        g_thr[i].ep = epoll_create1(0);
        g_thr[i].conns = calloc((size_t)g_n, sizeof(conn *));
        g_thr[i].hist = calloc(MAX_US + 1, sizeof(uint32_t));
    }
    for (int i = 0; i < g_n; i++) {
        conn *c = &g_conns[i];
        c->idx = i;
        c->url = i % g_nurls;
        c->buf = malloc(65536);
        if (conn_open(c) < 0) {
            fprintf(stderr, "pubsub_load: connection %d failed (%s)\n", i, strerror(errno));
            return 1;
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        thr *t = &g_thr[i % g_threads];
        t->conns[t->nconns++] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    /* The subscriptions are made at the open; give the servers a moment to settle. */
    usleep(200000);
    for (int i = 0; i < g_threads; i++)
        pthread_create(&g_thr[i].th, NULL, thr_main, &g_thr[i]);
    atomic_store(&g_phase, 1);
    usleep(500000);
    uint64_t t0 = now_ns();
    atomic_store(&g_phase, 2);
    usleep((useconds_t)(g_secs * 1e6));
    atomic_store(&g_phase, 3);
    uint64_t t1 = now_ns();
    for (int i = 0; i < g_threads; i++)
        pthread_join(g_thr[i].th, NULL);
    uint64_t delivered = 0;
    static uint64_t hist[MAX_US + 1];
    for (int i = 0; i < g_threads; i++) {
        delivered += g_thr[i].delivered;
        for (int k = 0; k <= MAX_US; k++)
            hist[k] += g_thr[i].hist[k];
    }
    double secs = (double)(t1 - t0) / 1e9;
    uint64_t p50 = 0, p99 = 0, acc = 0;
    for (int k = 0; k <= MAX_US; k++) {
        acc += hist[k];
        if (!p50 && acc * 100 >= delivered * 50)
            p50 = (uint64_t)k;
        if (!p99 && acc * 100 >= delivered * 99) {
            p99 = (uint64_t)k;
            break;
        }
    }
    printf("result subscribers=%d size=%d window=%d delivered_per_s=%.0f msgs_per_s=%.0f "
           "p50_us=%llu p99_us=%llu failed_conns=%d\n",
           g_n, g_size, g_window, (double)delivered / secs, (double)delivered / secs / g_n,
           (unsigned long long)p50, (unsigned long long)p99, atomic_load(&g_failed));
    return 0;
}
