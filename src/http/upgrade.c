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
    if (v == SY_UPGRADE_ACCEPT || (v >= 400 && v <= 599))
        return v;
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
