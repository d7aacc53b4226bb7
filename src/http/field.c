/* Header-field helpers shared by every HTTP version (see field.h). */
#include "http/field.h"

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
