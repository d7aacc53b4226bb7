/* HTTP/1.1 request head parser (RFC 9112 §2-§5) and the framing checks of RFC 9112 §6.
 *
 * The parser keeps no state: each call re-parses from buf[0]. What makes that cheap for a
 * client that trickles bytes is the prev_len pre-check, which only looks at the new bytes for
 * something that can change the answer (the end of the head, or a bare CR/LF) and otherwise
 * re-applies the size limits without parsing. Every check is a lookup in one 256-entry table.
 */
#include "http1/parse.h"

/* Character classes (bits of ctab). */
#define C_TOKEN 0x01  /* tchar (RFC 9110 §5.6.2) */
#define C_FIELD 0x02  /* field-content: VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x04 /* request-target: VCHAR, obs-text */
/* 0x08 and 0x10 are left over from the Host check, now sy_field_host_valid (http/field.c). */

// clang-format off
static const uint8_t ctab[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0, /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 10 */
     2, 31,  6,  7, 31,  7, 31, 31, 30, 30, 31, 31, 30, 31, 31,  6, /* 20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 22, 30,  6, 30,  6,  6, /* 30 */
     6, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, /* 40 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  6,  6,  6,  7, 31, /* 50 */
     7, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, /* 60 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  6,  7,  6, 31,  0, /* 70 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* 80 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* 90 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* a0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* b0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* c0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* d0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* e0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* f0 */
};
// clang-format on

#define IS(c, cls) (ctab[(uint8_t)(c)] & (cls))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')
#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* Effective limits: 0 means "no limit" (max_headers is always bounded by the array). */
typedef struct lims {
    size_t line, head, hdrs;
} lims;

static ssize_t fail(const char **detail, int err, const char *msg)
{
    if (detail)
        *detail = msg;
    return err;
}

#define FAIL(err, msg) return fail(detail, (err), (msg))
#define BAD(msg) FAIL(SY_EHTTP_SYNTAX, (msg))

static const char D_BARE_LF[] = "bare LF: every line must end in CRLF";
static const char D_BARE_CR[] = "bare CR not followed by LF";

/* First p in [p, end) whose class lacks cls. Eight bytes per round while they all match. */
static inline const char *span(const char *p, const char *end, uint8_t cls)
{
    while (end - p >= 8) {
        if (!IS(p[0], cls))
            return p;
        if (!IS(p[1], cls))
            return p + 1;
        if (!IS(p[2], cls))
            return p + 2;
        if (!IS(p[3], cls))
            return p + 3;
        if (!IS(p[4], cls))
            return p + 4;
        if (!IS(p[5], cls))
            return p + 5;
        if (!IS(p[6], cls))
            return p + 6;
        if (!IS(p[7], cls))
            return p + 7;
        p += 8;
    }
    while (p < end && IS(*p, cls))
        p++;
    return p;
}

/* span() for field values (bound = 0x20) and request-targets (bound = 0x21): eight bytes at a
 * time while none is below the bound or DEL. Bytes >= 0x80 (obs-text) never flag: the test
 * "x - bound & ~x & 0x80" only fires for a byte below the bound. HTAB falls to span(). */
static inline const char *span_text(const char *p, const char *end, uint8_t cls, uint64_t bound)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        y = x ^ (ones * 0x7f);
        if (((x - ones * bound) & ~x & highs) | ((y - ones) & ~y & highs))
            break;
        p += 8;
    }
    return span(p, end, cls);
}

/* Length of the tolerated empty lines (at most two complete CRLFs) at the start of buf. */
static size_t leading_crlfs(const char *buf, size_t len)
{
    size_t s = 0;
    while (s < 4 && s + 1 < len && buf[s] == '\r' && buf[s + 1] == '\n')
        s += 2;
    return s;
}

/* Non-zero when the request line starting at buf[s] is already longer than the limit: the
 * first line+1 bytes are there and none of them ends the line. Bounded by the limit. */
static int line_too_long(const char *buf, size_t avail, size_t s, size_t line)
{
    if (!line || avail - s <= line)
        return 0;
    return !memchr(buf + s, '\r', line + 1) && !memchr(buf + s, '\n', line + 1);
}

/* Incomplete head (no terminator within avail bytes): is it already over a limit? */
static ssize_t incomplete(size_t len, const lims *lm, const char **detail)
{
    /* The head ends beyond len, so it is at least len + 1 bytes long. */
    if (lm->head && len >= lm->head)
        FAIL(SY_EHTTP_HEAD_LARGE, "request header section larger than the limit");
    return 0;
}

/* The real parse, from buf[0]. Only the first lm->head bytes are looked at, so that the
 * answer for a head that does not fit never depends on the bytes past the limit. */
static ssize_t parse_full(const char *buf, size_t len, const lims *lm, sy_http1_request *req,
                          sy_http1_header *headers, const char **detail)
{
    size_t avail = lm->head && len > lm->head ? lm->head : len;
    const char *p = buf, *end = buf + avail;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request. */
    for (int i = 0; i < 2 && p < end && (*p == '\r' || *p == '\n'); i++) {
        if (*p == '\n')
            BAD(D_BARE_LF);
        if (end - p < 2)
            return incomplete(len, lm, detail);
        if (p[1] != '\n')
            BAD(D_BARE_CR);
        p += 2;
    }
    if (p < end && (*p == '\r' || *p == '\n'))
        BAD("more than two empty lines before the request line");
    if (line_too_long(buf, avail, (size_t)(p - buf), lm->line))
        FAIL(SY_EHTTP_URI_LONG, "request line longer than the limit");

    /* method SP */
    const char *m = p;
    p = span(p, end, C_TOKEN);
    if (p == end)
        return incomplete(len, lm, detail);
    if (*p != ' ')
        BAD(*p == '\n' ? D_BARE_LF : "invalid character in the method");
    if (p == m)
        BAD("request line does not start with a method");
    req->method = m;
    req->method_len = (size_t)(p - m);
    p++;

    /* request-target SP */
    const char *t = p;
    p = span_text(p, end, C_TARGET, 0x21);
    if (p == end)
        return incomplete(len, lm, detail);
    if (*p != ' ') {
        if (*p == '\n')
            BAD(D_BARE_LF);
        BAD(*p == '\r' ? "request line without an HTTP version"
                       : "control character in the request-target");
    }
    if (p == t)
        BAD("empty request-target (more than one space after the method)");
    req->target = t;
    req->target_len = (size_t)(p - t);
    p++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF */
    static const char proto[] = "HTTP/";
    for (int i = 0; i < 5; i++, p++) {
        if (p == end)
            return incomplete(len, lm, detail);
        if (*p != proto[i])
            BAD("invalid HTTP version");
    }
    int major, minor;
    if (p == end)
        return incomplete(len, lm, detail);
    if (!IS_DIGIT(*p))
        BAD("invalid HTTP version");
    major = *p++ - '0';
    if (p == end)
        return incomplete(len, lm, detail);
    if (*p != '.')
        BAD("invalid HTTP version");
    p++;
    if (p == end)
        return incomplete(len, lm, detail);
    if (!IS_DIGIT(*p))
        BAD("invalid HTTP version");
    minor = *p++ - '0';
    if (p == end)
        return incomplete(len, lm, detail);
    if (*p != '\r') {
        if (*p == '\n')
            BAD(D_BARE_LF);
        BAD(*p == ' ' ? "space after the HTTP version" : "invalid HTTP version");
    }
    if (p + 1 == end)
        return incomplete(len, lm, detail);
    if (p[1] != '\n')
        BAD(D_BARE_CR);
    if (major != 1 || minor > 1)
        FAIL(SY_EHTTP_VERSION, "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)");
    req->minor_version = minor;
    p += 2;

    /* *( field-line CRLF ) CRLF */
    size_t n = 0;
    for (;;) {
        if (p == end)
            return incomplete(len, lm, detail);
        if (*p == '\r') {
            if (p + 1 == end)
                return incomplete(len, lm, detail);
            if (p[1] != '\n')
                BAD(D_BARE_CR);
            p += 2;
            break;
        }
        if (*p == '\n')
            BAD(D_BARE_LF);
        if (IS_OWS(*p))
            BAD(n ? "obsolete line folding (header line starting with whitespace)"
                  : "whitespace between the request line and the first header field");
        if (n == lm->hdrs)
            FAIL(SY_EHTTP_HEAD_LARGE, "too many header fields");

        const char *name = p;
        p = span(p, end, C_TOKEN);
        if (p == end)
            return incomplete(len, lm, detail);
        if (*p != ':') {
            if (IS_OWS(*p))
                BAD("whitespace between header field name and colon");
            if (*p == '\r' || *p == '\n')
                BAD("header field line without a colon");
            BAD("invalid character in a header field name");
        }
        if (p == name)
            BAD("empty header field name");
        size_t name_len = (size_t)(p - name);
        p++;
        while (p < end && IS_OWS(*p))
            p++;
        const char *v = p;
        p = span_text(p, end, C_FIELD, 0x20);
        if (p == end)
            return incomplete(len, lm, detail);
        if (*p != '\r') {
            if (*p == '\n')
                BAD(D_BARE_LF);
            BAD(*p == '\0' ? "NUL byte in a header field value"
                           : "control character in a header field value");
        }
        if (p + 1 == end)
            return incomplete(len, lm, detail);
        if (p[1] != '\n')
            BAD(D_BARE_CR);
        const char *ve = p;
        while (ve > v && IS_OWS(ve[-1]))
            ve--;
        headers[n].name = name;
        headers[n].name_len = name_len;
        headers[n].value = v;
        headers[n].value_len = (size_t)(ve - v);
        n++;
        p += 2;
    }
    req->headers = headers;
    req->num_headers = n;
    return (ssize_t)(p - buf);
}

/* prev_len path: nothing in the new bytes can complete or break the head, so only the limits
 * can change the answer. Each check costs at most a scan bounded by the limit it enforces. */
static ssize_t still_incomplete(const char *buf, size_t len, size_t prev_len, int new_lf,
                                const lims *lm, const char **detail)
{
    size_t avail = lm->head && len > lm->head ? lm->head : len;
    size_t s = leading_crlfs(buf, avail);
    /* The request line was last measured by the call that crossed the limit. */
    if (prev_len <= s + lm->line && line_too_long(buf, avail, s, lm->line))
        FAIL(SY_EHTTP_URI_LONG, "request line longer than the limit");
    /* Count complete lines only when one just ended and enough bytes for too many headers are
     * here: a request line is at least 14 bytes and a field line 4 ("a:" CRLF). No bare LF
     * can be present, or the full parse would have run. */
    if (new_lf && avail - s >= 14 && (avail - s - 14) / 4 > lm->hdrs) {
        size_t lines = 0;
        const char *p = buf + s, *end = buf + avail;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
        if (lines > lm->hdrs + 1)
            FAIL(SY_EHTTP_HEAD_LARGE, "too many header fields");
    }
    return incomplete(len, lm, detail);
}

ssize_t sy_http1_parse_request(const char *buf, size_t len, size_t prev_len,
                               const sy_http1_limits *limits, sy_http1_request *req,
                               sy_http1_header *headers, size_t cap, const char **detail)
{
    lims lm = {0, 0, cap};
    if (limits) {
        lm.line = limits->max_request_line;
        lm.head = limits->max_head;
        if (limits->max_headers && limits->max_headers < cap)
            lm.hdrs = limits->max_headers;
    }
    if (prev_len && prev_len <= len) {
        /* The head ends with the first CRLF CRLF, which cannot lie wholly in the bytes the
         * previous call saw (it returned 0); a bare CR or LF is an error to report now. */
        size_t i = prev_len > 3 ? prev_len - 3 : 0;
        int new_lf = 0;
        for (; i < len; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (i == 0 || buf[i - 1] != '\r')
                    break;
                if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                    break;
                new_lf = 1;
            } else if (c == '\r' && i + 1 < len && buf[i + 1] != '\n') {
                break;
            }
        }
        if (i == len)
            return still_incomplete(buf, len, prev_len, new_lf, &lm, detail);
    }
    return parse_full(buf, len, &lm, req, headers, detail);
}

/* ---- Framing and connection semantics ---- */

/* Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6). */
static const char *parse_content_length(const char *v, size_t n, uint64_t *out)
{
    size_t i = 0;
    int have = 0;
    uint64_t first = 0;
    for (;;) {
        if (i == n || !IS_DIGIT(v[i]))
            return "invalid Content-Length value";
        uint64_t x = 0;
        while (i < n && IS_DIGIT(v[i])) {
            unsigned d = (unsigned)(v[i] - '0');
            if (x > (UINT64_MAX - d) / 10)
                return "Content-Length value too large";
            x = x * 10 + d;
            i++;
        }
        if (have && x != first)
            return "differing Content-Length values";
        first = x;
        have = 1;
        while (i < n && IS_OWS(v[i]))
            i++;
        if (i == n)
            break;
        if (v[i] != ',')
            return "invalid Content-Length value";
        i++;
        while (i < n && IS_OWS(v[i]))
            i++;
    }
    *out = first;
    return NULL;
}

/* RFC 9112 §3.2.2: an absolute-form target's scheme ("http" or "https", RFC 9110 §4.2) and
 * authority (a valid uri-host, no userinfo, not empty: RFC 9110 §4.2.1, §4.2.4), which the
 * request's host is taken from instead of Host. Returns NULL when fine or not absolute-form
 * (origin, asterisk and authority forms are sy__req_decode_target's to judge), else why not. */
static const char *absolute_form(const sy_http1_request *req, sy_http1_info *info)
{
    const char *t = req->target;
    size_t n = req->target_len, i = 0;
    if (!n || t[0] == '/' || (n == 1 && t[0] == '*'))
        return NULL;
    while (i < n && t[i] != ':')
        i++;
    if (i + 3 > n || memcmp(t + i, "://", 3) != 0)
        return NULL; /* not a URI with an authority: refused later as no valid form */
    if (!sy__ieq(t, i, "http") && !sy__ieq(t, i, "https"))
        return "absolute-form request target with a scheme other than http or https";
    size_t a = i + 3, e = a;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
        e++;
    if (e == a || t[a] == ':')
        return "absolute-form request target with an empty host";
    if (!sy_field_host_valid(t + a, e - a))
        return "invalid authority (or userinfo) in an absolute-form request target";
    info->authority = t + a;
    info->authority_len = e - a;
    return NULL;
}

/* Transfer-Encoding, all fields in order (RFC 9112 §6.1, §6.3). */
typedef struct te_state {
    unsigned fields, codings, chunked;
    int last_chunked;
    const char *err;    /* a framing error (400) */
    const char *coding; /* an unsupported coding (501) */
} te_state;

static void te_add(te_state *te, const char *v, size_t n)
{
    size_t pos = 0, tl;
    const char *tok;
    int rc;
    te->fields++;
    while (!te->err && (rc = sy_field_next_token(v, n, &pos, &tok, &tl, 0)) != 0) {
        if (rc < 0) {
            te->err = "invalid Transfer-Encoding value";
            return;
        }
        te->codings++;
        if (sy__ieq(tok, tl, "chunked")) {
            if (te->chunked++)
                te->err = "chunked transfer coding applied more than once";
            te->last_chunked = 1;
            continue;
        }
        te->last_chunked = 0;
        if (te->coding)
            continue;
        if (sy__ieq(tok, tl, "gzip") || sy__ieq(tok, tl, "deflate") ||
            sy__ieq(tok, tl, "compress") || sy__ieq(tok, tl, "x-gzip") ||
            sy__ieq(tok, tl, "x-compress"))
            te->coding = "transfer coding not supported (only chunked is)";
        else
            te->coding = "unknown transfer coding";
    }
}

int sy_http1_analyze(const sy_http1_request *req, sy_http1_info *info, const char **detail)
{
    memset(info, 0, sizeof(*info));
    te_state te = {0, 0, 0, 0, NULL, NULL};
    const char *cl_err = NULL, *expect_err = NULL;
    unsigned cl_fields = 0, hosts = 0;
    int conn_close = 0, conn_keep = 0;
    uint64_t cl = 0;

    for (size_t i = 0; i < req->num_headers; i++) {
        const sy_http1_header *h = &req->headers[i];
        const char *v = h->value;
        size_t vn = h->value_len, pos = 0, tl;
        const char *tok;
        int rc;
        switch (h->name_len) {
        case 4:
            if (sy__ieq(h->name, 4, "host") && !hosts++)
                info->host = h;
            break;
        case 6:
            if (!sy__ieq(h->name, 6, "expect"))
                break;
            while ((rc = sy_field_next_token(v, vn, &pos, &tok, &tl, 0)) != 0)
                if (rc < 0 || !sy__ieq(tok, tl, "100-continue"))
                    expect_err = "unsupported expectation (only 100-continue is)";
                else
                    info->expect_continue = 1;
            break;
        case 7:
            if (sy__ieq(h->name, 7, "upgrade") && !info->upgrade_count++)
                info->upgrade = h;
            break;
        case 10:
            if (!sy__ieq(h->name, 10, "connection"))
                break;
            /* Elements that are not tokens are skipped, like options we do not know. */
            while ((rc = sy_field_next_token(v, vn, &pos, &tok, &tl, 0)) != 0) {
                if (rc < 0)
                    continue;
                if (sy__ieq(tok, tl, "close"))
                    conn_close = 1;
                else if (sy__ieq(tok, tl, "keep-alive"))
                    conn_keep = 1;
                else if (sy__ieq(tok, tl, "upgrade"))
                    info->conn_upgrade = 1;
            }
            break;
        case 14:
            if (!sy__ieq(h->name, 14, "content-length") || cl_err)
                break;
            {
                uint64_t x = 0;
                cl_err = parse_content_length(v, vn, &x);
                if (!cl_err && cl_fields++ && x != cl)
                    cl_err = "differing Content-Length values";
                cl = x;
            }
            break;
        case 17:
            if (sy__ieq(h->name, 17, "transfer-encoding"))
                te_add(&te, v, vn);
            break;
        default:
            break;
        }
    }

    if (req->minor_version >= 1)
        info->keep_alive = !conn_close;
    else
        info->keep_alive = conn_keep && !conn_close;

    /* Framing first: a request whose length is unknown cannot be answered and kept. */
    if (cl_err)
        return (int)fail(detail, SY_EHTTP_FRAMING, cl_err);
    if (te.fields) {
        if (te.err)
            return (int)fail(detail, SY_EHTTP_FRAMING, te.err);
        if (req->minor_version == 0)
            return (int)fail(detail, SY_EHTTP_FRAMING, "Transfer-Encoding in an HTTP/1.0 request");
        if (cl_fields)
            return (int)fail(detail, SY_EHTTP_FRAMING,
                             "Content-Length and Transfer-Encoding together");
        if (!te.codings)
            return (int)fail(detail, SY_EHTTP_FRAMING, "empty Transfer-Encoding");
        if (!te.last_chunked)
            return (int)fail(detail, SY_EHTTP_FRAMING, "chunked is not the final transfer coding");
        info->body = SY_HTTP1_BODY_CHUNKED;
    } else if (cl_fields) {
        info->body = SY_HTTP1_BODY_LENGTH;
        info->content_length = cl;
    }

    if (hosts > 1)
        return (int)fail(detail, SY_EHTTP_SYNTAX, "more than one Host header field");
    if (!hosts && req->minor_version >= 1)
        return (int)fail(detail, SY_EHTTP_SYNTAX, "HTTP/1.1 request without a Host header field");
    if (hosts && !sy_field_host_valid(info->host->value, info->host->value_len))
        return (int)fail(detail, SY_EHTTP_SYNTAX, "invalid Host header field value");
    const char *target_err = absolute_form(req, info);
    if (target_err)
        return (int)fail(detail, SY_EHTTP_SYNTAX, target_err);
    if (te.coding)
        return (int)fail(detail, SY_EHTTP_CODING, te.coding);
    if (expect_err)
        return (int)fail(detail, SY_EHTTP_EXPECT, expect_err);
    return 0;
}

int sy_http1_error_status(int err)
{
    switch (err) {
    case SY_EHTTP_URI_LONG:
        return 414;
    case SY_EHTTP_HEAD_LARGE:
        return 431;
    case SY_EHTTP_VERSION:
        return 505;
    case SY_EHTTP_CODING:
        return 501;
    case SY_EHTTP_BODY_LARGE:
        return 413;
    case SY_EHTTP_EXPECT:
        return 417;
    case SY_EHTTP_SYNTAX:
    case SY_EHTTP_FRAMING:
    case SY_EHTTP_CHUNK:
    default:
        return 400;
    }
}
