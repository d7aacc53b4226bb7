/* Chunked transfer-coding decoder (RFC 9112 §7.1): a byte-driven state machine over the
 * chunk-size line, so any split of the input works; chunk data is handed out as slices of
 * the caller's input without copying.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val      = token / quoted-string
 */
#include "http1/parse.h"

#define C_TOKEN 0x01 /* tchar */
#define C_FIELD 0x02 /* field-content: VCHAR, obs-text, SP, HTAB */
#define C_QD 0x04    /* qdtext: HTAB, SP, 0x21, 0x23-0x5B, 0x5D-0x7E, obs-text */

// clang-format off
static const uint8_t ctab[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  6,  0,  0,  0,  0,  0,  0, /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 10 */
     6,  7,  2,  7,  7,  7,  7,  7,  6,  6,  7,  7,  6,  7,  7,  6, /* 20 */
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  6,  6,  6,  6,  6, /* 30 */
     6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, /* 40 */
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  2,  6,  7,  7, /* 50 */
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, /* 60 */
     7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  7,  6,  7,  0, /* 70 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* 80 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* 90 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* a0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* b0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* c0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* d0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* e0 */
     6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6, /* f0 */
};
// clang-format on

#define IS(c, cls) (ctab[(uint8_t)(c)] & (cls))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

enum {
    /* chunk-size line: every state before S_SIZE_LF belongs to it */
    S_SIZE0 = 0, /* first hex digit of chunk-size (a zeroed struct starts here) */
    S_SIZE,      /* more hex digits */
    S_BWS,       /* BWS that must lead to ";" */
    S_NAME0,     /* after ";": BWS then ext-name */
    S_NAME,      /* in ext-name */
    S_NAME_BWS,  /* BWS after ext-name: "=" or ";" next */
    S_VAL0,      /* after "=": BWS then token or quoted-string */
    S_VAL_TOK,   /* in a token value */
    S_QS,        /* in a quoted-string */
    S_QS_ESC,    /* after a backslash in a quoted-string */
    S_AFTER_QS,  /* after the closing quote */
    S_SIZE_LF,   /* CR seen, LF next */
    S_DATA,      /* remaining bytes of chunk-data */
    S_DATA_CR,   /* CRLF after chunk-data */
    S_DATA_LF,
    S_TR_LINE,  /* start of a trailer line, or of the final CRLF */
    S_TR_NAME,  /* in a trailer field name */
    S_TR_VALUE, /* in a trailer field value */
    S_TR_LF,    /* CR of a trailer line seen */
    S_END_LF,   /* CR of the final CRLF seen */
    S_DONE,
    S_FAILED
};

#define DEFAULT_MAX_LINE 4096
#define DEFAULT_MAX_TRAILER 8192
#define DEFAULT_MAX_EXT 16384

void sy_chunked_init(sy_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->max_line = DEFAULT_MAX_LINE;
    c->max_trailer = DEFAULT_MAX_TRAILER;
    c->max_ext = DEFAULT_MAX_EXT;
}

static int hexval(uint8_t ch)
{
    if ((unsigned)(ch - '0') < 10u)
        return ch - '0';
    ch |= 0x20;
    if ((unsigned)(ch - 'a') < 6u)
        return ch - 'a' + 10;
    return -1;
}

static ssize_t fail(sy_chunked *c, const char **detail, const char *msg)
{
    c->state = S_FAILED;
    if (detail)
        *detail = msg;
    return SY_EHTTP_CHUNK;
}

/* After chunk-size, a token value or a quoted-string: the line ends, or more extensions. */
static int after_element(char ch)
{
    if (IS_OWS(ch))
        return S_BWS;
    if (ch == ';')
        return S_NAME0;
    if (ch == '\r')
        return S_SIZE_LF;
    return -1;
}

ssize_t sy_chunked_feed(sy_chunked *c, const char *in, size_t len, sy_chunked_ev *ev,
                        const char **data, size_t *data_len, const char **detail)
{
    size_t max_line = c->max_line ? c->max_line : DEFAULT_MAX_LINE;
    size_t max_trailer = c->max_trailer ? c->max_trailer : DEFAULT_MAX_TRAILER;
    size_t max_ext = c->max_ext ? c->max_ext : DEFAULT_MAX_EXT;
    *ev = SY_CHUNKED_NEED_MORE;
    if (c->state == S_DONE) {
        *ev = SY_CHUNKED_DONE;
        return 0;
    }
    if (c->state == S_FAILED)
        return fail(c, detail, "chunked body already rejected");

    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        int next;
        if (c->state < S_SIZE_LF) {
            if (ch != '\r' && ++c->line_bytes > max_line)
                return fail(c, detail, "chunk-size line longer than the limit");
            /* Everything after the size on the line is extension (";", BWS, names, values). */
            if (c->state >= S_BWS && ch != '\r' && ++c->ext_bytes > max_ext)
                return fail(c, detail, "chunk extensions larger than the limit");
        } else if (c->state >= S_TR_LINE) {
            if (++c->trailer_bytes > max_trailer)
                return fail(c, detail, "chunked trailer section larger than the limit");
        }
        switch (c->state) {
        case S_SIZE0: {
            int d = hexval((uint8_t)ch);
            if (d < 0)
                return fail(c, detail,
                            ch == '\n' ? "bare LF in chunked body" : "chunk size is not hex");
            c->remaining = (uint64_t)d;
            c->size_digits = d ? 1 : 0;
            c->state = S_SIZE;
            break;
        }
        case S_SIZE: {
            int d = hexval((uint8_t)ch);
            if (d >= 0) {
                /* leading zeros are free; 16 significant digits fill 64 bits */
                if ((c->remaining || d) && ++c->size_digits > 16)
                    return fail(c, detail, "chunk size overflows 64 bits");
                c->remaining = c->remaining << 4 | (uint64_t)d;
                break;
            }
            if ((next = after_element(ch)) < 0)
                return fail(c, detail,
                            ch == '\n' ? "bare LF in chunked body"
                                       : "invalid character after the chunk size");
            c->state = (uint8_t)next;
            break;
        }
        case S_BWS:
            if (ch == ';')
                c->state = S_NAME0;
            else if (!IS_OWS(ch))
                return fail(c, detail, "whitespace in a chunk-size line not followed by ';'");
            break;
        case S_NAME0:
            if (IS(ch, C_TOKEN))
                c->state = S_NAME;
            else if (!IS_OWS(ch))
                return fail(c, detail, "chunk extension without a valid name");
            break;
        case S_NAME:
            if (IS(ch, C_TOKEN))
                break;
            if (ch == '=')
                c->state = S_VAL0;
            else if (IS_OWS(ch))
                c->state = S_NAME_BWS;
            else if ((next = after_element(ch)) >= 0)
                c->state = (uint8_t)next;
            else
                return fail(c, detail, "invalid character in a chunk extension name");
            break;
        case S_NAME_BWS:
            if (ch == '=')
                c->state = S_VAL0;
            else if (ch == ';')
                c->state = S_NAME0;
            else if (!IS_OWS(ch))
                return fail(c, detail, "invalid chunk extension");
            break;
        case S_VAL0:
            if (ch == '"')
                c->state = S_QS;
            else if (IS(ch, C_TOKEN))
                c->state = S_VAL_TOK;
            else if (!IS_OWS(ch))
                return fail(c, detail, "chunk extension without a valid value");
            break;
        case S_VAL_TOK:
            if (IS(ch, C_TOKEN))
                break;
            if ((next = after_element(ch)) < 0)
                return fail(c, detail, "invalid character in a chunk extension value");
            c->state = (uint8_t)next;
            break;
        case S_QS:
            if (ch == '"')
                c->state = S_AFTER_QS;
            else if (ch == '\\')
                c->state = S_QS_ESC;
            else if (!IS(ch, C_QD))
                return fail(c, detail, "invalid character in a quoted chunk extension value");
            break;
        case S_QS_ESC:
            if (!IS(ch, C_FIELD))
                return fail(c, detail, "invalid quoted-pair in a chunk extension value");
            c->state = S_QS;
            break;
        case S_AFTER_QS:
            if ((next = after_element(ch)) < 0)
                return fail(c, detail, "invalid character after a quoted chunk extension value");
            c->state = (uint8_t)next;
            break;
        case S_SIZE_LF:
            if (ch != '\n')
                return fail(c, detail, "bare CR in a chunk-size line");
            c->line_bytes = 0;
            c->state = c->remaining ? S_DATA : S_TR_LINE;
            break;
        case S_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            c->remaining -= n;
            if (!c->remaining)
                c->state = S_DATA_CR;
            *data = in + i;
            *data_len = n;
            *ev = SY_CHUNKED_DATA;
            return (ssize_t)(i + n);
        }
        case S_DATA_CR:
            if (ch != '\r')
                return fail(c, detail, "missing CRLF after chunk data");
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n')
                return fail(c, detail, "missing CRLF after chunk data");
            c->size_digits = 0;
            c->remaining = 0;
            c->state = S_SIZE0;
            break;
        case S_TR_LINE:
            if (ch == '\r')
                c->state = S_END_LF;
            else if (IS(ch, C_TOKEN))
                c->state = S_TR_NAME;
            else if (IS_OWS(ch))
                return fail(c, detail, "obsolete line folding in the chunked trailer section");
            else
                return fail(c, detail,
                            ch == '\n' ? "bare LF in chunked body" : "invalid trailer field line");
            break;
        case S_TR_NAME:
            if (ch == ':')
                c->state = S_TR_VALUE;
            else if (IS_OWS(ch))
                return fail(c, detail, "whitespace between trailer field name and colon");
            else if (!IS(ch, C_TOKEN))
                return fail(c, detail, "invalid character in a trailer field name");
            break;
        case S_TR_VALUE:
            if (ch == '\r')
                c->state = S_TR_LF;
            else if (!IS(ch, C_FIELD))
                return fail(c, detail,
                            ch == '\n' ? "bare LF in chunked body"
                                       : "control character in a trailer field value");
            break;
        case S_TR_LF:
            if (ch != '\n')
                return fail(c, detail, "bare CR in the chunked trailer section");
            c->state = S_TR_LINE;
            break;
        case S_END_LF:
            if (ch != '\n')
                return fail(c, detail, "bare CR in the chunked trailer section");
            c->state = S_DONE;
            *ev = SY_CHUNKED_DONE;
            return (ssize_t)(i + 1);
        default:
            return fail(c, detail, "chunked decoder in an invalid state");
        }
    }
    return (ssize_t)len;
}
