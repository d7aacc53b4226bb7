/* TLS with OpenSSL 3, as a transport under sy_conn (src/net/conn.h).
 *
 * A server context (sy_tls: one SSL_CTX shared by every worker, its certificates picked by
 * SNI, ALPN, session cache and tickets) is attached to a listener; each accepted connection
 * gets an SSL object on its socket and the TLS transport (transport.c) instead of TCP. The
 * client side (client.c) builds a verifying SSL for wss://. Protocol code never learns which
 * transport it runs on.
 *
 * Files: context.c (sy_tls, SSL_CTX policy, SNI, ALPN), tickets.c (session-ticket keys),
 * cert.c (PEM loading with one-line
 * errors, the self-signed certificate), transport.c (the sy_transport_ops), client.c. */
#ifndef SY_TLS_TLS_H
#define SY_TLS_TLS_H

#include "net/conn.h"

#include <openssl/ssl.h>
#include <stdatomic.h>

/* A certificate with its key and the chain sent after it (may be empty). */
typedef struct sy_tls_cert {
    X509 *x509;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
} sy_tls_cert;

/* Session-ticket keys (tickets.c). A key is RFC 5077's three parts, in the order of the
 * 80-byte key files other servers use: name, HMAC-SHA256 key, AES-256-CBC key. */
typedef struct sy_tls_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
} sy_tls_key;
#define SY_TLS_TICKET_KEEP 2 /* earlier keys that still open tickets */
#define SY_TLS_TICKET_DEFAULT_S 3600u
/* RFC 8446 §4.6.1 caps a ticket's lifetime at 7 days, and we promise KEEP periods. */
#define SY_TLS_TICKET_MAX_S (7u * 24u * 3600u / SY_TLS_TICKET_KEEP)
/* A store shared (reference-counted) by the contexts of a server. */
typedef struct sy_tls_keys sy_tls_keys;

/* A store rotating every period_ms with its first key drawn. now_ms NULL: the monotonic
 * clock and a thread that rotates at each boundary; otherwise that clock (tests) and no
 * thread. Returns 0, SY_EINVAL (period 0), SY_ENOMEM, SY_EINTERNAL (no randomness). */
int sy__tls_keys_new(uint64_t period_ms, uint64_t (*now_ms)(void *ud), void *ud, sy_tls_keys **out);
void sy__tls_keys_ref(sy_tls_keys *k);
void sy__tls_keys_unref(sy_tls_keys *k); /* the last one wipes every key */
uint64_t sy__tls_keys_period_ms(const sy_tls_keys *k);
/* Rotate and retire as the clock says. */
void sy__tls_keys_tick(sy_tls_keys *k);
/* A copy of the current key (the caller wipes it): 0 or SY_EINTERNAL. */
int sy__tls_keys_current(sy_tls_keys *k, sy_tls_key *out);
/* The key named name (16 bytes), copied: 0 none (unknown or retired), 1 the current key,
 * 2 an earlier one. */
int sy__tls_keys_find(sy_tls_keys *k, const unsigned char *name, sy_tls_key *out);
/* Tests: a key of that name is held (without rotating first). */
int sy__tls_keys_holds(sy_tls_keys *k, const unsigned char *name);
/* Tests: slot (0 current .. KEEP) holds no key and only zero bytes. */
int sy__tls_keys_probe_wiped(const sy_tls_keys *k, size_t slot);
/* The body of the SSL_CTX ticket callback for store k (return values as OpenSSL's). */
int sy__tls_ticket_cb(sy_tls_keys *k, unsigned char key_name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

struct sy_tls {
    atomic_int refs; /* the owner's, one per listener, one per live server connection */
    SSL_CTX *ctx;
    sy_tls_cert *certs; /* certs[0] is the default: the context's own, used without SNI */
    size_t ncerts;
    unsigned char *alpn; /* ALPN names in wire format (length-prefixed), server preference */
    size_t alpn_len;
    int in_use;               /* a listener holds it: no more changes */
    uint32_t ticket_period_s; /* 0: no stateless tickets (session IDs / stateful only) */
    sy_tls_keys *keys;        /* set when a listener takes the context (shared per server) */
};

void sy__tls_ref(sy_tls *t);
void sy__tls_unref(sy_tls *t);

/* The certificate for a ClientHello's server name: the first whose SAN (or CN, without DNS
 * SANs) matches, wildcards included; the default (first added) when none does or name is
 * NULL. */
const sy_tls_cert *sy__tls_pick_cert(const sy_tls *t, const char *servername);

/* ALPN, server preference: the first of ours (wire format) that the client offers. Returns
 * a pointer into ours (the name, *len bytes) or NULL when nothing matches or the client's
 * list is malformed. */
const unsigned char *sy__tls_alpn_pick(const unsigned char *ours, size_t ours_len,
                                       const unsigned char *theirs, size_t theirs_len,
                                       unsigned char *len);

/* Load a PEM certificate (plus any chain after it in the same file) and its PEM private key,
 * and check them: readable, PEM, matching, valid now. On failure err holds one line naming
 * the file and what is wrong; returns SY_ETLS_CERT (or SY_ENOMEM). */
int sy__tls_load_pair(const char *cert_file, const char *key_file, sy_tls_cert *out, char *err,
                      size_t errlen);
/* A fresh EC P-256 key and a self-signed certificate for common_name, with subjectAltName
 * localhost, 127.0.0.1 and ::1 (and common_name when it is a host name or an address),
 * valid from an hour ago for a year. */
int sy__tls_make_self_signed(const char *common_name, sy_tls_cert *out);
void sy__tls_cert_clear(sy_tls_cert *c);

/* Server: put an accepted connection under TLS (the handshake runs as bytes arrive). */
int sy__tls_accept(sy_conn *c, sy_tls *t);

/* Client: prepare TLS on a connecting socket for host (SNI unless an address, certificate
 * and host-name verification unless insecure; ca_file replaces the system store), then
 * attach it to the connection made on that socket. */
typedef struct sy_tls_conn sy_tls_conn;
int sy__tls_client_new(int fd, const char *host, const char *ca_file, int insecure,
                       sy_tls_conn **out);
void sy__tls_attach(sy_conn *c, sy_tls_conn *t);
void sy__tls_conn_free(sy_tls_conn *t); /* one never attached */

/* transport.c: wrap an SSL (taking it over) for a connection, server or client. */
sy_tls_conn *sy__tls_conn_new(SSL *ssl, sy_tls *server_ctx);

extern const sy_transport_ops sy__tls_transport;

#endif
