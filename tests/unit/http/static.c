/* Unit tests for src/http/static.c, included to reach its statics: opening names below the
 * root without ever opening a special file (FIFO, socket, device), with and without /proc, and
 * the Location of the directory redirect. */
#include "harness.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

/* Where static.c reopens descriptors: switched to a missing directory to take the path used
 * when /proc is not mounted. */
static const char *proc_fd_dir = "/proc/self/fd/";
#define SY_STATIC_PROC_FD proc_fd_dir
#include "http/static.c"

static char root_path[64];
static int root_fd = -1;

static void make_file(const char *name, const char *content)
{
    int fd = openat(root_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        abort();
    close(fd);
}

static void setup(void)
{
    strcpy(root_path, "/tmp/sy-static-XXXXXX");
    if (!mkdtemp(root_path))
        abort();
    root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || mkdirat(root_fd, "dir", 0755) || mkfifoat(root_fd, "fifo", 0644) ||
        symlinkat("/etc/passwd", root_fd, "out-link") || symlinkat("fifo", root_fd, "fifo-link"))
        abort();
    make_file("a.txt", "aaa\n");
    make_file("b.txt", "bbb\n");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", root_path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)))
        abort();
    close(s);
    if (geteuid() == 0 && mknodat(root_fd, "null", S_IFCHR | 0644, makedev(1, 3)))
        abort();
}

static void teardown(void)
{
    static const char *const names[] = {"a.txt", "b.txt",    "fifo",     "sock",
                                        "null",  "out-link", "fifo-link"};
    for (size_t i = 0; i < SY_ARRAY_LEN(names); i++)
        unlinkat(root_fd, names[i], 0);
    unlinkat(root_fd, "dir", AT_REMOVEDIR);
    close(root_fd);
    rmdir(root_path);
}

/* Nobody holds the FIFO open for reading: a non-blocking writer finds no reader. */
static int fifo_has_reader(void)
{
    int fd = openat(root_fd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd >= 0 || errno != ENXIO;
}

static int read_is(int fd, const char *want)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static void check_open_kinds(void)
{
    struct stat sb;
    int status = -1;
    int fd = open_file(root_fd, "a.txt", &sb, &status);
    CHECK(fd >= 0);
    CHECK(read_is(fd, "aaa\n"));
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK(S_ISREG(sb.st_mode));
    close(fd);
    CHECK_EQ(open_file(root_fd, "dir", &sb, &status), -1);
    CHECK_EQ(status, 0);
    CHECK(S_ISDIR(sb.st_mode));
    /* A FIFO would block here if it were opened for reading. */
    CHECK_EQ(open_file(root_fd, "fifo", &sb, &status), -1);
    CHECK_EQ(status, 404);
    CHECK(!fifo_has_reader());
    CHECK_EQ(open_file(root_fd, "fifo-link", &sb, &status), -1);
    CHECK_EQ(status, 404);
    CHECK_EQ(open_file(root_fd, "sock", &sb, &status), -1);
    CHECK_EQ(status, 404);
    if (geteuid() == 0) {
        CHECK_EQ(open_file(root_fd, "null", &sb, &status), -1);
        CHECK_EQ(status, 404);
    }
    CHECK_EQ(open_file(root_fd, "out-link", &sb, &status), -1);
    CHECK_EQ(status, 403);
    CHECK_EQ(open_file(root_fd, "../etc/passwd", &sb, &status), -1);
    CHECK_EQ(status, 403);
    CHECK_EQ(open_file(root_fd, "missing", &sb, &status), -1);
    CHECK_EQ(status, 404);
}

TEST(special_files_refused_unopened)
{
    check_open_kinds();
}

TEST(special_files_refused_unopened_without_proc)
{
    proc_fd_dir = "/nonexistent-proc/";
    check_open_kinds();
    proc_fd_dir = "/proc/self/fd/";
}

/* Without /proc the name is opened a second time: what is found there must be the file that
 * was looked at, and a FIFO put there in between must not block. */
TEST(reopen_by_name_checks_it_is_the_same_file)
{
    proc_fd_dir = "/nonexistent-proc/";
    struct stat sb;
    int pfd = open_beneath(root_fd, "a.txt", O_PATH);
    CHECK(pfd >= 0);
    CHECK_EQ(fstat(pfd, &sb), 0);
    int fd = reopen_regular(root_fd, "a.txt", pfd, &sb);
    CHECK(fd >= 0);
    CHECK(read_is(fd, "aaa\n"));
    close(fd);
    errno = 0;
    CHECK_EQ(reopen_regular(root_fd, "b.txt", pfd, &sb), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(reopen_regular(root_fd, "fifo", pfd, &sb), -1);
    CHECK(!fifo_has_reader());
    close(pfd);
    proc_fd_dir = "/proc/self/fd/";
}

static int location_is(const char *path, const char *q, const char *want)
{
    char out[256];
    size_t ql = q ? strlen(q) : 0;
    if (3 * (strlen(path) + ql) + 4 > sizeof(out))
        abort();
    size_t n = dir_location(out, path, q, ql);
    if (n != strlen(out) || strcmp(out, want) != 0) {
        printf("  dir_location(%s, %s) = %s, want %s\n", path, q ? q : "(none)", out, want);
        return 0;
    }
    return 1;
}

TEST(location_is_one_path)
{
    CHECK(location_is("/sub", NULL, "/sub/"));
    CHECK(location_is("//sub", NULL, "/sub/"));
    CHECK(location_is("////sub", NULL, "/sub/"));
    CHECK(location_is("/a//b///c", NULL, "/a/b/c/"));
    CHECK(location_is("/", NULL, "/"));
    CHECK(location_is("*", NULL, "/*/"));
    /* Browsers read '\' as '/' and drop TAB, CR and LF: each could make "//" again. */
    CHECK(location_is("/\\evil", NULL, "/%5Cevil/"));
    CHECK(location_is("/\t/evil", NULL, "/%09/evil/"));
    CHECK(location_is("/\r\n/evil", NULL, "/%0D%0A/evil/"));
}

TEST(location_encodes_decoded_bytes)
{
    CHECK(location_is("/a b", NULL, "/a%20b/"));
    CHECK(location_is("/q?x#y", NULL, "/q%3Fx%23y/"));
    CHECK(location_is("/p%41", NULL, "/p%2541/"));
    CHECK(location_is("/\xc3\xa9\x7f\x01", NULL, "/%C3%A9%7F%01/"));
    CHECK(location_is("/\"<>^`{|}[]", NULL, "/%22%3C%3E%5E%60%7B%7C%7D%5B%5D/"));
    CHECK(location_is("/-._~!$&'()*+,;=:@09azAZ", NULL, "/-._~!$&'()*+,;=:@09azAZ/"));
}

TEST(location_keeps_the_query)
{
    CHECK(location_is("/sub", "", "/sub/?"));
    CHECK(location_is("/sub", "a=1&b=%41", "/sub/?a=1&b=%41"));
    CHECK(location_is("/sub", "next=//evil/?x", "/sub/?next=//evil/?x"));
    CHECK(location_is("/sub", "%zz%4%", "/sub/?%25zz%254%25"));
    CHECK(location_is("/sub", "a b\r\n\\\xc3\xa9", "/sub/?a%20b%0D%0A%5C%C3%A9"));
    CHECK(location_is("/sub", "a#frag", "/sub/?a"));
}

int main(void)
{
    signal(SIGALRM, SIG_DFL);
    alarm(30); /* a FIFO opened for reading would hang the test: fail it instead */
    setup();
    RUN(special_files_refused_unopened);
    RUN(special_files_refused_unopened_without_proc);
    RUN(reopen_by_name_checks_it_is_the_same_file);
    RUN(location_is_one_path);
    RUN(location_encodes_decoded_bytes);
    RUN(location_keeps_the_query);
    teardown();
    return sy_t_summary();
}
