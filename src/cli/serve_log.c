/* The logs of `serve`: access lines (requests; switches and closes of upgraded connections)
 * and the server's own lines (start-up, reload, errors), plain or JSON (--log-format json:
 * one object per line). The format can change at a reload, so it is read per line. */
#include "cli/serve.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int g_json, g_access = 1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void serve_log_set(int json, int access)
{
    atomic_store(&g_json, json);
    atomic_store(&g_access, access);
}

int serve_log_json(void)
{
    return atomic_load(&g_json);
}

/* A bounded line builder. */
typedef struct line {
    char b[2048];
    size_t n;
} line;

static void put(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (l->n < sizeof(l->b)) {
        int k = vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
        if (k > 0)
            l->n = l->n + (size_t)k < sizeof(l->b) ? l->n + (size_t)k : sizeof(l->b) - 1;
    }
    va_end(ap);
}

/* A JSON string (quotes included); control bytes escaped, other bytes as they are (the
 * library hands UTF-8, and request targets are ASCII). */
static void put_json_str(line *l, const char *s)
{
    put(l, "\"");
    for (; s && *s && l->n + 8 < sizeof(l->b); s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(l, "\\%c", c);
        else if (c == '\n')
            put(l, "\\n");
        else if (c < 0x20 || c == 0x7f)
            put(l, "\\u%04x", c);
        else
            l->b[l->n++] = (char)c;
    }
    put(l, "\"");
}

/* A field of a plain line that the client chose (the method and target): '"', '\\' and
 * control bytes as \xHH, as Apache writes them, so that a target holding a quote cannot
 * forge the fields after it (a line break cannot get this far: both parsers refuse it). */
static void put_plain_str(line *l, const char *s)
{
    for (; s && *s && l->n + 8 < sizeof(l->b); s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f)
            put(l, "\\x%02x", c);
        else
            l->b[l->n++] = (char)c;
    }
}

static void put_ts(line *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    put(l, "\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void emit(FILE *f, line *l)
{
    if (l->n >= sizeof(l->b) - 1)
        l->n = sizeof(l->b) - 2;
    l->b[l->n++] = '\n';
    pthread_mutex_lock(&g_mu);
    fwrite(l->b, 1, l->n, f);
    fflush(f);
    pthread_mutex_unlock(&g_mu);
}

static const char *const event_names[] = {"request", "switch", "close"};

void serve_access_log(const sy_access_entry *e, void *ud)
{
    FILE *f = ud;
    if (!atomic_load(&g_access))
        return;
    line l = {.n = 0};
    int ev = e->event >= 0 && e->event <= 2 ? e->event : 0;
    if (atomic_load(&g_json)) {
        put(&l, "{");
        put_ts(&l);
        put(&l,
            ",\"type\":\"access\",\"event\":\"%s\",\"id\":\"%016llx\",\"peer\":", event_names[ev],
            (unsigned long long)e->request_id);
        put_json_str(&l, e->peer);
        put(&l, ",\"method\":");
        put_json_str(&l, e->method);
        put(&l, ",\"target\":");
        put_json_str(&l, e->target);
        put(&l,
            ",\"version\":\"HTTP/%d.%d\",\"protocol\":\"%s\",\"status\":%d,\"bytes_in\":%llu,"
            "\"bytes_out\":%llu,\"duration_ms\":%.3f",
            e->version / 10, e->version % 10, e->protocol, e->status,
            (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
            (double)e->duration_us / 1000.0);
        if (e->upgraded) {
            put(&l, ",\"upgraded\":");
            put_json_str(&l, e->upgraded);
        }
        if (e->close_cause) {
            put(&l, ",\"close_cause\":");
            put_json_str(&l, e->close_cause);
        }
        if (e->close_code)
            put(&l, ",\"close_code\":%d", e->close_code);
        if (e->detail) {
            put(&l, ",\"detail\":");
            put_json_str(&l, e->detail);
        }
        put(&l, "}");
    } else {
        put(&l, "%s \"", e->peer);
        put_plain_str(&l, e->method);
        put(&l, " ");
        put_plain_str(&l, e->target);
        put(&l, " HTTP/%d.%d\" %d in=%llu out=%llu %.3fms proto=%s id=%016llx", e->version / 10,
            e->version % 10, e->status, (unsigned long long)e->bytes_in,
            (unsigned long long)e->bytes_out, (double)e->duration_us / 1000.0, e->protocol,
            (unsigned long long)e->request_id);
        /* A switch line says switched=, the close line upgraded= (as before this split). */
        if (e->upgraded)
            put(&l, " %s=%s", ev == SY_ACCESS_SWITCH ? "switched" : "upgraded", e->upgraded);
        if (e->close_cause)
            put(&l, " cause=%s", e->close_cause);
        if (e->close_code)
            put(&l, " code=%d", e->close_code);
        if (e->detail)
            put(&l, " detail=\"%s\"", e->detail);
    }
    emit(f, &l);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void say(int level, const char *msg, int lib)
{
    line l = {.n = 0};
    if (atomic_load(&g_json)) {
        put(&l, "{");
        put_ts(&l);
        put(&l, ",\"type\":\"log\",\"level\":\"%s\",\"msg\":", level_names[level & 3]);
        put_json_str(&l, msg);
        put(&l, "}");
    } else if (lib) {
        put(&l, "switchyard %s: %s", level_names[level & 3], msg);
    } else {
        put(&l, "switchyard: %s", msg);
    }
    emit(stderr, &l);
}

void serve_error_log(int level, const char *msg, void *ud)
{
    (void)ud;
    say(level, msg, 1);
}

void serve_say(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say(level, msg, 0);
}
