/* The TLS transport under a real connection and loop, over a socketpair with a small send
 * buffer:
 *  - reads: 3 MiB arrive while the protocol consumes all but one byte and pauses now and
 *    then, so input often waits inside OpenSSL where epoll cannot see it (`pending`);
 *  - writes: a few MiB queued as small copies, by-reference buffers around the record size
 *    and file ranges, read by a slow client, so that SSL_write returns WANT_WRITE mid-record
 *    again and again and must be retried with the same bytes: the client checks every byte
 *    and the close_notify at the end;
 *  - a client connection that writes before its handshake (SSL_write wants to read). */
#include "harness.h"
#include "tls/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <pthread.h>
#include <sys/socket.h>

#define IN_TOTAL (3u << 20)

static uint8_t pattern_at(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

/* ---- the plan of writes, and the bytes it must produce ---- */

enum { OP_COPY, OP_REF, OP_FILE };
typedef struct op {
    int kind;
    size_t off, len; /* REF: into refbuf; FILE: into the file */
} op;

static op plan[4096];
static size_t nplan;
static uint8_t *expect, *refbuf, *filebuf;
static size_t expect_len;
static char file_path[64];
#define REFBUF (256 * 1024)
#define FILESZ (512 * 1024)

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

static void make_plan(void)
{
    static const size_t sizes[] = {16383, 16384, 16385, 40000, 70000, 1, 100};
    refbuf = malloc(REFBUF);
    filebuf = malloc(FILESZ);
    for (size_t i = 0; i < REFBUF; i++)
        refbuf[i] = (uint8_t)rnd();
    for (size_t i = 0; i < FILESZ; i++)
        filebuf[i] = (uint8_t)rnd();
    snprintf(file_path, sizeof(file_path), "/tmp/sy-tls-file-XXXXXX");
    int fd = mkstemp(file_path);
    if (fd < 0 || write(fd, filebuf, FILESZ) != FILESZ)
        abort();
    close(fd);
    expect = malloc(8u << 20);
    while (nplan < SY_ARRAY_LEN(plan) && expect_len < (4u << 20)) {
        op *o = &plan[nplan++];
        o->kind = (int)(rnd() % 3);
        if (o->kind == OP_COPY) {
            o->len = 1 + rnd() % 300;
            o->off = rnd() % (REFBUF - o->len);
            memcpy(expect + expect_len, refbuf + o->off, o->len);
        } else if (o->kind == OP_REF) {
            o->len = sizes[rnd() % SY_ARRAY_LEN(sizes)];
            o->off = rnd() % (REFBUF - o->len);
            memcpy(expect + expect_len, refbuf + o->off, o->len);
        } else {
            o->len = rnd() % 4 == 0 ? 1 + rnd() % 10 : 1 + rnd() % 100000;
            o->off = rnd() % (FILESZ - o->len);
            memcpy(expect + expect_len, filebuf + o->off, o->len);
        }
        expect_len += o->len;
    }
}

/* ---- the server side: a protocol on a TLS connection ---- */

typedef struct srv_state {
    size_t rx;
    unsigned reads;
    int bad_input;
    int closed, close_err;
    int refs_out; /* by-reference buffers not yet released */
} srv_state;

static srv_state S;
static sy_loop *loop;
static int loop_users;

static void ref_done(const void *data, void *ud)
{
    (void)data;
    (void)ud;
    S.refs_out--;
}

static void queue_plan(sy_conn *c)
{
    for (size_t i = 0; i < nplan; i++) {
        const op *o = &plan[i];
        int e = 0;
        if (o->kind == OP_COPY) {
            e = sy__conn_write(c, refbuf + o->off, o->len);
        } else if (o->kind == OP_REF) {
            S.refs_out++;
            e = sy__conn_write_ref(c, refbuf + o->off, o->len, ref_done, NULL);
        } else {
            int fd = open(file_path, O_RDONLY | O_CLOEXEC);
            e = sy__conn_write_file(c, fd, (off_t)o->off, o->len);
        }
        if (e)
            abort();
    }
    sy__conn_close(c, 0, SY_CLOSE_FLUSH);
}

static ssize_t srv_read(sy_bstream *s, uint8_t *data, size_t len)
{
    sy_conn *c = sy__conn_of(s);
    for (size_t i = 0; i < len; i++)
        if (data[i] != pattern_at(S.rx + i))
            S.bad_input = 1;
    /* Leave one byte for next time: the next read then goes into a small buffer behind it,
     * which fills while OpenSSL still holds input. */
    size_t n = len > 1 && S.rx + len < IN_TOTAL ? len - 1 : len;
    S.rx += n;
    S.reads++;
    if (S.rx == IN_TOTAL) {
        queue_plan(c);
    } else if (S.reads % 5 == 0) {
        sy__conn_pause_read(c);
        sy__conn_set_timeout(c, 1);
    }
    return (ssize_t)n;
}

static void srv_timer(sy_bstream *s)
{
    sy__conn_resume_read(sy__conn_of(s));
}

static void srv_close(sy_bstream *s, int err)
{
    (void)s;
    S.closed = 1;
    S.close_err = err;
    if (--loop_users == 0)
        sy_loop_stop(loop);
}

static const sy_conn_proto srv_proto = {"test-tls-server", srv_read, NULL,      NULL,
                                        srv_timer,         NULL,     srv_close, NULL};

/* ---- the peer: a blocking OpenSSL client in a thread ---- */

typedef struct peer {
    int fd;
    int ok_handshake, ok_bytes, ok_close_notify;
    size_t got;
} peer;

static void *peer_main(void *arg)
{
    peer *p = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, p->fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    p->ok_handshake = SSL_connect(ssl) == 1;
    if (!p->ok_handshake)
        goto out;
    uint8_t *buf = malloc(70000);
    size_t sent = 0;
    while (sent < IN_TOTAL) {
        size_t n = SY_MIN(1 + rnd() % 65536, IN_TOTAL - sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_at(sent + i);
        size_t w;
        if (SSL_write_ex(ssl, buf, n, &w) != 1)
            break;
        sent += w;
    }
    /* Read slowly at first so that the server's socket fills and its writes stall. */
    usleep(200 * 1000);
    p->ok_bytes = 1;
    for (;;) {
        size_t n;
        size_t want = p->got < (256u << 10) ? 700 : 70000;
        if (SSL_read_ex(ssl, buf, want, &n) != 1) {
            p->ok_close_notify = SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
            break;
        }
        if (p->got + n > expect_len || memcmp(buf, expect + p->got, n) != 0)
            p->ok_bytes = 0;
        p->got += n;
        if (p->got < (256u << 10) && p->got % 7 == 0)
            usleep(1000);
    }
    SSL_shutdown(ssl);
    free(buf);
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    shutdown(p->fd, SHUT_RDWR);
    close(p->fd);
    return NULL;
}

static sy_tls *server_ctx(void)
{
    sy_tls *t;
    if (sy_tls_new(&t) < 0 || sy_tls_add_self_signed(t, NULL) < 0)
        abort();
    return t;
}

TEST(reads_and_stalled_writes_keep_every_byte)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 8192;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_tls *t = server_ctx();
    sy_conn *c = sy__conn_new(loop, sv[0], &sy__tcp_transport, &srv_proto, NULL);
    CHECK(c != NULL);
    CHECK_EQ(sy__tls_accept(c, t), 0);
    sy_tls_free(t); /* the connection holds the context */
    loop_users = 1;
    peer p = {.fd = sv[1]};
    pthread_t th;
    pthread_create(&th, NULL, peer_main, &p);
    sy_loop_run(loop);
    pthread_join(th, NULL);
    sy_loop_free(loop);
    CHECK(p.ok_handshake);
    CHECK_EQ(S.bad_input, 0);
    CHECK_EQ(S.rx, IN_TOTAL);
    CHECK(S.reads > 10);
    CHECK_EQ(p.got, expect_len);
    CHECK(p.ok_bytes);
    CHECK(p.ok_close_notify);
    CHECK(S.closed);
    CHECK_EQ(S.refs_out, 0);
}

/* ---- client side: writing before the handshake is done ---- */

#define EARLY (200u * 1024u)
static size_t server_got, client_got;
static int client_closed_err = 1;

static char server_alpn[16];

static ssize_t early_srv_read(sy_bstream *s, uint8_t *data, size_t len)
{
    sy_conn *c = sy__conn_of(s);
    (void)data;
    size_t alen;
    const char *alpn = sy__conn_alpn(c, &alen);
    if (alpn && alen < sizeof(server_alpn))
        memcpy(server_alpn, alpn, alen);
    server_got += len;
    if (server_got == EARLY) {
        (void)sy__conn_write(c, "done", 4);
        sy__conn_close(c, 0, SY_CLOSE_FLUSH);
    }
    return (ssize_t)len;
}

static void early_close(sy_bstream *s, int err)
{
    (void)s;
    (void)err;
    if (--loop_users == 0)
        sy_loop_stop(loop);
}

static ssize_t early_cli_read(sy_bstream *s, uint8_t *data, size_t len)
{
    sy_conn *c = sy__conn_of(s);
    client_got += len;
    if (client_got >= 4 && !memcmp(data + len - 4, "done", 4))
        sy__conn_close(c, 0, SY_CLOSE_FLUSH);
    return (ssize_t)len;
}

static void early_cli_close(sy_bstream *s, int err)
{
    client_closed_err = err;
    early_close(s, err);
}

static const sy_conn_proto early_srv = {"early-server", early_srv_read, NULL,        NULL,
                                        NULL,           NULL,           early_close, NULL};
static const sy_conn_proto early_cli = {"early-client", early_cli_read,  NULL, NULL, NULL,
                                        NULL,           early_cli_close, NULL};

TEST(client_writes_before_its_handshake)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_tls *t = server_ctx();
    sy_conn *s = sy__conn_new(loop, sv[0], &sy__tcp_transport, &early_srv, NULL);
    CHECK_EQ(sy__tls_accept(s, t), 0);
    sy_tls_free(t);
    sy_tls_conn *tc;
    CHECK_EQ(sy__tls_client_new(sv[1], "localhost", NULL, 1, &tc), 0);
    sy_conn *c = sy__conn_new(loop, sv[1], &sy__tcp_transport, &early_cli, NULL);
    sy__tls_attach(c, tc);
    uint8_t *big = calloc(1, EARLY);
    CHECK_EQ(sy__conn_write(c, big, EARLY), 0);
    free(big);
    loop_users = 2;
    sy_loop_run(loop);
    sy_loop_free(loop);
    CHECK_EQ(server_got, EARLY);
    CHECK_EQ(client_got, 4);
    CHECK(!strcmp(server_alpn, "http/1.1")); /* the selected protocol, per connection */
    CHECK_EQ(client_closed_err, 0);
}

/* The client refuses a certificate it cannot verify; the error says so. */
static const char *verify_detail;
static int verify_err;
static void verify_cli_close(sy_bstream *s, int err)
{
    sy_conn *c = sy__conn_of(s);
    verify_err = err;
    verify_detail = c->tp->error ? c->tp->error(c) : NULL;
    if (verify_detail)
        verify_detail = strdup(verify_detail);
    early_close(s, err);
}
static const sy_conn_proto verify_cli = {
    "verify-client", early_cli_read, NULL, NULL, NULL, NULL, verify_cli_close, NULL};

TEST(client_verifies_the_certificate)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(sy_loop_new(&loop), 0);
    sy_tls *t = server_ctx();
    server_got = 0;
    sy_conn *s = sy__conn_new(loop, sv[0], &sy__tcp_transport, &early_srv, NULL);
    CHECK_EQ(sy__tls_accept(s, t), 0);
    sy_tls_free(t);
    sy_tls_conn *tc;
    CHECK_EQ(sy__tls_client_new(sv[1], "localhost", NULL, 0, &tc), 0);
    sy_conn *c = sy__conn_new(loop, sv[1], &sy__tcp_transport, &verify_cli, NULL);
    sy__tls_attach(c, tc);
    CHECK_EQ(sy__conn_write(c, "x", 1), 0);
    loop_users = 2;
    sy_loop_run(loop);
    sy_loop_free(loop);
    CHECK_EQ(verify_err, SY_ETLS_VERIFY);
    CHECK(verify_detail && strstr(verify_detail, "certificate verify failed"));
    CHECK(strstr(verify_detail, "self-signed"));
    CHECK_EQ(server_got, 0);
    free((void *)verify_detail);
}

int main(void)
{
    alarm(120); /* a lost wakeup would hang: fail instead */
    make_plan();
    RUN(reads_and_stalled_writes_keep_every_byte);
    RUN(client_writes_before_its_handshake);
    RUN(client_verifies_the_certificate);
    unlink(file_path);
    free(expect);
    free(refbuf);
    free(filebuf);
    return sy_t_summary();
}
