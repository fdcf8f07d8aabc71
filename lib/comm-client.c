#include "comm-client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "io-util.h"
#include "macro.h"

/* Hand an error frame's text to the caller. */
static int remote_error(comm_msg *m, char **ret_error) {
        if (ret_error)
                *ret_error = TAKE_PTR(m->error);
        return -EREMOTEIO;
}

/* Wait for the final OK (or ERROR) of request id. */
static int wait_ok(comm_client *c, uint64_t id, char **ret_error) {
        comm_msg m = {};
        int r;

        r = comm_recv(c->fd, &m, NULL);
        if (r < 0)
                return r;
        if (m.id != id)
                r = -EBADMSG;
        else if (m.type == COMM_ERROR)
                r = remote_error(&m, ret_error);
        else if (m.type != COMM_OK)
                r = -EBADMSG;
        comm_msg_done(&m);
        return r;
}

int comm_client_ping(comm_client *c, char **ret_error) {
        uint64_t id = c->next_id++;
        int r;

        r = comm_send_simple(c->fd, COMM_PING, id);
        if (r < 0)
                return r;
        return wait_ok(c, id, ret_error);
}

int comm_client_shutdown(comm_client *c, char **ret_error) {
        uint64_t id = c->next_id++;
        int r;

        r = comm_send_simple(c->fd, COMM_SHUTDOWN, id);
        if (r < 0)
                return r;
        return wait_ok(c, id, ret_error);
}

int comm_client_exec(comm_client *c, char *const *argv, char *const *env, const char *cwd,
                     int out_fd, int err_fd, int *ret_status, char **ret_error) {
        return comm_client_exec_capped(c, argv, env, cwd, out_fd, UINT64_MAX, err_fd, ret_status, ret_error);
}

int comm_client_exec_capped(comm_client *c, char *const *argv, char *const *env, const char *cwd,
                            int out_fd, uint64_t out_max, int err_fd, int *ret_status, char **ret_error) {
        uint64_t id = c->next_id++, out_bytes = 0;
        int r;

        r = comm_send(c->fd, &(comm_msg) { .type = COMM_EXEC, .id = id, .argv = (char **) argv,
                                           .env = (char **) env, .cwd = (char *) cwd });
        if (r < 0)
                return r;

        for (;;) {
                comm_msg m = {};
                r = comm_recv(c->fd, &m, NULL);
                if (r < 0)
                        return r;
                if (m.id != id) {
                        comm_msg_done(&m);
                        return -EBADMSG;
                }
                switch (m.type) {
                case COMM_STDOUT:
                case COMM_STDERR: {
                        int fd = m.type == COMM_STDOUT ? out_fd : err_fd;
                        if (m.type == COMM_STDOUT && m.size > out_max - out_bytes) {
                                /* Checked before writing: out_fd never gets more than out_max. */
                                comm_msg_done(&m);
                                return -EFBIG;
                        }
                        if (m.type == COMM_STDOUT)
                                out_bytes += m.size;
                        /* A closed local terminal must not abort the remote command's stream. */
                        if (fd >= 0)
                                (void) loop_write(fd, m.data, m.size);
                        comm_msg_done(&m);
                        continue;
                }
                case COMM_EXIT:
                        *ret_status = (int) m.status;
                        r = 0;
                        break;
                case COMM_ERROR:
                        r = remote_error(&m, ret_error);
                        break;
                default:
                        r = -EBADMSG;
                        break;
                }
                comm_msg_done(&m);
                return r;
        }
}

int comm_client_put(comm_client *c, const char *local_path, const char *remote_dir, char **ret_error) {
        uint64_t id = c->next_id++;
        int r;

        r = comm_send(c->fd, &(comm_msg) { .type = COMM_PUT, .id = id, .path = (char *) remote_dir });
        if (r < 0)
                return r;
        r = comm_send_tar(c->fd, id, local_path);
        if (r < 0) {
                /* Tell the server the stream ends here, then collect its (error) reply so the
                 * session stays usable; our own failure is what the caller hears about. */
                int q = comm_send_error(c->fd, id, "Client failed to read the files");
                if (q < 0)
                        return r;
                q = wait_ok(c, id, NULL);
                return q == -EPIPE || q == -EIO ? q : r;
        }
        return wait_ok(c, id, ret_error);
}

int comm_client_get(comm_client *c, const char *remote_path, const char *local_dir, char **ret_error) {
        uint64_t id = c->next_id++;
        int r;

        r = comm_send(c->fd, &(comm_msg) { .type = COMM_GET, .id = id, .path = (char *) remote_path });
        if (r < 0)
                return r;
        return comm_recv_tar(c->fd, id, local_dir, geteuid() == 0, ret_error);
}
