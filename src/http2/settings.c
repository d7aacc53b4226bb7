/* HTTP2-Settings decoding (see settings.h). */
#include "http2/settings.h"
#include "core/base64.h"

static int valid_entry(const uint8_t *p)
{
    uint16_t id = (uint16_t)(p[0] << 8 | p[1]);
    uint32_t v = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
    switch (id) {
    case 0x2: /* ENABLE_PUSH */
    case 0x8: /* ENABLE_CONNECT_PROTOCOL */
        return v <= 1;
    case 0x4: /* INITIAL_WINDOW_SIZE */
        return v <= 0x7fffffffu;
    case 0x5: /* MAX_FRAME_SIZE */
        return v >= 16384 && v <= 16777215;
    default:
        return 1;
    }
}

ssize_t sy_h2_settings_decode(const char *value, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 == 1)
        return -1; /* no base64 length leaves a single character over */
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > cap || n % 6)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = sy__b64_value((unsigned char)value[i], 1);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* the unused low bits of the last character must be zero (canonical) */
    for (size_t i = 0; i < o; i += 6)
        if (!valid_entry(out + i))
            return -1;
    return (ssize_t)o;
}
