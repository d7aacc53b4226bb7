/* Unit tests for src/http1/response.c: the response head parser used by the WebSocket client.
 * Every case is fed whole and as every prefix (a prefix must report "incomplete", never an
 * error or a bogus success), with inputs ending on a guard page. */
#include "harness.h"
#include "http1/response.h"

static ssize_t parse(const char *s, size_t len, sy_http1_response *r, sy_http1_header *h,
                     const char **detail)
{
    char *g = sy_t_guard_copy(s, len);
    ssize_t n = sy_http1_parse_response(g, len, 16384, r, h, 16, detail);
    /* Slices must stay inside the input: compare through offsets before releasing it. */
    if (n > 0) {
        for (size_t i = 0; i < r->num_headers; i++) {
            if (h[i].name < g || h[i].value + h[i].value_len > g + len)
                n = -999;
            h[i].name = s + (h[i].name - g);
            h[i].value = s + (h[i].value - g);
        }
        r->reason = s + (r->reason - g);
    }
    sy_t_guard_free(g, len);
    return n;
}

TEST(switching_protocols_every_prefix)
{
    const char *s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    "\r\n\x81\x05Hello";
    size_t head = strlen(s) - 7;
    sy_http1_header h[16];
    sy_http1_response r;
    const char *d = NULL;
    for (size_t i = 0; i < head; i++)
        CHECK_EQ(parse(s, i, &r, h, &d), 0);
    CHECK_EQ(parse(s, strlen(s), &r, h, &d), (ssize_t)head);
    CHECK_EQ(r.status, 101);
    CHECK_EQ(r.minor_version, 1);
    CHECK_EQ(r.reason_len, strlen("Switching Protocols"));
    CHECK_EQ(r.num_headers, 3);
    CHECK_EQ(h[2].value_len, 28);
    CHECK(memcmp(h[2].value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0);
    CHECK(memcmp(h[0].name, "Upgrade", 7) == 0);
}

TEST(empty_reason_and_ows)
{
    const char *s = "HTTP/1.0 404\r\nX:   padded  \t\r\n\r\n";
    sy_http1_header h[16];
    sy_http1_response r;
    const char *d = NULL;
    CHECK_EQ(parse(s, strlen(s), &r, h, &d), (ssize_t)strlen(s));
    CHECK_EQ(r.status, 404);
    CHECK_EQ(r.reason_len, 0);
    CHECK_EQ(h[0].value_len, 6);
    CHECK(memcmp(h[0].value, "padded", 6) == 0);
}

TEST(malformed_rejected)
{
    static const char *bad[] = {
        "HTTP/1.1 10 X\r\n\r\n",
        "HTTP/2.0 101 X\r\n\r\n",
        "HTTP/1.1 101 X\r\nBad Name: v\r\n\r\n",
        "HTTP/1.1 101 X\r\nNoColon\r\n\r\n",
        "HTTP/1.1 101 X\r\nA: b\rc\r\n\r\n",
        "HTTP/1.1 101 X\r\nA: b\nB: c\r\n\r\n",
        "http/1.1 101 X\r\n\r\n",
        "HTTP/1.1 101X\r\n\r\n",
        "HTTP/1.1 101 X\r\n : v\r\n\r\n",
        "HTTP/1.1 101 X\r\nA: \x01\r\n\r\n",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        sy_http1_header h[16];
        sy_http1_response r;
        const char *d = NULL;
        ssize_t n = parse(bad[i], strlen(bad[i]), &r, h, &d);
        if (n != SY_EHTTP_SYNTAX)
            printf("  case %zu: %zd\n", i, n);
        CHECK_EQ(n, SY_EHTTP_SYNTAX);
        CHECK(d != NULL);
    }
}

TEST(limits)
{
    char big[20000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    sy_http1_header h[16];
    sy_http1_response r;
    const char *d = NULL;
    CHECK_EQ(parse(big, sizeof(big), &r, h, &d), SY_EHTTP_HEAD_LARGE);
    char many[2000] = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 20; i++)
        strcat(many, "A: b\r\n");
    strcat(many, "\r\n");
    CHECK_EQ(parse(many, strlen(many), &r, h, &d), SY_EHTTP_HEAD_LARGE);
}

int main(void)
{
    RUN(switching_protocols_every_prefix);
    RUN(empty_reason_and_ows);
    RUN(malformed_rejected);
    RUN(limits);
    return sy_t_summary();
}
