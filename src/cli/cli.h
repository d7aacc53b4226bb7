/* The switchyard command: subcommands share this header. */
#ifndef SY_CLI_H
#define SY_CLI_H

#include "switchyard.h"

#include <unistd.h>

int sy_cli_serve(int argc, char **argv);
int sy_cli_ws(int argc, char **argv);

#define SY_ARRAY_LEN_CLI(a) (sizeof(a) / sizeof((a)[0]))

/* `serve` TLS options (src/cli/tls.c). */
typedef struct sy_cli_tls {
    const char *listens[16], *certs[16], *keys[16];
    size_t nlisten, ncert, nkey;
    int self_signed;
} sy_cli_tls;
/* which: 0 --tls-listen, 1 --tls-cert, 2 --tls-key, 3 --tls-self-signed. Returns 0 or -err. */
int sy_cli_tls_opt(sy_cli_tls *o, int which, const char *arg);
/* Build the context and add the TLS listeners (after the cleartext ones). Returns 0, or 2
 * after printing one line on stderr. */
int sy_cli_tls_listen(sy_server *srv, const sy_cli_tls *o);

static inline int access_ok(const char *path)
{
    return access(path, R_OK) == 0;
}

#endif
