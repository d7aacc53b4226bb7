/* The HTTP/1 server (src/http1/server.c) on a real connection, as every accepted cleartext
 * connection starts: the first-bytes sniffer, then HTTP/1.1 (or HTTP/2 for a preface), with
 * Upgrade to WebSocket, h2c and the routes of fuzz_server.h. The input is a control byte
 * (fuzz_server.h) and then the client's bytes. Seeds: fuzz/seeds/http1_server_fuzz. */
#include "fuzz_server.h"

static int attach_accept(sy_conn *c)
{
    return fz_srv->hooks->accept(c, &fz_wk, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_server_init();
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    sy_conn *c = fz_conn_new(attach_accept);
    if (!c)
        return 0;
    fz_drive(c, data + 1, size - 1, ctl);
    fz_conn_end(c, ctl);
    return 0;
}
