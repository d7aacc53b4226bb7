/* The probe's network steps: DNS, TCP connect, TLS (OpenSSL directly: the probe needs the
 * certificate, the verifier's verdict and ALPN as facts, not as a pass/fail), and reads and
 * writes that never wait past a deadline. Every failure becomes a finding that names the step. */
#include "cli/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char last_err[160];

const char *probe_err_text(void)
{
    return last_err;
}

double probe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - probe_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)(left + 1));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A fatal finding on the main walk, an error elsewhere. */
static sy_probe_finding *fail(probe *P, const char *path, int main, sy_probe_id id, const char *msg)
{
    sy_probe_finding *f = sy_probe_add(&P->rep, path, id, "%s", msg);
    if (f && !main)
        f->sev = SY_PROBE_ERROR;
    return f;
}

int probe_resolve(probe *P)
{
    if (P->resolved)
        return 0;
    double t0 = probe_now_ms();
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof(port), "%d", P->port);
    /* getaddrinfo cannot be bounded by a deadline; its own resolver timeouts apply (a few
     * seconds): the probe reports the time it took. */
    int rc = getaddrinfo(P->host, port, &hints, &res);
    double ms = probe_now_ms() - t0;
    if (rc != 0 || !res) {
        char msg[400];
        snprintf(msg, sizeof(msg), "Could not resolve \"%s\" (step: dns): %s.", P->host,
                 gai_strerror(rc));
        fail(P, "net", 1, SY_PF_NET_DNS_FAILED, msg);
        sy_probe_step_add(&P->rep, "net", "dns", 0, ms, "%s", gai_strerror(rc));
        return -1;
    }
    memcpy(&P->addr, res->ai_addr, res->ai_addrlen);
    P->addrlen = res->ai_addrlen;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (res->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof(ip));
    else if (res->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, sizeof(ip));
    snprintf(P->addrstr, sizeof(P->addrstr), res->ai_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
             P->port);
    freeaddrinfo(res);
    P->resolved = 1;
    sy_probe_step_add(&P->rep, "net", "dns", 1, ms, "%s -> %s", P->host, ip);
    return 0;
}

static int tcp_connect(probe *P, const char *path, pconn *c, int main, int steps)
{
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    char msg[400];
    c->fd = socket(P->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(msg, sizeof(msg), "socket: %s", strerror(errno));
        fail(P, path, main, SY_PF_NET_CONNECT_FAILED, msg);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = connect(c->fd, (struct sockaddr *)&P->addr, P->addrlen), err = 0;
    if (rc < 0 && errno != EINPROGRESS) {
        err = errno;
    } else if (rc < 0) {
        int w = wait_fd(c->fd, POLLOUT, deadline);
        socklen_t el = sizeof(err);
        if (w == 0) {
            snprintf(msg, sizeof(msg),
                     "Connecting to %s timed out after %.1f s (step: connect): nothing answered.",
                     P->addrstr, P->timeout_ms / 1000.0);
            fail(P, path, main, SY_PF_NET_CONNECT_TIMEOUT, msg);
            if (steps)
                sy_probe_step_add(&P->rep, path, "connect", 0, probe_now_ms() - t0, "%s timed out",
                                  P->addrstr);
            return -1;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
    }
    if (err) {
        snprintf(msg, sizeof(msg), "Connecting to %s failed (step: connect): %s.", P->addrstr,
                 strerror(err));
        fail(P, path, main,
             err == ECONNREFUSED ? SY_PF_NET_CONNECT_REFUSED
             : err == ETIMEDOUT  ? SY_PF_NET_CONNECT_TIMEOUT
                                 : SY_PF_NET_CONNECT_FAILED,
             msg);
        if (steps)
            sy_probe_step_add(&P->rep, path, "connect", 0, probe_now_ms() - t0, "%s: %s",
                              P->addrstr, strerror(err));
        return -1;
    }
    if (steps)
        sy_probe_step_add(&P->rep, path, "connect", 1, probe_now_ms() - t0, "%s", P->addrstr);
    return 0;
}

static void x509_name(X509_NAME *n, char *out, size_t cap)
{
    out[0] = 0;
    if (n)
        X509_NAME_oneline(n, out, (int)cap);
}

static sy_probe_tls_verify map_verify(long v)
{
    switch (v) {
    case X509_V_OK:
        return SY_PROBE_TLS_OK;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return SY_PROBE_TLS_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return SY_PROBE_TLS_NOT_YET_VALID;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return SY_PROBE_TLS_SELF_SIGNED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        return SY_PROBE_TLS_UNKNOWN_ISSUER;
    default:
        return SY_PROBE_TLS_OTHER;
    }
}

/* The offer in wire format -> "h2,http/1.1". */
static void alpn_text(const char *alpn, size_t alpn_len, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < alpn_len && o + 1 < cap;) {
        size_t n = (unsigned char)alpn[i++];
        if (o)
            out[o++] = ',';
        for (size_t k = 0; k < n && i < alpn_len && o + 1 < cap; k++)
            out[o++] = alpn[i++];
    }
    out[o] = 0;
}

static void tls_facts(probe *P, pconn *c, const char *alpn, size_t alpn_len)
{
    sy_probe_tls_info *t = &P->tls_info;
    memset(t, 0, sizeof(*t));
    t->version = SSL_version(c->ssl);
    snprintf(t->version_name, sizeof(t->version_name), "%s", SSL_get_version(c->ssl));
    snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(c->ssl));
    alpn_text(alpn, alpn_len, t->alpn_offered, sizeof(t->alpn_offered));
    snprintf(t->alpn, sizeof(t->alpn), "%s", c->alpn);
    snprintf(t->host, sizeof(t->host), "%s", P->host);
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert) {
        x509_name(X509_get_subject_name(cert), t->subject, sizeof(t->subject));
        x509_name(X509_get_issuer_name(cert), t->issuer, sizeof(t->issuer));
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        struct tm tm;
        if (na && ASN1_TIME_to_tm(na, &tm) == 1)
            t->not_after = (int64_t)timegm(&tm);
        unsigned char buf[16];
        int is_ip = inet_pton(AF_INET, P->host, buf) == 1 || inet_pton(AF_INET6, P->host, buf) == 1;
        t->host_ok = is_ip ? X509_check_ip_asc(cert, P->host, 0) == 1
                           : X509_check_host(cert, P->host, strlen(P->host), 0, NULL) == 1;
        X509_free(cert);
    }
    t->now = (int64_t)time(NULL);
    long v = SSL_get_verify_result(c->ssl);
    t->verify = map_verify(v);
    snprintf(t->verify_text, sizeof(t->verify_text), "%s", X509_verify_cert_error_string(v));
    t->insecure = P->insecure;
    P->have_tls_info = 1;
}

/* Sees the server's handshake messages before OpenSSL judges them: OpenSSL fails a handshake
 * whose ALPN was not offered with a bare "bad extension", and the probe names it. */
static void tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                    SSL *ssl, void *arg)
{
    pconn *c = arg;
    (void)version;
    (void)ssl;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && !c->alpn_seen[0])
        sy_probe_tls_alpn_in_hello(buf, len, c->alpn_seen, sizeof(c->alpn_seen));
}

static int tls_handshake(probe *P, const char *path, pconn *c, const char *alpn, size_t alpn_len,
                         int main, int steps)
{
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    char msg[400];
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return -1;
    /* Verification runs and its verdict is kept (SSL_get_verify_result), but never stops the
     * handshake: a bad certificate is a finding, and the rest is still worth checking. */
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    if (P->cafile)
        SSL_CTX_load_verify_locations(c->ctx, P->cafile, NULL);
    else
        SSL_CTX_set_default_verify_paths(c->ctx);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    unsigned char tmp[16];
    if (inet_pton(AF_INET, P->host, tmp) != 1 && inet_pton(AF_INET6, P->host, tmp) != 1)
        SSL_set_tlsext_host_name(c->ssl, P->host);
    if (alpn && alpn_len)
        SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn, (unsigned)alpn_len);
    SSL_set_msg_callback(c->ssl, tls_msg);
    SSL_set_msg_callback_arg(c->ssl, c);
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(c->ssl, rc), w = 0;
        if (e == SSL_ERROR_WANT_READ)
            w = wait_fd(c->fd, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            w = wait_fd(c->fd, POLLOUT, deadline);
        else
            w = -1;
        if (w > 0)
            continue;
        sy_probe_finding *f;
        if (w == 0) {
            snprintf(msg, sizeof(msg),
                     "The TLS handshake with %s did not finish within %.1f s (step: tls).",
                     P->addrstr, P->timeout_ms / 1000.0);
            f = fail(P, path, main, SY_PF_NET_TIMEOUT, msg);
            sy_probe_hint(f, "the port accepts TCP but does not answer a TLS ClientHello: a "
                             "cleartext server waiting for a request, or a stuck server");
        } else {
            char reason[200];
            unsigned long le = ERR_peek_last_error();
            if (le)
                ERR_error_string_n(le, reason, sizeof(reason));
            else
                snprintf(reason, sizeof(reason), "%s",
                         e == SSL_ERROR_SYSCALL ? "the connection closed" : "handshake failure");
            char offer[64];
            alpn_text(alpn, alpn_len, offer, sizeof(offer));
            if (c->alpn_seen[0] && !sy_probe_tls_alpn_offered(offer, c->alpn_seen)) {
                /* The server spoke TLS but chose what nobody asked for: a TLS error of the
                 * server's, not an unreachable one. */
                snprintf(msg, sizeof(msg),
                         "The server selected ALPN \"%s\"; the probe offered \"%s\" (step: "
                         "tls), so the TLS handshake failed: %s.",
                         c->alpn_seen, offer, reason);
                f = fail(P, path, 0, SY_PF_TLS_ALPN_UNEXPECTED, msg);
                sy_probe_hint(f, "RFC 7301 §3.2: the server must select one of the client's "
                                 "protocols or none; clients abort the handshake");
                if (steps)
                    sy_probe_step_add(&P->rep, path, "tls", 0, probe_now_ms() - t0,
                                      "ALPN %s not offered", c->alpn_seen);
                return -1;
            }
            snprintf(msg, sizeof(msg), "The TLS handshake with %s failed (step: tls): %s.",
                     P->addrstr, reason);
            f = fail(P, path, main, SY_PF_TLS_HANDSHAKE_FAILED, msg);
            if (strstr(reason, "wrong version number") || strstr(reason, "packet length"))
                sy_probe_hint(f, "the server answered with something that is not TLS, most "
                                 "likely cleartext HTTP: use ws:// or http://");
            else if (strstr(reason, "no application protocol"))
                sy_probe_hint(f,
                              "the server accepts none of the ALPN protocols offered (%s): "
                              "it probably speaks only h2, where WebSocket needs RFC 8441 "
                              "(probe the https:// URL)",
                              alpn_len ? offer : "none");
            else if (strstr(reason, "alert"))
                sy_probe_hint(f, "the server sent a TLS alert: it refused the handshake");
        }
        if (steps)
            sy_probe_step_add(&P->rep, path, "tls", 0, probe_now_ms() - t0, "failed");
        return -1;
    }
    const unsigned char *sel = NULL;
    unsigned sel_len = 0;
    SSL_get0_alpn_selected(c->ssl, &sel, &sel_len);
    snprintf(c->alpn, sizeof(c->alpn), "%.*s", (int)sel_len, sel ? (const char *)sel : "");
    int first = !P->have_tls_info; /* the certificate is checked once, on the first */
    if (first) {
        tls_facts(P, c, alpn, alpn_len);
        sy_probe_tls_check(&P->rep, "tls", &P->tls_info);
    }
    if (steps)
        sy_probe_step_add(&P->rep, path, "tls", 1, probe_now_ms() - t0, "%s, ALPN %s%s%s",
                          SSL_get_version(c->ssl), c->alpn[0] ? c->alpn : "none",
                          first && P->tls_info.subject[0] ? ", certificate " : "",
                          first ? P->tls_info.subject : "");
    return 0;
}

int probe_open(probe *P, const char *path, pconn *c, const char *alpn, size_t alpn_len, int main,
               int steps)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    /* The first connection of a run decides "could not connect" (exit 2), whichever walk
     * opens it; once one got through, a later failure is an error of that walk. */
    main = main || !P->connected;
    if (P->unreachable || probe_resolve(P) < 0 || tcp_connect(P, path, c, main, steps) < 0 ||
        (P->tls && tls_handshake(P, path, c, alpn, alpn_len, main, steps) < 0)) {
        if (main)
            P->unreachable = 1;
        return -1;
    }
    P->connected = 1;
    return 0;
}

void probe_close(pconn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->ctx) {
        SSL_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

ssize_t probe_read(pconn *c, void *buf, size_t cap, double deadline)
{
    for (;;) {
        short ev = POLLIN;
        if (c->ssl) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, buf, (int)(cap > 1 << 30 ? 1 << 30 : cap));
            if (n > 0)
                return n;
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN)
                return PN_EOF;
            if (e == SSL_ERROR_WANT_WRITE) {
                ev = POLLOUT;
            } else if (e != SSL_ERROR_WANT_READ) {
                unsigned long le = ERR_peek_last_error();
                if (e == SSL_ERROR_SYSCALL && !le && errno == 0)
                    return PN_EOF; /* closed without close_notify */
                snprintf(last_err, sizeof(last_err), "%s",
                         le && ERR_reason_error_string(le) ? ERR_reason_error_string(le)
                                                           : strerror(errno));
                c->tls_alert = le && strstr(last_err, "alert");
                return PN_ERR;
            }
        } else {
            ssize_t n = recv(c->fd, buf, cap, 0);
            if (n > 0)
                return n;
            if (n == 0)
                return PN_EOF;
            if (errno != EAGAIN && errno != EINTR) {
                snprintf(last_err, sizeof(last_err), "%s", strerror(errno));
                return PN_ERR;
            }
        }
        int w = wait_fd(c->fd, ev, deadline);
        if (w == 0)
            return PN_TIMEOUT;
        if (w < 0) {
            snprintf(last_err, sizeof(last_err), "%s", strerror(errno));
            return PN_ERR;
        }
    }
}

int probe_write(pconn *c, const void *buf, size_t len, double deadline)
{
    const char *p = buf;
    while (len) {
        ssize_t n;
        short ev = POLLOUT;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, p, (int)len);
            n = r;
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    ev = POLLIN;
                else if (e != SSL_ERROR_WANT_WRITE) {
                    unsigned long le = ERR_peek_last_error();
                    const char *why = le ? ERR_reason_error_string(le) : NULL;
                    snprintf(last_err, sizeof(last_err), "TLS write failed%s%s", why ? ": " : "",
                             why ? why : "");
                    c->tls_alert = why && strstr(why, "alert");
                    if (!c->tls_alert) {
                        /* The peer may have refused with an alert that is still unread
                         * (the write then fails on the closed socket): read it. */
                        char tmp[256];
                        (void)probe_read(c, tmp, sizeof(tmp), probe_now_ms());
                    }
                    return PN_ERR;
                }
                n = 0;
            }
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(last_err, sizeof(last_err), "%s", strerror(errno));
                return PN_ERR;
            }
            if (n < 0)
                n = 0;
        }
        p += n;
        len -= (size_t)n;
        if (len && wait_fd(c->fd, ev, deadline) <= 0) {
            snprintf(last_err, sizeof(last_err), "write timed out");
            return PN_TIMEOUT;
        }
    }
    return 0;
}

int probe_tls_refused(probe *P, const char *path, pconn *c, int main, const char *step)
{
    char msg[400];
    if (!c->ssl || !c->tls_alert)
        return 0;
    snprintf(msg, sizeof(msg),
             "The server ended the TLS session with an alert right after the handshake (step: "
             "%s): %s.",
             step, last_err);
    sy_probe_finding *f = fail(P, path, main, SY_PF_TLS_HANDSHAKE_FAILED, msg);
    if (strstr(last_err, "certificate required") || strstr(last_err, "handshake failure") ||
        strstr(last_err, "bad certificate") || strstr(last_err, "unknown ca"))
        sy_probe_hint(f, "the server requires a client certificate (TLS 1.3 servers refuse a "
                         "missing or unknown one after the handshake, so it shows at the first "
                         "read or write); present one, or check the server's client-certificate "
                         "settings");
    else
        sy_probe_hint(f, "the server accepted the handshake, then refused the session: see the "
                         "alert");
    return 1;
}

int probe_read_head(probe *P, const char *path, pconn *c, char *buf, size_t cap, size_t *len,
                    sy_probe_head *h, int main, const char *what)
{
    double t0 = probe_now_ms(), deadline = t0 + P->timeout_ms;
    char msg[400], q[120];
    int interim = 0;
    for (;;) { /* *len bytes may be there already (a caller that peeked) */
        const char *detail = NULL;
        if (*len) {
            ssize_t n = sy_probe_head_parse(buf, *len, 0, h, &detail);
            if (n > 0 && h->status >= 100 && h->status < 200 && h->status != 101 && interim < 8) {
                /* An interim answer (100 Continue, 103 Early Hints): clients read past it to
                 * the final one (RFC 9110 §15.2), and so does the probe. */
                interim++;
                memmove(buf, buf + n, *len - (size_t)n);
                *len -= (size_t)n;
                continue;
            }
            if (n > 0)
                return 1;
            if (n < 0) {
                sy_probe_finding *f;
                if (n == SY_PROBE_HEAD_NOT_HTTP) {
                    const char *kind = sy_probe_classify_bytes((const uint8_t *)buf, *len);
                    f = sy_probe_add(&P->rep, path, SY_PF_HTTP_NOT_HTTP,
                                     "The answer to the %s is not HTTP; it starts with \"%s\".",
                                     what, sy_probe_quote(q, 64, buf, *len < 32 ? *len : 32));
                    sy_probe_hint(f, "%s",
                                  kind ? kind
                                       : "unrecognised bytes: another protocol "
                                         "on this port, or a broken server");
                } else if (n == SY_PROBE_HEAD_TOO_LARGE) {
                    sy_probe_add(&P->rep, path, SY_PF_HTTP_HEAD_TOO_LARGE,
                                 "The answer to the %s: %s; the probe stopped reading.", what,
                                 detail);
                } else {
                    f = sy_probe_add(&P->rep, path, SY_PF_HTTP_BAD_RESPONSE,
                                     "The answer to the %s is malformed: %s (\"%s\").", what,
                                     detail, sy_probe_quote(q, 64, h->bad_line, h->bad_len));
                    const char *why = sy_probe_head_bad_hint(h);
                    if (why)
                        sy_probe_hint(f, "%s", why);
                }
                return 0;
            }
        }
        if (*len >= cap) {
            sy_probe_add(&P->rep, path, SY_PF_HTTP_HEAD_TOO_LARGE,
                         "The answer to the %s has a head larger than %zu bytes.", what, cap);
            return 0;
        }
        ssize_t n = probe_read(c, buf + *len, cap - *len, deadline);
        if (n > 0) {
            *len += (size_t)n;
            continue;
        }
        sy_probe_finding *f;
        if (n == PN_TIMEOUT) {
            snprintf(msg, sizeof(msg),
                     "No complete answer to the %s within %.1f s (step: %s); %zu bytes arrived.",
                     what, P->timeout_ms / 1000.0, what, *len);
            f = fail(P, path, main && *len == 0, SY_PF_NET_TIMEOUT, msg);
            if (f && !main)
                f->sev = SY_PROBE_ERROR;
        } else if (n == PN_ERR && probe_tls_refused(P, path, c, main && *len == 0, what)) {
            return 0;
        } else {
            snprintf(msg, sizeof(msg),
                     "The connection %s before a complete answer to the %s "
                     "(step: %s); %zu bytes arrived.",
                     n == PN_EOF ? "closed" : "failed", what, what, *len);
            f = fail(P, path, main && *len == 0, SY_PF_NET_CLOSED, msg);
            if (n == PN_ERR)
                sy_probe_hint(f, "%s", last_err);
        }
        if (f && *len && f->sev == SY_PROBE_FATAL)
            f->sev = SY_PROBE_ERROR;
        return 0;
    }
}

void probe_read_body(probe *P, const char *path, pconn *c, const char *buf, size_t len,
                     const sy_probe_head *h, sy_probe_body *b)
{
    /* Enough to quote what the server says, never the whole of an endless body. */
    const uint64_t cap = 256 * 1024;
    double deadline = probe_now_ms() + (P->timeout_ms < 2000 ? P->timeout_ms : 2000);
    char tmp[16384];
    sy_probe_body_init(b, h, 0);
    size_t off = h->head_len;
    if (off < len)
        sy_probe_body_feed(b, (const uint8_t *)buf + off, len - off);
    ssize_t n = 1;
    while (!b->done && b->total < cap) {
        n = probe_read(c, tmp, sizeof(tmp), deadline);
        if (n <= 0) {
            if (n == PN_EOF && sy_probe_body_close_delimited(b))
                b->done = 1;
            break;
        }
        sy_probe_body_feed(b, (const uint8_t *)tmp, (size_t)n);
    }
    if (b->error) {
        sy_probe_add(&P->rep, path, SY_PF_HTTP_BAD_RESPONSE,
                     "The body of the %d answer is malformed: %s.", h->status, b->detail);
    } else if (!b->done && (b->total >= cap || n == PN_TIMEOUT)) {
        sy_probe_add(&P->rep, path, SY_PF_HTTP_BODY_UNBOUNDED,
                     "The %s body of the %d answer had not ended after %llu KiB%s; the probe "
                     "stopped reading.",
                     b->mode == 2   ? "chunked"
                     : b->mode == 1 ? "declared"
                                    : "close-delimited",
                     h->status, (unsigned long long)(b->total / 1024),
                     n == PN_TIMEOUT ? " and 2 s" : "");
    }
}
