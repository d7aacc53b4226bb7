/* Flood counters (see flood.h). */
#include "http2/flood.h"

#include <string.h>

uint32_t sy_h2_flood_limit(int ev)
{
    /* Per 10 s. Browsers cancel streams when a page is left and ping rarely; these leave a
     * wide margin above that and stop a loop that does nothing else. */
    static const uint32_t limits[SY_H2_EV_N] = {
        [SY_H2_EV_RESET] = 200,
        [SY_H2_EV_PING] = 100,
        [SY_H2_EV_SETTINGS] = 100,
        [SY_H2_EV_EMPTY_DATA] = 100,
    };
    return ev >= 0 && ev < SY_H2_EV_N ? limits[ev] : 0;
}

int sy_h2_flood_hit(sy_h2_flood *f, int ev, uint64_t now)
{
    if (ev < 0 || ev >= SY_H2_EV_N)
        return 0;
    if (now - f->window_start >= SY_H2_FLOOD_WINDOW_MS || now < f->window_start) {
        memset(f->count, 0, sizeof(f->count));
        f->window_start = now;
    }
    return ++f->count[ev] > sy_h2_flood_limit(ev);
}
