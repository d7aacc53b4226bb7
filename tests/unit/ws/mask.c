/* Tests for src/ws/mask.c: the word-at-a-time XOR against a byte-at-a-time reference, for
 * every length 0..600, key offset 0..3 and pointer misalignment 0..7: the word loop, the
 * SSE2 vector loop (64 bytes up) and, on CPUs with AVX2, the AVX2 loop (256 bytes up) with
 * every head and tail around them. */
#include "harness.h"

#include "ws/mask.h"

static uint32_t rng_state = 0x9e3779b9u;
static uint8_t rnd8(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 24);
}

static void naive_mask(uint8_t *d, size_t len, const uint8_t key[4], unsigned off)
{
    for (size_t i = 0; i < len; i++)
        d[i] ^= key[(off + i) % 4];
}

#define MAXLEN 600
#define PAD 16

TEST(rfc_example)
{
    /* RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d. */
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t buf[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK_EQ(sy_ws_mask(buf, 5, key, 0), 1);
    CHECK_MEM(buf, "Hello", 5);
    uint8_t out[5];
    CHECK_EQ(sy_ws_mask_copy(out, (const uint8_t *)"Hello", 5, key, 0), 1);
    CHECK_MEM(out, "\x7f\x9f\x4d\x51\x58", 5);
}

TEST(in_place_all_lengths_offsets_alignments)
{
    uint8_t key[4];
    uint8_t src[MAXLEN + 2 * PAD], got[MAXLEN + 2 * PAD], want[MAXLEN + 2 * PAD];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++)
            key[i] = rnd8();
        for (size_t i = 0; i < sizeof(src); i++)
            src[i] = rnd8();
        for (size_t len = 0; len <= MAXLEN; len++) {
            for (unsigned off = 0; off < 4; off++) {
                for (size_t al = 0; al < 8; al++) {
                    memcpy(got, src, sizeof(src));
                    memcpy(want, src, sizeof(src));
                    naive_mask(want + al, len, key, off);
                    unsigned r = sy_ws_mask(got + al, len, key, off);
                    CHECK_EQ(r, (off + len) & 3);
                    /* Also checks that nothing outside [al, al + len) was touched. */
                    CHECK_MEM(got, want, sizeof(got));
                }
            }
        }
    }
}

TEST(ascii_seen_while_unmasking)
{
    /* sy_ws_mask_hi unmasks like sy_ws_mask and reports whether any unmasked byte had its
     * high bit set: ASCII text with one non-ASCII byte at each position, every length, key
     * offset and alignment. */
    uint8_t key[4] = {0xa5, 0x3c, 0x81, 0x7e};
    uint8_t plain[MAXLEN + 2 * PAD], got[MAXLEN + 2 * PAD];
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (unsigned off = 0; off < 4; off++) {
            for (size_t al = 0; al < 8; al++) {
                for (size_t bad = 0; bad <= len; bad += (len < 70 ? 1 : 13)) {
                    /* bad == len: all ASCII */
                    for (size_t i = 0; i < len; i++)
                        plain[i] = (uint8_t)('a' + i % 26);
                    if (bad < len)
                        plain[bad] = 0xc3;
                    memset(got, 0xee, sizeof(got));
                    memcpy(got + al, plain, len);
                    naive_mask(got + al, len, key, off);
                    uint64_t hi = 0;
                    unsigned r = sy_ws_mask_hi(got + al, len, key, off, &hi);
                    CHECK_EQ(r, (off + len) & 3);
                    CHECK_MEM(got + al, plain, len);
                    CHECK_EQ(got[al + len], 0xee);
                    CHECK_EQ((hi & UINT64_C(0x8080808080808080)) != 0, bad < len);
                }
            }
        }
    }
}

TEST(copy_all_lengths_offsets_alignments)
{
    uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t src[MAXLEN + 2 * PAD], dst[MAXLEN + 2 * PAD], want[MAXLEN + 2 * PAD];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = rnd8();
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (unsigned off = 0; off < 4; off++) {
            for (size_t sa = 0; sa < 8; sa++) {
                for (size_t da = 0; da < 8; da += (sa == 0 ? 1 : 3)) {
                    memset(dst, 0xA5, sizeof(dst));
                    memset(want, 0xA5, sizeof(want));
                    memcpy(want + da, src + sa, len);
                    naive_mask(want + da, len, key, off);
                    unsigned r = sy_ws_mask_copy(dst + da, src + sa, len, key, off);
                    CHECK_EQ(r, (off + len) & 3);
                    CHECK_MEM(dst, want, sizeof(dst));
                }
            }
        }
    }
}

TEST(copy_onto_itself)
{
    uint8_t key[4] = {1, 2, 3, 4};
    uint8_t a[64], b[64];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)i;
    naive_mask(b + 3, 50, key, 2);
    CHECK_EQ(sy_ws_mask_copy(a + 3, a + 3, 50, key, 2), (2 + 50) & 3);
    CHECK_MEM(a, b, sizeof(a));
}

TEST(offset_continues_across_pieces)
{
    /* Unmasking a payload in arbitrary pieces, carrying the returned offset, gives the same
     * bytes as unmasking it whole. */
    uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t whole[257], pieces[257];
    for (size_t i = 0; i < sizeof(whole); i++)
        whole[i] = pieces[i] = rnd8();
    sy_ws_mask(whole, sizeof(whole), key, 0);
    for (size_t step = 1; step <= 19; step++) {
        uint8_t tmp[257];
        memcpy(tmp, pieces, sizeof(tmp));
        unsigned off = 0;
        for (size_t i = 0; i < sizeof(tmp); i += step)
            off = sy_ws_mask(tmp + i, SY_MIN(step, sizeof(tmp) - i), key, off);
        CHECK_EQ(off, sizeof(tmp) & 3);
        CHECK_MEM(tmp, whole, sizeof(tmp));
    }
}

TEST(no_access_past_end)
{
    /* Data ending on a guard page: a word access past the end would fault. */
    uint8_t key[4] = {9, 8, 7, 6};
    uint8_t ref[MAXLEN];
    for (size_t i = 0; i < sizeof(ref); i++)
        ref[i] = rnd8();
    for (size_t len = 0; len <= MAXLEN; len += (len < 64 ? 1 : 37)) {
        uint8_t *g = sy_t_guard_copy(ref, len);
        uint8_t want[MAXLEN];
        memcpy(want, ref, len);
        naive_mask(want, len, key, 1);
        sy_ws_mask(g, len, key, 1);
        CHECK_MEM(g, want, len);
        uint8_t *d = sy_t_guard_copy(ref, len);
        sy_ws_mask_copy(d, g, len, key, 1); /* unmasking again restores the input */
        CHECK_MEM(d, ref, len);
        sy_t_guard_free(g, len);
        sy_t_guard_free(d, len);
    }
}

TEST(large_buffer)
{
    size_t len = 1 << 16;
    uint8_t *a = malloc(len + 1), *b = malloc(len + 1);
    CHECK(a && b);
    for (size_t i = 0; i <= len; i++)
        a[i] = b[i] = rnd8();
    uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    naive_mask(b + 1, len, key, 3);
    CHECK_EQ(sy_ws_mask(a + 1, len, key, 3), (3 + len) & 3);
    int same = memcmp(a, b, len + 1) == 0;
    free(a);
    free(b);
    CHECK(same);
}

int main(void)
{
    RUN(rfc_example);
    RUN(in_place_all_lengths_offsets_alignments);
    RUN(ascii_seen_while_unmasking);
    RUN(copy_all_lengths_offsets_alignments);
    RUN(copy_onto_itself);
    RUN(offset_continues_across_pieces);
    RUN(no_access_past_end);
    RUN(large_buffer);
    return sy_t_summary();
}
