/* The probe's report, for people (colours on a terminal, plain when piped) and for CI (one
 * JSON object). */
#include "cli/probe.h"
#include "ws/utf8.h"

#include <stdio.h>
#include <string.h>

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"

static const char *col(const probe *P, const char *c)
{
    return P->color ? c : "";
}

static const char *sev_colour(const probe *P, sy_probe_sev s)
{
    return !P->color ? "" : s >= SY_PROBE_ERROR ? C_RED : s == SY_PROBE_WARN ? C_YELLOW : C_CYAN;
}

static void print_lines(const char *text, const char *indent)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        printf("%s%s%.*s\n", indent, p[0] == ' ' ? "  " : "- ", (int)n, p);
        p += n + (e ? 1 : 0);
    }
}

void probe_print_human(probe *P, const char *url)
{
    const sy_probe_report *r = &P->rep;
    printf("%sswitchyard probe %s%s\n", col(P, C_BOLD), url, col(P, C_RESET));
    const char *cur = "";
    for (size_t i = 0; i < r->nsteps; i++) {
        const sy_probe_step *s = &r->steps[i];
        if (strcmp(cur, s->path)) {
            cur = s->path;
            printf("%s%s%s\n", col(P, C_BOLD), cur, col(P, C_RESET));
        }
        const char *mark = s->ok > 0 ? "ok  " : s->ok == 0 ? "FAIL" : "--  ";
        const char *mc = s->ok > 0 ? C_GREEN : s->ok == 0 ? C_RED : C_DIM;
        char ms[32] = "";
        if (s->ms >= 0)
            snprintf(ms, sizeof(ms), "%9.1f ms", s->ms);
        printf("  %s%s%s %-12s %-60s %s\n", col(P, mc), mark, col(P, C_RESET), s->name, s->detail,
               ms);
    }
    int counts[4] = {0};
    for (size_t i = 0; i < r->nfindings; i++)
        counts[r->findings[i].sev]++;
    if (r->nfindings)
        printf("%sfindings%s\n", col(P, C_BOLD), col(P, C_RESET));
    /* The worst first: what breaks clients before what is merely noted. */
    for (int sev = SY_PROBE_FATAL; sev >= SY_PROBE_INFO; sev--) {
        for (size_t i = 0; i < r->nfindings; i++) {
            const sy_probe_finding *f = &r->findings[i];
            if ((int)f->sev != sev)
                continue;
            const sy_probe_def *d = sy_probe_def_of(f->id);
            char sevname[16];
            snprintf(sevname, sizeof(sevname), "%s", sy_probe_sev_name(f->sev));
            for (char *c = sevname; *c; c++)
                *c = (char)(*c - 32 * (*c >= 'a' && *c <= 'z'));
            printf("  %s%-7s%s %s%s%s [%s]\n", sev_colour(P, f->sev), sevname, col(P, C_RESET),
                   col(P, C_BOLD), d->id, col(P, C_RESET), f->path);
            printf("          %s\n", f->msg);
            if (f->hint[0])
                printf("          %sseen on the wire:%s %s\n", col(P, C_DIM), col(P, C_RESET),
                       f->hint);
            if (f->sev == SY_PROBE_INFO)
                continue;
            if (d->causes[0]) {
                printf("          likely causes:\n");
                print_lines(d->causes, "            ");
            }
            printf("          fix:\n");
            print_lines(d->fix, "            ");
        }
    }
    if (r->dropped)
        printf("  (%zu more findings not shown)\n", r->dropped);
    int code = sy_probe_exit_code(r);
    const char *verdict = code == 0   ? "all good"
                          : code == 1 ? "problems found"
                                      : "could not connect";
    printf("%s%s%s: %d error(s), %d warning(s), %d note(s) in %.0f ms (exit %d)\n",
           col(P, code == 0 ? C_GREEN : C_RED), verdict, col(P, C_RESET),
           counts[SY_PROBE_ERROR] + counts[SY_PROBE_FATAL], counts[SY_PROBE_WARN],
           counts[SY_PROBE_INFO], probe_now_ms() - P->t_start, code);
}

static void json_str(const char *s)
{
    /* The catalogue and the sentences are UTF-8 ("§"): pass valid UTF-8 through; bytes of
     * anything else are escaped one by one (JSON has no byte escape). */
    int utf8 = sy_utf8_valid((const uint8_t *)s, strlen(s));
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            printf("\\n");
        else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_lines(const char *text)
{
    putchar('[');
    const char *p = text;
    int first = 1;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        if (!first)
            putchar(',');
        json_str(line);
        first = 0;
        p += n + (e ? 1 : 0);
    }
    putchar(']');
}

void probe_print_json(probe *P, const char *url)
{
    const sy_probe_report *r = &P->rep;
    int code = sy_probe_exit_code(r);
    printf("{\"url\":");
    json_str(url);
    printf(",\"exit\":%d,\"verdict\":\"%s\",\"elapsed_ms\":%.1f", code,
           code == 0   ? "ok"
           : code == 1 ? "problems"
                       : "unreachable",
           probe_now_ms() - P->t_start);
    if (P->have_tls_info) {
        const sy_probe_tls_info *t = &P->tls_info;
        printf(",\"tls\":{\"version\":");
        json_str(t->version_name);
        printf(",\"cipher\":");
        json_str(t->cipher);
        printf(",\"alpn_offered\":");
        json_str(t->alpn_offered);
        printf(",\"alpn\":");
        json_str(t->alpn);
        printf(",\"subject\":");
        json_str(t->subject);
        printf(",\"issuer\":");
        json_str(t->issuer);
        printf(",\"not_after\":%lld,\"verify\":", (long long)t->not_after);
        json_str(t->verify_text);
        printf(",\"host_ok\":%s}", t->host_ok ? "true" : "false");
    }
    printf(",\"steps\":[");
    for (size_t i = 0; i < r->nsteps; i++) {
        const sy_probe_step *s = &r->steps[i];
        printf("%s{\"path\":", i ? "," : "");
        json_str(s->path);
        printf(",\"name\":");
        json_str(s->name);
        printf(",\"ok\":%s", s->ok > 0 ? "true" : s->ok == 0 ? "false" : "null");
        if (s->ms >= 0)
            printf(",\"ms\":%.3f", s->ms);
        printf(",\"detail\":");
        json_str(s->detail);
        putchar('}');
    }
    printf("],\"findings\":[");
    for (size_t i = 0; i < r->nfindings; i++) {
        const sy_probe_finding *f = &r->findings[i];
        const sy_probe_def *d = sy_probe_def_of(f->id);
        printf("%s{\"id\":", i ? "," : "");
        json_str(d->id);
        printf(",\"severity\":\"%s\",\"path\":", sy_probe_sev_name(f->sev));
        json_str(f->path);
        printf(",\"title\":");
        json_str(d->title);
        printf(",\"message\":");
        json_str(f->msg);
        printf(",\"wire\":");
        json_str(f->hint);
        printf(",\"causes\":");
        json_lines(d->causes);
        printf(",\"fix\":");
        json_lines(d->fix);
        putchar('}');
    }
    printf("]}\n");
}

void probe_print_catalogue_json(void)
{
    printf("[");
    for (int i = 0; i < SY_PF__COUNT; i++) {
        const sy_probe_def *d = sy_probe_def_of((sy_probe_id)i);
        printf("%s{\"id\":", i ? ",\n" : "");
        json_str(d->id);
        printf(",\"severity\":\"%s\",\"title\":", sy_probe_sev_name(d->sev));
        json_str(d->title);
        printf(",\"causes\":");
        json_lines(d->causes);
        printf(",\"fix\":");
        json_lines(d->fix);
        putchar('}');
    }
    printf("]\n");
}
