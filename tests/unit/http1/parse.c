/* Unit tests for src/http1/parse.c: the request head parser, the framing analysis and the
 * token-list helpers. Every parse case runs whole, byte by byte (growing prefixes with
 * prev_len), and split at every offset, each input ending on a guard page. */
#include "http1/parse.h"
#include "harness.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        call;                                                                                      \
        if (sy_t_cur_failed)                                                                       \
            return;                                                                                \
    } while (0)

#define S(lit) lit, sizeof(lit) - 1

static const sy_http1_limits deflim = {1024, 8192, 64};
static sy_http1_header hdrs[128];
static sy_http1_request req;

/* One guard-page arena: a prefix of k bytes is copied so that it ends at the guard. */
#define ARENA (1u << 17)
static char *arena_end;

static const char *place(const char *s, size_t k)
{
    if (!arena_end) {
        static char zero[ARENA];
        arena_end = (char *)sy_t_guard_copy(zero, ARENA) + ARENA;
    }
    if (k > ARENA)
        abort();
    memcpy(arena_end - k, s, k);
    return arena_end - k;
}

static ssize_t P(const char *s, size_t k, size_t prev, const sy_http1_limits *lim, size_t cap,
                 const char **detail)
{
    *detail = NULL;
    ssize_t r = sy_http1_parse_request(place(s, k), k, prev, lim, &req, hdrs, cap, detail);
    if (r < 0 && (!*detail || !**detail))
        return -9999; /* every error must say why */
    return r;
}

/* Run one input three ways and expect the same answer. For a complete head, `want` is its
 * length; the first byte-by-byte success must come exactly when the last byte arrives. */
static void check_cap(const char *s, size_t n, const sy_http1_limits *lim, size_t cap, ssize_t want)
{
    const char *d;
    ssize_t r = P(s, n, 0, lim, cap, &d);
    CHECK_EQ(r, want);

    size_t prev = 0;
    ssize_t got = 0;
    for (size_t k = 1; k <= n && got == 0; k++) {
        got = P(s, k, prev, lim, cap, &d);
        if (got > 0)
            CHECK_EQ(got, (ssize_t)k);
        prev = k;
    }
    CHECK_EQ(got, want);

    for (size_t k = 0; k <= n; k++) {
        ssize_t r1 = P(s, k, 0, lim, cap, &d);
        if (r1 == 0) {
            CHECK_EQ(P(s, n, k, lim, cap, &d), want);
        } else {
            CHECK_EQ(r1, want);
            if (want > 0)
                CHECK(k >= (size_t)want);
        }
    }
    /* leave req/hdrs describing the whole input, for the caller to inspect */
    CHECK_EQ(P(s, n, 0, lim, cap, &d), want);
}

static void check(const char *s, size_t n, ssize_t want)
{
    check_cap(s, n, &deflim, SY_ARRAY_LEN(hdrs), want);
}

static void ok(const char *s, size_t n)
{
    check(s, n, (ssize_t)n);
}

static void bad(const char *s, size_t n, int err)
{
    check(s, n, err);
}

static const char *detail_of(const char *s, size_t n)
{
    const char *d;
    P(s, n, 0, &deflim, SY_ARRAY_LEN(hdrs), &d);
    return d ? d : "";
}

static int hdr_is(size_t i, const char *name, const char *value)
{
    return i < req.num_headers && req.headers[i].name_len == strlen(name) &&
           memcmp(req.headers[i].name, name, strlen(name)) == 0 &&
           req.headers[i].value_len == strlen(value) &&
           memcmp(req.headers[i].value, value, strlen(value)) == 0;
}

/* ---- request line ---- */

TEST(simple_get)
{
    TRY(ok(S("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")));
    CHECK_EQ(req.method_len, 3);
    CHECK_MEM(req.method, "GET", 3);
    CHECK_EQ(req.target_len, 15);
    CHECK_MEM(req.target, "/index.html?q=1", 15);
    CHECK_EQ(req.minor_version, 1);
    CHECK_EQ(req.num_headers, 1);
    CHECK(req.headers == hdrs);
    CHECK(hdr_is(0, "Host", "example.com"));
}

TEST(http10_and_no_headers)
{
    TRY(ok(S("GET / HTTP/1.0\r\n\r\n")));
    CHECK_EQ(req.minor_version, 0);
    CHECK_EQ(req.num_headers, 0);
    TRY(ok(S("OPTIONS * HTTP/1.1\r\n\r\n")));
    TRY(ok(S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")));
    CHECK_MEM(req.target, "example.com:443", 15);
    TRY(ok(S("M-SEARCH!#$%&'*+.^_`|~09az /x HTTP/1.1\r\n\r\n")));
    TRY(ok(S("GET http://a.example/p?x=%20&y=[]{}\x80\xff HTTP/1.1\r\n\r\n")));
}

TEST(header_ows_trimmed)
{
    TRY(ok(S("GET / HTTP/1.1\r\nHost:  \t a.b \t \r\nX-Empty:\r\nX-Sp:   \r\n"
             "X-In: a  \t b\r\nX-Obs: caf\xc3\xa9 \xff\r\nX-Q: \"a:b\", (c)\r\n\r\n")));
    CHECK_EQ(req.num_headers, 6);
    CHECK(hdr_is(0, "Host", "a.b"));
    CHECK(hdr_is(1, "X-Empty", ""));
    CHECK(hdr_is(2, "X-Sp", ""));
    CHECK(hdr_is(3, "X-In", "a  \t b"));
    CHECK(hdr_is(4, "X-Obs", "caf\xc3\xa9 \xff"));
    CHECK(hdr_is(5, "X-Q", "\"a:b\", (c)"));
    /* value slices point into the buffer */
    CHECK(req.headers[0].value > req.headers[0].name);
}

TEST(many_headers)
{
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "POST /upload HTTP/1.1\r\n");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-Header-%02d: value %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    TRY(ok(buf, n));
    CHECK_EQ(req.num_headers, 64);
    CHECK(hdr_is(0, "X-Header-00", "value 0"));
    CHECK(hdr_is(63, "X-Header-63", "value 63"));
}

TEST(too_many_headers)
{
    sy_http1_limits lim = {1024, 8192, 5};
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a%d:\r\n", i);
    size_t five = n;
    memcpy(buf + n, "\r\n", 2);
    TRY(check_cap(buf, n + 2, &lim, 128, (ssize_t)(n + 2)));
    /* six complete fields, then the end: 431 */
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "b:\r\n");
    memcpy(buf + n, "\r\n", 2);
    TRY(check_cap(buf, n + 2, &lim, 128, SY_EHTTP_HEAD_LARGE));
    /* still incomplete: detected as soon as the sixth field line is there */
    TRY(check_cap(buf, n, &lim, 128, SY_EHTTP_HEAD_LARGE));
    /* one byte of the sixth field is enough for the full parse, not yet for prev_len */
    const char *d;
    CHECK_EQ(P(buf, five, 0, &lim, 128, &d), 0);
    CHECK_EQ(P(buf, five + 1, 0, &lim, 128, &d), SY_EHTTP_HEAD_LARGE);
    CHECK(strstr(d, "too many"));
    /* the caller's array capacity bounds the count too */
    TRY(check_cap(buf, n + 2, &deflim, 5, SY_EHTTP_HEAD_LARGE));
    TRY(check_cap(buf, n + 2, &deflim, 6, (ssize_t)(n + 2)));
    TRY(check_cap(S("GET / HTTP/1.1\r\n\r\n"), &deflim, 0, 18));
    TRY(check_cap(S("GET / HTTP/1.1\r\na:\r\n\r\n"), &deflim, 0, SY_EHTTP_HEAD_LARGE));
    /* a long 64-header request with only 3 allowed, incomplete */
    sy_http1_limits lim3 = {1024, 8192, 3};
    TRY(check_cap(S("GET / HTTP/1.1\r\nHost: a\r\nB: b\r\nC: c\r\nD: d\r\nE:"), &lim3, 128,
                  SY_EHTTP_HEAD_LARGE));
}

TEST(pipelined)
{
    static const char two[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n"
                              "GET /3 HT";
    size_t first = strlen("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    TRY(check(two, sizeof(two) - 1, (ssize_t)first));
    CHECK_MEM(req.target, "/1", 2);
    CHECK_EQ(req.num_headers, 1);
    size_t second = strlen("POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n");
    TRY(check(two + first, sizeof(two) - 1 - first, (ssize_t)second));
    CHECK_MEM(req.method, "POST", 4);
    CHECK_EQ(req.num_headers, 2);
    TRY(check(two + first + second, sizeof(two) - 1 - first - second, 0));
    /* garbage after a complete head does not matter */
    TRY(check(S("GET / HTTP/1.1\r\n\r\n\n\x00\r junk"), 18));
}

TEST(leading_empty_lines)
{
    TRY(ok(S("\r\nGET / HTTP/1.1\r\n\r\n")));
    CHECK_MEM(req.method, "GET", 3);
    CHECK_EQ(req.method - (const char *)arena_end, -18);
    TRY(ok(S("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    TRY(bad(S("\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("\nGET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("\r\n\nGET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("\rGET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(check(S("\r\n\r\n"), 0));
    TRY(check(S("\r\n\r"), 0));
    TRY(check(S(""), 0));
}

TEST(versions)
{
    TRY(bad(S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), SY_EHTTP_VERSION));
    TRY(bad(S("GET / HTTP/0.9\r\n\r\n"), SY_EHTTP_VERSION));
    TRY(bad(S("GET / HTTP/1.2\r\n\r\n"), SY_EHTTP_VERSION));
    TRY(bad(S("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), SY_EHTTP_VERSION));
    /* a whole parse knows as soon as the request line ends; the prev_len path when the head
     * does */
    const char *d;
    CHECK_EQ(P(S("GET / HTTP/3.0\r\n"), 0, &deflim, 128, &d), SY_EHTTP_VERSION);
    CHECK(strstr(d, "version"));
    CHECK_EQ(P(S("GET / HTTP/3.0\r\nX"), 10, &deflim, 128, &d), 0);
    TRY(bad(S("GET / HTTP/1.10\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/11\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / http/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1 \r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/a.b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTPS/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / XTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), SY_EHTTP_SYNTAX)); /* TLS */
    TRY(bad(S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), SY_EHTTP_VERSION));
    TRY(check(S("GET / HTTP/1.1\r"), 0));
    TRY(check(S("GET / HTTP/1."), 0));
}

TEST(request_line_syntax)
{
    TRY(bad(S("GET  / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /  HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S(" GET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /a b HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET\t/ HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /\t HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("G(T / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("G\x80T / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /a\x01 HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /a\x7f HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /a\0b HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("G\0T / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(check(S("GET"), 0));
    TRY(check(S("GET /abc"), 0));
}

TEST(bare_lf_and_cr)
{
    TRY(bad(S("GET / HTTP/1.1\nHost: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\r\n\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\nHost: a\n\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHo\nst: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET /\n HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\r\n\r\r"), SY_EHTTP_SYNTAX));
    /* incomplete heads that already contain a bare LF are rejected without waiting */
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\nX"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: \rY"), SY_EHTTP_SYNTAX));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\nHost: a\n\n")), "LF"));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n")), "CR"));
}

TEST(header_syntax)
{
    TRY(bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\r\nX: a\0\r\n\r\n")), "NUL"));
    TRY(bad(S("GET / HTTP/1.1\r\nX\0: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\x0b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\x1f\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n")), "control"));
    /* obs-fold */
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")), "folding"));
    TRY(bad(S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    /* whitespace before the colon */
    TRY(bad(S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(strcmp(detail_of(S("GET / HTTP/1.1\r\nHost : a\r\n\r\n")),
                 "whitespace between header field name and colon") == 0);
    /* names */
    TRY(bad(S("GET / HTTP/1.1\r\n: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(strstr(detail_of(S("GET / HTTP/1.1\r\n: a\r\n\r\n")), "empty"));
    TRY(bad(S("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX(y): a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX/y: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(bad(S("GET / HTTP/1.1\r\n\"X\": a\r\n\r\n"), SY_EHTTP_SYNTAX));
    /* a colon inside the value is fine, and so is an empty value */
    TRY(ok(S("GET / HTTP/1.1\r\nX::a:\r\nY:\r\n\r\n")));
    CHECK(hdr_is(0, "X", ":a:"));
    CHECK(hdr_is(1, "Y", ""));
    /* smuggling spellings that must fail at the parser */
    TRY(bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"),
            SY_EHTTP_SYNTAX));
    TRY(bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n"),
            SY_EHTTP_SYNTAX));
    TRY(bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b chunked\r\n\r\n"),
            SY_EHTTP_SYNTAX));
    TRY(bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"),
            SY_EHTTP_SYNTAX));
    TRY(bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\x01\r\n\r\n"), SY_EHTTP_SYNTAX));
}

TEST(request_line_limit)
{
    sy_http1_limits lim = {32, 8192, 64};
    /* exactly at the limit */
    char line[64];
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    memcpy(line + 32 - 9, " HTTP/1.1\r\n\r\n", 13); /* request line = 32 bytes */
    TRY(check_cap(line, 32 + 4, &lim, 128, 36));
    /* one byte more */
    char longer[80];
    memset(longer, 'a', sizeof(longer));
    memcpy(longer, "GET /", 5);
    memcpy(longer + 33 - 9, " HTTP/1.1\r\n\r\n", 13);
    TRY(check_cap(longer, 33 + 4, &lim, 128, SY_EHTTP_URI_LONG));
    /* no CRLF yet: 414 as soon as byte 33 of the line arrives, not before */
    const char *d;
    CHECK_EQ(P(longer, 32, 0, &lim, 128, &d), 0);
    CHECK_EQ(P(longer, 33, 0, &lim, 128, &d), SY_EHTTP_URI_LONG);
    CHECK(strstr(d, "request line"));
    CHECK_EQ(P(longer, 33, 32, &lim, 128, &d), SY_EHTTP_URI_LONG);
    TRY(check_cap(longer, 40, &lim, 128, SY_EHTTP_URI_LONG));
    memset(longer, 'a', sizeof(longer));
    TRY(check_cap(longer, sizeof(longer), &lim, 128, SY_EHTTP_URI_LONG));
    /* leading empty lines are not part of the request line */
    char lead[64];
    memcpy(lead, "\r\n\r\n", 4);
    memcpy(lead + 4, line, 36);
    TRY(check_cap(lead, 40, &lim, 128, 40));
    /* the CR may be the 33rd byte: still within the limit, waiting for LF */
    CHECK_EQ(P(line, 33, 0, &lim, 128, &d), 0);
    CHECK_EQ(P(line, 33, 20, &lim, 128, &d), 0);
    /* a huge request line with no limit is fine */
    sy_http1_limits nolim = {0, 0, 0};
    static char huge[100000];
    memset(huge, 'a', sizeof(huge));
    memcpy(huge, "GET /", 5);
    memcpy(huge + sizeof(huge) - 13, " HTTP/1.1\r\n\r\n", 13);
    CHECK_EQ(P(huge, sizeof(huge), 0, &nolim, 128, &d), (ssize_t)sizeof(huge));
    CHECK_EQ(P(huge, sizeof(huge), 0, NULL, 128, &d), (ssize_t)sizeof(huge));
    CHECK_EQ(P(huge, sizeof(huge), 0, &deflim, 128, &d), SY_EHTTP_URI_LONG);
}

TEST(head_limit)
{
    sy_http1_limits lim = {1024, 64, 64};
    char buf[200];
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(buf + 19, 'v', sizeof(buf) - 19);
    /* head of exactly 64 bytes: 19 + 41 + 4 */
    memcpy(buf + 60, "\r\n\r\n", 4);
    TRY(check_cap(buf, 64, &lim, 128, 64));
    TRY(check_cap(buf, 100, &lim, 128, 64));
    /* 65 bytes */
    memset(buf + 19, 'v', sizeof(buf) - 19);
    memcpy(buf + 61, "\r\n\r\n", 4);
    TRY(check_cap(buf, 65, &lim, 128, SY_EHTTP_HEAD_LARGE));
    /* incomplete and already 64 bytes long: 431 at once */
    memset(buf + 19, 'v', sizeof(buf) - 19);
    const char *d;
    CHECK_EQ(P(buf, 63, 0, &lim, 128, &d), 0);
    CHECK_EQ(P(buf, 64, 0, &lim, 128, &d), SY_EHTTP_HEAD_LARGE);
    CHECK_EQ(P(buf, 64, 63, &lim, 128, &d), SY_EHTTP_HEAD_LARGE);
    CHECK(strstr(d, "large"));
    TRY(check_cap(buf, 150, &lim, 128, SY_EHTTP_HEAD_LARGE));
    /* errors past the limit are not looked at */
    memcpy(buf + 100, "\n\n\r\n\r\n", 6);
    TRY(check_cap(buf, 106, &lim, 128, SY_EHTTP_HEAD_LARGE));
    /* many small fields hit the size limit, not the count limit */
    sy_http1_limits lim2 = {1024, 256, 1000};
    char many[600];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
    while (n < 500)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a:\r\n");
    TRY(check_cap(many, n, &lim2, 128, SY_EHTTP_HEAD_LARGE));
}

/* ---- analysis ---- */

static sy_http1_info info;

static void an(const char *s, size_t n, int want)
{
    const char *d = NULL;
    ssize_t r = P(s, n, 0, &deflim, SY_ARRAY_LEN(hdrs), &d);
    CHECK_EQ(r, (ssize_t)n);
    d = NULL;
    int rc = sy_http1_analyze(&req, &info, &d);
    CHECK_EQ(rc, want);
    if (rc)
        CHECK(d && *d);
}

static int an_detail_has(const char *s, size_t n, const char *sub)
{
    const char *d = NULL;
    if (P(s, n, 0, &deflim, SY_ARRAY_LEN(hdrs), &d) != (ssize_t)n)
        return 0;
    d = NULL;
    if (sy_http1_analyze(&req, &info, &d) >= 0 || !d)
        return 0;
    return strstr(d, sub) != NULL;
}

TEST(analyze_basic)
{
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0));
    CHECK_EQ(info.body, SY_HTTP1_BODY_NONE);
    CHECK(info.keep_alive);
    CHECK(!info.expect_continue);
    CHECK(!info.conn_upgrade);
    CHECK(info.host == &hdrs[0]);
    CHECK(info.upgrade == NULL);
    CHECK_EQ(info.upgrade_count, 0);
    TRY(an(S("GET / HTTP/1.0\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
    CHECK(info.host == NULL);
}

TEST(analyze_connection)
{
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: x, "
             "Close\r\n\r\n"),
           0));
    CHECK(!info.keep_alive);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), 0));
    CHECK(info.keep_alive);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), 0));
    CHECK(info.conn_upgrade);
    CHECK(info.keep_alive);
    CHECK(info.upgrade == &hdrs[2]);
    CHECK_EQ(info.upgrade_count, 1);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , upgrade\r\n"
             "Upgrade: h2c\r\nUpgrade: websocket\r\n\r\n"),
           0));
    CHECK(info.conn_upgrade);
    CHECK(info.upgrade == &hdrs[2]);
    CHECK_EQ(info.upgrade_count, 2);
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrades, x-upgrade\r\n\r\n"), 0));
    CHECK(!info.conn_upgrade);
    /* a broken element is skipped; the rest still counts */
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: a b, close, \"x\", upgrade\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
    CHECK(info.conn_upgrade);
    TRY(an(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0));
    CHECK(info.keep_alive);
    TRY(an(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0));
    CHECK(info.keep_alive);
    TRY(an(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
    TRY(an(S("GET / HTTP/1.0\r\nConnection: keepalive\r\n\r\n"), 0));
    CHECK(!info.keep_alive);
}

TEST(analyze_host)
{
    static const char *const good[] = {"example.com",
                                       "example.com:8080",
                                       "[::1]",
                                       "[::1]:80",
                                       "127.0.0.1",
                                       "",
                                       "a%41b",
                                       "xn--bcher-kva.example",
                                       "[v1.fe]",
                                       "a:",
                                       "host_name~x!$&'()*+,;=",
                                       ":80",
                                       "[2001:db8::7]:443"};
    static const char *const badh[] = {"a b",   "a/b",     "user@a",   "a:b",      "a:80:80",
                                       "[::1",  "[]",      "[::1]x",   "a\"b",     "a%zz",
                                       "a%4",   "a%",      "[::1]:8a", "a?b",      "a#b",
                                       "[a b]", "[::1/2]", "a\\b",     "\xc3\xa9", "a{b}"};
    char buf[256];
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++) {
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        TRY(an(buf, (size_t)n, 0));
        CHECK(info.host != NULL);
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(badh); i++) {
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", badh[i]);
        TRY(an(buf, (size_t)n, SY_EHTTP_SYNTAX));
    }
    TRY(an(S("GET / HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    CHECK(an_detail_has(S("GET / HTTP/1.1\r\n\r\n"), "Host"));
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET / HTTP/1.1\r\nX-Host: a\r\nHosts: a\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET / HTTP/1.1\r\nHOST: a\r\n\r\n"), 0));
    /* HTTP/1.0 may omit Host, but one that is there must be valid and single */
    TRY(an(S("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 0));
}

/* RFC 9112 §3.2.2: an absolute-form target's authority is the request's host; the scheme
 * is http or https and the authority a valid, non-empty host without userinfo. */
TEST(analyze_absolute_form)
{
    static const struct {
        const char *target, *authority;
    } good[] = {
        {"http://a.example/p?q", "a.example"}, {"HTTPS://A.example:8443", "A.example:8443"},
        {"http://[::1]:80/x", "[::1]:80"},     {"http://a.example?x", "a.example"},
        {"http://a.example#f", "a.example"}, /* the '#' is refused later, by the target */
    };
    static const char *const badt[] = {
        "http://u@a.example/",   "http://u:p@a.example/", "http:///p",    "http://:80/p",
        "ftp://a.example/",      "foo://a.example/",      "http://a{b}/", "http://a%zz/",
        "http://a.example:x80/", "http://[::1/",          "xhttp://a/",   "http://a\\b/",
    };
    char buf[256];
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++) {
        int n =
            snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: other\r\n\r\n", good[i].target);
        TRY(an(buf, (size_t)n, 0));
        CHECK(info.authority != NULL);
        CHECK_EQ(info.authority_len, strlen(good[i].authority));
        CHECK_MEM(info.authority, good[i].authority, info.authority_len);
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(badt); i++) {
        int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", badt[i]);
        TRY(an(buf, (size_t)n, SY_EHTTP_SYNTAX));
    }
    /* other forms have no authority here */
    TRY(an(S("GET /p HTTP/1.1\r\nHost: a\r\n\r\n"), 0));
    CHECK(info.authority == NULL);
    TRY(an(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0));
    CHECK(info.authority == NULL);
    TRY(an(S("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), 0));
    CHECK(info.authority == NULL);
    /* Host is still required in HTTP/1.1 (RFC 9112 §3.2), and HTTP/1.0 may omit it */
    TRY(an(S("GET http://a/ HTTP/1.1\r\n\r\n"), SY_EHTTP_SYNTAX));
    TRY(an(S("GET http://a/ HTTP/1.0\r\n\r\n"), 0));
    CHECK(info.authority != NULL);
    CHECK(an_detail_has(S("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), "userinfo"));
}

/* Host against :authority (RFC 9113 §8.3.1), shared with HTTP/2. */
TEST(host_same)
{
    CHECK(sy_field_host_same(S("a.example"), S("A.EXAMPLE"), "80"));
    CHECK(sy_field_host_same(S("a.example"), S("a.example:80"), "80"));
    CHECK(sy_field_host_same(S("a.example:"), S("a.example:80"), "80"));
    CHECK(sy_field_host_same(S("a.example:443"), S("a.example"), "443"));
    CHECK(sy_field_host_same(S("[::1]:8080"), S("[::1]:8080"), "80"));
    CHECK(!sy_field_host_same(S("a.example"), S("b.example"), "80"));
    CHECK(!sy_field_host_same(S("a.example"), S("a.example:443"), "80"));
    CHECK(!sy_field_host_same(S("a.example:81"), S("a.example:80"), "80"));
    CHECK(!sy_field_host_same(S("a.example"), S("a.example.evil"), "80"));
    CHECK(!sy_field_host_same(S("[::1]"), S("[::2]"), "80"));
    CHECK(sy_field_host_valid(S("a.example:80")));
    CHECK(!sy_field_host_valid(S("u@a.example")));
}

TEST(analyze_content_length)
{
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), 0));
    CHECK_EQ(info.body, SY_HTTP1_BODY_LENGTH);
    CHECK_EQ(info.content_length, 5);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0));
    CHECK_EQ(info.body, SY_HTTP1_BODY_LENGTH);
    CHECK_EQ(info.content_length, 0);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 0));
    CHECK_EQ(info.content_length, 5);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5 ,\t5\r\n\r\n"), 0));
    CHECK_EQ(info.content_length, 5);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"), 0));
    CHECK_EQ(info.content_length, 5);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), 0));
    CHECK_EQ(info.content_length, 7);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n"), 0));
    CHECK(info.content_length == UINT64_MAX);
    static const char *const badv[] = {"",
                                       "abc",
                                       "-1",
                                       "+5",
                                       "5 5",
                                       "0x5",
                                       "5,",
                                       ",5",
                                       "5,,5",
                                       "5, 6",
                                       "1e3",
                                       "5;q",
                                       "5.0",
                                       "18446744073709551616",
                                       "99999999999999999999999999"};
    char buf[256];
    for (size_t i = 0; i < SY_ARRAY_LEN(badv); i++) {
        int n = snprintf(buf, sizeof(buf),
                         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n", badv[i]);
        TRY(an(buf, (size_t)n, SY_EHTTP_FRAMING));
        CHECK_EQ(info.body, SY_HTTP1_BODY_NONE);
    }
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
           SY_EHTTP_FRAMING));
    CHECK(an_detail_has(
        S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        "differing"));
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 6\r\n\r\n"),
           SY_EHTTP_FRAMING));
    CHECK(an_detail_has(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n"
                          "\r\n"),
                        "large"));
    /* HTTP/1.0 with a Content-Length */
    TRY(an(S("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n"), 0));
    CHECK_EQ(info.body, SY_HTTP1_BODY_LENGTH);
}

TEST(analyze_transfer_encoding)
{
    static const struct {
        const char *hdrs;
        int rc;
        int body;
    } cases[] = {
        {"Transfer-Encoding: chunked\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: CHUNKED\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: Chunked\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding:\tchunked\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding:chunked \t\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"transfer-encoding: chunked\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: , chunked ,\r\n", 0, SY_HTTP1_BODY_CHUNKED},
        /* CL.TE and TE.CL */
        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked, identity\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: identity\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: xchunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding:  xchunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunkedx\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked;\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked;q=1\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: \"chunked\"\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked chunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chu nked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked\xff\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked, gzip\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked, chunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding:\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: , ,\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: gzip\r\n", SY_EHTTP_FRAMING, 0},
        {"Transfer-Encoding: foo\r\n", SY_EHTTP_FRAMING, 0},
        /* well framed, but a coding we cannot undo: 501 with the framing still known */
        {"Transfer-Encoding: gzip, chunked\r\n", SY_EHTTP_CODING, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", SY_EHTTP_CODING,
         SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: deflate, chunked\r\n", SY_EHTTP_CODING, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: x-gzip, chunked\r\n", SY_EHTTP_CODING, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: foo, chunked\r\n", SY_EHTTP_CODING, SY_HTTP1_BODY_CHUNKED},
        {"Transfer-Encoding: identity, chunked\r\n", SY_EHTTP_CODING, SY_HTTP1_BODY_CHUNKED},
    };
    char buf[512];
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        int n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n", cases[i].hdrs);
        TRY(an(buf, (size_t)n, cases[i].rc));
        CHECK_EQ(info.body, cases[i].body);
        CHECK_EQ(sy_http1_error_status(cases[i].rc ? cases[i].rc : SY_EHTTP_SYNTAX),
                 cases[i].rc == SY_EHTTP_CODING ? 501 : 400);
    }
    CHECK(an_detail_has(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"),
                        "Content-Length and Transfer-Encoding together"));
    CHECK(an_detail_has(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n"),
                        "unknown"));
    /* Transfer-Encoding in HTTP/1.0, even a valid one */
    TRY(an(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), SY_EHTTP_FRAMING));
    CHECK(an_detail_has(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), "1.0"));
    /* framing errors come before Host errors */
    TRY(an(S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), SY_EHTTP_FRAMING));
    TRY(an(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), SY_EHTTP_SYNTAX));
}

TEST(analyze_expect)
{
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
           0));
    CHECK(info.expect_continue);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n"), 0));
    CHECK(info.expect_continue);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nexpect:  100-CONTINUE \r\n\r\n"), 0));
    CHECK(info.expect_continue);
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), SY_EHTTP_EXPECT));
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n"), SY_EHTTP_EXPECT));
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: foo=bar\r\n\r\n"), SY_EHTTP_EXPECT));
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuee\r\n\r\n"), SY_EHTTP_EXPECT));
    CHECK(an_detail_has(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n"), "expectation"));
    TRY(an(S("POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n"), 0));
    CHECK(!info.expect_continue);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_EXPECT), 417);
}

/* ---- token lists ---- */

static int toks(const char *list, int allow_slash, const char *want)
{
    char got[256] = "";
    size_t pos = 0, tl, gn = 0;
    const char *tok;
    int rc;
    while ((rc = sy_field_next_token(list, strlen(list), &pos, &tok, &tl, allow_slash)) != 0) {
        if (gn + tl + 3 >= sizeof(got))
            return 0;
        if (rc < 0) {
            memcpy(got + gn, "!|", 2);
            gn += 2;
        } else {
            memcpy(got + gn, tok, tl);
            gn += tl;
            got[gn++] = '|';
        }
        got[gn] = 0;
    }
    if (pos != strlen(list))
        return 0;
    if (strcmp(got, want) != 0) {
        printf("  tokens of \"%s\": \"%s\", want \"%s\"\n", list, got, want);
        return 0;
    }
    return 1;
}

TEST(token_lists)
{
    CHECK(toks("", 0, ""));
    CHECK(toks(" , ,\t,", 0, ""));
    CHECK(toks(", , a ,b", 0, "a|b|"));
    CHECK(toks("a", 0, "a|"));
    CHECK(toks("keep-alive,Upgrade", 0, "keep-alive|Upgrade|"));
    CHECK(toks("websocket, h2c, foo/1.0", 1, "websocket|h2c|foo/1.0|"));
    CHECK(toks("websocket, h2c, foo/1.0", 0, "websocket|h2c|!|"));
    CHECK(toks("a b, c", 0, "!|c|"));
    CHECK(toks("/x, x/, a/b/c, a//b, ok/1", 1, "!|!|!|!|ok/1|"));
    CHECK(toks("\"q\", (c), a=b, x", 0, "!|!|!|x|"));
    CHECK(toks("a;b, c ", 0, "!|c|"));
    CHECK(toks("x\x01y,z", 0, "!|z|"));
    CHECK(toks("a,,,b,,,", 0, "a|b|"));
    /* position past the end ends the iteration */
    size_t pos = 99, tl;
    const char *tok;
    CHECK_EQ(sy_field_next_token("abc", 3, &pos, &tok, &tl, 0), 0);
    CHECK_EQ(pos, 3);
    /* the list is not NUL terminated: only len bytes are read */
    const char *g = place("abc,def", 7);
    pos = 0;
    CHECK_EQ(sy_field_next_token(g, 7, &pos, &tok, &tl, 1), 1);
    CHECK_EQ(sy_field_next_token(g, 7, &pos, &tok, &tl, 1), 1);
    CHECK_EQ(tl, 3);
    CHECK_MEM(tok, "def", 3);
    CHECK_EQ(sy_field_next_token(g, 7, &pos, &tok, &tl, 1), 0);
}

TEST(list_has)
{
    CHECK(sy_field_list_has(S("keep-alive, Upgrade"), "upgrade"));
    CHECK(sy_field_list_has(S("UPGRADE"), "upgrade"));
    CHECK(!sy_field_list_has(S("upgrades"), "upgrade"));
    CHECK(!sy_field_list_has(S(""), "upgrade"));
    CHECK(!sy_field_list_has(S("up grade"), "upgrade"));
    CHECK(sy_field_list_has(S("a b, close"), "close"));
    CHECK(sy_field_list_has(S("h2c, websocket"), "websocket"));
    CHECK(!sy_field_list_has(S("websocket/13"), "websocket"));
    CHECK(sy_field_list_has(S(" ,, websocket ,"), "websocket"));
}

TEST(error_status)
{
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_SYNTAX), 400);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_FRAMING), 400);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_CHUNK), 400);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_URI_LONG), 414);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_HEAD_LARGE), 431);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_VERSION), 505);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_CODING), 501);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_BODY_LARGE), 413);
    CHECK_EQ(sy_http1_error_status(SY_EHTTP_EXPECT), 417);
    CHECK_EQ(sy_http1_error_status(SY_EINVAL), 400);
    CHECK_EQ(sy_http1_error_status(0), 400);
}

/* A pseudo-random mutation run: whatever the bytes, the three ways agree on success and
 * never read out of bounds. */
TEST(mutations_agree)
{
    static const char base[] = "POST /p?q HTTP/1.1\r\nHost: a.example:80\r\nContent-Length: 3\r\n"
                               "Connection: keep-alive, Upgrade\r\nX: y\r\n\r\nabc";
    static const char alphabet[] = "\r\n \t:\0\x01\x7f\x80"
                                   "aA/,;\"";
    char buf[sizeof(base)];
    uint32_t x = 12345;
    sy_http1_limits lim = {40, 100, 4};
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, base, sizeof(base));
        for (int m = 0; m < 3; m++) {
            x = x * 1103515245u + 12345u;
            size_t at = (x >> 8) % (sizeof(base) - 1);
            x = x * 1103515245u + 12345u;
            buf[at] = alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
        }
        const char *d;
        size_t n = sizeof(base) - 1;
        ssize_t whole = P(buf, n, 0, &lim, 128, &d);
        CHECK(whole != -9999);
        size_t prev = 0;
        ssize_t got = 0;
        for (size_t k = 1; k <= n && got == 0; k++) {
            got = P(buf, k, prev, &lim, 128, &d);
            prev = k;
        }
        CHECK(got != -9999);
        if (whole > 0)
            CHECK_EQ(got, whole);
        if (got > 0)
            CHECK_EQ(whole, got);
        if (whole > 0) {
            sy_http1_info inf;
            int rc = sy_http1_analyze(&req, &inf, &d);
            CHECK(rc <= 0);
        }
    }
}

int main(void)
{
    RUN(simple_get);
    RUN(http10_and_no_headers);
    RUN(header_ows_trimmed);
    RUN(many_headers);
    RUN(too_many_headers);
    RUN(pipelined);
    RUN(leading_empty_lines);
    RUN(versions);
    RUN(request_line_syntax);
    RUN(bare_lf_and_cr);
    RUN(header_syntax);
    RUN(request_line_limit);
    RUN(head_limit);
    RUN(analyze_basic);
    RUN(analyze_connection);
    RUN(analyze_host);
    RUN(analyze_absolute_form);
    RUN(host_same);
    RUN(analyze_content_length);
    RUN(analyze_transfer_encoding);
    RUN(analyze_expect);
    RUN(token_lists);
    RUN(list_has);
    RUN(error_status);
    RUN(mutations_agree);
    return sy_t_summary();
}
