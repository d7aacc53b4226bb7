/* The probe's answer checks on arbitrary bytes: the head parser, the handshake checks, the
 * body reader, the frame session after a 101, the HTTP/2 frame scanner (whole and in two
 * pieces) with the HTTP/2 rules, the ALPN reader of a TLS hello, and the reflect comparison. */
#include "probe/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sy_probe_report r;
    static sy_probe_head h;
    static sy_probe_ws_sess s;
    static uint8_t copy[1 << 17];
    const char *why;
    sy_probe_ws_req rq = {.host = "h",
                          .target = "/",
                          .offer_deflate = 1,
                          .nsub = 1,
                          .subprotocols = {"chat"},
                          .key = "dGhlIHNhbXBsZSBub25jZQ=="};
    sy_probe_body b;
    sy_probe_ws_result res;
    if (size > sizeof(copy))
        return 0;
    memcpy(copy, data, size);
    sy_probe_report_init(&r);
    ssize_t n = sy_probe_head_parse((const char *)copy, size, 0, &h, &why);
    if (n > 0) {
        sy_probe_body_init(&b, &h, 0);
        sy_probe_body_feed(&b, copy + n, size - (size_t)n);
        sy_probe_ws_check(&r, "f", &rq, &h, &b, &res);
        sy_probe_ws_sess_init(&s, res.deflate);
        sy_probe_ws_sess_feed(&s, copy + n, size - (size_t)n);
        (void)sy_probe_ws_sess_hint(&s);
        sy_probe_ws_sess_free(&s);
        sy_probe_h2c_check_101(&r, "f", &h, 1, 0);
    } else if (n == SY_PROBE_HEAD_BAD) {
        (void)sy_probe_head_bad_hint(&h);
    }
    /* the same bytes as an HTTP/2 connection's frames, split where the first byte says */
    static sy_probe_h2 h2;
    sy_probe_h2_init(&h2);
    h2.max_stream = h2.expect_stream = 1;
    size_t cut = size ? data[0] % (size + 1) : 0;
    sy_probe_h2_scan_feed(&h2, data, cut);
    sy_probe_h2_scan_feed(&h2, data + cut, size - cut);
    (void)sy_probe_h2_broken(&h2);
    h2.got_settings = size & 1;
    h2.status = size & 2 ? 200 : 0;
    sy_probe_h2_check(&r, "f", (sy_probe_h2_mode)(size % 4), &h2);
    /* the same bytes as a TLS server's hello */
    char alpn[32];
    if (sy_probe_tls_alpn_in_hello(data, size, alpn, sizeof(alpn)))
        (void)sy_probe_tls_alpn_offered("h2,http/1.1", alpn);
    sy_probe_reflect_check(&r, "f", (const char *)data, size, (const char *)data, size, "m", "x");
    return 0;
}
