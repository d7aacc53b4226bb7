/* Sans-I/O HTTP/1.1 request head parser (RFC 9112), chunked body decoder and the semantic
 * checks that decide message framing. Pure functions over caller buffers: nothing here reads
 * a socket or allocates. */
#ifndef SY_HTTP1_PARSE_H
#define SY_HTTP1_PARSE_H

#include "http/field.h"

/* A parsed header field: the version-neutral sy_field, slices into the parsed buffer. */
typedef sy_field sy_http1_header;

typedef struct sy_http1_request {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version;        /* 0 or 1 */
    sy_http1_header *headers; /* caller's array */
    size_t num_headers;
} sy_http1_request;

/* A limit of 0 means "no limit"; limits == NULL means no limits at all (max_headers is still
 * bounded by the array capacity). */
typedef struct sy_http1_limits {
    size_t max_request_line; /* bytes of the request line without CRLF; beyond: 414 */
    size_t max_head;         /* bytes of the whole head incl. final CRLF; beyond: 431 */
    size_t max_headers;      /* header fields; beyond: 431 (also bounded by the array capacity) */
} sy_http1_limits;

/*
 * Parse a request head from buf[0..len). Stateless: call again from the start with more
 * bytes. prev_len is the len of the previous call on the same buffer (0 the first time): the
 * parser only looks for the end of the head in the new bytes (minus 3) before doing the real
 * parse, so a slowloris feeding one byte at a time costs O(n) overall.
 *
 * headers/cap: caller array that receives header slices.
 *
 * Returns:
 *   > 0  the head is complete; the value is its length including the final CRLF CRLF.
 *   0    incomplete (no error so far, within limits).
 *   < 0  SY_EHTTP_SYNTAX (400), SY_EHTTP_URI_LONG (414), SY_EHTTP_HEAD_LARGE (431),
 *        SY_EHTTP_VERSION (505). *detail gets a static sentence saying what was wrong.
 *
 * Strictness: request-line = method SP request-target SP HTTP-version CRLF with single SPs;
 * method is a token; target has no CTLs/SP (any visible ASCII + obs-text); version HTTP/1.0
 * or HTTP/1.1 (HTTP/x.y other → 505, garbage → 400). Each line ends in CRLF: a bare LF or bare
 * CR anywhere → 400. Header name is a token immediately followed by ':' (whitespace before the
 * colon → 400); value is field-content: VCHAR, obs-text, SP, HTAB; NUL/CTL → 400; obs-fold
 * (a line starting with SP/HTAB) → 400. An empty line before the request line is tolerated
 * (RFC 9112 §2.2: at least one CRLF may be ignored) up to 2 of them; they count in the
 * returned length and in max_head.
 *
 * Limits are enforced while the head is still incomplete: 414 as soon as max_request_line + 1
 * bytes of the request line are there without its CR; 431 as soon as max_head bytes are there
 * without the end of the head, or max_headers + 1 field lines (a whole parse reports it at the
 * first byte of the extra field line, a prev_len call once that line ends). Bytes past
 * max_head are never looked at. A bare CR or LF is reported as soon as it arrives. Other
 * syntax errors are found by a whole parse (prev_len == 0) wherever they are, but a prev_len
 * call only re-parses once the head can be complete, so it may report them later; each answer
 * is final either way (a later call on more bytes never turns an error into success).
 */
ssize_t sy_http1_parse_request(const char *buf, size_t len, size_t prev_len,
                               const sy_http1_limits *limits, sy_http1_request *req,
                               sy_http1_header *headers, size_t cap, const char **detail);

/* Message framing and connection semantics derived from a parsed head. */
typedef enum sy_http1_body_kind {
    SY_HTTP1_BODY_NONE = 0,
    SY_HTTP1_BODY_LENGTH,
    SY_HTTP1_BODY_CHUNKED
} sy_http1_body_kind;

typedef struct sy_http1_info {
    sy_http1_body_kind body;
    uint64_t content_length;        /* when body == LENGTH */
    unsigned keep_alive : 1;        /* persistent after this request (version + Connection) */
    unsigned expect_continue : 1;   /* Expect: 100-continue */
    unsigned conn_upgrade : 1;      /* Connection contains the "upgrade" token */
    const sy_http1_header *host;    /* the Host field, or NULL */
    const sy_http1_header *upgrade; /* the first Upgrade field, or NULL */
    size_t upgrade_count;           /* number of Upgrade fields */
    const char *authority;          /* absolute-form target: its authority (it wins over Host,
                                       RFC 9112 §3.2.2), else NULL */
    size_t authority_len;
} sy_http1_info;

/*
 * Check the head's framing and fill *info. Returns 0, or:
 *   SY_EHTTP_FRAMING (400): Transfer-Encoding together with Content-Length; differing
 *     Content-Length values (identical repeats, as separate fields or a list, are accepted);
 *     an invalid Content-Length (not 1*DIGIT, or overflowing uint64); Transfer-Encoding in an
 *     HTTP/1.0 request; a Transfer-Encoding whose final coding is not chunked; chunked
 *     applied more than once; an empty Transfer-Encoding.
 *   SY_EHTTP_CODING (501): a transfer coding other than chunked/gzip/deflate/compress
 *     (x-gzip, x-compress too); a known but unsupported coding before chunked also gives 501.
 *   SY_EHTTP_SYNTAX (400): HTTP/1.1 without Host, several Host fields, an invalid Host; an
 *     absolute-form target whose scheme is not http/https or whose authority is empty,
 *     invalid or carries userinfo (a valid one is returned in info->authority).
 *   SY_EHTTP_EXPECT (417): an Expect other than 100-continue.
 * Transfer-Encoding and Connection values are token lists; several fields combine in order.
 * Errors are checked in the order listed (framing, then Host, then coding, then Expect). The
 * Host rules (single, valid) apply to HTTP/1.0 too; only its presence is optional there.
 * On SY_EHTTP_CODING the framing is sound and *info is complete (body == CHUNKED), so a caller
 * may read and discard the body; on the other errors *info is valid except for body.
 * Connection elements that are not tokens are ignored; Expect is a list whose every element
 * must be 100-continue (an empty Expect is ignored).
 */
int sy_http1_analyze(const sy_http1_request *req, sy_http1_info *info, const char **detail);

/* Token lists, tchar and field lookup are HTTP semantics, shared by every version: see
 * http/field.h. */

/* Status code for a parser/analyzer error (400, 413, 414, 417, 431, 501, 505). */
int sy_http1_error_status(int err);

/* Chunked transfer-coding decoder (RFC 9112 §7.1). Resumable over any split of the input.
 * Zero it (or call sy_chunked_init) before the first feed. */
typedef struct sy_chunked {
    uint8_t state;
    uint8_t size_digits;
    uint64_t remaining;   /* data bytes left in the current chunk */
    size_t line_bytes;    /* bytes seen on the current size/ext/trailer line */
    size_t trailer_bytes; /* bytes of trailer section so far */
    size_t max_line;      /* cap on a chunk-size line incl. extensions, without CRLF (4096) */
    size_t max_trailer;   /* cap on the trailer section incl. its final CRLF (8192) */
    size_t ext_bytes;     /* bytes of chunk extensions so far, all chunks */
    size_t max_ext;       /* cap on ext_bytes for the whole body (16384) */
} sy_chunked;

typedef enum sy_chunked_ev {
    SY_CHUNKED_NEED_MORE = 0, /* consumed all input, nothing to report */
    SY_CHUNKED_DATA,          /* body bytes in *data, *data_len (slice into the input) */
    SY_CHUNKED_DONE,          /* the last chunk and trailers were read */
} sy_chunked_ev;

void sy_chunked_init(sy_chunked *c);
/*
 * Feed bytes. Returns the number of bytes consumed (>= 0) and sets *ev; or a negative
 * SY_EHTTP_CHUNK with *detail set. At most one event per call: call again with the rest.
 * After DONE, the returned count ends exactly after the final CRLF; later bytes belong to
 * the next message.
 * Rejected (400): non-hex size, size overflowing 64 bits (more than 16 hex digits after
 * leading zeros), missing CRLF after data, bare LF/CR, invalid chunk-ext syntax
 * (;name[=token|quoted-string] with BWS), over-long lines, invalid trailer field lines,
 * a trailer section over max_trailer, chunk extensions adding up to more than max_ext over
 * the whole body (each line is bounded by max_line, but a body of one-byte chunks with 4 KiB
 * of extensions each would cost 4096 times its size to read: as llhttp since
 * CVE-2024-22019). Trailer fields are validated and discarded.
 * A max_line, max_trailer or max_ext of 0 means the default. BWS is only allowed where the grammar
 * puts it (around ";" and "="): "5 \r\n" is rejected. After DONE a feed returns 0 with DONE;
 * after an error every feed fails again.
 */
ssize_t sy_chunked_feed(sy_chunked *c, const char *in, size_t len, sy_chunked_ev *ev,
                        const char **data, size_t *data_len, const char **detail);

#endif
