/* Raw streams against the public API: backpressure and on_drain, the hard output cap, the idle
 * timeout, pause/resume, and the err that on_close reports. One in-process server; each test
 * upgrades to its own token on /s and talks to it over a loopback socket. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static int g_port;

/* What the server side saw, written on the worker thread, read by the test thread. */
static struct {
    atomic_int closed, close_err, drains, data_calls, after_close_write;
    atomic_int ok_writes, first_bp, limit_at, after_limit, set_bad[3];
    atomic_long bp_buffered, max_seen, data_len;
    atomic_llong open_ms, close_ms;
    _Atomic(sy_stream *) stream;
    char data[64];
} st;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reset(void)
{
    memset(&st, 0, sizeof(st));
    atomic_store(&st.close_err, 1);
    atomic_store(&st.first_bp, -1);
    atomic_store(&st.limit_at, -1);
}

/* ---- server side ---- */

static void on_close(sy_stream *s, int err, void *ud)
{
    (void)ud;
    atomic_store(&st.after_close_write, sy_stream_write(s, "x", 1));
    atomic_store(&st.close_ms, now_ms());
    atomic_store(&st.close_err, err);
    atomic_store(&st.stream, NULL);
    atomic_store(&st.closed, 1);
}

static void on_data(sy_stream *s, const void *data, size_t len, void *ud)
{
    (void)s;
    (void)ud;
    size_t have = (size_t)atomic_load(&st.data_len);
    size_t room = sizeof(st.data) - 1 - have, n = len < room ? len : room;
    memcpy(st.data + have, data, n);
    atomic_store(&st.data_len, (long)(have + n));
    atomic_fetch_add(&st.data_calls, 1);
}

/* "bp": write 64 KiB blocks until the first BACKPRESSURE; on_drain writes a marker and closes. */
static void bp_drain(sy_stream *s, void *ud)
{
    (void)ud;
    atomic_fetch_add(&st.drains, 1);
    (void)sy_stream_write(s, "END", 3);
    sy_stream_close(s);
}

static void bp_open(sy_stream *s)
{
    static char block[65536];
    sy_stream_cbs cbs = {.on_close = on_close, .on_drain = bp_drain};
    sy_stream_set_cbs(s, &cbs, NULL);
    sy_stream_set(s, SY_STREAM_OPT_HIGH_WATER, 8u << 20);
    sy_stream_set(s, SY_STREAM_OPT_LOW_WATER, 1u << 20);
    for (int i = 0; i < 1000; i++) {
        int rc = sy_stream_write(s, block, sizeof(block));
        if (rc == SY_STREAM_WRITE_BACKPRESSURE) {
            atomic_store(&st.first_bp, i);
            atomic_store(&st.bp_buffered, (long)sy_stream_buffered(s));
            return;
        }
        if (rc != SY_STREAM_WRITE_OK)
            return;
        atomic_fetch_add(&st.ok_writes, 1);
    }
}

/* "cap": an application that ignores backpressure, with a cap of 256 KiB plus room for the 101
 * head (queued too). */
static void cap_open(sy_stream *s)
{
    static char block[65536];
    sy_stream_cbs cbs = {.on_close = on_close};
    sy_stream_set_cbs(s, &cbs, NULL);
    sy_stream_set(s, SY_STREAM_OPT_HIGH_WATER, 128u << 10);
    sy_stream_set(s, SY_STREAM_OPT_MAX_BUFFER, (256u << 10) + 4096);
    for (int i = 0; i < 100; i++) {
        int rc = sy_stream_write(s, block, sizeof(block));
        long b = (long)sy_stream_buffered(s);
        if (b > atomic_load(&st.max_seen))
            atomic_store(&st.max_seen, b);
        if (rc == SY_STREAM_WRITE_BACKPRESSURE && atomic_load(&st.first_bp) < 0)
            atomic_store(&st.first_bp, i);
        if (rc < 0) {
            atomic_store(&st.limit_at, rc == SY_ELIMIT ? i : -2);
            atomic_store(&st.after_limit, sy_stream_write(s, "x", 1));
            return;
        }
    }
}

static void raw_open(sy_stream *s, sy_req *req, void *ud)
{
    (void)req;
    const char *tok = ud;
    atomic_store(&st.open_ms, now_ms());
    atomic_store(&st.stream, s);
    if (!strcmp(tok, "bp")) {
        bp_open(s);
        return;
    }
    if (!strcmp(tok, "cap")) {
        cap_open(s);
        return;
    }
    sy_stream_cbs cbs = {.on_data = on_data, .on_close = on_close};
    sy_stream_set_cbs(s, &cbs, NULL);
    if (!strcmp(tok, "idle"))
        sy_stream_set(s, SY_STREAM_OPT_IDLE_TIMEOUT_MS, 200);
    if (!strcmp(tok, "pause"))
        sy_stream_pause_read(s);
    if (!strcmp(tok, "eof")) {
        atomic_store(&st.set_bad[0], sy_stream_set(s, (enum sy_stream_opt)99, 1));
        atomic_store(&st.set_bad[1], sy_stream_set(s, SY_STREAM_OPT_HIGH_WATER, 0));
        atomic_store(&st.set_bad[2],
                     sy_stream_set(s, SY_STREAM_OPT_IDLE_TIMEOUT_MS, (uint64_t)1 << 40));
    }
}

static void resume_task(sy_loop *loop, void *ud)
{
    (void)loop;
    (void)ud;
    sy_stream *s = atomic_load(&st.stream);
    if (s)
        sy_stream_resume_read(s);
}

/* ---- client side ---- */

/* Connect (with a small receive buffer when asked), upgrade to tok, return the fd after the
 * 101 head, or -1. */
static int upgrade(const char *tok, int small_rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (small_rcvbuf) {
        int sz = 65536;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n =
        snprintf(req, sizeof(req),
                 "GET /s HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: %s\r\n\r\n", tok);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    /* Read the head byte by byte so that no stream byte is taken with it. */
    char head[512];
    size_t got = 0;
    while (got < sizeof(head) - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0 || recv(fd, head + got, 1, 0) != 1)
            break;
        got++;
        head[got] = 0;
        if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4))
            return strncmp(head, "HTTP/1.1 101", 12) ? (close(fd), -1) : fd;
    }
    close(fd);
    return -1;
}

/* Read until EOF (or an error, or timeout_ms of silence); returns the byte count, and the
 * last bytes in tail[0..3]. */
static long read_to_eof(int fd, int timeout_ms, char tail[4])
{
    static char buf[1 << 16];
    long total = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return total;
        if (tail) {
            size_t k = (size_t)n < 3 ? (size_t)n : 3;
            memmove(tail, tail + k, 3 - k);
            memcpy(tail + 3 - k, buf + n - (ssize_t)k, k);
        }
        total += n;
    }
}

static int wait_closed(int ms)
{
    for (int i = 0; i < ms / 10 && !atomic_load(&st.closed); i++)
        usleep(10000);
    return atomic_load(&st.closed);
}

TEST(backpressure_then_one_drain_at_low_water)
{
    reset();
    int fd = upgrade("bp", 1);
    CHECK(fd >= 0);
    usleep(100000);
    /* 8 MiB high water in 64 KiB writes: the 128th write reaches it. */
    CHECK_EQ(atomic_load(&st.first_bp), 127);
    CHECK_EQ(atomic_load(&st.ok_writes), 127);
    CHECK(atomic_load(&st.bp_buffered) >= 8l << 20);
    /* The client reads nothing: the kernel cannot take 7 MiB, so no drain yet. */
    usleep(200000);
    CHECK_EQ(atomic_load(&st.drains), 0);
    CHECK(!atomic_load(&st.closed));
    char tail[4] = {0};
    long n = read_to_eof(fd, 5000, tail);
    close(fd);
    CHECK_EQ(n, 128l * 65536 + 3);
    CHECK_MEM(tail, "END", 3);
    CHECK(wait_closed(2000));
    CHECK_EQ(atomic_load(&st.drains), 1);
    CHECK_EQ(atomic_load(&st.close_err), 0);
    CHECK_EQ(atomic_load(&st.after_close_write), SY_ECLOSED);
}

TEST(hard_cap_refuses_the_write_and_closes)
{
    reset();
    int fd = upgrade("cap", 0);
    /* The close may come before the client saw the 101 (the queue is dropped). */
    if (fd >= 0) {
        read_to_eof(fd, 5000, NULL);
        close(fd);
    }
    CHECK(wait_closed(2000));
    CHECK_EQ(atomic_load(&st.first_bp), 1); /* 128 KiB reached by the 2nd write */
    CHECK_EQ(atomic_load(&st.limit_at), 4); /* the 5th would make 320 KiB > 256 KiB */
    CHECK(atomic_load(&st.max_seen) <= (256l << 10) + 4096); /* never above the cap */
    CHECK_EQ(atomic_load(&st.after_limit), SY_ECLOSED);
    CHECK_EQ(atomic_load(&st.close_err), SY_ELIMIT);
}

TEST(idle_stream_times_out)
{
    reset();
    int fd = upgrade("idle", 0);
    CHECK(fd >= 0);
    long n = read_to_eof(fd, 5000, NULL);
    close(fd);
    CHECK_EQ(n, 0);
    CHECK(wait_closed(2000));
    CHECK_EQ(atomic_load(&st.close_err), SY_ETIMEDOUT);
    long long waited = atomic_load(&st.close_ms) - atomic_load(&st.open_ms);
    CHECK(waited >= 190 && waited < 3000);
}

TEST(peer_eof_closes_with_zero_and_set_validates)
{
    reset();
    int fd = upgrade("eof", 0);
    CHECK(fd >= 0);
    CHECK(send(fd, "abc", 3, MSG_NOSIGNAL) == 3);
    shutdown(fd, SHUT_WR);
    long n = read_to_eof(fd, 5000, NULL);
    close(fd);
    CHECK_EQ(n, 0);
    CHECK(wait_closed(2000));
    CHECK_EQ(atomic_load(&st.close_err), 0);
    CHECK_EQ(atomic_load(&st.data_len), 3);
    CHECK_MEM(st.data, "abc", 3);
    CHECK_EQ(atomic_load(&st.set_bad[0]), SY_EINVAL);
    CHECK_EQ(atomic_load(&st.set_bad[1]), SY_ERANGE);
    CHECK_EQ(atomic_load(&st.set_bad[2]), SY_ERANGE);
}

TEST(paused_stream_gets_no_data_until_resumed)
{
    reset();
    int fd = upgrade("pause", 0);
    CHECK(fd >= 0);
    CHECK(send(fd, "hello", 5, MSG_NOSIGNAL) == 5);
    usleep(300000);
    CHECK_EQ(atomic_load(&st.data_calls), 0);
    sy_stream *s = atomic_load(&st.stream);
    CHECK(s != NULL);
    CHECK_EQ(sy_loop_post(sy_stream_loop(s), resume_task, NULL), 0);
    for (int i = 0; i < 300 && atomic_load(&st.data_len) < 5; i++)
        usleep(10000);
    CHECK_EQ(atomic_load(&st.data_len), 5);
    CHECK_MEM(st.data, "hello", 5);
    close(fd);
    CHECK(wait_closed(2000));
}

int main(void)
{
    sy_server *srv;
    sy_set_log(NULL, 0, NULL);
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1))
        abort();
    sy_route *r = sy_server_route(srv, NULL, "/s", SY_ROUTE_EXACT, NULL, NULL);
    static const char *const toks[] = {"bp", "cap", "idle", "eof", "pause"};
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
        if (!r || sy_route_upgrade_raw(r, toks[i], NULL, raw_open, (void *)toks[i]))
            abort();
    if (sy_server_start(srv))
        abort();
    g_port = sy_server_port(srv, 0);
    RUN(backpressure_then_one_drain_at_low_water);
    RUN(hard_cap_refuses_the_write_and_closes);
    RUN(idle_stream_times_out);
    RUN(peer_eof_closes_with_zero_and_set_validates);
    RUN(paused_stream_gets_no_data_until_resumed);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    return sy_t_summary();
}
