/* What the services of `imgbuild serve` (serve-api.c, serve-metadata.c, serve-vault.c) are
 * given: the state they answer from and the request. serve.c owns that state and routes each
 * request by port through a table of these handlers; the services never call serve.c. */
#pragma once

#include <time.h>

#include "cloudstate.h"
#include "http-server.h"
#include "localpki.h"
#include "serve-reply.h"
#include "serve-vaultstore.h"

typedef struct serve_state {
        cloud_state *cloud;         /* the cloud.json loaded last; replaced on reload */
        localpki *pki;
        vault_store *vault;
        time_t (*now)(void);        /* clock; tests replace it */
} serve_state;

/* instance_id: the instance whose port the request came in on (NULL for the API port, whose
 * caller is known by its signature). Returns 0 with resp filled, or -errno (the server then
 * answers 500). */
typedef int (*serve_handler)(const serve_state *st, const char *instance_id,
                             const http_server_request *req, http_server_response *resp);

int serve_api(const serve_state *st, const char *instance_id, const http_server_request *req, http_server_response *resp);
int serve_metadata(const serve_state *st, const char *instance_id, const http_server_request *req, http_server_response *resp);
int serve_vault(const serve_state *st, const char *instance_id, const http_server_request *req, http_server_response *resp);
