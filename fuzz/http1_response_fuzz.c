/* libFuzzer target: the response head parser (src/http1/response.c). */
#include "http1/response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sy_http1_header h[32];
    sy_http1_response r;
    const char *detail = NULL;
    ssize_t n = sy_http1_parse_response((const char *)data, size, 8192, &r, h, 32, &detail);
    if (n > 0 && ((size_t)n > size || r.num_headers > 32))
        __builtin_trap();
    if (n < 0 && !detail)
        __builtin_trap();
    return 0;
}
