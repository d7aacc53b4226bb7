/* HTTP/1.1 response head parser (RFC 9112 §4). */
#include "http1/response.h"

static int is_vchar_or_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 32 && c != 127);
}

ssize_t sy_http1_parse_response(const char *buf, size_t len, size_t max_head,
                                sy_http1_response *resp, sy_http1_header *headers, size_t cap,
                                const char **detail)
{
    /* Find the end of the head first: nothing is reported until it is all there. */
    const char *end = NULL;
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    }
    if (!end) {
        if (len > max_head) {
            *detail = "response head too large";
            return SY_EHTTP_HEAD_LARGE;
        }
        return 0;
    }
    if ((size_t)(end - buf) > max_head) {
        *detail = "response head too large";
        return SY_EHTTP_HEAD_LARGE;
    }
    const char *p = buf;
    if (end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9') {
        *detail = "malformed status line";
        return SY_EHTTP_SYNTAX;
    }
    resp->minor_version = p[7] - '0';
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p += 12;
    if (*p == ' ')
        p++;
    else if (*p != '\r') {
        *detail = "malformed status line";
        return SY_EHTTP_SYNTAX;
    }
    resp->reason = p;
    while (*p != '\r') {
        if (!is_vchar_or_ws((unsigned char)*p)) {
            *detail = "invalid character in the reason phrase";
            return SY_EHTTP_SYNTAX;
        }
        p++;
    }
    resp->reason_len = (size_t)(p - resp->reason);
    if (p[1] != '\n') {
        *detail = "bare CR in the status line";
        return SY_EHTTP_SYNTAX;
    }
    p += 2;
    resp->headers = headers;
    resp->num_headers = 0;
    while (!(p[0] == '\r' && p[1] == '\n')) {
        const char *name = p;
        while (sy_field_is_tchar((unsigned char)*p))
            p++;
        if (p == name || *p != ':') {
            *detail = "malformed header field";
            return SY_EHTTP_SYNTAX;
        }
        size_t nl = (size_t)(p - name);
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *v = p;
        while (*p != '\r') {
            if (!is_vchar_or_ws((unsigned char)*p)) {
                *detail = "invalid character in a header value";
                return SY_EHTTP_SYNTAX;
            }
            p++;
        }
        if (p[1] != '\n') {
            *detail = "bare CR in a header";
            return SY_EHTTP_SYNTAX;
        }
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (resp->num_headers == cap) {
            *detail = "too many header fields";
            return SY_EHTTP_HEAD_LARGE;
        }
        sy_http1_header *h = &headers[resp->num_headers++];
        h->name = name;
        h->name_len = nl;
        h->value = v;
        h->value_len = (size_t)(ve - v);
        p += 2;
    }
    return end - buf;
}
