/* `serve --config FILE`: a YAML file (libyaml) read into a serve_cfg. Every problem is
 * reported with its line and column, and reading goes on, so that --check-config lists them
 * all at once. docs/config.md describes the format; demo/switchyard.yaml is an example. */
#include "cli/serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct yctx {
    yaml_document_t *doc;
    const char *file;
    serve_cfg *cfg;
    FILE *err;
    int nerr;
} yctx;

static void problem(yctx *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(yctx *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(y->err, "%s:%zu:%zu: ", y->file, n ? n->start_mark.line + 1 : 0,
            n ? n->start_mark.column + 1 : 0);
    vfprintf(y->err, fmt, ap);
    fputc('\n', y->err);
    va_end(ap);
    y->nerr++;
}

static yaml_node_t *node_at(yctx *y, int i)
{
    return yaml_document_get_node(y->doc, i);
}

static const char *scalar(yctx *y, yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        problem(y, n, "%s: expected a single value, not a %s", what,
                n->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static const char *str(yctx *y, yaml_node_t *n, const char *what)
{
    const char *s = scalar(y, n, what);
    return s ? serve_cfg_str(y->cfg, s, strlen(s)) : NULL;
}

static int boolean(yctx *y, yaml_node_t *n, const char *what, int *out)
{
    const char *s = scalar(y, n, what);
    if (!s)
        return -1;
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    problem(y, n, "%s: expected true or false, not '%s'", what, s);
    return -1;
}

static void number(yctx *y, yaml_node_t *n, const char *what, int kind, u64opt *out)
{
    const char *s = scalar(y, n, what);
    const char *expect;
    if (!s)
        return;
    if (sy_cli_parse(s, kind, &out->v, &expect) < 0) {
        problem(y, n, "%s: '%s': expected %s", what, s, expect);
        return;
    }
    out->set = 1;
}

static void ranged(yctx *y, yaml_node_t *n, const char *what, u64opt *out, uint64_t lo, uint64_t hi)
{
    number(y, n, what, SY_CLI_COUNT, out);
    if (out->set && (out->v < lo || out->v > hi)) {
        problem(y, n, "%s: %llu is out of range %llu..%llu", what, (unsigned long long)out->v,
                (unsigned long long)lo, (unsigned long long)hi);
        out->set = 0;
    }
}

/* The entries of a list, or a single value taken as a list of one. */
static size_t items(yaml_node_t *n, yaml_node_item_t **first)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        *first = NULL;
        return 1;
    }
    *first = n->data.sequence.items.start;
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *item(yctx *y, yaml_node_t *n, yaml_node_item_t *first, size_t i)
{
    return first ? node_at(y, first[i]) : n;
}

/* Walk a mapping: fn(y, key, value, ud) per pair; reports a non-mapping and repeated keys. */
typedef void (*pair_fn)(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud);

static void each_pair(yctx *y, yaml_node_t *n, const char *what, pair_fn fn, void *ud)
{
    if (n->type != YAML_MAPPING_NODE) {
        problem(y, n, "%s: expected a mapping (key: value lines)", what);
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(y, p->key), *v = node_at(y, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            problem(y, k, "%s: keys are plain words", what);
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        int dup = 0;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p && !dup; q++) {
            yaml_node_t *qk = node_at(y, q->key);
            dup = qk && qk->type == YAML_SCALAR_NODE &&
                  !strcmp((const char *)qk->data.scalar.value, key);
        }
        if (dup) {
            problem(y, k, "%s: '%s' is given twice", what, key);
            continue;
        }
        fn(y, key, k, v, ud);
    }
}

static void unknown(yctx *y, yaml_node_t *k, const char *section, const char *key,
                    const char *known)
{
    problem(y, k, "%s: unknown key '%s' (known: %s)", section, key, known);
}

/* ---- listen ---- */

static int addr_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || !colon[1])
        return 0;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return atoi(colon + 1) <= 65535 && (a[0] != '[' || (colon > a && colon[-1] == ']'));
}

typedef struct tls_ctx {
    serve_tls_listen *t;
    yaml_node_t *certs_node;
} tls_ctx;

static void cert_pair(yctx *y, yaml_node_t *n, serve_tls_listen *t);

static void tls_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    tls_ctx *c = ud;
    serve_tls_listen *t = c->t;
    if (!strcmp(key, "cert") || !strcmp(key, "key")) {
        const char *f = str(y, v, key);
        if (f && access(f, R_OK) != 0)
            problem(y, v, "tls: %s file '%s' cannot be read", key, f);
        if (t->ncert == 0)
            t->ncert = 1;
        if (!strcmp(key, "cert"))
            t->certs[0] = f;
        else
            t->keys[0] = f;
    } else if (!strcmp(key, "certificates")) {
        yaml_node_item_t *first;
        size_t n = items(v, &first);
        for (size_t i = 0; i < n; i++)
            cert_pair(y, item(y, v, first, i), t);
    } else if (!strcmp(key, "self_signed")) {
        boolean(y, v, "tls: self_signed", &t->self_signed);
    } else {
        unknown(y, k, "tls", key, "cert, key, certificates, self_signed");
    }
}

static void cert_pair_kv(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    const char **slot = ud;
    if (strcmp(key, "cert") && strcmp(key, "key")) {
        unknown(y, k, "tls: certificates", key, "cert, key");
        return;
    }
    const char *f = str(y, v, key);
    if (f && access(f, R_OK) != 0)
        problem(y, v, "tls: %s file '%s' cannot be read", key, f);
    slot[!strcmp(key, "key")] = f;
}

static void cert_pair(yctx *y, yaml_node_t *n, serve_tls_listen *t)
{
    const char *pair[2] = {NULL, NULL};
    each_pair(y, n, "tls: certificates", cert_pair_kv, pair);
    if (!pair[0] || !pair[1]) {
        problem(y, n, "tls: each certificate needs both cert and key");
        return;
    }
    if (t->ncert >= 8) {
        problem(y, n, "tls: at most 8 certificates per listener");
        return;
    }
    t->certs[t->ncert] = pair[0];
    t->keys[t->ncert++] = pair[1];
}

typedef struct listen_ctx {
    const char *addr;
    yaml_node_t *tls;
} listen_ctx;

static void listen_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    listen_ctx *l = ud;
    if (!strcmp(key, "address"))
        l->addr = str(y, v, "listen: address");
    else if (!strcmp(key, "tls"))
        l->tls = v;
    else
        unknown(y, k, "listen", key, "address, tls");
}

static void listen_entry(yctx *y, yaml_node_t *n)
{
    serve_cfg *c = y->cfg;
    listen_ctx l = {0};
    if (n->type == YAML_SCALAR_NODE)
        l.addr = str(y, n, "listen");
    else
        each_pair(y, n, "listen", listen_pair, &l);
    if (!l.addr) {
        if (n->type != YAML_SCALAR_NODE)
            problem(y, n, "listen: an entry needs an address");
        return;
    }
    if (!addr_ok(l.addr)) {
        problem(y, n, "listen: '%s' is not HOST:PORT, [IPv6]:PORT or :PORT", l.addr);
        return;
    }
    if (!l.tls) {
        if (c->nlisten >= 16)
            problem(y, n, "listen: at most 16 cleartext listeners");
        else
            c->listens[c->nlisten++] = l.addr;
        return;
    }
    if (c->ntls >= 8) {
        problem(y, n, "listen: at most 8 TLS listeners");
        return;
    }
    serve_tls_listen *t = &c->tls_listens[c->ntls];
    memset(t, 0, sizeof(*t));
    t->addr = l.addr;
    tls_ctx tc = {t, NULL};
    each_pair(y, l.tls, "tls", tls_pair, &tc);
    for (size_t i = 0; i < t->ncert; i++)
        if (!t->certs[i] || !t->keys[i])
            problem(y, l.tls, "tls: cert and key come in pairs");
    if (!t->ncert && !t->self_signed)
        problem(y, l.tls, "tls: give cert and key (or certificates), or self_signed: true");
    c->ntls++;
}

/* ---- sections of numbers ---- */

static void limits_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "max_conns"))
        number(y, v, "limits: max_conns", SY_CLI_COUNT, &c->max_conns);
    else if (!strcmp(key, "max_body"))
        number(y, v, "limits: max_body", SY_CLI_SIZE, &c->max_body);
    else if (!strcmp(key, "max_request_line"))
        number(y, v, "limits: max_request_line", SY_CLI_SIZE, &c->max_request_line);
    else if (!strcmp(key, "max_head"))
        number(y, v, "limits: max_head", SY_CLI_SIZE, &c->max_head);
    else if (!strcmp(key, "max_headers"))
        ranged(y, v, "limits: max_headers", &c->max_headers, 1, 10000);
    else
        unknown(y, k, "limits", key,
                "max_conns, max_body, max_request_line, max_head, max_headers");
}

static void timeouts_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    static const struct {
        const char *name;
        size_t off;
    } t[] = {
        {"header", offsetof(serve_cfg, header_to)},
        {"keepalive", offsetof(serve_cfg, keepalive_to)},
        {"body", offsetof(serve_cfg, body_to)},
        {"write", offsetof(serve_cfg, write_to)},
        {"drain", offsetof(serve_cfg, drain_to)},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN_CLI(t); i++)
        if (!strcmp(key, t[i].name)) {
            char what[48];
            snprintf(what, sizeof(what), "timeouts: %s", key);
            number(y, v, what, SY_CLI_TIME, (u64opt *)((char *)c + t[i].off));
            return;
        }
    unknown(y, k, "timeouts", key, "header, keepalive, body, write, drain");
}

static void ws_list(yctx *y, yaml_node_t *v, const char *what, const char **out, size_t *n)
{
    yaml_node_item_t *first;
    size_t cnt = items(v, &first);
    for (size_t i = 0; i < cnt; i++) {
        const char *s = str(y, item(y, v, first, i), what);
        if (!s)
            continue;
        if (*n >= 16)
            problem(y, v, "%s: at most 16", what);
        else
            out[(*n)++] = s;
    }
}

/* Keys shared by the `websocket:` section and a route's `websocket:`. */
static void ws_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_ws *w = ud;
    if (!strcmp(key, "max_message"))
        number(y, v, "websocket: max_message", SY_CLI_SIZE, &w->max_message);
    else if (!strcmp(key, "ping_interval"))
        number(y, v, "websocket: ping_interval", SY_CLI_TIME, &w->ping);
    else if (!strcmp(key, "pong_timeout"))
        number(y, v, "websocket: pong_timeout", SY_CLI_TIME, &w->pong);
    else if (!strcmp(key, "idle_timeout"))
        number(y, v, "websocket: idle_timeout", SY_CLI_TIME, &w->idle);
    else if (!strcmp(key, "high_water"))
        number(y, v, "websocket: high_water", SY_CLI_SIZE, &w->high_water);
    else if (!strcmp(key, "max_buffer"))
        number(y, v, "websocket: max_buffer", SY_CLI_SIZE, &w->max_buffer);
    else if (!strcmp(key, "deflate"))
        boolean(y, v, "websocket: deflate", &w->deflate);
    else if (!strcmp(key, "deflate_window"))
        ranged(y, v, "websocket: deflate_window", &w->window, 8, 15);
    else if (!strcmp(key, "deflate_memlevel"))
        ranged(y, v, "websocket: deflate_memlevel", &w->memlevel, 1, 9);
    else if (!strcmp(key, "require_subprotocol"))
        boolean(y, v, "websocket: require_subprotocol", &w->require_sub);
    else if (!strcmp(key, "subprotocols"))
        ws_list(y, v, "websocket: subprotocols", w->subs, &w->nsub);
    else if (!strcmp(key, "origins"))
        ws_list(y, v, "websocket: origins", w->origins, &w->norigin);
    else if (!strcmp(key, "backpressure")) {
        const char *s = scalar(y, v, "websocket: backpressure");
        if (!s)
            return;
        w->bp = !strcmp(s, "buffer")  ? SY_WS_BP_BUFFER
                : !strcmp(s, "drop")  ? SY_WS_BP_DROP
                : !strcmp(s, "close") ? SY_WS_BP_CLOSE
                                      : -1;
        if (w->bp < 0)
            problem(y, v, "websocket: backpressure: expected buffer, drop or close, not '%s'", s);
    } else
        unknown(y, k, "websocket", key,
                "max_message, ping_interval, pong_timeout, idle_timeout, high_water, "
                "max_buffer, backpressure, deflate, deflate_window, deflate_memlevel, "
                "subprotocols, require_subprotocol, origins");
}

static void heartbeat_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_ws *w = ud;
    if (!strcmp(key, "interval"))
        number(y, v, "heartbeat: interval", SY_CLI_TIME, &w->ping);
    else if (!strcmp(key, "timeout"))
        number(y, v, "heartbeat: timeout", SY_CLI_TIME, &w->pong);
    else
        unknown(y, k, "heartbeat", key, "interval, timeout");
}

static void compression_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "budget"))
        number(y, v, "compression: budget", SY_CLI_SIZE, &c->deflate_budget);
    else if (!strcmp(key, "deflate"))
        boolean(y, v, "compression: deflate", &c->ws.deflate);
    else if (!strcmp(key, "window_bits"))
        ranged(y, v, "compression: window_bits", &c->ws.window, 8, 15);
    else if (!strcmp(key, "mem_level"))
        ranged(y, v, "compression: mem_level", &c->ws.memlevel, 1, 9);
    else
        unknown(y, k, "compression", key, "deflate, budget, window_bits, mem_level");
}

static void raw_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "idle_timeout"))
        number(y, v, "raw: idle_timeout", SY_CLI_TIME, &c->raw_idle);
    else if (!strcmp(key, "high_water"))
        number(y, v, "raw: high_water", SY_CLI_SIZE, &c->raw_high);
    else if (!strcmp(key, "max_buffer"))
        number(y, v, "raw: max_buffer", SY_CLI_SIZE, &c->raw_max);
    else
        unknown(y, k, "raw", key, "idle_timeout, high_water, max_buffer");
}

static void metrics_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "path")) {
        c->metrics_path = str(y, v, "metrics: path");
        if (c->metrics_path && c->metrics_path[0] && c->metrics_path[0] != '/')
            problem(y, v, "metrics: path must start with '/' (or be \"\" for none)");
    } else if (!strcmp(key, "enabled")) {
        int on = 1;
        if (boolean(y, v, "metrics: enabled", &on) == 0 && !on)
            c->metrics_path = "";
    } else if (!strcmp(key, "listen")) {
        c->metrics_listen = str(y, v, "metrics: listen");
        if (c->metrics_listen && !addr_ok(c->metrics_listen))
            problem(y, v, "metrics: listen: '%s' is not HOST:PORT", c->metrics_listen);
    } else if (!strcmp(key, "public")) {
        boolean(y, v, "metrics: public", &c->metrics_public);
    } else if (!strcmp(key, "token")) {
        c->metrics_token = str(y, v, "metrics: token");
        if (c->metrics_token && (!c->metrics_token[0] || strlen(c->metrics_token) > 200))
            problem(y, v, "metrics: token must be 1..200 characters");
    } else
        unknown(y, k, "metrics", key, "enabled, path, listen, public, token");
}

static void logs_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "format")) {
        const char *s = scalar(y, v, "logs: format");
        if (s && strcmp(s, "plain") && strcmp(s, "json"))
            problem(y, v, "logs: format: expected plain or json, not '%s'", s);
        else if (s)
            c->log_json = !strcmp(s, "json");
    } else if (!strcmp(key, "access")) {
        boolean(y, v, "logs: access", &c->access_log);
    } else if (!strcmp(key, "verbose")) {
        boolean(y, v, "logs: verbose", &c->verbose);
    } else
        unknown(y, k, "logs", key, "format, access, verbose");
}

static void redis_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "url")) {
        c->redis = str(y, v, "redis: url");
        if (c->redis && strncmp(c->redis, "redis://", 8))
            problem(y, v, "redis: url: expected redis://HOST:PORT, not '%s'", c->redis);
    } else if (!strcmp(key, "prefix")) {
        c->redis_prefix = str(y, v, "redis: prefix");
    } else
        unknown(y, k, "redis", key, "url, prefix");
}

static void reflect_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "enabled")) {
        const char *s = scalar(y, v, "reflect: enabled");
        if (s && !strcmp(s, "auto"))
            c->reflect = -1;
        else
            boolean(y, v, "reflect: enabled (true, false or auto)", &c->reflect);
    } else if (!strcmp(key, "token")) {
        c->reflect_token = str(y, v, "reflect: token");
        if (c->reflect_token)
            c->reflect = 1;
    } else
        unknown(y, k, "reflect", key, "enabled, token");
}

/* ---- routes ---- */

static const char *const demo_names[] = {"",      "body",    "sum",       "stream",
                                         "delay", "reflect", "handshake", "chat"};

typedef struct route_ctx {
    serve_route *r;
    int kinds;
} route_ctx;

static void route_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    route_ctx *rc = ud;
    serve_route *r = rc->r;
    if (!strcmp(key, "path")) {
        r->path = str(y, v, "routes: path");
        if (r->path && r->path[0] != '/')
            problem(y, v, "routes: path '%s' must start with '/'", r->path);
    } else if (!strcmp(key, "prefix")) {
        boolean(y, v, "routes: prefix", &r->prefix);
    } else if (!strcmp(key, "static")) {
        r->kind = RK_STATIC;
        rc->kinds++;
        r->root = str(y, v, "routes: static");
        if (r->root && access(r->root, R_OK | X_OK) != 0)
            problem(y, v, "routes: static: directory '%s' cannot be read", r->root);
    } else if (!strcmp(key, "websocket")) {
        r->kind = RK_WS;
        rc->kinds++;
        if (v->type == YAML_SCALAR_NODE) {
            const char *s = scalar(y, v, "routes: websocket");
            if (s && strcmp(s, "echo") && s[0])
                problem(y, v, "routes: websocket: expected echo or a mapping of options");
        } else {
            each_pair(y, v, "routes: websocket", ws_pair, &r->ws);
        }
    } else if (!strcmp(key, "raw")) {
        r->kind = RK_RAW;
        rc->kinds++;
        yaml_node_item_t *first;
        size_t n = items(v, &first);
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *it = item(y, v, first, i);
            const char *s = str(y, it, "routes: raw");
            if (!s)
                continue;
            if (strcmp(s, "echo") && strcmp(s, "upper"))
                problem(y, it, "routes: raw: '%s': the raw protocols are echo and upper", s);
            else if (r->nraw < 8)
                r->raw[r->nraw++] = s;
        }
    } else if (!strcmp(key, "upgrade_required")) {
        boolean(y, v, "routes: upgrade_required", &r->upgrade_required);
    } else if (!strcmp(key, "demo")) {
        r->kind = RK_DEMO;
        rc->kinds++;
        const char *s = scalar(y, v, "routes: demo");
        for (int i = 1; s && i < (int)SY_ARRAY_LEN_CLI(demo_names); i++)
            if (!strcmp(s, demo_names[i]))
                r->demo = i;
        if (s && !r->demo)
            problem(y, v,
                    "routes: demo: '%s' is not one of body, sum, stream, delay, reflect, "
                    "handshake, chat",
                    s);
    } else if (!strcmp(key, "metrics")) {
        int on = 0;
        if (boolean(y, v, "routes: metrics", &on) == 0 && on) {
            r->kind = RK_METRICS;
            rc->kinds++;
        }
    } else
        unknown(y, k, "routes", key,
                "path, prefix, static, websocket, raw, upgrade_required, demo, metrics");
}

static void routes_list(yctx *y, yaml_node_t *v)
{
    serve_cfg *c = y->cfg;
    if (v->type != YAML_SEQUENCE_NODE) {
        problem(y, v, "routes: expected a list (lines starting with '- ')");
        return;
    }
    c->routes_set = 1;
    yaml_node_item_t *first;
    size_t n = items(v, &first);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = item(y, v, first, i);
        if (c->nroutes >= SY_ARRAY_LEN_CLI(c->routes)) {
            problem(y, it, "routes: at most 64");
            return;
        }
        serve_route *r = &c->routes[c->nroutes];
        memset(r, 0, sizeof(*r));
        r->prefix = -1;
        r->ws.deflate = r->ws.bp = r->ws.require_sub = -1;
        r->line = (int)it->start_mark.line + 1;
        route_ctx rc = {r, 0};
        each_pair(y, it, "routes", route_pair, &rc);
        if (it->type != YAML_MAPPING_NODE)
            continue;
        if (!r->path)
            problem(y, it, "routes: a route needs a path");
        if (rc.kinds != 1)
            problem(y, it,
                    "routes: a route is exactly one of static, websocket, raw, demo, metrics "
                    "(this one has %d)",
                    rc.kinds);
        if (r->kind == RK_RAW && !r->nraw)
            problem(y, it, "routes: raw: name at least one protocol (echo, upper)");
        for (size_t j = 0; r->path && j < c->nroutes; j++)
            if (c->routes[j].path && !strcmp(c->routes[j].path, r->path) &&
                c->routes[j].kind == r->kind)
                problem(y, it, "routes: %s is already routed (line %d)", r->path,
                        c->routes[j].line);
        c->nroutes++;
    }
}

/* ---- the top level ---- */

static void top_pair(yctx *y, const char *key, yaml_node_t *k, yaml_node_t *v, void *ud)
{
    serve_cfg *c = y->cfg;
    (void)ud;
    if (!strcmp(key, "listen")) {
        yaml_node_item_t *first;
        size_t n = items(v, &first);
        for (size_t i = 0; i < n; i++)
            listen_entry(y, item(y, v, first, i));
    } else if (!strcmp(key, "workers")) {
        ranged(y, v, "workers", &c->workers, 0, 256);
    } else if (!strcmp(key, "shared_listener")) {
        boolean(y, v, "shared_listener", &c->shared_listener);
    } else if (!strcmp(key, "h2c")) {
        boolean(y, v, "h2c", &c->h2c);
    } else if (!strcmp(key, "root")) {
        c->root = str(y, v, "root");
        if (c->root && access(c->root, R_OK | X_OK) != 0)
            problem(y, v, "root: directory '%s' cannot be read", c->root);
    } else if (!strcmp(key, "limits")) {
        each_pair(y, v, "limits", limits_pair, NULL);
    } else if (!strcmp(key, "timeouts")) {
        each_pair(y, v, "timeouts", timeouts_pair, NULL);
    } else if (!strcmp(key, "websocket")) {
        each_pair(y, v, "websocket", ws_pair, &c->ws);
    } else if (!strcmp(key, "heartbeat")) {
        each_pair(y, v, "heartbeat", heartbeat_pair, &c->ws);
    } else if (!strcmp(key, "compression")) {
        each_pair(y, v, "compression", compression_pair, NULL);
    } else if (!strcmp(key, "raw")) {
        each_pair(y, v, "raw", raw_pair, NULL);
    } else if (!strcmp(key, "routes")) {
        routes_list(y, v);
    } else if (!strcmp(key, "metrics")) {
        each_pair(y, v, "metrics", metrics_pair, NULL);
    } else if (!strcmp(key, "logs")) {
        each_pair(y, v, "logs", logs_pair, NULL);
    } else if (!strcmp(key, "reflect")) {
        each_pair(y, v, "reflect", reflect_pair, NULL);
    } else if (!strcmp(key, "redis")) {
        each_pair(y, v, "redis", redis_pair, NULL);
    } else if (!strcmp(key, "tls_ticket_rotate")) {
        number(y, v, "tls_ticket_rotate", SY_CLI_TIME, &c->ticket_rotate);
        if (c->ticket_rotate.set && sy_cli_ticket_rotate(c->ticket_rotate.v) < 0) {
            problem(y, v,
                    "tls_ticket_rotate: expected 0 (no tickets) or whole seconds up to "
                    "84h, such as 30m or 1h");
            c->ticket_rotate.set = 0;
        }
    } else {
        unknown(y, k, "top level", key,
                "listen, workers, shared_listener, h2c, root, limits, timeouts, websocket, "
                "heartbeat, compression, raw, routes, metrics, logs, reflect, redis, "
                "tls_ticket_rotate");
    }
}

int serve_config_load(serve_cfg *c, const char *file, FILE *err)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(err, "%s: cannot open: %s\n", file, strerror(errno));
        return 1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yctx y = {&doc, file, c, err, 0};
    c->file = serve_cfg_str(c, file, strlen(file));
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        fprintf(err, "%s: out of memory\n", file);
        return 1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        /* A syntax error stops libyaml: the one problem there is to report. */
        fprintf(err, "%s:%zu:%zu: YAML syntax: %s%s%s\n", file, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "error",
                parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(f);
        return 1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root)
        each_pair(&y, root, "top level", top_pair, NULL);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return y.nerr;
}
