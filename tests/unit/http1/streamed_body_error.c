/* A handler that reads the request body as it arrives (SY_ROUTE_STREAM_BODY) holds the
 * request until its final call, which it makes when the body ends or fails. When the body
 * fails (a malformed chunk: 400; a stall: 408) the server answers by itself and closes; the
 * handler must still learn it, with the reason (one body call with end=1 and err < 0), so
 * that it makes its final call. It used to wait for ever, and the request, its state and a
 * reference on the loop leaked for every such client (found by fuzz/http1_server_fuzz.c and
 * by the hostile suite's slow-body case under LeakSanitizer). When the peer goes mid-body the
 * close tells it (SY_ECLOSED). Either way the last call comes exactly once: src/http1/server.c
 * tells it from send_error and from h1_on_close through one helper with one guard. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

/* body_bytes: data received; ends: calls with end=1 (the last call, good or bad); end_err:
 * the err of the last such call; final_rc: what the handler's final call returned. */
static atomic_int body_bytes, ends, end_err, final_rc;
/* defer_final: on an error the handler keeps the request (late_req) and makes its final call
 * only when the test posts it, after the connection is gone. */
static atomic_int defer_final;
static sy_req *_Atomic late_req;

static void on_body(sy_req *req, const void *data, size_t len, int end, int err, void *ud)
{
    (void)data;
    (void)ud;
    atomic_fetch_add(&body_bytes, (int)len);
    if (!end)
        return;
    atomic_store(&end_err, err);
    if (err < 0 && atomic_load(&defer_final))
        atomic_store(&late_req, req);
    else if (err < 0)
        atomic_store(&final_rc, sy_resp_end(req)); /* the final call, as the API asks */
    else
        atomic_store(&final_rc, sy_respond(req, 200, "text/plain", "ok\n", 3));
    atomic_fetch_add(&ends, 1); /* last: the waiters read the others after this */
}

static void late_final(sy_loop *loop, void *req)
{
    (void)loop;
    atomic_store(&final_rc, sy_resp_end(req));
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

static void reset_counts(void)
{
    atomic_store(&body_bytes, 0);
    atomic_store(&ends, 0);
    atomic_store(&end_err, 0);
    atomic_store(&final_rc, 1);
    atomic_store(&defer_final, 0);
    atomic_store(&late_req, NULL);
}

static sy_server *start(void)
{
    sy_server *srv;
    if (sy_server_new(&srv))
        return NULL;
    if (sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_server_set(srv, SY_OPT_BODY_TIMEOUT_MS, 200) ||
        sy_server_listen(srv, "127.0.0.1:0") ||
        !sy_server_route(srv, "POST", "/up", SY_ROUTE_STREAM_BODY, stream_handler, NULL) ||
        sy_server_start(srv)) {
        sy_server_free(srv);
        return NULL;
    }
    reset_counts();
    return srv;
}

/* Until the handler has made n last calls (or 5 s). */
static void wait_ends(int n)
{
    for (int i = 0; i < 5000 && atomic_load(&ends) < n; i++)
        sleep_ms(1);
}

/* Stop the server: every connection is closed and freed by then, so a second last call
 * (from the close, after the error) would have come. */
static int stop(sy_server *srv)
{
    sy_server_stop(srv);
    int e = sy_server_wait(srv);
    sy_server_free(srv); /* LeakSanitizer (SAN=1) checks that every request was freed */
    return e;
}

/* Send req, read the answer until the server closes, expect it to start with status. */
static int answered(int port, const char *req, const char *status)
{
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
    return 1;
}

TEST(malformed_chunk_ends_the_streamed_body)
{
    sy_server *srv = start();
    CHECK(srv);
    CHECK(answered(sy_server_port(srv, 0),
                   "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n5\r\ntoo long\r\n0\r\n\r\n",
                   "HTTP/1.1 400"));
    wait_ends(1);
    CHECK_EQ(atomic_load(&ends), 1);
    CHECK_EQ(atomic_load(&body_bytes), 10); /* "hello", "too l"; then "ong" is no CRLF */
    CHECK_EQ(atomic_load(&end_err), SY_EHTTP_CHUNK);
    CHECK(atomic_load(&final_rc) < 0); /* answered already: the final call only releases */
    CHECK_EQ(stop(srv), 0);
    CHECK_EQ(atomic_load(&ends), 1); /* the close did not tell it again */
}

TEST(stalled_streamed_body_ends_with_408)
{
    sy_server *srv = start();
    CHECK(srv);
    CHECK(answered(sy_server_port(srv, 0),
                   "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                   "HTTP/1.1 408"));
    wait_ends(1);
    CHECK_EQ(atomic_load(&ends), 1);
    CHECK_EQ(atomic_load(&body_bytes), 3);
    CHECK_EQ(atomic_load(&end_err), SY_ETIMEDOUT);
    CHECK(atomic_load(&final_rc) < 0);
    CHECK_EQ(stop(srv), 0);
    CHECK_EQ(atomic_load(&ends), 1);
}

/* Both failures, one after the other, on one server: each request is told once. */
TEST(server_errors_in_turn_reach_the_handler_once_each)
{
    sy_server *srv = start();
    CHECK(srv);
    int port = sy_server_port(srv, 0);
    CHECK(answered(port, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b",
                   "HTTP/1.1 408"));
    wait_ends(1);
    CHECK_EQ(atomic_load(&end_err), SY_ETIMEDOUT);
    CHECK(answered(port,
                   "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\nzz\r\n",
                   "HTTP/1.1 400"));
    wait_ends(2);
    CHECK_EQ(atomic_load(&end_err), SY_EHTTP_CHUNK);
    /* the response was the server's: the handler's final call only lets go */
    CHECK(atomic_load(&final_rc) == SY_ESTATE || atomic_load(&final_rc) == SY_ECLOSED);
    CHECK_EQ(stop(srv), 0);
    CHECK_EQ(atomic_load(&ends), 2);
    CHECK_EQ(atomic_load(&body_bytes), 10 + 5);
}

/* The handler makes its final call only later, so it still holds the request when the
 * connection closes: the close must not tell it a second time. */
TEST(a_handler_still_holding_the_request_is_not_told_again_at_close)
{
    sy_server *srv = start();
    CHECK(srv);
    atomic_store(&defer_final, 1);
    CHECK(answered(sy_server_port(srv, 0),
                   "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                   "HTTP/1.1 408"));
    wait_ends(1);
    CHECK_EQ(atomic_load(&end_err), SY_ETIMEDOUT);
    sy_server_stats st;
    for (int i = 0; i < 5000; i++, sleep_ms(1)) {
        sy_server_get_stats(srv, &st);
        if (!st.open_conns)
            break;
    }
    CHECK_EQ(st.open_conns, 0); /* closed and freed: h1_on_close has run */
    CHECK_EQ(atomic_load(&ends), 1);
    sy_req *req = atomic_load(&late_req);
    CHECK(req);
    CHECK_EQ(sy_loop_post(sy_req_loop(req), late_final, req), 0);
    for (int i = 0; i < 5000 && atomic_load(&final_rc) == 1; i++)
        sleep_ms(1);
    CHECK(atomic_load(&final_rc) < 0); /* an orphan now: the final call frees it */
    CHECK_EQ(stop(srv), 0);
    CHECK_EQ(atomic_load(&ends), 1);
}

/* The peer goes mid-body: nothing was answered, the close tells the handler. */
TEST(peer_gone_mid_body_ends_with_eclosed)
{
    sy_server *srv = start();
    CHECK(srv);
    int fd = connect_to(sy_server_port(srv, 0));
    CHECK(fd >= 0);
    static const char req[] = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcd";
    CHECK_EQ(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    for (int i = 0; i < 5000 && atomic_load(&body_bytes) < 4; i++)
        sleep_ms(1);
    CHECK_EQ(atomic_load(&body_bytes), 4);
    close(fd);
    wait_ends(1);
    CHECK_EQ(atomic_load(&ends), 1);
    CHECK_EQ(atomic_load(&end_err), SY_ECLOSED);
    CHECK(atomic_load(&final_rc) < 0); /* the connection is gone: the final call releases */
    CHECK_EQ(stop(srv), 0);
    CHECK_EQ(atomic_load(&ends), 1);
}

int main(void)
{
    RUN(malformed_chunk_ends_the_streamed_body);
    RUN(stalled_streamed_body_ends_with_408);
    RUN(server_errors_in_turn_reach_the_handler_once_each);
    RUN(a_handler_still_holding_the_request_is_not_told_again_at_close);
    RUN(peer_gone_mid_body_ends_with_eclosed);
    return sy_t_summary();
}
