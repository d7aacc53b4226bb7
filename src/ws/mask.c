/* WebSocket masking (RFC 6455 §5.3), a machine word at a time.
 *
 * Byte i of the payload is XORed with key[(offset + i) % 4]. Eight consecutive key bytes
 * starting at any position form a repeating pattern, so once we know the key position of
 * the first byte of a word we can XOR the whole word with one 64-bit value. Loads and
 * stores go through memcpy, which compilers turn into plain (unaligned-safe) moves. */
#include "ws/mask.h"

/* The 8 key bytes that apply to a word starting at key position `pos`, in memory order
 * (so the result does not depend on the machine's endianness): the key word rotated by pos
 * bytes, then doubled. */
static inline uint64_t key_word(const uint8_t key[4], unsigned pos)
{
    uint32_t k;
    memcpy(&k, key, 4);
    unsigned r = 8 * (pos & 3);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    k = r ? k << r | k >> (32 - r) : k;
#else
    k = r ? k >> r | k << (32 - r) : k;
#endif
    return (uint64_t)k << 32 | k;
}

/* Byte i (0..7) of the word k as it lies in memory. */
static inline uint8_t word_byte(uint64_t k, size_t i)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint8_t)(k >> (56 - 8 * i));
#else
    return (uint8_t)(k >> (8 * i));
#endif
}

/* Two and four machine words, as GNU C vector arithmetic: what the bulk loop compiles to on
 * x86-64 without intrinsics (SSE2 for the first; AVX2 for the second, in the variant built
 * for it); elsewhere the compiler splits them back into words. */
typedef uint64_t sy_v2 __attribute__((vector_size(16)));
typedef uint64_t sy_v4 __attribute__((vector_size(32)));

/* The bulk of a payload: two vectors per turn, data already at an 8-byte boundary, k right
 * for its first byte (a word covers two turns of the key, so k stays right). Returns the
 * bytes done (a multiple of 2 * sizeof(VT)); ORs them into *acc when track (a constant:
 * each variant is built with and without it). */
#define SY_MASK_BULK(NAME, VT, ATTR, track)                                                        \
    static ATTR size_t NAME(uint8_t *data, size_t len, uint64_t k, uint64_t *acc)                  \
    {                                                                                              \
        VT kv = (VT){0} ^ k, av = (VT){0};                                                         \
        size_t done = 0;                                                                           \
        while (len - done >= 2 * sizeof(VT)) {                                                     \
            VT w0, w1;                                                                             \
            memcpy(&w0, data + done, sizeof(VT));                                                  \
            memcpy(&w1, data + done + sizeof(VT), sizeof(VT));                                     \
            w0 ^= kv;                                                                              \
            w1 ^= kv;                                                                              \
            memcpy(data + done, &w0, sizeof(VT));                                                  \
            memcpy(data + done + sizeof(VT), &w1, sizeof(VT));                                     \
            if (track)                                                                             \
                av |= w0 | w1; /* reduced once, after the loop */                                  \
            done += 2 * sizeof(VT);                                                                \
        }                                                                                          \
        for (size_t i = 0; i < sizeof(VT) / 8; i++)                                                \
            *acc |= av[i];                                                                         \
        return done;                                                                               \
    }

SY_MASK_BULK(mask_bulk_v2, sy_v2, inline __attribute__((always_inline)), 0)
SY_MASK_BULK(mask_bulk_v2_hi, sy_v2, inline __attribute__((always_inline)), 1)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(SY_NO_AVX2)
/* 32 bytes per instruction where the CPU has AVX2 (asked once per call: one load and a test
 * of a word libgcc fills at start-up). Worth it from a few hundred bytes: a 64 KiB payload
 * unmasks ~1.8x faster in cache than with SSE2 (bench: 40 vs 22 GB/s on the CI machine). */
SY_MASK_BULK(mask_bulk_v4, sy_v4, __attribute__((target("avx2"), noinline)), 0)
SY_MASK_BULK(mask_bulk_v4_hi, sy_v4, __attribute__((target("avx2"), noinline)), 1)
#define SY_MASK_AVX2_MIN 256
#define sy_have_avx2() __builtin_cpu_supports("avx2")
#endif

/* Unmask in place; with track, also OR every unmasked byte into *hi (the high bits then say
 * whether any byte was not ASCII: text checked in the same pass). Inlined twice, so the plain
 * variant carries no accumulator. */
static inline __attribute__((always_inline)) unsigned mask_inplace(uint8_t *data, size_t len,
                                                                   const uint8_t key[4],
                                                                   unsigned offset, int track,
                                                                   uint64_t *hi)
{
    unsigned pos = offset & 3;
    unsigned end = (unsigned)((pos + len) & 3);
    uint64_t acc = 0;
    uint64_t k = key_word(key, pos);
    if (len >= 64) {
        /* Head: bring the pointer to an 8-byte boundary so the vector loop stores aligned
         * (not worth it for short payloads: unaligned word moves are cheap). */
        size_t head = (size_t)(-(uintptr_t)data & 7);
        for (size_t i = 0; i < head; i++) {
            data[i] ^= word_byte(k, i);
            acc |= data[i];
        }
        data += head;
        len -= head;
        k = key_word(key, (unsigned)(pos + head));
        size_t done;
#ifdef SY_MASK_AVX2_MIN
        if (len >= SY_MASK_AVX2_MIN && sy_have_avx2())
            done = track ? mask_bulk_v4_hi(data, len, k, &acc) : mask_bulk_v4(data, len, k, &acc);
        else
#endif
            done = track ? mask_bulk_v2_hi(data, len, k, &acc) : mask_bulk_v2(data, len, k, &acc);
        data += done;
        len -= done;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, data, 8);
        w ^= k;
        memcpy(data, &w, 8);
        acc |= w;
        data += 8;
        len -= 8;
    }
    /* Tail: fewer than 8 bytes, at the key position of k's first byte. */
    for (size_t i = 0; i < len; i++) {
        data[i] ^= word_byte(k, i);
        acc |= data[i];
    }
    if (track)
        *hi |= acc;
    return end;
}

unsigned sy_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], unsigned offset)
{
    return mask_inplace(data, len, key, offset, 0, NULL);
}

unsigned sy_ws_mask_hi(uint8_t *data, size_t len, const uint8_t key[4], unsigned offset,
                       uint64_t *hi)
{
    return mask_inplace(data, len, key, offset, 1, hi);
}

unsigned sy_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                         unsigned offset)
{
    if (dst == src)
        return sy_ws_mask(dst, len, key, offset);
    unsigned pos = offset & 3;
    unsigned end = (unsigned)((pos + len) & 3);
    /* Align on the destination: stores that straddle cache lines cost more than loads. */
    size_t head = (size_t)(-(uintptr_t)dst & 7);
    if (head > len)
        head = len;
    for (size_t i = 0; i < head; i++)
        dst[i] = src[i] ^ key[(pos + i) & 3];
    dst += head;
    src += head;
    len -= head;
    pos = (unsigned)((pos + head) & 3);

    uint64_t k = key_word(key, pos);
    while (len >= 32) {
        uint64_t w[4];
        memcpy(w, src, sizeof(w));
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        memcpy(dst, w, sizeof(w));
        dst += 32;
        src += 32;
        len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, src, 8);
        w ^= k;
        memcpy(dst, &w, 8);
        dst += 8;
        src += 8;
        len -= 8;
    }
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ key[(pos + i) & 3];
    return end;
}
