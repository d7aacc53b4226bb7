/* SHA-1 as FIPS 180-4 §6.1.2 describes it: 64-byte blocks, an 80-word schedule computed in a
 * rolling 16-word window, big-endian words and length. See sha1.h for why it is here. */
#include "ws/sha1.h"

static inline uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The 80 steps written out, five at a time with the variables renamed instead of moved (after
 * a step, what was a is b, and so on): no branch on the step number, the schedule kept in a
 * 16-word ring. */
#define F1(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))         /* Ch */
#define F2(b, c, d) ((b) ^ (c) ^ (d))                   /* Parity */
#define F3(b, c, d) (((b) & (c)) | ((d) & ((b) | (c)))) /* Maj */
#define WORD(t)                                                                                    \
    ((t) < 16 ? w[(t)&15]                                                                          \
              : (w[(t)&15] = rol(                                                                  \
                     w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ w[((t) + 2) & 15] ^ w[(t)&15], 1)))
#define STEP(f, k, t, a, b, c, d, e)                                                               \
    do {                                                                                           \
        e += rol(a, 5) + f(b, c, d) + (k) + WORD(t);                                               \
        b = rol(b, 30);                                                                            \
    } while (0)
#define FIVE(f, k, t)                                                                              \
    do {                                                                                           \
        STEP(f, k, (t), a, b, c, d, e);                                                            \
        STEP(f, k, (t) + 1, e, a, b, c, d);                                                        \
        STEP(f, k, (t) + 2, d, e, a, b, c);                                                        \
        STEP(f, k, (t) + 3, c, d, e, a, b);                                                        \
        STEP(f, k, (t) + 4, b, c, d, e, a);                                                        \
    } while (0)
#define TWENTY(f, k, t)                                                                            \
    do {                                                                                           \
        FIVE(f, k, (t));                                                                           \
        FIVE(f, k, (t) + 5);                                                                       \
        FIVE(f, k, (t) + 10);                                                                      \
        FIVE(f, k, (t) + 15);                                                                      \
    } while (0)

static void block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[16];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(p + 4 * t);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    TWENTY(F1, 0x5A827999u, 0);
    TWENTY(F2, 0x6ED9EBA1u, 20);
    TWENTY(F3, 0x8F1BBCDCu, 40);
    TWENTY(F2, 0xCA62C1D6u, 60);
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void sy_sha1_init(sy_sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, iv, sizeof(iv));
    s->total = 0;
    s->buf_len = 0;
}

void sy_sha1_update(sy_sha1 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    if (s->buf_len) {
        size_t n = SY_MIN(len, 64 - s->buf_len);
        memcpy(s->buf + s->buf_len, p, n);
        s->buf_len += n;
        p += n;
        len -= n;
        if (s->buf_len < 64)
            return;
        block(s->h, s->buf);
        s->buf_len = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        block(s->h, p);
    memcpy(s->buf, p, len);
    s->buf_len = len;
}

void sy_sha1_final(sy_sha1 *s, uint8_t out[20])
{
    /* Padding: 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->buf_len < 56 ? 56 : 120) - s->buf_len;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    sy_sha1_update(s, pad, padlen + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

size_t sy_base64_encode(char *out, const uint8_t *in, size_t len)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alpha[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}
