/* The protocol-neutral Upgrade registry: protocols are plug-ins (sy_upgrade_proto) registered
 * on routes under a token; the HTTP version that carries the request (HTTP/1.1 Upgrade, and
 * later HTTP/2 extended CONNECT) asks the check hook, answers, and hands the byte stream to
 * proto->open without knowing what is behind it. */
#ifndef SY_HTTP_UPGRADE_H
#define SY_HTTP_UPGRADE_H

#include "http/access.h"
#include "http/req.h"

/* Non-zero when the client's Upgrade element (token or token/version) names entry e. */
int sy__upgrade_matches(const sy_upgrade_entry *e, const char *tok, size_t len);

/* Add a protocol to a route (the token is copied). */
int sy__route_add_upgrade(sy_route *route, const sy_upgrade_entry *tmpl);

/* The entries a request may switch to, in order: the route's, then the server-wide ones
 * (sy_http_app.upgrades). Returns entry i, or NULL past the end. route and a may be NULL. */
const sy_upgrade_entry *sy__upgrade_entry_at(const sy_http_app *a, const sy_route *route, size_t i);

/* r asks to switch to tok (its first token; for HTTP/2, :protocol): remember the kind for
 * the funnel (r->up_kind) and count it as requested. Call once r->route is known. */
void sy__upgrade_note_request(sy_req *r, const char *tok, size_t tl);
/* The same with the first token of r->upgrade (HTTP/1.1); nothing when r does not ask. */
void sy__upgrade_note_first_token(sy_req *r);

/* Ask e's check hook about switching r to token tok. Returns SY_UPGRADE_ACCEPT, a refusal
 * status 400..599 (with *reason, may be NULL), or SY_UPGRADE_DECLINE (then whatever the hook
 * added to the response and r->upgrade_state is dropped). */
int sy__upgrade_check(sy_req *r, const sy_upgrade_entry *e, const char *tok, size_t tl,
                      const char **reason);

/* Answer a refused upgrade: status, reason as a text body (and in the access log). */
void sy__upgrade_refuse(sy_req *r, int status, const char *reason);

/* A switchable protocol. */
struct sy_upgrade_proto {
    const char *name; /* for logs */
    /* Take over the byte stream s after the switch was answered (101 queued): install a
     * sy_bstream_proto on it. req is valid during the call only; the bytes that followed the
     * request reach the new protocol's on_read right after. log (may be NULL) is the
     * access-log record, owned from here on. Return 0, or -err: the stream is then closed. */
    int (*open)(sy_bstream *s, sy_req *req, const sy_upgrade_entry *e, sy_uplog *log);
    /* Free the options stored in the route entry (e->opts). May be NULL. */
    void (*free_opts)(void *opts);
};

/* Raw byte streams ("Upgrade: echo" etc., sy_route_upgrade_raw). */
extern const sy_upgrade_proto sy__raw_upgrade;

#endif
