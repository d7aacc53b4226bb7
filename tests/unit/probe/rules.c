/* The catalogue and report (src/probe/findings.c), the reflect comparison (reflect.c), and
 * the TLS and HTTP/2 rules (tls.c, h2.c). */
#include "harness.h"
#include "probe/probe.h"

#include <stdio.h>

static sy_probe_report rep;

TEST(catalogue_complete)
{
    for (int i = 0; i < SY_PF__COUNT; i++) {
        const sy_probe_def *d = sy_probe_def_of((sy_probe_id)i);
        CHECK(d->id && d->title && d->causes && d->fix && d->fix[0]);
        CHECK(sy_probe_def_find(d->id) == d); /* unique */
        for (const char *c = d->id; *c; c++)
            CHECK((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_');
    }
    CHECK(sy_probe_def_find("NOPE") == NULL);
    CHECK(!strcmp(sy_probe_def_of(SY_PF_WS_ACCEPT_MISMATCH)->id, "WS_ACCEPT_MISMATCH"));
}

TEST(report_and_exit_codes)
{
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_exit_code(&rep), 0);
    sy_probe_add(&rep, "x", SY_PF_WS_NO_ECHO, "note");
    CHECK_EQ(sy_probe_exit_code(&rep), 0);
    sy_probe_add(&rep, "x", SY_PF_WS_NO_PONG, "warn");
    CHECK_EQ(sy_probe_exit_code(&rep), 1);
    sy_probe_add(&rep, "x", SY_PF_NET_TIMEOUT, "fatal");
    CHECK_EQ(sy_probe_exit_code(&rep), 2);
    CHECK(sy_probe_has(&rep, "x", SY_PF_WS_NO_PONG) && !sy_probe_has(&rep, "y", SY_PF_WS_NO_PONG));
    for (int i = 0; i < 100; i++)
        sy_probe_add(&rep, "x", SY_PF_WS_NO_ECHO, "%d", i);
    CHECK_EQ(rep.nfindings, SY_PROBE_MAX_FINDINGS);
    CHECK(rep.dropped > 0);
    for (int i = 0; i < 100; i++)
        sy_probe_step_add(&rep, "x", "s", 1, 1.0, "%d", i);
    CHECK_EQ(rep.nsteps, SY_PROBE_MAX_STEPS);
}

static const char sent[] = "GET /echo HTTP/1.1\r\nHost: front.test\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: k\r\n"
                           "Sec-WebSocket-Version: 13\r\nX-Switchyard-Probe: m1\r\n"
                           "X-Switchyard-Reflect-Token: t\r\n\r\n";

TEST(reflect_identical_is_silent)
{
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_reflect_check(&rep, "reflect", sent, sizeof(sent) - 1, sent, sizeof(sent) - 1,
                                    "m1", NULL),
             1);
    CHECK_EQ(rep.nfindings, 0);
    /* a reflection of some other request says nothing */
    CHECK_EQ(sy_probe_reflect_check(&rep, "reflect", sent, sizeof(sent) - 1, sent, sizeof(sent) - 1,
                                    "m2", NULL),
             0);
    CHECK_EQ(rep.nfindings, 0);
}

TEST(reflect_names_the_stripping_hop)
{
    static const char got[] = "GET /echo HTTP/1.0\r\nHost: backend:8080\r\nConnection: close\r\n"
                              "Sec-WebSocket-Key: k\r\nX-Switchyard-Probe: m1\r\n"
                              "X-Forwarded-For: 10.0.0.1\r\n\r\n";
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_reflect_check(&rep, "reflect", got, sizeof(got) - 1, sent, sizeof(sent) - 1,
                                    "m1", "nginx/1.22.1"),
             1);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_HTTP10_UPSTREAM));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_STRIPPED_UPGRADE));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_STRIPPED_CONNECTION));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_STRIPPED_HEADERS));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_REWROTE_HEADERS));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_PROXY_ADDED_HEADERS));
    for (size_t i = 0; i < rep.nfindings; i++) {
        const sy_probe_finding *f = &rep.findings[i];
        if (f->id == SY_PF_PROXY_STRIPPED_UPGRADE)
            CHECK(strstr(f->hint, "nginx"));
        if (f->id == SY_PF_PROXY_STRIPPED_HEADERS)
            CHECK(strstr(f->msg, "Sec-WebSocket-Version") && !strstr(f->msg, "Token"));
        if (f->id == SY_PF_PROXY_ADDED_HEADERS)
            CHECK(strstr(f->msg, "X-Forwarded-For"));
        if (f->id == SY_PF_PROXY_REWROTE_HEADERS)
            CHECK(strstr(f->msg, "front.test -> backend:8080"));
    }
}

static sy_probe_tls_info tls_ok(void)
{
    sy_probe_tls_info t;
    memset(&t, 0, sizeof(t));
    t.version = 0x0304;
    snprintf(t.host, sizeof(t.host), "example.test");
    snprintf(t.subject, sizeof(t.subject), "/CN=example.test");
    snprintf(t.alpn_offered, sizeof(t.alpn_offered), "h2,http/1.1");
    snprintf(t.alpn, sizeof(t.alpn), "h2");
    t.now = 1700000000;
    t.not_after = t.now + 90 * 86400;
    t.host_ok = 1;
    return t;
}

TEST(tls_rules)
{
    sy_probe_tls_info t = tls_ok();
    sy_probe_report_init(&rep);
    sy_probe_tls_check(&rep, "tls", &t);
    CHECK_EQ(rep.nfindings, 0);
    t.verify = SY_PROBE_TLS_EXPIRED;
    t.not_after = t.now - 3 * 86400;
    t.host_ok = 0;
    sy_probe_tls_check(&rep, "tls", &t);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_CERT_EXPIRED));
    CHECK(strstr(rep.findings[0].msg, "3 days"));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_CERT_NAME_MISMATCH));
    CHECK_EQ(sy_probe_exit_code(&rep), 1);
    sy_probe_report_init(&rep);
    t = tls_ok();
    t.verify = SY_PROBE_TLS_SELF_SIGNED;
    t.insecure = 1;
    sy_probe_tls_check(&rep, "tls", &t);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_CERT_UNTRUSTED));
    CHECK_EQ(sy_probe_exit_code(&rep), 0); /* --insecure: a note */
    sy_probe_report_init(&rep);
    t = tls_ok();
    t.not_after = t.now + 5 * 86400;
    t.version = 0x0301;
    snprintf(t.alpn, sizeof(t.alpn), "spdy/3");
    sy_probe_tls_check(&rep, "tls", &t);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_CERT_EXPIRES_SOON));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_OLD_VERSION));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_TLS_ALPN_UNEXPECTED));
}

TEST(tls_alpn_in_server_hello)
{
    /* a TLS 1.2 ServerHello: version, random, a 2-byte session ID, suite, compression, then
     * renegotiation_info and ALPN "foo" */
    uint8_t m[128];
    size_t n = 0;
    m[n++] = 2;
    n += 3;
    m[n++] = 3, m[n++] = 3;
    memset(m + n, 0xaa, 32), n += 32;
    m[n++] = 2, m[n++] = 0x11, m[n++] = 0x22;
    m[n++] = 0xc0, m[n++] = 0x2f, m[n++] = 0;
    static const uint8_t ext[] = {0, 15, 0xff, 1, 0, 1, 0, 0, 16, 0, 6, 0, 4, 3, 'f', 'o', 'o'};
    memcpy(m + n, ext, sizeof(ext));
    n += sizeof(ext);
    m[1] = 0, m[2] = 0, m[3] = (uint8_t)(n - 4);
    char out[32];
    CHECK_EQ(sy_probe_tls_alpn_in_hello(m, n, out, sizeof(out)), 1);
    CHECK(!strcmp(out, "foo"));
    CHECK(!sy_probe_tls_alpn_offered("h2,http/1.1", out));
    CHECK(sy_probe_tls_alpn_offered("h2,http/1.1", "http/1.1"));
    CHECK(sy_probe_tls_alpn_offered("h2,http/1.1", "h2"));
    CHECK(!sy_probe_tls_alpn_offered("h2,http/1.1", "h"));
    /* cut anywhere: never read past the end, never a protocol */
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ(sy_probe_tls_alpn_in_hello(m, cut, out, sizeof(out)), 0);
    /* EncryptedExtensions (TLS 1.3) with ALPN h2 */
    static const uint8_t ee[] = {8, 0, 0, 11, 0, 9, 0, 16, 0, 5, 0, 3, 2, 'h', '2'};
    CHECK_EQ(sy_probe_tls_alpn_in_hello(ee, sizeof(ee), out, sizeof(out)), 1);
    CHECK(!strcmp(out, "h2"));
    /* other messages and no ALPN */
    static const uint8_t cert[] = {11, 0, 0, 0};
    CHECK_EQ(sy_probe_tls_alpn_in_hello(cert, sizeof(cert), out, sizeof(out)), 0);
    static const uint8_t ee0[] = {8, 0, 0, 2, 0, 0};
    CHECK_EQ(sy_probe_tls_alpn_in_hello(ee0, sizeof(ee0), out, sizeof(out)), 0);
}

TEST(h2_settings_and_upgrade_request)
{
    char b64[64], req[512];
    static const uint16_t ids[] = {3, 4};
    static const uint32_t vals[] = {100, 65535};
    /* 00 03 00 00 00 64 00 04 00 00 ff ff */
    CHECK(sy_probe_h2_settings_b64(b64, sizeof(b64), ids, vals, 2) == 16);
    CHECK(!strcmp(b64, "AAMAAABkAAQAAP__"));
    CHECK_EQ(sy_probe_h2_settings_b64(b64, 10, ids, vals, 2), 0);
    CHECK(sy_probe_h2_settings_b64(b64, sizeof(b64), ids, vals, 1) == 8);
    CHECK(!strcmp(b64, "AAMAAABk"));
    CHECK(sy_probe_h2c_request(req, sizeof(req), "h", "/", b64, 1));
    CHECK(strstr(req, "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"));
    CHECK(sy_probe_h2c_request(req, sizeof(req), "h", "/", b64, 0));
    CHECK(strstr(req, "Connection: Upgrade\r\nUpgrade: h2c\r\n"));
}

static int check_101(const char *resp, int security, int tls)
{
    static sy_probe_head h;
    const char *detail;
    if (sy_probe_head_parse(resp, strlen(resp), 0, &h, &detail) <= 0)
        abort();
    return sy_probe_h2c_check_101(&rep, "h2c", &h, security, tls);
}

TEST(h2c_101_rules)
{
    static const char ok101[] =
        "HTTP/1.1 101 Switching\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    sy_probe_report_init(&rep);
    CHECK_EQ(check_101(ok101, 0, 0), 1);
    CHECK_EQ(rep.nfindings, 0);
    CHECK_EQ(check_101("HTTP/1.1 200 OK\r\n\r\n", 0, 0), 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2C_UPGRADE_IGNORED));
    sy_probe_report_init(&rep);
    CHECK_EQ(check_101("HTTP/1.1 400 No\r\n\r\n", 1, 0), 0);
    CHECK_EQ(rep.nfindings, 0); /* a refused smuggling attempt is how it should be */
    check_101(ok101, 1, 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_SEC_H2C_WITHOUT_SETTINGS_TOKEN));
    check_101(ok101, 1, 1);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_SEC_H2C_OVER_TLS));
    sy_probe_report_init(&rep);
    check_101("HTTP/1.1 101 X\r\nUpgrade: h2c\r\n\r\n", 0, 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2C_UPGRADE_INVALID));
}

TEST(h2_event_rules)
{
    sy_probe_h2 h;
    sy_probe_report_init(&rep);
    sy_probe_h2_init(&h);
    CHECK_EQ(sy_probe_h2_check(&rep, "h2c-prior", SY_PROBE_H2_PRIOR, &h), 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_PRIOR_KNOWLEDGE_REFUSED));
    sy_probe_h2_init(&h);
    h.got_settings = 1;
    h.status = 200;
    CHECK_EQ(sy_probe_h2_check(&rep, "h2", SY_PROBE_H2_ALPN, &h), 1);
    CHECK_EQ(sy_probe_h2_check(&rep, "ws", SY_PROBE_H2_WS, &h), 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_WS_NOT_ADVERTISED));
    sy_probe_h2_setting(&h, SY_PROBE_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1);
    h.status = 0;
    h.rst = 1;
    h.rst_code = 7;
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_h2_check(&rep, "ws", SY_PROBE_H2_WS, &h), 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_WS_REJECTED));
    CHECK(strstr(rep.findings[0].msg, "REFUSED_STREAM"));
    sy_probe_h2_init(&h);
    h.got_settings = 1;
    h.goaway = 1;
    h.goaway_code = 1;
    sy_probe_report_init(&rep);
    sy_probe_h2_check(&rep, "h2", SY_PROBE_H2_ALPN, &h);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_GOAWAY));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_NO_RESPONSE));
    CHECK(!strcmp(sy_probe_h2_error_name(13), "HTTP_1_1_REQUIRED"));
    CHECK(!strcmp(sy_probe_h2_error_name(99), "unknown error code"));
}

/* A raw HTTP/2 frame into out; returns its length. */
static size_t h2frame(uint8_t *out, int type, int flags, uint32_t stream, const void *p, size_t n)
{
    out[0] = (uint8_t)(n >> 16);
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    out[3] = (uint8_t)type;
    out[4] = (uint8_t)flags;
    out[5] = (uint8_t)(stream >> 24);
    out[6] = (uint8_t)(stream >> 16);
    out[7] = (uint8_t)(stream >> 8);
    out[8] = (uint8_t)stream;
    if (n)
        memcpy(out + 9, p, n);
    return 9 + n;
}

static size_t settings1(uint8_t *out, uint16_t id, uint32_t v)
{
    uint8_t e[6] = {(uint8_t)(id >> 8), (uint8_t)id,       (uint8_t)(v >> 24),
                    (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return h2frame(out, 4, 0, 0, e, 6);
}

/* Feed whole and byte by byte: the scanner must see the same. */
static void scan(sy_probe_h2 *h, const uint8_t *p, size_t n, int bytewise)
{
    if (!bytewise) {
        sy_probe_h2_scan_feed(h, p, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        sy_probe_h2_scan_feed(h, p + i, 1);
}

TEST(h2_scan_settings_values)
{
    static const struct {
        uint16_t id;
        uint32_t v;
        const char *says; /* NULL: valid */
    } cases[] = {
        {2, 2, "SETTINGS_ENABLE_PUSH = 2"},
        {2, 0, NULL},
        {2, 1, NULL}, /* RFC 7540 allowed it: no alarm */
        {4, 0x80000000u, "SETTINGS_INITIAL_WINDOW_SIZE = 2147483648"},
        {4, 0x7fffffffu, NULL},
        {5, 1000, "SETTINGS_MAX_FRAME_SIZE = 1000"},
        {5, 16777216, "SETTINGS_MAX_FRAME_SIZE = 16777216"},
        {5, 16384, NULL},
        {8, 2, "SETTINGS_ENABLE_CONNECT_PROTOCOL = 2"},
        {8, 1, NULL},
        {99, 12345, NULL}, /* unknown settings are ignored */
    };
    uint8_t buf[128];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
            sy_probe_h2 h;
            sy_probe_h2_init(&h);
            h.max_stream = h.expect_stream = 1;
            size_t n = h2frame(buf, 4, 0, 0, NULL, 0); /* an empty SETTINGS first */
            n += settings1(buf + n, cases[i].id, cases[i].v);
            scan(&h, buf, n, bytewise);
            CHECK_EQ(h.first_type, 4);
            if (!cases[i].says) {
                CHECK(!h.bad_setting[0] && !sy_probe_h2_broken(&h));
                continue;
            }
            CHECK(strstr(h.bad_setting, cases[i].says) && sy_probe_h2_broken(&h));
            h.got_settings = 0;
            h.proto_error = 1; /* what nghttp2 says too: the setting is what gets named */
            snprintf(h.proto_detail, sizeof(h.proto_detail), "Protocol error");
            sy_probe_report_init(&rep);
            CHECK_EQ(sy_probe_h2_check(&rep, "h2c-upgrade", SY_PROBE_H2_UPGRADE, &h), 0);
            CHECK_EQ(rep.nfindings, 1);
            CHECK(rep.findings[0].id == SY_PF_H2_PROTOCOL_ERROR);
            CHECK(strstr(rep.findings[0].msg, cases[i].says));
        }
    }
    /* framing of SETTINGS itself */
    sy_probe_h2 h;
    sy_probe_h2_init(&h);
    uint8_t five[5] = {0};
    size_t n = h2frame(buf, 4, 0, 0, five, 5);
    scan(&h, buf, n, 0);
    CHECK(strstr(h.bad_setting, "not a multiple of 6"));
    sy_probe_h2_init(&h);
    n = h2frame(buf, 4, 0, 3, NULL, 0);
    scan(&h, buf, n, 0);
    CHECK(strstr(h.bad_setting, "on stream 3"));
}

TEST(h2_scan_first_frame_and_streams)
{
    uint8_t buf[128];
    sy_probe_h2 h;
    /* HEADERS before SETTINGS */
    sy_probe_h2_init(&h);
    h.max_stream = h.expect_stream = 1;
    size_t n = h2frame(buf, 1, 5, 1, "\x88", 1);
    n += h2frame(buf + n, 4, 0, 0, NULL, 0);
    scan(&h, buf, n, 1);
    CHECK_EQ(h.first_type, 1);
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_h2_check(&rep, "h2c-upgrade", SY_PROBE_H2_UPGRADE, &h), 0);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_H2_NO_SETTINGS));
    CHECK(strstr(rep.findings[0].msg, "HEADERS (type 1), not SETTINGS"));
    /* HTTP/1.1 after the 101 */
    sy_probe_h2_init(&h);
    scan(&h, (const uint8_t *)"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38, 0);
    CHECK(sy_probe_h2_broken(&h));
    sy_probe_report_init(&rep);
    sy_probe_h2_check(&rep, "h2c-upgrade", SY_PROBE_H2_UPGRADE, &h);
    CHECK_EQ(rep.nfindings, 1);
    CHECK(strstr(rep.findings[0].msg, "(\"HTTP/1.1 200 OK\")"));
    /* an answer on stream 3 when the probe only opened stream 1 */
    sy_probe_h2_init(&h);
    h.max_stream = h.expect_stream = 1;
    n = h2frame(buf, 4, 0, 0, NULL, 0);
    n += h2frame(buf + n, 1, 5, 3, "\x88", 1);
    scan(&h, buf, n, 0);
    h.got_settings = 1;
    CHECK_EQ(h.stray_stream, 3);
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_h2_check(&rep, "h2c-upgrade", SY_PROBE_H2_UPGRADE, &h), 0);
    CHECK_EQ(rep.nfindings, 1);
    CHECK(strstr(rep.findings[0].msg, "stream 3") && strstr(rep.findings[0].hint, "stream 1"));
    /* a pushed stream (even) and the answer on our own stream are fine */
    sy_probe_h2_init(&h);
    h.max_stream = h.expect_stream = 3;
    n = h2frame(buf, 4, 0, 0, NULL, 0);
    n += h2frame(buf + n, 1, 4, 2, "\x88", 1);
    n += h2frame(buf + n, 1, 5, 3, "\x88", 1);
    n += h2frame(buf + n, 0, 1, 1, "x", 1);
    scan(&h, buf, n, 1);
    CHECK_EQ(h.stray_stream, 0);
    CHECK(!sy_probe_h2_broken(&h));
}

TEST(h2_goaway_before_answering)
{
    sy_probe_h2 h;
    sy_probe_h2_init(&h);
    h.got_settings = 1;
    h.expect_stream = 1;
    h.goaway = 1;
    h.goaway_code = 0;
    h.goaway_last = 0;
    h.rst = 1; /* the library closes the stream with REFUSED_STREAM: not the server's reset */
    h.rst_code = 7;
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_h2_check(&rep, "h2c-upgrade", SY_PROBE_H2_UPGRADE, &h), 0);
    CHECK_EQ(rep.nfindings, 1);
    CHECK(rep.findings[0].id == SY_PF_H2_GOAWAY);
    CHECK(strstr(rep.findings[0].msg, "NO_ERROR (0) before answering"));
    CHECK(strstr(rep.findings[0].hint, "last stream ID is 0"));
    /* a graceful GOAWAY that covers the answered stream is no problem */
    sy_probe_h2_init(&h);
    h.got_settings = 1;
    h.expect_stream = 1;
    h.goaway = 1;
    h.goaway_last = 1;
    h.status = 200;
    sy_probe_report_init(&rep);
    CHECK_EQ(sy_probe_h2_check(&rep, "h2", SY_PROBE_H2_ALPN, &h), 1);
    CHECK_EQ(rep.nfindings, 0);
    CHECK(!strcmp(sy_probe_h2_frame_name(9), "CONTINUATION"));
    CHECK(!strcmp(sy_probe_h2_frame_name(42), "an unknown frame"));
}

int main(void)
{
    RUN(catalogue_complete);
    RUN(report_and_exit_codes);
    RUN(reflect_identical_is_silent);
    RUN(reflect_names_the_stripping_hop);
    RUN(tls_rules);
    RUN(tls_alpn_in_server_hello);
    RUN(h2_settings_and_upgrade_request);
    RUN(h2c_101_rules);
    RUN(h2_event_rules);
    RUN(h2_scan_settings_values);
    RUN(h2_scan_first_frame_and_streams);
    RUN(h2_goaway_before_answering);
    return sy_t_summary();
}
