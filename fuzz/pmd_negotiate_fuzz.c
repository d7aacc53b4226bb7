/* Negotiation: the server's answer to any offer must be accepted by our own client. */
#include <stdlib.h>

#include "ws/pmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    sy_pmd_config cfg = {n ? (uint8_t)(8 + d[0] % 8) : 15, 8, n > 1 && d[1] & 1,
                         n > 1 ? (uint8_t)(d[1] >> 4) : 0};
    sy_pmd_params sp, cp;
    char resp[128];
    const char *detail = NULL;
    if (sy_pmd_server_negotiate((const char *)d, n, &cfg, &sp, resp, sizeof(resp)) == 1 &&
        (strlen(resp) >= sizeof(resp) ||
         sy_pmd_client_accept(resp, strlen(resp), &(sy_pmd_config){15, 8, 0, 0}, &cp, &detail) !=
             1 ||
         cp.rx_window_bits != sp.tx_window_bits || cp.tx_window_bits > sp.rx_window_bits))
        abort();
    sy_pmd_client_accept((const char *)d, n, &cfg, &cp, &detail);
    return 0;
}
