#include "vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "json.h"
#include "strv.h"

#define VAULT_MAX_BODY (1024 * 1024)

void vault_done(vault *v) {
        free_secret(v->token);
        v->token = NULL;
}

void pki_bundle_done(pki_bundle *b) {
        free(b->certificate);
        free(b->issuing_ca);
        free_secret(b->private_key);
        free(b->serial);
        *b = (pki_bundle){ 0 };
}

int vault_parse_reply(long status, const char *body, size_t len, json_t **ret, buf *err) {
        _cleanup_json_ json_t *j = NULL;

        if (len > 0 && json_parse(body, len, &j, NULL) < 0)
                j = NULL;
        if (status >= 400) {
                json_t *errors = j ? json_object_get(j, "errors") : NULL;
                if (err) {
                        buf_printf(err, "HTTP %ld", status);
                        size_t i;
                        json_t *e;
                        json_array_foreach(errors, i, e)
                                if (json_is_string(e) && i < 8)
                                        buf_printf(err, "%s %s", i == 0 ? ":" : ";", json_string_value(e));
                }
                return status == 403 ? -EACCES : status == 404 ? -ENOENT : status == 400 ? -EINVAL : -EIO;
        }
        if (status < 200 || status >= 300) {
                if (err)
                        buf_printf(err, "unexpected HTTP %ld", status);
                return -EPROTO;
        }
        if (len == 0 || status == 204) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_object(j)) {
                if (err)
                        buf_puts(err, "reply is not a JSON object");
                return -EBADMSG;
        }
        *ret = TAKE_PTR(j);
        return 0;
}

int vault_parse_auth(json_t *reply, char **ret_token, uint64_t *ret_lease) {
        const char *t = json_path_string(reply, "auth.client_token");
        uint64_t lease = 0;
        if (!t || !*t || strlen(t) > 4096)
                return -EBADMSG;
        if (json_path_u64(reply, "auth.lease_duration", &lease) == -EBADMSG)
                return -EBADMSG;
        char *s = strdup(t);
        if (!s)
                return -ENOMEM;
        *ret_token = s;
        *ret_lease = lease;
        return 0;
}

int vault_parse_pki(json_t *reply, pki_bundle *ret) {
        pki_bundle b = { 0 };
        const char *cert = json_path_string(reply, "data.certificate");
        const char *ca = json_path_string(reply, "data.issuing_ca");
        const char *key = json_path_string(reply, "data.private_key");
        const char *serial = json_path_string(reply, "data.serial_number");
        int64_t exp = 0;

        if (!cert || !startswith(cert, "-----BEGIN CERTIFICATE-----") || !ca)
                return -EBADMSG;
        if (json_path_i64(reply, "data.expiration", &exp) == -EBADMSG)
                return -EBADMSG;
        b.certificate = strdup(cert);
        b.issuing_ca = strdup(ca);
        b.serial = strdup(strempty(serial));
        b.private_key = key ? strdup(key) : NULL;
        b.expiration = exp;
        if (!b.certificate || !b.issuing_ca || !b.serial || (key && !b.private_key)) {
                pki_bundle_done(&b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

/* One Vault call. body may be NULL (GET). */
static int vault_call(vault *v, const char *method, const char *path, const char *body,
                      json_t **ret, buf *err) {
        _cleanup_free_ char *url = NULL;
        _cleanup_strv_free_ char **headers = NULL;
        _cleanup_buf_ buf e = BUF_INIT(1024);
        http_response resp = { 0 };
        int r;

        if (asprintf(&url, "%s/v1/%s", v->addr, path) < 0)
                return -ENOMEM;
        if (v->token) {
                r = strv_pushf(&headers, "X-Vault-Token: %s", v->token);
                if (r < 0)
                        return r;
        }
        if (body && strv_push(&headers, "Content-Type: application/json") < 0) {
                r = -ENOMEM;
                goto out;
        }
        http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .timeout_ms = 5000,
                .max_body = VAULT_MAX_BODY,
                .attempts = 1000,
                .backoff_ms = 200,
                .backoff_max_ms = 3000,
                .deadline_ms = v->deadline_ms,
                .ca_file = v->ca_file,
                .unix_socket = v->unix_socket,
        };
        r = request_do(&req, v->deadline, &resp, err);
        if (r < 0)
                goto out;
        r = vault_parse_reply(resp.status, resp.body.data, resp.body.len, ret, &e);
        if (r < 0 && err)
                buf_printf(err, "%s %s: %s", method, url, e.data ? e.data : "");
out:
        /* The header array holds the token. */
        for (char **h = headers; h && *h; h++)
                explicit_bzero(*h, strlen(*h));
        buf_free_secret(&resp.body);
        http_response_free(&resp);
        return r;
}

static int vault_call_json(vault *v, const char *method, const char *path, json_t *body,
                           json_t **ret, buf *err) {
        char *text = json_dump_compact(body);
        if (!text)
                return -ENOMEM;
        int r = vault_call(v, method, path, text, ret, err);
        free_secret(text);
        return r;
}

int vault_login(vault *v, const char *mount, const char *role, const char *instance, buf *err) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "role", role, "instance", instance);
        char *token;
        uint64_t lease;
        int r;

        if (!body || asprintf(&path, "auth/%s/login", mount) < 0)
                return -ENOMEM;
        vault_done(v);
        r = vault_call_json(v, "POST", path, body, &reply, err);
        if (r < 0)
                return r;
        r = reply ? vault_parse_auth(reply, &token, &lease) : -EBADMSG;
        if (r < 0) {
                if (err)
                        buf_printf(err, "POST %s/v1/%s: reply without auth.client_token", v->addr, path);
                return r;
        }
        v->token = token;
        v->lease_duration = lease;
        return 0;
}

int vault_renew_self(vault *v, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        char *token;
        uint64_t lease;
        int r = vault_call(v, "POST", "auth/token/renew-self", "{}", &reply, err);
        if (r < 0)
                return r;
        r = reply ? vault_parse_auth(reply, &token, &lease) : -EBADMSG;
        if (r < 0) {
                if (err)
                        buf_printf(err, "POST %s/v1/auth/token/renew-self: reply without auth", v->addr);
                return r;
        }
        /* renew-self may hand back the same token; keep whichever it returned. */
        free_secret(v->token);
        v->token = token;
        v->lease_duration = lease;
        return 0;
}

int vault_kv_read(vault *v, const char *mount, const char *path, json_t **ret, buf *err) {
        _cleanup_free_ char *p = NULL;
        _cleanup_json_ json_t *reply = NULL;
        int r;

        if (asprintf(&p, "%s/data/%s", mount, path) < 0)
                return -ENOMEM;
        r = vault_call(v, "GET", p, NULL, &reply, err);
        if (r < 0)
                return r;
        json_t *data = reply ? json_path(reply, "data.data") : NULL;
        if (!json_is_object(data)) {
                if (err)
                        buf_printf(err, "GET %s/v1/%s: reply without data.data", v->addr, p);
                return -EBADMSG;
        }
        *ret = json_incref(data);
        return 0;
}

int vault_kv_write(vault *v, const char *mount, const char *path, json_t *data, int64_t cas, buf *err) {
        _cleanup_free_ char *p = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_json_ json_t *body = json_pack("{s:O}", "data", data);
        _cleanup_buf_ buf e = BUF_INIT(1024);
        int r;

        if (!body || asprintf(&p, "%s/data/%s", mount, path) < 0)
                return -ENOMEM;
        if (cas >= 0 && json_object_set_new(body, "options", json_pack("{s:I}", "cas", (json_int_t) cas)) < 0)
                return -ENOMEM;
        r = vault_call_json(v, "POST", p, body, &reply, &e);
        if (r == -EINVAL && cas >= 0 && e.data && strstr(e.data, "check-and-set"))
                r = -EEXIST;
        if (r < 0 && err)
                buf_puts(err, e.data ? e.data : "");
        return r;
}

int vault_pki(vault *v, const char *mount, const char *role, const char *common_name,
              const char *alt_names, const char *ip_sans, const char *ttl, const char *csr_pem,
              pki_bundle *ret, buf *err) {
        _cleanup_free_ char *p = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_json_ json_t *body = json_pack("{s:s}", "common_name", common_name);
        int r;

        if (!body || asprintf(&p, "%s/%s/%s", mount, csr_pem ? "sign" : "issue", role) < 0)
                return -ENOMEM;
        if ((alt_names && *alt_names && json_object_set_new(body, "alt_names", json_string(alt_names)) < 0) ||
            (ip_sans && *ip_sans && json_object_set_new(body, "ip_sans", json_string(ip_sans)) < 0) ||
            (ttl && json_object_set_new(body, "ttl", json_string(ttl)) < 0) ||
            (csr_pem && json_object_set_new(body, "csr", json_string(csr_pem)) < 0))
                return -ENOMEM;
        r = vault_call_json(v, "POST", p, body, &reply, err);
        if (r < 0)
                return r;
        r = reply ? vault_parse_pki(reply, ret) : -EBADMSG;
        if (r == -EBADMSG && err)
                buf_printf(err, "POST %s/v1/%s: reply without a certificate", v->addr, p);
        if (r >= 0 && !csr_pem && !ret->private_key) {
                pki_bundle_done(ret);
                if (err)
                        buf_printf(err, "POST %s/v1/%s: reply without a private key", v->addr, p);
                return -EBADMSG;
        }
        return r;
}

int vault_health(vault *v, buf *err) {
        _cleanup_json_ json_t *reply = NULL;
        int r = vault_call(v, "GET", "sys/health?standbyok=true", NULL, &reply, err);
        if (r < 0)
                return r;
        if (!reply || !json_path_bool(reply, "initialized") || json_path_bool(reply, "sealed")) {
                if (err)
                        buf_printf(err, "GET %s/v1/sys/health: not initialized or sealed", v->addr);
                return -EIO;
        }
        return 0;
}
