/* Client side of the communicator (protocol in lib/comm.h): what the builder runs in a VM. */
#pragma once

#include <stdint.h>

typedef struct comm_client {
        int fd;           /* connected stream to `bootagent serve`; not owned */
        uint64_t next_id; /* id of the next request */
} comm_client;

#define COMM_CLIENT_INIT(f) ((comm_client){ .fd = (f), .next_id = 1 })

/* All calls below return 0 on success, -EREMOTEIO when the server answered with an error frame
 * (its text in *ret_error when ret_error is not NULL; caller frees), -EBADMSG for a reply that
 * breaks the protocol, -EPIPE/-EIO when the channel closed, or another -errno. */

int comm_client_ping(comm_client *c, char **ret_error);

/* Run argv in the guest (env: extra "K=V" entries, may be NULL; cwd may be NULL). The command's
 * stdout and stderr are copied to out_fd and err_fd as they arrive (-1 drops them). On success
 * *ret_status is its exit status (128+signal if killed). */
int comm_client_exec(comm_client *c, char *const *argv, char *const *env, const char *cwd,
                     int out_fd, int err_fd, int *ret_status, char **ret_error);

/* The same, with at most out_max bytes of stdout going to out_fd (for output kept in memory, from
 * a guest that may not be trusted to stop): the chunk that would pass the cap is not written and
 * -EFBIG is returned at once, while the command may still run. The session is then out of step
 * (this request's remaining frames are unread): close it; the server kills the command when the
 * session breaks. */
int comm_client_exec_capped(comm_client *c, char *const *argv, char *const *env, const char *cwd,
                            int out_fd, uint64_t out_max, int err_fd, int *ret_status, char **ret_error);

/* Copy local_path (a directory's contents, or one file) into the guest directory remote_dir,
 * keeping modes and owners. */
int comm_client_put(comm_client *c, const char *local_path, const char *remote_dir, char **ret_error);

/* Copy remote_path (a directory's contents, or one file) from the guest into local_dir. Owners are
 * kept only when running as root. */
int comm_client_get(comm_client *c, const char *remote_path, const char *local_dir, char **ret_error);

/* Ask the server to stop (in a build VM it powers the machine off). */
int comm_client_shutdown(comm_client *c, char **ret_error);
