/* Reload (sy_server_reload_begin/commit): new connections get the new routes and limits,
 * connections accepted before keep theirs (a keep-alive connection's next request still sees
 * the old route), and the old set is retired (its callback runs) only when its last
 * connection has closed. Also: sy_server_metrics counts the requests, and before start a
 * scrape is valid and empty of per-worker series. A running server's text changes between
 * two calls, so lengths are compared only within one call, or before start. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static atomic_int retired_a, retired_b;

static void on_retired(void *ud)
{
    atomic_fetch_add((atomic_int *)ud, 1);
}

static void answer(sy_req *req, void *ud)
{
    const char *body = ud;
    sy_respond(req, 200, "text/plain", body, strlen(body));
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Send a keep-alive GET; return the status, and the body in out. */
static int get(int fd, const char *path, char *out, size_t cap)
{
    char req[256], buf[4096];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        if (end && cl) {
            size_t len = strtoul(cl + 16, NULL, 10);
            if (got >= (size_t)(end + 4 - buf) + len) {
                snprintf(out, cap, "%.*s", (int)len, end + 4);
                return atoi(buf + 9);
            }
        }
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

TEST(new_connections_see_the_new_routes_old_ones_keep_theirs)
{
    sy_server *srv;
    CHECK(sy_server_new(&srv) == 0);
    CHECK(sy_server_set(srv, SY_OPT_WORKERS, 2) == 0);
    CHECK(sy_server_listen(srv, "127.0.0.1:0") == 0);
    CHECK(sy_server_route(srv, "GET", "/a", 0, answer, "A") != NULL);
    sy_server_on_routes_retired(srv, on_retired, &retired_a);
    CHECK(sy_server_start(srv) == 0);
    CHECK(sy_server_route(srv, "GET", "/late", 0, answer, "L") == NULL); /* not without begin */
    int port = sy_server_port(srv, 0);
    char body[64];
    int old = connect_to(port);
    CHECK(old >= 0);
    CHECK_EQ(get(old, "/a", body, sizeof(body)), 200);
    CHECK(!strcmp(body, "A"));

    CHECK(sy_server_reload_begin(srv) == 0);
    CHECK(sy_server_reload_begin(srv) == SY_ESTATE);
    CHECK(sy_server_route(srv, "GET", "/b", 0, answer, "B") != NULL);
    CHECK(sy_server_set(srv, SY_OPT_MAX_BODY, 10) == 0);
    CHECK(sy_server_set(srv, SY_OPT_WORKERS, 4) == SY_ESTATE);
    CHECK(sy_server_set(srv, SY_OPT_MAX_CONNS, 500) == 0);
    sy_server_on_routes_retired(srv, on_retired, &retired_b);
    CHECK(sy_server_reload_commit(srv) == 0);
    CHECK(sy_server_reload_commit(srv) == SY_ESTATE);

    int fresh = connect_to(port);
    CHECK(fresh >= 0);
    CHECK_EQ(get(fresh, "/b", body, sizeof(body)), 200);
    CHECK(!strcmp(body, "B"));
    CHECK_EQ(get(fresh, "/a", body, sizeof(body)), 404);
    /* The connection from before still has the old routes. */
    CHECK_EQ(get(old, "/a", body, sizeof(body)), 200);
    CHECK_EQ(get(old, "/b", body, sizeof(body)), 404);
    CHECK_EQ(atomic_load(&retired_a), 0);
    close(old);
    for (int i = 0; i < 200 && !atomic_load(&retired_a); i++)
        sleep_ms(10);
    CHECK_EQ(atomic_load(&retired_a), 1); /* its last user is gone */
    CHECK_EQ(atomic_load(&retired_b), 0);

    /* An aborted reload leaves the current set alone. */
    CHECK(sy_server_reload_begin(srv) == 0);
    CHECK(sy_server_route(srv, "GET", "/c", 0, answer, "C") != NULL);
    sy_server_reload_abort(srv);
    CHECK_EQ(get(fresh, "/b", body, sizeof(body)), 200);
    close(fresh);

    char text[1 << 16];
    ssize_t n = sy_server_metrics(srv, text, sizeof(text));
    CHECK(n > 0 && (size_t)n < sizeof(text));
    CHECK_EQ(strlen(text), n);
    CHECK(strstr(text, "switchyard_http_requests_total{protocol=\"http/1.1\",method=\"GET\","
                       "status=\"2xx\"} 4") != NULL);
    CHECK(strstr(text, "switchyard_http_requests_total{protocol=\"http/1.1\",method=\"GET\","
                       "status=\"4xx\"} 2") != NULL);
    /* A buffer too small: truncated, NUL-terminated, the length of the whole text returned.
     * Not the same length as above: the server is running (the worker may only now see
     * `fresh` close, its loop counters move), so two scrapes need not match. Only the
     * prefix, which names the metrics, is the same; metrics_before_start compares lengths. */
    char small[100];
    CHECK(sy_server_metrics(srv, small, sizeof(small)) >= (ssize_t)sizeof(small));
    CHECK_EQ(strlen(small), sizeof(small) - 1);
    CHECK_MEM(small, text, sizeof(small) - 1);

    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    CHECK_EQ(atomic_load(&retired_b), 1);
}

TEST(metrics_before_start)
{
    sy_server *srv;
    CHECK(sy_server_new(&srv) == 0);
    char text[1 << 16];
    ssize_t n = sy_server_metrics(srv, text, sizeof(text));
    CHECK(n > 0 && (size_t)n < sizeof(text));
    CHECK_EQ(strlen(text), n);
    CHECK(strstr(text, "switchyard_workers 0") != NULL);
    CHECK(strstr(text, "switchyard_loop_iterations_total{") == NULL);
    /* Nothing runs yet, so the text stays the same: sizing, then truncating, give the
     * whole length each time. */
    CHECK_EQ(sy_server_metrics(srv, NULL, 0), n);
    char small[100];
    CHECK_EQ(sy_server_metrics(srv, small, sizeof(small)), n);
    CHECK_EQ(strlen(small), sizeof(small) - 1);
    CHECK_MEM(small, text, sizeof(small) - 1);
    sy_server_free(srv);
}

int main(void)
{
    RUN(new_connections_see_the_new_routes_old_ones_keep_theirs);
    RUN(metrics_before_start);
    return sy_t_summary();
}
