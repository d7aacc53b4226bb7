/* The send and receive sides of one connection must not share message state: a fragmented
 * send started while a fragmented message is arriving must not change how that message is
 * validated or delivered, and the opcode of a message being sent must not change what the
 * send side believes about the message being delivered. A raw client interleaves a pong
 * (which reaches the server's on_pong) between the fragments of its message, so the server
 * starts its own fragmented send exactly in the middle of receiving one. */
#include "rawws.h"
#include "switchyard.h"

#include <stdatomic.h>

enum { MODE_SEND_BINARY = 1, MODE_SEND_TEXT, MODE_ECHO_AS_TEXT, MODE_TEXT_FRAGMENTS };

static atomic_int g_mode;
static atomic_int g_msgs, g_msg_op, g_frag_ret;
static atomic_int g_close_code;
static char g_msg_data[16];
static atomic_size_t g_msg_len;

static void srv_pong(sy_ws *ws, const void *data, size_t len, void *ud)
{
    (void)data;
    (void)len;
    (void)ud;
    /* Start a streaming send in the middle of the message being received. */
    int op = atomic_load(&g_mode) == MODE_SEND_BINARY ? SY_WS_BINARY : SY_WS_TEXT;
    atomic_store(&g_frag_ret, sy_ws_send_fragment(ws, op, "x", 1, 0));
}

static void send_result(sy_ws *ws, const char *what, int r)
{
    char out[48];
    int n = snprintf(out, sizeof(out), "%s=%d", what, r);
    sy_ws_send(ws, SY_WS_TEXT, out, (size_t)n);
}

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    atomic_fetch_add(&g_msgs, 1);
    atomic_store(&g_msg_op, op);
    atomic_store(&g_msg_len, len);
    memcpy(g_msg_data, data, SY_MIN(len, sizeof(g_msg_data)));
    switch (atomic_load(&g_mode)) {
    case MODE_SEND_BINARY:
    case MODE_SEND_TEXT:
        sy_ws_send_fragment(ws, 0, "y", 1, 1); /* finish our message */
        break;
    case MODE_ECHO_AS_TEXT:
        /* A whole text message sent as one fragment, then the delivered (binary, not UTF-8)
         * bytes as text: the send side must still validate them. */
        send_result(ws, "frag", sy_ws_send_fragment(ws, SY_WS_TEXT, "ok", 2, 1));
        send_result(ws, "echo", sy_ws_send(ws, SY_WS_TEXT, data, len));
        break;
    case MODE_TEXT_FRAGMENTS: {
        /* Text sent in fragments is validated across fragment boundaries; a refused
         * fragment is not sent. (Other messages may only follow the fragmented one.) */
        int r1 = sy_ws_send_fragment(ws, SY_WS_TEXT, "\xff", 1, 1);
        int r2 = sy_ws_send_fragment(ws, SY_WS_TEXT, "a\xc3", 2, 0);
        int r3 = sy_ws_send_fragment(ws, 0, "", 0, 1); /* would end inside a character */
        int r4 = sy_ws_send_fragment(ws, 0, "\xa9", 1, 1);
        char out[64];
        int n = snprintf(out, sizeof(out), "%d,%d,%d,%d", r1, r2, r3, r4);
        sy_ws_send(ws, SY_WS_TEXT, out, (size_t)n);
        break;
    }
    }
}

static void srv_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_store(&g_close_code, info->code);
}

static sy_server *start(int *port)
{
    sy_server *srv;
    sy_ws_opts *o;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        return NULL;
    sy_ws_cbs cbs = {.on_message = srv_message, .on_close = srv_close, .on_pong = srv_pong};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE_THRESHOLD, 0);
    sy_route *r = sy_server_route(srv, NULL, "/t", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        return NULL;
    sy_ws_opts_free(o);
    *port = sy_server_port(srv, 0);
    return srv;
}

static void stop(sy_server *srv)
{
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
}

/* Send first_op "abc"+first (fin=0), a pong, a continuation with rest (fin=1), then a close
 * 1000; read everything the server sends. ext: extension offer or NULL. */
static int exchange(int mode, uint8_t first_op, const char *first, const char *rest,
                    const char *ext, raw_result *res)
{
    int port;
    atomic_store(&g_mode, mode);
    atomic_store(&g_msgs, 0);
    atomic_store(&g_msg_op, 0);
    atomic_store(&g_frag_ret, 99);
    atomic_store(&g_close_code, 0);
    sy_server *srv = start(&port);
    if (!srv)
        return -1;
    raw_conn rc;
    int ok = raw_connect(&rc, port, "/t", ext) >= 0 && strstr(rc.head, " 101 ");
    if (ok) {
        static uint8_t buf[4096];
        size_t n = 0;
        raw_frame(buf, &n, first_op, 0, 0, first, strlen(first));
        raw_frame(buf, &n, SY_WS_OP_PONG, 1, 0, "go", 2);
        raw_frame(buf, &n, SY_WS_OP_CONT, 1, 0, rest, strlen(rest));
        raw_frame(buf, &n, SY_WS_OP_CLOSE, 1, 0, "\x03\xe8", 2);
        ok = raw_send(&rc, buf, n) == 0;
        raw_read_msgs(&rc, res, 0);
    }
    raw_close(&rc);
    stop(srv);
    return ok ? 0 : -1;
}

static void invalid_text_fails_1007(const char *ext)
{
    raw_result res;
    /* "abc" then a continuation that is not UTF-8 */
    CHECK_EQ(exchange(MODE_SEND_BINARY, SY_WS_OP_TEXT, "abc", "\xff\xfe", ext, &res), 0);
    CHECK_EQ(atomic_load(&g_frag_ret), SY_WS_SEND_OK); /* our binary send did start */
    CHECK_EQ(res.close_code, 1007);
    CHECK_EQ(atomic_load(&g_msgs), 0); /* never delivered, as binary or otherwise */
    CHECK_EQ(atomic_load(&g_close_code), 1007);
}

TEST(text_with_invalid_utf8_fails_while_sending_binary_fragments)
{
    invalid_text_fails_1007(NULL);
}

TEST(text_with_invalid_utf8_fails_while_sending_compressed_fragments)
{
    invalid_text_fails_1007("permessage-deflate");
}

static void binary_delivered(const char *ext)
{
    raw_result res;
    CHECK_EQ(exchange(MODE_SEND_TEXT, SY_WS_OP_BINARY, "\xff", "\xfe", ext, &res), 0);
    CHECK_EQ(atomic_load(&g_frag_ret), SY_WS_SEND_OK);
    CHECK_EQ(atomic_load(&g_msgs), 1);
    CHECK_EQ(atomic_load(&g_msg_op), SY_WS_BINARY);
    CHECK_EQ(atomic_load(&g_msg_len), 2);
    CHECK_MEM(g_msg_data, "\xff\xfe", 2);
    /* our text message "x" + "y" went out whole, then the close was answered normally */
    CHECK_EQ(res.nmsgs, 1);
    CHECK_EQ(res.msgs[0].opcode, SY_WS_TEXT);
    CHECK_EQ(res.close_code, 1000);
    CHECK_EQ(atomic_load(&g_close_code), 1000);
}

TEST(binary_is_not_validated_while_sending_text_fragments)
{
    binary_delivered(NULL);
}

TEST(binary_is_not_validated_while_sending_compressed_text_fragments)
{
    binary_delivered("permessage-deflate");
}

/* Send one whole message (op, payload) then a close; read the answers. */
static int whole_message(int mode, uint8_t op, const char *payload, raw_result *res)
{
    int port;
    atomic_store(&g_mode, mode);
    sy_server *srv = start(&port);
    if (!srv)
        return -1;
    raw_conn rc;
    int ok = raw_connect(&rc, port, "/t", NULL) >= 0 && strstr(rc.head, " 101 ");
    if (ok) {
        uint8_t buf[256];
        size_t n = 0;
        raw_frame(buf, &n, op, 1, 0, payload, strlen(payload));
        raw_frame(buf, &n, SY_WS_OP_CLOSE, 1, 0, "\x03\xe8", 2);
        ok = raw_send(&rc, buf, n) == 0;
        raw_read_msgs(&rc, res, 0);
    }
    raw_close(&rc);
    stop(srv);
    return ok ? 0 : -1;
}

TEST(delivered_binary_sent_back_as_text_is_validated)
{
    raw_result res;
    CHECK_EQ(whole_message(MODE_ECHO_AS_TEXT, SY_WS_OP_BINARY, "\xff\xfe", &res), 0);
    char want[32];
    snprintf(want, sizeof(want), "echo=%d", SY_EINVAL);
    CHECK_EQ(res.nmsgs, 3);
    CHECK(!strcmp((char *)res.msgs[0].head, "ok"));
    CHECK(!strcmp((char *)res.msgs[1].head, "frag=0"));
    CHECK(!strcmp((char *)res.msgs[2].head, want)); /* no invalid text frame went out */
    CHECK_EQ(res.close_code, 1000);
}

TEST(text_fragments_are_validated_across_boundaries)
{
    raw_result res;
    CHECK_EQ(whole_message(MODE_TEXT_FRAGMENTS, SY_WS_OP_TEXT, "go", &res), 0);
    char want[64];
    snprintf(want, sizeof(want), "%d,0,%d,0", SY_EINVAL, SY_EINVAL);
    CHECK_EQ(res.nmsgs, 2);
    CHECK_EQ(res.msgs[0].opcode, SY_WS_TEXT);
    CHECK(!strcmp((char *)res.msgs[0].head, "a\xc3\xa9"));
    CHECK(!strcmp((char *)res.msgs[1].head, want));
    CHECK_EQ(res.close_code, 1000);
}

int main(void)
{
    sy_set_log(NULL, 0, NULL);
    RUN(text_with_invalid_utf8_fails_while_sending_binary_fragments);
    RUN(text_with_invalid_utf8_fails_while_sending_compressed_fragments);
    RUN(binary_is_not_validated_while_sending_text_fragments);
    RUN(binary_is_not_validated_while_sending_compressed_text_fragments);
    RUN(delivered_binary_sent_back_as_text_is_validated);
    RUN(text_fragments_are_validated_across_boundaries);
    return sy_t_summary();
}
