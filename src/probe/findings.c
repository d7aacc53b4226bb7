/* The catalogue of findings (stable IDs, severity, likely causes, fixes) and the report they
 * are collected in. docs/probe.md documents every entry; a unit test keeps the two in step. */
#include "probe/probe.h"

#include <stdio.h>

#define NGINX_WS_FIX                                                                               \
    "nginx: in the location that proxies WebSocket traffic set\n"                                  \
    "  proxy_http_version 1.1;\n"                                                                  \
    "  proxy_set_header Upgrade $http_upgrade;\n"                                                  \
    "  proxy_set_header Connection \"upgrade\";\n"                                                 \
    "HAProxy: nothing to set for WebSocket in HTTP mode; check that no http-request del-header "   \
    "removes Upgrade or Connection\n"                                                              \
    "Apache: RewriteRule with [P] to ws:// (or mod_proxy_wstunnel / ProxyPass "                    \
    "upgrade=websocket)\n"                                                                         \
    "cloud load balancers and CDNs: enable WebSocket support for this route"

static const sy_probe_def defs[SY_PF__COUNT] = {
    [SY_PF_NET_DNS_FAILED] = {"NET_DNS_FAILED", SY_PROBE_FATAL, "the host name does not resolve",
                              "a typo in the host name\nthe name is not published in DNS (yet)\n"
                              "no DNS resolver reachable from this machine",
                              "check the spelling of the host\nresolve it with `getent hosts "
                              "NAME`\nfix /etc/resolv.conf or the DNS record"},
    [SY_PF_NET_CONNECT_REFUSED] = {"NET_CONNECT_REFUSED", SY_PROBE_FATAL, "connection refused",
                                   "nothing listens on this port\nthe server listens on another "
                                   "address (127.0.0.1 vs ::1 vs 0.0.0.0)",
                                   "start the server, or probe the port it listens on\n"
                                   "check with `ss -ltnp`"},
    [SY_PF_NET_CONNECT_TIMEOUT] = {"NET_CONNECT_TIMEOUT", SY_PROBE_FATAL,
                                   "the TCP connection was never answered",
                                   "a firewall drops the packets (a black hole)\nthe host is down "
                                   "or the address is wrong",
                                   "check the address and the firewall rules on the path\n"
                                   "try from a machine next to the server"},
    [SY_PF_NET_CONNECT_FAILED] = {"NET_CONNECT_FAILED", SY_PROBE_FATAL, "the TCP connection failed",
                                  "no route to the host\nthe network is unreachable",
                                  "check the address and routing (`ip route get ADDR`)"},
    [SY_PF_NET_TIMEOUT] = {"NET_TIMEOUT", SY_PROBE_FATAL, "a step did not complete in time",
                           "the server (or a proxy) accepts connections but does not answer: "
                           "an overloaded or stuck process, or a black hole behind a load "
                           "balancer\na proxy waits for a backend that does not answer",
                           "check that the backend behind any proxy is up and answering\n"
                           "look at the server's logs for the request\nraise --timeout if the "
                           "server is only slow"},
    [SY_PF_NET_CLOSED] = {"NET_CLOSED", SY_PROBE_FATAL,
                          "the connection closed before a complete answer",
                          "the server crashed or refused the connection without a word\n"
                          "a TLS port spoken to in cleartext, or the reverse\na connection "
                          "limit on the server or a proxy",
                          "check the scheme (ws:// vs wss://)\nlook at the server's error log"},
    [SY_PF_TLS_HANDSHAKE_FAILED] = {"TLS_HANDSHAKE_FAILED", SY_PROBE_FATAL,
                                    "the TLS handshake failed",
                                    "the port speaks cleartext HTTP (use ws:// or http://)\n"
                                    "no protocol version or cipher in common\nthe server "
                                    "requires a client certificate",
                                    "check the scheme and the port\ncheck the server's TLS "
                                    "configuration with `openssl s_client -connect HOST:PORT`"},
    [SY_PF_TLS_CERT_EXPIRED] = {"TLS_CERT_EXPIRED", SY_PROBE_ERROR, "the certificate has expired",
                                "the certificate was not renewed\nthe renewal did not reach "
                                "this server (a reload is missing)",
                                "renew the certificate and reload the server or proxy"},
    [SY_PF_TLS_CERT_NOT_YET_VALID] = {"TLS_CERT_NOT_YET_VALID", SY_PROBE_ERROR,
                                      "the certificate is not valid yet",
                                      "the clock of this machine or of the CA is wrong",
                                      "check the clocks (NTP)"},
    [SY_PF_TLS_CERT_NAME_MISMATCH] = {"TLS_CERT_NAME_MISMATCH", SY_PROBE_ERROR,
                                      "the certificate does not name this host",
                                      "the server presents its default certificate (SNI not "
                                      "configured for this name)\nthe URL uses an IP address "
                                      "or another name",
                                      "add the name to the certificate (subjectAltName) or "
                                      "configure a certificate for it\nuse the name the "
                                      "certificate was issued for"},
    [SY_PF_TLS_CERT_UNTRUSTED] = {"TLS_CERT_UNTRUSTED", SY_PROBE_ERROR,
                                  "the certificate chain is not trusted",
                                  "a self-signed certificate\nthe server does not send its "
                                  "intermediate certificates\na private CA this machine does "
                                  "not trust",
                                  "serve the full chain (leaf + intermediates)\nuse a "
                                  "certificate from a public CA, or install the private CA on "
                                  "clients\nfor a test server only: --insecure"},
    [SY_PF_TLS_CERT_EXPIRES_SOON] = {"TLS_CERT_EXPIRES_SOON", SY_PROBE_WARN,
                                     "the certificate expires within 14 days",
                                     "automatic renewal is failing or not set up",
                                     "renew the certificate now and check the renewal job"},
    [SY_PF_TLS_OLD_VERSION] = {"TLS_OLD_VERSION", SY_PROBE_WARN,
                               "the server negotiated TLS older than 1.2",
                               "an old TLS configuration or library",
                               "enable TLS 1.2 and 1.3; browsers refuse TLS 1.0 and 1.1"},
    [SY_PF_TLS_ALPN_UNEXPECTED] = {"TLS_ALPN_UNEXPECTED", SY_PROBE_ERROR,
                                   "the server selected an ALPN protocol that was not offered",
                                   "a broken TLS terminator", "fix the ALPN configuration"},
    [SY_PF_HTTP_NOT_HTTP] = {"HTTP_NOT_HTTP", SY_PROBE_ERROR, "the answer is not HTTP/1.x",
                             "the port speaks TLS (use wss:// or https://) or another protocol\n"
                             "an HTTP/2-only (prior knowledge) endpoint\nthe wrong port",
                             "check the scheme and port of the URL\nlook at the bytes quoted "
                             "in the finding"},
    [SY_PF_HTTP_BAD_RESPONSE] = {"HTTP_BAD_RESPONSE", SY_PROBE_ERROR, "the response is malformed",
                                 "a hand-written HTTP implementation\na proxy that corrupts "
                                 "heads\nlines that end in a bare LF (browsers accept them, "
                                 "strict clients such as Python websockets do not)\nbytes "
                                 "written into the head, e.g. WebSocket frames sent before the "
                                 "empty line that ends the 101",
                                 "fix the server so that it writes RFC 9112 messages (CRLF "
                                 "line ends, \"Name: value\" fields)\nwrite frames only after "
                                 "the whole head, empty line included, is written"},
    [SY_PF_HTTP_HEAD_TOO_LARGE] = {"HTTP_HEAD_TOO_LARGE", SY_PROBE_ERROR,
                                   "the response head never ended",
                                   "a server bug that writes fields without end\n"
                                   "a huge cookie or header set by the application",
                                   "fix the code that writes the response head; browsers "
                                   "give up at a few hundred KiB"},
    [SY_PF_HTTP_BODY_UNBOUNDED] = {"HTTP_BODY_UNBOUNDED", SY_PROBE_WARN,
                                   "the response body did not end",
                                   "an endless chunked or close-delimited body, e.g. a "
                                   "streaming endpoint\na server bug",
                                   "answer a WebSocket handshake that cannot be accepted with "
                                   "a short, framed error response"},
    [SY_PF_HTTP_VERSION_10] = {"HTTP_VERSION_10", SY_PROBE_WARN,
                               "the answer is HTTP/1.0, which cannot switch protocols",
                               "a proxy or server that speaks only HTTP/1.0\nnginx answering "
                               "on behalf of an HTTP/1.0 upstream connection\na server that "
                               "writes \"HTTP/1.0 101\": HTTP/1.0 has no 101, so this one is "
                               "reported as an error (strict clients fail the handshake)",
                               "use HTTP/1.1 on every hop (nginx: proxy_http_version 1.1)\n"
                               "answer an HTTP/1.1 request with an HTTP/1.1 status line"},
    [SY_PF_HTTP_1XX_FRAMING] = {"HTTP_1XX_FRAMING", SY_PROBE_WARN,
                                "the 101 response carries Content-Length or Transfer-Encoding",
                                "a framework that adds framing fields to every response",
                                "send no Content-Length or Transfer-Encoding in 1xx responses "
                                "(RFC 9110 §8.6, RFC 9112 §6.1)"},
    [SY_PF_WS_NOT_SWITCHED_200] = {"WS_NOT_SWITCHED_200", SY_PROBE_ERROR,
                                   "the server answered 200 instead of 101: no WebSocket",
                                   "a proxy in between removed Upgrade and Connection (they are "
                                   "hop-by-hop), so the backend saw a plain GET\nthe path is "
                                   "served by a static file or application route, not a "
                                   "WebSocket endpoint\nthe server does not support WebSocket",
                                   NGINX_WS_FIX "\ncheck that the URL's path is the WebSocket "
                                                "endpoint"},
    [SY_PF_WS_REFUSED_400] = {"WS_REFUSED_400", SY_PROBE_ERROR,
                              "the server answered 400 to the handshake",
                              "a proxy forwarded the request without Upgrade/Connection (nginx "
                              "talks HTTP/1.0 upstream unless told otherwise) and the WebSocket "
                              "server rejected the plain request\nthe server rejects a header "
                              "the probe sent (Origin, subprotocol, extension)",
                              NGINX_WS_FIX "\nread the response body quoted in the finding"},
    [SY_PF_WS_UPGRADE_REQUIRED_426] = {"WS_UPGRADE_REQUIRED_426", SY_PROBE_ERROR,
                                       "the server answered 426 Upgrade Required",
                                       "a proxy removed the Upgrade header, so the WebSocket "
                                       "endpoint saw no upgrade\nthe server wants another "
                                       "Sec-WebSocket-Version (see its Sec-WebSocket-Version)",
                                       NGINX_WS_FIX},
    [SY_PF_WS_REDIRECT] = {"WS_REDIRECT", SY_PROBE_ERROR,
                           "the handshake was redirected; WebSocket clients do not follow "
                           "redirects",
                           "http→https redirect (use wss://)\na trailing-slash or login "
                           "redirect\nthe endpoint moved to another path",
                           "use the URL from the Location field directly (with wss:// when "
                           "it is https:// or wss://)"},
    [SY_PF_WS_FORBIDDEN] = {"WS_FORBIDDEN", SY_PROBE_ERROR,
                            "the handshake was refused as unauthorised",
                            "the server checks Origin and the probe's Origin is not allowed\n"
                            "authentication is required (cookie, token, header)\na WAF rule",
                            "probe with the Origin a browser would send (--origin)\nadd the "
                            "credentials (-H 'Cookie: ...' or -H 'Authorization: ...')\nallow "
                            "the Origin on the server"},
    [SY_PF_WS_NOT_FOUND] = {"WS_NOT_FOUND", SY_PROBE_ERROR,
                            "the WebSocket path does not exist (404)",
                            "a wrong path\na proxy that strips or adds a path prefix\n"
                            "a proxy that dropped Upgrade so an upgrade-only route saw a plain "
                            "request",
                            "check the path on the server and any location/prefix rules in "
                            "proxies\n" NGINX_WS_FIX},
    [SY_PF_WS_BAD_GATEWAY] = {"WS_BAD_GATEWAY", SY_PROBE_ERROR,
                              "a proxy could not get an answer from the backend",
                              "the backend is down or refuses the proxy's connection\nthe "
                              "backend closed the connection during the upgrade\na proxy "
                              "timeout shorter than the backend's answer",
                              "check the backend address in the proxy configuration\nlook at "
                              "the proxy's error log"},
    [SY_PF_WS_UNEXPECTED_STATUS] = {"WS_UNEXPECTED_STATUS", SY_PROBE_ERROR,
                                    "the server answered the handshake with an unexpected "
                                    "status",
                                    "the endpoint is not a WebSocket endpoint\nan application "
                                    "error",
                                    "look at the status, fields and body quoted in the finding"},
    [SY_PF_WS_UPGRADE_MISSING] = {"WS_UPGRADE_MISSING", SY_PROBE_ERROR,
                                  "the 101 response has no Upgrade field",
                                  "a hand-written handshake that forgets the field\na proxy "
                                  "that removes hop-by-hop fields from responses",
                                  "send \"Upgrade: websocket\" in the 101 response"},
    [SY_PF_WS_UPGRADE_WRONG] = {"WS_UPGRADE_WRONG", SY_PROBE_ERROR,
                                "the 101 response switches to something other than websocket",
                                "a server that answers with the wrong protocol token\na 101 "
                                "that lists several protocols or repeats the Upgrade field",
                                "send exactly one \"Upgrade: websocket\" in the 101 response "
                                "(the token is case-insensitive)"},
    [SY_PF_WS_CONNECTION_MISSING] = {"WS_CONNECTION_MISSING", SY_PROBE_ERROR,
                                     "the 101 response has no \"Connection: upgrade\"",
                                     "a hand-written handshake\na proxy that rewrites "
                                     "Connection in responses",
                                     "send \"Connection: Upgrade\" in the 101 response (RFC "
                                     "6455 §4.2.2)"},
    [SY_PF_WS_ACCEPT_MISSING] = {"WS_ACCEPT_MISSING", SY_PROBE_ERROR,
                                 "the 101 response has no Sec-WebSocket-Accept",
                                 "a hand-written handshake\na proxy that answers 101 itself",
                                 "send Sec-WebSocket-Accept computed from the request's key"},
    [SY_PF_WS_ACCEPT_MISMATCH] = {"WS_ACCEPT_MISMATCH", SY_PROBE_ERROR,
                                  "Sec-WebSocket-Accept is wrong",
                                  "the server hashes the key wrongly (no or wrong GUID, hex or "
                                  "base64 of hex instead of base64 of the digest, key not "
                                  "trimmed)\nthe field is sent more than once\na cache or "
                                  "proxy replayed a 101 meant for another request",
                                  "compute base64(SHA-1(key + "
                                  "\"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\"))\nnever cache "
                                  "101 responses"},
    [SY_PF_WS_SUBPROTOCOL_UNSOLICITED] = {"WS_SUBPROTOCOL_UNSOLICITED", SY_PROBE_ERROR,
                                          "the server chose a subprotocol the client did not "
                                          "offer",
                                          "the server sends a fixed Sec-WebSocket-Protocol "
                                          "whatever the client offers\nthe server lists "
                                          "several subprotocols instead of selecting one",
                                          "answer with one of the offered subprotocols, or with "
                                          "no Sec-WebSocket-Protocol at all"},
    [SY_PF_WS_SUBPROTOCOL_NOT_SELECTED] = {"WS_SUBPROTOCOL_NOT_SELECTED", SY_PROBE_ERROR,
                                           "the client offered subprotocols and the server "
                                           "chose none; browsers then fail the connection",
                                           "the server does not support the offered "
                                           "subprotocols\nthe server ignores "
                                           "Sec-WebSocket-Protocol",
                                           "configure the server to select one of the offered "
                                           "subprotocols\nor refuse the handshake with a 4xx "
                                           "when none fits"},
    [SY_PF_WS_EXTENSION_UNSOLICITED] = {"WS_EXTENSION_UNSOLICITED", SY_PROBE_ERROR,
                                        "the server accepted an extension the client did not "
                                        "offer",
                                        "a server that always answers a fixed extension list",
                                        "answer Sec-WebSocket-Extensions only with offered "
                                        "extensions"},
    [SY_PF_WS_EXTENSION_INVALID] = {"WS_EXTENSION_INVALID", SY_PROBE_ERROR,
                                    "the extension response is not a valid acceptance of the "
                                    "offer",
                                    "a bad permessage-deflate parameter (unknown, repeated, out "
                                    "of range, or not allowed by the offer)",
                                    "follow RFC 7692 §7: window bits 8..15, "
                                    "client_max_window_bits only when offered, each parameter "
                                    "once\nor disable compression"},
    [SY_PF_WS_VERSION_MISMATCH] = {"WS_VERSION_MISMATCH", SY_PROBE_WARN,
                                   "the 101 names another Sec-WebSocket-Version",
                                   "a server built for an old draft of the protocol (hybi-08 "
                                   "and the like)\na handler that copies a fixed version into "
                                   "every answer",
                                   "send no Sec-WebSocket-Version in the 101 (RFC 6455 §4.2.2); "
                                   "it belongs only in a 426 refusal\nupgrade the WebSocket "
                                   "library to one that implements RFC 6455 (version 13)"},
    [SY_PF_WS_CLOSED_AFTER_UPGRADE] = {"WS_CLOSED_AFTER_UPGRADE", SY_PROBE_ERROR,
                                       "the connection closed right after the 101 without a "
                                       "close frame",
                                       "the application's WebSocket handler fails or returns "
                                       "at once\na proxy that does not support WebSocket and "
                                       "closes the tunnel\nthe backend process crashed",
                                       "look at the application's logs at the time of the "
                                       "probe\ncheck the proxy's WebSocket support"},
    [SY_PF_WS_CLOSED_BY_SERVER] = {"WS_CLOSED_BY_SERVER", SY_PROBE_WARN,
                                   "the server closed the WebSocket before the checks ended",
                                   "the application closes on messages it does not expect "
                                   "(see the close code)\nan authentication step is missing",
                                   "read the close code and reason quoted in the finding"},
    [SY_PF_WS_FRAME_INVALID] = {"WS_FRAME_INVALID", SY_PROBE_ERROR,
                                "the server sent bytes that are not valid WebSocket frames",
                                "a server that masks its frames or sets RSV bits without an "
                                "extension\na text message or close reason that is not "
                                "UTF-8\na close frame with a code that must not be sent "
                                "(1005, 1006, 1015, below 1000, above 4999) or a 1-byte "
                                "payload\nsomething other than frames after the 101 (e.g. an "
                                "HTTP body or a proxy error page)",
                                "fix the server's framing (RFC 6455 §5)"},
    [SY_PF_WS_FLOOD] = {"WS_FLOOD", SY_PROBE_WARN,
                        "the server sent a flood of data the probe did not ask for",
                        "the application broadcasts to new connections without limit\n"
                        "a server bug",
                        "rate-limit what is pushed to a fresh connection"},
    [SY_PF_WS_UNSOLICITED_MESSAGES] = {"WS_UNSOLICITED_MESSAGES", SY_PROBE_INFO,
                                       "the server sent messages before the probe asked for "
                                       "anything",
                                       "a protocol where the server speaks first (welcome "
                                       "message, push updates)",
                                       "nothing to fix when expected"},
    [SY_PF_WS_NO_ECHO] = {"WS_NO_ECHO", SY_PROBE_INFO,
                          "the endpoint did not echo the probe's message",
                          "the endpoint is not an echo service (most are not)",
                          "nothing to fix: the round trip is measured only against echo "
                          "endpoints"},
    [SY_PF_WS_NO_PONG] = {"WS_NO_PONG", SY_PROBE_WARN,
                          "the server did not answer a ping with a pong",
                          "a server that ignores control frames (RFC 6455 §5.5.2 requires a "
                          "pong)\na stuck application loop",
                          "answer every ping with a pong carrying the same payload"},
    [SY_PF_WS_PONG_MISMATCH] = {"WS_PONG_MISMATCH", SY_PROBE_WARN,
                                "the pong did not carry the ping's payload",
                                "a server that sends empty or fixed pongs",
                                "echo the ping's application data in the pong"},
    [SY_PF_WS_CLOSE_NO_REPLY] = {"WS_CLOSE_NO_REPLY", SY_PROBE_WARN,
                                 "the server did not answer the close frame",
                                 "the server drops the TCP connection instead of answering the "
                                 "close (clients see code 1006)",
                                 "answer a close frame with a close frame, then close TCP"},
    [SY_PF_WS_IDLE_CUT] = {"WS_IDLE_CUT", SY_PROBE_WARN, "an idle WebSocket was cut",
                           "a proxy or load balancer read timeout (nginx proxy_read_timeout, "
                           "60 s by default)\nthe server's own idle timeout",
                           "send pings more often than the shortest timeout on the path (from "
                           "the server or the client)\nraise the proxy's timeout for WebSocket "
                           "routes (nginx: proxy_read_timeout 3600s;)"},
    [SY_PF_WS_IDLE_PINGS] = {"WS_IDLE_PINGS", SY_PROBE_INFO,
                             "the server sent pings while the connection was idle",
                             "a server keep-alive", "nothing to fix"},
    [SY_PF_WS_IDLE_SURVIVED] = {"WS_IDLE_SURVIVED", SY_PROBE_INFO,
                                "the connection stayed open while idle", "", "nothing to fix"},
    [SY_PF_SEC_UNMASKED_ACCEPTED] = {"SEC_UNMASKED_ACCEPTED", SY_PROBE_WARN,
                                     "the server accepted an unmasked client frame",
                                     "a lenient frame parser (RFC 6455 §5.1 says the server "
                                     "MUST close the connection)",
                                     "fail the connection with close code 1002 on unmasked "
                                     "client frames; masking protects proxies from cache "
                                     "poisoning"},
    [SY_PF_SEC_BAD_VERSION_ACCEPTED] = {"SEC_BAD_VERSION_ACCEPTED", SY_PROBE_WARN,
                                        "the server switched for an unknown "
                                        "Sec-WebSocket-Version",
                                        "the server does not check Sec-WebSocket-Version",
                                        "answer versions other than 13 with 426 and "
                                        "\"Sec-WebSocket-Version: 13\" (RFC 6455 §4.4)"},
    [SY_PF_SEC_BAD_VERSION_NO_HINT] = {"SEC_BAD_VERSION_NO_HINT", SY_PROBE_INFO,
                                       "an unknown Sec-WebSocket-Version was refused without "
                                       "naming the supported one",
                                       "the refusal does not carry Sec-WebSocket-Version",
                                       "answer 426 with \"Sec-WebSocket-Version: 13\""},
    [SY_PF_SEC_H2C_WITHOUT_SETTINGS_TOKEN] = {"SEC_H2C_WITHOUT_SETTINGS_TOKEN", SY_PROBE_WARN,
                                              "the server switched to h2c although Connection "
                                              "did not list HTTP2-Settings",
                                              "a lenient h2c upgrade; proxies that forward "
                                              "such requests let clients smuggle HTTP/2 past "
                                              "their rules (h2c smuggling)",
                                              "require \"Connection: Upgrade, HTTP2-Settings\" "
                                              "(RFC 7540 §3.2.1)\ndisable h2c upgrades where "
                                              "they are not needed"},
    [SY_PF_SEC_H2C_OVER_TLS] = {"SEC_H2C_OVER_TLS", SY_PROBE_WARN,
                                "the server switched to h2c over TLS",
                                "an h2c upgrade handler behind TLS termination; a proxy that "
                                "forwards the upgrade gives clients an unfiltered HTTP/2 "
                                "tunnel to the backend (h2c smuggling)",
                                "refuse \"Upgrade: h2c\" on TLS connections (h2c is cleartext "
                                "only)\nstrip Upgrade: h2c at the proxy"},
    [SY_PF_PROXY_HTTP10_UPSTREAM] = {"PROXY_HTTP10_UPSTREAM", SY_PROBE_ERROR,
                                     "a hop forwarded the request as HTTP/1.0, which cannot "
                                     "upgrade",
                                     "nginx's default proxy_http_version is 1.0\nan old proxy",
                                     "nginx: proxy_http_version 1.1; in the proxying "
                                     "location\n" NGINX_WS_FIX},
    [SY_PF_PROXY_STRIPPED_UPGRADE] = {"PROXY_STRIPPED_UPGRADE", SY_PROBE_ERROR,
                                      "a hop removed the Upgrade field",
                                      "Upgrade is hop-by-hop: proxies drop it unless told to "
                                      "pass it on",
                                      NGINX_WS_FIX},
    [SY_PF_PROXY_STRIPPED_CONNECTION] = {"PROXY_STRIPPED_CONNECTION", SY_PROBE_ERROR,
                                         "a hop removed \"upgrade\" from the Connection field",
                                         "Connection is hop-by-hop: proxies replace it (often "
                                         "with \"close\") unless told otherwise",
                                         NGINX_WS_FIX},
    [SY_PF_PROXY_STRIPPED_HEADERS] = {"PROXY_STRIPPED_HEADERS", SY_PROBE_WARN,
                                      "a hop removed fields the probe sent",
                                      "a proxy or WAF that filters unknown headers",
                                      "let Sec-WebSocket-* and Origin through to the backend"},
    [SY_PF_PROXY_REWROTE_HEADERS] = {"PROXY_REWROTE_HEADERS", SY_PROBE_INFO,
                                     "a hop changed fields the probe sent",
                                     "a proxy sets Host or other fields for the backend",
                                     "usually fine; check that the backend accepts the new "
                                     "values (Origin checks, virtual hosts)"},
    [SY_PF_PROXY_ADDED_HEADERS] = {"PROXY_ADDED_HEADERS", SY_PROBE_INFO, "a hop added fields",
                                   "a proxy or load balancer in between", "nothing to fix"},
    [SY_PF_PROXY_REFLECT_UNAVAILABLE] = {"PROXY_REFLECT_UNAVAILABLE", SY_PROBE_INFO,
                                         "no reflect route: the path through proxies was not "
                                         "compared",
                                         "the server is not switchyard, or /reflect is off "
                                         "(off by default on non-loopback listeners)",
                                         "run `switchyard serve --reflect-token T` behind the "
                                         "proxy and probe with --reflect-token T"},
    [SY_PF_H2C_UPGRADE_IGNORED] = {"H2C_UPGRADE_IGNORED", SY_PROBE_INFO,
                                   "the server did not switch to h2c",
                                   "no h2c support (most servers and all browsers use h2 over "
                                   "TLS instead)",
                                   "nothing to fix unless cleartext HTTP/2 is wanted"},
    [SY_PF_H2C_UPGRADE_INVALID] = {"H2C_UPGRADE_INVALID", SY_PROBE_ERROR,
                                   "the 101 to h2c is malformed",
                                   "a wrong Upgrade token or a missing Connection: upgrade",
                                   "send \"Connection: Upgrade\" and \"Upgrade: h2c\" in the "
                                   "101"},
    [SY_PF_H2_PRIOR_KNOWLEDGE_REFUSED] = {"H2_PRIOR_KNOWLEDGE_REFUSED", SY_PROBE_INFO,
                                          "the server does not speak HTTP/2 with prior "
                                          "knowledge",
                                          "no cleartext HTTP/2 support", "nothing to fix"},
    [SY_PF_H2_ALPN_NOT_H2] = {"H2_ALPN_NOT_H2", SY_PROBE_INFO, "TLS did not select h2 with ALPN",
                              "HTTP/2 is not enabled on this TLS listener",
                              "enable HTTP/2 (nginx: listen 443 ssl http2;) if wanted"},
    [SY_PF_H2_NO_SETTINGS] = {"H2_NO_SETTINGS", SY_PROBE_ERROR,
                              "the HTTP/2 server did not send its SETTINGS",
                              "the server does not speak HTTP/2 on this connection\nthe "
                              "server answers 101 to h2c, then goes on in HTTP/1.1\nanother "
                              "frame comes before the SETTINGS (RFC 9113 §3.4)",
                              "send a SETTINGS frame first, right after the 101 or as the "
                              "answer to the client's preface\ncheck the server's HTTP/2 "
                              "support"},
    [SY_PF_H2_GOAWAY] = {"H2_GOAWAY", SY_PROBE_ERROR,
                         "the server ended the HTTP/2 connection with an error or before "
                         "answering",
                         "the server found an error in what the probe sent, or an internal "
                         "error\na GOAWAY right after the preface whose last stream is below "
                         "the request's: the request is never processed",
                         "read the error code and debug data quoted in the finding\nsend "
                         "GOAWAY only when shutting down, with the last stream processed"},
    [SY_PF_H2_STREAM_RESET] = {"H2_STREAM_RESET", SY_PROBE_ERROR,
                               "the server reset the request stream",
                               "the server refused the request (see the error code)",
                               "read the error code quoted in the finding"},
    [SY_PF_H2_PROTOCOL_ERROR] = {"H2_PROTOCOL_ERROR", SY_PROBE_ERROR,
                                 "the server broke the HTTP/2 protocol",
                                 "a bug in the server's HTTP/2 implementation\ninvalid SETTINGS "
                                 "values (ENABLE_PUSH above 1, INITIAL_WINDOW_SIZE above "
                                 "2^31-1, MAX_FRAME_SIZE outside 16384..16777215)\na response "
                                 "on a stream the client never opened (after an h2c upgrade "
                                 "the answer is on stream 1)",
                                 "read the detail quoted in the finding\nfollow RFC 9113 "
                                 "§6.5.2 for SETTINGS values and §5.1 for stream states"},
    [SY_PF_H2_NO_RESPONSE] = {"H2_NO_RESPONSE", SY_PROBE_ERROR,
                              "the HTTP/2 request got no response",
                              "the server never answers the stream\nthe connection closed",
                              "look at the server's logs"},
    [SY_PF_H2_WS_NOT_ADVERTISED] = {"H2_WS_NOT_ADVERTISED", SY_PROBE_INFO,
                                    "the server does not offer WebSocket over HTTP/2 (RFC 8441)",
                                    "SETTINGS_ENABLE_CONNECT_PROTOCOL is not sent: clients use "
                                    "WebSocket over HTTP/1.1 instead",
                                    "nothing to fix; enable RFC 8441 on the server if wanted"},
    [SY_PF_H2_WS_REJECTED] = {"H2_WS_REJECTED", SY_PROBE_ERROR,
                              "the server advertises RFC 8441 but refused :protocol websocket",
                              "the path has no WebSocket endpoint\nthe server's extended "
                              "CONNECT support is broken",
                              "stop advertising SETTINGS_ENABLE_CONNECT_PROTOCOL or accept "
                              "extended CONNECT on WebSocket paths"},
    [SY_PF_H2_WS_NO_ECHO] = {"H2_WS_NO_ECHO", SY_PROBE_INFO,
                             "the WebSocket over HTTP/2 did not echo the probe's message",
                             "the endpoint is not an echo service", "nothing to fix"},
};

const sy_probe_def *sy_probe_def_of(sy_probe_id id)
{
    return &defs[(unsigned)id < SY_PF__COUNT ? id : 0];
}

const sy_probe_def *sy_probe_def_find(const char *id)
{
    for (size_t i = 0; i < SY_PF__COUNT; i++)
        if (defs[i].id && !strcmp(defs[i].id, id))
            return &defs[i];
    return NULL;
}

const char *sy_probe_sev_name(sy_probe_sev s)
{
    static const char *const names[] = {"info", "warning", "error", "fatal"};
    return names[(unsigned)s & 3];
}

void sy_probe_report_init(sy_probe_report *r)
{
    memset(r, 0, sizeof(*r));
}

static void copy_path(char dst[16], const char *path)
{
    snprintf(dst, 16, "%s", path ? path : "");
}

sy_probe_finding *sy_probe_add(sy_probe_report *r, const char *path, sy_probe_id id,
                               const char *fmt, ...)
{
    if (r->nfindings == SY_PROBE_MAX_FINDINGS) {
        r->dropped++;
        return NULL;
    }
    sy_probe_finding *f = &r->findings[r->nfindings++];
    memset(f, 0, sizeof(*f));
    f->id = id;
    f->sev = sy_probe_def_of(id)->sev;
    copy_path(f->path, path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    return f;
}

void sy_probe_hint(sy_probe_finding *f, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->hint, sizeof(f->hint), fmt, ap);
    va_end(ap);
}

sy_probe_step *sy_probe_step_add(sy_probe_report *r, const char *path, const char *name, int ok,
                                 double ms, const char *fmt, ...)
{
    if (r->nsteps == SY_PROBE_MAX_STEPS)
        return NULL;
    sy_probe_step *s = &r->steps[r->nsteps++];
    memset(s, 0, sizeof(*s));
    copy_path(s->path, path);
    copy_path(s->name, name);
    s->ok = ok;
    s->ms = ms;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    return s;
}

int sy_probe_has(const sy_probe_report *r, const char *path, sy_probe_id id)
{
    for (size_t i = 0; i < r->nfindings; i++)
        if (r->findings[i].id == id && (!path || !strcmp(path, r->findings[i].path)))
            return 1;
    return 0;
}

int sy_probe_exit_code(const sy_probe_report *r)
{
    int code = 0;
    for (size_t i = 0; i < r->nfindings; i++) {
        if (r->findings[i].sev == SY_PROBE_FATAL)
            return 2;
        if (r->findings[i].sev >= SY_PROBE_WARN)
            code = 1;
    }
    return code;
}

char *sy_probe_quote(char *out, size_t cap, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t o = 0;
    if (!cap)
        return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
        if (c == '\\' || c == '\r' || c == '\n' || c == '\t')
            need = 2;
        if (o + need + 4 > cap) { /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else if (need == 2) {
            out[o++] = '\\';
            out[o++] = c == '\r' ? 'r' : c == '\n' ? 'n' : c == '\t' ? 't' : '\\';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return out;
}
