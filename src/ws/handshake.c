/* The pure pieces of the WebSocket opening handshake (RFC 6455 §4): Sec-WebSocket-Key
 * validation, the Sec-WebSocket-Accept hash, random keys and subprotocol selection. */
#include "ws/handshake.h"
#include "core/base64.h"
#include "http/field.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/random.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int sy_ws_key_valid(const char *key, size_t len)
{
    /* 16 bytes encode as 21 full characters plus one that carries 2 data bits (its low 4 bits
     * are padding and must be zero, or the value is not canonical), then "==". */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        if (sy__b64_value((unsigned char)key[i], 0) < 0)
            return 0;
    }
    return (sy__b64_value((unsigned char)key[21], 0) & 0x0F) == 0;
}

/* SHA-1 and base64 are OpenSSL's. The digest is fetched once: OpenSSL 3 looks an algorithm up
 * in its provider tables on every implicit use, and the first lookup builds those tables
 * (about 2 MB, once per process) — sy_ws_crypto_init does that when a WebSocket route or
 * client is set up, not in the middle of a handshake. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

void sy_ws_crypto_init(void)
{
    pthread_once(&sha1_once, sha1_fetch);
}

void sy_ws_accept_key(const char *key, size_t len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;
    char small[128];
    size_t total = len + sizeof(ws_guid) - 1;
    sy_ws_crypto_init();
    /* Keys are 24 characters; anything longer than the stack buffer is hashed in two parts. */
    if (!sha1_md) {
        ok = 0;
    } else if (total <= sizeof(small)) {
        memcpy(small, key, len);
        memcpy(small + len, ws_guid, sizeof(ws_guid) - 1);
        ok = EVP_Digest(small, total, md, &mdlen, sha1_md, NULL) == 1;
    } else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestInit_ex(ctx, sha1_md, NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, len) == 1 &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (!ok || mdlen != 20) {
        /* Never matches a real accept value, so the handshake fails visibly. */
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
}

int sy_ws_make_key(char out[25])
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            out[0] = '\0';
            return SY_EIO;
        }
        got += (size_t)n;
    }
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)); /* 24 characters and a NUL */
    return 0;
}

int sy_ws_pick_subprotocol(const char *offered, size_t len, const char *const *prefs, size_t nprefs,
                           int best)
{
    const char *s = offered, *end = offered + len;
    while (s < end) {
        /* One list element: up to the next comma, OWS trimmed on both sides. */
        const char *e = memchr(s, ',', (size_t)(end - s));
        const char *next = e ? e + 1 : end;
        if (!e)
            e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - s);
        int token = n > 0;
        for (size_t i = 0; token && i < n; i++)
            token = sy_field_is_tchar((unsigned char)s[i]);
        /* Empty and invalid elements are ignored; tokens compare exactly (RFC 6455 §4.1). */
        for (size_t i = 0; token && i < nprefs && (best < 0 || i < (size_t)best); i++) {
            if (prefs[i] && strlen(prefs[i]) == n && memcmp(prefs[i], s, n) == 0) {
                best = (int)i;
                break;
            }
        }
        s = next;
    }
    return best;
}
