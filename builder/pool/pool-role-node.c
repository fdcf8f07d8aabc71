/* The node role: members are Kubernetes worker nodes, watched through the API server the pool's
 * admin kubeconfig names (role_config.kubeconfig), with the calls of pool-kube.h. The gate wants
 * every active member's Node Ready and schedulable; a new member serves once its Node is Ready; a
 * member leaving is cordoned and drained (PodDisruptionBudgets honoured, bounded by the roll's
 * --drain-timeout) before its machine goes, and its Node object is deleted after. A member's Node
 * name comes from the provider (node_name: what its agent registers). See pool-role.h. */
#include "pool-role-node.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interrupt.h"
#include "json.h"
#include "kube-client.h"
#include "kubeconfig.h"
#include "log.h"
#include "pool-kube.h"
#include "time-util.h"

/* A new member's kubelet registers its Node and reports it Ready within this. */
#define NODE_JOIN_TIMEOUT_MS 180000
/* A restarted member's Node gets this long to be Ready again. */
#define NODE_HEAL_TIMEOUT_MS 60000
/* How often a drain asks again after an eviction was refused (429: a budget). */
#define DRAIN_RETRY_MS 2000

static void node_done(pool_role *r) {
        kube_client_free(r->data);
        r->data = NULL;
}

/* The role's client, made on first use from the kubeconfig recorded at create. */
static int client(pool_role *r, kube_client **ret, buf *err) {
        _cleanup_(kubeconfig_client_done) kubeconfig_client c = {};
        const char *path = json_string_value(json_object_get(r->state, "kubeconfig"));
        kube_client *k = NULL;
        int r2;

        if (!r->data) {
                if (!path)
                        return buf_printf(err, "pool.json records no kubeconfig for this node pool"), -EBADMSG;
                r2 = kubeconfig_load(path, &c, err);
                if (r2 < 0)
                        return r2;
                kube_client_config cfg = {
                        .server = c.server, .ca_file = c.ca_file, .ca_pem = c.ca_pem, .cert_file = c.cert_file,
                        .cert_pem = c.cert_pem, .key_file = c.key_file, .key_pem = c.key_pem, .token = c.token,
                        .attempts = 3, .user_agent = "imgbuild-pool",
                };
                r2 = kube_client_new(&cfg, &k, err);
                if (r2 < 0)
                        return r2;
                r->data = k;
        }
        *ret = r->data;
        return 0;
}

static int node_name(const pool_view *v, const pool_member *m, char **ret, buf *err) {
        if (!v->provider->ops->node_name)
                return buf_printf(err, "provider %s does not say its members' Node names", v->provider->ops->name),
                       -EOPNOTSUPP;
        return v->provider->ops->node_name(v->provider, m, ret, err);
}

/* Why m's Node does not serve, appended to why ("; "-separated); nothing when it does. Returns 0
 * or a negative errno for what is not an answer about the Node (out of memory, no node name). */
static int node_check(kube_client *k, const pool_view *v, const pool_member *m, buf *why) {
        _cleanup_buf_ buf call_err = BUF_INIT(1024);
        _cleanup_free_ char *name = NULL;
        pool_kube_node n = {};
        const char *sep = why->len ? "; " : "";
        int r;

        r = node_name(v, m, &name, why);
        if (r < 0)
                return r;
        r = pool_kube_node_get(k, name, &n, &call_err);
        if (r < 0)
                return buf_printf(why, "%smember %s (Node %s): %s", sep, m->id, name, call_err.data) < 0 ? -ENOMEM : 0;
        if (!n.exists)
                buf_printf(why, "%smember %s: Node %s is not registered", sep, m->id, name);
        else if (!n.ready)
                buf_printf(why, "%smember %s: Node %s is not Ready", sep, m->id, name);
        else if (n.unschedulable)
                buf_printf(why, "%smember %s: Node %s is cordoned", sep, m->id, name);
        return 0;
}

/* Every active member's Node exists, is Ready and schedulable. -POOL_EUNHEALTHY with the reasons
 * in why. */
static int nodes_check(kube_client *k, const pool_view *v, buf *why) {
        int r;

        buf_clear(why);
        for (size_t i = 0; i < v->n_members; i++) {
                if (!streq(v->members[i].state, "active"))
                        continue;
                r = node_check(k, v, &v->members[i], why);
                if (r < 0)
                        return r;
        }
        return why->len ? -POOL_EUNHEALTHY : 0;
}

/* The gate, as etcd's: a member whose machine is down is started again once, and the nodes get
 * time to be Ready before the step is refused. */
static int node_gate(pool_role *role, const pool_view *v, buf *err) {
        _cleanup_buf_ buf why = BUF_INIT(8192);
        bool restarted = false;
        kube_client *k;
        long deadline;
        int r;

        r = client(role, &k, err);
        if (r < 0)
                return r;
        r = nodes_check(k, v, &why);
        if (r != -POOL_EUNHEALTHY)
                return r < 0 ? (buf_puts(err, why.data), r) : r;
        log_warning("pool %s: nodes not healthy: %s", v->name, why.data);
        for (size_t i = 0; i < v->n_members; i++) {
                const pool_member *m = &v->members[i];
                if (streq(m->state, "active") && streq(v->provider->ops->member_state(v->provider, m), "stopped")) {
                        _cleanup_buf_ buf start_err = BUF_INIT(4096);
                        log_notice("pool %s: member %s (%s) is down, starting it again", v->name, m->id, m->ip);
                        if (v->provider->ops->start_member(v->provider, m, &start_err) < 0)
                                log_warning("pool %s: restarting member %s failed: %s", v->name, m->id, start_err.data);
                        else
                                restarted = true;
                }
        }
        deadline = time_now_ms() + (restarted ? NODE_HEAL_TIMEOUT_MS : 5000);
        while (time_now_ms() < deadline) {
                time_sleep_ms(1000);
                r = nodes_check(k, v, &why);
                if (r != -POOL_EUNHEALTHY)
                        return r < 0 ? (buf_puts(err, why.data), r) : r;
        }
        buf_printf(err, "nodes not healthy, refusing to change membership: %s", why.data);
        return -POOL_EUNHEALTHY;
}

static int node_wait_joined(pool_role *role, const pool_view *v, const pool_member *m, buf *err) {
        _cleanup_buf_ buf why = BUF_INIT(4096);
        long deadline = time_now_ms() + NODE_JOIN_TIMEOUT_MS;
        _cleanup_free_ char *name = NULL;
        kube_client *k;
        int r;

        r = client(role, &k, err);
        if (r >= 0)
                r = node_name(v, m, &name, err);
        if (r < 0)
                return r;
        while (time_now_ms() < deadline) {
                pool_kube_node n = {};
                buf_clear(&why);
                r = pool_kube_node_get(k, name, &n, &why);
                if (r >= 0 && n.exists && n.ready)
                        return 0;
                if (r >= 0)
                        buf_puts(&why, n.exists ? "registered, not Ready" : "not registered");
                if (interrupt_signal())
                        return buf_printf(err, "interrupted waiting for Node %s", name), -ECANCELED;
                time_sleep_ms(1000);
        }
        buf_printf(err, "member %s (%s): its Node %s was not Ready in %d s (%s)", m->id, m->ip, name,
                   NODE_JOIN_TIMEOUT_MS / 1000, why.data);
        return -ETIMEDOUT;
}

/* Cordon and drain. A drain that does not finish in time stops here with the member still
 * "leaving" and cordoned: the roll run again drains it again, --abort uncordons it
 * (node_cancel_leave) and removes the surge member instead. */
static int node_before_destroy(pool_role *role, const pool_view *v, const pool_member *m, buf *err) {
        _cleanup_(pool_drain_report_done) pool_drain_report rep = {};
        _cleanup_buf_ buf drain_err = BUF_INIT(4096);
        _cleanup_free_ char *name = NULL;
        kube_client *k;
        int r;

        r = client(role, &k, err);
        if (r >= 0)
                r = node_name(v, m, &name, err);
        if (r < 0)
                return r;
        log_info("pool %s: draining Node %s of member %s (at most %ld s)", v->name, name, m->id,
                 v->drain_timeout_ms / 1000);
        r = pool_kube_drain(k, name, time_now_ms() + v->drain_timeout_ms, DRAIN_RETRY_MS, interrupt_signal_flag(),
                            &rep, &drain_err);
        if (r == -ENOENT) {
                /* No Node (it never registered, or a resumed step deleted it): nothing runs there. */
                log_notice("pool %s: member %s has no Node %s to drain", v->name, m->id, name);
                return 0;
        }
        if (r == -ETIMEDOUT)
                return buf_printf(err, "%s; member %s stays leaving and cordoned: run the roll again to retry "
                                  "the drain, or 'pool roll --abort' to put it back in service",
                                  drain_err.data, m->id), r;
        if (r < 0)
                return buf_printf(err, "draining Node %s of member %s: %s", name, m->id, drain_err.data), r;
        log_info("pool %s: Node %s drained: %u evicted, %u already gone, %u DaemonSet and %u mirror pods left, "
                 "%u evictions retried", v->name, name, rep.evicted, rep.gone, rep.skipped_daemonset,
                 rep.skipped_mirror, rep.blocked_retries);
        return 0;
}

/* Delete (delete true) or uncordon the member's Node. */
static int node_call(pool_role *role, const pool_view *v, const pool_member *m, bool delete, buf *err) {
        _cleanup_buf_ buf call_err = BUF_INIT(1024);
        _cleanup_free_ char *name = NULL;
        kube_client *k;
        int r;

        r = client(role, &k, err);
        if (r >= 0)
                r = node_name(v, m, &name, err);
        if (r < 0)
                return r;
        r = delete ? pool_kube_delete_node(k, name, &call_err) : pool_kube_cordon(k, name, false, &call_err);
        if (r < 0)
                return buf_printf(err, "%s Node %s of member %s: %s", delete ? "deleting" : "uncordoning", name, m->id,
                                  call_err.data), r;
        return 0;
}

static int node_after_destroy(pool_role *role, const pool_view *v, const pool_member *m, buf *err) {
        return node_call(role, v, m, true, err);
}

static int node_cancel_leave(pool_role *role, const pool_view *v, const pool_member *m, buf *err) {
        return node_call(role, v, m, false, err);
}

static json_t *node_member_status(pool_role *role, const pool_view *v, const pool_member *m) {
        _cleanup_buf_ buf e = BUF_INIT(1024);
        _cleanup_free_ char *name = NULL;
        pool_kube_node n = {};
        kube_client *k;

        if (client(role, &k, &e) < 0 || node_name(v, m, &name, &e) < 0 || pool_kube_node_get(k, name, &n, &e) < 0)
                return json_pack("{s:s?, s:s, s:b, s:s}", "name", name, "state", "unknown", "healthy", 0, "error",
                                 e.data);
        const char *state = !n.exists ? "missing" : !n.ready ? "NotReady" : n.unschedulable ? "cordoned" : "Ready";
        return json_pack("{s:s, s:s, s:b, s:b, s:b, s:I}", "name", name, "state", state, "healthy",
                         n.exists && n.ready && !n.unschedulable, "ready", n.ready, "unschedulable",
                         n.unschedulable, "pods", (json_int_t) n.pods);
}

/* --kubeconfig, made absolute (later commands may run elsewhere) and read once now so that a
 * wrong file fails the create, not the first roll. */
static int node_configure(json_t *state, const pool_create_options *o, buf *err) {
        _cleanup_(kubeconfig_client_done) kubeconfig_client c = {};
        char abs[PATH_MAX];
        int r;

        if (!realpath(o->kubeconfig, abs)) {
                r = -errno;
                return buf_printf(err, "--kubeconfig %s: %s", o->kubeconfig, strerror(-r)), r;
        }
        r = kubeconfig_load(abs, &c, err);
        if (r < 0)
                return r;
        return json_object_set_new(state, "kubeconfig", json_string(abs)) < 0 ? -ENOMEM : 0;
}

const pool_role_ops pool_role_node_ops = {
        .name = "node",
        .serving = "a Ready node",
        .help = "Role node: the members are Kubernetes worker nodes of the cluster whose admin\n"
                "kubeconfig (JSON) --kubeconfig names. Before each change every active member's\n"
                "Node must be Ready and schedulable; a new member serves once its Node is Ready;\n"
                "a member leaving is cordoned and drained through the eviction API (budgets\n"
                "honoured, DaemonSet and mirror pods left) within --drain-timeout S (default\n"
                "300), then destroyed and its Node deleted. A drain that times out stops the\n"
                "roll with that member cordoned: run the roll again to retry, or --abort to\n"
                "uncordon it and remove the new member instead. Needs a provider that names\n"
                "its members' Nodes (host; see its options below).\n",
        .needs_kubeconfig = true,
        .needs_node_names = true,
        .configure = node_configure,
        .done = node_done,
        .gate = node_gate,
        .wait_joined = node_wait_joined,
        .before_destroy = node_before_destroy,
        .after_destroy = node_after_destroy,
        .cancel_leave = node_cancel_leave,
        .member_status = node_member_status,
};
