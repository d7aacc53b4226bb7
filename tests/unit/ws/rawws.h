/* A raw WebSocket client for loopback tests: blocking socket with a receive timeout, a hand-
 * written opening handshake, frames built byte by byte (so a test can interleave control
 * frames inside a fragmented message, or send invalid UTF-8), and the server's frames read
 * back with the library's own parser. Header-only: each test binary includes it once. */
#ifndef SY_TEST_RAWWS_H
#define SY_TEST_RAWWS_H

#include "harness.h"
#include "ws/frame.h"
#include "ws/mask.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

/* Connect to 127.0.0.1:port, send the handshake for path (ext: a Sec-WebSocket-Extensions
 * value or NULL) and read the response head into head (NUL-terminated). Returns the socket,
 * or -1. Bytes that follow the head are kept in *extra (cap 4096) for raw_read_msgs. */
/* Seconds a read may wait (a server that never answers fails the test, it does not hang it). */
static int raw_timeout_s = 10;
/* Non-zero: the client socket's SO_RCVBUF (a small one makes the server's sends block). */
static int raw_rcvbuf;

typedef struct raw_conn {
    int fd;
    char head[2048];
    uint8_t extra[4096];
    size_t extra_len;
} raw_conn;

static inline int raw_connect(raw_conn *rc, int port, const char *path, const char *ext)
{
    memset(rc, 0, sizeof(*rc));
    rc->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rc->fd < 0)
        return -1;
    struct timeval tv = {raw_timeout_s, 0};
    setsockopt(rc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(rc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (raw_rcvbuf)
        setsockopt(rc->fd, SOL_SOCKET, SO_RCVBUF, &raw_rcvbuf, sizeof(raw_rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(rc->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    char req[1024];
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                 path, ext ? "Sec-WebSocket-Extensions: " : "", ext ? ext : "", ext ? "\r\n" : "");
    if (write(rc->fd, req, (size_t)n) != n)
        return -1;
    size_t got = 0;
    char buf[sizeof(rc->head) + sizeof(rc->extra)];
    for (;;) {
        ssize_t r = read(rc->fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t hl = (size_t)(end + 4 - buf);
            if (hl >= sizeof(rc->head))
                return -1;
            memcpy(rc->head, buf, hl);
            rc->head[hl] = 0;
            rc->extra_len = got - hl;
            memcpy(rc->extra, buf + hl, rc->extra_len);
            return rc->fd;
        }
        if (got >= sizeof(buf) - 1)
            return -1;
    }
}

static inline void raw_close(raw_conn *rc)
{
    if (rc->fd >= 0)
        close(rc->fd);
    rc->fd = -1;
}

/* Append one masked client frame to buf (at *len; room for payload + 14). */
static inline void raw_frame(uint8_t *buf, size_t *len, uint8_t opcode, int fin, uint8_t rsv,
                             const void *payload, size_t plen)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    *len += sy_ws_frame_header(buf + *len, opcode, fin, rsv, plen, key);
    sy_ws_mask_copy(buf + *len, payload, plen, key, 0);
    *len += plen;
}

static inline int raw_send(raw_conn *rc, const void *buf, size_t len)
{
    return write(rc->fd, buf, len) == (ssize_t)len ? 0 : -1;
}

/* What the server sent, as whole messages. */
typedef struct raw_msg {
    int opcode;
    int compressed;
    size_t len;
    uint8_t head[64]; /* the first bytes (NUL-terminated when shorter) */
} raw_msg;

typedef struct raw_result {
    raw_msg msgs[16];
    int nmsgs;
    int close_code; /* 0 = no close frame before EOF/timeout */
} raw_result;

/* Read and parse server frames until a close frame, EOF, the socket timeout, or (stop_after
 * > 0) that many messages. Bytes read past the last message are kept for the next call. */
static inline void raw_read_msgs_with(raw_conn *rc, raw_result *res, int stop_after,
                                      sy_ws_parser *pp)
{
    static uint8_t buf[1 << 20];
    size_t have = rc->extra_len, off = 0;
    memcpy(buf, rc->extra, have);
    rc->extra_len = 0;
    memset(res, 0, sizeof(*res));
    raw_msg cur = {0};
    for (;;) {
        while (off < have) {
            sy_ws_event ev;
            uint16_t code = 0;
            const char *detail = NULL;
            ssize_t n = sy_ws_parse(pp, buf + off, have - off, &ev, &code, &detail);
            if (n < 0)
                return;
            off += (size_t)n;
            if (ev.type == SY_WS_EV_CLOSE) {
                res->close_code = ev.close_code;
                return;
            }
            if (ev.type == SY_WS_EV_NONE && n == 0)
                break;
            if (ev.type != SY_WS_EV_DATA)
                continue;
            if (ev.msg_start) {
                memset(&cur, 0, sizeof(cur));
                cur.opcode = ev.opcode;
                cur.compressed = ev.compressed;
            }
            if (cur.len < sizeof(cur.head) - 1) {
                size_t k = SY_MIN(ev.len, sizeof(cur.head) - 1 - cur.len);
                memcpy(cur.head + cur.len, ev.data, k);
            }
            cur.len += ev.len;
            if (ev.msg_end && res->nmsgs < (int)SY_ARRAY_LEN(res->msgs))
                res->msgs[res->nmsgs++] = cur;
            if (ev.msg_end && stop_after && res->nmsgs == stop_after &&
                have - off <= sizeof(rc->extra)) {
                memcpy(rc->extra, buf + off, have - off);
                rc->extra_len = have - off;
                return;
            }
        }
        /* keep the unparsed tail (a partial header) at the front */
        memmove(buf, buf + off, have - off);
        have -= off;
        off = 0;
        if (have == sizeof(buf))
            return;
        ssize_t r = read(rc->fd, buf + have, sizeof(buf) - have);
        if (r <= 0)
            return;
        have += (size_t)r;
    }
}

static inline void raw_read_msgs(raw_conn *rc, raw_result *res, int stop_after)
{
    sy_ws_parser p;
    sy_ws_parser_init(&p, 0, SY_WS_RSV1);
    raw_read_msgs_with(rc, res, stop_after, &p);
    sy_ws_parser_release(&p);
}

#endif
