/* A chat server: ws://127.0.0.1:9002/chat?room=NAME. Every message goes to everyone in the
 * room, the sender included; with a Redis URL, to everyone on every process sharing it.
 * Build: cc chat.c $(pkg-config --cflags --libs switchyard)
 * Usage: chat [PORT [redis://HOST:PORT]] (port 0 picks a free port, printed on stdout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "switchyard.h"

static sy_server *srv;

/* Runs during the handshake, with the request: the room becomes the connection's data. */
static int on_accept(sy_req *req, const char **reason, void *ud)
{
    size_t n;
    const char *q = sy_req_query(req, &n);
    int has = q && n > 5 && strncmp(q, "room=", 5) == 0;
    char *topic = malloc(n + 16);
    if (!topic)
        return 503;
    snprintf(topic, n + 16, "room:%.*s", has ? (int)n - 5 : 5, has ? q + 5 : "lobby");
    sy_req_set_open_ud(req, topic, free); /* freed by the library if the open never happens */
    return 0;
}

static void on_open(sy_ws *ws, void *topic)
{
    sy_ws_subscribe(ws, topic); /* ends by itself when the connection closes */
}

static void on_message(sy_ws *ws, int opcode, const void *data, size_t len, void *topic)
{
    sy_server_publish(srv, topic, data, len, opcode); /* any thread; copied */
}

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *topic)
{
    free(topic);
}

int main(int argc, char **argv)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argc > 1 ? argv[1] : "9002");
    sy_ws_opts *opts;
    if (sy_server_new(&srv) || sy_server_listen(srv, addr) || sy_ws_opts_new(&opts))
        return 1;
    if (argc > 2 && sy_server_set_redis(srv, argv[2], NULL))
        return 1;
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    sy_ws_opts_set_cbs(opts, &cbs, NULL);
    sy_ws_opts_set_accept(opts, on_accept);
    sy_route *route = sy_server_route(srv, "GET", "/chat", SY_ROUTE_EXACT, NULL, NULL);
    if (!route || sy_route_websocket(route, opts) || sy_server_start(srv))
        return 1;
    sy_ws_opts_free(opts);
    printf("%d\n", sy_server_port(srv, 0));
    fflush(stdout);
    sy_server_wait(srv);
    sy_server_free(srv);
    return 0;
}
