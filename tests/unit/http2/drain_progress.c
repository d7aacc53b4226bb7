/* sy_resp_on_drain over HTTP/2 is an event, not a level: a handler that fills its queue to
 * exactly the low-water mark (64 KiB in four 16 KiB writes) and then asks for a drain, on a
 * stream whose window is shut, used to be called back at once, write nothing (its own mark
 * was reached), ask again, and so on: the worker's loop spun in its end-of-iteration work
 * and served nothing else (found by fuzz/http2_session_fuzz.c). Now the callback comes when
 * output moved; when the window opens, the response completes. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define PIECE 16384
#define TOTAL (256 * 1024)
#define SPIN_GIVE_UP 100000

static atomic_int drains;
static atomic_int spun;

typedef struct fill {
    size_t left;
} fill;

static void fill_more(sy_req *req, void *ud)
{
    fill *f = ud;
    static char piece[PIECE];
    if (atomic_fetch_add(&drains, 1) > SPIN_GIVE_UP) {
        atomic_store(&spun, 1); /* the old behaviour: stop it, or the test never ends */
        f->left = 0;
    }
    while (f->left && sy_resp_buffered(req) < 4 * PIECE) {
        if (sy_resp_write(req, piece, PIECE) < 0)
            f->left = 0;
        else
            f->left -= PIECE;
    }
    if (f->left && sy_resp_on_drain(req, fill_more, f) == 0)
        return;
    sy_resp_end(req);
    free(f);
}

static void fill_handler(sy_req *req, void *ud)
{
    (void)ud;
    fill *f = calloc(1, sizeof(*f));
    f->left = TOTAL;
    sy_resp_start(req, 200);
    atomic_store(&drains, 0);
    fill_more(req, f);
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

static void put_frame(uint8_t *out, size_t *n, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload, size_t len)
{
    uint8_t *p = out + *n;
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = flags;
    p[5] = (uint8_t)(sid >> 24), p[6] = (uint8_t)(sid >> 16), p[7] = (uint8_t)(sid >> 8);
    p[8] = (uint8_t)sid;
    memcpy(p + 9, payload, len);
    *n += 9 + len;
}

/* Read for ms milliseconds; returns the DATA payload bytes seen and whether stream 1 ended. */
static size_t read_data(int fd, int ms, int *ended)
{
    static uint8_t buf[1 << 20];
    size_t have = 0, data = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        struct pollfd p = {fd, POLLIN, 0};
        if (el >= ms || poll(&p, 1, (int)(ms - el)) <= 0)
            break;
        ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t off = 0;
        while (have - off >= 9) {
            size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
            if (have - off < 9 + len)
                break;
            if (buf[off + 3] == 0) {
                data += len;
                if (buf[off + 4] & 1)
                    *ended = 1;
            }
            off += 9 + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (*ended)
            break;
    }
    return data;
}

TEST(drain_waits_for_progress)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "GET", "/fill", SY_ROUTE_EXACT, fill_handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int fd = connect_to(sy_server_port(srv, 0));
    CHECK(fd >= 0);
    uint8_t out[256];
    size_t n = 0;
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    const uint8_t window0[6] = {0, 4, 0, 0, 0, 0}; /* SETTINGS_INITIAL_WINDOW_SIZE = 0 */
    put_frame(out, &n, 4, 0, 0, window0, 6);
    put_frame(out, &n, 4, 1, 0, "", 0); /* ACK of the server's SETTINGS */
    /* GET /fill: :method GET, :scheme http (static), :path "/fill", :authority "x" */
    const uint8_t head[] = {0x82, 0x86, 0x04, 5, '/', 'f', 'i', 'l', 'l', 0x01, 1, 'x'};
    put_frame(out, &n, 1, 5, 1, head, sizeof(head));
    CHECK_EQ(send(fd, out, n, 0), (ssize_t)n);
    int ended = 0;
    CHECK_EQ(read_data(fd, 300, &ended), 0); /* the window is shut */
    CHECK(!atomic_load(&spun));
    CHECK(atomic_load(&drains) <= 3);
    /* Open the windows: the response moves, the handler is called as it drains, and ends. */
    n = 0;
    const uint8_t inc[4] = {0, 0x10, 0, 0}; /* 1 MiB */
    put_frame(out, &n, 8, 0, 1, inc, 4);
    put_frame(out, &n, 8, 0, 0, inc, 4);
    CHECK_EQ(send(fd, out, n, 0), (ssize_t)n);
    size_t got = read_data(fd, 5000, &ended);
    CHECK_EQ(got, TOTAL);
    CHECK(ended);
    CHECK(!atomic_load(&spun));
    close(fd);
    sy_server_stop(srv);
    CHECK_EQ(sy_server_wait(srv), 0);
    sy_server_free(srv);
}

int main(void)
{
    RUN(drain_waits_for_progress);
    return sy_t_summary();
}
