/* switchyard: the server and the client tools. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "switchyard %s: HTTP/1.1 Upgrade and WebSocket server\n"
            "usage:\n"
            "  switchyard serve [options]   run the server (see: switchyard serve --help)\n"
            "  switchyard ws URL [options]  WebSocket client (see: switchyard ws --help)\n"
            "  switchyard probe URL [opts]  diagnose a protocol upgrade end to end\n"
            "                               (see: switchyard probe --help)\n"
            "  switchyard version\n",
            SY_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "serve"))
        return sy_cli_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ws"))
        return sy_cli_ws(argc - 1, argv + 1);
    if (!strcmp(argv[1], "probe"))
        return sy_cli_probe(argc - 1, argv + 1);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("switchyard %s\n", SY_VERSION);
        return 0;
    }
    fprintf(stderr, "switchyard: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
