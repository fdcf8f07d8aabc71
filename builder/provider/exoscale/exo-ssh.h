/* SSH to an Exoscale build instance: a temporary key pair in a private directory, the ssh
 * command line, copying bootagent in (retried while the instance boots), and `bootagent serve
 * --stdio` over an SSH channel as the communicator. The session's ssh is registered with
 * lib/interrupt.h, so a signal ends it at once and a step in progress returns. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "comm-client.h"
#include "macro.h"

typedef struct exo_ssh {
        const char *user;       /* login, e.g. root */
        unsigned port;
        char **options;         /* extra `ssh -o` values, given first (borrowed) */
        const char *host;       /* the instance's IP (borrowed) */
        char *tmpdir;           /* private: the key pair and known_hosts (exo_ssh_keygen) */
        char *key_path;
        char *known_hosts;
} exo_ssh;

/* Remove the key pair and free what exo_ssh_keygen made. */
void exo_ssh_done(exo_ssh *s);

/* A new ed25519 key pair (comment: the build's name) in a private temporary directory. Returns 0
 * and the public key line in *ret_public, or -errno (logged). */
int exo_ssh_keygen(exo_ssh *s, const char *comment, char **ret_public);

/* Copy bootagent (path) to /usr/local/bin/bootagent on the host, installing its shared libraries
 * with apt-get when missing; retried while ssh cannot connect, for up to timeout_sec. Returns 0,
 * -ETIMEDOUT, -EINTR when interrupted, or -errno (all logged). */
int exo_ssh_install_agent(const exo_ssh *s, const char *bootagent, unsigned timeout_sec);

/* `bootagent serve --stdio` over ssh: the communicator speaks to our end of a socket pair whose
 * other end is ssh's stdin and stdout. */
typedef struct exo_session {
        int fd;
        pid_t pid;
        comm_client comm;
} exo_session;
#define EXO_SESSION_INIT { .fd = -1 }

/* Start the session and ping the agent. Returns 0 or -errno (logged). */
int exo_ssh_session_start(const exo_ssh *s, exo_session *ret);
/* End it (EOF, then SIGTERM to ssh) and reap ssh. Accepts an ended or never started session. */
void exo_ssh_session_end(exo_session *s);
