/* A WebSocket client: connects, sends one message, prints the reply, closes.
 * Usage: ws_client ws://127.0.0.1:9001/echo "hello" */
#include <stdio.h>
#include <string.h>
#include "switchyard.h"

static void on_open(sy_ws *ws, void *ud)
{
    const char *msg = ud;
    sy_ws_send(ws, SY_WS_TEXT, msg, strlen(msg));
}

static void on_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    (void)opcode;
    (void)ud;
    printf("%.*s\n", (int)len, (const char *)data);
    sy_ws_close(ws, 1000, "bye");
}

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)ud;
    fprintf(stderr, "closed with %d\n", info->code);
    sy_loop_stop(sy_ws_loop(ws));
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    sy_loop *loop;
    sy_ws *ws;
    if (sy_loop_new(&loop))
        return 1;
    sy_ws_client_cfg cfg = {.url = argv[1]};
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    if (sy_ws_connect(loop, &cfg, &cbs, argv[2], &ws))
        return 1;
    sy_loop_run(loop);
    sy_loop_free(loop);
    return 0;
}
