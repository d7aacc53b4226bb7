/* Unit tests for topics (src/pubsub): delivery and order across workers and publishing threads,
 * subscribing and unsubscribing from callbacks, subscribers closing during a fan-out,
 * thousands of topics on one connection, backpressure policies per subscriber, shared
 * compressed frames, and the counts in the stats. Clients are blocking loopback sockets. */
#include "ws/rawws.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>

/* rawws.h comes with a reader this file does not need (it keeps whole messages itself). */
__attribute__((unused)) static void (*unused_reader)(raw_conn *, raw_result *, int) = raw_read_msgs;

/* ---- a client that reads whole messages (and inflates them, context kept) ---- */

typedef struct cli {
    raw_conn rc;
    uint8_t buf[1 << 18];
    size_t have, off;
    sy_ws_parser p;
    z_stream z;
    int zinit;
    uint8_t *msg;
    size_t mlen, mcap;
    int mop, mcomp;
    int compressed_seen;
} cli;

static int cli_open(cli *c, int port, const char *path, const char *ext, int rcvbuf)
{
    memset(c, 0, sizeof(*c));
    if (raw_connect(&c->rc, port, path, ext) < 0 || !strstr(c->rc.head, " 101 "))
        return -1;
    if (rcvbuf)
        setsockopt(c->rc.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memcpy(c->buf, c->rc.extra, c->rc.extra_len);
    c->have = c->rc.extra_len;
    sy_ws_parser_init(&c->p, 0, SY_WS_RSV1);
    return 0;
}

static void cli_close(cli *c)
{
    raw_close(&c->rc);
    if (c->zinit)
        inflateEnd(&c->z);
    free(c->msg);
    c->msg = NULL;
}

static void append(cli *c, const uint8_t *d, size_t n)
{
    if (c->mlen + n + 1 > c->mcap) { /* + 1: room for a terminating NUL */
        c->mcap = (c->mlen + n) * 2 + 1;
        c->msg = realloc(c->msg, c->mcap);
    }
    memcpy(c->msg + c->mlen, d, n);
    c->mlen += n;
}

static int inflate_msg(cli *c)
{
    if (!c->zinit) {
        memset(&c->z, 0, sizeof(c->z));
        if (inflateInit2(&c->z, -15) != Z_OK)
            return -1;
        c->zinit = 1;
    }
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    append(c, tail, 4);
    uint8_t *in = c->msg;
    size_t inlen = c->mlen;
    c->msg = NULL;
    c->mlen = c->mcap = 0;
    c->z.next_in = in;
    c->z.avail_in = (uInt)inlen;
    uint8_t out[65536];
    int rc;
    do {
        c->z.next_out = out;
        c->z.avail_out = sizeof(out);
        rc = inflate(&c->z, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(in);
            return -1;
        }
        append(c, out, sizeof(out) - c->z.avail_out);
    } while (c->z.avail_out == 0);
    free(in);
    return 0;
}

/* The next whole message: 1 (opcode in *op, bytes in c->msg/c->mlen), 0 on close, EOF or
 * timeout, -1 on a bad frame. */
static int cli_next(cli *c, int *op)
{
    c->mlen = 0;
    for (;;) {
        while (c->off < c->have) {
            sy_ws_event ev;
            uint16_t code = 0;
            const char *detail = NULL;
            ssize_t n = sy_ws_parse(&c->p, c->buf + c->off, c->have - c->off, &ev, &code, &detail);
            if (n < 0)
                return -1;
            c->off += (size_t)n;
            if (ev.type == SY_WS_EV_CLOSE)
                return 0;
            if (ev.type == SY_WS_EV_NONE && n == 0)
                break;
            if (ev.type != SY_WS_EV_DATA)
                continue;
            if (ev.msg_start) {
                c->mlen = 0;
                c->mop = ev.opcode;
                c->mcomp = ev.compressed;
            }
            append(c, ev.data, ev.len);
            if (ev.msg_end) {
                if (c->mcomp) {
                    c->compressed_seen++;
                    if (inflate_msg(c) < 0)
                        return -1;
                }
                *op = c->mop;
                return 1;
            }
        }
        memmove(c->buf, c->buf + c->off, c->have - c->off);
        c->have -= c->off;
        c->off = 0;
        ssize_t r = read(c->rc.fd, c->buf + c->have, sizeof(c->buf) - c->have);
        if (r <= 0)
            return 0;
        c->have += (size_t)r;
    }
}

static int cli_send(cli *c, const char *text)
{
    uint8_t buf[4096];
    size_t n = 0;
    raw_frame(buf, &n, SY_WS_OP_TEXT, 1, 0, text, strlen(text));
    return raw_send(&c->rc, buf, n);
}

/* ---- the server under test ---- */

static sy_server *g_srv;

/* Commands a client sends: "sub:T", "unsub:T", "pub:T:TEXT" (publish from the callback),
 * "pubsub:T" (publish "first" to T, then subscribe to it), "many:N" (subscribe to t0..tN-1),
 * "unmany:N", "echo:TEXT" (sy_ws_send, with this connection's own compressor). Replies "ok"
 * or the error name to each, except echo. */
static void on_message(sy_ws *ws, int op, const void *data, size_t len, void *ud)
{
    (void)op;
    (void)ud;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%.*s", (int)len, (const char *)data);
    int e = 0;
    if (!strncmp(cmd, "sub:", 4)) {
        e = sy_ws_subscribe(ws, cmd + 4);
    } else if (!strncmp(cmd, "unsub:", 6)) {
        e = sy_ws_unsubscribe(ws, cmd + 6);
    } else if (!strncmp(cmd, "pub:", 4)) {
        char *colon = strchr(cmd + 4, ':');
        *colon = 0;
        e = sy_server_publish(g_srv, cmd + 4, colon + 1, strlen(colon + 1), SY_WS_TEXT);
    } else if (!strncmp(cmd, "pubsub:", 7)) {
        e = sy_server_publish(g_srv, cmd + 7, "first", 5, SY_WS_TEXT);
        if (!e)
            e = sy_ws_subscribe(ws, cmd + 7);
    } else if (!strncmp(cmd, "many:", 5) || !strncmp(cmd, "unmany:", 7)) {
        int un = cmd[0] == 'u', n = atoi(cmd + (un ? 7 : 5));
        for (int i = 0; i < n && !e; i++) {
            char t[32];
            snprintf(t, sizeof(t), "t%d", i);
            e = un ? sy_ws_unsubscribe(ws, t) : sy_ws_subscribe(ws, t);
        }
    } else if (!strncmp(cmd, "echo:", 5)) {
        sy_ws_send(ws, SY_WS_TEXT, cmd + 5, strlen(cmd + 5));
        return;
    }
    const char *r = e ? sy_err_name(e) : "ok";
    sy_ws_send(ws, SY_WS_TEXT, r, strlen(r));
}

static void on_open(sy_ws *ws, void *ud)
{
    (void)ud;
    size_t ql;
    const char *q = sy_req_query(sy_ws_request(ws), &ql);
    if (q && ql) {
        char t[256];
        snprintf(t, sizeof(t), "%.*s", (int)ql, q);
        sy_ws_subscribe(ws, t);
    }
}

static atomic_int closes, close_unsub_rc, close_sub_rc;

static void on_close(sy_ws *ws, const sy_ws_close_info *info, void *ud)
{
    (void)info;
    (void)ud;
    /* Subscriptions are still there during on_close; subscribing anew is refused. */
    atomic_store(&close_unsub_rc, sy_ws_unsubscribe(ws, "bye"));
    atomic_store(&close_sub_rc, sy_ws_subscribe(ws, "bye2"));
    atomic_fetch_add(&closes, 1);
}

static int add_route(sy_server *srv, const char *path, int policy, uint64_t high, int deflate)
{
    sy_ws_opts *o;
    if (sy_ws_opts_new(&o))
        return -1;
    sy_ws_cbs cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    sy_ws_opts_set_cbs(o, &cbs, NULL);
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE, (uint64_t)deflate);
    sy_ws_opts_set(o, SY_WS_OPT_DEFLATE_THRESHOLD, 16);
    if (high) {
        sy_ws_opts_set(o, SY_WS_OPT_BACKPRESSURE_POLICY, (uint64_t)policy);
        sy_ws_opts_set(o, SY_WS_OPT_HIGH_WATER, high);
        sy_ws_opts_set(o, SY_WS_OPT_LOW_WATER, high / 4);
        sy_ws_opts_set(o, SY_WS_OPT_MAX_BUFFER, high * 4);
    }
    sy_route *r = sy_server_route(srv, NULL, path, SY_ROUTE_EXACT, NULL, NULL);
    int e = !r || sy_route_websocket(r, o);
    sy_ws_opts_free(o);
    return e ? -1 : 0;
}

static sy_server *start(int workers)
{
    sy_server *srv;
    if (sy_server_new(&srv) || sy_server_listen(srv, "127.0.0.1:0") ||
        sy_server_set(srv, SY_OPT_WORKERS, (uint64_t)workers) ||
        sy_server_set(srv, SY_OPT_SHARED_LISTENER, 0))
        return NULL;
    if (add_route(srv, "/ps", 0, 0, 0) || add_route(srv, "/z", 0, 0, 1) ||
        add_route(srv, "/drop", SY_WS_BP_DROP, 64 << 10, 0) ||
        add_route(srv, "/close", SY_WS_BP_CLOSE, 64 << 10, 0))
        return NULL;
    if (sy_server_start(srv))
        return NULL;
    g_srv = srv;
    return srv;
}

static void stop(sy_server *srv)
{
    sy_server_stop(srv);
    sy_server_wait(srv);
    sy_server_free(srv);
    g_srv = NULL;
}

static int port(void)
{
    return sy_server_port(g_srv, 0);
}

/* Wait until the stats say n subscriptions (the server side is asynchronous to the client). */
static int wait_subs(uint64_t n)
{
    for (int i = 0; i < 500; i++) {
        sy_server_stats st;
        sy_server_get_stats(g_srv, &st);
        if (st.subscriptions == n)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int expect(cli *c, const char *text)
{
    int op;
    return cli_next(c, &op) == 1 && c->mlen == strlen(text) && !memcmp(c->msg, text, c->mlen);
}

/* ---- tests ---- */

TEST(publish_reaches_every_subscriber_once_in_order)
{
    CHECK(start(3) != NULL);
    static cli cs[12];
    for (int i = 0; i < 12; i++)
        CHECK_EQ(cli_open(&cs[i], port(), i % 2 ? "/ps?news" : "/ps?sport", NULL, 0), 0);
    CHECK(wait_subs(12));
    sy_server_stats st;
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.topics, 2);
    CHECK_EQ(sy_server_publish(g_srv, "news", "n", 1, SY_WS_TEXT), 0);
    CHECK_EQ(sy_server_publish(g_srv, "nobody", "x", 1, SY_WS_BINARY), 0);
    for (int k = 0; k < 200; k++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "%d", k);
        CHECK_EQ(sy_server_publish(g_srv, k % 2 ? "news" : "sport", m, (size_t)n, SY_WS_TEXT), 0);
    }
    for (int i = 0; i < 12; i++) {
        if (i % 2)
            CHECK(expect(&cs[i], "n"));
        for (int k = i % 2; k < 200; k += 2) {
            char m[32];
            snprintf(m, sizeof(m), "%d", k);
            CHECK(expect(&cs[i], m));
        }
    }
    /* A big message goes by reference, once per worker: every subscriber gets all of it. */
    size_t big = 300000;
    char *b = malloc(big);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)('a' + i % 26);
    CHECK_EQ(sy_server_publish(g_srv, "news", b, big, SY_WS_BINARY), 0);
    for (int i = 1; i < 12; i += 2) {
        int op;
        CHECK_EQ(cli_next(&cs[i], &op), 1);
        CHECK_EQ(op, SY_WS_OP_BINARY);
        CHECK_EQ(cs[i].mlen, big);
        CHECK_MEM(cs[i].msg, b, big);
    }
    free(b);
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.published, 203);
    CHECK_EQ(st.delivered, 6 + 1200 + 6);
    CHECK_EQ(st.dropped, 0);
    CHECK_EQ(st.subscriptions, 12);
    /* Bad arguments. */
    CHECK_EQ(sy_server_publish(g_srv, "", "x", 1, SY_WS_TEXT), SY_EINVAL);
    CHECK_EQ(sy_server_publish(g_srv, "news", "\xff", 1, SY_WS_TEXT), SY_EINVAL);
    CHECK_EQ(sy_server_publish(g_srv, "news", "x", 1, 8), SY_EINVAL);
    for (int i = 0; i < 12; i++)
        cli_close(&cs[i]);
    CHECK(wait_subs(0));
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.topics, 0);
    stop(g_srv);
}

/* Several threads publish to one topic while subscribers sit on several workers: each thread's
 * messages arrive in its order, and every subscriber sees the same interleaving. */
#define PUB_THREADS 3
#define PUB_EACH 1500
#define ORDER_CLIENTS 16

static void *publisher(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int k = 0; k < PUB_EACH; k++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "%d:%d", id, k);
        while (sy_server_publish(g_srv, "order", m, (size_t)n, SY_WS_TEXT) == SY_EAGAIN)
            usleep(1000);
    }
    return NULL;
}

TEST(order_across_threads_and_workers)
{
    CHECK(start(4) != NULL);
    static cli cs[ORDER_CLIENTS];
    for (int i = 0; i < ORDER_CLIENTS; i++)
        CHECK_EQ(cli_open(&cs[i], port(), "/ps?order", NULL, 0), 0);
    CHECK(wait_subs(ORDER_CLIENTS));
    pthread_t th[PUB_THREADS];
    for (int t = 0; t < PUB_THREADS; t++)
        pthread_create(&th[t], NULL, publisher, (void *)(intptr_t)t);
    static uint32_t seen[ORDER_CLIENTS][PUB_THREADS * PUB_EACH];
    for (int i = 0; i < ORDER_CLIENTS; i++) {
        int next[PUB_THREADS] = {0};
        for (int k = 0; k < PUB_THREADS * PUB_EACH; k++) {
            int op;
            CHECK_EQ(cli_next(&cs[i], &op), 1);
            cs[i].msg[cs[i].mlen] = 0;
            int id, seq;
            CHECK_EQ(sscanf((char *)cs[i].msg, "%d:%d", &id, &seq), 2);
            CHECK(id >= 0 && id < PUB_THREADS);
            CHECK_EQ(seq, next[id]); /* per thread: in order, none missing, none twice */
            next[id]++;
            seen[i][k] = (uint32_t)(id << 16 | seq);
        }
    }
    for (int t = 0; t < PUB_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int i = 1; i < ORDER_CLIENTS; i++) /* one order for everyone */
        CHECK_MEM(seen[i], seen[0], sizeof(seen[0]));
    for (int i = 0; i < ORDER_CLIENTS; i++)
        cli_close(&cs[i]);
    stop(g_srv);
}

/* Publishing from a callback, then subscribing in the same callback: the subscription is
 * in place before the worker takes the message, so the connection receives it. Publishing
 * continues from another thread while connections subscribe and unsubscribe: a subscriber
 * gets a gap-free run from the moment it subscribed until it unsubscribed. */
static atomic_int keep_publishing;

static void *ticker(void *arg)
{
    (void)arg;
    for (int k = 0; atomic_load(&keep_publishing); k++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "%d", k);
        if (sy_server_publish(g_srv, "tick", m, (size_t)n, SY_WS_TEXT) == SY_EAGAIN)
            k--;
        if (k % 64 == 0)
            usleep(200);
    }
    return NULL;
}

TEST(subscribe_during_publish_and_unsubscribe_in_a_callback)
{
    CHECK(start(2) != NULL);
    cli c;
    CHECK_EQ(cli_open(&c, port(), "/ps", NULL, 0), 0);
    CHECK_EQ(cli_send(&c, "pubsub:room"), 0);
    /* The reply to the command comes first (sent in the callback), then the message. */
    CHECK(expect(&c, "ok"));
    CHECK(expect(&c, "first"));
    CHECK_EQ(cli_send(&c, "sub:room"), 0);
    CHECK(expect(&c, "SY_EEXIST"));
    atomic_store(&keep_publishing, 1);
    pthread_t th;
    pthread_create(&th, NULL, ticker, NULL);
    usleep(20000);
    CHECK_EQ(cli_send(&c, "sub:tick"), 0);
    int op, first = -1, last = -1, got_unsub_ok = 0, after_unsub = 0;
    CHECK(expect(&c, "ok"));
    for (int k = 0; k < 300; k++) {
        CHECK_EQ(cli_next(&c, &op), 1);
        c.msg[c.mlen] = 0;
        int v = atoi((char *)c.msg);
        if (first < 0)
            first = v;
        else
            CHECK_EQ(v, last + 1); /* no gap, no duplicate once subscribed */
        last = v;
    }
    CHECK_EQ(cli_send(&c, "unsub:tick"), 0);
    /* Messages already queued before the unsubscription still arrive, then nothing. */
    for (;;) {
        CHECK_EQ(cli_next(&c, &op), 1);
        c.msg[c.mlen] = 0;
        if (!strcmp((char *)c.msg, "ok")) {
            got_unsub_ok = 1;
            break;
        }
        CHECK_EQ(atoi((char *)c.msg), last + 1);
        last++;
    }
    CHECK(got_unsub_ok);
    usleep(50000);
    CHECK_EQ(cli_send(&c, "unsub:tick"), 0);
    for (;;) {
        CHECK_EQ(cli_next(&c, &op), 1);
        c.msg[c.mlen] = 0;
        if (!strcmp((char *)c.msg, "SY_ENOTFOUND"))
            break;
        after_unsub++;
    }
    CHECK_EQ(after_unsub, 0);
    atomic_store(&keep_publishing, 0);
    pthread_join(th, NULL);
    cli_close(&c);
    CHECK(wait_subs(0));
    stop(g_srv);
    CHECK_EQ(atomic_load(&close_unsub_rc), SY_ENOTFOUND);
    CHECK_EQ(atomic_load(&close_sub_rc), SY_ECLOSED);
}

/* Subscribers go away in the middle of a stream of fan-outs: one resets its connection, one
 * is closed by the close policy because it does not read, one drops under the drop policy;
 * the readers get everything. */
TEST(slow_and_vanishing_subscribers_never_hold_up_the_others)
{
    CHECK(start(2) != NULL);
    atomic_store(&closes, 0);
    static cli readers[4], slow_close, slow_drop, quitter;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(cli_open(&readers[i], port(), "/ps?flood", NULL, 0), 0);
    CHECK_EQ(cli_open(&slow_close, port(), "/close?flood", NULL, 0), 0);
    CHECK_EQ(cli_open(&slow_drop, port(), "/drop?flood", NULL, 0), 0);
    CHECK_EQ(cli_open(&quitter, port(), "/ps?flood", NULL, 0), 0);
    CHECK(wait_subs(7));
    size_t len = 32768;
    char *m = malloc(len);
    int total = 400;
    for (int k = 0; k < total; k++) {
        memset(m, 'a' + k % 26, len);
        snprintf(m, 16, "%06d", k);
        CHECK_EQ(sy_server_publish(g_srv, "flood", m, len, SY_WS_BINARY), 0);
        if (k == 50) {
            struct linger lg = {1, 0}; /* reset: the server sees an error mid-stream */
            setsockopt(quitter.rc.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            cli_close(&quitter);
        }
        if (k % 50 == 49) /* let the readers keep up (the buffer policy would grow) */
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 50; j++) {
                    int op;
                    CHECK_EQ(cli_next(&readers[i], &op), 1);
                    CHECK_EQ(readers[i].mlen, len);
                    char want[8];
                    snprintf(want, sizeof(want), "%06d", k - 49 + j);
                    CHECK_MEM(readers[i].msg, want, 6);
                }
    }
    free(m);
    /* The non-reader under the close policy was closed with 1008. */
    int op, n = 0, r;
    while ((r = cli_next(&slow_close, &op)) == 1)
        n++;
    CHECK(n < total);
    cli_close(&slow_close); /* answer the close: the connection ends now */
    /* The drop-policy subscriber is still open but missed messages. */
    n = 0;
    struct timeval tv = {1, 0};
    setsockopt(slow_drop.rc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (cli_next(&slow_drop, &op) == 1)
        n++;
    CHECK(n > 0 && n < total);
    sy_server_stats st;
    sy_server_get_stats(g_srv, &st);
    CHECK(st.dropped > 0);
    CHECK(st.delivered >= 4u * (unsigned)total);
    CHECK(wait_subs(5)); /* the reset and the policy-closed connection are gone */
    for (int i = 0; i < 4; i++)
        cli_close(&readers[i]);
    cli_close(&slow_drop);
    CHECK(wait_subs(0));
    stop(g_srv);
}

/* Bursts of small messages for one topic go out as one shared run per subscriber: the runs
 * end where the topic changes or a big message comes, every subscriber still gets one order,
 * compressing subscribers get theirs message by message, and the backpressure policies see
 * each message of a run as if it came alone (drop: an increasing subsequence; close: a prefix,
 * then 1008). */
#define RUN_TOTAL 6000
#define RUN_BURST 500

static int run_topic_b(int k)
{
    return k % 7 == 3;
}

static size_t run_msg(char *m, int k)
{
    size_t len = k % 40 == 39 ? 32768 : 32;
    memset(m, 'a' + k % 26, len);
    snprintf(m, 16, "%06d", k);
    return len;
}

/* Read the messages of one burst that c should get: all k in [from, to) on its topics. */
static int run_read(cli *c, int from, int to, int want_a, int want_b)
{
    for (int k = from; k < to; k++) {
        if (run_topic_b(k) ? !want_b : !want_a)
            continue;
        int op;
        char want[16];
        snprintf(want, sizeof(want), "%06d", k);
        if (cli_next(c, &op) != 1 || c->mlen != (k % 40 == 39 ? 32768u : 32u) ||
            memcmp(c->msg, want, 6))
            return 0;
    }
    return 1;
}

TEST(runs_keep_one_order_and_each_subscribers_policy)
{
    CHECK(start(1) != NULL);
    static cli both, only_a, zipped, dropper, closer;
    CHECK_EQ(cli_open(&both, port(), "/ps?ra", NULL, 0), 0);
    CHECK_EQ(cli_open(&only_a, port(), "/ps?ra", NULL, 0), 0);
    CHECK_EQ(cli_open(&zipped, port(), "/z?ra", "permessage-deflate", 0), 0);
    CHECK_EQ(cli_open(&dropper, port(), "/drop?ra", NULL, 4096), 0);
    CHECK_EQ(cli_open(&closer, port(), "/close?ra", NULL, 4096), 0);
    CHECK(wait_subs(5));
    CHECK_EQ(cli_send(&both, "sub:rb"), 0);
    CHECK(expect(&both, "ok"));
    CHECK(wait_subs(6));
    char *m = malloc(32768);
    int a_total = 0;
    for (int from = 0; from < RUN_TOTAL; from += RUN_BURST) {
        for (int k = from; k < from + RUN_BURST; k++) {
            size_t len = run_msg(m, k);
            CHECK_EQ(sy_server_publish(g_srv, run_topic_b(k) ? "rb" : "ra", m, len, SY_WS_BINARY),
                     0);
            a_total += !run_topic_b(k);
        }
        CHECK(run_read(&both, from, from + RUN_BURST, 1, 1));
        CHECK(run_read(&only_a, from, from + RUN_BURST, 1, 0));
        CHECK(run_read(&zipped, from, from + RUN_BURST, 1, 0));
    }
    free(m);
    CHECK(zipped.compressed_seen);
    /* The close-policy subscriber got a gapless prefix of its messages, then a close. */
    int op, r, k = 0, n = 0;
    while ((r = cli_next(&closer, &op)) == 1) {
        while (run_topic_b(k))
            k++;
        char want[16];
        snprintf(want, sizeof(want), "%06d", k++);
        CHECK_MEM(closer.msg, want, 6);
        n++;
    }
    CHECK(n < a_total);
    cli_close(&closer);
    /* The drop-policy subscriber got some of its messages, in order. */
    struct timeval tv = {1, 0};
    setsockopt(dropper.rc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int last = -1;
    n = 0;
    while (cli_next(&dropper, &op) == 1) {
        int got = atoi((const char *)dropper.msg);
        CHECK(got > last && !run_topic_b(got));
        last = got;
        n++;
    }
    CHECK(n > 0 && n < a_total);
    sy_server_stats st;
    sy_server_get_stats(g_srv, &st);
    CHECK(st.dropped > 0);
    /* Every message to every subscriber: delivered or dropped, counted once. */
    CHECK_EQ(st.delivered + st.dropped, (uint64_t)RUN_TOTAL + 4u * (uint64_t)a_total);
    cli_close(&both);
    cli_close(&only_a);
    cli_close(&zipped);
    cli_close(&dropper);
    CHECK(wait_subs(0));
    stop(g_srv);
}

TEST(thousands_of_topics_on_one_connection)
{
    CHECK(start(2) != NULL);
    cli c, other;
    CHECK_EQ(cli_open(&c, port(), "/ps", NULL, 0), 0);
    CHECK_EQ(cli_open(&other, port(), "/ps?t7", NULL, 0), 0);
    CHECK_EQ(cli_send(&c, "many:5000"), 0);
    CHECK(expect(&c, "ok"));
    sy_server_stats st;
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.topics, 5000);
    CHECK_EQ(st.subscriptions, 5001);
    for (int i = 0; i < 5000; i++) {
        char t[32], m[32];
        snprintf(t, sizeof(t), "t%d", i);
        int n = snprintf(m, sizeof(m), "m%d", i);
        CHECK_EQ(sy_server_publish(g_srv, t, m, (size_t)n, SY_WS_TEXT), 0);
    }
    for (int i = 0; i < 5000; i++) {
        char m[32];
        snprintf(m, sizeof(m), "m%d", i);
        CHECK(expect(&c, m));
    }
    CHECK(expect(&other, "m7"));
    CHECK_EQ(cli_send(&c, "unmany:2500"), 0);
    CHECK(expect(&c, "ok"));
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.topics, 2501); /* t7 stays: the other connection has it */
    CHECK_EQ(st.subscriptions, 2501);
    CHECK_EQ(sy_server_publish(g_srv, "t1", "gone", 4, SY_WS_TEXT), 0);
    CHECK_EQ(sy_server_publish(g_srv, "t4999", "kept", 4, SY_WS_TEXT), 0);
    CHECK(expect(&c, "kept"));
    cli_close(&c); /* the other 2500 end with the connection */
    CHECK(wait_subs(1));
    sy_server_get_stats(g_srv, &st);
    CHECK_EQ(st.topics, 1);
    cli_close(&other);
    CHECK(wait_subs(0));
    stop(g_srv);
}

/* Subscribers that negotiated permessage-deflate get one shared compressed frame per worker;
 * a connection's own compressed messages (context takeover) still decode after it. */
TEST(shared_compressed_frames_interleave_with_own_messages)
{
    CHECK(start(2) != NULL);
    static cli z[3];
    CHECK_EQ(cli_open(&z[0], port(), "/z?zz", "permessage-deflate", 0), 0);
    CHECK_EQ(cli_open(&z[1], port(), "/z?zz", "permessage-deflate; client_max_window_bits", 0), 0);
    CHECK_EQ(cli_open(&z[2], port(), "/ps?zz", NULL, 0), 0); /* no deflate */
    CHECK(strstr(z[0].rc.head, "permessage-deflate") != NULL);
    CHECK(wait_subs(3));
    const char *texts[] = {"the quick brown fox jumps over the lazy dog, again and again",
                           "echo:the quick brown fox jumps over the lazy dog, and once more",
                           "the quick brown fox jumps over the lazy dog; a third time"};
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(sy_server_publish(g_srv, "zz", texts[0], strlen(texts[0]), SY_WS_TEXT), 0);
        for (int i = 0; i < 3; i++)
            CHECK(expect(&z[i], texts[0]));
        /* The connection's own compressor, after a shared frame went out in between. */
        for (int i = 0; i < 2; i++) {
            CHECK_EQ(cli_send(&z[i], texts[1]), 0);
            CHECK(expect(&z[i], texts[1] + 5));
        }
        CHECK_EQ(sy_server_publish(g_srv, "zz", texts[2], strlen(texts[2]), SY_WS_TEXT), 0);
        for (int i = 0; i < 3; i++)
            CHECK(expect(&z[i], texts[2]));
    }
    CHECK(z[0].compressed_seen >= 9);
    CHECK(z[1].compressed_seen >= 9);
    CHECK_EQ(z[2].compressed_seen, 0);
    for (int i = 0; i < 3; i++)
        cli_close(&z[i]);
    CHECK(wait_subs(0));
    stop(g_srv);
}

TEST(publish_before_start_and_subscribe_on_a_client)
{
    sy_server *srv;
    CHECK_EQ(sy_server_new(&srv), 0);
    CHECK_EQ(sy_server_publish(srv, "t", "x", 1, SY_WS_TEXT), SY_ESTATE);
    CHECK_EQ(sy_server_set_redis(srv, "redis://", NULL), SY_EADDR);
    CHECK_EQ(sy_server_set_redis(srv, "redis://h:0", NULL), SY_EADDR);
    CHECK_EQ(sy_server_set_redis(srv, "redis://user:pw@h:1", NULL), SY_EADDR);
    CHECK_EQ(sy_server_set_redis(srv, "redis://[::1]:7000/", NULL), 0);
    CHECK_EQ(sy_server_set_redis(srv, "127.0.0.1", "app:"), 0);
    sy_server_free(srv); /* never started: frees the Redis settings too */
}

int main(void)
{
    RUN(publish_reaches_every_subscriber_once_in_order);
    RUN(order_across_threads_and_workers);
    RUN(subscribe_during_publish_and_unsubscribe_in_a_callback);
    RUN(slow_and_vanishing_subscribers_never_hold_up_the_others);
    RUN(runs_keep_one_order_and_each_subscribers_policy);
    RUN(thousands_of_topics_on_one_connection);
    RUN(shared_compressed_frames_interleave_with_own_messages);
    RUN(publish_before_start_and_subscribe_on_a_client);
    return sy_t_summary();
}
