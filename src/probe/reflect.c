/* What the hops in between did to the request: the reflect route of `switchyard serve` answers
 * with the request head exactly as it arrived; compared with the head the probe sent, it shows
 * which fields a proxy stripped, rewrote or added, and whether it spoke HTTP/1.0 upstream. The
 * hop is named from the answer's Server field where it says. */
#include "probe/probe.h"

#include <stdio.h>
#include <strings.h>

typedef struct names {
    char s[300];
    size_t len;
} names;

static void add_name(names *n, const char *fmt, const char *a, size_t alen, const char *b,
                     size_t blen)
{
    char qa[80], qb[80];
    sy_probe_quote(qa, sizeof(qa), a, alen);
    if (b)
        sy_probe_quote(qb, sizeof(qb), b, blen);
    int w =
        snprintf(n->s + n->len, sizeof(n->s) - n->len, fmt, n->len ? ", " : "", qa, b ? qb : "");
    if (w > 0 && (size_t)w < sizeof(n->s) - n->len)
        n->len += (size_t)w;
}

/* Host, Upgrade and Connection compare case-insensitively (a proxy may re-case them);
 * anything else must arrive byte for byte. */
static int same_value(const sy_field *a, const sy_field *b)
{
    if (a->value_len != b->value_len)
        return 0;
    if (sy__ieq(a->name, a->name_len, "host") || sy__ieq(a->name, a->name_len, "upgrade") ||
        sy__ieq(a->name, a->name_len, "connection"))
        return !strncasecmp(a->value, b->value, a->value_len);
    return !memcmp(a->value, b->value, a->value_len);
}

static void hop_hint(sy_probe_finding *f, const char *server)
{
    if (!f)
        return;
    if (server && strstr(server, "nginx"))
        sy_probe_hint(f,
                      "the hop in front is nginx (Server: %s): add proxy_http_version 1.1 and "
                      "the Upgrade/Connection proxy_set_header lines to its location",
                      server);
    else if (server)
        sy_probe_hint(f, "the hop in front answers as \"%s\"", server);
}

int sy_probe_reflect_check(sy_probe_report *r, const char *path, const char *body, size_t body_len,
                           const char *sent, size_t sent_len, const char *marker,
                           const char *server)
{
    static sy_probe_head got, mine; /* large: kept off the stack; the probe is single-threaded */
    const char *detail;
    if (sy_probe_head_parse(body, body_len, 1, &got, &detail) <= 0 ||
        sy_probe_head_parse(sent, sent_len, 1, &mine, &detail) <= 0)
        return 0;
    const sy_field *m = sy_probe_head_get(&got, "x-switchyard-probe", NULL);
    if (!m || !marker || m->value_len != strlen(marker) || memcmp(m->value, marker, m->value_len))
        return 0;
    if (got.minor == 0 && got.major == 1)
        hop_hint(sy_probe_add(r, path, SY_PF_PROXY_HTTP10_UPSTREAM,
                              "The request reached the server as HTTP/1.0 (the probe sent "
                              "HTTP/1.1): a hop in between speaks HTTP/1.0 upstream, and HTTP/1.0 "
                              "cannot upgrade."),
                 server);
    names stripped = {.len = 0}, rewrote = {.len = 0}, added = {.len = 0};
    stripped.s[0] = rewrote.s[0] = added.s[0] = 0;
    if (got.target_len != mine.target_len || memcmp(got.target, mine.target, got.target_len))
        add_name(&rewrote, "%srequest target %s -> %s", mine.target, mine.target_len, got.target,
                 got.target_len);
    for (size_t i = 0; i < mine.nfields; i++) {
        const sy_field *f = &mine.fields[i];
        if (sy__ieq(f->name, f->name_len, "x-switchyard-reflect-token"))
            continue;
        char lname[64];
        if (f->name_len >= sizeof(lname))
            continue;
        for (size_t k = 0; k < f->name_len; k++)
            lname[k] =
                (char)((f->name[k] >= 'A' && f->name[k] <= 'Z') ? f->name[k] + 32 : f->name[k]);
        lname[f->name_len] = 0;
        const sy_field *g = sy_probe_head_get(&got, lname, NULL);
        if (sy__ieq(f->name, f->name_len, "upgrade") && !g) {
            hop_hint(sy_probe_add(r, path, SY_PF_PROXY_STRIPPED_UPGRADE,
                                  "The probe sent \"Upgrade: websocket\" and the server "
                                  "received no Upgrade field: a hop in between removed it."),
                     server);
        } else if (sy__ieq(f->name, f->name_len, "connection") &&
                   (!g || !sy_field_list_has(g->value, g->value_len, "upgrade"))) {
            char q[80];
            hop_hint(sy_probe_add(r, path, SY_PF_PROXY_STRIPPED_CONNECTION,
                                  "The probe sent \"Connection: Upgrade\" and the server received "
                                  "%s%s%s: a hop in between replaced it.",
                                  g ? "\"Connection: " : "no Connection field",
                                  g ? sy_probe_quote(q, sizeof(q), g->value, g->value_len) : "",
                                  g ? "\"" : ""),
                     server);
        } else if (!g) {
            add_name(&stripped, "%s%s", f->name, f->name_len, NULL, 0);
        } else if (!same_value(f, g)) {
            char pair[200];
            char qa[80];
            snprintf(pair, sizeof(pair), "%.*s: %s ->", (int)f->name_len, f->name,
                     sy_probe_quote(qa, sizeof(qa), f->value, f->value_len));
            add_name(&rewrote, "%s%s %s", pair, strlen(pair), g->value, g->value_len);
        }
    }
    for (size_t i = 0; i < got.nfields; i++) {
        const sy_field *g = &got.fields[i];
        int found = 0;
        for (size_t k = 0; k < mine.nfields && !found; k++)
            found = mine.fields[k].name_len == g->name_len &&
                    !strncasecmp(mine.fields[k].name, g->name, g->name_len);
        if (!found)
            add_name(&added, "%s%s", g->name, g->name_len, NULL, 0);
    }
    if (stripped.len)
        hop_hint(sy_probe_add(r, path, SY_PF_PROXY_STRIPPED_HEADERS,
                              "Fields the probe sent did not reach the server: %s.", stripped.s),
                 server);
    if (rewrote.len)
        sy_probe_add(r, path, SY_PF_PROXY_REWROTE_HEADERS, "A hop changed: %s.", rewrote.s);
    if (added.len)
        sy_probe_add(r, path, SY_PF_PROXY_ADDED_HEADERS, "A hop added: %s.", added.s);
    return 1;
}
