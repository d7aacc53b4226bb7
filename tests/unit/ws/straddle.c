/* A data frame that arrives in pieces: its first piece is copied into the message buffer
 * (sized for the whole frame), and the connection then reads the rest straight behind it
 * (the stream's read_into: one readv into the message buffer and the shared read buffer).
 * These send frames split so that a read ends inside them, with the rest large, and check
 * what the handler was given byte for byte (it answers with a hash of the message): rest
 * alone; rest followed by further frames in the same read; text whose UTF-8 sequence is cut
 * by the split, valid and invalid after it; a fragmented message whose second frame is split;
 * a ping between fragments; and a close that starts while the rest is being read. */
#include "rawws.h"
#include "switchyard.h"

#include <time.h>

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The handler answers every message with "<opcode> <length> <hash>". */
static void srv_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)ud;
    char out[64];
    int n =
        snprintf(out, sizeof(out), "%d %zu %016llx", op, len, (unsigned long long)fnv(data, len));
    sy_ws_send(ws, SY_WS_TEXT, out, (size_t)n);
}

static sy_server *start(int *port)
{
    sy_server *srv = NULL;
    sy_ws_opts *o = NULL;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, 1) || sy_ws_opts_new(&o))
        abort();
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, 0);
    sy_ws_opts_set(o, SY_WS_OPT_MAX_MESSAGE, 4 << 20);
    sy_ws_cbs cbs = {.on_message = srv_message};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_route *r = sy_server_route(srv, NULL, "/h", SY_ROUTE_EXACT, NULL, NULL);
    if (!r || sy_route_websocket(r, o) || sy_server_start(srv))
        abort();
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

static void pause_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Payload bytes: binary noise, or UTF-8 text made of 1- to 4-byte characters. */
static void fill(uint8_t *p, size_t n, int text, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (!text) {
            p[i++] = (uint8_t)x;
            continue;
        }
        static const char *chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
        const char *c = chars[x % 4];
        size_t k = strlen(c);
        if (i + k > n)
            c = "z", k = 1;
        memcpy(p + i, c, k);
        i += k;
    }
}

/* The handler's answer must be want (both printed when it is not). */
#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        if (strcmp((got), (want)) != 0) {                                                          \
            printf("  got  %s\n  want %s\n", (got), (want));                                       \
            CHECK(!"the handler's answer differs");                                                \
        }                                                                                          \
    } while (0)

static char expect_buf[64];
static const char *expect(int op, const uint8_t *p, size_t n)
{
    snprintf(expect_buf, sizeof(expect_buf), "%d %zu %016llx", op, n,
             (unsigned long long)fnv(p, n));
    return expect_buf;
}

/* Send buf in two writes, split at cut, with a pause between so the server reads the first
 * part on its own. */
static void send_split(raw_conn *rc, const uint8_t *buf, size_t len, size_t cut)
{
    CHECK_EQ(raw_send(rc, buf, cut), 0);
    pause_ms(30);
    CHECK_EQ(raw_send(rc, buf + cut, len - cut), 0);
}

static uint8_t *frames; /* room for the frames a test sends */
static uint8_t *payload;
#define ROOM (6u << 20)

TEST(rest_of_a_large_frame_read_in_place)
{
    int port;
    sy_server *srv = start(&port);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/h", NULL) >= 0);
    /* cut points: inside the header, just after it, early, middle, one byte before the end */
    static const size_t sizes[] = {300000, 65536, 1 << 20};
    for (size_t s = 0; s < SY_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        size_t cuts[] = {6, 14, 100, n / 2, n + 13};
        for (size_t c = 0; c < SY_ARRAY_LEN(cuts); c++) {
            fill(payload, n, 0, (unsigned)(s * 10 + c));
            size_t len = 0;
            raw_frame(frames, &len, SY_WS_OP_BINARY, 1, 0, payload, n);
            send_split(&rc, frames, len, cuts[c]);
            raw_result res;
            raw_read_msgs(&rc, &res, 1);
            CHECK_EQ(res.nmsgs, 1);
            CHECK_STR((char *)res.msgs[0].head, expect(SY_WS_OP_BINARY, payload, n));
        }
    }
    raw_close(&rc);
    stop(srv);
}

TEST(rest_followed_by_more_frames_in_the_same_read)
{
    int port;
    sy_server *srv = start(&port);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/h", NULL) >= 0);
    /* four frames back to back: 200000, 9000, 150000 (split inside), 70000 */
    static const size_t sizes[] = {200000, 9000, 150000, 70000};
    char want[4][64];
    size_t len = 0, cut = 0;
    uint8_t *p = payload;
    for (int i = 0; i < 4; i++) {
        fill(p, sizes[i], 0, 100u + (unsigned)i);
        if (i == 2)
            cut = len + 14 + 5000; /* 5000 bytes into the third frame's payload */
        raw_frame(frames, &len, SY_WS_OP_BINARY, 1, 0, p, sizes[i]);
        snprintf(want[i], sizeof(want[i]), "%s", expect(SY_WS_OP_BINARY, p, sizes[i]));
        p += sizes[i];
    }
    send_split(&rc, frames, len, cut);
    raw_result res;
    raw_read_msgs(&rc, &res, 4);
    CHECK_EQ(res.nmsgs, 4);
    for (int i = 0; i < res.nmsgs; i++)
        CHECK_STR((char *)res.msgs[i].head, want[i]);
    raw_close(&rc);
    stop(srv);
}

TEST(text_split_inside_a_character)
{
    int port;
    sy_server *srv = start(&port);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/h", NULL) >= 0);
    size_t n = 250000;
    fill(payload, n, 1, 7);
    /* find a 4-byte character after 40000 bytes and cut after its second byte */
    size_t at = 40000;
    while ((payload[at] & 0xf8) != 0xf0)
        at++;
    size_t len = 0;
    raw_frame(frames, &len, SY_WS_OP_TEXT, 1, 0, payload, n);
    send_split(&rc, frames, len, 10 + at + 2);
    raw_result res;
    raw_read_msgs(&rc, &res, 1);
    CHECK_EQ(res.nmsgs, 1);
    CHECK_STR((char *)res.msgs[0].head, expect(SY_WS_OP_TEXT, payload, n));

    /* the same with a byte in the rest that is not UTF-8: the connection fails with 1007 */
    payload[at + 50000] = 0xff;
    len = 0;
    raw_frame(frames, &len, SY_WS_OP_TEXT, 1, 0, payload, n);
    send_split(&rc, frames, len, 10 + at + 2);
    raw_read_msgs(&rc, &res, 1);
    CHECK_EQ(res.nmsgs, 0);
    CHECK_EQ(res.close_code, 1007);
    raw_close(&rc);
    stop(srv);
}

TEST(fragmented_message_with_a_split_frame_and_a_ping)
{
    int port;
    sy_server *srv = start(&port);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/h", NULL) >= 0);
    size_t a = 80000, b = 120000, c = 30000;
    fill(payload, a + b + c, 0, 9);
    size_t len = 0;
    raw_frame(frames, &len, SY_WS_OP_BINARY, 0, 0, payload, a);
    raw_frame(frames, &len, SY_WS_OP_PING, 1, 0, "p", 1);
    size_t second = len;
    raw_frame(frames, &len, SY_WS_OP_CONT, 0, 0, payload + a, b);
    raw_frame(frames, &len, SY_WS_OP_CONT, 1, 0, payload + a + b, c);
    send_split(&rc, frames, len, second + 14 + 777);
    /* the pong comes first (not counted as a message), then the answer */
    raw_result res;
    raw_read_msgs(&rc, &res, 1);
    CHECK_EQ(res.nmsgs, 1);
    CHECK_STR((char *)res.msgs[0].head, expect(SY_WS_OP_BINARY, payload, a + b + c));
    raw_close(&rc);
    stop(srv);
}

TEST(close_while_the_rest_arrives)
{
    /* The server fails the connection inside the rest (a frame with RSV bits follows in the
     * same read): what was read after that point is dropped, the close is 1002, and the
     * message before the bad frame was answered. */
    int port;
    sy_server *srv = start(&port);
    raw_conn rc;
    CHECK(raw_connect(&rc, port, "/h", NULL) >= 0);
    size_t n = 400000;
    fill(payload, n, 0, 11);
    size_t len = 0;
    raw_frame(frames, &len, SY_WS_OP_BINARY, 1, 0, payload, n);
    raw_frame(frames, &len, SY_WS_OP_BINARY, 1, 0x20, payload, 1000); /* RSV2: invalid */
    raw_frame(frames, &len, SY_WS_OP_BINARY, 1, 0, payload, 100000);
    send_split(&rc, frames, len, 3000);
    raw_result res;
    raw_read_msgs(&rc, &res, 0);
    CHECK_EQ(res.nmsgs, 1);
    CHECK_STR((char *)res.msgs[0].head, expect(SY_WS_OP_BINARY, payload, n));
    CHECK_EQ(res.close_code, 1002);
    raw_close(&rc);
    stop(srv);
}

int main(void)
{
    frames = malloc(ROOM);
    payload = malloc(ROOM);
    if (!frames || !payload)
        abort();
    RUN(rest_of_a_large_frame_read_in_place);
    RUN(rest_followed_by_more_frames_in_the_same_read);
    RUN(text_split_inside_a_character);
    RUN(fragmented_message_with_a_split_frame_and_a_ping);
    RUN(close_while_the_rest_arrives);
    free(frames);
    free(payload);
    return sy_t_summary();
}
