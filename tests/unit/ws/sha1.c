/* Tests for src/ws/sha1.c: the FIPS 180-4 / RFC 3174 vectors, every length up to 300 split at
 * every point against OpenSSL, and base64 against RFC 4648 §10. */
#include "harness.h"

#include <openssl/evp.h>

#include "ws/sha1.h"

static void hex(const uint8_t md[20], char out[41])
{
    for (int i = 0; i < 20; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void sha1_hex(const void *data, size_t len, char out[41])
{
    sy_sha1 s;
    uint8_t md[20];
    sy_sha1_init(&s);
    sy_sha1_update(&s, data, len);
    sy_sha1_final(&s, md);
    hex(md, out);
}

TEST(vectors)
{
    char h[41];
    sha1_hex("", 0, h);
    CHECK(strcmp(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0);
    sha1_hex("abc", 3, h);
    CHECK(strcmp(h, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1_hex(m, strlen(m), h);
    CHECK(strcmp(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") == 0);
    /* A million 'a', fed in uneven pieces. */
    static char a[1000];
    memset(a, 'a', sizeof(a));
    sy_sha1 s;
    uint8_t md[20];
    sy_sha1_init(&s);
    for (int i = 0; i < 1000; i++) {
        sy_sha1_update(&s, a, 333);
        sy_sha1_update(&s, a, 667);
    }
    sy_sha1_final(&s, md);
    hex(md, h);
    CHECK(strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0);
}

TEST(every_length_and_split_against_openssl)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof(data); len++) {
        uint8_t want[20];
        unsigned int wl = 0;
        CHECK(EVP_Digest(data, len, want, &wl, EVP_sha1(), NULL) == 1);
        for (size_t split = 0; split <= len; split += (len < 140 ? 1 : 37)) {
            sy_sha1 s;
            uint8_t md[20];
            sy_sha1_init(&s);
            sy_sha1_update(&s, data, split);
            sy_sha1_update(&s, data + split, len - split);
            sy_sha1_final(&s, md);
            if (memcmp(md, want, 20) != 0)
                printf("  len %zu split %zu\n", len, split);
            CHECK_MEM(md, want, 20);
        }
    }
}

TEST(base64_rfc4648)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < SY_ARRAY_LEN(in); i++) {
        char buf[16];
        size_t n = sy_base64_encode(buf, (const uint8_t *)in[i], strlen(in[i]));
        CHECK_EQ(n, strlen(out[i]));
        CHECK(strcmp(buf, out[i]) == 0);
    }
    /* Every byte value, against OpenSSL's encoder. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len++) {
        char got[360], want[360];
        size_t n = sy_base64_encode(got, all + (256 - len), len);
        int wn = EVP_EncodeBlock((unsigned char *)want, all + (256 - len), (int)len);
        CHECK_EQ(n, wn);
        CHECK(strcmp(got, want) == 0);
    }
}

int main(void)
{
    RUN(vectors);
    RUN(every_length_and_split_against_openssl);
    RUN(base64_rfc4648);
    return sy_t_summary();
}
