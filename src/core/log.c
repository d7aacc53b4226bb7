/* The log sink. Default: one line per message on stderr, prefixed with the level. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static void default_sink(int level, const char *msg, void *ud)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)ud;
    fprintf(stderr, "switchyard %s: %s\n", names[level & 3], msg);
}

int sy__log_level = SY_LOG_WARN;
static sy_log_fn sink = default_sink;
static void *sink_ud;

SY_EXPORT void sy_set_log(sy_log_fn fn, int max_level, void *ud)
{
    sink = fn;
    sink_ud = ud;
    sy__log_level = fn ? max_level : -1;
}

void sy__log_emit(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (sink)
        sink(level, buf, sink_ud);
}
