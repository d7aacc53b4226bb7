/* A WebSocket echo server in about 30 lines: ws://127.0.0.1:9001/echo
 * Build: cc echo_server.c $(pkg-config --cflags --libs switchyard)
 * Usage: echo_server [PORT] (0 picks a free port; the port is printed on stdout). */
#include <stdio.h>
#include <stdlib.h>
#include "switchyard.h"

static void on_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)ud;
    sy_ws_send(ws, opcode, data, len); /* copied and queued; sent at the end of this turn */
}

int main(int argc, char **argv)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", argc > 1 ? argv[1] : "9001");
    sy_server *srv;
    sy_ws_opts *opts;
    if (sy_server_new(&srv) || sy_server_listen(srv, addr) || sy_ws_opts_new(&opts))
        return 1;
    sy_ws_cbs cbs = {.on_message = on_message};
    sy_ws_opts_set_cbs(opts, &cbs, NULL);
    sy_route *route = sy_server_route(srv, "GET", "/echo", SY_ROUTE_EXACT, NULL, NULL);
    if (!route || sy_route_websocket(route, opts) || sy_server_start(srv))
        return 1;
    sy_ws_opts_free(opts);
    printf("%d\n", sy_server_port(srv, 0));
    fflush(stdout);
    sy_server_wait(srv); /* until sy_server_stop(): here, until the process is killed */
    sy_server_free(srv);
    return 0;
}
