/* permessage-deflate (RFC 7692): negotiation of the four parameters, and streaming
 * compression/decompression of messages with zlib. Sans-I/O: output goes to a sink callback.
 * Also the process-wide zlib memory budget, reserved at negotiation. */
#ifndef SY_WS_PMD_H
#define SY_WS_PMD_H

#include "core/common.h"
#include <zlib.h>

/* What this endpoint is willing to do (from sy_ws_opts). */
typedef struct sy_pmd_config {
    uint8_t window_bits;         /* our own deflate window, 9..15 (8 is treated as 9: see pmd.c) */
    uint8_t mem_level;           /* zlib memLevel 1..9 */
    uint8_t no_context_takeover; /* ask that our side resets its context every message */
    uint8_t peer_window_bits;    /* client side: limit we ask for the server's window (0 = none);
                                    server side: limit we request for the client's window when
                                    the client allows it (0 = don't ask) */
} sy_pmd_config;

/* The negotiated result, from this endpoint's point of view. */
typedef struct sy_pmd_params {
    uint8_t tx_window_bits; /* window our deflater may use (8..15; 8 => we send uncompressed) */
    uint8_t rx_window_bits; /* window the peer's deflater may use (our inflater's window) */
    uint8_t tx_no_context_takeover;
    uint8_t rx_no_context_takeover;
} sy_pmd_params;

/*
 * Server: look at one Sec-WebSocket-Extensions field value (a list of offers) and accept the
 * first valid permessage-deflate offer. Call once per field, in order, until it returns 1.
 * An offer with an unknown parameter, a repeated parameter, or an invalid value is declined
 * (skipped), never an error. On acceptance writes the response extension value
 * ("permessage-deflate; server_max_window_bits=10; ...", NUL-terminated) into resp (cap >= 128;
 * the rare answer with all four parameters drops the spaces after ";" to fit) and fills *out.
 * Returns 1 accepted, 0 nothing acceptable (or cap too small: resp is then "").
 */
int sy_pmd_server_negotiate(const char *value, size_t len, const sy_pmd_config *cfg,
                            sy_pmd_params *out, char *resp, size_t cap);

/* Client: write our offer into buf (NUL-terminated, cap >= 128). Returns its length. */
size_t sy_pmd_client_offer(const sy_pmd_config *cfg, char *buf, size_t cap);
/* Client: validate the server's Sec-WebSocket-Extensions response value. Returns 1 accepted
 * (fills *out), 0 if the value lists no extension at all (only OWS and commas),
 * SY_EWS_EXTENSION when it is invalid or not what we offered, including any other extension
 * (the connection must then fail; *detail, if detail is not NULL, says why: static text). */
int sy_pmd_client_accept(const char *value, size_t len, const sy_pmd_config *cfg,
                         sy_pmd_params *out, const char **detail);

/* Output sink: return 0 to continue, < 0 to abort (the value is returned to the caller). */
typedef int (*sy_pmd_sink)(void *ud, const uint8_t *data, size_t len);

/* The two directions share nothing but the negotiated parameters and the reservation: the
 * deflater belongs to the send side, the inflater to the receive side, and each keeps its
 * own per-message state, so a message being sent and one being received never meet. */
typedef struct sy_pmd_tx {
    z_stream z;
    uint8_t ready;
    uint8_t tail_len; /* held-back bytes of deflate output (the 00 00 ff ff tail) */
    uint8_t tail[4];
    uint8_t stale; /* the peer's window holds a message we did not compress: reset first */
} sy_pmd_tx;

typedef struct sy_pmd_rx {
    z_stream z;
    uint8_t ready;
    uint64_t inflated; /* bytes inflated in the current message */
} sy_pmd_rx;

typedef struct sy_pmd {
    sy_pmd_params params;
    uint8_t level; /* zlib level + 1 (0 = zlib's default), set after sy_pmd_init */
    uint8_t mem_level;
    /* Bytes of the process budget held for this connection's zlib streams (sy_pmd_cost of
     * its parameters), taken at negotiation by sy_pmd_reserve and handed over by the
     * caller after sy_pmd_init; sy_pmd_free gives them back. */
    size_t reserved;
    sy_pmd_tx tx;
    sy_pmd_rx rx;
    /* The engine's inflate budget for this connection (src/ws/ws.c, rate_*): here because
     * only a connection that inflates needs one. */
    int64_t inflate_credit; /* bytes that may still be inflated (negative: owed) */
    uint64_t credit_ms;     /* when inflate_credit was last refilled */
    uint64_t resume_ms;     /* reading resumes then (while rx.paused_rate) */
} sy_pmd;

/* Prepare contexts (zlib streams are created lazily on first use; their memory was reserved
 * at negotiation). Returns 0. */
int sy_pmd_init(sy_pmd *p, const sy_pmd_params *params, uint8_t mem_level);
/* Release zlib state and the reservation. Safe on a zeroed or already-freed struct. */
void sy_pmd_free(sy_pmd *p);

/* A message compressed elsewhere, without this context (a shared pub/sub frame), went to the
 * peer between two of ours: its inflater's window now holds that message, so our next
 * message must not refer back past it. The deflater is reset before the next message (not
 * now: most connections never compress again before the next shared frame). */
static inline void sy_pmd_tx_stale(sy_pmd *p)
{
    p->tx.stale = 1;
}

/* Non-zero when we may send compressed messages (tx_window_bits >= 9). */
int sy_pmd_can_compress(const sy_pmd *p);

/*
 * Compress the next part of an outgoing message. fin=1 on the message's last part: the output
 * is then flushed (Z_SYNC_FLUSH) and the trailing 00 00 ff ff removed, as RFC 7692 §7.2.1
 * requires; the context is reset after it when tx_no_context_takeover. Parts that are not the
 * last may produce no output. An empty message yields the single byte 0x00. With
 * tx_window_bits 8 (callers should not compress then) only stored blocks are produced. Returns
 * 0, SY_ENOMEM, SY_EINTERNAL, or the sink's error; after an error the message is lost and the
 * context is reset.
 */
int sy_pmd_deflate(sy_pmd *p, const uint8_t *in, size_t len, int fin, sy_pmd_sink sink, void *ud);

/*
 * Decompress the next part of an incoming compressed message. fin=1 on the last part (the
 * 00 00 ff ff tail is then appended internally). max_total bounds the message's inflated size:
 * beyond it returns SY_EWS_TOO_BIG without producing more (decompression bombs cost at most
 * max_total + one step; the sink never receives more than max_total bytes per message).
 * Invalid data, including a message that ends inside a deflate block, returns
 * SY_EWS_EXTENSION with *detail set (static text). A message ending with a BFINAL block resets
 * the context. After any error the context is reset. Returns 0 or -err (also SY_ENOMEM, or
 * the sink's error).
 */
int sy_pmd_inflate(sy_pmd *p, const uint8_t *in, size_t len, int fin, uint64_t max_total,
                   sy_pmd_sink sink, void *ud, const char **detail);

/*
 * The process-wide zlib memory budget (bytes; 0 = unlimited, the counter still runs).
 * zlib memory is reserved when permessage-deflate is negotiated, before the 101 is sent,
 * for what the negotiated parameters can cost at most, whether or not a message ever
 * flows; the streams themselves are still created on first use. Usage never exceeds the
 * budget. A reservation belongs to exactly one owner at a time (the handshake state, then
 * the sy_pmd) and is released by it, so an abandoned handshake cannot leak one.
 * Thread-safe (atomics). See docs/websocket-deflate.md.
 */
void sy_pmd_set_budget(uint64_t bytes);
/* The most zlib memory a connection with these parameters uses (bytes): the deflater when
 * we may compress, (1 << (windowBits + 2)) + (1 << (memLevel + 9)) plus its state, and the
 * inflater, (1 << windowBits) plus about 7 KiB (zlib's zconf.h). mem_level as for sy_pmd_init. */
size_t sy_pmd_cost(const sy_pmd_params *params, uint8_t mem_level);
/* The most an offer made with cfg can cost once the server answers (it may only lower the
 * windows), for a client to reserve before it offers. */
size_t sy_pmd_offer_cost(const sy_pmd_config *cfg);
/* Take bytes from the budget. The configured settings (SY_PMD_FULL) may fill half of it;
 * the rest is for the cheaper settings (SY_PMD_CHEAP), so that many connections still get
 * some compression once the expensive ones have used their share. Returns 1 when reserved,
 * 0 (nothing taken) when usage would go above the tier's share. */
enum { SY_PMD_FULL, SY_PMD_CHEAP };
int sy_pmd_reserve(size_t bytes, int tier);
void sy_pmd_release(size_t bytes);
/* The cheaper settings used when the configured ones do not fit: window and memLevel
 * lowered (never raised), and the peer asked for a small window too. */
void sy_pmd_cheap_config(sy_pmd_config *cfg);
/* The cap (0: none). */
uint64_t sy_pmd_budget(void);
/* Bytes reserved right now (for tests and metrics). */
uint64_t sy_pmd_budget_used(void);

#endif
