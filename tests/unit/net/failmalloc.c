/* Allocation failure, everywhere: a server runs one HTTP request, one raw upgrade and one
 * WebSocket echo (with permessage-deflate) while allocation number N fails, for every N up to
 * the number the scenario needs. The server must answer, refuse or close the connection, and
 * never crash, hang or leak (run under ASan/LSan in CI). */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

static atomic_long alloc_count;
static atomic_long fail_at; /* 0 = never */
static atomic_int counting;

static void *t_malloc(size_t n)
{
    if (atomic_load(&counting)) {
        long c = atomic_fetch_add(&alloc_count, 1) + 1;
        if (c == atomic_load(&fail_at))
            return NULL;
    }
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (atomic_load(&counting)) {
        long c = atomic_fetch_add(&alloc_count, 1) + 1;
        if (c == atomic_load(&fail_at))
            return NULL;
    }
    return realloc(p, n);
}

static void on_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    (void)sy_ws_send(ws, op, data, len);
}

static void raw_data(sy_stream *s, const void *data, size_t len, void *ud)
{
    (void)ud;
    (void)sy_stream_write(s, data, len);
}

static void raw_open(sy_stream *s, sy_req *req, void *ud)
{
    (void)req;
    sy_stream_cbs cbs = {.on_data = raw_data};
    sy_stream_set_cbs(s, &cbs, ud);
}

static void hello(sy_req *req, void *ud)
{
    (void)ud;
    sy_resp_header(req, "X-Test", "1");
    sy_respond(req, 200, "text/plain", "hello", 5);
}

/* Send req, read until the server closes or `want` appears; returns bytes read (>= 0). */
static int exchange(int port, const char *req, size_t req_len, const char *want, char *out,
                    size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    if (send(fd, req, req_len, MSG_NOSIGNAL) < 0) {
        close(fd);
        return 0;
    }
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0)
            break; /* a hang: reported by the caller */
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        out[got] = 0;
        if (want && strstr(out, want))
            break;
        if (got + 1 >= cap)
            break;
    }
    out[got] = 0;
    close(fd);
    return (int)got;
}

static const char ws_req[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    /* masked text "Hello" (RFC 6455 §5.7), uncompressed */
    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    /* masked close 1000 */
    "\x88\x82\x01\x02\x03\x04\x02\xea";

/* One scenario with allocation number n failing; returns how many allocations it made. */
static long scenario(long n, int *hung)
{
    sy_server *srv;
    sy_ws_opts *o;
    atomic_store(&counting, 0);
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        abort();
    sy_ws_cbs cbs = {.on_message = on_message};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/ws", SY_ROUTE_EXACT, NULL, NULL);
    sy_route *h = sy_server_route(srv, "GET", "/hello", SY_ROUTE_EXACT, hello, NULL);
    sy_route *raw = sy_server_route(srv, NULL, "/raw", SY_ROUTE_EXACT, hello, NULL);
    if (!r || !h || !raw || sy_route_websocket(r, o) ||
        sy_route_upgrade_raw(raw, "echo", NULL, raw_open, NULL) || sy_server_start(srv))
        abort();
    sy_ws_opts_free(o);
    int port = sy_server_port(srv, 0);
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_at, n);
    atomic_store(&counting, 1);
    char out[4096];
    static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    static const char up[] = "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                             "Upgrade: echo\r\n\r\nping-bytes";
    int a = exchange(port, get, sizeof(get) - 1, NULL, out, sizeof(out));
    int ok1 = a >= 0 && (strstr(out, "hello") || a == 0 || strstr(out, " 50"));
    int b = exchange(port, up, sizeof(up) - 1, "ping-bytes", out, sizeof(out));
    int ok2 = b >= 0;
    int c = exchange(port, ws_req, sizeof(ws_req) - 1, "\x88\x02\x03\xe8", out, sizeof(out));
    int ok3 = c >= 0;
    atomic_store(&counting, 0);
    long made = atomic_load(&alloc_count);
    *hung = !(ok1 && ok2 && ok3);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    return made;
}

TEST(every_allocation_may_fail)
{
    sy_set_allocator(t_malloc, t_realloc, free);
    sy_set_log(NULL, 0, NULL);
    int hung = 0;
    long total = scenario(0, &hung);
    CHECK(!hung);
    CHECK(total > 10);
    printf("  the scenario makes %ld allocations; failing each in turn\n", total);
    /* Allocation counts vary a little with timing (threads); go a bit past the total. */
    for (long n = 1; n <= total + 5; n++) {
        scenario(n, &hung);
        if (hung)
            printf("  allocation %ld failing: a client saw no answer\n", n);
    }
    sy_set_allocator(NULL, NULL, NULL);
}

int main(void)
{
    RUN(every_allocation_may_fail);
    return sy_t_summary();
}
