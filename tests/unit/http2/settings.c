/* Unit tests for src/http2/settings.c: HTTP2-Settings decoding for the h2c upgrade. Inputs end
 * on a guard page, so a read past the value faults. */
#include "http2/settings.h"
#include "harness.h"

static ssize_t dec(const char *v, uint8_t *out, size_t cap)
{
    size_t n = strlen(v);
    char *g = sy_t_guard_copy(v, n);
    ssize_t r = sy_h2_settings_decode(g, n, out, cap);
    sy_t_guard_free(g, n);
    return r;
}

TEST(empty_is_an_empty_payload)
{
    uint8_t out[64];
    CHECK_EQ(dec("", out, sizeof(out)), 0);
}

TEST(curl_value_decodes)
{
    /* MAX_CONCURRENT_STREAMS=100, INITIAL_WINDOW_SIZE=33554432, ENABLE_PUSH=0 */
    uint8_t out[64];
    CHECK_EQ(dec("AAMAAABkAAQCAAAAAAIAAAAA", out, sizeof(out)), 18);
    CHECK_MEM(out, "\x00\x03\x00\x00\x00\x64\x00\x04\x02\x00\x00\x00\x00\x02\x00\x00\x00\x00", 18);
}

TEST(base64url_alphabet)
{
    /* id 0x00fb (unknown: allowed), value 0xefbfffff: the bytes need '-' and '_' */
    uint8_t out[16];
    CHECK_EQ(dec("APvvv___", out, sizeof(out)), 6);
    CHECK_MEM(out, "\x00\xfb\xef\xbf\xff\xff", 6);
}

TEST(padding_and_other_characters_are_refused)
{
    uint8_t out[64];
    CHECK_EQ(dec("AAMAAABk==", out, sizeof(out)), -1);
    CHECK_EQ(dec("AAMAAABkAAQAAP__=", out, sizeof(out)), -1);
    CHECK_EQ(dec("AAMAAAB+", out, sizeof(out)), -1); /* '+' is base64, not base64url */
    CHECK_EQ(dec("AAMAAAB/", out, sizeof(out)), -1);
    CHECK_EQ(dec("AAMA AABk", out, sizeof(out)), -1);
    CHECK_EQ(dec("AAMAAABkA", out, sizeof(out)), -1); /* length 1 mod 4 */
}

TEST(whole_entries_only)
{
    uint8_t out[64];
    CHECK_EQ(dec("AAMA", out, sizeof(out)), -1);       /* 3 bytes */
    CHECK_EQ(dec("AAMAAABkAA", out, sizeof(out)), -1); /* 7 bytes */
}

TEST(enable_push_is_a_flag)
{
    uint8_t out[64];
    CHECK_EQ(dec("AAIAAAAB", out, sizeof(out)), 6);  /* ENABLE_PUSH=1 */
    CHECK_EQ(dec("AAIAAAAC", out, sizeof(out)), -1); /* ENABLE_PUSH=2 */
}

TEST(value_ranges)
{
    uint8_t out[64];
    CHECK_EQ(dec("AAR_____", out, sizeof(out)), 6);  /* INITIAL_WINDOW_SIZE 2^31-1 */
    CHECK_EQ(dec("AASAAAAA", out, sizeof(out)), -1); /* INITIAL_WINDOW_SIZE 2^31 */
    CHECK_EQ(dec("AAQAAP__", out, sizeof(out)), 6);  /* 65535 */
    CHECK_EQ(dec("AAV_____", out, sizeof(out)), -1); /* MAX_FRAME_SIZE too big */
    CHECK_EQ(dec("AAUAAD__", out, sizeof(out)), -1); /* MAX_FRAME_SIZE 16383 */
    CHECK_EQ(dec("AAUAAEAA", out, sizeof(out)), 6);  /* MAX_FRAME_SIZE 16384 */
    CHECK_EQ(dec("AAgAAAAB", out, sizeof(out)), 6);  /* ENABLE_CONNECT_PROTOCOL 1 */
    CHECK_EQ(dec("AAgAAAAC", out, sizeof(out)), -1); /* ENABLE_CONNECT_PROTOCOL 2 */
}

TEST(does_not_overflow_the_output)
{
    uint8_t out[6];
    CHECK_EQ(dec("AAMAAABkAAQAAP__", out, sizeof(out)), -1);
    CHECK_EQ(dec("AAMAAABk", out, sizeof(out)), 6);
}

int main(void)
{
    RUN(empty_is_an_empty_payload);
    RUN(curl_value_decodes);
    RUN(base64url_alphabet);
    RUN(padding_and_other_characters_are_refused);
    RUN(whole_entries_only);
    RUN(enable_push_is_a_flag);
    RUN(value_ranges);
    RUN(does_not_overflow_the_output);
    return sy_t_summary();
}
