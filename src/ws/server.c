/* The server side of the WebSocket opening handshake (RFC 6455 §4.2), as a check hook of the
 * generic Upgrade registry, and the switch to the engine once the 101 is queued. */
#include "http/upgrade.h"
#include "ws/handshake.h"
#include "ws/ws.h"

#include <stdio.h>
#include <strings.h>

/* What the check hook decided, for the opener. Lives in the request (upgrade_state) until
 * the opener takes it over, or is freed with the request when the switch never happens. */
typedef struct ws_nego {
    int sub; /* index into opts->subprotocols, or -1 */
    int pmd_ok;
    sy_pmd_params pmd;
    uint8_t mem_level;
    size_t reserved; /* deflate budget held for this handshake until the sy_pmd takes it */
    char ext[160];
} ws_nego;

static void nego_free(void *p)
{
    ws_nego *ng = p;
    sy_pmd_release(ng->reserved);
    sy__free(ng);
}

/* Exactly one field with this name: returns it, or NULL with *count set. */
static const sy_field *single(const sy_req *r, const char *lname, int *count)
{
    const sy_field *h = sy_field_find(r->headers, r->nheaders, lname, count);
    return *count == 1 ? h : NULL;
}

/* Accept the first valid permessage-deflate offer of the request with cfg. */
static int accept_offer(const sy_req *r, const sy_pmd_config *cfg, ws_nego *ng)
{
    ng->pmd_ok = 0;
    for (size_t i = 0; i < r->nheaders && !ng->pmd_ok; i++) {
        const sy_field *h = &r->headers[i];
        if (sy__ieq(h->name, h->name_len, "sec-websocket-extensions"))
            ng->pmd_ok = sy_pmd_server_negotiate(h->value, h->value_len, cfg, &ng->pmd, ng->ext,
                                                 sizeof(ng->ext));
    }
    return ng->pmd_ok;
}

/* Negotiate permessage-deflate within the process budget: the configured settings when
 * what they cost fits in their share, else the cheaper ones, else no compression (see
 * sy_pmd_reserve). The cost is reserved here, before the 101, so handshakes in parallel
 * cannot all pass one check. */
static void negotiate_deflate(const sy_req *r, const sy_ws_opts *o, ws_nego *ng)
{
    sy_pmd_config cfg = {(uint8_t)o->window_bits, (uint8_t)o->mem_level,
                         (uint8_t)o->no_context_takeover, 0};
    for (int tier = 0; tier < 2; tier++) {
        if (tier)
            sy_pmd_cheap_config(&cfg);
        if (!accept_offer(r, &cfg, ng))
            return; /* nothing acceptable was offered */
        size_t cost = sy_pmd_cost(&ng->pmd, cfg.mem_level);
        if (sy_pmd_reserve(cost, tier ? SY_PMD_CHEAP : SY_PMD_FULL)) {
            ng->reserved = cost;
            ng->mem_level = cfg.mem_level;
            return;
        }
    }
    ng->pmd_ok = 0;
}

/* The WebSocket handshake gate: the check hook of "websocket" entries. */
static int ws_check(sy_req *r, const char *token, const char **reason, void *ud)
{
    const sy_ws_opts *o = ud;
    int n;
    (void)token;
    /* Over HTTP/2 (RFC 8441) the request is an extended CONNECT, which HTTP/2 has checked,
     * and the stream itself is the proof of intent: no Sec-WebSocket-Key, no Accept. */
    int h2 = r->version >= 20;
    if (!h2 && !(r->method_len == 3 && memcmp(r->method, "GET", 3) == 0)) {
        *reason = "WebSocket handshake must use GET (RFC 6455 §4.1)";
        r->refusal = SY_REFUSE_METHOD;
        return 400;
    }
    const sy_field *ver = single(r, "sec-websocket-version", &n);
    if (!ver) {
        sy_resp_header(r, "Sec-WebSocket-Version", "13");
        *reason = n ? "several Sec-WebSocket-Version fields"
                    : "missing Sec-WebSocket-Version (this server speaks version 13)";
        r->refusal = SY_REFUSE_VERSION;
        return n ? 400 : 426;
    }
    if (!(ver->value_len == 2 && memcmp(ver->value, "13", 2) == 0)) {
        sy_resp_header(r, "Sec-WebSocket-Version", "13");
        *reason = "unsupported Sec-WebSocket-Version (this server speaks version 13)";
        r->refusal = SY_REFUSE_VERSION;
        return 426;
    }
    const sy_field *key = h2 ? NULL : single(r, "sec-websocket-key", &n);
    if (!h2 && !key) {
        *reason = n ? "several Sec-WebSocket-Key fields" : "missing Sec-WebSocket-Key";
        r->refusal = SY_REFUSE_KEY;
        return 400;
    }
    if (!h2 && !sy_ws_key_valid(key->value, key->value_len)) {
        *reason = "Sec-WebSocket-Key is not base64 of 16 bytes";
        r->refusal = SY_REFUSE_KEY;
        return 400;
    }
    if (o->norigins) {
        const sy_field *origin = single(r, "origin", &n);
        int ok = 0;
        for (size_t i = 0; origin && i < o->norigins && !ok; i++)
            ok = strlen(o->origins[i]) == origin->value_len &&
                 strncasecmp(o->origins[i], origin->value, origin->value_len) == 0;
        if (!ok) {
            *reason = "Origin not allowed";
            r->refusal = SY_REFUSE_ORIGIN;
            return 403;
        }
    }
    ws_nego *ng = sy__calloc(1, sizeof(*ng));
    if (!ng) {
        *reason = "out of memory";
        r->refusal = SY_REFUSE_MEMORY;
        return 503;
    }
    ng->sub = -1;
    for (size_t i = 0; i < r->nheaders; i++) {
        const sy_field *h = &r->headers[i];
        if (o->nsub && sy__ieq(h->name, h->name_len, "sec-websocket-protocol"))
            ng->sub = sy_ws_pick_subprotocol(
                h->value, h->value_len, (const char *const *)o->subprotocols, o->nsub, ng->sub);
    }
    if (ng->sub < 0 && o->require_subprotocol) {
        nego_free(ng);
        *reason = "none of the offered subprotocols is supported";
        r->refusal = SY_REFUSE_SUBPROTOCOL;
        return 400;
    }
    if (o->accept) {
        const char *why = NULL;
        int st = o->accept(r, &why, o->ud);
        if (st) {
            nego_free(ng);
            *reason = why ? why : "refused by the application";
            r->refusal = SY_REFUSE_APP;
            return st >= 400 && st <= 599 ? st : 403;
        }
    }
    if (o->deflate)
        negotiate_deflate(r, o, ng);
    if (!h2) {
        char acc[29];
        sy_ws_accept_key(key->value, key->value_len, acc);
        sy_resp_header(r, "Sec-WebSocket-Accept", acc);
    }
    if (ng->sub >= 0)
        sy_resp_header(r, "Sec-WebSocket-Protocol", o->subprotocols[ng->sub]);
    if (ng->pmd_ok)
        sy_resp_header(r, "Sec-WebSocket-Extensions", ng->ext);
    r->upgrade_state = ng;
    r->upgrade_state_free = nego_free;
    return SY_UPGRADE_ACCEPT;
}

/* The connection whose on_open runs on this thread, and its upgrade request. */
static __thread struct open_rec {
    const sy_ws *ws;
    const sy_req *req;
} opening;

static int ws_open(sy_bstream *c, sy_req *r, const sy_upgrade_entry *e, sy_uplog *log)
{
    ws_nego *ng = r->upgrade_state;
    const sy_ws_opts *o = e->opts;
    sy_pmd *pmd = NULL;
    if (ng && ng->pmd_ok) {
        pmd = sy__calloc(1, sizeof(*pmd));
        if (!pmd || sy_pmd_init(pmd, &ng->pmd, ng->mem_level) < 0) {
            sy__free(pmd);
            sy__uplog_end(log, c, "memory", 0, "out of memory");
            return SY_ENOMEM; /* the request still owns the reservation and frees it */
        }
        pmd->level = (uint8_t)(o->level + 1);
        /* The reservation moves to the pmd, released with it when the connection ends. */
        pmd->reserved = ng->reserved;
        ng->reserved = 0;
    }
    sy_ws *ws = sy__ws_attach(c, o, 0, pmd);
    if (!ws) {
        if (pmd) {
            sy_pmd_free(pmd);
            sy__free(pmd);
        }
        sy__uplog_end(log, c, "memory", 0, "out of memory");
        return SY_ENOMEM;
    }
    ws->log = log;
    sy_ws_cold *k = ng && (ng->sub >= 0 || ng->pmd_ok) ? sy__ws_cold(ws) : NULL;
    if (k && ng->sub >= 0)
        k->subprotocol = sy__ws_strdup(o->subprotocols[ng->sub], strlen(o->subprotocols[ng->sub]));
    if (k && ng->pmd_ok)
        k->extensions = sy__ws_strdup(ng->ext, strlen(ng->ext));
    void *ud;
    if (sy__req_take_open_ud(r, &ud))
        ws->ud = ud; /* from the accept hook (sy_req_set_open_ud): now the connection's */
    ws->open_done = 1;
    if (o->cbs.on_open) {
        /* sy_ws_request, during on_open only: a per-thread record, not a field every
         * connection would carry for the rest of its life. */
        struct open_rec saved = opening;
        opening = (struct open_rec){ws, r};
        o->cbs.on_open(ws, ws->ud);
        opening = saved;
    }
    return 0;
}

SY_EXPORT const sy_req *sy_ws_request(const sy_ws *ws)
{
    return opening.ws == ws ? opening.req : NULL;
}

static void ws_free_opts(void *opts)
{
    sy_ws_opts_free(opts);
}

static const sy_upgrade_proto ws_upgrade = {"websocket", ws_open, ws_free_opts};

SY_EXPORT int sy_route_websocket(sy_route *route, const sy_ws_opts *opts)
{
    sy_ws_opts *copy;
    sy_ws_opts defaults;
    sy_ws_crypto_init(); /* now, at set-up, rather than in the first handshake */
    if (!opts) {
        sy__ws_opts_defaults(&defaults);
        opts = &defaults;
    }
    int err = sy__ws_opts_copy(&copy, opts);
    if (err)
        return err;
    sy_upgrade_entry e = {.token = "websocket",
                          .proto = &ws_upgrade,
                          .check = ws_check,
                          .ud = copy,
                          .opts = copy,
                          .conn_state = sizeof(sy_ws)};
    err = sy__route_add_upgrade(route, &e);
    if (err) {
        sy_ws_opts_free(copy);
        return err;
    }
    return 0;
}
