/* The HTTP2-Settings header of an h2c upgrade (RFC 7540 §3.2.1), sans-I/O: base64url without
 * padding of a SETTINGS frame payload. */
#ifndef SY_HTTP2_SETTINGS_H
#define SY_HTTP2_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decode value[0..len) into out (cap bytes) and check it as a SETTINGS payload: a whole
 * number of 6-byte entries, each known setting within its range (ENABLE_PUSH and
 * ENABLE_CONNECT_PROTOCOL 0 or 1, INITIAL_WINDOW_SIZE at most 2^31-1, MAX_FRAME_SIZE in
 * 2^14..2^24-1; unknown identifiers are allowed). Returns the payload length, or -1 when the
 * value is not base64url (padding, other characters, an impossible length) or not a valid
 * payload, or does not fit. An empty value is an empty payload. */
ssize_t sy_h2_settings_decode(const char *value, size_t len, uint8_t *out, size_t cap);

#endif
