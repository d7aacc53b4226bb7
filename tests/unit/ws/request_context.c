/* Request context at open: the accept hook hands user data to the connection
 * (sy_req_set_open_ud), on_open reads the upgrade request (sy_ws_request), raw streams read
 * the same user data, and user data of a switch that never happens is released. */
#include "rawws.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_int freed_uds;
static char seen[512];

static void free_ud(void *ud)
{
    atomic_fetch_add(&freed_uds, 1);
    free(ud);
}

/* The accept hook: ?room=NAME becomes the connection's user data; ?deny refuses after
 * setting it (so it must be released). */
static int accept_hook(sy_req *req, const char **reason, void *ud)
{
    (void)ud;
    size_t ql;
    const char *q = sy_req_query(req, &ql);
    char *room = strndup(q ? q : "lobby", q ? ql : 5);
    sy_req_set_open_ud(req, room, free_ud);
    if (q && ql >= 4 && memcmp(q, "deny", 4) == 0) {
        *reason = "denied";
        return 403;
    }
    return 0;
}

static void on_open(sy_ws *ws, void *ud)
{
    const sy_req *r = sy_ws_request(ws);
    size_t ml, pl, hl;
    const char *m = sy_req_method(r, &ml);
    const char *p = sy_req_path(r, &pl);
    const char *h = sy_req_header(r, "x-user", &hl);
    snprintf(seen, sizeof(seen), "ud=%s method=%.*s path=%.*s user=%.*s version=%d peer=%s",
             (const char *)ud, (int)ml, m, (int)pl, p, h ? (int)hl : 1, h ? h : "-",
             sy_req_version(r), strncmp(sy_req_peer(r), "127.0.0.1:", 10) == 0 ? "ok" : "?");
    sy_ws_send(ws, SY_WS_TEXT, sy_ws_ud(ws), strlen(sy_ws_ud(ws)));
}

static const sy_req *after_open;

static void on_message(sy_ws *ws, int op, const void *d, size_t n, void *ud)
{
    (void)op;
    (void)d;
    (void)n;
    (void)ud;
    after_open = sy_ws_request(ws); /* NULL outside on_open */
    sy_ws_send(ws, SY_WS_TEXT, after_open ? "req" : "null", after_open ? 3 : 4);
}

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ws;
    (void)info;
    free_ud(ud);
}

/* Raw streams: the check hook sets it, on_open reads it and takes it over. */
static int raw_check(sy_req *req, const char *token, const char **reason, void *ud)
{
    (void)token;
    (void)reason;
    (void)ud;
    sy_req_set_open_ud(req, strdup("raw-ctx"), free_ud);
    return SY_UPGRADE_ACCEPT;
}

static void raw_data(sy_stream *s, const void *d, size_t n, void *ud)
{
    (void)d;
    (void)n;
    sy_stream_write(s, ud, strlen(ud));
}

static void rs_close(sy_stream *s, int err, void *ud)
{
    (void)s;
    (void)err;
    free_ud(ud);
}

static void raw_open(sy_stream *s, sy_req *req, void *ud)
{
    (void)ud;
    sy_stream_cbs cbs = {.on_data = raw_data, .on_close = rs_close};
    sy_stream_set_cbs(s, &cbs, sy_req_open_ud(req));
}

static sy_server *start(void)
{
    sy_server *srv;
    sy_ws_opts *o;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        return NULL;
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    sy_ws_opts_set_cbs(o, &cbs, (void *)"route-ud");
    sy_ws_opts_set_accept(o, accept_hook);
    sy_route *r = sy_server_route(srv, NULL, "/ws", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o))
        return NULL;
    sy_ws_opts_free(o);
    sy_route *raw = sy_server_route(srv, NULL, "/raw", SY_ROUTE_EXACT, NULL, NULL);
    if (!raw || sy_route_upgrade_raw(raw, "ctx", raw_check, raw_open, NULL))
        return NULL;
    if (sy_server_start(srv))
        return NULL;
    return srv;
}

static void stop(sy_server *srv)
{
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
}

TEST(accept_hook_user_data_and_request_view_at_open)
{
    sy_server *srv = start();
    CHECK(srv != NULL);
    raw_conn rc;
    int port = sy_server_port(srv, 0);
    /* raw_connect has no extra headers: put X-User in the "extension" slot's line. */
    CHECK(raw_connect(&rc, port, "/ws?kitchen", "x\r\nX-User: ann") >= 0);
    CHECK(strstr(rc.head, " 101 ") != NULL);
    raw_result res;
    raw_read_msgs(&rc, &res, 1);
    CHECK_EQ(res.nmsgs, 1);
    CHECK_MEM(res.msgs[0].head, "kitchen", 8);
    uint8_t buf[64];
    size_t n = 0;
    raw_frame(buf, &n, SY_WS_OP_TEXT, 1, 0, "x", 1);
    CHECK_EQ(raw_send(&rc, buf, n), 0);
    raw_read_msgs(&rc, &res, 1);
    CHECK_EQ(res.nmsgs, 1);
    CHECK_MEM(res.msgs[0].head, "null", 5);
    raw_close(&rc);
    stop(srv); /* on_close released the user data */
    CHECK(strstr(seen, "ud=kitchen method=GET path=/ws user=ann version=11 peer=ok") != NULL);
    CHECK_EQ(atomic_load(&freed_uds), 1);
}

TEST(user_data_of_a_refused_handshake_is_released)
{
    atomic_store(&freed_uds, 0);
    sy_server *srv = start();
    CHECK(srv != NULL);
    raw_conn rc;
    CHECK(raw_connect(&rc, sy_server_port(srv, 0), "/ws?deny", NULL) >= 0);
    CHECK(strstr(rc.head, " 403 ") != NULL);
    raw_close(&rc);
    stop(srv);
    CHECK_EQ(atomic_load(&freed_uds), 1);
}

TEST(raw_stream_reads_the_check_hook_user_data)
{
    atomic_store(&freed_uds, 0);
    sy_server *srv = start();
    CHECK(srv != NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(sy_server_port(srv, 0))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    const char req[] =
        "GET /raw HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: ctx\r\n\r\nz";
    CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
    char buf[1024];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = 0;
        if (strstr(buf, "raw-ctx"))
            break;
    }
    buf[got] = 0;
    CHECK(strstr(buf, " 101 ") != NULL);
    CHECK(strstr(buf, "\r\n\r\nraw-ctx") != NULL);
    close(fd);
    stop(srv);
    CHECK_EQ(atomic_load(&freed_uds), 1);
}

int main(void)
{
    RUN(accept_hook_user_data_and_request_view_at_open);
    RUN(user_data_of_a_refused_handshake_is_released);
    RUN(raw_stream_reads_the_check_hook_user_data);
    return sy_t_summary();
}
