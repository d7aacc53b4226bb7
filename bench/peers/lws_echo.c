/* WebSocket echo server on libwebsockets (Debian libwebsockets-dev) for bench/ws_compare.sh.
 *   cc -O2 -o lws_echo lws_echo.c -lwebsockets
 *   lws_echo PORT [deflate]
 * One service thread (lws default). Messages are reassembled from the fragments lws
 * hands to LWS_CALLBACK_RECEIVE, queued per connection and written back one per
 * LWS_CALLBACK_SERVER_WRITEABLE. "deflate" enables lws's permessage-deflate extension. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct sess {
    struct msg *head, *tail; /* complete messages waiting to be echoed */
    struct msg *cur;         /* message being reassembled */
    size_t cap;
};

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct sess *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE: {
        if (!s->cur || s->cur->len + len > s->cap) {
            size_t need = (s->cur ? s->cur->len : 0) + len;
            size_t cap = s->cap ? s->cap : 256;
            while (cap < need)
                cap *= 2;
            struct msg *m = realloc(s->cur, sizeof(*m) + LWS_PRE + cap);
            if (!m)
                return -1;
            if (!s->cur)
                m->len = 0;
            s->cur = m;
            s->cap = cap;
        }
        memcpy(s->cur->buf + LWS_PRE + s->cur->len, in, len);
        s->cur->len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            struct msg *m = s->cur;
            m->binary = lws_frame_is_binary(wsi);
            m->next = NULL;
            if (s->tail)
                s->tail->next = m;
            else
                s->head = m;
            s->tail = m;
            s->cur = NULL;
            s->cap = 0;
            lws_callback_on_writable(wsi);
        }
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct msg *m = s->head;
        if (!m)
            break;
        int n =
            lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        if (n < (int)m->len)
            return -1;
        s->head = m->next;
        if (!s->head)
            s->tail = NULL;
        free(m);
        if (s->head)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        while (s->head) {
            struct msg *m = s->head;
            s->head = m->next;
            free(m);
        }
        free(s->cur);
        s->cur = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", cb, sizeof(struct sess), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = argc > 1 ? atoi(argv[1]) : 9002;
    info.iface = "127.0.0.1";
    info.protocols = protocols; /* first protocol is the default for any path */
    if (argc > 2 && !strcmp(argv[2], "deflate"))
        info.extensions = exts;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx)
        return 1;
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    while (!stop && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
