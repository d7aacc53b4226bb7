/* `switchyard serve`, in parts: the settings (from defaults, then --config FILE, then the
 * flags), the YAML reader (config.c), the demo routes (serve_demo.c) and the logs
 * (serve_log.c). */
#ifndef SY_CLI_SERVE_H
#define SY_CLI_SERVE_H

#include "cli/cli.h"

#include <stdio.h>

typedef struct u64opt {
    uint64_t v;
    uint8_t set;
} u64opt;

/* WebSocket options of a route; unset ones come from the server-wide defaults. */
typedef struct serve_ws {
    u64opt max_message, ping, pong, idle, high_water, max_buffer, window, memlevel;
    int deflate, bp, require_sub; /* -1 unset */
    const char *subs[16], *origins[16];
    size_t nsub, norigin;
} serve_ws;

enum { RK_STATIC = 1, RK_WS, RK_RAW, RK_DEMO, RK_METRICS };
enum { DEMO_BODY = 1, DEMO_SUM, DEMO_STREAM, DEMO_DELAY, DEMO_REFLECT, DEMO_HANDSHAKE, DEMO_CHAT };

typedef struct serve_route {
    const char *path;
    int kind;
    int prefix;           /* -1 unset (static: prefix, others: exact) */
    int upgrade_required; /* raw */
    const char *root;     /* static */
    serve_ws ws;          /* websocket echo */
    const char *raw[8];   /* raw: "echo", "upper" */
    size_t nraw;
    int demo; /* DEMO_* */
    int line;
} serve_route;

/* A TLS listener from the file, with its own certificates. */
typedef struct serve_tls_listen {
    const char *addr;
    const char *certs[8], *keys[8];
    size_t ncert;
    int self_signed;
} serve_tls_listen;

typedef struct serve_cfg {
    const char *file;
    const char *listens[16];
    size_t nlisten;
    serve_tls_listen tls_listens[8];
    size_t ntls;
    sy_cli_tls tls;       /* the --tls-* flags */
    u64opt ticket_rotate; /* ms, a whole number of seconds; 0 = no tickets (all TLS listeners) */
    u64opt workers, max_conns, header_to, write_to, keepalive_to, body_to, drain_to;
    u64opt max_body, max_request_line, max_head, max_headers;
    int shared_listener, h2c; /* -1 unset */
    serve_ws ws;              /* defaults for every WebSocket route */
    u64opt deflate_budget;
    u64opt raw_idle, raw_high, raw_max;
    const char *root;
    const char *ws_paths[16];
    size_t nws;
    serve_route routes[64];
    size_t nroutes;
    int routes_set;           /* the file has routes: they replace the demo set */
    const char *metrics_path; /* NULL: /metrics; "": none */
    const char *metrics_listen;
    int metrics_public;
    const char *metrics_token;
    int log_json, access_log, verbose; /* access_log -1 unset (on) */
    int reflect;                       /* -1 auto */
    const char *reflect_token;
    const char *redis, *redis_prefix; /* topics across processes (/chat) */
    /* strings owned by this config (freed by serve_cfg_free) */
    char **owned;
    size_t nowned, capowned;
} serve_cfg;

void serve_cfg_init(serve_cfg *c);
void serve_cfg_free(serve_cfg *c);
/* A copy of s owned by c (NULL without memory). */
const char *serve_cfg_str(serve_cfg *c, const char *s, size_t n);

/* Read a YAML file into c (config.c). Every problem is printed to err as
 * "FILE:LINE:COL: message". Returns the number of problems (0: valid). */
int serve_config_load(serve_cfg *c, const char *file, FILE *err);
/* Parse a value of the given kind (SY_CLI_SIZE, ...): 0, or -1 with *expect saying what was
 * expected (values.c). */
int sy_cli_parse(const char *text, int kind, uint64_t *out, const char **expect);

/* ---- logs (serve_log.c) ---- */
void serve_log_set(int json, int access);
int serve_log_json(void);
void serve_access_log(const sy_access_entry *e, void *ud);
void serve_error_log(int level, const char *msg, void *ud);
/* A line of the server's own (start-up, reload, stop), in the chosen format, on stderr. */
void serve_say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- demo routes (serve_demo.c) ---- */
typedef struct raw_route {
    int upper;
    uint64_t idle_ms, high_water, max_buffer;
    int idle_set;
} raw_route;
void demo_raw_open(sy_stream *s, sy_req *req, void *ud);
void demo_raw_plain(sy_req *req, void *ud);
void demo_body(sy_req *req, void *ud);
void demo_sum(sy_req *req, void *ud);
void demo_stream(sy_req *req, void *ud);
void demo_delay(sy_req *req, void *ud);
void demo_reflect(sy_req *req, void *token);
void demo_echo_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud);
/* /handshake: a WebSocket echo whose first message (JSON) shows the switch as the server saw
 * it, and which then gets the server's numbers pushed every second. */
void demo_handshake_open(sy_ws *ws, void *ud);
void demo_handshake_message(sy_ws *ws, int opcode, const void *data, size_t len, void *ud);
void demo_handshake_close(sy_ws *ws, const sy_ws_close_info *info, void *ud);
/* /chat?room=NAME: every message to everyone in the room (topics; across processes with
 * Redis). demo_chat_server is where it publishes. */
extern sy_server *demo_chat_server;
int demo_chat_accept(sy_req *req, const char **reason, void *ud);
void demo_chat_open(sy_ws *ws, void *topic);
void demo_chat_message(sy_ws *ws, int opcode, const void *data, size_t len, void *topic);
void demo_chat_close(sy_ws *ws, const sy_ws_close_info *info, void *topic);
/* Start / stop the thread pushing numbers to /handshake sockets. */
int demo_push_start(sy_server *srv);
void demo_push_stop(void);

/* ---- /metrics access ---- */
typedef struct metrics_policy {
    sy_server *srv; /* whose metrics */
    int public_;
    char token[256];
} metrics_policy;
void serve_metrics_handler(sy_req *req, void *policy);

#endif
