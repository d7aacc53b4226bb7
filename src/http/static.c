/* Static files below a root directory. Paths are resolved with openat2(RESOLVE_BENEATH), so
 * neither "..", encoded dots nor symlinks can leave the root: the kernel refuses the walk.
 * GET/HEAD, index.html for directories, MIME types, ETag/Last-Modified with 304.
 *
 * Only regular files and directories are served. Every name is first opened with O_PATH, which
 * opens nothing, and looked at with fstat(): opening a FIFO for reading would block the worker
 * until a writer came, and a device's open can have effects of its own. Any other kind of file
 * (FIFO, socket, device) answers 404, as if absent, whether named directly or as a directory's
 * index.html: it is never a resource this handler could serve, and a 403 would tell a client
 * that it exists. */
#include "http/req.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct sy_static {
    int root_fd;
};

SY_EXPORT int sy_static_new(sy_static **out, const char *root)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return SY_ENOTFOUND;
    sy_static *st = sy__malloc(sizeof(*st));
    if (!st) {
        close(fd);
        return SY_ENOMEM;
    }
    st->root_fd = fd;
    *out = st;
    return 0;
}

SY_EXPORT void sy_static_free(sy_static *st)
{
    if (!st)
        return;
    close(st->root_fd);
    sy__free(st);
}

static const struct {
    const char *ext;
    const char *type;
} mime[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"avif", "image/avif"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
};

static const char *mime_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return "application/octet-stream";
    for (size_t i = 0; i < SY_ARRAY_LEN(mime); i++)
        if (!strcasecmp(dot + 1, mime[i].ext))
            return mime[i].type;
    return "application/octet-stream";
}

static int open_beneath(int root, const char *rel, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
}

/* Where descriptors are reopened by number; a unit test points it elsewhere to take the path
 * used when /proc is not mounted. */
#ifndef SY_STATIC_PROC_FD
#define SY_STATIC_PROC_FD "/proc/self/fd/"
#endif

/* A descriptor opened with O_PATH cannot be read. Reopening it through /proc/self/fd opens the
 * very inode fstat() saw, so nothing swapped in under the name meanwhile gets opened. Without
 * procfs, open the name again, without blocking (a FIFO may have been swapped in) and without
 * taking a controlling terminal, and keep it only if it is still the same file. */
static int reopen_regular(int root, const char *rel, int pfd, const struct stat *sb)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "%s%d", SY_STATIC_PROC_FD, pfd);
    int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    fd = open_beneath(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat now;
    if (fstat(fd, &now) < 0 || now.st_dev != sb->st_dev || now.st_ino != sb->st_ino ||
        fcntl(fd, F_SETFL, 0) < 0) {
        close(fd);
        errno = ENOENT;
        return -1;
    }
    return fd;
}

/* The answer to a failed open: 403 when the walk would leave the root or is not permitted. */
static int refusal(int err)
{
    return err == EXDEV || err == ELOOP || err == EACCES ? 403 : 404;
}

/* Open rel below the root for reading if it is a regular file. Returns the descriptor with sb
 * filled, or -1 and *status: 0 for a directory (sb filled), 404 for a FIFO, socket or device
 * (never opened), 500 when fstat() fails, else refusal(). */
static int open_file(int root, const char *rel, struct stat *sb, int *status)
{
    int pfd = open_beneath(root, rel, O_PATH);
    if (pfd < 0) {
        *status = refusal(errno);
        return -1;
    }
    int fd = -1;
    if (fstat(pfd, sb) < 0)
        *status = 500;
    else if (S_ISDIR(sb->st_mode))
        *status = 0;
    else if (!S_ISREG(sb->st_mode))
        *status = 404;
    else if ((fd = reopen_regular(root, rel, pfd, sb)) < 0)
        *status = refusal(errno);
    close(pfd);
    return fd;
}

/* Bytes that stand for themselves in a path segment: RFC 3986 pchar, less pct-encoded. */
static int pchar_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@", c));
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t put_byte(char *out, unsigned char c, int plain)
{
    static const char hex[] = "0123456789ABCDEF";
    if (plain) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '%';
    out[1] = hex[c >> 4];
    out[2] = hex[c & 15];
    return 3;
}

/* The Location of the redirect that adds a directory's missing '/', written to out (room for
 * 3 * (strlen(path) + ql) + 4 bytes; returns the length, NUL not counted). It is built from the
 * decoded path, never copied from it: runs of '/' become one, since a leading "//" would make
 * it a protocol-relative URL naming another host, and every byte that is not a plain pchar is
 * percent-encoded. That covers '\' and TAB, CR, LF (browsers read '\' as '/' and drop the
 * others, which would bring a "//" back), '%' (the path was decoded, so a '%' in it is a
 * literal), '?', '#', space, the other controls, DEL and non-ASCII. The query (q, ql; q NULL
 * when there was no '?') is kept, as Apache and nginx keep it, up to any '#' (a fragment is
 * not part of a request target): it was never decoded, so its escapes pass as they are, and a
 * byte a URI query cannot hold, '%' without two hex digits included, is encoded. */
static size_t dir_location(char *out, const char *path, const char *q, size_t ql)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)path;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        out[o++] = '/';
        for (; *p && *p != '/'; p++)
            o += put_byte(out + o, *p, pchar_plain(*p));
    }
    out[o++] = '/';
    if (q) {
        const unsigned char *u = (const unsigned char *)q;
        out[o++] = '?';
        for (size_t i = 0; i < ql && u[i] != '#'; i++) {
            int escape = u[i] == '%' && i + 2 < ql && is_hex(u[i + 1]) && is_hex(u[i + 2]);
            o += put_byte(out + o, u[i], escape || pchar_plain(u[i]) || u[i] == '/' || u[i] == '?');
        }
    }
    out[o] = 0;
    return o;
}

static void text(sy_req *r, int status, const char *msg)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, msg);
    sy_respond(r, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void redirect_dir(sy_req *r, const char *path, size_t plen)
{
    size_t ql;
    const char *q = sy_req_query(r, &ql);
    char *loc = sy__malloc(3 * (plen + ql) + 4);
    int e = loc ? 0 : SY_ENOMEM;
    if (loc) {
        dir_location(loc, path, q, ql);
        e = sy_resp_header(r, "Location", loc);
        sy__free(loc);
    }
    if (e == SY_ELIMIT)
        text(r, 414, "URI Too Long");
    else if (e < 0)
        text(r, 500, "Internal Server Error");
    else
        text(r, 301, "Moved Permanently");
}

static int etag_matches(const char *inm, size_t len, const char *etag)
{
    size_t el = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (inm[i] == ' ' || inm[i] == '\t' || inm[i] == ','))
            i++;
        size_t s = i;
        while (i < len && inm[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (inm[e - 1] == ' ' || inm[e - 1] == '\t'))
            e--;
        const char *t = inm + s;
        size_t tl = e - s;
        if (tl == 1 && t[0] == '*')
            return 1;
        if (tl > 2 && t[0] == 'W' && t[1] == '/') {
            t += 2;
            tl -= 2;
        }
        if (tl == el && memcmp(t, etag, el) == 0)
            return 1;
    }
    return 0;
}

/* A small per-thread cache of small files (content and metadata), so that hot files cost no
 * system call: an entry is trusted for CACHE_TTL_MS after it was read, then read again (a
 * changed file is seen within that time, as with nginx's open_file_cache_valid). */
#define CACHE_SLOTS 64
#define CACHE_MAX_FILE 16384
#define CACHE_TTL_MS 1000

typedef struct cache_ent {
    const sy_static *st;
    uint64_t loaded_ms;
    size_t path_len;
    size_t size;
    const char *ctype;
    char path[256];
    char etag[64];
    char lm[40];
    uint8_t *data;
} cache_ent;

typedef struct file_cache {
    cache_ent ent[CACHE_SLOTS];
} file_cache;

static __thread file_cache *tcache;
static pthread_key_t tcache_key;
static pthread_once_t tcache_once = PTHREAD_ONCE_INIT;

static void tcache_release(void *p)
{
    file_cache *fc = p;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        sy__free(fc->ent[i].data);
    sy__free(fc);
}

static void tcache_key_init(void)
{
    pthread_key_create(&tcache_key, tcache_release);
}

static cache_ent *cache_slot(const sy_static *st, const char *path, size_t len)
{
    if (!tcache) {
        tcache = sy__calloc(1, sizeof(*tcache));
        if (!tcache)
            return NULL;
        pthread_once(&tcache_once, tcache_key_init);
        pthread_setspecific(tcache_key, tcache);
    }
    uint64_t h = 1469598103934665603ull ^ (uintptr_t)st;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)path[i]) * 1099511628211ull;
    return &tcache->ent[h % CACHE_SLOTS];
}

static int etag_matches(const char *inm, size_t len, const char *etag);

/* Answer from entry e (conditional requests included). */
static void serve_entry(sy_req *r, const cache_ent *e)
{
    size_t inml, imsl;
    const char *inm = sy_req_header(r, "If-None-Match", &inml);
    const char *ims = sy_req_header(r, "If-Modified-Since", &imsl);
    int not_modified = 0;
    if (inm)
        not_modified = etag_matches(inm, inml, e->etag);
    else if (ims && imsl == strlen(e->lm) && memcmp(ims, e->lm, imsl) == 0)
        not_modified = 1;
    sy_resp_header(r, "ETag", e->etag);
    sy_resp_header(r, "Last-Modified", e->lm);
    if (not_modified) {
        sy_respond(r, 304, NULL, NULL, 0);
        return;
    }
    sy_respond(r, 200, e->ctype, e->data, e->size);
}

SY_EXPORT void sy_static_handler(sy_req *r, void *ud)
{
    sy_static *st = ud;
    size_t ml;
    const char *m = sy_req_method(r, &ml);
    if (!((ml == 3 && !memcmp(m, "GET", 3)) || (ml == 4 && !memcmp(m, "HEAD", 4)))) {
        sy_resp_header(r, "Allow", "GET, HEAD");
        text(r, 405, "Method Not Allowed");
        return;
    }
    size_t plen;
    const char *path = sy_req_path(r, &plen);
    uint64_t now = sy_loop_now_ms(sy_req_loop(r));
    cache_ent *ce = plen < sizeof(ce->path) ? cache_slot(st, path, plen) : NULL;
    if (ce && ce->st == st && ce->path_len == plen && now - ce->loaded_ms < CACHE_TTL_MS &&
        memcmp(ce->path, path, plen) == 0) {
        serve_entry(r, ce);
        return;
    }
    char rel[4096];
    /* The decoded path always starts with '/'; make it relative to the root. */
    size_t o = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    if (!*p) {
        rel[0] = '.';
        o = 1;
    }
    size_t pl = strlen(p);
    if (pl + 16 >= sizeof(rel)) {
        text(r, 414, "URI Too Long");
        return;
    }
    memcpy(rel + o, p, pl);
    o += pl;
    rel[o] = 0;
    struct stat sb;
    int status;
    int fd = open_file(st->root_fd, rel, &sb, &status);
    if (fd < 0 && status == 0) {
        if (path[plen - 1] != '/') {
            redirect_dir(r, path, plen);
            return;
        }
        if (o + 11 >= sizeof(rel)) {
            text(r, 404, "Not Found");
            return;
        }
        if (o == 1 && rel[0] == '.')
            o = 0;
        else if (rel[o - 1] != '/')
            rel[o++] = '/';
        memcpy(rel + o, "index.html", 11);
        /* No servable index (missing, unreadable, a directory or a special file) is one
         * answer: this handler lists no directories. */
        fd = open_file(st->root_fd, rel, &sb, &status);
        if (fd < 0)
            status = 404;
    }
    if (fd < 0) {
        text(r, status, sy__status_text(status));
        return;
    }
    char etag[64], lm[40];
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)sb.st_size,
             (unsigned long long)sb.st_mtim.tv_sec, (unsigned long)sb.st_mtim.tv_nsec);
    struct tm tm;
    gmtime_r(&sb.st_mtim.tv_sec, &tm);
    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    size_t inml, imsl;
    const char *inm = sy_req_header(r, "If-None-Match", &inml);
    const char *ims = sy_req_header(r, "If-Modified-Since", &imsl);
    int not_modified = 0;
    if (inm)
        not_modified = etag_matches(inm, inml, etag);
    else if (ims && imsl == strlen(lm) && memcmp(ims, lm, imsl) == 0)
        not_modified = 1;
    sy_resp_header(r, "ETag", etag);
    sy_resp_header(r, "Last-Modified", lm);
    if (not_modified) {
        close(fd);
        sy_respond(r, 304, NULL, NULL, 0);
        return;
    }
    if (ce && sb.st_size <= CACHE_MAX_FILE) {
        uint8_t *data = sy__realloc(ce->data, sb.st_size ? (size_t)sb.st_size : 1);
        if (data && pread(fd, data, (size_t)sb.st_size, 0) == sb.st_size) {
            close(fd);
            ce->data = data;
            ce->st = st;
            ce->loaded_ms = now;
            ce->path_len = plen;
            memcpy(ce->path, path, plen);
            ce->size = (size_t)sb.st_size;
            ce->ctype = mime_of(rel);
            memcpy(ce->etag, etag, sizeof(ce->etag));
            memcpy(ce->lm, lm, sizeof(ce->lm));
            r->rh_len = 0; /* serve_entry adds the validators again */
            serve_entry(r, ce);
            return;
        }
        if (data)
            ce->data = data;
        ce->st = NULL;
    }
    sy_resp_header(r, "Content-Type", mime_of(rel));
    sy_resp_sendfile(r, 200, fd, 0, (size_t)sb.st_size);
}
