/* Sans-I/O WebSocket frame codec (RFC 6455 §5). The parser is pushed bytes and reports one
 * event per call into an out-struct; payloads are unmasked in place and handed out as slices
 * of the caller's buffer (a control frame that arrives split is gathered in a small buffer
 * the parser allocates for it). The encoder writes frame headers into caller space. */
#ifndef SY_WS_FRAME_H
#define SY_WS_FRAME_H

#include "core/common.h"

enum {
    SY_WS_OP_CONT = 0x0,
    SY_WS_OP_TEXT = 0x1,
    SY_WS_OP_BINARY = 0x2,
    SY_WS_OP_CLOSE = 0x8,
    SY_WS_OP_PING = 0x9,
    SY_WS_OP_PONG = 0xA,
};

enum { SY_WS_RSV1 = 0x40, SY_WS_RSV2 = 0x20, SY_WS_RSV3 = 0x10 };

typedef enum sy_ws_ev_type {
    SY_WS_EV_NONE = 0, /* consumed everything given, no event yet */
    SY_WS_EV_DATA,     /* a piece of a data message's payload (may be empty) */
    SY_WS_EV_PING,     /* a whole ping; payload in data/len (<= 125) */
    SY_WS_EV_PONG,     /* a whole pong */
    SY_WS_EV_CLOSE,    /* a whole, valid close frame: code (1005 when empty) and reason */
} sy_ws_ev_type;

typedef struct sy_ws_event {
    sy_ws_ev_type type;
    /* DATA: opcode of the message (TEXT/BINARY; continuation frames report the message's
     * opcode), msg_start on the first piece of a message, msg_end on the last piece of the
     * last frame (FIN set and payload exhausted), compressed when RSV1 was set on the
     * message's first frame. */
    uint8_t opcode;
    unsigned msg_start : 1;
    unsigned msg_end : 1;
    unsigned compressed : 1;
    /* DATA of a text message, masked (server side): every byte of this piece is ASCII, seen
     * while unmasking it, so a UTF-8 check at a character boundary can skip it. 0 when
     * unknown (unmasked frames, binary, compressed). */
    unsigned ascii : 1;
    uint8_t *data; /* slice of the input, unmasked in place, or (a control frame that arrived
                      split) the parser's buffer, valid until the next call or trim */
    size_t len;
    uint16_t close_code; /* CLOSE: 1005 when the payload was empty */
    const char *reason;  /* CLOSE: points into data (not NUL-terminated) */
    size_t reason_len;
} sy_ws_event;

typedef struct sy_ws_parser {
    uint64_t remaining; /* payload bytes left in the current frame */
    /* A control frame whose payload arrives in pieces is gathered here (allocated then, freed
     * by sy_ws_parser_trim once it was reported): one wholly in the input is unmasked in
     * place, so an idle parser holds no buffer. */
    uint8_t *ctl;
    uint8_t mask[4];
    uint8_t hdr[14];
    uint8_t hdr_len;
    uint8_t hdr_need;
    uint8_t ctl_len;
    /* configuration: RSV bits allowed on a message's first frame (SY_WS_RSV1 with
     * permessage-deflate); never on continuation/control frames */
    uint8_t allowed_rsv;
    uint8_t opcode;     /* current frame's opcode */
    uint8_t msg_opcode; /* of the fragmented message being received */
    /* Bytes, not bits: they fill what would be padding, and every frame reads them. */
    uint8_t expect_masked; /* configuration: server side (client frames must be masked) */
    uint8_t state;
    uint8_t fin;
    uint8_t masked;
    uint8_t mask_off;
    uint8_t in_message; /* a fragmented data message is open */
    uint8_t msg_compressed;
    uint8_t msg_started; /* first piece of the current message already reported */
} sy_ws_parser;

/* is_server: 1 to parse client frames (must be masked), 0 to parse server frames (must not). */
void sy_ws_parser_init(sy_ws_parser *p, int is_server, uint8_t allowed_rsv);
/* Free the control-frame buffer unless a split control frame is still being gathered (the
 * payload of a reported control event is invalid after this). */
void sy_ws_parser_trim(sy_ws_parser *p);
/* Payload bytes still to come of the data frame in progress (its header parsed, part of
 * its payload not yet fed), or 0 when the parser is between frames or in a control frame. */
uint64_t sy_ws_parser_data_left(const sy_ws_parser *p);
/* Free what the parser holds; it must be initialised again before use. */
void sy_ws_parser_release(sy_ws_parser *p);

/*
 * Feed bytes. Returns the number consumed (>= 0) and fills *ev with at most one event; call
 * again with the rest. Payload bytes in `in` are unmasked in place (hence non-const).
 * On a protocol violation returns SY_EWS_PROTOCOL (close code 1002) or SY_EWS_UTF8 (1007,
 * invalid close reason) and sets *close_code and *detail (static sentence). Violations:
 * reserved opcodes (3-7, 0xB-0xF); RSV bits not allowed (or on continuation/control frames);
 * control frames longer than 125 or without FIN; unmasked client frames / masked server
 * frames; 64-bit length with the MSB set; non-minimal length encoding (RFC 6455 says
 * "the minimal number of bytes MUST be used" for encoding — we enforce it on receive too);
 * a continuation frame with no message open; a new TEXT/BINARY frame while one is open;
 * a close payload of 1 byte; close codes outside 1000-1003, 1007-1014, 3000-4999;
 * a close reason that is not UTF-8 (SY_EWS_UTF8). SY_ENOMEM (close code 1011) when a split
 * control frame cannot be buffered.
 * Zero-length data frames produce a DATA event with len 0 (so message boundaries are seen).
 * After an error the parser must not be fed again.
 */
ssize_t sy_ws_parse(sy_ws_parser *p, uint8_t *in, size_t len, sy_ws_event *ev, uint16_t *close_code,
                    const char **detail);

/* Write a frame header for a payload of len bytes into out (at most 14 bytes) using the
 * minimal length encoding. rsv: SY_WS_RSV* bits. mask: 4-byte key for client frames or NULL.
 * Returns the header length. */
size_t sy_ws_frame_header(uint8_t out[14], uint8_t opcode, int fin, uint8_t rsv, uint64_t len,
                          const uint8_t *mask);

/* Valid close code to receive or send (1000-1003, 1007-1014, 3000-4999). */
int sy_ws_close_code_valid(unsigned code);

#endif
