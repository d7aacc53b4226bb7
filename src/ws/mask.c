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

/* Two machine words, as GNU C vector arithmetic: what the word loops below compile to on
 * x86-64 (SSE2) without intrinsics; elsewhere the compiler splits it back into words. */
typedef uint64_t sy_v2 __attribute__((vector_size(16)));

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
        /* A word covers 8 key positions (two full turns), so k stays right from here on. */
        sy_v2 kv = {k, k}, av = {0, 0};
        while (len >= 32) {
            sy_v2 w0, w1;
            memcpy(&w0, data, 16);
            memcpy(&w1, data + 16, 16);
            w0 ^= kv;
            w1 ^= kv;
            memcpy(data, &w0, 16);
            memcpy(data + 16, &w1, 16);
            if (track)
                av |= w0 | w1; /* reduced once, after the loop */
            data += 32;
            len -= 32;
        }
        acc |= av[0] | av[1];
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
