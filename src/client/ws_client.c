/* The WebSocket client (a composition: TCP, then an HTTP/1.1 opening handshake, then the
 * WebSocket engine on the connection): connect, send the handshake, verify the answer
 * (RFC 6455 §4.1: status 101, Upgrade, Connection, Sec-WebSocket-Accept, no unsolicited
 * subprotocol or extension), then run the engine with masking on. */
#include "http1/response.h"
#include "tls/tls.h"
#include "ws/handshake.h"
#include "ws/ws.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

typedef struct ws_client {
    char key[25];
    char **subprotocols;
    size_t nsub;
    sy_pmd_config pmd_cfg;
    int pmd_offered;
    size_t pmd_reserved; /* deflate budget held for our offer until the server answers */
    const char *fail_detail;
    char target[280]; /* "host:port", for messages */
} ws_client;

static ws_client *client_of(const sy_ws *ws)
{
    return ws->cold ? ws->cold->client : NULL;
}

static void client_free(sy_ws *ws)
{
    ws_client *cl = client_of(ws);
    if (!cl)
        return;
    sy_pmd_release(cl->pmd_reserved);
    for (size_t i = 0; i < cl->nsub; i++)
        sy__free(cl->subprotocols[i]);
    sy__free(cl->subprotocols);
    sy__free(cl);
    ws->cold->client = NULL;
}

static ssize_t hs_on_read(sy_bstream *c, uint8_t *data, size_t len);
static void hs_on_timer(sy_bstream *c);
static void hs_on_close(sy_bstream *c, int err);
static void hs_on_eof(sy_bstream *c)
{
    sy_ws *ws = c->proto_data;
    client_of(ws)->fail_detail = "the server closed the connection during the handshake";
    sy__bs_close(c, SY_EWS_HANDSHAKE, 0);
}

static const sy_bstream_proto hs_proto = {
    "websocket-client-handshake", hs_on_read, NULL, hs_on_eof, hs_on_timer, NULL, hs_on_close, NULL,
};

static void hs_fail(sy_bstream *c, const char *detail)
{
    sy_ws *ws = c->proto_data;
    client_of(ws)->fail_detail = detail;
    sy__bs_close(c, SY_EWS_HANDSHAKE, 0);
}

static const sy_http1_header *find(const sy_http1_response *r, const char *lname, int *count)
{
    return sy_field_find(r->headers, r->num_headers, lname, count);
}

static ssize_t hs_on_read(sy_bstream *c, uint8_t *data, size_t len)
{
    sy_ws *ws = c->proto_data;
    ws_client *cl = client_of(ws);
    sy_http1_header hdrs[64];
    sy_http1_response resp;
    const char *detail = NULL;
    ssize_t n = sy_http1_parse_response((const char *)data, len, 16384, &resp, hdrs, 64, &detail);
    if (n == 0)
        return 0;
    if (n < 0) {
        hs_fail(c, detail);
        return (ssize_t)len;
    }
    int cnt;
    if (resp.status != 101) {
        /* Say what the server said: its status line and the first line of its body, which
         * usually names the reason (a missing header, an origin, a route). */
        static __thread char msg[320];
        const char *b = (const char *)data + n, *end = (const char *)data + len;
        size_t bl = 0;
        while (b + bl < end && bl < 200 && b[bl] != '\n' && b[bl] != '\r')
            bl++;
        for (size_t i = 0; i < bl; i++)
            if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] == 0x7f)
                bl = i; /* stop at control bytes: this goes to a terminal */
        snprintf(msg, sizeof(msg), "the server answered %d %.*s instead of 101%s%.*s", resp.status,
                 (int)SY_MIN(resp.reason_len, 64), resp.reason, bl ? ": " : "", (int)bl, b);
        hs_fail(c, msg);
        return (ssize_t)len;
    }
    const sy_http1_header *h = find(&resp, "upgrade", &cnt);
    if (!h || !sy__ieq(h->value, h->value_len, "websocket")) {
        hs_fail(c, "101 without 'Upgrade: websocket'");
        return (ssize_t)len;
    }
    h = find(&resp, "connection", &cnt);
    if (!h || !sy_field_list_has(h->value, h->value_len, "upgrade")) {
        hs_fail(c, "101 without 'Connection: upgrade'");
        return (ssize_t)len;
    }
    h = find(&resp, "sec-websocket-accept", &cnt);
    char want[29];
    sy_ws_accept_key(cl->key, 24, want);
    if (!h || cnt != 1 || h->value_len != 28 || memcmp(h->value, want, 28) != 0) {
        hs_fail(c, "Sec-WebSocket-Accept is missing or does not match the key");
        return (ssize_t)len;
    }
    h = find(&resp, "sec-websocket-protocol", &cnt);
    if (h) {
        int ok = 0;
        for (size_t i = 0; i < cl->nsub && !ok; i++)
            ok = strlen(cl->subprotocols[i]) == h->value_len &&
                 memcmp(cl->subprotocols[i], h->value, h->value_len) == 0;
        if (!ok || cnt != 1) {
            hs_fail(c, "the server chose a subprotocol we did not offer");
            return (ssize_t)len;
        }
        ws->cold->subprotocol = sy__ws_strdup(h->value, h->value_len);
    }
    sy_pmd *pmd = NULL;
    h = find(&resp, "sec-websocket-extensions", &cnt);
    if (h) {
        sy_pmd_params params;
        int r = cl->pmd_offered && cnt == 1
                    ? sy_pmd_client_accept(h->value, h->value_len, &cl->pmd_cfg, &params, &detail)
                    : SY_EWS_EXTENSION;
        if (r != 1) {
            hs_fail(c, r == 0 || !detail ? "the server answered with an extension we did not offer"
                                         : detail);
            return (ssize_t)len;
        }
        pmd = sy__calloc(1, sizeof(*pmd));
        if (!pmd || sy_pmd_init(pmd, &params, cl->pmd_cfg.mem_level) < 0) {
            sy__free(pmd);
            hs_fail(c, "out of memory");
            return (ssize_t)len;
        }
        pmd->level = (uint8_t)(ws->opts->level + 1);
        /* The server may only have lowered what we offered: keep what the answer costs. */
        pmd->reserved = SY_MIN(sy_pmd_cost(&params, cl->pmd_cfg.mem_level), cl->pmd_reserved);
        cl->pmd_reserved -= pmd->reserved;
        ws->cold->extensions = sy__ws_strdup(h->value, h->value_len);
    }
    sy_pmd_release(cl->pmd_reserved);
    cl->pmd_reserved = 0;
    sy__ws_start(ws, c, ws->opts, 1, pmd);
    ws->open_done = 1;
    if (ws->opts->cbs.on_open)
        ws->opts->cbs.on_open(ws, ws->ud);
    return n; /* the rest (frames sent right after the 101) goes to the engine */
}

static void hs_on_timer(sy_bstream *c)
{
    hs_fail(c, "timed out connecting or waiting for the handshake response");
}

static void hs_on_close(sy_bstream *c, int err)
{
    sy_ws *ws = c->proto_data;
    ws_client *cl = client_of(ws);
    ws->dead = 1;
    const sy_conn *conn = sy__conn_of(c);
    const char *tp_err = conn->tp->error ? conn->tp->error(conn) : NULL; /* e.g. TLS */
    static __thread char sock_err[400];
    int so = 0;
    socklen_t sl = sizeof(so);
    if (!tp_err && !cl->fail_detail && err == SY_EIO &&
        getsockopt(conn->io.fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so) {
        /* The socket knows why (connection refused, no route, reset): say it. */
        snprintf(sock_err, sizeof(sock_err), "cannot connect to %s: %s", cl->target, strerror(so));
        tp_err = sock_err;
    }
    sy_ws_close_info info = {1006, "", SY_WS_CAUSE_HANDSHAKE,
                             cl->fail_detail ? cl->fail_detail
                             : tp_err        ? tp_err
                                             : (err == SY_EIO ? "connection failed" : "closed")};
    if (ws->opts->cbs.on_close)
        ws->opts->cbs.on_close(ws, &info, ws->ud);
    client_free(ws);
    ws->c = NULL; /* freed after this returns */
    sy__ws_unref(ws);
}

/* ws[s]://host[:port][/path] */
static int parse_url(const char *url, int *tls, char *host, size_t hcap, char *port, size_t pcap,
                     const char **path)
{
    const char *p;
    *tls = !strncasecmp(url, "wss://", 6);
    if (!strncasecmp(url, "ws://", 5))
        p = url + 5;
    else if (*tls)
        p = url + 6;
    else
        return SY_EINVAL;
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he)
            return SY_EINVAL;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?')
            p++;
        he = p;
    }
    if (he == hs || (size_t)(he - hs) >= hcap)
        return SY_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    snprintf(port, pcap, *tls ? "443" : "80");
    if (*p == ':') {
        const char *ps = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == ps || (size_t)(p - ps) >= pcap)
            return SY_EINVAL;
        memcpy(port, ps, (size_t)(p - ps));
        port[p - ps] = 0;
    }
    if (*p && *p != '/' && *p != '?')
        return SY_EINVAL;
    *path = *p ? p : "/";
    return 0;
}

static int append(char *buf, size_t cap, size_t *len, const char *fmt, const char *a, const char *b)
{
    int n = snprintf(buf + *len, cap - *len, fmt, a, b);
    if (n < 0 || (size_t)n >= cap - *len)
        return SY_ELIMIT;
    *len += (size_t)n;
    return 0;
}

/* Reserve the deflate budget for an offer before making it (the server may accept it as
 * is): the configured settings if they fit, else cheaper ones. Returns 0 (offer nothing)
 * when neither fits. */
static int reserve_offer(const sy_ws_opts *o, ws_client *cl)
{
    cl->pmd_cfg = (sy_pmd_config){(uint8_t)o->window_bits, (uint8_t)o->mem_level,
                                  (uint8_t)o->no_context_takeover, 0};
    for (int tier = 0; tier < 2; tier++) {
        if (tier)
            sy_pmd_cheap_config(&cl->pmd_cfg);
        size_t cost = sy_pmd_offer_cost(&cl->pmd_cfg);
        if (sy_pmd_reserve(cost, tier ? SY_PMD_CHEAP : SY_PMD_FULL)) {
            cl->pmd_reserved = cost;
            return 1;
        }
    }
    return 0;
}

SY_EXPORT int sy_ws_connect(sy_loop *loop, const sy_ws_client_cfg *cfg, const sy_ws_cbs *cbs,
                            void *ud, sy_ws **out)
{
    sy_ws_crypto_init();
    char host[256], port[8];
    const char *path;
    int tls;
    if (!cfg || !cfg->url ||
        parse_url(cfg->url, &tls, host, sizeof(host), port, sizeof(port), &path))
        return SY_EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return SY_EADDR;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return SY_EIO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        close(fd);
        return SY_EIO;
    }
    sy_ws *ws = sy__calloc(1, sizeof(*ws));
    ws_client *cl = sy__calloc(1, sizeof(*cl));
    sy_ws_cold *cold = ws ? sy__ws_cold(ws) : NULL;
    sy_ws_opts defaults, *opts = NULL;
    sy__ws_opts_defaults(&defaults);
    defaults.ping_interval_ms = 0; /* clients don't ping unless asked to */
    int err =
        ws && cl && cold ? sy__ws_opts_copy(&opts, cfg->opts ? cfg->opts : &defaults) : SY_ENOMEM;
    if (!err)
        err = sy_ws_make_key(cl->key);
    if (cl)
        snprintf(cl->target, sizeof(cl->target), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
                 port);
    char req[8192];
    size_t rl = 0;
    if (!err) {
        char hostport[300];
        if (strcmp(port, tls ? "443" : "80") != 0)
            snprintf(hostport, sizeof(hostport), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
                     port);
        else
            snprintf(hostport, sizeof(hostport), strchr(host, ':') ? "[%s]" : "%s", host);
        err = append(req, sizeof(req), &rl, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, hostport);
        if (!err)
            err = append(req, sizeof(req), &rl,
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s",
                         cl->key, "");
    }
    for (size_t i = 0; !err && cfg->subprotocols && cfg->subprotocols[i]; i++) {
        char **n = sy__realloc(cl->subprotocols, (cl->nsub + 1) * sizeof(*n));
        size_t sl = strlen(cfg->subprotocols[i]);
        char *d = sy__malloc(sl + 1);
        if (!n || !d) {
            sy__free(d);
            if (n)
                cl->subprotocols = n;
            err = SY_ENOMEM;
            break;
        }
        memcpy(d, cfg->subprotocols[i], sl + 1);
        cl->subprotocols = n;
        n[cl->nsub++] = d;
        err = append(req, sizeof(req), &rl, "Sec-WebSocket-Protocol: %s\r\n%s", d, "");
    }
    if (!err && opts->deflate && reserve_offer(opts, cl)) {
        char offer[160];
        sy_pmd_client_offer(&cl->pmd_cfg, offer, sizeof(offer));
        cl->pmd_offered = 1;
        err = append(req, sizeof(req), &rl, "Sec-WebSocket-Extensions: %s\r\n%s", offer, "");
    }
    for (size_t i = 0; !err && cfg->headers && cfg->headers[i]; i++) {
        if (strpbrk(cfg->headers[i], "\r\n") || !strchr(cfg->headers[i], ':'))
            err = SY_EINVAL;
        else
            err = append(req, sizeof(req), &rl, "%s\r\n%s", cfg->headers[i], "");
    }
    if (!err)
        err = append(req, sizeof(req), &rl, "\r\n%s%s", "", "");
    sy_conn *c = NULL;
    sy_tls_conn *tc = NULL; /* wss:// */
    if (!err && tls)
        err = sy__tls_client_new(fd, host, cfg->tls_ca_file, cfg->tls_insecure, &tc);
    if (!err) {
        c = sy__conn_new(loop, fd, &sy__tcp_transport, &hs_proto, ws);
        if (!c)
            err = SY_ENOMEM;
        else if (tc)
            sy__tls_attach(c, tc);
    }
    if (err) {
        if (opts)
            sy_ws_opts_free(opts);
        if (cold) {
            cold->client = cl;
            if (cl)
                client_free(ws);
            sy__free(cold);
        } else {
            sy__free(cl);
        }
        sy__free(ws);
        sy__tls_conn_free(tc);
        close(fd);
        return err;
    }
    atomic_init(&ws->refs, 1);
    ws->c = &c->bs;
    ws->loop = loop;
    opts->cbs = *cbs; /* the caller's struct may be on its stack */
    ws->opts = opts;  /* the client's own copy: freed with the handle (is_client) */
    cold->client = cl;
    cold->client_free = client_free;
    ws->is_client = 1;
    ws->ud = ud;
    sy__conn_set_timeout(c, cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000);
    if (sy__conn_write(c, req, rl) < 0) {
        /* The caller gets an error and no handle, and may free what ud points to: the
         * connection's teardown must not call it back. */
        memset(&opts->cbs, 0, sizeof(opts->cbs));
        sy__conn_close(c, SY_ENOMEM, 0);
        return SY_ENOMEM;
    }
    *out = ws;
    return 0;
}
