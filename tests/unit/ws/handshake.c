/* Tests for src/ws/handshake.c: the RFC 6455 accept-key example, key validation (every
 * length, character and spare-bit case, checked against OpenSSL's decoder), random keys and
 * subprotocol selection. */
#include "harness.h"

#include <openssl/evp.h>

#include "ws/handshake.h"

static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";

TEST(accept_key_rfc_example)
{
    char out[29];
    char *g = sy_t_guard_copy(rfc_key, 24);
    sy_ws_accept_key(g, 24, out);
    sy_t_guard_free(g, 24);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

/* Reference: SHA-1 through a different OpenSSL path, base64 by hand. */
static void ref_accept(const char *key, size_t len, char out[29])
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char md[20];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, key, len);
    EVP_DigestUpdate(ctx, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    size_t o = 0;
    for (size_t i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
        for (int k = 3; k >= 0; k--)
            out[o++] = alpha[(v >> (6 * k)) & 63];
    }
    uint32_t v = (uint32_t)md[18] << 16 | (uint32_t)md[19] << 8;
    out[o++] = alpha[(v >> 18) & 63];
    out[o++] = alpha[(v >> 12) & 63];
    out[o++] = alpha[(v >> 6) & 63];
    out[o++] = '=';
    out[o] = '\0';
}

TEST(accept_key_any_length)
{
    char key[300], out[29], want[29];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (char)('A' + i % 26);
    static const size_t lens[] = {0, 1, 24, 91, 92, 93, 200, 300};
    for (size_t i = 0; i < SY_ARRAY_LEN(lens); i++) {
        char *g = sy_t_guard_copy(key, lens[i]);
        sy_ws_accept_key(g, lens[i], out);
        sy_t_guard_free(g, lens[i]);
        ref_accept(key, lens[i], want);
        CHECK_EQ(strlen(out), 28);
        CHECK(strcmp(out, want) == 0);
    }
}

TEST(key_valid_basic)
{
    CHECK(sy_ws_key_valid(rfc_key, 24));
    CHECK(sy_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    CHECK(sy_ws_key_valid("////////////////////+w==", 24));
    CHECK(!sy_ws_key_valid(rfc_key, 23));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ===", 25));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==A", 25));
    CHECK(!sy_ws_key_valid("AdGhlIHNhbXBsZSBub25jZQ==", 25));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24)); /* spare bits set */
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ", 22));   /* no padding */
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA", 24)); /* no padding, 24 chars */
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=A", 24));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZ===", 24)); /* 15 bytes + junk */
    CHECK(sy_ws_key_valid("dGhlIHNhbXBsZSBub25j+Q==", 24));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25j-Q==", 24)); /* base64url alphabet */
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25j_Q==", 24));
    CHECK(!sy_ws_key_valid(" GhlIHNhbXBsZSBub25jZQ==", 24));
    CHECK(!sy_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ= ", 24));
    CHECK(!sy_ws_key_valid("", 0));
}

/* Every printable character at every position, checked against OpenSSL's decoder plus the
 * canonical re-encoding (which is what "16 bytes, zero spare bits" means). */
static int ref_valid(const char *k)
{
    unsigned char raw[24];
    char again[29];
    for (int i = 0; i < 24; i++) {
        char c = k[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= 22);
        if (!ok)
            return 0;
    }
    if (k[22] != '=' || k[23] != '=')
        return 0;
    if (EVP_DecodeBlock(raw, (const unsigned char *)k, 24) != 18)
        return 0;
    EVP_EncodeBlock((unsigned char *)again, raw, 16);
    return memcmp(again, k, 24) == 0;
}

TEST(key_valid_exhaustive_positions)
{
    char k[25];
    for (int pos = 0; pos < 24; pos++) {
        for (int c = 1; c < 256; c++) {
            memcpy(k, rfc_key, 25);
            k[pos] = (char)c;
            char *g = sy_t_guard_copy(k, 24);
            int got = sy_ws_key_valid(g, 24);
            sy_t_guard_free(g, 24);
            if (got != ref_valid(k))
                printf("  pos %d char 0x%02x: got %d\n", pos, c, got);
            CHECK_EQ(got, ref_valid(k));
        }
    }
}

TEST(make_key)
{
    char prev[25] = "";
    for (int i = 0; i < 1000; i++) {
        char k[25];
        memset(k, 'x', sizeof(k));
        CHECK_EQ(sy_ws_make_key(k), 0);
        CHECK_EQ(strlen(k), 24);
        CHECK(sy_ws_key_valid(k, 24));
        CHECK(strcmp(k, prev) != 0);
        memcpy(prev, k, sizeof(k));
    }
}

TEST(pick_subprotocol)
{
    const char *const prefs[] = {"v2.chat", "chat", "Chat", "superchat"};
    size_t np = SY_ARRAY_LEN(prefs);
    const struct {
        const char *offered;
        int best_in, want;
    } cases[] = {
        {"chat", -1, 1},
        {"superchat, chat", -1, 1},
        {"chat, v2.chat", -1, 0},
        {"CHAT", -1, -1}, /* exact comparison */
        {"Chat", -1, 2},
        {"  chat  ,\tsuperchat\t", -1, 1},
        {"", -1, -1},
        {" , ,", -1, -1},
        {",,chat,,", -1, 1},
        {"ch at, superchat", -1, 3},    /* invalid element ignored */
        {"chat;q=1, superchat", -1, 3}, /* not a token */
        {"\"chat\", superchat", -1, 3},
        {"cha", -1, -1},
        {"chatx", -1, -1},
        {"superchat", 1, 1}, /* an earlier field already had a better one */
        {"v2.chat", 1, 0},
        {"chat", 3, 1},
        {"other", 2, 2},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].offered);
        char *g = sy_t_guard_copy(cases[i].offered, n);
        int got = sy_ws_pick_subprotocol(g, n, prefs, np, cases[i].best_in);
        sy_t_guard_free(g, n);
        if (got != cases[i].want)
            printf("  case %zu '%s': got %d\n", i, cases[i].offered, got);
        CHECK_EQ(got, cases[i].want);
    }
    /* Across several fields. */
    int best = -1;
    best = sy_ws_pick_subprotocol("superchat", 9, prefs, np, best);
    CHECK_EQ(best, 3);
    best = sy_ws_pick_subprotocol("foo, Chat", 9, prefs, np, best);
    CHECK_EQ(best, 2);
    best = sy_ws_pick_subprotocol("superchat", 9, prefs, np, best);
    CHECK_EQ(best, 2);
    /* No preferences. */
    CHECK_EQ(sy_ws_pick_subprotocol("chat", 4, NULL, 0, -1), -1);
    /* A slice: the bytes after len are not part of the value. */
    CHECK_EQ(sy_ws_pick_subprotocol("chatty", 4, prefs, np, -1), 1);
}

int main(void)
{
    RUN(accept_key_rfc_example);
    RUN(accept_key_any_length);
    RUN(key_valid_basic);
    RUN(key_valid_exhaustive_positions);
    RUN(make_key);
    RUN(pick_subprotocol);
    return sy_t_summary();
}
