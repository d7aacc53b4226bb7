/* The probe's side of a WebSocket after the 101 (src/probe/sess.c): frames it builds, and
 * what it makes of the server's bytes, whole and byte by byte. */
#include "harness.h"
#include "probe/probe.h"

#include <zlib.h>

static sy_probe_ws_sess s;
static uint8_t in[8192];

static size_t server_frame(uint8_t *out, int opcode, int rsv1, const void *p, size_t n)
{
    size_t h = sy_ws_frame_header(out, (uint8_t)opcode, 1, rsv1 ? SY_WS_RSV1 : 0, n, NULL);
    memcpy(out + h, p, n);
    return h + n;
}

static void feed(const uint8_t *p, size_t n, int bytewise)
{
    memcpy(in, p, n);
    if (!bytewise) {
        sy_probe_ws_sess_feed(&s, in, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        sy_probe_ws_sess_feed(&s, in + i, 1);
}

TEST(frames_out)
{
    uint8_t f[200];
    static const uint8_t mask[4] = {1, 2, 3, 4};
    size_t n = sy_probe_ws_frame(f, sizeof(f), SY_WS_OP_TEXT, "abc", 3, mask);
    CHECK_EQ(n, 2 + 4 + 3);
    CHECK_EQ(f[0], 0x81);
    CHECK_EQ(f[1], 0x83);
    CHECK_EQ(f[6], 'a' ^ 1);
    n = sy_probe_ws_frame(f, sizeof(f), SY_WS_OP_PING, "p", 1, NULL);
    CHECK_EQ(n, 3);
    CHECK_EQ(f[1], 1); /* unmasked: only the security check sends these */
    CHECK_EQ(sy_probe_ws_frame(f, 10, SY_WS_OP_TEXT, "abcdefghijk", 11, mask), 0);
}

TEST(echo_pong_close_bytewise)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        sy_probe_ws_sess_init(&s, 0);
        sy_probe_ws_sess_sent(&s, SY_WS_OP_TEXT, "hello", 5);
        sy_probe_ws_sess_sent(&s, SY_WS_OP_PING, "pp", 2);
        uint8_t buf[256];
        size_t n = server_frame(buf, SY_WS_OP_PING, 0, "srv", 3);
        n += server_frame(buf + n, SY_WS_OP_TEXT, 0, "hello", 5);
        n += server_frame(buf + n, SY_WS_OP_PONG, 0, "pp", 2);
        n += server_frame(buf + n, SY_WS_OP_CLOSE, 0,
                          "\x03\xe8"
                          "bye",
                          5);
        feed(buf, n, bytewise);
        CHECK(!s.error);
        CHECK(s.got_echo && s.echo_match);
        CHECK(s.got_pong && s.pong_match);
        CHECK(s.pong_due && s.pong_payload_len == 3);
        CHECK(s.got_close && s.close_code == 1000 && !strcmp(s.close_reason, "bye"));
        CHECK_EQ(s.rx_messages, 1);
    }
}

TEST(not_an_echo_and_unsolicited)
{
    sy_probe_ws_sess_init(&s, 0);
    uint8_t buf[256];
    size_t n = server_frame(buf, SY_WS_OP_TEXT, 0, "welcome", 7);
    feed(buf, n, 0);
    CHECK(!s.got_echo && s.rx_messages == 1 && s.rx_unasked == n);
    sy_probe_ws_sess_sent(&s, SY_WS_OP_TEXT, "hello", 5);
    n = server_frame(buf, SY_WS_OP_TEXT, 0, "other", 5);
    feed(buf, n, 0);
    CHECK(s.got_echo && !s.echo_match);
}

TEST(protocol_errors)
{
    uint8_t buf[64];
    static const uint8_t mask[4] = {9, 9, 9, 9};
    sy_probe_ws_sess_init(&s, 0);
    size_t n = sy_ws_frame_header(buf, SY_WS_OP_TEXT, 1, 0, 2, mask);
    memcpy(buf + n, "hi", 2);
    feed(buf, n + 2, 0);
    CHECK(s.error && s.error_code == 1002); /* a masked server frame */
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_TEXT, 1, "hi", 2);
    feed(buf, n, 0);
    CHECK(s.error); /* RSV1 without permessage-deflate */
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_TEXT, 0, "\xc3\x28", 2);
    feed(buf, n, 0);
    CHECK(s.error && s.error_code == 1007);
    sy_probe_ws_sess_init(&s, 0);
    feed((const uint8_t *)"HTTP/1.1 200 OK\r\n", 17, 0);
    CHECK(s.error);
    CHECK(strstr(sy_probe_ws_sess_hint(&s), "text, not frames"));
    sy_probe_ws_sess_free(&s);
}

TEST(errors_explained)
{
    uint8_t buf[64];
    static const uint8_t mask[4] = {9, 9, 9, 9};
    sy_probe_ws_sess_init(&s, 0);
    size_t n = sy_ws_frame_header(buf, SY_WS_OP_TEXT, 1, 0, 2, mask);
    memcpy(buf + n, "hi", 2);
    feed(buf, n + 2, 0);
    CHECK(strstr(sy_probe_ws_sess_hint(&s), "never mask"));
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_TEXT, 1, "hi", 2);
    feed(buf, n, 0);
    CHECK(strstr(sy_probe_ws_sess_hint(&s), "reserved bits"));
    /* close codes that must never be sent are named by value */
    static const struct {
        unsigned code;
        const char *says;
    } codes[] = {{1005, "1005, which is reserved"},   {1006, "1006, which is reserved"},
                 {1015, "1015, which is reserved"},   {999, "999, which is below 1000"},
                 {5000, "5000, which is above 4999"}, {2000, "2000, which is not assigned"}};
    for (size_t i = 0; i < SY_ARRAY_LEN(codes); i++) {
        sy_probe_ws_sess_init(&s, 0);
        uint8_t pl[2] = {(uint8_t)(codes[i].code >> 8), (uint8_t)codes[i].code};
        n = server_frame(buf, SY_WS_OP_CLOSE, 0, pl, 2);
        feed(buf, n, 0);
        CHECK(s.error && s.error_code == 1002);
        CHECK(strstr(s.error_detail, codes[i].says));
        CHECK(strstr(sy_probe_ws_sess_hint(&s), "3000-4999"));
    }
    /* in pieces the value is not at hand: still an error, in general words */
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_CLOSE, 0, "\x03\xed", 2);
    feed(buf, n, 1);
    CHECK(s.error && strstr(s.error_detail, "close code"));
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_CLOSE, 0, "\x03", 1);
    feed(buf, n, 0);
    CHECK(s.error && strstr(s.error_detail, "1-byte"));
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_CLOSE, 0, "\x03\xe8\xc3\x28", 4);
    feed(buf, n, 0);
    CHECK(s.error && s.error_code == 1007);
    CHECK(strstr(sy_probe_ws_sess_hint(&s), "UTF-8"));
    sy_probe_ws_sess_free(&s);
    /* a good close says nothing */
    sy_probe_ws_sess_init(&s, 0);
    n = server_frame(buf, SY_WS_OP_CLOSE, 0, "\x03\xe8ok", 4);
    feed(buf, n, 0);
    CHECK(!s.error && s.got_close && s.close_code == 1000);
    CHECK(sy_probe_ws_sess_hint(&s) == NULL);
    sy_probe_ws_sess_free(&s);
}

TEST(compressed_echo)
{
    sy_probe_ws_sess_init(&s, 1);
    sy_probe_ws_sess_sent(&s, SY_WS_OP_TEXT, "switchyard probe", 16);
    z_stream z;
    memset(&z, 0, sizeof(z));
    CHECK(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    uint8_t comp[128], buf[256];
    z.next_in = (uint8_t *)"switchyard probe";
    z.avail_in = 16;
    z.next_out = comp;
    z.avail_out = sizeof(comp);
    CHECK(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
    size_t clen = sizeof(comp) - z.avail_out - 4; /* drop 00 00 ff ff (RFC 7692 §7.2.1) */
    deflateEnd(&z);
    size_t n = server_frame(buf, SY_WS_OP_TEXT, 1, comp, clen);
    feed(buf, n, 1);
    CHECK(!s.error);
    CHECK(s.got_echo && s.echo_compressed && s.echo_match);
}

TEST(flood_counted)
{
    sy_probe_ws_sess_init(&s, 0);
    static uint8_t big[65536 + 16];
    size_t h = sy_ws_frame_header(big, SY_WS_OP_BINARY, 1, 0, 65536, NULL);
    for (int i = 0; i < 80 && !s.flood; i++) {
        sy_ws_frame_header(big, SY_WS_OP_BINARY, 1, 0, 65536, NULL);
        sy_probe_ws_sess_feed(&s, big, h + 65536);
    }
    CHECK(s.flood && !s.error);
    CHECK(s.rx_messages >= 64);
}

int main(void)
{
    RUN(frames_out);
    RUN(echo_pong_close_bytewise);
    RUN(not_an_echo_and_unsolicited);
    RUN(protocol_errors);
    RUN(errors_explained);
    RUN(compressed_echo);
    RUN(flood_counted);
    return sy_t_summary();
}
