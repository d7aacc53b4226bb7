/* An echo sends a message that arrived whole straight from the read buffer (by reference,
 * written or copied right after the read: sy__conn_write_input). These check what the peer
 * gets back byte for byte when the socket takes everything at once, and when it does not:
 * a client that stops reading while a burst of large messages arrives, so the server's
 * socket fills and the rest of each echo must be copied before the read buffer is reused
 * by the next read (the next messages of the burst, other connections). Sizes vary around
 * the by-reference threshold, and messages are split across reads by the burst. */
#include "rawws.h"
#include "switchyard.h"

#include <pthread.h>

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

static sy_server *start(int *port)
{
    sy_server *srv = NULL;
    sy_ws_opts *o = NULL;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        abort();
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, 0);
    sy_ws_opts_set(o, SY_WS_OPT_MAX_MESSAGE, 1 << 20);
    sy_ws_opts_set(o, SY_WS_OPT_HIGH_WATER, 64u << 20); /* buffer the whole burst */
    sy_ws_opts_set(o, SY_WS_OPT_MAX_BUFFER, 64u << 20);
    sy_ws_cbs cbs = {.on_message = srv_message};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/e", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        abort();
    sy_ws_opts_free(o);
    *port = sy_server_port(srv, 0);
    return srv;
}

#define NMSG 160

static size_t msg_size(int i)
{
    static const size_t sizes[] = {65536, 4095, 4096, 4097, 100000, 70000, 12345, 200};
    return sizes[i % 8] + (size_t)(i / 8);
}

static uint8_t msg_byte(int i, size_t off)
{
    return (uint8_t)(i * 131 + off * 7 + (off >> 9));
}

typedef struct writer {
    int fd;
    int ok;
} writer;

static void *write_burst(void *p)
{
    writer *w = p;
    static uint8_t frame[200000 + 14];
    static uint8_t payload[200000];
    w->ok = 1;
    for (int i = 0; i < NMSG; i++) {
        size_t n = msg_size(i), len = 0;
        for (size_t k = 0; k < n; k++)
            payload[k] = msg_byte(i, k);
        raw_frame(frame, &len, SY_WS_OP_BINARY, 1, 0, payload, n);
        if (write(w->fd, frame, len) != (ssize_t)len)
            w->ok = 0;
    }
    return NULL;
}

/* Reads NMSG echoes and checks every byte. Returns the number of good messages. */
static int read_echoes(int fd)
{
    static uint8_t buf[1 << 20];
    static uint8_t msg[200000];
    size_t have = 0, mlen = 0;
    int good = 0, n_msgs = 0;
    sy_ws_parser p;
    sy_ws_parser_init(&p, 0, 0);
    while (n_msgs < NMSG) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t off = 0;
        while (off < have && n_msgs < NMSG) {
            sy_ws_event ev;
            ssize_t k = sy_ws_parse(&p, buf + off, have - off, &ev, NULL, NULL);
            if (k < 0) {
                sy_ws_parser_release(&p);
                return -1;
            }
            off += (size_t)k;
            if (ev.type == SY_WS_EV_DATA) {
                if (mlen + ev.len <= sizeof(msg))
                    memcpy(msg + mlen, ev.data, ev.len);
                mlen += ev.len;
                if (ev.msg_end) {
                    int ok = mlen == msg_size(n_msgs);
                    for (size_t i = 0; ok && i < mlen; i++)
                        ok = msg[i] == msg_byte(n_msgs, i);
                    if (!ok)
                        printf("  echo %d differs (%zu bytes)\n", n_msgs, mlen);
                    good += ok;
                    n_msgs++;
                    mlen = 0;
                }
            }
            if (k == 0 && ev.type == SY_WS_EV_NONE)
                break;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    sy_ws_parser_release(&p);
    return good;
}

static int run(int port, int delay_ms)
{
    raw_conn rc;
    if (raw_connect(&rc, port, "/e", NULL) < 0 || !strstr(rc.head, " 101 "))
        return -1;
    writer w = {rc.fd, 0};
    pthread_t th;
    pthread_create(&th, NULL, write_burst, &w);
    if (delay_ms)
        usleep((useconds_t)delay_ms * 1000); /* the server's socket fills meanwhile */
    int good = read_echoes(rc.fd);
    pthread_join(th, NULL);
    raw_close(&rc);
    return w.ok ? good : -2;
}

TEST(echo_of_whole_messages_reading_promptly)
{
    int port;
    sy_server *srv = start(&port);
    int good = run(port, 0);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    CHECK_EQ(good, NMSG);
}

TEST(echo_of_whole_messages_while_the_client_does_not_read)
{
    int port;
    sy_server *srv = start(&port);
    raw_rcvbuf = 8192; /* a small window: the server's socket fills after a few messages */
    int good = run(port, 400);
    raw_rcvbuf = 0;
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    CHECK_EQ(good, NMSG);
}

int main(void)
{
    RUN(echo_of_whole_messages_reading_promptly);
    RUN(echo_of_whole_messages_while_the_client_does_not_read);
    return sy_t_summary();
}
