/* HTTP/2 (RFC 9113) as a protocol on a byte stream, for the composition layer: it runs on a
 * TCP connection (prior knowledge), a TLS connection (ALPN "h2") or a connection that switched
 * from HTTP/1.1 ("Upgrade: h2c", through the plug-in below) alike. */
#ifndef SY_HTTP2_SERVER_H
#define SY_HTTP2_SERVER_H

#include "http/upgrade.h"

/* How the connection came to HTTP/2 (logged as h2, h2c, h2c-upgrade). */
enum { SY_H2_VIA_TLS = 0, SY_H2_VIA_PRIOR_KNOWLEDGE = 1 };

/* Run HTTP/2 on bs from its first byte (the client's connection preface). Returns 0 or
 * SY_ENOMEM. */
int sy__http2_attach(sy_bstream *bs, sy_worker *w, int via);

/* The 24 bytes every HTTP/2 client sends first. */
#define SY_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* The h2c upgrade (RFC 7540 §3.2) as a server-wide entry of the Upgrade registry: register
 * with token "h2c", this proto and this check hook. */
extern const sy_upgrade_proto sy__h2c_upgrade;
int sy__h2c_check(sy_req *req, const char *token, const char **reason, void *ud);

#endif
