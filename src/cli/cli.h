/* The switchyard command: subcommands share this header. */
#ifndef SY_CLI_H
#define SY_CLI_H

#include "switchyard.h"

#include <unistd.h>

int sy_cli_serve(int argc, char **argv);
int sy_cli_ws(int argc, char **argv);

static inline int access_ok(const char *path)
{
    return access(path, R_OK) == 0;
}

#endif
