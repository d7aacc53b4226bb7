/* src/core/err.c: sy_strerror and sy_err_name name every return value. Errors (< 0) by their
 * enum sy_err entry; non-negative values are results: 0 is "ok", 1 and 2 the positive results
 * of sy_ws_send (1 also of sy_stream_write); anything else is unknown, never NULL. */
#include "harness.h"
#include "switchyard.h"

#include <limits.h>

TEST(zero_is_ok)
{
    CHECK(!strcmp(sy_strerror(SY_OK), "ok"));
    CHECK(!strcmp(sy_err_name(SY_OK), "SY_OK"));
    CHECK(!strcmp(sy_strerror(SY_WS_SEND_OK), "ok"));
    CHECK(!strcmp(sy_strerror(SY_STREAM_WRITE_OK), "ok"));
    CHECK(!sy_err_is_fatal(SY_OK));
}

TEST(positive_send_results_by_name)
{
    CHECK(strstr(sy_strerror(SY_WS_SEND_BACKPRESSURE), "high-water") != NULL);
    CHECK(!strcmp(sy_err_name(SY_WS_SEND_BACKPRESSURE), "SY_WS_SEND_BACKPRESSURE"));
    CHECK(strstr(sy_strerror(SY_WS_SEND_DROPPED), "not queued") != NULL);
    CHECK(!strcmp(sy_err_name(SY_WS_SEND_DROPPED), "SY_WS_SEND_DROPPED"));
    /* sy_stream_write's backpressure is the same value, and means the same */
    CHECK_EQ(SY_STREAM_WRITE_BACKPRESSURE, SY_WS_SEND_BACKPRESSURE);
    CHECK(sy_strerror(SY_STREAM_WRITE_BACKPRESSURE) == sy_strerror(SY_WS_SEND_BACKPRESSURE));
    CHECK(!sy_err_is_fatal(SY_WS_SEND_DROPPED));
}

TEST(other_positive_values_are_unknown_results)
{
    static const int vals[] = {3, 4, 100, 101, 202, 901, INT_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        CHECK(!strcmp(sy_strerror(vals[i]), "unknown result"));
        CHECK(!strcmp(sy_err_name(vals[i]), "SY_EUNKNOWN"));
        CHECK(!sy_err_is_fatal(vals[i]));
    }
}

TEST(unknown_negative_values_are_unknown_errors)
{
    static const int vals[] = {-1, -2, -100, -200, -310, -900, -903, INT_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        CHECK(!strcmp(sy_strerror(vals[i]), "unknown error"));
        CHECK(!strcmp(sy_err_name(vals[i]), "SY_EUNKNOWN"));
    }
}

/* Every enum sy_err has its own name and a sentence of its own. */
TEST(every_error_is_named)
{
#define E(x)                                                                                       \
    {                                                                                              \
        x, #x                                                                                      \
    }
    static const struct {
        int code;
        const char *name;
    } all[] = {
        E(SY_EINVAL),           E(SY_ESTATE),
        E(SY_ENOTFOUND),        E(SY_EEXIST),
        E(SY_ERANGE),           E(SY_EIO),
        E(SY_ECLOSED),          E(SY_EADDR),
        E(SY_ETIMEDOUT),        E(SY_EAGAIN),
        E(SY_ELIMIT),           E(SY_EADDRINUSE),
        E(SY_EHTTP_SYNTAX),     E(SY_EHTTP_URI_LONG),
        E(SY_EHTTP_HEAD_LARGE), E(SY_EHTTP_VERSION),
        E(SY_EHTTP_FRAMING),    E(SY_EHTTP_CODING),
        E(SY_EHTTP_BODY_LARGE), E(SY_EHTTP_EXPECT),
        E(SY_EHTTP_CHUNK),      E(SY_EWS_PROTOCOL),
        E(SY_EWS_UTF8),         E(SY_EWS_TOO_BIG),
        E(SY_EWS_HANDSHAKE),    E(SY_EWS_EXTENSION),
        E(SY_EWS_POLICY),       E(SY_ETLS),
        E(SY_ETLS_CERT),        E(SY_ETLS_VERIFY),
        E(SY_ENOMEM),           E(SY_EINTERNAL),
    };
#undef E
    size_t n = sizeof(all) / sizeof(all[0]);
    for (size_t i = 0; i < n; i++) {
        CHECK(all[i].code < 0);
        CHECK(!strcmp(sy_err_name(all[i].code), all[i].name));
        CHECK(strcmp(sy_strerror(all[i].code), "unknown error") != 0);
        CHECK_EQ(sy_err_is_fatal(all[i].code), all[i].code <= -900);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(sy_strerror(all[i].code), sy_strerror(all[k].code)) != 0);
    }
}

int main(void)
{
    RUN(zero_is_ok);
    RUN(positive_send_results_by_name);
    RUN(other_positive_values_are_unknown_results);
    RUN(unknown_negative_values_are_unknown_errors);
    RUN(every_error_is_named);
    return sy_t_summary();
}
