/* TLS contexts: certificate and key loading with its one-line errors (missing, unreadable,
 * not PEM, encrypted, mismatched, expired, not yet valid), chains, the self-signed
 * certificate, SNI certificate choice and ALPN selection. Certificates are made at test time
 * with the OpenSSL API in a temporary directory. */
#include "harness.h"
#include "tls/tls.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

static char dir[64];

static const char *path(const char *name)
{
    static char bufs[8][128];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 128, "%s/%s", dir, name);
    return b;
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");
    fputs(text, f);
    fclose(f);
}

/* A certificate for names (comma-separated SAN DNS entries, or NULL: CN only), valid from
 * now+from_s to now+to_s, self-signed by key unless signer/signer_key are given. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, long from_s, long to_s,
                       X509 *signer, EVP_PKEY *signer_key, int ca)
{
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1000 + (long)(rand() % 100000));
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, signer ? X509_get_subject_name(signer) : n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, signer ? signer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (san) {
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, signer_key ? signer_key : key, EVP_sha256());
    return x;
}

static void write_cert(const char *name, X509 *x, X509 *chain1)
{
    FILE *f = fopen(path(name), "w");
    PEM_write_X509(f, x);
    if (chain1)
        PEM_write_X509(f, chain1);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k, const char *pass)
{
    FILE *f = fopen(path(name), "w");
    if (pass)
        PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)pass);
    else
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static EVP_PKEY *k1, *k2;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sy-tls-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    k1 = EVP_EC_gen("P-256");
    k2 = EVP_EC_gen("P-256");
    X509 *good = make_cert(k1, "a.test", "DNS:a.test,DNS:*.wild.test", -60, 86400, NULL, NULL, 0);
    X509 *expired = make_cert(k1, "old.test", NULL, -86400 * 3, -86400, NULL, NULL, 0);
    X509 *future = make_cert(k1, "new.test", NULL, 86400, 86400 * 3, NULL, NULL, 0);
    X509 *b = make_cert(k2, "b.test", "DNS:b.test", -60, 86400, NULL, NULL, 0);
    X509 *cn_only = make_cert(k2, "cn.test", NULL, -60, 86400, NULL, NULL, 0);
    /* a leaf signed by a CA, with the CA after it in the same file */
    EVP_PKEY *cak = EVP_EC_gen("P-256");
    X509 *ca = make_cert(cak, "Test CA", NULL, -60, 86400, NULL, NULL, 1);
    X509 *leaf = make_cert(k2, "leaf.test", "DNS:leaf.test", -60, 86400, ca, cak, 0);
    write_cert("good.crt", good, NULL);
    write_cert("expired.crt", expired, NULL);
    write_cert("future.crt", future, NULL);
    write_cert("b.crt", b, NULL);
    write_cert("cn.crt", cn_only, NULL);
    write_cert("chain.crt", leaf, ca);
    write_key("k1.key", k1, NULL);
    write_key("k2.key", k2, NULL);
    write_key("enc.key", k1, "secret");
    write_text("garbage.pem", "this is not a certificate\n");
    write_text("empty.pem", "");
    mkdir(path("adir"), 0700);
    X509_free(good);
    X509_free(expired);
    X509_free(future);
    X509_free(b);
    X509_free(cn_only);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(cak);
}

static char err[512];

static int add(sy_tls *t, const char *crt, const char *key)
{
    err[0] = 0;
    return sy_tls_add_cert(t, path(crt), path(key), err, sizeof(err));
}

/* err names the file and says what is wrong, on one line */
static int says(const char *file, const char *what)
{
    return strstr(err, path(file)) == err && strstr(err, what) && !strchr(err, '\n');
}

TEST(good_pair_loads)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "good.crt", "k1.key"), 0);
    CHECK_EQ(err[0], 0);
    CHECK_EQ(t->ncerts, 1);
    sy_tls_free(t);
}

TEST(missing_file)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "nope.crt", "k1.key"), SY_ETLS_CERT);
    CHECK(says("nope.crt", "No such file"));
    CHECK_EQ(add(t, "good.crt", "nope.key"), SY_ETLS_CERT);
    CHECK(says("nope.key", "No such file"));
    CHECK_EQ(t->ncerts, 0);
    sy_tls_free(t);
}

TEST(unreadable_file)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "adir", "k1.key"), SY_ETLS_CERT);
    CHECK(says("adir", "directory"));
    if (geteuid() != 0) { /* root reads anything */
        write_text("noperm.crt", "x");
        chmod(path("noperm.crt"), 0);
        CHECK_EQ(add(t, "noperm.crt", "k1.key"), SY_ETLS_CERT);
        CHECK(says("noperm.crt", "Permission denied"));
    }
    sy_tls_free(t);
}

TEST(not_pem)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "garbage.pem", "k1.key"), SY_ETLS_CERT);
    CHECK(says("garbage.pem", "no PEM certificate"));
    CHECK_EQ(add(t, "empty.pem", "k1.key"), SY_ETLS_CERT);
    CHECK(says("empty.pem", "no PEM certificate"));
    CHECK_EQ(add(t, "good.crt", "garbage.pem"), SY_ETLS_CERT);
    CHECK(says("garbage.pem", "no PEM private key"));
    /* a certificate where the key should be */
    CHECK_EQ(add(t, "good.crt", "good.crt"), SY_ETLS_CERT);
    CHECK(says("good.crt", "no PEM private key"));
    sy_tls_free(t);
}

TEST(encrypted_key_is_refused_without_prompting)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "good.crt", "enc.key"), SY_ETLS_CERT);
    CHECK(says("enc.key", "encrypted"));
    sy_tls_free(t);
}

TEST(mismatched_key)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "good.crt", "k2.key"), SY_ETLS_CERT);
    CHECK(says("k2.key", "does not match the certificate in"));
    CHECK(strstr(err, path("good.crt")) != NULL);
    sy_tls_free(t);
}

TEST(expired_and_not_yet_valid)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "expired.crt", "k1.key"), SY_ETLS_CERT);
    CHECK(says("expired.crt", "expired on"));
    CHECK_EQ(add(t, "future.crt", "k1.key"), SY_ETLS_CERT);
    CHECK(says("future.crt", "not valid yet"));
    CHECK_EQ(t->ncerts, 0);
    sy_tls_free(t);
}

TEST(chain_in_the_certificate_file)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "chain.crt", "k2.key"), 0);
    CHECK_EQ(sk_X509_num(t->certs[0].chain), 1);
    sy_tls_free(t);
}

TEST(sni_picks_by_san_or_cn_first_is_default)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(add(t, "good.crt", "k1.key"), 0);
    CHECK_EQ(add(t, "b.crt", "k2.key"), 0);
    CHECK_EQ(add(t, "cn.crt", "k2.key"), 0);
    CHECK(sy__tls_pick_cert(t, NULL) == &t->certs[0]);
    CHECK(sy__tls_pick_cert(t, "a.test") == &t->certs[0]);
    CHECK(sy__tls_pick_cert(t, "B.TEST") == &t->certs[1]);
    CHECK(sy__tls_pick_cert(t, "x.wild.test") == &t->certs[0]);
    CHECK(sy__tls_pick_cert(t, "cn.test") == &t->certs[2]);
    CHECK(sy__tls_pick_cert(t, "unknown.test") == &t->certs[0]);
    CHECK(sy__tls_pick_cert(t, "") == &t->certs[0]);
    sy_tls_free(t);
}

TEST(self_signed_names_localhost_and_loopback)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(sy_tls_add_self_signed(t, NULL), 0);
    CHECK_EQ(sy_tls_add_self_signed(t, "example.test"), 0);
    X509 *x = t->certs[0].x509;
    CHECK_EQ(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    CHECK_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    CHECK_EQ(X509_check_ip_asc(x, "::1", 0), 1);
    CHECK_EQ(X509_check_host(t->certs[1].x509, "example.test", 0, 0, NULL), 1);
    CHECK_EQ(EVP_PKEY_get_base_id(t->certs[0].key), EVP_PKEY_EC);
    CHECK_EQ(X509_check_private_key(x, t->certs[0].key), 1);
    CHECK(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
    /* separators in the name never reach the subjectAltName text */
    CHECK_EQ(sy_tls_add_self_signed(t, "a,DNS:evil.test"), 0);
    CHECK(X509_check_host(t->certs[2].x509, "evil.test", 0, 0, NULL) != 1);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[79] = 0;
    CHECK_EQ(sy_tls_add_self_signed(t, longname), SY_EINVAL);
    sy_tls_free(t);
}

TEST(alpn_server_preference)
{
    const unsigned char ours[] = "\x02h2\x08http/1.1";
    const unsigned char both[] = "\x08http/1.1\x02h2";
    const unsigned char h1[] = "\x08http/1.1";
    const unsigned char other[] = "\x06spdy/3";
    const unsigned char bad[] = "\x09http/1.1";
    unsigned char len = 0;
    const unsigned char *p =
        sy__tls_alpn_pick(ours, sizeof(ours) - 1, both, sizeof(both) - 1, &len);
    CHECK(p && len == 2 && !memcmp(p, "h2", 2));
    p = sy__tls_alpn_pick(ours, sizeof(ours) - 1, h1, sizeof(h1) - 1, &len);
    CHECK(p && len == 8 && !memcmp(p, "http/1.1", 8));
    CHECK(!sy__tls_alpn_pick(ours, sizeof(ours) - 1, other, sizeof(other) - 1, &len));
    CHECK(!sy__tls_alpn_pick(ours, sizeof(ours) - 1, bad, sizeof(bad) - 1, &len));
    CHECK(!sy__tls_alpn_pick(ours, sizeof(ours) - 1, NULL, 0, &len));
}

TEST(alpn_list_is_validated)
{
    sy_tls *t;
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(t->alpn_len, 12); /* default: h2, http/1.1 */
    CHECK_MEM(t->alpn, "\x02h2\x08http/1.1", 12);
    const char *const one[] = {"http/1.1", NULL};
    CHECK_EQ(sy_tls_set_alpn(t, one), 0);
    CHECK_EQ(t->alpn_len, 9);
    CHECK_MEM(t->alpn, "\x08http/1.1", 9);
    const char *const empty_name[] = {"", NULL};
    const char *const none[] = {NULL};
    CHECK_EQ(sy_tls_set_alpn(t, empty_name), SY_EINVAL);
    CHECK_EQ(sy_tls_set_alpn(t, none), SY_EINVAL);
    sy_tls_free(t);
}

TEST(listener_needs_a_certificate_and_freezes_the_context)
{
    sy_server *srv;
    sy_tls *t;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_tls_new(&t), 0);
    CHECK_EQ(sy_server_listen_tls(srv, "127.0.0.1:0", t), SY_EINVAL);
    CHECK_EQ(add(t, "good.crt", "k1.key"), 0);
    CHECK_EQ(sy_server_listen_tls(srv, "127.0.0.1:0", t), 0);
    CHECK_EQ(add(t, "b.crt", "k2.key"), SY_ESTATE);
    CHECK(strchr(err, '\n') == NULL && err[0]);
    CHECK_EQ(sy_tls_add_self_signed(t, NULL), SY_ESTATE);
    sy_tls_free(t); /* the server keeps its reference */
    CHECK_EQ(atomic_load(&t->refs), 1);
    sy_server_free(srv);
}

TEST(error_names)
{
    CHECK(!strcmp(sy_err_name(SY_ETLS_CERT), "SY_ETLS_CERT"));
    CHECK(!strcmp(sy_err_name(SY_ETLS_VERIFY), "SY_ETLS_VERIFY"));
    CHECK(!strcmp(sy_err_name(SY_ETLS), "SY_ETLS"));
}

int main(void)
{
    setup();
    RUN(good_pair_loads);
    RUN(missing_file);
    RUN(unreadable_file);
    RUN(not_pem);
    RUN(encrypted_key_is_refused_without_prompting);
    RUN(mismatched_key);
    RUN(expired_and_not_yet_valid);
    RUN(chain_in_the_certificate_file);
    RUN(sni_picks_by_san_or_cn_first_is_default);
    RUN(self_signed_names_localhost_and_loopback);
    RUN(alpn_server_preference);
    RUN(alpn_list_is_validated);
    RUN(listener_needs_a_certificate_and_freezes_the_context);
    RUN(error_names);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return sy_t_summary();
}
