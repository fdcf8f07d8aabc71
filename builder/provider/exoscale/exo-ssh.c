#include "exo-ssh.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs.h"
#include "interrupt.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

#define SSH_RETRY_MS 3000

void exo_ssh_done(exo_ssh *s) {
        if (s->tmpdir)
                (void) rm_rf(s->tmpdir);
        free(s->tmpdir);
        free(s->key_path);
        free(s->known_hosts);
        s->tmpdir = s->key_path = s->known_hosts = NULL;
}

int exo_ssh_keygen(exo_ssh *b, const char *comment, char **ret_public) {
        _cleanup_free_ char *pub_path = NULL, *pub = NULL;
        int r, status;

        b->tmpdir = strdup("/tmp/imgbuild-exoscale-XXXXXX");
        if (!b->tmpdir)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (!mkdtemp(b->tmpdir)) {
                r = log_error_errno(errno, "Failed to create a private temporary directory: %m");
                free(b->tmpdir);
                b->tmpdir = NULL;
                return r;
        }
        if (asprintf(&b->key_path, "%s/key", b->tmpdir) < 0 || asprintf(&b->known_hosts, "%s/known_hosts", b->tmpdir) < 0 ||
            asprintf(&pub_path, "%s/key.pub", b->tmpdir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *argv[] = { (char *) "ssh-keygen", (char *) "-q", (char *) "-t", (char *) "ed25519", (char *) "-N",
                         (char *) "", (char *) "-C", (char *) comment, (char *) "-f", b->key_path, NULL };
        r = spawn_run(argv, NULL, &status);
        if (r < 0)
                return log_error_errno(r, "Failed to run ssh-keygen: %m");
        if (status != 0) {
                log_error("ssh-keygen failed with status %d", status);
                return -EPROTO;
        }
        r = read_file(pub_path, 16 * 1024, &pub, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", pub_path);
        pub[strcspn(pub, "\n")] = 0;
        *ret_public = TAKE_PTR(pub);
        return 0;
}

/* ssh OPTIONS USER@IP COMMAND as an argv (never a local shell). ssh takes the first value given
 * for an option, so the user's --ssh-option values come first and override the defaults. */
static int ssh_argv(const exo_ssh *b, const char *command, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL, **defaults = NULL;
        int r;

        r = strv_split("-T -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes "
                       "-o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR",
                       " ", &defaults);
        if (r >= 0)
                r = strv_push(&argv, "ssh");
        for (char **o = b->options; r >= 0 && o && *o; o++) {
                r = strv_push(&argv, "-o");
                if (r >= 0)
                        r = strv_push(&argv, *o);
        }
        for (char **d = defaults; r >= 0 && d && *d; d++)
                r = strv_push(&argv, *d);
        if (r >= 0)
                r = strv_pushf(&argv, "-oUserKnownHostsFile=%s", b->known_hosts);
        if (r >= 0)
                r = strv_push(&argv, "-i");
        if (r >= 0)
                r = strv_push(&argv, b->key_path);
        if (r >= 0)
                r = strv_pushf(&argv, "-p%u", b->port);
        if (r >= 0)
                r = strv_pushf(&argv, "%s@%s", b->user, b->host);
        if (r >= 0)
                r = strv_push(&argv, command);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* Shared libraries bootagent needs (as in builder/store/base.c); a stock template may lack some.
 * libarchive is loaded only when a tar stream is sent (dlopen), so `--version` alone does not
 * prove it is there: ldconfig's cache does. */
static const char install_agent_script[] =
        "set -e; umask 022; mkdir -p /usr/local/bin; t=/usr/local/bin/.bootagent.imgbuild; "
        "cat > \"$t\"; chmod 0755 \"$t\"; mv -f \"$t\" /usr/local/bin/bootagent; "
        "if ! /usr/local/bin/bootagent --version >/dev/null 2>&1 || "
        "! /sbin/ldconfig -p | grep -q 'libarchive\\.so\\.13 '; then "
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >&2; "
        "apt-get install -y -q --no-install-recommends libarchive13 libcbor0.8 libcurl4 libjansson4 libssl3 "
        "libsystemd0 >&2; fi; /usr/local/bin/bootagent --version >&2";

/* Copy bootagent in: the first SSH connection, retried (ssh exits 255 when it cannot connect)
 * while the instance boots. */
int exo_ssh_install_agent(const exo_ssh *b, const char *bootagent, unsigned timeout_sec) {
        _cleanup_strv_free_ char **argv = NULL;
        int64_t deadline = time_now_ms() + (int64_t) timeout_sec * 1000;
        unsigned attempts = 0;
        int r, status;

        r = ssh_argv(b, install_agent_script, &argv);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        for (;;) {
                _cleanup_close_ int in = open(bootagent, O_RDONLY | O_CLOEXEC);
                if (in < 0)
                        return log_error_errno(errno, "Failed to open %s: %m", bootagent);
                spawn_options so = SPAWN_OPTIONS_DEFAULT;
                so.stdin_fd = in;
                so.stdout_fd = STDERR_FILENO;
                attempts++;
                r = spawn_run(argv, &so, &status);
                if (r < 0)
                        return log_error_errno(r, "Failed to run ssh: %m");
                if (status == 0)
                        return 0;
                if (status != 255) {
                        log_error("Installing bootagent on %s failed with status %d (see above)", b->host, status);
                        return -EPROTO;
                }
                if (interrupt_signal())
                        return log_error_errno(-EINTR, "Interrupted by signal %d, cleaning up", interrupt_signal());
                if (time_now_ms() + SSH_RETRY_MS > deadline) {
                        log_error("No SSH connection to %s@%s port %u after %u attempts in %u s (see ssh's errors above)",
                                  b->user, b->host, b->port, attempts, timeout_sec);
                        return -ETIMEDOUT;
                }
                log_info("SSH to %s not ready yet, retrying", b->host);
                if (time_sleep_ms_cancellable(SSH_RETRY_MS, interrupt_signal_flag()) < 0)
                        return log_error_errno(-EINTR, "Interrupted by signal %d, cleaning up", interrupt_signal());
        }
}

void exo_ssh_session_end(exo_session *s) {
        int status;

        /* EOF on its stdin ends the remote serve loop, and then ssh. */
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        if (s->pid > 0) {
                interrupt_unregister(s->pid);
                (void) kill(s->pid, SIGTERM);
                (void) spawn_wait(s->pid, &status);
                s->pid = 0;
        }
}

int exo_ssh_session_start(const exo_ssh *b, exo_session *ret) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *error = NULL;
        int sv[2], r;

        r = ssh_argv(b, "/usr/local/bin/bootagent serve --stdio", &argv);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return log_error_errno(errno, "Failed to create a socket pair: %m");
        exo_session s = { .fd = sv[0] };
        spawn_options so = SPAWN_OPTIONS_DEFAULT;
        so.stdin_fd = sv[1];
        so.stdout_fd = sv[1];
        r = spawn_start(argv, &so, &s.pid);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return log_error_errno(r, "Failed to run ssh: %m");
        }
        /* A signal ends the session at once, so a step in progress returns. */
        (void) interrupt_register(s.pid, SIGTERM);
        s.comm = COMM_CLIENT_INIT(s.fd);
        r = comm_client_ping(&s.comm, &error);
        if (r < 0) {
                exo_ssh_session_end(&s);
                if (r == -EREMOTEIO)
                        log_error("bootagent serve on %s refused a ping: %s", b->host, error);
                else
                        log_error_errno(r, "No communicator over SSH to %s (bootagent serve --stdio): %m", b->host);
                return r;
        }
        *ret = s;
        return 0;
}
