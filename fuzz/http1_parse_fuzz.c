/* HTTP/1 head: two calls (prev_len) agree with one, then analyze; chunked in two pieces. */
#include "http1/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *s = (const char *)data, *det, *d;
    size_t cut = n ? data[0] % (n + 1) : 0, dl, off = 0, end = cut;
    sy_http1_header h[12];
    sy_http1_request r;
    sy_http1_info info;
    sy_http1_limits lim = {200, 1000, 10};
    ssize_t one = sy_http1_parse_request(s, n, 0, &lim, &r, h, 12, &det), k = 0;
    ssize_t two = sy_http1_parse_request(s, cut, 0, &lim, &r, h, 12, &det);
    two = two ? two : sy_http1_parse_request(s, n, cut, &lim, &r, h, 12, &det);
    if ((one > 0 || two > 0) && (one != two || sy_http1_analyze(&r, &info, &det) > 0))
        __builtin_trap();
    sy_chunked c;
    sy_chunked_ev ev = SY_CHUNKED_NEED_MORE;
    sy_chunked_init(&c);
    while (k >= 0 && ev != SY_CHUNKED_DONE && (off < end || (end < n && (end = n))))
        off += (size_t)(k = sy_chunked_feed(&c, s + off, end - off, &ev, &d, &dl, &det));
    return 0;
}
