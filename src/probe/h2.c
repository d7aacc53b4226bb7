/* HTTP/2 checks, one per way in (h2c upgrade, prior knowledge, ALPN) plus WebSocket over
 * HTTP/2 (RFC 8441). The driver runs an HTTP/2 client library and reports what it saw as
 * events (settings, :status, GOAWAY, RST_STREAM, protocol errors); the rules live here. The
 * h2c upgrade request and its 101 are HTTP/1.1 and are built and checked here too. */
#include "probe/probe.h"

#include <stdio.h>

size_t sy_probe_h2_settings_b64(char *out, size_t cap, const uint16_t *ids, const uint32_t *vals,
                                size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[6 * 8];
    size_t len = 0, o = 0;
    if (n > 8)
        return 0;
    for (size_t i = 0; i < n; i++) {
        raw[len++] = (uint8_t)(ids[i] >> 8);
        raw[len++] = (uint8_t)ids[i];
        for (int s = 24; s >= 0; s -= 8)
            raw[len++] = (uint8_t)(vals[i] >> s);
    }
    if (cap < (len * 4 + 2) / 3 + 1)
        return 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        size_t k = len - i;
        if (k > 1)
            v |= (uint32_t)raw[i + 1] << 8;
        if (k > 2)
            v |= raw[i + 2];
        out[o++] = al[(v >> 18) & 63];
        out[o++] = al[(v >> 12) & 63];
        if (k > 1)
            out[o++] = al[(v >> 6) & 63];
        if (k > 2)
            out[o++] = al[v & 63];
    }
    out[o] = 0;
    return o;
}

size_t sy_probe_h2c_request(char *out, size_t cap, const char *host, const char *target,
                            const char *settings_b64, int conn_lists_settings)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade%s\r\nUpgrade: h2c\r\n"
                     "HTTP2-Settings: %s\r\nUser-Agent: switchyard-probe/%s\r\n\r\n",
                     target, host, conn_lists_settings ? ", HTTP2-Settings" : "", settings_b64,
                     SY_VERSION);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

const char *sy_probe_h2_error_name(uint32_t code)
{
    static const char *const names[] = {"NO_ERROR",
                                        "PROTOCOL_ERROR",
                                        "INTERNAL_ERROR",
                                        "FLOW_CONTROL_ERROR",
                                        "SETTINGS_TIMEOUT",
                                        "STREAM_CLOSED",
                                        "FRAME_SIZE_ERROR",
                                        "REFUSED_STREAM",
                                        "CANCEL",
                                        "COMPRESSION_ERROR",
                                        "CONNECT_ERROR",
                                        "ENHANCE_YOUR_CALM",
                                        "INADEQUATE_SECURITY",
                                        "HTTP_1_1_REQUIRED"};
    return code < SY_ARRAY_LEN(names) ? names[code] : "unknown error code";
}

void sy_probe_h2_init(sy_probe_h2 *h)
{
    memset(h, 0, sizeof(*h));
    h->enable_connect_protocol = -1;
}

void sy_probe_h2_setting(sy_probe_h2 *h, uint16_t id, uint32_t value)
{
    if (id == SY_PROBE_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL)
        h->enable_connect_protocol = (int)(value > 1 ? 2 : value);
}

int sy_probe_h2c_check_101(sy_probe_report *r, const char *path, const sy_probe_head *h,
                           int security_variant, int over_tls)
{
    if (h->status != 101) {
        if (!security_variant)
            sy_probe_add(r, path, SY_PF_H2C_UPGRADE_IGNORED,
                         "The server answered the h2c upgrade with %d: it stays on HTTP/1.1.",
                         h->status);
        return 0;
    }
    if (over_tls)
        sy_probe_add(r, path, SY_PF_SEC_H2C_OVER_TLS,
                     "The server switched to h2c (101) on a TLS connection.");
    else if (security_variant)
        sy_probe_add(r, path, SY_PF_SEC_H2C_WITHOUT_SETTINGS_TOKEN,
                     "The server switched to h2c (101) although Connection did not list "
                     "HTTP2-Settings.");
    const sy_field *up = sy_probe_head_get(h, "upgrade", NULL);
    const sy_field *conn = sy_probe_head_get(h, "connection", NULL);
    if (!up || !sy__ieq(up->value, up->value_len, "h2c") || !conn ||
        !sy_field_list_has(conn->value, conn->value_len, "upgrade")) {
        char q[80];
        sy_probe_add(r, path, SY_PF_H2C_UPGRADE_INVALID,
                     "The 101 to h2c says Upgrade \"%s\" and %s Connection: upgrade.",
                     up ? sy_probe_quote(q, sizeof(q), up->value, up->value_len) : "(none)",
                     conn && sy_field_list_has(conn->value, conn->value_len, "upgrade") ? "has"
                                                                                        : "lacks");
        return up && sy_field_list_has(up->value, up->value_len, "h2c");
    }
    return 1;
}

int sy_probe_h2_check(sy_probe_report *r, const char *path, sy_probe_h2_mode mode,
                      const sy_probe_h2 *h)
{
    int ok = 1;
    if (h->proto_error) {
        sy_probe_add(r, path, SY_PF_H2_PROTOCOL_ERROR, "HTTP/2 protocol error: %s.",
                     h->proto_detail);
        ok = 0;
    }
    if (!h->got_settings) {
        if (mode == SY_PROBE_H2_PRIOR && !h->proto_error)
            sy_probe_add(r, path, SY_PF_H2_PRIOR_KNOWLEDGE_REFUSED,
                         "The server did not answer the HTTP/2 connection preface with SETTINGS%s.",
                         h->closed ? " (it closed the connection)" : "");
        else if (!h->proto_error)
            sy_probe_add(r, path, SY_PF_H2_NO_SETTINGS,
                         "The server sent no HTTP/2 SETTINGS frame%s.",
                         h->timed_out ? " before the timeout" : "");
        return 0;
    }
    if (h->goaway && h->goaway_code != 0) {
        sy_probe_add(r, path, SY_PF_H2_GOAWAY, "The server sent GOAWAY %s (%u)%s%s.",
                     sy_probe_h2_error_name(h->goaway_code), h->goaway_code,
                     h->goaway_debug[0] ? ": " : "", h->goaway_debug);
        ok = 0;
    }
    if (mode == SY_PROBE_H2_WS) {
        if (h->enable_connect_protocol != 1) {
            sy_probe_add(r, path, SY_PF_H2_WS_NOT_ADVERTISED,
                         "The server's SETTINGS %s SETTINGS_ENABLE_CONNECT_PROTOCOL.",
                         h->enable_connect_protocol < 0 ? "do not include" : "disable");
            return 0;
        }
        if (h->status != 200) {
            char st[48];
            snprintf(st, sizeof(st), "status %d", h->status);
            sy_probe_add(r, path, SY_PF_H2_WS_REJECTED,
                         "The server advertises RFC 8441 but answered the extended CONNECT "
                         "(:protocol websocket) with %s.",
                         h->rst      ? sy_probe_h2_error_name(h->rst_code)
                         : h->status ? st
                                     : "no response");
            return 0;
        }
        if (h->echo_sent && !h->echo_ok)
            sy_probe_add(r, path, SY_PF_H2_WS_NO_ECHO,
                         "No WebSocket message came back on the HTTP/2 stream.");
        return ok;
    }
    if (h->rst) {
        sy_probe_add(r, path, SY_PF_H2_STREAM_RESET, "The server reset the request stream with %s.",
                     sy_probe_h2_error_name(h->rst_code));
        return 0;
    }
    if (!h->status) {
        sy_probe_add(r, path, SY_PF_H2_NO_RESPONSE, "The HTTP/2 request got no response%s.",
                     h->timed_out ? " before the timeout"
                     : h->closed  ? " (the connection closed)"
                                  : "");
        return 0;
    }
    return ok;
}
