/* WebSocket options objects and the process-wide deflate budget setter. */
#include "ws/ws.h"

void sy__ws_opts_defaults(sy_ws_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_message = 1u << 20;
    o->ping_interval_ms = 30000;
    o->pong_timeout_ms = 10000;
    o->idle_timeout_ms = 0;
    o->close_timeout_ms = 5000;
    o->high_water = 1u << 20;
    o->low_water = 256u << 10;
    o->max_buffer = 16u << 20;
    /* Generous for real traffic (a message of a few MiB still arrives at full speed: the
     * first second's worth is available at once), while a stream of decompression bombs
     * costs a connection at most this much zlib work per second. See docs/websocket-deflate.md. */
    o->max_inflate_rate = (uint64_t)64 << 20;
    o->bp_policy = SY_WS_BP_BUFFER;
    o->deflate = 1;
    o->deflate_threshold = 64;
    o->window_bits = 15;
    o->mem_level = 8;
    o->level = 1;
}

SY_EXPORT int sy_ws_opts_new(sy_ws_opts **out)
{
    sy_ws_opts *o = sy__malloc(sizeof(*o));
    if (!o)
        return SY_ENOMEM;
    sy__ws_opts_defaults(o);
    *out = o;
    return 0;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sy__free(l[i]);
    sy__free(l);
}

SY_EXPORT void sy_ws_opts_free(sy_ws_opts *o)
{
    if (!o)
        return;
    free_list(o->subprotocols, o->nsub);
    free_list(o->origins, o->norigins);
    sy__free(o);
}

SY_EXPORT int sy_ws_opts_set(sy_ws_opts *o, enum sy_ws_opt opt, uint64_t v)
{
    switch (opt) {
    case SY_WS_OPT_MAX_MESSAGE:
        if (v == 0 || v > ((uint64_t)1 << 40))
            return SY_ERANGE;
        o->max_message = v;
        return 0;
    case SY_WS_OPT_PING_INTERVAL_MS:
        o->ping_interval_ms = v;
        return 0;
    case SY_WS_OPT_PONG_TIMEOUT_MS:
        o->pong_timeout_ms = v ? v : 1;
        return 0;
    case SY_WS_OPT_IDLE_TIMEOUT_MS:
        o->idle_timeout_ms = v;
        return 0;
    case SY_WS_OPT_CLOSE_TIMEOUT_MS:
        o->close_timeout_ms = v ? v : 1;
        return 0;
    case SY_WS_OPT_HIGH_WATER:
        o->high_water = v;
        return 0;
    case SY_WS_OPT_LOW_WATER:
        o->low_water = v;
        return 0;
    case SY_WS_OPT_MAX_BUFFER:
        o->max_buffer = v;
        return 0;
    case SY_WS_OPT_BACKPRESSURE_POLICY:
        if (v > SY_WS_BP_CLOSE)
            return SY_ERANGE;
        o->bp_policy = (int)v;
        return 0;
    case SY_WS_OPT_DEFLATE:
        o->deflate = v != 0;
        return 0;
    case SY_WS_OPT_DEFLATE_THRESHOLD:
        o->deflate_threshold = v;
        return 0;
    case SY_WS_OPT_DEFLATE_WINDOW_BITS:
        if (v < 8 || v > 15)
            return SY_ERANGE;
        o->window_bits = (int)v;
        return 0;
    case SY_WS_OPT_DEFLATE_MEM_LEVEL:
        if (v < 1 || v > 9)
            return SY_ERANGE;
        o->mem_level = (int)v;
        return 0;
    case SY_WS_OPT_DEFLATE_NO_CONTEXT_TAKEOVER:
        o->no_context_takeover = v != 0;
        return 0;
    case SY_WS_OPT_DEFLATE_LEVEL:
        if (v < 1 || v > 9)
            return SY_ERANGE;
        o->level = (int)v;
        return 0;
    case SY_WS_OPT_REQUIRE_SUBPROTOCOL:
        o->require_subprotocol = v != 0;
        return 0;
    case SY_WS_OPT_MAX_INFLATE_RATE:
        if (v > ((uint64_t)1 << 40))
            return SY_ERANGE; /* keeps the bucket arithmetic far from overflow */
        o->max_inflate_rate = v;
        return 0;
    }
    return SY_EINVAL;
}

static int list_add(char ***l, size_t *n, const char *s)
{
    size_t len = strlen(s);
    if (!len || len > 255)
        return SY_EINVAL;
    char **nl = sy__realloc(*l, (*n + 1) * sizeof(*nl));
    if (!nl)
        return SY_ENOMEM;
    *l = nl;
    char *d = sy__malloc(len + 1);
    if (!d)
        return SY_ENOMEM;
    memcpy(d, s, len + 1);
    nl[(*n)++] = d;
    return 0;
}

SY_EXPORT int sy_ws_opts_add_subprotocol(sy_ws_opts *o, const char *name)
{
    return list_add(&o->subprotocols, &o->nsub, name);
}

SY_EXPORT int sy_ws_opts_add_origin(sy_ws_opts *o, const char *origin)
{
    return list_add(&o->origins, &o->norigins, origin);
}

SY_EXPORT void sy_ws_opts_set_accept(sy_ws_opts *o, sy_ws_accept_fn fn)
{
    o->accept = fn;
}

SY_EXPORT void sy_ws_opts_set_cbs(sy_ws_opts *o, const sy_ws_cbs *cbs, void *ud)
{
    if (cbs)
        o->cbs = *cbs;
    else
        memset(&o->cbs, 0, sizeof(o->cbs));
    o->ud = ud;
}

int sy__ws_opts_copy(sy_ws_opts **out, const sy_ws_opts *src)
{
    sy_ws_opts *o;
    int e = sy_ws_opts_new(&o);
    if (e)
        return e;
    *o = *src;
    o->subprotocols = NULL;
    o->nsub = 0;
    o->origins = NULL;
    o->norigins = 0;
    for (size_t i = 0; i < src->nsub && !e; i++)
        e = list_add(&o->subprotocols, &o->nsub, src->subprotocols[i]);
    for (size_t i = 0; i < src->norigins && !e; i++)
        e = list_add(&o->origins, &o->norigins, src->origins[i]);
    if (e) {
        sy_ws_opts_free(o);
        return e;
    }
    *out = o;
    return 0;
}

SY_EXPORT void sy_ws_set_deflate_budget(uint64_t bytes)
{
    sy_pmd_set_budget(bytes);
}
