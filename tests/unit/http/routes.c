/* Route registration refuses what it cannot honour (and says why in the log). The error
 * texts are tested in tests/unit/core/err.c. */
#include "harness.h"
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

int main(void)
{
    RUN(route_refusals_are_reported);
    return sy_t_summary();
}
