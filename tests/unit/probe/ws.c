/* The WebSocket handshake checks of the probe (src/probe/ws.c): the request, every field of
 * the answer, the extension grammar, and the causes named for refusals. */
#include "harness.h"
#include "probe/probe.h"
#include "ws/handshake.h"

#include <stdio.h>

static sy_probe_report rep;
static sy_probe_head h;
static sy_probe_ws_req rq;
static sy_probe_ws_result res;
static char resp[4096];

static void setup(void)
{
    memset(&rq, 0, sizeof(rq));
    rq.host = "example.test";
    rq.target = "/chat";
    rq.version = "13";
    rq.offer_deflate = 1;
    memcpy(rq.key, "dGhlIHNhbXBsZSBub25jZQ==", 25);
    sy_probe_report_init(&rep);
}

/* Check a response; "%A" in fmt stands for the right Sec-WebSocket-Accept. */
static void check(const char *fmt, const char *body)
{
    char acc[29];
    sy_ws_accept_key(rq.key, strlen(rq.key), acc);
    const char *a = strstr(fmt, "%A");
    if (a)
        snprintf(resp, sizeof(resp), "%.*s%s%s", (int)(a - fmt), fmt, acc, a + 2);
    else
        snprintf(resp, sizeof(resp), "%s", fmt);
    const char *detail;
    ssize_t n = sy_probe_head_parse(resp, strlen(resp), 0, &h, &detail);
    if (n <= 0)
        abort();
    sy_probe_body b;
    sy_probe_body_init(&b, &h, 0);
    if (body)
        sy_probe_body_feed(&b, (const uint8_t *)body, strlen(body));
    sy_probe_ws_check(&rep, "websocket", &rq, &h, &b, &res);
}

#define OK101 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

TEST(rfc_example_is_clean)
{
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\n\r\n", NULL);
    CHECK_EQ(rep.nfindings, 0);
    CHECK(res.switched && !res.deflate);
    /* the RFC 6455 §1.3 example value */
    CHECK(strstr(resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    setup();
    check("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
          "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Extensions: permessage-deflate; "
          "server_no_context_takeover; client_max_window_bits=\"10\"\r\n\r\n",
          NULL);
    CHECK_EQ(rep.nfindings, 0);
    CHECK(res.deflate && res.server_no_context_takeover);
}

TEST(request_fields)
{
    setup();
    const char *subs[] = {"chat", "superchat"};
    rq.subprotocols[0] = subs[0];
    rq.subprotocols[1] = subs[1];
    rq.nsub = 2;
    rq.origin = "https://example.test";
    const char *extra[] = {"Cookie: a=b"};
    rq.extra = extra;
    rq.nextra = 1;
    rq.marker = "m1";
    char out[1024];
    size_t n = sy_probe_ws_request(out, sizeof(out), &rq);
    CHECK(n > 0 && n == strlen(out));
    CHECK(strstr(out, "GET /chat HTTP/1.1\r\nHost: example.test\r\n"));
    CHECK(strstr(out, "Sec-WebSocket-Protocol: chat, superchat\r\n"));
    CHECK(strstr(out, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
    CHECK(strstr(out, "Origin: https://example.test\r\n"));
    CHECK(strstr(out, "X-Switchyard-Probe: m1\r\nCookie: a=b\r\n\r\n"));
    CHECK_EQ(sy_probe_ws_request(out, 100, &rq), 0);
}

TEST(accept_problems)
{
    setup();
    check(OK101 "\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_ACCEPT_MISSING));
    setup();
    check(OK101 "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_ACCEPT_MISMATCH));
    CHECK(strstr(rep.findings[0].hint, "another key"));
    setup();
    check(OK101 "Sec-WebSocket-Accept: b37a4f2cc0624f1690f64606cf385945b2bec4ea\r\n\r\n", NULL);
    CHECK(strstr(rep.findings[0].hint, "hex"));
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Accept: %A\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_ACCEPT_MISMATCH));
}

TEST(upgrade_and_connection)
{
    setup();
    check("HTTP/1.1 101 X\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %A\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_UPGRADE_MISSING));
    setup();
    check("HTTP/1.1 101 X\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
          "%A\r\n\r\n",
          NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_UPGRADE_WRONG) && !res.switched);
    setup();
    check("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
          "Sec-WebSocket-Accept: %A\r\n\r\n",
          NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_CONNECTION_MISSING));
    CHECK(strstr(rep.findings[0].msg, "keep-alive"));
    setup();
    check("HTTP/1.0 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 0\r\n"
          "Sec-WebSocket-Accept: %A\r\n\r\n",
          NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_HTTP_VERSION_10));
    CHECK(sy_probe_has(&rep, NULL, SY_PF_HTTP_1XX_FRAMING));
}

TEST(subprotocols)
{
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Protocol: chat\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_SUBPROTOCOL_UNSOLICITED));
    setup();
    rq.subprotocols[0] = "chat";
    rq.nsub = 1;
    check(OK101 "Sec-WebSocket-Accept: %A\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_SUBPROTOCOL_NOT_SELECTED));
    setup();
    rq.subprotocols[0] = "chat";
    rq.nsub = 1;
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Protocol: chat\r\n\r\n", NULL);
    CHECK_EQ(rep.nfindings, 0);
    CHECK(!strcmp(res.subprotocol, "chat"));
    setup();
    rq.subprotocols[0] = "chat";
    rq.nsub = 1;
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Protocol: Chat\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_SUBPROTOCOL_UNSOLICITED)); /* case-sensitive */
    setup();
    rq.subprotocols[0] = "chat";
    rq.nsub = 1;
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Protocol: chat, chat\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_SUBPROTOCOL_UNSOLICITED));
}

TEST(extension_grammar)
{
    const char *why;
    int nc = 0;
    static const char *const good[] = {
        "permessage-deflate",
        " permessage-deflate ; server_max_window_bits=8 ; client_max_window_bits = 15 ",
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=\"12\"",
        ", permessage-deflate,",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++)
        CHECK_EQ(sy_probe_ws_ext_check(good[i], strlen(good[i]), 1, &nc, &why), 1);
    static const char *const bad[] = {
        "permessage-deflate; server_max_window_bits=20",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; x=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate junk",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        CHECK_EQ(sy_probe_ws_ext_check(bad[i], strlen(bad[i]), 1, &nc, &why), -1);
    CHECK_EQ(sy_probe_ws_ext_check("x-webkit-deflate-frame", 22, 1, &nc, &why), -2);
    CHECK_EQ(sy_probe_ws_ext_check("permessage-deflate", 18, 0, &nc, &why), -2);
    CHECK_EQ(sy_probe_ws_ext_check(" , ", 3, 1, &nc, &why), 0);
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Extensions: permessage-deflate; "
                "server_max_window_bits=20\r\n\r\n",
          NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_EXTENSION_INVALID));
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Extensions: foo\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_WS_EXTENSION_UNSOLICITED));
}

TEST(refusals_named)
{
    static const struct {
        const char *resp;
        sy_probe_id id;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n",
         SY_PF_WS_NOT_SWITCHED_200},
        {"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", SY_PF_WS_REFUSED_400},
        {"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
         SY_PF_WS_UPGRADE_REQUIRED_426},
        {"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n",
         SY_PF_WS_REDIRECT},
        {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", SY_PF_WS_FORBIDDEN},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", SY_PF_WS_NOT_FOUND},
        {"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", SY_PF_WS_BAD_GATEWAY},
        {"HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n", SY_PF_WS_UNEXPECTED_STATUS},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        setup();
        check(cases[i].resp, NULL);
        CHECK(sy_probe_has(&rep, "websocket", cases[i].id));
        CHECK(!res.switched);
    }
    CHECK(strstr(rep.findings[0].msg, "418"));
    /* the 301 to https says to use wss:// */
    setup();
    check(cases[3].resp, NULL);
    CHECK(strstr(rep.findings[0].hint, "wss://"));
    /* a 426 asking for another version names it */
    setup();
    check("HTTP/1.1 426 X\r\nSec-WebSocket-Version: 8\r\nContent-Length: 0\r\n\r\n", NULL);
    CHECK(strstr(rep.findings[0].hint, "version 8"));
}

TEST(wire_hints_from_the_answer)
{
    setup();
    check("HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Length: 40\r\n\r\n",
          "missing Connection: upgrade header field");
    const char *hint = rep.findings[0].hint;
    CHECK(strstr(hint, "nginx/1.22.1") && strstr(hint, "HTTP/1.0 to its upstream"));
    CHECK(strstr(hint, "WebSocket fields"));
    setup();
    check("HTTP/1.1 400 Bad Request\r\nContent-Length: 60\r\n\r\n",
          "The plain HTTP request was sent to HTTPS port");
    CHECK(strstr(rep.findings[0].hint, "wss://"));
    setup();
    check("HTTP/1.0 400 Bad Request\r\nVia: 1.1 squid\r\n\r\n", NULL);
    CHECK(sy_probe_has(&rep, NULL, SY_PF_HTTP_VERSION_10));
    CHECK(strstr(rep.findings[1].hint, "squid"));
}

/* The finding with this ID, or an empty one (whose empty texts and info severity then fail
 * the caller's checks). */
static const sy_probe_finding *finding(sy_probe_id id)
{
    static const sy_probe_finding none = {.sev = SY_PROBE_INFO};
    for (size_t i = 0; i < rep.nfindings; i++)
        if (rep.findings[i].id == id)
            return &rep.findings[i];
    return &none;
}

TEST(accept_variants_named)
{
    static const struct {
        const char *value; /* for the key dGhlIHNhbXBsZSBub25jZQ== */
        const char *says;
    } cases[] = {
        /* base64(SHA-1(key)) */
        {"hHLtf2V1k8aDQZfNjw3Ia1hCwt0=", "GUID is not appended"},
        /* base64(SHA-1(GUID + key)) */
        {"2OZf2Seed9yzIpkj+zvC9KS9Mjw=", "GUID comes before the key"},
        /* base64 of the 40 hex digits of the right digest */
        {"YjM3YTRmMmNjMDYyNGYxNjkwZjY0NjA2Y2YzODU5NDViMmJlYzRlYQ==", "hex digits"},
        /* the right value without its padding */
        {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo", "padding"},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        setup();
        char resp_fmt[256];
        snprintf(resp_fmt, sizeof(resp_fmt), OK101 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 cases[i].value);
        check(resp_fmt, NULL);
        CHECK(strstr(finding(SY_PF_WS_ACCEPT_MISMATCH)->hint, cases[i].says));
    }
    /* the right value twice: named as a duplicate, not as a wrong hash */
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                "\r\n\r\n",
          NULL);
    CHECK(strstr(finding(SY_PF_WS_ACCEPT_MISMATCH)->msg, "2 times (each with the right value)"));
    /* optional whitespace around the value is not a fault */
    setup();
    check(OK101 "Sec-WebSocket-Accept:   %A  \t\r\n\r\n", NULL);
    CHECK_EQ(rep.nfindings, 0);
}

TEST(upgrade_tokens)
{
    setup();
    check("HTTP/1.1 101 X\r\nUpgrade: WEBSOCKET\r\nConnection: UPGRADE\r\nSec-WebSocket-Accept: "
          "%A\r\n\r\n",
          NULL);
    CHECK_EQ(rep.nfindings, 0);
    setup();
    check("HTTP/1.1 101 X\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: %A\r\n\r\n",
          NULL);
    CHECK(strstr(finding(SY_PF_WS_UPGRADE_WRONG)->msg, "several protocols"));
    CHECK(res.switched); /* websocket is among them: the session is still worth checking */
    setup();
    check(OK101 "Upgrade: websocket\r\nSec-WebSocket-Accept: %A\r\n\r\n", NULL);
    CHECK(strstr(finding(SY_PF_WS_UPGRADE_WRONG)->msg, "2 Upgrade fields"));
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Version: 8\r\n\r\n", NULL);
    CHECK_EQ(finding(SY_PF_WS_VERSION_MISMATCH)->sev, SY_PROBE_WARN);
    setup();
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Version: 13\r\n\r\n", NULL);
    CHECK_EQ(rep.nfindings, 0); /* redundant, not wrong */
}

TEST(framing_of_the_101)
{
    /* HTTP/1.0 has no 101: an error, not the warning of a refusal over HTTP/1.0 */
    setup();
    check("HTTP/1.0 101 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
          "Sec-WebSocket-Accept: %A\r\n\r\n",
          NULL);
    CHECK_EQ(finding(SY_PF_HTTP_VERSION_10)->sev, SY_PROBE_ERROR);
    CHECK_EQ(rep.nfindings, 1);
    setup();
    check("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", NULL);
    CHECK_EQ(finding(SY_PF_HTTP_VERSION_10)->sev, SY_PROBE_WARN);
    /* bare LF line ends: parsed, and named */
    setup();
    check("HTTP/1.1 101 X\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: %A\n\n",
          NULL);
    CHECK(strstr(finding(SY_PF_HTTP_BAD_RESPONSE)->msg, "5 of its head's lines"));
    CHECK(res.switched);
}

TEST(refusal_details)
{
    setup();
    check("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n"
          "Content-Length: 0\r\n\r\n",
          NULL);
    const sy_probe_finding *f = finding(SY_PF_WS_FORBIDDEN);
    CHECK(strstr(f->msg, "Basic realm") && !strstr(f->msg, "Origin"));
    CHECK(strstr(f->hint, "Authorization"));
    setup();
    check("HTTP/1.1 301 Moved\r\nLocation: wss://example.test/chat\r\nContent-Length: 0\r\n\r\n",
          NULL);
    CHECK(strstr(finding(SY_PF_WS_REDIRECT)->hint, "wss://"));
    setup();
    check("HTTP/1.1 308 Moved\r\nLocation: /chat/\r\nContent-Length: 0\r\n\r\n", NULL);
    CHECK(strstr(finding(SY_PF_WS_REDIRECT)->hint, "path /chat/"));
    setup();
    check(
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        NULL);
    f = finding(SY_PF_WS_UPGRADE_REQUIRED_426);
    CHECK(strstr(f->msg, "(it asks for Upgrade: TLS/1.2, HTTP/1.1)."));
    CHECK(strstr(f->hint, "wss://"));
    setup();
    check("HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
          "Content-Length: 0\r\n\r\n",
          NULL);
    f = finding(SY_PF_WS_UPGRADE_REQUIRED_426);
    CHECK(strstr(f->msg, "Upgrade: websocket, Sec-WebSocket-Version: 13)"));
    CHECK(strstr(f->hint, "removed Upgrade and Connection"));
    setup();
    check("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n", NULL);
    CHECK(strstr(finding(SY_PF_WS_UPGRADE_REQUIRED_426)->hint, "neither Upgrade"));
}

TEST(several_subprotocols_named)
{
    setup();
    rq.subprotocols[0] = "chat";
    rq.subprotocols[1] = "superchat";
    rq.nsub = 2;
    check(OK101 "Sec-WebSocket-Accept: %A\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n",
          NULL);
    CHECK(strstr(finding(SY_PF_WS_SUBPROTOCOL_UNSOLICITED)->msg, "several subprotocols"));
}

int main(void)
{
    RUN(rfc_example_is_clean);
    RUN(request_fields);
    RUN(accept_problems);
    RUN(upgrade_and_connection);
    RUN(subprotocols);
    RUN(extension_grammar);
    RUN(refusals_named);
    RUN(wire_hints_from_the_answer);
    RUN(accept_variants_named);
    RUN(upgrade_tokens);
    RUN(framing_of_the_101);
    RUN(refusal_details);
    RUN(several_subprotocols_named);
    return sy_t_summary();
}
