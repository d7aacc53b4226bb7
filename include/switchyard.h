/*
 * switchyard.h: the one public header of libswitchyard.
 *
 * libswitchyard is an embeddable HTTP/1.1 server with a generic Upgrade mechanism
 * (RFC 9110 §7.8) and a WebSocket engine (RFC 6455, RFC 7692) on top of an epoll loop.
 *
 * Conventions (see docs/design.md for the numbered lifecycle rules):
 *  - Every name starts with sy_. Handles are opaque.
 *  - Functions return 0 or a negative enum sy_err; byte counts are ssize_t (count or -err).
 *  - Callbacks run on the worker thread that owns the connection. Calling sy_*_close() from
 *    inside any callback is safe: the object is freed only after the callback returns.
 *  - Unless stated otherwise, pointers handed to a callback are valid only during that call.
 *  - Functions on a request/WebSocket/stream handle must be called on its worker thread;
 *    use sy_loop_post() (or the *_async helpers) to reach it from another thread.
 */
#ifndef SWITCHYARD_H
#define SWITCHYARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_VERSION "0.1.0"

#if defined(__GNUC__)
#define SY_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define SY_WARN_UNUSED
#endif

/* ---------------------------------------------------------------------------------------------
 * Errors: one negative space, grouped by hundreds. Fatal errors are <= -900.
 */
enum sy_err {
    SY_OK = 0,
    /* API misuse: -100 */
    SY_EINVAL = -101,    /* an argument is invalid */
    SY_ESTATE = -102,    /* the call is not allowed in the object's current state */
    SY_ENOTFOUND = -103, /* no such route/header/entry */
    SY_EEXIST = -104,    /* already registered */
    SY_ERANGE = -105,    /* value out of the allowed range */
    /* I/O: -200 */
    SY_EIO = -201,        /* a system call failed; errno has the detail */
    SY_ECLOSED = -202,    /* the connection is closed or closing */
    SY_EADDR = -203,      /* an address could not be parsed or resolved */
    SY_ETIMEDOUT = -204,  /* a timer expired */
    SY_EAGAIN = -205,     /* try again later (backpressure) */
    SY_ELIMIT = -206,     /* a configured limit was reached */
    SY_EADDRINUSE = -207, /* the address is already in use (another process listens there) */
    /* HTTP/1: -300 */
    SY_EHTTP_SYNTAX = -301,     /* malformed request (400) */
    SY_EHTTP_URI_LONG = -302,   /* request line too long (414) */
    SY_EHTTP_HEAD_LARGE = -303, /* header section too large / too many fields (431) */
    SY_EHTTP_VERSION = -304,    /* unsupported HTTP version (505) */
    SY_EHTTP_FRAMING = -305,    /* invalid message framing: CL/TE conflicts (400) */
    SY_EHTTP_CODING = -306,     /* unknown transfer coding (501) */
    SY_EHTTP_BODY_LARGE = -307, /* body larger than allowed (413) */
    SY_EHTTP_EXPECT = -308,     /* unsupported expectation (417) */
    SY_EHTTP_CHUNK = -309,      /* malformed chunked body (400) */
    /* WebSocket: -400 */
    SY_EWS_PROTOCOL = -401,  /* protocol violation (close 1002) */
    SY_EWS_UTF8 = -402,      /* invalid UTF-8 in a text message or close reason (close 1007) */
    SY_EWS_TOO_BIG = -403,   /* message larger than allowed (close 1009) */
    SY_EWS_HANDSHAKE = -404, /* handshake refused or invalid */
    SY_EWS_EXTENSION = -405, /* extension negotiation or inflate failure (close 1002/1007) */
    SY_EWS_POLICY = -406,    /* policy violation (close 1008) */
    /* TLS: -600 */
    SY_ETLS = -601,        /* TLS failed on a connection (handshake or record error) */
    SY_ETLS_CERT = -602,   /* a certificate or key cannot be used (the message says why) */
    SY_ETLS_VERIFY = -603, /* client: the server's certificate or name did not verify */
    /* Fatal: the object must be destroyed. */
    SY_ENOMEM = -901,
    SY_EINTERNAL = -902,
};

/* A short English sentence for what a call returned. Never NULL; static storage.
 *  - err < 0: the error's sentence ("invalid argument"); "unknown error" for a value that is
 *    no enum sy_err.
 *  - err == 0 (SY_OK, SY_WS_SEND_OK, SY_STREAM_WRITE_OK): "ok".
 *  - err > 0: the positive results of sy_ws_send and sy_stream_write, which share their
 *    values: SY_WS_SEND_BACKPRESSURE (= SY_STREAM_WRITE_BACKPRESSURE, "queued, but the send
 *    buffer is above its high-water mark") and SY_WS_SEND_DROPPED ("not queued: ..."). Any
 *    other positive value: "unknown result". */
const char *sy_strerror(int err);
/* The enum name of the same ("SY_EINVAL", "SY_OK", "SY_WS_SEND_BACKPRESSURE" for 1, also when
 * it came from sy_stream_write), "SY_EUNKNOWN" for any value not listed above. Never NULL;
 * static storage. */
const char *sy_err_name(int err);
/* Non-zero when err means the object it came from must be destroyed. */
int sy_err_is_fatal(int err);

/* Replace the allocator used by the whole library. Call before creating any object.
 * The functions must be thread-safe. Passing NULLs restores malloc/realloc/free. */
void sy_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                      void (*free_fn)(void *));

/* ---------------------------------------------------------------------------------------------
 * Logging. The library logs through one sink; the default writes to stderr.
 */
enum sy_log_level { SY_LOG_ERROR = 0, SY_LOG_WARN = 1, SY_LOG_INFO = 2, SY_LOG_DEBUG = 3 };
typedef void (*sy_log_fn)(int level, const char *msg, void *ud);
/* Set the log sink and the most verbose level that reaches it. fn NULL silences logging. */
void sy_set_log(sy_log_fn fn, int max_level, void *ud);

/* ---------------------------------------------------------------------------------------------
 * Event loop. Each worker thread runs one loop. Embedders mostly use sy_server, which owns its
 * loops; sy_loop is exposed for posting work and for the WebSocket client.
 */
typedef struct sy_loop sy_loop;
typedef void (*sy_task_fn)(sy_loop *loop, void *ud);

/* Create a loop. On success *out owns a loop that must be released with sy_loop_free. */
int sy_loop_new(sy_loop **out) SY_WARN_UNUSED;
/* Run until sy_loop_stop is called (from any thread or a callback). Returns 0 or -err. */
int sy_loop_run(sy_loop *loop);
/* Ask the loop to return from sy_loop_run. Thread-safe and async-signal-safe. */
void sy_loop_stop(sy_loop *loop);
/* Free a loop that is not running. Open connections are closed without callbacks. */
void sy_loop_free(sy_loop *loop);
/* Run fn(loop, ud) on the loop's thread soon. Thread-safe; wakes the loop through an eventfd.
 * Returns 0, SY_ENOMEM, or SY_ECLOSED when the loop was freed (fn will not run). Tasks
 * posted before sy_loop_free still run, inside sy_loop_free on its thread. Posting to a
 * freed server loop obtained from sy_req_loop of a request you still hold is safe. */
int sy_loop_post(sy_loop *loop, sy_task_fn fn, void *ud);
/* Milliseconds of the loop's cached monotonic clock (updated once per iteration). */
uint64_t sy_loop_now_ms(const sy_loop *loop);

/* Timers on a loop: one-shot or repeating, run on the loop's thread.
 *  - sy_loop_timer_new reserves the timer's slot in the loop's timer heap, so it is the one
 *    call that can fail (SY_ENOMEM); starting, stopping and restarting never fail.
 *  - All calls on a timer are made on its loop's thread: from a callback of that loop, a
 *    task posted to it (sy_loop_post), or while the loop is not running. To put a timer on a
 *    server worker's loop, post a task to sy_server_loop(srv, i).
 *  - Calling start, stop or free from inside the timer's own callback is safe: stop (or free)
 *    there ends a repeating timer, start there replaces its schedule.
 *  - Free every timer before its loop, or after: a timer whose loop was freed is inert (it
 *    never fires; free still releases it). For a server's loops, that is sy_server_free. */
typedef struct sy_loop_timer sy_loop_timer;
typedef void (*sy_loop_timer_fn)(sy_loop_timer *t, void *ud);
int sy_loop_timer_new(sy_loop *loop, sy_loop_timer_fn fn, void *ud,
                      sy_loop_timer **out) SY_WARN_UNUSED;
/* Fire after delay_ms (counted from the loop's cached clock, sy_loop_now_ms), then every
 * repeat_ms when repeat_ms > 0 (a repeating timer that fell behind skips the missed beats:
 * it never fires twice in one iteration). Restarting an armed timer replaces its schedule. */
void sy_loop_timer_start(sy_loop_timer *t, uint64_t delay_ms, uint64_t repeat_ms);
void sy_loop_timer_stop(sy_loop_timer *t);
/* Non-zero while the timer is armed (inside its callback: only once restarted, or when
 * it repeats). */
int sy_loop_timer_active(const sy_loop_timer *t);
/* Stop and release the timer (safe inside its callback; NULL is ignored). */
void sy_loop_timer_free(sy_loop_timer *t);

/* ---------------------------------------------------------------------------------------------
 * Server: listeners, workers, routes.
 */
typedef struct sy_server sy_server;
typedef struct sy_route sy_route;
typedef struct sy_req sy_req;

/* Create a server with defaults (see sy_server_set_*). *out must be released with
 * sy_server_free after sy_server_wait returns (or if it was never started). */
int sy_server_new(sy_server **out) SY_WARN_UNUSED;
/* Free the server and everything it owns. A server still running is stopped first and
 * waited for (sy_server_stop + sy_server_wait: up to the drain timeout); never call it from
 * one of the server's own threads. */
void sy_server_free(sy_server *srv);

/* Add a listen address: "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4), "[::]:0".
 * Port 0 picks a free port, shared by all workers; see sy_server_port. May be called
 * several times. Binding happens in sy_server_start. */
int sy_server_listen(sy_server *srv, const char *addr);

/* ---------------------------------------------------------------------------------------------
 * TLS (OpenSSL 3). A context holds certificates (chosen per connection by SNI), the ALPN
 * list and the policy: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers (ECDHE with AES-GCM
 * or CHACHA20-POLY1305), the server's cipher order, groups X25519/P-256/P-384, no
 * compression, no renegotiation, session tickets and a server-side session cache. A TLS
 * listener serves the same routes as a cleartext one; handlers cannot tell them apart.
 * The handshake must finish within SY_OPT_HEADER_TIMEOUT_MS, like a request head.
 */
typedef struct sy_tls sy_tls;

/* Create an empty context (ALPN "h2", "http/1.1"). Release with sy_tls_free. */
int sy_tls_new(sy_tls **out) SY_WARN_UNUSED;
/* Release the caller's reference. Listeners given the context keep their own, so it may be
 * freed right after sy_server_listen_tls; the last user frees it. */
void sy_tls_free(sy_tls *t);
/* Add a certificate (PEM; intermediate certificates may follow it in the same file) and its
 * unencrypted PEM private key. The first one added is the default, sent to clients without
 * SNI or naming no certificate's host; the others are chosen by the name in their
 * subjectAltName (or CN), wildcards included. Checks that the files are readable PEM, that
 * the key matches, and that the certificate is valid now. Returns 0, SY_ETLS_CERT with one
 * line in err naming the file and the problem (err may be NULL), SY_ESTATE once a listener
 * uses the context, or SY_ENOMEM. */
int sy_tls_add_cert(sy_tls *t, const char *cert_pem_file, const char *key_pem_file, char *err,
                    size_t errlen);
/* Add a certificate generated in memory for testing: an EC P-256 key, self-signed, for
 * common_name (NULL: "localhost") with subjectAltName localhost, 127.0.0.1 and ::1. Clients
 * cannot verify it. Returns 0, SY_EINVAL (name longer than 64 bytes), SY_ESTATE, SY_ENOMEM. */
int sy_tls_add_self_signed(sy_tls *t, const char *common_name);
/* Replace the ALPN protocols, most preferred first (NULL-terminated; default {"h2",
 * "http/1.1"}); the first of them the client also offers is selected, and a client offering
 * none of them is refused (RFC 7301). The server speaks HTTP/2 on a connection that selected
 * "h2" and HTTP/1.1 on any other. Returns 0, SY_EINVAL, SY_ESTATE or SY_ENOMEM. */
int sy_tls_set_alpn(sy_tls *t, const char *const *protocols);
/* Session tickets (RFC 5077 / RFC 8446 §4.6.1): the keys that seal them are drawn at random,
 * held in memory only, and rotated every `seconds` (default 3600). The current key seals new
 * tickets; the 2 before it still open tickets (a ticket opened with one of them is
 * replaced by a new one), and a key is wiped from memory when it retires, so a ticket is
 * accepted for 2 to 3 rotation periods after it was issued, never longer. Clients are told
 * 2 periods (the ticket lifetime hint, and the session timeout of the server's session
 * cache). All contexts given to one server with the same rotation share their keys, so a
 * ticket resumes on any worker and any of its TLS listeners; keys are never shared between
 * servers or processes. 0 turns tickets off: TLS 1.2 then resumes by session ID from the
 * server's cache, and TLS 1.3 gets tickets that only name a cache entry ("stateful"), with
 * no key to steal. Returns 0, SY_ERANGE (more than 302400 s, 3.5 days: TLS 1.3 caps a
 * ticket's life at 7 days), SY_ESTATE once a listener uses the context, SY_EINVAL,
 * SY_ENOMEM. */
int sy_tls_set_ticket_rotation(sy_tls *t, uint32_t seconds);
/* Add a listen address (as sy_server_listen) whose connections speak TLS with this context.
 * The server takes its own reference. Returns 0, SY_EINVAL (no certificate yet), SY_EADDR,
 * SY_ENOMEM. After this the context can no longer be changed. */
int sy_server_listen_tls(sy_server *srv, const char *addr, sy_tls *tls);

/* Limits and timeouts. Each returns 0 or SY_ERANGE. Call before sy_server_start; while the
 * server runs, SY_OPT_MAX_CONNS may change at any time and the HTTP limits and timeouts
 * (SY_OPT_HEADER_TIMEOUT_MS .. SY_OPT_MAX_BODY, SY_OPT_WRITE_TIMEOUT_MS) between
 * sy_server_reload_begin and sy_server_reload_commit; the others return SY_ESTATE. */
enum sy_server_opt {
    SY_OPT_WORKERS = 1,          /* worker threads; 0 = number of online CPUs (default) */
    SY_OPT_MAX_CONNS,            /* open connections per server (default 10000) */
    SY_OPT_HEADER_TIMEOUT_MS,    /* time to receive a complete request head (default 10000) */
    SY_OPT_KEEPALIVE_TIMEOUT_MS, /* idle time between requests (default 60000) */
    SY_OPT_BODY_TIMEOUT_MS,      /* max gap between body bytes (default 30000) */
    SY_OPT_DRAIN_TIMEOUT_MS,     /* graceful shutdown limit (default 5000) */
    SY_OPT_MAX_REQUEST_LINE,     /* bytes; beyond: 414 (default 8192) */
    SY_OPT_MAX_HEAD,             /* bytes of request head; beyond: 431 (default 65536) */
    SY_OPT_MAX_HEADERS,          /* header fields; beyond: 431 (default 100) */
    SY_OPT_MAX_BODY,             /* bytes of request body; beyond: 413 (default 8 MiB) */
    SY_OPT_WRITE_TIMEOUT_MS,     /* max time a response write may stall (default 30000) */
    SY_OPT_SHARED_LISTENER,      /* 1 = one listening socket shared by all workers (woken one
                                    at a time: idle workers take new connections); 0 = one
                                    SO_REUSEPORT socket per worker (default 0) */
    SY_OPT_H2C,                  /* 1 = cleartext listeners speak HTTP/2 too: with prior
                                    knowledge (a connection that starts with the HTTP/2
                                    preface) and after "Upgrade: h2c" (default 1); 0 = they
                                    speak HTTP/1.1 only (the preface is refused, h2c ignored) */
    SY_OPT_ACCESS_LOG_SWITCH,    /* 1 = the access log also gets an entry when a connection
                                    switches protocols (SY_ACCESS_SWITCH), not only when it
                                    closes (default 0) */
};
int sy_server_set(sy_server *srv, enum sy_server_opt opt, uint64_t value);

/* Access log: called once per finished request and once per upgraded connection when it
 * closes (and, with SY_OPT_ACCESS_LOG_SWITCH, when it switches), on the worker thread. */
enum sy_access_event {
    SY_ACCESS_REQUEST = 0, /* a request was answered */
    SY_ACCESS_SWITCH = 1,  /* a connection switched protocols (101, or 200 for RFC 8441):
                              duration_us is the handshake (first byte -> answer) */
    SY_ACCESS_CLOSE = 2,   /* an upgraded connection closed: close_cause says why */
};
typedef struct sy_access_entry {
    const char *peer;     /* "127.0.0.1:51234" */
    const char *method;   /* request method */
    const char *target;   /* request target */
    int version;          /* 10, 11 or 20 */
    int status;           /* response status (101 for upgrades; 200 for RFC 8441 tunnels) */
    const char *upgraded; /* protocol token switched to, or NULL */
    uint64_t bytes_in;    /* body bytes received (whole connection for upgrades) */
    uint64_t bytes_out;   /* bytes sent (whole connection for upgrades) */
    uint64_t duration_us; /* request: head received -> response done; upgrade: connection life */
    const char *detail;   /* why an error happened, or NULL */
    /* How the request reached us: "http/1.0", "http/1.1", "h2" (TLS, ALPN), "h2c" (cleartext
     * HTTP/2 with prior knowledge), "h2c-upgrade" (cleartext, after "Upgrade: h2c"), or for an
     * upgrade line the protocol carrying it ("ws-over-h2": a WebSocket on an HTTP/2 stream,
     * RFC 8441). Never NULL. */
    const char *protocol;
    /* The request's id, unique in the process (the same on an upgrade's switch and close
     * entries; sy_req_id gives it to handlers). */
    uint64_t request_id;
    int event; /* enum sy_access_event */
    /* SY_ACCESS_CLOSE: why it closed. WebSocket: "peer", "local", "protocol", "too-big",
     * "ping-timeout", "idle", "backpressure", "close-timeout", "abnormal", "shutdown"; raw
     * streams: "eof", "idle", "limit", "io", "memory". NULL otherwise. */
    const char *close_cause;
    int close_code; /* SY_ACCESS_CLOSE of a WebSocket: the close code (1006: none); else 0 */
} sy_access_entry;
typedef void (*sy_access_log_fn)(const sy_access_entry *e, void *ud);
void sy_server_set_access_log(sy_server *srv, sy_access_log_fn fn, void *ud);

/* Bind every listen address and start the workers. Returns 0 or -err: SY_EADDRINUSE when
 * something else (another process, even another switchyard) listens on an address,
 * SY_EADDR when an address cannot be bound here, SY_EIO. */
int sy_server_start(sy_server *srv) SY_WARN_UNUSED;
/* The port actually bound for listen address number idx (0-based), after sy_server_start. */
int sy_server_port(const sy_server *srv, size_t idx);
/* The worker loops, after sy_server_start: count (0 before), and loop i (NULL when out of
 * range). Valid until sy_server_free. Use them to post tasks (sy_loop_post) that create
 * timers or publish from a worker; each loop's callbacks run on that worker's thread. */
size_t sy_server_loop_count(const sy_server *srv);
sy_loop *sy_server_loop(const sy_server *srv, size_t i);
/* Block until the server has stopped (after sy_server_stop and the drain). */
int sy_server_wait(sy_server *srv);
/* Counters, readable from any thread at any time (relaxed atomics). */
typedef struct sy_server_stats {
    uint64_t open_conns;     /* connections open now */
    uint64_t rejected_conns; /* accepted and closed at once because of SY_OPT_MAX_CONNS */
    /* accept() failures for lack of file descriptors or memory (EMFILE, ENFILE, ENOBUFS,
     * ENOMEM): each pauses accepting on that worker for 100 ms, doubling up to 1 s. */
    uint64_t accept_errors;
    /* accepted and closed at once, unanswered, because file descriptors ran out */
    uint64_t fd_refused_conns;
    /* Pub/sub (sy_ws_subscribe, sy_server_publish). */
    uint64_t topics;          /* distinct topics with at least one subscriber now */
    uint64_t subscriptions;   /* (connection, topic) pairs now */
    uint64_t published;       /* messages sy_server_publish accepted */
    uint64_t publish_refused; /* sy_server_publish calls refused with SY_EAGAIN (queues full) */
    uint64_t delivered;       /* messages queued to a subscriber */
    /* messages a subscriber missed: its backpressure policy dropped them, it was closing or
     * in the middle of a fragmented send, or (Redis) a worker's queue was full */
    uint64_t dropped;
    /* Redis (sy_server_set_redis). */
    int redis_connected;     /* 1 while subscribed to Redis */
    uint64_t redis_queued;   /* publishes waiting for Redis, or for its reply, now */
    uint64_t redis_failed;   /* publishes lost: the connection dropped before Redis confirmed */
    uint64_t redis_received; /* messages received from the Redis subscription */
} sy_server_stats;
void sy_server_get_stats(const sy_server *srv, sy_server_stats *out);

/* Reload: replace the routes and the HTTP limits of a running server without dropping a
 * connection. sy_server_reload_begin starts an empty route set (limits copied from the
 * current ones); sy_server_route and sy_server_set then build it; sy_server_reload_commit
 * makes it current. Connections accepted from then on use the new set; connections already
 * open keep the set they were accepted with (keep-alive requests too, and an upgraded
 * connection its route's options) until they close. Call from one thread at a time (not
 * from a handler). Returns 0, SY_ESTATE (a reload is already begun / none is), SY_ENOMEM.
 * sy_server_reload_abort drops a set being built. */
int sy_server_reload_begin(sy_server *srv);
int sy_server_reload_commit(sy_server *srv);
void sy_server_reload_abort(sy_server *srv);
/* fn(ud) runs once the route set being built (the first one before sy_server_start, or the
 * one between begin and commit) is no longer used by anyone: after a later reload replaced it
 * and its last connection closed, or in sy_server_free. The route user data (static roots,
 * handler state) of that set may be freed there. Runs on any thread. */
void sy_server_on_routes_retired(sy_server *srv, void (*fn)(void *ud), void *ud);

/* Metrics in the Prometheus text exposition format (version 0.0.4): connections per listener,
 * requests by protocol, method and status class, the upgrade funnel per protocol (requested,
 * accepted, switched, first message, closed, refused by reason), WebSocket messages, bytes
 * and close causes, raw streams, HTTP/2 streams, handshake-latency, connection-lifetime and
 * per-worker loop-lag histograms, deflate memory. Counters are kept per worker without
 * atomic read-modify-writes and summed here; callable from any thread at any time (before
 * sy_server_start the per-worker part is empty). docs/metrics.md lists every series.
 *
 * sy_server_metrics writes at most cap bytes (NUL-terminated when cap > 0) and returns the
 * length of the whole text, as snprintf does (buf may be NULL when cap is 0). Each call reads
 * the counters once and returns the length of the text it wrote. A running server's text
 * changes between two calls (counters gain digits, connections close, loops iterate), so
 * a second call with a buffer of the first call's length may still be too small, and two
 * calls need not return the same length: call again while the result is >= cap, with some
 * room to spare, or use sy_server_metrics_write, which needs no size. Returns -err
 * (SY_EINVAL, SY_ENOMEM) on failure. */
ssize_t sy_server_metrics(const sy_server *srv, char *buf, size_t cap);
/* The same text in pieces, to fn(data, len, ud), in one pass over the counters. Returns 0 or
 * -err (SY_EINVAL, SY_ENOMEM). */
int sy_server_metrics_write(const sy_server *srv,
                            void (*fn)(const char *data, size_t len, void *ud), void *ud);
/* A handler answering with the metrics (text/plain; version=0.0.4): register it with the
 * server as ud, e.g. sy_server_route(srv, "GET", "/metrics", 0, sy_metrics_handler, srv).
 * It does no access control: check the peer or a token in a handler of your own first. */
void sy_metrics_handler(sy_req *req, void *srv);

/* Begin a graceful shutdown: stop accepting, finish in-flight requests, close idle
 * connections, send WebSocket close 1001, force-close whatever is left after the drain
 * timeout. Thread-safe and async-signal-safe. */
void sy_server_stop(sy_server *srv);

/* ---------------------------------------------------------------------------------------------
 * Routes and request handlers. A handler is called on the worker thread when the request
 * head (and, unless SY_ROUTE_STREAM_BODY, the whole body) has arrived. It must eventually
 * respond exactly once, now or later, on that worker thread (see sy_req_loop).
 */
typedef void (*sy_handler_fn)(sy_req *req, void *ud);

enum sy_route_flags {
    SY_ROUTE_EXACT = 0,            /* the path must equal the pattern */
    SY_ROUTE_PREFIX = 1,           /* the path starts with the pattern */
    SY_ROUTE_STREAM_BODY = 2,      /* call the handler at the head; body via sy_req_on_body */
    SY_ROUTE_UPGRADE_REQUIRED = 4, /* plain requests get 426 listing the route's protocols */
};

/* Request handles: the handler's final call. A handler gets the request handle and must end
 * with exactly one FINAL CALL: sy_respond, sy_resp_sendfile or sy_resp_end, now or later,
 * on the worker thread. Until that call the handle is valid whatever happens to the
 * connection (client reset, failed write, server shutdown); after it, the handle must not be
 * used. A final call always releases the request, even when it fails.
 *  - When the connection is gone, response calls return SY_ECLOSED; accessors keep working.
 *  - When sy_resp_start or sy_resp_write fails, the response is over (the connection
 *    closes); later calls return SY_ESTATE or SY_ECLOSED, and the handler still makes its
 *    final call (sy_resp_end), which releases the handle.
 *  - A final call without a started response (sy_resp_end alone) ends the exchange: the
 *    connection is closed.
 *  - If sy_loop_post(sy_req_loop(req), ...) returns SY_ECLOSED, the server's loop is gone:
 *    the final call may then be made from any thread (it only releases the request). */

/* Add a route. method NULL matches every method. The longest matching pattern wins; exact
 * routes beat prefix routes of the same length. handler may be NULL for upgrade-only routes
 * (plain requests then get 404, or 426 with SY_ROUTE_UPGRADE_REQUIRED). The returned route is
 * owned by the server. Returns NULL, with a warning in the log saying why, when the pattern
 * does not start with '/', flags has unknown bits, the same method and pattern (and kind)
 * is already routed, the server has started, or memory ran out. */
sy_route *sy_server_route(sy_server *srv, const char *method, const char *pattern, int flags,
                          sy_handler_fn handler, void *ud);

/* Request accessors. Strings are NOT NUL-terminated unless said; valid until the response is
 * finished (sy_resp_end / sy_respond) or the request is aborted. */
const char *sy_req_method(const sy_req *req, size_t *len);
const char *sy_req_target(const sy_req *req, size_t *len); /* as sent: path + query */
const char *sy_req_path(const sy_req *req, size_t *len);   /* percent-decoded path, NUL-term. */
const char *sy_req_query(const sy_req *req, size_t *len);  /* after '?', or NULL */
int sy_req_version(const sy_req *req);                     /* 10, 11 or 20 */
/* First header with this name (case-insensitive), or NULL. */
const char *sy_req_header(const sy_req *req, const char *name, size_t *len);
/* Iterate headers: i from 0 while it returns 0. */
int sy_req_header_at(const sy_req *req, size_t i, const char **name, size_t *name_len,
                     const char **value, size_t *value_len);
/* The buffered body (routes without SY_ROUTE_STREAM_BODY). */
const void *sy_req_body(const sy_req *req, size_t *len);
/* "addr:port", NUL-terminated, in a per-thread buffer valid until the next call. */
const char *sy_req_peer(const sy_req *req);
sy_loop *sy_req_loop(const sy_req *req);
void *sy_req_route_ud(const sy_req *req);
/* The request's id, unique in the process, as the access log shows it (request_id). */
uint64_t sy_req_id(const sy_req *req);
/* The header lines added to the response so far ("Name: value\r\n" each), by the handler
 * or by an upgrade's check hook (Sec-WebSocket-Accept, -Protocol, -Extensions): during a
 * WebSocket's on_open (through sy_ws_request) they are what the switch answered with,
 * besides the status line, Upgrade, Connection, Date and Server. Not NUL-terminated. */
const char *sy_req_response_headers(const sy_req *req, size_t *len);

/* Streamed bodies (SY_ROUTE_STREAM_BODY): register during the handler call. Data chunks,
 * then one call with len 0 and end=1 (right after the handler returns when there is no
 * body, e.g. Content-Length: 0), or one call with err < 0 when the connection failed: the
 * handler then still makes its final call (sy_resp_end), which returns SY_ECLOSED. */
typedef void (*sy_body_fn)(sy_req *req, const void *data, size_t len, int end, int err, void *ud);
int sy_req_on_body(sy_req *req, sy_body_fn fn, void *ud);

/* Responses. Add headers first, then either sy_respond (whole body), sy_resp_sendfile, or
 * sy_resp_start + sy_resp_write... + sy_resp_end (chunked for HTTP/1.1 unless a
 * Content-Length header was added). Date, Server, Content-Length, Transfer-Encoding and
 * Connection are managed by the library. */
int sy_resp_header(sy_req *req, const char *name, const char *value);
/* Send a whole response; body is copied. ctype may be NULL. Finishes the request. */
int sy_respond(sy_req *req, int status, const char *ctype, const void *body, size_t len);
/* Send len bytes of fd from offset with sendfile(2). The library closes fd when done. */
int sy_resp_sendfile(sy_req *req, int status, int fd, off_t offset, size_t len);
/* If sy_resp_start (after validating status) or sy_resp_write fails, the response is over
 * and the connection closed; later calls fail, and sy_resp_end (the final call) releases the
 * request. */
int sy_resp_start(sy_req *req, int status);
int sy_resp_write(sy_req *req, const void *data, size_t len); /* copied */
int sy_resp_end(sy_req *req);
/* Flow control for streamed responses: bytes queued but not yet written, and a one-shot
 * callback when the queue falls to the low-water mark (write more from there). Returns
 * SY_ECLOSED when the connection is already going away. If it closes while waiting, fn is
 * still called once; writes then fail with SY_ECLOSED (free your state there). */
size_t sy_resp_buffered(const sy_req *req);
int sy_resp_on_drain(sy_req *req, void (*fn)(sy_req *req, void *ud), void *ud);

/* Serve files below root for routes given to it: register with
 * sy_server_route(srv, "GET", "/", SY_ROUTE_PREFIX, sy_static_handler, st). */
typedef struct sy_static sy_static;
int sy_static_new(sy_static **out, const char *root) SY_WARN_UNUSED;
void sy_static_free(sy_static *st);
void sy_static_handler(sy_req *req, void *st);

/* ---------------------------------------------------------------------------------------------
 * The generic Upgrade mechanism (RFC 9110 §7.8).
 *
 * An application registers protocol tokens per route. For a request with `Connection: upgrade`
 * and an `Upgrade` list (HTTP/1.1 only), the server walks the client's tokens in order and
 * picks the first one the route has registered whose check hook accepts. Unknown tokens are
 * ignored: the request is then served normally by the route's handler.
 *
 * The check hook returns:
 *   SY_UPGRADE_ACCEPT  switch to this protocol (after adding headers with sy_resp_header)
 *   SY_UPGRADE_DECLINE try the client's next token (or serve the request normally)
 *   400..599           refuse the whole request with this status; `reason` (if set) is sent
 *                      as a text/plain body and logged
 *
 * Requests with a body are read completely before switching (the body goes to the check hook
 * through sy_req_body); the body limit applies.
 */
enum { SY_UPGRADE_ACCEPT = 0, SY_UPGRADE_DECLINE = 1 };
typedef int (*sy_upgrade_check_fn)(sy_req *req, const char *token, const char **reason, void *ud);

/* Request context for the connection an upgrade opens. A check hook (or the WebSocket accept
 * hook) sees the whole request; what it learns (a session from a cookie, a room from the
 * query) it hands to the connection with sy_req_set_open_ud:
 *  - WebSocket: ud becomes the connection's user data (sy_ws_ud, the ud argument of every
 *    callback, from on_open on) instead of the route's.
 *  - Raw streams: on_open reads it with sy_req_open_ud(req).
 * From on_open on, ud is the application's (release it in on_close). If the switch does not
 * happen after all (a later check refuses, the hook declines, memory runs out, the
 * connection drops), free_fn(ud) is called (when not NULL), on the worker thread. Setting it
 * again replaces (and releases) the previous value. Whichever HTTP version carried the
 * request, the same calls apply. */
void sy_req_set_open_ud(sy_req *req, void *ud, void (*free_fn)(void *ud));
void *sy_req_open_ud(const sy_req *req);

/* A raw byte stream after 101: the generic protocol for applications ("Upgrade: tcp").
 *
 * Flow control is the application's job, because only it knows how its output depends on its
 * input; the library gives it the means and keeps the server safe when it does not use them:
 *  - sy_stream_write returns SY_STREAM_WRITE_BACKPRESSURE once the queued output reaches the
 *    high-water mark; on_drain follows (once) when the queue is back at the low-water mark.
 *    An application that answers input with output (an echo, a proxy) pauses reading there
 *    (sy_stream_pause_read) and resumes in on_drain: TCP then pushes back on the peer, and the
 *    stream holds about high-water bytes however fast the peer sends and however slowly it
 *    reads.
 *  - Hard cap: a write that would take the queue above max_buffer is refused, and the stream is
 *    closed (on_close with SY_ELIMIT). Applications that follow backpressure never reach it.
 *  - Idle timeout: the stream is closed (on_close with SY_ETIMEDOUT) when nothing moved in
 *    either direction for the timeout: no byte arrived and the peer took none of our output.
 *    A peer that reads slowly is not idle; one that stopped reading while we stopped reading it
 *    is. Arriving bytes count at once; output progress is sampled, so a stream whose peer
 *    stopped reading is closed one to two timeouts after its last progress.
 * Lifetime: the handle is valid from on_open until on_close returns; any call on it after that
 * is invalid. Calls from inside its callbacks (including on_close, where writes fail with
 * SY_ECLOSED) are safe. */
typedef struct sy_stream sy_stream;
typedef struct sy_stream_cbs {
    /* Bytes arrived (the bytes that followed the request head first). Not called after
     * sy_stream_close, nor while reading is paused. */
    void (*on_data)(sy_stream *s, const void *data, size_t len, void *ud);
    /* Last callback; the handle is freed after it returns. err says why:
     *   0             the peer closed its side (or sy_stream_close / server shutdown), and
     *                 what was queued has been written
     *   SY_ETIMEDOUT  idle timeout (also bounds the final flush after a close)
     *   SY_ELIMIT     a write would have exceeded the output cap
     *   SY_EIO        the connection failed (reset, socket error)
     *   SY_ENOMEM     a write ran out of memory */
    void (*on_close)(sy_stream *s, int err, void *ud);
    /* Optional: the queued output fell to the low-water mark after a write returned
     * SY_STREAM_WRITE_BACKPRESSURE. Fires once per such episode; not after a close. */
    void (*on_drain)(sy_stream *s, void *ud);
} sy_stream_cbs;
/* Called after the 101 was queued. Set callbacks with sy_stream_set_cbs (and limits with
 * sy_stream_set) before returning, or data is discarded. */
typedef void (*sy_stream_open_fn)(sy_stream *s, sy_req *req, void *ud);

/* Register a raw protocol token on a route. check may be NULL (always accept). Per-route
 * limits: call sy_stream_set from this route's on_open. */
int sy_route_upgrade_raw(sy_route *route, const char *token, sy_upgrade_check_fn check,
                         sy_stream_open_fn on_open, void *ud);
void sy_stream_set_cbs(sy_stream *s, const sy_stream_cbs *cbs, void *ud);

/* Limits of one stream; usually set in on_open, may change at any time. Values are not checked
 * against each other: the low-water mark is used as min(low, high), and a high-water mark
 * above max_buffer means writes fail before they report backpressure. */
enum sy_stream_opt {
    SY_STREAM_OPT_IDLE_TIMEOUT_MS = 1, /* 0 = off (default 60000, like the keep-alive timeout;
                                          raw protocols have no ping of their own) */
    SY_STREAM_OPT_HIGH_WATER,          /* queued bytes that mean BACKPRESSURE (default 1 MiB) */
    SY_STREAM_OPT_LOW_WATER,           /* queued bytes at which on_drain fires (256 KiB) */
    SY_STREAM_OPT_MAX_BUFFER,          /* hard cap of queued bytes (default 16 MiB) */
};
/* Returns 0, SY_ERANGE (0 for a water mark or cap, or a value too large), or SY_EINVAL. */
int sy_stream_set(sy_stream *s, enum sy_stream_opt opt, uint64_t value);

enum sy_stream_write_result {
    SY_STREAM_WRITE_OK = 0,           /* queued */
    SY_STREAM_WRITE_BACKPRESSURE = 1, /* queued, but at or above the high-water mark: stop
                                         producing (pause reading) until on_drain */
};
/* Queue bytes (copied). Returns an enum sy_stream_write_result, or -err: SY_ECLOSED (closing or
 * closed; nothing queued), SY_ELIMIT (the queue would exceed max_buffer; nothing queued, the
 * stream is being closed) or SY_ENOMEM (part may be queued; the stream is being closed). */
int sy_stream_write(sy_stream *s, const void *data, size_t len);
/* Bytes queued but not yet written. */
size_t sy_stream_buffered(const sy_stream *s);
/* Stop reading from the peer (its further bytes wait in the kernel, and TCP flow control
 * stops it), and start again. No-ops once the stream is closing. */
void sy_stream_pause_read(sy_stream *s);
void sy_stream_resume_read(sy_stream *s);
/* Stop reading, flush what is queued, then close; on_close follows (err 0, or SY_ETIMEDOUT if
 * the peer takes nothing for the idle timeout). Writes fail with SY_ECLOSED from here on. */
void sy_stream_close(sy_stream *s);
sy_loop *sy_stream_loop(const sy_stream *s);

/* ---------------------------------------------------------------------------------------------
 * WebSocket (RFC 6455, permessage-deflate RFC 7692).
 */
typedef struct sy_ws sy_ws;
typedef struct sy_ws_opts sy_ws_opts;

enum sy_ws_opcode { SY_WS_TEXT = 1, SY_WS_BINARY = 2 };

/* Why a WebSocket closed (sy_ws_close_info.cause). */
enum sy_ws_cause {
    SY_WS_CAUSE_PEER = 1,      /* the peer sent a close frame */
    SY_WS_CAUSE_LOCAL,         /* sy_ws_close was called */
    SY_WS_CAUSE_PROTOCOL,      /* the peer violated the protocol (detail says how) */
    SY_WS_CAUSE_TOO_BIG,       /* a message exceeded max_message */
    SY_WS_CAUSE_PING_TIMEOUT,  /* no pong in time */
    SY_WS_CAUSE_IDLE,          /* idle timeout */
    SY_WS_CAUSE_BACKPRESSURE,  /* the send buffer exceeded its cap (policy close) */
    SY_WS_CAUSE_CLOSE_TIMEOUT, /* the peer did not answer our close in time */
    SY_WS_CAUSE_ABNORMAL,      /* the TCP connection ended without a close frame */
    SY_WS_CAUSE_SHUTDOWN,      /* server shutdown (1001) */
    SY_WS_CAUSE_HANDSHAKE,     /* client: the handshake failed */
};

typedef struct sy_ws_close_info {
    int code;           /* close code received or sent (1005 none, 1006 abnormal) */
    const char *reason; /* NUL-terminated UTF-8 reason ("" if none) */
    int cause;          /* enum sy_ws_cause */
    const char *detail; /* human detail for protocol errors, or NULL */
} sy_ws_close_info;

typedef struct sy_ws_cbs {
    /* The connection is open (server: the 101 is queued). sy_ws_request gives the upgrade
     * request during this call; ud is what the accept hook set (sy_req_set_open_ud), else
     * the route's. */
    void (*on_open)(sy_ws *ws, void *ud);
    /* A whole message. data is valid during the call only. */
    void (*on_message)(sy_ws *ws, int opcode, const void *data, size_t len, void *ud);
    /* Last callback; the handle is freed after it returns. */
    void (*on_close)(sy_ws *ws, const sy_ws_close_info *info, void *ud);
    /* Buffered output dropped below the low-water mark after a BACKPRESSURE result. */
    void (*on_drain)(sy_ws *ws, void *ud);
    /* A pong arrived (optional). */
    void (*on_pong)(sy_ws *ws, const void *data, size_t len, void *ud);
} sy_ws_cbs;

/* Options for a WebSocket route or client. Create, set, pass to sy_route_websocket (which
 * copies them), free. */
int sy_ws_opts_new(sy_ws_opts **out) SY_WARN_UNUSED;
void sy_ws_opts_free(sy_ws_opts *o);
enum sy_ws_opt {
    SY_WS_OPT_MAX_MESSAGE = 1,     /* bytes after inflate; beyond: close 1009 (default 1 MiB) */
    SY_WS_OPT_PING_INTERVAL_MS,    /* idle time before a server ping; 0 = off (default 30000) */
    SY_WS_OPT_PONG_TIMEOUT_MS,     /* close when no pong within (default 10000) */
    SY_WS_OPT_IDLE_TIMEOUT_MS,     /* close after no traffic at all; 0 = off (default 0) */
    SY_WS_OPT_CLOSE_TIMEOUT_MS,    /* wait for the peer's close reply (default 5000) */
    SY_WS_OPT_HIGH_WATER,          /* buffered bytes that make send return BACKPRESSURE (1 MiB) */
    SY_WS_OPT_LOW_WATER,           /* buffered bytes under which on_drain fires (256 KiB) */
    SY_WS_OPT_MAX_BUFFER,          /* hard cap of buffered bytes (default 16 MiB) */
    SY_WS_OPT_BACKPRESSURE_POLICY, /* enum sy_ws_bp_policy (default SY_WS_BP_BUFFER) */
    SY_WS_OPT_DEFLATE,             /* 1 = negotiate permessage-deflate (default 1) */
    SY_WS_OPT_DEFLATE_THRESHOLD,   /* don't compress messages shorter than this (default 64) */
    SY_WS_OPT_DEFLATE_WINDOW_BITS, /* server window 8..15 (default 15) */
    SY_WS_OPT_DEFLATE_MEM_LEVEL,   /* zlib memLevel 1..9 (default 8) */
    SY_WS_OPT_DEFLATE_NO_CONTEXT_TAKEOVER, /* 1 = ask for server_no_context_takeover */
    SY_WS_OPT_REQUIRE_SUBPROTOCOL, /* 1 = refuse (400) when no offered subprotocol matches */
    SY_WS_OPT_DEFLATE_LEVEL,       /* zlib level 1..9 for our messages (default 1: fastest;
                                      at this level text still shrinks about 3:1) */
    SY_WS_OPT_MAX_INFLATE_RATE,    /* bytes per second a connection may inflate, with one
                                      second's worth at once; beyond it reading pauses (not a
                                      close) until the budget refills. 0 = unlimited
                                      (default 64 MiB/s; see docs/websocket-deflate.md) */
};
int sy_ws_opts_set(sy_ws_opts *o, enum sy_ws_opt opt, uint64_t value);
/* Subprotocols in server preference order (first added = most preferred). */
int sy_ws_opts_add_subprotocol(sy_ws_opts *o, const char *name);
/* Allowed Origin values (exact, case-insensitive). None added = any origin allowed. */
int sy_ws_opts_add_origin(sy_ws_opts *o, const char *origin);
/* Optional hook: return 0 to accept the handshake, or an HTTP status (400..599) and a
 * static *reason to refuse. Runs after the protocol checks. To give the connection context
 * from the request (user, room), call sy_req_set_open_ud(req, ...) here. */
typedef int (*sy_ws_accept_fn)(sy_req *req, const char **reason, void *ud);
void sy_ws_opts_set_accept(sy_ws_opts *o, sy_ws_accept_fn fn);
/* Callbacks and user data for every connection of the route (ws user data defaults to ud). */
void sy_ws_opts_set_cbs(sy_ws_opts *o, const sy_ws_cbs *cbs, void *ud);

/* Register "websocket" on a route. The options are copied. */
int sy_route_websocket(sy_route *route, const sy_ws_opts *opts);

/* Process-wide cap on zlib memory for permessage-deflate (server and client connections).
 * What a connection's negotiated settings can cost is reserved at the handshake, before any
 * message, and released when it closes. The configured settings may fill half the cap;
 * beyond that, handshakes get a cheaper configuration (smaller windows and memLevel) while
 * it fits, then no compression. Usage never exceeds the cap. 0 = no cap (default 256 MiB). */
void sy_ws_set_deflate_budget(uint64_t bytes);

enum sy_ws_send_result {
    SY_WS_SEND_OK = 0,           /* queued */
    SY_WS_SEND_BACKPRESSURE = 1, /* queued, but the buffer is above the high-water mark */
    SY_WS_SEND_DROPPED = 2,      /* not queued (drop policy, or closing) */
};
enum sy_ws_bp_policy { SY_WS_BP_BUFFER = 0, SY_WS_BP_DROP = 1, SY_WS_BP_CLOSE = 2 };

/* Send a whole message; data is copied (compressed if negotiated). Returns an
 * enum sy_ws_send_result or -err (SY_EINVAL for invalid UTF-8 in text, SY_ECLOSED, and
 * SY_ESTATE on a client before on_open). The same holds for the calls below. */
int sy_ws_send(sy_ws *ws, int opcode, const void *data, size_t len);
/* Zero-copy send: data must stay valid until free_fn(data, free_ud) is called (uncompressed
 * messages are written straight from it). */
int sy_ws_send_zc(sy_ws *ws, int opcode, const void *data, size_t len,
                  void (*free_fn)(const void *data, void *free_ud), void *free_ud);
/* Streaming send of a large message as fragments: first call with the opcode, later calls
 * with 0; fin=1 on the last. Other messages must not be sent in between. Text is validated
 * across fragments: SY_EINVAL (the fragment is not sent, the message stays open) for invalid
 * UTF-8, or when fin=1 would end the message inside a character. */
int sy_ws_send_fragment(sy_ws *ws, int opcode, const void *data, size_t len, int fin);
int sy_ws_ping(sy_ws *ws, const void *data, size_t len); /* len <= 125 */
/* Start the close handshake. code 1000..4999 (not 1004-1006, 1015); reason <= 123 bytes. */
int sy_ws_close(sy_ws *ws, int code, const char *reason);
size_t sy_ws_buffered(const sy_ws *ws);
void sy_ws_set_ud(sy_ws *ws, void *ud);
void *sy_ws_ud(const sy_ws *ws);
sy_loop *sy_ws_loop(const sy_ws *ws);
/* The upgrade request, read-only, during on_open only (NULL at any other time and for client
 * connections): method, target, path, query, headers, peer (sy_req_peer) and version, through
 * the sy_req_* accessors. Copy what you need to keep. */
const sy_req *sy_ws_request(const sy_ws *ws);
/* The negotiated subprotocol ("" if none) and extensions ("" if none). NUL-terminated. */
const char *sy_ws_subprotocol(const sy_ws *ws);
const char *sy_ws_extensions(const sy_ws *ws);
/* Copy and send from any thread; the send happens on the ws's loop. The ws is kept alive
 * until the task ran. The arguments are checked at once, as sy_ws_send/sy_ws_close would
 * (SY_EINVAL); whether the connection is still open only shows on the loop. Returns 0 or
 * -err. */
int sy_ws_send_async(sy_ws *ws, int opcode, const void *data, size_t len);
int sy_ws_close_async(sy_ws *ws, int code, const char *reason);

/* ---------------------------------------------------------------------------------------------
 * Topics (publish/subscribe) over the WebSocket connections of a server.
 *
 * A connection subscribes to topics (any byte string of 1..1024 bytes, e.g. "room:lobby");
 * sy_server_publish sends a message to every connection subscribed to the topic, on every
 * worker (and, with Redis, on every process sharing it).
 *  - Cost: a message is framed once per worker (not per subscriber); where subscribers
 *    negotiated permessage-deflate it is also compressed once per worker for each distinct
 *    (window, level, memLevel) setting, without context (a subscriber's own compressor then
 *    starts its next message afresh). Short frames are copied to each subscriber, long ones
 *    are shared by reference.
 *  - Backpressure: each subscriber's own policy applies (SY_WS_OPT_BACKPRESSURE_POLICY and
 *    the water marks of its route): a slow subscriber never holds up the others; it buffers,
 *    misses messages (drop) or is closed (close, or buffer beyond max_buffer). Missed
 *    messages are counted in sy_server_stats.dropped, as are those that reach a subscriber
 *    in the middle of a fragmented send (sy_ws_send_fragment) or while it closes.
 *  - Order: within a process every subscriber sees the messages of a topic in one order, the
 *    order in which sy_server_publish calls returned, so messages published from one thread
 *    arrive in publish order. With Redis the order is the one Redis saw (messages from one
 *    thread still arrive in publish order).
 *  - Delivery is asynchronous: the message goes through each worker's queue, also to the
 *    publishing worker, and reaches the connections subscribed when that worker takes it
 *    (shortly after the call). A connection subscribed before the call returns gets it.
 *  - Subscriptions end with the connection (after its on_close). Counts are in
 *    sy_server_stats.
 */
/* Subscribe a server connection to a topic (NUL-terminated). On the connection's thread.
 * Returns 0, SY_EEXIST (already subscribed), SY_EINVAL (empty or longer than 1024 bytes),
 * SY_ECLOSED (closing or closed), SY_ESTATE (not a server connection), SY_ENOMEM. */
int sy_ws_subscribe(sy_ws *ws, const char *topic);
/* Returns 0, or SY_ENOTFOUND when not subscribed. Safe in any callback, also on_close. */
int sy_ws_unsubscribe(sy_ws *ws, const char *topic);
/* Publish a whole message (copied) to a topic, from any thread, callbacks included, after
 * sy_server_start. opcode SY_WS_TEXT (valid UTF-8) or SY_WS_BINARY. Returns 0 (accepted),
 * SY_EINVAL, SY_ESTATE (not started), SY_ENOMEM, or SY_EAGAIN when the queues are full and
 * nothing was sent: a worker holds 65536 undelivered messages or 64 MiB, or, with Redis, the
 * process holds 10000 publishes (or 64 MiB) not yet confirmed by Redis (while Redis is
 * unreachable, publishes wait in that queue and go out when it is back). */
int sy_server_publish(sy_server *srv, const char *topic, const void *data, size_t len, int opcode);
/* Scale out through Redis pub/sub (call before sy_server_start): url "redis://HOST:PORT"
 * (or "HOST:PORT"; the port defaults to 6379). Every publish goes through Redis (PUBLISH on
 * channel prefix + topic, prefix NULL = "switchyard:"), and each process delivers to its
 * own subscribers only what its subscription (PSUBSCRIBE prefix*) receives, so a message
 * reaches every subscriber of every process once, the sender's own process included, in
 * the order Redis saw. Connections: one per worker for publishing, one per process for the
 * subscription, on the worker loops; HOST is resolved at each connect (blocking that worker
 * briefly when it is a name). When Redis is unreachable or restarts: local connections
 * are served as before but receive no published messages; publishes wait in the bounded
 * queue above (beyond it: SY_EAGAIN); those already sent when a connection drops are lost
 * and counted (stats.redis_failed: Redis may or may not have delivered them); connections
 * are retried with backoff (50 ms doubling to 2 s) and the subscription is renewed; messages
 * other processes published while this one was not subscribed are missed. Each change of
 * state is logged once. Returns 0, SY_EADDR (bad url), SY_ESTATE (started), SY_ENOMEM. */
int sy_server_set_redis(sy_server *srv, const char *url, const char *channel_prefix);

/* WebSocket client. Connect to "ws://host:port/path" or "wss://host:port/path" (TLS: the
 * server's certificate is verified against the system's CA store and must name host; SNI and
 * ALPN http/1.1 are sent); callbacks as for the server. A failed verification ends as a
 * handshake failure whose detail starts with "TLS: certificate verify failed".
 * headers: NULL-terminated array of "Name: value" strings (may be NULL). */
typedef struct sy_ws_client_cfg {
    const char *url;
    const char *const *headers;
    const char *const *subprotocols; /* NULL-terminated, may be NULL */
    const sy_ws_opts *opts;          /* may be NULL for defaults */
    uint32_t connect_timeout_ms;     /* 0 = 10000; includes the TLS handshake */
    const char *tls_ca_file; /* wss: trust these PEM certificates instead of the system store */
    int tls_insecure;        /* wss: 1 = skip certificate and name verification (testing) */
} sy_ws_client_cfg;
int sy_ws_connect(sy_loop *loop, const sy_ws_client_cfg *cfg, const sy_ws_cbs *cbs, void *ud,
                  sy_ws **out) SY_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
