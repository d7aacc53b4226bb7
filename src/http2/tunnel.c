/* RFC 8441: extended CONNECT runs an upgradable protocol on one HTTP/2 stream. */
#include "http2/h2.h"

void sy__h2_connect(h2_conn *h, h2_stream *s)
{
    (void)h;
    static const char body[] = "501 Not Implemented\n";
    sy_respond(s->req, 501, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

void sy__h2_tunnel_data(h2_stream *s, const uint8_t *data, size_t len)
{
    (void)data;
    s->consume_owed += len;
}

void sy__h2_tunnel_eof(h2_stream *s)
{
    (void)s;
}

void sy__h2_tunnel_release(h2_stream *s, int err)
{
    (void)s;
    (void)err;
}

void sy__h2_tunnel_flush(h2_stream *s)
{
    (void)s;
}

void sy__h2_tunnel_sent(h2_stream *s)
{
    (void)s;
}
