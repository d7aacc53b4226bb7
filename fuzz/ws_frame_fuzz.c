/* Frame parser. Byte 0 picks the side, RSV1 and a chunk size; chunks are exact-size copies. */
#include <stdlib.h>
#include "ws/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    sy_ws_parser p;
    sy_ws_parser_init(&p, n && (d[0] & 1), n && (d[0] & 2) ? SY_WS_RSV1 : 0);
    ssize_t k = 0;
    for (size_t off = 1, len; off < n && k >= 0; off += len) {
        len = SY_MIN((d[0] >> 2) + 1u, n - off);
        uint8_t *c = malloc(len);
        memcpy(c, d + off, len);
        for (size_t at = 0; at < len && k >= 0; at += (k >= 0 ? (size_t)k : 0)) {
            sy_ws_event ev;
            k = sy_ws_parse(&p, c + at, len - at, &ev, NULL, NULL);
            if (k >= 0 && ((size_t)k > len - at || (k == 0 && ev.type == SY_WS_EV_NONE) ||
                           (ev.type == SY_WS_EV_DATA && ev.data + ev.len > c + len)))
                abort();
        }
        free(c);
    }
    sy_ws_parser_release(&p);
    return 0;
}
