/* After the 101: the probe's side of a WebSocket (RFC 6455 §5), reduced to what a check needs.
 * The probe sends a text message, a ping and a close; this module builds those frames and
 * follows what comes back through the codec's parser in client mode (server frames must not
 * be masked): the echo, the pong, the close, server pings to answer, and everything that is
 * not a valid frame. Only the first 256 bytes of each message are kept. */
#include "probe/probe.h"
#include "ws/utf8.h"

#include <stdio.h>
#include <zlib.h>

size_t sy_probe_ws_frame(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len,
                         const uint8_t mask[4])
{
    if (len > 125 || cap < 14 + len)
        return 0;
    size_t h = sy_ws_frame_header(out, (uint8_t)opcode, 1, 0, len, mask);
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = mask ? (uint8_t)(p[i] ^ mask[i & 3]) : p[i];
    return h + len;
}

void sy_probe_ws_sess_init(sy_probe_ws_sess *s, int deflate)
{
    memset(s, 0, sizeof(*s));
    s->deflate = deflate;
    sy_ws_parser_init(&s->parser, 0, deflate ? SY_WS_RSV1 : 0);
}

void sy_probe_ws_sess_sent(sy_probe_ws_sess *s, int opcode, const void *payload, size_t len)
{
    if (opcode == SY_WS_OP_TEXT || opcode == SY_WS_OP_BINARY) {
        s->msg_len = len < sizeof(s->msg) ? len : sizeof(s->msg);
        memcpy(s->msg, payload, s->msg_len);
        s->msg_sent = 1;
    } else if (opcode == SY_WS_OP_PING) {
        s->ping_len = len < sizeof(s->ping) ? len : sizeof(s->ping);
        memcpy(s->ping, payload, s->ping_len);
        s->ping_sent = 1;
    } else if (opcode == SY_WS_OP_CLOSE) {
        s->close_sent = 1;
    }
}

static void *z_alloc(void *ud, unsigned n, unsigned size)
{
    (void)ud;
    return sy__calloc(n, size);
}

static void z_free(void *ud, void *p)
{
    (void)ud;
    sy__free(p);
}

/* Inflate a whole small compressed message (RFC 7692 §7.2.2: append 00 00 ff ff). Returns
 * the length, or -1 when it does not decode on its own (context takeover from earlier
 * messages, or garbage). */
static ssize_t inflate_small(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    uint8_t buf[sizeof(((sy_probe_ws_sess *)0)->cur) + 4];
    z_stream z;
    memset(&z, 0, sizeof(z));
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (len > sizeof(buf) - 4 || inflateInit2(&z, -15) != Z_OK)
        return -1;
    memcpy(buf, in, len);
    memcpy(buf + len, tail, 4);
    z.next_in = buf;
    z.avail_in = (uInt)(len + 4);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    ssize_t n = (rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) && z.avail_in == 0
                    ? (ssize_t)(cap - z.avail_out)
                    : -1;
    inflateEnd(&z);
    return n;
}

static void fail(sy_probe_ws_sess *s, uint16_t code, const char *fmt, const char *arg)
{
    s->error = 1;
    s->error_code = code;
    snprintf(s->error_detail, sizeof(s->error_detail), fmt, arg);
}

static void message_end(sy_probe_ws_sess *s)
{
    s->rx_messages++;
    if (!s->msg_sent || s->got_echo)
        return; /* unsolicited, or after the echo */
    s->got_echo = 1;
    const uint8_t *body = s->cur;
    size_t len = s->cur_len;
    uint8_t plain[sizeof(s->cur)];
    if (s->cur_compressed) {
        s->echo_compressed = 1;
        ssize_t n = s->cur_total <= sizeof(s->cur)
                        ? inflate_small(s->cur, s->cur_len, plain, sizeof(plain))
                        : -1;
        if (n < 0)
            return; /* cannot tell: not a mismatch */
        body = plain;
        len = (size_t)n;
        if (s->cur_opcode == SY_WS_OP_TEXT && !sy_utf8_valid(body, len)) {
            fail(s, 1007, "%s", "a compressed text message is not valid UTF-8");
            return;
        }
    } else if (s->cur_total != s->cur_len) {
        return; /* longer than what we keep: not our short message */
    }
    s->echo_match = len == s->msg_len && !memcmp(body, s->msg, len);
}

static void on_data(sy_probe_ws_sess *s, const sy_ws_event *ev)
{
    if (ev->msg_start) {
        s->cur_len = 0;
        s->cur_total = 0;
        s->cur_opcode = ev->opcode;
        s->cur_compressed = ev->compressed;
        s->utf8_state = 0;
    }
    size_t room = sizeof(s->cur) - s->cur_len, n = ev->len < room ? ev->len : room;
    memcpy(s->cur + s->cur_len, ev->data, n);
    s->cur_len += n;
    s->cur_total += ev->len;
    if (ev->opcode == SY_WS_OP_TEXT && !ev->compressed) {
        sy_utf8 u = {s->utf8_state};
        if (sy_utf8_feed(&u, ev->data, ev->len) >= 0 || (ev->msg_end && !sy_utf8_complete(&u))) {
            fail(s, 1007, "%s", "a text message is not valid UTF-8");
            return;
        }
        s->utf8_state = u.state;
    }
    if (ev->msg_end)
        message_end(s);
}

size_t sy_probe_ws_sess_feed(sy_probe_ws_sess *s, uint8_t *in, size_t len)
{
    size_t used = 0;
    if (s->first_len < sizeof(s->first)) {
        size_t n = SY_MIN(len, sizeof(s->first) - s->first_len);
        memcpy(s->first + s->first_len, in, n);
        s->first_len += n;
    }
    s->rx_bytes += len;
    if (!s->msg_sent && !s->ping_sent)
        s->rx_unasked += len;
    if (s->rx_bytes > SY_PROBE_FLOOD_BYTES)
        s->flood = 1;
    while (used < len && !s->error && !s->got_close) {
        sy_ws_event ev;
        uint16_t code = 0;
        const char *detail = NULL;
        ssize_t n = sy_ws_parse(&s->parser, in + used, len - used, &ev, &code, &detail);
        if (n < 0) {
            const uint8_t *fr = in + used;
            size_t left = len - used;
            /* Name the close code when the close frame came whole (server frames are not
             * masked: the code is at bytes 2-3). */
            if (detail && !strcmp(detail, "invalid close code") && left >= 4 &&
                (fr[0] & 0x0f) == SY_WS_OP_CLOSE && (fr[1] & 0x7f) >= 2 && !(fr[1] & 0x80)) {
                unsigned cc = (unsigned)fr[2] << 8 | fr[3];
                char d[120];
                snprintf(d, sizeof(d), "close code %u, which %s", cc,
                         cc == 1005 || cc == 1006 || cc == 1015
                             ? "is reserved for reports and must never be sent in a close frame"
                         : cc < 1000  ? "is below 1000 (not a close code)"
                         : cc >= 5000 ? "is above 4999 (not a close code)"
                                      : "is not assigned (RFC 6455 §7.4)");
                fail(s, code, "%s", d);
            } else {
                fail(s, code, "%s", detail ? detail : "invalid frame");
            }
            break;
        }
        used += (size_t)n;
        switch (ev.type) {
        case SY_WS_EV_DATA:
            on_data(s, &ev);
            break;
        case SY_WS_EV_PING:
            s->rx_pings++;
            s->pong_due = 1;
            s->pong_payload_len = ev.len;
            memcpy(s->pong_payload, ev.data, ev.len);
            break;
        case SY_WS_EV_PONG:
            if (s->ping_sent && !s->got_pong) {
                s->got_pong = 1;
                s->pong_match = ev.len == s->ping_len && !memcmp(ev.data, s->ping, ev.len);
            }
            break;
        case SY_WS_EV_CLOSE:
            s->got_close = 1;
            s->close_code = ev.close_code;
            sy_probe_quote(s->close_reason, sizeof(s->close_reason), ev.reason, ev.reason_len);
            break;
        case SY_WS_EV_NONE:
            break;
        }
        if (n == 0 && ev.type == SY_WS_EV_NONE)
            break;
    }
    /* The parser buffers a control frame only while it arrives in pieces; once the session
     * is over (failed, closed) nothing more is fed, so nothing may stay allocated. */
    if (s->error || s->got_close)
        sy_ws_parser_release(&s->parser);
    else
        sy_ws_parser_trim(&s->parser);
    return s->error ? used : len;
}

const char *sy_probe_ws_sess_hint(const sy_probe_ws_sess *s)
{
    const char *d = s->error_detail;
    if (!s->error)
        return NULL;
    if (s->rx_messages == 0 && s->first_len >= 4 &&
        (!memcmp(s->first, "HTTP", 4) || s->first[0] == '<' || s->first[0] == '{'))
        return "the bytes after the 101 are text, not frames: the server or a proxy sends "
               "something else (an HTTP response or body, an error page)";
    if (strstr(d, "masked"))
        return "a server must never mask its frames (RFC 6455 §5.1); clients fail the "
               "connection";
    if (strstr(d, "RSV"))
        return "the server sets reserved bits: compressed frames (RSV1) without a negotiated "
               "permessage-deflate, or a bug in its framing";
    if (strstr(d, "UTF-8"))
        return "text messages and close reasons must be UTF-8 (RFC 6455 §8.1): send other "
               "bytes as binary messages, or fix the encoding";
    if (strstr(d, "close code") || strstr(d, "1-byte"))
        return "a close frame carries nothing or a 2-byte code from 1000-1003, 1007-1014, "
               "3000-4999, then an optional UTF-8 reason (RFC 6455 §5.5.1, §7.4)";
    return NULL;
}

void sy_probe_ws_sess_free(sy_probe_ws_sess *s)
{
    sy_ws_parser_release(&s->parser);
}
