#include "metadata.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"
#include "request.h"

int metadata_parse_value(const char *body, size_t len, char **ret) {
        if (len > 0 && body[len - 1] == '\n')
                len--;
        if (len == 0 || len > 255)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) body[i] < 0x21 || (unsigned char) body[i] > 0x7e)
                        return -EBADMSG;
        char *s = strndup(body, len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* GET url (through unix_socket when not NULL) with jittered retries until the deadline dl, the
 * body capped at max: 0 and the 200 reply in *resp, or -ENOENT (404), -ENOBUFS (over the cap),
 * -EPROTO (another status), the transport error, with the reason in err. */
static int fetch(const char *url, const char *unix_socket, size_t max, request_deadline *dl, http_response *resp,
                 buf *err) {
        http_request req = {
                .url = url,
                .unix_socket = unix_socket,
                .timeout_ms = 2000,
                .max_body = max,
                .attempts = 1000, /* bounded by the deadline */
                .backoff_ms = 100,
                .backoff_max_ms = 2000,
        };
        int r = request_do(&req, dl, resp, err);
        if (r == -ENOBUFS || r == -EFBIG) {
                if (err)
                        buf_printf(err, "GET %s: more than %zu bytes", url, max);
                return -ENOBUFS;
        }
        if (r < 0)
                return r;
        if (resp->status == 404) {
                if (err)
                        buf_printf(err, "GET %s: not found (404)", url);
                return -ENOENT;
        }
        if (resp->status != 200) {
                if (err)
                        buf_printf(err, "GET %s: HTTP %ld", url, resp->status);
                return -EPROTO;
        }
        return 0;
}

int metadata_get(const char *base_url, const char *unix_socket, const char *key, request_deadline *dl, char **ret,
                 buf *err) {
        _cleanup_free_ char *url = NULL;
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s/latest/meta-data/%s", base_url, key) < 0)
                return -ENOMEM;
        r = fetch(url, unix_socket, 4096, dl, &resp, err);
        if (r >= 0) {
                r = metadata_parse_value(resp.body.data, resp.body.len, ret);
                if (r < 0 && err)
                        buf_printf(err, "GET %s: malformed value", url);
        }
        http_response_free(&resp);
        return r;
}

int metadata_user_data(const char *base_url, const char *unix_socket, request_deadline *dl, size_t max, char **ret,
                       size_t *ret_len, buf *err) {
        _cleanup_free_ char *url = NULL;
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s/latest/user-data", base_url) < 0)
                return -ENOMEM;
        r = fetch(url, unix_socket, max, dl, &resp, err);
        if (r >= 0) {
                size_t len = resp.body.len;
                char *body = buf_steal(&resp.body);
                if (!body)
                        r = -ENOMEM;
                else {
                        *ret = body;
                        *ret_len = len;
                }
        }
        /* the body may hold a token */
        if (resp.body.data)
                explicit_bzero(resp.body.data, resp.body.len);
        http_response_free(&resp);
        return r;
}

void identity_done(identity *id) {
        free(id->instance_id);
        free(id->zone);
        free(id->local_ipv4);
        free(id->public_ipv4);
        *id = (identity){ 0 };
}

static bool zone_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static bool ipv4_valid(const char *s) {
        struct in_addr a;
        return inet_pton(AF_INET, s, &a) == 1;
}

int identity_fetch(const char *base_url, const char *unix_socket, request_deadline *dl, identity *ret, buf *err) {
        identity id = { 0 };
        /* Each value goes into file names, etcd member names and URLs: only what the cloud can
         * return is accepted (ids are UUIDs, zones like ch-gva-2, addresses dotted quads). */
        struct {
                const char *key;
                char **field;
                bool (*valid)(const char *);
                const char *expected;
        } keys[] = {
                { "instance-id", &id.instance_id, parse_uuid_valid, "a UUID" },
                { "availability-zone", &id.zone, zone_valid, "a zone name (lower case letters, digits, -)" },
                { "local-ipv4", &id.local_ipv4, ipv4_valid, "an IPv4 address" },
                { "public-ipv4", &id.public_ipv4, ipv4_valid, "an IPv4 address" },
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                int r = metadata_get(base_url, unix_socket, keys[i].key, dl, keys[i].field, err);
                if (r >= 0 && !keys[i].valid(*keys[i].field)) {
                        buf_clear(err);
                        (void) buf_printf(err, "metadata %s '%s' is not %s", keys[i].key, *keys[i].field,
                                          keys[i].expected);
                        r = -EBADMSG;
                }
                if (r < 0) {
                        identity_done(&id);
                        return r;
                }
        }
        *ret = id;
        return 0;
}
