/* The exoscale provider: the pool's members are the instances of one Exoscale instance pool.
 * How the pool operations map onto the API (protocols.md §2):
 *
 *   setup           create the instance pool at size 0 (labelled managed-by=imgbuild and
 *                   imgbuild-pool=NAME, so a pool created by a killed command is adopted, not
 *                   created twice) on the managed private network; the core then adds members
 *                   one at a time, each gated on etcd health.
 *   reserve_member  point the pool at the template asked for if it is not already there
 *                   (PUT /instance-pool/ID, re-sending the list fields: §2.5), scale it by one,
 *                   and take the member this provider has not handed out before; its address is
 *                   its lease on the private network. A member left over by a killed command is
 *                   adopted instead of scaling again.
 *   start_member    wait until the instance runs and its etcd answers /health with the
 *                   operator's client certificate (a stopped instance is started first). The
 *                   instance's own bootagent does the joining on first boot.
 *   leave_member    none: the agent's `bootagent leave` cannot be run without SSH, and a leave at
 *                   shutdown would also fire on every reboot. The core removes the member through
 *                   the etcd API (member/remove via a healthy voting member, with the operator's
 *                   client certificate), and only then is the instance destroyed.
 *   destroy_member  evict the instance from the pool (the pool's size shrinks by one; the
 *                   instance is destroyed).
 *   teardown        delete the instance pool.
 *   agent_status    not available: the agent's report stays on the instance.
 *
 * Provider state in pool.json: pool_name, template (the first reference), zone, instance_type,
 * disk_size, security_groups [ids], private_network, etcd_ca/etcd_cert/etcd_key (absolute file
 * names), etcd_port, start_timeout (s), api_endpoint, credentials_file, pool_id (once created), instances
 * [{id, ip, template_id}] (the members handed to the core). No secret is stored.
 *
 * Credentials: credentials_file (lib/exoapi.h: "api_key = ..." lines, mode 0600), else
 * EXOSCALE_API_KEY / EXOSCALE_API_SECRET. $IMGBUILD_EXOSCALE_POLL_MS shortens operation polling
 * (tests against tests/fake-exoscale). */
#include "pool-exoscale.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exoapi.h"
#include "json.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

/* A real instance boots, runs its first boot and joins etcd well within this (the default of
 * --start-timeout): a first boot that failed shows only as a member that never becomes healthy. */
#define START_TIMEOUT_S 900
#define START_POLL_MS 1000
/* How long a scaled-up pool may take to list its new member. */
#define MEMBER_APPEAR_TIMEOUT_MS 120000

static const char *state_str(pool_provider *p, const char *key) {
        return json_string_value(json_object_get(p->state, key));
}

static int api_open(pool_provider *p, exoapi **ret, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        exoapi_credentials creds = {};
        const char *file = state_str(p, "credentials_file"), *endpoint = state_str(p, "api_endpoint");
        const char *poll = getenv("IMGBUILD_EXOSCALE_POLL_MS");
        int r;

        r = file ? exoapi_credentials_from_file(file, &creds, err) : exoapi_credentials_from_env(&creds, err);
        if (r < 0)
                return r;
        r = exoapi_new(&creds, state_str(p, "zone"), &api);
        exoapi_credentials_done(&creds);
        if (r >= 0 && endpoint)
                r = exoapi_set_endpoint(api, endpoint);
        if (r < 0)
                return r;
        if (poll && atol(poll) > 0)
                exoapi_set_poll_interval(api, atol(poll));
        *ret = TAKE_PTR(api);
        return 0;
}

/* err = "WHAT: the API's reason"; returns r. */
static int api_fail(buf *err, const exoapi *api, int r, const char *what) {
        buf_printf(err, "%s: %s", what, exoapi_error(api));
        return r;
}

/* The template a reference names: a template id, or the name of exactly one private template in
 * the zone (a build registers its template as NAME@VERSION). Returns a new string in ret. */
static int resolve_template(exoapi *api, const char *ref, char **ret, buf *err) {
        _cleanup_json_ json_t *list = NULL;
        const char *found = NULL;
        json_t *t;
        size_t i;
        int r;

        if (exoapi_is_id(ref)) {
                _cleanup_json_ json_t *tmpl = NULL;
                r = exoapi_template_get(api, ref, &tmpl);
                if (r < 0)
                        return api_fail(err, api, r, "looking up template id");
                return (*ret = strdup(ref)) ? 0 : -ENOMEM;
        }
        r = exoapi_template_list_private(api, &list);
        if (r < 0)
                return api_fail(err, api, r, "listing private templates (GET /template)");
        json_array_foreach(list, i, t) {
                if (!streq(strempty(json_path_string(t, "name")), ref))
                        continue;
                if (found)
                        return buf_printf(err, "two private templates are named '%s' in %s: give the id", ref,
                                          exoapi_zone(api)), -ENOTUNIQ;
                found = json_path_string(t, "id");
        }
        if (!found)
                return buf_printf(err, "no private template named '%s' in %s", ref, exoapi_zone(api)), -ENOENT;
        return (*ret = strdup(found)) ? 0 : -ENOMEM;
}

/* An instance type id, or FAMILY.SIZE ("standard.small") looked up in GET /instance-type. */
static int resolve_instance_type(exoapi *api, const char *ref, char **ret, buf *err) {
        int r = exoapi_instance_type_id(api, ref, ret);
        if (r == -ENOENT)
                return buf_printf(err, "no instance type '%s' in %s", ref, exoapi_zone(api)), r;
        if (r < 0)
                return api_fail(err, api, r, "listing instance types (GET /instance-type)");
        return 0;
}

/* ---- setup and teardown ---- */

/* A pool an earlier, killed `pool create` made before it could record it. */
static int find_own_pool(pool_provider *p, exoapi *api, char **ret, buf *err) {
        _cleanup_json_ json_t *list = NULL;
        json_t *ip;
        size_t i;
        int r;

        r = exoapi_pool_list(api, &list);
        if (r < 0)
                return api_fail(err, api, r, "listing instance pools (GET /instance-pool)");
        json_array_foreach(list, i, ip)
                if (streq(strempty(json_path_string(ip, "name")), state_str(p, "pool_name")) &&
                    streq(strempty(json_path_string(ip, "labels.managed-by")), "imgbuild") &&
                    streq(strempty(json_path_string(ip, "labels.imgbuild-pool")), state_str(p, "pool_name")))
                        return (*ret = strdup(strempty(json_path_string(ip, "id")))) ? 1 : -ENOMEM;
        return 0;
}

static int exo_setup(pool_provider *p, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_free_ char *pool_id = NULL, *template_id = NULL, *type_id = NULL, *label_pool = NULL;
        _cleanup_strv_free_ char **sgs = NULL;
        json_t *sg;
        size_t i;
        int r;

        if (state_str(p, "pool_id"))
                return 0;
        r = api_open(p, &api, err);
        if (r < 0)
                return r;
        r = find_own_pool(p, api, &pool_id, err);
        if (r < 0)
                return r;
        if (r == 0) {
                r = resolve_template(api, state_str(p, "template"), &template_id, err);
                if (r >= 0)
                        r = resolve_instance_type(api, state_str(p, "instance_type"), &type_id, err);
                if (r < 0)
                        return r;
                json_array_foreach(json_object_get(p->state, "security_groups"), i, sg)
                        if (strv_push(&sgs, json_string_value(sg)) < 0)
                                return -ENOMEM;
                if (asprintf(&label_pool, "imgbuild-pool=%s", state_str(p, "pool_name")) < 0)
                        return -ENOMEM;
                char prefix[EXOAPI_INSTANCE_PREFIX_MAX + 1];
                pool_exoscale_instance_prefix(state_str(p, "pool_name"), prefix);
                char *const networks[] = { (char *) state_str(p, "private_network"), NULL };
                char *const labels[] = { (char *) "managed-by=imgbuild", label_pool, NULL };
                exoapi_pool_spec spec = {
                        .name = state_str(p, "pool_name"),
                        .instance_type_id = type_id,
                        .template_id = template_id,
                        /* Members come one at a time from reserve_member, each gated on health. */
                        .size = 0,
                        .disk_size_gb = (uint64_t) json_integer_value(json_object_get(p->state, "disk_size")),
                        .instance_prefix = prefix,
                        .security_group_ids = sgs,
                        .private_network_ids = networks,
                        .labels = labels,
                };
                r = exoapi_pool_create(api, &spec, &pool_id);
                if (r < 0)
                        return api_fail(err, api, r, "creating the instance pool (POST /instance-pool)");
                log_info("exoscale: created instance pool %s (%s) in %s", state_str(p, "pool_name"), pool_id,
                         exoapi_zone(api));
        }
        if (json_object_set_new(p->state, "pool_id", json_string(pool_id)) < 0 ||
            (!json_object_get(p->state, "instances") && json_object_set_new(p->state, "instances", json_array()) < 0))
                return -ENOMEM;
        return 0;
}

void pool_exoscale_instance_prefix(const char *pool_name, char ret[EXOAPI_INSTANCE_PREFIX_MAX + 1]) {
        /* Members are named PREFIX-<id>; the API caps the prefix at 30 characters, pool names may
         * have 63: the name's start, without a trailing '-'. */
        snprintf(ret, EXOAPI_INSTANCE_PREFIX_MAX + 1, "%s", pool_name);
        for (size_t n = strlen(ret); n > 1 && ret[n - 1] == '-'; n--)
                ret[n - 1] = '\0';
}

static int exo_teardown(pool_provider *p, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        const char *pool_id = state_str(p, "pool_id");
        int r;

        if (!pool_id)
                return 0;
        r = api_open(p, &api, err);
        if (r < 0)
                return r;
        r = exoapi_pool_delete(api, pool_id);
        if (r < 0 && r != -ENOENT)
                return api_fail(err, api, r, "deleting the instance pool (DELETE /instance-pool)");
        (void) json_object_del(p->state, "pool_id");
        return 0;
}

/* ---- members ---- */

static json_t *known_instance(pool_provider *p, const char *id, size_t *ret_index) {
        json_t *inst;
        size_t i;
        json_array_foreach(json_object_get(p->state, "instances"), i, inst)
                if (streq(strempty(json_path_string(inst, "id")), id)) {
                        if (ret_index)
                                *ret_index = i;
                        return inst;
                }
        return NULL;
}

/* The pool's member that was not handed out yet, or NULL (borrowed from pool). */
static const char *unknown_member(pool_provider *p, json_t *pool) {
        json_t *inst;
        size_t i;
        json_array_foreach(json_object_get(pool, "instances"), i, inst) {
                const char *id = json_path_string(inst, "id");
                if (id && !known_instance(p, id, NULL))
                        return id;
        }
        return NULL;
}

static int lease_of(exoapi *api, const char *network_id, const char *instance_id, char **ret, buf *err) {
        _cleanup_json_ json_t *pn = NULL;
        json_t *lease;
        size_t i;
        int r;

        r = exoapi_private_network_get(api, network_id, &pn);
        if (r < 0)
                return api_fail(err, api, r, "reading the private network's leases (GET /private-network)");
        json_array_foreach(json_object_get(pn, "leases"), i, lease)
                if (streq(strempty(json_path_string(lease, "instance-id")), instance_id) && json_path_string(lease, "ip"))
                        return (*ret = strdup(json_path_string(lease, "ip"))) ? 0 : -ENOMEM;
        return buf_printf(err, "instance %s has no lease on private network %s", instance_id, network_id), -ENOENT;
}

static int evict(exoapi *api, const char *pool_id, const char *instance_id, buf *err) {
        char *const ids[] = { (char *) instance_id, NULL };
        int r = exoapi_pool_evict(api, pool_id, ids);
        if (r < 0)
                return api_fail(err, api, r, "evicting an instance (PUT /instance-pool/ID:evict)");
        return 0;
}

static int exo_reserve_member(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_free_ char *template_id = NULL, *id = NULL, *ip = NULL;
        const char *pool_id = state_str(p, "pool_id");
        int r;

        r = api_open(p, &api, err);
        if (r >= 0)
                r = resolve_template(api, template, &template_id, err);
        if (r < 0)
                return r;
        long scaled_at = -1;
        for (;;) {
                _cleanup_json_ json_t *pool = NULL, *inst = NULL;
                r = exoapi_pool_get(api, pool_id, &pool);
                if (r < 0)
                        return api_fail(err, api, r, "reading the instance pool (GET /instance-pool)");
                const char *current = unknown_member(p, pool);
                if (!current && scaled_at >= 0) {
                        /* Scaled once already: wait for the member to show, never scale twice. */
                        if (time_now_ms() - scaled_at > MEMBER_APPEAR_TIMEOUT_MS)
                                return buf_printf(err, "instance pool %s was scaled up but no new member appeared in %d s",
                                                  pool_id, MEMBER_APPEAR_TIMEOUT_MS / 1000), -ETIMEDOUT;
                        time_sleep_ms(START_POLL_MS);
                        continue;
                }
                if (!current) {
                        if (!streq(strempty(json_path_string(pool, "template.id")), template_id)) {
                                _cleanup_json_ json_t *changes = json_pack("{s:{s:s}}", "template", "id", template_id);
                                if (!changes)
                                        return -ENOMEM;
                                log_info("exoscale: instance pool %s now creates members from %s (%s)",
                                         state_str(p, "pool_name"), template, template_id);
                                r = exoapi_pool_update(api, pool_id, changes);
                                if (r < 0)
                                        return api_fail(err, api, r, "changing the pool's template (PUT /instance-pool/ID)");
                        }
                        uint64_t size = 0;
                        (void) json_path_u64(pool, "size", &size);
                        r = exoapi_pool_scale(api, pool_id, size + 1);
                        if (r < 0)
                                return api_fail(err, api, r, "scaling the instance pool up (PUT /instance-pool/ID:scale)");
                        scaled_at = time_now_ms();
                        continue;
                }
                r = exoapi_instance_get(api, current, &inst);
                if (r < 0)
                        return api_fail(err, api, r, "reading the new member (GET /instance)");
                if (!streq(strempty(json_path_string(inst, "template.id")), template_id)) {
                        if (scaled_at >= 0)
                                return buf_printf(err, "instance pool %s made member %s from template %s, not %s", pool_id,
                                                  current, strempty(json_path_string(inst, "template.id")), template_id),
                                       -EPROTO;
                        /* Left over from a killed command that wanted another template: not ours. */
                        log_info("exoscale: evicting leftover member %s (another template)", current);
                        r = evict(api, pool_id, current, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!(id = strdup(current)))
                        return -ENOMEM;
                break;
        }
        r = lease_of(api, state_str(p, "private_network"), id, &ip, err);
        if (r < 0)
                return r;
        if (json_array_append_new(json_object_get(p->state, "instances"),
                                  json_pack("{s:s, s:s, s:s}", "id", id, "ip", ip, "template_id", template_id)) < 0)
                return -ENOMEM;
        *ret_id = TAKE_PTR(id);
        *ret_ip = TAKE_PTR(ip);
        return 0;
}

static int exo_health_inputs(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err) {
        pool_health_inputs h = {};

        (void) err;
        if (asprintf(&h.etcd_url, "https://%s:%d", m->ip, (int) json_integer_value(json_object_get(p->state, "etcd_port"))) < 0 ||
            !(h.ca_file = strdup(strempty(state_str(p, "etcd_ca")))) ||
            !(h.cert_file = strdup(strempty(state_str(p, "etcd_cert")))) ||
            !(h.key_file = strdup(strempty(state_str(p, "etcd_key"))))) {
                pool_health_inputs_done(&h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

static int exo_start_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        long timeout_ms = 1000 * (long) json_integer_value(json_object_get(p->state, "start_timeout"));
        long deadline = time_now_ms() + timeout_ms;
        const char *last = "not running";
        bool started = false;
        int r;

        r = api_open(p, &api, err);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_json_ json_t *inst = NULL;
                r = exoapi_instance_get(api, m->id, &inst);
                if (r < 0)
                        return api_fail(err, api, r, "reading the member (GET /instance)");
                const char *state = strempty(json_path_string(inst, "state"));
                if (streq(state, "running"))
                        break;
                if (streq(state, "error"))
                        return buf_printf(err, "instance %s is in state error", m->id), -EIO;
                if (streq(state, "stopped") && !started) {
                        r = exoapi_instance_start(api, m->id);
                        if (r < 0)
                                return api_fail(err, api, r, "starting the member (PUT /instance/ID:start)");
                        started = true;
                }
                if (time_now_ms() >= deadline)
                        return buf_printf(err, "instance %s not running after %ld s (state %s)", m->id,
                                          timeout_ms / 1000, state), -ETIMEDOUT;
                time_sleep_ms(START_POLL_MS);
        }
        /* Running: its first boot joins etcd (as a learner, then a voter) on its own. */
        while (time_now_ms() < deadline) {
                pool_health_inputs h = {};
                r = exo_health_inputs(p, m, &h, err);
                if (r < 0)
                        return r;
                bool healthy = pool_health_check(&h);
                pool_health_inputs_done(&h);
                if (healthy)
                        return 0;
                last = "etcd not healthy";
                time_sleep_ms(START_POLL_MS);
        }
        return buf_printf(err, "member %s (%s): %s after %ld s (its first boot failed or is slow: see the instance's "
                          "console)", m->id, m->ip, last, timeout_ms / 1000), -ETIMEDOUT;
}

static int exo_destroy_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_json_ json_t *inst = NULL;
        size_t index;
        int r;

        r = api_open(p, &api, err);
        if (r < 0)
                return r;
        r = exoapi_instance_get(api, m->id, &inst);
        if (r < 0 && r != -ENOENT)
                return api_fail(err, api, r, "reading the member (GET /instance)");
        if (r >= 0) {
                if (streq(strempty(json_path_string(inst, "manager.id")), strempty(state_str(p, "pool_id"))))
                        r = evict(api, state_str(p, "pool_id"), m->id, err);
                else if ((r = exoapi_instance_delete(api, m->id)) < 0)
                        r = api_fail(err, api, r, "deleting an instance (DELETE /instance)");
                if (r < 0)
                        return r;
        }
        if (known_instance(p, m->id, &index))
                (void) json_array_remove(json_object_get(p->state, "instances"), index);
        return 0;
}

static const char *exo_member_state(pool_provider *p, const pool_member *m) {
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_json_ json_t *inst = NULL;
        _cleanup_buf_ buf ignored = BUF_INIT(1024);
        int r;

        if (api_open(p, &api, &ignored) < 0)
                return "unknown";
        r = exoapi_instance_get(api, m->id, &inst);
        if (r < 0)
                return r == -ENOENT ? "gone" : "unknown";
        return streq(strempty(json_path_string(inst, "state")), "running") ? "running" : "stopped";
}

static int exo_agent_status(pool_provider *p, const pool_member *m, json_t **ret, buf *err) {
        (void) p;
        (void) m;
        (void) ret;
        buf_puts(err, "not available on exoscale: the agent's report stays on the instance (no SSH)");
        return -EOPNOTSUPP;
}

/* ---- configuration ---- */

static int set_file(json_t *state, const char *key, const char *option, const char *path, buf *err) {
        char abs[PATH_MAX];
        if (!path)
                return buf_printf(err, "--%s is required for provider exoscale", option), -EINVAL;
        if (!realpath(path, abs)) {
                int r = negative_errno();
                return buf_printf(err, "--%s %s: %s", option, path, strerror(-r)), r;
        }
        return json_object_set_new(state, key, json_string(abs)) < 0 ? -ENOMEM : 0;
}

static int exo_configure(json_t *state, const pool_create_options *o, buf *err) {
        _cleanup_json_ json_t *sgs = json_array();
        /* Recorded, so every later command on the pool talks to the same endpoint. */
        const char *endpoint = o->api_endpoint ? o->api_endpoint : getenv("EXOSCALE_API_ENDPOINT");
        int r;

        if (!sgs)
                return -ENOMEM;
        if (!o->zone)
                return buf_puts(err, "--zone is required for provider exoscale"), -EINVAL;
        if (!o->private_network)
                return buf_puts(err, "--private-network (a managed private network's id) is required for provider exoscale"), -EINVAL;
        if (o->etcd_port > 65535 || (o->disk_size_gb && (o->disk_size_gb < 10 || o->disk_size_gb > 51200)))
                return buf_puts(err, "--etcd-port must be a port, --disk-size 10..51200 (GB)"), -EINVAL;
        for (size_t i = 0; o->security_groups && o->security_groups[i]; i++)
                if (json_array_append_new(sgs, json_string(o->security_groups[i])) < 0)
                        return -ENOMEM;
        if ((r = set_file(state, "etcd_ca", "etcd-ca", o->etcd_ca, err)) < 0 ||
            (r = set_file(state, "etcd_cert", "etcd-cert", o->etcd_cert, err)) < 0 ||
            (r = set_file(state, "etcd_key", "etcd-key", o->etcd_key, err)) < 0 ||
            (o->credentials_file && (r = set_file(state, "credentials_file", "credentials", o->credentials_file, err)) < 0))
                return r;
        if (json_object_set_new(state, "pool_name", json_string(o->pool_name)) < 0 ||
            json_object_set_new(state, "template", json_string(o->template)) < 0 ||
            json_object_set_new(state, "zone", json_string(o->zone)) < 0 ||
            json_object_set_new(state, "instance_type", json_string(o->instance_type ? o->instance_type : "standard.small")) < 0 ||
            json_object_set_new(state, "disk_size", json_integer(o->disk_size_gb ? o->disk_size_gb : 10)) < 0 ||
            json_object_set(state, "security_groups", sgs) < 0 ||
            json_object_set_new(state, "private_network", json_string(o->private_network)) < 0 ||
            json_object_set_new(state, "etcd_port", json_integer(o->etcd_port ? o->etcd_port : 2379)) < 0 ||
            json_object_set_new(state, "start_timeout", json_integer(o->start_timeout_s ? o->start_timeout_s : START_TIMEOUT_S)) < 0 ||
            (endpoint && *endpoint && json_object_set_new(state, "api_endpoint", json_string(endpoint)) < 0))
                return -ENOMEM;
        return 0;
}

const pool_provider_ops pool_exoscale_ops = {
        .name = "exoscale",
        .help = "Provider \"exoscale\": members are the instances of an Exoscale instance pool\n"
                "(created at size 0, then scaled up one member at a time) booted from template T:\n"
                "a template id, or the name of a private template in the zone (etcd-2 is what\n"
                "imgbuild build --provider exoscale makes of template etcd 2). The instances' own\n"
                "bootagent joins etcd on first boot; members are told apart by their lease on\n"
                "the managed private network. This command must reach the members'\n"
                "etcd (default port 2379) at those addresses with the operator's client\n"
                "certificate (--etcd-*; the files are read at each command, not copied). A member\n"
                "leaves by being removed through the etcd API, then it is evicted from the pool.\n"
                "A new member that is not healthy after --start-timeout seconds (default 900)\n"
                "stops the command.\n"
                "A roll points the pool at the new template (re-sending its list fields) before\n"
                "each new member. Agent reports are not available (no SSH). Credentials:\n"
                "--credentials FILE (api_key = ..., api_secret = ...; mode 0600) or\n"
                "EXOSCALE_API_KEY and EXOSCALE_API_SECRET. --api-endpoint (default\n"
                "$EXOSCALE_API_ENDPOINT, else https://api-{zone}.exoscale.com/v2; e.g.\n"
                "http://127.0.0.1:PORT/{zone}/v2) is for private endpoints and tests.\n",
        .configure = exo_configure,
        .setup = exo_setup,
        .teardown = exo_teardown,
        .reserve_member = exo_reserve_member,
        .start_member = exo_start_member,
        /* No leave_member: the core removes the member through the etcd API (see the top). */
        .destroy_member = exo_destroy_member,
        .member_state = exo_member_state,
        .health_inputs = exo_health_inputs,
        .agent_status = exo_agent_status,
};
