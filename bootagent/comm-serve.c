#include "comm-serve.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <termios.h>

#include "comm.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"

extern char **environ;

/* The server's environment with entries of extra added or replaced ("K=V"). */
static int merge_env(char *const *extra, char ***ret) {
        _cleanup_strv_free_ char **env = strv_copy(environ);
        int r;

        if (!env)
                return -ENOMEM;
        for (char *const *e = extra; e && *e; e++) {
                size_t klen = strcspn(*e, "=") + 1; /* include '=' */
                bool replaced = false;
                for (char **o = env; *o; o++)
                        if (strneq(*o, *e, klen)) {
                                char *copy = strdup(*e);
                                if (!copy)
                                        return -ENOMEM;
                                free(*o);
                                *o = copy;
                                replaced = true;
                                break;
                        }
                if (!replaced) {
                        r = strv_push(&env, *e);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static void close_pair(int p[2]) {
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0) {
                        close(p[i]);
                        p[i] = -1;
                }
}

/* Run the command, streaming its output. Returns 0 when the request was answered (exit or error
 * frame), -errno when the transport failed. */
static int serve_exec(int out_fd, const comm_msg *m) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ uint8_t *chunk = NULL;
        int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
        pid_t pid;
        int r, status;

        r = merge_env(m->env, &env);
        if (r < 0)
                return comm_send_error(out_fd, m->id, "Out of memory");
        chunk = malloc(COMM_CHUNK_MAX);
        if (!chunk)
                return comm_send_error(out_fd, m->id, "Out of memory");
        if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
                r = negative_errno();
                close_pair(outp);
                close_pair(errp);
                return comm_send_error(out_fd, m->id, strerror(-r));
        }

        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.envp = env;
        opts.cwd = m->cwd;
        opts.stdout_fd = outp[1];
        opts.stderr_fd = errp[1];
        /* Its own group, so a broken session can end the command and everything it started. */
        opts.new_process_group = true;
        r = spawn_start(m->argv, &opts, &pid);
        close(outp[1]);
        close(errp[1]);
        outp[1] = errp[1] = -1;
        if (r < 0) {
                close_pair(outp);
                close_pair(errp);
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Failed to execute %s: %s", m->argv[0], strerror(-r)) < 0)
                        msg = NULL;
                return comm_send_error(out_fd, m->id, msg ?: "Failed to execute");
        }

        struct pollfd pfd[2] = { { .fd = outp[0], .events = POLLIN }, { .fd = errp[0], .events = POLLIN } };
        int open_fds = 2, transport = 0;
        while (open_fds > 0) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        transport = negative_errno();
                        break;
                }
                for (int i = 0; i < 2 && transport == 0; i++) {
                        if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t n = read(pfd[i].fd, chunk, COMM_CHUNK_MAX);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                close(pfd[i].fd);
                                pfd[i].fd = -1;
                                open_fds--;
                                continue;
                        }
                        r = comm_send_data(out_fd, i == 0 ? COMM_STDOUT : COMM_STDERR, m->id, chunk, (size_t) n);
                        if (r < 0)
                                transport = r;
                }
                if (transport < 0)
                        break;
        }
        for (int i = 0; i < 2; i++)
                if (pfd[i].fd >= 0)
                        close(pfd[i].fd);
        if (transport < 0)
                (void) kill(-pid, SIGKILL);

        r = spawn_wait(pid, &status);
        if (transport < 0)
                return transport;
        if (r < 0)
                return comm_send_error(out_fd, m->id, strerror(-r));
        return comm_send(out_fd, &(comm_msg) { .type = COMM_EXIT, .id = m->id, .status = (uint64_t) status });
}

static int serve_put(int in_fd, int out_fd, const comm_msg *m) {
        _cleanup_free_ char *remote = NULL;
        int r;

        /* Owners from the stream only mean something when we may set them. */
        r = comm_recv_tar(in_fd, m->id, m->path, geteuid() == 0, &remote);
        if (r == -EPIPE || r == -EIO)
                return r;
        if (r == -EREMOTEIO)
                return comm_send_error(out_fd, m->id, remote ?: "Aborted by client");
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Failed to extract into %s: %s", m->path, strerror(-r)) < 0)
                        msg = NULL;
                return comm_send_error(out_fd, m->id, msg ?: "Failed to extract");
        }
        return comm_send_simple(out_fd, COMM_OK, m->id);
}

static int serve_get(int out_fd, const comm_msg *m) {
        int r;

        r = comm_send_tar(out_fd, m->id, m->path);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Failed to read %s: %s", m->path, strerror(-r)) < 0)
                        msg = NULL;
                /* If this fails too, the transport is gone. */
                return comm_send_error(out_fd, m->id, msg ?: "Failed to read");
        }
        return 0;
}

int comm_serve_loop(int in_fd, int out_fd) {
        int r;

        for (;;) {
                comm_msg m = {};
                uint64_t bad_id;

                r = comm_recv(in_fd, &m, &bad_id);
                if (r == -EPIPE)
                        return 0;
                if (r == -EBADMSG) {
                        r = comm_send_error(out_fd, bad_id, "Malformed frame");
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r == -EMSGSIZE) {
                        (void) comm_send_error(out_fd, 0, "Frame too large");
                        return -EMSGSIZE;
                }
                if (r < 0)
                        return r;

                bool shutdown = false;
                switch (m.type) {
                case COMM_PING:
                        r = comm_send_simple(out_fd, COMM_OK, m.id);
                        break;
                case COMM_EXEC:
                        r = serve_exec(out_fd, &m);
                        break;
                case COMM_PUT:
                        r = serve_put(in_fd, out_fd, &m);
                        break;
                case COMM_GET:
                        r = serve_get(out_fd, &m);
                        break;
                case COMM_SHUTDOWN:
                        r = comm_send_simple(out_fd, COMM_OK, m.id);
                        shutdown = true;
                        break;
                default:
                        r = comm_send_error(out_fd, m.id, "Not a request");
                        break;
                }
                comm_msg_done(&m);
                if (r < 0)
                        return r;
                if (shutdown)
                        return 1;
        }
}

static int open_device(const char *path, int *ret) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        /* A serial line must pass bytes through untouched. */
        if (isatty(fd)) {
                struct termios t;
                if (tcgetattr(fd, &t) < 0)
                        return negative_errno();
                cfmakeraw(&t);
                if (tcsetattr(fd, TCSANOW, &t) < 0)
                        return negative_errno();
        }
        *ret = TAKE_FD(fd);
        return 0;
}

static void sigpipe_noop(int sig) {}

int cmd_comm_serve(int argc, char **argv) {
        static const struct option options[] = {
                { "device", required_argument, NULL, 'd' },
                { "stdio", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *device = NULL;
        bool use_stdio = false;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        device = optarg;
                        break;
                case 's':
                        use_stdio = true;
                        break;
                case 'h':
                        printf("Usage: bootagent serve [--device PATH | --stdio]\n"
                               "Serve the imgbuild communicator protocol on a device or on stdin/stdout.\n");
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc || !!device == use_stdio) {
                log_error("Usage: bootagent serve [--device PATH | --stdio]");
                return 2;
        }

        /* A vanished client must show up as EPIPE from write, not kill the server. A handler
         * rather than SIG_IGN: ignored signals stay ignored in the commands we start. */
        struct sigaction sa = { .sa_handler = sigpipe_noop };
        (void) sigaction(SIGPIPE, &sa, NULL);

        if (use_stdio) {
                r = comm_serve_loop(STDIN_FILENO, STDOUT_FILENO);
                if (r < 0)
                        return log_error_errno(r, "Communicator session failed: %m"), 1;
                return 0;
        }

        _cleanup_close_ int fd = -1;
        r = open_device(device, &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to open %s: %m", device), 1;
        /* One client after another: a pool member's VM outlives each imgbuild command that talks
         * to it. While no client is connected the port reads end of file at once (exiting then
         * would make systemd restart us until its start limit stops the unit for good), so wait
         * a little and read again. */
        while ((r = comm_serve_loop(fd, fd)) == 0)
                (void) usleep(250 * 1000);
        if (r < 0)
                return log_error_errno(r, "Communicator session on %s failed: %m", device), 1;

        log_info("Shutdown requested, powering off");
        char *poweroff[] = { (char *) "systemctl", (char *) "--no-block", (char *) "poweroff", NULL };
        int status;
        r = spawn_run(poweroff, NULL, &status);
        if (r < 0)
                return log_error_errno(r, "Failed to run systemctl poweroff: %m"), 1;
        if (status != 0) {
                log_error("systemctl poweroff failed with status %d", status);
                return 1;
        }
        return 0;
}
