/* Unit tests for src/http2/flood.c: the per-window flood counters. */
#include "http2/flood.h"
#include "harness.h"

TEST(bound_is_exceeded_only_past_the_limit)
{
    sy_h2_flood f = {0};
    uint32_t lim = sy_h2_flood_limit(SY_H2_EV_RESET);
    CHECK(lim > 0);
    for (uint32_t i = 0; i < lim; i++)
        CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_RESET, 1000 + i), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_RESET, 1000 + lim), 1);
}

TEST(kinds_are_counted_apart)
{
    sy_h2_flood f = {0};
    for (uint32_t i = 0; i < sy_h2_flood_limit(SY_H2_EV_PING); i++)
        CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_PING, 5), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_SETTINGS, 5), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_EMPTY_DATA, 5), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_PING, 5), 1);
}

TEST(a_new_window_starts_over)
{
    sy_h2_flood f = {0};
    uint32_t lim = sy_h2_flood_limit(SY_H2_EV_EMPTY_DATA);
    for (uint32_t i = 0; i < lim; i++)
        CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_EMPTY_DATA, 100), 0);
    /* a steady rate under the bound per window never trips */
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_EMPTY_DATA, 100 + SY_H2_FLOOD_WINDOW_MS), 0);
    for (uint32_t i = 1; i < lim; i++)
        CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_EMPTY_DATA, 100 + SY_H2_FLOOD_WINDOW_MS + i), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_EMPTY_DATA, 100 + SY_H2_FLOOD_WINDOW_MS + 1), 1);
}

TEST(clock_going_back_resets_instead_of_wrapping)
{
    sy_h2_flood f = {0};
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_RESET, 50000), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_RESET, 10), 0);
    CHECK_EQ(f.count[SY_H2_EV_RESET], 1);
}

TEST(unknown_kind_is_ignored)
{
    sy_h2_flood f = {0};
    CHECK_EQ(sy_h2_flood_hit(&f, SY_H2_EV_N, 1), 0);
    CHECK_EQ(sy_h2_flood_hit(&f, -1, 1), 0);
}

int main(void)
{
    RUN(bound_is_exceeded_only_past_the_limit);
    RUN(kinds_are_counted_apart);
    RUN(a_new_window_starts_over);
    RUN(clock_going_back_resets_instead_of_wrapping);
    RUN(unknown_kind_is_ignored);
    return sy_t_summary();
}
