/* Unit tests for src/http1/chunked.c: the chunked body decoder. Every case runs whole, split
 * at every offset, and byte by byte; each piece ends on a guard page, and the reassembled data,
 * the end position and the error must be the same every time. */
#include "http1/parse.h"
#include "harness.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        call;                                                                                      \
        if (sy_t_cur_failed)                                                                       \
            return;                                                                                \
    } while (0)

#define S(lit) lit, sizeof(lit) - 1

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

typedef struct result {
    int done;
    ssize_t err;
    size_t end; /* offset just after the final CRLF, when done */
    size_t dlen;
    size_t events;
    const char *detail;
    char data[1 << 16];
} result;

static result r_whole, r_split;
static size_t g_max_line, g_max_trailer;

static void reset(sy_chunked *c, result *r)
{
    sy_chunked_init(c);
    if (g_max_line)
        c->max_line = g_max_line;
    if (g_max_trailer)
        c->max_trailer = g_max_trailer;
    r->done = 0;
    r->err = 0;
    r->end = 0;
    r->dlen = 0;
    r->events = 0;
    r->detail = NULL;
}

/* Feed one piece (at stream offset base) until it is used up, an error, or DONE. */
static void feed(sy_chunked *c, const char *s, size_t n, size_t base, result *r)
{
    if (r->done || r->err)
        return;
    const char *p = place(s, n);
    size_t off = 0;
    for (int guard = 0; off < n; guard++) {
        CHECK(guard < 100000);
        sy_chunked_ev ev = (sy_chunked_ev)99;
        const char *d = NULL, *det = NULL;
        size_t dl = 0;
        ssize_t k = sy_chunked_feed(c, p + off, n - off, &ev, &d, &dl, &det);
        if (k < 0) {
            CHECK_EQ(k, SY_EHTTP_CHUNK);
            CHECK(det && *det);
            r->err = k;
            r->detail = det;
            return;
        }
        CHECK((size_t)k <= n - off);
        r->events++;
        if (ev == SY_CHUNKED_DATA) {
            CHECK(dl > 0);
            CHECK(d >= p + off && d + dl <= p + off + (size_t)k); /* a slice of this input */
            CHECK(r->dlen + dl <= sizeof(r->data));
            memcpy(r->data + r->dlen, d, dl);
            r->dlen += dl;
        } else if (ev == SY_CHUNKED_DONE) {
            r->done = 1;
            r->end = base + off + (size_t)k;
            return;
        } else {
            CHECK_EQ(ev, SY_CHUNKED_NEED_MORE);
            CHECK_EQ((size_t)k, n - off); /* NEED_MORE means everything was consumed */
        }
        off += (size_t)k;
    }
}

static int same(const result *a, const result *b)
{
    return a->done == b->done && a->err == b->err && a->end == b->end && a->dlen == b->dlen &&
           memcmp(a->data, b->data, a->dlen) == 0;
}

/* want_end > 0: DONE right after want_end bytes; want_end == 0: incomplete; < 0: error. */
static void run(const char *s, size_t n, ssize_t want_end, const char *want_data, size_t want_dlen)
{
    sy_chunked c;
    reset(&c, &r_whole);
    TRY(feed(&c, s, n, 0, &r_whole));
    if (want_end > 0) {
        CHECK(r_whole.done);
        CHECK_EQ(r_whole.end, want_end);
        /* after DONE the decoder stays done and consumes nothing */
        sy_chunked_ev ev;
        const char *d, *det;
        size_t dl;
        CHECK_EQ(sy_chunked_feed(&c, "x", 1, &ev, &d, &dl, &det), 0);
        CHECK_EQ(ev, SY_CHUNKED_DONE);
    } else if (want_end == 0) {
        CHECK(!r_whole.done && !r_whole.err);
    } else {
        CHECK_EQ(r_whole.err, want_end);
        /* an error is sticky */
        sy_chunked_ev ev;
        const char *d, *det = NULL;
        size_t dl;
        CHECK_EQ(sy_chunked_feed(&c, "0\r\n\r\n", 5, &ev, &d, &dl, &det), SY_EHTTP_CHUNK);
        CHECK(det != NULL);
    }
    if (want_data) {
        CHECK_EQ(r_whole.dlen, want_dlen);
        CHECK_MEM(r_whole.data, want_data, want_dlen);
    }
    /* split at every offset */
    for (size_t k = 0; k <= n; k++) {
        reset(&c, &r_split);
        TRY(feed(&c, s, k, 0, &r_split));
        TRY(feed(&c, s + k, n - k, k, &r_split));
        if (!same(&r_whole, &r_split))
            printf("  split at %zu differs\n", k);
        CHECK(same(&r_whole, &r_split));
    }
    /* byte by byte */
    reset(&c, &r_split);
    for (size_t k = 0; k < n; k++)
        TRY(feed(&c, s + k, 1, k, &r_split));
    CHECK(same(&r_whole, &r_split));
    /* three pieces: every pair of cuts for short inputs */
    if (n <= 64) {
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                reset(&c, &r_split);
                TRY(feed(&c, s, a, 0, &r_split));
                TRY(feed(&c, s + a, b - a, a, &r_split));
                TRY(feed(&c, s + b, n - b, b, &r_split));
                CHECK(same(&r_whole, &r_split));
            }
    }
}

static void ok(const char *s, size_t n, const char *data)
{
    run(s, n, (ssize_t)n, data, strlen(data));
}

static void bad(const char *s, size_t n)
{
    run(s, n, SY_EHTTP_CHUNK, NULL, 0);
}

TEST(simple)
{
    TRY(ok(S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world"));
    TRY(ok(S("0\r\n\r\n"), ""));
    TRY(ok(S("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n"), "abc"));
    /* data may hold anything, CR and LF included */
    static const char crlf[] = "6\r\n\r\n\0\r\n\n\r\n0\r\n\r\n";
    TRY(run(crlf, sizeof(crlf) - 1, sizeof(crlf) - 1, "\r\n\0\r\n\n", 6));
}

TEST(hex_sizes)
{
    TRY(ok(S("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789"));
    TRY(ok(S("a\r\n0123456789\r\n0\r\n\r\n"), "0123456789"));
    TRY(ok(S("0005\r\nhello\r\n000\r\n\r\n"), "hello"));
    TRY(ok(S("00000000000000000000000001\r\nx\r\n0000000000000000000\r\n\r\n"), "x"));
    char big[0x1f0 + 64];
    size_t n = (size_t)snprintf(big, sizeof(big), "1eF\r\n");
    for (int i = 0; i < 0x1ef; i++)
        big[n++] = (char)('a' + i % 26);
    memcpy(big + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    TRY(run(big, n, (ssize_t)n, big + 5, 0x1ef));
    /* 16 significant hex digits fit; 17 do not */
    TRY(run(S("ffffffffffffffff\r\nabc"), 0, "abc", 3));
    TRY(run(S("0000ffffffffffffffff\r\nabc"), 0, "abc", 3));
    TRY(bad(S("10000000000000000\r\n")));
    TRY(bad(S("1ffffffffffffffff\r\n")));
    TRY(bad(S("00000000000000000ffffffffffffffff1\r\n")));
    /* what is not a hex size */
    TRY(bad(S("g\r\n")));
    TRY(bad(S("\r\n")));
    TRY(bad(S("-5\r\nhello\r\n")));
    TRY(bad(S("+5\r\nhello\r\n")));
    TRY(bad(S("0x5\r\nhello\r\n")));
    TRY(bad(S(" 5\r\nhello\r\n")));
    TRY(bad(S("5 \r\nhello\r\n0\r\n\r\n")));
    TRY(bad(S("5\t\r\nhello\r\n0\r\n\r\n")));
    TRY(bad(S("5,\r\nhello\r\n")));
    TRY(bad(S("5\0\r\nhello\r\n")));
}

TEST(extensions)
{
    TRY(ok(S("5;a=b;c\r\nhello\r\n0;x=\"y\"\r\n\r\n"), "hello"));
    TRY(ok(S("5 ; a = b ;c\t;d\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;name=\"quoted \\\" \\\\ value; with = signs\"\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;a=\"\"\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;a=\"caf\xc3\xa9\t!#[]\"\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;a=\"\\\t\\\xff\"\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("5;!#$%&'*+-.^_`|~09aZ=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n"), "hello"));
    TRY(ok(S("0;last=1\r\n\r\n"), ""));
    TRY(bad(S("5;\r\nhello\r\n")));
    TRY(bad(S("5;=b\r\nhello\r\n")));
    TRY(bad(S("5;a=\r\nhello\r\n")));
    TRY(bad(S("5;a =\r\nhello\r\n")));
    TRY(bad(S("5;a b\r\nhello\r\n")));
    TRY(bad(S("5;a=b c\r\nhello\r\n")));
    TRY(bad(S("5;a=b \r\nhello\r\n")));
    TRY(bad(S("5;a \r\nhello\r\n")));
    TRY(bad(S("5;a=b=c\r\nhello\r\n")));
    TRY(bad(S("5;a,b\r\nhello\r\n")));
    TRY(bad(S("5;a=\"unterminated\r\nhello\r\n")));
    TRY(bad(S("5;a=\"x\"y\r\nhello\r\n")));
    TRY(bad(S("5;a=\"\x01\"\r\nhello\r\n")));
    TRY(bad(S("5;a=\"\x7f\"\r\nhello\r\n")));
    TRY(bad(S("5;a=\"\\\x01\"\r\nhello\r\n")));
    TRY(bad(S("5;a=\"\\\r\nhello\r\n")));
    TRY(bad(S("5;a=(b)\r\nhello\r\n")));
    TRY(bad(S("5;a\x80\r\nhello\r\n")));
    TRY(bad(S("5;;a\r\nhello\r\n")));
    TRY(bad(S("5 a\r\nhello\r\n")));
    TRY(bad(S("5;a=b\n\r\nhello\r\n")));
}

TEST(line_limit)
{
    char line[200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "5;", 2);
    /* with max_line 100: a line of exactly 100 bytes is fine, 101 is not */
    g_max_line = 100;
    memcpy(line + 100, "\r\nhello\r\n0\r\n\r\n", 14);
    TRY(run(line, 114, 114, "hello", 5));
    memset(line, 'x', sizeof(line));
    memcpy(line, "5;", 2);
    memcpy(line + 101, "\r\nhello\r\n0\r\n\r\n", 14);
    TRY(run(line, 115, SY_EHTTP_CHUNK, NULL, 0));
    /* leading zeros count too */
    memset(line, '0', sizeof(line));
    TRY(run(line, sizeof(line), SY_EHTTP_CHUNK, NULL, 0));
    TRY(run(line, 100, 0, "", 0));
    g_max_line = 0;
    /* the default is 4096 */
    static char big[5000];
    memset(big, '0', sizeof(big));
    TRY(run(big, 4096, 0, "", 0));
    TRY(run(big, 4097, SY_EHTTP_CHUNK, NULL, 0));
    CHECK(strstr(r_whole.detail, "line"));
}

/* Chunk extensions add up over the whole body: each line is under max_line, but 16 KiB of
 * them in all is the most a body may carry (one-byte chunks with 4 KiB of extensions each
 * would otherwise cost 4096 times the body to read). */
TEST(extension_budget)
{
    static char body[64 * 1024];
    size_t n = 0;
    /* 4 chunks with 4000 extension bytes each (";" not counted: 3999 + BWS-free name) */
    for (int i = 0; i < 4; i++) {
        memcpy(body + n, "1;", 2);
        memset(body + n + 2, 'e', 3999);
        n += 2 + 3999;
        memcpy(body + n, "\r\nx\r\n", 5);
        n += 5;
    }
    memcpy(body + n, "0\r\n\r\n", 5);
    sy_chunked c;
    reset(&c, &r_whole); /* whole, and byte by byte (every split would take seconds) */
    TRY(feed(&c, body, n + 5, 0, &r_whole));
    CHECK(r_whole.done);
    CHECK_EQ(r_whole.end, n + 5);
    CHECK_EQ(r_whole.dlen, 4);
    reset(&c, &r_split);
    for (size_t k = 0; k < n + 5; k++)
        TRY(feed(&c, body + k, 1, k, &r_split));
    CHECK(same(&r_whole, &r_split));
    /* a fifth one goes over 16384 */
    n = 0;
    for (int i = 0; i < 5; i++) {
        memcpy(body + n, "1;", 2);
        memset(body + n + 2, 'e', 3999);
        n += 2 + 3999;
        memcpy(body + n, "\r\nx\r\n", 5);
        n += 5;
    }
    memcpy(body + n, "0\r\n\r\n", 5);
    reset(&c, &r_whole);
    TRY(feed(&c, body, n + 5, 0, &r_whole));
    CHECK_EQ(r_whole.err, SY_EHTTP_CHUNK);
    CHECK(strstr(r_whole.detail, "extensions"));
    /* a smaller cap set by the caller */
    reset(&c, &r_whole);
    c.max_ext = 10;
    TRY(feed(&c, S("1;abcdefghij\r\nx\r\n0\r\n\r\n"), 0, &r_whole));
    CHECK(r_whole.done);
    reset(&c, &r_whole);
    c.max_ext = 10;
    TRY(feed(&c, S("1;abcdefghij\r\nx\r\n0;k\r\n\r\n"), 0, &r_whole));
    CHECK_EQ(r_whole.err, SY_EHTTP_CHUNK);
}

TEST(crlf_after_data)
{
    TRY(bad(S("5\r\nhelloX\r\n0\r\n\r\n")));
    CHECK(strstr(r_whole.detail, "CRLF after chunk data"));
    TRY(bad(S("5\r\nhello\rX0\r\n\r\n")));
    TRY(bad(S("5\r\nhello\n0\r\n\r\n")));
    TRY(bad(S("5\r\nhello0\r\n\r\n")));
    TRY(bad(S("5\r\nhello world\r\n0\r\n\r\n"))); /* size smaller than the data */
    TRY(bad(S("5\r\nhel\r\n0\r\n\r\n")));         /* size larger: the CRLF is data */
    TRY(run(S("5\r\nhello"), 0, "hello", 5));
    TRY(run(S("5\r\nhello\r"), 0, "hello", 5));
    TRY(run(S("5\r\nhello\r\n"), 0, "hello", 5));
}

TEST(bare_lf_and_cr)
{
    TRY(bad(S("5\nhello\r\n0\r\n\r\n")));
    TRY(bad(S("5;a=b\nhello\r\n0\r\n\r\n")));
    TRY(bad(S("5\r\nhello\r\n0\n\r\n")));
    TRY(bad(S("0\r\n\n")));
    TRY(bad(S("0\r\nX: a\n\r\n")));
    TRY(bad(S("0\r\nX: a\r\n\n")));
    TRY(bad(S("5\rhello\r\n0\r\n\r\n")));
    TRY(bad(S("0\r\n\rX")));
    TRY(bad(S("0\r\nX: a\rb\r\n\r\n")));
    TRY(bad(S("\n")));
    CHECK(strstr(r_whole.detail, "LF"));
}

TEST(trailers)
{
    TRY(ok(S("5\r\nhello\r\n0\r\nX-T: v\r\nY: \r\nZ:\t a \xff\r\n\r\n"), "hello"));
    TRY(ok(S("0\r\nChecksum:abc\r\n\r\n"), ""));
    TRY(bad(S("0\r\nX T: v\r\n\r\n")));
    TRY(bad(S("0\r\nX : v\r\n\r\n")));
    CHECK(strstr(r_whole.detail, "colon"));
    TRY(bad(S("0\r\n: v\r\n\r\n")));
    TRY(bad(S("0\r\nX: a\x01\r\n\r\n")));
    TRY(bad(S("0\r\nX: a\0\r\n\r\n")));
    TRY(bad(S("0\r\nX: a\x7f\r\n\r\n")));
    TRY(bad(S("0\r\nX: a\r\n folded\r\n\r\n")));
    TRY(bad(S("0\r\n\tX: a\r\n\r\n")));
    TRY(bad(S("0\r\nNoColon\r\n\r\n")));
    TRY(bad(S("0\r\nX(: a\r\n\r\n")));
    TRY(bad(S("0\r\n\xc3\xa9: a\r\n\r\n")));
    TRY(run(S("0\r\nX: a\r\n"), 0, "", 0));
    /* the trailer section is capped (the final CRLF counts) */
    char buf[300];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "0\r\nX: ");
    while (n < 3 + 94)
        buf[n++] = 'v';
    memcpy(buf + n, "\r\n\r\n", 4); /* trailer section = 94 + 2 + 2 = 98 bytes */
    g_max_trailer = 98;
    TRY(run(buf, n + 4, (ssize_t)(n + 4), "", 0));
    g_max_trailer = 97;
    TRY(run(buf, n + 4, SY_EHTTP_CHUNK, NULL, 0));
    CHECK(strstr(r_whole.detail, "trailer"));
    g_max_trailer = 0;
    /* many small trailer lines hit the default cap of 8192 */
    static char many[10000];
    n = (size_t)snprintf(many, sizeof(many), "0\r\n");
    while (n < 9000)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a: b\r\n");
    TRY(run(many, n, SY_EHTTP_CHUNK, NULL, 0));
}

TEST(stops_after_final_crlf)
{
    /* the next request is not consumed */
    TRY(run(S("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 13, "abc", 3));
    TRY(run(S("0\r\nX: y\r\n\r\n0\r\n\r\n"), 11, "", 0));
    TRY(run(S("0\r\n\r\n\r\n"), 5, "", 0));
}

TEST(incomplete)
{
    TRY(run(S(""), 0, "", 0));
    TRY(run(S("5"), 0, "", 0));
    TRY(run(S("5;a=\"b"), 0, "", 0));
    TRY(run(S("5\r\nhel"), 0, "hel", 3));
    TRY(run(S("0\r\n"), 0, "", 0));
    TRY(run(S("0\r\n\r"), 0, "", 0));
}

TEST(zeroed_struct_and_one_event_per_call)
{
    sy_chunked c;
    memset(&c, 0, sizeof(c));
    static const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    const char *p = place(in, sizeof(in) - 1);
    sy_chunked_ev ev;
    const char *d, *det;
    size_t dl;
    ssize_t k = sy_chunked_feed(&c, p, sizeof(in) - 1, &ev, &d, &dl, &det);
    CHECK_EQ(k, 6);
    CHECK_EQ(ev, SY_CHUNKED_DATA);
    CHECK(d == p + 3);
    CHECK_EQ(dl, 3);
    size_t off = (size_t)k;
    k = sy_chunked_feed(&c, p + off, sizeof(in) - 1 - off, &ev, &d, &dl, &det);
    CHECK_EQ(k, 7);
    CHECK_EQ(ev, SY_CHUNKED_DATA);
    CHECK(d == p + 11);
    CHECK_EQ(dl, 2);
    off += (size_t)k;
    k = sy_chunked_feed(&c, p + off, sizeof(in) - 1 - off, &ev, &d, &dl, &det);
    CHECK_EQ(ev, SY_CHUNKED_DONE);
    CHECK_EQ(off + (size_t)k, sizeof(in) - 1);
    /* zero-length feeds are harmless */
    memset(&c, 0, sizeof(c));
    CHECK_EQ(sy_chunked_feed(&c, p, 0, &ev, &d, &dl, &det), 0);
    CHECK_EQ(ev, SY_CHUNKED_NEED_MORE);
    /* a NULL detail pointer is allowed */
    CHECK_EQ(sy_chunked_feed(&c, "z", 1, &ev, &d, &dl, NULL), SY_EHTTP_CHUNK);
}

TEST(large_random_chunks)
{
    static char in[40000], want[30000];
    size_t n = 0, wn = 0;
    uint32_t x = 7;
    while (wn < 25000) {
        x = x * 1103515245u + 12345u;
        size_t sz = 1 + (x >> 8) % 700;
        n +=
            (size_t)snprintf(in + n, sizeof(in) - n, (x & 1) ? "%zx;i=%zu\r\n" : "%zX\r\n", sz, sz);
        for (size_t i = 0; i < sz; i++) {
            x = x * 1103515245u + 12345u;
            in[n++] = want[wn++] = (char)(x >> 16);
        }
        memcpy(in + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(in + n, sizeof(in) - n, "0\r\nT: 1\r\n\r\n");
    TRY(run(in, n, (ssize_t)n, want, wn));
}

int main(void)
{
    RUN(simple);
    RUN(hex_sizes);
    RUN(extensions);
    RUN(line_limit);
    RUN(extension_budget);
    RUN(crlf_after_data);
    RUN(bare_lf_and_cr);
    RUN(trailers);
    RUN(stops_after_final_crlf);
    RUN(incomplete);
    RUN(zeroed_struct_and_one_event_per_call);
    RUN(large_random_chunks);
    return sy_t_summary();
}
