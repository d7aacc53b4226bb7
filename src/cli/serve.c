/* `switchyard serve`: static files, a WebSocket echo at /echo, /handshake (the switch shown
 * to the demo page), a chat at /chat (topics, and across processes with --redis), /metrics, demo
 * raw protocols at /raw ("Upgrade: echo" echoes bytes, "Upgrade: upper" echoes them upper-cased)
 * and a few HTTP demo routes (serve_demo.c). Settings come from the defaults, then --config FILE
 * (config.c), then the flags; SIGHUP reads the file again and swaps the routes and limits for new
 * connections. */
#include "cli/serve.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static sy_server *g_srv, *g_msrv;
static volatile sig_atomic_t g_signals;
static int g_pipe[2] = {-1, -1}; /* SIGHUP -> the reload thread */

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        char c = 'h';
        ssize_t w = write(g_pipe[1], &c, 1);
        (void)w; /* a full pipe already holds a pending reload */
        return;
    }
    if (sig == SIGINT && ++g_signals > 1) {
        /* A second Ctrl-C: the person at the terminal does not want to wait for the drain.
         * (A repeated SIGTERM from a supervisor still waits: it asked for a clean stop.) */
        static const char msg[] = "switchyard: second Ctrl-C, exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(130);
    }
    if (g_srv)
        sy_server_stop(g_srv); /* async-signal-safe */
    if (g_msrv)
        sy_server_stop(g_msrv);
}

/* ---- the settings ---- */

void serve_cfg_init(serve_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->shared_listener = c->h2c = -1;
    c->ws.deflate = c->ws.bp = c->ws.require_sub = -1;
    c->access_log = -1;
    c->reflect = -1;
}

void serve_cfg_free(serve_cfg *c)
{
    for (size_t i = 0; i < c->nowned; i++)
        free(c->owned[i]);
    free(c->owned);
    c->owned = NULL;
    c->nowned = c->capowned = 0;
}

const char *serve_cfg_str(serve_cfg *c, const char *s, size_t n)
{
    if (c->nowned == c->capowned) {
        size_t cap = c->capowned ? c->capowned * 2 : 32;
        char **o = realloc(c->owned, cap * sizeof(*o));
        if (!o)
            return NULL;
        c->owned = o;
        c->capowned = cap;
    }
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    c->owned[c->nowned++] = d;
    return d;
}

/* Loopback addresses only: 127.0.0.0/8, [::1], localhost. */
static int is_loopback_listen(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) ||
           !strncmp(addr, "localhost:", 10);
}

/* Every connection is a descriptor, and the soft open-file limit is often 1024 where the hard
 * limit allows far more: take all we may. sy_server_start warns when --max-conns still does
 * not fit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max; /* Linux keeps the hard limit finite (at most fs.nr_open) */
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: switchyard serve [options]\n"
            "  --listen ADDR:PORT     listen address (repeatable; default 127.0.0.1:8080;\n"
            "                         \"[::1]:8080\" for IPv6, port 0 picks a free port)\n"
            "  --root DIR             static files (default: ./demo when present)\n"
            "  --workers N            worker threads (default: number of CPUs)\n"
            "  --shared-listener      one listening socket for all workers (idle workers take\n"
            "                         new connections) instead of one SO_REUSEPORT socket each\n"
            "  --max-conns N          open connection limit (default 10000)\n"
            "  --header-timeout MS    time to receive a request head (default 10000)\n"
            "  --write-timeout MS     a response (or a closing flush) that makes no progress\n"
            "                         this long is cut (default 30000)\n"
            "  --keepalive-timeout MS idle keep-alive time (default 60000)\n"
            "  --body-timeout MS      max gap between body bytes (default 30000)\n"
            "  --drain-timeout MS     graceful shutdown limit (default 5000)\n"
            "  --max-body BYTES       request body limit (default 8388608)\n"
            "  --ws-max-message BYTES WebSocket message limit (default 1048576)\n"
            "  --ws-ping-interval MS  server ping after this idle time, 0 = off (default 30000)\n"
            "  --ws-pong-timeout MS   close when no traffic answers a ping within (default 10000)\n"
            "  --no-deflate           do not negotiate permessage-deflate\n"
            "  --ws-path PATH         WebSocket echo endpoint (repeatable; default /echo)\n"
            "  --ws-subprotocol NAME  supported subprotocol, most preferred first (repeatable)\n"
            "  --ws-require-subprotocol  refuse (400) handshakes offering none of them\n"
            "  --ws-origin ORIGIN     allowed Origin (repeatable; default: any)\n"
            "  --ws-idle-timeout MS   close (1001) after this long without traffic (default off)\n"
            "  --ws-deflate-window N  our deflate window bits 8..15 (default 15)\n"
            "  --ws-deflate-memlevel N  zlib memLevel 1..9 (default 8)\n"
            "  --ws-deflate-budget BYTES  process-wide zlib memory cap (default 256 MiB)\n"
            "  --ws-backpressure P    buffer|drop|close when a client reads too slowly\n"
            "  --ws-high-water BYTES  queued bytes that mean backpressure (default 1 MiB)\n"
            "  --ws-max-buffer BYTES  hard cap of queued bytes per connection (default 16 MiB)\n"
            "  --raw-idle-timeout MS  close a raw stream after this long with nothing moving\n"
            "                         either way, 0 = off (default 60000)\n"
            "  --raw-high-water BYTES raw echo stops reading above this (default 1 MiB)\n"
            "  --raw-max-buffer BYTES hard cap of queued bytes per raw stream (default 16 MiB)\n"
            "  --tls-listen ADDR:PORT TLS listen address (repeatable; HTTPS and wss://)\n"
            "  --tls-cert FILE        PEM certificate (chain may follow), with --tls-key FILE\n"
            "  --tls-key FILE         its PEM private key; repeat the pair for more names (SNI;\n"
            "                         the first pair is the default)\n"
            "  --tls-self-signed      generate a certificate for localhost at start (testing)\n"
            "  --tls-ticket-rotate T  new session-ticket key every T (default 1h; whole\n"
            "                         seconds, at most 84h); tickets resume for 2 periods;\n"
            "                         0 = no tickets (resumption by session ID only)\n"
            "  --tls-no-tickets       the same as --tls-ticket-rotate 0\n"
            "  --no-h2c               cleartext listeners speak HTTP/1.1 only (no HTTP/2 with\n"
            "                         prior knowledge, Upgrade: h2c ignored)\n"
            "  --no-access-log        no access log on stdout\n"
            "  --reflect-token T      serve /reflect (see below) to requests that carry\n"
            "                         X-Switchyard-Reflect-Token: T, on any listener\n"
            "  --no-reflect           no /reflect route (default: on when every listener is\n"
            "                         on loopback, off otherwise)\n"
            "  --redis URL            share /chat rooms (and all topics) with every process\n"
            "                         using this Redis: redis://HOST:PORT\n"
            "  --redis-prefix P       Redis channel prefix (default \"switchyard:\")\n"
            "  --verbose              log protocol errors on stderr\n"
            "  --log-format F         plain (default) or json: one JSON object per line, for\n"
            "                         access lines and the server's own lines alike\n"
            "  --config FILE          read settings from a YAML file (docs/config.md); flags\n"
            "                         given too override it. SIGHUP re-reads it: routes,\n"
            "                         limits, timeouts, logs and metrics access change for new\n"
            "                         connections, open ones are kept\n"
            "  --check-config         with --config: print every problem of the file with its\n"
            "                         line and column and exit 2, or exit 0 when it is valid\n"
            "  --metrics-path PATH    Prometheus metrics route (default /metrics; \"\" for none)\n"
            "  --metrics-listen ADDR  serve the metrics on this address only (own listener)\n"
            "  --metrics-public       answer /metrics to any client (default: loopback only)\n"
            "  --metrics-token T      answer /metrics to clients sending\n"
            "                         Authorization: Bearer T (and to loopback)\n"
            "  --no-metrics           no metrics route\n"
            "Routes: / static files, /echo WebSocket echo, /handshake WebSocket echo that first\n"
            "        sends the switch as the server saw it (request, 101 headers, what was\n"
            "        negotiated) and then pushes the server's numbers every second, /metrics\n"
            "        (Prometheus), /chat?room=NAME WebSocket chat (every message to everyone\n"
            "        in the room), /raw raw echo (Upgrade: echo|upper),\n"
            "        /body echoes a POSTed body, /sum streams a POSTed body and answers\n"
            "        its length and Adler-32 in a chunked response, /stream?BYTES sends\n"
            "        BYTES generated bytes with flow control, /delay?MS answers after MS ms\n"
            "        (from another thread), /reflect answers with the request line, fields\n"
            "        and body as received (for `switchyard probe`; see --reflect-token).\n");
}

enum {
    O_LISTEN = 1,
    O_ROOT,
    O_WORKERS,
    O_MAXCONNS,
    O_HTO,
    O_WTO,
    O_KATO,
    O_BTO,
    O_DTO,
    O_MAXBODY,
    O_WSMAX,
    O_WSPING,
    O_WSPONG,
    O_NODEFLATE,
    O_NOLOG,
    O_VERBOSE,
    O_HELP,
    O_WSPATH,
    O_WSSUB,
    O_WSREQSUB,
    O_WSORIGIN,
    O_WSIDLE,
    O_WSWIN,
    O_WSMEM,
    O_WSBUDGET,
    O_WSBP,
    O_WSHIGH,
    O_WSMAXBUF,
    O_SHARED,
    O_RAWIDLE,
    O_RAWHIGH,
    O_RAWMAXBUF,
    O_TLSLISTEN, /* the four TLS options, in this order (src/cli/tls.c) */
    O_TLSCERT,
    O_TLSKEY,
    O_TLSSELF,
    O_RTOKEN,
    O_NOREFLECT,
    O_NOH2C,
    O_CONFIG,
    O_CHECK,
    O_LOGFMT,
    O_MPATH,
    O_MLISTEN,
    O_MPUBLIC,
    O_MTOKEN,
    O_NOMETRICS,
    O_REDIS,
    O_REDISPFX,
    O_TLSROTATE,
    O_TLSNOTICKETS,
};

static const struct option longopts[] = {
    {"listen", required_argument, 0, O_LISTEN},
    {"root", required_argument, 0, O_ROOT},
    {"workers", required_argument, 0, O_WORKERS},
    {"max-conns", required_argument, 0, O_MAXCONNS},
    {"header-timeout", required_argument, 0, O_HTO},
    {"write-timeout", required_argument, 0, O_WTO},
    {"keepalive-timeout", required_argument, 0, O_KATO},
    {"body-timeout", required_argument, 0, O_BTO},
    {"drain-timeout", required_argument, 0, O_DTO},
    {"max-body", required_argument, 0, O_MAXBODY},
    {"ws-max-message", required_argument, 0, O_WSMAX},
    {"ws-ping-interval", required_argument, 0, O_WSPING},
    {"ws-pong-timeout", required_argument, 0, O_WSPONG},
    {"no-deflate", no_argument, 0, O_NODEFLATE},
    {"no-access-log", no_argument, 0, O_NOLOG},
    {"verbose", no_argument, 0, O_VERBOSE},
    {"help", no_argument, 0, O_HELP},
    {"ws-path", required_argument, 0, O_WSPATH},
    {"ws-subprotocol", required_argument, 0, O_WSSUB},
    {"ws-require-subprotocol", no_argument, 0, O_WSREQSUB},
    {"ws-origin", required_argument, 0, O_WSORIGIN},
    {"ws-idle-timeout", required_argument, 0, O_WSIDLE},
    {"ws-deflate-window", required_argument, 0, O_WSWIN},
    {"ws-deflate-memlevel", required_argument, 0, O_WSMEM},
    {"ws-deflate-budget", required_argument, 0, O_WSBUDGET},
    {"ws-backpressure", required_argument, 0, O_WSBP},
    {"ws-high-water", required_argument, 0, O_WSHIGH},
    {"ws-max-buffer", required_argument, 0, O_WSMAXBUF},
    {"shared-listener", no_argument, 0, O_SHARED},
    {"raw-idle-timeout", required_argument, 0, O_RAWIDLE},
    {"raw-high-water", required_argument, 0, O_RAWHIGH},
    {"raw-max-buffer", required_argument, 0, O_RAWMAXBUF},
    {"tls-listen", required_argument, 0, O_TLSLISTEN},
    {"tls-cert", required_argument, 0, O_TLSCERT},
    {"tls-key", required_argument, 0, O_TLSKEY},
    {"tls-self-signed", no_argument, 0, O_TLSSELF},
    {"reflect-token", required_argument, 0, O_RTOKEN},
    {"no-reflect", no_argument, 0, O_NOREFLECT},
    {"no-h2c", no_argument, 0, O_NOH2C},
    {"config", required_argument, 0, O_CONFIG},
    {"check-config", no_argument, 0, O_CHECK},
    {"log-format", required_argument, 0, O_LOGFMT},
    {"metrics-path", required_argument, 0, O_MPATH},
    {"metrics-listen", required_argument, 0, O_MLISTEN},
    {"metrics-public", no_argument, 0, O_MPUBLIC},
    {"metrics-token", required_argument, 0, O_MTOKEN},
    {"no-metrics", no_argument, 0, O_NOMETRICS},
    {"redis", required_argument, 0, O_REDIS},
    {"redis-prefix", required_argument, 0, O_REDISPFX},
    {"tls-ticket-rotate", required_argument, 0, O_TLSROTATE},
    {"tls-no-tickets", no_argument, 0, O_TLSNOTICKETS},
    {0, 0, 0, 0},
};

/* Numeric flags and their units; every other flag takes text or nothing. */
static int kind_of(int opt)
{
    switch (opt) {
    case O_WORKERS:
    case O_MAXCONNS:
    case O_WSWIN:
    case O_WSMEM:
        return SY_CLI_COUNT;
    case O_HTO:
    case O_WTO:
    case O_KATO:
    case O_BTO:
    case O_DTO:
    case O_WSPING:
    case O_WSPONG:
    case O_WSIDLE:
    case O_RAWIDLE:
    case O_TLSROTATE:
        return SY_CLI_TIME;
    case O_MAXBODY:
    case O_WSMAX:
    case O_WSBUDGET:
    case O_WSHIGH:
    case O_WSMAXBUF:
    case O_RAWHIGH:
    case O_RAWMAXBUF:
        return SY_CLI_SIZE;
    }
    return 0;
}

static void set_u64(u64opt *o, uint64_t v)
{
    o->v = v;
    o->set = 1;
}

/* Find --config and --check-config (they decide what the other flags override). Returns 0,
 * 1 after --help, 2 on a bad flag. */
static int scan_args(int argc, char **argv, const char **config, int *check)
{
    int c;
    optind = 1;
    opterr = 0; /* the second pass reports */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == O_CONFIG)
            *config = optarg;
        else if (c == O_CHECK)
            *check = 1;
    }
    opterr = 1;
    return 0;
}

/* Apply the flags over cfg. Returns 0, 1 after --help, or 2 after a one-line error. */
static int apply_flags(serve_cfg *cfg, int argc, char **argv, int quiet)
{
    int c, seen_listen = 0, seen_sub = 0, seen_origin = 0;
    optind = 1;
    opterr = !quiet;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t v = 0;
        int kind = c > 0 ? kind_of(c) : 0;
        const char *name = c > 0 && c <= O_TLSNOTICKETS ? longopts[c - 1].name : "?";
        if (kind && sy_cli_value(name, optarg, kind, &v) < 0)
            return 2;
        int err = 0;
        switch (c) {
        case O_LISTEN:
            if (!seen_listen++)
                cfg->nlisten = 0; /* the flags replace the file's list */
            if (cfg->nlisten < 16)
                cfg->listens[cfg->nlisten++] = optarg;
            break;
        case O_ROOT:
            cfg->root = optarg;
            break;
        case O_WORKERS:
            err = v > 256 ? SY_ERANGE : 0;
            set_u64(&cfg->workers, v);
            break;
        case O_MAXCONNS:
            set_u64(&cfg->max_conns, v);
            break;
        case O_HTO:
            set_u64(&cfg->header_to, v);
            break;
        case O_WTO:
            set_u64(&cfg->write_to, v);
            break;
        case O_KATO:
            set_u64(&cfg->keepalive_to, v);
            break;
        case O_BTO:
            set_u64(&cfg->body_to, v);
            break;
        case O_DTO:
            set_u64(&cfg->drain_to, v);
            break;
        case O_MAXBODY:
            set_u64(&cfg->max_body, v);
            break;
        case O_WSMAX:
            set_u64(&cfg->ws.max_message, v);
            break;
        case O_WSPING:
            set_u64(&cfg->ws.ping, v);
            break;
        case O_WSPONG:
            set_u64(&cfg->ws.pong, v);
            break;
        case O_NODEFLATE:
            cfg->ws.deflate = 0;
            break;
        case O_NOLOG:
            cfg->access_log = 0;
            break;
        case O_WSPATH:
            if (optarg[0] != '/' || cfg->nws >= 16)
                err = SY_EINVAL;
            else
                cfg->ws_paths[cfg->nws++] = optarg;
            break;
        case O_WSSUB:
            if (!seen_sub++)
                cfg->ws.nsub = 0;
            if (cfg->ws.nsub < 16)
                cfg->ws.subs[cfg->ws.nsub++] = optarg;
            break;
        case O_WSREQSUB:
            cfg->ws.require_sub = 1;
            break;
        case O_WSORIGIN:
            if (!seen_origin++)
                cfg->ws.norigin = 0;
            if (cfg->ws.norigin < 16)
                cfg->ws.origins[cfg->ws.norigin++] = optarg;
            break;
        case O_WSIDLE:
            set_u64(&cfg->ws.idle, v);
            break;
        case O_WSWIN:
            err = v < 8 || v > 15 ? SY_ERANGE : 0;
            set_u64(&cfg->ws.window, v);
            break;
        case O_WSMEM:
            err = v < 1 || v > 9 ? SY_ERANGE : 0;
            set_u64(&cfg->ws.memlevel, v);
            break;
        case O_WSBUDGET:
            set_u64(&cfg->deflate_budget, v);
            break;
        case O_WSBP:
            cfg->ws.bp = !strcmp(optarg, "buffer")  ? SY_WS_BP_BUFFER
                         : !strcmp(optarg, "drop")  ? SY_WS_BP_DROP
                         : !strcmp(optarg, "close") ? SY_WS_BP_CLOSE
                                                    : -1;
            err = cfg->ws.bp < 0 ? SY_EINVAL : 0;
            break;
        case O_WSHIGH:
            err = v ? 0 : SY_ERANGE;
            set_u64(&cfg->ws.high_water, v);
            break;
        case O_WSMAXBUF:
            err = v ? 0 : SY_ERANGE;
            set_u64(&cfg->ws.max_buffer, v);
            break;
        case O_SHARED:
            cfg->shared_listener = 1;
            break;
        case O_RAWIDLE:
            err = v > UINT32_MAX ? SY_ERANGE : 0;
            set_u64(&cfg->raw_idle, v);
            break;
        case O_RAWHIGH:
            err = v ? 0 : SY_ERANGE;
            set_u64(&cfg->raw_high, v);
            break;
        case O_RAWMAXBUF:
            err = v ? 0 : SY_ERANGE;
            set_u64(&cfg->raw_max, v);
            break;
        case O_TLSLISTEN:
        case O_TLSCERT:
        case O_TLSKEY:
        case O_TLSSELF:
            err = sy_cli_tls_opt(&cfg->tls, c - O_TLSLISTEN, optarg);
            break;
        case O_RTOKEN:
            cfg->reflect_token = optarg;
            cfg->reflect = 1;
            err = optarg[0] ? 0 : SY_EINVAL;
            break;
        case O_NOREFLECT:
            cfg->reflect = 0;
            break;
        case O_NOH2C:
            cfg->h2c = 0;
            break;
        case O_VERBOSE:
            cfg->verbose = 1;
            break;
        case O_CONFIG:
        case O_CHECK:
            break; /* scan_args took them */
        case O_LOGFMT:
            if (!strcmp(optarg, "json") || !strcmp(optarg, "plain"))
                cfg->log_json = !strcmp(optarg, "json");
            else
                err = SY_EINVAL;
            break;
        case O_MPATH:
            cfg->metrics_path = optarg;
            err = optarg[0] && optarg[0] != '/' ? SY_EINVAL : 0;
            break;
        case O_MLISTEN:
            cfg->metrics_listen = optarg;
            break;
        case O_MPUBLIC:
            cfg->metrics_public = 1;
            break;
        case O_MTOKEN:
            cfg->metrics_token = optarg;
            err = optarg[0] && strlen(optarg) <= 200 ? 0 : SY_EINVAL;
            break;
        case O_NOMETRICS:
            cfg->metrics_path = "";
            break;
        case O_REDIS:
            cfg->redis = optarg;
            break;
        case O_REDISPFX:
            cfg->redis_prefix = optarg;
            break;
        case O_TLSROTATE:
            if (sy_cli_ticket_rotate(v) < 0) {
                if (!quiet)
                    fprintf(stderr,
                            "switchyard: --tls-ticket-rotate %s: expected 0 (no tickets) or whole "
                            "seconds up to 84h, such as 30m or 1h\n",
                            optarg);
                return 2;
            }
            set_u64(&cfg->ticket_rotate, v);
            break;
        case O_TLSNOTICKETS:
            set_u64(&cfg->ticket_rotate, 0);
            break;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            /* getopt said what was wrong; the whole help would bury it. */
            if (!quiet)
                fprintf(stderr, "see switchyard serve --help\n");
            return 2;
        }
        if (err) {
            if (!quiet)
                fprintf(stderr, "switchyard: invalid value for --%s: %s (%s)\n", name,
                        optarg ? optarg : "", sy_strerror(err));
            return 2;
        }
    }
    if (optind < argc) {
        if (!quiet)
            fprintf(stderr,
                    "switchyard serve: unexpected argument '%s' (see switchyard serve --help)\n",
                    argv[optind]);
        return 2;
    }
    return 0;
}

/* ---- building the routes: at start, and again at each reload ---- */

/* What one route set owns; freed when the library retires the set. */
typedef struct gen {
    sy_static *statics[64];
    size_t nstatic;
    raw_route *raws[64];
    size_t nraw;
    metrics_policy *policies[4];
    size_t npolicy;
    const char *reflect_token; /* points into tokens */
    char tokens[256];
} gen;

static void gen_free(void *ud)
{
    gen *g = ud;
    for (size_t i = 0; i < g->nstatic; i++)
        sy_static_free(g->statics[i]);
    for (size_t i = 0; i < g->nraw; i++)
        free(g->raws[i]);
    for (size_t i = 0; i < g->npolicy; i++)
        free(g->policies[i]);
    free(g);
}

static void put_ws_opts(sy_ws_opts *o, const serve_ws *d, const serve_ws *r)
{
#define PICK(f) (r && r->f.set ? &r->f : &d->f)
    const u64opt *x;
    if ((x = PICK(max_message))->set)
        sy_ws_opts_set(o, SY_WS_OPT_MAX_MESSAGE, x->v);
    if ((x = PICK(ping))->set)
        sy_ws_opts_set(o, SY_WS_OPT_PING_INTERVAL_MS, x->v);
    if ((x = PICK(pong))->set)
        sy_ws_opts_set(o, SY_WS_OPT_PONG_TIMEOUT_MS, x->v);
    if ((x = PICK(idle))->set)
        sy_ws_opts_set(o, SY_WS_OPT_IDLE_TIMEOUT_MS, x->v);
    if ((x = PICK(high_water))->set) {
        sy_ws_opts_set(o, SY_WS_OPT_HIGH_WATER, x->v);
        sy_ws_opts_set(o, SY_WS_OPT_LOW_WATER, x->v / 4);
    }
    if ((x = PICK(max_buffer))->set)
        sy_ws_opts_set(o, SY_WS_OPT_MAX_BUFFER, x->v);
    if ((x = PICK(window))->set)
        sy_ws_opts_set(o, SY_WS_OPT_DEFLATE_WINDOW_BITS, x->v);
    if ((x = PICK(memlevel))->set)
        sy_ws_opts_set(o, SY_WS_OPT_DEFLATE_MEM_LEVEL, x->v);
#undef PICK
    int deflate = r && r->deflate >= 0 ? r->deflate : d->deflate;
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, deflate < 0 ? 1 : (uint64_t)deflate);
    int bp = r && r->bp >= 0 ? r->bp : d->bp;
    if (bp >= 0)
        sy_ws_opts_set(o, SY_WS_OPT_BACKPRESSURE_POLICY, (uint64_t)bp);
    int req = r && r->require_sub >= 0 ? r->require_sub : d->require_sub;
    if (req > 0)
        sy_ws_opts_set(o, SY_WS_OPT_REQUIRE_SUBPROTOCOL, 1);
    const serve_ws *lists = r && r->nsub ? r : d;
    for (size_t i = 0; i < lists->nsub; i++)
        sy_ws_opts_add_subprotocol(o, lists->subs[i]);
    lists = r && r->norigin ? r : d;
    for (size_t i = 0; i < lists->norigin; i++)
        sy_ws_opts_add_origin(o, lists->origins[i]);
}

static int route_fail(const char *path, const char *why)
{
    serve_say(SY_LOG_ERROR, "cannot route %s: %s", path, why);
    return 2;
}

enum { WS_ECHO, WS_HANDSHAKE, WS_CHAT };

static int add_ws(sy_server *srv, const serve_cfg *c, const char *path, const serve_ws *r, int kind)
{
    sy_ws_opts *o;
    if (sy_ws_opts_new(&o) < 0)
        return route_fail(path, "out of memory");
    sy_ws_cbs cbs = {.on_message = demo_echo_message};
    if (kind == WS_HANDSHAKE) {
        cbs.on_open = demo_handshake_open;
        cbs.on_message = demo_handshake_message;
        cbs.on_close = demo_handshake_close;
    } else if (kind == WS_CHAT) {
        cbs.on_open = demo_chat_open;
        cbs.on_message = demo_chat_message;
        cbs.on_close = demo_chat_close;
        sy_ws_opts_set_accept(o, demo_chat_accept);
    }
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    put_ws_opts(o, &c->ws, r);
    sy_route *rt = sy_server_route(srv, NULL, path, SY_ROUTE_EXACT, NULL, NULL);
    int e = rt ? sy_route_websocket(rt, o) : SY_EEXIST;
    sy_ws_opts_free(o);
    return e < 0 ? route_fail(path, sy_strerror(e)) : 0;
}

static int add_raw(sy_server *srv, const serve_cfg *c, gen *g, const char *path,
                   const char *const *tokens, size_t ntok, int required)
{
    sy_route *rt = sy_server_route(srv, NULL, path, required ? SY_ROUTE_UPGRADE_REQUIRED : 0,
                                   required ? NULL : demo_raw_plain, NULL);
    if (!rt)
        return route_fail(path, "already routed, or out of memory");
    for (size_t i = 0; i < ntok; i++) {
        raw_route *rr = calloc(1, sizeof(*rr));
        if (!rr || g->nraw >= SY_ARRAY_LEN_CLI(g->raws)) {
            free(rr);
            return route_fail(path, "out of memory");
        }
        g->raws[g->nraw++] = rr;
        rr->upper = !strcmp(tokens[i], "upper");
        rr->idle_set = c->raw_idle.set;
        rr->idle_ms = c->raw_idle.v;
        rr->high_water = c->raw_high.set ? c->raw_high.v : 0;
        rr->max_buffer = c->raw_max.set ? c->raw_max.v : 0;
        int e = sy_route_upgrade_raw(rt, tokens[i], NULL, demo_raw_open, rr);
        if (e < 0)
            return route_fail(path, sy_strerror(e));
    }
    return 0;
}

static int add_static(sy_server *srv, gen *g, const char *path, const char *root, int prefix)
{
    sy_static *st;
    if (g->nstatic >= SY_ARRAY_LEN_CLI(g->statics))
        return route_fail(path, "too many static routes");
    if (sy_static_new(&st, root) < 0) {
        serve_say(SY_LOG_ERROR, "cannot open root directory '%s': %s", root, strerror(errno));
        return 2;
    }
    g->statics[g->nstatic++] = st;
    if (!sy_server_route(srv, "GET", path, prefix ? SY_ROUTE_PREFIX : 0, sy_static_handler, st))
        return route_fail(path, "already routed");
    return 0;
}

static metrics_policy *policy_new(gen *g, sy_server *of, const serve_cfg *c)
{
    metrics_policy *p = calloc(1, sizeof(*p));
    if (!p || g->npolicy >= SY_ARRAY_LEN_CLI(g->policies)) {
        free(p);
        return NULL;
    }
    g->policies[g->npolicy++] = p;
    p->srv = of;
    p->public_ = c->metrics_public;
    if (c->metrics_token)
        snprintf(p->token, sizeof(p->token), "%s", c->metrics_token);
    return p;
}

static int add_metrics(sy_server *srv, sy_server *of, gen *g, const serve_cfg *c, const char *path)
{
    metrics_policy *p = policy_new(g, of, c);
    if (!p)
        return route_fail(path, "out of memory");
    if (!sy_server_route(srv, "GET", path, 0, serve_metrics_handler, p))
        return route_fail(path, "already routed");
    return 0;
}

static int reflect_on(const serve_cfg *c)
{
    if (c->reflect >= 0)
        return c->reflect;
    int on = 1;
    for (size_t i = 0; i < c->nlisten; i++)
        on &= is_loopback_listen(c->listens[i]);
    for (size_t i = 0; i < c->tls.nlisten; i++)
        on &= is_loopback_listen(c->tls.listens[i]);
    for (size_t i = 0; i < c->ntls; i++)
        on &= is_loopback_listen(c->tls_listens[i].addr);
    return on;
}

static const char *metrics_route(const serve_cfg *c)
{
    return c->metrics_path ? c->metrics_path : "/metrics";
}

static const char *const default_root = "demo";

/* The demo set, when the file names no routes. */
static int default_routes(sy_server *srv, const serve_cfg *c, gen *g)
{
    int e = 0;
    const char *root = c->root;
    if (!root && access_ok("demo/index.html"))
        root = default_root;
    if (root && (e = add_static(srv, g, "/", root, 1)))
        return e;
    static const char *const echo_path = "/echo";
    size_t nws = c->nws ? c->nws : 1;
    for (size_t i = 0; i < nws; i++)
        if ((e = add_ws(srv, c, c->nws ? c->ws_paths[i] : echo_path, NULL, WS_ECHO)))
            return e;
    if ((e = add_ws(srv, c, "/handshake", NULL, WS_HANDSHAKE)) ||
        (e = add_ws(srv, c, "/chat", NULL, WS_CHAT)))
        return e;
    static const char *const raw_tokens[] = {"echo", "upper"};
    if ((e = add_raw(srv, c, g, "/raw", raw_tokens, 2, 0)) ||
        (e = add_raw(srv, c, g, "/raw-only", raw_tokens, 1, 1)))
        return e;
    sy_server_route(srv, "POST", "/body", SY_ROUTE_EXACT, demo_body, NULL);
    sy_server_route(srv, "POST", "/sum", SY_ROUTE_STREAM_BODY, demo_sum, NULL);
    sy_server_route(srv, "GET", "/stream", SY_ROUTE_EXACT, demo_stream, NULL);
    sy_server_route(srv, "GET", "/delay", SY_ROUTE_EXACT, demo_delay, NULL);
    if (reflect_on(c))
        sy_server_route(srv, NULL, "/reflect", SY_ROUTE_EXACT, demo_reflect,
                        (void *)g->reflect_token);
    if (metrics_route(c)[0] && !c->metrics_listen)
        e = add_metrics(srv, srv, g, c, metrics_route(c));
    return e;
}

static int file_routes(sy_server *srv, const serve_cfg *c, gen *g)
{
    int e = 0;
    for (size_t i = 0; i < c->nroutes && !e; i++) {
        const serve_route *r = &c->routes[i];
        switch (r->kind) {
        case RK_STATIC:
            e = add_static(srv, g, r->path, r->root, r->prefix != 0);
            break;
        case RK_WS:
            e = add_ws(srv, c, r->path, &r->ws, WS_ECHO);
            break;
        case RK_RAW:
            e = add_raw(srv, c, g, r->path, r->raw, r->nraw, r->upgrade_required > 0);
            break;
        case RK_METRICS:
            e = add_metrics(srv, srv, g, c, r->path);
            break;
        case RK_DEMO:
            switch (r->demo) {
            case DEMO_HANDSHAKE:
                e = add_ws(srv, c, r->path, &r->ws, WS_HANDSHAKE);
                break;
            case DEMO_CHAT:
                e = add_ws(srv, c, r->path, &r->ws, WS_CHAT);
                break;
            case DEMO_BODY:
                sy_server_route(srv, "POST", r->path, 0, demo_body, NULL);
                break;
            case DEMO_SUM:
                sy_server_route(srv, "POST", r->path, SY_ROUTE_STREAM_BODY, demo_sum, NULL);
                break;
            case DEMO_STREAM:
                sy_server_route(srv, "GET", r->path, 0, demo_stream, NULL);
                break;
            case DEMO_DELAY:
                sy_server_route(srv, "GET", r->path, 0, demo_delay, NULL);
                break;
            case DEMO_REFLECT:
                sy_server_route(srv, NULL, r->path, 0, demo_reflect, (void *)g->reflect_token);
                break;
            }
            break;
        }
    }
    /* The metrics route of the metrics section, unless the file routes it itself or it has
     * a listener of its own. */
    int has = 0;
    for (size_t i = 0; i < c->nroutes; i++)
        has |= c->routes[i].kind == RK_METRICS;
    if (!e && !has && c->metrics_path && c->metrics_path[0] && !c->metrics_listen)
        e = add_metrics(srv, srv, g, c, c->metrics_path);
    return e;
}

/* The HTTP limits and timeouts that were given. */
static int put_limits(sy_server *srv, const serve_cfg *c)
{
    static const struct {
        size_t off;
        enum sy_server_opt opt;
        const char *name;
    } map[] = {
        {offsetof(serve_cfg, header_to), SY_OPT_HEADER_TIMEOUT_MS, "header timeout"},
        {offsetof(serve_cfg, write_to), SY_OPT_WRITE_TIMEOUT_MS, "write timeout"},
        {offsetof(serve_cfg, keepalive_to), SY_OPT_KEEPALIVE_TIMEOUT_MS, "keep-alive timeout"},
        {offsetof(serve_cfg, body_to), SY_OPT_BODY_TIMEOUT_MS, "body timeout"},
        {offsetof(serve_cfg, max_body), SY_OPT_MAX_BODY, "max_body"},
        {offsetof(serve_cfg, max_request_line), SY_OPT_MAX_REQUEST_LINE, "max_request_line"},
        {offsetof(serve_cfg, max_head), SY_OPT_MAX_HEAD, "max_head"},
        {offsetof(serve_cfg, max_headers), SY_OPT_MAX_HEADERS, "max_headers"},
        {offsetof(serve_cfg, max_conns), SY_OPT_MAX_CONNS, "max_conns"},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN_CLI(map); i++) {
        const u64opt *o = (const u64opt *)((const char *)c + map[i].off);
        if (!o->set)
            continue;
        int e = sy_server_set(srv, map[i].opt, o->v);
        if (e) {
            serve_say(SY_LOG_ERROR, "invalid %s %llu: %s", map[i].name, (unsigned long long)o->v,
                      sy_strerror(e));
            return 2;
        }
    }
    return 0;
}

static gen *gen_new(const serve_cfg *c)
{
    gen *g = calloc(1, sizeof(*g));
    if (g && c->reflect_token) {
        snprintf(g->tokens, sizeof(g->tokens), "%s", c->reflect_token);
        g->reflect_token = g->tokens;
    }
    return g;
}

/* Routes and limits into srv (a new server, or between reload_begin and commit). */
static int build(sy_server *srv, const serve_cfg *c)
{
    gen *g = gen_new(c);
    if (!g)
        return route_fail("/", "out of memory");
    sy_server_on_routes_retired(srv, gen_free, g);
    int e = put_limits(srv, c);
    if (!e)
        e = c->routes_set ? file_routes(srv, c, g) : default_routes(srv, c, g);
    return e;
}

static int build_metrics_server(sy_server *msrv, const serve_cfg *c)
{
    gen *g = gen_new(c);
    if (!g)
        return 2;
    sy_server_on_routes_retired(msrv, gen_free, g);
    const char *path = metrics_route(c)[0] ? metrics_route(c) : "/metrics";
    return add_metrics(msrv, g_srv, g, c, path);
}

/* Settings that are not routes or limits: logs and the deflate budget. */
static void put_globals(const serve_cfg *c)
{
    serve_log_set(c->log_json, c->access_log != 0);
    sy_set_log(serve_error_log, c->verbose ? SY_LOG_INFO : SY_LOG_WARN, NULL);
    if (c->deflate_budget.set)
        sy_ws_set_deflate_budget(c->deflate_budget.v);
}

/* Read the file (if any) and the flags into c. Returns 0, 1 (--help) or 2 (problems, said on
 * err). */
static int load(serve_cfg *c, const char *file, int argc, char **argv, FILE *err, int quiet)
{
    serve_cfg_init(c);
    if (file && serve_config_load(c, file, err) > 0)
        return 2;
    return apply_flags(c, argc, argv, quiet);
}

/* ---- SIGHUP ---- */

typedef struct reloader {
    const char *file;
    int argc;
    char **argv;
    serve_cfg *cur; /* what is running */
} reloader;

static int same_list(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

/* What a reload cannot change (it decides how the server listens): say so. */
static void restart_notes(const serve_cfg *o, const serve_cfg *n)
{
    char what[256] = "";
    size_t w = 0;
#define NOTE(cond, name)                                                                           \
    if (cond)                                                                                      \
    w += (size_t)snprintf(what + w, sizeof(what) - w, "%s%s", w ? ", " : "", name)
    NOTE(!same_list(o->listens, o->nlisten, n->listens, n->nlisten) || o->ntls != n->ntls,
         "listen");
    NOTE(o->workers.set != n->workers.set || o->workers.v != n->workers.v, "workers");
    NOTE(o->shared_listener != n->shared_listener, "shared_listener");
    NOTE(o->h2c != n->h2c, "h2c");
    NOTE((o->metrics_listen == NULL) != (n->metrics_listen == NULL) ||
             (o->metrics_listen && n->metrics_listen &&
              strcmp(o->metrics_listen, n->metrics_listen)),
         "metrics.listen");
    NOTE(o->drain_to.v != n->drain_to.v, "timeouts.drain");
    NOTE(o->ticket_rotate.set != n->ticket_rotate.set || o->ticket_rotate.v != n->ticket_rotate.v,
         "tls_ticket_rotate");
    NOTE((o->redis == NULL) != (n->redis == NULL) ||
             (o->redis && n->redis && strcmp(o->redis, n->redis)),
         "redis");
#undef NOTE
    if (w)
        serve_say(SY_LOG_WARN, "reload: %s changed; that takes a restart (kept as running)", what);
}

static void reload(reloader *rl)
{
    serve_cfg *n = malloc(sizeof(*n));
    char *errs = NULL;
    size_t errlen = 0;
    FILE *err = open_memstream(&errs, &errlen);
    if (!n || !err) {
        free(n);
        if (err)
            fclose(err);
        serve_say(SY_LOG_ERROR, "reload: out of memory");
        return;
    }
    int rc = load(n, rl->file, rl->argc, rl->argv, err, 1);
    fclose(err);
    if (rc) {
        for (char *l = errs; l && *l;) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = 0;
            serve_say(SY_LOG_ERROR, "reload: %s", l);
            l = nl ? nl + 1 : NULL;
        }
        serve_say(SY_LOG_ERROR, "reload: %s has problems; still serving the previous settings",
                  rl->file);
        free(errs);
        serve_cfg_free(n);
        free(n);
        return;
    }
    free(errs);
    restart_notes(rl->cur, n);
    /* The flags' listeners are what runs; keep them for the routes' decisions (/reflect). */
    int e = sy_server_reload_begin(g_srv);
    if (!e && (e = build(g_srv, n)) == 0)
        e = sy_server_reload_commit(g_srv);
    else
        sy_server_reload_abort(g_srv);
    if (!e && g_msrv && sy_server_reload_begin(g_msrv) == 0) {
        if (build_metrics_server(g_msrv, n) == 0)
            sy_server_reload_commit(g_msrv);
        else
            sy_server_reload_abort(g_msrv);
    }
    if (e) {
        serve_say(SY_LOG_ERROR, "reload: failed; still serving the previous settings");
        serve_cfg_free(n);
        free(n);
        return;
    }
    put_globals(n);
    serve_say(SY_LOG_INFO,
              "reloaded %s: routes, limits, timeouts, logs and metrics access apply to new "
              "connections (open ones keep theirs)",
              rl->file);
    serve_cfg_free(rl->cur);
    free(rl->cur);
    rl->cur = n;
}

static void *reload_main(void *arg)
{
    reloader *rl = arg;
    char c;
    while (read(g_pipe[0], &c, 1) == 1 && c == 'h')
        reload(rl);
    return NULL;
}

/* ---- start ---- */

static int listen_all(sy_server *srv, serve_cfg *c)
{
    static const char *const def = "127.0.0.1:8080";
    if (c->nlisten == 0 && c->tls.nlisten == 0 && c->ntls == 0)
        c->listens[c->nlisten++] = def;
    for (size_t i = 0; i < c->nlisten; i++) {
        int err = sy_server_listen(srv, c->listens[i]);
        if (err) {
            serve_say(SY_LOG_ERROR, "bad listen address '%s': %s", c->listens[i], sy_strerror(err));
            return 2;
        }
    }
    for (size_t i = 0; i < c->ntls; i++) {
        const serve_tls_listen *t = &c->tls_listens[i];
        sy_tls *tls;
        char err[512];
        if (sy_tls_new(&tls) < 0)
            return 2;
        for (size_t k = 0; k < t->ncert; k++)
            if (sy_tls_add_cert(tls, t->certs[k], t->keys[k], err, sizeof(err)) < 0) {
                serve_say(SY_LOG_ERROR, "%s", err);
                sy_tls_free(tls);
                return 2;
            }
        if (t->self_signed && sy_tls_add_self_signed(tls, "localhost") < 0) {
            sy_tls_free(tls);
            return 2;
        }
        if (c->ticket_rotate.set &&
            sy_tls_set_ticket_rotation(tls, (uint32_t)(c->ticket_rotate.v / 1000u)) < 0) {
            serve_say(SY_LOG_ERROR, "cannot set the session-ticket rotation");
            sy_tls_free(tls);
            return 2;
        }
        int e = sy_server_listen_tls(srv, t->addr, tls);
        sy_tls_free(tls);
        if (e < 0) {
            serve_say(SY_LOG_ERROR, "bad TLS listen address '%s': %s", t->addr, sy_strerror(e));
            return 2;
        }
    }
    int64_t rotate = c->ticket_rotate.set ? (int64_t)c->ticket_rotate.v : -1;
    return sy_cli_tls_listen(srv, &c->tls, rotate);
}

static int net_options(sy_server *srv, const serve_cfg *c)
{
    int e = 0;
    if (c->workers.set)
        e = sy_server_set(srv, SY_OPT_WORKERS, c->workers.v);
    if (!e && c->drain_to.set)
        e = sy_server_set(srv, SY_OPT_DRAIN_TIMEOUT_MS, c->drain_to.v);
    if (!e && c->shared_listener > 0)
        e = sy_server_set(srv, SY_OPT_SHARED_LISTENER, 1);
    if (!e && c->h2c == 0)
        e = sy_server_set(srv, SY_OPT_H2C, 0);
    if (!e && c->redis && (e = sy_server_set_redis(srv, c->redis, c->redis_prefix)) != 0) {
        serve_say(SY_LOG_ERROR, "invalid value for --redis: %s (%s)", c->redis, sy_strerror(e));
        return 2;
    }
    if (!e)
        e = sy_server_set(srv, SY_OPT_ACCESS_LOG_SWITCH, 1);
    if (e)
        serve_say(SY_LOG_ERROR, "invalid setting: %s", sy_strerror(e));
    return e ? 2 : 0;
}

/* The address a listener is reachable at, for the start-up line. */
static void say_urls(const serve_cfg *c, sy_server *srv)
{
    size_t ntls = c->tls.nlisten + c->ntls;
    for (size_t i = 0; i < c->nlisten + ntls; i++) {
        const char *addr = i < c->nlisten ? c->listens[i]
                           : i < c->nlisten + c->tls.nlisten
                               ? c->tls.listens[i - c->nlisten]
                               : c->tls_listens[i - c->nlisten - c->tls.nlisten].addr;
        char host[128];
        const char *colon = strrchr(addr, ':');
        size_t hl = colon ? (size_t)(colon - addr) : 0;
        snprintf(host, sizeof(host), "%.*s", (int)(hl < sizeof(host) - 1 ? hl : sizeof(host) - 1),
                 addr);
        if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
            snprintf(host, sizeof(host), "localhost");
        int secure = i >= c->nlisten, port = sy_server_port(srv, i);
        const char *ws = c->routes_set ? NULL : c->nws ? c->ws_paths[0] : "/echo";
        char echo[300] = "";
        if (ws)
            snprintf(echo, sizeof(echo), ", WebSocket echo %s://%s:%d%s", secure ? "wss" : "ws",
                     host, port, ws);
        serve_say(SY_LOG_INFO, "listening on %s://%s:%d/ (port %d)%s", secure ? "https" : "http",
                  host, port, port, echo);
    }
}

int sy_cli_serve(int argc, char **argv)
{
    const char *file = NULL;
    int check = 0;
    scan_args(argc, argv, &file, &check);
    serve_cfg *cfg = malloc(sizeof(*cfg));
    if (!cfg)
        return 1;
    int rc = load(cfg, file, argc, argv, stderr, 0);
    if (rc == 0 && check && !file) {
        fprintf(stderr, "switchyard: --check-config needs --config FILE\n");
        rc = 2;
    }
    if (rc || check) {
        if (check && !rc)
            fprintf(stdout, "%s: ok (%zu routes%s, %zu listeners)\n", file, cfg->nroutes,
                    cfg->routes_set ? "" : ": the demo set",
                    cfg->nlisten + cfg->ntls + cfg->tls.nlisten);
        serve_cfg_free(cfg);
        free(cfg);
        return rc == 1 ? 0 : rc;
    }
    put_globals(cfg);
    sy_server *srv;
    if (sy_server_new(&srv) < 0) {
        fprintf(stderr, "switchyard: out of memory\n");
        serve_cfg_free(cfg);
        free(cfg);
        return 1;
    }
    g_srv = srv;
    demo_chat_server = srv;
    if ((rc = net_options(srv, cfg)) || (rc = listen_all(srv, cfg)) || (rc = build(srv, cfg))) {
        g_srv = NULL;
        sy_server_free(srv);
        serve_cfg_free(cfg);
        free(cfg);
        return rc;
    }
    if (cfg->access_log != 0)
        sy_server_set_access_log(srv, serve_access_log, stdout);
    sy_server *msrv = NULL;
    if (cfg->metrics_listen && metrics_route(cfg)[0]) {
        if (sy_server_new(&msrv) < 0 || sy_server_set(msrv, SY_OPT_WORKERS, 1) < 0 ||
            sy_server_listen(msrv, cfg->metrics_listen) < 0 ||
            build_metrics_server(msrv, cfg) != 0) {
            serve_say(SY_LOG_ERROR, "bad metrics listen address '%s'", cfg->metrics_listen);
            sy_server_free(msrv);
            g_srv = NULL;
            sy_server_free(srv);
            serve_cfg_free(cfg);
            free(cfg);
            return 2;
        }
    }
    raise_fd_limit();
    int err = sy_server_start(srv);
    if (!err && msrv && (err = sy_server_start(msrv)) != 0)
        sy_server_stop(srv);
    if (err) {
        serve_say(SY_LOG_ERROR, "cannot start: %s", sy_strerror(err));
        if (msrv)
            sy_server_wait(srv);
        g_srv = NULL;
        sy_server_free(srv);
        sy_server_free(msrv);
        serve_cfg_free(cfg);
        free(cfg);
        return 1;
    }
    g_msrv = msrv;
    reloader rl = {file, argc, argv, cfg};
    pthread_t rth;
    int rth_ok = 0;
    if (pipe(g_pipe) == 0)
        rth_ok = pthread_create(&rth, NULL, reload_main, &rl) == 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (rth_ok && file)
        sigaction(SIGHUP, &sa, NULL);
    say_urls(cfg, srv);
    if (msrv)
        serve_say(SY_LOG_INFO, "metrics on http://%s%s", cfg->metrics_listen,
                  metrics_route(cfg)[0] ? metrics_route(cfg) : "/metrics");
    demo_push_start(srv);
    sy_server_wait(srv);
    if (msrv) {
        sy_server_stop(msrv);
        sy_server_wait(msrv);
    }
    demo_push_stop();
    signal(SIGHUP, SIG_IGN);
    if (rth_ok) {
        char q = 'q';
        ssize_t w = write(g_pipe[1], &q, 1);
        (void)w;
        pthread_join(rth, NULL);
    }
    sy_server_stats stats;
    sy_server_get_stats(srv, &stats);
    if (stats.rejected_conns)
        serve_say(SY_LOG_WARN, "%llu connections were refused over --max-conns",
                  (unsigned long long)stats.rejected_conns);
    if (stats.published || stats.publish_refused || stats.redis_received)
        serve_say(SY_LOG_INFO,
                  "pubsub: published=%llu refused=%llu delivered=%llu dropped=%llu "
                  "redis_received=%llu redis_failed=%llu redis_queued=%llu",
                  (unsigned long long)stats.published, (unsigned long long)stats.publish_refused,
                  (unsigned long long)stats.delivered, (unsigned long long)stats.dropped,
                  (unsigned long long)stats.redis_received, (unsigned long long)stats.redis_failed,
                  (unsigned long long)stats.redis_queued);
    serve_say(SY_LOG_INFO, "stopped");
    g_srv = g_msrv = NULL;
    sy_server_free(msrv);
    sy_server_free(srv);
    serve_cfg_free(rl.cur);
    free(rl.cur);
    return 0;
}
