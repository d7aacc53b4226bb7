/* Flood counters for an HTTP/2 connection (sans-I/O): frames that cost the server work but
 * carry no request a client needs to send often. Each kind is counted in fixed windows of
 * SY_H2_FLOOD_WINDOW_MS; beyond its bound the connection ends with GOAWAY ENHANCE_YOUR_CALM.
 *  - RESET: RST_STREAM from the client (rapid reset, CVE-2023-44487: open a stream, make the
 *    server start work, cancel it, repeat; concurrency limits never trip).
 *  - PING, SETTINGS: each forces an ACK.
 *  - EMPTY_DATA: DATA frames without payload or END_STREAM (nothing to do but count them). */
#ifndef SY_HTTP2_FLOOD_H
#define SY_HTTP2_FLOOD_H

#include <stdint.h>

enum { SY_H2_EV_RESET = 0, SY_H2_EV_PING, SY_H2_EV_SETTINGS, SY_H2_EV_EMPTY_DATA, SY_H2_EV_N };

#define SY_H2_FLOOD_WINDOW_MS 10000

typedef struct sy_h2_flood {
    uint64_t window_start; /* ms */
    uint32_t count[SY_H2_EV_N];
} sy_h2_flood;

/* The bound of an event kind per window. */
uint32_t sy_h2_flood_limit(int ev);

/* Count one event of kind ev at time now (ms). Returns 1 when the window's bound for that kind
 * is now exceeded, else 0. */
int sy_h2_flood_hit(sy_h2_flood *f, int ev, uint64_t now);

#endif
