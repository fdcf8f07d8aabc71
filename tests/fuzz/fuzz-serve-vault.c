/* Fuzz the Vault-compatible service's request handling (routing, JSON bodies, KV, PKI issue and
 * CSR signing) without sockets. Input: "METHOD PATH[?QUERY]\n" then the body (sent as
 * application/merge-patch+json, which only PATCH looks at). The request arrives on
 * instance i-1's listener with a valid token for role etcd, so the authenticated handlers run.
 * The state lives in a temporary directory made on the first call. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "log.h"
#include "serve-service.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cloud_json[] =
        "{\"zone\":\"local\",\"api_port\":1,\"api_key\":\"k\",\"api_secret\":\"s\",\"instances\":["
        "{\"id\":\"i-1\",\"name\":\"n\",\"state\":\"running\",\"pool\":\"p\",\"private_ip\":\"10.0.0.1\","
        "\"public_ip\":\"10.0.0.1\",\"security_groups\":[\"etcd\"],\"metadata_port\":2,\"vault_port\":3}],"
        "\"pools\":[{\"id\":\"p\",\"name\":\"etcd\",\"size\":1,\"template\":\"t\"}],"
        "\"vault\":{\"roles\":{\"etcd\":{\"pool\":\"etcd\",\"policies\":[\"etcd\"],\"ttl\":3600}},"
        "\"policies\":{\"etcd\":{\"secret/*\":[\"read\",\"create\",\"update\",\"delete\",\"list\",\"patch\"],\"pki/*\":[\"update\"]}},"
        "\"pki_roles\":{\"r\":{\"allowed_domains\":[\"etcd.local\"],\"allow_subdomains\":true,\"max_ttl\":3600}}}}";

static serve_state *S;
static char *token_header;
static char dir[] = "/tmp/fuzz-serve-vault-XXXXXX";

static time_t real_now(void) { return time(NULL); }

static void teardown(void) {
        (void) rm_rf(dir);
}

static void setup(void) {
        _cleanup_free_ char *pki = NULL, *vault = NULL;
        buf err = BUF_INIT(4096);
        json_t *entry;
        char *token = NULL;

        log_set_max_level(LOG_ERR);
        S = calloc(1, sizeof(*S));
        if (!S || !mkdtemp(dir) || asprintf(&pki, "%s/pki", dir) < 0 || asprintf(&vault, "%s/vault.json", dir) < 0 ||
            cloud_state_parse(cloud_json, sizeof(cloud_json) - 1, &S->cloud, &err) < 0 ||
            localpki_open(pki, &S->pki) < 0 || vault_store_open(vault, &S->vault) < 0 ||
            vault_store_token_create(S->vault, "i-1", "etcd", S->cloud->roles[0].policies, 3600, time(NULL),
                                     &token, &entry) < 0 ||
            asprintf(&token_header, "x-vault-token: %s", token) < 0)
                abort();
        S->now = real_now;
        atexit(teardown);
        free(token);
        buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!S)
                setup();
        const char *nl = memchr(data, '\n', size), *sp;
        if (!nl)
                return 0;
        char *line = strndup((const char *) data, (size_t) (nl - (const char *) data));
        char *body = strndup(nl + 1, size - (size_t) (nl + 1 - (const char *) data));
        if (!line || !body || !(sp = strchr(line, ' '))) {
                free(line);
                free(body);
                return 0;
        }
        line[sp - line] = 0;
        char *q = strchr(sp + 1, '?');
        if (q)
                *q++ = 0;
        char *headers[] = { token_header, (char *) "content-type: application/merge-patch+json", NULL };
        http_server_request req = { .method = line, .path = sp + 1, .raw_path = sp + 1, .query = q ? q : "",
                              .headers = headers, .body = body, .body_len = strlen(body),
                              .peer_addr = "127.0.0.1", .listener_tag = "vault:i-1" };
        http_server_response resp = { .status = 200, .body = BUF_INIT(0) };

        int r = serve_vault(S, "i-1", &req, &resp);
        if (r < 0 && r != -ENOMEM)
                abort();
        /* Every error reply is Vault-shaped, except as in Vault: sys/health answers its body with
         * whatever activecode asks for, and a read of a deleted KV version is 404 with the
         * envelope (data null, the metadata). */
        const char *text = resp.body.data ? resp.body.data : "";
        if (resp.status >= 400 && !startswith(sp + 1, "/v1/sys/health") && !strstr(text, "\"errors\"") &&
            !(resp.status == 404 && strstr(text, "\"data\":{\"data\":null,\"metadata\":")))
                abort();
        buf_free(&resp.body);
        strv_free(resp.headers);
        free(line);
        free(body);
        return 0;
}
