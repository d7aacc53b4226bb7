/* The HTTP/2 server session (src/http2) on a real connection, from the client's preface and
 * an empty SETTINGS on: the input is a control byte (fuzz_server.h: pieces, held answers,
 * time, a stalled reader, shutdown; bit 0: the connection is TLS, as far as requests can tell) and
 * then the client's frames. Seeds: fuzz/seeds/http2_session_fuzz (made by
 * fuzz/seeds/make_seeds.py). */
#include "fuzz_server.h"
#include "http2/server.h"

static int fz_via;

static int attach_h2(sy_conn *c)
{
    return sy__http2_attach(&c->bs, &fz_wk, fz_via);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t start[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                   "\0\0\0\x04\0\0\0\0\0"; /* SETTINGS, empty */
    fz_server_init();
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    fz_via = ctl & 1 ? SY_H2_VIA_TLS : SY_H2_VIA_PRIOR_KNOWLEDGE;
    sy_conn *c = fz_conn_new(attach_h2);
    if (!c)
        return 0;
    c->secure = (uint8_t)(ctl & 1);
    fz_send(c, start, sizeof(start) - 1, 1);
    fz_drive(c, data + 1, size - 1, ctl);
    fz_conn_end(c, ctl);
    return 0;
}
