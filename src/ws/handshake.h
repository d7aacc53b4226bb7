/* Pure pieces of the WebSocket opening handshake (RFC 6455 §4): keys, the accept hash and
 * subprotocol selection. SHA-1 and base64 are OpenSSL's; keys come from getrandom. */
#ifndef SY_WS_HANDSHAKE_H
#define SY_WS_HANDSHAKE_H

#include "core/common.h"

/* Non-zero when key (OWS-trimmed Sec-WebSocket-Key value) is base64 of exactly 16 bytes:
 * 24 characters, valid alphabet, "==" padding, and zero spare bits. */
int sy_ws_key_valid(const char *key, size_t len);
/* out = base64(SHA-1(key || "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 chars + NUL. */
void sy_ws_accept_key(const char *key, size_t len, char out[29]);
/* Look up SHA-1 in OpenSSL once (it builds its algorithm tables on first use): called when a
 * WebSocket route or client is set up, so no handshake pays for it. Thread-safe. */
void sy_ws_crypto_init(void);
/* A fresh random key (16 bytes from getrandom, base64): 24 chars + NUL. Returns 0 or SY_EIO. */
int sy_ws_make_key(char out[25]);

/* Pick a subprotocol: offered is one Sec-WebSocket-Protocol field value (a token list); call
 * for each field. prefs is the server's list in preference order. Returns the index into
 * prefs of the most preferred protocol that is offered (case-sensitive, as RFC 6455 says
 * tokens are compared exactly), or -1. best carries the best index across calls (init -1). */
int sy_ws_pick_subprotocol(const char *offered, size_t len, const char *const *prefs, size_t nprefs,
                           int best);

#endif
