/* `switchyard ws URL`: a WebSocket client for the terminal. Lines from stdin are sent as text
 * (or binary with --binary); what arrives is printed, one message per line ("< " in front on
 * a terminal, so it does not look like what was typed). On a terminal (or with --commands),
 * lines starting with '/' are commands: /ping [data], /close [code [reason]], and //text
 * sends "/text". At the end of stdin it closes with 1000 and waits for the server's close.
 * The exit status says how the connection ended: 0 normal close, 1 connect/handshake
 * failure, 3 abnormal or error close. */
#include "cli/cli.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct ws_cli {
    sy_loop *loop;
    sy_ws *ws;
    int binary;
    int quiet;
    int exit_code;
    pthread_t reader;
    int reader_started;
    long max_messages; /* exit after this many received messages (0 = no limit) */
    long received;
    long linger_ms;           /* after stdin ends, close once nothing arrived for this long */
    int commands;             /* lines starting with '/' are commands */
    int tty_out;              /* stdout is a terminal: mark received messages */
    _Atomic uint64_t last_rx; /* CLOCK_MONOTONIC ms of the last message */
} ws_cli;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct ping_task {
    sy_ws *ws;
    size_t len;
    char data[126];
} ping_task;

static void ping_run(sy_loop *loop, void *ud)
{
    ping_task *t = ud;
    (void)loop;
    int e = sy_ws_ping(t->ws, t->data, t->len);
    if (e < 0)
        fprintf(stderr, "ping: %s\n", sy_strerror(e));
    free(t);
}

/* /ping [data] or /close [code [reason]]. Returns -1 when reading should stop. */
static int run_command(ws_cli *c, const char *line)
{
    if (strncmp(line, "/ping", 5) == 0 && (line[5] == 0 || line[5] == ' ')) {
        ping_task *t = malloc(sizeof(*t));
        if (!t)
            return 0;
        const char *d = line[5] ? line + 6 : "";
        t->ws = c->ws;
        t->len = strnlen(d, 125);
        memcpy(t->data, d, t->len);
        /* The ws handle is only used on its loop: the task runs the ping there. */
        if (sy_loop_post(c->loop, ping_run, t) < 0)
            free(t);
        return 0;
    }
    if (strncmp(line, "/close", 6) == 0 && (line[6] == 0 || line[6] == ' ')) {
        char *end = NULL;
        long code = line[6] ? strtol(line + 7, &end, 10) : 1000;
        const char *reason = end && *end == ' ' ? end + 1 : NULL;
        if (line[6] && end == line + 7)
            code = 1000;
        int e = sy_ws_close_async(c->ws, (int)code, reason);
        if (e < 0)
            fprintf(stderr, "close: %s\n", sy_strerror(e));
        return e < 0 ? 0 : -1;
    }
    fprintf(stderr, "commands: /ping [data], /close [code [reason]], //text sends /text\n");
    return 0;
}

static void *stdin_reader(void *arg)
{
    ws_cli *c = arg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = 0;
        char *msg = line;
        if (c->commands && line[0] == '/') {
            if (line[1] == '/') {
                msg++; /* "//text" sends "/text" */
                n--;
            } else {
                if (run_command(c, line) < 0)
                    break;
                continue;
            }
        }
        if (sy_ws_send_async(c->ws, c->binary ? SY_WS_BINARY : SY_WS_TEXT, msg, (size_t)n) < 0)
            break;
    }
    free(line);
    if (c->max_messages)
        return NULL;
    /* Replies to what we sent may still be on their way: close only once the connection has
     * been quiet for linger_ms (echo servers answer well within that). */
    c->last_rx = mono_ms();
    while (mono_ms() - c->last_rx < (uint64_t)c->linger_ms) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    (void)sy_ws_close_async(c->ws, 1000, NULL);
    return NULL;
}

static void on_open(sy_ws *ws, void *ud)
{
    ws_cli *c = ud;
    if (!c->quiet)
        fprintf(stderr, "connected%s%s%s%s\n", sy_ws_subprotocol(ws)[0] ? ", subprotocol " : "",
                sy_ws_subprotocol(ws), sy_ws_extensions(ws)[0] ? ", extensions: " : "",
                sy_ws_extensions(ws));
    if (pthread_create(&c->reader, NULL, stdin_reader, c) == 0) {
        pthread_detach(c->reader);
        c->reader_started = 1;
    }
}

static void on_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud)
{
    ws_cli *c = ud;
    c->last_rx = mono_ms();
    if (c->max_messages && c->received >= c->max_messages)
        return; /* more arrived in the same read after our close: --count is exact */
    if (c->tty_out)
        fputs("\033[36m< \033[0m", stdout);
    if (opcode == SY_WS_TEXT) {
        fwrite(data, 1, len, stdout);
    } else {
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++)
            printf("%02x", p[i]);
    }
    putchar('\n');
    fflush(stdout);
    if (c->max_messages && ++c->received >= c->max_messages)
        (void)sy_ws_close(ws, 1000, NULL);
}

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    ws_cli *c = ud;
    (void)ws;
    static const char *causes[] = {
        "",     "peer",         "local",         "protocol error", "too big",  "ping timeout",
        "idle", "backpressure", "close timeout", "abnormal",       "shutdown", "handshake failed"};
    const char *cause = info->cause > 0 && info->cause < (int)(sizeof(causes) / sizeof(*causes))
                            ? causes[info->cause]
                            : "?";
    if (!c->quiet || info->cause == SY_WS_CAUSE_HANDSHAKE)
        fprintf(stderr, "closed: code %d%s%s (%s)%s%s\n", info->code, info->reason[0] ? " " : "",
                info->reason, cause, info->detail ? ": " : "", info->detail ? info->detail : "");
    if (info->cause == SY_WS_CAUSE_HANDSHAKE)
        c->exit_code = 1;
    else if (info->code == 1000 || info->code == 1005 || info->code == 1001)
        c->exit_code = 0;
    else
        c->exit_code = 3;
    sy_loop_stop(c->loop);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: switchyard ws ws[s]://HOST[:PORT]/PATH [options]\n"
               "  -H, --header 'Name: value'  extra request header (repeatable)\n"
               "  --subprotocol NAME          offer a subprotocol (repeatable)\n"
               "  --binary                    send stdin lines as binary messages\n"
               "  --no-deflate                don't offer permessage-deflate\n"
               "  --count N                   close after receiving N messages\n"
               "  --linger MS                 after stdin ends, close once no message arrived\n"
               "                              for MS milliseconds (default 500)\n"
               "  --quiet                     no status lines on stderr\n"
               "  --commands                  lines starting with '/' are commands (the\n"
               "                              default when stdin is a terminal): /ping [data],\n"
               "                              /close [code [reason]], //text sends /text\n"
               "  --cacert FILE               wss: trust the PEM certificates in FILE instead\n"
               "                              of the system's CA store\n"
               "  --insecure                  wss: do not verify the server's certificate\n"
               "Exit status: 0 normal close, 1 connect/handshake failure, 2 usage,\n"
               "3 abnormal close or error close code.\n");
}

int sy_cli_ws(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"header", required_argument, 0, 'H'}, {"subprotocol", required_argument, 0, 's'},
        {"binary", no_argument, 0, 'b'},       {"no-deflate", no_argument, 0, 'd'},
        {"count", required_argument, 0, 'n'},  {"quiet", no_argument, 0, 'q'},
        {"linger", required_argument, 0, 'l'}, {"cacert", required_argument, 0, 'C'},
        {"insecure", no_argument, 0, 'k'},     {"commands", no_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *headers[33] = {0}, *subs[17] = {0};
    size_t nh = 0, ns = 0;
    ws_cli c = {.linger_ms = 500};
    int deflate = 1, opt, insecure = 0;
    const char *cacert = NULL;
    optind = 1;
    c.commands = isatty(STDIN_FILENO);
    c.tty_out = isatty(STDOUT_FILENO);
    while ((opt = getopt_long(argc, argv, "H:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'H':
            if (nh < 32)
                headers[nh++] = optarg;
            break;
        case 's':
            if (ns < 16)
                subs[ns++] = optarg;
            break;
        case 'b':
            c.binary = 1;
            break;
        case 'd':
            deflate = 0;
            break;
        case 'n':
            c.max_messages = strtol(optarg, NULL, 10);
            break;
        case 'q':
            c.quiet = 1;
            break;
        case 'l':
            c.linger_ms = strtol(optarg, NULL, 10);
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'k':
            insecure = 1;
            break;
        case 'M':
            c.commands = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (cacert && !access_ok(cacert)) {
        fprintf(stderr, "switchyard ws: --cacert %s: cannot read it\n", cacert);
        return 2;
    }
    if (sy_loop_new(&c.loop) < 0)
        return 1;
    sy_ws_opts *o;
    if (sy_ws_opts_new(&o) < 0)
        return 1;
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, (uint64_t)deflate);
    sy_ws_opts_set(o, SY_WS_OPT_PING_INTERVAL_MS, 0);
    sy_ws_client_cfg cfg = {.url = argv[optind],
                            .headers = headers,
                            .subprotocols = subs,
                            .opts = o,
                            .tls_ca_file = cacert,
                            .tls_insecure = insecure};
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    int err = sy_ws_connect(c.loop, &cfg, &cbs, &c, &c.ws);
    sy_ws_opts_free(o);
    if (err) {
        fprintf(stderr, "switchyard ws: cannot connect to %s: %s\n", argv[optind],
                sy_strerror(err));
        sy_loop_free(c.loop);
        return err == SY_EINVAL ? 2 : 1;
    }
    c.exit_code = 3;
    sy_loop_run(c.loop);
    /* The reader thread may still be blocked on stdin; exit without joining it. */
    fflush(stdout);
    _exit(c.exit_code);
}
