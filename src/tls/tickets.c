/* Session-ticket keys: ours, not OpenSSL's per-context default (made once at start, never
 * changed, so every ticket it ever sealed stays decryptable while the process lives).
 *
 * A key store (sy_tls_keys) holds the current key, which seals new tickets, and up to
 * SY_TLS_TICKET_KEEP earlier ones, which still open tickets (which are then renewed). Keys
 * come from RAND_bytes, live in memory only and are wiped (OPENSSL_cleanse) when they fall
 * off the end. Every TLS context of a server shares one store, so a ticket sealed by one
 * worker or listener opens on any other.
 *
 * Time is cut into periods of `period_ms` from the store's creation (monotonic clock);
 * period n's key is current during period n and retired at the start of period n + 1 +
 * KEEP. A ticket therefore opens for at least KEEP periods and at most KEEP + 1 after it
 * was sealed; clients are told KEEP periods (the session timeout, context.c), the span every
 * ticket is sure to get.
 *
 * Locking: one mutex per store, taken for a few hundred nanoseconds (a 16-byte compare and
 * an 80-byte copy) once per ticket sealed or opened, i.e. per full or resumed handshake,
 * which costs ~100 us of public-key or key-schedule work anyway; never per record. The
 * cipher and MAC are keyed from a stack copy outside the lock, and the copy is wiped. A
 * read-mostly scheme (a pointer swap) would need a grace period before a retired key may be
 * wiped, which is what the lock buys simply.
 *
 * Rotation happens when a ticket is sealed or opened after a period boundary, and also on a
 * small thread that sleeps until the next boundary: an idle server must not keep a retired
 * key in memory until its next client. A store made with a test clock has no thread; the
 * test calls sy__tls_keys_tick. */
#include "tls/tls.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

struct sy_tls_keys {
    atomic_int refs;
    pthread_mutex_t mu;
    uint64_t period_ms;
    uint64_t (*now_ms)(void *ud);
    void *now_ud;
    uint64_t t0;  /* the clock at creation: period n starts at t0 + n * period_ms */
    uint64_t cur; /* the period of keys[0] */
    sy_tls_key keys[1 + SY_TLS_TICKET_KEEP]; /* [0] current, [i] from period cur - i */
    int valid[1 + SY_TLS_TICKET_KEEP];
    /* the rotation thread (not with a test clock) */
    pthread_t thread;
    pthread_cond_t cond;
    int has_thread, stopping;
};

static uint64_t mono_ms(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wipe(sy_tls_keys *k, size_t i)
{
    OPENSSL_cleanse(&k->keys[i], sizeof(k->keys[i]));
    k->valid[i] = 0;
}

/* Move the ring forward to the period of `now` (lock held): keys that fall off the end are
 * overwritten or wiped, and a fresh current key is drawn. */
static void advance(sy_tls_keys *k, uint64_t now)
{
    uint64_t p = now > k->t0 ? (now - k->t0) / k->period_ms : 0;
    if (p <= k->cur && k->valid[0])
        return;
    uint64_t shift = p > k->cur ? p - k->cur : 0;
    for (size_t i = SY_TLS_TICKET_KEEP + 1; i-- > 0;) {
        if (shift == 0)
            break;
        if (i >= shift) {
            /* the copy overwrites the key retired from slot i */
            k->keys[i] = k->keys[i - shift];
            k->valid[i] = k->valid[i - shift];
        } else {
            wipe(k, i);
        }
    }
    k->cur = p;
    if (!k->valid[0]) {
        /* the name is random too: it says nothing about when or where the key was made */
        if (RAND_bytes(k->keys[0].name, sizeof(k->keys[0].name)) == 1 &&
            RAND_bytes(k->keys[0].hmac, sizeof(k->keys[0].hmac)) == 1 &&
            RAND_bytes(k->keys[0].aes, sizeof(k->keys[0].aes)) == 1)
            k->valid[0] = 1;
        else
            wipe(k, 0); /* no ticket until the generator works again */
    }
}

void sy__tls_keys_tick(sy_tls_keys *k)
{
    pthread_mutex_lock(&k->mu);
    advance(k, k->now_ms(k->now_ud));
    pthread_mutex_unlock(&k->mu);
}

static void *rotate_main(void *arg)
{
    sy_tls_keys *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stopping) {
        uint64_t now = k->now_ms(k->now_ud);
        advance(k, now);
        /* sleep until the next boundary (+1 ms: land inside the new period) */
        uint64_t next = k->t0 + (k->cur + 1) * k->period_ms + 1;
        uint64_t wait = next > now ? next - now : 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (wait % 1000u) * 1000000u;
        ts.tv_sec += (time_t)(wait / 1000u + ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        int rc = 0;
        while (!k->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&k->cond, &k->mu, &ts);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int sy__tls_keys_new(uint64_t period_ms, uint64_t (*now_ms)(void *ud), void *ud, sy_tls_keys **out)
{
    if (period_ms == 0)
        return SY_EINVAL;
    sy_tls_keys *k = sy__calloc(1, sizeof(*k));
    if (!k)
        return SY_ENOMEM;
    atomic_init(&k->refs, 1);
    k->period_ms = period_ms;
    k->now_ms = now_ms ? now_ms : mono_ms;
    k->now_ud = ud;
    k->t0 = k->now_ms(ud);
    pthread_mutex_init(&k->mu, NULL);
    advance(k, k->t0);
    if (!k->valid[0]) {
        sy__tls_keys_unref(k);
        return SY_EINTERNAL;
    }
    if (!now_ms) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&k->cond, &ca);
        pthread_condattr_destroy(&ca);
        k->has_thread = pthread_create(&k->thread, NULL, rotate_main, k) == 0;
        if (!k->has_thread) {
            pthread_cond_destroy(&k->cond);
            sy__tls_keys_unref(k);
            return SY_ENOMEM;
        }
    }
    *out = k;
    return 0;
}

void sy__tls_keys_ref(sy_tls_keys *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
}

void sy__tls_keys_unref(sy_tls_keys *k)
{
    if (!k || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (k->has_thread) {
        pthread_mutex_lock(&k->mu);
        k->stopping = 1;
        pthread_cond_signal(&k->cond);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
        pthread_cond_destroy(&k->cond);
    }
    for (size_t i = 0; i < SY_TLS_TICKET_KEEP + 1; i++)
        wipe(k, i);
    pthread_mutex_destroy(&k->mu);
    sy__free(k);
}

uint64_t sy__tls_keys_period_ms(const sy_tls_keys *k)
{
    return k->period_ms;
}

int sy__tls_keys_current(sy_tls_keys *k, sy_tls_key *out)
{
    pthread_mutex_lock(&k->mu);
    advance(k, k->now_ms(k->now_ud));
    int ok = k->valid[0];
    if (ok)
        *out = k->keys[0];
    pthread_mutex_unlock(&k->mu);
    return ok ? 0 : SY_EINTERNAL;
}

int sy__tls_keys_find(sy_tls_keys *k, const unsigned char *name, sy_tls_key *out)
{
    int found = -1;
    pthread_mutex_lock(&k->mu);
    advance(k, k->now_ms(k->now_ud));
    for (size_t i = 0; i < SY_TLS_TICKET_KEEP + 1 && found < 0; i++)
        if (k->valid[i] && CRYPTO_memcmp(k->keys[i].name, name, sizeof(k->keys[i].name)) == 0)
            found = (int)i;
    if (found >= 0)
        *out = k->keys[found];
    pthread_mutex_unlock(&k->mu);
    return found < 0 ? 0 : found == 0 ? 1 : 2;
}

int sy__tls_keys_holds(sy_tls_keys *k, const unsigned char *name)
{
    int held = 0;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < SY_TLS_TICKET_KEEP + 1; i++)
        held |= k->valid[i] && memcmp(k->keys[i].name, name, sizeof(k->keys[i].name)) == 0;
    pthread_mutex_unlock(&k->mu);
    return held;
}

int sy__tls_keys_probe_wiped(const sy_tls_keys *k, size_t slot)
{
    static const sy_tls_key zero;
    return slot <= SY_TLS_TICKET_KEEP && !k->valid[slot] &&
           memcmp(&k->keys[slot], &zero, sizeof(zero)) == 0;
}

/* ---- the OpenSSL callback (SSL_CTX_set_tlsext_ticket_key_evp_cb) ---- */

static int key_up(const sy_tls_key *key, const unsigned char *iv, EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(hctx, key->hmac, sizeof(key->hmac), params) != 1)
        return -1;
    if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, key->aes, iv, enc) != 1)
        return -1;
    return 0;
}

/* RFC 5077 §4 layout: key_name (16) | IV (16) | AES-256-CBC(state) | HMAC-SHA256 over all
 * that. OpenSSL builds and checks the layout; we supply the name, IV and keys. Returns, per
 * SSL_CTX_set_tlsext_ticket_key_evp_cb: seal: 1 sealed, -1 error; open: 0 unknown or
 * retired key (full handshake), 1 current key, 2 an older key (accept, and send a new
 * ticket under the current one), -1 error. */
int sy__tls_ticket_cb(sy_tls_keys *k, unsigned char key_name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    sy_tls_key key;
    int rc;
    if (enc) {
        if (sy__tls_keys_current(k, &key) < 0)
            return -1;
        rc = RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 ? 0 : -1;
        if (rc == 0) {
            memcpy(key_name, key.name, sizeof(key.name));
            rc = key_up(&key, iv, cctx, hctx, 1) < 0 ? -1 : 1;
        }
    } else {
        rc = sy__tls_keys_find(k, key_name, &key);
        if (rc > 0 && key_up(&key, iv, cctx, hctx, 0) < 0)
            rc = -1;
    }
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}
