/* Tests for src/ws/frame.c. Every input stream is fed whole, byte by byte, split at every
 * offset and (short streams) at every pair of offsets, each piece copied to end on a guard
 * page. The events are folded into a transcript (messages reassembled, control frames,
 * errors) that must be the same for every split and equal the expected text; invariants on
 * the individual events (msg_start/msg_end placement, slices inside the input, progress)
 * are checked as the events arrive. */
#include "harness.h"

#include <stdarg.h>

#include "ws/frame.h"
#include "ws/mask.h"

/* ---- transcript ---- */

#define TR_CAP 4096
#define MSG_CAP ((1u << 16) + 4096)

typedef struct tr {
    char s[TR_CAP];
    size_t n;
    /* the data message being reassembled */
    int open;
    uint8_t opcode;
    int compressed;
    int empties; /* zero-length DATA events (only zero-length frames may produce them) */
    uint8_t msg[MSG_CAP];
    size_t msg_len;
} tr;

static void tr_printf(tr *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(t->s + t->n, TR_CAP - t->n, fmt, ap);
    va_end(ap);
    if (r > 0)
        t->n = SY_MIN(t->n + (size_t)r, TR_CAP - 1);
}

/* A short, split-independent rendering of a payload: quoted text, hex, or length + hash. */
static const char *repr(const uint8_t *d, size_t n)
{
    static char out[64];
    int printable = n <= 40;
    for (size_t i = 0; i < n && printable; i++)
        printable = d[i] >= 0x20 && d[i] < 0x7f && d[i] != '\'';
    if (printable) {
        snprintf(out, sizeof(out), " '%.*s'", (int)n, (const char *)d);
    } else if (n <= 16) {
        size_t k = (size_t)snprintf(out, sizeof(out), " hex:");
        for (size_t i = 0; i < n; i++)
            k += (size_t)snprintf(out + k, sizeof(out) - k, "%02x", d[i]);
    } else {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < n; i++)
            h = (h ^ d[i]) * 16777619u;
        snprintf(out, sizeof(out), " len=%zu fnv=%08x", n, (unsigned)h);
    }
    return out;
}

static void tr_payload(tr *t, const uint8_t *d, size_t n)
{
    tr_printf(t, "%s", repr(d, n));
}

static const char *opname(unsigned op)
{
    return op == SY_WS_OP_TEXT ? "TEXT" : op == SY_WS_OP_BINARY ? "BINARY" : "?";
}

static void tr_message(tr *t, const char *prefix)
{
    tr_printf(t, "%s%s", prefix, opname(t->opcode));
    if (t->compressed)
        tr_printf(t, " rsv1");
    if (t->empties)
        tr_printf(t, " empty=%d", t->empties);
    tr_payload(t, t->msg, t->msg_len);
    tr_printf(t, "\n");
}

/* Folds one event into the transcript; piece/plen is the input chunk it came from. */
static void tr_event(tr *t, sy_ws_parser *p, const sy_ws_event *ev, const uint8_t *piece,
                     size_t plen)
{
    switch (ev->type) {
    case SY_WS_EV_NONE:
        break;
    case SY_WS_EV_DATA:
        if (ev->msg_start == t->open)
            tr_printf(t, "BAD msg_start=%d with open=%d\n", ev->msg_start, t->open);
        if (ev->msg_start) {
            t->open = 1;
            t->opcode = ev->opcode;
            t->compressed = ev->compressed;
            t->empties = 0;
            t->msg_len = 0;
        }
        if (ev->opcode != t->opcode || ev->compressed != t->compressed)
            tr_printf(t, "BAD opcode/compressed changed inside a message\n");
        if (ev->data < piece || ev->data + ev->len > piece + plen)
            tr_printf(t, "BAD data slice outside the input\n");
        if (ev->len == 0)
            t->empties++;
        {
            /* The ASCII flag: never on a piece with a non-ASCII byte, always on an ASCII
             * piece of a masked, uncompressed text message (empty pieces: either). */
            int all_ascii = 1;
            for (size_t i = 0; i < ev->len; i++)
                all_ascii &= ev->data[i] < 0x80;
            int want = p->masked && ev->opcode == SY_WS_OP_TEXT && !ev->compressed && all_ascii;
            if ((ev->ascii && !want) || (ev->len && want && !ev->ascii))
                tr_printf(t, "BAD ascii flag %d\n", ev->ascii);
        }
        if (ev->msg_end && p->remaining != 0)
            tr_printf(t, "BAD msg_end with payload remaining\n");
        if (t->msg_len + ev->len <= MSG_CAP) {
            memcpy(t->msg + t->msg_len, ev->data, ev->len);
            t->msg_len += ev->len;
        }
        if (ev->msg_end) {
            tr_message(t, "");
            t->open = 0;
        }
        break;
    case SY_WS_EV_PING:
    case SY_WS_EV_PONG:
        /* In place when the frame was whole in this piece, else gathered in the parser. */
        if (ev->len > 125 || (ev->data != p->ctl && (ev->data < piece || ev->data > piece + plen)))
            tr_printf(t, "BAD control payload\n");
        tr_printf(t, ev->type == SY_WS_EV_PING ? "PING" : "PONG");
        tr_payload(t, ev->data, ev->len);
        tr_printf(t, "\n");
        break;
    case SY_WS_EV_CLOSE:
        tr_printf(t, "CLOSE %u", ev->close_code);
        tr_payload(t, (const uint8_t *)ev->reason, ev->reason_len);
        tr_printf(t, "\n");
        if (ev->close_code != 1005 && ev->reason != (const char *)ev->data + 2)
            tr_printf(t, "BAD reason pointer\n");
        break;
    }
}

typedef struct cfg {
    int is_server;
    uint8_t allowed_rsv;
} cfg;

static const cfg SERVER = {1, 0}, CLIENT = {0, 0}, SERVER_PMD = {1, SY_WS_RSV1};

/* Feeds in[0..len) in pieces ending at cuts[] (ascending), each piece on its own guard
 * page. The transcript goes to t. */
static void run_pieces(tr *t, cfg c, const uint8_t *in, size_t len, const size_t *cuts,
                       size_t ncuts, int guard)
{
    sy_ws_parser p;
    sy_ws_parser_init(&p, c.is_server, c.allowed_rsv);
    t->n = 0;
    t->s[0] = 0;
    t->open = 0;
    size_t start = 0;
    for (size_t ci = 0; ci <= ncuts; ci++) {
        size_t end = ci < ncuts ? cuts[ci] : len;
        size_t plen = end - start;
        uint8_t *piece = guard ? sy_t_guard_copy(in + start, plen) : malloc(plen + 1);
        if (!piece)
            abort();
        if (!guard)
            memcpy(piece, in + start, plen);
        size_t off = 0;
        int failed = 0;
        do {
            sy_ws_event ev;
            uint16_t code = 0;
            const char *detail = NULL;
            ssize_t r = sy_ws_parse(&p, piece + off, plen - off, &ev, &code, &detail);
            if (r < 0) {
                if (t->open)
                    tr_message(t, "PARTIAL ");
                t->open = 0;
                tr_printf(t, "ERR %s %u %s\n", sy_err_name((int)r), code,
                          detail ? detail : "(no detail)");
                failed = 1;
                break;
            }
            if ((size_t)r > plen - off) {
                tr_printf(t, "BAD consumed more than given\n");
                failed = 1;
                break;
            }
            if (r == 0 && ev.type == SY_WS_EV_NONE && off < plen) {
                tr_printf(t, "BAD no progress\n");
                failed = 1;
                break;
            }
            tr_event(t, &p, &ev, piece + off, plen - off);
            off += (size_t)r;
        } while (off < plen);
        if (guard)
            sy_t_guard_free(piece, plen);
        else
            free(piece);
        /* A control buffer outlives its piece only while its frame is still arriving. */
        sy_ws_parser_trim(&p);
        if (p.ctl && p.state != 2) /* 2: gathering a control frame */
            tr_printf(t, "BAD control buffer kept after trim\n");
        if (failed) {
            sy_ws_parser_release(&p);
            return;
        }
        start = end;
    }
    sy_ws_parser_release(&p);
    if (t->open)
        tr_message(t, "PARTIAL ");
}

static int expect_tr(const tr *t, const char *want, const char *name, const char *mode, size_t a,
                     size_t b)
{
    if (strcmp(t->s, want) == 0)
        return 1;
    printf("  %s (%s %zu %zu):\n  got:\n%s  want:\n%s", name, mode, a, b, t->s, want);
    return 0;
}

/* Splits checked for inputs longer than this are sampled instead of exhaustive. */
#define EXHAUSTIVE_2WAY 4096
#define EXHAUSTIVE_3WAY 48

static tr tr_buf;

/* Runs every split of the stream and compares each transcript with want. */
static int check_stream(const char *name, cfg c, const uint8_t *in, size_t len, const char *want)
{
    tr *t = &tr_buf;
    size_t cuts[2];
    run_pieces(t, c, in, len, NULL, 0, 1);
    if (!expect_tr(t, want, name, "whole", 0, 0))
        return 0;
    for (size_t a = 0; a <= len; a++) {
        if (len > EXHAUSTIVE_2WAY && a > 40 && a + 40 < len && a % 997 != 0)
            continue;
        cuts[0] = a;
        run_pieces(t, c, in, len, cuts, 1, 1);
        if (!expect_tr(t, want, name, "split", a, 0))
            return 0;
        if (len <= EXHAUSTIVE_3WAY) {
            for (size_t b = a; b <= len; b++) {
                cuts[1] = b;
                run_pieces(t, c, in, len, cuts, 2, 1);
                if (!expect_tr(t, want, name, "split3", a, b))
                    return 0;
            }
        }
    }
    /* Byte by byte (each byte on its own guard page unless the stream is large). */
    size_t *all = malloc((len + 1) * sizeof(*all));
    if (!all)
        return 0;
    for (size_t i = 0; i < len; i++)
        all[i] = i + 1;
    run_pieces(t, c, in, len, all, len ? len - 1 : 0, len <= EXHAUSTIVE_2WAY);
    free(all);
    return expect_tr(t, want, name, "bytewise", 0, 0);
}

/* ---- a frame builder, independent of sy_ws_frame_header ---- */

typedef struct stream {
    uint8_t b[(1 << 16) + 256];
    size_t n;
} stream;

static void put(stream *s, uint8_t b0, const void *payload, size_t len, const uint8_t *key)
{
    uint8_t mbit = key ? 0x80 : 0;
    s->b[s->n++] = b0;
    if (len < 126) {
        s->b[s->n++] = (uint8_t)(mbit | len);
    } else if (len < 65536) {
        s->b[s->n++] = mbit | 126;
        s->b[s->n++] = (uint8_t)(len >> 8);
        s->b[s->n++] = (uint8_t)len;
    } else {
        s->b[s->n++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            s->b[s->n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (key) {
        memcpy(s->b + s->n, key, 4);
        s->n += 4;
    }
    for (size_t i = 0; i < len; i++)
        s->b[s->n + i] = (uint8_t)(((const uint8_t *)payload)[i] ^ (key ? key[i % 4] : 0));
    s->n += len;
}

static void put_raw(stream *s, const void *bytes, size_t n)
{
    memcpy(s->b + s->n, bytes, n);
    s->n += n;
}

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};
static stream st;

#define CHECK_STREAM(name, c, want) CHECK(check_stream(name, c, st.b, st.n, want))
#define RAW(...)                                                                                   \
    do {                                                                                           \
        static const uint8_t raw_[] = {__VA_ARGS__};                                               \
        st.n = 0;                                                                                  \
        put_raw(&st, raw_, sizeof(raw_));                                                          \
    } while (0)

/* ---- RFC 6455 §5.7 examples ---- */

TEST(rfc_unmasked_text)
{
    RAW(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f);
    CHECK_STREAM("unmasked Hello", CLIENT, "TEXT 'Hello'\n");
    /* The same bytes at a server: clients must mask. */
    CHECK_STREAM("unmasked Hello at server", SERVER,
                 "ERR SY_EWS_PROTOCOL 1002 client frame not masked\n");
}

TEST(rfc_masked_text)
{
    RAW(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    CHECK_STREAM("masked Hello", SERVER, "TEXT 'Hello'\n");
    CHECK_STREAM("masked Hello at client", CLIENT,
                 "ERR SY_EWS_PROTOCOL 1002 server frame masked\n");
}

TEST(rfc_fragmented_text)
{
    RAW(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f);
    CHECK_STREAM("fragmented Hel+lo", CLIENT, "TEXT 'Hello'\n");
    st.n = 0;
    put(&st, 0x01, "Hel", 3, KEY);
    put(&st, 0x80, "lo", 2, KEY);
    CHECK_STREAM("masked fragmented Hel+lo", SERVER, "TEXT 'Hello'\n");
}

TEST(rfc_ping_pong)
{
    RAW(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f);
    CHECK_STREAM("unmasked ping", CLIENT, "PING 'Hello'\n");
    RAW(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    CHECK_STREAM("masked pong", SERVER, "PONG 'Hello'\n");
    RAW(0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f);
    CHECK_STREAM("unmasked pong", CLIENT, "PONG 'Hello'\n");
    RAW(0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    CHECK_STREAM("masked ping", SERVER, "PING 'Hello'\n");
}

static uint8_t big[1 << 16];

static void fill_big(void)
{
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
}

static void big_want(char *out, size_t n)
{
    snprintf(out, 128, "BINARY%s\n", repr(big, n));
}

TEST(rfc_256_byte_binary)
{
    char want[128];
    fill_big();
    big_want(want, 256);
    st.n = 0;
    put_raw(&st, (const uint8_t[]){0x82, 0x7E, 0x01, 0x00}, 4);
    put_raw(&st, big, 256);
    CHECK_STREAM("256-byte binary", CLIENT, want);
    st.n = 0;
    put(&st, 0x82, big, 256, KEY);
    CHECK_EQ(st.b[1], 0xFE);
    CHECK_STREAM("masked 256-byte binary", SERVER, want);
}

TEST(rfc_64k_binary)
{
    char want[128];
    fill_big();
    big_want(want, 65536);
    st.n = 0;
    put_raw(&st, (const uint8_t[]){0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10);
    put_raw(&st, big, 65536);
    CHECK_STREAM("64KiB binary", CLIENT, want);
    st.n = 0;
    put(&st, 0x82, big, 65536, KEY);
    CHECK_STREAM("masked 64KiB binary", SERVER, want);
    /* 65535 bytes is the largest 16-bit length. */
    big_want(want, 65535);
    st.n = 0;
    put(&st, 0x82, big, 65535, KEY);
    CHECK_EQ(st.b[1], 0xFE);
    CHECK_STREAM("masked 65535-byte binary", SERVER, want);
}

/* ---- events in detail ---- */

TEST(one_event_per_call_and_pieces)
{
    uint8_t buf[32];
    sy_ws_parser p;
    sy_ws_event ev;
    uint16_t code = 0;
    const char *detail = NULL;
    st.n = 0;
    put(&st, 0x01, "Hel", 3, KEY);
    put(&st, 0x89, "pi", 2, KEY);
    put(&st, 0x80, "lo", 2, KEY);
    memcpy(buf, st.b, st.n);
    sy_ws_parser_init(&p, 1, 0);

    /* The header and one payload byte: a 1-byte piece starting the message. */
    CHECK_EQ(sy_ws_parse(&p, buf, 7, &ev, &code, &detail), 7);
    CHECK_EQ(ev.type, SY_WS_EV_DATA);
    CHECK_EQ(ev.opcode, SY_WS_OP_TEXT);
    CHECK(ev.msg_start && !ev.msg_end && !ev.compressed);
    CHECK_EQ(ev.len, 1);
    CHECK(ev.data == buf + 6);
    CHECK_EQ(ev.data[0], 'H');
    CHECK_EQ(p.remaining, 2); /* the message layer reads this to fail fast on size */

    /* The rest of the frame and the whole ping: one event per call. */
    CHECK_EQ(sy_ws_parse(&p, buf + 7, st.n - 7, &ev, &code, &detail), 2);
    CHECK_EQ(ev.type, SY_WS_EV_DATA);
    CHECK(!ev.msg_start && !ev.msg_end);
    CHECK_MEM(ev.data, "el", 2);
    CHECK_EQ(p.remaining, 0);

    CHECK_EQ(sy_ws_parse(&p, buf + 9, st.n - 9, &ev, &code, &detail), 8);
    CHECK_EQ(ev.type, SY_WS_EV_PING);
    CHECK_EQ(ev.len, 2);
    CHECK_MEM(ev.data, "pi", 2);

    /* The final frame, header only: consumed, no event. Then the payload. */
    CHECK_EQ(sy_ws_parse(&p, buf + 17, 6, &ev, &code, &detail), 6);
    CHECK_EQ(ev.type, SY_WS_EV_NONE);
    CHECK_EQ(sy_ws_parse(&p, buf + 23, 0, &ev, &code, &detail), 0);
    CHECK_EQ(ev.type, SY_WS_EV_NONE);
    CHECK_EQ(sy_ws_parse(&p, buf + 23, 2, &ev, &code, &detail), 2);
    CHECK_EQ(ev.type, SY_WS_EV_DATA);
    CHECK_EQ(ev.opcode, SY_WS_OP_TEXT); /* the message's opcode, not CONT */
    CHECK(!ev.msg_start && ev.msg_end);
    CHECK_MEM(ev.data, "lo", 2);
    CHECK_EQ(code, 0);
    CHECK(detail == NULL);
}

static void *fail_malloc(size_t n)
{
    (void)n;
    return NULL;
}

TEST(control_buffer_only_while_split)
{
    /* An idle parser holds no buffer; a whole ping is unmasked in place. */
    uint8_t buf[32];
    sy_ws_parser p;
    sy_ws_event ev;
    uint16_t code = 0;
    const char *detail = NULL;
    st.n = 0;
    put(&st, 0x89, "ping!", 5, KEY);
    memcpy(buf, st.b, st.n);
    sy_ws_parser_init(&p, 1, 0);
    CHECK(p.ctl == NULL);
    CHECK_EQ(sy_ws_parse(&p, buf, st.n, &ev, &code, &detail), 11);
    CHECK_EQ(ev.type, SY_WS_EV_PING);
    CHECK(ev.data == buf + 6);
    CHECK_MEM(ev.data, "ping!", 5);
    CHECK(p.ctl == NULL);
    /* Header alone: still nothing allocated (the payload may come whole). */
    memcpy(buf, st.b, st.n);
    CHECK_EQ(sy_ws_parse(&p, buf, 6, &ev, &code, &detail), 6);
    CHECK(ev.type == SY_WS_EV_NONE && p.ctl == NULL);
    /* Part of the payload: gathered from here on, and reported from the buffer. */
    CHECK_EQ(sy_ws_parse(&p, buf + 6, 2, &ev, &code, &detail), 2);
    CHECK(ev.type == SY_WS_EV_NONE && p.ctl != NULL);
    CHECK_EQ(sy_ws_parse(&p, buf + 8, 3, &ev, &code, &detail), 3);
    CHECK_EQ(ev.type, SY_WS_EV_PING);
    CHECK(ev.data == p.ctl);
    CHECK_MEM(ev.data, "ping!", 5);
    sy_ws_parser_trim(&p);
    CHECK(p.ctl == NULL);
    /* Without memory for the buffer: 1011, and nothing leaks. */
    memcpy(buf, st.b, st.n);
    sy_set_allocator(fail_malloc, realloc, free);
    ssize_t r = sy_ws_parse(&p, buf, 8, &ev, &code, &detail);
    sy_set_allocator(NULL, NULL, NULL);
    CHECK_EQ(r, SY_ENOMEM);
    CHECK_EQ(code, 1011);
    sy_ws_parser_release(&p);
}

TEST(ascii_flag_seen_while_unmasking)
{
    /* A masked text frame with one two-byte character, cut at every point: each piece says
     * whether it is all ASCII (the engine then skips its UTF-8 check); binary never does. */
    uint8_t text[100];
    memset(text, 'a', sizeof(text));
    text[50] = 0xc3;
    text[51] = 0xa9;
    for (int op = 0x81; op <= 0x82; op++) {
        st.n = 0;
        put(&st, (uint8_t)op, text, sizeof(text), KEY);
        for (size_t cut = 2 + 4 + 1; cut < st.n; cut++) {
            uint8_t buf[128];
            memcpy(buf, st.b, st.n);
            sy_ws_parser p;
            sy_ws_parser_init(&p, 1, 0);
            sy_ws_event ev;
            size_t off = 0;
            while (off < st.n) {
                size_t end = off < cut ? cut : st.n;
                ssize_t r = sy_ws_parse(&p, buf + off, end - off, &ev, NULL, NULL);
                CHECK(r >= 0);
                off += (size_t)r;
                if (ev.type != SY_WS_EV_DATA)
                    continue;
                int all_ascii = 1;
                for (size_t i = 0; i < ev.len; i++)
                    all_ascii &= ev.data[i] < 0x80;
                CHECK_EQ(ev.ascii, op == 0x81 && all_ascii);
            }
            sy_ws_parser_release(&p);
        }
    }
}

TEST(whole_frames_one_call_each)
{
    /* Several complete frames in one buffer: each call returns exactly one frame. */
    uint8_t buf[64];
    st.n = 0;
    put(&st, 0x81, "a", 1, KEY);
    put(&st, 0x82, "bc", 2, KEY);
    put(&st, 0x81, "", 0, KEY);
    memcpy(buf, st.b, st.n);
    sy_ws_parser p;
    sy_ws_parser_init(&p, 1, 0);
    sy_ws_event ev;
    uint16_t code;
    const char *detail;
    CHECK_EQ(sy_ws_parse(&p, buf, st.n, &ev, &code, &detail), 7);
    CHECK(ev.type == SY_WS_EV_DATA && ev.msg_start && ev.msg_end && ev.len == 1);
    CHECK_EQ(sy_ws_parse(&p, buf + 7, st.n - 7, &ev, &code, &detail), 8);
    CHECK(ev.type == SY_WS_EV_DATA && ev.opcode == SY_WS_OP_BINARY && ev.msg_start && ev.msg_end &&
          ev.len == 2);
    CHECK_EQ(sy_ws_parse(&p, buf + 15, st.n - 15, &ev, &code, &detail), 6);
    CHECK(ev.type == SY_WS_EV_DATA && ev.msg_start && ev.msg_end && ev.len == 0);
    CHECK_EQ(st.n, 21);
}

TEST(zero_length_frames)
{
    st.n = 0;
    put(&st, 0x81, "", 0, KEY);
    CHECK_STREAM("empty text", SERVER, "TEXT empty=1 ''\n");
    st.n = 0;
    put(&st, 0x02, "", 0, KEY);
    put(&st, 0x00, "", 0, KEY);
    put(&st, 0x80, "", 0, KEY);
    CHECK_STREAM("three empty fragments", SERVER, "BINARY empty=3 ''\n");
    st.n = 0;
    put(&st, 0x01, "ab", 2, KEY);
    put(&st, 0x00, "", 0, KEY);
    put(&st, 0x80, "", 0, KEY);
    CHECK_STREAM("text then empty fragments", SERVER, "TEXT empty=2 'ab'\n");
    st.n = 0;
    put(&st, 0x89, "", 0, KEY);
    put(&st, 0x8A, "", 0, KEY);
    put(&st, 0x88, "", 0, KEY);
    CHECK_STREAM("empty controls", SERVER, "PING ''\nPONG ''\nCLOSE 1005 ''\n");
}

TEST(interleaved_control_frames)
{
    fill_big();
    st.n = 0;
    put(&st, 0x01, "Hel", 3, KEY);
    put(&st, 0x89, "ping", 4, KEY);
    put(&st, 0x00, "l", 1, KEY);
    put(&st, 0x8A, "", 0, KEY);
    put(&st, 0x89, big, 125, KEY);
    put(&st, 0x80, "o", 1, KEY);
    put(&st, 0x82, "\x00\xff", 2, KEY);
    put(&st, 0x88,
        "\x03\xe8"
        "bye",
        5, KEY);
    char want[256];
    snprintf(want, sizeof(want),
             "PING 'ping'\nPONG ''\nPING%s\nTEXT 'Hello'\nBINARY hex:00ff\nCLOSE 1000 'bye'\n",
             repr(big, 125));
    CHECK_STREAM("ping inside a fragmented message", SERVER, want);
}

TEST(client_side_stream)
{
    st.n = 0;
    put(&st, 0x02, "ab", 2, NULL);
    put(&st, 0x89, "x", 1, NULL);
    put(&st, 0x80, "cd", 2, NULL);
    put(&st, 0x88, "\x0f\xa0", 2, NULL);
    CHECK_STREAM("client side", CLIENT, "PING 'x'\nBINARY 'abcd'\nCLOSE 4000 ''\n");
}

TEST(rsv1_with_extension)
{
    st.n = 0;
    put(&st, 0x41, "ab", 2, KEY); /* RSV1, not FIN */
    put(&st, 0x89, "p", 1, KEY);
    put(&st, 0x80, "cd", 2, KEY); /* continuation: no RSV1, still compressed */
    put(&st, 0x82, "ef", 2, KEY); /* next message: not compressed */
    put(&st, 0xC2, "gh", 2, KEY); /* compressed single frame */
    CHECK_STREAM("rsv1 negotiated", SERVER_PMD,
                 "PING 'p'\nTEXT rsv1 'abcd'\nBINARY 'ef'\nBINARY rsv1 'gh'\n");
}

TEST(close_frames)
{
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                    1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++) {
        uint8_t pl[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        char want[64];
        snprintf(want, sizeof(want), "CLOSE %u ''\n", good[i]);
        st.n = 0;
        put(&st, 0x88, pl, 2, KEY);
        CHECK_STREAM("valid close code", SERVER, want);
    }
    static const unsigned bad[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                   1016, 1100, 2000, 2999, 5000, 6000, 65535};
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        st.n = 0;
        put(&st, 0x88, pl, 2, KEY);
        CHECK_STREAM("invalid close code", SERVER, "ERR SY_EWS_PROTOCOL 1002 invalid close code\n");
    }
    st.n = 0;
    put(&st, 0x88,
        "\x03\xe9"
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        13, KEY);
    CHECK_STREAM("close with UTF-8 reason", SERVER, "CLOSE 1001 hex:cebae1bdb9cf83cebcceb5\n");
    /* Longest close: code + 123-byte reason. */
    uint8_t pl[125] = {0x03, 0xe8};
    memset(pl + 2, 'r', 123);
    st.n = 0;
    put(&st, 0x88, pl, 125, KEY);
    char want[200];
    snprintf(want, sizeof(want), "CLOSE 1000%s\n", repr(pl + 2, 123));
    CHECK_STREAM("125-byte close", SERVER, want);
}

TEST(close_code_predicate)
{
    for (unsigned c = 0; c < 70000; c++) {
        int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        CHECK_EQ(!!sy_ws_close_code_valid(c), want);
    }
}

/* ---- violations ---- */

enum { V_SERVER, V_CLIENT, V_PMD };
static const cfg *const side_cfg[] = {&SERVER, &CLIENT, &SERVER_PMD};

struct violation {
    const char *name;
    int side;
    uint8_t bytes[40];
    size_t len;
    const char *want;
};

#define PROTO(d) "ERR SY_EWS_PROTOCOL 1002 " d "\n"
#define K 0x37, 0xfa, 0x21, 0x3d
#define V(name, side, want, ...)                                                                   \
    {                                                                                              \
        name, side, {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__}), want                          \
    }

static const struct violation violations[] = {
    V("opcode 3", V_SERVER, PROTO("reserved opcode 0x3"), 0x83, 0x80, K),
    V("opcode 4", V_SERVER, PROTO("reserved opcode 0x4"), 0x84, 0x80, K),
    V("opcode 5", V_SERVER, PROTO("reserved opcode 0x5"), 0x85, 0x80, K),
    V("opcode 6", V_SERVER, PROTO("reserved opcode 0x6"), 0x86, 0x80, K),
    V("opcode 7", V_SERVER, PROTO("reserved opcode 0x7"), 0x07, 0x80, K),
    V("opcode B", V_SERVER, PROTO("reserved opcode 0xB"), 0x8B, 0x80, K),
    V("opcode C", V_SERVER, PROTO("reserved opcode 0xC"), 0x8C, 0x80, K),
    V("opcode D", V_SERVER, PROTO("reserved opcode 0xD"), 0x8D, 0x80, K),
    V("opcode E", V_CLIENT, PROTO("reserved opcode 0xE"), 0x8E, 0x00),
    V("opcode F", V_SERVER, PROTO("reserved opcode 0xF"), 0x8F, 0x80, K),
    V("reserved opcode inside a message", V_SERVER,
      "PARTIAL TEXT 'H'\n" PROTO("reserved opcode 0x3"), 0x01, 0x81, K, 0x7f, 0x83, 0x80, K),
    V("rsv1 no extension", V_SERVER, PROTO("RSV1 set without a negotiated extension"), 0xC1, 0x80,
      K),
    V("rsv2 no extension", V_SERVER, PROTO("RSV2 set without a negotiated extension"), 0xA1, 0x80,
      K),
    V("rsv3 no extension", V_SERVER, PROTO("RSV3 set without a negotiated extension"), 0x92, 0x80,
      K),
    V("rsv2 with pmd", V_PMD, PROTO("RSV2 set without a negotiated extension"), 0xE1, 0x80, K),
    V("rsv1 on continuation", V_PMD,
      "PARTIAL TEXT rsv1 empty=1 ''\n" PROTO("RSV1 set on a continuation frame"), 0x41, 0x80, K,
      0xC0, 0x80, K),
    V("rsv3 on continuation", V_SERVER,
      "PARTIAL TEXT empty=1 ''\n" PROTO("RSV3 set on a continuation frame"), 0x01, 0x80, K, 0x90,
      0x80, K),
    V("rsv1 on ping", V_PMD, PROTO("RSV1 set on a control frame"), 0xC9, 0x80, K),
    V("rsv2 on close", V_SERVER, PROTO("RSV2 set on a control frame"), 0xA8, 0x80, K),
    V("ping 126", V_SERVER, PROTO("control frame longer than 125 bytes"), 0x89, 0xFE, 0x00, 0x7E,
      K),
    V("pong 127", V_CLIENT, PROTO("control frame longer than 125 bytes"), 0x8A, 0x7F),
    V("close 126", V_SERVER, PROTO("control frame longer than 125 bytes"), 0x88, 0xFE),
    V("ping without FIN", V_SERVER, PROTO("fragmented control frame"), 0x09, 0x80, K),
    V("close without FIN", V_CLIENT, PROTO("fragmented control frame"), 0x08, 0x00),
    V("unmasked client frame", V_SERVER, PROTO("client frame not masked"), 0x82, 0x01, 0x00),
    V("unmasked client ping", V_SERVER, PROTO("client frame not masked"), 0x89, 0x00),
    V("masked server frame", V_CLIENT, PROTO("server frame masked"), 0x82, 0x81, K, 0x00),
    V("continuation first", V_SERVER, PROTO("continuation frame with no message in progress"), 0x80,
      0x80, K),
    V("continuation after a finished message", V_SERVER,
      "TEXT 'a'\n" PROTO("continuation frame with no message in progress"), 0x81, 0x81, K, 0x56,
      0x00, 0x80, K),
    V("text while text is open", V_SERVER,
      "PARTIAL TEXT 'H'\n" PROTO("new data frame while a fragmented message is in progress"), 0x01,
      0x81, K, 0x7f, 0x81, 0x80, K),
    V("binary while text is open", V_CLIENT,
      "PARTIAL TEXT 'a'\n" PROTO("new data frame while a fragmented message is in progress"), 0x01,
      0x01, 'a', 0x02, 0x00),
    V("16-bit length 125", V_SERVER, PROTO("non-minimal payload length encoding"), 0x82, 0xFE, 0x00,
      0x7D, K),
    V("16-bit length 0", V_CLIENT, PROTO("non-minimal payload length encoding"), 0x82, 0x7E, 0x00,
      0x00),
    V("64-bit length 65535", V_SERVER, PROTO("non-minimal payload length encoding"), 0x82, 0xFF, 0,
      0, 0, 0, 0, 0, 0xFF, 0xFF, K),
    V("64-bit length 125", V_CLIENT, PROTO("non-minimal payload length encoding"), 0x82, 0x7F, 0, 0,
      0, 0, 0, 0, 0, 0x7D),
    V("64-bit length MSB", V_SERVER,
      PROTO("64-bit payload length with the most significant bit set"), 0x82, 0xFF, 0x80, 0, 0, 0,
      0, 0, 0, 0, K),
    V("64-bit length all ones", V_CLIENT,
      PROTO("64-bit payload length with the most significant bit set"), 0x82, 0x7F, 0xFF, 0xFF,
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
    V("close 1 byte", V_SERVER, PROTO("close frame with a 1-byte payload"), 0x88, 0x81, K, 0x03),
    V("close 1 byte unmasked", V_CLIENT, PROTO("close frame with a 1-byte payload"), 0x88, 0x01,
      0x03),
    V("close code 1005", V_CLIENT, PROTO("invalid close code"), 0x88, 0x02, 0x03, 0xED),
    V("close code 999", V_CLIENT, PROTO("invalid close code"), 0x88, 0x02, 0x03, 0xE7),
    V("close reason ff", V_CLIENT, "ERR SY_EWS_UTF8 1007 close reason is not valid UTF-8\n", 0x88,
      0x04, 0x03, 0xE8, 'a', 0xFF),
    V("close reason surrogate", V_CLIENT, "ERR SY_EWS_UTF8 1007 close reason is not valid UTF-8\n",
      0x88, 0x05, 0x03, 0xE8, 0xED, 0xA0, 0x80),
    V("close reason ends mid-sequence", V_CLIENT,
      "ERR SY_EWS_UTF8 1007 close reason is not valid UTF-8\n", 0x88, 0x04, 0x03, 0xE8, 'a', 0xCE),
    V("close reason overlong", V_CLIENT, "ERR SY_EWS_UTF8 1007 close reason is not valid UTF-8\n",
      0x88, 0x04, 0x03, 0xE8, 0xC0, 0xAF),
};

TEST(every_violation)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(violations); i++) {
        const struct violation *v = &violations[i];
        int ok = check_stream(v->name, *side_cfg[v->side], v->bytes, v->len, v->want);
        if (!ok)
            printf("  violation case %zu failed\n", i);
        CHECK(ok);
    }
}

TEST(masked_close_reason_utf8)
{
    /* The reason is validated after unmasking. */
    st.n = 0;
    put(&st, 0x88, "\x03\xe8\xed\xa0\x80", 5, KEY);
    CHECK_STREAM("masked surrogate reason", SERVER,
                 "ERR SY_EWS_UTF8 1007 close reason is not valid UTF-8\n");
}

TEST(error_is_final)
{
    uint8_t buf[8] = {0x83, 0x80, K};
    sy_ws_parser p;
    sy_ws_parser_init(&p, 1, 0);
    sy_ws_event ev;
    uint16_t code = 0;
    const char *detail = NULL;
    CHECK_EQ(sy_ws_parse(&p, buf, 6, &ev, &code, &detail), SY_EWS_PROTOCOL);
    CHECK_EQ(code, 1002);
    CHECK(detail && strcmp(detail, "reserved opcode 0x3") == 0);
    uint8_t ok[7] = {0x81, 0x81, K, 0x56};
    CHECK_EQ(sy_ws_parse(&p, ok, 7, &ev, &code, &detail), SY_EWS_PROTOCOL);
    /* NULL out-params are tolerated. */
    sy_ws_parser_init(&p, 1, 0);
    CHECK_EQ(sy_ws_parse(&p, buf, 6, &ev, NULL, NULL), SY_EWS_PROTOCOL);
}

TEST(errors_detected_from_first_two_bytes)
{
    /* A bad first header is reported before the rest of the header arrives. */
    uint8_t b[2] = {0x83, 0x80};
    sy_ws_parser p;
    sy_ws_event ev;
    uint16_t code;
    const char *detail;
    sy_ws_parser_init(&p, 1, 0);
    CHECK_EQ(sy_ws_parse(&p, b, 1, &ev, &code, &detail), 1);
    CHECK_EQ(ev.type, SY_WS_EV_NONE);
    CHECK_EQ(sy_ws_parse(&p, b + 1, 1, &ev, &code, &detail), SY_EWS_PROTOCOL);
    sy_ws_parser_init(&p, 1, 0);
    CHECK_EQ(sy_ws_parse(&p, b, 2, &ev, &code, &detail), SY_EWS_PROTOCOL);
}

/* ---- big lengths and the header encoder ---- */

TEST(large_64bit_length_streams)
{
    /* A 2^32 + 3 byte frame: header accepted, payload passes through in pieces. */
    uint8_t hdr[14];
    size_t hl = sy_ws_frame_header(hdr, SY_WS_OP_BINARY, 1, 0, (UINT64_C(1) << 32) + 3, KEY);
    CHECK_EQ(hl, 14);
    sy_ws_parser p;
    sy_ws_parser_init(&p, 1, 0);
    sy_ws_event ev;
    uint16_t code;
    const char *detail;
    CHECK_EQ(sy_ws_parse(&p, hdr, hl, &ev, &code, &detail), 14);
    CHECK_EQ(ev.type, SY_WS_EV_NONE);
    CHECK_EQ(p.remaining, (UINT64_C(1) << 32) + 3);
    uint8_t chunk[1000];
    memset(chunk, 0, sizeof(chunk));
    CHECK_EQ(sy_ws_parse(&p, chunk, 999, &ev, &code, &detail), 999);
    CHECK(ev.type == SY_WS_EV_DATA && ev.msg_start && !ev.msg_end && ev.len == 999);
    CHECK_MEM(ev.data, "\x37\xfa\x21\x3d\x37", 5); /* zeros unmasked show the key */
    memset(chunk, 0, sizeof(chunk));
    CHECK_EQ(sy_ws_parse(&p, chunk, 5, &ev, &code, &detail), 5);
    CHECK(ev.type == SY_WS_EV_DATA && !ev.msg_start && !ev.msg_end);
    CHECK_MEM(ev.data, "\x3d\x37\xfa\x21\x3d", 5); /* the key position carried over */
    CHECK_EQ(p.remaining, (UINT64_C(1) << 32) + 3 - 1004);
}

TEST(header_encoder_round_trip)
{
    static const uint64_t lens[] = {0,
                                    1,
                                    125,
                                    126,
                                    127,
                                    65535,
                                    65536,
                                    65537,
                                    1u << 20,
                                    UINT64_C(1) << 32,
                                    (UINT64_C(1) << 63) - 1};
    static const uint8_t ops[] = {SY_WS_OP_TEXT, SY_WS_OP_BINARY, SY_WS_OP_CONT};
    for (size_t li = 0; li < SY_ARRAY_LEN(lens); li++) {
        for (int masked = 0; masked < 2; masked++) {
            for (size_t oi = 0; oi < SY_ARRAY_LEN(ops); oi++) {
                uint64_t len = lens[li];
                uint8_t hdr[14];
                memset(hdr, 0xEE, sizeof(hdr));
                uint8_t rsv = ops[oi] == SY_WS_OP_TEXT ? SY_WS_RSV1 : 0;
                size_t hl = sy_ws_frame_header(hdr, ops[oi], 1, rsv, len, masked ? KEY : NULL);
                size_t want_hl = (len <= 125 ? 2 : len <= 65535 ? 4 : 10) + (masked ? 4 : 0);
                CHECK_EQ(hl, want_hl);
                CHECK_EQ(hdr[0], 0x80 | rsv | ops[oi]);
                CHECK_EQ(hdr[1] & 0x80, masked ? 0x80 : 0);
                CHECK_EQ(hdr[1] & 0x7F, len <= 125 ? len : len <= 65535 ? 126 : 127);
                if (masked)
                    CHECK_MEM(hdr + hl - 4, KEY, 4);
                if (hl < 14)
                    CHECK_EQ(hdr[hl], 0xEE); /* nothing written past the header */

                /* Parse it back, at every split. */
                for (size_t cut = 0; cut <= hl; cut++) {
                    sy_ws_parser p;
                    sy_ws_parser_init(&p, masked, SY_WS_RSV1);
                    if (ops[oi] == SY_WS_OP_CONT) {
                        /* Open a message first so the continuation is legal. */
                        uint8_t open[6] = {0x02, 0x80, K};
                        sy_ws_event e0;
                        size_t ol = masked ? 6 : 2;
                        if (!masked)
                            open[1] = 0x00;
                        CHECK_EQ(sy_ws_parse(&p, open, ol, &e0, NULL, NULL), ol);
                        CHECK(e0.type == SY_WS_EV_DATA && e0.msg_start && !e0.msg_end);
                    }
                    uint8_t copy[14];
                    memcpy(copy, hdr, hl);
                    sy_ws_event ev, ev2;
                    CHECK_EQ(sy_ws_parse(&p, copy, cut, &ev, NULL, NULL), cut);
                    if (cut < hl) {
                        CHECK_EQ(ev.type, SY_WS_EV_NONE);
                        CHECK_EQ(sy_ws_parse(&p, copy + cut, hl - cut, &ev, NULL, NULL), hl - cut);
                    } else {
                        /* Nothing left to feed: an empty call reports nothing more. */
                        CHECK_EQ(sy_ws_parse(&p, copy + cut, 0, &ev2, NULL, NULL), 0);
                        CHECK_EQ(ev2.type, SY_WS_EV_NONE);
                    }
                    CHECK(p.remaining == len);
                    if (len == 0) {
                        CHECK_EQ(ev.type, SY_WS_EV_DATA);
                        CHECK_EQ(ev.len, 0);
                        CHECK_EQ(ev.msg_end, 1);
                        CHECK_EQ(ev.msg_start, ops[oi] != SY_WS_OP_CONT);
                        CHECK_EQ(ev.compressed, rsv ? 1 : 0);
                    } else {
                        CHECK_EQ(ev.type, SY_WS_EV_NONE);
                    }
                }
            }
        }
    }
    /* Control header, not FIN, RSV bits. */
    uint8_t hdr[14];
    CHECK_EQ(sy_ws_frame_header(hdr, SY_WS_OP_PING, 1, 0, 5, NULL), 2);
    CHECK_MEM(hdr, "\x89\x05", 2);
    CHECK_EQ(sy_ws_frame_header(hdr, SY_WS_OP_TEXT, 0, SY_WS_RSV1 | SY_WS_RSV3, 126, NULL), 4);
    CHECK_MEM(hdr, "\x51\x7e\x00\x7e", 4);
    CHECK_EQ(sy_ws_frame_header(hdr, SY_WS_OP_BINARY, 1, 0, 65536, NULL), 10);
    CHECK_MEM(hdr, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    CHECK_EQ(sy_ws_frame_header(hdr, SY_WS_OP_TEXT, 1, 0, 5, KEY), 6);
    CHECK_MEM(hdr, "\x81\x85\x37\xfa\x21\x3d", 6);
}

TEST(encoder_output_parses_as_stream)
{
    /* Frames built with sy_ws_frame_header + sy_ws_mask_copy parse back to the payloads. */
    fill_big();
    static const size_t lens[] = {0, 1, 125, 126, 300, 65535, 65536};
    st.n = 0;
    for (size_t i = 0; i < SY_ARRAY_LEN(lens); i++) {
        size_t hl = sy_ws_frame_header(st.b + st.n, SY_WS_OP_BINARY, 1, 0, lens[i], KEY);
        st.n += hl;
        size_t pl = SY_MIN(lens[i], sizeof(big));
        sy_ws_mask_copy(st.b + st.n, big, pl, KEY, 0);
        st.n += pl;
        char want[128];
        if (pl == 0) {
            snprintf(want, sizeof(want), "BINARY empty=1 ''\n");
        } else {
            snprintf(want, sizeof(want), "BINARY%s\n", repr(big, pl));
        }
        char name[64];
        snprintf(name, sizeof(name), "encoded %zu", lens[i]);
        CHECK(check_stream(name, SERVER, st.b, st.n, want));
        st.n = 0;
    }
}

int main(void)
{
    RUN(rfc_unmasked_text);
    RUN(rfc_masked_text);
    RUN(rfc_fragmented_text);
    RUN(rfc_ping_pong);
    RUN(rfc_256_byte_binary);
    RUN(rfc_64k_binary);
    RUN(one_event_per_call_and_pieces);
    RUN(control_buffer_only_while_split);
    RUN(ascii_flag_seen_while_unmasking);
    RUN(whole_frames_one_call_each);
    RUN(zero_length_frames);
    RUN(interleaved_control_frames);
    RUN(client_side_stream);
    RUN(rsv1_with_extension);
    RUN(close_frames);
    RUN(close_code_predicate);
    RUN(every_violation);
    RUN(masked_close_reason_utf8);
    RUN(error_is_final);
    RUN(errors_detected_from_first_two_bytes);
    RUN(large_64bit_length_streams);
    RUN(header_encoder_round_trip);
    RUN(encoder_output_parses_as_stream);
    return sy_t_summary();
}
