/* `imgbuild serve`: the local cloud's services on one HTTP server event loop (lib/http-server.h).
 * Every port cloud.json names gets a listener tagged "port:<n>"; each request is routed by
 * looking the port up in the current cloud.json: api_port -> the Exoscale-compatible API, an
 * instance's metadata_port -> its metadata service, its vault_port -> its Vault-compatible
 * service. The port tells a handler who is calling, the way the source IP does in the cloud.
 * DIR/cloud.json is re-read when it changes; a port handed to another instance follows without
 * rebinding, and a port no instance names any more is closed (connection refused). */
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "cloudstate.h"
#include "http-server.h"
#include "localpki.h"
#include "serve-vaultstore.h"

typedef struct serve {
        char *state_dir;
        char *cloud_path;
        struct stat cloud_stat;     /* of the cloud.json last loaded (or rejected) */
        cloud_state *cloud;
        localpki *pki;
        vault_store *vault;
        http_server *http;
        char **bound;               /* tags ("port:<n>") of every listener open */
        time_t (*now)(void);        /* clock; tests replace it */
} serve;

/* Load DIR/cloud.json, open (or create) the CA and the Vault store, seed KV, and bind every
 * listener on 127.0.0.1. Returns 0; -EINVAL with the cloud.json error (JSON path first) in err;
 * other -errno with a one-line reason in err. */
int serve_new(const char *state_dir, serve **ret, buf *err);
void serve_free(serve *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(serve *, serve_free);

/* Re-read cloud.json if its mtime, size or inode changed; close the listeners of ports it no
 * longer names and bind listeners for new ones.
 * An invalid new file, or a new port that cannot be bound, is logged and the service goes on.
 * Returns 1 if reloaded, 0 if unchanged or rejected. */
int serve_reload_if_changed(serve *s);

/* Serve until *stop is set, checking cloud.json for changes about every 200 ms. Returns 0 or
 * -errno if the event loop failed. */
int serve_run(serve *s, volatile sig_atomic_t *stop);

/* The three services (serve-metadata.c, serve-vault.c, serve-api.c). instance_id: the instance
 * whose port the request came in on. */
int serve_metadata(serve *s, const char *instance_id, const http_server_request *req, http_server_response *resp);
int serve_vault(serve *s, const char *instance_id, const http_server_request *req, http_server_response *resp);
int serve_api(serve *s, const http_server_request *req, http_server_response *resp);

/* Reply with status and a JSON body {"errors":[message]} (Vault's error shape). */
int serve_vault_error(http_server_response *resp, int status, const char *message);
/* Reply with a JSON document (stolen reference). */
int serve_reply_json(http_server_response *resp, int status, json_t *doc);
