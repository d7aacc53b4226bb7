/* Command-line values read strictly: a number with an optional unit, or an error naming the
 * flag. "64MiB" must not become 64 and "abc" must not become the default. */
#include "cli/serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

static const unit size_units[] = {
    {"", 1},           {"b", 1},         {"k", 1u << 10},   {"kb", 1u << 10},
    {"kib", 1u << 10}, {"m", 1u << 20},  {"mb", 1u << 20},  {"mib", 1u << 20},
    {"g", 1u << 30},   {"gb", 1u << 30}, {"gib", 1u << 30}, {NULL, 0},
};
static const unit time_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {NULL, 0},
};
static const unit count_units[] = {{"", 1}, {NULL, 0}};

static const char *expect_of(int kind)
{
    return kind == SY_CLI_SIZE   ? "a size such as 4096, 64KiB, 16M or 1GiB"
           : kind == SY_CLI_TIME ? "a time in ms, or with a unit: 500ms, 10s, 2m"
                                 : "a whole number";
}

int sy_cli_parse(const char *text, int kind, uint64_t *out, const char **expect)
{
    const unit *units = kind == SY_CLI_SIZE   ? size_units
                        : kind == SY_CLI_TIME ? time_units
                                              : count_units;
    *expect = expect_of(kind);
    char *end = NULL;
    errno = 0;
    unsigned long long n = text && *text >= '0' && *text <= '9' ? strtoull(text, &end, 10) : 0;
    if (!end || errno)
        return -1;
    for (const unit *u = units; u->name; u++) {
        if (strcasecmp(end, u->name) != 0)
            continue;
        if (n > UINT64_MAX / u->mult) {
            *expect = "a smaller value (too large)";
            return -1;
        }
        *out = (uint64_t)n * u->mult;
        return 0;
    }
    return -1;
}

int sy_cli_value(const char *flag, const char *text, int kind, uint64_t *out)
{
    const char *expect;
    if (sy_cli_parse(text, kind, out, &expect) == 0)
        return 0;
    fprintf(stderr, "switchyard: --%s %s: expected %s\n", flag, text ? text : "", expect);
    return -1;
}
