/* Accepted connections have TCP_NODELAY (responses must not wait for Nagle's algorithm): set
 * once on the listener and inherited where the kernel does so, else set on each. Checked
 * from inside the handler on the server's own socket, for several connections in a row. */
#include "harness.h"
#include "http/req.h"
#include "net/conn.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static void handler(sy_req *req, void *ud)
{
    (void)ud;
    int v = 0;
    socklen_t vl = sizeof(v);
    int ok = getsockopt(req->conn->io.fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v;
    sy_respond(req, 200, "text/plain", ok ? "nodelay" : "nagle!!", 7);
}

static int fetch(int port, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    static const char rq[] = "GET /n HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(fd, rq, sizeof(rq) - 1, 0) != (ssize_t)(sizeof(rq) - 1))
        return -1;
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = 0;
    close(fd);
    return 0;
}

TEST(accepted_connections_have_nodelay)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "GET", "/n", SY_ROUTE_EXACT, handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int port = sy_server_port(srv, 0);
    int good = 0;
    for (int i = 0; i < 3; i++) {
        char buf[1024];
        if (fetch(port, buf, sizeof(buf)) == 0 && strstr(buf, "\r\n\r\nnodelay"))
            good++;
    }
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    CHECK_EQ(good, 3);
}

int main(void)
{
    RUN(accepted_connections_have_nodelay);
    return sy_t_summary();
}
