/* sy_tls: the server-side TLS context of one or more listeners. One SSL_CTX shared by every
 * worker thread (OpenSSL locks its session cache), with the policy below, certificates
 * chosen by SNI and ALPN in server preference order. Session tickets are sealed with our
 * rotating keys (tickets.c), one store for every context of a server, so a ticket from one
 * worker or listener resumes on any other. */
#include "net/worker.h"
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

/* TLS 1.2: forward-secret AEAD suites only (Mozilla "intermediate" without DHE): no CBC, no
 * RSA key exchange, no 3DES/RC4. ECDSA first: cheaper handshakes when both kinds of
 * certificate are loaded. */
static const char CIPHERS_TLS12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char CIPHERS_TLS13[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char GROUPS[] = "X25519:P-256:P-384";
static const unsigned char SESSION_ID_CTX[] = "switchyard";
#define READ_BUFFER (64u * 1024u)

static int cert_cb(SSL *ssl, void *arg);
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc);
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg);

static int configure(sy_tls *t)
{
    SSL_CTX *ctx = t->ctx;
    /* Renegotiation off (TLS 1.2: it is a DoS lever and nothing here needs it), compression
     * off (CRIME), our cipher order wins (CHACHA20 still first for clients that prefer it,
     * i.e. those without AES hardware). A TCP EOF without close_notify is reported as an end
     * of input, not answered with a fatal alert: a client that half-closes after its request
     * still gets the response (the transport tells a cut record from a record boundary). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes: SSL_write returns after each record, so the write queue advances per
     * record. Moving buffer: a retried write may come from a rebuilt staging buffer (same
     * bytes, other address). Release buffers: an idle connection holds no 16 KiB
     * read/write buffers inside OpenSSL. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read ahead: one recv brings a record and the next header instead of one recv for
     * each; what it buffers is reported by the transport's `pending`. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* ... and up to 64 KiB per recv, not one record's worth: half the read(2)s for bulk
     * input (64 KiB WebSocket echo: 4.3 -> 2.5 per message, ~9% less CPU). Released with
     * the buffer once empty, so an idle connection does not keep it. */
    SSL_CTX_set_default_read_buffer_len(ctx, READ_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, CIPHERS_TLS12) ||
        !SSL_CTX_set_ciphersuites(ctx, CIPHERS_TLS13) || !SSL_CTX_set1_groups_list(ctx, GROUPS) ||
        !SSL_CTX_set_session_id_context(ctx, SESSION_ID_CTX, sizeof(SESSION_ID_CTX) - 1))
        return SY_EINTERNAL;
    SSL_CTX_set_cert_cb(ctx, cert_cb, t);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
    SSL_CTX_set_app_data(ctx, t);
    if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb))
        return SY_EINTERNAL;
    return 0;
}

/* Tickets on (period_s > 0, a fresh key store) or off; the session lifetime told to clients
 * follows. Only while no listener holds the context. */
static int set_tickets(sy_tls *t, uint32_t period_s)
{
    sy_tls_keys *k = NULL;
    if (period_s) {
        int err = sy__tls_keys_new((uint64_t)period_s * 1000u, NULL, NULL, &k);
        if (err)
            return err;
    }
    sy__tls_keys_unref(t->keys);
    t->keys = k;
    t->ticket_period_s = period_s;
    /* A ticket opens for KEEP to KEEP + 1 periods after it was sealed (tickets.c); its
     * session is given KEEP periods, so the lifetime hint (TLS 1.2) and ticket_lifetime
     * (TLS 1.3), both taken from the session timeout, promise only what every ticket gets,
     * and OpenSSL itself refuses a session older than that. Without tickets the server's
     * session cache keeps the default of two hours. */
    uint32_t life = (period_s ? period_s : SY_TLS_TICKET_DEFAULT_S) * SY_TLS_TICKET_KEEP;
    SSL_CTX_set_timeout(t->ctx, life);
    /* Off: no stateless tickets. TLS 1.2 resumes by session ID from the server's cache;
     * TLS 1.3 sends "stateful" tickets, which only name a cache entry (no key involved). */
    if (period_s)
        SSL_CTX_clear_options(t->ctx, SSL_OP_NO_TICKET);
    else
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
    return 0;
}

SY_EXPORT int sy_tls_new(sy_tls **out)
{
    /* Both HTTP versions the server speaks, HTTP/2 preferred (RFC 9113 §3.2). */
    static const char *const http11[] = {"h2", "http/1.1", NULL};
    sy_tls *t = sy__calloc(1, sizeof(*t));
    if (!t)
        return SY_ENOMEM;
    atomic_init(&t->refs, 1);
    t->ctx = SSL_CTX_new(TLS_server_method());
    int err = t->ctx ? configure(t) : SY_ENOMEM;
    if (!err)
        err = sy_tls_set_alpn(t, http11);
    if (!err)
        err = set_tickets(t, SY_TLS_TICKET_DEFAULT_S);
    ERR_clear_error();
    if (err) {
        sy_tls_free(t);
        return err;
    }
    *out = t;
    return 0;
}

void sy__tls_ref(sy_tls *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void sy__tls_unref(sy_tls *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ctx);
    sy__tls_keys_unref(t->keys);
    for (size_t i = 0; i < t->ncerts; i++)
        sy__tls_cert_clear(&t->certs[i]);
    sy__free(t->certs);
    sy__free(t->alpn);
    sy__free(t);
}

SY_EXPORT void sy_tls_free(sy_tls *t)
{
    if (t)
        sy__tls_unref(t);
}

/* Take over a loaded certificate: the first one becomes the context's own (the default);
 * every one is first tried on a scratch SSL so that OpenSSL's own refusals (a key too weak
 * for the security level) are reported now, not at the first handshake that picks it. */
static int add_cert(sy_tls *t, sy_tls_cert *c, const char *what, char *err, size_t errlen)
{
    SSL *probe = SSL_new(t->ctx);
    int ok = probe && SSL_use_cert_and_key(probe, c->x509, c->key, c->chain, 1) == 1;
    SSL_free(probe);
    if (ok && t->ncerts == 0)
        ok = SSL_CTX_use_cert_and_key(t->ctx, c->x509, c->key, c->chain, 1) == 1;
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        const char *why = ERR_GET_REASON(e) == SSL_R_EE_KEY_TOO_SMALL
                              ? "its key is too small (RSA needs 2048 bits or more)"
                          : ERR_GET_REASON(e) == SSL_R_CA_KEY_TOO_SMALL
                              ? "a key in its chain is too small (RSA needs 2048 bits or more)"
                              : ERR_reason_error_string(e);
        snprintf(err, errlen, "%s: OpenSSL refuses the certificate: %s", what,
                 why ? why : "unknown reason");
        ERR_clear_error();
        return SY_ETLS_CERT;
    }
    sy_tls_cert *n = sy__realloc(t->certs, (t->ncerts + 1) * sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "%s: out of memory", what);
        return SY_ENOMEM;
    }
    t->certs = n;
    t->certs[t->ncerts++] = *c;
    memset(c, 0, sizeof(*c));
    return 0;
}

SY_EXPORT int sy_tls_add_cert(sy_tls *t, const char *cert_pem_file, const char *key_pem_file,
                              char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = 0;
    if (!t || t->in_use) {
        snprintf(err, errlen, "the TLS context is already in use by a listener");
        return t ? SY_ESTATE : SY_EINVAL;
    }
    sy_tls_cert c;
    int rc = sy__tls_load_pair(cert_pem_file, key_pem_file, &c, err, errlen);
    if (rc == 0)
        rc = add_cert(t, &c, cert_pem_file, err, errlen);
    sy__tls_cert_clear(&c);
    return rc;
}

SY_EXPORT int sy_tls_add_self_signed(sy_tls *t, const char *common_name)
{
    if (!t)
        return SY_EINVAL;
    if (t->in_use)
        return SY_ESTATE;
    sy_tls_cert c;
    char err[160];
    int rc = sy__tls_make_self_signed(common_name, &c);
    if (rc == 0)
        rc = add_cert(t, &c, "self-signed certificate", err, sizeof(err));
    sy__tls_cert_clear(&c);
    return rc;
}

SY_EXPORT int sy_tls_set_alpn(sy_tls *t, const char *const *protocols)
{
    if (!t || !protocols || !protocols[0])
        return SY_EINVAL;
    if (t->in_use)
        return SY_ESTATE;
    size_t total = 0;
    for (size_t i = 0; protocols[i]; i++) {
        size_t n = strlen(protocols[i]);
        if (n == 0 || n > 255)
            return SY_EINVAL;
        total += 1 + n;
    }
    unsigned char *w = sy__malloc(total);
    if (!w)
        return SY_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; protocols[i]; i++) {
        size_t n = strlen(protocols[i]);
        w[off++] = (unsigned char)n;
        memcpy(w + off, protocols[i], n);
        off += n;
    }
    sy__free(t->alpn);
    t->alpn = w;
    t->alpn_len = total;
    return 0;
}

SY_EXPORT int sy_tls_set_ticket_rotation(sy_tls *t, uint32_t seconds)
{
    if (!t)
        return SY_EINVAL;
    if (t->in_use)
        return SY_ESTATE;
    if (seconds > SY_TLS_TICKET_MAX_S)
        return SY_ERANGE;
    return set_tickets(t, seconds);
}

/* A TLS listener is a listener with this transport plug-in (net/worker.h): each accepted
 * connection is put under TLS before the server installs its protocol. */
static int listen_attach(sy_conn *c, void *ctx)
{
    return sy__tls_accept(c, ctx);
}

static void listen_release(void *ctx)
{
    sy__tls_unref(ctx);
}

static const sy_listen_tp listen_tp = {listen_attach, listen_release};

/* One key store per server: a context joining a server whose other TLS listeners already
 * have a store with the same rotation takes that one (and drops its own), so tickets move
 * between listeners as they do between workers. */
static void share_keys(sy_server *srv, sy_tls *t)
{
    for (size_t i = 0; t->keys && i < srv->naddrs; i++) {
        const sy_listen_addr *a = &srv->addrs[i];
        const sy_tls *o = a->tp == &listen_tp ? a->tp_ctx : NULL;
        if (o && o != t && o->keys && o->ticket_period_s == t->ticket_period_s) {
            if (o->keys != t->keys) {
                sy__tls_keys_ref(o->keys);
                sy__tls_keys_unref(t->keys);
                t->keys = o->keys;
            }
            return;
        }
    }
}

SY_EXPORT int sy_server_listen_tls(sy_server *srv, const char *addr, sy_tls *tls)
{
    if (!srv || !tls || tls->ncerts == 0)
        return SY_EINVAL;
    int err = sy_server_listen(srv, addr);
    if (err)
        return err;
    if (!tls->in_use)
        share_keys(srv, tls);
    tls->in_use = 1;
    sy__tls_ref(tls);
    srv->addrs[srv->naddrs - 1].tp = &listen_tp;
    srv->addrs[srv->naddrs - 1].tp_ctx = tls;
    return 0;
}

/* ---- per handshake ---- */

const sy_tls_cert *sy__tls_pick_cert(const sy_tls *t, const char *servername)
{
    if (servername && *servername)
        for (size_t i = 0; i < t->ncerts; i++)
            if (X509_check_host(t->certs[i].x509, servername, 0, 0, NULL) == 1)
                return &t->certs[i];
    return &t->certs[0];
}

/* Called once the ClientHello (and its server name) is known, before OpenSSL picks a
 * certificate: swap in the one for that name. The default needs nothing (it came with the
 * context). */
static int cert_cb(SSL *ssl, void *arg)
{
    sy_tls *t = arg;
    const sy_tls_cert *c = sy__tls_pick_cert(t, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    if (c == &t->certs[0])
        return 1;
    /* Clear first: certificates live in per-key-type slots, and a default of another key
     * type left in place could still be chosen. */
    SSL_certs_clear(ssl);
    return SSL_use_cert_and_key(ssl, c->x509, c->key, c->chain, 1) == 1;
}

const unsigned char *sy__tls_alpn_pick(const unsigned char *ours, size_t ours_len,
                                       const unsigned char *theirs, size_t theirs_len,
                                       unsigned char *len)
{
    for (size_t i = 0; i < ours_len; i += 1 + (size_t)ours[i]) {
        const unsigned char *name = ours + i + 1;
        size_t n = ours[i];
        for (size_t j = 0; j < theirs_len;) {
            size_t m = theirs[j];
            if (m == 0 || j + 1 + m > theirs_len)
                return NULL; /* malformed list */
            if (m == n && memcmp(theirs + j + 1, name, n) == 0) {
                *len = (unsigned char)n;
                return name;
            }
            j += 1 + m;
        }
    }
    return NULL;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    sy_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!t->keys) /* tickets off: OpenSSL does not call us then; be safe */
        return enc ? -1 : 0;
    return sy__tls_ticket_cb(t->keys, key_name, iv, cctx, hctx, enc);
}

/* RFC 7301 §3.2: with no protocol in common the server answers no_application_protocol. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    sy_tls *t = arg;
    (void)ssl;
    *out = sy__tls_alpn_pick(t->alpn, t->alpn_len, in, inlen, outlen);
    return *out ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
}
