/* The node role (pool-role-node.c) driven by the pool core against a scripted provider whose
 * "kubelet" registers a Ready Node when a member starts, and a minimal Kubernetes API served by
 * lib/http-server in a thread (test code: Nodes get / merge-patch / delete, the pod list by
 * spec.nodeName, the eviction subresource answering 429 while the test's budget blocks). The
 * real client path is used: the kubeconfig recorded at create, kube-client, pool-kube.
 * Checked: create waits for each Node; a drain blocked past --drain-timeout stops the roll with the
 * member leaving and cordoned and a message naming the pod; abort uncordons it and removes the
 * surge member (drained, its Node deleted); the gate refuses a cordoned Node; an unblocked roll
 * evicts the pods, deletes each old Node after its machine, and leaves only Ready schedulable
 * Nodes of the pool's members; status shows the Node state. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "http-server.h"
#include "json.h"
#include "pool.h"

typedef struct fake_node {
        char name[64];
        bool exists, ready, unschedulable;
} fake_node;

typedef struct fake_pod {
        char name[64], node[64];
        bool exists;
} fake_pod;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fake_node nodes[32];
static size_t n_nodes;
static fake_pod pods[8];
static size_t n_pods;
static bool budget_blocks;
static unsigned evictions_refused;
static int next_index = 1;

static fake_node *node_find(const char *name) {
        for (size_t i = 0; i < n_nodes; i++)
                if (streq(nodes[i].name, name))
                        return &nodes[i];
        return NULL;
}

static int not_found(http_server_response *resp, const char *what) {
        return http_server_respond(resp, 404, "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\","
                                              "\"code\":404,\"message\":\"%s not found\"}", what);
}

static int api(const http_server_request *req, http_server_response *resp, void *userdata) {
        const char *node_prefix = "/api/v1/nodes/", *pod_prefix = "/api/v1/namespaces/default/pods/", *sel;
        int r;

        (void) userdata;
        pthread_mutex_lock(&lock);
        if (strneq(req->path, node_prefix, strlen(node_prefix))) {
                fake_node *n = node_find(req->path + strlen(node_prefix));
                if (!n || !n->exists)
                        r = not_found(resp, req->path);
                else if (streq(req->method, "DELETE")) {
                        n->exists = false;
                        r = http_server_respond(resp, 200, "{\"kind\":\"Status\",\"status\":\"Success\"}");
                } else {
                        if (streq(req->method, "PATCH")) {
                                _cleanup_json_ json_t *patch = NULL;
                                CHECK_OK(json_parse(req->body, req->body_len, &patch, NULL));
                                n->unschedulable = json_is_true(json_path(patch, "spec.unschedulable"));
                        }
                        r = http_server_respond(resp, 200, "{\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
                                                           "\"spec\":{\"unschedulable\":%s},\"status\":{\"conditions\":"
                                                           "[{\"type\":\"Ready\",\"status\":\"%s\"}]}}",
                                                n->name, n->unschedulable ? "true" : "false",
                                                n->ready ? "True" : "Unknown");
                }
        } else if (streq(req->path, "/api/v1/pods") && (sel = strstr(req->query, "spec.nodeName%3D"))) {
                char node[64];
                snprintf(node, sizeof(node), "%.*s", (int) strcspn(sel + 16, "&"), sel + 16);
                r = http_server_respond(resp, 200, "{\"kind\":\"PodList\",\"metadata\":{},\"items\":[");
                bool first = true;
                for (size_t i = 0; r >= 0 && i < n_pods; i++)
                        if (pods[i].exists && streq(pods[i].node, node)) {
                                r = buf_printf(&resp->body, "%s{\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\","
                                                            "\"uid\":\"u-%s\"},\"spec\":{\"nodeName\":\"%s\"},"
                                                            "\"status\":{\"phase\":\"Running\"}}",
                                               first ? "" : ",", pods[i].name, pods[i].name, node);
                                first = false;
                        }
                if (r >= 0)
                        r = buf_puts(&resp->body, "]}");
        } else if (streq(req->method, "POST") && strneq(req->path, pod_prefix, strlen(pod_prefix)) &&
                   strstr(req->path, "/eviction")) {
                char name[64];
                const char *rest = req->path + strlen(pod_prefix);
                snprintf(name, sizeof(name), "%.*s", (int) strcspn(rest, "/"), rest);
                fake_pod *pod = NULL;
                for (size_t i = 0; i < n_pods; i++)
                        if (pods[i].exists && streq(pods[i].name, name))
                                pod = &pods[i];
                if (!pod)
                        r = not_found(resp, name);
                else if (budget_blocks) {
                        evictions_refused++;
                        r = http_server_respond(resp, 429, "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":"
                                                           "\"TooManyRequests\",\"code\":429,\"message\":\"Cannot evict "
                                                           "pod as it would violate the pod's disruption budget.\"}");
                } else {
                        pod->exists = false;
                        r = http_server_respond(resp, 201, "{\"kind\":\"Status\",\"status\":\"Success\"}");
                }
        } else
                r = not_found(resp, req->path);
        pthread_mutex_unlock(&lock);
        return r;
}

/* ---- a provider whose members' kubelets register Ready Nodes named node-<id> ---- */

static int fake_setup(pool_provider *p, buf *err) { (void) p, (void) err; return 0; }

static int fake_reserve(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        (void) p, (void) template, (void) err;
        CHECK(asprintf(ret_id, "i-%d", next_index) > 0);
        CHECK(asprintf(ret_ip, "10.0.0.%d", next_index) > 0);
        next_index++;
        return 0;
}

static int fake_node_name(pool_provider *p, const pool_member *m, char **ret, buf *err) {
        (void) p, (void) err;
        return asprintf(ret, "node-%s", m->id) < 0 ? -ENOMEM : 0;
}

static int fake_start(pool_provider *p, const pool_member *m, buf *err) {
        char name[64];
        snprintf(name, sizeof(name), "node-%s", m->id);
        (void) p, (void) err;
        pthread_mutex_lock(&lock);
        fake_node *n = node_find(name) ?: &nodes[n_nodes++];
        snprintf(n->name, sizeof(n->name), "%s", name);
        n->exists = n->ready = true;
        pthread_mutex_unlock(&lock);
        return 0;
}

/* The machine goes: its Node stays (NotReady) until someone deletes it. */
static int fake_destroy(pool_provider *p, const pool_member *m, buf *err) {
        char name[64];
        snprintf(name, sizeof(name), "node-%s", m->id);
        (void) p, (void) err;
        pthread_mutex_lock(&lock);
        fake_node *n = node_find(name);
        if (n)
                n->ready = false;
        pthread_mutex_unlock(&lock);
        return 0;
}

static const char *fake_member_state(pool_provider *p, const pool_member *m) {
        char name[64];
        snprintf(name, sizeof(name), "node-%s", m->id);
        (void) p;
        pthread_mutex_lock(&lock);
        fake_node *n = node_find(name);
        bool up = n && n->ready;
        pthread_mutex_unlock(&lock);
        return up ? "running" : "stopped";
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

static void use_fake_provider(pool *p) {
        pool_provider *f = NULL;
        CHECK_OK(pool_provider_new(&fake_ops, p->dir, p->provider_state, &f));
        pool_provider_free(p->provider);
        p->provider = f;
}

static pool *reload(pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        pool *q = NULL;
        pool_free(p);
        CHECK_OK(pool_load("nodes", true, &q, &err));
        use_fake_provider(q);
        return q;
}

/* The Nodes that exist are exactly those of the pool's members, each Ready and schedulable. */
static void check_nodes(pool *p) {
        pthread_mutex_lock(&lock);
        size_t existing = 0;
        for (size_t i = 0; i < n_nodes; i++)
                existing += nodes[i].exists;
        CHECK(existing == p->n_members);
        for (size_t i = 0; i < p->n_members; i++) {
                char name[64];
                snprintf(name, sizeof(name), "node-%s", p->members[i].id);
                fake_node *n = node_find(name);
                CHECK(n && n->exists && n->ready && !n->unschedulable);
        }
        pthread_mutex_unlock(&lock);
}

static bool node_cordoned(const char *name) {
        pthread_mutex_lock(&lock);
        bool c = node_find(name)->unschedulable;
        pthread_mutex_unlock(&lock);
        return c;
}

static volatile sig_atomic_t stop_server;
static void *serve_thread(void *h) {
        http_server_run(h, &stop_server);
        return NULL;
}

int main(void) {
        char dir[] = "/tmp/test-pool-role-node.XXXXXX";
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(http_server_freep) http_server *h = NULL;
        _cleanup_free_ char *kubeconfig = NULL, *text = NULL;
        pool *p = NULL;
        pthread_t thread;
        int r;

        CHECK(mkdtemp(dir));
        setenv("IMGBUILD_STATE_DIR", dir, 1);
        CHECK_OK(http_server_new(api, NULL, &h));
        r = http_server_listen(h, "127.0.0.1", 0, NULL);
        CHECK_OK(r);
        CHECK(pthread_create(&thread, NULL, serve_thread, h) == 0);
        CHECK(asprintf(&kubeconfig, "%s/admin.json", dir) > 0);
        CHECK(asprintf(&text, "{\"current-context\": \"a\", \"contexts\": [{\"name\": \"a\", \"context\": "
                              "{\"cluster\": \"c\", \"user\": \"u\"}}], \"clusters\": [{\"name\": \"c\", \"cluster\": "
                              "{\"server\": \"http://127.0.0.1:%d\"}}], \"users\": [{\"name\": \"u\", \"user\": "
                              "{\"token\": \"test.token\"}}]}", r) > 0);
        CHECK_OK(write_file_atomic(kubeconfig, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1));

        /* Create: the node role with the kubeconfig; each member's Node Ready before the next. */
        CHECK_OK(pool_new("nodes", "host", "w@1", 3, &p, &err));
        use_fake_provider(p);
        pool_create_options o = { .pool_name = "nodes", .template = "w@1", .role = "node", .kubeconfig = kubeconfig };
        CHECK_OK(pool_configure(p, &o, &err));
        CHECK_OK(pool_converge(p, &err));
        CHECK(p->n_members == 3);
        check_nodes(p);
        p = reload(p);
        CHECK_STREQ(p->role->ops->name, "node");

        /* A pod on the first member's Node under a budget that forbids its eviction: the drain
         * stops the roll after the surge member is in; the old member stays leaving, cordoned. */
        pthread_mutex_lock(&lock);
        snprintf(pods[0].name, sizeof(pods[0].name), "web-1");
        snprintf(pods[0].node, sizeof(pods[0].node), "node-i-1");
        pods[0].exists = true;
        snprintf(pods[1].name, sizeof(pods[1].name), "web-2");
        snprintf(pods[1].node, sizeof(pods[1].node), "node-i-2");
        pods[1].exists = true;
        n_pods = 2;
        budget_blocks = true;
        pthread_mutex_unlock(&lock);
        p->drain_timeout_ms = 1500;
        r = pool_roll(p, "w@2", &err);
        if (r != -ETIMEDOUT || !strstr(err.data, "default/web-1") || !strstr(err.data, "disruption budget") ||
            !strstr(err.data, "i-1 stays leaving and cordoned")) {
                fprintf(stderr, "roll: %d %s\n", r, err.data);
                abort();
        }
        CHECK(evictions_refused > 0);
        p = reload(p);
        CHECK(p->n_members == 4 && streq(p->members[0].state, "leaving") && streq(p->members[3].state, "active"));
        CHECK(node_cordoned("node-i-1"));

        /* Abort: the old member is uncordoned and stays, the surge member is drained and goes
         * with its Node. */
        buf_clear(&err);
        CHECK_OK(pool_roll_abort(p, &err));
        CHECK(p->n_members == 3 && !p->roll_target);
        for (size_t i = 0; i < p->n_members; i++)
                CHECK(streq(p->members[i].template, "w@1") && streq(p->members[i].state, "active"));
        check_nodes(p);

        /* The gate: a cordoned Node refuses the next step before anything changes. */
        pthread_mutex_lock(&lock);
        node_find("node-i-2")->unschedulable = true;
        pthread_mutex_unlock(&lock);
        buf_clear(&err);
        CHECK(pool_roll(p, "w@2", &err) == -POOL_EUNHEALTHY);
        CHECK(strstr(err.data, "refusing") && strstr(err.data, "Node node-i-2 is cordoned"));
        CHECK(p->n_members == 3);
        pthread_mutex_lock(&lock);
        node_find("node-i-2")->unschedulable = false;
        pthread_mutex_unlock(&lock);

        /* The budget allows it: every old Node drained (its pods evicted), its machine destroyed,
         * then the Node deleted; only the new members' Nodes remain. */
        pthread_mutex_lock(&lock);
        budget_blocks = false;
        pthread_mutex_unlock(&lock);
        buf_clear(&err);
        CHECK_OK(pool_roll(p, "w@2", &err));
        CHECK(p->n_members == 3 && !p->roll_target);
        for (size_t i = 0; i < p->n_members; i++)
                CHECK(streq(p->members[i].template, "w@2"));
        check_nodes(p);
        pthread_mutex_lock(&lock);
        CHECK(!pods[0].exists && !pods[1].exists);
        pthread_mutex_unlock(&lock);

        /* Status: the Node's state under "node". */
        _cleanup_json_ json_t *st = NULL;
        CHECK_OK(pool_status(p, &st, &err));
        CHECK_STREQ(json_path_string(st, "role"), "node");
        CHECK_STREQ(json_path_string(st, "members.0.node.state"), "Ready");
        CHECK(json_path_bool(st, "members.0.node.healthy"));

        /* Delete: the machines and their Nodes go. */
        CHECK_OK(pool_delete(p, &err));
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_nodes; i++)
                CHECK(!nodes[i].exists);
        pthread_mutex_unlock(&lock);
        pool_free(p);
        stop_server = 1;
        pthread_join(thread, NULL);
        CHECK_OK(rm_rf(dir));
        return 0;
}
