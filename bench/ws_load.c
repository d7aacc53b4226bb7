/* ws_load: a WebSocket load generator for echo servers (RFC 6455 + RFC 7692).
 *
 * Standalone: libc, zlib (permessage-deflate), libcrypto (SHA-1 to verify
 * Sec-WebSocket-Accept) and libssl (wss://). Non-blocking sockets on epoll, one event loop
 * per thread.
 *
 *   ws_load [options] ws://127.0.0.1:PORT/echo
 *   ws_load [options] wss://127.0.0.1:PORT/echo     (TLS; the certificate is not verified)
 *
 * Modes
 *   (default)      throughput: -c connections, each keeps -k messages of -s bytes in
 *                  flight; every echo is checked (opcode, length, sampled content) and
 *                  replaced by a new message. Prints msgs/s, MB/s (echoed payload bytes,
 *                  10^6 B) and round-trip p50/p99.
 *   --latency      the same with 1 connection x 1 message in flight.
 *   --handshakes   -c concurrent loops of: connect, upgrade, send Close, wait for the
 *                  server's Close, close the socket. Prints upgrades/s and upgrade latency.
 *   --idle N       open N connections (at most --conc handshakes pending at a time), hold
 *                  them, then send one message on each and wait for its echo. With --pid,
 *                  reads the server's VmRSS before, after opening and after the message,
 *                  and prints the growth per connection. storm_hs_per_s = connections
 *                  opened / connect_s: the upgrade rate of that storm.
 *
 * --deflate offers "permessage-deflate; client_no_context_takeover". The client then
 * compresses every message on its own (raw deflate, sync flush, trailing 00 00 ff ff
 * stripped), so each payload variant is compressed once up front and reused; replies
 * are inflated per connection with context, whatever the server chose.
 *
 * wss://: one non-blocking SSL per connection (TLS 1.2+, SNI "localhost" or the URL's host,
 * ALPN http/1.1, no certificate verification, no session resumption: --handshakes measures
 * full handshakes). The output queue is written with SSL_write: a queue entry of a record
 * (16 KiB) or more straight from its bytes, smaller ones gathered into one record, so a frame
 * header and a small payload share a record as they share a writev on TCP. The result line
 * then says which protocol and cipher the server chose (tls=...).
 *
 * Output: one line starting with "result " of key=value pairs (see print_result).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define NVAR 4               /* payload variants, rotated per message */
#define SCRATCH (256u << 10) /* per-thread read buffer */
#define INFL_OUT (64u << 10) /* per-thread inflate output buffer */
#define SAMPLE 64            /* bytes checked at each end of a message (unless --verify-full) */
#define LAT_CAP (4u << 20)   /* latency samples kept per thread (reservoir beyond) */
#define RECORD 16384u        /* TLS record plaintext: the unit of SSL_write */

enum { M_THROUGHPUT, M_HANDSHAKE, M_IDLE };
enum { PH_CONNECT = 1, PH_RUN, PH_MSG, PH_STOP };
enum { ST_FREE, ST_CONNECTING, ST_HS, ST_OPEN, ST_CLOSING };
enum { E_CONNECT, E_HANDSHAKE, E_PROTO, E_MISMATCH, E_CLOSED, E_TIMEOUT, E_N };
static const char *err_names[E_N] = {"connect",  "handshake", "proto",
                                     "mismatch", "closed",    "timeout"};

/* ---- configuration ---- */
static struct {
    struct sockaddr_in addr;
    char hostport[128];
    const char *path, *name;
    char sni[128];
    const char *ciphersuites; /* wss:// TLS 1.3 suites in preference order, or NULL */
    SSL_CTX *tls;             /* wss:// */
    int mode, conns, inflight, threads, conc, deflate, binary, verify_full, idle_msg;
    size_t size;
    double duration, warmup, hold, timeout;
    long pid;
} C = {
    .path = "/echo",
    .name = "ws",
    .mode = M_THROUGHPUT,
    .conns = 1,
    .inflight = 1,
    .threads = 1,
    .conc = 256,
    .binary = 1,
    .idle_msg = 1,
    .size = 32,
    .duration = 5,
    .warmup = 0.5,
    .hold = 1,
    .timeout = 10,
    .pid = 0,
};

/* ---- shared state ---- */
static atomic_int g_phase;
static uint64_t g_t_ms, g_t_me; /* measurement window, ns (written before phase changes) */
static uint64_t g_stop_deadline;
static atomic_int g_tls_noted;
static char g_tls_desc[96]; /* protocol/cipher of the first TLS connection */

/* payload variants: plain text for checking, pre-masked wire bytes with their headers */
typedef struct {
    uint8_t *plain;
    uint8_t *wire[2]; /* [0] uncompressed, [1] compressed */
    size_t wire_len[2];
    uint8_t hdr[2][14];
    uint8_t hdr_len[2];
} variant;
static variant V[NVAR];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- per-connection and per-thread state ---- */
typedef struct {
    const uint8_t *p; /* external bytes (payload variant), or NULL */
    uint8_t *own;     /* malloc'd bytes (handshake, control frames), or NULL */
    uint32_t len, off;
    uint8_t inl[14]; /* inline bytes (data frame header) when p and own are NULL */
} seg;

struct thr;
typedef struct conn {
    struct thr *t;
    SSL *ssl; /* wss:// */
    int fd, state, pmd, idx;
    uint32_t gen;
    uint64_t t_start, last_rx;
    char key[25];
    char *hs;
    size_t hs_len;
    /* output queue */
    seg *q;
    unsigned qhead, qn, qcap;
    /* frame parser */
    uint8_t hdr[14], hdr_have, hdr_need, f_op, f_fin, f_rsv1, ctl_len;
    uint8_t ctl[125];
    uint64_t pay_left;
    int in_msg, msg_op, msg_comp, msg_bad;
    uint64_t msg_len;
    z_stream *inf;
    int got_close, sent_close;
    /* messages in flight (FIFO: echoes come back in order) */
    uint64_t *sent_t;
    uint8_t *sent_v;
    unsigned s_head, s_n;
    unsigned next_var;
    int idle_echoed;
} conn;

typedef struct thr {
    int id, epfd;
    pthread_t th;
    conn *c;
    int n, next_open, pending, live, phase;
    uint8_t *scratch, *iout, *wrec; /* wrec: a TLS record gathered from small queue entries */
    uint64_t rng;
    /* stats (read by main while running: atomics) */
    uint64_t opened, failed, idle_echoed, hs_done;
    uint64_t msgs, bytes, errs[E_N], pmd_conns, stalled, forced;
    uint32_t *lat;
    size_t nlat;
    uint64_t lat_seen;
} thr;

static thr *T;

static void count_err(thr *t, int e)
{
    __atomic_add_fetch(&t->errs[e], 1, __ATOMIC_RELAXED);
}

static void lat_add(thr *t, uint64_t ns)
{
    uint32_t v = ns > 0xffffffffu ? 0xffffffffu : (uint32_t)ns;
    t->lat_seen++;
    if (t->nlat < LAT_CAP)
        t->lat[t->nlat++] = v;
    else {
        uint64_t j = xs(&t->rng) % t->lat_seen;
        if (j < LAT_CAP)
            t->lat[j] = v;
    }
}

/* ---- small helpers ---- */
static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tb[(v >> 18) & 63];
        out[o++] = tb[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tb[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tb[v & 63] : '=';
    }
    out[o] = 0;
}

static size_t frame_header(uint8_t *h, int fin, int rsv1, int op, uint64_t len,
                           const uint8_t mask[4])
{
    size_t n = 0;
    h[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op);
    if (len < 126)
        h[n++] = (uint8_t)(0x80 | len);
    else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(h + n, mask, 4);
    return n + 4;
}

static long read_rss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- payloads ---- */
static void make_payloads(void)
{
    static const char *words[] = {
        "switch", "yard", "frame",    "socket",     "echo",   "message", "lorem",   "ipsum",
        "dolor",  "sit",  "amet",     "packet",     "buffer", "the",     "a",       "of",
        "and",    "to",   "deflate",  "window",     "server", "client",  "latency", "through",
        "put",    "json", "{\"id\":", "\"value\":", "true",   "null",    "12345",   "},"};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int v = 0; v < NVAR; v++) {
        variant *x = &V[v];
        x->plain = malloc(C.size ? C.size : 1);
        if (!x->plain)
            exit(1);
        for (size_t i = 0; i < C.size;) {
            if (C.binary) {
                x->plain[i++] = (uint8_t)xs(&seed);
            } else {
                const char *w = words[xs(&seed) % (sizeof(words) / sizeof(words[0]))];
                for (size_t j = 0; w[j] && i < C.size; j++)
                    x->plain[i++] = (uint8_t)w[j];
                if (i < C.size)
                    x->plain[i++] = ' ';
            }
        }
        for (int k = 0; k < 2; k++) {
            const uint8_t *src = x->plain;
            size_t len = C.size;
            uint8_t *cbuf = NULL;
            if (k == 1) {
                if (!C.deflate) {
                    x->wire[1] = NULL;
                    continue;
                }
                z_stream zs;
                memset(&zs, 0, sizeof(zs));
                if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                                 Z_DEFAULT_STRATEGY) != Z_OK)
                    exit(1);
                size_t cap = deflateBound(&zs, (uLong)C.size) + 16;
                cbuf = malloc(cap);
                zs.next_in = (Bytef *)x->plain;
                zs.avail_in = (uInt)C.size;
                zs.next_out = cbuf;
                zs.avail_out = (uInt)cap;
                if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK || zs.avail_in) {
                    fprintf(stderr, "ws_load: deflate failed\n");
                    exit(1);
                }
                len = cap - zs.avail_out;
                deflateEnd(&zs);
                if (len < 4 || memcmp(cbuf + len - 4, "\x00\x00\xff\xff", 4)) {
                    fprintf(stderr, "ws_load: unexpected deflate tail\n");
                    exit(1);
                }
                len -= 4;
                src = cbuf;
            }
            uint8_t mask[4];
            uint64_t r = xs(&seed);
            memcpy(mask, &r, 4);
            x->wire[k] = malloc(len ? len : 1);
            for (size_t i = 0; i < len; i++)
                x->wire[k][i] = src[i] ^ mask[i & 3];
            x->wire_len[k] = len;
            x->hdr_len[k] =
                (uint8_t)frame_header(x->hdr[k], 1, k == 1, C.binary ? 2 : 1, len, mask);
            free(cbuf);
        }
    }
}

/* ---- output queue ---- */
static seg *q_push(conn *c)
{
    if (c->qhead + c->qn == c->qcap) {
        if (c->qhead) {
            memmove(c->q, c->q + c->qhead, c->qn * sizeof(seg));
            c->qhead = 0;
        } else {
            unsigned nc = c->qcap ? c->qcap * 2 : 8;
            seg *nq = realloc(c->q, nc * sizeof(seg));
            if (!nq)
                exit(1);
            c->q = nq;
            c->qcap = nc;
        }
    }
    seg *s = &c->q[c->qhead + c->qn++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void q_clear(conn *c)
{
    for (unsigned i = 0; i < c->qn; i++)
        free(c->q[c->qhead + i].own);
    c->qhead = c->qn = 0;
}

static void conn_close(conn *c);
static void conn_fail(conn *c, int e)
{
    count_err(c->t, e);
    conn_close(c);
}

static void q_consume(conn *c, size_t n)
{
    while (n && c->qn) {
        seg *s = &c->q[c->qhead];
        size_t rem = s->len - s->off;
        if (n >= rem) {
            n -= rem;
            free(s->own);
            c->qhead++;
            c->qn--;
        } else {
            s->off += (uint32_t)n;
            n = 0;
        }
    }
    if (!c->qn)
        c->qhead = 0;
}

static const uint8_t *seg_bytes(const seg *s)
{
    return (s->own ? s->own : s->p ? s->p : s->inl) + s->off;
}

static void tls_report(const char *what)
{
    static atomic_int reported;
    unsigned long e = ERR_peek_last_error();
    if (!atomic_exchange(&reported, 1))
        fprintf(stderr, "ws_load: TLS %s: %s\n", what,
                e ? ERR_reason_error_string(e) : strerror(errno));
    ERR_clear_error();
}

/* The queue through SSL_write. A head entry of a record or more goes straight from its bytes;
 * smaller entries are gathered into one record. After WANT_WRITE OpenSSL wants the same bytes
 * again, no fewer: the queue only grows, so the same rule rebuilds them. Returns -1 when the
 * connection was closed. */
static int tls_flush(conn *c)
{
    while (c->qn) {
        seg *h = &c->q[c->qhead];
        const uint8_t *p;
        size_t n = h->len - h->off;
        if (n >= RECORD) {
            p = seg_bytes(h);
        } else {
            n = 0;
            for (unsigned i = 0; i < c->qn && n < RECORD; i++) {
                seg *s = &c->q[c->qhead + i];
                size_t k = s->len - s->off;
                if (k > RECORD - n)
                    k = RECORD - n;
                memcpy(c->t->wrec + n, seg_bytes(s), k);
                n += k;
            }
            p = c->t->wrec;
        }
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(c->ssl, p, n, &w) != 1) {
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return 0;
            if (c->state == ST_CLOSING && atomic_load(&g_phase) == PH_STOP) {
                ERR_clear_error();
                conn_close(c);
            } else {
                tls_report("write");
                conn_fail(c, c->state == ST_HS ? E_HANDSHAKE : E_CLOSED);
            }
            return -1;
        }
        q_consume(c, w);
    }
    return 0;
}

/* read(2) or SSL_read: > 0 bytes, 0 at the end, -1 with errno (EAGAIN: nothing now). */
static ssize_t conn_read(conn *c, void *buf, size_t len)
{
    if (!c->ssl)
        return read(c->fd, buf, len);
    size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    switch (SSL_get_error(c->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* tls_flush runs on every event of a TLS connection */
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        return 0;
    default:
        if (!(c->state == ST_CLOSING && atomic_load(&g_phase) == PH_STOP))
            tls_report(c->state == ST_HS ? "handshake" : "read");
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

/* returns -1 when the connection was closed */
static int flush(conn *c)
{
    if (c->ssl)
        return tls_flush(c);
    while (c->qn) {
        struct iovec iov[64];
        int n = 0;
        for (unsigned i = 0; i < c->qn && n < 64; i++, n++) {
            seg *s = &c->q[c->qhead + i];
            const uint8_t *b = s->own ? s->own : s->p ? s->p : s->inl;
            iov[n].iov_base = (void *)(b + s->off);
            iov[n].iov_len = s->len - s->off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            if (c->state == ST_CLOSING && atomic_load(&g_phase) == PH_STOP)
                conn_close(c);
            else
                conn_fail(c, E_CLOSED);
            return -1;
        }
        q_consume(c, (size_t)w);
    }
    return 0;
}

static void send_msg(conn *c)
{
    unsigned v = c->next_var++ % NVAR;
    int k = c->pmd ? 1 : 0;
    seg *h = q_push(c);
    memcpy(h->inl, V[v].hdr[k], V[v].hdr_len[k]);
    h->len = V[v].hdr_len[k];
    if (V[v].wire_len[k]) {
        seg *p = q_push(c);
        p->p = V[v].wire[k];
        p->len = (uint32_t)V[v].wire_len[k];
    }
    unsigned cap = (unsigned)C.inflight;
    unsigned slot = (c->s_head + c->s_n) % cap;
    c->sent_t[slot] = now_ns();
    c->sent_v[slot] = (uint8_t)v;
    c->s_n++;
}

static void send_ctl(conn *c, int op, const uint8_t *data, size_t len)
{
    seg *s = q_push(c);
    s->own = malloc(14 + len);
    uint8_t mask[4];
    uint64_t r = xs(&c->t->rng);
    memcpy(mask, &r, 4);
    size_t hl = frame_header(s->own, 1, 0, op, len, mask);
    for (size_t i = 0; i < len; i++)
        s->own[hl + i] = data[i] ^ mask[i & 3];
    s->len = (uint32_t)(hl + len);
}

static void send_close(conn *c)
{
    if (c->sent_close)
        return;
    c->sent_close = 1;
    static const uint8_t normal[2] = {0x03, 0xe8};
    send_ctl(c, 8, normal, 2);
    c->state = ST_CLOSING;
}

/* ---- connection lifecycle ---- */
static void conn_close(conn *c)
{
    thr *t = c->t;
    if (c->fd < 0)
        return;
    if (c->state == ST_CONNECTING || c->state == ST_HS) {
        t->pending--;
        if (C.mode != M_HANDSHAKE)
            __atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
    }
    if (c->ssl) {
        /* close_notify when the session is up (best effort, one non-blocking try) */
        if (SSL_is_init_finished(c->ssl) && c->state != ST_HS)
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->state = ST_FREE;
    t->live--;
    q_clear(c);
    free(c->hs);
    c->hs = NULL;
    if (c->inf) {
        inflateEnd(c->inf);
        free(c->inf);
        c->inf = NULL;
    }
}

static void conn_start(conn *c)
{
    thr *t = c->t;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (c->fd < 0) {
        fprintf(stderr, "ws_load: socket: %s\n", strerror(errno));
        count_err(t, E_CONNECT);
        __atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (C.tls) {
        c->ssl = SSL_new(C.tls);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_tlsext_host_name(c->ssl, C.sni)) {
            fprintf(stderr, "ws_load: SSL_new failed\n");
            exit(1);
        }
        SSL_set_connect_state(c->ssl);
    }
    c->gen++;
    c->state = ST_CONNECTING;
    c->t_start = now_ns();
    c->hs_len = 0;
    c->hdr_have = 0;
    c->in_msg = 0;
    c->s_head = c->s_n = 0;
    c->got_close = c->sent_close = 0;
    c->pmd = 0;
    c->idle_echoed = 0;
    t->pending++;
    t->live++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)c->idx};
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&C.addr, sizeof(C.addr)) < 0 && errno != EINPROGRESS) {
        if (C.mode == M_HANDSHAKE && (errno == EADDRNOTAVAIL))
            fprintf(stderr, "ws_load: out of local ports\n");
        conn_fail(c, E_CONNECT);
    }
}

static void send_handshake(conn *c)
{
    uint8_t rnd[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = xs(&c->t->rng);
        memcpy(rnd + i, &r, 8);
    }
    b64(rnd, 16, c->key);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     C.path, C.hostport, c->key,
                     C.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                 "client_no_context_takeover\r\n"
                               : "");
    seg *s = q_push(c);
    s->own = malloc((size_t)n);
    memcpy(s->own, req, (size_t)n);
    s->len = (uint32_t)n;
    c->state = ST_HS;
    flush(c);
}

static void start_sending(conn *c)
{
    while (c->s_n < (unsigned)C.inflight)
        send_msg(c);
}

static void on_open(conn *c)
{
    thr *t = c->t;
    t->pending--;
    c->state = ST_OPEN;
    c->last_rx = now_ns();
    if (c->pmd)
        t->pmd_conns++;
    if (c->ssl && !atomic_exchange(&g_tls_noted, 1))
        snprintf(g_tls_desc, sizeof(g_tls_desc), " tls=%s/%s", SSL_get_version(c->ssl),
                 SSL_get_cipher_name(c->ssl));
    int ph = atomic_load(&g_phase);
    if (C.mode == M_HANDSHAKE) {
        uint64_t now = now_ns();
        if (now >= g_t_ms && now < g_t_me) {
            t->hs_done++;
            lat_add(t, now - c->t_start);
        }
        send_close(c);
        flush(c);
        return;
    }
    __atomic_add_fetch(&t->opened, 1, __ATOMIC_RELAXED);
    if (C.mode == M_THROUGHPUT && ph == PH_RUN)
        start_sending(c);
    else if (C.mode == M_IDLE && ph == PH_MSG && C.idle_msg)
        send_msg(c);
    else if (ph == PH_STOP)
        send_close(c);
    flush(c);
}

/* parse the 101 response in c->hs; returns bytes consumed, 0 if incomplete, -1 on error */
static long parse_handshake(conn *c)
{
    char *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
    if (!end)
        return c->hs_len > 16384 ? -1 : 0;
    size_t hl = (size_t)(end - c->hs) + 4;
    *end = 0;
    if (strncmp(c->hs, "HTTP/1.1 101", 12)) {
        char *nl = strchr(c->hs, '\r');
        if (nl)
            *nl = 0;
        static int reported;
        if (!reported++)
            fprintf(stderr, "ws_load: handshake refused: %s\n", c->hs);
        return -1;
    }
    /* expected accept */
    char in[64 + 36];
    snprintf(in, sizeof(in), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL);
    char want[32];
    b64(md, 20, want);
    int accept_ok = 0, upgrade_ok = 0;
    char *save = NULL;
    for (char *line = strtok_r(c->hs, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = 0;
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        size_t vl = strlen(val);
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            val[--vl] = 0;
        if (!strcasecmp(line, "Sec-WebSocket-Accept"))
            accept_ok = !strcmp(val, want);
        else if (!strcasecmp(line, "Upgrade"))
            upgrade_ok = !strcasecmp(val, "websocket");
        else if (!strcasecmp(line, "Sec-WebSocket-Extensions")) {
            if (strcasestr(val, "permessage-deflate")) {
                if (!C.deflate)
                    return -1;
                c->pmd = 1;
            }
        }
    }
    if (!accept_ok || !upgrade_ok) {
        static int reported;
        if (!reported++)
            fprintf(stderr, "ws_load: bad handshake response (accept %d, upgrade %d)\n", accept_ok,
                    upgrade_ok);
        return -1;
    }
    return (long)hl;
}

/* ---- receiving ---- */
static void check_bytes(conn *c, const uint8_t *p, size_t n)
{
    if (c->msg_bad || !c->s_n) {
        c->msg_len += n;
        return;
    }
    const uint8_t *want = V[c->sent_v[c->s_head]].plain;
    uint64_t off = c->msg_len;
    c->msg_len += n;
    if (c->msg_len > C.size) {
        c->msg_bad = 1;
        return;
    }
    if (C.verify_full) {
        if (memcmp(p, want + off, n))
            c->msg_bad = 1;
        return;
    }
    /* head sample */
    if (off < SAMPLE) {
        size_t k = n < SAMPLE - off ? n : (size_t)(SAMPLE - off);
        if (memcmp(p, want + off, k))
            c->msg_bad = 1;
    }
    /* tail sample */
    uint64_t tail = C.size > SAMPLE ? C.size - SAMPLE : 0;
    if (off + n > tail) {
        uint64_t s = off > tail ? off : tail;
        if (memcmp(p + (s - off), want + s, (size_t)(off + n - s)))
            c->msg_bad = 1;
    }
}

static int inflate_bytes(conn *c, const uint8_t *p, size_t n)
{
    thr *t = c->t;
    if (!c->inf) {
        c->inf = calloc(1, sizeof(z_stream));
        if (inflateInit2(c->inf, -15) != Z_OK)
            return -1;
    }
    z_stream *z = c->inf;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    do {
        z->next_out = t->iout;
        z->avail_out = INFL_OUT;
        int r = inflate(z, Z_SYNC_FLUSH);
        if (r == Z_STREAM_END)
            inflateReset(z);
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return -1;
        size_t got = INFL_OUT - z->avail_out;
        if (got)
            check_bytes(c, t->iout, got);
        if (r == Z_BUF_ERROR && got == 0)
            break;
    } while (z->avail_in || z->avail_out == 0);
    return 0;
}

/* returns -1 when the connection was closed */
static int on_message(conn *c)
{
    thr *t = c->t;
    uint64_t now = now_ns();
    if (!c->s_n) {
        conn_fail(c, E_PROTO);
        return -1;
    }
    unsigned v = c->sent_v[c->s_head];
    uint64_t st = c->sent_t[c->s_head];
    (void)v;
    c->s_head = (c->s_head + 1) % (unsigned)C.inflight;
    c->s_n--;
    int want_op = C.binary ? 2 : 1;
    if (c->msg_bad || c->msg_len != C.size || c->msg_op != want_op) {
        static int reported;
        if (!reported++)
            fprintf(stderr, "ws_load: bad echo: len %llu (want %zu) op %d (want %d)%s\n",
                    (unsigned long long)c->msg_len, C.size, c->msg_op, want_op,
                    c->msg_bad ? " content differs" : "");
        count_err(t, E_MISMATCH);
    }
    if (now >= g_t_ms && now < g_t_me) {
        t->msgs++;
        t->bytes += c->msg_len;
        lat_add(t, now - st);
    }
    if (C.mode == M_IDLE) {
        if (!c->idle_echoed) {
            c->idle_echoed = 1;
            __atomic_add_fetch(&t->idle_echoed, 1, __ATOMIC_RELAXED);
        }
        return 0;
    }
    if (c->state == ST_OPEN && atomic_load(&g_phase) == PH_RUN)
        send_msg(c);
    return 0;
}

/* returns -1 when the connection was closed */
static int on_control(conn *c)
{
    switch (c->f_op) {
    case 9: /* ping */
        if (!c->sent_close)
            send_ctl(c, 10, c->ctl, c->ctl_len);
        return 0;
    case 10:
        return 0;
    case 8:
        c->got_close = 1;
        if (c->sent_close) { /* our close answered: done */
            conn_close(c);
            return -1;
        }
        {
            static int reported;
            if (!reported++)
                fprintf(stderr, "ws_load: server sent Close (code %d) unprompted\n",
                        c->ctl_len >= 2 ? (c->ctl[0] << 8 | c->ctl[1]) : 0);
        }
        conn_fail(c, E_CLOSED);
        return -1;
    default:
        conn_fail(c, E_PROTO);
        return -1;
    }
}

static int frame_done(conn *c)
{
    c->hdr_have = 0;
    if (c->f_op >= 8)
        return on_control(c);
    if (!c->f_fin)
        return 0;
    if (c->msg_comp && inflate_bytes(c, (const uint8_t *)"\x00\x00\xff\xff", 4) < 0) {
        conn_fail(c, E_PROTO);
        return -1;
    }
    c->in_msg = 0;
    return on_message(c);
}

static int feed_frames(conn *c, const uint8_t *p, size_t n)
{
    while (n) {
        if (c->hdr_have < 2 || c->hdr_have < c->hdr_need) {
            if (c->hdr_have < 2)
                c->hdr_need = 2;
            size_t k = c->hdr_need - c->hdr_have;
            if (k > n)
                k = n;
            memcpy(c->hdr + c->hdr_have, p, k);
            c->hdr_have = (uint8_t)(c->hdr_have + k);
            p += k;
            n -= k;
            if (c->hdr_have == 2) {
                int l7 = c->hdr[1] & 0x7f;
                c->hdr_need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
                if (c->hdr[1] & 0x80) { /* masked server frame */
                    conn_fail(c, E_PROTO);
                    return -1;
                }
            }
            if (c->hdr_have < c->hdr_need)
                continue;
            uint8_t b0 = c->hdr[0];
            int l7 = c->hdr[1] & 0x7f;
            uint64_t len = (uint64_t)l7;
            if (l7 == 126)
                len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (l7 == 127) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | c->hdr[2 + i];
            }
            c->f_fin = (b0 & 0x80) != 0;
            c->f_rsv1 = (b0 & 0x40) != 0;
            c->f_op = b0 & 0x0f;
            c->pay_left = len;
            if (b0 & 0x30) {
                conn_fail(c, E_PROTO);
                return -1;
            }
            if (c->f_op >= 8) {
                if (!c->f_fin || len > 125 || c->f_rsv1 || c->f_op > 10) {
                    conn_fail(c, E_PROTO);
                    return -1;
                }
                c->ctl_len = 0;
            } else if (c->f_op == 0) {
                if (!c->in_msg || c->f_rsv1) {
                    conn_fail(c, E_PROTO);
                    return -1;
                }
            } else if (c->f_op <= 2) {
                if (c->in_msg || (c->f_rsv1 && !c->pmd)) {
                    conn_fail(c, E_PROTO);
                    return -1;
                }
                c->in_msg = 1;
                c->msg_op = c->f_op;
                c->msg_comp = c->f_rsv1;
                c->msg_bad = 0;
                c->msg_len = 0;
            } else {
                conn_fail(c, E_PROTO);
                return -1;
            }
            if (len == 0 && frame_done(c) < 0)
                return -1;
            continue;
        }
        size_t k = c->pay_left < n ? (size_t)c->pay_left : n;
        if (c->f_op >= 8) {
            memcpy(c->ctl + c->ctl_len, p, k);
            c->ctl_len = (uint8_t)(c->ctl_len + k);
        } else if (c->msg_comp) {
            if (inflate_bytes(c, p, k) < 0) {
                conn_fail(c, E_PROTO);
                return -1;
            }
        } else {
            check_bytes(c, p, k);
        }
        p += k;
        n -= k;
        c->pay_left -= k;
        if (c->pay_left == 0 && frame_done(c) < 0)
            return -1;
    }
    return 0;
}

static void on_readable(conn *c)
{
    thr *t = c->t;
    for (;;) {
        ssize_t r = conn_read(c, t->scratch, SCRATCH);
        if (r > 0) {
            c->last_rx = now_ns();
            const uint8_t *p = t->scratch;
            size_t n = (size_t)r;
            if (c->state == ST_HS) {
                char *nb = realloc(c->hs, c->hs_len + n + 1);
                if (!nb)
                    exit(1);
                c->hs = nb;
                memcpy(c->hs + c->hs_len, p, n);
                c->hs_len += n;
                long used = parse_handshake(c);
                if (used == 0)
                    continue;
                if (used < 0) {
                    conn_fail(c, E_HANDSHAKE);
                    return;
                }
                size_t rest = c->hs_len - (size_t)used;
                uint8_t *tail = (uint8_t *)c->hs + used;
                on_open(c);
                if (c->fd < 0)
                    return;
                if (rest && feed_frames(c, tail, rest) < 0)
                    return;
                free(c->hs);
                c->hs = NULL;
                continue;
            }
            if (feed_frames(c, p, n) < 0)
                return;
            continue;
        }
        if (r == 0) {
            int ph = atomic_load(&g_phase);
            if (c->state == ST_HS)
                conn_fail(c, E_HANDSHAKE);
            else if (c->state == ST_CLOSING && (c->got_close || ph == PH_STOP))
                conn_close(c);
            else
                conn_fail(c, E_CLOSED);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        if (c->state == ST_HS)
            conn_fail(c, E_HANDSHAKE);
        else if (c->state == ST_CLOSING && atomic_load(&g_phase) == PH_STOP)
            conn_close(c);
        else
            conn_fail(c, E_CLOSED);
        return;
    }
    flush(c);
}

static void on_event(thr *t, uint64_t data, uint32_t ev)
{
    conn *c = &t->c[(uint32_t)data];
    if ((uint32_t)(data >> 32) != c->gen || c->fd < 0)
        return;
    if (c->state == ST_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            static int reported;
            if (!reported++)
                fprintf(stderr, "ws_load: connect: %s\n", strerror(err));
            conn_fail(c, E_CONNECT);
            return;
        }
        send_handshake(c);
        if (c->fd < 0)
            return;
    }
    if (c->ssl) {
        /* either direction may be what the TLS layer waits for */
        if (flush(c) < 0)
            return;
        on_readable(c);
        return;
    }
    if ((ev & EPOLLOUT) && flush(c) < 0)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

static void on_phase(thr *t, int ph)
{
    for (int i = 0; i < t->n; i++) {
        conn *c = &t->c[i];
        if (ph == PH_RUN && C.mode == M_HANDSHAKE) {
            conn_start(c);
            continue;
        }
        if (c->fd < 0)
            continue;
        if (ph == PH_STOP && (c->state == ST_CONNECTING || c->state == ST_HS)) {
            conn_close(c);
            continue;
        }
        if (c->state != ST_OPEN)
            continue;
        if (ph == PH_RUN && C.mode == M_THROUGHPUT)
            start_sending(c);
        else if (ph == PH_MSG && C.idle_msg)
            send_msg(c);
        else if (ph == PH_STOP) {
            if (C.mode == M_THROUGHPUT && c->s_n && now_ns() - c->last_rx > 1000000000ull)
                t->stalled++;
            send_close(c);
        }
        flush(c);
    }
}

static void *thr_main(void *arg)
{
    thr *t = arg;
    struct epoll_event evs[512];
    uint64_t last_check = 0;
    uint64_t tmo = (uint64_t)(C.timeout * 1e9);
    for (;;) {
        int ph = atomic_load(&g_phase);
        if (ph != t->phase) {
            t->phase = ph;
            on_phase(t, ph);
        }
        if (ph == PH_CONNECT && C.mode != M_HANDSHAKE) {
            while (t->next_open < t->n && t->pending < C.conc)
                conn_start(&t->c[t->next_open++]);
        }
        if (ph == PH_STOP) {
            if (t->live == 0)
                break;
            if (now_ns() > g_stop_deadline) {
                for (int i = 0; i < t->n; i++)
                    if (t->c[i].fd >= 0) {
                        t->forced++;
                        conn_close(&t->c[i]);
                    }
                break;
            }
        }
        int n = epoll_wait(t->epfd, evs, 512, 2);
        for (int i = 0; i < n; i++)
            on_event(t, evs[i].data.u64, evs[i].events);
        uint64_t now = now_ns();
        if (now - last_check > 100000000ull) {
            last_check = now;
            for (int i = 0; i < t->n; i++) {
                conn *c = &t->c[i];
                if (c->fd >= 0 && (c->state == ST_CONNECTING || c->state == ST_HS) &&
                    now - c->t_start > tmo) {
                    conn_fail(c, E_TIMEOUT);
                } else if (C.mode == M_HANDSHAKE && c->fd >= 0 && c->state == ST_CLOSING &&
                           now - c->t_start > tmo) {
                    conn_fail(c, E_TIMEOUT);
                }
                if (C.mode == M_HANDSHAKE && c->fd < 0 && ph == PH_RUN)
                    conn_start(c);
            }
        }
        /* handshake loops: restart finished slots right away */
        if (C.mode == M_HANDSHAKE && ph == PH_RUN)
            for (int i = 0; i < t->n; i++)
                if (t->c[i].fd < 0)
                    conn_start(&t->c[i]);
    }
    return NULL;
}

/* ---- main ---- */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *s, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return s[i] / 1000.0;
}

static uint64_t sum(size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < C.threads; i++)
        s += __atomic_load_n((uint64_t *)((char *)&T[i] + off), __ATOMIC_RELAXED);
    return s;
}
#define SUM(f) sum(offsetof(thr, f))

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static size_t parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    if (*e == 'k' || *e == 'K')
        v *= 1024;
    else if (*e == 'm' || *e == 'M')
        v *= 1024 * 1024;
    return (size_t)v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ws_load [options] ws[s]://127.0.0.1:PORT/PATH\n"
            "  -c N            connections (throughput), loops (--handshakes) [1]\n"
            "  -k N            messages in flight per connection [1]\n"
            "  -s SIZE         message size, k/m suffixes = KiB/MiB [32]\n"
            "  -t SEC          measured duration [5]\n"
            "  -w SEC          warm-up before measuring [0.5]\n"
            "  -T N            client threads [1]\n"
            "  -n NAME         label printed in the result line [ws]\n"
            "  --binary|--text message type [binary]; text is ASCII words\n"
            "  --deflate       offer permessage-deflate (client_no_context_takeover)\n"
            "  --latency       1 connection, 1 message in flight\n"
            "  --handshakes    measure upgrades/s (connect, upgrade, close, repeat)\n"
            "  --idle N        hold N idle connections; with --pid report server RSS growth\n"
            "  --pid PID       server process for --idle RSS readings\n"
            "  --hold SEC      settle time before each RSS reading [1]\n"
            "  --no-idle-msg   --idle: skip the one message per connection\n"
            "  --conc N        max pending connects/handshakes per thread [256]\n"
            "  --timeout SEC   connect/handshake timeout [10]\n"
            "  --verify-full   compare every echoed byte (default: length, opcode and\n"
            "                  the first and last 64 bytes)\n"
            "  --ciphersuites L  wss://: TLS 1.3 suites offered, in preference order (OpenSSL\n"
            "                  names; servers that follow the client's order pick the first)\n");
}

int main(int argc, char **argv)
{
    enum {
        O_BIN = 256,
        O_TEXT,
        O_DEFL,
        O_LAT,
        O_HS,
        O_IDLE,
        O_PID,
        O_HOLD,
        O_NOIM,
        O_CONC,
        O_TMO,
        O_VF,
        O_CS
    };
    static const struct option lo[] = {{"binary", no_argument, 0, O_BIN},
                                       {"text", no_argument, 0, O_TEXT},
                                       {"deflate", no_argument, 0, O_DEFL},
                                       {"latency", no_argument, 0, O_LAT},
                                       {"handshakes", no_argument, 0, O_HS},
                                       {"idle", required_argument, 0, O_IDLE},
                                       {"pid", required_argument, 0, O_PID},
                                       {"hold", required_argument, 0, O_HOLD},
                                       {"no-idle-msg", no_argument, 0, O_NOIM},
                                       {"conc", required_argument, 0, O_CONC},
                                       {"timeout", required_argument, 0, O_TMO},
                                       {"verify-full", no_argument, 0, O_VF},
                                       {"ciphersuites", required_argument, 0, O_CS},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int o, latency = 0;
    while ((o = getopt_long(argc, argv, "c:k:s:t:w:T:n:h", lo, NULL)) != -1) {
        switch (o) {
        case 'c':
            C.conns = atoi(optarg);
            break;
        case 'k':
            C.inflight = atoi(optarg);
            break;
        case 's':
            C.size = parse_size(optarg);
            break;
        case 't':
            C.duration = atof(optarg);
            break;
        case 'w':
            C.warmup = atof(optarg);
            break;
        case 'T':
            C.threads = atoi(optarg);
            break;
        case 'n':
            C.name = optarg;
            break;
        case O_BIN:
            C.binary = 1;
            break;
        case O_TEXT:
            C.binary = 0;
            break;
        case O_DEFL:
            C.deflate = 1;
            break;
        case O_LAT:
            latency = 1;
            break;
        case O_HS:
            C.mode = M_HANDSHAKE;
            break;
        case O_IDLE:
            C.mode = M_IDLE;
            C.conns = atoi(optarg);
            break;
        case O_PID:
            C.pid = atol(optarg);
            break;
        case O_HOLD:
            C.hold = atof(optarg);
            break;
        case O_NOIM:
            C.idle_msg = 0;
            break;
        case O_CONC:
            C.conc = atoi(optarg);
            break;
        case O_TMO:
            C.timeout = atof(optarg);
            break;
        case O_VF:
            C.verify_full = 1;
            break;
        case O_CS:
            C.ciphersuites = optarg;
            break;
        default:
            usage();
            return o == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        usage();
        return 2;
    }
    /* ws[s]://HOST:PORT/PATH, HOST an IPv4 literal or localhost */
    const char *url = argv[optind];
    int tls = !strncmp(url, "wss://", 6);
    if (strncmp(url, "ws://", 5) && !tls) {
        fprintf(stderr, "ws_load: only ws:// and wss:// URLs\n");
        return 2;
    }
    const char *hp = url + (tls ? 6 : 5), *slash = strchr(hp, '/');
    size_t hpl = slash ? (size_t)(slash - hp) : strlen(hp);
    static char pathbuf[512];
    snprintf(pathbuf, sizeof(pathbuf), "%s", slash ? slash : "/");
    C.path = pathbuf;
    if (hpl >= sizeof(C.hostport)) {
        fprintf(stderr, "ws_load: bad URL\n");
        return 2;
    }
    memcpy(C.hostport, hp, hpl);
    C.hostport[hpl] = 0;
    char host[128];
    snprintf(host, sizeof(host), "%s", C.hostport);
    char *colon = strrchr(host, ':');
    int port = tls ? 443 : 80;
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    /* SNI: a name, never an address (RFC 6066 §3) */
    snprintf(C.sni, sizeof(C.sni), "%s",
             strspn(host, "0123456789.") == strlen(host) ? "localhost" : host);
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof(host), "127.0.0.1");
    if (tls) {
        static const unsigned char alpn[] = "\x08http/1.1";
        C.tls = SSL_CTX_new(TLS_client_method());
        if (!C.tls || !SSL_CTX_set_min_proto_version(C.tls, TLS1_2_VERSION) ||
            SSL_CTX_set_alpn_protos(C.tls, alpn, sizeof(alpn) - 1) != 0 ||
            (C.ciphersuites && !SSL_CTX_set_ciphersuites(C.tls, C.ciphersuites))) {
            fprintf(stderr, "ws_load: cannot set up TLS\n");
            return 1;
        }
        SSL_CTX_set_verify(C.tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(C.tls,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_options(C.tls, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_session_cache_mode(C.tls, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_read_ahead(C.tls, 1);
    }
    C.addr.sin_family = AF_INET;
    C.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &C.addr.sin_addr) != 1) {
        fprintf(stderr, "ws_load: host must be an IPv4 address: %s\n", host);
        return 2;
    }
    if (latency) {
        C.conns = 1;
        C.inflight = 1;
        C.threads = 1;
    }
    if (C.conns < 1 || C.inflight < 1 || C.threads < 1 || C.conc < 1) {
        usage();
        return 2;
    }
    if (C.mode != M_THROUGHPUT)
        C.inflight = 1;
    if (C.threads > C.conns)
        C.threads = C.conns;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)C.conns + 64)
        fprintf(stderr, "ws_load: warning: fd limit %llu < %d connections\n",
                (unsigned long long)rl.rlim_cur, C.conns);

    make_payloads();

    long rss0 = C.pid ? read_rss_kb(C.pid) : -1, rss_open = -1, rss_msg = -1;
    T = calloc((size_t)C.threads, sizeof(thr));
    atomic_store(&g_phase, C.mode == M_HANDSHAKE ? 0 : PH_CONNECT);
    g_t_ms = g_t_me = UINT64_MAX;
    for (int i = 0; i < C.threads; i++) {
        thr *t = &T[i];
        t->id = i;
        t->rng = 0x1234567887654321ull ^ ((uint64_t)i << 32) ^ now_ns();
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->n = C.conns / C.threads + (i < C.conns % C.threads);
        t->c = calloc((size_t)t->n, sizeof(conn));
        t->scratch = malloc(SCRATCH);
        t->iout = malloc(INFL_OUT);
        t->wrec = malloc(RECORD);
        t->lat = malloc(LAT_CAP * sizeof(uint32_t));
        if (!t->c || !t->scratch || !t->iout || !t->wrec || !t->lat) {
            fprintf(stderr, "ws_load: out of memory\n");
            return 1;
        }
        for (int j = 0; j < t->n; j++) {
            t->c[j].t = t;
            t->c[j].fd = -1;
            t->c[j].idx = j;
            t->c[j].sent_t = calloc((size_t)C.inflight, sizeof(uint64_t));
            t->c[j].sent_v = calloc((size_t)C.inflight, 1);
        }
    }
    for (int i = 0; i < C.threads; i++)
        pthread_create(&T[i].th, NULL, thr_main, &T[i]);

    uint64_t t0 = now_ns();
    double conn_s = 0;
    if (C.mode != M_HANDSHAKE) {
        /* wait for every connection to open (or fail) */
        uint64_t limit = (uint64_t)((C.timeout + 5 + C.conns / 1000.0) * 1e9);
        while (SUM(opened) + SUM(failed) < (uint64_t)C.conns && now_ns() - t0 < limit)
            sleep_s(0.005);
        conn_s = (double)(now_ns() - t0) / 1e9;
        if (SUM(opened) == 0) {
            fprintf(stderr, "ws_load: no connection could be opened\n");
            atomic_store(&g_phase, PH_STOP);
            g_stop_deadline = now_ns() + 1000000000ull;
            for (int i = 0; i < C.threads; i++)
                pthread_join(T[i].th, NULL);
            printf("result name=%s mode=%s conns=%d open=0 errors=%llu\n", C.name,
                   C.mode == M_IDLE ? "idle" : "throughput", C.conns,
                   (unsigned long long)(SUM(errs[E_CONNECT]) + SUM(errs[E_HANDSHAKE]) +
                                        SUM(errs[E_TIMEOUT])));
            return 1;
        }
    }
    uint64_t opened = SUM(opened);
    if (C.mode == M_IDLE) {
        sleep_s(C.hold);
        if (C.pid)
            rss_open = read_rss_kb(C.pid);
        if (C.idle_msg) {
            g_t_ms = now_ns();
            g_t_me = UINT64_MAX;
            atomic_store(&g_phase, PH_MSG);
            uint64_t t1 = now_ns();
            while (SUM(idle_echoed) < opened && now_ns() - t1 < (uint64_t)(C.timeout * 1e9))
                sleep_s(0.005);
            g_t_me = now_ns();
            sleep_s(C.hold);
            if (C.pid)
                rss_msg = read_rss_kb(C.pid);
        }
    } else {
        g_t_ms = now_ns() + (uint64_t)(C.warmup * 1e9);
        g_t_me = g_t_ms + (uint64_t)(C.duration * 1e9);
        atomic_store(&g_phase, PH_RUN);
        uint64_t now = now_ns();
        if (g_t_me > now)
            sleep_s((double)(g_t_me - now) / 1e9);
    }
    uint64_t t_end = now_ns();
    g_stop_deadline = t_end + 3000000000ull;
    atomic_store(&g_phase, PH_STOP);
    for (int i = 0; i < C.threads; i++)
        pthread_join(T[i].th, NULL);

    /* aggregate */
    size_t nl = 0;
    for (int i = 0; i < C.threads; i++)
        nl += T[i].nlat;
    uint32_t *lat = malloc((nl ? nl : 1) * sizeof(uint32_t));
    nl = 0;
    for (int i = 0; i < C.threads; i++) {
        memcpy(lat + nl, T[i].lat, T[i].nlat * sizeof(uint32_t));
        nl += T[i].nlat;
    }
    qsort(lat, nl, sizeof(uint32_t), cmp_u32);
    uint64_t errs = 0;
    char errbuf[256] = "";
    size_t eo = 0;
    for (int e = 0; e < E_N; e++) {
        uint64_t v = 0;
        for (int i = 0; i < C.threads; i++)
            v += T[i].errs[e];
        errs += v;
        if (v)
            eo += (size_t)snprintf(errbuf + eo, sizeof(errbuf) - eo, " err_%s=%llu", err_names[e],
                                   (unsigned long long)v);
    }
    double win = (double)(g_t_me - g_t_ms) / 1e9;
    const char *typ = C.binary ? "binary" : "text";
    if (C.mode == M_HANDSHAKE) {
        uint64_t hs = SUM(hs_done);
        printf("result name=%s mode=handshake conns=%d deflate=%s pmd=%d duration_s=%.2f "
               "handshakes=%llu hs_per_s=%.0f p50_us=%.1f p99_us=%.1f errors=%llu%s%s\n",
               C.name, C.conns, C.deflate ? "offered" : "off", SUM(pmd_conns) > 0, win,
               (unsigned long long)hs, (double)hs / win, pct(lat, nl, 0.5), pct(lat, nl, 0.99),
               (unsigned long long)errs, errbuf, g_tls_desc);
    } else if (C.mode == M_IDLE) {
        double d_open =
            rss_open >= 0 && rss0 >= 0 ? (double)(rss_open - rss0) * 1024 / (double)opened : -1;
        double d_msg =
            rss_msg >= 0 && rss0 >= 0 ? (double)(rss_msg - rss0) * 1024 / (double)opened : -1;
        printf("result name=%s mode=idle conns=%d open=%llu deflate=%s pmd_conns=%llu "
               "connect_s=%.2f storm_hs_per_s=%.0f msg_size=%zu echoed=%llu rss_before_kb=%ld "
               "rss_open_kb=%ld rss_msg_kb=%ld per_conn_open_b=%.0f per_conn_msg_b=%.0f "
               "errors=%llu%s%s\n",
               C.name, C.conns, (unsigned long long)opened, C.deflate ? "offered" : "off",
               (unsigned long long)SUM(pmd_conns), conn_s, conn_s > 0 ? (double)opened / conn_s : 0,
               C.idle_msg ? C.size : 0, (unsigned long long)SUM(idle_echoed), rss0, rss_open,
               rss_msg, d_open, d_msg, (unsigned long long)errs, errbuf, g_tls_desc);
    } else {
        uint64_t msgs = SUM(msgs), bytes = SUM(bytes);
        printf("result name=%s mode=%s conns=%d inflight=%d size=%zu type=%s deflate=%s "
               "pmd_conns=%llu duration_s=%.2f msgs=%llu msgs_per_s=%.0f mb_per_s=%.2f "
               "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f stalled=%llu errors=%llu%s%s\n",
               C.name, latency ? "latency" : "throughput", C.conns, C.inflight, C.size, typ,
               C.deflate ? "offered" : "off", (unsigned long long)SUM(pmd_conns), win,
               (unsigned long long)msgs, (double)msgs / win, (double)bytes / win / 1e6,
               pct(lat, nl, 0.5), pct(lat, nl, 0.99), pct(lat, nl, 0.999),
               nl ? lat[nl - 1] / 1000.0 : 0, (unsigned long long)SUM(stalled),
               (unsigned long long)errs, errbuf, g_tls_desc);
    }
    uint64_t forced = SUM(forced);
    if (forced)
        fprintf(stderr, "ws_load: %llu connection(s) did not finish the close handshake\n",
                (unsigned long long)forced);
    (void)t_end;
    fflush(stdout);
    return 0;
}
