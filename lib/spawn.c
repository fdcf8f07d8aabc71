/* Angle brackets: a quoted include from lib/ itself would not let spawn.h reach the C library's
 * <spawn.h> with #include_next (see spawn.h). */
#include <spawn.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "io-util.h"
#include "strv.h"

extern char **environ;

/* A parent fd in 0..2 used as a source could be replaced by an earlier dup2 in the child (e.g.
 * stdout to a pipe, stderr to the parent's stdout). Such fds are first copied above 2. Returns
 * the fd to use (*ret_copy is set to a copy to close afterwards, or -1). */
static int protect_low_fd(int fd, int target, int *ret_copy) {
        *ret_copy = -1;
        if (fd < 0 || fd > 2 || fd == target)
                return fd;
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        *ret_copy = copy;
        return copy;
}

int spawn_start(char *const argv[], const spawn_options *opts, pid_t *ret_pid) {
        spawn_options o = opts ? *opts : SPAWN_OPTIONS_DEFAULT;
        int source[3] = { o.stdin_fd, o.stdout_fd, o.stderr_fd };
        int copies[3] = { -1, -1, -1 };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t empty, all;
        pid_t pid;
        int r;

        if (!argv || !argv[0])
                return -EINVAL;

        for (int i = 0; i < 3; i++) {
                source[i] = protect_low_fd(source[i], i, &copies[i]);
                if (source[i] < -1) {
                        r = source[i];
                        for (int k = 0; k < i; k++)
                                if (copies[k] >= 0)
                                        close(copies[k]);
                        return r;
                }
        }

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                goto out_copies;
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                goto out_fa;

        if (source[0] < 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        else
                r = posix_spawn_file_actions_adddup2(&fa, source[0], STDIN_FILENO);
        for (int i = 1; i < 3 && r == 0; i++)
                if (source[i] >= 0)
                        r = posix_spawn_file_actions_adddup2(&fa, source[i], i);
        if (r == 0 && o.cwd)
                r = posix_spawn_file_actions_addchdir_np(&fa, o.cwd);
        if (r != 0)
                goto out;

        /* The child starts with no blocked signals and default dispositions, whatever the parent
         * ignores (SIGPIPE) or blocks (signals handled via signalfd). */
        sigemptyset(&empty);
        sigfillset(&all);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        if (o.new_process_group)
                flags |= POSIX_SPAWN_SETPGROUP;
        r = posix_spawnattr_setflags(&attr, flags);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &empty);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0 && o.new_process_group)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r != 0)
                goto out;

        r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, o.envp ? o.envp : environ);
        if (r == 0)
                *ret_pid = pid;
out:
        posix_spawnattr_destroy(&attr);
out_fa:
        posix_spawn_file_actions_destroy(&fa);
out_copies:
        for (int i = 0; i < 3; i++)
                if (copies[i] >= 0)
                        close(copies[i]);
        return -r;
}

int spawn_wait(pid_t pid, int *ret_status) {
        for (;;) {
                int status;
                if (waitpid(pid, &status, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (WIFEXITED(status)) {
                        *ret_status = WEXITSTATUS(status);
                        return 0;
                }
                if (WIFSIGNALED(status)) {
                        *ret_status = 128 + WTERMSIG(status);
                        return 0;
                }
        }
}

int spawn_run(char *const argv[], const spawn_options *opts, int *ret_status) {
        pid_t pid;
        int r = spawn_start(argv, opts, &pid);
        if (r < 0)
                return r;
        return spawn_wait(pid, ret_status);
}

int spawn_capture(char *const argv[], const spawn_options *opts, buf *out, int *ret_status) {
        spawn_options o = opts ? *opts : SPAWN_OPTIONS_DEFAULT;
        int fds[2];
        pid_t pid;
        int r;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        o.stdout_fd = fds[1];
        r = spawn_start(argv, &o, &pid);
        close(fds[1]);
        if (r < 0) {
                close(fds[0]);
                return r;
        }

        /* Keep reading until EOF even past the cap, so the child never blocks on a full pipe. */
        size_t limit = out->max ? out->max : BUF_DEFAULT_MAX;
        bool overflow = false;
        int read_error = 0;
        char chunk[16384];
        for (;;) {
                ssize_t n = loop_read(fds[0], chunk, sizeof(chunk));
                if (n < 0) {
                        read_error = (int) n;
                        break;
                }
                if (n == 0)
                        break;
                size_t room = limit - out->len, take = (size_t) n;
                if (overflow)
                        continue;
                if (take > room) {
                        take = room;
                        overflow = true;
                }
                r = buf_append(out, chunk, take);
                if (r < 0) {
                        read_error = r;
                        break;
                }
        }
        /* On a read error the closed pipe ends the child's writes (EPIPE/SIGPIPE). */
        close(fds[0]);

        int status;
        r = spawn_wait(pid, &status);
        if (r < 0)
                return r;
        if (read_error < 0)
                return read_error;
        if (overflow)
                return -ENOBUFS;
        *ret_status = status;
        return 0;
}

/* Bytes that need no quoting for a POSIX shell. */
static bool word_is_plain(const char *w) {
        return *w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                               "@%_+=:,./-") == strlen(w);
}

char *spawn_argv_to_string(char *const argv[]) {
        _cleanup_buf_ buf b = BUF_INIT(0);
        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0 && buf_puts(&b, " ") < 0)
                        return NULL;
                if (word_is_plain(argv[i])) {
                        if (buf_puts(&b, argv[i]) < 0)
                                return NULL;
                        continue;
                }
                /* Single quotes, with ' written as '\'' so the result can be pasted into a shell. */
                if (buf_puts(&b, "'") < 0)
                        return NULL;
                for (const char *p = argv[i]; *p; p++)
                        if ((*p == '\'' ? buf_puts(&b, "'\\''") : buf_append(&b, p, 1)) < 0)
                                return NULL;
                if (buf_puts(&b, "'") < 0)
                        return NULL;
        }
        return buf_steal(&b);
}

pid_t pid_file_read(const char *path) {
        _cleanup_free_ char *s = NULL;
        if (read_file(path, 64, &s, NULL) < 0)
                return 0;
        long pid = strtol(s, NULL, 10);
        return pid > 1 ? (pid_t) pid : 0;
}

bool process_alive(pid_t pid) {
        _cleanup_free_ char *path = NULL, *stat = NULL;

        if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
                return false;
        if (asprintf(&path, "/proc/%d/stat", (int) pid) < 0 || read_file(path, 4096, &stat, NULL) < 0)
                return true; /* exists, state unknown */
        /* "pid (comm) S ...": comm may contain spaces and parentheses, the state follows the last ')'. */
        const char *paren = strrchr(stat, ')');
        return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}
