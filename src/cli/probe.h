/* `switchyard probe`: the I/O driver around the sans-I/O check core (src/probe). Every step
 * runs against a deadline (--timeout), every read into a fixed buffer. */
#ifndef SY_CLI_PROBE_H
#define SY_CLI_PROBE_H

#include "probe/probe.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#define PROBE_MAX_EXTRA 32

typedef struct probe {
    sy_probe_report rep;
    /* the URL */
    int tls;
    char scheme[8];
    char host[300];
    int port;
    char target[2048];  /* path + query */
    char hostport[300]; /* Host field value */
    /* resolved once, shared by every walk */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addrstr[80];
    int resolved;
    /* options */
    int timeout_ms;
    int idle_s;
    int json, color, path_only, insecure, verbose;
    int do_ws, do_h2c, do_h2;
    const char *origin;
    const char *subs[SY_PROBE_MAX_OFFER];
    size_t nsub;
    const char *extra[PROBE_MAX_EXTRA];
    size_t nextra;
    const char *reflect_path;
    const char *reflect_token;
    int reflect_explicit;
    const char *cafile;
    /* what the main path learned */
    int ws_switched;
    sy_probe_tls_info tls_info;
    int have_tls_info;
    int connected;          /* a connection got through (TCP, and TLS when asked) */
    int unreachable;        /* the first connection failed: nothing else is tried */
    char server_field[128]; /* Server of the main answer, names hops */
    double t_start;
} probe;

typedef struct pconn {
    int fd;
    SSL *ssl;
    SSL_CTX *ctx;
    char alpn[32];
    char alpn_seen[32]; /* what the server's hello selected, even when OpenSSL refused it */
    int tls_alert;      /* the last read or write failed on a TLS alert from the server */
} pconn;

enum { PN_EOF = 0, PN_ERR = -1, PN_TIMEOUT = -2 };

double probe_now_ms(void);
/* Resolve the host (once). Returns 0, or -1 after adding the finding. */
int probe_resolve(probe *P);
/* Connect (and TLS when the URL says so, offering alpn, e.g. "\x08http/1.1"). main: this is
 * the walk that decides "could not connect" (exit 2); other walks report errors. Adds steps
 * (connect, tls) and findings. Returns 0 or -1. */
int probe_open(probe *P, const char *path, pconn *c, const char *alpn, size_t alpn_len, int main,
               int steps);
void probe_close(pconn *c);
/* Read what is there (waits until deadline). Returns > 0 bytes, PN_EOF, PN_ERR or PN_TIMEOUT. */
ssize_t probe_read(pconn *c, void *buf, size_t cap, double deadline);
int probe_write(pconn *c, const void *buf, size_t len, double deadline);
const char *probe_err_text(void); /* the last error of probe_read/probe_write (static) */

/* After a failed read or write: when the server sent a TLS alert (a TLS 1.3 server refusing
 * a client certificate does so after the handshake), add TLS_HANDSHAKE_FAILED naming the
 * step and return 1; else return 0. */
int probe_tls_refused(probe *P, const char *path, pconn *c, int main, const char *step);
/* Read a response head into buf (cap bytes, at most SY_PROBE_MAX_HEAD + a bit; *len bytes
 * already there are kept: set *len = 0 first unless the caller peeked). Returns 1
 * with the head parsed (*len bytes in buf, h->head_len of them the head), or 0 after adding
 * the finding (timeout, close, not HTTP, malformed, too large). main: a timeout or a close
 * before any byte is fatal. what: the step's name for messages. */
int probe_read_head(probe *P, const char *path, pconn *c, char *buf, size_t cap, size_t *len,
                    sy_probe_head *h, int main, const char *what);
/* Read the body of a non-101 answer into b (bounded in bytes and time). */
void probe_read_body(probe *P, const char *path, pconn *c, const char *buf, size_t len,
                     const sy_probe_head *h, sy_probe_body *b);

/* The walks. Each returns 0 when it could run, -1 when it could not connect. */
int probe_walk_ws(probe *P);
void probe_walk_security(probe *P);
void probe_walk_reflect(probe *P);
void probe_walk_h2c(probe *P);
void probe_walk_h2(probe *P);

void probe_print_human(probe *P, const char *url);
void probe_print_json(probe *P, const char *url);
void probe_print_catalogue_json(void);

#endif
