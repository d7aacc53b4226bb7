/* A byte stream under a protocol: the interface the WebSocket engine and raw streams run on.
 * A connection (src/net/conn.c) implements it today; an HTTP/2 stream will implement it too,
 * so the protocols above run unchanged on either.
 *
 * Downward (ops): queue output (copied, by reference, or built in place with
 * reserve+commit), ask how much is queued and to be told when it drains, pause and resume
 * input, one timer, close. Upward (proto): what the protocol running on the stream
 * implements; the stream calls it. All on the owning loop's thread. */
#ifndef SY_NET_BSTREAM_H
#define SY_NET_BSTREAM_H

#include "core/loop.h"

typedef struct sy_bstream sy_bstream;

/* A file shared by several queued ranges (HTTP/2 sends one file as many DATA frames, each
 * its own range): the descriptor is closed when the last reference goes. */
typedef struct sy_fileref {
    int fd;
    uint32_t refs;
} sy_fileref;

/* A new reference to fd (refs = 1), or NULL without memory (fd is then left open). */
sy_fileref *sy__fileref_new(int fd);
void sy__fileref_unref(sy_fileref *f);

/* Upward: the protocol running on a stream. */
typedef struct sy_bstream_proto {
    const char *name;
    /* Bytes arrived. Return how many were consumed (the rest is offered again, with more,
     * later); the protocol may install another protocol inside, and the rest then goes to
     * it at once. Return < 0 to close the stream with that error. */
    ssize_t (*on_read)(sy_bstream *s, uint8_t *data, size_t len);
    /* The output queue fell to the low-water mark after sy__bs_want_drain. */
    void (*on_drain)(sy_bstream *s);
    /* The peer finished sending. */
    void (*on_eof)(sy_bstream *s);
    /* The stream's timer fired. */
    void (*on_timer)(sy_bstream *s);
    /* Server shutdown started: finish soon. */
    void (*on_shutdown)(sy_bstream *s);
    /* The stream is going away: free the protocol's state. err is 0 or why. */
    void (*on_close)(sy_bstream *s, int err);
    /* Optional: where the next bytes should land. A protocol in the middle of a piece whose
     * size it knows (a WebSocket frame being assembled) returns room for *len bytes that it
     * will take in place; a stream that can scatter its read puts the next bytes there, and
     * the rest in its usual buffer, and offers them to on_read in that order. This saves
     * copying them out of the read buffer afterwards. NULL (or returning NULL): no wish.
     * The room must stay valid until the next on_read. *next (0 before the call) may be set
     * to how many bytes to read into the usual buffer after the room: a multiple of the
     * size of the pieces the protocol expects, so that a read filling the buffer ends at the
     * end of a piece instead of cutting one (whose first part would then be copied). */
    uint8_t *(*read_into)(sy_bstream *s, size_t *len, size_t *next);
} sy_bstream_proto;

/* How sy__bs_close ends the stream. */
enum { SY_CLOSE_NOW = 0, SY_CLOSE_FLUSH = 1, SY_CLOSE_FLUSH_NO_LINGER = 2 };
/* What sy__bs_state says. */
enum { SY_BS_OPEN = 0, SY_BS_FLUSHING = 1, SY_BS_CLOSED = 2 };

typedef struct sy_bstream_ops {
    int (*write)(sy_bstream *s, const void *data, size_t len);
    int (*write_ref)(sy_bstream *s, const void *data, size_t len,
                     void (*free_fn)(const void *data, void *ud), void *ud);
    uint8_t *(*reserve)(sy_bstream *s, size_t want, size_t *got);
    void (*commit)(sy_bstream *s, size_t n);
    size_t (*buffered)(const sy_bstream *s);
    void (*want_drain)(sy_bstream *s);
    void (*pause_read)(sy_bstream *s);
    void (*resume_read)(sy_bstream *s);
    void (*set_timeout)(sy_bstream *s, uint64_t ms);
    void (*close)(sy_bstream *s, int err, int how);
    int (*state)(const sy_bstream *s);
    void (*set_limits)(sy_bstream *s, uint32_t max_pending_input, uint32_t low_water);
    uint64_t (*delivered)(const sy_bstream *s);
    void (*counts)(const sy_bstream *s, uint64_t *in, uint64_t *out);
    const char *(*peer)(const sy_bstream *s);
    /* Optional (NULL: copy the bytes instead): queue len bytes of f from off without copying
     * them; takes a reference on f until they are written or dropped. */
    int (*write_file)(sy_bstream *s, sy_fileref *f, off_t off, size_t len);
    /* Optional (NULL: copy the bytes instead): queue len bytes of the input on_read is
     * delivering, by reference; valid only during on_read (the stream writes them or copies
     * them once on_read returns). */
    int (*write_input)(sy_bstream *s, const void *data, size_t len);
    /* Optional: size zeroed bytes inside the stream's own allocation for the protocol's
     * state, or NULL (none reserved, too small, already taken). They stay valid after
     * on_close until sy__bs_tail_release (the block is freed by whichever of the stream and
     * the protocol's state goes last). */
    void *(*tail)(sy_bstream *s, size_t size);
} sy_bstream_ops;

struct sy_bstream {
    const sy_bstream_ops *ops;
    const sy_bstream_proto *proto;
    void *proto_data;
    sy_loop *loop;
};

/* Queue bytes (copied). Returns 0, SY_ECLOSED or SY_ENOMEM. */
static inline int sy__bs_write(sy_bstream *s, const void *data, size_t len)
{
    return s->ops->write(s, data, len);
}
/* Queue bytes by reference: free_fn(data, ud) runs once they are written or dropped (also
 * when this call fails). */
static inline int sy__bs_write_ref(sy_bstream *s, const void *data, size_t len,
                                   void (*free_fn)(const void *data, void *ud), void *ud)
{
    return s->ops->write_ref(s, data, len, free_fn, ud);
}
/* Room to build output in place: at least min(want, 16 KiB) bytes, or NULL (no memory);
 * then sy__bs_commit what was written. */
static inline uint8_t *sy__bs_reserve(sy_bstream *s, size_t want, size_t *got)
{
    return s->ops->reserve(s, want, got);
}
static inline void sy__bs_commit(sy_bstream *s, size_t n)
{
    s->ops->commit(s, n);
}
/* Bytes queued and not yet taken by the peer's side of the transport. */
static inline size_t sy__bs_buffered(const sy_bstream *s)
{
    return s->ops->buffered(s);
}
/* Call proto->on_drain once the queue falls to the low-water mark. */
static inline void sy__bs_want_drain(sy_bstream *s)
{
    s->ops->want_drain(s);
}
static inline void sy__bs_pause_read(sy_bstream *s)
{
    s->ops->pause_read(s);
}
static inline void sy__bs_resume_read(sy_bstream *s)
{
    s->ops->resume_read(s);
}
/* Arm the stream's one timer at now + ms (0 stops it). */
static inline void sy__bs_set_timeout(sy_bstream *s, uint64_t ms)
{
    s->ops->set_timeout(s, ms);
}
/* Close (SY_CLOSE_*): safe from any callback; proto->on_close follows later. */
static inline void sy__bs_close(sy_bstream *s, int err, int how)
{
    s->ops->close(s, err, how);
}
/* SY_BS_OPEN, SY_BS_FLUSHING (closing once the queue is written), SY_BS_CLOSED. */
static inline int sy__bs_state(const sy_bstream *s)
{
    return s->ops->state(s);
}
/* Cap on input left unconsumed by on_read, and the low-water mark for on_drain. */
static inline void sy__bs_set_limits(sy_bstream *s, uint32_t max_pending_input, uint32_t low_water)
{
    s->ops->set_limits(s, max_pending_input, low_water);
}
/* Bytes of output the peer has received (acknowledged), for progress checks. */
static inline uint64_t sy__bs_delivered(const sy_bstream *s)
{
    return s->ops->delivered(s);
}
/* Bytes received and sent so far (for logs). */
static inline void sy__bs_counts(const sy_bstream *s, uint64_t *in, uint64_t *out)
{
    s->ops->counts(s, in, out);
}
/* Queue a file range by reference (see write_file); SY_EINVAL when the stream cannot. */
static inline int sy__bs_write_file(sy_bstream *s, sy_fileref *f, off_t off, size_t len)
{
    return s->ops->write_file ? s->ops->write_file(s, f, off, len) : SY_EINVAL;
}
/* Queue bytes that lie in the input being delivered to on_read (see write_input): by
 * reference where the stream can, else copied. Only during on_read. */
static inline int sy__bs_write_input(sy_bstream *s, const void *data, size_t len)
{
    return s->ops->write_input ? s->ops->write_input(s, data, len) : s->ops->write(s, data, len);
}
/* Room for the protocol's state in the stream's own allocation (see tail), or NULL: then
 * allocate it. */
static inline void *sy__bs_tail(sy_bstream *s, size_t size)
{
    return s->ops->tail ? s->ops->tail(s, size) : NULL;
}
/* The state in a tail is done with (only tails from sy__bs_tail; implemented by connections,
 * the only streams that give tails). Call on the loop's thread. */
void sy__bs_tail_release(void *tail);
/* "addr:port" of the peer, in a per-thread buffer valid until the next call. */
static inline const char *sy__bs_peer(const sy_bstream *s)
{
    return s->ops->peer(s);
}

#endif
