/* SHA-1 (FIPS 180-4 §6.1) for the WebSocket accept key, which is all it is used for: the
 * handshake hashes 60 bytes, and going through OpenSSL's EVP layer for that costs a provider
 * lookup per call and, on the first one, initialising OpenSSL's algorithm tables (about 2 MB
 * of resident memory in a server that otherwise never touches libcrypto). Not for security
 * use: RFC 6455 needs SHA-1 only to prove the server read the key. */
#ifndef SY_WS_SHA1_H
#define SY_WS_SHA1_H

#include "core/common.h"

typedef struct sy_sha1 {
    uint32_t h[5];
    uint64_t total; /* bytes hashed so far */
    uint8_t buf[64];
    size_t buf_len;
} sy_sha1;

void sy_sha1_init(sy_sha1 *s);
void sy_sha1_update(sy_sha1 *s, const void *data, size_t len);
void sy_sha1_final(sy_sha1 *s, uint8_t out[20]);

/* Standard base64 (RFC 4648 §4, with padding) of len bytes into out, NUL-terminated: out
 * needs 4 * ceil(len / 3) + 1 bytes. Returns the length written (without the NUL). */
size_t sy_base64_encode(char *out, const uint8_t *in, size_t len);

#endif
