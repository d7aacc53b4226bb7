/* The version-neutral request object handed to handlers. HTTP/1 fills it today; HTTP/2 will
 * fill the same struct, and handlers never learn which one did. Responses go through
 * sy_req_ops, implemented by each HTTP version. */
#ifndef SY_HTTP_REQ_H
#define SY_HTTP_REQ_H

#include "http/field.h"
#include "http/app.h"

typedef struct sy_req_ops {
    /* Bytes of response queued on the connection but not yet written. */
    size_t (*buffered)(const sy_req *req);
    /* Call req->drain_fn once the queue falls to the low-water mark; SY_ECLOSED when the
     * connection is going away (it never will). */
    int (*want_drain)(sy_req *req);
    /* Send the head; body_len is the Content-Length when has_len, else the body is
     * streamed (chunked for HTTP/1.1). */
    int (*start)(sy_req *req, int status, int has_len, uint64_t body_len);
    int (*write)(sy_req *req, const void *data, size_t len);
    int (*sendfile)(sy_req *req, int fd, off_t off, size_t len);
    int (*end)(sy_req *req);
    /* The response failed: mark the request finished and close the connection. */
    void (*abort)(sy_req *req, int err);
} sy_req_ops;

/* Who holds a request. The protocol holds it from the head until the response is finished;
 * the application holds it from the handler call until its final call (sy_respond,
 * sy_resp_sendfile or sy_resp_end). The request is recycled when both have let go, so a
 * handle the application holds is valid memory, whatever happened to the connection. When
 * the protocol lets go first (the connection died, or a failed write finished the response)
 * the request becomes an orphan: detached from the connection and the worker, with its own
 * copy of the head, and freed by the application's final call. */
struct sy_req {
    const sy_req_ops *ops;
    void *proto; /* the HTTP version's per-connection state */
    sy_worker *worker;
    sy_loop *loop; /* the worker's loop; an orphan keeps a reference (sy__loop_ref) */
    sy_conn *conn;
    const sy_route *route;
    sy_http_conf *conf; /* the routes and limits it is served under (its connection's) */
    /* request (slices into the read buffer, or into hbuf once pinned) */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    char *path; /* decoded, NUL-terminated, owned */
    size_t path_len, path_cap;
    const char *query;
    size_t query_len;
    int version;
    sy_field *headers;
    size_t nheaders, headers_cap;
    const sy_field *upgrade; /* the first Upgrade field when the request asks to switch
                                (HTTP/1.1 with "upgrade" in Connection), else NULL */
    const char *head_base;   /* start of the head in its buffer */
    size_t head_len;
    char *hbuf; /* owned copy of the head when the request outlives a read */
    size_t hbuf_cap;
    uint8_t pinned;
    uint8_t held;   /* the application holds the handle (handler called, no final call yet) */
    uint8_t orphan; /* the protocol let go while the application still held it */
    /* body */
    uint8_t *body;
    size_t body_len, body_cap;
    uint64_t body_received;
    uint8_t body_complete; /* the protocol has received the whole body */
    uint8_t body_end_sent; /* body_fn was told end=1 (or err) */
    sy_body_fn body_fn;
    void (*drain_fn)(sy_req *req, void *ud); /* streamed responses: queue fell to low water */
    void *drain_ud;
    void *body_ud;
    /* response */
    int status;
    char *rh; /* extra response header lines "Name: value\r\n" */
    size_t rh_len, rh_cap;
    uint8_t has_content_length; /* the application added Content-Length */
    uint8_t resp_started;
    uint8_t resp_done;
    uint8_t head_only;        /* HEAD request: no body bytes on the wire */
    uint8_t upgrade_hint;     /* the response lists protocols in Upgrade (426): HTTP/1 marks it
                                 hop-by-hop, HTTP/2 drops it (connection-specific there) */
    uint8_t secure;           /* the connection's transport encrypts (TLS) */
    const char *protocol;     /* for logs: "http/1.1", "h2", "h2c", "h2c-upgrade", ... */
    uint64_t resp_bytes;      /* body bytes the application wrote */
    uint64_t resp_wire_bytes; /* the whole response as sent: head, framing, body */
    uint64_t start_us;
    const char *detail;  /* why an error response was sent */
    uint64_t id;         /* request id (logs): unique in the process */
    uint64_t recv_us;    /* when the head's first byte arrived (0: use start_us) */
    uint8_t up_kind;     /* an upgrade request: SY_UP_* + 1 of what it asked for, else 0 */
    uint8_t refusal;     /* why it did not switch (SY_REFUSE_*), set by check hooks */
    void *upgrade_state; /* protocol negotiation results between check and open (WS) */
    void (*upgrade_state_free)(void *);
    /* The application's user data for the connection being opened (sy_req_set_open_ud):
     * the opener takes it over; if the switch never happens, open_ud_free releases it. */
    void *open_ud;
    void (*open_ud_free)(void *ud);
    uint8_t open_ud_set;
    struct sy_req *next_free;
};

/* Get a request object from the worker's cache (or allocate). */
sy_req *sy__req_get(sy_worker *w);
/* Reset and return to the cache. */
void sy__req_put(sy_worker *w, sy_req *req);
/* The protocol is done with req: recycle it, or orphan it when the application still holds
 * it. Never touch req afterwards. */
void sy__req_release(sy_worker *w, sy_req *req);
/* Hand req to the application: set before calling a handler. */
static inline void sy__req_hand_out(sy_req *req)
{
    req->held = 1;
}
/* A streamed-body request whose body is complete: tell a registered body callback, once. */
void sy__req_body_end(sy_req *req);
/* A streamed-body request whose body will not complete (a protocol error, a timeout, the
 * connection or stream gone): tell a body callback the application still holds, once, with
 * end=1 and err (SY_ECLOSED when err is not negative). body_end_sent is the one guard, shared
 * with sy__req_body_end: the callback's last call is made once, whichever comes first. */
void sy__req_body_fail(sy_req *req, int err);
/* Free the worker's request cache (the net layer's worker_free hook, via src/server). */
void sy__http_req_cache_clear(sy_worker *w);
/* Copy the head into the request's own buffer so its slices survive the read buffer. On
 * SY_ENOMEM the head is forgotten (accessors answer empty strings): never a dangling slice. */
int sy__req_pin(sy_req *req);
/* Percent-decode the target's path into req->path; split the query. Returns 0 or
 * SY_EHTTP_SYNTAX (bad escape, %00, not origin/absolute/asterisk form). */
int sy__req_decode_target(sy_req *req, const char **detail);
/* Forget what a check hook left for the opener (negotiation state, the application's open
 * user data, both released): the switch it prepared will not happen. */
void sy__req_clear_upgrade(sy_req *req);
/* The opener takes the application's open user data (NULL, 0 when none was set). */
int sy__req_take_open_ud(sy_req *req, void **ud);
/* Reason phrase for a status. */
const char *sy__status_text(int status);
uint64_t sy__now_us(void);

#endif
