/* JSON replies shared by the services of `imgbuild serve`; a leaf: it knows nothing of them. */
#pragma once

#include <jansson.h>

#include "http-server.h"

/* Reply with status and the JSON document doc (a reference stolen, also on failure). Returns 0,
 * or -ENOMEM (doc NULL counts as out of memory). */
int serve_reply_json(http_server_response *resp, int status, json_t *doc);

/* Reply with status and {"errors":[message]}, Vault's error shape. */
int serve_vault_error(http_server_response *resp, int status, const char *message);
