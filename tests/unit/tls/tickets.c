/* Session-ticket keys (src/tls/tickets.c) on a fake clock: rotation at period boundaries,
 * tickets opened by the previous keys (and renewed), refused once their key retired, retired
 * keys wiped, the OpenSSL callback sealing and opening a ticket, and sessions really
 * resumed between two SSL_CTXs sharing a store (as two listeners of a server do). */
#include "harness.h"
#include "tls/tls.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

#define P 10000u /* ms per period */

static sy_tls_keys *store(void)
{
    sy_tls_keys *k = NULL;
    if (sy__tls_keys_new(P, fake_clock, NULL, &k) != 0)
        abort();
    return k;
}

TEST(rotation_keeps_two_previous_keys_then_forgets)
{
    fake_now = 1000000;
    sy_tls_keys *k = store();
    sy_tls_key k0, k1, got;
    CHECK_EQ(sy__tls_keys_current(k, &k0), 0);
    CHECK_EQ(sy__tls_keys_find(k, k0.name, &got), 1); /* current */
    CHECK(!memcmp(&got, &k0, sizeof(got)));
    fake_now += P - 1; /* still the first period */
    CHECK_EQ(sy__tls_keys_current(k, &k1), 0);
    CHECK(!memcmp(&k1, &k0, sizeof(k1)));
    fake_now += 1; /* rotation */
    CHECK_EQ(sy__tls_keys_current(k, &k1), 0);
    CHECK(memcmp(k1.name, k0.name, 16) != 0);
    CHECK(memcmp(k1.aes, k0.aes, 32) != 0 && memcmp(k1.hmac, k0.hmac, 32) != 0);
    CHECK_EQ(sy__tls_keys_find(k, k1.name, &got), 1);
    CHECK_EQ(sy__tls_keys_find(k, k0.name, &got), 2); /* previous: accept and renew */
    CHECK(!memcmp(&got, &k0, sizeof(got)));
    fake_now += P; /* k0 two rotations old: still accepted */
    CHECK_EQ(sy__tls_keys_find(k, k0.name, &got), 2);
    CHECK_EQ(sy__tls_keys_find(k, k1.name, &got), 2);
    fake_now += P; /* k0 retired */
    CHECK_EQ(sy__tls_keys_find(k, k0.name, &got), 0);
    CHECK_EQ(sy__tls_keys_find(k, k1.name, &got), 2);
    fake_now += P;
    CHECK_EQ(sy__tls_keys_find(k, k1.name, &got), 0);
    static const unsigned char unknown[16] = {1, 2, 3};
    CHECK_EQ(sy__tls_keys_find(k, unknown, &got), 0);
    sy__tls_keys_unref(k);
}

TEST(idle_gap_wipes_every_old_key)
{
    fake_now = 5000000;
    sy_tls_keys *k = store();
    sy_tls_key k0, got;
    CHECK_EQ(sy__tls_keys_current(k, &k0), 0);
    fake_now += P;
    sy__tls_keys_tick(k);
    CHECK(!sy__tls_keys_probe_wiped(k, 1)); /* k0, now previous */
    fake_now += 10 * P; /* nothing happened for a long time: a tick (the thread) retires */
    sy__tls_keys_tick(k);
    CHECK(!sy__tls_keys_probe_wiped(k, 0)); /* a fresh current key */
    CHECK(sy__tls_keys_probe_wiped(k, 1));
    CHECK(sy__tls_keys_probe_wiped(k, 2));
    CHECK_EQ(sy__tls_keys_find(k, k0.name, &got), 0);
    sy__tls_keys_unref(k);
}

TEST(one_step_moves_keys_down_and_wipes_the_oldest)
{
    fake_now = 9000000;
    sy_tls_keys *k = store();
    sy_tls_key a, b, c, got;
    CHECK_EQ(sy__tls_keys_current(k, &a), 0);
    fake_now += P;
    CHECK_EQ(sy__tls_keys_current(k, &b), 0);
    fake_now += 2 * P; /* two at once: a retires, b is two old, c is new */
    CHECK_EQ(sy__tls_keys_current(k, &c), 0);
    CHECK_EQ(sy__tls_keys_find(k, a.name, &got), 0);
    CHECK_EQ(sy__tls_keys_find(k, b.name, &got), 2);
    CHECK(sy__tls_keys_probe_wiped(k, 1)); /* the period nobody sealed in */
    CHECK(!sy__tls_keys_probe_wiped(k, 2));
    sy__tls_keys_unref(k);
}

/* The real clock and the rotation thread: with nobody calling, keys still rotate at each
 * boundary and the first one is gone after 3 periods. */
TEST(idle_store_rotates_on_its_own)
{
    sy_tls_keys *k = NULL;
    CHECK_EQ(sy__tls_keys_new(100, NULL, NULL, &k), 0);
    sy_tls_key k0;
    CHECK_EQ(sy__tls_keys_current(k, &k0), 0);
    CHECK(sy__tls_keys_holds(k, k0.name));
    usleep(150 * 1000); /* one boundary: k0 is previous, still held (until 300 ms) */
    CHECK(sy__tls_keys_holds(k, k0.name));
    usleep(300 * 1000); /* past 3 periods: retired by the thread */
    CHECK(!sy__tls_keys_holds(k, k0.name));
    sy__tls_keys_unref(k);
}

/* The callback as OpenSSL drives it: seal a block, open it with the key the name selects. */
static int seal_open(sy_tls_keys *k, int *open_rc, unsigned char name_out[16])
{
    unsigned char name[16], iv[EVP_MAX_IV_LENGTH];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
    int rc = sy__tls_ticket_cb(k, name, iv, c, h, 1);
    unsigned char msg[32] = "session state, 32 bytes of it..", ct[64], tag[32], pt[64];
    int n = 0, m = 0;
    size_t tl = 0;
    EVP_EncryptUpdate(c, ct, &n, msg, sizeof(msg));
    EVP_EncryptFinal_ex(c, ct + n, &m);
    n += m;
    EVP_MAC_update(h, ct, (size_t)n);
    EVP_MAC_final(h, tag, &tl, sizeof(tag));
    EVP_CIPHER_CTX_reset(c);
    EVP_MAC_CTX_free(h);
    h = EVP_MAC_CTX_new(mac);
    *open_rc = sy__tls_ticket_cb(k, name, iv, c, h, 0);
    if (*open_rc > 0) {
        unsigned char tag2[32];
        size_t tl2 = 0;
        EVP_MAC_update(h, ct, (size_t)n);
        EVP_MAC_final(h, tag2, &tl2, sizeof(tag2));
        int a = 0, b = 0;
        EVP_DecryptUpdate(c, pt, &a, ct, n);
        EVP_DecryptFinal_ex(c, pt + a, &b);
        if (tl != 32 || tl2 != 32 || memcmp(tag, tag2, 32) || a + b != 32 || memcmp(pt, msg, 32))
            *open_rc = -100;
    }
    memcpy(name_out, name, 16);
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(mac);
    return rc;
}

TEST(callback_seals_with_current_and_opens_with_the_named_key)
{
    fake_now = 20000000;
    sy_tls_keys *k = store();
    int orc = 0;
    unsigned char name[16];
    sy_tls_key cur;
    CHECK_EQ(seal_open(k, &orc, name), 1);
    CHECK_EQ(orc, 1);
    CHECK_EQ(sy__tls_keys_current(k, &cur), 0);
    CHECK(!memcmp(name, cur.name, 16));
    sy__tls_keys_unref(k);
}

/* ---- real handshakes in memory: two server SSL_CTXs sharing one store ---- */

static sy_tls_keys *shared;

static int server_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *c,
                            EVP_MAC_CTX *h, int enc)
{
    (void)s;
    return sy__tls_ticket_cb(shared, name, iv, c, h, enc);
}

static SSL_CTX *server(const sy_tls_cert *cert)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_cert_and_key(ctx, cert->x509, cert->key, NULL, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"t", 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, server_ticket_cb);
    SSL_CTX_set_timeout(ctx, 3600);
    return ctx;
}

/* One handshake (and a byte each way, for TLS 1.3 tickets) over a socketpair, in this
 * thread: both sides non-blocking, stepped in turn. Returns 1 resumed, 0 full, -1 failed;
 * *out gets the client's session. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *in, SSL_SESSION **out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    SSL_set_fd(s, sv[0]);
    SSL_set_fd(c, sv[1]);
    if (in)
        SSL_set_session(c, in);
    int sd = 0, cd = 0, got_s = 0, got_c = 0;
    for (int i = 0; i < 200 && !(got_s && got_c); i++) {
        if (!cd)
            cd = SSL_connect(c) == 1;
        if (!sd)
            sd = SSL_accept(s) == 1;
        if (sd && cd) {
            char b;
            size_t n;
            if (i % 2 == 0) {
                SSL_write_ex(s, "s", 1, &n);
                SSL_write_ex(c, "c", 1, &n);
            }
            got_c |= SSL_read_ex(c, &b, 1, &n) == 1;
            got_s |= SSL_read_ex(s, &b, 1, &n) == 1;
        }
    }
    int rc = got_s && got_c ? SSL_session_reused(c) : -1;
    *out = SSL_get1_session(c);
    /* a close_notify each way: freed without one, a session is marked not resumable */
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(s);
    SSL_free(c);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

TEST(tickets_resume_across_contexts_and_rotations)
{
    sy_tls_cert cert;
    CHECK_EQ(sy__tls_make_self_signed(NULL, &cert), 0);
    fake_now = 30000000;
    shared = store();
    SSL_CTX *a = server(&cert), *b = server(&cert);
    SSL_CTX *cl = SSL_CTX_new(TLS_client_method());
    for (int v = 0; v < 2; v++) {
        int ver = v ? TLS1_2_VERSION : TLS1_3_VERSION;
        SSL_CTX_set_min_proto_version(cl, ver);
        SSL_CTX_set_max_proto_version(cl, ver);
        SSL_SESSION *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
        CHECK_EQ(handshake(a, cl, NULL, &s1), 0);
        CHECK(s1 && SSL_SESSION_has_ticket(s1));
        CHECK_EQ(handshake(b, cl, s1, &s2), 1); /* the other context */
        fake_now += P;                          /* one rotation: still resumes */
        CHECK_EQ(handshake(a, cl, s1, &s3), 1);
        fake_now += 2 * P; /* s1's key retired (TLS 1.2 falls back to the session cache,
                            * which is per context: use b, which never cached s1) */
        CHECK_EQ(handshake(b, cl, s1, &s4), 0);
        SSL_SESSION_free(s1);
        SSL_SESSION_free(s2);
        SSL_SESSION_free(s3);
        SSL_SESSION_free(s4);
    }
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cl);
    sy__tls_keys_unref(shared);
    sy__tls_cert_clear(&cert);
}

TEST(api_range_and_state)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK(t->keys != NULL);
    CHECK_EQ(sy_tls_set_ticket_rotation(t, SY_TLS_TICKET_MAX_S + 1), SY_ERANGE);
    CHECK_EQ(sy_tls_set_ticket_rotation(t, 2), 0);
    CHECK_EQ(SSL_CTX_get_timeout(t->ctx), 4);
    CHECK_EQ(sy_tls_set_ticket_rotation(t, 0), 0);
    CHECK(t->keys == NULL);
    CHECK(SSL_CTX_get_options(t->ctx) & SSL_OP_NO_TICKET);
    CHECK_EQ(sy_tls_set_ticket_rotation(t, 3600), 0);
    CHECK(!(SSL_CTX_get_options(t->ctx) & SSL_OP_NO_TICKET));
    CHECK_EQ(SSL_CTX_get_timeout(t->ctx), 7200);
    CHECK_EQ(sy_tls_set_ticket_rotation(NULL, 1), SY_EINVAL);
    sy_tls_free(t);
}

int main(void)
{
    RUN(rotation_keeps_two_previous_keys_then_forgets);
    RUN(idle_gap_wipes_every_old_key);
    RUN(one_step_moves_keys_down_and_wipes_the_oldest);
    RUN(idle_store_rotates_on_its_own);
    RUN(callback_seals_with_current_and_opens_with_the_named_key);
    RUN(tickets_resume_across_contexts_and_rotations);
    RUN(api_range_and_state);
    return sy_t_summary();
}
