/* The TLS options of `switchyard serve`: --tls-listen ADDR (repeatable), --tls-cert FILE and
 * --tls-key FILE (repeatable, in pairs, one certificate per name for SNI; the first is the
 * default), --tls-self-signed (a certificate generated at start, for testing). A problem is
 * one line on stderr and exit status 2, before anything listens. */
#include "cli/cli.h"

#include <stdio.h>

int sy_cli_tls_opt(sy_cli_tls *o, int which, const char *arg)
{
    switch (which) {
    case 0:
        if (o->nlisten >= SY_ARRAY_LEN_CLI(o->listens))
            return SY_ELIMIT;
        o->listens[o->nlisten++] = arg;
        return 0;
    case 1:
        if (o->ncert >= SY_ARRAY_LEN_CLI(o->certs))
            return SY_ELIMIT;
        o->certs[o->ncert++] = arg;
        return 0;
    case 2:
        if (o->nkey >= SY_ARRAY_LEN_CLI(o->keys))
            return SY_ELIMIT;
        o->keys[o->nkey++] = arg;
        return 0;
    case 3:
        o->self_signed = 1;
        return 0;
    }
    return SY_EINVAL;
}

static int fail(sy_tls *t, const char *msg)
{
    fprintf(stderr, "switchyard: %s\n", msg);
    sy_tls_free(t);
    return 2;
}

int sy_cli_ticket_rotate(uint64_t ms)
{
    return ms % 1000u == 0 && ms / 1000u <= 7u * 24u * 3600u / 2u ? 0 : SY_ERANGE;
}

int sy_cli_tls_listen(sy_server *srv, const sy_cli_tls *o, int64_t rotate_ms)
{
    if (!o->nlisten) {
        if (o->ncert || o->nkey || o->self_signed)
            return fail(NULL, "--tls-cert, --tls-key and --tls-self-signed need --tls-listen");
        return 0;
    }
    if (o->ncert != o->nkey)
        return fail(NULL, "--tls-cert and --tls-key come in pairs (one key per certificate, "
                          "in the same order)");
    if (!o->ncert && !o->self_signed)
        return fail(NULL, "--tls-listen needs --tls-cert FILE --tls-key FILE, or "
                          "--tls-self-signed");
    sy_tls *t;
    if (sy_tls_new(&t) < 0)
        return fail(NULL, "out of memory");
    char err[512];
    for (size_t i = 0; i < o->ncert; i++)
        if (sy_tls_add_cert(t, o->certs[i], o->keys[i], err, sizeof(err)) < 0)
            return fail(t, err);
    if (o->self_signed && sy_tls_add_self_signed(t, "localhost") < 0)
        return fail(t, "--tls-self-signed: cannot generate a certificate");
    if (rotate_ms >= 0 && sy_tls_set_ticket_rotation(t, (uint32_t)(rotate_ms / 1000)) < 0)
        return fail(t, "--tls-ticket-rotate: cannot set up the session-ticket keys");
    for (size_t i = 0; i < o->nlisten; i++) {
        int e = sy_server_listen_tls(srv, o->listens[i], t);
        if (e < 0) {
            snprintf(err, sizeof(err), "bad TLS listen address '%s': %s", o->listens[i],
                     sy_strerror(e));
            return fail(t, err);
        }
    }
    sy_tls_free(t); /* the listeners keep their references */
    if (o->self_signed)
        fprintf(stderr, "switchyard: warning: --tls-self-signed: serving a certificate generated "
                        "at start-up for localhost, 127.0.0.1 and ::1; clients cannot verify "
                        "it (for testing only)\n");
    return 0;
}
