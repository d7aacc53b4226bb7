/* The probe's check core (sans-I/O): what `switchyard probe` knows about protocol upgrades.
 * Bytes and observed events go in (a response head, frames, TLS facts, HTTP/2 events, a
 * reflected request); findings come out, each with a stable ID from the catalogue
 * (findings.c, documented in docs/probe.md). Nothing here opens a socket or allocates: every
 * buffer is fixed-size, so a hostile peer can cost the probe time (bounded by its driver) but
 * never unbounded memory. The driver (src/cli/probe*.c) does DNS, sockets, TLS and timing. */
#ifndef SY_PROBE_H
#define SY_PROBE_H

#include "core/common.h"
#include "http/field.h"
#include "ws/frame.h"

#include <stdarg.h>

/* ---- the catalogue of findings ---- */

typedef enum sy_probe_sev {
    SY_PROBE_INFO = 0,  /* an observation; not a problem */
    SY_PROBE_WARN = 1,  /* works, but wrong or risky: a problem (exit 1) */
    SY_PROBE_ERROR = 2, /* clients will fail: a problem (exit 1) */
    SY_PROBE_FATAL = 3, /* could not reach or talk to the server at all (exit 2) */
} sy_probe_sev;

/* Stable IDs: never renumber the strings (the enum order is free to change). */
typedef enum sy_probe_id {
    SY_PF_NET_DNS_FAILED,
    SY_PF_NET_CONNECT_REFUSED,
    SY_PF_NET_CONNECT_TIMEOUT,
    SY_PF_NET_CONNECT_FAILED,
    SY_PF_NET_TIMEOUT,
    SY_PF_NET_CLOSED,
    SY_PF_TLS_HANDSHAKE_FAILED,
    SY_PF_TLS_CERT_EXPIRED,
    SY_PF_TLS_CERT_NOT_YET_VALID,
    SY_PF_TLS_CERT_NAME_MISMATCH,
    SY_PF_TLS_CERT_UNTRUSTED,
    SY_PF_TLS_CERT_EXPIRES_SOON,
    SY_PF_TLS_OLD_VERSION,
    SY_PF_TLS_ALPN_UNEXPECTED,
    SY_PF_HTTP_NOT_HTTP,
    SY_PF_HTTP_BAD_RESPONSE,
    SY_PF_HTTP_HEAD_TOO_LARGE,
    SY_PF_HTTP_BODY_UNBOUNDED,
    SY_PF_HTTP_VERSION_10,
    SY_PF_HTTP_1XX_FRAMING,
    SY_PF_WS_NOT_SWITCHED_200,
    SY_PF_WS_REFUSED_400,
    SY_PF_WS_UPGRADE_REQUIRED_426,
    SY_PF_WS_REDIRECT,
    SY_PF_WS_FORBIDDEN,
    SY_PF_WS_NOT_FOUND,
    SY_PF_WS_BAD_GATEWAY,
    SY_PF_WS_UNEXPECTED_STATUS,
    SY_PF_WS_UPGRADE_MISSING,
    SY_PF_WS_UPGRADE_WRONG,
    SY_PF_WS_CONNECTION_MISSING,
    SY_PF_WS_ACCEPT_MISSING,
    SY_PF_WS_ACCEPT_MISMATCH,
    SY_PF_WS_SUBPROTOCOL_UNSOLICITED,
    SY_PF_WS_SUBPROTOCOL_NOT_SELECTED,
    SY_PF_WS_EXTENSION_UNSOLICITED,
    SY_PF_WS_EXTENSION_INVALID,
    SY_PF_WS_VERSION_MISMATCH,
    SY_PF_WS_CLOSED_AFTER_UPGRADE,
    SY_PF_WS_CLOSED_BY_SERVER,
    SY_PF_WS_FRAME_INVALID,
    SY_PF_WS_FLOOD,
    SY_PF_WS_UNSOLICITED_MESSAGES,
    SY_PF_WS_NO_ECHO,
    SY_PF_WS_NO_PONG,
    SY_PF_WS_PONG_MISMATCH,
    SY_PF_WS_CLOSE_NO_REPLY,
    SY_PF_WS_IDLE_CUT,
    SY_PF_WS_IDLE_PINGS,
    SY_PF_WS_IDLE_SURVIVED,
    SY_PF_SEC_UNMASKED_ACCEPTED,
    SY_PF_SEC_BAD_VERSION_ACCEPTED,
    SY_PF_SEC_BAD_VERSION_NO_HINT,
    SY_PF_SEC_H2C_WITHOUT_SETTINGS_TOKEN,
    SY_PF_SEC_H2C_OVER_TLS,
    SY_PF_PROXY_HTTP10_UPSTREAM,
    SY_PF_PROXY_STRIPPED_UPGRADE,
    SY_PF_PROXY_STRIPPED_CONNECTION,
    SY_PF_PROXY_STRIPPED_HEADERS,
    SY_PF_PROXY_REWROTE_HEADERS,
    SY_PF_PROXY_ADDED_HEADERS,
    SY_PF_PROXY_REFLECT_UNAVAILABLE,
    SY_PF_H2C_UPGRADE_IGNORED,
    SY_PF_H2C_UPGRADE_INVALID,
    SY_PF_H2_PRIOR_KNOWLEDGE_REFUSED,
    SY_PF_H2_ALPN_NOT_H2,
    SY_PF_H2_NO_SETTINGS,
    SY_PF_H2_GOAWAY,
    SY_PF_H2_STREAM_RESET,
    SY_PF_H2_PROTOCOL_ERROR,
    SY_PF_H2_NO_RESPONSE,
    SY_PF_H2_WS_NOT_ADVERTISED,
    SY_PF_H2_WS_REJECTED,
    SY_PF_H2_WS_NO_ECHO,
    SY_PF__COUNT
} sy_probe_id;

typedef struct sy_probe_def {
    const char *id; /* "WS_ACCEPT_MISMATCH" */
    sy_probe_sev sev;
    const char *title;  /* a few words */
    const char *causes; /* likely causes, one per line ('\n'-separated), most likely first */
    const char *fix;    /* steps to fix, one per line */
} sy_probe_def;

/* The catalogue entry of an ID (never NULL for a valid ID). */
const sy_probe_def *sy_probe_def_of(sy_probe_id id);
/* By string ID, or NULL. */
const sy_probe_def *sy_probe_def_find(const char *id);
const char *sy_probe_sev_name(sy_probe_sev s); /* "info", "warning", "error", "fatal" */

/* ---- the report: findings and timed steps ---- */

#define SY_PROBE_MAX_FINDINGS 64
#define SY_PROBE_MAX_STEPS 64

typedef struct sy_probe_finding {
    sy_probe_id id;
    sy_probe_sev sev; /* usually the catalogue's; the driver may lower or raise it */
    char path[16];    /* which walk found it: "websocket", "security", "reflect", "h2c", ... */
    char msg[320];    /* one plain sentence of what happened, with the values seen */
    char hint[320];   /* what the wire says about the cause (may be empty) */
} sy_probe_finding;

typedef struct sy_probe_step {
    char path[16];
    char name[16]; /* "dns", "connect", "tls", "handshake", "round-trip", "ping", "close", ... */
    int ok;        /* 1 done, 0 failed, -1 skipped / not applicable */
    double ms;     /* duration, or < 0 when not timed */
    char detail[200];
} sy_probe_step;

typedef struct sy_probe_report {
    sy_probe_finding findings[SY_PROBE_MAX_FINDINGS];
    size_t nfindings;
    size_t dropped; /* findings past the cap */
    sy_probe_step steps[SY_PROBE_MAX_STEPS];
    size_t nsteps;
} sy_probe_report;

void sy_probe_report_init(sy_probe_report *r);
/* Add a finding with the catalogue severity; msg is printf-style. Returns it (NULL when the
 * report is full) so the caller may set the hint or the severity. */
sy_probe_finding *sy_probe_add(sy_probe_report *r, const char *path, sy_probe_id id,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void sy_probe_hint(sy_probe_finding *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
sy_probe_step *sy_probe_step_add(sy_probe_report *r, const char *path, const char *name, int ok,
                                 double ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Non-zero when the report holds a finding with this ID (in any path when path is NULL). */
int sy_probe_has(const sy_probe_report *r, const char *path, sy_probe_id id);
/* 0 nothing but info, 1 warnings or errors, 2 a fatal finding (could not connect). */
int sy_probe_exit_code(const sy_probe_report *r);
/* Printable copy of untrusted bytes: control and non-ASCII bytes become \xNN, at most cap-1
 * characters (an ellipsis marks a cut). Returns out. */
char *sy_probe_quote(char *out, size_t cap, const void *data, size_t len);

/* ---- HTTP/1 heads (responses, and requests echoed by a reflect route) ---- */

#define SY_PROBE_MAX_HEAD 65536 /* a response head larger than this is a finding */
#define SY_PROBE_MAX_FIELDS 100

typedef struct sy_probe_head {
    int is_request;
    int major, minor;
    int status; /* responses */
    const char *reason;
    size_t reason_len;
    const char *method; /* requests */
    size_t method_len;
    const char *target;
    size_t target_len;
    sy_field fields[SY_PROBE_MAX_FIELDS];
    size_t nfields;
    size_t head_len;
    unsigned bare_lf;     /* lines that end in a bare LF instead of CRLF (accepted, noted) */
    const char *bad_line; /* SY_PROBE_HEAD_BAD: the line that broke the parse (in buf) */
    size_t bad_len;
} sy_probe_head;

enum {
    SY_PROBE_HEAD_NOT_HTTP = -1, /* the first bytes are not an HTTP/1 message */
    SY_PROBE_HEAD_BAD = -2,      /* a malformed start line or field line (*detail says) */
    SY_PROBE_HEAD_TOO_LARGE = -3 /* over SY_PROBE_MAX_HEAD bytes or SY_PROBE_MAX_FIELDS */
};

/* Parse the head at the start of buf (stateless: call again with more bytes). Returns the
 * head length (> 0), 0 when more bytes are needed, or a SY_PROBE_HEAD_* error with *detail
 * (static text). Line ends may be CRLF or a bare LF (recipients may accept both). */
ssize_t sy_probe_head_parse(const char *buf, size_t len, int request, sy_probe_head *h,
                            const char **detail);
const sy_field *sy_probe_head_get(const sy_probe_head *h, const char *lower_name, int *count);
/* What a malformed head (SY_PROBE_HEAD_BAD) shows about its cause, from the line that broke
 * the parse (e.g. binary bytes: frames written before the empty line that ends the head), or
 * NULL when there is nothing more to say. */
const char *sy_probe_head_bad_hint(const sy_probe_head *h);
/* Findings about a complete head's framing that do not stop the checks (bare LF line ends). */
void sy_probe_head_check(sy_probe_report *r, const char *path, const sy_probe_head *h,
                         const char *what);
/* What the first bytes of a non-HTTP answer look like ("a TLS record", "an HTTP/2 SETTINGS
 * frame", "an SSH banner", ...), or NULL when unrecognised. */
const char *sy_probe_classify_bytes(const uint8_t *data, size_t len);

/* A bounded reader for the body of a non-101 response: keeps the first bytes as a snippet,
 * decodes chunked framing, and says when the body ended. */
#define SY_PROBE_SNIPPET 8192 /* enough for a reflected request head */
typedef struct sy_probe_body {
    uint8_t mode; /* none, length, chunked, close-delimited */
    uint8_t cstate;
    uint8_t done;
    uint8_t error;
    uint64_t left; /* length mode: bytes left; chunked: bytes left in the chunk */
    uint64_t total;
    unsigned line_len; /* chunk size / extension / trailer line length (bounded) */
    unsigned hex_digits;
    char snippet[SY_PROBE_SNIPPET];
    size_t snip_len;
    const char *detail;
} sy_probe_body;

void sy_probe_body_init(sy_probe_body *b, const sy_probe_head *h, int head_request);
/* Consume body bytes; returns how many were used (the rest belongs to what follows). */
size_t sy_probe_body_feed(sy_probe_body *b, const uint8_t *in, size_t len);
int sy_probe_body_close_delimited(const sy_probe_body *b);

/* ---- WebSocket over HTTP/1.1: the opening handshake ---- */

#define SY_PROBE_MAX_OFFER 8

typedef struct sy_probe_ws_req {
    const char *host; /* Host field value (with the port when not the default) */
    const char *target;
    const char *origin; /* NULL: no Origin */
    const char *subprotocols[SY_PROBE_MAX_OFFER];
    size_t nsub;
    int offer_deflate;        /* "permessage-deflate; client_max_window_bits" as browsers send */
    const char *version;      /* "13"; the security check sends another */
    const char *const *extra; /* "Name: value" lines from -H */
    size_t nextra;
    const char *marker;        /* X-Switchyard-Probe value (NULL: none) */
    const char *reflect_token; /* X-Switchyard-Reflect-Token (NULL: none) */
    char key[25];              /* filled by the caller (sy_ws_make_key) */
} sy_probe_ws_req;

/* Write the handshake request into out. Returns its length, or 0 when cap is too small. */
size_t sy_probe_ws_request(char *out, size_t cap, const sy_probe_ws_req *rq);

typedef struct sy_probe_ws_result {
    int switched; /* 101 with a valid enough answer to speak frames */
    int deflate;  /* permessage-deflate was accepted */
    int server_no_context_takeover;
    char subprotocol[64];
    char extensions[128];
} sy_probe_ws_result;

/* Check a complete response head against the request: RFC 6455 §4.1-4.2 and RFC 9110 §7.8,
 * with likely causes named from what the response shows (status, Server, Via, body). body is
 * the snippet of a non-101 answer (may be NULL). */
void sy_probe_ws_check(sy_probe_report *r, const char *path, const sy_probe_ws_req *rq,
                       const sy_probe_head *h, const sy_probe_body *body, sy_probe_ws_result *out);
/* Validate one Sec-WebSocket-Extensions response value against our offer (permessage-deflate
 * with client_max_window_bits when offer_deflate). Returns 1 when it accepts
 * permessage-deflate, 0 when it lists nothing, -1 invalid (*why: static text). */
int sy_probe_ws_ext_check(const char *value, size_t len, int offer_deflate, int *no_ctx,
                          const char **why);

/* ---- WebSocket over HTTP/1.1: after the 101 ---- */

/* Frames from the probe: masked with mask (NULL sends an unmasked frame, which only the
 * security check does). Returns the frame length, 0 when cap is too small (payload <= 125). */
size_t sy_probe_ws_frame(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len,
                         const uint8_t mask[4]);

#define SY_PROBE_FLOOD_BYTES (4u << 20) /* unprompted bytes that count as a flood */

typedef struct sy_probe_ws_sess {
    sy_ws_parser parser;
    int deflate;
    /* what the probe sent and now waits for */
    uint8_t msg[64];
    size_t msg_len;
    int msg_sent;
    uint8_t ping[16];
    size_t ping_len;
    int ping_sent;
    int close_sent;
    /* what arrived */
    int got_echo, echo_match, echo_compressed;
    int got_pong, pong_match;
    int got_close;
    uint16_t close_code;
    char close_reason[128];
    uint64_t rx_bytes;    /* all bytes fed */
    uint64_t rx_unasked;  /* bytes fed before anything was sent */
    uint64_t rx_messages; /* whole data messages */
    uint64_t rx_pings;
    int flood;
    /* the message being received (its first bytes) */
    uint8_t cur[256];
    size_t cur_len;
    uint64_t cur_total;
    int cur_opcode, cur_compressed;
    uint32_t utf8_state;
    /* a server ping the driver must answer (pong payload) */
    int pong_due;
    uint8_t pong_payload[125];
    size_t pong_payload_len;
    /* the first bytes after the 101 (what a broken server sends instead of frames) */
    uint8_t first[16];
    size_t first_len;
    /* failure */
    int error;
    uint16_t error_code;
    char error_detail[160];
} sy_probe_ws_sess;

void sy_probe_ws_sess_init(sy_probe_ws_sess *s, int deflate);
/* Note what the probe sent (so replies can be matched). */
void sy_probe_ws_sess_sent(sy_probe_ws_sess *s, int opcode, const void *payload, size_t len);
/* Feed bytes from the server. Returns the bytes consumed (all of them, unless an error stops
 * the parse: then s->error is set and the rest is ignored). */
size_t sy_probe_ws_sess_feed(sy_probe_ws_sess *s, uint8_t *in, size_t len);
/* After s->error: what the bytes say about the cause (static text), or NULL. */
const char *sy_probe_ws_sess_hint(const sy_probe_ws_sess *s);
/* The session is over: free what the parser may still hold (a control frame cut short). */
void sy_probe_ws_sess_free(sy_probe_ws_sess *s);

/* ---- what a reflect route saw ---- */

/* body: the reflect route's answer (the request head as the server received it). sent: the
 * head the probe sent. Adds PROXY_* findings naming stripped, rewritten and added fields
 * and the hop's HTTP version; server is the answer's Server field (names the hop) or NULL.
 * Returns 1 when the reflection was ours (marker found), 0 otherwise. */
int sy_probe_reflect_check(sy_probe_report *r, const char *path, const char *body, size_t body_len,
                           const char *sent, size_t sent_len, const char *marker,
                           const char *server);

/* ---- TLS facts (gathered by the driver) ---- */

typedef enum sy_probe_tls_verify {
    SY_PROBE_TLS_OK = 0,
    SY_PROBE_TLS_EXPIRED,
    SY_PROBE_TLS_NOT_YET_VALID,
    SY_PROBE_TLS_SELF_SIGNED,
    SY_PROBE_TLS_UNKNOWN_ISSUER,
    SY_PROBE_TLS_OTHER,
} sy_probe_tls_verify;

typedef struct sy_probe_tls_info {
    int version; /* 0x0303 TLS 1.2, 0x0304 TLS 1.3 */
    char version_name[16];
    char cipher[64];
    char alpn_offered[64]; /* comma-separated */
    char alpn[32];         /* selected, "" when none */
    char subject[160];
    char issuer[160];
    int64_t not_after, now; /* seconds since the epoch; not_after 0 when unknown */
    sy_probe_tls_verify verify;
    char verify_text[128]; /* the verifier's own words */
    int host_ok;           /* the certificate names the host */
    char host[300];
    int insecure; /* --insecure: certificate problems are reported as info */
} sy_probe_tls_info;

void sy_probe_tls_check(sy_probe_report *r, const char *path, const sy_probe_tls_info *t);
/* The ALPN protocol a server's handshake message selects: msg is a whole ServerHello (type 2)
 * or EncryptedExtensions (type 8) message with its 4-byte header, as the TLS library hands it
 * over. Writes it (NUL-terminated, cut to cap) and returns 1, or returns 0 when the message
 * selects none or is not one of those. Lets the driver name the protocol when the TLS library
 * refuses the handshake because of it. */
int sy_probe_tls_alpn_in_hello(const uint8_t *msg, size_t len, char *out, size_t cap);
/* Non-zero when proto is in the comma-separated offer. */
int sy_probe_tls_alpn_offered(const char *offer, const char *proto);

/* ---- HTTP/2 (h2c upgrade, prior knowledge, ALPN, RFC 8441): events from the driver ---- */

enum { SY_PROBE_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL = 8 };

/* base64url (no padding) of a SETTINGS payload for the HTTP2-Settings field. Returns the
 * length written (NUL-terminated), 0 when cap is too small. */
size_t sy_probe_h2_settings_b64(char *out, size_t cap, const uint16_t *ids, const uint32_t *vals,
                                size_t n);
/* The HTTP/1.1 request asking to switch to h2c. conn_lists_settings: whether Connection names
 * HTTP2-Settings (the security check leaves it out). */
size_t sy_probe_h2c_request(char *out, size_t cap, const char *host, const char *target,
                            const char *settings_b64, int conn_lists_settings);

typedef enum sy_probe_h2_mode {
    SY_PROBE_H2_UPGRADE,
    SY_PROBE_H2_PRIOR,
    SY_PROBE_H2_ALPN,
    SY_PROBE_H2_WS, /* RFC 8441 extended CONNECT */
} sy_probe_h2_mode;

/* Where the byte scanner is in the server's HTTP/2 frame stream (kept across walks on one
 * connection). */
typedef struct sy_probe_h2_scan {
    uint8_t hdr[9];
    uint8_t hdr_len;
    uint8_t type, flags;
    uint8_t entry[6]; /* a SETTINGS entry in pieces */
    uint8_t entry_len;
    uint32_t stream;
    uint32_t left; /* payload bytes of the current frame still to come */
    uint64_t frames;
} sy_probe_h2_scan;

typedef struct sy_probe_h2 {
    /* what the frame scanner (sy_probe_h2_scan_feed) saw, independent of the h2 library */
    sy_probe_h2_scan scan;
    int first_type;          /* type of the server's first frame, -1 none yet */
    uint8_t first_bytes[16]; /* the first bytes the server sent on the HTTP/2 connection */
    size_t first_len;
    char bad_setting[160]; /* the first invalid SETTINGS value, in words ("" none) */
    uint32_t max_stream;   /* the highest stream the probe opened (the driver sets it) */
    uint32_t stray_stream; /* a response on a stream the probe never opened (0 none) */
    int stray_type;
    uint32_t expect_stream; /* the stream whose answer is awaited */
    uint32_t goaway_last;   /* the GOAWAY's last stream ID */
    int got_settings;
    int enable_connect_protocol; /* -1 not sent */
    int status;                  /* :status of our stream, 0 none */
    int goaway;
    uint32_t goaway_code;
    char goaway_debug[96];
    int rst;
    uint32_t rst_code;
    int proto_error; /* the h2 library rejected what the server sent */
    char proto_detail[128];
    int timed_out;
    int closed;    /* the connection ended before the stream did */
    int echo_sent; /* RFC 8441: a WebSocket message (and a ping) sent on the stream */
    int echo_ok;   /* ... and the message came back */
    int got_pong;  /* ... the ping was answered */
    int ws_error;  /* ... what came back is not valid WebSocket frames */
    char ws_error_detail[160];
    const char *ws_error_hint;
    int stream_ended; /* the stream ended (END_STREAM or closed) */
    uint64_t data_bytes;
} sy_probe_h2;

void sy_probe_h2_init(sy_probe_h2 *h);
/* The server's bytes on an HTTP/2 connection, as they arrive (before the h2 library sees
 * them): notes the first frame, checks SETTINGS values (RFC 9113 §6.5.2, RFC 8441 §3) and
 * HEADERS/DATA on streams the probe never opened. */
void sy_probe_h2_scan_feed(sy_probe_h2 *h, const uint8_t *p, size_t n);
const char *sy_probe_h2_frame_name(int type);
/* Non-zero once the scanner knows the connection is broken (invalid SETTINGS, a first frame
 * that is not SETTINGS, HTTP/1 bytes, an answer on a stream never opened): no need to wait. */
int sy_probe_h2_broken(const sy_probe_h2 *h);
void sy_probe_h2_setting(sy_probe_h2 *h, uint16_t id, uint32_t value);
/* Findings for one walk; returns 1 when the walk succeeded. */
int sy_probe_h2_check(sy_probe_report *r, const char *path, sy_probe_h2_mode mode,
                      const sy_probe_h2 *h);
/* The answer to an h2c upgrade request (head complete). Returns 1 when it switched (and the
 * 101 is valid enough to go on), 0 otherwise; adds findings. security: the request left
 * HTTP2-Settings out of Connection (or went over TLS): switching is then the finding. */
int sy_probe_h2c_check_101(sy_probe_report *r, const char *path, const sy_probe_head *h,
                           int security_variant, int over_tls);
const char *sy_probe_h2_error_name(uint32_t code);

#endif
