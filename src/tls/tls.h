/* TLS with OpenSSL 3, as a transport under sy_conn (src/net/conn.h).
 *
 * A server context (sy_tls: one SSL_CTX shared by every worker, its certificates picked by
 * SNI, ALPN, session cache and tickets) is attached to a listener; each accepted connection
 * gets an SSL object on its socket and the TLS transport (transport.c) instead of TCP. The
 * client side (client.c) builds a verifying SSL for wss://. Protocol code never learns which
 * transport it runs on.
 *
 * Files: context.c (sy_tls, SSL_CTX policy, SNI, ALPN), cert.c (PEM loading with one-line
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

struct sy_tls {
    atomic_int refs; /* the owner's, one per listener, one per live server connection */
    SSL_CTX *ctx;
    sy_tls_cert *certs; /* certs[0] is the default: the context's own, used without SNI */
    size_t ncerts;
    unsigned char *alpn; /* ALPN names in wire format (length-prefixed), server preference */
    size_t alpn_len;
    int in_use; /* a listener holds it: no more changes */
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
