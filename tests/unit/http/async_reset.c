/* A handler that answers later, from a posted task, whose client resets the connection in the
 * same loop iteration as the task runs: the task's write fails, the response is over, and the
 * task's later calls (sy_resp_write, sy_resp_end) must find the handle still valid and
 * release it with the final call. (The audit saw the request recycled at the failed write,
 * the next call touching freed or re-used memory, and client B receiving client A's data.)
 *
 * The same-iteration order is made deterministic with a blocker task: while the loop thread
 * sleeps inside it, client A resets and then client B (connected before, idle) sends a
 * request, so the next epoll_wait reports A's reset before B's request, whose handler runs
 * A's late answer while A's connection is closing but not yet freed. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static sy_req *held_req;
static atomic_int handler_called;
static atomic_int responder_done;
static int rc_start, rc_write, rc_write2, rc_end;
static int target_ok; /* the handle still answers after the failed write */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char big[256 * 1024];

/* Start a response bigger than the socket buffers so that the connection waits for EPOLLOUT
 * (a paused, idle connection would not even see the reset until it writes). */
static void later_handler(sy_req *req, void *ud)
{
    (void)ud;
    held_req = req;
    memset(big, 'A', sizeof(big));
    sy_resp_start(req, 200);
    for (int i = 0; i < 32; i++)
        sy_resp_write(req, big, sizeof(big));
    atomic_store(&handler_called, 1);
}

static atomic_int blocker_running;
static atomic_int blocker_release;

static void blocker(sy_loop *loop, void *ud)
{
    (void)loop;
    (void)ud;
    atomic_store(&blocker_running, 1);
    while (!atomic_load(&blocker_release))
        sleep_ms(1);
}

static void responder(void)
{
    sy_req *r = held_req;
    rc_start = sy_resp_header(r, "X-Late", "1");
    rc_write = sy_resp_write(r, big, sizeof(big));
    size_t tl = 0, hl = 0;
    const char *t = sy_req_target(r, &tl);
    const char *h = sy_req_header(r, "Host", &hl);
    target_ok = t && tl == 6 && memcmp(t, "/later", 6) == 0 && h && hl == 1 && h[0] == 'x';
    rc_write2 = sy_resp_write(r, big, sizeof(big));
    rc_end = sy_resp_end(r); /* the final call: must release, whatever happened before */
    atomic_store(&responder_done, 1);
}

/* Client B's request: first A's late answer (same loop iteration as A's reset), then B's. */
static void now_handler(sy_req *req, void *ud)
{
    (void)ud;
    responder();
    sy_respond(req, 200, "text/plain", "B-body", 6);
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

static void reset_close(int fd)
{
    struct linger lg = {1, 0}; /* close() sends RST */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Read a whole response to a Connection: close request. */
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

TEST(final_call_after_failed_write_releases_request)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "GET", "/later", SY_ROUTE_EXACT, later_handler, NULL));
    CHECK(sy_server_route(srv, "GET", "/now", SY_ROUTE_EXACT, now_handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int port = sy_server_port(srv, 0);

    for (int round = 0; round < 20; round++) {
        atomic_store(&handler_called, 0);
        atomic_store(&responder_done, 0);
        atomic_store(&blocker_running, 0);
        atomic_store(&blocker_release, 0);
        int a = connect_to(port);
        CHECK(a >= 0);
        static const char ra[] = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK_EQ(send(a, ra, sizeof(ra) - 1, 0), (ssize_t)(sizeof(ra) - 1));
        for (int i = 0; i < 5000 && !atomic_load(&handler_called); i++)
            sleep_ms(1);
        CHECK(atomic_load(&handler_called));
        int b = connect_to(port);
        CHECK(b >= 0);
        sleep_ms(20); /* accepted while the loop is free */
        sy_loop *loop = sy_req_loop(held_req);
        CHECK_EQ(sy_loop_post(loop, blocker, NULL), 0);
        for (int i = 0; i < 5000 && !atomic_load(&blocker_running); i++)
            sleep_ms(1);
        reset_close(a);
        sleep_ms(50); /* A's reset reaches the server socket while the loop is blocked */
        static const char rb[] = "GET /now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        CHECK_EQ(send(b, rb, sizeof(rb) - 1, 0), (ssize_t)(sizeof(rb) - 1));
        sleep_ms(50); /* B's connection and request arrive while the loop is still blocked */
        atomic_store(&blocker_release, 1);
        char buf[8192];
        read_all(b, buf, sizeof(buf));
        close(b);
        CHECK(atomic_load(&responder_done));
        /* A's connection is gone: the response calls fail, the final call releases. */
        CHECK(rc_write < 0);
        CHECK(target_ok);
        CHECK(rc_write2 < 0);
        CHECK(rc_end == SY_ECLOSED || rc_end == SY_ESTATE);
        /* B gets its own response, nothing of A's. */
        CHECK(strstr(buf, "HTTP/1.1 200") == buf);
        CHECK(strstr(buf, "B-body") != NULL);
        CHECK(strstr(buf, "AAAA") == NULL);
    }
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv);
}

/* A helper thread whose post fails because the server (and its loop) is gone makes the final
 * call from its own thread; the handle must still be valid and the loop safe to post to. */
static sy_req *late_req;
static atomic_int late_called;

static void late_handler(sy_req *req, void *ud)
{
    (void)ud;
    late_req = req;
    atomic_store(&late_called, 1);
}

static void never(sy_loop *loop, void *ud)
{
    (void)loop;
    (void)ud;
}

TEST(post_after_server_free_is_safe)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_DRAIN_TIMEOUT_MS, 100), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "GET", "/late", SY_ROUTE_EXACT, late_handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int fd = connect_to(sy_server_port(srv, 0));
    CHECK(fd >= 0);
    static const char r[] = "GET /late?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(send(fd, r, sizeof(r) - 1, 0), (ssize_t)(sizeof(r) - 1));
    for (int i = 0; i < 5000 && !atomic_load(&late_called); i++)
        sleep_ms(1);
    CHECK(atomic_load(&late_called));
    sy_loop *loop = sy_req_loop(late_req);
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv);
    close(fd);
    /* The handle outlived its connection, worker and loop: accessors still answer. */
    size_t ql;
    const char *q = sy_req_query(late_req, &ql);
    CHECK(q && ql == 3 && memcmp(q, "x=1", 3) == 0);
    CHECK_EQ(sy_loop_post(loop, never, NULL), SY_ECLOSED);
    CHECK_EQ(sy_resp_end(late_req), SY_ECLOSED); /* releases; LeakSanitizer checks */
}

int main(void)
{
    RUN(final_call_after_failed_write_releases_request);
    RUN(post_after_server_free_is_safe);
    return sy_t_summary();
}
