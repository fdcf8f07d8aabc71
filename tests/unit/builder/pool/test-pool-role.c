/* Pool roles in the core, without a server: how `pool create` chooses the role (--role, the
 * template manifest's agent.role for store templates, the refusal of a contradiction), the
 * create options a role checks (--kubeconfig, a provider that names Nodes), the role in pool.json
 * (absent: etcd; unknown; malformed), and the core's calls into a scripted role during a roll
 * whose drain times out: the pool stays consistent, a resumed roll finishes it, --abort puts the
 * leaving member back (cancel_leave) and removes the surge member instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "json.h"
#include "kubeconfig.h"
#include "pool-providers.h"
#include "pool-roles.h"
#include "pool.h"

static char dir[] = "/tmp/test-pool-role.XXXXXX";
static char events[4096];
static int next_index = 1;
static char destroyed[64][32];
static size_t n_destroyed;
static const char *block_drain_ip;   /* before_destroy of this member times out */
static long seen_drain_timeout_ms;

static void event(const char *what, const char *ip) {
        snprintf(events + strlen(events), sizeof(events) - strlen(events), "%s %s;", what, ip);
}

static bool is_destroyed(const char *ip) {
        for (size_t i = 0; i < n_destroyed; i++)
                if (streq(destroyed[i], ip))
                        return true;
        return false;
}

/* ---- a provider whose machines are only names ---- */

static int fake_setup(pool_provider *p, buf *err) { (void) p, (void) err; return 0; }

static int fake_reserve(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        (void) p, (void) template, (void) err;
        CHECK(asprintf(ret_id, "i-%d", next_index) > 0);
        CHECK(asprintf(ret_ip, "10.0.0.%d", next_index) > 0);
        next_index++;
        return 0;
}

static int fake_start(pool_provider *p, const pool_member *m, buf *err) {
        (void) p, (void) err;
        event("started", m->ip);
        return 0;
}

static int fake_destroy(pool_provider *p, const pool_member *m, buf *err) {
        (void) p, (void) err;
        snprintf(destroyed[n_destroyed++], sizeof(destroyed[0]), "%s", m->ip);
        event("destroyed", m->ip);
        return 0;
}

static const char *fake_member_state(pool_provider *p, const pool_member *m) {
        (void) p;
        return is_destroyed(m->ip) ? "stopped" : "running";
}

static int fake_health_inputs(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err) {
        (void) p, (void) m, (void) ret;
        return buf_printf(err, "no etcd here"), -EOPNOTSUPP;
}

static int fake_agent_status(pool_provider *p, const pool_member *m, json_t **ret, buf *err) {
        (void) p, (void) m, (void) err;
        *ret = json_pack("{s:s}", "outcome", "done");
        return 0;
}

static int fake_node_name(pool_provider *p, const pool_member *m, char **ret, buf *err) {
        (void) p, (void) err;
        return asprintf(ret, "node-%s", m->id) < 0 ? -ENOMEM : 0;
}

static const pool_provider_ops fake_ops = {
        .name = "fake",
        .setup = fake_setup,
        .teardown = fake_setup,
        .reserve_member = fake_reserve,
        .start_member = fake_start,
        .destroy_member = fake_destroy,
        .member_state = fake_member_state,
        .health_inputs = fake_health_inputs,
        .agent_status = fake_agent_status,
        .node_name = fake_node_name,
};

/* ---- a scripted role that records what the core asks of it ---- */

static int role_gate(pool_role *r, const pool_view *v, buf *err) {
        (void) r, (void) err;
        /* The gate sees every member, and only active ones besides a leaving one in flight. */
        for (size_t i = 0; i < v->n_members; i++)
                CHECK(!streq(v->members[i].state, "joining"));
        event("gate", v->name);
        return 0;
}

static int role_wait_joined(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        (void) r, (void) v, (void) err;
        CHECK_STREQ(m->state, "joining");
        event("serves", m->ip);
        return 0;
}

static int role_before_destroy(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        (void) r;
        CHECK_STREQ(m->state, "leaving");
        seen_drain_timeout_ms = v->drain_timeout_ms;
        if (block_drain_ip && streq(block_drain_ip, m->ip)) {
                event("blocked", m->ip);
                return buf_printf(err, "drain of %s blocked", m->ip), -ETIMEDOUT;
        }
        event("drained", m->ip);
        return 0;
}

static int role_after_destroy(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        (void) r, (void) v, (void) err;
        CHECK(is_destroyed(m->ip));
        event("deleted", m->ip);
        return 0;
}

static int role_cancel_leave(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        (void) r, (void) v, (void) err;
        CHECK_STREQ(m->state, "leaving");
        event("uncordoned", m->ip);
        return 0;
}

static json_t *role_status(pool_role *r, const pool_view *v, const pool_member *m) {
        (void) r, (void) v;
        return json_pack("{s:s, s:b}", "state", m->ip, "healthy", 1);
}

/* Named after the node role, whose calls it stands in for: pool.json records the name and
 * pool_load() finds the role by it (reload() puts the scripted one back). */
static const pool_role_ops scripted_ops = {
        .name = "node",
        .serving = "scripted",
        .gate = role_gate,
        .wait_joined = role_wait_joined,
        .before_destroy = role_before_destroy,
        .after_destroy = role_after_destroy,
        .cancel_leave = role_cancel_leave,
        .member_status = role_status,
};

static void use_fakes(pool *p, bool role) {
        pool_provider *f = NULL;
        CHECK_OK(pool_provider_new(&fake_ops, p->dir, p->provider_state, &f));
        pool_provider_free(p->provider);
        p->provider = f;
        if (role) {
                pool_role *r = NULL;
                CHECK_OK(pool_role_new(&scripted_ops, p->role_state, &r));
                pool_role_free(p->role);
                p->role = r;
        }
}

static pool *reload(pool *p, const char *name) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        pool *q = NULL;
        pool_free(p);
        CHECK_OK(pool_load(name, true, &q, &err));
        use_fakes(q, true);
        return q;
}

static char *at(const char *name) {
        char *s;
        CHECK(asprintf(&s, "%s/%s", dir, name) > 0);
        return s;
}

static void put(const char *name, const char *text) {
        _cleanup_free_ char *path = at(name), *parent = strdup(path);
        *strrchr(parent, '/') = '\0';
        CHECK_OK(mkdir_p(parent, 0700));
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1));
}

/* pool_role_choose gives want, or fails with r and a message holding what. */
static void choose(const char *provider, const char *template, const char *given, const char *want, int r,
                   const char *what) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        _cleanup_free_ char *store = at("store");
        const pool_role_ops *ops = NULL;
        int got = pool_role_choose(pool_provider_find(provider), store, template, given, &ops, &err);
        if (got != r || (want && (!ops || !streq(ops->name, want))) || (what && !strstr(err.data, what))) {
                fprintf(stderr, "choose(%s, %s, %s): %d %s '%s'\n", provider, template, given ? given : "(null)", got,
                        ops ? ops->name : "-", err.data);
                abort();
        }
}

static void test_choose(void) {
        CHECK(pool_role_find("etcd") && pool_role_find("node"));
        CHECK(!pool_role_find("control-plane") && !pool_role_find("Node") && !pool_role_find(NULL));

        /* Labels (host): --role, else etcd. */
        choose("host", "etcd@1", NULL, "etcd", 0, NULL);
        choose("host", "etcd@1", "node", "node", 0, NULL);
        choose("host", "etcd@1", "bogus", NULL, -EINVAL, "unknown role 'bogus' (etcd, node)");

        /* Store templates (qemu): the manifest's agent.role; --role must agree. */
        put("store/templates/worker/1/manifest.json", "{\"agent\": {\"role\": \"node\"}, \"steps\": []}");
        put("store/templates/old/1/manifest.json", "{\"steps\": []}");
        put("store/templates/vault/1/manifest.json", "{\"agent\": {\"role\": \"vault\"}}");
        choose("qemu", "worker@1", NULL, "node", 0, NULL);
        choose("qemu", "worker@1", "node", "node", 0, NULL);
        choose("qemu", "worker@1", "etcd", NULL, -EINVAL, "--role etcd contradicts template worker@1, whose agent runs role node");
        /* A template exported before manifests said the role: --role, else etcd. */
        choose("qemu", "old@1", NULL, "etcd", 0, NULL);
        choose("qemu", "old@1", "node", "node", 0, NULL);
        choose("qemu", "vault@1", NULL, NULL, -EINVAL, "unknown role 'vault'");
        /* Not in the store (qemu will refuse it itself): --role or etcd. */
        choose("qemu", "missing@1", "node", "node", 0, NULL);
        /* The host provider's templates are labels even when the store has one of that name. */
        choose("host", "worker@1", "etcd", "etcd", 0, NULL);
}

static void test_configure(const char *kubeconfig) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(pool_freep) pool *p = NULL, *q = NULL;

        /* The host provider names Nodes, and needs its node options: without them a node pool
         * there is refused (the role's and the provider's options are both checked). */
        CHECK_OK(pool_new("nodes", "host", "worker@1", 2, &p, &err));
        CHECK_STREQ(p->role->ops->name, "etcd");
        pool_create_options o = { .pool_name = "nodes", .template = "worker@1", .role = "node", .kubeconfig = kubeconfig };
        CHECK(pool_configure(p, &o, &err) == -EINVAL);
        CHECK(strstr(err.data, "a node pool on the host provider needs --kubelet PATH"));
        /* qemu does not name Nodes (yet): refused before any option is looked at. */
        {
                _cleanup_(pool_freep) pool *v = NULL;
                pool_create_options vo = { .pool_name = "vms", .template = "missing@1", .role = "node",
                                           .kubeconfig = kubeconfig, .cache_dir = dir };
                buf_clear(&err);
                CHECK_OK(pool_new("vms", "qemu", "missing@1", 2, &v, &err));
                CHECK(pool_configure(v, &vo, &err) == -EOPNOTSUPP);
                CHECK(strstr(err.data, "provider qemu cannot make members of role node"));
        }

        /* With a provider that does: --kubeconfig is required, must be readable JSON, and is
         * recorded as an absolute path. */
        use_fakes(p, false);
        buf_clear(&err);
        o.kubeconfig = NULL;
        CHECK(pool_configure(p, &o, &err) == -EINVAL && strstr(err.data, "needs --kubeconfig"));
        buf_clear(&err);
        o.kubeconfig = "/nonexistent/admin.conf";
        CHECK(pool_configure(p, &o, &err) == -ENOENT && strstr(err.data, "/nonexistent/admin.conf"));
        /* Relative to the current directory. */
        CHECK(chdir(dir) == 0);
        o.kubeconfig = "admin.conf";
        buf_clear(&err);
        CHECK_OK(pool_configure(p, &o, &err));
        CHECK_STREQ(p->role->ops->name, "node");
        _cleanup_free_ char *abs = at("admin.conf");
        CHECK_STREQ(json_string_value(json_object_get(p->role_state, "kubeconfig")), abs);
        CHECK_OK(pool_save(p, &err));
        pool_free(TAKE_PTR(p));
        CHECK_OK(pool_load("nodes", false, &q, &err));
        CHECK_STREQ(q->role->ops->name, "node");
        CHECK_STREQ(json_string_value(json_object_get(q->role_state, "kubeconfig")), abs);
        CHECK(q->drain_timeout_ms == POOL_DRAIN_TIMEOUT_MS_DEFAULT);

        /* An etcd pool takes no kubeconfig. */
        CHECK_OK(pool_new("etcd", "host", "etcd@1", 3, &p, &err));
        use_fakes(p, false);
        pool_create_options e = { .pool_name = "etcd", .template = "etcd@1", .kubeconfig = kubeconfig };
        CHECK(pool_configure(p, &e, &err) == -EINVAL && strstr(err.data, "not for role etcd"));
        e.kubeconfig = NULL;
        CHECK_OK(pool_configure(p, &e, &err));
        CHECK_STREQ(p->role->ops->name, "etcd");
}

/* pool.json as an older imgbuild wrote it (no role), and broken ones. */
static void test_load(void) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        pool *p = NULL;
        const char *old = "{\"name\": \"old\", \"template\": \"etcd@1\", \"size\": 3, \"provider_name\": \"host\", "
                          "\"provider\": {}, \"members\": []}";

        put("state/pools/old/pool.json", old);
        CHECK_OK(pool_load("old", false, &p, &err));
        CHECK_STREQ(p->role->ops->name, "etcd");
        CHECK(json_object_size(p->role_state) == 0);
        /* Saved again it says so. */
        CHECK_OK(pool_save(p, &err));
        pool_free(p);
        p = NULL;
        _cleanup_free_ char *text = NULL, *file = at("state/pools/old/pool.json");
        CHECK_OK(read_file(file, 1 << 20, &text, NULL));
        CHECK(strstr(text, "\"role\": \"etcd\""));

        put("state/pools/old/pool.json", "{\"name\": \"old\", \"template\": \"t@1\", \"size\": 3, \"provider_name\": "
                                         "\"host\", \"provider\": {}, \"members\": [], \"role\": \"control-plane\"}");
        buf_clear(&err);
        CHECK(pool_load("old", false, &p, &err) == -EINVAL && strstr(err.data, "unknown role 'control-plane'"));
        put("state/pools/old/pool.json", "{\"name\": \"old\", \"template\": \"t@1\", \"size\": 3, \"provider_name\": "
                                         "\"host\", \"provider\": {}, \"members\": [], \"role\": 3}");
        CHECK(pool_load("old", false, &p, &err) == -EBADMSG);
        put("state/pools/old/pool.json", "{\"name\": \"old\", \"template\": \"t@1\", \"size\": 3, \"provider_name\": "
                                         "\"host\", \"provider\": {}, \"members\": [], \"role\": \"node\", "
                                         "\"role_config\": []}");
        CHECK(pool_load("old", false, &p, &err) == -EBADMSG);
        CHECK(!p);
}

static size_t count(pool *p, const char *template, const char *state) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_members; i++)
                n += streq(p->members[i].template, template) && streq(p->members[i].state, state);
        return n;
}

static void test_roll(void) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        pool *p = NULL;

        CHECK_OK(pool_new("roll", "host", "w@1", 3, &p, &err));
        use_fakes(p, true);
        CHECK_OK(pool_converge(p, &err));
        /* No gate before the first member; each member serves before the next starts. */
        CHECK_STREQ(events, "started 10.0.0.1;serves 10.0.0.1;gate roll;started 10.0.0.2;serves 10.0.0.2;"
                            "gate roll;started 10.0.0.3;serves 10.0.0.3;");

        /* The drain of the first old member times out: the roll stops with the surge member in
         * and the old one leaving; pool.json says so. The roll's option reaches the role. */
        events[0] = 0;
        block_drain_ip = "10.0.0.1";
        p->drain_timeout_ms = 7000;
        CHECK(pool_roll(p, "w@2", &err) == -ETIMEDOUT);
        CHECK(strstr(err.data, "drain of 10.0.0.1 blocked"));
        CHECK(seen_drain_timeout_ms == 7000);
        CHECK_STREQ(events, "gate roll;started 10.0.0.4;serves 10.0.0.4;gate roll;blocked 10.0.0.1;");
        p = reload(p, "roll");
        CHECK_STREQ(p->roll_target, "w@2");
        CHECK(p->n_members == 4 && count(p, "w@1", "leaving") == 1 && count(p, "w@2", "active") == 1);
        CHECK(seen_drain_timeout_ms == 7000);

        /* Resumed while still blocked: the same drain again, nothing else changes. */
        events[0] = 0;
        buf_clear(&err);
        CHECK(pool_roll(p, "w@2", &err) == -ETIMEDOUT);
        CHECK(seen_drain_timeout_ms == POOL_DRAIN_TIMEOUT_MS_DEFAULT);
        CHECK_STREQ(events, "blocked 10.0.0.1;");

        /* Abort: the leaving member is put back in service, the surge member leaves instead
         * (drained, destroyed, its Node deleted), every member on the old template. */
        events[0] = 0;
        CHECK_OK(pool_roll_abort(p, &err));
        CHECK_STREQ(events, "uncordoned 10.0.0.1;drained 10.0.0.4;destroyed 10.0.0.4;deleted 10.0.0.4;gate roll;");
        CHECK(!p->roll_target && p->n_members == 3 && count(p, "w@1", "active") == 3);
        p = reload(p, "roll");
        CHECK(!p->roll_target && count(p, "w@1", "active") == 3);

        /* Blocked again, then unblocked: the resumed roll drains, destroys and deletes each old
         * member after its replacement serves. */
        events[0] = 0;
        CHECK(pool_roll(p, "w@2", &err) == -ETIMEDOUT);
        block_drain_ip = NULL;
        events[0] = 0;
        CHECK_OK(pool_roll(p, "w@2", &err));
        CHECK_STREQ(events, "drained 10.0.0.1;destroyed 10.0.0.1;deleted 10.0.0.1;"
                            "gate roll;started 10.0.0.6;serves 10.0.0.6;gate roll;drained 10.0.0.2;destroyed 10.0.0.2;deleted 10.0.0.2;"
                            "gate roll;started 10.0.0.7;serves 10.0.0.7;gate roll;drained 10.0.0.3;destroyed 10.0.0.3;deleted 10.0.0.3;");
        CHECK(!p->roll_target && p->n_members == 3 && count(p, "w@2", "active") == 3);

        /* A leaving member whose machine is gone is not taken back on abort: it finishes leaving. */
        block_drain_ip = "10.0.0.5";
        CHECK(pool_roll(p, "w@3", &err) == -ETIMEDOUT);
        CHECK(p->n_members == 4 && streq(p->members[0].ip, "10.0.0.5") && streq(p->members[0].state, "leaving"));
        snprintf(destroyed[n_destroyed++], sizeof(destroyed[0]), "%s", "10.0.0.5");
        block_drain_ip = NULL;
        events[0] = 0;
        CHECK_OK(pool_roll_abort(p, &err));
        CHECK(!strstr(events, "uncordoned"));
        CHECK(strstr(events, "drained 10.0.0.5;destroyed 10.0.0.5;deleted 10.0.0.5;"));
        CHECK(p->n_members == 3 && !p->roll_target);

        /* Status: the role's object under the role's name. */
        _cleanup_json_ json_t *st = NULL;
        CHECK_OK(pool_status(p, &st, &err));
        CHECK_STREQ(json_path_string(st, "role"), "node");
        CHECK_STREQ(json_path_string(st, "members.0.node.state"), p->members[0].ip);
        CHECK(json_path_bool(st, "members.0.node.healthy"));
        CHECK(!json_object_get(json_array_get(json_object_get(st, "members"), 0), "etcd"));

        /* Delete: every machine goes without a drain, and the role cleans up after each. */
        events[0] = 0;
        CHECK_OK(pool_delete(p, &err));
        CHECK_STREQ(events, "destroyed 10.0.0.8;deleted 10.0.0.8;destroyed 10.0.0.7;deleted 10.0.0.7;"
                            "destroyed 10.0.0.6;deleted 10.0.0.6;");
        pool_free(p);
}

int main(void) {
        static const char ca[] = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
        kubeconfig_spec spec = { .cluster = "k", .server = "https://127.0.0.1:6443", .ca_pem = ca, .user = "admin",
                                 .cert_pem = ca, .key_pem = ca };
        _cleanup_free_ char *state = NULL, *kubeconfig = NULL, *text = NULL;

        CHECK(mkdtemp(dir));
        state = at("state");
        setenv("IMGBUILD_STATE_DIR", state, 1);
        CHECK_OK(kubeconfig_build(&spec, &text));
        put("admin.conf", text);
        kubeconfig = at("admin.conf");

        test_choose();
        test_configure(kubeconfig);
        test_load();
        test_roll();
        CHECK_OK(rm_rf(dir));
        return 0;
}
