/* The TLS transport: sy_transport_ops over an SSL object on the connection's socket,
 * non-blocking throughout.
 *
 * Handshake: not a separate step. The server's SSL is in accept state and the client's in
 * connect state, so the first SSL_read or SSL_write runs it; WANT_READ/WANT_WRITE map onto
 * the loop: a read that needs to write sets SY_TP_READ_WANTS_OUT, a write that needs to read
 * sets SY_TP_WRITE_WANTS_IN (src/net/conn.c then waits for that event instead). A stalled
 * handshake is cut by the protocol's first timer (the HTTP/1 header timeout on servers, the
 * connect timeout on WebSocket clients), which the handshake does not re-arm.
 *
 * Reads: SSL_read returns one record at a time, so it is called until the caller's buffer
 * is full, OpenSSL wants more input, or a short record leaves nothing inside OpenSSL (the
 * usual end of a burst: one read(2) per wake-up, as on TCP, instead of a second one that
 * says EAGAIN). Input left inside OpenSSL (a full buffer, read-ahead) raises no epoll event:
 * `pending` tells the connection to read again. EOF and errors that follow data are reported
 * on the next call.
 *
 * Writes: records of up to 16 KiB. A part of the queue of at least a record straight from its
 * buffer (no copy); smaller pieces and file ranges are gathered into one pooled 16 KiB chunk
 * (one copy; pread for files) so that a response head, a frame header or the start of a file
 * share a record instead of each making a tiny one. OpenSSL requires a write that returned
 * WANT_WRITE to be retried with the same bytes and no shorter: the queue keeps those bytes
 * at its head, and the record is rebuilt from them by the same rule, which yields the same
 * bytes and (since the queue only grows) at least as many. */
#include "core/log.h"
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECORD SY_CHUNK_SIZE        /* 16384: the largest TLS record's plaintext */
#define WRITE_BUDGET (512u * 1024u) /* per call: then yield to other connections */

struct sy_tls_conn {
    SSL *ssl;
    sy_conn *c;
    sy_tls *server;   /* the listener's context (a reference), or NULL for clients */
    const char *why;  /* what failed (static text), or NULL */
    long verify;      /* client: the certificate verification result, when it failed */
    int8_t end;       /* input is over: 1 clean (close_notify or EOF), -1 failed */
    uint8_t end_told; /* `end` was returned by read */
    uint8_t more;     /* the last read filled the buffer with input left inside OpenSSL */
    uint8_t hs_done;
    uint8_t sniffed; /* server: the first byte was looked at (plain HTTP?) */
    uint8_t failed;  /* fatal: no more SSL calls that write, no close_notify */
};

static void info_cb(const SSL *ssl, int where, int ret);

sy_tls_conn *sy__tls_conn_new(SSL *ssl, sy_tls *server_ctx)
{
    sy_tls_conn *t = sy__calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = ssl;
    SSL_set_app_data(ssl, t);
    SSL_set_info_callback(ssl, info_cb);
    t->server = server_ctx;
    if (server_ctx)
        sy__tls_ref(server_ctx);
    return t;
}

void sy__tls_conn_free(sy_tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    if (t->server)
        sy__tls_unref(t->server);
    sy__free(t);
}

void sy__tls_attach(sy_conn *c, sy_tls_conn *t)
{
    t->c = c;
    c->tp = &sy__tls_transport;
    c->tp_data = t;
}

int sy__tls_accept(sy_conn *c, sy_tls *tls)
{
    SSL *ssl = SSL_new(tls->ctx);
    if (!ssl || !SSL_set_fd(ssl, c->io.fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return SY_ENOMEM;
    }
    SSL_set_accept_state(ssl);
    sy_tls_conn *t = sy__tls_conn_new(ssl, tls);
    if (!t) {
        SSL_free(ssl);
        return SY_ENOMEM;
    }
    sy__tls_attach(c, t);
    return 0;
}

/* ---- failures ---- */

/* The handshake is done the moment OpenSSL says so, inside SSL_read: a record error in the
 * same read must be reported as such, not as a failed handshake. */
static void info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    sy_tls_conn *t = SSL_get_app_data(ssl);
    if (!(where & SSL_CB_HANDSHAKE_DONE) || !t || t->hs_done)
        return;
    t->hs_done = 1;
    sy_conn *c = t->c;
    if (!c)
        return;
    const unsigned char *alpn;
    unsigned int alen;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
    sy__log(SY_LOG_DEBUG, "%s: TLS handshake done: %s %s%s, ALPN %.*s", sy__conn_peer_str(c),
            SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
            SSL_session_reused(t->ssl) ? " (resumed)" : "", alen ? (int)alen : 4,
            alen ? (const char *)alpn : "none");
}

/* Why a TCP EOF without close_notify is an error, or NULL when it is not: inside a record
 * someone cut the stream (or the client died mid-send); during the handshake the peer gave
 * up. At a record boundary after the handshake it is a peer that skipped close_notify, which
 * HTTP's and WebSocket's own framing make harmless: a plain EOF. */
static const char *eof_problem(const sy_tls_conn *t)
{
    if (!t->hs_done)
        return "the peer closed the connection during the handshake";
    if (SSL_has_pending(t->ssl))
        return "truncated record: the peer closed the connection in the middle of a TLS record";
    return NULL;
}

static void log_failure(const sy_tls_conn *t, sy_conn *c)
{
    sy__log(SY_LOG_INFO, "%s: TLS %s: %s", sy__conn_peer_str(c),
            t->hs_done ? "error" : "handshake failed", t->why);
}

/* The SSL object failed (e from SSL_get_error): record why, log one line for what a peer did
 * wrong, and make the connection close with a TLS error. */
static void fail(sy_conn *c, sy_tls_conn *t, int e)
{
    unsigned long code = ERR_peek_last_error();
    int reason = ERR_GET_REASON(code);
    int err = SY_ETLS;
    t->failed = 1;
    t->end = -1;
    if (!t->server && (t->verify = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
        err = SY_ETLS_VERIFY;
        t->why = "certificate verify failed";
    } else if (e == SSL_ERROR_SYSCALL) {
        /* A reset or a broken pipe: the TCP path does not log those either. */
        t->why = "the connection was reset";
    } else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        /* Only without SSL_OP_IGNORE_UNEXPECTED_EOF (clients): OpenSSL has already sent an
         * alert, so even a harmless EOF leaves nothing to write with. */
        t->why = eof_problem(t);
        if (!t->why) {
            err = 0;
            t->end = 1;
        }
    } else {
        const char *r = ERR_reason_error_string(code);
        t->why = r ? r : "TLS protocol error";
    }
    ERR_clear_error();
    if (err && !c->close_err)
        c->close_err = err; /* the connection closes with it (not a bare SY_EIO) */
    if (t->why && t->server && e != SSL_ERROR_SYSCALL)
        log_failure(t, c);
}

/* SSL_ERROR_ZERO_RETURN: the peer's close_notify, or (servers: SSL_OP_IGNORE_UNEXPECTED_EOF)
 * a TCP EOF without one, which OpenSSL then reports the same way, with no alert sent and the
 * write side still usable: what arrived before it is answered, as over cleartext. */
static void input_ended(sy_conn *c, sy_tls_conn *t)
{
    t->why = eof_problem(t);
    if (!t->why) {
        t->end = 1;
        return;
    }
    t->failed = 1;
    t->end = -1;
    if (!c->close_err)
        c->close_err = SY_ETLS;
    if (t->server)
        log_failure(t, c);
}

/* A plain-text HTTP request on a TLS port (someone typed http:// for https://): answer a
 * short 400 in clear text rather than a TLS alert the client cannot show. The request is
 * read away first so that closing sends FIN, not a reset that could destroy the answer. */
static void answer_plain_http(sy_conn *c, sy_tls_conn *t)
{
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 39\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "400 this port speaks TLS: use https://\n";
    char sink[4096];
    for (int i = 0; i < 16 && recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    ssize_t n = send(c->io.fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* best effort: a short first answer fits any socket buffer */
    shutdown(c->io.fd, SHUT_WR);
    t->failed = 1;
    t->end = -1;
    t->why = "plain HTTP on a TLS port";
    c->close_err = SY_ETLS;
    sy__log(SY_LOG_INFO,
            "%s: TLS handshake failed: plain HTTP request on a TLS port (answered 400)",
            sy__conn_peer_str(c));
}

/* Server, before the handshake: a TLS connection starts with a handshake record (0x16); an
 * upper-case letter is the start of an HTTP method. Returns 1 to go on, or what read says. */
static ssize_t sniff(sy_conn *c, sy_tls_conn *t)
{
    unsigned char b;
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    if (n == 0)
        return 0; /* closed before sending anything: nothing to say */
    t->sniffed = 1;
    if (b >= 'A' && b <= 'Z') {
        answer_plain_http(c, t);
        t->end_told = 1;
        return -EPROTO;
    }
    return 1;
}

/* ---- read ---- */

static ssize_t tls_read(sy_conn *c, void *buf, size_t len)
{
    sy_tls_conn *t = c->tp_data;
    if (t->end) {
        t->end_told = 1;
        return t->end > 0 ? 0 : -EPROTO;
    }
    if (t->server && !t->sniffed) {
        ssize_t r = sniff(c, t);
        if (r <= 0)
            return r;
    }
    size_t got = 0;
    t->more = 0;
    while (got < len) {
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, (uint8_t *)buf + got, len - got, &n);
        if (r == 1) {
            got += n;
            /* A record short of the maximum with nothing behind it inside OpenSSL: the peer
             * most likely sent no more yet, so stop rather than make a read(2) that would only
             * say EAGAIN (epoll is level-triggered: more input wakes us). Full records are
             * bulk transfer: read on. */
            if (n < RECORD && !SSL_has_pending(t->ssl))
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
            c->tp_wants |= SY_TP_READ_WANTS_OUT;
        else if (e == SSL_ERROR_ZERO_RETURN)
            input_ended(c, t);
        else if (e != SSL_ERROR_WANT_READ)
            fail(c, t, e);
        break;
    }
    if (got == len && !t->end)
        t->more = SSL_has_pending(t->ssl) != 0;
    if (got)
        return (ssize_t)got; /* an EOF or error that followed is reported by the next call */
    if (t->end) {
        t->end_told = 1;
        return t->end > 0 ? 0 : -EPROTO;
    }
    return -EAGAIN;
}

static int tls_pending(const sy_conn *c)
{
    const sy_tls_conn *t = c->tp_data;
    return t->more || (t->end && !t->end_told);
}

/* ---- write ---- */

/* Where tls_send is in its input: iov[i] at offset off, then the file range. */
typedef struct cursor {
    const struct iovec *iov;
    int cnt, i;
    size_t off;
    int fd;
    off_t foff;
    size_t fleft;
} cursor;

static void advance(cursor *k, size_t n)
{
    while (n && k->i < k->cnt) {
        size_t room = k->iov[k->i].iov_len - k->off;
        if (n < room) {
            k->off += n;
            return;
        }
        n -= room;
        k->i++;
        k->off = 0;
    }
    k->foff += (off_t)n;
    k->fleft -= n;
}

/* Gather up to RECORD bytes from the cursor (without moving it) into dst. Returns the count,
 * or -EIO when the file cannot be read or ends early. */
static ssize_t gather(const cursor *k, uint8_t *dst)
{
    size_t n = 0;
    for (int i = k->i; i < k->cnt && n < RECORD; i++) {
        size_t off = i == k->i ? k->off : 0;
        size_t m = SY_MIN(k->iov[i].iov_len - off, RECORD - n);
        memcpy(dst + n, (const uint8_t *)k->iov[i].iov_base + off, m);
        n += m;
    }
    size_t want = SY_MIN(k->fleft, RECORD - n), got = 0;
    while (got < want) {
        ssize_t r = pread(k->fd, dst + n + got, want - got, k->foff + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -EIO;
        got += (size_t)r;
    }
    return (ssize_t)(n + got);
}

static ssize_t tls_send(sy_conn *c, const struct iovec *iov, int cnt, int fd, off_t off,
                        size_t flen)
{
    sy_tls_conn *t = c->tp_data;
    if (t->failed)
        return -EPIPE;
    cursor k = {iov, cnt, 0, 0, fd, off, flen};
    sy_chunk *stage = NULL;
    size_t total = 0;
    ssize_t ret = 0;
    while (total < WRITE_BUDGET) {
        while (k.i < k.cnt && k.off == k.iov[k.i].iov_len) {
            k.i++;
            k.off = 0;
        }
        const uint8_t *p;
        size_t n;
        if (k.i < k.cnt && k.iov[k.i].iov_len - k.off >= RECORD) {
            p = (const uint8_t *)k.iov[k.i].iov_base + k.off;
            n = RECORD;
        } else if (k.i < k.cnt || k.fleft) {
            if (!stage && !(stage = sy__chunk_get(c->loop))) {
                ret = -ENOMEM;
                break;
            }
            ssize_t g = gather(&k, stage->data);
            if (g <= 0) {
                t->why = "a file being sent could not be read (it shrank?)";
                ret = -EIO;
                break;
            }
            p = stage->data;
            n = (size_t)g;
        } else {
            break; /* all written */
        }
        size_t w = 0;
        ERR_clear_error();
        int r = SSL_write_ex(t->ssl, p, n, &w);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                c->tp_wants |= SY_TP_WRITE_WANTS_IN;
            else if (e != SSL_ERROR_WANT_WRITE)
                fail(c, t, e);
            ret = t->failed ? -EPIPE : -EAGAIN;
            break;
        }
        total += w;
        advance(&k, w);
    }
    if (stage)
        sy__chunk_put(c->loop, stage);
    return total ? (ssize_t)total : ret;
}

static ssize_t tls_writev(sy_conn *c, const struct iovec *iov, int iovcnt)
{
    return tls_send(c, iov, iovcnt, -1, 0, 0);
}

static ssize_t tls_write_file(sy_conn *c, const struct iovec *iov, int iovcnt, int fd, off_t off,
                              size_t flen)
{
    return tls_send(c, iov, iovcnt, fd, off, flen);
}

/* ---- the end ---- */

/* close_notify, once, best effort (a full socket drops it), and only on a connection whose
 * handshake finished and that did not fail (OpenSSL refuses it then anyway). Sending it also
 * keeps the session resumable: OpenSSL drops sessions of connections that were not shut
 * down. */
static void close_notify(sy_tls_conn *t)
{
    if (!t->hs_done || t->failed || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

static void tls_shutdown_write(sy_conn *c)
{
    close_notify(c->tp_data);
    shutdown(c->io.fd, SHUT_WR);
}

static void tls_destroy(sy_conn *c)
{
    sy_tls_conn *t = c->tp_data;
    if (!t)
        return;
    if (t->server && !t->hs_done && !t->failed && c->close_err == SY_ETIMEDOUT)
        sy__log(SY_LOG_INFO, "%s: TLS handshake failed: timed out", sy__conn_peer_str(c));
    close_notify(t);
    sy__tls_conn_free(t);
    c->tp_data = NULL;
}

static const char *tls_alpn(const sy_conn *c, size_t *len)
{
    const sy_tls_conn *t = c->tp_data;
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    *len = n;
    return n ? (const char *)p : NULL;
}

static const char *tls_error(const sy_conn *c)
{
    const sy_tls_conn *t = c->tp_data;
    static __thread char buf[192];
    if (!t || !t->why)
        return NULL;
    if (t->verify != X509_V_OK)
        snprintf(buf, sizeof(buf), "TLS: %s: %s", t->why, X509_verify_cert_error_string(t->verify));
    else
        snprintf(buf, sizeof(buf), "TLS: %s", t->why);
    return buf;
}

const sy_transport_ops sy__tls_transport = {
    .read = tls_read,
    .writev = tls_writev,
    .shutdown_write = tls_shutdown_write,
    .write_file = tls_write_file,
    .pending = tls_pending,
    .destroy = tls_destroy,
    .alpn = tls_alpn,
    .error = tls_error,
};
