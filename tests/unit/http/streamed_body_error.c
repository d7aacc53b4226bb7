/* A handler that streams a request body (SY_ROUTE_STREAM_BODY) holds the request until its
 * final call, which it makes when the body ends or fails. When the server itself answers the
 * request with an error while the body is still arriving (408 for a stalled body, 400 for a
 * malformed chunked body), the handler must still be told (err < 0), or it never makes its
 * final call and the request, its state and a reference on the loop leak for every such
 * client (the hostile suite's slow-body case found it under LeakSanitizer). */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static atomic_int body_err;   /* the err the body callback got at its last call */
static atomic_int body_calls; /* calls with err < 0 */
static atomic_int final_rc;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_body(sy_req *req, const void *data, size_t len, int end, int err, void *ud)
{
    (void)data;
    (void)len;
    (void)ud;
    if (err < 0) {
        atomic_store(&body_err, err);
        atomic_store(&final_rc, sy_resp_end(req)); /* the final call, as the API asks */
        atomic_fetch_add(&body_calls, 1);
        return;
    }
    if (end)
        sy_respond(req, 200, "text/plain", "done\n", 5);
}

static void handler(sy_req *req, void *ud)
{
    (void)ud;
    sy_req_on_body(req, on_body, NULL);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Everything until the server closes (or 5 s). */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got >= cap - 1)
            break;
    }
    buf[got] = 0;
    return got;
}

/* Send req, expect `status` and then the handler's error call. */
static int error_reaches_handler(int port, const char *req, const char *status)
{
    atomic_store(&body_calls, 0);
    atomic_store(&body_err, 0);
    int fd = connect_to(port);
    if (fd < 0)
        return 0;
    if (send(fd, req, strlen(req), 0) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    char buf[4096];
    read_all(fd, buf, sizeof(buf));
    close(fd);
    if (strstr(buf, status) != buf) {
        printf("  got %.40s\n", buf);
        return 0;
    }
    for (int i = 0; i < 2000 && !atomic_load(&body_calls); i++)
        sleep_ms(1);
    return atomic_load(&body_calls) == 1 && atomic_load(&body_err) < 0;
}

TEST(server_error_during_a_streamed_body_reaches_the_handler)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_BODY_TIMEOUT_MS, 200), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "POST", "/up", SY_ROUTE_STREAM_BODY, handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int port = sy_server_port(srv, 0);
    /* a stalled body: 408 */
    CHECK(error_reaches_handler(port,
                                "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                                "only ten b",
                                "HTTP/1.1 408"));
    /* a malformed chunked body: 400 */
    CHECK(error_reaches_handler(port,
                                "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\nzz\r\n",
                                "HTTP/1.1 400"));
    /* the response was the server's: the handler's final call only lets go */
    CHECK(atomic_load(&final_rc) == SY_ESTATE || atomic_load(&final_rc) == SY_ECLOSED);
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv); /* LeakSanitizer: no request left behind */
}

int main(void)
{
    RUN(server_error_during_a_streamed_body_reaches_the_handler);
    return sy_t_summary();
}
