/* The client side (wss://): an SSL that verifies the server's certificate chain against the
 * system store (or a given CA file) and its name against the host, sends SNI and offers
 * ALPN http/1.1. Verification failures end the handshake; the connection's error then says
 * why ("certificate verify failed: ..."). */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <signal.h>

static int is_address(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* OpenSSL writes to the socket with write(2), which raises SIGPIPE on a closed peer; a
 * default disposition would kill the process. Same policy as the server (net/server.c):
 * ignore it unless the application installed a handler of its own. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

static SSL_CTX *client_ctx(const char *ca_file, int insecure, int *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    *err = SY_ENOMEM;
    if (!ctx)
        return NULL;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        goto fail;
    if (!insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
        if (!ok) {
            *err = SY_ETLS_CERT;
            goto fail;
        }
    }
    *err = 0;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int sy__tls_client_new(int fd, const char *host, const char *ca_file, int insecure,
                       sy_tls_conn **out)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    int err;
    SSL_CTX *ctx = client_ctx(ca_file, insecure, &err);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (!ssl)
        goto fail;
    err = SY_ENOMEM;
    if (!SSL_set_fd(ssl, fd))
        goto fail;
    SSL_set_connect_state(ssl);
    /* SNI carries host names only (RFC 6066 §3); SSL_set1_host checks an address against the
     * certificate's IP SANs. */
    if (!is_address(host) && !SSL_set_tlsext_host_name(ssl, host))
        goto fail;
    if (!insecure && !SSL_set1_host(ssl, host))
        goto fail;
    if (SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0) /* 0 is success here */
        goto fail;
    *out = sy__tls_conn_new(ssl, NULL);
    if (!*out)
        goto fail;
    ignore_sigpipe();
    return 0;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return err;
}
