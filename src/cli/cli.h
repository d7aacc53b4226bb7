/* The switchyard command: subcommands share this header. */
#ifndef SY_CLI_H
#define SY_CLI_H

#include "switchyard.h"

#include <unistd.h>

int sy_cli_serve(int argc, char **argv);
int sy_cli_ws(int argc, char **argv);
int sy_cli_probe(int argc, char **argv);

#define SY_ARRAY_LEN_CLI(a) (sizeof(a) / sizeof((a)[0]))

/* Read a flag's value strictly (src/cli/values.c): SY_CLI_COUNT a whole number, SY_CLI_SIZE
 * bytes with an optional k/KiB/M/MiB/G/GiB unit (powers of 1024), SY_CLI_TIME milliseconds
 * with an optional ms/s/m/h unit. Returns 0, or -1 after one line on stderr naming the flag. */
enum { SY_CLI_COUNT = 1, SY_CLI_SIZE, SY_CLI_TIME };
int sy_cli_value(const char *flag, const char *text, int kind, uint64_t *out);

/* `serve` TLS options (src/cli/tls.c). */
typedef struct sy_cli_tls {
    const char *listens[16], *certs[16], *keys[16];
    size_t nlisten, ncert, nkey;
    int self_signed;
} sy_cli_tls;
/* which: 0 --tls-listen, 1 --tls-cert, 2 --tls-key, 3 --tls-self-signed. Returns 0 or -err. */
int sy_cli_tls_opt(sy_cli_tls *o, int which, const char *arg);
/* Build the context and add the TLS listeners (after the cleartext ones); rotate_ms >= 0
 * sets the session-ticket rotation (0 = no tickets). Returns 0, or 2 after printing one
 * line on stderr. */
int sy_cli_tls_listen(sy_server *srv, const sy_cli_tls *o, int64_t rotate_ms);
/* A ticket rotation (ms) is 0 or whole seconds within the library's range: 0 or SY_ERANGE. */
int sy_cli_ticket_rotate(uint64_t ms);

static inline int access_ok(const char *path)
{
    return access(path, R_OK) == 0;
}

#endif
