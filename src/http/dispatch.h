/* What a request runs into once its head (and, unless streamed, its body) is in, the same for
 * every HTTP version: route matching, the answers the library gives itself (404, 405, 426,
 * OPTIONS *), handing the request to the application, and the end of an empty streamed body.
 * The HTTP version decides when to call these and owns everything about the wire. */
#ifndef SY_HTTP_DISPATCH_H
#define SY_HTTP_DISPATCH_H

#include "http/req.h"

/* Find the route for r's decoded path and method (sets r->route). Returns 1 when a route
 * matched the path but not the method (answer with sy__http_respond_405), else 0. */
int sy__http_route(sy_req *r);

/* 405 Method Not Allowed, with the Allow list of the path's routes; 501 instead when the
 * method is neither one RFC 9110 defines (or PATCH) nor any route's. */
void sy__http_respond_405(sy_req *r);

/* Non-zero when r's body goes to the handler as it arrives (SY_ROUTE_STREAM_BODY) rather
 * than buffered first: never when the request may still switch protocols, since a check
 * hook gets the whole body. */
int sy__http_streams_body(const sy_req *r);

/* Hand r to its route's handler (the application holds it from here; see req.h). */
void sy__http_call_handler(sy_req *r);

/* Run a complete request that is not switching protocols: 426 for upgrade-only routes,
 * OPTIONS *, the handler (then, when the body is already complete, the end of a streamed
 * body), or 404. The caller keeps its hold on r across the call. */
void sy__http_dispatch(sy_req *r);

#endif
