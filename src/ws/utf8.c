/* Incremental UTF-8 validation (RFC 3629 §4) with a small table-driven automaton.
 *
 * Every byte falls into one of 12 classes; the state says what the next byte must be. The
 * lead bytes whose second byte has a narrower range (E0: no overlongs, ED: no surrogates,
 * F0: no overlongs, F4: nothing above U+10FFFF) get their own states, so every error is
 * caught at the first byte that makes the sequence impossible, never later.
 *
 * States are stored pre-multiplied by the number of classes, so a step is one load from
 * each table and an add. */
#include "ws/utf8.h"

enum {
    C_ASCII, /* 00..7F */
    C_CONT1, /* 80..8F */
    C_CONT2, /* 90..9F */
    C_CONT3, /* A0..BF */
    C_BAD,   /* C0, C1, F5..FF: never valid */
    C_L2,    /* C2..DF: lead of a 2-byte sequence */
    C_E0,    /* E0: 3 bytes, second A0..BF */
    C_L3,    /* E1..EC, EE, EF: 3 bytes */
    C_ED,    /* ED: 3 bytes, second 80..9F */
    C_F0,    /* F0: 4 bytes, second 90..BF */
    C_L4,    /* F1..F3: 4 bytes */
    C_F4,    /* F4: 4 bytes, second 80..8F */
    NCLASS
};

/* States, as multiples of NCLASS. */
enum {
    S_OK = 0 * NCLASS,   /* at a character boundary */
    S_N1 = 1 * NCLASS,   /* one more continuation byte (80..BF) */
    S_N2 = 2 * NCLASS,   /* two more */
    S_N3 = 3 * NCLASS,   /* three more */
    S_E0 = 4 * NCLASS,   /* after E0: A0..BF, then one more */
    S_ED = 5 * NCLASS,   /* after ED: 80..9F, then one more */
    S_F0 = 6 * NCLASS,   /* after F0: 90..BF, then two more */
    S_F4 = 7 * NCLASS,   /* after F4: 80..8F, then two more */
    S_FAIL = 8 * NCLASS, /* rejected (sticky) */
};

#define R4(x) x, x, x, x
#define R8(x) R4(x), R4(x)
#define R16(x) R8(x), R8(x)
#define R32(x) R16(x), R16(x)

static const uint8_t byte_class[256] = {
    R32(C_ASCII), R32(C_ASCII), R32(C_ASCII), R32(C_ASCII),       /* 00..7F */
    R16(C_CONT1),                                                 /* 80..8F */
    R16(C_CONT2),                                                 /* 90..9F */
    R32(C_CONT3),                                                 /* A0..BF */
    C_BAD,        C_BAD,                                          /* C0, C1 */
    R16(C_L2),    R8(C_L2),     R4(C_L2),     C_L2,         C_L2, /* C2..DF */
    C_E0,                                                         /* E0 */
    R8(C_L3),     R4(C_L3),                                       /* E1..EC */
    C_ED,                                                         /* ED */
    C_L3,         C_L3,                                           /* EE, EF */
    C_F0,                                                         /* F0 */
    C_L4,         C_L4,         C_L4,                             /* F1..F3 */
    C_F4,                                                         /* F4 */
    R8(C_BAD),    C_BAD,        C_BAD,        C_BAD,              /* F5..FF */
};

#define F S_FAIL
/* clang-format off */
static const uint8_t next_state[9 * NCLASS] = {
    /*          ASCII CONT1 CONT2 CONT3 BAD   L2    E0    L3    ED    F0    L4    F4 */
    /* OK   */  S_OK, F,    F,    F,    F,    S_N1, S_E0, S_N2, S_ED, S_F0, S_N3, S_F4,
    /* N1   */  F,    S_OK, S_OK, S_OK, F,    F,    F,    F,    F,    F,    F,    F,
    /* N2   */  F,    S_N1, S_N1, S_N1, F,    F,    F,    F,    F,    F,    F,    F,
    /* N3   */  F,    S_N2, S_N2, S_N2, F,    F,    F,    F,    F,    F,    F,    F,
    /* E0   */  F,    F,    F,    S_N1, F,    F,    F,    F,    F,    F,    F,    F,
    /* ED   */  F,    S_N1, S_N1, F,    F,    F,    F,    F,    F,    F,    F,    F,
    /* F0   */  F,    F,    S_N2, S_N2, F,    F,    F,    F,    F,    F,    F,    F,
    /* F4   */  F,    S_N2, F,    F,    F,    F,    F,    F,    F,    F,    F,    F,
    /* FAIL */  F,    F,    F,    F,    F,    F,    F,    F,    F,    F,    F,    F,
};
/* clang-format on */
#undef F

#define HIGH_BITS UINT64_C(0x8080808080808080)

ssize_t sy_utf8_feed(sy_utf8 *u, const uint8_t *data, size_t len)
{
    uint32_t s = u->state;
    size_t i = 0;
    if (sy_unlikely(s == S_FAIL))
        return len ? 0 : -1;
    while (i < len) {
        if (s == S_OK) {
            /* ASCII fast path: skip whole words with no high bit set. */
            while (len - i >= 16) {
                uint64_t a, b;
                memcpy(&a, data + i, 8);
                memcpy(&b, data + i + 8, 8);
                if ((a | b) & HIGH_BITS)
                    break;
                i += 16;
            }
            while (len - i >= 8) {
                uint64_t a;
                memcpy(&a, data + i, 8);
                uint64_t hi = a & HIGH_BITS;
                if (hi) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                    i += (size_t)__builtin_ctzll(hi) >> 3; /* the first non-ASCII byte */
#endif
                    break;
                }
                i += 8;
            }
            while (i < len && data[i] < 0x80)
                i++;
            if (i == len)
                break;
        }
        s = next_state[s + byte_class[data[i]]];
        if (sy_unlikely(s == S_FAIL)) {
            u->state = s;
            return (ssize_t)i;
        }
        i++;
    }
    u->state = s;
    return -1;
}

int sy_utf8_valid(const uint8_t *data, size_t len)
{
    sy_utf8 u;
    sy_utf8_init(&u);
    return sy_utf8_feed(&u, data, len) < 0 && sy_utf8_complete(&u);
}
