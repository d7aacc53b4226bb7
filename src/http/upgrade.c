/* Registering protocols on routes, and matching the client's Upgrade elements. */
#include "http/upgrade.h"

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

int sy__route_add_upgrade(sy_route *route, const sy_upgrade_entry *tmpl)
{
    if (!route || !valid_token(tmpl->token) || strlen(tmpl->token) > 64)
        return SY_EINVAL;
    for (size_t i = 0; i < route->nupgrades; i++)
        if (!strcasecmp(route->upgrades[i].token, tmpl->token))
            return SY_EEXIST;
    sy_upgrade_entry *n = sy__realloc(route->upgrades, (route->nupgrades + 1) * sizeof(*n));
    if (!n)
        return SY_ENOMEM;
    route->upgrades = n;
    size_t tl = strlen(tmpl->token);
    char *tok = sy__malloc(tl + 1);
    if (!tok)
        return SY_ENOMEM;
    memcpy(tok, tmpl->token, tl + 1);
    n[route->nupgrades] = *tmpl;
    n[route->nupgrades].token = tok;
    route->nupgrades++;
    return 0;
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
