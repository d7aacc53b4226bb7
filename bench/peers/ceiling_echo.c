/* ceiling_echo: a featureless WebSocket echo server, the ceiling of bench/headline.sh.
 *   cc -O2 -Wall -Wextra -Werror -o ceiling_echo ceiling_echo.c -lcrypto
 *   (ws_compare.sh adds -DCEILING_SY_MASK -Isrc src/ws/mask.c: switchyard's unmasking)
 *   ceiling_echo PORT
 *
 * One thread, one epoll loop (level-triggered), listening on 127.0.0.1:PORT. It does the
 * least a WebSocket echo can do, so that what a real server spends beyond it shows:
 *
 * - Upgrade: the request is read until its blank line (8 KiB at most), Sec-WebSocket-Key
 *   is found and answered with 101 and Sec-WebSocket-Accept (SHA-1 + base64 by libcrypto).
 *   Nothing else is checked: method, path, version, Upgrade and Connection are not read,
 *   and no extension is negotiated.
 * - Frames are echoed as a stream, frame by frame, never as messages: for each client
 *   frame the server writes a frame with the same FIN bit, opcode (Ping becomes Pong) and
 *   length, and its payload is unmasked in place in the read buffer as it arrives and sent
 *   on. A fragmented message comes back in the same fragments; nothing is reassembled,
 *   text is not checked for UTF-8, no length is limited, RSV bits and opcodes are not
 *   validated and unmasked client frames are echoed as they are.
 * - Every complete frame of one read(2) is answered by one writev(2) (small frames are
 *   moved together in the read buffer so they share an iovec). When the socket takes
 *   less, the rest is copied aside, reading stops (EPOLLIN off) and EPOLLOUT drains it:
 *   the only per-connection buffer, and only while the peer is slow.
 * - Close: the Close frame is echoed, then the write side is shut and the socket closed
 *   at the peer's EOF; no timeouts anywhere.
 *
 * The read buffer (256 KiB) is shared by all connections: an idle connection costs one
 * small struct plus the kernel's socket (and an upgrade request that arrives in pieces
 * is kept aside until it is whole). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF (256u << 10) /* the read buffer */
#define HS_MAX 8192       /* the longest upgrade request */
#define NIOV 1024         /* iovecs per writev (IOV_MAX) */
#define SMALL 1024        /* output pieces up to this size are moved next to the previous one */

struct conn {
    int fd;
    unsigned char upgraded; /* 101 sent: bytes are frames */
    unsigned char inpay;    /* inside a frame's payload (left bytes to come) */
    unsigned char masked;   /* the current frame has a mask key */
    unsigned char is_close; /* the current frame is a Close */
    unsigned char closing;  /* Close echoed: shut the write side once the output is out */
    unsigned char shut;     /* write side shut: discard input until EOF */
    unsigned char dead;     /* a write failed */
    unsigned char hlen;     /* bytes of a frame header split across reads, in hdr */
    unsigned char moff;     /* mask phase: payload bytes seen mod 4 */
    unsigned char hdr[14];
    unsigned char ohdr[10]; /* the server header for a split client header */
    unsigned char mask[4];
    uint64_t left;                       /* payload bytes of the current frame still to come */
    char *hs;                            /* an upgrade request that came in pieces */
    size_t hs_len;                       /* bytes in hs */
    char *pend;                          /* output the socket did not take */
    size_t pend_off, pend_len, pend_cap; /* [pend_off, pend_len) is still to be written */
};

static unsigned char rbuf[RBUF];
static struct iovec iov[NIOV]; /* the output of the read being handled */
static int niov;
static unsigned char *oend; /* end of the last iovec if it points into rbuf, else NULL */
static int ep;

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void close_conn(struct conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c->hs);
    free(c->pend);
    free(c);
}

/* Writes iov[0..niov), or queues it behind output already waiting. */
static void flush_out(struct conn *c)
{
    size_t total = 0, done = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    if (!total || c->dead) {
        niov = 0;
        oend = NULL;
        return;
    }
    if (c->pend_len == c->pend_off) {
        ssize_t n;
        do
            n = writev(c->fd, iov, niov);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c->dead = 1;
            n = 0;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done < total && !c->dead) {
        size_t rest = total - done, have = c->pend_len - c->pend_off;
        if (c->pend_off) {
            memmove(c->pend, c->pend + c->pend_off, have);
            c->pend_off = 0;
            c->pend_len = have;
        }
        if (have + rest > c->pend_cap) {
            size_t cap = c->pend_cap ? c->pend_cap : 65536;
            while (cap < have + rest)
                cap *= 2;
            char *p = realloc(c->pend, cap);
            if (!p) {
                c->dead = 1;
                goto out;
            }
            c->pend = p;
            c->pend_cap = cap;
        }
        size_t skip = done;
        for (int i = 0; i < niov; i++) {
            size_t l = iov[i].iov_len;
            if (skip >= l) {
                skip -= l;
                continue;
            }
            memcpy(c->pend + c->pend_len, (char *)iov[i].iov_base + skip, l - skip);
            c->pend_len += l - skip;
            skip = 0;
        }
    }
out:
    niov = 0;
    oend = NULL;
}

/* Output bytes that live outside rbuf (a header kept across reads, the 101). */
static void out_ext(struct conn *c, void *p, size_t n)
{
    if (niov == NIOV)
        flush_out(c);
    iov[niov].iov_base = p;
    iov[niov++].iov_len = n;
    oend = NULL;
}

/* Output bytes of rbuf at or after oend: joined to the previous iovec when adjacent, moved
 * next to it when small (the bytes in between are consumed input), else a new iovec. */
static void out_rbuf(struct conn *c, unsigned char *p, size_t n)
{
    if (!n)
        return;
    if (oend == p || (oend && n <= SMALL)) {
        if (oend != p)
            memmove(oend, p, n);
        iov[niov - 1].iov_len += n;
        oend += n;
        return;
    }
    if (niov == NIOV)
        flush_out(c);
    iov[niov].iov_base = p;
    iov[niov++].iov_len = n;
    oend = p + n;
}

/* Unmasking is the one step a real server cannot skip either, so the ceiling does it with
 * switchyard's own routine (src/ws/mask.c: AVX2 where the CPU has it) when built with it
 * (-DCEILING_SY_MASK, as ws_compare.sh does): what the ceiling saves is then only what a
 * server does beyond echoing bytes. Without it, 64-bit words. */
#ifdef CEILING_SY_MASK
unsigned sy_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], unsigned offset);
static void unmask(struct conn *c, unsigned char *p, size_t n)
{
    if (c->masked && n)
        c->moff = (unsigned char)sy_ws_mask(p, n, c->mask, c->moff);
}
#else
static void unmask(struct conn *c, unsigned char *p, size_t n)
{
    if (!c->masked || !n)
        return;
    unsigned char k[8];
    for (int i = 0; i < 8; i++)
        k[i] = c->mask[(c->moff + i) & 3];
    uint64_t k64;
    memcpy(&k64, k, 8);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        w[0] ^= k64;
        w[1] ^= k64;
        w[2] ^= k64;
        w[3] ^= k64;
        memcpy(p + i, w, 32);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k64;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
    c->moff = (unsigned char)((c->moff + n) & 3);
}
#endif

/* The header length of a client frame from its first two bytes. */
static size_t hdr_need(const unsigned char *h)
{
    unsigned l7 = h[1] & 0x7f;
    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* Starts the frame whose complete header is h; writes the server header to sh and
 * returns its length. */
static size_t start_frame(struct conn *c, const unsigned char *h, unsigned char *sh)
{
    unsigned l7 = h[1] & 0x7f, op = h[0] & 0x0f;
    size_t lb = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
    uint64_t len = l7;
    if (lb) {
        len = 0;
        for (size_t i = 0; i < lb; i++)
            len = len << 8 | h[2 + i];
    }
    c->masked = (h[1] & 0x80) != 0;
    if (c->masked)
        memcpy(c->mask, h + 2 + lb, 4);
    c->moff = 0;
    c->left = len;
    c->inpay = 1;
    c->is_close = op == 0x8;
    sh[0] = op == 0x9 ? (unsigned char)((h[0] & 0xf0) | 0xa) : h[0];
    sh[1] = (unsigned char)l7;
    memcpy(sh + 2, h + 2, lb);
    return 2 + lb;
}

/* Echoes the frames (and pieces of frames) in [p, end). */
static void on_frames(struct conn *c, unsigned char *p, unsigned char *end)
{
    while (p < end && !c->closing) {
        if (!c->inpay) {
            size_t avail = (size_t)(end - p);
            if (!c->hlen && avail >= 2 && avail >= hdr_need(p)) {
                /* the whole header is here: the server header goes in its last bytes */
                size_t need = hdr_need(p);
                unsigned char sh[10];
                size_t shl = start_frame(c, p, sh);
                memcpy(p + need - shl, sh, shl);
                out_rbuf(c, p + need - shl, shl);
                p += need;
            } else {
                /* collect a split header in hdr */
                size_t need = c->hlen >= 2 ? hdr_need(c->hdr) : 2;
                while (c->hlen < need && p < end) {
                    c->hdr[c->hlen++] = *p++;
                    if (c->hlen == 2)
                        need = hdr_need(c->hdr);
                }
                if (c->hlen < need)
                    return;
                c->hlen = 0;
                out_ext(c, c->ohdr, start_frame(c, c->hdr, c->ohdr));
            }
        }
        size_t take = (size_t)(end - p);
        if (take > c->left)
            take = (size_t)c->left;
        unmask(c, p, take);
        out_rbuf(c, p, take);
        p += take;
        c->left -= take;
        if (!c->left) {
            c->inpay = 0;
            if (c->is_close)
                c->closing = 1; /* whatever follows a Close is dropped */
        }
    }
}

static const char accept_fmt[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: %s\r\n\r\n";
static char resp[sizeof(accept_fmt) + 64];

/* Answers the complete upgrade request [req, req + hlen); 0, or -1 to close. */
static int answer(struct conn *c, const char *req, size_t hlen)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char *key = NULL, *p = req, *end = req + hlen;
    size_t klen = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            break;
        if (eol - p > 18 && !strncasecmp(p, "sec-websocket-key:", 18)) {
            key = p + 18;
            while (key < eol && (*key == ' ' || *key == '\t'))
                key++;
            klen = (size_t)(eol - key);
            while (klen && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
                klen--;
            break;
        }
        p = eol + 2;
    }
    if (!key || !klen || klen > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        (void)!write(c->fd, bad, sizeof(bad) - 1);
        return -1;
    }
    char kg[64 + sizeof(guid)];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char b64[32];
    memcpy(kg, key, klen);
    memcpy(kg + klen, guid, sizeof(guid) - 1);
    if (!EVP_Digest(kg, klen + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL))
        return -1;
    EVP_EncodeBlock(b64, md, (int)mdlen);
    int rl = snprintf(resp, sizeof(resp), accept_fmt, (const char *)b64);
    out_ext(c, resp, (size_t)rl);
    return 0;
}

static void on_read(struct conn *c)
{
    ssize_t n;
    if (!c->upgraded) {
        /* the request is read into rbuf, and kept in hs only while it is incomplete */
        size_t have = c->hs_len;
        if (have)
            memcpy(rbuf, c->hs, have);
        do
            n = read(c->fd, rbuf + have, HS_MAX - have);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            goto close;
        have += (size_t)n;
        unsigned char *e = memmem(rbuf, have, "\r\n\r\n", 4);
        if (!e) {
            if (have == HS_MAX || (!c->hs && !(c->hs = malloc(HS_MAX))))
                goto close;
            memcpy(c->hs, rbuf, have);
            c->hs_len = have;
            return;
        }
        size_t hlen = (size_t)(e + 4 - rbuf);
        free(c->hs);
        c->hs = NULL;
        c->hs_len = 0;
        niov = 0;
        oend = NULL;
        if (answer(c, (const char *)rbuf, hlen) < 0)
            goto close;
        c->upgraded = 1;
        on_frames(c, rbuf + hlen, rbuf + have); /* frames sent right behind the request */
        flush_out(c);
    } else {
        do
            n = read(c->fd, rbuf, RBUF);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            goto close;
        if (c->shut)
            return; /* after our Close: wait for the peer's EOF */
        niov = 0;
        oend = NULL;
        on_frames(c, rbuf, rbuf + n);
        flush_out(c);
    }
    if (c->dead)
        goto close;
    if (c->pend_len > c->pend_off) {
        set_events(c, EPOLLOUT); /* stop reading until the output is out */
        return;
    }
    if (c->closing && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
    }
    return;
close:
    close_conn(c);
}

static void on_write(struct conn *c)
{
    while (c->pend_len > c->pend_off) {
        ssize_t n = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close_conn(c);
            return;
        }
        c->pend_off += (size_t)n;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_off = c->pend_len = c->pend_cap = 0;
    if (c->closing && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
    }
    set_events(c, EPOLLIN);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("ceiling_echo: accept");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->fd = fd;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ceiling_echo PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* start-up costs paid before the first connection, so that RSS growth is per connection:
     * libcrypto loads its configuration and providers on first use, and rbuf is touched */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    if (!EVP_Digest("", 0, md, &mdlen, EVP_sha1(), NULL)) {
        fprintf(stderr, "ceiling_echo: no SHA-1 in libcrypto\n");
        return 1;
    }
    memset(rbuf, 0, sizeof(rbuf));
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("ceiling_echo: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0) {
        perror("ceiling_echo: epoll");
        return 1;
    }
    struct epoll_event ev[256];
    for (;;) {
        int n = epoll_wait(ep, ev, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("ceiling_echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (!c)
                on_accept(lfd);
            else if (ev[i].events & EPOLLOUT)
                on_write(c);
            else if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_read(c);
        }
    }
}
