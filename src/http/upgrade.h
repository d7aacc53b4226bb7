/* The protocol-neutral Upgrade registry and the openers of the protocols it can switch to. */
#ifndef SY_HTTP_UPGRADE_H
#define SY_HTTP_UPGRADE_H

#include "http/access.h"

/* Non-zero when the client's Upgrade element (token or token/version) names entry e. */
int sy__upgrade_matches(const sy_upgrade_entry *e, const char *tok, size_t len);

/* Add a protocol to a route (the token is copied). */
int sy__route_add_upgrade(sy_route *route, const sy_upgrade_entry *tmpl);

/* Take over c after the 101 was queued. req is valid during the call only; the bytes that
 * followed the request reach the new protocol's on_read right after. Return 0 or -err (the
 * connection is then closed). */
int sy__stream_open(sy_conn *c, sy_req *req, const sy_upgrade_entry *e, sy_uplog *log);
int sy__ws_server_open(sy_conn *c, sy_req *req, const sy_upgrade_entry *e, sy_uplog *log);
/* The WebSocket handshake gate, registered as the check hook of "websocket" entries. */
int sy__ws_server_check(sy_req *req, const char *token, const char **reason, void *ud);

#endif
