/* HTTP/1.1 on a connection: the request/response state machine, keep-alive, pipelining,
 * bodies, timeouts and the Upgrade handoff. */
#ifndef SY_HTTP1_SERVER_H
#define SY_HTTP1_SERVER_H

#include "net/worker.h"

/* Run HTTP/1.1 on a freshly accepted connection. Returns 0 or SY_ENOMEM. */
int sy__http1_attach(sy_conn *c, sy_worker *w);
/* The first head's bytes began arriving before HTTP/1 was installed (a sniffer saw them): it
 * must be complete by deadline_ms (loop time), not a whole header timeout from now. */
void sy__http1_head_deadline(sy_conn *c, uint64_t deadline_ms);

#endif
