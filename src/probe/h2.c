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
    h->first_type = -1;
}

const char *sy_probe_h2_frame_name(int type)
{
    static const char *const names[] = {"DATA",          "HEADERS",      "PRIORITY", "RST_STREAM",
                                        "SETTINGS",      "PUSH_PROMISE", "PING",     "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION"};
    return type >= 0 && (size_t)type < SY_ARRAY_LEN(names) ? names[type] : "an unknown frame";
}

static void bad_setting(sy_probe_h2 *h, const char *fmt, uint32_t v)
    __attribute__((format(printf, 2, 0)));
static void bad_setting(sy_probe_h2 *h, const char *fmt, uint32_t v)
{
    if (!h->bad_setting[0])
        snprintf(h->bad_setting, sizeof(h->bad_setting), fmt, v);
}

/* One SETTINGS entry from the server (RFC 9113 §6.5.2, RFC 8441 §3). */
static void check_setting(sy_probe_h2 *h, uint16_t id, uint32_t v)
{
    switch (id) {
    case 2:
        /* 1 from a server is wrong too under RFC 9113, but RFC 7540 allowed it: not worth
         * an alarm on servers that work. */
        if (v > 1)
            bad_setting(h,
                        "SETTINGS_ENABLE_PUSH = %u (only 0 or 1 exist, and a server sends 0; "
                        "RFC 9113 §6.5.2)",
                        v);
        break;
    case 4:
        if (v > 0x7fffffffu)
            bad_setting(h,
                        "SETTINGS_INITIAL_WINDOW_SIZE = %u (above the maximum 2147483647, "
                        "2^31-1: a FLOW_CONTROL_ERROR; RFC 9113 §6.5.2)",
                        v);
        break;
    case 5:
        if (v < 16384 || v > 16777215)
            bad_setting(h,
                        "SETTINGS_MAX_FRAME_SIZE = %u (it must be 16384..16777215; RFC 9113 "
                        "§6.5.2)",
                        v);
        break;
    case 8:
        if (v > 1)
            bad_setting(h, "SETTINGS_ENABLE_CONNECT_PROTOCOL = %u (only 0 or 1; RFC 8441 §3)", v);
        break;
    default:
        break;
    }
}

void sy_probe_h2_scan_feed(sy_probe_h2 *h, const uint8_t *p, size_t n)
{
    sy_probe_h2_scan *sc = &h->scan;
    if (h->first_len < sizeof(h->first_bytes)) {
        size_t k = SY_MIN(n, sizeof(h->first_bytes) - h->first_len);
        memcpy(h->first_bytes + h->first_len, p, k);
        h->first_len += k;
    }
    while (n) {
        if (sc->hdr_len < 9) {
            size_t k = SY_MIN(n, (size_t)(9 - sc->hdr_len));
            memcpy(sc->hdr + sc->hdr_len, p, k);
            sc->hdr_len = (uint8_t)(sc->hdr_len + k);
            p += k;
            n -= k;
            if (sc->hdr_len < 9)
                return;
            sc->left = (uint32_t)sc->hdr[0] << 16 | (uint32_t)sc->hdr[1] << 8 | sc->hdr[2];
            sc->type = sc->hdr[3];
            sc->flags = sc->hdr[4];
            sc->stream = ((uint32_t)sc->hdr[5] << 24 | (uint32_t)sc->hdr[6] << 16 |
                          (uint32_t)sc->hdr[7] << 8 | sc->hdr[8]) &
                         0x7fffffffu;
            sc->entry_len = 0;
            if (sc->frames++ == 0)
                h->first_type = sc->type;
            if (sc->type == 4) {
                if (sc->stream)
                    bad_setting(h,
                                "a SETTINGS frame on stream %u (SETTINGS belong on stream 0; "
                                "RFC 9113 §6.5)",
                                sc->stream);
                else if ((sc->flags & 1) && sc->left)
                    bad_setting(h,
                                "a SETTINGS acknowledgement with %u bytes of payload (it must "
                                "be empty; RFC 9113 §6.5)",
                                sc->left);
                else if (sc->left % 6)
                    bad_setting(h,
                                "a SETTINGS frame of %u bytes, not a multiple of 6 (RFC 9113 "
                                "§6.5)",
                                sc->left);
            }
            /* A response on an odd stream the probe never opened (even ones follow a
             * PUSH_PROMISE and are the library's business). */
            if ((sc->type == 0 || sc->type == 1) && (sc->stream & 1) &&
                sc->stream > h->max_stream && !h->stray_stream) {
                h->stray_stream = sc->stream;
                h->stray_type = sc->type;
            }
            if (sc->hdr_len == 9 && !sc->left) {
                sc->hdr_len = 0;
                continue;
            }
        }
        size_t k = SY_MIN(n, (size_t)sc->left);
        if (sc->type == 4 && !(sc->flags & 1) && !sc->stream) {
            for (size_t i = 0; i < k; i++) {
                sc->entry[sc->entry_len++] = p[i];
                if (sc->entry_len == 6) {
                    check_setting(h, (uint16_t)(sc->entry[0] << 8 | sc->entry[1]),
                                  (uint32_t)sc->entry[2] << 24 | (uint32_t)sc->entry[3] << 16 |
                                      (uint32_t)sc->entry[4] << 8 | sc->entry[5]);
                    sc->entry_len = 0;
                }
            }
        }
        p += k;
        n -= k;
        sc->left -= (uint32_t)k;
        if (!sc->left)
            sc->hdr_len = 0;
    }
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
        int has_conn = conn && sy_field_list_has(conn->value, conn->value_len, "upgrade");
        int up_ok = up && sy__ieq(up->value, up->value_len, "h2c");
        char what[160];
        if (!up)
            snprintf(what, sizeof(what), "has no Upgrade field");
        else if (!up_ok)
            snprintf(what, sizeof(what), "switches to \"%s\", not h2c",
                     sy_probe_quote(q, sizeof(q), up->value, up->value_len));
        else
            snprintf(what, sizeof(what), "says Upgrade: h2c");
        sy_probe_add(r, path, SY_PF_H2C_UPGRADE_INVALID, "The 101 to the h2c upgrade %s%s.", what,
                     has_conn ? ""
                     : up_ok  ? " but lacks Connection: upgrade"
                              : " and lacks Connection: upgrade");
        return up && sy_field_list_has(up->value, up->value_len, "h2c");
    }
    return 1;
}

/* The first line of HTTP/1 bytes the server sent instead of frames. */
static size_t http1_line_len(const sy_probe_h2 *h)
{
    size_t n = 0;
    while (n < h->first_len && h->first_bytes[n] != '\r' && h->first_bytes[n] != '\n')
        n++;
    return n;
}

int sy_probe_h2_broken(const sy_probe_h2 *h)
{
    return h->bad_setting[0] || (h->stray_stream && !h->status) ||
           (!h->got_settings && h->first_type >= 0 && h->first_type != 4);
}

int sy_probe_h2_check(sy_probe_report *r, const char *path, sy_probe_h2_mode mode,
                      const sy_probe_h2 *h)
{
    int ok = 1;
    char q[80];
    if (h->bad_setting[0]) {
        sy_probe_finding *f =
            sy_probe_add(r, path, SY_PF_H2_PROTOCOL_ERROR, "The server's SETTINGS are invalid: %s.",
                         h->bad_setting);
        sy_probe_hint(f, "clients close the connection at once (a connection error): no request "
                         "gets through");
        return 0;
    }
    if (!h->got_settings && h->first_len >= 5 && !memcmp(h->first_bytes, "HTTP/", 5)) {
        sy_probe_finding *f = sy_probe_add(
            r, path, SY_PF_H2_NO_SETTINGS,
            "%s the server answered in HTTP/1 (\"%s\") instead of HTTP/2 frames.",
            mode == SY_PROBE_H2_UPGRADE ? "After its 101 to h2c" : "To the HTTP/2 preface",
            sy_probe_quote(q, 40, h->first_bytes, http1_line_len(h)));
        sy_probe_hint(f, "the server switched in name only: it sends the 101 and then goes on "
                         "with an HTTP/1.1 response (RFC 9113 §3.2 / RFC 7540 §3.2: after the "
                         "101 the server's first bytes are its SETTINGS)");
        return 0;
    }
    if (!h->got_settings && h->first_type >= 0 && h->first_type != 4) {
        sy_probe_finding *f = sy_probe_add(
            r, path, SY_PF_H2_NO_SETTINGS,
            "The server's first HTTP/2 frame is %s (type %d), not SETTINGS; clients fail the "
            "connection (RFC 9113 §3.4).",
            sy_probe_h2_frame_name(h->first_type), h->first_type);
        sy_probe_hint(f, h->first_type <= 9
                             ? "the server's connection preface must be a SETTINGS frame, sent "
                               "before anything else"
                             : "the first bytes are not an HTTP/2 frame header: the server does "
                               "not speak HTTP/2 on this connection");
        return 0;
    }
    if (h->stray_stream && !h->status && mode != SY_PROBE_H2_WS) {
        sy_probe_finding *f = sy_probe_add(
            r, path, SY_PF_H2_PROTOCOL_ERROR,
            "The server sent %s on stream %u, which the probe never opened; the answer belongs "
            "on stream %u.",
            sy_probe_h2_frame_name(h->stray_type), h->stray_stream,
            h->expect_stream ? h->expect_stream : 1);
        sy_probe_hint(f, mode == SY_PROBE_H2_UPGRADE
                             ? "after an h2c upgrade the response to the upgrade request is "
                               "sent on stream 1 (RFC 7540 §3.2); clients treat another stream "
                               "as a protocol error"
                             : "a client treats frames on a stream it never opened as a "
                               "protocol error (RFC 9113 §5.1)");
        return 0;
    }
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
    /* A GOAWAY whose last stream is below ours says the request will never be processed. */
    int refused = h->goaway && h->expect_stream && h->goaway_last < h->expect_stream && !h->status;
    if (h->goaway && (h->goaway_code != 0 || refused)) {
        sy_probe_finding *f = sy_probe_add(
            r, path, SY_PF_H2_GOAWAY, "The server sent GOAWAY %s (%u)%s%s%s.",
            sy_probe_h2_error_name(h->goaway_code), h->goaway_code,
            refused ? " before answering" : "", h->goaway_debug[0] ? ": " : "", h->goaway_debug);
        if (refused)
            sy_probe_hint(f,
                          "its last stream ID is %u, below the probe's stream %u: the server "
                          "will not process the request%s",
                          h->goaway_last, h->expect_stream,
                          h->goaway_code ? "" : " (NO_ERROR: a shutdown right after the preface)");
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
        if (h->ws_error) {
            sy_probe_finding *f = sy_probe_add(r, path, SY_PF_WS_FRAME_INVALID,
                                               "On the RFC 8441 stream the server sent an invalid "
                                               "WebSocket frame: %s.",
                                               h->ws_error_detail);
            if (h->ws_error_hint)
                sy_probe_hint(f, "%s", h->ws_error_hint);
            return 0;
        }
        if (h->stream_ended && !h->data_bytes) {
            sy_probe_add(r, path, SY_PF_WS_CLOSED_AFTER_UPGRADE,
                         "The server ended the extended CONNECT stream right after its 200, "
                         "before any WebSocket frame: the WebSocket over HTTP/2 is over at once.");
            return 0;
        }
        if (h->echo_sent && !h->echo_ok)
            sy_probe_add(r, path, SY_PF_H2_WS_NO_ECHO, "%s",
                         h->got_pong ? "The WebSocket over HTTP/2 answered the probe's ping but "
                                       "sent no message back."
                                     : "No WebSocket message came back on the HTTP/2 stream.");
        return ok;
    }
    if (refused)
        return 0; /* the stream was closed by the GOAWAY, not reset by the server */
    if (h->rst) {
        sy_probe_add(r, path, SY_PF_H2_STREAM_RESET, "The server reset the request stream with %s.",
                     sy_probe_h2_error_name(h->rst_code));
        return 0;
    }
    if (!h->status) {
        sy_probe_finding *f =
            sy_probe_add(r, path, SY_PF_H2_NO_RESPONSE, "The HTTP/2 request got no response%s%s.",
                         mode == SY_PROBE_H2_UPGRADE ? " on stream 1 after the 101" : "",
                         h->timed_out ? " before the timeout"
                         : h->closed  ? " (the connection closed)"
                                      : "");
        if (mode == SY_PROBE_H2_UPGRADE)
            sy_probe_hint(f, "after a 101 to h2c the request that asked for the upgrade is "
                             "stream 1, and its response comes as HTTP/2 on that stream (RFC "
                             "7540 §3.2): the server switched but does not serve it");
        return 0;
    }
    return ok;
}
