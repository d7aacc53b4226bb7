/* A handler that reads the request body as it arrives (SY_ROUTE_STREAM_BODY) holds the
 * request until the body ends. When the body fails instead (a malformed chunk: 400; a stall:
 * 408), the server answers by itself and closes; the handler must still learn it (one body
 * call with end=1 and err < 0) so that it makes its final call. It used to wait for ever, and
 * the request was never freed (found by fuzz/http1_server_fuzz.c). */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static atomic_int body_bytes, ended, end_err, final_rc, final_done;

static void on_body(sy_req *req, const void *data, size_t len, int end, int err, void *ud)
{
    (void)data;
    (void)ud;
    atomic_fetch_add(&body_bytes, (int)len);
    if (!end)
        return;
    atomic_store(&ended, 1);
    atomic_store(&end_err, err);
    if (err < 0)
        atomic_store(&final_rc, sy_resp_end(req));
    else
        atomic_store(&final_rc, sy_respond(req, 200, "text/plain", "ok\n", 3));
    atomic_store(&final_done, 1);
}

static void stream_handler(sy_req *req, void *ud)
{
    (void)ud;
    sy_req_on_body(req, on_body, NULL);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
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
    }
    buf[got] = 0;
    return got;
}

static sy_server *start(void)
{
    sy_server *srv;
    if (sy_server_new(&srv) || sy_server_set(srv, SY_OPT_WORKERS, 1) ||
        sy_server_set(srv, SY_OPT_BODY_TIMEOUT_MS, 200) || sy_server_listen(srv, "127.0.0.1:0") ||
        !sy_server_route(srv, "POST", "/up", SY_ROUTE_STREAM_BODY, stream_handler, NULL) ||
        sy_server_start(srv))
        return NULL;
    atomic_store(&body_bytes, 0);
    atomic_store(&ended, 0);
    atomic_store(&end_err, 0);
    atomic_store(&final_rc, 1);
    atomic_store(&final_done, 0);
    return srv;
}

static void wait_final(void)
{
    for (int i = 0; i < 5000 && !atomic_load(&final_done); i++)
        sleep_ms(1);
}

TEST(malformed_chunk_ends_the_streamed_body)
{
    sy_server *srv = start();
    CHECK(srv);
    int fd = connect_to(sy_server_port(srv, 0));
    CHECK(fd >= 0);
    static const char req[] = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n5\r\ntoo long\r\n0\r\n\r\n";
    CHECK_EQ(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    char buf[4096];
    read_all(fd, buf, sizeof(buf));
    CHECK(strstr(buf, "HTTP/1.1 400") == buf);
    wait_final();
    CHECK(atomic_load(&ended));
    CHECK_EQ(atomic_load(&end_err), SY_EHTTP_CHUNK);
    CHECK(atomic_load(&final_rc) < 0); /* answered already: the final call only releases */
    close(fd);
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv); /* LeakSanitizer (SAN=1) checks that the request was freed */
}

TEST(stalled_streamed_body_ends_with_408)
{
    sy_server *srv = start();
    CHECK(srv);
    int fd = connect_to(sy_server_port(srv, 0));
    CHECK(fd >= 0);
    static const char req[] = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    CHECK_EQ(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    char buf[4096];
    read_all(fd, buf, sizeof(buf));
    CHECK(strstr(buf, "HTTP/1.1 408") == buf);
    wait_final();
    CHECK(atomic_load(&ended));
    CHECK_EQ(atomic_load(&body_bytes), 3);
    CHECK_EQ(atomic_load(&end_err), SY_ETIMEDOUT);
    close(fd);
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv);
}

int main(void)
{
    RUN(malformed_chunk_ends_the_streamed_body);
    RUN(stalled_streamed_body_ends_with_408);
    return sy_t_summary();
}
