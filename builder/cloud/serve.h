/* `imgbuild serve`: the local cloud's services on one HTTP server event loop (lib/http-server.h).
 * Every port cloud.json names gets a listener on 127.0.0.1 tagged "port:<n>", every socket name a
 * UNIX socket DIR/sockets/<name> (the directory 0700, the socket 0600: only this user can connect)
 * tagged "socket:<name>"; each request is routed by looking the listener up in the current
 * cloud.json: api_port -> the Exoscale-compatible API, an instance's metadata_port or
 * metadata_socket -> its metadata service, its vault_port or vault_socket -> its Vault-compatible
 * service. The listener tells a handler who is calling, the way the source IP does in the cloud.
 * DIR/cloud.json is re-read when it changes; a port or socket handed to another instance follows
 * without rebinding, and one no instance names any more is closed (connection refused; a
 * socket's file is removed). */
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "serve-service.h"

typedef struct serve {
        char *state_dir;
        char *cloud_path;
        struct stat cloud_stat;     /* of the cloud.json last loaded (or rejected) */
        serve_state state;          /* what the services answer from */
        http_server *http;
        char *sockets_dir;          /* DIR/sockets */
        char **bound;               /* tags ("port:<n>", "socket:<name>") of every listener open */
} serve;

/* Load DIR/cloud.json, open (or create) the CA and the Vault store, seed KV, make DIR/sockets
 * private (0700; refused when it belongs to another user) and bind every listener. Returns 0; -EINVAL with the cloud.json error (JSON path first) in err;
 * other -errno with a one-line reason in err. */
int serve_new(const char *state_dir, serve **ret, buf *err);
void serve_free(serve *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(serve *, serve_free);

/* Re-read cloud.json if its mtime, size or inode changed; close the listeners of ports and
 * sockets it no longer names and bind listeners for new ones.
 * An invalid new file, or a new port or socket that cannot be bound, is logged and the service
 * goes on.
 * Returns 1 if reloaded, 0 if unchanged or rejected. */
int serve_reload_if_changed(serve *s);

/* Serve until *stop is set, checking cloud.json for changes about every 200 ms. Returns 0 or
 * -errno if the event loop failed. */
int serve_run(serve *s, volatile sig_atomic_t *stop);
