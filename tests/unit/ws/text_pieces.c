/* Text validation when a message arrives in pieces (separate reads): a piece that is all ASCII
 * is taken as valid without the UTF-8 check only at a character boundary; inside an open
 * multi-byte sequence it is checked like any other (and ends the sequence badly). The client
 * writes each piece separately, with a pause, so that the server reads them apart. */
#include "rawws.h"
#include "switchyard.h"

static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, op, data, len);
}

static sy_server *start(int *port)
{
    sy_server *srv = NULL;
    sy_ws_opts *o = NULL;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        abort();
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, 0);
    sy_ws_cbs cbs = {.on_message = srv_message};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/e", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        abort();
    sy_ws_opts_free(o);
    *port = sy_server_port(srv, 0);
    return srv;
}

/* Send one masked text frame whose payload is the concatenation of pieces, each piece in its
 * own write (the header goes with the first). Returns the echo's length, or -close code. */
static int send_in_pieces(int port, const char *const *pieces, int n)
{
    raw_conn rc;
    if (raw_connect(&rc, port, "/e", NULL) < 0 || !strstr(rc.head, " 101 "))
        return -1;
    char payload[256];
    size_t plen = 0;
    for (int i = 0; i < n; i++) {
        memcpy(payload + plen, pieces[i], strlen(pieces[i]));
        plen += strlen(pieces[i]);
    }
    uint8_t frame[300];
    size_t flen = 0;
    raw_frame(frame, &flen, SY_WS_OP_TEXT, 1, 0, payload, plen);
    size_t hl = flen - plen, off = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(pieces[i]) + (i == 0 ? hl : 0);
        if (raw_send(&rc, frame + off, k) < 0)
            return -1;
        off += k;
        usleep(20000);
    }
    raw_result res;
    raw_read_msgs(&rc, &res, 1);
    raw_close(&rc);
    if (res.nmsgs == 1)
        return (int)res.msgs[0].len;
    return -res.close_code;
}

TEST(ascii_pieces_after_an_open_sequence)
{
    int port;
    sy_server *srv = start(&port);
    /* Valid: a character completed in the next piece, a piece that is all ASCII between. */
    const char *ok1[] = {"abc\xc3", "\xa9xyz"};
    const char *ok2[] = {"0123456789abcdefghijklmnopqrstuvwxyz", "\xe2\x82", "\xac", "tail"};
    /* Invalid: an ASCII piece where a continuation byte must come. */
    const char *bad1[] = {"abc\xc3", "xyz0123456789abcdefghijklmnopqrstuvwxyz"};
    const char *bad2[] = {"\xf0\x9f\x98", "0123456789abcdefghijklmnopqrstuvwxyz"};
    /* Invalid: an ASCII piece inside a character that a later piece would complete. */
    const char *bad4[] = {"abc\xc3", "xyz0123456789abcdefghijklmnopqrstuvwxyz", "\xa9"};
    /* Invalid at the end: the message stops inside a character. */
    const char *bad3[] = {"0123456789abcdefghijklmnopqrstuvwxyz", "\xc3"};
    int r1 = send_in_pieces(port, ok1, 2);
    int r2 = send_in_pieces(port, ok2, 4);
    int r3 = send_in_pieces(port, bad1, 2);
    int r4 = send_in_pieces(port, bad2, 2);
    int r5 = send_in_pieces(port, bad3, 2);
    int r6 = send_in_pieces(port, bad4, 3);
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    CHECK_EQ(r1, 8);
    CHECK_EQ(r2, 36 + 3 + 4);
    CHECK_EQ(r3, -1007);
    CHECK_EQ(r4, -1007);
    CHECK_EQ(r5, -1007);
    CHECK_EQ(r6, -1007);
}

int main(void)
{
    RUN(ascii_pieces_after_an_open_sequence);
    return sy_t_summary();
}
