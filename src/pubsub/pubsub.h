/* Topics (publish/subscribe) over a server's WebSocket connections.
 *
 * Each worker loop has a registry (loop->topics): a hash of topics, each with the list of its
 * subscribers on that worker, and an inbox of published messages. Publishing takes one
 * server-wide lock per message (not per subscriber) to append the message to every worker's
 * inbox, so every inbox holds the messages in the same order: one order for every subscriber
 * of the process. Each worker then frames the message once (and compresses it once per
 * deflate setting) and queues the same bytes to each of its subscribers.
 *
 * With Redis (pubsub/redis.c) a publish becomes a PUBLISH on a worker's connection, and the
 * process's one subscription feeds the inboxes through the same path. */
#ifndef SY_PUBSUB_PUBSUB_H
#define SY_PUBSUB_PUBSUB_H

#include "net/worker.h"

#include <pthread.h>
#include <stdatomic.h>

#define SY_PS_TOPIC_MAX 1024
#define SY_PS_INBOX_MAX_MSGS 65536
#define SY_PS_INBOX_MAX_BYTES (64u << 20)

typedef struct sy_ps_redis sy_ps_redis;
typedef struct ps_worker ps_worker;

/* One published message, shared by every worker (one reference each, plus one per
 * subscriber queue that holds its frame by reference). Immutable once built. */
typedef struct ps_msg {
    atomic_uint refs;
    uint8_t opcode;
    uint32_t hash;
    uint32_t topic_len;
    size_t len;     /* payload bytes */
    size_t hl;      /* frame header bytes: the frame is data[topic_len .. +hl+len) */
    uint8_t data[]; /* topic, then the unmasked frame (header + payload) */
} ps_msg;

static inline const char *ps_msg_topic(const ps_msg *m)
{
    return (const char *)m->data;
}
static inline const uint8_t *ps_msg_frame(const ps_msg *m)
{
    return m->data + m->topic_len;
}
static inline const uint8_t *ps_msg_payload(const ps_msg *m)
{
    return m->data + m->topic_len + m->hl;
}

typedef struct sy_pubsub {
    sy_server *srv;
    pthread_mutex_t order_mu; /* one publish at a time into all inboxes: one order */
    ps_worker **workers;      /* indexed like srv->workers; NULL until worker_init */
    size_t nworkers;
    uint64_t seed; /* of the topic hash */
    /* distinct topics over all workers (for stats): name -> number of workers having it */
    pthread_mutex_t gtopics_mu;
    void *gtopics;
    atomic_uint_fast64_t topics, subscriptions, published, publish_refused, delivered, dropped;
    sy_ps_redis *redis; /* NULL: local only */
} sy_pubsub;

/* Composition hooks (src/server). */
sy_pubsub *sy__pubsub_new(sy_server *srv);
void sy__pubsub_free(sy_pubsub *ps);
int sy__pubsub_worker_init(sy_worker *w);
void sy__pubsub_worker_free(sy_worker *w);
void sy__pubsub_stats(const sy_server *srv, sy_server_stats *out);

/* A message for topic with payload data (text already validated). Returns NULL without
 * memory. The caller holds one reference. */
ps_msg *sy__ps_msg_new(sy_pubsub *ps, const char *topic, size_t tlen, const void *data, size_t len,
                       int opcode);
void sy__ps_msg_unref(ps_msg *m);
/* Append m to every worker's inbox (all or none), taking a reference for each; the caller
 * keeps its own. Returns 0 or SY_EAGAIN (an inbox is full). Any thread. */
int sy__ps_enqueue(sy_pubsub *ps, ps_msg *m);
/* The worker registry of the calling thread when it is one of ps's workers, else NULL. */
ps_worker *sy__ps_current_worker(const sy_pubsub *ps);
size_t sy__ps_worker_index(const ps_worker *w);
sy_pubsub *sy__ps_worker_pubsub(const ps_worker *w);
sy_loop *sy__ps_worker_loop(const ps_worker *w);

/* Redis backend (pubsub/redis.c). */
int sy__ps_redis_config(sy_pubsub *ps, const char *url, const char *prefix);
int sy__ps_redis_worker_init(sy_pubsub *ps, size_t idx, sy_loop *loop);
void sy__ps_redis_worker_free(sy_pubsub *ps, size_t idx);
int sy__ps_redis_publish(sy_pubsub *ps, const char *topic, size_t tlen, const void *data,
                         size_t len, int opcode);
void sy__ps_redis_stats(const sy_pubsub *ps, sy_server_stats *out);
void sy__ps_redis_free(sy_pubsub *ps);

#endif
