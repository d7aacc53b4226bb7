/* The value of one base64 character (RFC 4648 §4), or of the URL-safe alphabet (§5, "-" and
 * "_" for 62 and 63), or -1. For validating and decoding short header values by hand where
 * the exact rules matter (canonical padding bits, no padding): OpenSSL's decoders accept more
 * than these headers may carry. */
#ifndef SY_CORE_BASE64_H
#define SY_CORE_BASE64_H

static inline int sy__b64_value(unsigned char c, int url_safe)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url_safe ? '-' : '+'))
        return 62;
    if (c == (url_safe ? '_' : '/'))
        return 63;
    return -1;
}

#endif
