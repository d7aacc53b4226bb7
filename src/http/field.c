/* Header-field helpers shared by every HTTP version (see field.h). */
#include "http/field.h"

#include <strings.h>

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
 * "~" / DIGIT / ALPHA, as a bitmap over the 128 ASCII codes. */
static const uint32_t tchar_bits[4] = {
    0x00000000u, /* 0x00-0x1f: controls */
    0x03ff6cfau, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
    0xc7fffffeu, /* 0x40-0x5f: A-Z ^ _ */
    0x57ffffffu, /* 0x60-0x7f: ` a-z | ~ */
};

int sy_field_is_tchar(int c)
{
    return c >= 0 && c < 128 && (tchar_bits[c >> 5] >> (c & 31)) & 1u;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int sy_field_next_token(const char *list, size_t len, size_t *pos, const char **tok,
                        size_t *tok_len, int allow_slash)
{
    size_t i = *pos < len ? *pos : len;
    while (i < len && (is_ows(list[i]) || list[i] == ','))
        i++;
    if (i == len) {
        *pos = len;
        return 0;
    }
    size_t start = i;
    while (i < len && sy_field_is_tchar((unsigned char)list[i]))
        i++;
    size_t tend = i;
    int ok = tend > start;
    if (ok && allow_slash && i < len && list[i] == '/') {
        size_t s2 = ++i;
        while (i < len && sy_field_is_tchar((unsigned char)list[i]))
            i++;
        ok = i > s2;
        tend = i;
    }
    while (i < len && is_ows(list[i]))
        i++;
    if (ok && (i == len || list[i] == ',')) {
        *tok = list + start;
        *tok_len = tend - start;
        *pos = i;
        return 1;
    }
    /* Skip the bad element so that a lenient caller can go on with the next one. */
    while (i < len && list[i] != ',')
        i++;
    *pos = i;
    return SY_EHTTP_SYNTAX;
}

int sy_field_list_has(const char *list, size_t len, const char *lower_token)
{
    size_t pos = 0, tl;
    const char *tok;
    int rc;
    while ((rc = sy_field_next_token(list, len, &pos, &tok, &tl, 1)) != 0)
        if (rc == 1 && sy__ieq(tok, tl, lower_token))
            return 1;
    return 0;
}

const sy_field *sy_field_find(const sy_field *f, size_t n, const char *lower_name, int *count)
{
    const sy_field *first = NULL;
    int cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (sy__ieq(f[i].name, f[i].name_len, lower_name)) {
            if (!first)
                first = &f[i];
            cnt++;
        }
    }
    if (count)
        *count = cnt;
    return first;
}

/* reg-name characters: unreserved (ALPHA, DIGIT and "-._~") and sub-delims ("!$&'()*+,;=").
 * Inside brackets (IP-literal) ":" too. pct-encoded is handled by the caller. */
static int host_char(int c, int in_brackets)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    if (c == ':')
        return in_brackets;
    return c && strchr("-._~!$&'()*+,;=", c) != NULL;
}

static int hex_digit(char c)
{
    return (c >= '0' && c <= '9') || ((unsigned)((c | 0x20) - 'a') < 6u);
}

int sy_field_host_valid(const char *v, size_t n)
{
    size_t i = 0;
    if (n && v[0] == '[') {
        for (i = 1; i < n && v[i] != ']'; i++)
            if (!host_char((unsigned char)v[i], 1))
                return 0;
        if (i == n || i == 1)
            return 0;
        i++;
    } else {
        while (i < n && v[i] != ':') {
            if (v[i] == '%') {
                if (n - i < 3 || !hex_digit(v[i + 1]) || !hex_digit(v[i + 2]))
                    return 0;
                i += 3;
            } else if (host_char((unsigned char)v[i], 0)) {
                i++;
            } else {
                return 0;
            }
        }
    }
    if (i < n) {
        if (v[i] != ':')
            return 0;
        for (i++; i < n; i++)
            if (v[i] < '0' || v[i] > '9')
                return 0;
    }
    return 1;
}

/* Split uri-host [":" port]: returns the length of the host, and the port in port, pn (empty
 * when there is none). */
static size_t host_split(const char *v, size_t n, const char **port, size_t *pn)
{
    size_t h = n;
    if (n && v[0] == '[') {
        const char *e = memchr(v, ']', n);
        h = e ? (size_t)(e - v) + 1 : n;
    } else {
        const char *e = memchr(v, ':', n);
        h = e ? (size_t)(e - v) : n;
    }
    *port = v + h + (h < n);
    *pn = n - h - (h < n);
    return h;
}

int sy_field_host_same(const char *a, size_t an, const char *b, size_t bn, const char *default_port)
{
    const char *ap, *bp;
    size_t apn, bpn;
    size_t ah = host_split(a, an, &ap, &apn), bh = host_split(b, bn, &bp, &bpn);
    if (ah != bh || strncasecmp(a, b, ah) != 0)
        return 0;
    if (!apn && default_port) {
        ap = default_port;
        apn = strlen(default_port);
    }
    if (!bpn && default_port) {
        bp = default_port;
        bpn = strlen(default_port);
    }
    return apn == bpn && memcmp(ap, bp, apn) == 0;
}
