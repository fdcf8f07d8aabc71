/* Exoscale API v2 client, see exoapi.h and protocols.md §1-2. */
#include "exoapi.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto.h"
#include "exoscale.h"
#include "http.h"
#include "io-util.h"
#include "json.h"
#include "parse-util.h"
#include "time-util.h"

#define EXPIRY_SECONDS 600             /* as egoscale: now + 10 min */
#define REQUEST_TIMEOUT_MS 30000
#define REQUEST_DEADLINE_MS 120000     /* retries of one idempotent request */
#define RESPONSE_MAX (16u * 1024u * 1024u)
#define ERROR_TEXT_MAX 512
#define POLL_ERRORS_MAX 5
#define CREDENTIALS_FILE_MAX (64u * 1024u)

struct exoapi {
        char *key;
        char *secret;
        char *zone;
        char *endpoint;                /* template, may contain "{zone}" */
        long poll_base_ms;
        long operation_timeout_ms;
        int64_t clock_offset;
        const volatile sig_atomic_t *cancel;
        buf error;
};

void exoapi_credentials_done(exoapi_credentials *c) {
        free(c->key);
        free_secret(c->secret);
        *c = (exoapi_credentials){};
}

int exoapi_credentials_from_env(exoapi_credentials *ret, buf *err) {
        const char *key = getenv("EXOSCALE_API_KEY"), *secret = getenv("EXOSCALE_API_SECRET");

        if (!key || !*key || !secret || !*secret) {
                buf_clear(err);
                (void) buf_printf(err, "%s is not set", !key || !*key ? "EXOSCALE_API_KEY" : "EXOSCALE_API_SECRET");
                return -ENOKEY;
        }
        exoapi_credentials c = { .key = strdup(key), .secret = strdup(secret) };
        if (!c.key || !c.secret) {
                exoapi_credentials_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int credentials_parse(const char *path, char *text, exoapi_credentials *ret, buf *err) {
        exoapi_credentials c = {};
        unsigned line = 0;
        int r;

        for (char *p = text; p; ) {
                char *nl = strchr(p, '\n');
                if (nl)
                        *nl = 0;
                line++;
                char *l = parse_strip(p);
                p = nl ? nl + 1 : NULL;
                if (!*l || *l == '#')
                        continue;
                char *eq = strchr(l, '=');
                if (!eq) {
                        (void) buf_printf(err, "%s:%u: expected \"key = value\"", path, line);
                        r = -EBADMSG;
                        goto fail;
                }
                *eq = 0;
                char *k = parse_strip(l), *v = parse_strip(eq + 1), **slot;
                if (streq(k, "api_key"))
                        slot = &c.key;
                else if (streq(k, "api_secret"))
                        slot = &c.secret;
                else {
                        /* Not echoed: a mangled line may hold (part of) the secret. */
                        (void) buf_printf(err, "%s:%u: unknown key (expected api_key or api_secret)",
                                          path, line);
                        r = -EBADMSG;
                        goto fail;
                }
                if (*slot || !*v) {
                        (void) buf_printf(err, "%s:%u: %s %s", path, line, k, *slot ? "given twice" : "is empty");
                        r = -EBADMSG;
                        goto fail;
                }
                *slot = strdup(v);
                if (!*slot) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (!c.key || !c.secret) {
                (void) buf_printf(err, "%s: %s is missing", path, !c.key ? "api_key" : "api_secret");
                r = -EBADMSG;
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        exoapi_credentials_done(&c);
        return r;
}

int exoapi_credentials_from_file(const char *path, exoapi_credentials *ret, buf *err) {
        _cleanup_close_ int fd = -1;
        buf text = BUF_INIT(CREDENTIALS_FILE_MAX);
        struct stat st;
        int r;

        buf_clear(err);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = negative_errno();
                (void) buf_printf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        if (st.st_mode & 077) {
                (void) buf_printf(err, "%s is accessible by group or others (mode %04o); it holds the API secret: chmod 600 it",
                                  path, (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        for (;;) {
                char chunk[4096];
                ssize_t n = loop_read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        r = (int) n;
                        (void) buf_printf(err, "%s: %s", path, strerror(-r));
                        goto out;
                }
                if (n == 0)
                        break;
                r = buf_append(&text, chunk, (size_t) n);
                explicit_bzero(chunk, sizeof(chunk));
                if (r < 0) {
                        (void) buf_printf(err, "%s: %s", path, r == -ENOBUFS ? "file too large" : strerror(-r));
                        goto out;
                }
        }
        r = credentials_parse(path, text.data ? text.data : (char[]){ 0 }, ret, err);
out:
        buf_free_secret(&text);
        return r;
}

int exoapi_new(const exoapi_credentials *creds, const char *zone, exoapi **ret) {
        if (!creds->key || !*creds->key || !creds->secret || !*creds->secret || !zone || !*zone)
                return -EINVAL;
        exoapi *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->key = strdup(creds->key);
        c->secret = strdup(creds->secret);
        c->zone = strdup(zone);
        c->endpoint = strdup(EXOAPI_DEFAULT_ENDPOINT);
        c->poll_base_ms = 3000;
        c->operation_timeout_ms = 3600 * 1000L;
        if (!c->key || !c->secret || !c->zone || !c->endpoint) {
                exoapi_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void exoapi_free(exoapi *c) {
        if (!c)
                return;
        free(c->key);
        free_secret(c->secret);
        free(c->zone);
        free(c->endpoint);
        buf_free(&c->error);
        free(c);
}

int exoapi_set_endpoint(exoapi *c, const char *url_template) {
        return free_and_strdup(&c->endpoint, url_template);
}

int exoapi_set_zone(exoapi *c, const char *zone) {
        return free_and_strdup(&c->zone, zone);
}

const char *exoapi_zone(const exoapi *c) {
        return c->zone;
}

void exoapi_set_poll_interval(exoapi *c, long base_ms) {
        c->poll_base_ms = base_ms > 0 ? base_ms : 3000;
}

void exoapi_set_operation_timeout(exoapi *c, long timeout_ms) {
        c->operation_timeout_ms = timeout_ms;
}

void exoapi_set_cancel(exoapi *c, const volatile sig_atomic_t *cancel) {
        c->cancel = cancel;
}

void exoapi_set_clock_offset(exoapi *c, int64_t seconds) {
        c->clock_offset = seconds;
}

const char *exoapi_error(const exoapi *c) {
        return c->error.data ? c->error.data : "";
}

static int set_error(exoapi *c, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(exoapi *c, int r, const char *fmt, ...) {
        va_list ap;
        buf_clear(&c->error);
        va_start(ap, fmt);
        /* Best effort: failing to format the message must not mask the real error. */
        (void) buf_vprintf(&c->error, fmt, ap);
        va_end(ap);
        return r;
}

/* Append one part of an error message, skipping empty ones and a repeat of the previous part
 * (some servers send the same text as "message" and "error"). */
static void message_add(buf *out, const char **last, const char *part) {
        if (!part || !*part || (*last && streq(*last, part)))
                return;
        (void) buf_printf(out, "%s%s", out->len ? ": " : "", part);
        *last = part;
}

char *exoapi_error_message(const char *body, size_t len) {
        _cleanup_json_ json_t *j = NULL;
        buf out = {};
        const char *last = NULL;

        if (len > 0 && json_parse(body, len, &j, NULL) >= 0 && json_is_object(j)) {
                static const char *const fields[] = { "message", "error", "title", "detail" };
                for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                        message_add(&out, &last, json_string_value(json_object_get(j, fields[i])));
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(j, "errors"), i, e) {
                        const char *detail = json_string_value(json_object_get(e, "detail"));
                        const char *location = json_string_value(json_object_get(e, "location"));
                        if (json_is_string(e))
                                message_add(&out, &last, json_string_value(e));
                        else if (detail && location) {
                                (void) buf_printf(&out, "%s%s: %s", out.len ? ": " : "", location, detail);
                                last = NULL;
                        } else
                                message_add(&out, &last, detail);
                }
        }
        if (out.len == 0 && len > 0)
                (void) buf_append(&out, body, len);

        /* One line, bounded: the text comes from the network and ends up in logs. */
        char *s = buf_steal(&out);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        if (n > ERROR_TEXT_MAX)
                n = ERROR_TEXT_MAX;
        s[n] = 0;
        for (size_t k = 0; k < n; k++)
                if ((unsigned char) s[k] < 0x20 || s[k] == 0x7f)
                        s[k] = ' ';
        while (n > 0 && s[n - 1] == ' ')
                s[--n] = 0;
        size_t lead = strspn(s, " ");
        memmove(s, s + lead, n - lead + 1);
        return s;
}

static char *endpoint_url(const exoapi *c) {
        buf out = {};
        const char *p = c->endpoint, *z;

        while ((z = strstr(p, "{zone}"))) {
                if (buf_append(&out, p, (size_t) (z - p)) < 0 || buf_puts(&out, c->zone) < 0)
                        goto fail;
                p = z + strlen("{zone}");
        }
        if (buf_puts(&out, p) < 0)
                goto fail;
        return buf_steal(&out);
fail:
        buf_free(&out);
        return NULL;
}

/* The path part of an absolute URL ("" if it has none). */
static const char *url_path(const char *url) {
        const char *p = strstr(url, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        return p ? p : "";
}

int exoapi_request(exoapi *c, const char *method, const char *path, const char *query,
                   json_t *body, json_t **ret) {
        _cleanup_free_ char *base = NULL, *url = NULL, *signed_path = NULL, *payload = NULL;
        _cleanup_free_ char *auth_header = NULL, *msg = NULL;
        _cleanup_buf_ buf auth = {}, err = {};
        http_response resp = {};
        const char *q = strempty(query);
        bool idempotent = !streq(method, "POST");
        int r;

        base = endpoint_url(c);
        if (!base || asprintf(&url, "%s%s%s%s", base, path, *q ? "?" : "", q) < 0 ||
            asprintf(&signed_path, "%s%s", url_path(base), path) < 0)
                return set_error(c, -ENOMEM, "out of memory");
        if (body) {
                payload = json_dumps(body, JSON_COMPACT);
                if (!payload)
                        return set_error(c, -ENOMEM, "%s %s: cannot serialize the request body", method, url);
        }
        size_t payload_len = payload ? strlen(payload) : 0;

        r = exo_sign(method, signed_path, q, payload, payload_len, c->key, c->secret,
                     (int64_t) time(NULL) + EXPIRY_SECONDS + c->clock_offset, &auth);
        if (r < 0)
                return set_error(c, r, "%s %s: cannot sign the request: %s", method, url, strerror(-r));
        if (asprintf(&auth_header, "Authorization: %s", auth.data) < 0)
                return set_error(c, -ENOMEM, "out of memory");

        char *headers[] = {
                auth_header,
                (char *) "Accept: application/json",
                (char *) "User-Agent: imgbuild",
                payload ? (char *) "Content-Type: application/json" : NULL,
                NULL,
        };
        http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = payload,
                .body_len = payload_len,
                .timeout_ms = REQUEST_TIMEOUT_MS,
                .max_body = RESPONSE_MAX,
                /* A POST that timed out may have created the resource: never send it twice. */
                .attempts = idempotent ? 5 : 1,
                .backoff_ms = 500,
                .deadline_ms = REQUEST_DEADLINE_MS,
                .cancel = c->cancel,
        };
        r = http_do(&req, &resp, &err);
        if (r < 0) {
                set_error(c, r, "%s", err.data ? err.data : url);
                goto out;
        }
        if (resp.status < 200 || resp.status >= 300) {
                msg = exoapi_error_message(resp.body.data, resp.body.len);
                r = set_error(c, http_status_to_errno(resp.status), "%s %s: HTTP %ld%s%s", method, url,
                              resp.status, msg && *msg ? ": " : "", strempty(msg));
                goto out;
        }
        if (ret) {
                _cleanup_buf_ buf perr = {};
                json_t *j = NULL;
                if (resp.body.len == 0)
                        j = json_null();
                else if (json_parse(resp.body.data, resp.body.len, &j, &perr) < 0) {
                        r = set_error(c, -EBADMSG, "%s %s: HTTP %ld: invalid JSON in response: %s",
                                      method, url, resp.status, strempty(perr.data));
                        goto out;
                }
                *ret = j;
        }
        r = 0;
out:
        http_response_free(&resp);
        return r;
}

int exoapi_operation_parse(json_t *op, exoapi_operation *ret) {
        static const char *const states[] = {
                [EXOAPI_OP_PENDING] = "pending",
                [EXOAPI_OP_SUCCESS] = "success",
                [EXOAPI_OP_FAILURE] = "failure",
                [EXOAPI_OP_TIMEOUT] = "timeout",
        };
        const char *id = json_path_string(op, "id"), *state = json_path_string(op, "state");

        if (!json_is_object(op) || !id || !*id || !state)
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(states); i++)
                if (streq(state, states[i])) {
                        *ret = (exoapi_operation){
                                .id = id,
                                .state = (exoapi_op_state) i,
                                .reason = json_path_string(op, "reason"),
                                .message = json_path_string(op, "message"),
                                .reference_id = json_path_string(op, "reference.id"),
                        };
                        return 0;
                }
        return -EBADMSG;
}

/* egoscale v3's pollInterval scaled to base b: b for the first 10 b, then rising linearly to
 * 20 b at 300 b (3 s, 30 s, 60 s and 15 min for b = 3 s), then 20 b. */
long exoapi_poll_interval_ms(long base, long elapsed) {
        if (elapsed < 10 * base)
                return base;
        long interval = base + (elapsed - 10 * base) * 19 / 290;
        return interval < 20 * base ? interval : 20 * base;
}

static int id_path(exoapi *c, const char *prefix, const char *id, const char *suffix, char **ret) {
        _cleanup_free_ char *escaped = NULL;

        if (!id || !*id)
                return set_error(c, -EINVAL, "empty id for %s", prefix);
        escaped = http_escape(id);
        if (!escaped || asprintf(ret, "%s%s%s", prefix, escaped, strempty(suffix)) < 0)
                return set_error(c, -ENOMEM, "out of memory");
        return 0;
}

int exoapi_wait_operation(exoapi *c, json_t *op, char **ret_reference_id) {
        _cleanup_json_ json_t *current = json_incref(op);
        _cleanup_free_ char *path = NULL;
        exoapi_operation o;
        unsigned errors = 0;
        long start = time_now_ms();
        int r;

        if (exoapi_operation_parse(current, &o) < 0)
                return set_error(c, -EBADMSG, "invalid operation object in the response");
        r = id_path(c, "/operation/", o.id, NULL, &path);
        if (r < 0)
                return r;
        while (o.state == EXOAPI_OP_PENDING) {
                long elapsed = time_now_ms() - start;
                if (elapsed >= c->operation_timeout_ms)
                        return set_error(c, -ETIME, "operation %s still pending after %ld s", o.id,
                                         elapsed / 1000);
                long wait = exoapi_poll_interval_ms(c->poll_base_ms, elapsed);
                if (wait > c->operation_timeout_ms - elapsed)
                        wait = c->operation_timeout_ms - elapsed;
                if (time_sleep_ms_cancellable(wait, c->cancel) < 0)
                        return set_error(c, -ECANCELED, "operation %s: cancelled while pending", o.id);

                json_t *next = NULL;
                r = exoapi_request(c, "GET", path, NULL, NULL, &next);
                if (r == -ECANCELED)
                        return r;
                if (r < 0) {
                        /* The error of the last poll stays in c->error. */
                        if (++errors >= POLL_ERRORS_MAX)
                                return r;
                        continue;
                }
                errors = 0;
                if (exoapi_operation_parse(next, &o) < 0) {
                        json_decref(next);
                        return set_error(c, -EBADMSG, "GET %s: invalid operation object", path);
                }
                json_decref(current);
                current = next;
        }
        if (o.state != EXOAPI_OP_SUCCESS) {
                buf_clear(&c->error);
                (void) buf_printf(&c->error, "operation %s %s", o.id,
                                  o.state == EXOAPI_OP_FAILURE ? "failed" : "timed out");
                if (o.reason && *o.reason)
                        (void) buf_printf(&c->error, ": %s", o.reason);
                if (o.message && *o.message)
                        (void) buf_printf(&c->error, ": %s", o.message);
                return o.state == EXOAPI_OP_FAILURE ? -EREMOTEIO : -ETIMEDOUT;
        }
        if (ret_reference_id) {
                if (!o.reference_id)
                        return set_error(c, -EBADMSG, "operation %s succeeded without a reference id", o.id);
                char *id = strdup(o.reference_id);
                if (!id)
                        return set_error(c, -ENOMEM, "out of memory");
                *ret_reference_id = id;
        }
        return 0;
}

/* Wrappers. */

/* Send a mutating request on prefix+ID+suffix and wait for its operation. */
static int mutate(exoapi *c, const char *method, const char *prefix, const char *id,
                  const char *suffix, json_t *body, char **ret_id) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *op = NULL;
        int r;

        if (id) {
                r = id_path(c, prefix, id, suffix, &path);
                if (r < 0)
                        return r;
        }
        r = exoapi_request(c, method, path ? path : prefix, NULL, body, &op);
        if (r < 0)
                return r;
        return exoapi_wait_operation(c, op, ret_id);
}

static int get_object(exoapi *c, const char *prefix, const char *id, json_t **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = id_path(c, prefix, id, NULL, &path);
        if (r < 0)
                return r;
        return exoapi_request(c, "GET", path, NULL, NULL, ret);
}

/* GET a list response and return its array field. */
static int get_list(exoapi *c, const char *path, const char *query, const char *field, json_t **ret) {
        _cleanup_json_ json_t *j = NULL;
        int r;

        r = exoapi_request(c, "GET", path, query, NULL, &j);
        if (r < 0)
                return r;
        json_t *list = json_object_get(j, field);
        if (!json_is_array(list))
                return set_error(c, -EBADMSG, "GET %s: response has no \"%s\" list", path, field);
        *ret = json_incref(list);
        return 0;
}

/* Bodies are built with json_pack's "*" modifiers, which leave out a key whose value is NULL;
 * these helpers return NULL for absent input. */
static json_t *id_refs(char *const *ids) {
        if (!ids || !ids[0])
                return NULL;
        json_t *a = json_array();
        for (size_t i = 0; a && ids[i]; i++)
                if (json_array_append_new(a, json_pack("{s:s}", "id", ids[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *name_ref(const char *name) {
        return name ? json_pack("{s:s}", "name", name) : NULL;
}

static json_t *labels_object(char *const *labels) {
        if (!labels || !labels[0])
                return NULL;
        json_t *o = json_object();
        for (size_t i = 0; o && labels[i]; i++) {
                const char *eq = strchr(labels[i], '=');
                _cleanup_free_ char *k = eq ? strndup(labels[i], (size_t) (eq - labels[i])) : strdup(labels[i]);
                if (!k || json_object_set_new(o, k, json_string(eq ? eq + 1 : "")) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

static int body_failed(exoapi *c, const char *what) {
        return set_error(c, -EINVAL, "cannot build the %s request (missing field?)", what);
}

/* POST a create request whose body (taken over; NULL when json_pack failed) gets "user-data",
 * base64 as the API wants it, when user_data is not NULL. Instances and instance pools share it. */
static int create_with_user_data(exoapi *c, const char *path, const char *what, json_t *body,
                                 const char *user_data, char **ret_id) {
        _cleanup_json_ json_t *b = body;
        if (!b)
                return body_failed(c, what);
        if (user_data) {
                _cleanup_free_ char *encoded = base64_encode(user_data, strlen(user_data));
                if (!encoded || json_object_set_new(b, "user-data", json_string(encoded)) < 0)
                        return set_error(c, -ENOMEM, "out of memory");
        }
        return mutate(c, "POST", path, NULL, NULL, b, ret_id);
}

bool exoapi_is_id(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++)
                if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        return true;
}

int exoapi_instance_type_id(exoapi *c, const char *ref, char **ret_id) {
        _cleanup_json_ json_t *reply = NULL;
        json_t *t;
        size_t i;
        int r;

        if (exoapi_is_id(ref))
                return (*ret_id = strdup(ref)) ? 0 : -ENOMEM;
        r = exoapi_request(c, "GET", "/instance-type", NULL, NULL, &reply);
        if (r < 0)
                return r;
        json_array_foreach(json_object_get(reply, "instance-types"), i, t) {
                _cleanup_free_ char *name = NULL;
                if (asprintf(&name, "%s.%s", strempty(json_path_string(t, "family")),
                             strempty(json_path_string(t, "size"))) < 0)
                        return -ENOMEM;
                if (streq(name, ref) && json_path_string(t, "id"))
                        return (*ret_id = strdup(json_path_string(t, "id"))) ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int exoapi_instance_create(exoapi *c, const exoapi_instance_spec *spec, char **ret_id) {
        json_t *body = json_pack("{s:s*, s:{s:s}, s:{s:s}, s:I, s:o*, s:o*, s:o*}",
                         "name", spec->name,
                         "instance-type", "id", spec->instance_type_id,
                         "template", "id", spec->template_id,
                         "disk-size", (json_int_t) spec->disk_size_gb,
                         "security-groups", id_refs(spec->security_group_ids),
                         "ssh-key", name_ref(spec->ssh_key),
                         "labels", labels_object(spec->labels));
        return create_with_user_data(c, "/instance", "instance create", body, spec->user_data, ret_id);
}

int exoapi_instance_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/instance/", id, ret);
}

int exoapi_instance_list_by_pool(exoapi *c, const char *pool_id, json_t **ret) {
        _cleanup_free_ char *escaped = http_escape(pool_id), *query = NULL;

        if (!escaped || asprintf(&query, "manager-id=%s&manager-type=instance-pool", escaped) < 0)
                return set_error(c, -ENOMEM, "out of memory");
        return get_list(c, "/instance", query, "instances", ret);
}

int exoapi_instance_stop(exoapi *c, const char *id) {
        return mutate(c, "PUT", "/instance/", id, ":stop", NULL, NULL);
}

int exoapi_instance_start(exoapi *c, const char *id) {
        /* The schema asks for a JSON object (egoscale sends {}); a bare PUT is refused. */
        _cleanup_json_ json_t *body = json_object();
        if (!body)
                return body_failed(c, "instance start");
        return mutate(c, "PUT", "/instance/", id, ":start", body, NULL);
}

int exoapi_instance_delete(exoapi *c, const char *id) {
        return mutate(c, "DELETE", "/instance/", id, NULL, NULL, NULL);
}

int exoapi_snapshot_create(exoapi *c, const char *instance_id, char **ret_id) {
        return mutate(c, "POST", "/instance/", instance_id, ":create-snapshot", NULL, ret_id);
}

int exoapi_snapshot_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/snapshot/", id, ret);
}

int exoapi_snapshot_export(exoapi *c, const char *id, json_t **ret_snapshot) {
        _cleanup_free_ char *snapshot_id = NULL;
        int r;

        /* As egoscale's ExportSnapshot: the URL and checksum are on the snapshot afterwards. */
        r = mutate(c, "POST", "/snapshot/", id, ":export", NULL, &snapshot_id);
        if (r < 0)
                return r;
        return exoapi_snapshot_get(c, snapshot_id, ret_snapshot);
}

int exoapi_snapshot_promote(exoapi *c, const char *id, const char *template_name,
                            const char *default_user, char **ret_template_id) {
        _cleanup_json_ json_t *body = json_pack("{s:s, s:s*}", "name", template_name,
                                                "default-user", default_user);
        if (!body)
                return body_failed(c, "snapshot promote");
        return mutate(c, "POST", "/snapshot/", id, ":promote", body, ret_template_id);
}

int exoapi_template_register(exoapi *c, const exoapi_template_spec *spec, char **ret_id) {
        _cleanup_json_ json_t *body = json_pack(
                "{s:s, s:s, s:s, s:b, s:b, s:s*, s:s*, s:s*}",
                "name", spec->name,
                "url", spec->url,
                "checksum", spec->checksum,
                "password-enabled", spec->password_enabled,
                "ssh-key-enabled", spec->ssh_key_enabled,
                "boot-mode", spec->boot_mode,
                "default-user", spec->default_user,
                "description", spec->description);
        if (!body)
                return body_failed(c, "template register");
        return mutate(c, "POST", "/template", NULL, NULL, body, ret_id);
}

int exoapi_template_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/template/", id, ret);
}

int exoapi_template_copy(exoapi *c, const char *id, const char *target_zone, char **ret_id) {
        _cleanup_json_ json_t *body = json_pack("{s:{s:s}}", "target-zone", "name", target_zone);
        if (!body)
                return body_failed(c, "template copy");
        return mutate(c, "POST", "/template/", id, NULL, body, ret_id);
}

int exoapi_template_delete(exoapi *c, const char *id) {
        return mutate(c, "DELETE", "/template/", id, NULL, NULL, NULL);
}

int exoapi_template_list_private(exoapi *c, json_t **ret) {
        return get_list(c, "/template", "visibility=private", "templates", ret);
}

int exoapi_ssh_key_create(exoapi *c, const char *name, const char *public_key) {
        _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "name", name, "public-key", public_key);
        if (!body)
                return body_failed(c, "ssh-key create");
        return mutate(c, "POST", "/ssh-key", NULL, NULL, body, NULL);
}

int exoapi_ssh_key_delete(exoapi *c, const char *name) {
        return mutate(c, "DELETE", "/ssh-key/", name, NULL, NULL, NULL);
}

int exoapi_security_group_create(exoapi *c, const char *name, const char *description,
                                 char **ret_id) {
        _cleanup_json_ json_t *body = json_pack("{s:s, s:s*}", "name", name, "description", description);
        if (!body)
                return body_failed(c, "security-group create");
        return mutate(c, "POST", "/security-group", NULL, NULL, body, ret_id);
}

int exoapi_security_group_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/security-group/", id, ret);
}

int exoapi_security_group_delete(exoapi *c, const char *id) {
        return mutate(c, "DELETE", "/security-group/", id, NULL, NULL, NULL);
}

int exoapi_security_group_add_rule(exoapi *c, const char *sg_id, const exoapi_sg_rule *rule) {
        _cleanup_json_ json_t *body = json_pack(
                "{s:s, s:s, s:s*, s:o*, s:s*}",
                "flow-direction", rule->flow_direction,
                "protocol", rule->protocol,
                "network", rule->network,
                "security-group", rule->security_group_id ? json_pack("{s:s}", "id", rule->security_group_id) : NULL,
                "description", rule->description);
        if (!body ||
            (rule->start_port && json_object_set_new(body, "start-port", json_integer(rule->start_port)) < 0) ||
            (rule->end_port && json_object_set_new(body, "end-port", json_integer(rule->end_port)) < 0))
                return body_failed(c, "security-group rule");
        return mutate(c, "POST", "/security-group/", sg_id, "/rules", body, NULL);
}

int exoapi_pool_create(exoapi *c, const exoapi_pool_spec *spec, char **ret_id) {
        if (spec->instance_prefix && (!spec->instance_prefix[0] || strlen(spec->instance_prefix) > EXOAPI_INSTANCE_PREFIX_MAX))
                return set_error(c, -EINVAL, "instance-pool create: instance-prefix '%s' must be 1 to %d characters",
                                 spec->instance_prefix, EXOAPI_INSTANCE_PREFIX_MAX);
        json_t *body = json_pack("{s:s, s:{s:s}, s:{s:s}, s:I, s:I, s:s*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*}",
                         "name", spec->name,
                         "instance-type", "id", spec->instance_type_id,
                         "template", "id", spec->template_id,
                         "size", (json_int_t) spec->size,
                         "disk-size", (json_int_t) spec->disk_size_gb,
                         "instance-prefix", spec->instance_prefix,
                         "security-groups", id_refs(spec->security_group_ids),
                         "private-networks", id_refs(spec->private_network_ids),
                         "elastic-ips", id_refs(spec->elastic_ip_ids),
                         "anti-affinity-groups", id_refs(spec->anti_affinity_group_ids),
                         "ssh-key", name_ref(spec->ssh_key),
                         "labels", labels_object(spec->labels));
        return create_with_user_data(c, "/instance-pool", "instance-pool create", body, spec->user_data, ret_id);
}

int exoapi_pool_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/instance-pool/", id, ret);
}

int exoapi_pool_list(exoapi *c, json_t **ret) {
        return get_list(c, "/instance-pool", NULL, "instance-pools", ret);
}

/* [{field: item.field}, ...] for the items of list that have it, or NULL if none do. */
static json_t *refs_of(json_t *list, const char *field) {
        json_t *refs = NULL, *item;
        size_t i;

        json_array_foreach(list, i, item) {
                const char *v = json_string_value(json_object_get(item, field));
                if (!v)
                        continue;
                if (!refs && !(refs = json_array()))
                        return NULL;
                if (json_array_append_new(refs, json_pack("{s:s}", field, v)) < 0) {
                        json_decref(refs);
                        return NULL;
                }
        }
        return refs;
}

int exoapi_pool_update(exoapi *c, const char *id, json_t *changes) {
        static const char *const id_lists[] = {
                "anti-affinity-groups", "elastic-ips", "private-networks", "security-groups",
        };
        _cleanup_json_ json_t *pool = NULL, *body = NULL;
        int r;

        r = exoapi_pool_get(c, id, &pool);
        if (r < 0)
                return r;
        body = json_object();
        if (!body)
                return set_error(c, -ENOMEM, "out of memory");
        for (size_t i = 0; i < ELEMENTSOF(id_lists); i++) {
                json_t *refs = refs_of(json_object_get(pool, id_lists[i]), "id");
                if (refs && json_object_set_new(body, id_lists[i], refs) < 0)
                        return set_error(c, -ENOMEM, "out of memory");
        }
        /* ssh-keys supersedes ssh-key (which then names its first entry); send one of them. */
        json_t *keys = refs_of(json_object_get(pool, "ssh-keys"), "name");
        const char *key = json_path_string(pool, "ssh-key.name");
        const char *target = json_path_string(pool, "deploy-target.id");
        if ((keys && json_object_set_new(body, "ssh-keys", keys) < 0) ||
            (!keys && key && json_object_set_new(body, "ssh-key", name_ref(key)) < 0) ||
            (target && json_object_set_new(body, "deploy-target", json_pack("{s:s}", "id", target)) < 0) ||
            json_object_update(body, changes) < 0)
                return set_error(c, -ENOMEM, "out of memory");
        return mutate(c, "PUT", "/instance-pool/", id, NULL, body, NULL);
}

int exoapi_pool_scale(exoapi *c, const char *id, uint64_t size) {
        _cleanup_json_ json_t *body = json_pack("{s:I}", "size", (json_int_t) size);
        if (!body)
                return body_failed(c, "instance-pool scale");
        return mutate(c, "PUT", "/instance-pool/", id, ":scale", body, NULL);
}

int exoapi_pool_evict(exoapi *c, const char *id, char *const *instance_ids) {
        _cleanup_json_ json_t *ids = json_array(), *body = NULL;

        for (size_t i = 0; ids && instance_ids && instance_ids[i]; i++)
                if (json_array_append_new(ids, json_string(instance_ids[i])) < 0)
                        return set_error(c, -ENOMEM, "out of memory");
        body = json_pack("{s:O}", "instances", ids);
        if (!body)
                return body_failed(c, "instance-pool evict");
        int r = mutate(c, "PUT", "/instance-pool/", id, ":evict", body, NULL);
        if (r != -EINVAL)
                return r;
        /* Evicting is done when none of them is a member any more: a retry after a reply that
         * was lost (the API acted) is refused as "not a member", and that is success. */
        _cleanup_json_ json_t *members = NULL;
        if (exoapi_instance_list_by_pool(c, id, &members) < 0)
                return r;
        for (size_t i = 0; instance_ids && instance_ids[i]; i++) {
                size_t j;
                json_t *m;
                json_array_foreach(members, j, m)
                        if (streq(strempty(json_string_value(json_object_get(m, "id"))), instance_ids[i]))
                                return r;
        }
        return 0;
}

int exoapi_pool_delete(exoapi *c, const char *id) {
        return mutate(c, "DELETE", "/instance-pool/", id, NULL, NULL, NULL);
}

int exoapi_private_network_get(exoapi *c, const char *id, json_t **ret) {
        return get_object(c, "/private-network/", id, ret);
}
