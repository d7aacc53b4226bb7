/* The WebSocket walks of `switchyard probe`: the handshake and a session (message round trip,
 * ping/pong, optional idle period, clean close), the security checks (an unknown
 * Sec-WebSocket-Version, an unmasked frame, h2c smuggling), and the reflect comparison. The
 * checks themselves are in src/probe; this file moves bytes and keeps time. */
#include "cli/probe.h"
#include "ws/handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#define HEAD_CAP (SY_PROBE_MAX_HEAD + 4096)

static char g_buf[HEAD_CAP];
static char g_req[8192];

static void random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[32];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (uint8_t)rand();
    for (size_t i = 0; i + 1 < n && i < 64; i++)
        out[i] = hex[(r[i / 2] >> ((i & 1) * 4)) & 15];
    out[n - 1] = 0;
}

static void random_mask(uint8_t m[4])
{
    if (getrandom(m, 4, 0) != 4)
        m[0] = 0x5a, m[1] = 0x3c, m[2] = 0x99, m[3] = 0x17;
}

static void fill_req(probe *P, sy_probe_ws_req *rq, const char *target, const char *marker)
{
    memset(rq, 0, sizeof(*rq));
    rq->host = P->hostport;
    rq->target = target;
    rq->origin = P->origin;
    for (size_t i = 0; i < P->nsub; i++)
        rq->subprotocols[i] = P->subs[i];
    rq->nsub = P->nsub;
    rq->offer_deflate = 1;
    rq->version = "13";
    rq->extra = P->extra;
    rq->nextra = P->nextra;
    rq->marker = marker;
    rq->reflect_token = P->reflect_token;
    if (sy_ws_make_key(rq->key) < 0)
        memcpy(rq->key, "dGhlIHNhbXBsZSBub25jZQ==", 25);
}

static int send_frame(pconn *c, sy_probe_ws_sess *s, int opcode, const void *p, size_t len,
                      int masked, double deadline)
{
    uint8_t fr[160], mask[4];
    random_mask(mask);
    size_t n = sy_probe_ws_frame(fr, sizeof(fr), opcode, p, len, masked ? mask : NULL);
    if (s)
        sy_probe_ws_sess_sent(s, opcode, p, len);
    return n ? probe_write(c, fr, n, deadline) : PN_ERR;
}

/* Answer the pings the server sent (the session notes them). */
static void answer_pings(pconn *c, sy_probe_ws_sess *s, double deadline)
{
    if (!s->pong_due)
        return;
    s->pong_due = 0;
    (void)send_frame(c, NULL, SY_WS_OP_PONG, s->pong_payload, s->pong_payload_len, 1, deadline);
}

typedef enum { W_DONE, W_TIMEOUT, W_EOF, W_ERR, W_PROTO, W_FLOOD, W_CLOSED } wait_end;

/* Feed the session until cond() holds or something ends the wait. */
static wait_end pump(pconn *c, sy_probe_ws_sess *s, double deadline,
                     int (*cond)(const sy_probe_ws_sess *s))
{
    static uint8_t buf[65536];
    for (;;) {
        if (s->error)
            return W_PROTO;
        if (s->flood)
            return W_FLOOD;
        if (cond(s))
            return W_DONE;
        if (s->got_close)
            return W_CLOSED;
        ssize_t n = probe_read(c, buf, sizeof(buf), deadline);
        if (n == PN_TIMEOUT)
            return W_TIMEOUT;
        if (n == PN_EOF)
            return W_EOF;
        if (n < 0)
            return W_ERR;
        sy_probe_ws_sess_feed(s, buf, (size_t)n);
        answer_pings(c, s, deadline);
    }
}

static int got_pong(const sy_probe_ws_sess *s)
{
    return s->got_pong;
}

static int got_echo_cond(const sy_probe_ws_sess *s)
{
    return s->got_echo;
}

static int got_close(const sy_probe_ws_sess *s)
{
    return s->got_close;
}

static int never(const sy_probe_ws_sess *s)
{
    (void)s;
    return 0;
}

/* What ended a session early, as a finding. */
static void session_end_finding(probe *P, const char *path, sy_probe_ws_sess *s, wait_end w,
                                const char *during)
{
    if (w == W_PROTO) {
        sy_probe_finding *f = sy_probe_add(&P->rep, path, SY_PF_WS_FRAME_INVALID,
                                           "During the %s the server sent an invalid frame: %s "
                                           "(a client closes with %u).",
                                           during, s->error_detail, s->error_code);
        const char *why = sy_probe_ws_sess_hint(s);
        if (why)
            sy_probe_hint(f, "%s", why);
    } else if (w == W_FLOOD) {
        sy_probe_add(&P->rep, path, SY_PF_WS_FLOOD,
                     "During the %s the server sent more than %u MiB (%llu messages) the probe "
                     "did not ask for; the probe stopped reading.",
                     during, SY_PROBE_FLOOD_BYTES >> 20, (unsigned long long)s->rx_messages);
    } else if (w == W_CLOSED) {
        sy_probe_add(&P->rep, path, SY_PF_WS_CLOSED_BY_SERVER,
                     "During the %s the server closed the WebSocket with code %u%s%s%s.", during,
                     s->close_code, s->close_reason[0] ? " (\"" : "", s->close_reason,
                     s->close_reason[0] ? "\")" : "");
    } else if (w == W_EOF || w == W_ERR) {
        if (s->rx_bytes == 0)
            sy_probe_add(&P->rep, path, SY_PF_WS_CLOSED_AFTER_UPGRADE,
                         "The connection %s right after the 101, before any frame (during the "
                         "%s).",
                         w == W_EOF ? "closed" : "was reset", during);
        else
            sy_probe_add(&P->rep, path, SY_PF_WS_CLOSED_BY_SERVER,
                         "The connection %s during the %s without a close frame.",
                         w == W_EOF ? "closed" : "was reset", during);
    }
}

static void idle_phase(probe *P, const char *path, pconn *c, sy_probe_ws_sess *s)
{
    double t0 = probe_now_ms(), end = t0 + P->idle_s * 1000.0;
    uint64_t pings0 = s->rx_pings;
    wait_end w = pump(c, s, end, never);
    double secs = (probe_now_ms() - t0) / 1000.0;
    uint64_t pings = s->rx_pings - pings0;
    if (pings)
        sy_probe_add(&P->rep, path, SY_PF_WS_IDLE_PINGS,
                     "The server sent %llu ping(s) during %.1f s of idle (about one every %.1f s).",
                     (unsigned long long)pings, secs, secs / (double)pings);
    if (w == W_TIMEOUT) {
        sy_probe_add(&P->rep, path, SY_PF_WS_IDLE_SURVIVED,
                     "The connection stayed open through %d s of idle%s.", P->idle_s,
                     pings ? " (server pings kept it alive)" : " with no traffic at all");
        sy_probe_step_add(&P->rep, path, "idle", 1, secs * 1000.0, "survived %d s, %llu ping(s)",
                          P->idle_s, (unsigned long long)pings);
        return;
    }
    sy_probe_finding *f;
    if (w == W_CLOSED) {
        f = sy_probe_add(&P->rep, path, SY_PF_WS_IDLE_CUT,
                         "The server closed the idle connection after %.1f s with code %u%s%s%s.",
                         secs, s->close_code, s->close_reason[0] ? " (\"" : "", s->close_reason,
                         s->close_reason[0] ? "\")" : "");
        sy_probe_hint(f, "a close frame came: the WebSocket server itself has an idle timeout");
    } else if (w == W_EOF || w == W_ERR) {
        f = sy_probe_add(&P->rep, path, SY_PF_WS_IDLE_CUT,
                         "The idle connection was %s after %.1f s without a close frame.",
                         w == W_EOF ? "closed" : "reset", secs);
        sy_probe_hint(f, "%s%s%s",
                      "no close frame: something on the path (proxy, load balancer, NAT) cut "
                      "the TCP connection",
                      strstr(P->server_field, "nginx") ? "; nginx answered the handshake, so its "
                                                         "proxy_read_timeout is the likely cut"
                                                       : "",
                      pings ? "" : "; the server sent no pings that would have kept it alive");
    } else {
        session_end_finding(P, path, s, w, "idle period");
    }
    sy_probe_step_add(&P->rep, path, "idle", 0, secs * 1000.0, "cut after %.1f s", secs);
}

static void close_phase(probe *P, const char *path, pconn *c, sy_probe_ws_sess *s)
{
    static const uint8_t payload[] = {0x03, 0xe8, 'p', 'r', 'o', 'b', 'e', ' ', 'd', 'o', 'n', 'e'};
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    if (send_frame(c, s, SY_WS_OP_CLOSE, payload, sizeof(payload), 1, deadline) != 0) {
        sy_probe_step_add(&P->rep, path, "close", 0, -1, "could not send the close frame");
        return;
    }
    wait_end w = pump(c, s, deadline, got_close);
    double ms = probe_now_ms() - t0;
    if (w == W_DONE) {
        sy_probe_step_add(&P->rep, path, "close", 1, ms, "the server answered with code %u",
                          s->close_code);
        return;
    }
    if (w == W_PROTO || w == W_FLOOD) {
        session_end_finding(P, path, s, w, "close");
    } else {
        sy_probe_add(&P->rep, path, SY_PF_WS_CLOSE_NO_REPLY,
                     "The server %s instead of answering the close frame.",
                     w == W_TIMEOUT ? "sent no close frame within the timeout"
                                    : "dropped the connection");
    }
    sy_probe_step_add(&P->rep, path, "close", 0, ms, "no close frame back");
}

/* The session after a 101 on the main walk. */
static void session(probe *P, const char *path, pconn *c, sy_probe_ws_sess *s, double t_sent)
{
    char nonce[17], msg[64];
    random_hex(nonce, sizeof(nonce));
    int mlen = snprintf(msg, sizeof(msg), "switchyard probe %s", nonce);
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    (void)t_sent;
    if (send_frame(c, s, SY_WS_OP_TEXT, msg, (size_t)mlen, 1, deadline) != 0 ||
        send_frame(c, s, SY_WS_OP_PING, nonce, 8, 1, deadline) != 0) {
        sy_probe_add(&P->rep, path, SY_PF_WS_CLOSED_AFTER_UPGRADE,
                     "The probe could not send its first frame after the 101: %s.",
                     probe_err_text());
        return;
    }
    /* The message goes first, so an echo server answers it before the pong: when the pong
     * arrives without an echo, the endpoint does not echo (no need to wait longer). */
    double t_echo = -1;
    wait_end w;
    for (;;) {
        int had_echo = s->got_echo;
        w = pump(c, s, deadline, got_pong);
        if (!had_echo && s->got_echo && t_echo < 0)
            t_echo = probe_now_ms() - t0;
        if (w != W_DONE || s->got_pong)
            break;
    }
    double t_pong = probe_now_ms() - t0;
    if (s->got_echo && t_echo < 0)
        t_echo = t_pong;
    if (w == W_DONE && !s->got_echo) {
        /* Servers that answer pings in their protocol layer and echo from an application
         * task (Python websockets, most async stacks) pong first: give the echo a grace
         * period of a few pong round trips. */
        double grace = probe_now_ms() + SY_MAX(250.0, 4 * t_pong);
        wait_end w2 = pump(c, s, grace < deadline ? grace : deadline, got_echo_cond);
        if (s->got_echo)
            t_echo = probe_now_ms() - t0;
        if (w2 != W_DONE && w2 != W_TIMEOUT)
            w = w2;
    }
    uint64_t own = s->rx_messages - (s->got_echo ? 1u : 0u);
    if (own)
        sy_probe_add(&P->rep, path, SY_PF_WS_UNSOLICITED_MESSAGES,
                     "The server sent %llu message(s) of its own.", (unsigned long long)own);
    if (s->got_echo && s->echo_match)
        sy_probe_step_add(&P->rep, path, "round-trip", 1, t_echo, "echo matched%s",
                          s->echo_compressed ? " (compressed)" : "");
    else if (s->got_echo)
        sy_probe_step_add(&P->rep, path, "round-trip", 1, t_echo, "a reply came (not an echo)");
    if (w != W_DONE) {
        session_end_finding(P, path, s, w, "message round trip");
        if (w == W_TIMEOUT) {
            sy_probe_add(&P->rep, path, SY_PF_WS_NO_PONG,
                         "The server did not answer the probe's ping within %.1f s.",
                         P->timeout_ms / 1000.0);
            sy_probe_step_add(&P->rep, path, "ping", 0, t_pong, "no pong");
        }
        return;
    }
    if (!s->got_echo)
        sy_probe_add(&P->rep, path, SY_PF_WS_NO_ECHO,
                     "The endpoint answered the ping but sent no message back.");
    else if (!s->echo_match)
        sy_probe_add(&P->rep, path, SY_PF_WS_NO_ECHO,
                     "The first message back differs from the probe's message: not an echo "
                     "endpoint.");
    if (!s->pong_match)
        sy_probe_add(&P->rep, path, SY_PF_WS_PONG_MISMATCH,
                     "The pong's payload differs from the ping's \"%.8s\".", nonce);
    sy_probe_step_add(&P->rep, path, "ping", 1, t_pong, "pong %s",
                      s->pong_match ? "matched" : "differs");
    if (P->idle_s > 0) {
        idle_phase(P, path, c, s);
        if (s->got_close || s->error || s->flood)
            return;
    }
    close_phase(P, path, c, s);
}

/* Send a handshake, read the answer (and the body of a refusal). Returns 1 with the head in
 * g_buf (*len bytes), 0 when there is no answer (findings added). */
static int handshake(probe *P, const char *path, pconn *c, const sy_probe_ws_req *rq,
                     sy_probe_head *h, sy_probe_body *b, size_t *len, int main, double *ms,
                     size_t *req_len)
{
    size_t n = sy_probe_ws_request(g_req, sizeof(g_req), rq);
    *len = 0;
    if (req_len)
        *req_len = n;
    double t0 = probe_now_ms();
    if (!n || probe_write(c, g_req, n, t0 + P->timeout_ms) != 0) {
        if (n && probe_tls_refused(P, path, c, main, "request"))
            return 0;
        sy_probe_finding *f = sy_probe_add(&P->rep, path, SY_PF_NET_CLOSED,
                                           "Could not send the handshake (step: request): %s.",
                                           n ? probe_err_text() : "the request is too large");
        if (f && !main)
            f->sev = SY_PROBE_ERROR;
        return 0;
    }
    if (!probe_read_head(P, path, c, g_buf, sizeof(g_buf), len, h, main, "handshake"))
        return 0;
    *ms = probe_now_ms() - t0;
    memset(b, 0, sizeof(*b));
    if (h->status != 101)
        probe_read_body(P, path, c, g_buf, *len, h, b);
    return 1;
}

int probe_walk_ws(probe *P)
{
    const char *path = "websocket";
    pconn c;
    static const char alpn[] = "\x08http/1.1";
    if (probe_open(P, path, &c, alpn, sizeof(alpn) - 1, 1, 1) < 0) {
        probe_close(&c);
        return -1;
    }
    sy_probe_ws_req rq;
    char marker[17];
    random_hex(marker, sizeof(marker));
    fill_req(P, &rq, P->target, NULL);
    static sy_probe_head h;
    sy_probe_body b;
    sy_probe_ws_result res;
    size_t len = 0;
    double ms = 0;
    if (!handshake(P, path, &c, &rq, &h, &b, &len, 1, &ms, NULL)) {
        sy_probe_step_add(&P->rep, path, "handshake", 0, -1, "no answer");
        probe_close(&c);
        return -1;
    }
    const sy_field *server = sy_probe_head_get(&h, "server", NULL);
    if (server)
        sy_probe_quote(P->server_field, sizeof(P->server_field), server->value, server->value_len);
    sy_probe_ws_check(&P->rep, path, &rq, &h, &b, &res);
    char reason[64];
    sy_probe_quote(reason, sizeof(reason), h.reason, h.reason_len);
    sy_probe_step_add(&P->rep, path, "handshake", h.status == 101, ms, "HTTP/%d.%d %d %s%s%s%s%s",
                      h.major, h.minor, h.status, reason,
                      res.subprotocol[0] ? "; subprotocol " : "", res.subprotocol,
                      res.extensions[0] ? "; " : "", res.extensions);
    if (!res.switched) {
        probe_close(&c);
        return 0;
    }
    P->ws_switched = 1;
    sy_probe_ws_sess s;
    sy_probe_ws_sess_init(&s, res.deflate);
    if (len > h.head_len) /* frames that came with the 101 */
        sy_probe_ws_sess_feed(&s, (uint8_t *)g_buf + h.head_len, len - h.head_len);
    session(P, path, &c, &s, ms);
    sy_probe_ws_sess_free(&s);
    probe_close(&c);
    return 0;
}

/* ---- security checks ---- */

static void check_bad_version(probe *P)
{
    const char *path = "security";
    pconn c;
    if (probe_open(P, path, &c, "\x08http/1.1", 9, 0, 0) < 0) {
        probe_close(&c);
        return;
    }
    sy_probe_ws_req rq;
    fill_req(P, &rq, P->target, NULL);
    rq.version = "99";
    static sy_probe_head h;
    sy_probe_body b;
    size_t len;
    double ms;
    if (handshake(P, path, &c, &rq, &h, &b, &len, 0, &ms, NULL)) {
        const sy_field *v = sy_probe_head_get(&h, "sec-websocket-version", NULL);
        if (h.status == 101) {
            sy_probe_add(&P->rep, path, SY_PF_SEC_BAD_VERSION_ACCEPTED,
                         "The server switched (101) for \"Sec-WebSocket-Version: 99\".");
        } else if (h.status != 426 || !v) {
            sy_probe_add(&P->rep, path, SY_PF_SEC_BAD_VERSION_NO_HINT,
                         "The server refused \"Sec-WebSocket-Version: 99\" with %d%s.", h.status,
                         v ? "" : " and no Sec-WebSocket-Version field");
        }
        sy_probe_step_add(&P->rep, path, "bad-version", h.status != 101, ms,
                          "Sec-WebSocket-Version: 99 -> %d", h.status);
    }
    probe_close(&c);
}

/* The server processed the unmasked frame: it echoed it, or answered the ping after it
 * (messages it pushes on its own say nothing). */
static int got_reply(const sy_probe_ws_sess *s)
{
    return s->got_pong || (s->got_echo && s->echo_match);
}

static void check_unmasked(probe *P)
{
    const char *path = "security";
    pconn c;
    if (probe_open(P, path, &c, "\x08http/1.1", 9, 0, 0) < 0) {
        probe_close(&c);
        return;
    }
    sy_probe_ws_req rq;
    fill_req(P, &rq, P->target, NULL);
    rq.offer_deflate = 0;
    static sy_probe_head h;
    sy_probe_body b;
    size_t len;
    double ms;
    if (!handshake(P, path, &c, &rq, &h, &b, &len, 0, &ms, NULL) || h.status != 101) {
        probe_close(&c);
        return;
    }
    sy_probe_ws_sess s;
    sy_probe_ws_sess_init(&s, 0);
    if (len > h.head_len)
        sy_probe_ws_sess_feed(&s, (uint8_t *)g_buf + h.head_len, len - h.head_len);
    uint64_t before = s.rx_messages;
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    /* An unmasked text frame, then a masked ping: a server that processed the first frame
     * answers the ping (or echoes the text); a conforming one has already failed the
     * connection (RFC 6455 §5.1). */
    if (send_frame(&c, &s, SY_WS_OP_TEXT, "unmasked", 8, 0, deadline) == 0 &&
        send_frame(&c, &s, SY_WS_OP_PING, "after", 5, 1, deadline) == 0) {
        s.rx_messages = before;
        wait_end w = pump(&c, &s, deadline, got_reply);
        double dt = probe_now_ms() - t0;
        if (w == W_DONE) {
            sy_probe_add(&P->rep, path, SY_PF_SEC_UNMASKED_ACCEPTED,
                         "After an unmasked text frame the server went on (%s) instead of "
                         "failing the connection.",
                         s.got_pong ? "it answered the next ping" : "it sent a message back");
            sy_probe_step_add(&P->rep, path, "unmasked", 0, dt, "accepted");
        } else if (w == W_CLOSED || w == W_EOF || w == W_ERR || w == W_PROTO) {
            sy_probe_step_add(&P->rep, path, "unmasked", 1, dt, "refused (%s%u)",
                              w == W_CLOSED ? "close " : "connection dropped", s.close_code);
        } else {
            sy_probe_step_add(&P->rep, path, "unmasked", -1, dt, "no answer either way");
        }
    }
    sy_probe_ws_sess_free(&s);
    probe_close(&c);
}

static void check_h2c_smuggling(probe *P)
{
    const char *path = "security";
    pconn c;
    if (probe_open(P, path, &c, "\x08http/1.1", 9, 0, 0) < 0) {
        probe_close(&c);
        return;
    }
    static const uint16_t ids[] = {3, 4};
    static const uint32_t vals[] = {100, 65535};
    char b64[64];
    sy_probe_h2_settings_b64(b64, sizeof(b64), ids, vals, 2);
    /* Cleartext: leave HTTP2-Settings out of Connection, as smuggling tools do. Over TLS:
     * a well-formed upgrade, which must still be refused. */
    size_t n = sy_probe_h2c_request(g_req, sizeof(g_req), P->hostport, P->target, b64, P->tls);
    static sy_probe_head h;
    size_t len = 0;
    double t0 = probe_now_ms();
    if (n && probe_write(&c, g_req, n, t0 + P->timeout_ms) == 0 &&
        probe_read_head(P, path, &c, g_buf, sizeof(g_buf), &len, &h, 0, "h2c upgrade")) {
        int sw = sy_probe_h2c_check_101(&P->rep, path, &h, 1, P->tls);
        sy_probe_step_add(&P->rep, path, "h2c-smuggle", !sw, probe_now_ms() - t0, "%s -> %d",
                          P->tls ? "Upgrade: h2c over TLS" : "Upgrade: h2c without HTTP2-Settings",
                          h.status);
    }
    probe_close(&c);
}

void probe_walk_security(probe *P)
{
    check_bad_version(P);
    check_unmasked(P);
    check_h2c_smuggling(P);
}

/* ---- reflect ---- */

void probe_walk_reflect(probe *P)
{
    const char *path = "reflect";
    pconn c;
    if (probe_open(P, path, &c, "\x08http/1.1", 9, 0, 0) < 0) {
        probe_close(&c);
        return;
    }
    char marker[17];
    random_hex(marker, sizeof(marker));
    sy_probe_ws_req rq;
    fill_req(P, &rq, P->reflect_path, marker);
    static sy_probe_head h;
    sy_probe_body b;
    size_t len, req_len = 0;
    double ms;
    static char sent[8192];
    int ok = handshake(P, path, &c, &rq, &h, &b, &len, 0, &ms, &req_len);
    memcpy(sent, g_req, req_len);
    int reflected = 0;
    if (ok && h.status == 200 && sy_probe_head_get(&h, "x-switchyard-reflect", NULL) &&
        b.snip_len) {
        /* The snippet holds the start of the reflection: the head is what matters, and the
         * probe's request has no body. */
        const sy_field *server = sy_probe_head_get(&h, "server", NULL);
        char sv[96] = "";
        if (server)
            sy_probe_quote(sv, sizeof(sv), server->value, server->value_len);
        reflected = sy_probe_reflect_check(&P->rep, path, b.snippet, b.snip_len, sent, req_len,
                                           marker, server ? sv : NULL);
    }
    if (reflected) {
        sy_probe_step_add(&P->rep, path, "reflect", 1, ms, "%s reflected the request",
                          P->reflect_path);
    } else {
        if (P->reflect_explicit || !P->ws_switched)
            sy_probe_add(&P->rep, path, SY_PF_PROXY_REFLECT_UNAVAILABLE,
                         "%s did not reflect the probe's request (%s %d).", P->reflect_path,
                         ok ? "status" : "no answer", ok ? h.status : 0);
        sy_probe_step_add(&P->rep, path, "reflect", -1, -1, "not available");
    }
    probe_close(&c);
}
