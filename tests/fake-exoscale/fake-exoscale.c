/* A fake Exoscale API v2 server for tests (test code, not product). It keeps an in-memory model
 * of the resources lib/exoapi uses, verifies every request's EXO2-HMAC-SHA256 signature and
 * expiry with exo_verify() (403 {"message": ...} otherwise), answers 404 for unknown ids, and
 * makes every mutating call an operation that stays "pending" for a few polls. It reproduces the
 * instance-pool pitfall of protocols.md §2.5: a PUT /instance-pool/ID that omits a list field
 * clears it.
 *
 * Usage: EXOSCALE_API_KEY=... EXOSCALE_API_SECRET=... fake-exoscale [--pending-polls N]
 *        [--member-hook CMD] [--seed FILE]   (see member_hook_create() and fake_seed())
 * Listens on 127.0.0.1 (ephemeral port, printed as one line on stdout) until SIGTERM/SIGINT.
 * Zones are addressed by a path prefix, the client endpoint being http://127.0.0.1:PORT/{zone}/v2.
 *
 * Test knob (unsigned, outside the API): POST /_fake/fail?command=C&reason=R&message=M makes
 * the next operation with command C (e.g. "export-snapshot") fail with that reason and message,
 * changing nothing; reason "lost-reply" (evict) makes the change and answers 503 instead.
 * POST /_fake/hold?command=C keeps every later operation with command C pending for as long as
 * the fake runs (the change itself is made), and GET /_fake/held answers {"polls": N}, the polls
 * of held operations answered so far (a client is waiting once N > 0). GET /_fake/state returns
 * the whole model (zones and global resources).
 *
 * Under /sos/{zone}/ it is also an S3-style object store that checks SigV4 signatures
 * (fake-sos.h; --sos-bucket NAME, --sos-min-part-size BYTES), from whose presigned URLs templates
 * are registered. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>

#include "crypto.h"
#include "exoapi.h"
#include "exoscale.h"
#include "fake-sos.h"
#include "http-server.h"
#include "json.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"

static const char *const zone_names[] = { "ch-gva-2", "de-fra-1", "at-vie-1" };
static const char *const sos_zones[] = { "ch-gva-2", "de-fra-1", "at-vie-1", NULL };

/* The instance types offered in every zone (fixed ids, like the real ones). */
#define TYPE_SMALL "b6cd1ff5-3a2f-4e9d-a4d1-8988c1191fe8"
#define TYPE_MEDIUM "b6e9d1e8-89fc-4db3-aaa4-9b4c5b1d0844"

typedef struct fake {
        exoapi_credentials creds;
        json_t *zones;         /* zone -> {kind -> {id -> object}} for zonal kinds */
        json_t *global;        /* kind -> {id -> object}: security groups and ssh keys */
        json_t *operations;    /* id -> {zone, op, polls, final} */
        json_t *failures;      /* command -> {reason, message}: armed by the test knob */
        json_t *held;          /* command -> true: its operations stay pending (test knob) */
        json_int_t held_polls; /* polls of held operations answered */
        json_int_t pending_polls;
        const char *member_hook; /* --member-hook CMD, or NULL */
        json_t *hooks;         /* instance id -> {zone, pid}: create hooks still running */
        fake_sos *sos;         /* the object store under /sos/{zone}/ (fake-sos.h) */
} fake;

/* One API call being served. */
typedef struct call {
        fake *f;
        const char *zone;
        json_t *body;          /* parsed request body, NULL when there is none */
        http_server_response *resp;
} call;

static int reply(call *c, int status, json_t *j /* stolen */) {
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text)
                return -ENOMEM;
        c->resp->status = status;
        buf_clear(&c->resp->body);
        int r = buf_puts(&c->resp->body, text);
        free(text);
        return r;
}

static int reply_copy(call *c, json_t *j) {
        return reply(c, 200, json_deep_copy(j));
}

static int fail(call *c, int status, const char *fmt, ...) _printf_(3, 4);
static int fail(call *c, int status, const char *fmt, ...) {
        char *msg;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        json_t *j = json_pack("{s:s}", "message", msg);
        free(msg);
        return reply(c, status, j);
}

static bool is_global(const char *kind) {
        return streq(kind, "security-group") || streq(kind, "ssh-key");
}

/* The id -> object map of one kind, in the call's zone (or global). */
static json_t *store(call *c, const char *kind) {
        json_t *s = is_global(kind) ? c->f->global : json_object_get(c->f->zones, c->zone);
        return json_object_get(s, kind);
}

static json_t *lookup(call *c, const char *kind, const char *id) {
        return id ? json_object_get(store(c, kind), id) : NULL;
}

/* Reply with a new operation. failure (borrowed; NULL for success) gives its final state. */
static int operation(call *c, const char *command, const char *reference_id, json_t *failure) {
        char id[UUID_STRING_SIZE];
        random_uuid(id);
        json_t *op = json_pack("{s:s, s:s, s:{s:s*, s:s}}", "id", id, "state", "pending",
                               "reference", "id", reference_id, "command", command);
        json_t *final = failure ? json_pack("{s:s, s:O, s:O}", "state", "failure",
                                            "reason", json_object_get(failure, "reason"),
                                            "message", json_object_get(failure, "message"))
                                : json_pack("{s:s}", "state", "success");
        /* polls -1: held, pending until the fake stops */
        json_int_t polls = json_object_get(c->f->held, command) ? -1 : c->f->pending_polls;
        json_t *entry = json_pack("{s:s, s:o, s:I, s:o}", "zone", c->zone, "op", op,
                                  "polls", polls, "final", final);
        if (!entry || json_object_set_new(c->f->operations, id, entry) < 0)
                return -ENOMEM;
        return reply_copy(c, op);
}

/* If the test armed a failure for command, reply with an operation that will fail and return
 * true: the caller then changes nothing. */
static bool armed_failure(call *c, const char *command, int *r) {
        json_t *failure = json_object_get(c->f->failures, command);
        if (!failure || streq(strempty(json_string_value(json_object_get(failure, "reason"))), "lost-reply"))
                return false;
        json_incref(failure);
        json_object_del(c->f->failures, command);
        *r = operation(c, command, NULL, failure);
        json_decref(failure);
        return true;
}

/* If the test armed reason "lost-reply" for command: the change is made but its reply is lost
 * (answered 503), as when a connection drops after the API acted. */
static bool reply_lost(call *c, const char *command) {
        json_t *failure = json_object_get(c->f->failures, command);
        if (!failure || !streq(strempty(json_string_value(json_object_get(failure, "reason"))), "lost-reply"))
                return false;
        json_object_del(c->f->failures, command);
        return true;
}

static const char *body_string(call *c, const char *path) {
        return json_path_string(c->body, path);
}

/* Every {id} in list (a body field) must name an existing object of kind. */
static bool refs_exist(call *c, const char *field, const char *kind, int *r) {
        json_t *list = json_object_get(c->body, field), *item;
        size_t i;

        if (list && !json_is_array(list)) {
                *r = fail(c, 400, "%s: expected a list", field);
                return false;
        }
        json_array_foreach(list, i, item) {
                const char *id = json_string_value(json_object_get(item, "id"));
                if (!lookup(c, kind, id)) {
                        *r = fail(c, 404, "%s %s not found", kind, strempty(id));
                        return false;
                }
        }
        return true;
}

static bool valid_user_data(call *c, int *r) {
        const char *ud = body_string(c, "user-data");
        uint8_t *raw = NULL;
        if (!ud)
                return true;
        if (strlen(ud) > 32768 || base64_decode(ud, &raw, NULL) < 0) {
                *r = fail(c, 400, "user-data: must be base64, at most 32768 characters");
                return false;
        }
        free(raw);
        return true;
}

/* Check what an instance or pool body refers to. */
static bool valid_compute_body(call *c, int *r) {
        const char *type = body_string(c, "instance-type.id");
        const char *template_id = body_string(c, "template.id");
        json_int_t disk = json_integer_value(json_object_get(c->body, "disk-size"));
        const char *key = body_string(c, "ssh-key.name");

        if (!type || !template_id || !json_is_integer(json_object_get(c->body, "disk-size"))) {
                *r = fail(c, 400, "instance-type, template and disk-size are required");
                return false;
        }
        if (!streq(type, TYPE_SMALL) && !streq(type, TYPE_MEDIUM)) {
                *r = fail(c, 404, "instance-type %s not found", type);
                return false;
        }
        if (!lookup(c, "template", template_id)) {
                *r = fail(c, 404, "template %s not found", template_id);
                return false;
        }
        if (disk < 10 || disk > 51200) {
                *r = fail(c, 400, "disk-size: must be between 10 and 51200");
                return false;
        }
        if (key && !lookup(c, "ssh-key", key)) {
                *r = fail(c, 404, "ssh-key %s not found", key);
                return false;
        }
        return refs_exist(c, "security-groups", "security-group", r) && valid_user_data(c, r);
}

static void copy_fields(json_t *dst, json_t *src, const char *const *fields, size_t n) {
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_object_get(src, fields[i]);
                if (v)
                        json_object_set(dst, fields[i], v);
        }
}

/* ---- what cloud builds (builder/provider/exoscale/provider-exoscale.c) need beyond the above ---- */

/* Every instance is reachable at 127.0.0.1: the test's sshd stands in for it. */
static void instance_assign_public_ip(json_t *inst) {
        json_object_set_new(inst, "public-ip", json_string("127.0.0.1"));
}

/* GET /security-group and GET /snapshot (how gc finds a resource it journaled by name). */
static int kind_list(call *c, const char *kind) {
        _cleanup_free_ char *field = NULL;
        json_t *list = json_array(), *o;
        const char *id;

        if (asprintf(&field, "%ss", kind) < 0)
                return -ENOMEM;
        json_object_foreach(store(c, kind), id, o)
                json_array_append(list, o);
        return reply(c, 200, json_pack("{s:o}", field, list));
}

static int snapshot_delete(call *c, const char *id) {
        int r;

        if (armed_failure(c, "delete-snapshot", &r))
                return r;
        json_object_del(store(c, "snapshot"), id);
        return operation(c, "delete-snapshot", id, NULL);
}

/* GET /_fake/ssh-keys (unsigned): every registered public key, one per line, for the test's
 * sshd (AuthorizedKeysCommand). */
static int ssh_keys_text(call *c) {
        json_t *key;
        const char *name;

        c->resp->content_type = "text/plain";
        buf_clear(&c->resp->body);
        json_object_foreach(json_object_get(c->f->global, "ssh-key"), name, key) {
                int r = buf_printf(&c->resp->body, "%s\n", strempty(json_path_string(key, "public-key")));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* GET /_fake/state (unsigned): the whole model, {"zones": ..., "global": ...}, so a test can
 * check what a client left behind. */
static int state_dump(call *c) {
        return reply(c, 200, json_pack("{s:O, s:O, s:o}", "zones", c->f->zones, "global", c->f->global,
                                       "sos", fake_sos_state(c->f->sos)));
}

/* ---- private networks and leases ---- */

static uint32_t ipv4(const char *s) {
        struct in_addr a = {};
        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return 0;
        return ntohl(a.s_addr);
}

/* Give instance_id the lowest free address of a managed network. */
static int lease_add(call *c, const char *network_id, const char *instance_id) {
        json_t *pn = lookup(c, "private-network", network_id), *leases, *l;
        uint32_t start = ipv4(json_path_string(pn, "start-ip")), end = ipv4(json_path_string(pn, "end-ip"));
        size_t i;

        leases = json_object_get(pn, "leases");
        if (!start || !end)
                return 0; /* unmanaged: no DHCP leases */
        for (uint32_t ip = start; ip <= end; ip++) {
                bool used = false;
                json_array_foreach(leases, i, l)
                        used = used || ipv4(json_string_value(json_object_get(l, "ip"))) == ip;
                if (used)
                        continue;
                char text[INET_ADDRSTRLEN];
                struct in_addr a = { htonl(ip) };
                inet_ntop(AF_INET, &a, text, sizeof(text));
                return json_array_append_new(leases, json_pack("{s:s, s:s}", "instance-id", instance_id, "ip", text));
        }
        return -ENOSPC;
}

/* ---- member hook (--member-hook CMD): pool members as host processes ----
 *
 * Tests whose pool members must really run (a bootagent and its etcd) give a hook. When a pool
 * member instance is created the fake runs `CMD create INSTANCE-ID PRIVATE-IP POOL-ID ZONE`
 * without waiting (the hook's processes call back into this API); the instance is "starting"
 * until the hook exits, then "running" (exit status 0) or "error". When a member instance goes
 * away (scale down, evict, pool or instance delete) the fake runs `CMD delete INSTANCE-ID` and
 * waits for it. The hook's output goes to the fake's stderr. */

static const char *lease_ip(call *c, const char *instance_id) {
        const char *pn_id;
        json_t *pn, *l;
        size_t i;

        json_object_foreach(store(c, "private-network"), pn_id, pn)
                json_array_foreach(json_object_get(pn, "leases"), i, l)
                        if (streq(strempty(json_string_value(json_object_get(l, "instance-id"))), instance_id))
                                return json_string_value(json_object_get(l, "ip"));
        return NULL;
}

static void member_hook_create(call *c, json_t *inst, const char *id, const char *pool_id) {
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        pid_t pid;

        if (!c->f->member_hook)
                return;
        opts.stdout_fd = STDERR_FILENO;
        if (spawn_start(SPAWN_ARGV(c->f->member_hook, "create", id, strempty(lease_ip(c, id)), pool_id, c->zone),
                        &opts, &pid) < 0) {
                json_object_set_new(inst, "state", json_string("error"));
                return;
        }
        json_object_set_new(inst, "state", json_string("starting"));
        json_object_set_new(c->f->hooks, id, json_pack("{s:s, s:i}", "zone", c->zone, "pid", (int) pid));
}

/* Collect the create hooks that finished: their instance is now running (or broken). */
static void member_hooks_reap(fake *f) {
        const char *id;
        json_t *h, *tmp;

        json_object_foreach_safe(f->hooks, tmp, id, h) {
                int status;
                pid_t pid = (pid_t) json_integer_value(json_object_get(h, "pid"));
                if (waitpid(pid, &status, WNOHANG) == 0)
                        continue;
                json_t *zone = json_object_get(f->zones, strempty(json_path_string(h, "zone")));
                json_t *inst = json_object_get(json_object_get(zone, "instance"), id);
                if (inst)
                        json_object_set_new(inst, "state", json_string(WIFEXITED(status) && WEXITSTATUS(status) == 0
                                                                       ? "running" : "error"));
                json_object_del(f->hooks, id);
        }
}

static void member_hook_delete(call *c, const char *id) {
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        json_t *h = json_object_get(c->f->hooks, id);
        int status;

        if (!c->f->member_hook ||
            !streq(strempty(json_path_string(lookup(c, "instance", id), "manager.type")), "instance-pool"))
                return;
        /* A member deleted while it still boots: its create hook finishes first. */
        if (h) {
                (void) spawn_wait((pid_t) json_integer_value(json_object_get(h, "pid")), &status);
                json_object_del(c->f->hooks, id);
        }
        opts.stdout_fd = STDERR_FILENO;
        if (spawn_run(SPAWN_ARGV(c->f->member_hook, "delete", id), &opts, &status) < 0 || status != 0)
                log_warning("member hook delete %s failed", id);
}

static void instance_remove(call *c, const char *id) {
        const char *pn_id;
        json_t *pn, *l;
        size_t i;

        member_hook_delete(c, id);
        json_object_foreach(store(c, "private-network"), pn_id, pn) {
                json_t *leases = json_object_get(pn, "leases");
                json_array_foreach(leases, i, l)
                        if (streq(strempty(json_string_value(json_object_get(l, "instance-id"))), id)) {
                                json_array_remove(leases, i);
                                break;
                        }
        }
        json_object_del(store(c, "instance"), id);
}

/* ---- instances ---- */

static int instance_create(call *c) {
        static const char *const fields[] = { "name", "instance-type", "template", "disk-size",
                                              "security-groups", "ssh-key", "user-data", "labels" };
        char id[UUID_STRING_SIZE];
        int r;

        if (!valid_compute_body(c, &r) || armed_failure(c, "create-instance", &r))
                return r;
        random_uuid(id);
        json_t *inst = json_pack("{s:s, s:s}", "id", id, "state", "running");
        copy_fields(inst, c->body, fields, ELEMENTSOF(fields));
        instance_assign_public_ip(inst);
        json_object_set_new(store(c, "instance"), id, inst);
        return operation(c, "create-instance", id, NULL);
}

static int instance_list(call *c, const http_server_request *req) {
        _cleanup_free_ char *manager_id = http_server_query_param(req, "manager-id");
        _cleanup_free_ char *manager_type = http_server_query_param(req, "manager-type");
        json_t *list = json_array(), *inst;
        const char *id;

        json_object_foreach(store(c, "instance"), id, inst) {
                if (manager_id && !streq(manager_id, strempty(json_path_string(inst, "manager.id"))))
                        continue;
                if (manager_type && !streq(manager_type, strempty(json_path_string(inst, "manager.type"))))
                        continue;
                json_array_append(list, inst);
        }
        return reply(c, 200, json_pack("{s:o}", "instances", list));
}

static int instance_action(call *c, const char *method, json_t *inst, const char *id, const char *action) {
        int r;

        if (streq(method, "GET") && !action)
                return reply_copy(c, inst);
        if (streq(method, "DELETE") && !action) {
                if (armed_failure(c, "delete-instance", &r))
                        return r;
                instance_remove(c, id);
                return operation(c, "delete-instance", id, NULL);
        }
        if (streq(method, "PUT") && action && (streq(action, "stop") || streq(action, "start"))) {
                const char *command = streq(action, "stop") ? "stop-instance" : "start-instance";
                /* The API's schema: :start takes a JSON object (rescue-profile, optional). */
                if (streq(action, "start") && !json_is_object(c->body))
                        return fail(c, 400, "start-instance: the request body must be a JSON object");
                if (armed_failure(c, command, &r))
                        return r;
                json_object_set_new(inst, "state", json_string(streq(action, "stop") ? "stopped" : "running"));
                return operation(c, command, id, NULL);
        }
        if (streq(method, "POST") && action && streq(action, "create-snapshot")) {
                char sid[UUID_STRING_SIZE];
                if (armed_failure(c, "create-snapshot", &r))
                        return r;
                random_uuid(sid);
                json_object_set_new(store(c, "snapshot"), sid,
                                    json_pack("{s:s, s:O?, s:s, s:O?, s:{s:s}}", "id", sid,
                                              "name", json_object_get(inst, "name"), "state", "ready",
                                              "size", json_object_get(inst, "disk-size"),
                                              "instance", "id", id));
                return operation(c, "create-snapshot", sid, NULL);
        }
        return fail(c, 404, "no such endpoint");
}

/* ---- snapshots and templates ---- */

static json_t *template_new(call *c, const char *zone, char id[UUID_STRING_SIZE]) {
        random_uuid(id);
        json_t *t = json_pack("{s:s, s:s, s:[s], s:s}", "id", id, "visibility", "private",
                              "zones", zone, "boot-mode", "legacy");
        json_object_set_new(json_object_get(json_object_get(c->f->zones, zone), "template"), id, t);
        return t;
}

static int snapshot_action(call *c, const char *method, json_t *snap, const char *id, const char *action) {
        char tid[UUID_STRING_SIZE];
        int r;

        if (streq(method, "GET") && !action)
                return reply_copy(c, snap);
        if (streq(method, "DELETE") && !action)
                return snapshot_delete(c, id);
        if (streq(method, "POST") && action && streq(action, "export")) {
                char sum[SHA256_HEX_SIZE], *url;
                if (armed_failure(c, "export-snapshot", &r))
                        return r;
                /* The real checksum is the image's MD5; the fake has no image, so any 32 hex
                 * digits that register must match will do. */
                sha256_hex(id, strlen(id), sum);
                sum[32] = 0;
                if (asprintf(&url, "https://sos-%s.exo.io/fake-exports/%s.qcow2?signature=x", c->zone, id) < 0)
                        return -ENOMEM;
                json_object_set_new(snap, "state", json_string("exported"));
                json_object_set_new(snap, "export", json_pack("{s:s, s:s}", "presigned-url", url, "md5sum", sum));
                free(url);
                return operation(c, "export-snapshot", id, NULL);
        }
        if (streq(method, "POST") && action && streq(action, "promote")) {
                static const char *const fields[] = { "name", "description", "default-user",
                                                      "ssh-key-enabled", "password-enabled" };
                if (!body_string(c, "name"))
                        return fail(c, 400, "name is required");
                if (armed_failure(c, "promote-snapshot-to-template", &r))
                        return r;
                copy_fields(template_new(c, c->zone, tid), c->body, fields, ELEMENTSOF(fields));
                return operation(c, "promote-snapshot-to-template", tid, NULL);
        }
        return fail(c, 404, "no such endpoint");
}

/* Registration downloads the image: the fake accepts its own export URLs (in this zone) with
 * their checksum, and presigned URLs of its object store (fake_sos_fetch(): the signature is
 * checked as for any GET, the object's MD5 must be the checksum, the template gets its size);
 * otherwise it fails the operation the way a bad download would. */
static json_t *register_problem(call *c, json_int_t *ret_size) {
        const char *url = body_string(c, "url"), *checksum = body_string(c, "checksum");
        _cleanup_buf_ buf err = {};
        char md5[33];
        size_t size;
        json_t *snap;
        const char *id;

        if (startswith(strempty(url), "http://127.0.0.1:")) {
                if (fake_sos_fetch(c->f->sos, url, md5, &size, &err) < 0)
                        return json_pack("{s:s, s:s}", "reason", "incorrect", "message", strempty(err.data));
                if (strcasecmp(md5, checksum) != 0)
                        return json_pack("{s:s, s:s}", "reason", "incorrect", "message",
                                         "checksum mismatch: the downloaded file's MD5 differs");
                *ret_size = (json_int_t) size;
                return NULL;
        }
        json_object_foreach(store(c, "snapshot"), id, snap)
                if (streq(strempty(json_path_string(snap, "export.presigned-url")), url))
                        return streq(strempty(json_path_string(snap, "export.md5sum")), checksum)
                                       ? NULL
                                       : json_pack("{s:s, s:s}", "reason", "incorrect", "message", "checksum mismatch");
        return json_pack("{s:s, s:s}", "reason", "incorrect", "message", "cannot download the template URL");
}

static int template_register(call *c) {
        static const char *const fields[] = { "name", "url", "checksum", "password-enabled",
                                              "ssh-key-enabled", "boot-mode", "default-user",
                                              "description" };
        char id[UUID_STRING_SIZE];
        int r;

        if (!body_string(c, "name") || !body_string(c, "url") || !body_string(c, "checksum") ||
            !json_is_boolean(json_object_get(c->body, "password-enabled")) ||
            !json_is_boolean(json_object_get(c->body, "ssh-key-enabled")))
                return fail(c, 400, "name, url, checksum, password-enabled and ssh-key-enabled are required");
        const char *boot_mode = body_string(c, "boot-mode");
        if (json_object_get(c->body, "boot-mode") && (!boot_mode || (!streq(boot_mode, "legacy") && !streq(boot_mode, "uefi"))))
                return fail(c, 400, "boot-mode: must be legacy or uefi");
        if (armed_failure(c, "register-template", &r))
                return r;
        json_int_t size = -1;
        json_t *problem = register_problem(c, &size);
        if (problem) {
                r = operation(c, "register-template", NULL, problem);
                json_decref(problem);
                return r;
        }
        json_t *t = template_new(c, c->zone, id);
        copy_fields(t, c->body, fields, ELEMENTSOF(fields));
        /* For tests: what was registered, with the boot mode it got (legacy when none was sent). */
        log_info("registered template %s in %s with boot-mode %s", body_string(c, "name"), c->zone,
                 json_path_string(t, "boot-mode"));
        if (size >= 0)
                json_object_set_new(t, "size", json_integer(size));
        return operation(c, "register-template", id, NULL);
}

static int template_list(call *c, const http_server_request *req) {
        _cleanup_free_ char *visibility = http_server_query_param(req, "visibility");
        json_t *list = json_array(), *t;
        const char *id;

        json_object_foreach(store(c, "template"), id, t)
                if (streq(visibility ? visibility : "public", strempty(json_path_string(t, "visibility"))))
                        json_array_append(list, t);
        return reply(c, 200, json_pack("{s:o}", "templates", list));
}

static int template_action(call *c, const char *method, json_t *t, const char *id, const char *action) {
        int r;

        if (action)
                return fail(c, 404, "no such endpoint");
        if (streq(method, "GET"))
                return reply_copy(c, t);
        if (streq(method, "DELETE")) {
                if (armed_failure(c, "delete-template", &r))
                        return r;
                json_object_del(store(c, "template"), id);
                return operation(c, "delete-template", id, NULL);
        }
        if (streq(method, "POST")) {
                const char *target = body_string(c, "target-zone.name");
                char copy_id[UUID_STRING_SIZE];
                if (!target || !json_object_get(c->f->zones, target))
                        return fail(c, 400, "target-zone: unknown zone %s", strempty(target));
                if (armed_failure(c, "copy-template", &r))
                        return r;
                json_t *copy = template_new(c, target, copy_id);
                json_object_update_missing(copy, t);
                return operation(c, "copy-template", copy_id, NULL);
        }
        return fail(c, 404, "no such endpoint");
}

/* ---- security groups, ssh keys, private networks ---- */

static int security_group_create(call *c) {
        char id[UUID_STRING_SIZE];
        int r;

        if (!body_string(c, "name"))
                return fail(c, 400, "name is required");
        if (armed_failure(c, "create-security-group", &r))
                return r;
        random_uuid(id);
        json_object_set_new(store(c, "security-group"), id,
                            json_pack("{s:s, s:O, s:O?, s:[]}", "id", id, "name", json_object_get(c->body, "name"),
                                      "description", json_object_get(c->body, "description"), "rules"));
        return operation(c, "create-security-group", id, NULL);
}

static int security_group_add_rule(call *c, json_t *sg, const char *id) {
        static const char *const fields[] = { "flow-direction", "protocol", "start-port", "end-port",
                                              "network", "security-group", "description" };
        const char *direction = body_string(c, "flow-direction"), *protocol = body_string(c, "protocol");
        const char *network = body_string(c, "network"), *peer = body_string(c, "security-group.id");
        char rule_id[UUID_STRING_SIZE];
        int r;

        if (!direction || (!streq(direction, "ingress") && !streq(direction, "egress")) || !protocol)
                return fail(c, 400, "flow-direction (ingress|egress) and protocol are required");
        if (!!network == !!peer)
                return fail(c, 400, "exactly one of network and security-group is required");
        if (peer && !lookup(c, "security-group", peer))
                return fail(c, 404, "security-group %s not found", peer);
        if (armed_failure(c, "add-rule-to-security-group", &r))
                return r;
        random_uuid(rule_id);
        json_t *rule = json_pack("{s:s}", "id", rule_id);
        copy_fields(rule, c->body, fields, ELEMENTSOF(fields));
        json_array_append_new(json_object_get(sg, "rules"), rule);
        return operation(c, "add-rule-to-security-group", id, NULL);
}

static int ssh_key_create(call *c) {
        const char *name = body_string(c, "name");
        int r;

        if (!name || !body_string(c, "public-key"))
                return fail(c, 400, "name and public-key are required");
        if (lookup(c, "ssh-key", name))
                return fail(c, 409, "ssh-key %s already exists", name);
        if (armed_failure(c, "register-ssh-key", &r))
                return r;
        json_object_set_new(store(c, "ssh-key"), name, json_pack("{s:s, s:O}", "name", name, "public-key",
                                                                  json_object_get(c->body, "public-key")));
        return operation(c, "register-ssh-key", name, NULL);
}

static int private_network_create(call *c) {
        static const char *const fields[] = { "name", "description", "netmask", "start-ip", "end-ip" };
        char id[UUID_STRING_SIZE];
        int r;

        if (!body_string(c, "name"))
                return fail(c, 400, "name is required");
        if (armed_failure(c, "create-private-network", &r))
                return r;
        random_uuid(id);
        json_t *pn = json_pack("{s:s, s:[]}", "id", id, "leases");
        copy_fields(pn, c->body, fields, ELEMENTSOF(fields));
        json_object_set_new(store(c, "private-network"), id, pn);
        return operation(c, "create-private-network", id, NULL);
}

/* ---- instance pools ---- */

/* The list fields a PUT clears when it omits them (protocols.md §2.5). */
static const char *const pool_list_fields[] = { "anti-affinity-groups", "elastic-ips",
                                                "private-networks", "security-groups", "ssh-key",
                                                "ssh-keys", "deploy-target" };

static int pool_member_add(call *c, json_t *pool, const char *pool_id) {
        static const char *const fields[] = { "instance-type", "template", "disk-size",
                                              "security-groups", "private-networks", "ssh-key",
                                              "user-data" };
        char id[UUID_STRING_SIZE], name[128];
        json_t *pn;
        size_t i;
        int r;

        random_uuid(id);
        snprintf(name, sizeof(name), "%s-%.5s", strempty(json_path_string(pool, "instance-prefix")), id);
        json_t *inst = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "id", id, "name", name, "state", "running",
                                 "manager", "id", pool_id, "type", "instance-pool");
        copy_fields(inst, pool, fields, ELEMENTSOF(fields));
        json_object_set_new(store(c, "instance"), id, inst);
        json_array_foreach(json_object_get(pool, "private-networks"), i, pn) {
                r = lease_add(c, json_string_value(json_object_get(pn, "id")), id);
                if (r < 0)
                        return r;
        }
        member_hook_create(c, inst, id, pool_id);
        return 0;
}

static json_t *pool_members(call *c, const char *pool_id) {
        json_t *ids = json_array(), *inst;
        const char *id;

        json_object_foreach(store(c, "instance"), id, inst)
                if (streq(strempty(json_path_string(inst, "manager.id")), pool_id))
                        json_array_append_new(ids, json_string(id));
        return ids;
}

/* Add or remove members (the newest first) until the pool has size of them. */
static int pool_resize(call *c, json_t *pool, const char *pool_id, json_int_t size) {
        _cleanup_json_ json_t *ids = pool_members(c, pool_id);
        json_int_t n = (json_int_t) json_array_size(ids);
        int r;

        for (; n < size; n++) {
                r = pool_member_add(c, pool, pool_id);
                if (r < 0)
                        return r;
        }
        for (; n > size; n--)
                instance_remove(c, json_string_value(json_array_get(ids, (size_t) n - 1)));
        json_object_set_new(pool, "size", json_integer(size));
        return 0;
}

static bool valid_pool_refs(call *c, int *r) {
        return refs_exist(c, "security-groups", "security-group", r) &&
               refs_exist(c, "private-networks", "private-network", r) && valid_user_data(c, r);
}

/* The API's schema: instance-prefix is 1 to 30 characters. */
static bool valid_instance_prefix(call *c, int *r) {
        json_t *prefix = json_object_get(c->body, "instance-prefix");
        if (!prefix)
                return true;
        size_t len = json_string_length(prefix);
        if (json_is_string(prefix) && len >= 1 && len <= 30)
                return true;
        *r = fail(c, 400, "instance-prefix: a string of 1 to 30 characters is required");
        return false;
}

static int pool_create(call *c) {
        static const char *const fields[] = { "name", "description", "instance-type", "template",
                                              "disk-size", "user-data", "labels", "min-available" };
        json_t *size = json_object_get(c->body, "size");
        char id[UUID_STRING_SIZE];
        int r;

        if (!body_string(c, "name") || !json_is_integer(size) || json_integer_value(size) < 0)
                return fail(c, 400, "name and size are required");
        if (!valid_instance_prefix(c, &r))
                return r;
        if (!valid_compute_body(c, &r) || !valid_pool_refs(c, &r) || armed_failure(c, "create-instance-pool", &r))
                return r;
        random_uuid(id);
        json_t *pool = json_pack("{s:s, s:s, s:s}", "id", id, "state", "running", "instance-prefix",
                                 body_string(c, "instance-prefix") ? body_string(c, "instance-prefix") : "pool");
        copy_fields(pool, c->body, fields, ELEMENTSOF(fields));
        copy_fields(pool, c->body, pool_list_fields, ELEMENTSOF(pool_list_fields));
        json_object_set_new(store(c, "instance-pool"), id, pool);
        r = pool_resize(c, pool, id, json_integer_value(size));
        if (r < 0)
                return r;
        return operation(c, "create-instance-pool", id, NULL);
}

static int pool_update(call *c, json_t *pool, const char *id) {
        static const char *const fields[] = { "name", "description", "instance-type", "template",
                                              "disk-size", "user-data", "labels", "min-available",
                                              "instance-prefix" };
        const char *type = body_string(c, "instance-type.id"), *template_id = body_string(c, "template.id");
        int r;

        if (type && !streq(type, TYPE_SMALL) && !streq(type, TYPE_MEDIUM))
                return fail(c, 404, "instance-type %s not found", type);
        if (template_id && !lookup(c, "template", template_id))
                return fail(c, 404, "template %s not found", template_id);
        if (!valid_instance_prefix(c, &r) || !valid_pool_refs(c, &r) || armed_failure(c, "update-instance-pool", &r))
                return r;
        copy_fields(pool, c->body, fields, ELEMENTSOF(fields));
        /* The pitfall: list fields not in the body are cleared. Existing members keep theirs. */
        for (size_t i = 0; i < ELEMENTSOF(pool_list_fields); i++)
                json_object_del(pool, pool_list_fields[i]);
        copy_fields(pool, c->body, pool_list_fields, ELEMENTSOF(pool_list_fields));
        return operation(c, "update-instance-pool", id, NULL);
}

static int pool_evict(call *c, json_t *pool, const char *id) {
        _cleanup_json_ json_t *members = pool_members(c, id);
        json_t *list = json_object_get(c->body, "instances"), *m;
        size_t i, j;
        int r;

        if (!json_is_array(list) || json_array_size(list) == 0)
                return fail(c, 400, "instances: a non-empty list is required");
        json_array_foreach(list, i, m) {
                bool member = false;
                json_t *x;
                json_array_foreach(members, j, x)
                        member = member || json_equal(x, m);
                if (!member)
                        return fail(c, 400, "instance %s is not a member of instance-pool %s",
                                    strempty(json_string_value(m)), id);
        }
        if (armed_failure(c, "evict-instance-pool-members", &r))
                return r;
        json_array_foreach(list, i, m)
                instance_remove(c, json_string_value(m));
        json_object_set_new(pool, "size", json_integer((json_int_t) (json_array_size(members) - json_array_size(list))));
        if (reply_lost(c, "evict-instance-pool-members"))
                return fail(c, 503, "the reply was lost (test knob)");
        return operation(c, "evict-instance-pool-members", id, NULL);
}

static int pool_action(call *c, const char *method, json_t *pool, const char *id, const char *action) {
        int r;

        if (streq(method, "GET") && !action) {
                json_t *copy = json_deep_copy(pool), *ids = pool_members(c, id), *m;
                json_t *instances = json_array();
                size_t i;
                json_array_foreach(ids, i, m)
                        json_array_append_new(instances, json_pack("{s:O}", "id", m));
                json_decref(ids);
                json_object_set_new(copy, "instances", instances);
                return reply(c, 200, copy);
        }
        if (streq(method, "PUT") && !action)
                return pool_update(c, pool, id);
        if (streq(method, "PUT") && action && streq(action, "scale")) {
                json_t *size = json_object_get(c->body, "size");
                if (!json_is_integer(size) || json_integer_value(size) < 0)
                        return fail(c, 400, "size: a non-negative integer is required");
                if (armed_failure(c, "scale-instance-pool", &r))
                        return r;
                r = pool_resize(c, pool, id, json_integer_value(size));
                if (r < 0)
                        return r;
                return operation(c, "scale-instance-pool", id, NULL);
        }
        if (streq(method, "PUT") && action && streq(action, "evict"))
                return pool_evict(c, pool, id);
        if (streq(method, "DELETE") && !action) {
                if (armed_failure(c, "delete-instance-pool", &r))
                        return r;
                r = pool_resize(c, pool, id, 0);
                if (r < 0)
                        return r;
                json_object_del(store(c, "instance-pool"), id);
                return operation(c, "delete-instance-pool", id, NULL);
        }
        return fail(c, 404, "no such endpoint");
}

/* ---- routing ---- */

static int operation_get(call *c, const char *id) {
        json_t *entry = json_object_get(c->f->operations, id);
        json_t *polls = json_object_get(entry, "polls");

        /* Operations are zonal: polling another zone's endpoint does not find them. */
        if (!entry || !streq(strempty(json_path_string(entry, "zone")), c->zone))
                return fail(c, 404, "operation %s not found", id);
        if (json_integer_value(polls) < 0)
                c->f->held_polls++;
        else if (json_integer_value(polls) > 0)
                json_integer_set(polls, json_integer_value(polls) - 1);
        else
                json_object_update(json_object_get(entry, "op"), json_object_get(entry, "final"));
        return reply_copy(c, json_object_get(entry, "op"));
}

static int zone_list(call *c) {
        json_t *zones = json_array();
        for (size_t i = 0; i < ELEMENTSOF(zone_names); i++)
                json_array_append_new(zones, json_pack("{s:s}", "name", zone_names[i]));
        return reply(c, 200, json_pack("{s:o}", "zones", zones));
}

static int instance_type_list(call *c) {
        return reply(c, 200, json_pack("{s:[{s:s, s:s, s:s, s:i, s:I}, {s:s, s:s, s:s, s:i, s:I}]}",
                                       "instance-types",
                                       "id", TYPE_SMALL, "family", "standard", "size", "small", "cpus", 2,
                                       "memory", (json_int_t) 2147483648,
                                       "id", TYPE_MEDIUM, "family", "standard", "size", "medium", "cpus", 2,
                                       "memory", (json_int_t) 4294967296));
}

/* Route "/kind[/id[:action][/sub]]" (decoded, after "/{zone}/v2"). */
static int route(call *c, const http_server_request *req, const char *rest) {
        _cleanup_free_ char *kind = NULL, *id = NULL, *sub = NULL;
        const char *method = req->method, *action = NULL;

        if (sscanf(rest, "/%m[^/]/%m[^/]/%ms", &kind, &id, &sub) < 1)
                return fail(c, 404, "no such endpoint");
        if (id) {
                char *colon = strchr(id, ':');
                if (colon) {
                        *colon = 0;
                        action = colon + 1;
                }
        }
        if (!id) {
                if (streq(method, "GET") && streq(kind, "zone"))
                        return zone_list(c);
                if (streq(method, "GET") && streq(kind, "instance-type"))
                        return instance_type_list(c);
                if (streq(method, "GET") && streq(kind, "instance"))
                        return instance_list(c, req);
                if (streq(method, "GET") && streq(kind, "template"))
                        return template_list(c, req);
                if (streq(method, "GET") && (streq(kind, "security-group") || streq(kind, "snapshot")))
                        return kind_list(c, kind);
                if (streq(method, "GET") && streq(kind, "instance-pool")) {
                        json_t *list = json_array(), *p;
                        const char *pid;
                        json_object_foreach(store(c, "instance-pool"), pid, p)
                                json_array_append(list, p);
                        return reply(c, 200, json_pack("{s:o}", "instance-pools", list));
                }
                if (!streq(method, "POST"))
                        return fail(c, 404, "no such endpoint");
                if (streq(kind, "instance"))
                        return instance_create(c);
                if (streq(kind, "template"))
                        return template_register(c);
                if (streq(kind, "security-group"))
                        return security_group_create(c);
                if (streq(kind, "ssh-key"))
                        return ssh_key_create(c);
                if (streq(kind, "private-network"))
                        return private_network_create(c);
                if (streq(kind, "instance-pool"))
                        return pool_create(c);
                return fail(c, 404, "no such endpoint");
        }
        if (streq(kind, "operation") && streq(method, "GET") && !action && !sub)
                return operation_get(c, id);

        static const char *const kinds[] = { "instance", "snapshot", "template", "security-group",
                                             "ssh-key", "private-network", "instance-pool" };
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                known = known || streq(kind, kinds[i]);
        if (!known)
                return fail(c, 404, "no such endpoint");
        json_t *obj = lookup(c, kind, id);
        if (!obj)
                return fail(c, 404, "%s %s not found", kind, id);

        if (sub) {
                if (streq(kind, "security-group") && streq(sub, "rules") && !action && streq(method, "POST"))
                        return security_group_add_rule(c, obj, id);
                return fail(c, 404, "no such endpoint");
        }
        if (streq(kind, "instance"))
                return instance_action(c, method, obj, id, action);
        if (streq(kind, "snapshot"))
                return snapshot_action(c, method, obj, id, action);
        if (streq(kind, "template"))
                return template_action(c, method, obj, id, action);
        if (streq(kind, "instance-pool"))
                return pool_action(c, method, obj, id, action);
        if (action)
                return fail(c, 404, "no such endpoint");
        if (streq(method, "GET"))
                return reply_copy(c, obj);
        if (streq(method, "DELETE") && !streq(kind, "private-network")) {
                const char *command = streq(kind, "ssh-key") ? "delete-ssh-key" : "delete-security-group";
                int r;
                if (armed_failure(c, command, &r))
                        return r;
                json_object_del(store(c, kind), id);
                return operation(c, command, id, NULL);
        }
        return fail(c, 404, "no such endpoint");
}

static int control(call *c, const http_server_request *req) {
        _cleanup_free_ char *command = http_server_query_param(req, "command");
        _cleanup_free_ char *reason = http_server_query_param(req, "reason");
        _cleanup_free_ char *message = http_server_query_param(req, "message");

        if (streq(req->method, "GET") && streq(req->path, "/_fake/ssh-keys"))
                return ssh_keys_text(c);
        if (streq(req->method, "GET") && streq(req->path, "/_fake/state"))
                return state_dump(c);
        if (streq(req->method, "GET") && streq(req->path, "/_fake/held"))
                return reply(c, 200, json_pack("{s:I, s:I}", "polls", c->f->held_polls, "parts",
                                               (json_int_t) fake_sos_held(c->f->sos)));
        /* The object store's knobs: parts 2.. wait forever; the next part fails with 500. */
        if (streq(req->method, "POST") && streq(req->path, "/_fake/hold") && command && streq(command, "upload-part")) {
                fake_sos_hold_parts(c->f->sos);
                return reply(c, 200, json_object());
        }
        if (streq(req->method, "POST") && streq(req->path, "/_fake/fail") && command && streq(command, "upload-part")) {
                fake_sos_fail_next_part(c->f->sos);
                return reply(c, 200, json_object());
        }
        /* reason "on": every object DELETE fails with 500 until reason "off". */
        if (streq(req->method, "POST") && streq(req->path, "/_fake/fail") && command && streq(command, "delete-object")) {
                fake_sos_fail_deletes(c->f->sos, reason && streq(reason, "on"));
                return reply(c, 200, json_object());
        }
        if (streq(req->method, "POST") && streq(req->path, "/_fake/hold") && command) {
                json_object_set_new(c->f->held, command, json_true());
                return reply(c, 200, json_object());
        }
        if (!streq(req->method, "POST") || !streq(req->path, "/_fake/fail") || !command || !reason)
                return fail(c, 404, "no such test knob");
        json_object_set_new(c->f->failures, command,
                            json_pack("{s:s, s:s}", "reason", reason, "message", strempty(message)));
        return reply(c, 200, json_object());
}

static int handle(const http_server_request *req, http_server_response *resp, void *userdata) {
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ char *zone = NULL;
        call c = { .f = userdata, .resp = resp };
        int n = 0;

        member_hooks_reap(c.f);
        if (startswith(req->path, "/_fake/"))
                return control(&c, req);
        if (startswith(req->path, "/sos/"))
                return fake_sos_handle(c.f->sos, req, resp);
        if (sscanf(req->path, "/%m[^/]/v2%n", &zone, &n) < 1 || n == 0 ||
            !json_object_get(c.f->zones, zone))
                return fail(&c, 404, "no such zone or endpoint");
        c.zone = zone;

        const char *auth = http_server_request_header(req, "authorization");
        if (!auth)
                return fail(&c, 403, "Missing Authorization header");
        switch (exo_verify(auth, req->method, req->raw_path, req->query, req->body, req->body_len,
                           c.f->creds.key, c.f->creds.secret, time(NULL))) {
        case 0:
                break;
        case -ETIME:
                return fail(&c, 403, "Request expired");
        case -EBADMSG:
                return fail(&c, 403, "Malformed Authorization header");
        default:
                return fail(&c, 403, "Invalid signature");
        }

        if (req->body_len > 0) {
                if (json_parse(req->body, req->body_len, &body, NULL) < 0 || !json_is_object(body))
                        return fail(&c, 400, "request body: invalid JSON object");
                c.body = body;
        }
        return route(&c, req, req->path + n);
}

static int fake_init(fake *f) {
        f->zones = json_object();
        f->global = json_pack("{s:{}, s:{}}", "security-group", "ssh-key");
        f->operations = json_object();
        f->failures = json_object();
        f->held = json_object();
        f->hooks = json_object();
        if (!f->zones || !f->global || !f->operations || !f->failures || !f->held || !f->hooks)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(zone_names); i++) {
                char id[UUID_STRING_SIZE];
                json_t *z = json_pack("{s:{}, s:{}, s:{}, s:{}, s:{}}", "instance", "snapshot",
                                      "template", "instance-pool", "private-network");
                /* One public template per zone to build from; uefi, so a test can tell the boot
                 * mode a build sends from the API's default (legacy). */
                random_uuid(id);
                if (!z || json_object_set_new(json_object_get(z, "template"), id,
                                              json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "id", id,
                                                        "name", "Linux Debian 12 (Bookworm) 64-bit",
                                                        "visibility", "public", "zones", zone_names[i],
                                                        "default-user", "debian", "boot-mode", "uefi")) < 0 ||
                    json_object_set_new(f->zones, zone_names[i], z) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void fake_done(fake *f) {
        exoapi_credentials_done(&f->creds);
        json_decref(f->zones);
        json_decref(f->global);
        json_decref(f->operations);
        json_decref(f->failures);
        json_decref(f->held);
        json_decref(f->hooks);
        fake_sos_free(f->sos);
}

/* --seed FILE: resources a test needs before it starts (templates an earlier build would have
 * made, a security group, a managed private network), as
 * {"global": {KIND: {ID: object}}, "zones": {ZONE: {KIND: {ID: object}}}}; objects are taken
 * as they are (a private network gets an empty lease list). */
static int fake_seed(fake *f, const char *path) {
        _cleanup_json_ json_t *seed = json_load_file(path, 0, NULL);
        json_t *kinds, *objects, *obj;
        const char *zone, *kind, *id;

        if (!json_is_object(seed))
                return -EBADMSG;
        json_object_foreach(json_object_get(seed, "global"), kind, objects)
                if (json_object_update(json_object_get(f->global, kind), objects) < 0)
                        return -EBADMSG;
        json_object_foreach(json_object_get(seed, "zones"), zone, kinds)
                json_object_foreach(kinds, kind, objects) {
                        json_t *target = json_object_get(json_object_get(f->zones, zone), kind);
                        if (!target || json_object_update(target, objects) < 0)
                                return -EBADMSG;
                        json_object_foreach(target, id, obj)
                                if (streq(kind, "private-network") && !json_object_get(obj, "leases"))
                                        json_object_set_new(obj, "leases", json_array());
                }
        return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

int main(int argc, char **argv) {
        _cleanup_(http_server_freep) http_server *h = NULL;
        _cleanup_buf_ buf err = {};
        fake f = { .pending_polls = 2 };
        int r, port;

        log_set_program("fake-exoscale");
        const char *seed = NULL;
        char **buckets = NULL;
        long min_part = -1;
        for (int i = 1; i < argc; i += 2) {
                if (i + 1 < argc && streq(argv[i], "--pending-polls"))
                        f.pending_polls = atoi(argv[i + 1]);
                else if (i + 1 < argc && streq(argv[i], "--member-hook"))
                        f.member_hook = argv[i + 1];
                else if (i + 1 < argc && streq(argv[i], "--seed"))
                        seed = argv[i + 1];
                else if (i + 1 < argc && streq(argv[i], "--sos-bucket"))
                        (void) strv_push(&buckets, argv[i + 1]);
                else if (i + 1 < argc && streq(argv[i], "--sos-min-part-size"))
                        min_part = atol(argv[i + 1]);
                else {
                        fprintf(stderr, "usage: fake-exoscale [--pending-polls N] [--member-hook CMD] [--seed FILE]\n"
                                        "                     [--sos-bucket NAME]... [--sos-min-part-size BYTES]\n");
                        return 2;
                }
        }
        r = exoapi_credentials_from_env(&f.creds, &err);
        if (r < 0) {
                log_error("%s", err.data);
                return 1;
        }
        r = fake_init(&f);
        if (r >= 0)
                r = fake_sos_new(&f.creds, sos_zones, &f.sos);
        for (char **b = buckets; r >= 0 && b && *b; b++)
                r = fake_sos_add_bucket(f.sos, *b);
        strv_free(buckets);
        if (r >= 0 && min_part >= 0)
                fake_sos_set_min_part_size(f.sos, (size_t) min_part);
        if (r >= 0 && seed && (r = fake_seed(&f, seed)) < 0) {
                log_error("Failed to load seed %s", seed);
                goto out;
        }
        if (r >= 0)
                r = http_server_new(handle, &f, &h);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                goto out;
        }
        port = http_server_listen(h, "127.0.0.1", 0, NULL);
        if (port < 0) {
                r = log_error_errno(port, "Failed to listen on 127.0.0.1: %m");
                goto out;
        }
        fake_sos_set_port(f.sos, port);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        printf("%d\n", port);
        fflush(stdout);
        r = http_server_run(h, &stop);
        if (r < 0)
                log_error_errno(r, "Failed to serve: %m");
out:
        fake_done(&f);
        return r < 0 ? 1 : 0;
}
