/* Request objects: the public accessors, response helpers, route matching and target
 * decoding. Version-neutral: the wire format lives behind req->ops. */
#include "http/req.h"
#include "http/access.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define REQ_CACHE_MAX 16

uint64_t sy__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int sy__http_worker_init(sy_worker *w)
{
    if (w->upper)
        return 0;
    sy_http_worker *hw = sy__calloc(1, sizeof(*hw));
    if (!hw)
        return SY_ENOMEM;
    /* Request ids: the worker's number in the top byte, a sequence below; unique in the
     * process, and the number says which worker served it. */
    hw->next_id = ((uint64_t)(w->index + 1) & 0xff) << 56;
    w->upper = hw;
    return 0;
}

/* The worker's state, made on first use when the server did not make it (NULL without
 * memory: requests are then simply not cached). */
static sy_http_worker *cache_of(sy_worker *w)
{
    if (!w->upper)
        (void)sy__http_worker_init(w);
    return w->upper;
}

static void req_destroy(sy_req *r);

sy_req *sy__req_get(sy_worker *w)
{
    sy_http_worker *rc = cache_of(w);
    sy_req *r = rc ? rc->cache_head : NULL;
    size_t cap = (size_t)sy__http_worker_conf(w)->cfg.max_headers;
    if (r) {
        rc->cache_head = r->next_free;
        rc->cache_len--;
        r->next_free = NULL;
        r->id = ++rc->next_id;
        if (r->headers_cap < cap) {
            /* A reload raised the header limit: the parser writes up to cap fields. */
            sy_field *h = sy__realloc(r->headers, cap * sizeof(*h));
            if (!h) {
                req_destroy(r);
                return NULL;
            }
            r->headers = h;
            r->headers_cap = cap;
        }
        return r;
    }
    r = sy__calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->headers = sy__malloc(cap * sizeof(*r->headers));
    if (!r->headers) {
        sy__free(r);
        return NULL;
    }
    r->headers_cap = cap;
    r->worker = w;
    r->loop = w->loop;
    r->id = rc ? ++rc->next_id : 0;
    return r;
}

static void req_destroy(sy_req *r)
{
    sy__free(r->headers);
    sy__free(r->path);
    sy__free(r->hbuf);
    sy__free(r->body);
    sy__free(r->rh);
    sy__free(r);
}

static void free_upgrade_state(sy_req *r)
{
    if (r->upgrade_state && r->upgrade_state_free)
        r->upgrade_state_free(r->upgrade_state);
    r->upgrade_state = NULL;
    if (r->open_ud_set && r->open_ud_free)
        r->open_ud_free(r->open_ud);
    r->open_ud = NULL;
    r->open_ud_free = NULL;
    r->open_ud_set = 0;
}

void sy__req_clear_upgrade(sy_req *r)
{
    free_upgrade_state(r);
}

int sy__req_take_open_ud(sy_req *r, void **ud)
{
    int set = r->open_ud_set;
    *ud = r->open_ud;
    r->open_ud = NULL;
    r->open_ud_free = NULL;
    r->open_ud_set = 0;
    return set;
}

SY_EXPORT void sy_req_set_open_ud(sy_req *r, void *ud, void (*free_fn)(void *ud))
{
    if (r->open_ud_set && r->open_ud_free && r->open_ud != ud)
        r->open_ud_free(r->open_ud); /* replaced: the old one would never be handed over */
    r->open_ud = ud;
    r->open_ud_free = free_fn;
    r->open_ud_set = 1;
}

SY_EXPORT void *sy_req_open_ud(const sy_req *r)
{
    return r->open_ud;
}

void sy__req_put(sy_worker *w, sy_req *r)
{
    free_upgrade_state(r);
    /* Keep the buffers of a cached request small: a big body must not stay pinned. */
    if (r->body_cap > 65536) {
        sy__free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
    if (r->hbuf_cap > 16384) {
        sy__free(r->hbuf);
        r->hbuf = NULL;
        r->hbuf_cap = 0;
    }
    sy_field *h = r->headers;
    size_t hc = r->headers_cap;
    char *path = r->path, *hbuf = r->hbuf, *rh = r->rh;
    size_t pc = r->path_cap, hbc = r->hbuf_cap, rhc = r->rh_cap;
    uint8_t *body = r->body;
    size_t bc = r->body_cap;
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->headers_cap = hc;
    r->path = path;
    r->path_cap = pc;
    r->hbuf = hbuf;
    r->hbuf_cap = hbc;
    r->rh = rh;
    r->rh_cap = rhc;
    r->body = body;
    r->body_cap = bc;
    r->worker = w;
    r->loop = w->loop;
    sy_http_worker *rc = cache_of(w);
    if (!rc || rc->cache_len >= REQ_CACHE_MAX) {
        req_destroy(r);
        return;
    }
    r->next_free = rc->cache_head;
    rc->cache_head = r;
    rc->cache_len++;
}

void sy__http_req_cache_clear(sy_worker *w)
{
    sy_http_worker *rc = w->upper;
    if (!rc)
        return;
    sy_req *r = rc->cache_head;
    while (r) {
        sy_req *n = r->next_free;
        req_destroy(r);
        r = n;
    }
    sy__http_conf_unref(rc->conf);
    sy__free(rc);
    w->upper = NULL;
}

/* The head's slices point into a buffer that is about to go and could not be copied (no
 * memory): make the accessors answer empty strings rather than read freed bytes. */
static void forget_head(sy_req *r)
{
    r->method = r->target = "";
    r->method_len = r->target_len = 0;
    r->query = NULL;
    r->query_len = 0;
    r->nheaders = 0;
    r->upgrade = NULL;
    r->head_base = NULL;
    r->head_len = 0;
}

int sy__req_pin(sy_req *r)
{
    if (r->pinned || !r->head_base)
        return 0;
    if (r->hbuf_cap < r->head_len) {
        char *n = sy__malloc(r->head_len);
        if (!n) {
            forget_head(r);
            return SY_ENOMEM;
        }
        sy__free(r->hbuf);
        r->hbuf = n;
        r->hbuf_cap = r->head_len;
    }
    memcpy(r->hbuf, r->head_base, r->head_len);
    const char *ob = r->head_base;
    char *nb = r->hbuf;
    /* Only what points into the head moves: a field the server added (the Host an
     * absolute-form target supplies) may point elsewhere. */
#define REBASE(p)                                                                                  \
    do {                                                                                           \
        if ((p) && (p) >= ob && (p) < ob + r->head_len)                                            \
            (p) = nb + ((p)-ob);                                                                   \
    } while (0)
    REBASE(r->method);
    REBASE(r->target);
    REBASE(r->query);
    for (size_t i = 0; i < r->nheaders; i++) {
        REBASE(r->headers[i].name);
        REBASE(r->headers[i].value);
    }
#undef REBASE
    r->head_base = nb;
    r->pinned = 1;
    return 0;
}

void sy__req_release(sy_worker *w, sy_req *r)
{
    if (!r->held) {
        sy__req_put(w, r);
        return;
    }
    (void)sy__req_pin(r); /* on failure the head reads as empty */
    free_upgrade_state(r);
    r->orphan = 1;
    r->resp_done = 1;
    r->conn = NULL;
    r->proto = NULL;
    r->worker = NULL; /* the worker may be gone before the application's final call */
    r->body_fn = NULL;
    r->drain_fn = NULL;
    sy__loop_ref(r->loop);
    if (r->conf)
        sy__http_conf_ref(r->conf); /* r->route stays valid until the final call */
}

void sy__req_body_end(sy_req *r)
{
    if (!r->body_fn || r->body_end_sent || r->resp_done)
        return;
    r->body_end_sent = 1;
    r->body_fn(r, NULL, 0, 1, 0, r->body_ud);
}

void sy__req_body_fail(sy_req *r, int err)
{
    /* Unlike the end above, also once the response is done: the server may have answered
     * by itself (400, 408, 413) and the handler still waits for the body's end to make its
     * final call. */
    if (!r->held || !r->body_fn || r->body_end_sent)
        return;
    r->body_end_sent = 1;
    r->body_fn(r, NULL, 0, 1, err < 0 ? err : SY_ECLOSED, r->body_ud);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sy__req_decode_target(sy_req *r, const char **detail)
{
    const char *t = r->target;
    size_t n = r->target_len;
    r->query = NULL;
    r->query_len = 0;
    if (n == 1 && t[0] == '*') {
        /* asterisk-form: only for OPTIONS (RFC 9112 §3.2.4) */
        if (!(r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0)) {
            *detail = "asterisk-form request target is only valid with OPTIONS";
            return SY_EHTTP_SYNTAX;
        }
    } else if (memchr(t, '#', n)) {
        /* origin-form is absolute-path [ "?" query ] (RFC 9112 §3.2.1, RFC 9113 §8.3.1 for
         * :path): a fragment is never sent, and cutting it off here while something in front
         * of us kept it would make two readings of one target. */
        *detail = "fragment ('#') in the request target";
        return SY_EHTTP_SYNTAX;
    } else if (t[0] != '/') {
        /* absolute-form: scheme "://" authority path; keep the path part */
        size_t i = 0;
        while (i < n && t[i] != ':')
            i++;
        if (i + 3 > n || memcmp(t + i, "://", 3) != 0 || i == 0) {
            *detail = "request target is not in origin, absolute or asterisk form";
            return SY_EHTTP_SYNTAX;
        }
        i += 3;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        t += i;
        n -= i;
        if (n == 0) {
            t = "/";
            n = 1;
        }
    }
    size_t plen = 0;
    while (plen < n && t[plen] != '?' && t[plen] != '#')
        plen++;
    if (plen < n && t[plen] == '?') {
        r->query = t + plen + 1;
        r->query_len = n - plen - 1;
    }
    if (r->path_cap < plen + 2) {
        size_t cap = SY_MAX(plen + 2, 256);
        char *p = sy__malloc(cap);
        if (!p)
            return SY_ENOMEM;
        sy__free(r->path);
        r->path = p;
        r->path_cap = cap;
    }
    size_t o = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = t[i];
        if (c == '%') {
            int hi = i + 2 < plen ? hexval((unsigned char)t[i + 1]) : -1;
            int lo = i + 2 < plen ? hexval((unsigned char)t[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *detail = "invalid percent-encoding in the request path";
                return SY_EHTTP_SYNTAX;
            }
            c = (char)(hi * 16 + lo);
            if (c == 0) {
                *detail = "percent-encoded NUL in the request path";
                return SY_EHTTP_SYNTAX;
            }
            i += 2;
        }
        r->path[o++] = c;
    }
    if (o == 0)
        r->path[o++] = '*' == t[0] ? '*' : '/';
    r->path[o] = 0;
    r->path_len = o;
    return 0;
}

const char *sy__status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 200   ? "Informational"
               : status < 300 ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

/* ---- public accessors ---- */

SY_EXPORT const char *sy_req_method(const sy_req *r, size_t *len)
{
    if (len)
        *len = r->method_len;
    return r->method;
}

SY_EXPORT const char *sy_req_target(const sy_req *r, size_t *len)
{
    if (len)
        *len = r->target_len;
    return r->target;
}

SY_EXPORT const char *sy_req_path(const sy_req *r, size_t *len)
{
    if (len)
        *len = r->path_len;
    return r->path;
}

SY_EXPORT const char *sy_req_query(const sy_req *r, size_t *len)
{
    if (len)
        *len = r->query_len;
    return r->query;
}

SY_EXPORT int sy_req_version(const sy_req *r)
{
    return r->version;
}

SY_EXPORT const char *sy_req_header(const sy_req *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const sy_field *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

SY_EXPORT int sy_req_header_at(const sy_req *r, size_t i, const char **name, size_t *name_len,
                               const char **value, size_t *value_len)
{
    if (i >= r->nheaders)
        return SY_ENOTFOUND;
    *name = r->headers[i].name;
    *name_len = r->headers[i].name_len;
    *value = r->headers[i].value;
    *value_len = r->headers[i].value_len;
    return 0;
}

SY_EXPORT const void *sy_req_body(const sy_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

SY_EXPORT const char *sy_req_peer(const sy_req *r)
{
    return r->conn ? sy__conn_peer_str(r->conn) : "";
}

SY_EXPORT sy_loop *sy_req_loop(const sy_req *r)
{
    return r->loop;
}

SY_EXPORT uint64_t sy_req_id(const sy_req *r)
{
    return r->id;
}

SY_EXPORT const char *sy_req_response_headers(const sy_req *r, size_t *len)
{
    *len = r->rh ? r->rh_len : 0;
    return r->rh ? r->rh : "";
}

SY_EXPORT void *sy_req_route_ud(const sy_req *r)
{
    return r->route ? r->route->ud : NULL;
}

SY_EXPORT int sy_req_on_body(sy_req *r, sy_body_fn fn, void *ud)
{
    if (r->orphan)
        return SY_ECLOSED;
    if (r->resp_done)
        return SY_ESTATE;
    r->body_fn = fn;
    r->body_ud = ud;
    return 0;
}

/* ---- responses ---- */

/* Length of a response header name, or -1 when it is not one (controls, spaces, ':' and
 * non-ASCII bytes are refused). */
static ssize_t name_len(const char *s)
{
    size_t n = 0;
    for (unsigned char c; (c = (unsigned char)s[n]) != 0; n++)
        if (c <= 32 || c == ':' || c >= 127)
            return -1;
    return (ssize_t)n;
}

/* The application's final call on an orphan frees it. Orphans are not cached: their worker
 * may be gone, and this may run on any thread once the loop is gone (see sy_loop_post). */
static int orphan_release(sy_req *r)
{
    sy_loop *loop = r->loop;
    sy_http_conf *conf = r->conf;
    req_destroy(r);
    sy__loop_unref(loop);
    sy__http_conf_unref(conf);
    return SY_ECLOSED;
}

/* A final call (sy_respond, sy_resp_sendfile, sy_resp_end): the application lets go. */
static void let_go(sy_req *r)
{
    r->held = 0;
}

SY_EXPORT int sy_resp_header(sy_req *r, const char *name, const char *value)
{
    if (r->orphan)
        return SY_ECLOSED;
    if (r->resp_started)
        return SY_EINVAL;
    /* One pass over each string validates it and measures it (this runs for every header of
     * every response). */
    ssize_t snl = name_len(name);
    size_t nl = snl < 0 ? 0 : (size_t)snl, vl = strcspn(value, "\r\n");
    if (snl <= 0 || value[vl])
        return SY_EINVAL;
    /* Framing and connection management are ours; Content-Length is honoured for streams. */
    if (sy__ieq(name, nl, "transfer-encoding") || sy__ieq(name, nl, "connection") ||
        sy__ieq(name, nl, "date"))
        return SY_EINVAL;
    size_t need = r->rh_len + nl + vl + 4;
    if (need > 65536)
        return SY_ELIMIT;
    if (need > r->rh_cap) {
        size_t cap = SY_MAX(need, SY_MAX(r->rh_cap * 2, 256));
        char *n = sy__realloc(r->rh, cap);
        if (!n)
            return SY_ENOMEM;
        r->rh = n;
        r->rh_cap = cap;
    }
    char *p = r->rh + r->rh_len;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    r->rh_len = need;
    if (sy__ieq(name, nl, "content-length"))
        r->has_content_length = 1;
    return 0;
}

SY_EXPORT int sy_respond(sy_req *r, int status, const char *ctype, const void *body, size_t len)
{
    if (r->orphan)
        return orphan_release(r);
    let_go(r);
    if (r->resp_done)
        return SY_ESTATE; /* already finished (a failed write ended it) */
    if (r->resp_started) {
        r->ops->abort(r, SY_ESTATE); /* a streamed response cannot be completed this way */
        return SY_ESTATE;
    }
    int e = status < 200 || status > 999 ? SY_EINVAL : 0;
    if (!e && ctype)
        e = sy_resp_header(r, "Content-Type", ctype);
    if (!e)
        e = r->ops->start(r, status, 1, len);
    if (!e && len)
        e = r->ops->write(r, body, len);
    if (e) {
        /* A whole response that cannot be sent finishes the request anyway: the connection
         * closes, since its framing can no longer be trusted. */
        r->ops->abort(r, e);
        return e;
    }
    return r->ops->end(r);
}

SY_EXPORT int sy_resp_sendfile(sy_req *r, int status, int fd, off_t off, size_t len)
{
    if (r->orphan) {
        close(fd);
        return orphan_release(r);
    }
    let_go(r);
    if (r->resp_started || r->resp_done) {
        close(fd);
        if (!r->resp_done)
            r->ops->abort(r, SY_ESTATE);
        return SY_ESTATE;
    }
    int e = r->ops->start(r, status, 1, len);
    if (e)
        close(fd);
    else
        e = r->ops->sendfile(r, fd, off, len); /* closes fd on failure */
    if (e) {
        r->ops->abort(r, e);
        return e;
    }
    return r->ops->end(r);
}

SY_EXPORT int sy_resp_start(sy_req *r, int status)
{
    if (r->orphan)
        return SY_ECLOSED;
    if (r->resp_started)
        return SY_ESTATE;
    int e = r->ops->start(r, status, 0, 0);
    if (e && r->resp_started)
        r->ops->abort(r, e); /* the head could not be queued: the request is over */
    return e;
}

SY_EXPORT int sy_resp_write(sy_req *r, const void *data, size_t len)
{
    if (r->orphan)
        return SY_ECLOSED;
    if (!r->resp_started || r->resp_done)
        return SY_ESTATE;
    int e = r->ops->write(r, data, len);
    if (e)
        r->ops->abort(r, e); /* a response with a hole in it must not go on */
    return e;
}

SY_EXPORT size_t sy_resp_buffered(const sy_req *r)
{
    return r->ops && !r->orphan ? r->ops->buffered(r) : 0;
}

SY_EXPORT int sy_resp_on_drain(sy_req *r, void (*fn)(sy_req *req, void *ud), void *ud)
{
    if (r->orphan)
        return SY_ECLOSED;
    if (!r->resp_started || r->resp_done)
        return SY_ESTATE;
    int e = r->ops->want_drain(r);
    if (e)
        return e;
    r->drain_fn = fn;
    r->drain_ud = ud;
    return 0;
}

SY_EXPORT int sy_resp_end(sy_req *r)
{
    if (r->orphan)
        return orphan_release(r);
    let_go(r);
    if (r->resp_done)
        return SY_ESTATE; /* already finished (a failed write ended it) */
    if (!r->resp_started) {
        /* The final call came without a response: nothing else will answer, so end the
         * exchange rather than leave the client waiting. */
        r->ops->abort(r, SY_ESTATE);
        return SY_ESTATE;
    }
    return r->ops->end(r);
}
