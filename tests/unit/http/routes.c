/* Route registration refuses what it cannot honour (and says why in the log). The error
 * texts are tested in tests/unit/core/err.c. */
#include "harness.h"
#include "http/app.h"
#include "switchyard.h"

static void h(sy_req *req, void *ud)
{
    (void)ud;
    sy_respond(req, 200, NULL, NULL, 0);
}

static int warnings;
static void count_log(int level, const char *msg, void *ud)
{
    (void)msg;
    (void)ud;
    if (level == SY_LOG_WARN)
        warnings++;
}

TEST(route_refusals_are_reported)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    sy_set_log(count_log, SY_LOG_WARN, NULL);
    CHECK(sy_server_route(srv, "GET", "/a", SY_ROUTE_EXACT, h, NULL) != NULL);
    CHECK(sy_server_route(srv, "GET", "/a", SY_ROUTE_EXACT, h, NULL) == NULL);  /* duplicate */
    CHECK(sy_server_route(srv, "POST", "/a", SY_ROUTE_EXACT, h, NULL) != NULL); /* other method */
    CHECK(sy_server_route(srv, "GET", "/a", SY_ROUTE_PREFIX, h, NULL) != NULL); /* other kind */
    CHECK(sy_server_route(srv, NULL, "/b", SY_ROUTE_EXACT, h, NULL) != NULL);
    CHECK(sy_server_route(srv, NULL, "/b", SY_ROUTE_EXACT, h, NULL) == NULL);
    CHECK(sy_server_route(srv, "GET", "nope", SY_ROUTE_EXACT, h, NULL) == NULL);
    CHECK(sy_server_route(srv, "GET", "/c", 1 << 12, h, NULL) == NULL); /* unknown flag */
    CHECK_EQ(warnings, 4);
    sy_set_log(NULL, 0, NULL);
    sy_server_free(srv);
}

/* The Allow list of a 405 (RFC 9110 §15.5.6) and the methods that are known at all (501). */
TEST(allow_list_and_known_methods)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK(sy_server_route(srv, "GET", "/", SY_ROUTE_PREFIX, h, NULL) != NULL);
    CHECK(sy_server_route(srv, "POST", "/a", SY_ROUTE_EXACT, h, NULL) != NULL);
    CHECK(sy_server_route(srv, "PROPFIND", "/a", SY_ROUTE_EXACT, h, NULL) != NULL);
    CHECK(sy_server_route(srv, "GET", "/a", SY_ROUTE_EXACT, h, NULL) != NULL);
    CHECK(sy_server_route(srv, NULL, "/any", SY_ROUTE_EXACT, h, NULL) != NULL);
    const sy_http_conf *c = sy__http_app(srv)->conf;
    char out[64];
    CHECK_EQ(sy__route_allow(c, "/a", 2, out, sizeof(out)), strlen("GET, HEAD, POST, PROPFIND"));
    CHECK(strcmp(out, "GET, HEAD, POST, PROPFIND") == 0);
    CHECK(sy__route_allow(c, "/x/y", 4, out, sizeof(out)) > 0);
    CHECK(strcmp(out, "GET, HEAD") == 0);
    /* a route for any method lists nothing of its own */
    sy__route_allow(c, "/any", 4, out, sizeof(out));
    CHECK(strcmp(out, "GET, HEAD") == 0);
    /* too small: whole names only */
    CHECK_EQ(sy__route_allow(c, "/a", 2, out, 12), strlen("GET, HEAD"));
    CHECK(sy__route_method_known(c, "DELETE", 6));
    CHECK(sy__route_method_known(c, "PROPFIND", 8));
    CHECK(!sy__route_method_known(c, "get", 3));
    CHECK(!sy__route_method_known(c, "GETX", 4));
    sy_server_free(srv);
}

int main(void)
{
    RUN(route_refusals_are_reported);
    RUN(allow_list_and_known_methods);
    return sy_t_summary();
}
