/* Member health inputs and etcd calls: see pool-health.h. */
#include "pool-health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "macro.h"

void pool_health_inputs_done(pool_health_inputs *h) {
        free(h->etcd_url);
        free(h->ca_file);
        free(h->cert_file);
        free(h->key_file);
        free(h->connect_to);
        *h = (pool_health_inputs){};
}

int pool_health_etcd_call(const pool_health_inputs *tls, const char *base_url, const char *path, const char *body,
                          long *ret_status, json_t **ret_body) {
        _cleanup_free_ char *url = NULL;
        http_response resp = {};
        int r;

        if (asprintf(&url, "%s%s", base_url, path) < 0)
                return -ENOMEM;
        char *const headers[] = { (char *) "Content-Type: application/json", NULL };
        http_request req = {
                .method = body ? "POST" : "GET", .url = url, .headers = headers, .body = body,
                .body_len = body ? strlen(body) : 0, .timeout_ms = 2000, .max_body = 1024 * 1024,
                .ca_file = tls->ca_file, .cert_file = tls->cert_file, .key_file = tls->key_file,
                .connect_to = tls->connect_to,
        };
        r = http_do(&req, &resp, NULL);
        if (r >= 0) {
                *ret_status = resp.status;
                if (ret_body && json_parse(resp.body.data, resp.body.len, ret_body, NULL) < 0)
                        *ret_body = NULL;
        }
        http_response_free(&resp);
        return r;
}

bool pool_health_check(const pool_health_inputs *h) {
        _cleanup_json_ json_t *body = NULL;
        long status = 0;
        return pool_health_etcd_call(h, h->etcd_url, "/health", NULL, &status, &body) >= 0 && status == 200 &&
               streq(strempty(json_path_string(body, "health")), "true");
}
