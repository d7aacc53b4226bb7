/* TLS as the probe saw it: the driver gathers the facts with its TLS library (version, ALPN,
 * certificate names and dates, the verifier's verdict); the rules about them live here. */
#include "probe/probe.h"

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
        size_t n = strlen(t->alpn);
        const char *p = t->alpn_offered;
        int offered = 0;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            offered |= l == n && !memcmp(p, t->alpn, n);
            p += l + (e ? 1 : 0);
        }
        if (!offered)
            sy_probe_add(r, path, SY_PF_TLS_ALPN_UNEXPECTED,
                         "The server selected ALPN \"%s\"; the probe offered \"%s\".", t->alpn,
                         t->alpn_offered);
    }
}
