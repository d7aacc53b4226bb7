/* TLS as the probe saw it: the driver gathers the facts with its TLS library (version, ALPN,
 * certificate names and dates, the verifier's verdict); the rules about them live here. */
#include "probe/probe.h"

int sy_probe_tls_alpn_offered(const char *offer, const char *proto)
{
    size_t n = strlen(proto);
    const char *p = offer;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !memcmp(p, proto, n))
            return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

static uint32_t be(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int sy_probe_tls_alpn_in_hello(const uint8_t *m, size_t len, char *out, size_t cap)
{
    size_t i = 4;
    if (len < 4 || cap == 0 || be(m + 1, 3) != len - 4)
        return 0;
    if (m[0] == 2) { /* ServerHello: version, random, session ID, suite, compression */
        i += 2 + 32;
        if (i >= len)
            return 0;
        i += 1 + (size_t)m[i] + 2 + 1;
    } else if (m[0] != 8) { /* EncryptedExtensions starts with the extensions */
        return 0;
    }
    if (i + 2 > len)
        return 0;
    size_t end = i + 2 + be(m + i, 2);
    if (end > len)
        return 0;
    for (i += 2; i + 4 <= end;) {
        uint32_t type = be(m + i, 2), elen = be(m + i + 2, 2);
        i += 4;
        if (i + elen > end)
            return 0;
        /* ALPN (16): a 2-byte list length, then the one selected name (RFC 7301 §3.1) */
        if (type == 16 && elen >= 3 && m[i + 2] && 3u + m[i + 2] <= elen) {
            size_t n = SY_MIN((size_t)m[i + 2], cap - 1);
            for (size_t k = 0; k < n; k++) {
                uint8_t c = m[i + 3 + k];
                out[k] = (char)(c > 0x20 && c < 0x7f && c != ',' ? c : '?');
            }
            out[n] = 0;
            return 1;
        }
        i += elen;
    }
    return 0;
}

void sy_probe_tls_check(sy_probe_report *r, const char *path, const sy_probe_tls_info *t)
{
    sy_probe_finding *f = NULL;
    switch (t->verify) {
    case SY_PROBE_TLS_OK:
        break;
    case SY_PROBE_TLS_EXPIRED:
        f = sy_probe_add(r, path, SY_PF_TLS_CERT_EXPIRED,
                         "The certificate for %s (%s) expired %lld days ago.", t->host, t->subject,
                         (long long)((t->now - t->not_after) / 86400));
        break;
    case SY_PROBE_TLS_NOT_YET_VALID:
        f = sy_probe_add(r, path, SY_PF_TLS_CERT_NOT_YET_VALID,
                         "The certificate for %s (%s) is not valid yet.", t->host, t->subject);
        break;
    case SY_PROBE_TLS_SELF_SIGNED:
    case SY_PROBE_TLS_UNKNOWN_ISSUER:
    case SY_PROBE_TLS_OTHER:
        f = sy_probe_add(r, path, SY_PF_TLS_CERT_UNTRUSTED,
                         "The certificate chain of %s is not trusted: %s (subject %s, issuer %s).",
                         t->host, t->verify_text, t->subject, t->issuer);
        break;
    }
    if (f && t->insecure)
        f->sev = SY_PROBE_INFO; /* asked for: reported, not a problem */
    if (!t->host_ok) {
        f = sy_probe_add(r, path, SY_PF_TLS_CERT_NAME_MISMATCH,
                         "The certificate (%s) does not name %s.", t->subject, t->host);
        if (f && t->insecure)
            f->sev = SY_PROBE_INFO;
    }
    if (t->verify == SY_PROBE_TLS_OK && t->not_after && t->not_after > t->now &&
        t->not_after - t->now < 14 * 86400)
        sy_probe_add(r, path, SY_PF_TLS_CERT_EXPIRES_SOON,
                     "The certificate for %s expires in %lld days.", t->host,
                     (long long)((t->not_after - t->now) / 86400));
    if (t->version && t->version < 0x0303)
        sy_probe_add(r, path, SY_PF_TLS_OLD_VERSION, "The server negotiated %s.", t->version_name);
    if (t->alpn[0]) {
        /* The selected protocol must be one we offered (RFC 7301 §3.2). */
        if (!sy_probe_tls_alpn_offered(t->alpn_offered, t->alpn))
            sy_probe_add(r, path, SY_PF_TLS_ALPN_UNEXPECTED,
                         "The server selected ALPN \"%s\"; the probe offered \"%s\".", t->alpn,
                         t->alpn_offered);
    }
}
