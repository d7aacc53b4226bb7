/* Library logging: printf-style, formatted into a stack buffer and handed to the sink. */
#ifndef SY_CORE_LOG_H
#define SY_CORE_LOG_H

#include "core/common.h"

extern int sy__log_level;
void sy__log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The level check is inline so disabled levels cost one comparison. */
#define sy__log(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= sy__log_level)                                                              \
            sy__log_emit((level), __VA_ARGS__);                                                    \
    } while (0)

#endif
