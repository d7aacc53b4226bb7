/* The probe's HTTP/1 head parser, body reader, byte classifier and quoting (src/probe/head.c,
 * src/probe/findings.c): whole, split at every offset, on a guard page, and past every limit. */
#include "harness.h"
#include "probe/probe.h"

static sy_probe_head h;

static char *g_copy;
static size_t g_len;

/* Parse s from a copy that ends on a guard page; the copy lives until the next call (the
 * head's fields point into it). */
static ssize_t parse(const char *s, int request)
{
    const char *detail;
    if (g_copy)
        sy_t_guard_free(g_copy, g_len);
    g_len = strlen(s);
    g_copy = sy_t_guard_copy(s, g_len);
    return sy_probe_head_parse(g_copy, g_len, request, &h, &detail);
}

TEST(response_whole_and_split)
{
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade:  websocket \r\n"
                               "Connection: Upgrade\r\nX-Empty:\r\n\r\nFRAMES";
    size_t full = sizeof(resp) - 1 - 6;
    CHECK_EQ(parse(resp, 0), full);
    CHECK_EQ(h.status, 101);
    CHECK_EQ(h.nfields, 3);
    CHECK_EQ(h.fields[0].value_len, 9);
    CHECK_MEM(h.fields[0].value, "websocket", 9);
    CHECK_EQ(h.fields[2].value_len, 0);
    CHECK(sy_probe_head_get(&h, "connection", NULL) != NULL);
    for (size_t cut = 0; cut < full; cut++) {
        const char *detail;
        char *g = sy_t_guard_copy(resp, cut);
        ssize_t r = sy_probe_head_parse(g, cut, 0, &h, &detail);
        sy_t_guard_free(g, cut);
        CHECK_EQ(r, 0);
    }
}

TEST(bare_lf_and_reason)
{
    CHECK_EQ(parse("HTTP/1.0 200\nA: b\n\n", 0), 19);
    CHECK_EQ(h.minor, 0);
    CHECK_EQ(h.reason_len, 0);
    CHECK_EQ(parse("HTTP/1.1 404 Not Found\r\n\r\n", 0), 26);
    CHECK_MEM(h.reason, "Not Found", 9);
    CHECK_EQ(h.bare_lf, 0);
    /* counted, and named as a finding that does not stop the checks */
    CHECK(parse("HTTP/1.1 101 X\nUpgrade: websocket\r\nA: b\n\n", 0) > 0);
    CHECK_EQ(h.bare_lf, 3);
    sy_probe_report rep;
    sy_probe_report_init(&rep);
    sy_probe_head_check(&rep, "websocket", &h, "handshake");
    CHECK(sy_probe_has(&rep, "websocket", SY_PF_HTTP_BAD_RESPONSE));
    CHECK(strstr(rep.findings[0].msg, "3 of its head's lines") &&
          strstr(rep.findings[0].hint, "CRLF"));
    CHECK(parse("HTTP/1.1 101 X\r\n\r\n", 0) > 0);
    sy_probe_report_init(&rep);
    sy_probe_head_check(&rep, "websocket", &h, "handshake");
    CHECK_EQ(rep.nfindings, 0);
}

TEST(bad_line_kept_and_explained)
{
    /* a WebSocket frame written before the empty line that ends the 101 */
    CHECK_EQ(parse("HTTP/1.1 101 X\r\nUpgrade: websocket\r\n\x81\x05hello\r\n\r\n", 0),
             SY_PROBE_HEAD_BAD);
    CHECK_MEM(h.bad_line, "\x81\x05hello", 7);
    CHECK_EQ(h.bad_len, 7);
    CHECK(strstr(sy_probe_head_bad_hint(&h), "WebSocket frame"));
    /* other binary bytes, and a plain bad line */
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\n\x01\x02\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK(strstr(sy_probe_head_bad_hint(&h), "binary bytes"));
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_MEM(h.bad_line, "no colon", 8);
    CHECK(sy_probe_head_bad_hint(&h) == NULL);
    CHECK_EQ(parse("HTTP/1.1 2x0 OK\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_MEM(h.bad_line, "HTTP/1.1 2x0 OK", 15);
}

TEST(not_http_is_known_early)
{
    CHECK_EQ(parse("\x15\x03\x03\x00\x02", 0), SY_PROBE_HEAD_NOT_HTTP);
    CHECK_EQ(parse("X", 0), SY_PROBE_HEAD_NOT_HTTP);
    CHECK_EQ(parse("HTT", 0), 0);
    CHECK_EQ(parse("SSH-2.0-OpenSSH\r\n", 0), SY_PROBE_HEAD_NOT_HTTP);
}

TEST(malformed_lines)
{
    CHECK_EQ(parse("HTTP/1.1 20 OK\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/1.1 200OK\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/x.1 200 OK\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
    CHECK_EQ(parse("HTTP/1.1 200 OK\r\nA: x\001y\r\n\r\n", 0), SY_PROBE_HEAD_BAD);
}

TEST(limits)
{
    static char big[SY_PROBE_MAX_HEAD + 2048];
    size_t o = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 101 X\r\n");
    while (o + 20 < sizeof(big))
        o += (size_t)snprintf(big + o, sizeof(big) - o, "X-Filler: aaaaaaa\r\n");
    const char *detail;
    CHECK_EQ(sy_probe_head_parse(big, o, 0, &h, &detail), SY_PROBE_HEAD_TOO_LARGE);
    /* one endless start line */
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 ", 9);
    CHECK_EQ(sy_probe_head_parse(big, sizeof(big), 0, &h, &detail), SY_PROBE_HEAD_TOO_LARGE);
    /* 101 fields */
    o = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 101; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "A%d: b\r\n", i);
    o += (size_t)snprintf(big + o, sizeof(big) - o, "\r\n");
    CHECK_EQ(sy_probe_head_parse(big, o, 0, &h, &detail), SY_PROBE_HEAD_TOO_LARGE);
}

TEST(request_line)
{
    CHECK(parse("GET /reflect?x HTTP/1.0\r\nHost: a\r\n\r\n", 1) > 0);
    CHECK_EQ(h.minor, 0);
    CHECK_EQ(h.target_len, 10);
    CHECK_EQ(parse("GET  HTTP/1.1\r\n\r\n", 1), SY_PROBE_HEAD_BAD);
}

static size_t feed_all(sy_probe_body *b, const char *s, int bytewise)
{
    size_t n = strlen(s), used = 0;
    if (!bytewise)
        return sy_probe_body_feed(b, (const uint8_t *)s, n);
    for (size_t i = 0; i < n && !b->done; i++)
        used += sy_probe_body_feed(b, (const uint8_t *)s + i, 1);
    return used;
}

TEST(body_length_chunked_close)
{
    sy_probe_body b;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        CHECK(parse("HTTP/1.1 400 Bad\r\nContent-Length: 5\r\n\r\n", 0) > 0);
        sy_probe_body_init(&b, &h, 0);
        CHECK_EQ(feed_all(&b, "helloEXTRA", bytewise), 5);
        CHECK(b.done && b.snip_len == 5);
        CHECK(parse("HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n", 0) > 0);
        sy_probe_body_init(&b, &h, 0);
        feed_all(&b, "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n", bytewise);
        CHECK(b.done && !b.error);
        CHECK_EQ(b.snip_len, 5);
        CHECK_MEM(b.snippet, "abcde", 5);
    }
    sy_probe_body_init(&b, &h, 0);
    feed_all(&b, "zz\r\n", 0);
    CHECK(b.error);
    sy_probe_body_init(&b, &h, 0);
    feed_all(&b, "3\r\nabcXY", 0);
    CHECK(b.error);
    sy_probe_body_init(&b, &h, 0);
    feed_all(&b, "1234567890abcdef0\r\n", 0);
    CHECK(b.error);
    sy_probe_body_init(&b, &h, 0);
    static char ext[6000];
    memset(ext, 'e', sizeof(ext) - 1);
    ext[0] = '1';
    ext[1] = ';';
    feed_all(&b, ext, 0);
    CHECK(b.error);
    CHECK(parse("HTTP/1.1 200 OK\r\n\r\n", 0) > 0);
    sy_probe_body_init(&b, &h, 0);
    CHECK(sy_probe_body_close_delimited(&b));
    CHECK(parse("HTTP/1.1 204 No\r\n\r\n", 0) > 0);
    sy_probe_body_init(&b, &h, 0);
    CHECK(b.done);
}

TEST(classify_and_quote)
{
    CHECK(strstr(sy_probe_classify_bytes((const uint8_t *)"\x15\x03\x01\x00\x02", 5), "TLS"));
    CHECK(strstr(sy_probe_classify_bytes((const uint8_t *)"\0\0\x06\x04\0\0\0\0\0", 9), "HTTP/2"));
    CHECK(strstr(sy_probe_classify_bytes((const uint8_t *)"SSH-2.0", 7), "SSH"));
    CHECK(sy_probe_classify_bytes((const uint8_t *)"\x01\x02", 2) == NULL);
    char q[16];
    CHECK(!strcmp(sy_probe_quote(q, sizeof(q), "a\r\n\x01", 4), "a\\r\\n\\x01"));
    sy_probe_quote(q, sizeof(q), "aaaaaaaaaaaaaaaaaaaaaaaa", 24);
    CHECK(strlen(q) < sizeof(q) && strstr(q, "..."));
}

int main(void)
{
    RUN(response_whole_and_split);
    RUN(bare_lf_and_reason);
    RUN(bad_line_kept_and_explained);
    RUN(not_http_is_known_early);
    RUN(malformed_lines);
    RUN(limits);
    RUN(request_line);
    RUN(body_length_chunked_close);
    RUN(classify_and_quote);
    return sy_t_summary();
}
