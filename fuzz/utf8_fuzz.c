/* UTF-8: two pieces split at a fuzzer-chosen point must agree with one whole feed. */
#include <stdlib.h>

#include "ws/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    size_t len = n ? n - 1 : 0, cut = len ? d[0] % (len + 1) : 0;
    uint8_t *b = malloc(len + 1);
    memcpy(b, d + (n ? 1 : 0), len);
    sy_utf8 w, s;
    sy_utf8_init(&w);
    sy_utf8_init(&s);
    ssize_t whole = sy_utf8_feed(&w, b, len), split = sy_utf8_feed(&s, b, cut);
    if (split < 0 && (split = sy_utf8_feed(&s, b + cut, len - cut)) >= 0)
        split += (ssize_t)cut;
    if (whole != split || (whole < 0 && sy_utf8_complete(&w) != sy_utf8_complete(&s)) ||
        sy_utf8_valid(b, len) != (whole < 0 && sy_utf8_complete(&w)))
        abort();
    free(b);
    return 0;
}
