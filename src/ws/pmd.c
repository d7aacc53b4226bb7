/* permessage-deflate (RFC 7692).
 *
 * Negotiation: one scanner walks an extension list (RFC 6455 §9.1 with RFC 9110 list rules:
 * OWS, empty elements, quoted-string values) and describes each element; the server takes the
 * first valid permessage-deflate offer, the client checks the server's single answer strictly.
 *
 * Messages: raw deflate streams. The sender flushes with Z_SYNC_FLUSH at the end of a message
 * and drops the 00 00 ff ff that flush ends with; the receiver appends those four bytes back.
 * zlib refuses (or silently widens) a raw 256-byte deflate window, so a negotiated window of 8
 * bits for our side means we send uncompressed messages only (sy_pmd_can_compress is 0).
 *
 * Memory: what a connection's zlib streams can cost (zlib's documented formulas) is reserved
 * from a process-wide budget when permessage-deflate is negotiated, not when the streams are
 * first used: otherwise any number of handshakes could pass the check before the first of
 * them sent a message. Negotiation takes the configured settings while they fit in half the
 * budget, else cheaper ones while they fit in all of it, else declines the extension, so
 * usage never exceeds the budget. */
#include "ws/pmd.h"
#include "http/field.h"

#include <stdatomic.h>
#include <stdio.h>

#define PMD_NAME "permessage-deflate"
#define OUT_CHUNK 16384
/* zlib counts in uInt; feed at most this much per call. */
#define IN_CHUNK (1u << 30)

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- the memory budget ---- */

static _Atomic uint64_t g_budget = (uint64_t)256 << 20;
static _Atomic uint64_t g_used;

/* zlib's own state next to the buffers of the formulas (deflate_state is just under 6 KiB,
 * inflate_state just under 7 KiB in zlib 1.2.x). */
#define DEFLATE_STATE 6144
#define INFLATE_STATE 7168

void sy_pmd_set_budget(uint64_t bytes)
{
    atomic_store(&g_budget, bytes);
}

uint64_t sy_pmd_budget(void)
{
    return atomic_load(&g_budget);
}

uint64_t sy_pmd_budget_used(void)
{
    return atomic_load(&g_used);
}

static uint8_t clamp_mem_level(uint8_t m)
{
    return m < 1 ? 8 : m > 9 ? 9 : m;
}

static size_t deflate_cost(uint8_t window_bits, uint8_t mem_level)
{
    unsigned w = window_bits < 9 ? 9 : window_bits > 15 ? 15 : window_bits;
    return ((size_t)1 << (w + 2)) + ((size_t)1 << (clamp_mem_level(mem_level) + 9)) + DEFLATE_STATE;
}

static size_t inflate_cost(uint8_t window_bits)
{
    /* 9 covers the fallback of inflate_start for zlibs that refuse an 8-bit raw window. */
    unsigned w = window_bits < 9 ? 9 : window_bits > 15 ? 15 : window_bits;
    return ((size_t)1 << w) + INFLATE_STATE;
}

size_t sy_pmd_cost(const sy_pmd_params *params, uint8_t mem_level)
{
    size_t c = inflate_cost(params->rx_window_bits);
    if (params->tx_window_bits >= 9) /* with 8 we never deflate (sy_pmd_can_compress) */
        c += deflate_cost(params->tx_window_bits, mem_level);
    return c;
}

int sy_pmd_reserve(size_t bytes, int tier)
{
    uint64_t used = atomic_load(&g_used);
    for (;;) {
        uint64_t budget = atomic_load(&g_budget);
        uint64_t limit = tier == SY_PMD_FULL ? budget / 2 : budget;
        if (budget && (used > limit || bytes > limit - used))
            return 0;
        /* Compare-and-swap: parallel handshakes cannot both take the last bytes. */
        if (atomic_compare_exchange_weak(&g_used, &used, used + bytes))
            return 1;
    }
}

void sy_pmd_release(size_t bytes)
{
    if (bytes)
        atomic_fetch_sub(&g_used, (uint64_t)bytes);
}

/* ---- extension list scanning ---- */

static const char *skip_ows(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *scan_token(const char *s, const char *end)
{
    while (s < end && sy_field_is_tchar((unsigned char)*s))
        s++;
    return s;
}

/* s points after the opening quote. Unquotes into val (up to cap bytes; *vlen counts all of
 * them, so *vlen > cap means "did not fit"). Returns the position after the closing quote,
 * or NULL when the string is unterminated or holds a forbidden byte. */
static const char *scan_quoted(const char *s, const char *end, char *val, size_t cap, size_t *vlen)
{
    size_t n = 0;
    while (s < end) {
        unsigned char c = (unsigned char)*s++;
        if (c == '"') {
            *vlen = n;
            return s;
        }
        if (c == '\\') {
            if (s == end)
                return NULL;
            c = (unsigned char)*s++;
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (c != '\t' && (c < 0x20 || c == 0x7f))
                return NULL;
        } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
            return NULL; /* qdtext excludes CTLs */
        }
        if (n < cap)
            val[n] = (char)c;
        n++;
    }
    return NULL;
}

/* Skip to just after the next comma that is outside a quoted-string (or to the end). */
static const char *skip_element(const char *s, const char *end)
{
    int quoted = 0;
    while (s < end) {
        char c = *s++;
        if (quoted && c == '\\' && s < end)
            s++;
        else if (c == '"')
            quoted = !quoted;
        else if (!quoted && c == ',')
            break;
    }
    return s;
}

/* One element of an extension list, as far as permessage-deflate cares. */
typedef struct ext_elem {
    int empty;       /* an empty list element (", ,"): ignored */
    int is_pmd;      /* the extension token is permessage-deflate */
    int syntax;      /* the element does not follow the grammar */
    const char *bad; /* why the permessage-deflate parameters are invalid; NULL if valid */
    uint8_t snct, cnct;
    uint8_t has_smwb, smwb; /* server_max_window_bits (always has a value when valid) */
    uint8_t has_cmwb, cmwb; /* client_max_window_bits; cmwb 0 = given without a value */
} ext_elem;

/* A window size value: 1*DIGIT without leading zeros, 8..15. Returns 0 when invalid. */
static uint8_t parse_bits(const char *v, size_t n)
{
    if (n == 1 && (v[0] == '8' || v[0] == '9'))
        return (uint8_t)(v[0] - '0');
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return (uint8_t)(10 + v[1] - '0');
    return 0;
}

static void set_bad(ext_elem *e, const char *why)
{
    if (!e->bad)
        e->bad = why;
}

static void pmd_param(ext_elem *e, const char *name, size_t nlen, const char *val, size_t vlen,
                      int has_val)
{
    uint8_t *flag;
    if (sy__ieq(name, nlen, "server_no_context_takeover") ||
        sy__ieq(name, nlen, "client_no_context_takeover")) {
        flag = (name[0] | 0x20) == 's' ? &e->snct : &e->cnct;
        if (*flag)
            set_bad(e, "permessage-deflate: a no_context_takeover parameter is repeated");
        else if (has_val)
            set_bad(e, "permessage-deflate: a no_context_takeover parameter has a value");
        *flag = 1;
    } else if (sy__ieq(name, nlen, "server_max_window_bits")) {
        if (e->has_smwb)
            set_bad(e, "permessage-deflate: server_max_window_bits is repeated");
        else if (!has_val)
            set_bad(e, "permessage-deflate: server_max_window_bits has no value");
        else if (!(e->smwb = parse_bits(val, vlen)))
            set_bad(e, "permessage-deflate: server_max_window_bits is not 8..15");
        e->has_smwb = 1;
    } else if (sy__ieq(name, nlen, "client_max_window_bits")) {
        if (e->has_cmwb)
            set_bad(e, "permessage-deflate: client_max_window_bits is repeated");
        else if (has_val && !(e->cmwb = parse_bits(val, vlen)))
            set_bad(e, "permessage-deflate: client_max_window_bits is not 8..15");
        e->has_cmwb = 1;
    } else {
        set_bad(e, "permessage-deflate: unknown parameter");
    }
}

/*
 * Scan one list element starting at *ps and move *ps past its separating comma.
 * element = token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] )
 * Returns 0 at the end of the list, 1 when *e describes an element.
 */
static int next_element(const char **ps, const char *end, ext_elem *e)
{
    const char *s = skip_ows(*ps, end);
    memset(e, 0, sizeof(*e));
    if (s == end) {
        *ps = s;
        return 0;
    }
    if (*s == ',') {
        e->empty = 1;
        *ps = s + 1;
        return 1;
    }
    const char *t = scan_token(s, end);
    if (t == s)
        goto syntax;
    e->is_pmd = sy__ieq(s, (size_t)(t - s), PMD_NAME);
    s = skip_ows(t, end);
    while (s < end && *s == ';') {
        const char *name = skip_ows(s + 1, end);
        const char *name_end = scan_token(name, end);
        if (name_end == name)
            goto syntax;
        s = skip_ows(name_end, end);
        char qbuf[8];
        const char *val = NULL;
        size_t vlen = 0;
        int has_val = s < end && *s == '=';
        if (has_val) {
            s = skip_ows(s + 1, end);
            if (s < end && *s == '"') {
                s = scan_quoted(s + 1, end, qbuf, sizeof(qbuf), &vlen);
                if (!s) {
                    s = end; /* unterminated: the rest of the list is unusable */
                    goto syntax;
                }
                /* RFC 7692 §7.1: a quoted value must still be a token once unquoted. */
                int token = vlen > 0 && vlen <= sizeof(qbuf);
                for (size_t i = 0; token && i < vlen; i++)
                    token = sy_field_is_tchar((unsigned char)qbuf[i]);
                val = qbuf;
                if (!token)
                    set_bad(e, "permessage-deflate: a quoted value is not a token");
            } else {
                val = s;
                s = scan_token(s, end);
                vlen = (size_t)(s - val);
                if (vlen == 0)
                    goto syntax;
            }
            s = skip_ows(s, end);
        }
        if (e->is_pmd)
            pmd_param(e, name, (size_t)(name_end - name), val, vlen, has_val);
    }
    if (s < end && *s != ',')
        goto syntax;
    *ps = s < end ? s + 1 : s;
    return 1;
syntax:
    e->syntax = 1;
    set_bad(e, "malformed Sec-WebSocket-Extensions value");
    *ps = skip_element(s, end);
    return 1;
}

static uint8_t own_window(const sy_pmd_config *cfg)
{
    /* zlib cannot deflate with a raw 256-byte window, so 8 is used as 9; 0 means default. */
    if (cfg->window_bits < 9)
        return cfg->window_bits ? 9 : 15;
    return cfg->window_bits > 15 ? 15 : cfg->window_bits;
}

static int valid_bits(uint8_t b)
{
    return b >= 8 && b <= 15;
}

size_t sy_pmd_offer_cost(const sy_pmd_config *cfg)
{
    uint8_t peer = valid_bits(cfg->peer_window_bits) ? cfg->peer_window_bits : 15;
    return deflate_cost(own_window(cfg), cfg->mem_level) + inflate_cost(peer);
}

void sy_pmd_cheap_config(sy_pmd_config *cfg)
{
    /* About a twelfth of the default settings' memory (26 KiB instead of 301 KiB) when the
     * peer lets us limit its window, a fifth when it does not. */
    if (cfg->window_bits == 0 || cfg->window_bits > 10) /* 0 = default (15) */
        cfg->window_bits = 10;
    if (cfg->mem_level == 0 || cfg->mem_level > 4) /* 0 = default (8) */
        cfg->mem_level = 4;
    if (!valid_bits(cfg->peer_window_bits) || cfg->peer_window_bits > 10)
        cfg->peer_window_bits = 10;
}

/* Write the response; sep is "; " or ";" (the compact form keeps the longest answer within
 * 128 bytes). Returns the length, or cap when it does not fit. */
static size_t format_response(char *buf, size_t cap, const char *sep, int snct, int cnct,
                              uint8_t smwb, uint8_t cmwb)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "%s", PMD_NAME);
#define PMD_APPEND(...)                                                                            \
    do {                                                                                           \
        if (w < 0 || (n += (size_t)w) >= cap)                                                      \
            return cap;                                                                            \
        w = snprintf(buf + n, cap - n, __VA_ARGS__);                                               \
    } while (0)
    if (snct)
        PMD_APPEND("%sserver_no_context_takeover", sep);
    if (cnct)
        PMD_APPEND("%sclient_no_context_takeover", sep);
    if (smwb)
        PMD_APPEND("%sserver_max_window_bits=%u", sep, (unsigned)smwb);
    if (cmwb)
        PMD_APPEND("%sclient_max_window_bits=%u", sep, (unsigned)cmwb);
    PMD_APPEND("%s", "");
#undef PMD_APPEND
    return n;
}

int sy_pmd_server_negotiate(const char *value, size_t len, const sy_pmd_config *cfg,
                            sy_pmd_params *out, char *resp, size_t cap)
{
    const char *s = value, *end = value + len;
    ext_elem e;
    while (next_element(&s, end, &e)) {
        if (!e.is_pmd || e.bad)
            continue; /* declined: try the next offer */
        uint8_t ours = own_window(cfg);
        /* Our deflater's window: the client may only lower it. A client limit of 8 makes
         * us answer 8 and send uncompressed (see sy_pmd_can_compress). */
        uint8_t tx = e.has_smwb && e.smwb < ours ? e.smwb : ours;
        uint8_t smwb = e.has_smwb || ours < 15 ? tx : 0;
        /* The client's window: limit it only when the client said it may be limited. */
        uint8_t rx = 15, cmwb = 0;
        if (e.has_cmwb) {
            if (e.cmwb)
                rx = e.cmwb;
            if (valid_bits(cfg->peer_window_bits) && cfg->peer_window_bits < rx)
                rx = cfg->peer_window_bits;
            if (e.cmwb || rx < 15)
                cmwb = rx;
        }
        int snct = e.snct || cfg->no_context_takeover;
        size_t n = format_response(resp, cap, "; ", snct, e.cnct, smwb, cmwb);
        if (n >= cap)
            n = format_response(resp, cap, ";", snct, e.cnct, smwb, cmwb);
        if (n >= cap) {
            if (cap)
                resp[0] = '\0';
            return 0; /* caller's buffer is below the documented minimum */
        }
        out->tx_window_bits = tx;
        out->rx_window_bits = rx;
        out->tx_no_context_takeover = (uint8_t)snct;
        out->rx_no_context_takeover = e.cnct;
        return 1;
    }
    return 0;
}

size_t sy_pmd_client_offer(const sy_pmd_config *cfg, char *buf, size_t cap)
{
    char smwb[32] = "";
    if (valid_bits(cfg->peer_window_bits))
        snprintf(smwb, sizeof(smwb), "; server_max_window_bits=%u",
                 (unsigned)cfg->peer_window_bits);
    int n = snprintf(buf, cap, "%s; client_max_window_bits%s%s", PMD_NAME, smwb,
                     cfg->no_context_takeover ? "; client_no_context_takeover" : "");
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

static int client_fail(const char **detail, const char *why)
{
    if (detail)
        *detail = why;
    return SY_EWS_EXTENSION;
}

int sy_pmd_client_accept(const char *value, size_t len, const sy_pmd_config *cfg,
                         sy_pmd_params *out, const char **detail)
{
    const char *s = value, *end = value + len;
    ext_elem e, got;
    int found = 0;
    if (detail)
        *detail = NULL;
    while (next_element(&s, end, &e)) {
        if (e.empty)
            continue;
        if (e.syntax)
            return client_fail(detail, e.bad);
        if (!e.is_pmd)
            return client_fail(detail, "the server accepted an extension we did not offer");
        if (found)
            return client_fail(detail, "the server accepted permessage-deflate twice");
        if (e.bad)
            return client_fail(detail, e.bad);
        found = 1;
        got = e;
    }
    if (!found)
        return 0;
    /* We always offer client_max_window_bits without a value, so any 8..15 is acceptable,
     * but the answer must carry one (RFC 7692 §7.1.2.2). */
    if (got.has_cmwb && !got.cmwb)
        return client_fail(detail, "permessage-deflate: client_max_window_bits has no value");
    if (valid_bits(cfg->peer_window_bits)) {
        if (!got.has_smwb)
            return client_fail(detail,
                               "permessage-deflate: the server ignored our server_max_window_bits");
        if (got.smwb > cfg->peer_window_bits)
            return client_fail(detail, "permessage-deflate: server_max_window_bits is larger "
                                       "than we allowed");
    }
    uint8_t ours = own_window(cfg);
    out->tx_window_bits = got.has_cmwb && got.cmwb < ours ? got.cmwb : ours;
    out->rx_window_bits = got.has_smwb ? got.smwb : 15;
    out->tx_no_context_takeover = (uint8_t)(got.cnct || cfg->no_context_takeover);
    out->rx_no_context_takeover = got.snct;
    return 1;
}

/* ---- message compression ---- */

static voidpf pmd_zalloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return sy__malloc((size_t)items * size);
}

static void pmd_zfree(voidpf opaque, voidpf ptr)
{
    (void)opaque;
    sy__free(ptr);
}

static uint8_t clamp_bits(uint8_t b)
{
    return b < 8 ? 8 : b > 15 ? 15 : b;
}

int sy_pmd_init(sy_pmd *p, const sy_pmd_params *params, uint8_t mem_level)
{
    memset(p, 0, sizeof(*p));
    p->params = *params;
    p->params.tx_window_bits = clamp_bits(params->tx_window_bits);
    p->params.rx_window_bits = clamp_bits(params->rx_window_bits);
    p->mem_level = clamp_mem_level(mem_level);
    return 0;
}

void sy_pmd_free(sy_pmd *p)
{
    if (p->tx.ready)
        deflateEnd(&p->tx.z);
    if (p->rx.ready)
        inflateEnd(&p->rx.z);
    p->tx.ready = p->rx.ready = 0;
    sy_pmd_release(p->reserved);
    p->reserved = 0;
    p->tx.tail_len = 0;
    p->rx.inflated = 0;
}

int sy_pmd_can_compress(const sy_pmd *p)
{
    return p->params.tx_window_bits >= 9;
}

static int deflate_start(sy_pmd *p)
{
    /* A 256-byte window cannot be produced by zlib. If a caller deflates anyway, emit stored
     * blocks only (level 0): they reference no window, so any negotiated size is respected. */
    int wbits = p->params.tx_window_bits < 9 ? 9 : p->params.tx_window_bits;
    int level = p->params.tx_window_bits < 9 ? Z_NO_COMPRESSION
                : p->level                   ? p->level - 1
                                             : Z_DEFAULT_COMPRESSION;
    p->tx.z.zalloc = pmd_zalloc;
    p->tx.z.zfree = pmd_zfree;
    p->tx.z.opaque = Z_NULL;
    int rc = deflateInit2(&p->tx.z, level, Z_DEFLATED, -wbits, p->mem_level, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? SY_ENOMEM : SY_EINTERNAL;
    p->tx.ready = 1;
    return 0;
}

/* Run deflate over the current input until it is consumed (and, with a flush, until the flush
 * is complete). The last four bytes produced so far are always held back in p->tx.tail: they may
 * be the start of the 00 00 ff ff that must be dropped, and that tail can be spread over two
 * output chunks. */
static int deflate_run(sy_pmd *p, int flush, sy_pmd_sink sink, void *ud, size_t *produced)
{
    uint8_t buf[OUT_CHUNK];
    for (;;) {
        memcpy(buf, p->tx.tail, p->tx.tail_len);
        p->tx.z.next_out = buf + p->tx.tail_len;
        p->tx.z.avail_out = (uInt)(sizeof(buf) - p->tx.tail_len);
        int rc = deflate(&p->tx.z, flush);
        if (rc == Z_STREAM_ERROR)
            return SY_EINTERNAL;
        size_t fresh = sizeof(buf) - p->tx.tail_len - p->tx.z.avail_out;
        size_t have = p->tx.tail_len + fresh;
        size_t keep = have < 4 ? have : 4;
        *produced += fresh;
        if (have > keep) {
            int r = sink(ud, buf, have - keep);
            if (r < 0)
                return r;
        }
        memcpy(p->tx.tail, buf + have - keep, keep);
        p->tx.tail_len = (uint8_t)keep;
        /* Z_BUF_ERROR: nothing to do (e.g. a repeated flush with no new input). */
        if (rc == Z_BUF_ERROR || (p->tx.z.avail_in == 0 && p->tx.z.avail_out != 0))
            return 0;
    }
}

int sy_pmd_deflate(sy_pmd *p, const uint8_t *in, size_t len, int fin, sy_pmd_sink sink, void *ud)
{
    if (p->tx.stale) {
        /* Only set between messages (see sy_pmd_tx_stale): this is a message's start. */
        p->tx.stale = 0;
        if (p->tx.ready)
            deflateReset(&p->tx.z);
    }
    if (!p->tx.ready) {
        int e = deflate_start(p);
        if (e)
            return e;
    }
    size_t produced = 0, off = 0;
    int r = 0;
    do {
        size_t n = len - off > IN_CHUNK ? IN_CHUNK : len - off;
        int flush = fin && off + n == len ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        p->tx.z.next_in = n ? (Bytef *)(uintptr_t)(in + off) : Z_NULL;
        p->tx.z.avail_in = (uInt)n;
        r = deflate_run(p, flush, sink, ud, &produced);
        off += n;
    } while (off < len && !r);
    p->tx.z.next_in = Z_NULL;
    if (r) {
        /* The message is lost and the connection must fail; leave a defined state. */
        deflateReset(&p->tx.z);
        p->tx.tail_len = 0;
        return r;
    }
    if (!fin)
        return 0;
    if (produced == 0 && p->tx.tail_len == 0) {
        /* zlib declines a second flush in a row, which is what an empty message right after
         * another message is; nothing is pending then, and an empty stored block (0x00 once
         * the tail is dropped, RFC 7692 §7.2.3.6) is the whole message. Earlier parts of this
         * message cannot have produced output either, or this flush would not repeat one. */
        static const uint8_t empty_block[1] = {0x00};
        r = sink(ud, empty_block, 1);
    } else if (p->tx.tail_len != 4 || memcmp(p->tx.tail, sync_tail, 4) != 0) {
        r = SY_EINTERNAL; /* a sync flush always ends with 00 00 ff ff */
    }
    p->tx.tail_len = 0;
    if (p->params.tx_no_context_takeover)
        deflateReset(&p->tx.z);
    return r;
}

/* ---- message decompression ---- */

static int inflate_start(sy_pmd *p)
{
    int wbits = p->params.rx_window_bits;
    p->rx.z.zalloc = pmd_zalloc;
    p->rx.z.zfree = pmd_zfree;
    p->rx.z.opaque = Z_NULL;
    int rc = inflateInit2(&p->rx.z, -wbits);
    if (rc == Z_STREAM_ERROR && wbits < 9) {
        /* Some zlib versions refuse raw 8-bit windows; a larger window is always safe. */
        wbits = 9;
        rc = inflateInit2(&p->rx.z, -wbits);
    }
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? SY_ENOMEM : SY_EINTERNAL;
    p->rx.ready = 1;
    return 0;
}

/* The message failed: forget it, so that the stream is in a defined state afterwards. */
static int inflate_abort(sy_pmd *p, int err)
{
    inflateReset(&p->rx.z);
    p->rx.inflated = 0;
    return err;
}

static const char *zlib_detail(const z_stream *z)
{
    if (z->msg && strstr(z->msg, "too far back"))
        return "invalid compressed data: distance beyond the negotiated window";
    return "invalid compressed data";
}

/* Inflate in[0..len). *boundary is set to 1 when the inflater stopped between deflate blocks
 * (zlib's data_type bit 128), 2 when it stopped at the end of a stream (BFINAL), 0 inside a
 * block; it is left alone when no byte moved. */
static int inflate_run(sy_pmd *p, const uint8_t *in, size_t len, uint64_t max_total,
                       sy_pmd_sink sink, void *ud, const char **detail, int *boundary)
{
    uint8_t buf[OUT_CHUNK];
    p->rx.z.next_in = (Bytef *)(uintptr_t)in;
    p->rx.z.avail_in = 0;
    for (;;) {
        if (p->rx.z.avail_in == 0 && len) {
            size_t n = len > IN_CHUNK ? IN_CHUNK : len;
            p->rx.z.avail_in = (uInt)n;
            len -= n;
        }
        /* Produce at most one byte past the limit: enough to detect the overrun. */
        size_t room = sizeof(buf);
        if (p->rx.inflated >= max_total)
            room = 1;
        else if (max_total - p->rx.inflated < room)
            room = (size_t)(max_total - p->rx.inflated) + 1;
        uInt before_in = p->rx.z.avail_in;
        p->rx.z.next_out = buf;
        p->rx.z.avail_out = (uInt)room;
        int rc = inflate(&p->rx.z, Z_NO_FLUSH);
        size_t got = room - p->rx.z.avail_out;
        if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            if (detail)
                *detail = zlib_detail(&p->rx.z);
            return inflate_abort(p, SY_EWS_EXTENSION);
        }
        if (rc == Z_MEM_ERROR)
            return inflate_abort(p, SY_ENOMEM);
        if (rc == Z_STREAM_ERROR)
            return inflate_abort(p, SY_EINTERNAL);
        /* Output within the limit is delivered even when the same step overran it. */
        uint64_t left = p->rx.inflated < max_total ? max_total - p->rx.inflated : 0;
        int over = got > left;
        if (over)
            got = (size_t)left;
        p->rx.inflated += got;
        if (got) {
            int r = sink(ud, buf, got);
            if (r < 0)
                return inflate_abort(p, r);
        }
        if (over)
            return inflate_abort(p, SY_EWS_TOO_BIG);
        int progress = got || p->rx.z.avail_in != before_in;
        if (rc == Z_STREAM_END) {
            /* The peer ended its deflate stream (BFINAL, RFC 7692 §7.2.3.3-4). zlib stays
             * at the end until reset: when more bytes of this message follow, they start a
             * fresh stream; when none do, the caller sees *boundary == 2 and does not
             * append the tail (it would be a dangling block header). */
            *boundary = 2;
            if (progress)
                continue;
            if (p->rx.z.avail_in == 0 && len == 0)
                break;
            inflateReset(&p->rx.z);
            continue;
        }
        if (progress)
            *boundary = (p->rx.z.data_type & 128) != 0;
        if (p->rx.z.avail_in == 0 && len == 0 && (p->rx.z.avail_out != 0 || !progress))
            break; /* all input used and no output pending */
        if (!progress)
            break; /* cannot happen with valid zlib behaviour; never spin */
    }
    p->rx.z.next_in = Z_NULL;
    return 0;
}

int sy_pmd_inflate(sy_pmd *p, const uint8_t *in, size_t len, int fin, uint64_t max_total,
                   sy_pmd_sink sink, void *ud, const char **detail)
{
    if (!p->rx.ready) {
        int e = inflate_start(p);
        if (e)
            return e;
    }
    int boundary = 0;
    int e = inflate_run(p, in, len, max_total, sink, ud, detail, &boundary);
    if (e || !fin)
        return e;
    if (boundary == 2) {
        /* The message ended with a final block: nothing to flush, and the next message
         * starts a new stream whatever the context takeover setting. */
        inflateReset(&p->rx.z);
        p->rx.inflated = 0;
        return 0;
    }
    e = inflate_run(p, sync_tail, sizeof(sync_tail), max_total, sink, ud, detail, &boundary);
    if (e)
        return e;
    /* With the tail appended, a complete message leaves the inflater between blocks.
     * Anything else is a message that stops inside a block. */
    if (!boundary) {
        if (detail)
            *detail = "invalid compressed data: the message ends inside a deflate block";
        return inflate_abort(p, SY_EWS_EXTENSION);
    }
    p->rx.inflated = 0;
    if (p->params.rx_no_context_takeover)
        inflateReset(&p->rx.z);
    return 0;
}
