/* The WebSocket opening handshake as a client sees it (RFC 6455 §4.1-4.2, RFC 7692 §7, RFC
 * 9110 §7.8): the request the probe sends, and every field of the answer checked, with the
 * likely cause named from what the answer shows (status, Server, Via, the body's words). */
#include "probe/probe.h"
#include "ws/handshake.h"

#include <openssl/evp.h>
#include <stdio.h>

typedef struct out_buf {
    char *p;
    size_t cap, len;
    int overflow;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_buf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = 1;
    else
        o->len += (size_t)n;
}

size_t sy_probe_ws_request(char *out, size_t cap, const sy_probe_ws_req *rq)
{
    out_buf o = {out, cap, 0, 0};
    put(&o,
        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n",
        rq->target, rq->host, rq->key, rq->version ? rq->version : "13");
    if (rq->origin)
        put(&o, "Origin: %s\r\n", rq->origin);
    for (size_t i = 0; i < rq->nsub; i++)
        put(&o, "%s%s%s", i ? ", " : "Sec-WebSocket-Protocol: ", rq->subprotocols[i],
            i + 1 == rq->nsub ? "\r\n" : "");
    if (rq->offer_deflate)
        put(&o, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    put(&o, "User-Agent: switchyard-probe/%s\r\n", SY_VERSION);
    if (rq->marker)
        put(&o, "X-Switchyard-Probe: %s\r\n", rq->marker);
    if (rq->reflect_token)
        put(&o, "X-Switchyard-Reflect-Token: %s\r\n", rq->reflect_token);
    for (size_t i = 0; i < rq->nextra; i++)
        put(&o, "%s\r\n", rq->extra[i]);
    put(&o, "\r\n");
    return o.overflow ? 0 : o.len;
}

/* ---- Sec-WebSocket-Extensions in a response ---- */

static void skip_ows(const char *v, size_t len, size_t *i)
{
    while (*i < len && (v[*i] == ' ' || v[*i] == '\t'))
        (*i)++;
}

static size_t token(const char *v, size_t len, size_t *i)
{
    size_t s = *i;
    while (*i < len && sy_field_is_tchar((unsigned char)v[*i]))
        (*i)++;
    return *i - s;
}

/* A parameter value: token or quoted-string (RFC 7692 §7.1 allows both). Copies the unquoted
 * value into out (truncated) and returns 0, or -1 on bad syntax. */
static int param_value(const char *v, size_t len, size_t *i, char *out, size_t cap)
{
    size_t o = 0;
    if (*i < len && v[*i] == '"') {
        (*i)++;
        while (*i < len && v[*i] != '"') {
            if (v[*i] == '\\' && *i + 1 < len)
                (*i)++;
            if (o + 1 < cap)
                out[o++] = v[*i];
            (*i)++;
        }
        if (*i >= len)
            return -1;
        (*i)++;
    } else {
        size_t s = *i, n = token(v, len, i);
        if (!n)
            return -1;
        for (size_t k = 0; k < n && o + 1 < cap; k++)
            out[o++] = v[s + k];
    }
    out[o] = 0;
    return 0;
}

static int window_bits_ok(const char *s)
{
    /* 1*DIGIT without a leading zero, 8..15 */
    if (!s[0] || s[0] == '0' || strlen(s) > 2)
        return 0;
    int n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        n = n * 10 + (*p - '0');
    }
    return n >= 8 && n <= 15;
}

int sy_probe_ws_ext_check(const char *v, size_t len, int offer_deflate, int *no_ctx,
                          const char **why)
{
    static const char *const pnames[] = {"server_no_context_takeover", "client_no_context_takeover",
                                         "server_max_window_bits", "client_max_window_bits"};
    size_t i = 0;
    int accepted = 0;
    *why = NULL;
    for (;;) {
        skip_ows(v, len, &i);
        while (i < len && v[i] == ',') {
            i++;
            skip_ows(v, len, &i);
        }
        if (i >= len)
            return accepted;
        size_t s = i, n = token(v, len, &i);
        if (!n) {
            *why = "an extension name is not a token";
            return -1;
        }
        if (!offer_deflate || !sy__ieq(v + s, n, "permessage-deflate")) {
            *why = "an extension the probe did not offer";
            return -2;
        }
        if (accepted) {
            *why = "permessage-deflate is accepted twice";
            return -1;
        }
        unsigned seen = 0;
        for (;;) {
            skip_ows(v, len, &i);
            if (i >= len || v[i] != ';')
                break;
            i++;
            skip_ows(v, len, &i);
            size_t ps = i, pn = token(v, len, &i);
            int k = -1;
            for (int j = 0; j < 4; j++)
                if (sy__ieq(v + ps, pn, pnames[j]))
                    k = j;
            if (k < 0) {
                *why = "an unknown permessage-deflate parameter";
                return -1;
            }
            if (seen & (1u << k)) {
                *why = "a permessage-deflate parameter is repeated";
                return -1;
            }
            seen |= 1u << k;
            skip_ows(v, len, &i);
            char val[16] = "";
            int has_val = 0;
            if (i < len && v[i] == '=') {
                i++;
                skip_ows(v, len, &i);
                if (param_value(v, len, &i, val, sizeof(val))) {
                    *why = "a parameter value is neither a token nor a quoted string";
                    return -1;
                }
                has_val = 1;
            }
            if (k < 2 && has_val) {
                *why = "a *_no_context_takeover parameter carries a value";
                return -1;
            }
            if (k >= 2 && (!has_val || !window_bits_ok(val))) {
                *why = "a *_max_window_bits value is missing or outside 8..15";
                return -1;
            }
            if (k == 0 && no_ctx)
                *no_ctx = 1;
        }
        if (i < len && v[i] != ',') {
            *why = "unexpected characters after the extension";
            return -1;
        }
        accepted = 1;
    }
}

/* ---- the answer ---- */

static const sy_field *get(const sy_probe_head *h, const char *name, int *count)
{
    return sy_probe_head_get(h, name, count);
}

static int contains_ci(const char *hay, size_t n, const char *lower)
{
    size_t m = strlen(lower);
    for (size_t i = 0; i + m <= n; i++)
        if (sy__ieq(hay + i, m, lower))
            return 1;
    return 0;
}

/* What the answer shows about who answered and why: Server, Via, the version, the body. */
static void wire_hints(const sy_probe_head *h, const sy_probe_body *b, char *out, size_t cap)
{
    out_buf o = {out, cap, 0, 0};
    char q[200];
    const sy_field *server = get(h, "server", NULL), *via = get(h, "via", NULL);
    out[0] = 0;
    if (server) {
        put(&o, "answered by \"%s\"", sy_probe_quote(q, 64, server->value, server->value_len));
        if (contains_ci(server->value, server->value_len, "nginx"))
            put(&o, " (nginx talks HTTP/1.0 to its upstream and drops Upgrade/Connection unless "
                    "configured for WebSocket)");
        put(&o, "; ");
    }
    if (via)
        put(&o, "a proxy is on the path (Via: %s); ",
            sy_probe_quote(q, 64, via->value, via->value_len));
    if (h->major == 1 && h->minor == 0)
        put(&o, "the answer is HTTP/1.0, typical of a proxy with an HTTP/1.0 upstream; ");
    const sy_field *ct = get(h, "content-type", NULL);
    if (h->status < 300 && ct)
        put(&o, "the path serves %s content; ", sy_probe_quote(q, 48, ct->value, ct->value_len));
    if (b && b->snip_len) {
        const char *s = b->snippet;
        size_t n = b->snip_len < 1024 ? b->snip_len : 1024;
        /* Only a refusal's short explanation is read for words; a page is just quoted. */
        if (contains_ci(s, n, "plain http request was sent to https"))
            put(&o, "the body says the port expects TLS: use wss://; ");
        else if (h->status >= 400 && b->total < 1024 &&
                 (contains_ci(s, n, "upgrade") || contains_ci(s, n, "connection") ||
                  contains_ci(s, n, "sec-websocket") || contains_ci(s, n, "websocket")))
            put(&o, "the refusal speaks of the WebSocket fields, which the probe did send: a "
                    "hop in between probably removed them; ");
        put(&o, "body: \"%s\"", sy_probe_quote(q, 120, s, n));
    }
    while (o.len >= 2 && out[o.len - 2] == ';') /* drop a trailing "; " */
        out[o.len -= 2] = 0;
}

static void not_switched(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                         const sy_probe_head *h, const sy_probe_body *b)
{
    char reason[80], hint[320], q[200];
    int st = h->status;
    sy_probe_quote(reason, sizeof(reason), h->reason, h->reason_len);
    wire_hints(h, b, hint, sizeof(hint));
    sy_probe_finding *f;
    if (st >= 200 && st < 300) {
        f = sy_probe_add(r, path, SY_PF_WS_NOT_SWITCHED_200,
                         "The server answered %d %s instead of 101 Switching Protocols: it "
                         "treated the handshake as a plain request.",
                         st, reason);
    } else if (st == 400) {
        f = sy_probe_add(r, path, SY_PF_WS_REFUSED_400,
                         "The server refused the handshake with 400 %s.", reason);
    } else if (st == 426) {
        const sy_field *v = get(h, "sec-websocket-version", NULL);
        const sy_field *up = get(h, "upgrade", NULL);
        char uq[80];
        char asks[200] = "";
        out_buf o = {asks, sizeof(asks), 0, 0};
        if (up)
            put(&o, "Upgrade: %s", sy_probe_quote(uq, sizeof(uq), up->value, up->value_len));
        if (v)
            put(&o, "%sSec-WebSocket-Version: %s", up ? ", " : "",
                sy_probe_quote(q, 40, v->value, v->value_len));
        f = sy_probe_add(r, path, SY_PF_WS_UPGRADE_REQUIRED_426,
                         "The server answered 426 Upgrade Required although the probe asked to "
                         "upgrade%s%s%s.",
                         asks[0] ? " (it asks for " : "", asks, asks[0] ? ")" : "");
        if (v && !sy_field_list_has(v->value, v->value_len, "13") && f) {
            sy_probe_hint(f, "the server supports only WebSocket version %s, not 13", q);
            return;
        }
        if (up && !sy_field_list_has(up->value, up->value_len, "websocket") && f) {
            int tls = contains_ci(up->value, up->value_len, "tls");
            sy_probe_hint(f, "the server wants \"%s\", not websocket%s", uq,
                          tls ? ": it requires TLS, probe the wss:// URL" : "");
            return;
        }
        if (f && (up || v) && !hint[0])
            sy_probe_hint(f, "the server asks for exactly what the probe sent (websocket, version "
                             "13): the upgrade fields did not reach it, a hop in between "
                             "probably removed Upgrade and Connection");
        if (f && !up && !v) {
            sy_probe_hint(f,
                          "the 426 names neither Upgrade nor Sec-WebSocket-Version, so it does "
                          "not say what it wants (RFC 9110 §15.5.22 requires Upgrade in a "
                          "426)%s%s",
                          hint[0] ? "; " : "", hint);
            return;
        }
    } else if (st >= 300 && st < 400) {
        const sy_field *loc = get(h, "location", NULL);
        f = sy_probe_add(r, path, SY_PF_WS_REDIRECT,
                         "The server redirected the handshake (%d) to %s; WebSocket clients "
                         "(browsers included) do not follow redirects.",
                         st, loc ? sy_probe_quote(q, 160, loc->value, loc->value_len) : "nowhere");
        if (f && loc) {
            int https = loc->value_len >= 8 && sy__ieq(loc->value, 8, "https://");
            int wss = loc->value_len >= 6 && sy__ieq(loc->value, 6, "wss://");
            int rel = loc->value_len >= 1 && loc->value[0] == '/' &&
                      !(loc->value_len >= 2 && loc->value[1] == '/');
            if (https || wss) {
                sy_probe_hint(f, "the redirect goes to %s: probe (and connect to) the wss:// URL",
                              https ? "https" : "wss");
                return;
            }
            if (rel) {
                sy_probe_hint(f,
                              "the endpoint moved to the path %s on the same host: use that "
                              "path in the WebSocket URL (a trailing slash or a renamed "
                              "route)",
                              q);
                return;
            }
        }
    } else if (st == 401) {
        const sy_field *wa = get(h, "www-authenticate", NULL);
        f = sy_probe_add(r, path, SY_PF_WS_FORBIDDEN,
                         "The server requires authentication: 401 %s%s%s%s.", reason,
                         wa ? " (WWW-Authenticate: " : " (no WWW-Authenticate field)",
                         wa ? sy_probe_quote(q, 80, wa->value, wa->value_len) : "", wa ? ")" : "");
        if (f) {
            sy_probe_hint(f,
                          "send the credentials the server asks for, e.g. -H 'Authorization: "
                          "...' or -H 'Cookie: ...' (browsers cannot set Authorization on a "
                          "WebSocket: use a cookie or a token in the URL)%s%s",
                          hint[0] ? "; " : "", hint);
            return;
        }
    } else if (st == 403) {
        f = sy_probe_add(r, path, SY_PF_WS_FORBIDDEN,
                         "The server refused the handshake with %d %s%s%s%s.", st, reason,
                         rq->origin ? " (the probe sent Origin: " : " (the probe sent no Origin",
                         rq->origin ? rq->origin : "", ")");
    } else if (st == 404) {
        f = sy_probe_add(r, path, SY_PF_WS_NOT_FOUND, "The server has nothing at %s (404 %s).",
                         rq->target, reason);
    } else if (st == 502 || st == 503 || st == 504) {
        f = sy_probe_add(r, path, SY_PF_WS_BAD_GATEWAY, "The handshake got %d %s from a gateway.",
                         st, reason);
    } else {
        f = sy_probe_add(r, path, SY_PF_WS_UNEXPECTED_STATUS,
                         "The server answered the handshake with %d %s.", st, reason);
    }
    if (f && hint[0])
        sy_probe_hint(f, "%s", hint);
}

/* base64 of SHA-1 over the concatenation of a and b. */
static void b64_sha1(const char *a, const char *b, char out[64])
{
    unsigned char md[EVP_MAX_MD_SIZE], cat[128];
    unsigned mdlen = 0;
    size_t la = strlen(a), lb = strlen(b);
    out[0] = 0;
    if (la + lb > sizeof(cat))
        return;
    memcpy(cat, a, la);
    memcpy(cat + la, b, lb);
    if (EVP_Digest(cat, la + lb, md, &mdlen, EVP_sha1(), NULL) == 1)
        EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* How a wrong Sec-WebSocket-Accept was computed, when it is one of the usual mistakes (or
 * NULL). */
static const char *accept_variant(const char *key, const char *v, size_t n)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char x[64], good[29];
    sy_ws_accept_key(key, strlen(key), good);
    if (n == 27 && !memcmp(v, good, 27))
        return "right but without its \"=\" padding";
    b64_sha1(key, "", x);
    if (n == strlen(x) && !memcmp(v, x, n))
        return "base64(SHA-1(key)): the GUID is not appended to the key";
    b64_sha1(guid, key, x);
    if (n == strlen(x) && !memcmp(v, x, n))
        return "base64(SHA-1(GUID + key)): the GUID comes before the key instead of after it";
    char lower[sizeof(guid)];
    for (size_t i = 0; i < sizeof(guid); i++)
        lower[i] = (char)(guid[i] >= 'A' && guid[i] <= 'F' ? guid[i] + 32 : guid[i]);
    b64_sha1(key, lower, x);
    if (n == strlen(x) && !memcmp(v, x, n))
        return "computed with the GUID in lower case (it is upper case)";
    /* base64 of the 40 hex digits of the right digest */
    unsigned char md[EVP_MAX_MD_SIZE], cat[128], hexs[41], enc[64];
    unsigned mdlen = 0;
    size_t lk = strlen(key);
    if (lk + sizeof(guid) - 1 <= sizeof(cat)) {
        memcpy(cat, key, lk);
        memcpy(cat + lk, guid, sizeof(guid) - 1);
        if (EVP_Digest(cat, lk + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL) == 1 &&
            mdlen == 20) {
            static const char hx[] = "0123456789abcdef";
            for (unsigned i = 0; i < 20; i++) {
                hexs[2 * i] = (unsigned char)hx[md[i] >> 4];
                hexs[2 * i + 1] = (unsigned char)hx[md[i] & 15];
            }
            int el = EVP_EncodeBlock(enc, hexs, 40);
            if (n == (size_t)el && !memcmp(v, enc, n))
                return "base64 of the SHA-1's hex digits (base64 must encode the 20 raw bytes)";
            for (unsigned i = 0; i < 40; i++)
                hexs[i] = (unsigned char)(hexs[i] >= 'a' ? hexs[i] - 32 : hexs[i]);
            el = EVP_EncodeBlock(enc, hexs, 40);
            if (n == (size_t)el && !memcmp(v, enc, n))
                return "base64 of the SHA-1's hex digits (base64 must encode the 20 raw bytes)";
        }
    }
    return NULL;
}

static void check_accept(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                         const sy_probe_head *h)
{
    int count = 0;
    const sy_field *a = get(h, "sec-websocket-accept", &count);
    char want[29], q[80];
    if (!a) {
        sy_probe_add(r, path, SY_PF_WS_ACCEPT_MISSING,
                     "The 101 response has no Sec-WebSocket-Accept field; clients fail the "
                     "connection.");
        return;
    }
    sy_ws_accept_key(rq->key, strlen(rq->key), want);
    if (count == 1 && a->value_len == 28 && !memcmp(a->value, want, 28))
        return;
    if (count > 1) {
        int all_right = 1;
        for (size_t i = 0; i < h->nfields; i++) {
            const sy_field *x = &h->fields[i];
            if (sy__ieq(x->name, x->name_len, "sec-websocket-accept"))
                all_right &= x->value_len == 28 && !memcmp(x->value, want, 28);
        }
        sy_probe_finding *f = sy_probe_add(
            r, path, SY_PF_WS_ACCEPT_MISMATCH,
            "The 101 carries Sec-WebSocket-Accept %d times%s; clients (Chrome among them) fail a "
            "handshake with more than one.",
            count, all_right ? " (each with the right value)" : "");
        sy_probe_hint(f, "the field is added twice: by the application and by a framework or "
                         "proxy, or a handler that writes the 101 by hand on top of a library "
                         "that already did");
        return;
    }
    sy_probe_finding *f =
        sy_probe_add(r, path, SY_PF_WS_ACCEPT_MISMATCH,
                     "Sec-WebSocket-Accept is \"%s\", but the key the probe sent gives \"%s\".",
                     sy_probe_quote(q, sizeof(q), a->value, a->value_len), want);
    size_t hexn = 0;
    for (size_t i = 0; i < a->value_len; i++)
        hexn += (a->value[i] >= '0' && a->value[i] <= '9') ||
                (a->value[i] >= 'a' && a->value[i] <= 'f') ||
                (a->value[i] >= 'A' && a->value[i] <= 'F');
    const char *how = accept_variant(rq->key, a->value, a->value_len);
    if (how)
        sy_probe_hint(f,
                      "the value is %s: compute base64(SHA-1(key + "
                      "\"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\")) of the 20 raw digest bytes",
                      how);
    else if (a->value_len == 40 && hexn == 40)
        sy_probe_hint(f, "the value is 40 hex digits: the server sends the SHA-1 in hex instead "
                         "of base64");
    else if (a->value_len != 28)
        sy_probe_hint(f,
                      "the value is %zu characters, not the 28 of a base64 SHA-1: not computed "
                      "as RFC 6455 §4.2.2 says",
                      a->value_len);
    else if (get(h, "age", NULL) || get(h, "x-cache", NULL))
        sy_probe_hint(f, "the response carries cache fields (Age/X-Cache): a cache replayed a "
                         "101 meant for another request");
    else
        sy_probe_hint(f, "a well-formed value for another key: the server hashes something "
                         "other than key + GUID, or a stored 101 was replayed");
}

static void check_subprotocol(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                              const sy_probe_head *h, sy_probe_ws_result *out)
{
    int count = 0;
    const sy_field *p = get(h, "sec-websocket-protocol", &count);
    char q[80], offered[200];
    out_buf o = {offered, sizeof(offered), 0, 0};
    offered[0] = 0;
    for (size_t i = 0; i < rq->nsub; i++)
        put(&o, "%s%s", i ? ", " : "", rq->subprotocols[i]);
    if (!p) {
        if (rq->nsub)
            sy_probe_add(r, path, SY_PF_WS_SUBPROTOCOL_NOT_SELECTED,
                         "The probe offered Sec-WebSocket-Protocol \"%s\" and the 101 selects "
                         "none; Chrome and Firefox fail such a connection.",
                         offered);
        return;
    }
    sy_probe_quote(q, sizeof(q), p->value, p->value_len);
    int listed = 0;
    for (size_t i = 0; i < rq->nsub; i++)
        if (strlen(rq->subprotocols[i]) == p->value_len &&
            !memcmp(rq->subprotocols[i], p->value, p->value_len))
            listed = 1;
    if (count > 1 || memchr(p->value, ',', p->value_len)) {
        sy_probe_add(r, path, SY_PF_WS_SUBPROTOCOL_UNSOLICITED,
                     "The 101 selects several subprotocols (\"%s\"%s) where it must select "
                     "exactly one of the offered (%s%s%s); clients fail the connection.",
                     q, count > 1 ? ", in several fields" : "", rq->nsub ? "\"" : "none", offered,
                     rq->nsub ? "\"" : "");
        return;
    }
    if (!listed) {
        sy_probe_add(r, path, SY_PF_WS_SUBPROTOCOL_UNSOLICITED,
                     "The 101 selects subprotocol \"%s\", but the probe offered %s%s%s.", q,
                     rq->nsub ? "\"" : "none", offered, rq->nsub ? "\"" : "");
        return;
    }
    sy_probe_quote(out->subprotocol, sizeof(out->subprotocol), p->value, p->value_len);
}

static void check_extensions(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                             const sy_probe_head *h, sy_probe_ws_result *out)
{
    char q[160];
    for (size_t i = 0; i < h->nfields; i++) {
        const sy_field *f = &h->fields[i];
        if (!sy__ieq(f->name, f->name_len, "sec-websocket-extensions"))
            continue;
        const char *why;
        int no_ctx = 0;
        int rc = sy_probe_ws_ext_check(f->value, f->value_len, rq->offer_deflate && !out->deflate,
                                       &no_ctx, &why);
        sy_probe_quote(q, sizeof(q), f->value, f->value_len);
        if (rc == 1) {
            out->deflate = 1;
            out->server_no_context_takeover = no_ctx;
            sy_probe_quote(out->extensions, sizeof(out->extensions), f->value, f->value_len);
        } else if (rc == -2) {
            sy_probe_add(r, path, SY_PF_WS_EXTENSION_UNSOLICITED,
                         "The 101 accepts extensions \"%s\": %s (the probe offered %s).", q, why,
                         rq->offer_deflate ? "only permessage-deflate" : "none");
        } else if (rc < 0) {
            sy_probe_add(r, path, SY_PF_WS_EXTENSION_INVALID,
                         "The 101 answers Sec-WebSocket-Extensions \"%s\": %s.", q, why);
        }
    }
}

void sy_probe_ws_check(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                       const sy_probe_head *h, const sy_probe_body *body, sy_probe_ws_result *out)
{
    char q[120];
    memset(out, 0, sizeof(*out));
    sy_probe_head_check(r, path, h, "handshake");
    if (h->major == 1 && h->minor == 0) {
        sy_probe_finding *f;
        if (h->status == 101) {
            /* HTTP/1.0 has neither 101 nor Upgrade (RFC 9110 §7.8, §15.2): a 101 that calls
             * itself HTTP/1.0 is one strict clients refuse, whatever follows. */
            f = sy_probe_add(r, path, SY_PF_HTTP_VERSION_10,
                             "The 101 Switching Protocols is an HTTP/1.0 response; HTTP/1.0 has "
                             "no 101 and no Upgrade, so strict clients fail the handshake.");
            if (f)
                f->sev = SY_PROBE_ERROR;
        } else {
            f = sy_probe_add(r, path, SY_PF_HTTP_VERSION_10,
                             "The answer is HTTP/1.0 (status %d): that hop cannot switch "
                             "protocols.",
                             h->status);
        }
        const sy_field *server = get(h, "server", NULL);
        if (server)
            sy_probe_hint(f, "answered by \"%s\"",
                          sy_probe_quote(q, 64, server->value, server->value_len));
        else if (h->status == 101)
            sy_probe_hint(f, "the server writes \"HTTP/1.0\" in its status line although the "
                             "request was HTTP/1.1");
    }
    if (h->status != 101) {
        not_switched(r, path, rq, h, body);
        return;
    }
    if (get(h, "content-length", NULL) || get(h, "transfer-encoding", NULL))
        sy_probe_add(r, path, SY_PF_HTTP_1XX_FRAMING,
                     "The 101 response carries Content-Length or Transfer-Encoding; strict "
                     "clients and proxies may treat the frames that follow as a body.");
    out->switched = 1;
    int nup = 0;
    const sy_field *up = get(h, "upgrade", &nup);
    if (!up) {
        sy_probe_add(r, path, SY_PF_WS_UPGRADE_MISSING,
                     "The 101 response has no Upgrade field; clients fail the connection.");
    } else if (!sy_field_list_has(up->value, up->value_len, "websocket")) {
        sy_probe_add(r, path, SY_PF_WS_UPGRADE_WRONG,
                     "The 101 response switches to \"%s\" instead of \"websocket\"; clients "
                     "fail the connection.",
                     sy_probe_quote(q, sizeof(q), up->value, up->value_len));
        out->switched = 0; /* it switched to something else: frames make no sense */
    } else if (!sy__ieq(up->value, up->value_len, "websocket")) {
        sy_probe_add(r, path, SY_PF_WS_UPGRADE_WRONG,
                     "The 101 response lists several protocols (\"Upgrade: %s\"); it must "
                     "switch to exactly \"websocket\" (RFC 6455 §4.1), and browsers fail the "
                     "connection.",
                     sy_probe_quote(q, sizeof(q), up->value, up->value_len));
    } else if (nup > 1) {
        sy_probe_add(r, path, SY_PF_WS_UPGRADE_WRONG,
                     "The 101 response carries %d Upgrade fields; it must carry one "
                     "(\"Upgrade: websocket\"), and Chrome fails the connection.",
                     nup);
    }
    int has_upgrade_token = 0, nconn = 0;
    char conn[120] = "";
    for (size_t i = 0; i < h->nfields; i++) {
        const sy_field *f = &h->fields[i];
        if (!sy__ieq(f->name, f->name_len, "connection"))
            continue;
        nconn++;
        sy_probe_quote(conn, sizeof(conn), f->value, f->value_len);
        has_upgrade_token |= sy_field_list_has(f->value, f->value_len, "upgrade");
    }
    if (!has_upgrade_token)
        sy_probe_add(r, path, SY_PF_WS_CONNECTION_MISSING,
                     "The 101 response %s%s%s; clients fail the connection without "
                     "\"Connection: upgrade\".",
                     nconn ? "says \"Connection: " : "has no Connection field", nconn ? conn : "",
                     nconn ? "\"" : "");
    check_accept(r, path, rq, h);
    check_subprotocol(r, path, rq, h, out);
    check_extensions(r, path, rq, h, out);
    /* A 101 has no Sec-WebSocket-Version (RFC 6455 §4.2.2); one that names another version
     * says the server speaks another draft than the probe asked for. */
    const sy_field *v = get(h, "sec-websocket-version", NULL);
    const char *want = rq->version ? rq->version : "13";
    if (v && !(v->value_len == strlen(want) && !memcmp(v->value, want, v->value_len)))
        sy_probe_add(r, path, SY_PF_WS_VERSION_MISMATCH,
                     "The 101 says \"Sec-WebSocket-Version: %s\" although the probe asked for "
                     "version %s.",
                     sy_probe_quote(q, 40, v->value, v->value_len), want);
}
