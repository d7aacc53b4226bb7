/* The pure pieces of the WebSocket opening handshake (RFC 6455 §4): Sec-WebSocket-Key
 * validation, the Sec-WebSocket-Accept hash, random keys and subprotocol selection. */
#include "ws/handshake.h"
#include "core/base64.h"
#include "http/field.h"
#include "ws/sha1.h"

#include <errno.h>
#include <sys/random.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int sy_ws_key_valid(const char *key, size_t len)
{
    /* 16 bytes encode as 21 full characters plus one that carries 2 data bits (its low 4 bits
     * are padding and must be zero, or the value is not canonical), then "==". */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        if (sy__b64_value((unsigned char)key[i], 0) < 0)
            return 0;
    }
    return (sy__b64_value((unsigned char)key[21], 0) & 0x0F) == 0;
}

void sy_ws_accept_key(const char *key, size_t len, char out[29])
{
    sy_sha1 h;
    uint8_t md[20];
    sy_sha1_init(&h);
    sy_sha1_update(&h, key, len);
    sy_sha1_update(&h, ws_guid, sizeof(ws_guid) - 1);
    sy_sha1_final(&h, md);
    sy_base64_encode(out, md, sizeof(md)); /* 28 characters and a NUL */
}

int sy_ws_make_key(char out[25])
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            out[0] = '\0';
            return SY_EIO;
        }
        got += (size_t)n;
    }
    sy_base64_encode(out, raw, sizeof(raw)); /* 24 characters and a NUL */
    return 0;
}

int sy_ws_pick_subprotocol(const char *offered, size_t len, const char *const *prefs, size_t nprefs,
                           int best)
{
    const char *s = offered, *end = offered + len;
    while (s < end) {
        /* One list element: up to the next comma, OWS trimmed on both sides. */
        const char *e = memchr(s, ',', (size_t)(end - s));
        const char *next = e ? e + 1 : end;
        if (!e)
            e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - s);
        int token = n > 0;
        for (size_t i = 0; token && i < n; i++)
            token = sy_field_is_tchar((unsigned char)s[i]);
        /* Empty and invalid elements are ignored; tokens compare exactly (RFC 6455 §4.1). */
        for (size_t i = 0; token && i < nprefs && (best < 0 || i < (size_t)best); i++) {
            if (prefs[i] && strlen(prefs[i]) == n && memcmp(prefs[i], s, n) == 0) {
                best = (int)i;
                break;
            }
        }
        s = next;
    }
    return best;
}
