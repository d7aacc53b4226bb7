/* Tests for src/ws/pmd.c: the RFC 7692 §7.2.3 examples, round trips over every window size,
 * messages split into parts on both sides (compressed input split at every offset, on guard
 * pages), the empty message, context takeover on and off, a decompression bomb, invalid data,
 * server and client negotiation, and the memory budget: its reservations, what they cost
 * against what zlib really allocates, and their atomicity. */
#include "harness.h"

#include "ws/pmd.h"

#include <pthread.h>

/* ---- helpers ---- */

typedef struct sinkbuf {
    uint8_t *data;
    size_t len, cap;
    size_t calls, max_chunk;
    int fail_at; /* return an error on this call (1-based); 0 = never */
} sinkbuf;

static int sink_fn(void *ud, const uint8_t *d, size_t n)
{
    sinkbuf *b = ud;
    b->calls++;
    if (b->fail_at && (int)b->calls == b->fail_at)
        return -7;
    if (n > b->max_chunk)
        b->max_chunk = n;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            abort();
        b->cap = cap;
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
    return 0;
}

/* Counts bytes only: for the bomb test. */
static int count_sink(void *ud, const uint8_t *d, size_t n)
{
    (void)d;
    *(size_t *)ud += n;
    return 0;
}

static void sb_reset(sinkbuf *b)
{
    b->len = 0;
    b->calls = 0;
    b->max_chunk = 0;
    b->fail_at = 0;
}

static void sb_free(sinkbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static sy_pmd_params params(uint8_t tx, uint8_t rx, uint8_t tx_nct, uint8_t rx_nct)
{
    sy_pmd_params p = {tx, rx, tx_nct, rx_nct};
    return p;
}

/* Deterministic data that compresses somewhat: words from a small vocabulary mixed with
 * noise, so matches occur at many distances. */
static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void fill_text(uint8_t *d, size_t n)
{
    static const char *const words[] = {"switch",   "yard ",    "deflate ", "window ",  "frame ",
                                        "message ", "context ", "\n",       "takeover "};
    size_t i = 0;
    while (i < n) {
        if (rnd() % 4 == 0) {
            d[i++] = (uint8_t)rnd();
            continue;
        }
        const char *w = words[rnd() % SY_ARRAY_LEN(words)];
        for (size_t k = 0; w[k] && i < n; k++)
            d[i++] = (uint8_t)w[k];
    }
}

static void fill_random(uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)rnd();
}

/* ---- RFC 7692 §7.2.3 examples ---- */

static const uint8_t hello_c[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t hello2_c[] = {0xf2, 0x00, 0x11, 0x00, 0x00};

TEST(rfc_hello_inflate)
{
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_pmd_init(&p, &pp, 8);
    uint8_t *g = sy_t_guard_copy(hello_c, sizeof(hello_c));
    int r = sy_pmd_inflate(&p, g, sizeof(hello_c), 1, 1000, sink_fn, &b, &detail);
    sy_t_guard_free(g, sizeof(hello_c));
    sy_pmd_free(&p);
    CHECK_EQ(r, 0);
    CHECK_EQ(b.len, 5);
    CHECK_MEM(b.data, "Hello", 5);
    sb_free(&b);
}

TEST(rfc_hello_deflate)
{
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    sy_pmd_init(&p, &pp, 8);
    CHECK(sy_pmd_can_compress(&p));
    CHECK_EQ(sy_pmd_deflate(&p, (const uint8_t *)"Hello", 5, 1, sink_fn, &b), 0);
    CHECK_EQ(b.len, sizeof(hello_c));
    CHECK_MEM(b.data, hello_c, sizeof(hello_c));
    /* §7.2.3.2: the same message again with the context kept. */
    sb_reset(&b);
    CHECK_EQ(sy_pmd_deflate(&p, (const uint8_t *)"Hello", 5, 1, sink_fn, &b), 0);
    CHECK_EQ(b.len, sizeof(hello2_c));
    CHECK_MEM(b.data, hello2_c, sizeof(hello2_c));
    sy_pmd_free(&p);
    sb_free(&b);
}

/* The byte sequence c2 48 cd c9 c9 07 00 (frame header bits mixed into the first byte) is not
 * "Hello": its first code is a length with nothing to copy from. */
TEST(hello_with_wrong_first_byte_rejected)
{
    static const uint8_t bad[] = {0xc2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_pmd_init(&p, &pp, 8);
    CHECK_EQ(sy_pmd_inflate(&p, bad, sizeof(bad), 1, 1000, sink_fn, &b, &detail), SY_EWS_EXTENSION);
    CHECK(detail != NULL);
    sy_pmd_free(&p);
    sb_free(&b);
}

TEST(rfc_shared_context_inflate)
{
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_pmd_init(&p, &pp, 8);
    CHECK_EQ(sy_pmd_inflate(&p, hello_c, sizeof(hello_c), 1, 1000, sink_fn, &b, &detail), 0);
    CHECK_EQ(sy_pmd_inflate(&p, hello2_c, sizeof(hello2_c), 1, 1000, sink_fn, &b, &detail), 0);
    CHECK_EQ(b.len, 10);
    CHECK_MEM(b.data, "HelloHello", 10);
    sy_pmd_free(&p);
    sb_free(&b);
}

TEST(no_context_takeover_both_sides)
{
    sy_pmd tx, rx;
    sy_pmd_params ptx = params(15, 15, 1, 0), prx = params(15, 15, 0, 1);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &ptx, 8);
    sy_pmd_init(&rx, &prx, 8);
    for (int i = 0; i < 3; i++) {
        sb_reset(&b);
        CHECK_EQ(sy_pmd_deflate(&tx, (const uint8_t *)"Hello", 5, 1, sink_fn, &b), 0);
        CHECK_EQ(b.len, sizeof(hello_c)); /* never refers to the previous message */
        CHECK_MEM(b.data, hello_c, sizeof(hello_c));
        CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, 1000, sink_fn, &out, &detail), 0);
    }
    CHECK_EQ(out.len, 15);
    /* A receiver that resets its context cannot decode a message that refers back. */
    CHECK_EQ(sy_pmd_inflate(&rx, hello2_c, sizeof(hello2_c), 1, 1000, sink_fn, &out, &detail),
             SY_EWS_EXTENSION);
    CHECK(detail != NULL);
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
}

static int inflate_all(const uint8_t *in, size_t n, sinkbuf *out)
{
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    const char *detail = NULL;
    sy_pmd_init(&p, &pp, 8);
    int r = sy_pmd_inflate(&p, in, n, 1, 1000, sink_fn, out, &detail);
    /* The same context must still decode the next message. */
    if (r == 0)
        r = sy_pmd_inflate(&p, hello_c, sizeof(hello_c), 1, 1000, sink_fn, out, &detail);
    sy_pmd_free(&p);
    return r;
}

TEST(rfc_stored_block_bfinal)
{
    /* §7.2.3.3: one stored block, BFINAL set. */
    static const uint8_t m[] = {0x01, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    sinkbuf b = {0};
    CHECK_EQ(inflate_all(m, sizeof(m), &b), 0);
    CHECK_EQ(b.len, 10);
    CHECK_MEM(b.data, "HelloHello", 10);
    sb_free(&b);
}

TEST(rfc_fixed_block_bfinal)
{
    /* §7.2.3.4: a fixed block with BFINAL, with and without a trailing 0x00. */
    static const uint8_t m1[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t m2[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    sinkbuf b = {0};
    CHECK_EQ(inflate_all(m1, sizeof(m1), &b), 0);
    CHECK_EQ(inflate_all(m2, sizeof(m2), &b), 0);
    CHECK_EQ(b.len, 20);
    CHECK_MEM(b.data, "HelloHelloHelloHello", 20);
    sb_free(&b);
}

/* A final block split anywhere, with the end of the stream seen in an earlier part than the
 * message's end; bytes after the final block must still be valid deflate data. */
TEST(bfinal_split_and_trailing_bytes)
{
    static const uint8_t m1[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t m2[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    static const uint8_t m3[] = {0x01, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    const struct {
        const uint8_t *d;
        size_t n;
    } ok[] = {{m1, sizeof(m1)}, {m2, sizeof(m2)}, {m3, sizeof(m3)}};
    for (size_t i = 0; i < SY_ARRAY_LEN(ok); i++) {
        for (size_t cut = 0; cut <= ok[i].n; cut++) {
            sy_pmd p;
            sy_pmd_params pp = params(15, 15, 0, 0);
            sinkbuf b = {0};
            const char *detail = NULL;
            sy_pmd_init(&p, &pp, 8);
            CHECK_EQ(sy_pmd_inflate(&p, ok[i].d, cut, 0, 100, sink_fn, &b, &detail), 0);
            CHECK_EQ(sy_pmd_inflate(&p, ok[i].d + cut, ok[i].n - cut, 0, 100, sink_fn, &b, &detail),
                     0);
            CHECK_EQ(sy_pmd_inflate(&p, NULL, 0, 1, 100, sink_fn, &b, &detail), 0);
            CHECK_EQ(sy_pmd_inflate(&p, hello_c, sizeof(hello_c), 1, 100, sink_fn, &b, &detail), 0);
            CHECK_EQ(b.len, 10);
            CHECK_MEM(b.data, "HelloHello", 10);
            sy_pmd_free(&p);
            sb_free(&b);
        }
    }
    static const uint8_t bad1[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff};
    static const uint8_t bad2[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00};
    static const uint8_t bad3[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xf2, 0x48};
    const struct {
        const uint8_t *d;
        size_t n;
    } bad[] = {{bad1, sizeof(bad1)}, {bad2, sizeof(bad2)}, {bad3, sizeof(bad3)}};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        sy_pmd p;
        sy_pmd_params pp = params(15, 15, 0, 0);
        sinkbuf b = {0};
        const char *detail = NULL;
        sy_pmd_init(&p, &pp, 8);
        CHECK_EQ(sy_pmd_inflate(&p, bad[i].d, bad[i].n, 1, 100, sink_fn, &b, &detail),
                 SY_EWS_EXTENSION);
        CHECK(detail != NULL);
        sy_pmd_free(&p);
        sb_free(&b);
    }
}

TEST(rfc_two_blocks)
{
    /* §7.2.3.5: "He" and "llo" in two blocks. */
    static const uint8_t m[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    sinkbuf b = {0};
    CHECK_EQ(inflate_all(m, sizeof(m), &b), 0);
    CHECK_EQ(b.len, 10);
    CHECK_MEM(b.data, "HelloHello", 10);
    sb_free(&b);
}

TEST(empty_message)
{
    sy_pmd tx, rx;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 8);
    sy_pmd_init(&rx, &pp, 8);
    /* Fresh stream, after a message, twice in a row, and as empty parts. */
    const char *msgs[] = {"", "a", "", "", "bb", "", "a"};
    for (size_t i = 0; i < SY_ARRAY_LEN(msgs); i++) {
        size_t n = strlen(msgs[i]);
        sb_reset(&b);
        CHECK_EQ(sy_pmd_deflate(&tx, (const uint8_t *)msgs[i], n, 1, sink_fn, &b), 0);
        CHECK(b.len >= 1);
        if (n == 0) {
            CHECK_EQ(b.len, 1);
            CHECK_EQ(b.data[0], 0x00); /* §7.2.3.6 */
        }
        sb_reset(&out);
        CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, 100, sink_fn, &out, &detail), 0);
        CHECK_EQ(out.len, n);
        CHECK(n == 0 || memcmp(out.data, msgs[i], n) == 0);
    }
    /* A message sent as three empty parts. */
    sb_reset(&b);
    CHECK_EQ(sy_pmd_deflate(&tx, NULL, 0, 0, sink_fn, &b), 0);
    CHECK_EQ(sy_pmd_deflate(&tx, NULL, 0, 0, sink_fn, &b), 0);
    CHECK_EQ(sy_pmd_deflate(&tx, NULL, 0, 1, sink_fn, &b), 0);
    CHECK(b.len >= 1);
    sb_reset(&out);
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, 100, sink_fn, &out, &detail), 0);
    CHECK_EQ(out.len, 0);
    /* The single byte 0x00 is the empty message for any receiver, split or not. */
    static const uint8_t z = 0x00;
    CHECK_EQ(sy_pmd_inflate(&rx, &z, 1, 0, 100, sink_fn, &out, &detail), 0);
    CHECK_EQ(sy_pmd_inflate(&rx, NULL, 0, 1, 100, sink_fn, &out, &detail), 0);
    CHECK_EQ(out.len, 0);
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
}

/* ---- messages in parts ---- */

TEST(deflate_in_parts)
{
    static const size_t steps[] = {1, 3, 100, 4096, 20000, 70000};
    size_t n = 100 * 1024;
    uint8_t *data = malloc(n);
    fill_text(data, n);
    for (size_t si = 0; si < SY_ARRAY_LEN(steps); si++) {
        sy_pmd tx, rx;
        sy_pmd_params pp = params(15, 15, 0, 0);
        sinkbuf b = {0}, out = {0};
        const char *detail = NULL;
        sy_pmd_init(&tx, &pp, 8);
        sy_pmd_init(&rx, &pp, 8);
        for (int msg = 0; msg < 2; msg++) {
            sb_reset(&b);
            for (size_t off = 0; off < n; off += steps[si]) {
                size_t k = SY_MIN(steps[si], n - off);
                CHECK_EQ(sy_pmd_deflate(&tx, data + off, k, off + k == n, sink_fn, &b), 0);
            }
            CHECK(b.len < n);
            CHECK(b.max_chunk <= 16384);
            /* The 00 00 ff ff was removed: the message never ends with it. */
            CHECK(b.len < 4 || memcmp(b.data + b.len - 4, "\x00\x00\xff\xff", 4) != 0);
            sb_reset(&out);
            CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, sink_fn, &out, &detail), 0);
            CHECK_EQ(out.len, n);
            CHECK_MEM(out.data, data, n);
        }
        sy_pmd_free(&tx);
        sy_pmd_free(&rx);
        sb_free(&b);
        sb_free(&out);
    }
    free(data);
}

/* Feed compressed input in two parts split at every offset, and byte by byte. */
TEST(inflate_split_every_offset)
{
    size_t n = 3000;
    uint8_t *data = malloc(n);
    fill_text(data, n);
    sy_pmd tx;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf c = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 8);
    CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &c), 0);
    sy_pmd_free(&tx);
    for (size_t cut = 0; cut <= c.len; cut++) {
        sy_pmd rx;
        sy_pmd_init(&rx, &pp, 8);
        uint8_t *a = sy_t_guard_copy(c.data, cut);
        uint8_t *z = sy_t_guard_copy(c.data + cut, c.len - cut);
        sb_reset(&out);
        int r1 = sy_pmd_inflate(&rx, a, cut, 0, n, sink_fn, &out, &detail);
        int r2 = sy_pmd_inflate(&rx, z, c.len - cut, 1, n, sink_fn, &out, &detail);
        sy_t_guard_free(a, cut);
        sy_t_guard_free(z, c.len - cut);
        sy_pmd_free(&rx);
        CHECK_EQ(r1, 0);
        CHECK_EQ(r2, 0);
        CHECK_EQ(out.len, n);
        CHECK_MEM(out.data, data, n);
    }
    sy_pmd rx;
    sy_pmd_init(&rx, &pp, 8);
    sb_reset(&out);
    for (size_t i = 0; i < c.len; i++)
        CHECK_EQ(sy_pmd_inflate(&rx, c.data + i, 1, 0, n, sink_fn, &out, &detail), 0);
    CHECK_EQ(sy_pmd_inflate(&rx, NULL, 0, 1, n, sink_fn, &out, &detail), 0);
    sy_pmd_free(&rx);
    CHECK_EQ(out.len, n);
    CHECK_MEM(out.data, data, n);
    free(data);
    sb_free(&c);
    sb_free(&out);
}

/* Incompressible messages whose flushed output ends near a multiple of the 16 KiB output
 * chunk: the 00 00 ff ff tail is spread over two chunks and must still be removed. */
TEST(tail_across_output_chunks)
{
    size_t maxn = 3 * 16384 + 64;
    uint8_t *data = malloc(maxn);
    fill_random(data, maxn);
    sy_pmd tx, rx;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 8);
    sy_pmd_init(&rx, &pp, 8);
    for (size_t n = 16384 - 40; n < 16384 + 8; n++) {
        sb_reset(&b);
        CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), 0);
        CHECK(b.max_chunk <= 16384);
        sb_reset(&out);
        CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, maxn, sink_fn, &out, &detail), 0);
        CHECK_EQ(out.len, n);
        CHECK_MEM(out.data, data, n);
    }
    for (size_t n = 3 * 16384 - 40; n < maxn; n += 3) {
        sb_reset(&b);
        CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), 0);
        sb_reset(&out);
        CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, maxn, sink_fn, &out, &detail), 0);
        CHECK_EQ(out.len, n);
        CHECK_MEM(out.data, data, n);
    }
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
    free(data);
}

TEST(windows_9_to_15_round_trip)
{
    size_t n = 100 * 1024;
    uint8_t *data = malloc(n);
    fill_text(data, n);
    for (uint8_t w = 9; w <= 15; w++) {
        for (int nct = 0; nct <= 1; nct++) {
            sy_pmd tx, rx;
            sy_pmd_params ptx = params(w, 15, (uint8_t)nct, 0);
            sy_pmd_params prx = params(15, w, 0, (uint8_t)nct);
            sinkbuf b = {0}, out = {0};
            const char *detail = NULL;
            sy_pmd_init(&tx, &ptx, (uint8_t)(w - 6));
            sy_pmd_init(&rx, &prx, 8);
            for (int msg = 0; msg < 3; msg++) {
                sb_reset(&b);
                /* The same data again: with context takeover it compresses further, as long
                 * as the window reaches back. */
                CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), 0);
                sb_reset(&out);
                CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, sink_fn, &out, &detail), 0);
                CHECK_EQ(out.len, n);
                CHECK_MEM(out.data, data, n);
            }
            sy_pmd_free(&tx);
            sy_pmd_free(&rx);
            sb_free(&b);
            sb_free(&out);
        }
    }
    free(data);
}

/* A peer that uses a wider window than negotiated is caught by the inflater. */
TEST(window_violation_detected)
{
    size_t n = 20000;
    uint8_t *data = malloc(2 * n);
    fill_random(data, n);
    memcpy(data + n, data, n); /* the second half repeats the first at distance 20000 */
    sy_pmd tx, rx;
    sy_pmd_params ptx = params(15, 15, 0, 0), prx = params(15, 9, 0, 0);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &ptx, 8);
    sy_pmd_init(&rx, &prx, 8);
    CHECK_EQ(sy_pmd_deflate(&tx, data, 2 * n, 1, sink_fn, &b), 0);
    CHECK(b.len < n + n / 2);
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, 2 * n, sink_fn, &out, &detail),
             SY_EWS_EXTENSION);
    CHECK(detail != NULL && strstr(detail, "window") != NULL);
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
    free(data);
}

TEST(window_8)
{
    sy_pmd_config cfg = {15, 8, 0, 0};
    sy_pmd_params pp;
    char resp[128];
    static const char offer[] = "permessage-deflate; server_max_window_bits=8";
    CHECK_EQ(sy_pmd_server_negotiate(offer, strlen(offer), &cfg, &pp, resp, sizeof(resp)), 1);
    CHECK(strcmp(resp, "permessage-deflate; server_max_window_bits=8") == 0);
    CHECK_EQ(pp.tx_window_bits, 8);
    sy_pmd p;
    sy_pmd_init(&p, &pp, 8);
    CHECK_EQ(sy_pmd_can_compress(&p), 0);
    /* Deflating anyway yields stored blocks, which respect any window. */
    size_t n = 5000;
    uint8_t *data = malloc(n);
    fill_text(data, n);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    CHECK_EQ(sy_pmd_deflate(&p, data, n, 1, sink_fn, &b), 0);
    CHECK(b.len >= n);
    sy_pmd_free(&p);
    /* An inflater with an 8-bit window decodes it, and decodes data whose matches stay
     * within 256 bytes. */
    sy_pmd_params prx = params(15, 8, 0, 0);
    sy_pmd rx;
    sy_pmd_init(&rx, &prx, 8);
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, sink_fn, &out, &detail), 0);
    CHECK_EQ(out.len, n);
    CHECK_MEM(out.data, data, n);
    sy_pmd tx;
    sy_pmd_params ptx = params(9, 15, 0, 0);
    sy_pmd_init(&tx, &ptx, 8);
    memset(data, 'x', n);
    for (size_t i = 0; i < n; i += 7)
        data[i] = (uint8_t)('a' + i % 5);
    sb_reset(&b);
    CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), 0);
    CHECK(b.len < n / 4);
    sb_reset(&out);
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, sink_fn, &out, &detail), 0);
    CHECK_EQ(out.len, n);
    CHECK_MEM(out.data, data, n);
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
    free(data);
}

/* ---- limits and errors ---- */

TEST(decompression_bomb)
{
    size_t n = 10u << 20;
    uint8_t *zeros = calloc(1, n);
    sy_pmd tx, rx;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 8);
    sy_pmd_init(&rx, &pp, 8);
    CHECK_EQ(sy_pmd_deflate(&tx, zeros, n, 1, sink_fn, &b), 0);
    CHECK(b.len < 20000);
    size_t got = 0;
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, 1u << 20, count_sink, &got, &detail),
             SY_EWS_TOO_BIG);
    CHECK(got <= (1u << 20));
    CHECK(got >= (1u << 20) - 16384);
    /* Limits are per message and exact: n passes with max_total n, fails with n - 1. */
    got = 0;
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n - 1, count_sink, &got, &detail),
             SY_EWS_TOO_BIG);
    CHECK_EQ(got, n - 1);
    got = 0;
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, count_sink, &got, &detail), 0);
    CHECK_EQ(got, n);
    /* Split into parts, the limit counts across them. */
    got = 0;
    size_t half = b.len / 2;
    int r = sy_pmd_inflate(&rx, b.data, half, 0, 1u << 20, count_sink, &got, &detail);
    if (r == 0)
        r = sy_pmd_inflate(&rx, b.data + half, b.len - half, 1, 1u << 20, count_sink, &got,
                           &detail);
    CHECK_EQ(r, SY_EWS_TOO_BIG);
    CHECK(got <= (1u << 20));
    /* max_total 0 admits only the empty message. */
    static const uint8_t z = 0;
    CHECK_EQ(sy_pmd_inflate(&rx, &z, 1, 1, 0, count_sink, &got, &detail), 0);
    CHECK_EQ(sy_pmd_inflate(&rx, hello_c, sizeof(hello_c), 1, 0, count_sink, &got, &detail),
             SY_EWS_TOO_BIG);
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    free(zeros);
}

TEST(invalid_data)
{
    static const uint8_t bad_type[] = {0xff, 0xff, 0xff};               /* BTYPE 11 */
    static const uint8_t bad_stored[] = {0x00, 0x01, 0x00, 0x00, 0x00}; /* NLEN != ~LEN */
    static const uint8_t truncated[] = {0xf2, 0x48};
    const struct {
        const uint8_t *d;
        size_t n;
    } cases[] = {{bad_type, sizeof(bad_type)},
                 {bad_stored, sizeof(bad_stored)},
                 {truncated, sizeof(truncated)}};
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        sy_pmd p;
        sy_pmd_params pp = params(15, 15, 0, 0);
        sinkbuf b = {0};
        const char *detail = NULL;
        sy_pmd_init(&p, &pp, 8);
        CHECK_EQ(sy_pmd_inflate(&p, cases[i].d, cases[i].n, 1, 1000, sink_fn, &b, &detail),
                 SY_EWS_EXTENSION);
        CHECK(detail != NULL && strncmp(detail, "invalid compressed data", 23) == 0);
        /* The stream was reset: a fresh message decodes. */
        sb_reset(&b);
        CHECK_EQ(sy_pmd_inflate(&p, hello_c, sizeof(hello_c), 1, 1000, sink_fn, &b, &detail), 0);
        CHECK_EQ(b.len, 5);
        sy_pmd_free(&p);
        sb_free(&b);
    }
}

TEST(sink_error_propagates)
{
    size_t n = 100000;
    uint8_t *data = malloc(n);
    fill_random(data, n);
    sy_pmd tx, rx;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 8);
    sy_pmd_init(&rx, &pp, 8);
    CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), 0);
    out.fail_at = 2;
    CHECK_EQ(sy_pmd_inflate(&rx, b.data, b.len, 1, n, sink_fn, &out, &detail), -7);
    sy_pmd_free(&rx);
    sy_pmd_free(&tx);
    sy_pmd_init(&tx, &pp, 8);
    sb_reset(&b);
    b.fail_at = 3;
    CHECK_EQ(sy_pmd_deflate(&tx, data, n, 1, sink_fn, &b), -7);
    sy_pmd_free(&tx);
    sb_free(&b);
    sb_free(&out);
    free(data);
}

/* Many random messages in random parts through one pair of contexts. */
TEST(random_messages)
{
    size_t maxn = 70000;
    uint8_t *data = malloc(maxn);
    sy_pmd tx, rx;
    sy_pmd_params pp = params(12, 12, 0, 0);
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    sy_pmd_init(&tx, &pp, 5);
    sy_pmd_init(&rx, &pp, 8);
    for (int m = 0; m < 150; m++) {
        size_t n = rnd() % 3 ? rnd() % 300 : rnd() % maxn;
        if (rnd() % 2)
            fill_text(data, n);
        else
            fill_random(data, n);
        sb_reset(&b);
        size_t off = 0;
        while (off < n) {
            size_t step = 1 + rnd() % 9000, k = SY_MIN(n - off, step);
            CHECK_EQ(sy_pmd_deflate(&tx, data + off, k, 0, sink_fn, &b), 0);
            off += k;
        }
        CHECK_EQ(sy_pmd_deflate(&tx, NULL, 0, 1, sink_fn, &b), 0);
        sb_reset(&out);
        off = 0;
        while (off < b.len) {
            size_t step = 1 + rnd() % 500, k = SY_MIN(b.len - off, step);
            CHECK_EQ(sy_pmd_inflate(&rx, b.data + off, k, 0, maxn, sink_fn, &out, &detail), 0);
            off += k;
        }
        CHECK_EQ(sy_pmd_inflate(&rx, NULL, 0, 1, maxn, sink_fn, &out, &detail), 0);
        CHECK_EQ(out.len, n);
        CHECK(n == 0 || memcmp(out.data, data, n) == 0);
    }
    sy_pmd_free(&tx);
    sy_pmd_free(&rx);
    sb_free(&b);
    sb_free(&out);
    free(data);
}

TEST(free_is_idempotent)
{
    sy_pmd p;
    memset(&p, 0, sizeof(p));
    sy_pmd_free(&p);
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    sy_pmd_init(&p, &pp, 8);
    CHECK_EQ(sy_pmd_deflate(&p, (const uint8_t *)"x", 1, 1, sink_fn, &b), 0);
    sy_pmd_free(&p);
    sy_pmd_free(&p);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sb_free(&b);
}

/* ---- server negotiation ---- */

typedef struct nego_case {
    const char *offer;
    sy_pmd_config cfg;
    int ok;
    const char *resp;
    sy_pmd_params want;
} nego_case;

#define CFG_DEFAULT                                                                                \
    {                                                                                              \
        15, 8, 0, 0                                                                                \
    }

static const nego_case nego_cases[] = {
    {"permessage-deflate", CFG_DEFAULT, 1, "permessage-deflate", {15, 15, 0, 0}},
    {"permessage-deflate; client_max_window_bits",
     CFG_DEFAULT,
     1,
     "permessage-deflate",
     {15, 15, 0, 0}},
    {"permessage-deflate; client_max_window_bits",
     {15, 8, 0, 10},
     1,
     "permessage-deflate; client_max_window_bits=10",
     {15, 10, 0, 0}},
    {"permessage-deflate; client_max_window_bits=12",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_max_window_bits=12",
     {15, 12, 0, 0}},
    {"permessage-deflate; client_max_window_bits=12",
     {15, 8, 0, 9},
     1,
     "permessage-deflate; client_max_window_bits=9",
     {15, 9, 0, 0}},
    {"permessage-deflate; client_max_window_bits=9",
     {15, 8, 0, 12},
     1,
     "permessage-deflate; client_max_window_bits=9",
     {15, 9, 0, 0}},
    {"permessage-deflate", {15, 8, 0, 10}, 1, "permessage-deflate", {15, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=10",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=10",
     {10, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=15",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=15",
     {15, 15, 0, 0}},
    {"permessage-deflate",
     {12, 8, 0, 0},
     1,
     "permessage-deflate; server_max_window_bits=12",
     {12, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=14",
     {12, 8, 0, 0},
     1,
     "permessage-deflate; server_max_window_bits=12",
     {12, 15, 0, 0}},
    {"permessage-deflate",
     {8, 8, 0, 0},
     1,
     "permessage-deflate; server_max_window_bits=9",
     {9, 15, 0, 0}},
    {"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     {15, 15, 1, 1}},
    {"permessage-deflate",
     {15, 8, 1, 0},
     1,
     "permessage-deflate; server_no_context_takeover",
     {15, 15, 1, 0}},
    {"permessage-deflate; client_no_context_takeover",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_no_context_takeover",
     {15, 15, 0, 1}},
    /* invalid values decline the offer */
    {"permessage-deflate; server_max_window_bits=7", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=16", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=08", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=010", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=+9", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=\"10\"",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=10",
     {10, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=\"1\\0\"",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=10",
     {10, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=\"1 0\"", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=\"\"", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=\"10", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=7", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=16", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=0", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=08", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=\"8\"",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_max_window_bits=8",
     {15, 8, 0, 0}},
    {"permessage-deflate; server_no_context_takeover=1", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_no_context_takeover=\"x\"", CFG_DEFAULT, 0, NULL, {0}},
    /* repeated and unknown parameters decline the offer */
    {"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
     CFG_DEFAULT,
     0,
     NULL,
     {0}},
    {"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
     CFG_DEFAULT,
     0,
     NULL,
     {0}},
    {"permessage-deflate; client_max_window_bits; client_max_window_bits=10",
     CFG_DEFAULT,
     0,
     NULL,
     {0}},
    {"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
     CFG_DEFAULT,
     0,
     NULL,
     {0}},
    {"permessage-deflate; foo", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; foo=1", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; x-webkit", CFG_DEFAULT, 0, NULL, {0}},
    /* several offers: the first valid one wins */
    {"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=10",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=10",
     {10, 15, 0, 0}},
    {"permessage-deflate; foo, permessage-deflate; client_max_window_bits=11, permessage-deflate",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_max_window_bits=11",
     {15, 11, 0, 0}},
    {"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
     CFG_DEFAULT,
     1,
     "permessage-deflate",
     {15, 15, 0, 0}},
    {"foo; bar=\"a, permessage-deflate; b\", permessage-deflate; client_no_context_takeover",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_no_context_takeover",
     {15, 15, 0, 1}},
    {"foo; bar=\"unterminated, permessage-deflate", CFG_DEFAULT, 0, NULL, {0}},
    {"foo@bar, permessage-deflate", CFG_DEFAULT, 1, "permessage-deflate", {15, 15, 0, 0}},
    {"permessage-deflate client_max_window_bits, permessage-deflate; server_max_window_bits=9",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=9",
     {9, 15, 0, 0}},
    /* list syntax */
    {"", CFG_DEFAULT, 0, NULL, {0}},
    {" , ,", CFG_DEFAULT, 0, NULL, {0}},
    {", ,permessage-deflate", CFG_DEFAULT, 1, "permessage-deflate", {15, 15, 0, 0}},
    {"  permessage-deflate ;\tclient_max_window_bits = 10 ,  ",
     CFG_DEFAULT,
     1,
     "permessage-deflate; client_max_window_bits=10",
     {15, 10, 0, 0}},
    {"PerMessage-Deflate; Server_No_Context_Takeover",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_no_context_takeover",
     {15, 15, 1, 0}},
    {"permessage-deflate;", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate;;", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; =10", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; client_max_window_bits=10 11", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=10; @", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflatex", CFG_DEFAULT, 0, NULL, {0}},
    {"deflate", CFG_DEFAULT, 0, NULL, {0}},
    {"permessage-deflate; server_max_window_bits=8",
     CFG_DEFAULT,
     1,
     "permessage-deflate; server_max_window_bits=8",
     {8, 15, 0, 0}},
};

TEST(server_negotiate_cases)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(nego_cases); i++) {
        const nego_case *c = &nego_cases[i];
        sy_pmd_params got = {0};
        char resp[128] = "unchanged";
        int r =
            sy_pmd_server_negotiate(c->offer, strlen(c->offer), &c->cfg, &got, resp, sizeof(resp));
        if (r != c->ok ||
            (c->ok && (strcmp(resp, c->resp) != 0 || memcmp(&got, &c->want, sizeof(got)) != 0))) {
            printf("  case %zu: offer '%s' -> %d '%s' tx%u rx%u nct%u/%u\n", i, c->offer, r, resp,
                   got.tx_window_bits, got.rx_window_bits, got.tx_no_context_takeover,
                   got.rx_no_context_takeover);
        }
        CHECK_EQ(r, c->ok);
        if (c->ok) {
            CHECK(strcmp(resp, c->resp) == 0);
            CHECK_EQ(got.tx_window_bits, c->want.tx_window_bits);
            CHECK_EQ(got.rx_window_bits, c->want.rx_window_bits);
            CHECK_EQ(got.tx_no_context_takeover, c->want.tx_no_context_takeover);
            CHECK_EQ(got.rx_no_context_takeover, c->want.rx_no_context_takeover);
        }
    }
}

/* The offer is a slice: bytes after len are never read. */
TEST(server_negotiate_slice_on_guard_page)
{
    static const char offer[] = "permessage-deflate; client_max_window_bits=10, foo; x=\"y\"";
    size_t n = strlen(offer);
    sy_pmd_config cfg = CFG_DEFAULT;
    for (size_t len = 0; len <= n; len++) {
        char *g = sy_t_guard_copy(offer, len);
        sy_pmd_params pp;
        char resp[128];
        int r = sy_pmd_server_negotiate(g, len, &cfg, &pp, resp, sizeof(resp));
        sy_t_guard_free(g, len);
        /* Valid prefixes: "permessage-deflate", "...; client_max_window_bits" and from
         * "...=10" on; "...=" and "...=1" are invalid, shorter names are unknown. */
        CHECK_EQ(r, len == 18 || len == 42 || len >= 45);
    }
}

TEST(server_response_fits_128)
{
    static const char offer[] = "permessage-deflate; server_no_context_takeover; "
                                "client_no_context_takeover; server_max_window_bits=10; "
                                "client_max_window_bits=10";
    sy_pmd_config cfg = CFG_DEFAULT;
    sy_pmd_params pp, cp;
    char resp[128];
    CHECK_EQ(sy_pmd_server_negotiate(offer, strlen(offer), &cfg, &pp, resp, sizeof(resp)), 1);
    CHECK(strlen(resp) < 128);
    CHECK(strstr(resp, "server_no_context_takeover") && strstr(resp, "client_no_context_takeover"));
    CHECK(strstr(resp, "server_max_window_bits=10") && strstr(resp, "client_max_window_bits=10"));
    /* Our own client understands the compact form. */
    const char *detail = NULL;
    sy_pmd_config ccfg = {15, 8, 1, 10};
    CHECK_EQ(sy_pmd_client_accept(resp, strlen(resp), &ccfg, &cp, &detail), 1);
    CHECK_EQ(cp.tx_window_bits, pp.rx_window_bits);
    CHECK_EQ(cp.rx_window_bits, pp.tx_window_bits);
    CHECK_EQ(cp.tx_no_context_takeover, 1);
    CHECK_EQ(cp.rx_no_context_takeover, 1);
    /* A buffer below the documented minimum: declined, never overflowed. */
    char small[24];
    CHECK_EQ(sy_pmd_server_negotiate(offer, strlen(offer), &cfg, &pp, small, sizeof(small)), 0);
    CHECK_EQ(small[0], '\0');
}

/* ---- client side ---- */

TEST(client_offer)
{
    char buf[128];
    sy_pmd_config cfg = CFG_DEFAULT;
    size_t n = sy_pmd_client_offer(&cfg, buf, sizeof(buf));
    CHECK_EQ(n, strlen(buf));
    CHECK(strcmp(buf, "permessage-deflate; client_max_window_bits") == 0);
    sy_pmd_config cfg2 = {15, 8, 1, 10};
    n = sy_pmd_client_offer(&cfg2, buf, sizeof(buf));
    CHECK_EQ(n, strlen(buf));
    CHECK(strcmp(buf, "permessage-deflate; client_max_window_bits; server_max_window_bits=10; "
                      "client_no_context_takeover") == 0);
    char tiny[10];
    CHECK_EQ(sy_pmd_client_offer(&cfg2, tiny, sizeof(tiny)), 0);
    CHECK_EQ(tiny[0], '\0');
}

/* Our client's offer, our server's answer, our client's check: the two sides agree. */
TEST(client_server_agree)
{
    const sy_pmd_config ccfgs[] = {{15, 8, 0, 0}, {12, 8, 1, 0}, {15, 8, 0, 9}, {9, 4, 1, 11}};
    const sy_pmd_config scfgs[] = {{15, 8, 0, 0}, {10, 8, 0, 12}, {15, 8, 1, 8}, {13, 8, 0, 0}};
    for (size_t i = 0; i < SY_ARRAY_LEN(ccfgs); i++) {
        for (size_t j = 0; j < SY_ARRAY_LEN(scfgs); j++) {
            char offer[128], resp[128];
            sy_pmd_params sp, cp;
            const char *detail = NULL;
            size_t n = sy_pmd_client_offer(&ccfgs[i], offer, sizeof(offer));
            CHECK_EQ(sy_pmd_server_negotiate(offer, n, &scfgs[j], &sp, resp, sizeof(resp)), 1);
            CHECK_EQ(sy_pmd_client_accept(resp, strlen(resp), &ccfgs[i], &cp, &detail), 1);
            /* Each side's deflater stays within the other's inflater. */
            CHECK(cp.tx_window_bits <= sp.rx_window_bits);
            CHECK(sp.tx_window_bits <= cp.rx_window_bits);
            CHECK_EQ(cp.rx_no_context_takeover, sp.tx_no_context_takeover);
            CHECK(!cp.tx_no_context_takeover || sp.rx_no_context_takeover ||
                  !ccfgs[i].no_context_takeover);
            if (ccfgs[i].peer_window_bits)
                CHECK(cp.rx_window_bits <= ccfgs[i].peer_window_bits);
        }
    }
}

typedef struct accept_case {
    const char *resp;
    sy_pmd_config cfg;
    int ret;
    sy_pmd_params want;
} accept_case;

static const accept_case accept_cases[] = {
    {"permessage-deflate", CFG_DEFAULT, 1, {15, 15, 0, 0}},
    {" permessage-deflate ", CFG_DEFAULT, 1, {15, 15, 0, 0}},
    {"permessage-deflate; server_no_context_takeover", CFG_DEFAULT, 1, {15, 15, 0, 1}},
    {"permessage-deflate; client_no_context_takeover", CFG_DEFAULT, 1, {15, 15, 1, 0}},
    {"permessage-deflate", {15, 8, 1, 0}, 1, {15, 15, 1, 0}},
    {"permessage-deflate; client_max_window_bits=10", CFG_DEFAULT, 1, {10, 15, 0, 0}},
    {"permessage-deflate; client_max_window_bits=14", {12, 8, 0, 0}, 1, {12, 15, 0, 0}},
    {"permessage-deflate; client_max_window_bits=8", CFG_DEFAULT, 1, {8, 15, 0, 0}},
    {"permessage-deflate; server_max_window_bits=12", CFG_DEFAULT, 1, {15, 12, 0, 0}},
    {"permessage-deflate; server_max_window_bits=10", {15, 8, 0, 10}, 1, {15, 10, 0, 0}},
    {"permessage-deflate; server_max_window_bits=9", {15, 8, 0, 10}, 1, {15, 9, 0, 0}},
    {"permessage-deflate; server_max_window_bits=\"9\"", {15, 8, 0, 10}, 1, {15, 9, 0, 0}},
    {"permessage-deflate, ", CFG_DEFAULT, 1, {15, 15, 0, 0}},
    /* errors */
    {"permessage-deflate; server_max_window_bits=11", {15, 8, 0, 10}, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate", {15, 8, 0, 10}, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; client_max_window_bits", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; client_max_window_bits=16", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; server_max_window_bits=7", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; server_max_window_bits", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; server_max_window_bits=08", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; foo", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
     CFG_DEFAULT,
     SY_EWS_EXTENSION,
     {0}},
    {"permessage-deflate; client_no_context_takeover=1", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate, permessage-deflate", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"x-foo", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate, x-foo", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"x-foo, permessage-deflate", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate;", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"permessage-deflate; server_max_window_bits=\"1", CFG_DEFAULT, SY_EWS_EXTENSION, {0}},
    {"", CFG_DEFAULT, 0, {0}},
    {" \t, ", CFG_DEFAULT, 0, {0}},
};

TEST(client_accept_cases)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(accept_cases); i++) {
        const accept_case *c = &accept_cases[i];
        sy_pmd_params got = {0};
        const char *detail = NULL;
        int r = sy_pmd_client_accept(c->resp, strlen(c->resp), &c->cfg, &got, &detail);
        if (r != c->ret)
            printf("  case %zu: '%s' -> %d (%s)\n", i, c->resp, r, detail ? detail : "-");
        CHECK_EQ(r, c->ret);
        if (r == SY_EWS_EXTENSION)
            CHECK(detail != NULL);
        if (r == 1) {
            CHECK_EQ(got.tx_window_bits, c->want.tx_window_bits);
            CHECK_EQ(got.rx_window_bits, c->want.rx_window_bits);
            CHECK_EQ(got.tx_no_context_takeover, c->want.tx_no_context_takeover);
            CHECK_EQ(got.rx_no_context_takeover, c->want.rx_no_context_takeover);
        }
    }
    /* detail may be NULL */
    sy_pmd_params got;
    sy_pmd_config cfg = CFG_DEFAULT;
    CHECK_EQ(sy_pmd_client_accept("x", 1, &cfg, &got, NULL), SY_EWS_EXTENSION);
}

/* ---- memory budget ---- */

TEST(budget_reservations)
{
    CHECK_EQ(sy_pmd_budget_used(), 0);
    /* Using a pmd charges nothing: what it may use was reserved at negotiation. */
    sy_pmd p;
    sy_pmd_params pp = params(10, 9, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_pmd_init(&p, &pp, 4);
    CHECK_EQ(sy_pmd_deflate(&p, (const uint8_t *)"Hello", 5, 1, sink_fn, &b), 0);
    CHECK_EQ(sy_pmd_inflate(&p, b.data, b.len, 1, 100, sink_fn, &b, &detail), 0);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sy_pmd_free(&p);

    sy_pmd_set_budget(1000);
    CHECK_EQ(sy_pmd_reserve(600, SY_PMD_FULL), 0); /* full settings: half the budget */
    CHECK_EQ(sy_pmd_budget_used(), 0);             /* nothing taken */
    CHECK_EQ(sy_pmd_reserve(500, SY_PMD_FULL), 1); /* exactly half */
    CHECK_EQ(sy_pmd_reserve(1, SY_PMD_FULL), 0);
    CHECK_EQ(sy_pmd_reserve(600, SY_PMD_CHEAP), 0); /* would go above the budget */
    CHECK_EQ(sy_pmd_reserve(500, SY_PMD_CHEAP), 1); /* exactly at the budget */
    CHECK_EQ(sy_pmd_reserve(1, SY_PMD_CHEAP), 0);
    CHECK_EQ(sy_pmd_budget_used(), 1000);
    sy_pmd_release(1000);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sy_pmd_set_budget(0); /* unlimited, still counted */
    CHECK_EQ(sy_pmd_reserve((size_t)1 << 40, SY_PMD_FULL), 1);
    CHECK_EQ(sy_pmd_budget_used(), (uint64_t)1 << 40);
    sy_pmd_release((size_t)1 << 40);

    /* A pmd owns the reservation it is handed and gives it back once. */
    sy_pmd_set_budget((uint64_t)256 << 20);
    size_t cost = sy_pmd_cost(&pp, 4);
    CHECK_EQ(sy_pmd_reserve(cost, SY_PMD_FULL), 1);
    sy_pmd_init(&p, &pp, 4);
    p.reserved = cost;
    CHECK_EQ(sy_pmd_budget_used(), cost);
    sy_pmd_free(&p);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sy_pmd_free(&p);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sb_free(&b);
}

TEST(costs)
{
    sy_pmd_params full = params(15, 15, 0, 0);
    CHECK_EQ(sy_pmd_cost(&full, 8), (1u << 17) + (1u << 17) + 6144 + (1u << 15) + 7168);
    CHECK_EQ(sy_pmd_cost(&full, 0), sy_pmd_cost(&full, 8)); /* 0 = zlib's default 8 */
    sy_pmd_params small = params(10, 9, 0, 0);
    CHECK_EQ(sy_pmd_cost(&small, 4), (1u << 12) + (1u << 13) + 6144 + (1u << 9) + 7168);
    /* tx window 8: we never deflate, only the inflater costs */
    sy_pmd_params w8 = params(8, 8, 0, 0);
    CHECK_EQ(sy_pmd_cost(&w8, 8), (1u << 9) + 7168);
    /* An offer's cost covers every answer the server may give to it. */
    sy_pmd_config cfg = {12, 6, 0, 0};
    for (uint8_t tx = 8; tx <= 12; tx++)
        for (uint8_t rx = 8; rx <= 15; rx++) {
            sy_pmd_params a = params(tx, rx, 0, 0);
            CHECK(sy_pmd_cost(&a, 6) <= sy_pmd_offer_cost(&cfg));
        }
    cfg.peer_window_bits = 10;
    sy_pmd_params a = params(12, 10, 0, 0);
    CHECK_EQ(sy_pmd_offer_cost(&cfg), sy_pmd_cost(&a, 6));
}

TEST(cheap_config)
{
    sy_pmd_config c = {15, 8, 1, 0};
    sy_pmd_cheap_config(&c);
    CHECK_EQ(c.window_bits, 10);
    CHECK_EQ(c.mem_level, 4);
    CHECK_EQ(c.no_context_takeover, 1);
    CHECK_EQ(c.peer_window_bits, 10);
    sy_pmd_config d = {0, 0, 0, 0}; /* defaults */
    sy_pmd_cheap_config(&d);
    CHECK_EQ(d.window_bits, 10);
    CHECK_EQ(d.mem_level, 4);
    sy_pmd_config e = {8, 2, 0, 9}; /* never raised */
    sy_pmd_cheap_config(&e);
    CHECK_EQ(e.window_bits, 8);
    CHECK_EQ(e.mem_level, 2);
    CHECK_EQ(e.peer_window_bits, 9);
    sy_pmd_params full = params(15, 15, 0, 0), cheap = params(10, 10, 0, 0);
    CHECK(sy_pmd_cost(&cheap, 4) * 10 < sy_pmd_cost(&full, 8));
}

/* Bytes zlib asked for through the allocator hooks. */
static size_t zlib_bytes;
static void *counting_malloc(size_t n)
{
    zlib_bytes += n;
    return malloc(n);
}

TEST(cost_covers_what_zlib_allocates)
{
    static uint8_t msg[70000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(msg); i++) {
        x = x * 1103515245u + 12345u;
        msg[i] = (uint8_t)(i % 7 ? x >> 24 : 'a');
    }
    sinkbuf b = {0}, out = {0};
    const char *detail = NULL;
    for (uint8_t w = 8; w <= 15; w++) {
        for (uint8_t m = 1; m <= 9; m++) {
            sy_pmd tx, rx;
            sy_pmd_params ptx = params(w, w, 0, 0), prx = params(w, w, 0, 0);
            sb_reset(&b);
            sb_reset(&out);
            zlib_bytes = 0;
            sy_set_allocator(counting_malloc, realloc, free);
            sy_pmd_init(&tx, &ptx, m);
            sy_pmd_init(&rx, &prx, m);
            /* both streams of one side: the deflater of tx and the inflater of rx */
            int e1 = w >= 9 ? sy_pmd_deflate(&tx, msg, sizeof(msg), 1, sink_fn, &b) : 0;
            int e2 =
                w >= 9 ? sy_pmd_inflate(&rx, b.data, b.len, 1, sizeof(msg), sink_fn, &out, &detail)
                       : sy_pmd_inflate(&rx, (const uint8_t *)"\x01\x01\x00\xfe\xffx", 6, 1, 10,
                                        sink_fn, &out, &detail);
            sy_set_allocator(NULL, NULL, NULL);
            size_t used = zlib_bytes;
            sy_pmd_free(&tx);
            sy_pmd_free(&rx);
            CHECK_EQ(e1, 0);
            CHECK_EQ(e2, 0);
            CHECK(used > 0);
            CHECK(used <= sy_pmd_cost(&ptx, m));
        }
    }
    sb_free(&b);
    sb_free(&out);
}

typedef struct racer {
    int won;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 2000; i++)
        r->won += sy_pmd_reserve(100, SY_PMD_CHEAP);
    return NULL;
}

TEST(reservations_are_atomic)
{
    /* Eight threads race for room for exactly 3000 reservations of 16000 attempts. */
    sy_pmd_set_budget(300000);
    pthread_t t[8];
    racer r[8] = {{0}};
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    int won = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        won += r[i].won;
    }
    CHECK_EQ(won, 3000);
    CHECK_EQ(sy_pmd_budget_used(), 300000);
    sy_pmd_release(300000);
    sy_pmd_set_budget((uint64_t)256 << 20);
    CHECK_EQ(sy_pmd_budget_used(), 0);
}

/* zlib allocations go through the library's allocator hooks. */
static size_t hook_allocs;
static void *hook_malloc(size_t n)
{
    hook_allocs++;
    return malloc(n);
}

static void *fail_malloc(size_t n)
{
    (void)n;
    return NULL;
}

TEST(allocator_hooks)
{
    sy_pmd p;
    sy_pmd_params pp = params(15, 15, 0, 0);
    sinkbuf b = {0};
    const char *detail = NULL;
    sy_set_allocator(hook_malloc, realloc, free);
    sy_pmd_init(&p, &pp, 8);
    CHECK_EQ(sy_pmd_deflate(&p, (const uint8_t *)"Hello", 5, 1, sink_fn, &b), 0);
    CHECK_EQ(sy_pmd_inflate(&p, b.data, b.len, 1, 100, sink_fn, &b, &detail), 0);
    sy_pmd_free(&p);
    CHECK(hook_allocs >= 2);
    sy_set_allocator(fail_malloc, realloc, free);
    sy_pmd_init(&p, &pp, 8);
    int r1 = sy_pmd_deflate(&p, (const uint8_t *)"Hello", 5, 1, sink_fn, &b);
    int r2 = sy_pmd_inflate(&p, hello_c, sizeof(hello_c), 1, 100, sink_fn, &b, &detail);
    sy_pmd_free(&p);
    sy_set_allocator(NULL, NULL, NULL);
    CHECK_EQ(r1, SY_ENOMEM);
    CHECK_EQ(r2, SY_ENOMEM);
    CHECK_EQ(sy_pmd_budget_used(), 0);
    sb_free(&b);
}

int main(void)
{
    RUN(rfc_hello_inflate);
    RUN(rfc_hello_deflate);
    RUN(hello_with_wrong_first_byte_rejected);
    RUN(rfc_shared_context_inflate);
    RUN(no_context_takeover_both_sides);
    RUN(rfc_stored_block_bfinal);
    RUN(rfc_fixed_block_bfinal);
    RUN(bfinal_split_and_trailing_bytes);
    RUN(rfc_two_blocks);
    RUN(empty_message);
    RUN(deflate_in_parts);
    RUN(inflate_split_every_offset);
    RUN(tail_across_output_chunks);
    RUN(windows_9_to_15_round_trip);
    RUN(window_violation_detected);
    RUN(window_8);
    RUN(decompression_bomb);
    RUN(invalid_data);
    RUN(sink_error_propagates);
    RUN(random_messages);
    RUN(free_is_idempotent);
    RUN(server_negotiate_cases);
    RUN(server_negotiate_slice_on_guard_page);
    RUN(server_response_fits_128);
    RUN(client_offer);
    RUN(client_server_agree);
    RUN(client_accept_cases);
    RUN(budget_reservations);
    RUN(costs);
    RUN(cheap_config);
    RUN(cost_covers_what_zlib_allocates);
    RUN(reservations_are_atomic);
    RUN(allocator_hooks);
    return sy_t_summary();
}
