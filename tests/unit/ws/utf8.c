/* Tests for src/ws/utf8.c: Markus Kuhn's UTF-8 decoder stress test (cases re-typed as byte
 * arrays), each checked for the exact first failing byte, fed whole, split at every offset
 * and at every pair of offsets; exhaustive 1-, 2- and 3-byte inputs and random inputs
 * against a reference written from the definition rather than as a state machine. */
#include "harness.h"

#include "ws/utf8.h"

#define VALID (-1)      /* complete, valid UTF-8 */
#define INCOMPLETE (-2) /* valid so far, but ends inside a sequence */

/* Reference: a byte fails when no valid code point can be encoded starting with the bytes
 * of its sequence seen so far. With a prefix fixed, the code points still reachable form the
 * interval [prefix bits followed by 0s, prefix bits followed by 1s]; the byte fails when that
 * interval, clipped to the range this sequence length may encode, is empty or lies entirely
 * within the surrogates. Returns the failing index, VALID or INCOMPLETE. */
static int reachable(uint32_t lo, uint32_t hi, int seqlen)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    if (lo < min_cp[seqlen])
        lo = min_cp[seqlen];
    if (hi > max_cp[seqlen])
        hi = max_cp[seqlen];
    if (lo > hi)
        return 0;
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static long ref_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int seqlen;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            seqlen = 2;
        } else if ((c & 0xF0) == 0xE0) {
            seqlen = 3;
        } else if ((c & 0xF8) == 0xF0) {
            seqlen = 4;
        } else {
            return (long)i; /* continuation byte or 5/6-byte lead or FE/FF */
        }
        uint32_t v = c & (0x7Fu >> seqlen);
        for (int k = 0; k < seqlen; k++) {
            if (k > 0) {
                if (i + (size_t)k >= n)
                    return INCOMPLETE;
                if ((s[i + k] & 0xC0) != 0x80)
                    return (long)(i + (size_t)k);
                v = v << 6 | (s[i + k] & 0x3Fu);
            }
            int rest = 6 * (seqlen - 1 - k);
            uint32_t lo = v << rest, hi = lo | ((1u << rest) - 1);
            if (!reachable(lo, hi, seqlen))
                return (long)(i + (size_t)k);
        }
        i += (size_t)seqlen;
    }
    return VALID;
}

/* Feeds s in the given pieces (cut points ascending). Returns what the stream validated as:
 * the absolute failing index, VALID or INCOMPLETE; -3 if a piece reported a bad index. */
static long feed_pieces(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts, int guard)
{
    sy_utf8 u;
    sy_utf8_init(&u);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        size_t plen = end - start;
        const uint8_t *piece = s + start;
        uint8_t *g = NULL;
        if (guard) {
            g = sy_t_guard_copy(piece, plen);
            piece = g;
        }
        ssize_t r = sy_utf8_feed(&u, piece, plen);
        if (g)
            sy_t_guard_free(g, plen);
        if (r >= 0) {
            if ((size_t)r >= plen)
                return -3;
            return (long)(start + (size_t)r);
        }
        if (r != -1)
            return -3;
        start = end;
    }
    return sy_utf8_complete(&u) ? VALID : INCOMPLETE;
}

/* Checks one input every way: whole (plain and at a guard page), sy_utf8_valid, each 2-way
 * split, each 3-way split (inputs up to 64 bytes) and byte by byte. Returns 0 or the first
 * mismatching split position + 1 (for the failure message). */
static long check_all_ways(const uint8_t *s, size_t n, long want)
{
    size_t cuts[2];
    if (feed_pieces(s, n, NULL, 0, 0) != want)
        return -100;
    if (feed_pieces(s, n, NULL, 0, 1) != want)
        return -101;
    if (sy_utf8_valid(s, n) != (want == VALID))
        return -102;
    for (size_t a = 0; a <= n; a++) {
        cuts[0] = a;
        if (feed_pieces(s, n, cuts, 1, 0) != want)
            return (long)a + 1;
        if (n <= 64) {
            for (size_t b = a; b <= n; b++) {
                cuts[1] = b;
                if (feed_pieces(s, n, cuts, 2, 0) != want)
                    return (long)(a * 1000 + b) + 1;
            }
        }
    }
    /* Byte by byte, each byte at its own guard page. */
    sy_utf8 u;
    sy_utf8_init(&u);
    long got = VALID;
    for (size_t i = 0; i < n; i++) {
        uint8_t *g = sy_t_guard_copy(s + i, 1);
        ssize_t r = sy_utf8_feed(&u, g, 1);
        sy_t_guard_free(g, 1);
        if (r == 0) {
            got = (long)i;
            break;
        }
        if (r != -1)
            return -103;
    }
    if (got == VALID && !sy_utf8_complete(&u))
        got = INCOMPLETE;
    if (got != want)
        return -104;
    return 0;
}

struct ucase {
    const char *name;
    const char *bytes;
    size_t len;
    long want;
};

#define U(name, lit, want)                                                                         \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, want                                                           \
    }

/* Markus Kuhn, "UTF-8 decoder capability and stress test", sections 1-5. */
static const struct ucase kuhn[] = {
    /* 1: some correct UTF-8 text */
    U("1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID),
    /* 2.1: first possible sequence of a certain length */
    U("2.1.1 U+0000", "\x00", VALID),
    U("2.1.2 U+0080", "\xc2\x80", VALID),
    U("2.1.3 U+0800", "\xe0\xa0\x80", VALID),
    U("2.1.4 U+10000", "\xf0\x90\x80\x80", VALID),
    U("2.1.5 5 bytes U+200000", "\xf8\x88\x80\x80\x80", 0),
    U("2.1.6 6 bytes U+4000000", "\xfc\x84\x80\x80\x80\x80", 0),
    /* 2.2: last possible sequence of a certain length */
    U("2.2.1 U+007F", "\x7f", VALID),
    U("2.2.2 U+07FF", "\xdf\xbf", VALID),
    U("2.2.3 U+FFFF", "\xef\xbf\xbf", VALID),
    U("2.2.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", 0),
    U("2.2.5 U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", 0),
    U("2.2.6 U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* 2.3: other boundary conditions */
    U("2.3.1 U+D7FF", "\xed\x9f\xbf", VALID),
    U("2.3.2 U+E000", "\xee\x80\x80", VALID),
    U("2.3.3 U+FFFD", "\xef\xbf\xbd", VALID),
    U("2.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf", VALID),
    U("2.3.5 U+110000", "\xf4\x90\x80\x80", 1),
    /* 3.1: unexpected continuation bytes */
    U("3.1.1 first continuation byte 0x80", "\x80", 0),
    U("3.1.2 last continuation byte 0xbf", "\xbf", 0),
    U("3.1.3 2 continuation bytes", "\x80\xbf", 0),
    U("3.1.4 3 continuation bytes", "\x80\xbf\x80", 0),
    U("3.1.5 4 continuation bytes", "\x80\xbf\x80\xbf", 0),
    U("3.1.6 5 continuation bytes", "\x80\xbf\x80\xbf\x80", 0),
    U("3.1.7 6 continuation bytes", "\x80\xbf\x80\xbf\x80\xbf", 0),
    U("3.1.8 7 continuation bytes", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    U("3.1.x after text", "abc\xce\xba\x80", 5),
    U("3.1.x after a complete 2-byte char", "\xc2\x80\x80", 2),
    U("3.1.x after a complete 4-byte char", "\xf0\x90\x80\x80\xbf", 4),
    /* 3.2: lonely start characters, each followed by a space */
    U("3.2.1 lonely c0", "\xc0\x20", 0),
    U("3.2.1 lonely c2", "\xc2\x20", 1),
    U("3.2.1 lonely df", "\xdf\x20", 1),
    U("3.2.2 lonely e0", "\xe0\x20", 1),
    U("3.2.2 lonely ef", "\xef\x20", 1),
    U("3.2.3 lonely f0", "\xf0\x20", 1),
    U("3.2.3 lonely f7", "\xf7\x20", 0),
    U("3.2.4 lonely f8", "\xf8\x20", 0),
    U("3.2.4 lonely fb", "\xfb\x20", 0),
    U("3.2.5 lonely fc", "\xfc\x20", 0),
    U("3.2.5 lonely fd", "\xfd\x20", 0),
    U("3.2.x lonely start after text", "Hello \xe4 world", 7),
    /* 3.3: sequences with the last continuation byte missing */
    U("3.3.1 2 bytes U+0000 missing last", "\xc0", 0),
    U("3.3.2 3 bytes U+0000 missing last", "\xe0\x80", 1),
    U("3.3.3 4 bytes U+0000 missing last", "\xf0\x80\x80", 1),
    U("3.3.4 5 bytes U+0000 missing last", "\xf8\x80\x80\x80", 0),
    U("3.3.5 6 bytes U+0000 missing last", "\xfc\x80\x80\x80\x80", 0),
    U("3.3.6 2 bytes U+07FF missing last", "\xdf", INCOMPLETE),
    U("3.3.7 3 bytes U+FFFF missing last", "\xef\xbf", INCOMPLETE),
    U("3.3.8 4 bytes U+1FFFFF missing last", "\xf7\xbf\xbf", 0),
    U("3.3.9 5 bytes U+3FFFFFF missing last", "\xfb\xbf\xbf\xbf", 0),
    U("3.3.10 6 bytes U+7FFFFFFF missing last", "\xfd\xbf\xbf\xbf\xbf", 0),
    U("3.3.x 4 bytes U+10FFFF missing last", "\xf4\x8f\xbf", INCOMPLETE),
    U("3.3.x 4 bytes missing two", "\xf1\x80", INCOMPLETE),
    /* 3.4: concatenation of the incomplete sequences of 3.3 */
    U("3.4 all of 3.3 concatenated",
      "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
      "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
      0),
    U("3.4.x incomplete 2-byte then 3-byte", "\xdf\xef\xbf", 1),
    U("3.4.x incomplete 3-byte then 4-byte", "a\xef\xbf\xf4\x8f\xbf", 3),
    /* 3.5: impossible bytes */
    U("3.5.1 fe", "\xfe", 0),
    U("3.5.2 ff", "\xff", 0),
    U("3.5.3 fe fe ff ff", "\xfe\xfe\xff\xff", 0),
    U("3.5.x ff after text", "0123456789\xff", 10),
    /* 4.1: overlong ASCII slash */
    U("4.1.1 c0 af", "\xc0\xaf", 0),
    U("4.1.2 e0 80 af", "\xe0\x80\xaf", 1),
    U("4.1.3 f0 80 80 af", "\xf0\x80\x80\xaf", 1),
    U("4.1.4 f8 80 80 80 af", "\xf8\x80\x80\x80\xaf", 0),
    U("4.1.5 fc 80 80 80 80 af", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 4.2: maximum overlong sequences */
    U("4.2.1 U+007F as c1 bf", "\xc1\xbf", 0),
    U("4.2.2 U+07FF as e0 9f bf", "\xe0\x9f\xbf", 1),
    U("4.2.3 U+FFFF as f0 8f bf bf", "\xf0\x8f\xbf\xbf", 1),
    U("4.2.4 U+1FFFFF as 5 bytes", "\xf8\x87\xbf\xbf\xbf", 0),
    U("4.2.5 U+3FFFFFF as 6 bytes", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    /* 4.3: overlong NUL */
    U("4.3.1 c0 80", "\xc0\x80", 0),
    U("4.3.2 e0 80 80", "\xe0\x80\x80", 1),
    U("4.3.3 f0 80 80 80", "\xf0\x80\x80\x80", 1),
    U("4.3.4 f8 80 80 80 80", "\xf8\x80\x80\x80\x80", 0),
    U("4.3.5 fc 80 80 80 80 80", "\xfc\x80\x80\x80\x80\x80", 0),
    /* 5.1: single UTF-16 surrogates */
    U("5.1.1 U+D800", "\xed\xa0\x80", 1),
    U("5.1.2 U+DB7F", "\xed\xad\xbf", 1),
    U("5.1.3 U+DB80", "\xed\xae\x80", 1),
    U("5.1.4 U+DBFF", "\xed\xaf\xbf", 1),
    U("5.1.5 U+DC00", "\xed\xb0\x80", 1),
    U("5.1.6 U+DF80", "\xed\xbe\x80", 1),
    U("5.1.7 U+DFFF", "\xed\xbf\xbf", 1),
    U("5.1.x U+D800 after text", "abcdefgh\xed\xa0\x80", 9),
    /* 5.2: paired UTF-16 surrogates */
    U("5.2.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    U("5.2.2 U+D800 U+DFFF", "\xed\xa0\x80\xed\xbf\xbf", 1),
    U("5.2.3 U+DB7F U+DC00", "\xed\xad\xbf\xed\xb0\x80", 1),
    U("5.2.4 U+DB7F U+DFFF", "\xed\xad\xbf\xed\xbf\xbf", 1),
    U("5.2.5 U+DB80 U+DC00", "\xed\xae\x80\xed\xb0\x80", 1),
    U("5.2.6 U+DB80 U+DFFF", "\xed\xae\x80\xed\xbf\xbf", 1),
    U("5.2.7 U+DBFF U+DC00", "\xed\xaf\xbf\xed\xb0\x80", 1),
    U("5.2.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    /* 5.3: noncharacters are valid UTF-8 */
    U("5.3.1 U+FFFE", "\xef\xbf\xbe", VALID),
    U("5.3.2 U+FFFF", "\xef\xbf\xbf", VALID),
    U("5.3.3 U+FDD0..U+FDD2", "\xef\xb7\x90\xef\xb7\x91\xef\xb7\x92", VALID),
    U("5.3.3 U+FDEF", "\xef\xb7\xaf", VALID),
    U("5.3.4 U+1FFFE U+1FFFF", "\xf0\x9f\xbf\xbe\xf0\x9f\xbf\xbf", VALID),
    U("5.3.4 U+10FFFE U+10FFFF", "\xf4\x8f\xbf\xbe\xf4\x8f\xbf\xbf", VALID),
    /* Brief-specified fail-fast points */
    U("ed a0 fails at a0", "\xed\xa0", 1),
    U("f4 90 fails at 90", "\xf4\x90", 1),
    U("e0 80 fails at 80", "\xe0\x80", 1),
    U("c1 fails at once", "\xc1", 0),
    U("f5 fails at once", "\xf5", 0),
    U("ed 9f is a valid prefix", "\xed\x9f", INCOMPLETE),
    U("f0 90 is a valid prefix", "\xf0\x90", INCOMPLETE),
    U("empty", "", VALID),
};

TEST(reference_agrees_with_table)
{
    /* The reference must itself reproduce every hand-written expectation. */
    for (size_t i = 0; i < SY_ARRAY_LEN(kuhn); i++) {
        const struct ucase *c = &kuhn[i];
        long r = ref_check((const uint8_t *)c->bytes, c->len);
        if (r != c->want)
            printf("  case %s: reference says %ld, table %ld\n", c->name, r, c->want);
        CHECK_EQ(r, c->want);
    }
}

TEST(kuhn_stress_cases_every_split)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(kuhn); i++) {
        const struct ucase *c = &kuhn[i];
        long r = check_all_ways((const uint8_t *)c->bytes, c->len, c->want);
        if (r != 0)
            printf("  case %s: mismatch (%ld)\n", c->name, r);
        CHECK_EQ(r, 0);
    }
}

TEST(kuhn_lonely_start_bytes_generated)
{
    /* 3.2 in full: every start byte c0..ff followed by a space, alone and concatenated. */
    uint8_t all[128];
    size_t n = 0;
    for (unsigned b = 0xc0; b <= 0xff; b++) {
        uint8_t s[2] = {(uint8_t)b, 0x20};
        long want = (b >= 0xc2 && b <= 0xf4) ? 1 : 0;
        CHECK_EQ(ref_check(s, 2), want);
        CHECK_EQ(check_all_ways(s, 2, want), 0);
        if (b >= 0xc2 && b <= 0xdf) {
            all[n++] = (uint8_t)b;
            all[n++] = 0x20;
        }
    }
    CHECK_EQ(check_all_ways(all, n, 1), 0);
    /* 3.1.9: all 64 continuation bytes in a row */
    uint8_t cont[64];
    for (unsigned i = 0; i < 64; i++)
        cont[i] = (uint8_t)(0x80 + i);
    CHECK_EQ(check_all_ways(cont, 64, 0), 0);
}

TEST(exhaustive_one_and_two_bytes)
{
    for (unsigned a = 0; a < 256; a++) {
        uint8_t s1[1] = {(uint8_t)a};
        CHECK_EQ(feed_pieces(s1, 1, NULL, 0, 0), ref_check(s1, 1));
        for (unsigned b = 0; b < 256; b++) {
            uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
            long want = ref_check(s, 2);
            size_t cut = 1;
            CHECK_EQ(feed_pieces(s, 2, NULL, 0, 0), want);
            CHECK_EQ(feed_pieces(s, 2, &cut, 1, 0), want);
        }
    }
}

TEST(exhaustive_three_bytes_multibyte_leads)
{
    for (unsigned a = 0xc0; a < 256; a++) {
        for (unsigned b = 0x70; b < 0xd0; b++) {
            for (unsigned c = 0; c < 256; c++) {
                uint8_t s[3] = {(uint8_t)a, (uint8_t)b, (uint8_t)c};
                long want = ref_check(s, 3);
                size_t cut = 2;
                if (feed_pieces(s, 3, NULL, 0, 0) != want || feed_pieces(s, 3, &cut, 1, 0) != want)
                    printf("  %02x %02x %02x: want %ld\n", a, b, c, want);
                CHECK_EQ(feed_pieces(s, 3, NULL, 0, 0), want);
                CHECK_EQ(feed_pieces(s, 3, &cut, 1, 0), want);
            }
        }
    }
}

TEST(every_valid_code_point)
{
    /* Encode each scalar value and validate it, alone and between ASCII. */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        uint8_t s[8] = {'a'};
        size_t n = 1;
        if (cp < 0x80) {
            s[n++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            s[n++] = (uint8_t)(0xC0 | cp >> 6);
            s[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s[n++] = (uint8_t)(0xE0 | cp >> 12);
            s[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            s[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            s[n++] = (uint8_t)(0xF0 | cp >> 18);
            s[n++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            s[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            s[n++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
        s[n++] = 'z';
        if (!sy_utf8_valid(s + 1, n - 2) || !sy_utf8_valid(s, n))
            printf("  U+%04X rejected\n", (unsigned)cp);
        CHECK(sy_utf8_valid(s + 1, n - 2));
        CHECK(sy_utf8_valid(s, n));
    }
}

TEST(ascii_fast_path_bad_byte_at_every_position)
{
    /* Long ASCII runs with one bad byte placed at every index and every buffer alignment:
     * the 8/16-byte fast path must report the exact index. */
    uint8_t buf[200];
    static const uint8_t bad[] = {0x80, 0xbf, 0xc0, 0xf8, 0xff};
    for (size_t align = 0; align < 8; align++) {
        for (size_t n = 1; n <= 150; n += (n < 40 ? 1 : 7)) {
            for (size_t pos = 0; pos < n; pos++) {
                for (size_t k = 0; k < sizeof(bad); k++) {
                    uint8_t *s = buf + align;
                    memset(s, 'x', n);
                    s[pos] = bad[k];
                    sy_utf8 u;
                    sy_utf8_init(&u);
                    CHECK_EQ(sy_utf8_feed(&u, s, n), pos);
                }
                /* A valid 2-byte character there instead: all valid. */
                if (pos + 1 < n) {
                    uint8_t *s = buf + align;
                    memset(s, 'x', n);
                    s[pos] = 0xc3;
                    s[pos + 1] = 0xa9;
                    CHECK(sy_utf8_valid(s, n));
                }
                /* A lead byte as the last byte: incomplete. */
                uint8_t *s = buf + align;
                memset(s, 'x', n);
                s[n - 1] = 0xe2;
                sy_utf8 u;
                sy_utf8_init(&u);
                CHECK_EQ(sy_utf8_feed(&u, s, n), -1);
                CHECK(!sy_utf8_complete(&u));
            }
        }
    }
}

TEST(no_read_past_end)
{
    /* ASCII and mixed inputs ending on a guard page at every length. */
    uint8_t s[80];
    for (size_t i = 0; i < sizeof(s); i++)
        s[i] = (uint8_t)('A' + i % 26);
    for (size_t n = 0; n <= sizeof(s); n++) {
        uint8_t *g = sy_t_guard_copy(s, n);
        CHECK(sy_utf8_valid(g, n));
        sy_t_guard_free(g, n);
    }
    static const uint8_t mixed[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 abcdefghijklmnop "
                                   "\xf0\x9f\x98\x80 qrstuvwxyz \xe2\x82\xac";
    CHECK_EQ(check_all_ways(mixed, sizeof(mixed) - 1, VALID), 0);
}

TEST(failure_is_sticky)
{
    sy_utf8 u;
    sy_utf8_init(&u);
    CHECK_EQ(sy_utf8_feed(&u, (const uint8_t *)"ab\xff", 3), 2);
    CHECK(!sy_utf8_complete(&u));
    CHECK(sy_utf8_feed(&u, (const uint8_t *)"cd", 2) >= 0);
    sy_utf8_init(&u);
    CHECK_EQ(sy_utf8_feed(&u, (const uint8_t *)"cd", 2), -1);
    CHECK(sy_utf8_complete(&u));
}

static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

TEST(random_inputs_against_reference)
{
    /* Bytes drawn mostly from the interesting edges so inputs are often almost valid. */
    static const uint8_t pool[] = {'a',  ' ',  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
                                   0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xfe, 0xff, 0xb5, 0x85, 0x95};
    uint8_t s[64];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = rnd() % sizeof(s);
        for (size_t i = 0; i < n; i++)
            s[i] = (rnd() & 3) == 0 ? (uint8_t)rnd() : pool[rnd() % sizeof(pool)];
        long want = ref_check(s, n);
        size_t cuts[2] = {rnd() % (n + 1), 0};
        cuts[1] = cuts[0] + rnd() % (n - cuts[0] + 1);
        CHECK_EQ(feed_pieces(s, n, NULL, 0, 0), want);
        CHECK_EQ(feed_pieces(s, n, cuts, 2, 0), want);
    }
}

int main(void)
{
    RUN(reference_agrees_with_table);
    RUN(kuhn_stress_cases_every_split);
    RUN(kuhn_lonely_start_bytes_generated);
    RUN(exhaustive_one_and_two_bytes);
    RUN(exhaustive_three_bytes_multibyte_leads);
    RUN(every_valid_code_point);
    RUN(ascii_fast_path_bad_byte_at_every_position);
    RUN(no_read_past_end);
    RUN(failure_is_sticky);
    RUN(random_inputs_against_reference);
    return sy_t_summary();
}
