/* Certificates and keys: loading PEM files with one-line errors that name the file and say
 * what is wrong, and the self-signed certificate generated in memory. */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX_BYTES (1 << 20) /* a certificate chain is a few KiB; refuse anything huge */

void sy__tls_cert_clear(sy_tls_cert *c)
{
    X509_free(c->x509);
    EVP_PKEY_free(c->key);
    sk_X509_pop_free(c->chain, X509_free);
    memset(c, 0, sizeof(*c));
}

/* Whole file into memory (our allocator), so that open/read errors are reported with errno
 * and the PEM parser works on bytes. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return SY_ETLS_CERT;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > PEM_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path,
                 S_ISDIR(st.st_mode)    ? "is a directory, not a PEM file"
                 : !S_ISREG(st.st_mode) ? "is not a regular file"
                                        : "too large for a PEM file (over 1 MiB)");
        close(fd);
        return SY_ETLS_CERT;
    }
    char *buf = sy__malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return SY_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path,
                     n < 0 ? strerror(errno) : "the file shrank");
            close(fd);
            sy__free(buf);
            return SY_ETLS_CERT;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

/* Never prompt on the terminal for a passphrase (OpenSSL's default without a callback). */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

static void time_str(const ASN1_TIME *t, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = b && ASN1_TIME_print(b, t) ? BIO_read(b, out, (int)cap - 1) : 0;
    out[n > 0 ? n : 0] = 0;
    BIO_free(b);
}

/* The certificate must be usable today: an expired or not-yet-valid one is refused at start
 * rather than found out by every client. */
static int check_validity(const char *path, X509 *x, char *err, size_t errlen)
{
    char when[64];
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        time_str(X509_get0_notBefore(x), when, sizeof(when));
        snprintf(err, errlen, "%s: the certificate is not valid yet (not before %s)", path, when);
        return SY_ETLS_CERT;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        time_str(X509_get0_notAfter(x), when, sizeof(when));
        snprintf(err, errlen, "%s: the certificate expired on %s", path, when);
        return SY_ETLS_CERT;
    }
    return 0;
}

static int load_certs(const char *path, sy_tls_cert *out, char *err, size_t errlen)
{
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc < 0)
        return rc;
    BIO *b = BIO_new_mem_buf(data, (int)len);
    rc = SY_ENOMEM;
    if (!b)
        goto out;
    out->x509 = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    if (!out->x509) {
        snprintf(err, errlen, "%s: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                 path);
        rc = SY_ETLS_CERT;
        goto out;
    }
    /* The chain: every further certificate in the file, in order. */
    out->chain = sk_X509_new_null();
    if (!out->chain)
        goto out;
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (!x)
            break;
        if (!sk_X509_push(out->chain, x)) {
            X509_free(x);
            goto out;
        }
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        snprintf(err, errlen, "%s: certificate number %d in the file is not valid PEM", path,
                 sk_X509_num(out->chain) + 2);
        rc = SY_ETLS_CERT;
        goto out;
    }
    rc = check_validity(path, out->x509, err, errlen);
out:
    ERR_clear_error();
    BIO_free(b);
    sy__free(data);
    return rc;
}

static int load_key(const char *path, const char *cert_path, sy_tls_cert *out, char *err,
                    size_t errlen)
{
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc < 0)
        return rc;
    BIO *b = BIO_new_mem_buf(data, (int)len);
    rc = SY_ENOMEM;
    if (!b)
        goto out;
    out->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    rc = SY_ETLS_CERT;
    if (!out->key) {
        if (strstr(data, "ENCRYPTED"))
            snprintf(err, errlen,
                     "%s: the private key is encrypted (passphrases are not supported: "
                     "decrypt it with `openssl pkey`)",
                     path);
        else
            snprintf(err, errlen,
                     "%s: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)", path);
        goto out;
    }
    if (X509_check_private_key(out->x509, out->key) != 1) {
        snprintf(err, errlen, "%s: the private key does not match the certificate in %s", path,
                 cert_path);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    BIO_free(b);
    /* the key's PEM text must not linger in freed memory */
    OPENSSL_cleanse(data, len);
    sy__free(data);
    return rc;
}

int sy__tls_load_pair(const char *cert_file, const char *key_file, sy_tls_cert *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!cert_file || !key_file) {
        snprintf(err, errlen, "a certificate and a key file are both needed");
        return SY_EINVAL;
    }
    int rc = load_certs(cert_file, out, err, errlen);
    if (rc == 0)
        rc = load_key(key_file, cert_file, out, err, errlen);
    if (rc < 0)
        sy__tls_cert_clear(out);
    return rc;
}

/* ---- the self-signed certificate ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* Names that may go into the subjectAltName text as they are (no separators to inject). */
static int plain_host(const char *s)
{
    if (!*s || strlen(s) > 253)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '*'))
            return 0;
    return 1;
}

static int build_san(const char *cn, char *san, size_t cap)
{
    unsigned char addr[16];
    int n = snprintf(san, cap, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (!strcmp(cn, "localhost") || !strcmp(cn, "127.0.0.1") || !strcmp(cn, "::1"))
        return 0;
    if (inet_pton(AF_INET, cn, addr) == 1 || inet_pton(AF_INET6, cn, addr) == 1)
        n += snprintf(san + n, cap - (size_t)n, ",IP:%s", cn);
    else if (plain_host(cn))
        n += snprintf(san + n, cap - (size_t)n, ",DNS:%s", cn);
    return (size_t)n < cap ? 0 : -1;
}

int sy__tls_make_self_signed(const char *cn, sy_tls_cert *out)
{
    memset(out, 0, sizeof(*out));
    if (!cn || !*cn)
        cn = "localhost";
    if (strlen(cn) > 64) /* the X.520 upper bound of a common name */
        return SY_EINVAL;
    char san[400];
    if (build_san(cn, san, sizeof(san)) < 0)
        return SY_EINVAL;
    int rc = SY_ENOMEM;
    BIGNUM *serial = BN_new();
    out->key = EVP_EC_gen("P-256");
    out->x509 = X509_new();
    out->chain = sk_X509_new_null();
    if (!serial || !out->key || !out->x509 || !out->chain)
        goto out;
    X509 *x = out->x509;
    X509_NAME *name = X509_get_subject_name(x);
    /* A random 127-bit serial: positive, and unique enough that clients never confuse two
     * runs' certificates. */
    if (!X509_set_version(x, X509_VERSION_3) || !BN_rand(serial, 127, BN_RAND_TOP_ANY, 0) ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) || !X509_set_pubkey(x, out->key) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") ||
        !add_ext(x, NID_subject_key_identifier, "hash") || !add_ext(x, NID_subject_alt_name, san) ||
        !X509_sign(x, out->key, EVP_sha256()))
        goto out;
    rc = 0;
out:
    BN_free(serial);
    ERR_clear_error();
    if (rc < 0)
        sy__tls_cert_clear(out);
    return rc;
}
