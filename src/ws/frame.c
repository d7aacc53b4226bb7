/* WebSocket frame codec (RFC 6455 §5).
 *
 * The parser has three states: reading a frame header (2..14 bytes, gathered in p->hdr when
 * it arrives split, parsed straight from the input otherwise), passing a data frame's payload
 * through, and a control frame's payload: unmasked in place when it is wholly in the input,
 * else gathered in p->ctl, allocated for it. The RFC rules are checked as
 * soon as the bytes that carry them are known: the first two header bytes (opcode, RSV,
 * FIN, mask bit, 7-bit length) before waiting for the rest of the header. Each call returns
 * after at most one event, so a caller that loops until the input is used up sees every
 * event in order. */
#include "ws/frame.h"

#include "ws/mask.h"
#include "ws/utf8.h"

enum {
    ST_HEADER = 0, /* must be 0: a zeroed parser starts here */
    ST_DATA,       /* payload of a TEXT/BINARY/CONT frame: handed out in place */
    ST_CTL,        /* payload of a control frame: in place, or gathered in p->ctl */
    ST_FAILED,     /* a violation was reported; the connection is being failed */
};

#define B0_FIN 0x80
#define B0_RSV 0x70
#define B0_OPCODE 0x0F
#define B1_MASK 0x80
#define B1_LEN 0x7F

static const char *const reserved_opcode[16] = {
    [0x3] = "reserved opcode 0x3", [0x4] = "reserved opcode 0x4", [0x5] = "reserved opcode 0x5",
    [0x6] = "reserved opcode 0x6", [0x7] = "reserved opcode 0x7", [0xB] = "reserved opcode 0xB",
    [0xC] = "reserved opcode 0xC", [0xD] = "reserved opcode 0xD", [0xE] = "reserved opcode 0xE",
    [0xF] = "reserved opcode 0xF",
};

/* [kind][bit]: kind 0 = first frame of a message, 1 = continuation, 2 = control. */
static const char *const rsv_detail[3][3] = {
    {"RSV1 set without a negotiated extension", "RSV2 set without a negotiated extension",
     "RSV3 set without a negotiated extension"},
    {"RSV1 set on a continuation frame", "RSV2 set on a continuation frame",
     "RSV3 set on a continuation frame"},
    {"RSV1 set on a control frame", "RSV2 set on a control frame", "RSV3 set on a control frame"},
};

static const char *rsv_error(int kind, unsigned rsv)
{
    int bit = (rsv & SY_WS_RSV1) ? 0 : (rsv & SY_WS_RSV2) ? 1 : 2;
    return rsv_detail[kind][bit];
}

/* Checks everything the first two header bytes decide. Returns NULL or the violation. */
static const char *check_start(const sy_ws_parser *p, unsigned b0, unsigned b1)
{
    unsigned op = b0 & B0_OPCODE, rsv = b0 & B0_RSV;
    if (op >= SY_WS_OP_CLOSE) {
        if (sy_unlikely(op > SY_WS_OP_PONG))
            return reserved_opcode[op];
        if (sy_unlikely(rsv))
            return rsv_error(2, rsv);
        if (sy_unlikely(!(b0 & B0_FIN)))
            return "fragmented control frame";
        if (sy_unlikely((b1 & B1_LEN) > 125))
            return "control frame longer than 125 bytes";
    } else if (op == SY_WS_OP_CONT) {
        if (sy_unlikely(!p->in_message))
            return "continuation frame with no message in progress";
        if (sy_unlikely(rsv))
            return rsv_error(1, rsv);
    } else {
        if (sy_unlikely(op > SY_WS_OP_BINARY))
            return reserved_opcode[op];
        if (sy_unlikely(p->in_message))
            return "new data frame while a fragmented message is in progress";
        if (sy_unlikely(rsv & ~(unsigned)p->allowed_rsv))
            return rsv_error(0, rsv & ~(unsigned)p->allowed_rsv);
    }
    if (sy_unlikely(!(b1 & B1_MASK) != !p->expect_masked))
        return p->expect_masked ? "client frame not masked" : "server frame masked";
    return NULL;
}

/* Total header length once the first two bytes are known. */
static inline unsigned header_len(unsigned b1)
{
    unsigned l7 = b1 & B1_LEN;
    return 2 + ((b1 & B1_MASK) ? 4 : 0) + (l7 < 126 ? 0 : l7 == 126 ? 2 : 8);
}

static uint64_t load_be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* Takes in a complete, start-checked header. Returns NULL or the violation. */
static const char *begin_frame(sy_ws_parser *p, const uint8_t *h)
{
    unsigned b0 = h[0], b1 = h[1], l7 = b1 & B1_LEN;
    uint64_t len = l7;
    const uint8_t *key = h + 2;
    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        key = h + 4;
        if (sy_unlikely(len < 126))
            return "non-minimal payload length encoding";
    } else if (l7 == 127) {
        len = load_be64(h + 2);
        key = h + 10;
        if (sy_unlikely(len >> 63))
            return "64-bit payload length with the most significant bit set";
        if (sy_unlikely(len <= 0xFFFF))
            return "non-minimal payload length encoding";
    }
    p->masked = (b1 & B1_MASK) != 0;
    if (p->masked)
        memcpy(p->mask, key, 4);
    p->mask_off = 0;
    p->opcode = b0 & B0_OPCODE;
    p->fin = (b0 & B0_FIN) != 0;
    p->remaining = len;
    if (p->opcode >= SY_WS_OP_CLOSE) {
        p->ctl_len = 0;
        p->state = ST_CTL;
    } else {
        if (p->opcode != SY_WS_OP_CONT) {
            p->in_message = 1;
            p->msg_opcode = p->opcode;
            p->msg_compressed = (b0 & SY_WS_RSV1) != 0;
            p->msg_started = 0;
        }
        p->state = ST_DATA;
    }
    return NULL;
}

/* Reports n payload bytes of the current data frame at data (already unmasked). */
static inline void data_event(sy_ws_parser *p, sy_ws_event *ev, uint8_t *data, size_t n)
{
    ev->type = SY_WS_EV_DATA;
    ev->opcode = p->msg_opcode;
    ev->msg_start = !p->msg_started;
    ev->compressed = p->msg_compressed & 1u;
    ev->data = data;
    ev->len = n;
    p->msg_started = 1;
    if (p->remaining == 0) {
        p->state = ST_HEADER;
        if (p->fin) {
            p->in_message = 0;
            ev->msg_end = 1;
        }
    }
}

/* The control frame's payload (len bytes at data, unmasked) is complete: validate it and
 * report it. */
static int control_event(sy_ws_parser *p, sy_ws_event *ev, uint8_t *data, size_t len,
                         const char **detail)
{
    ev->data = data;
    ev->len = len;
    p->state = ST_HEADER;
    if (p->opcode == SY_WS_OP_PING) {
        ev->type = SY_WS_EV_PING;
        return 0;
    }
    if (p->opcode == SY_WS_OP_PONG) {
        ev->type = SY_WS_EV_PONG;
        return 0;
    }
    ev->type = SY_WS_EV_CLOSE;
    if (len == 0) {
        ev->close_code = 1005;
        ev->reason = (const char *)data;
        ev->reason_len = 0;
        return 0;
    }
    if (len == 1) {
        *detail = "close frame with a 1-byte payload";
        return SY_EWS_PROTOCOL;
    }
    unsigned code = (unsigned)data[0] << 8 | data[1];
    if (!sy_ws_close_code_valid(code)) {
        *detail = "invalid close code";
        return SY_EWS_PROTOCOL;
    }
    if (!sy_utf8_valid(data + 2, len - 2)) {
        *detail = "close reason is not valid UTF-8";
        return SY_EWS_UTF8;
    }
    ev->close_code = (uint16_t)code;
    ev->reason = (const char *)data + 2;
    ev->reason_len = len - 2;
    return 0;
}

void sy_ws_parser_init(sy_ws_parser *p, int is_server, uint8_t allowed_rsv)
{
    memset(p, 0, sizeof(*p));
    p->expect_masked = is_server ? 1 : 0;
    p->allowed_rsv = allowed_rsv & B0_RSV;
    p->state = ST_HEADER;
}

uint64_t sy_ws_parser_data_left(const sy_ws_parser *p)
{
    return p->state == ST_DATA ? p->remaining : 0;
}

void sy_ws_parser_trim(sy_ws_parser *p)
{
    if (p->ctl && p->state != ST_CTL) {
        sy__free(p->ctl);
        p->ctl = NULL;
    }
}

void sy_ws_parser_release(sy_ws_parser *p)
{
    sy__free(p->ctl);
    p->ctl = NULL;
}

static ssize_t fail(sy_ws_parser *p, int err, const char *why, uint16_t *close_code,
                    const char **detail)
{
    p->state = ST_FAILED;
    if (close_code)
        *close_code = err == SY_EWS_UTF8 ? 1007 : err == SY_ENOMEM ? 1011 : 1002;
    if (detail)
        *detail = why;
    return err;
}

ssize_t sy_ws_parse(sy_ws_parser *p, uint8_t *in, size_t len, sy_ws_event *ev, uint16_t *close_code,
                    const char **detail)
{
    size_t off = 0;
    const char *why;
    memset(ev, 0, sizeof(*ev));

    if (p->state == ST_HEADER) {
        const uint8_t *h;
        if (sy_likely(p->hdr_len == 0 && len >= 2)) {
            /* Common case: the header starts at in[0]. Check it before anything else. */
            why = check_start(p, in[0], in[1]);
            if (sy_unlikely(why != NULL))
                return fail(p, SY_EWS_PROTOCOL, why, close_code, detail);
            unsigned need = header_len(in[1]);
            if (sy_unlikely(len < need)) {
                memcpy(p->hdr, in, len);
                p->hdr_len = (uint8_t)len;
                p->hdr_need = (uint8_t)need;
                return (ssize_t)len;
            }
            h = in;
            off = need;
        } else {
            /* The header arrives in pieces: gather it in p->hdr. */
            if (p->hdr_len < 2) {
                while (off < len && p->hdr_len < 2)
                    p->hdr[p->hdr_len++] = in[off++];
                if (p->hdr_len < 2)
                    return (ssize_t)off;
                why = check_start(p, p->hdr[0], p->hdr[1]);
                if (why != NULL)
                    return fail(p, SY_EWS_PROTOCOL, why, close_code, detail);
                p->hdr_need = (uint8_t)header_len(p->hdr[1]);
            }
            size_t n = SY_MIN((size_t)(p->hdr_need - p->hdr_len), len - off);
            memcpy(p->hdr + p->hdr_len, in + off, n);
            p->hdr_len = (uint8_t)(p->hdr_len + n);
            off += n;
            if (p->hdr_len < p->hdr_need)
                return (ssize_t)off;
            h = p->hdr;
            p->hdr_len = 0;
            p->hdr_need = 0;
        }
        why = begin_frame(p, h);
        if (sy_unlikely(why != NULL))
            return fail(p, SY_EWS_PROTOCOL, why, close_code, detail);
        if (p->remaining == 0) {
            /* Empty frames are reported at once so message boundaries are seen. */
            if (p->state == ST_DATA) {
                data_event(p, ev, in + off, 0);
                return (ssize_t)off;
            }
            int err = control_event(p, ev, in + off, 0, &why);
            if (err < 0)
                return fail(p, err, why, close_code, detail);
            return (ssize_t)off;
        }
    }

    size_t avail = len - off;
    if (sy_likely(p->state == ST_DATA)) {
        if (avail == 0)
            return (ssize_t)off;
        size_t n = p->remaining < avail ? (size_t)p->remaining : avail;
        uint8_t *data = in + off;
        int ascii = 0;
        if (p->masked && p->msg_opcode == SY_WS_OP_TEXT && !p->msg_compressed) {
            /* Text: note whether the piece is all ASCII while unmasking it. */
            uint64_t hi = 0;
            p->mask_off = sy_ws_mask_hi(data, n, p->mask, p->mask_off, &hi);
            ascii = !(hi & UINT64_C(0x8080808080808080));
        } else if (p->masked) {
            p->mask_off = sy_ws_mask(data, n, p->mask, p->mask_off);
        }
        p->remaining -= n;
        data_event(p, ev, data, n);
        ev->ascii = (unsigned)ascii;
        return (ssize_t)(off + n);
    }
    if (p->state == ST_CTL) {
        size_t n = p->remaining < avail ? (size_t)p->remaining : avail;
        uint8_t *data = in + off;
        if (p->ctl_len == 0 && n == p->remaining) {
            /* The whole payload is here: unmask it in place, like data. */
            if (p->masked)
                sy_ws_mask(data, n, p->mask, 0);
            p->remaining = 0;
            int err = control_event(p, ev, data, n, &why);
            if (err < 0)
                return fail(p, err, why, close_code, detail);
            return (ssize_t)(off + n);
        }
        if (n == 0)
            return (ssize_t)off; /* the payload may yet come whole */
        if (!p->ctl && !(p->ctl = sy__malloc(125)))
            return fail(p, SY_ENOMEM, "out of memory", close_code, detail);
        uint8_t *dst = p->ctl + p->ctl_len;
        if (p->masked)
            p->mask_off = sy_ws_mask_copy(dst, data, n, p->mask, p->mask_off);
        else
            memcpy(dst, data, n);
        p->ctl_len = (uint8_t)(p->ctl_len + n);
        p->remaining -= n;
        off += n;
        if (p->remaining > 0)
            return (ssize_t)off;
        int err = control_event(p, ev, p->ctl, p->ctl_len, &why);
        if (err < 0)
            return fail(p, err, why, close_code, detail);
        return (ssize_t)off;
    }
    return fail(p, SY_EWS_PROTOCOL, "frame parser used after a protocol error", close_code, detail);
}

size_t sy_ws_frame_header(uint8_t out[14], uint8_t opcode, int fin, uint8_t rsv, uint64_t len,
                          const uint8_t *mask)
{
    uint8_t mbit = mask ? B1_MASK : 0;
    size_t n;
    out[0] = (uint8_t)((fin ? B0_FIN : 0) | (rsv & B0_RSV) | (opcode & B0_OPCODE));
    if (len <= 125) {
        out[1] = (uint8_t)(mbit | len);
        n = 2;
    } else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

int sy_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}
