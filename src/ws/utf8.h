/* Incremental UTF-8 validation (RFC 3629) that fails at the first byte that cannot start or
 * continue a valid sequence: overlongs, surrogates (U+D800..DFFF) and code points above
 * U+10FFFF are rejected as soon as the offending byte is seen. An ASCII fast path checks 8
 * bytes at a time. Sans-I/O; state fits in a uint32_t. */
#ifndef SY_WS_UTF8_H
#define SY_WS_UTF8_H

#include "core/common.h"

typedef struct sy_utf8 {
    uint32_t state; /* 0 = at a character boundary (accept state) */
} sy_utf8;

static inline void sy_utf8_init(sy_utf8 *u)
{
    u->state = 0;
}

/* Validate the next len bytes of a stream. Returns -1 if all bytes are valid so far (a
 * sequence may still be open: see sy_utf8_complete), else the index in data of the first
 * invalid byte. After a failure the state is undefined until sy_utf8_init. */
ssize_t sy_utf8_feed(sy_utf8 *u, const uint8_t *data, size_t len);
/* Non-zero when the stream so far ends at a character boundary. */
static inline int sy_utf8_complete(const sy_utf8 *u)
{
    return u->state == 0;
}
/* Whole-buffer convenience: non-zero when data is complete, valid UTF-8. */
int sy_utf8_valid(const uint8_t *data, size_t len);

#endif
