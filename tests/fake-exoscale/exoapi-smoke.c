/* Read-only smoke test of lib/exoapi against a real Exoscale account (ci/cloud-smoke.sh) or the
 * fake: lists zones, private templates and instance types. It creates and changes nothing.
 *
 * Usage: exoapi-smoke ZONE   with EXOSCALE_API_KEY and EXOSCALE_API_SECRET set;
 * EXOSCALE_API_ENDPOINT overrides the endpoint template (e.g. the fake's). */
#include <stdio.h>

#include "exoapi.h"
#include "http.h"
#include "json.h"
#include "log.h"

static int list(exoapi *c, const char *path, const char *query, const char *field, const char *key) {
        _cleanup_json_ json_t *j = NULL;
        json_t *item;
        size_t i;
        int r;

        r = exoapi_request(c, "GET", path, query, NULL, &j);
        if (r < 0)
                return log_error_errno(r, "%s", exoapi_error(c));
        json_t *items = json_object_get(j, field);
        if (!json_is_array(items))
                return log_error_errno(-EBADMSG, "GET %s: no \"%s\" list in the response", path, field);
        printf("%s: %zu\n", field, json_array_size(items));
        json_array_foreach(items, i, item)
                printf("  %s\n", strempty(json_string_value(json_object_get(item, key))));
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(exoapi_freep) exoapi *c = NULL;
        _cleanup_buf_ buf err = {};
        exoapi_credentials creds = {};
        const char *endpoint = getenv("EXOSCALE_API_ENDPOINT");
        int r;

        log_set_program("exoapi-smoke");
        if (argc != 2) {
                fprintf(stderr, "usage: exoapi-smoke ZONE\n");
                return 2;
        }
        r = http_global_init();
        if (r < 0) {
                log_error_errno(r, "Failed to initialize libcurl: %m");
                return 1;
        }
        r = exoapi_credentials_from_env(&creds, &err);
        if (r < 0) {
                log_error("%s", err.data);
                return 1;
        }
        r = exoapi_new(&creds, argv[1], &c);
        exoapi_credentials_done(&creds);
        if (r >= 0 && endpoint)
                r = exoapi_set_endpoint(c, endpoint);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the client: %m");
                return 1;
        }

        if (list(c, "/zone", NULL, "zones", "name") < 0 ||
            list(c, "/template", "visibility=private", "templates", "name") < 0 ||
            list(c, "/instance-type", NULL, "instance-types", "size") < 0)
                return 1;
        return 0;
}
