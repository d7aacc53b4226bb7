/* `switchyard probe URL`: diagnose a protocol upgrade end to end and explain what is wrong.
 * Parses the options and the URL, runs the walks that apply, prints the report, and exits
 * 0 (all good), 1 (problems found) or 2 (could not connect). */
#include "cli/cli.h"
#include "cli/probe.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: switchyard probe URL [options]\n"
           "Diagnose a protocol upgrade end to end: DNS, TCP, TLS, the WebSocket handshake\n"
           "(every field checked against RFC 6455 / RFC 9110), a message round trip, ping/pong\n"
           "and close, security checks, what proxies in between changed (with a switchyard\n"
           "reflect route behind them), and the HTTP/2 ways in (h2c upgrade, prior knowledge,\n"
           "h2 via ALPN, WebSocket over HTTP/2 per RFC 8441). Each problem is a finding with a\n"
           "stable ID, a severity, what happened, the likely causes and the fix (docs/probe.md).\n"
           "URL: ws://, wss://, http:// or https://HOST[:PORT][/PATH]\n"
           "options:\n"
           "  --protocol P        websocket | h2c | h2 | all (default: websocket for ws(s)://,\n"
           "                      h2c for http://, h2 for https://); h2c (upgrade and prior\n"
           "                      knowledge) applies to cleartext, h2 (ALPN) to TLS; both\n"
           "                      include WebSocket over HTTP/2 (RFC 8441)\n"
           "  --path-only         only the handshake and session of the URL itself: no security\n"
           "                      checks, no reflect comparison, no other protocols\n"
           "  --json              the report as one JSON object on stdout\n"
           "  -H, --header 'N: V' an extra request field (repeatable)\n"
           "  --origin ORIGIN     send Origin (as a browser would)\n"
           "  --subprotocol NAME  offer a subprotocol (repeatable, in order)\n"
           "  --timeout S         bound for every step, in seconds (default 5; fractions ok)\n"
           "  --idle S            keep the WebSocket idle S seconds and report whether and when\n"
           "                      something cuts it, and whether server pings keep it alive\n"
           "  --insecure          certificate problems are reported as info, not errors\n"
           "  --cacert FILE       trust the CA certificates in FILE\n"
           "  --reflect PATH      the reflect route to compare against (default /reflect)\n"
           "  --reflect-token T   token for a reflect route that requires one\n"
           "  --no-color          plain output even on a terminal\n"
           "  --list-findings     print every finding ID with its severity and title (with\n"
           "                      --json: the whole catalogue, causes and fixes included)\n"
           "exit status: 0 all good (info notes only), 1 problems found (warnings or errors),\n"
           "             2 could not connect or got no answer (the step is named), usage errors\n");
}

static int parse_url(probe *P, const char *url)
{
    const char *p = strstr(url, "://");
    if (!p || p - url > 5)
        return -1;
    size_t sl = (size_t)(p - url);
    memcpy(P->scheme, url, sl);
    P->scheme[sl] = 0;
    if (!strcmp(P->scheme, "ws") || !strcmp(P->scheme, "http"))
        P->tls = 0;
    else if (!strcmp(P->scheme, "wss") || !strcmp(P->scheme, "https"))
        P->tls = 1;
    else
        return -1;
    p += 3;
    const char *slash = strpbrk(p, "/?");
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    if (!hl || hl >= sizeof(P->hostport))
        return -1;
    char hp[300];
    memcpy(hp, p, hl);
    hp[hl] = 0;
    if (strchr(hp, '@'))
        return -1;
    P->port = P->tls ? 443 : 80;
    char *port = NULL;
    if (hp[0] == '[') {
        char *e = strchr(hp, ']');
        if (!e)
            return -1;
        *e = 0;
        snprintf(P->host, sizeof(P->host), "%s", hp + 1);
        if (e[1] == ':')
            port = e + 2;
        else if (e[1])
            return -1;
    } else {
        port = strchr(hp, ':');
        if (port)
            *port++ = 0;
        snprintf(P->host, sizeof(P->host), "%s", hp);
    }
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (*end || v <= 0 || v > 65535)
            return -1;
        P->port = (int)v;
    }
    if (!P->host[0])
        return -1;
    memcpy(P->hostport, p, hl);
    P->hostport[hl] = 0;
    const char *t = slash ? slash : "/";
    if (strlen(t) + 2 > sizeof(P->target))
        return -1;
    snprintf(P->target, sizeof(P->target), "%s%s", t[0] == '?' ? "/" : "", t);
    if (strchr(P->target, '#'))
        *strchr(P->target, '#') = 0;
    for (const char *c = P->target; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return -1;
    return 0;
}

static void list_findings(int json)
{
    if (json)
        probe_print_catalogue_json();
    for (int i = 0; i < SY_PF__COUNT && !json; i++) {
        const sy_probe_def *d = sy_probe_def_of((sy_probe_id)i);
        printf("%-32s %-8s %s\n", d->id, sy_probe_sev_name(d->sev), d->title);
    }
}

/* When the handshake failed and the reflect route shows a hop that stripped the upgrade,
 * say so on the handshake's finding too: that is the cause. */
static void explain_by_reflect(probe *P)
{
    sy_probe_finding *main = NULL;
    for (size_t i = 0; i < P->rep.nfindings && !main; i++)
        if (!strcmp(P->rep.findings[i].path, "websocket") &&
            P->rep.findings[i].sev >= SY_PROBE_ERROR)
            main = &P->rep.findings[i];
    if (!main)
        return;
    const char *why = sy_probe_has(&P->rep, "reflect", SY_PF_PROXY_HTTP10_UPSTREAM)
                          ? "a hop forwards HTTP/1.0 upstream (PROXY_HTTP10_UPSTREAM)"
                      : sy_probe_has(&P->rep, "reflect", SY_PF_PROXY_STRIPPED_UPGRADE)
                          ? "a hop removed Upgrade (PROXY_STRIPPED_UPGRADE)"
                      : sy_probe_has(&P->rep, "reflect", SY_PF_PROXY_STRIPPED_CONNECTION)
                          ? "a hop replaced Connection (PROXY_STRIPPED_CONNECTION)"
                          : NULL;
    if (!why)
        return;
    char hint[sizeof(main->hint) + 128];
    int n = snprintf(hint, sizeof(hint), "the reflect route shows the cause: %s%s%s", why,
                     main->hint[0] ? "; " : "", main->hint);
    if (n > 0 && (size_t)n >= sizeof(main->hint)) /* cut the quoted wire, keep the cause */
        memcpy(hint + sizeof(main->hint) - 4, "...", 4);
    memcpy(main->hint, hint, sizeof(main->hint));
}

static int valid_field_line(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return 0;
    for (const char *c = s; c < colon; c++)
        if (!sy_field_is_tchar((unsigned char)*c))
            return 0;
    for (const char *c = colon; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            return 0;
    return 1;
}

int sy_cli_probe(int argc, char **argv)
{
    enum {
        O_PROTO = 1,
        O_PATHONLY,
        O_JSON,
        O_HEADER,
        O_ORIGIN,
        O_SUB,
        O_TIMEOUT,
        O_IDLE,
        O_INSECURE,
        O_CACERT,
        O_REFLECT,
        O_RTOKEN,
        O_NOCOLOR,
        O_LIST,
        O_HELP,
        O_VERBOSE
    };
    static const struct option longopts[] = {
        {"protocol", required_argument, 0, O_PROTO},
        {"path-only", no_argument, 0, O_PATHONLY},
        {"json", no_argument, 0, O_JSON},
        {"header", required_argument, 0, O_HEADER},
        {"origin", required_argument, 0, O_ORIGIN},
        {"subprotocol", required_argument, 0, O_SUB},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"idle", required_argument, 0, O_IDLE},
        {"insecure", no_argument, 0, O_INSECURE},
        {"cacert", required_argument, 0, O_CACERT},
        {"reflect", required_argument, 0, O_REFLECT},
        {"reflect-token", required_argument, 0, O_RTOKEN},
        {"no-color", no_argument, 0, O_NOCOLOR},
        {"list-findings", no_argument, 0, O_LIST},
        {"help", no_argument, 0, O_HELP},
        {"verbose", no_argument, 0, O_VERBOSE},
        {0, 0, 0, 0},
    };
    static probe P;
    memset(&P, 0, sizeof(P));
    sy_probe_report_init(&P.rep);
    P.timeout_ms = 5000;
    P.reflect_path = "/reflect";
    P.color = isatty(1) && !getenv("NO_COLOR");
    const char *proto = NULL;
    int c, list = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "H:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_PROTO:
            proto = optarg;
            if (strcmp(proto, "websocket") && strcmp(proto, "h2c") && strcmp(proto, "h2") &&
                strcmp(proto, "all")) {
                fprintf(stderr, "switchyard probe: --protocol must be websocket, h2c, h2 or all\n");
                return 2;
            }
            break;
        case O_PATHONLY:
            P.path_only = 1;
            break;
        case O_JSON:
            P.json = 1;
            break;
        case 'H':
        case O_HEADER:
            if (!valid_field_line(optarg) || P.nextra == PROBE_MAX_EXTRA) {
                fprintf(stderr, "switchyard probe: bad or too many -H 'Name: value': %s\n", optarg);
                return 2;
            }
            P.extra[P.nextra++] = optarg;
            break;
        case O_ORIGIN:
            P.origin = optarg;
            break;
        case O_SUB:
            if (P.nsub == SY_PROBE_MAX_OFFER || !optarg[0]) {
                fprintf(stderr, "switchyard probe: at most %d subprotocols\n", SY_PROBE_MAX_OFFER);
                return 2;
            }
            P.subs[P.nsub++] = optarg;
            break;
        case O_TIMEOUT: {
            double v = strtod(optarg, NULL);
            if (!(v > 0 && v <= 3600)) {
                fprintf(stderr, "switchyard probe: --timeout must be in (0, 3600] seconds\n");
                return 2;
            }
            P.timeout_ms = (int)(v * 1000);
            if (P.timeout_ms < 1)
                P.timeout_ms = 1;
            break;
        }
        case O_IDLE: {
            long v = strtol(optarg, NULL, 10);
            if (v < 0 || v > 86400) {
                fprintf(stderr, "switchyard probe: --idle must be 0..86400 seconds\n");
                return 2;
            }
            P.idle_s = (int)v;
            break;
        }
        case O_INSECURE:
            P.insecure = 1;
            break;
        case O_CACERT:
            P.cafile = optarg;
            break;
        case O_REFLECT:
            if (optarg[0] != '/') {
                fprintf(stderr, "switchyard probe: --reflect takes a path starting with /\n");
                return 2;
            }
            P.reflect_path = optarg;
            P.reflect_explicit = 1;
            break;
        case O_RTOKEN:
            P.reflect_token = optarg;
            break;
        case O_NOCOLOR:
            P.color = 0;
            break;
        case O_LIST:
            list = 1;
            break;
        case O_VERBOSE:
            P.verbose = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (list) {
        list_findings(P.json);
        return 0;
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    const char *url = argv[optind];
    if (parse_url(&P, url) < 0) {
        fprintf(stderr,
                "switchyard probe: cannot parse URL '%s' (ws://, wss://, http://, "
                "https://HOST[:PORT][/PATH])\n",
                url);
        return 2;
    }
    int ws_url = P.scheme[0] == 'w';
    if (!proto) /* an http(s) URL asks about HTTP/2; a ws(s) URL about WebSocket */
        proto = ws_url ? "websocket" : P.tls ? "h2" : "h2c";
    int all = !strcmp(proto, "all");
    P.do_ws = all || !strcmp(proto, "websocket");
    P.do_h2c = !P.tls && (all || !strcmp(proto, "h2c"));
    P.do_h2 = P.tls && (all || !strcmp(proto, "h2"));
    if (!P.do_ws && !P.do_h2c && !P.do_h2) {
        fprintf(stderr,
                "switchyard probe: --protocol %s does not apply to a %s URL (h2c is "
                "cleartext, h2 is TLS)\n",
                proto, P.tls ? "TLS" : "cleartext");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    P.t_start = probe_now_ms();
    if (P.do_ws) {
        probe_walk_ws(&P);
        /* After a fatal step (a black hole, a dead port) every other walk would only wait
         * out its own timeout: stop there. */
        if (sy_probe_exit_code(&P.rep) == 2)
            P.unreachable = 1;
        if (!P.unreachable && !P.path_only) {
            if (P.ws_switched)
                probe_walk_security(&P);
            probe_walk_reflect(&P);
            explain_by_reflect(&P);
        }
    }
    if (!P.unreachable && (!P.path_only || !P.do_ws)) {
        if (P.do_h2c)
            probe_walk_h2c(&P);
        if (P.do_h2)
            probe_walk_h2(&P);
    }
    if (P.json)
        probe_print_json(&P, url);
    else
        probe_print_human(&P, url);
    return sy_probe_exit_code(&P.rep);
}
