/* Registering protocols on routes, and matching the client's Upgrade elements. */
#include "http/upgrade.h"

#include <stdio.h>
#include <strings.h>

int sy__upgrade_matches(const sy_upgrade_entry *e, const char *tok, size_t len)
{
    size_t el = strlen(e->token);
    if (memchr(e->token, '/', el) == NULL) {
        /* Registered without a version: match the protocol name, any version. */
        const char *slash = memchr(tok, '/', len);
        if (slash)
            len = (size_t)(slash - tok);
    }
    return el == len && strncasecmp(e->token, tok, len) == 0;
}

static int valid_token(const char *t)
{
    if (!*t)
        return 0;
    for (; *t; t++) {
        unsigned char c = (unsigned char)*t;
        if (c <= 32 || c >= 127 || strchr("\"(),:;<=>?@[\\]{}", c))
            return 0;
    }
    return 1;
}

/* Append a copy of tmpl (its token copied) to the array *list of *n entries. */
static int add_entry(sy_upgrade_entry **list, size_t *n, const sy_upgrade_entry *tmpl)
{
    if (!valid_token(tmpl->token) || strlen(tmpl->token) > 64)
        return SY_EINVAL;
    for (size_t i = 0; i < *n; i++)
        if (!strcasecmp((*list)[i].token, tmpl->token))
            return SY_EEXIST;
    sy_upgrade_entry *a = sy__realloc(*list, (*n + 1) * sizeof(*a));
    if (!a)
        return SY_ENOMEM;
    *list = a;
    size_t tl = strlen(tmpl->token);
    char *tok = sy__malloc(tl + 1);
    if (!tok)
        return SY_ENOMEM;
    memcpy(tok, tmpl->token, tl + 1);
    a[*n] = *tmpl;
    a[*n].token = tok;
    (*n)++;
    return 0;
}

int sy__route_add_upgrade(sy_route *route, const sy_upgrade_entry *tmpl)
{
    if (!route)
        return SY_EINVAL;
    return add_entry(&route->upgrades, &route->nupgrades, tmpl);
}

int sy__http_app_add_upgrade(sy_http_app *a, const sy_upgrade_entry *tmpl)
{
    return add_entry(&a->upgrades, &a->nupgrades, tmpl);
}

const sy_upgrade_entry *sy__upgrade_entry_at(const sy_http_app *a, const sy_route *route, size_t i)
{
    size_t nr = route ? route->nupgrades : 0;
    if (i < nr)
        return &route->upgrades[i];
    i -= nr;
    return a && i < a->nupgrades ? &a->upgrades[i] : NULL;
}

void sy__upgrade_note_request(sy_req *r, const char *tok, size_t tl)
{
    const sy_http_app *a = r->worker ? sy__http_app(r->worker->srv) : NULL;
    int kind = -1;
    const sy_upgrade_entry *e;
    for (size_t k = 0; (e = sy__upgrade_entry_at(a, r->route, k)) != NULL && kind < 0; k++)
        if (sy__upgrade_matches(e, tok, tl))
            kind = sy__metrics_up_kind(e->proto ? e->proto->name : NULL);
    if (kind < 0) /* nothing registered under it: still say what it asked for */
        kind = sy__ieq(tok, tl, "websocket") ? SY_UP_WEBSOCKET
               : sy__ieq(tok, tl, "h2c")     ? SY_UP_H2C
                                             : SY_UP_OTHER;
    r->up_kind = (uint8_t)(kind + 1);
    sy_http_metrics *m = sy__http_metrics(r->worker);
    if (m)
        sy__ctr_inc(&m->up_requested[kind]);
}

void sy__upgrade_note_first_token(sy_req *r)
{
    const sy_field *f = r->upgrade;
    size_t pos = 0, tl;
    const char *tok;
    if (f && sy_field_next_token(f->value, f->value_len, &pos, &tok, &tl, 1) == 1)
        sy__upgrade_note_request(r, tok, tl);
}

int sy__upgrade_check(sy_req *r, const sy_upgrade_entry *e, const char *tok, size_t tl,
                      const char **reason)
{
    char tokz[96];
    size_t tn = SY_MIN(tl, sizeof(tokz) - 1);
    memcpy(tokz, tok, tn);
    tokz[tn] = 0;
    size_t rh_before = r->rh_len;
    *reason = NULL;
    int v = e->check ? e->check(r, tokz, reason, e->ud) : SY_UPGRADE_ACCEPT;
    if (v == SY_UPGRADE_ACCEPT) {
        sy_http_metrics *m = sy__http_metrics(r->worker);
        if (m)
            sy__ctr_inc(&m->up_accepted[sy__metrics_up_kind(e->proto ? e->proto->name : NULL)]);
        return v;
    }
    if (v >= 400 && v <= 599) {
        if (!r->refusal)
            r->refusal = v == 503 ? SY_REFUSE_MEMORY : SY_REFUSE_APP;
        return v;
    }
    r->refusal = SY_REFUSE_DECLINED;
    r->rh_len = rh_before; /* declined: drop what the hook added (and released what it set) */
    sy__req_clear_upgrade(r);
    return SY_UPGRADE_DECLINE;
}

void sy__upgrade_refuse(sy_req *r, int status, const char *reason)
{
    char body[320];
    int bn = snprintf(body, sizeof(body), "%s\n", reason ? reason : sy__status_text(status));
    r->detail = reason;
    sy_respond(r, status, "text/plain; charset=utf-8", body, (size_t)bn);
}

SY_EXPORT int sy_route_upgrade_raw(sy_route *route, const char *token, sy_upgrade_check_fn check,
                                   sy_stream_open_fn on_open, void *ud)
{
    if (!on_open || !token)
        return SY_EINVAL;
    sy_upgrade_entry e = {.token = (char *)token,
                          .proto = &sy__raw_upgrade,
                          .check = check,
                          .on_open = on_open,
                          .ud = ud};
    return sy__route_add_upgrade(route, &e);
}
