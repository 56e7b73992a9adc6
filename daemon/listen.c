/* listen.c: binding shoald's listening sockets. The Unix socket is the
 * daemon's front door and its access control (mode 0600 in a 0700
 * directory), so this file is careful about what it removes: only a socket,
 * owned by us, that no process answers on, and only while holding the lock
 * file that every shoald takes for the same path. It never unlinks a
 * regular file or a symlink, and never removes the lock file (doing so would
 * let two daemons lock different inodes of the same name). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

/* mkdir -p for the socket's directory; directories we create are 0700. */
static enum shoal_err make_parent_dirs(const char *path, struct shoal_diag *d)
{
    char dir[sizeof(((struct listen_unix *)0)->path)];
    shoal_strlcpy(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return SHOAL_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        bool last = *p == '\0';
        if (*p == '/' || last) {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                int e = errno;
                shoal_diag_at(d, dir, 0, 0);
                return shoal_diag_set(d, SHOAL_ERR_IO, "cannot create socket directory: %s",
                                      strerror(e));
            }
            *p = saved;
        }
        if (last)
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        shoal_diag_at(d, dir, 0, 0);
        return shoal_diag_set(d, SHOAL_ERR_IO, "socket directory is not a directory");
    }
    if (st.st_uid == geteuid() && (st.st_mode & 0077)) {
        struct shoal_logline l;
        if (shoal_log_begin(&l, SHOAL_LOG_WARN, "socket_dir_open")) {
            shoal_log_kv(&l, "dir", "%s", dir);
            shoal_log_kv(&l, "mode", "%04o", (unsigned)(st.st_mode & 07777));
            shoal_log_kv(&l, "msg", "%s", "other users can enter this directory; 0700 is safer");
            shoal_log_end(&l);
        }
    }
    return SHOAL_OK;
}

static bool fill_sockaddr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    return shoal_strlcpy(sa->sun_path, path, sizeof(sa->sun_path));
}

/* Does a process accept connections on path? */
static bool socket_answers(const char *path, int *err)
{
    struct sockaddr_un sa;
    fill_sockaddr(path, &sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return false;
    }
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    *err = r == 0 ? 0 : errno;
    close(fd);
    return r == 0;
}

static enum shoal_err take_lock(const char *path, int *lock_fd, struct shoal_diag *d)
{
    char lock_path[sizeof(((struct listen_unix *)0)->path) + 8];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        shoal_diag_at(d, lock_path, 0, 0);
        return shoal_diag_set(d, e == ELOOP ? SHOAL_ERR_PERM : SHOAL_ERR_IO,
                              "cannot open lock file: %s", strerror(e));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        shoal_diag_at(d, path, 0, 0);
        if (e == EWOULDBLOCK)
            return shoal_diag_set(d, SHOAL_ERR_BUSY,
                                  "another shoald (pid %s) is running on this socket; "
                                  "stop it first or choose another listen.socket",
                                  pid[0] ? pid : "unknown");
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot lock %s: %s", lock_path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is only a courtesy for the "already running" message. */
    }
    *lock_fd = fd;
    return SHOAL_OK;
}

/* Make path free for bind: absent, or a stale socket of ours we may remove. */
static enum shoal_err clear_stale(const char *path, struct shoal_diag *d)
{
    struct stat st;
    shoal_diag_at(d, path, 0, 0);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return SHOAL_OK;
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot inspect socket path: %s", strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return shoal_diag_set(d, SHOAL_ERR_PERM,
                              "path exists and is not a socket (%s); refusing to remove it",
                              S_ISLNK(st.st_mode)   ? "a symlink"
                              : S_ISREG(st.st_mode) ? "a regular file"
                              : S_ISDIR(st.st_mode) ? "a directory"
                                                    : "another file type");
    if (st.st_uid != geteuid())
        return shoal_diag_set(d, SHOAL_ERR_PERM,
                              "socket is owned by uid %u, not us (uid %u); refusing to remove it",
                              (unsigned)st.st_uid, (unsigned)geteuid());
    int err;
    if (socket_answers(path, &err))
        return shoal_diag_set(d, SHOAL_ERR_BUSY,
                              "a live daemon answers on this socket; stop it first "
                              "(shoal status shows it)");
    if (err != ECONNREFUSED && err != ENOENT)
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot probe existing socket: %s", strerror(err));
    if (unlink(path) != 0 && errno != ENOENT)
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot remove stale socket: %s", strerror(errno));
    shoal_log(SHOAL_LOG_INFO, "stale_socket_removed", "%s", path);
    return SHOAL_OK;
}

enum shoal_err listen_unix_open(const char *path, struct listen_unix *out, struct shoal_diag *d)
{
    struct sockaddr_un sa;
    enum shoal_err err;
    int lock_fd = -1, fd = -1;

    if (path[0] != '/' || !fill_sockaddr(path, &sa)) {
        shoal_diag_at(d, path, 0, 0);
        return shoal_diag_set(d, SHOAL_ERR_INVALID,
                              "socket path must be absolute and shorter than %zu bytes",
                              sizeof(sa.sun_path));
    }
    if ((err = make_parent_dirs(path, d)) != SHOAL_OK)
        return err;
    if ((err = take_lock(path, &lock_fd, d)) != SHOAL_OK)
        return err;
    if ((err = clear_stale(path, d)) != SHOAL_OK)
        goto fail;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = shoal_diag_set(d, SHOAL_ERR_IO, "socket: %s", strerror(errno));
        goto fail;
    }
    /* The umask makes the socket 0600 from its first instant: a chmod after
     * bind would leave a window where others could connect. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int bind_errno = errno;
    umask(old);
    if (r != 0) {
        err = shoal_diag_set(d, SHOAL_ERR_IO, "bind: %s", strerror(bind_errno));
        goto fail;
    }
    struct stat st;
    if (chmod(path, 0600) != 0 || lstat(path, &st) != 0) {
        err = shoal_diag_set(d, SHOAL_ERR_IO, "cannot set socket mode: %s", strerror(errno));
        unlink(path);
        goto fail;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        err = shoal_diag_set(d, SHOAL_ERR_IO, "listen: %s", strerror(errno));
        unlink(path);
        goto fail;
    }
    out->fd = fd;
    out->lock_fd = lock_fd;
    out->ino = (uint64_t)st.st_ino;
    shoal_strlcpy(out->path, path, sizeof(out->path));
    return SHOAL_OK;

fail:
    if (fd >= 0)
        close(fd);
    if (lock_fd >= 0)
        close(lock_fd);
    return err;
}

void listen_unix_close(struct listen_unix *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
        struct stat st;
        if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && (uint64_t)st.st_ino == l->ino)
            unlink(l->path);
    }
    if (l->lock_fd >= 0) {
        close(l->lock_fd); /* releases the flock */
        l->lock_fd = -1;
    }
}

enum shoal_err listen_tcp_open(const char *host, uint16_t port, int *out, struct shoal_diag *d)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char where[80];
    snprintf(where, sizeof(where), "%s:%u", host, (unsigned)port);
    shoal_diag_at(d, where, 0, 0);

    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
            return shoal_diag_set(d, SHOAL_ERR_PERM, "TCP listener must be on loopback");
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return shoal_diag_set(d, SHOAL_ERR_PERM, "TCP listener must be on loopback");
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof(*in6);
    } else {
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "not a numeric IP address");
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return shoal_diag_set(d, SHOAL_ERR_IO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return shoal_diag_set(d, e == EADDRINUSE ? SHOAL_ERR_BUSY : SHOAL_ERR_IO, "bind: %s",
                              strerror(e));
    }
    *out = fd;
    return SHOAL_OK;
}
