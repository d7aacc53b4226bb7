/* sy_resp_header's checks (one pass per string measures and validates it): names that are
 * not tokens and values with CR or LF are refused, so is a field that is ours to write
 * (Transfer-Encoding, Connection, Date, in any case, and only those names exactly); the
 * accepted ones reach the response head as given. The response head itself: status line and
 * Content-Length as the server writes them. */
#include "harness.h"
#include "switchyard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static const struct {
    const char *name, *value;
    int want;
} cases[] = {
    {"X-A", "b", 0},
    {"", "v", SY_EINVAL},
    {"X B", "v", SY_EINVAL},
    {"X:B", "v", SY_EINVAL},
    {"X\x01", "v", SY_EINVAL},
    {"X\xc3\xa9", "v", SY_EINVAL},
    {"X-C", "a\r\nInjected: 1", SY_EINVAL},
    {"X-D", "a\nb", SY_EINVAL},
    {"X-D2", "a\rb", SY_EINVAL},
    {"Transfer-Encoding", "chunked", SY_EINVAL},
    {"CONNECTION", "close", SY_EINVAL},
    {"date", "today", SY_EINVAL},
    {"Dates", "x", 0},
    {"Connectio", "y", 0},
    {"X-E", "", 0},
    {"X-F", "caf\xc3\xa9 \t ok", 0},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))
static int got[NCASES];

static void handler(sy_req *req, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < NCASES; i++)
        got[i] = sy_resp_header(req, cases[i].name, cases[i].value);
    static char body[123456];
    memset(body, 'b', sizeof(body));
    sy_respond(req, 299, "text/plain", body, sizeof(body));
}

TEST(response_header_checks)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_set(srv, SY_OPT_WORKERS, 1), 0);
    CHECK_EQ(sy_server_listen(srv, "127.0.0.1:0"), 0);
    CHECK(sy_server_route(srv, "GET", "/h", SY_ROUTE_EXACT, handler, NULL));
    CHECK_EQ(sy_server_start(srv), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)sy_server_port(srv, 0))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    static const char rq[] = "GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(send(fd, rq, sizeof(rq) - 1, 0), (ssize_t)(sizeof(rq) - 1));
    static char buf[200000];
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    for (size_t i = 0; i < NCASES; i++) {
        if (got[i] != cases[i].want)
            printf("  case %zu (%s): %d\n", i, cases[i].name, got[i]);
        CHECK_EQ(got[i], cases[i].want);
    }
    char *end = strstr(buf, "\r\n\r\n");
    CHECK(end != NULL);
    *end = 0;
    CHECK(strncmp(buf, "HTTP/1.1 299 ", 13) == 0);
    CHECK(strstr(buf, "\r\nX-A: b\r\n"));
    CHECK(strstr(buf, "\r\nDates: x\r\n"));
    CHECK(strstr(buf, "\r\nConnectio: y\r\n"));
    CHECK(strstr(buf, "\r\nX-E: \r\n"));
    CHECK(strstr(buf, "\r\nX-F: caf\xc3\xa9 \t ok\r\n"));
    CHECK(strstr(buf, "\r\nContent-Length: 123456\r\n"));
    CHECK(!strstr(buf, "Injected") && !strstr(buf, "chunked") && !strstr(buf, "today"));
    CHECK_EQ(strlen(end + 4), 123456);
}

int main(void)
{
    RUN(response_header_checks);
    return sy_t_summary();
}
