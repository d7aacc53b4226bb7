/* sy_server_free on a server that is still running (the caller skipped sy_server_stop and
 * sy_server_wait) stops it and waits for its workers first: before, it freed the listeners'
 * counters and the loops under worker threads still flushing a connection (a use after free
 * that ASan reports, and epoll descriptors closed under a running loop). */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static void on_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

TEST(free_while_serving_a_connection)
{
    for (int round = 0; round < 20; round++) {
        sy_server *srv = NULL;
        sy_ws_opts *o = NULL;
        CHECK_EQ(sy_server_new(&srv), 0);
        CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
        CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 2), 0);
        CHECK_EQ(sy_ws_opts_new(&o), 0);
        sy_ws_cbs cbs = {.on_message = on_message};
        sy_ws_opts_set_cbs(o, &cbs, NULL);
        sy_route *r = sy_server_route(srv, NULL, "/e", SY_ROUTE_EXACT, NULL, NULL);
        CHECK(r != NULL);
        CHECK_EQ(sy_route_websocket(r, o), 0);
        sy_ws_opts_free(o);
        CHECK_EQ(sy_server_start(srv), 0);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)sy_server_port(srv, 0))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        /* a request the server is still answering (or has just answered) when it is freed */
        static const char req[] = "GET /e HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n";
        CHECK_EQ(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
        if (round & 1)
            close(fd); /* the close may race with the free */
        sy_server_free(srv);
        if (!(round & 1))
            close(fd);
    }
}

int main(void)
{
    RUN(free_while_serving_a_connection);
    return sy_t_summary();
}
