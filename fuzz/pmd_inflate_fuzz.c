/* Inflate any two parts: output stays within max_total; a valid message decodes afterwards. */
#include <stdlib.h>
#include "ws/pmd.h"

static int count(void *ud, const uint8_t *d, size_t n)
{
    return (int)((*(size_t *)ud += n) * 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    const char *detail;
    sy_pmd p;
    sy_pmd_params pp = {15, (uint8_t)(8 + (n ? d[0] : 0) % 8), 0, (uint8_t)(n && d[0] >> 7)};
    size_t len = n > 2 ? n - 2 : 0, cut = len ? d[1] % (len + 1) : 0, got = 0;
    sy_pmd_init(&p, &pp, 8);
    if (!sy_pmd_inflate(&p, d + n - len, cut, 0, 4096, count, &got, &detail))
        sy_pmd_inflate(&p, d + n - len + cut, len - cut, 1, 4096, count, &got, &detail);
    if (got > 4096 || sy_pmd_inflate(&p, hello, 7, 1, 5, count, &got, &detail))
        abort();
    sy_pmd_free(&p);
    return 0;
}
