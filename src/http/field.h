/* Header fields and the list syntax of HTTP semantics (RFC 9110 §5), the same for every HTTP
 * version: HTTP/1 fills fields from its parser, HTTP/2 from HPACK. Slices, no ownership. */
#ifndef SY_HTTP_FIELD_H
#define SY_HTTP_FIELD_H

#include "core/common.h"

typedef struct sy_field {
    const char *name; /* as received (HTTP/2: lowercase) */
    size_t name_len;
    const char *value; /* OWS trimmed on both sides; may be empty */
    size_t value_len;
} sy_field;

/* Non-zero when c is a tchar (RFC 9110 §5.6.2), a character of a token. */
int sy_field_is_tchar(int c);

/* Token lists (RFC 9110 §5.6.1): `#token` with OWS, empty elements skipped.
 * Iterate with *pos = 0 until it returns 0. Returns 1 with the next element in tok/tok_len,
 * 0 at the end, or SY_EHTTP_SYNTAX if an element is not a token (with allow_slash, an
 * element may be token "/" token, as in Upgrade: the slash and version are part of tok).
 * After SY_EHTTP_SYNTAX, *pos is past the bad element, so a lenient caller may go on. */
int sy_field_next_token(const char *list, size_t len, size_t *pos, const char **tok,
                        size_t *tok_len, int allow_slash);

/* Non-zero when the comma-separated list contains token (case-insensitive, lowercase lit). */
int sy_field_list_has(const char *list, size_t len, const char *lower_token);

/* The first field named lower_name (lowercase literal, compared case-insensitively) among
 * f[0..n), or NULL; *count (if not NULL) receives how many fields have that name. */
const sy_field *sy_field_find(const sy_field *f, size_t n, const char *lower_name, int *count);

/* Non-zero when v[0..n) is a valid Host field value or request authority without userinfo:
 * uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP-literal in brackets, or a
 * reg-name of unreserved, sub-delims and pct-encoded octets (an IPv4 address is one), then
 * an optional port of digits. Empty is valid (RFC 9112 §3.2 lets a client send an empty
 * Host); "@" (userinfo, RFC 9110 §4.2.4) and anything else is not. */
int sy_field_host_valid(const char *v, size_t n);

/* Hosts named by two authorities are the same (RFC 9113 §8.3.1 asks for the comparison of
 * Host and :authority): uri-host compared case-insensitively, and the port the same, where
 * no port or an empty one means default_port ("80" for http, "443" for https). */
int sy_field_host_same(const char *a, size_t an, const char *b, size_t bn,
                       const char *default_port);

#endif
