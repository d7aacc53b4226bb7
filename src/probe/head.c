/* HTTP/1 heads as the probe sees them: a stateless, bounded parser for a response (or for a
 * request echoed by a reflect route), a guess at what non-HTTP bytes are, and a bounded body
 * reader that only keeps a snippet. The parser is stricter than a browser where strictness
 * names a bug (no obs-fold, a colon in every field line) and lenient where the RFC allows it
 * (a bare LF ends a line). */
#include "probe/probe.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Next line of buf[pos..len): sets *line and *line_len (without CR LF) and returns the offset past
 * the line end, or 0 when the line is not complete. */
static size_t next_line(const char *buf, size_t len, size_t pos, const char **line,
                        size_t *line_len, unsigned *bare_lf)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl)
        return 0;
    size_t end = (size_t)(nl - buf);
    *line = buf + pos;
    *line_len = end - pos;
    if (*line_len && (*line)[*line_len - 1] == '\r')
        (*line_len)--;
    else
        (*bare_lf)++;
    return end + 1;
}

/* "HTTP/x.y" at p (8 bytes). */
static int parse_version(const char *p, size_t len, sy_probe_head *h)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7]))
        return -1;
    h->major = p[5] - '0';
    h->minor = p[7] - '0';
    return 0;
}

static int parse_status_line(const char *l, size_t n, sy_probe_head *h, const char **detail)
{
    /* HTTP-version SP 3DIGIT SP [reason] (RFC 9112 §4); a missing SP before an empty reason
     * is common enough to accept. */
    if (n < 12 || parse_version(l, 8, h) || l[8] != ' ' || !is_digit(l[9]) || !is_digit(l[10]) ||
        !is_digit(l[11]) || (n > 12 && l[12] != ' ')) {
        *detail = "malformed status line";
        return -1;
    }
    h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    h->reason = n > 13 ? l + 13 : l + n;
    h->reason_len = n > 13 ? n - 13 : 0;
    return 0;
}

static int parse_request_line(const char *l, size_t n, sy_probe_head *h, const char **detail)
{
    const char *sp1 = memchr(l, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - l)) : NULL;
    if (!sp1 || !sp2 || sp1 == l || sp2 == sp1 + 1 ||
        parse_version(sp2 + 1, n - (size_t)(sp2 + 1 - l), h)) {
        *detail = "malformed request line";
        return -1;
    }
    h->method = l;
    h->method_len = (size_t)(sp1 - l);
    h->target = sp1 + 1;
    h->target_len = (size_t)(sp2 - sp1 - 1);
    return 0;
}

static int parse_field(const char *l, size_t n, sy_field *f, const char **detail)
{
    if (l[0] == ' ' || l[0] == '\t') {
        *detail = "obsolete line folding (a field line starts with whitespace)";
        return -1;
    }
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l) {
        *detail = "a field line without \"name:\"";
        return -1;
    }
    for (const char *p = l; p < colon; p++) {
        if (!sy_field_is_tchar((unsigned char)*p)) {
            *detail = "a field name with a character that is not allowed";
            return -1;
        }
    }
    const char *v = colon + 1, *e = l + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    for (const char *p = v; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *detail = "a field value with a control character";
            return -1;
        }
    }
    f->name = l;
    f->name_len = (size_t)(colon - l);
    f->value = v;
    f->value_len = (size_t)(e - v);
    return 0;
}

ssize_t sy_probe_head_parse(const char *buf, size_t len, int request, sy_probe_head *h,
                            const char **detail)
{
    memset(h, 0, offsetof(sy_probe_head, fields));
    h->nfields = 0;
    h->head_len = 0;
    h->bare_lf = 0;
    h->bad_line = NULL;
    h->bad_len = 0;
    h->is_request = request;
    *detail = NULL;
    if (!request) {
        /* Decide "not HTTP" from the first bytes, before waiting for a line end that a
         * binary protocol may never send. */
        size_t n = len < 5 ? len : 5;
        if (memcmp(buf, "HTTP/", n) != 0) {
            *detail = "the answer does not start with \"HTTP/\"";
            return SY_PROBE_HEAD_NOT_HTTP;
        }
    }
    const char *line;
    size_t line_len;
    size_t pos = next_line(buf, len, 0, &line, &line_len, &h->bare_lf);
    if (!pos) {
        if (len > SY_PROBE_MAX_HEAD) {
            *detail = "the start line is longer than the head limit";
            return SY_PROBE_HEAD_TOO_LARGE;
        }
        return 0;
    }
    if ((request ? parse_request_line : parse_status_line)(line, line_len, h, detail)) {
        h->bad_line = line;
        h->bad_len = line_len;
        return SY_PROBE_HEAD_BAD;
    }
    for (;;) {
        size_t next = next_line(buf, len, pos, &line, &line_len, &h->bare_lf);
        if (!next) {
            if (len > SY_PROBE_MAX_HEAD) {
                *detail = "the head is larger than 64 KiB";
                return SY_PROBE_HEAD_TOO_LARGE;
            }
            return 0;
        }
        if (next > SY_PROBE_MAX_HEAD) {
            *detail = "the head is larger than 64 KiB";
            return SY_PROBE_HEAD_TOO_LARGE;
        }
        pos = next;
        if (line_len == 0)
            break;
        if (h->nfields == SY_PROBE_MAX_FIELDS) {
            *detail = "more than 100 header fields";
            return SY_PROBE_HEAD_TOO_LARGE;
        }
        if (parse_field(line, line_len, &h->fields[h->nfields], detail)) {
            h->bad_line = line;
            h->bad_len = line_len;
            return SY_PROBE_HEAD_BAD;
        }
        h->nfields++;
    }
    h->head_len = pos;
    return (ssize_t)pos;
}

const sy_field *sy_probe_head_get(const sy_probe_head *h, const char *lower_name, int *count)
{
    return sy_field_find(h->fields, h->nfields, lower_name, count);
}

const char *sy_probe_head_bad_hint(const sy_probe_head *h)
{
    const unsigned char *l = (const unsigned char *)h->bad_line;
    size_t binary = 0;
    for (size_t i = 0; i < h->bad_len; i++)
        binary += (l[i] < 0x20 && l[i] != '\t') || l[i] >= 0x7f;
    if (!h->bad_len || !binary)
        return NULL;
    /* A WebSocket frame header starts with FIN and an opcode: 0x81 text, 0x82 binary, 0x88
     * close, 0x89 ping (and 0x01/0x02 for a first fragment). */
    if (h->status == 101 && (l[0] == 0x81 || l[0] == 0x82 || l[0] == 0x88 || l[0] == 0x89 ||
                             l[0] == 0x8a || l[0] == 0x01 || l[0] == 0x02))
        return "binary bytes inside the 101's head that look like a WebSocket frame: the server "
               "wrote frames before the empty line that ends the head (frames may follow the "
               "empty line at once, never come before it)";
    return "binary bytes inside the head: the server wrote something other than field lines "
           "before the empty line that ends the head";
}

void sy_probe_head_check(sy_probe_report *r, const char *path, const sy_probe_head *h,
                         const char *what)
{
    if (!h->bare_lf)
        return;
    sy_probe_finding *f = sy_probe_add(
        r, path, SY_PF_HTTP_BAD_RESPONSE,
        "The answer to the %s ends %u of its head's lines with a bare LF instead of CRLF.", what,
        h->bare_lf);
    sy_probe_hint(f, "RFC 9112 §2.2 requires CRLF; browsers accept a bare LF, but strict "
                     "clients (Python websockets, many HTTP libraries) fail the handshake");
}

const char *sy_probe_classify_bytes(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0x15 && d[1] == 0x03 && d[2] <= 0x04)
        return "a TLS alert record: the port speaks TLS (use wss:// or https://)";
    if (n >= 3 && d[0] == 0x16 && d[1] == 0x03)
        return "a TLS handshake record: the port speaks TLS (use wss:// or https://)";
    if (n >= 9 && d[3] == 0x04 && d[4] == 0 && d[5] == 0 && d[6] == 0 && d[7] == 0 && d[8] == 0)
        return "an HTTP/2 SETTINGS frame: the port speaks only HTTP/2 (prior knowledge)";
    if (n >= 4 && !memcmp(d, "SSH-", 4))
        return "an SSH banner: the port is an SSH server";
    if (n >= 4 && (!memcmp(d, "220 ", 4) || !memcmp(d, "220-", 4)))
        return "an SMTP/FTP greeting: the port is a mail or FTP server";
    if (n >= 1 && (d[0] == '-' || d[0] == '+') && n >= 4 && !memcmp(d + 1, "ERR", 3))
        return "a Redis error reply: the port is a Redis server";
    if (n >= 1 && d[0] == '<')
        return "markup without an HTTP head: an HTTP/0.9-style or broken server";
    return NULL;
}

/* ---- the body of a non-101 answer ---- */

enum { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum { C_SIZE, C_EXT, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LINE };

void sy_probe_body_init(sy_probe_body *b, const sy_probe_head *h, int head_request)
{
    memset(b, 0, sizeof(*b));
    if (head_request || (h->status >= 100 && h->status < 200) || h->status == 204 ||
        h->status == 304) {
        b->mode = B_NONE;
        b->done = 1;
        return;
    }
    const sy_field *te = sy_probe_head_get(h, "transfer-encoding", NULL);
    const sy_field *cl = sy_probe_head_get(h, "content-length", NULL);
    if (te && sy_field_list_has(te->value, te->value_len, "chunked")) {
        b->mode = B_CHUNKED;
    } else if (cl) {
        uint64_t v = 0;
        for (size_t i = 0; i < cl->value_len && is_digit(cl->value[i]) && v < (1ull << 60); i++)
            v = v * 10 + (uint64_t)(cl->value[i] - '0');
        b->mode = B_LENGTH;
        b->left = v;
        b->done = v == 0;
    } else {
        b->mode = B_CLOSE;
    }
}

int sy_probe_body_close_delimited(const sy_probe_body *b)
{
    return b->mode == B_CLOSE;
}

static void keep(sy_probe_body *b, const uint8_t *p, size_t n)
{
    size_t room = sizeof(b->snippet) - b->snip_len;
    if (n > room)
        n = room;
    memcpy(b->snippet + b->snip_len, p, n);
    b->snip_len += n;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t chunk_fail(sy_probe_body *b, const char *why, size_t used)
{
    b->error = 1;
    b->done = 1;
    b->detail = why;
    return used;
}

size_t sy_probe_body_feed(sy_probe_body *b, const uint8_t *in, size_t len)
{
    size_t i = 0;
    if (b->done)
        return 0;
    if (b->mode == B_CLOSE || b->mode == B_LENGTH) {
        size_t n = len;
        if (b->mode == B_LENGTH && n > b->left)
            n = (size_t)b->left;
        keep(b, in, n);
        b->total += n;
        if (b->mode == B_LENGTH) {
            b->left -= n;
            b->done = b->left == 0;
        }
        return n;
    }
    /* Chunked (RFC 9112 §7.1), every line bounded so that an endless size or extension line
     * is an error rather than memory. */
    while (i < len && !b->done) {
        uint8_t c = in[i];
        switch (b->cstate) {
        case C_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (++b->hex_digits > 15)
                    return chunk_fail(b, "a chunk size with more than 15 hex digits", i);
                b->left = b->left * 16 + (uint64_t)v;
                i++;
            } else if (b->hex_digits && (c == ';' || c == ' ' || c == '\t' || c == '\r')) {
                b->cstate = C_EXT;
                b->line_len = 0;
            } else if (b->hex_digits && c == '\n') {
                b->cstate = C_EXT;
            } else {
                return chunk_fail(b, "a chunk size line that is not hexadecimal", i);
            }
            break;
        }
        case C_EXT:
            i++;
            if (c == '\n') {
                b->hex_digits = 0;
                b->line_len = 0;
                b->cstate = b->left ? C_DATA : C_TRAILER;
            } else if (++b->line_len > 4096) {
                return chunk_fail(b, "a chunk extension longer than 4 KiB", i);
            }
            break;
        case C_DATA: {
            size_t n = len - i;
            if (n > b->left)
                n = (size_t)b->left;
            keep(b, in + i, n);
            b->total += n;
            b->left -= n;
            i += n;
            if (!b->left)
                b->cstate = C_DATA_CR;
            break;
        }
        case C_DATA_CR:
            i++;
            if (c == '\n')
                b->cstate = C_SIZE;
            else if (c == '\r')
                b->cstate = C_DATA_LF;
            else
                return chunk_fail(b, "chunk data not followed by CRLF", i);
            break;
        case C_DATA_LF:
            i++;
            if (c != '\n')
                return chunk_fail(b, "chunk data not followed by CRLF", i);
            b->cstate = C_SIZE;
            break;
        case C_TRAILER: /* at the start of a trailer line: an empty one ends the body */
            i++;
            if (c == '\n') {
                b->done = 1;
            } else if (c != '\r') {
                b->cstate = C_TRAILER_LINE;
                b->line_len = 1;
            }
            break;
        case C_TRAILER_LINE:
            i++;
            if (c == '\n')
                b->cstate = C_TRAILER;
            else if (++b->line_len > 8192)
                return chunk_fail(b, "a trailer line longer than 8 KiB", i);
            break;
        }
    }
    return i;
}
