/* The host provider: each pool member is a bootagent run on this host with `units = exec`. In an
 * etcd pool it starts a real etcd on its own loopback address (127.0.0.<10 + index>); in a node
 * pool (role node) it joins the Kubernetes cluster at the endpoint given at create and starts the
 * kubelet binary given at create (the real kubelet, or tests/kubelet-standin), as
 * tests/integration/test-agent-node.sh runs node agents by hand. The pool runs its own local cloud
 * (`imgbuild serve`) whose cloud.json lists the members as instances of one instance pool, exactly
 * as tests/integration/agent-lib.sh does by hand; a node member's user-data there carries the
 * bootstrap token, the endpoint, the CA pin and its Node name (pool-cloud.h). A "template" here is
 * only a label recorded on the member: every member runs the same bootagent and etcd (kubelet)
 * binaries.
 *
 * Layout of the pool directory:
 *   cloud/cloud.json    the local cloud's state (rewritten from provider.instances)
 *   cloud/sockets/      each member's metadata and Vault sockets (pool-cloud.h), 0700
 *   serve.out serve.log the local cloud's output
 *   members/<id>/       the member's root (bootagent --root): config, certificates, etcd data,
 *                       var/lib/bootagent/etcd.service.pid (etcd leads its own process group);
 *                       a node: var/lib/kubelet, var/lib/bootagent/kubelet.service.pid
 * Provider state in pool.json: port_base, next_index, serve_pid, pool_id, network_id, api_key,
 * api_secret, etcd_token,
 * bootagent (path), instances [{id, ip, index, node_name (node pools)}]; a node pool also kubelet
 * (path), node_prefix (the Node names' prefix) and kube {endpoint, ca_pin, token} (pool-cloud.h;
 * pool.json is 0600, as for the cloud's API secret). */
#include "pool-host.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "pool-cloud.h"
#include "spawn.h"
#include "time-util.h"

/* Ports relative to port_base: the cloud API, etcd client and peer ports (shared: every member
 * has its own IP). From PORT_MEMBER_FIRST, two per member index were the members' metadata and
 * Vault ports before those became UNIX sockets; the block stays reserved, so --port-base means
 * what it meant. */
#define PORT_API 0
#define PORT_ETCD_CLIENT 1
#define PORT_ETCD_PEER 2
#define PORT_MEMBER_FIRST 10
#define MAX_INDEX 240

static int64_t state_int(pool_provider *p, const char *key) {
        return json_integer_value(json_object_get(p->state, key));
}

static const char *state_str(pool_provider *p, const char *key) {
        return json_string_value(json_object_get(p->state, key));
}

/* Whether the pool's members are Kubernetes nodes (role node) rather than etcd members. */
static bool is_node_pool(pool_provider *p) {
        return json_object_get(p->state, "kube") != NULL;
}

/* The service the member's agent starts (units = exec) and its process name (comm, at most 15
 * characters as the kernel keeps it). */
static const char *service_unit(pool_provider *p) {
        return is_node_pool(p) ? "kubelet.service" : "etcd.service";
}

static void service_comm(pool_provider *p, char comm[16]) {
        const char *path = is_node_pool(p) ? strempty(state_str(p, "kubelet")) : "etcd";
        const char *slash = strrchr(path, '/');
        snprintf(comm, 16, "%s", slash ? slash + 1 : path);
}

static int etcd_client_port(pool_provider *p) {
        return (int) state_int(p, "port_base") + PORT_ETCD_CLIENT;
}

static char *member_root(pool_provider *p, const char *id) {
        char *s;
        return asprintf(&s, "%s/members/%s", p->dir, id) < 0 ? NULL : s;
}

/* The bootagent binary: $IMGBUILD_BOOTAGENT, else the one built next to this imgbuild
 * (build/builder/imgbuild -> build/bootagent/bootagent), else "bootagent" from PATH. */
static int find_bootagent(char **ret) {
        const char *env = getenv("IMGBUILD_BOOTAGENT");
        char self[PATH_MAX], *s;
        ssize_t n;

        if (env && *env)
                return (*ret = strdup(env)) ? 0 : -ENOMEM;
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        if (asprintf(&s, "%s/../bootagent/bootagent", self) < 0)
                                return -ENOMEM;
                        if (access(s, X_OK) == 0)
                                return *ret = s, 0;
                        free(s);
                }
        }
        return (*ret = strdup("bootagent")) ? 0 : -ENOMEM;
}

/* The local cloud's API on 127.0.0.1, as the host's agents reach it. */
static int write_cloud_json(pool_provider *p, buf *err) {
        _cleanup_free_ char *api_url = NULL;
        int api_port = (int) state_int(p, "port_base") + PORT_API;
        if (asprintf(&api_url, "http://127.0.0.1:%d/v2", api_port) < 0)
                return -ENOMEM;
        return pool_cloud_write(p, api_port, api_url, err);
}

static int host_setup(pool_provider *p, buf *err) {
        int r;

        if (pool_process_is((pid_t) state_int(p, "serve_pid"), "imgbuild"))
                return 0;
        if (!json_object_get(p->state, "pool_id")) {
                _cleanup_free_ char *agent = NULL;
                r = pool_cloud_init(p);
                if (r < 0)
                        return r;
                if (find_bootagent(&agent) < 0 || json_object_set_new(p->state, "bootagent", json_string(agent)) < 0)
                        return -ENOMEM;
        }
        r = write_cloud_json(p, err);
        if (r < 0)
                return r;
        return pool_cloud_start(p, err);
}

static int host_reserve_member(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        json_t *instances = json_object_get(p->state, "instances");
        _cleanup_free_ char *node_name = NULL;
        int r;

        (void) template;
        r = pool_cloud_reserve(p, MAX_INDEX, "127.0.0.", ret_id, ret_ip, err);
        if (r < 0 || !is_node_pool(p))
                return r;
        /* The Node name: the pool's prefix and the member's index, never reused in this pool. */
        json_t *inst = json_array_get(instances, json_array_size(instances) - 1);
        if (asprintf(&node_name, "%s-%d", strempty(state_str(p, "node_prefix")),
                     (int) json_integer_value(json_object_get(inst, "index"))) < 0 ||
            json_object_set_new(inst, "node_name", json_string(node_name)) < 0)
                return -ENOMEM;
        return 0;
}

/* The member's agent.conf. Its metadata and Vault are its own sockets of the local cloud (the URL
 * then gives only the Host header and the path). */
static int write_agent_config(pool_provider *p, const pool_member *m, int index, const char *root, buf *err) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL, *metadata = pool_cloud_socket(p->dir, index, "metadata"),
                            *vault = pool_cloud_socket(p->dir, index, "vault");
        int port_base = (int) state_int(p, "port_base");
        int r;

        if (!metadata || !vault || asprintf(&dir, "%s/etc/bootagent", root) < 0 ||
            asprintf(&path, "%s/agent.conf", dir) < 0)
                return -ENOMEM;
        /* A node: no Vault (it joins with its user-data alone); kubelet run with the flags of the
         * kubelet.service drop-in `bootagent install-units --role node` writes. */
        if (is_node_pool(p) &&
            asprintf(&text,
                     "# bootagent config for pool member %s (host provider, template %s)\n"
                     "[agent]\nrole = node\n\n"
                     "[metadata]\nurl = http://169.254.169.254\nsocket = %s\ndeadline_ms = 10000\n\n"
                     "[node]\ndiscovery_deadline_ms = 30000\ncsr_deadline_ms = 60000\nready_deadline_ms = 120000\n\n"
                     "[units]\nmode = exec\nstart = kubelet.service\n"
                     "exec_start = %s --kubeconfig=${KUBELET_KUBECONFIG} --config=${KUBELET_CONFIG} "
                     "--hostname-override=${KUBELET_NODE_NAME}\n",
                     m->id, m->template, metadata, state_str(p, "kubelet")) < 0)
                return -ENOMEM;
        if (!is_node_pool(p) && asprintf(&text,
                     "# bootagent config for pool member %s (host provider, template %s)\n"
                     "[agent]\nrole = etcd\n\n"
                     "[metadata]\nurl = http://169.254.169.254\nsocket = %s\ndeadline_ms = 10000\n\n"
                     "[vault]\naddress = http://vault.local:8200\nsocket = %s\nrole = etcd\ndeadline_ms = 10000\n\n"
                     "[secret]\npath = etcd/shared\nfield = token\nfile = /etc/etcd/shared-token\nmode = 0640\n\n"
                     "[pki]\nrole = etcd-peer\ncommon_name = etcd-%d.etcd.local\nalt_names = etcd-%d.etcd.local\n"
                     /* etcd checks a peer's certificate against its source address: 127.0.0.1. */
                     "ip_sans = 127.0.0.1\nttl = 24h\ncert_file = /etc/etcd/pki/etcd.crt\n"
                     "key_file = /etc/etcd/pki/etcd.key\nca_file = /etc/etcd/pki/ca.crt\n\n"
                     "[etcd]\nclient_port = %d\npeer_port = %d\ndata_dir = /var/lib/etcd\n"
                     "env_file = /etc/default/etcd-bootagent\ndeadline_ms = 60000\n\n"
                     "[units]\nmode = exec\nstart = etcd.service\n"
                     "exec_start = etcd --heartbeat-interval 100 --election-timeout 1000 --log-level warn\n",
                     m->id, m->template, metadata, vault, index, index,
                     port_base + PORT_ETCD_CLIENT, port_base + PORT_ETCD_PEER) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0755);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                buf_printf(err, "writing %s: %s", path, strerror(-r));
        return r;
}

static char *agent_pid_path(const char *root) {
        char *s;
        return asprintf(&s, "%s/agent.pid", root) < 0 ? NULL : s;
}

/* Run `bootagent VERB --root ROOT`, output appended to ROOT/agent.log. Its PID is kept in
 * ROOT/agent.pid: if an earlier imgbuild was killed while its agent ran, that agent is waited
 * for first, so two agents never work on one root. */
static int run_agent(pool_provider *p, const char *verb, const char *root, buf *err) {
        _cleanup_free_ char *log_path = NULL, *pid_path = agent_pid_path(root);
        _cleanup_close_ int fd = -1;
        char pidbuf[32];
        pid_t pid, previous;
        int status, r;

        if (!pid_path || asprintf(&log_path, "%s/agent.log", root) < 0)
                return -ENOMEM;
        previous = pid_file_read(pid_path);
        for (int i = 0; i < 1200 && pool_process_is(previous, "bootagent"); i++)
                time_sleep_ms(100);
        if (pool_process_is(previous, "bootagent"))
                return buf_printf(err, "an earlier bootagent (pid %d) still runs on %s", (int) previous, root), -EBUSY;
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = negative_errno();
                return buf_printf(err, "opening %s: %s", log_path, strerror(-r)), r;
        }
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stdout_fd = fd;
        opts.stderr_fd = fd;
        r = spawn_start(SPAWN_ARGV(state_str(p, "bootagent"), verb, "--root", root), &opts, &pid);
        if (r < 0)
                return buf_printf(err, "running %s: %s", state_str(p, "bootagent"), strerror(-r)), r;
        snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int) pid);
        (void) write_file_atomic(pid_path, pidbuf, strlen(pidbuf), 0644, (uid_t) -1, (gid_t) -1);
        r = spawn_wait(pid, &status);
        (void) unlink(pid_path);
        if (r < 0)
                return buf_printf(err, "waiting for bootagent %s: %s", verb, strerror(-r)), r;
        if (status != 0)
                return buf_printf(err, "bootagent %s exited with status %d, see %s", verb, status, log_path), -EIO;
        return 0;
}

static int host_start_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id);
        int index = pool_cloud_member_index(p, m->id);
        int r;

        if (!root)
                return -ENOMEM;
        if (index < 0)
                return buf_printf(err, "member %s unknown to the host provider", m->id), index;
        r = host_setup(p, err);  /* the local cloud may have died with the machine */
        if (r < 0)
                return r;
        r = write_cloud_json(p, err);
        if (r < 0)
                return r;
        r = write_agent_config(p, m, index, root, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *metadata = pool_cloud_socket(p->dir, index, "metadata");
        if (!metadata)
                return -ENOMEM;
        r = pool_cloud_wait_metadata(metadata, err);
        if (r < 0)
                return r;
        return run_agent(p, "firstboot", root, err);
}

static int host_leave_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id);
        if (!root)
                return -ENOMEM;
        /* A node has nothing to leave (its drain is the role's); bootagent leave is etcd's. */
        if (access(root, F_OK) < 0 || is_node_pool(p))
                return 0;
        return run_agent(p, "leave", root, err);
}

/* The PID file of the service the member's agent started (etcd or kubelet). */
static char *service_pid_path(pool_provider *p, const char *id) {
        char *s;
        return asprintf(&s, "%s/members/%s/var/lib/bootagent/%s.pid", p->dir, id, service_unit(p)) < 0 ? NULL : s;
}

static int host_destroy_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id), *pid_path = service_pid_path(p, m->id);
        json_t *instances = json_object_get(p->state, "instances"), *inst;
        size_t i;
        int r;

        _cleanup_free_ char *agent_pid = root ? agent_pid_path(root) : NULL;
        pid_t pid;

        if (!root || !pid_path || !agent_pid)
                return -ENOMEM;
        char comm[16];

        /* An agent a killed imgbuild left running, then the etcd (kubelet) it started. */
        pid = pid_file_read(agent_pid);
        if (pool_process_is(pid, "bootagent"))
                (void) kill(pid, SIGKILL);
        service_comm(p, comm);
        pool_stop_group(pid_file_read(pid_path), comm);
        json_array_foreach(instances, i, inst)
                if (streq(strempty(json_string_value(json_object_get(inst, "id"))), m->id)) {
                        json_array_remove(instances, i);
                        break;
                }
        r = write_cloud_json(p, err);
        if (r < 0)
                return r;
        r = rm_rf(root);
        if (r < 0)
                return buf_printf(err, "removing %s: %s", root, strerror(-r)), r;
        return 0;
}

static const char *host_member_state(pool_provider *p, const pool_member *m) {
        _cleanup_free_ char *pid_path = service_pid_path(p, m->id);
        char comm[16];
        service_comm(p, comm);
        return pid_path && pool_process_is(pid_file_read(pid_path), comm) ? "running" : "stopped";
}

static int host_health_inputs(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id);
        pool_health_inputs h = {};

        (void) err;
        if (!root || asprintf(&h.etcd_url, "https://%s:%d", m->ip, etcd_client_port(p)) < 0 ||
            asprintf(&h.ca_file, "%s/etc/etcd/pki/ca.crt", root) < 0 ||
            asprintf(&h.cert_file, "%s/etc/etcd/pki/etcd.crt", root) < 0 ||
            asprintf(&h.key_file, "%s/etc/etcd/pki/etcd.key", root) < 0) {
                pool_health_inputs_done(&h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

static int host_agent_status(pool_provider *p, const pool_member *m, json_t **ret, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id);
        _cleanup_buf_ buf out = BUF_INIT(1024 * 1024);
        int status, r;

        if (!root)
                return -ENOMEM;
        if (access(root, F_OK) < 0)
                return buf_printf(err, "no agent root %s", root), -ENOENT;
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stderr_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        r = spawn_capture(SPAWN_ARGV(state_str(p, "bootagent"), "status", "--json", "--root", root), &opts, &out, &status);
        if (opts.stderr_fd >= 0)
                close(opts.stderr_fd);
        if (r < 0)
                return buf_printf(err, "bootagent status: %s", strerror(-r)), r;
        /* Exit status 1 with a report means the last run failed: the report says so. */
        r = json_parse(out.data, out.len, ret, err);
        if (r < 0 && status != 0)
                return buf_printf(err, "bootagent status exited with %d", status), -EIO;
        return r;
}

/* POOL-INDEX, the index from the member's address (127.0.0.<10 + index>): the name stays known
 * after destroy_member forgot the instance (the role deletes the Node after that). */
static int host_node_name(pool_provider *p, const pool_member *m, char **ret, buf *err) {
        const char *dot = strrchr(m->ip, '.');
        char *end;
        long octet = dot ? strtol(dot + 1, &end, 10) : -1;

        if (!is_node_pool(p))
                return buf_printf(err, "member %s is not a Kubernetes node (pool of role etcd)", m->id), -EOPNOTSUPP;
        if (!dot || *end || octet < 11 || octet > 10 + MAX_INDEX)
                return buf_printf(err, "member %s: unexpected address %s", m->id, m->ip), -EINVAL;
        return asprintf(ret, "%s-%ld", strempty(state_str(p, "node_prefix")), octet - 10) < 0 ? -ENOMEM : 0;
}

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* The bootstrap token in FILE (one line: [a-z0-9]{6}.[a-z0-9]{16}, as bootagent's node user-data
 * wants it). The error never shows the file's content. */
static int read_token(const char *path, char **ret, buf *err) {
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r;

        r = read_file(path, 4096, &text, NULL);
        if (r < 0)
                return buf_printf(err, "--kube-token-file %s: %s", path, strerror(-r)), r;
        n = strcspn(text, "\r\n");
        text[n] = 0;
        bool ok = n == 23 && text[6] == '.';
        for (size_t i = 0; ok && i < n; i++)
                ok = i == 6 || lower_alnum(text[i]);
        if (!ok) {
                explicit_bzero(text, strlen(text));
                return buf_printf(err, "--kube-token-file %s does not hold a bootstrap token "
                                  "([a-z0-9]{6}.[a-z0-9]{16} on its first line)", path), -EINVAL;
        }
        *ret = TAKE_PTR(text);
        return 0;
}

/* A node pool's options: the kubelet binary, the user-data (endpoint, pin, token) and the Node
 * names' prefix (the pool's name as a DNS label). */
static int configure_node(json_t *state, const pool_create_options *o, buf *err) {
        _cleanup_free_ char *token = NULL, *prefix = NULL;
        char kubelet[PATH_MAX];
        size_t n = 0;
        int r;

        if (!o->kubelet || !o->kube_endpoint || !o->kube_ca_pin || !o->kube_token_file)
                return buf_printf(err, "a node pool on the host provider needs --kubelet PATH, --kube-endpoint URL, "
                                  "--kube-ca-pin sha256:HEX and --kube-token-file FILE"), -EINVAL;
        if (!realpath(o->kubelet, kubelet) || access(kubelet, X_OK) < 0) {
                r = -errno;
                return buf_printf(err, "--kubelet %s: %s", o->kubelet, strerror(-r)), r;
        }
        if (strpbrk(kubelet, " \t\n\"'\\$"))
                return buf_printf(err, "--kubelet %s: the path has a space, quote or '$' (it goes on a command line)",
                                  kubelet), -EINVAL;
        if (!startswith(o->kube_endpoint, "https://") || strpbrk(o->kube_endpoint, " \t\r\n"))
                return buf_printf(err, "--kube-endpoint '%s' is not https://HOST:PORT", o->kube_endpoint), -EINVAL;
        bool pin_ok = startswith(o->kube_ca_pin, "sha256:") && strlen(o->kube_ca_pin) == 7 + 64;
        for (size_t i = 7; pin_ok && o->kube_ca_pin[i]; i++)
                pin_ok = (o->kube_ca_pin[i] >= '0' && o->kube_ca_pin[i] <= '9') ||
                         (o->kube_ca_pin[i] >= 'a' && o->kube_ca_pin[i] <= 'f');
        if (!pin_ok)
                return buf_printf(err, "--kube-ca-pin '%s' is not sha256:<64 lowercase hex digits>", o->kube_ca_pin),
                       -EINVAL;
        r = read_token(o->kube_token_file, &token, err);
        if (r < 0)
                return r;
        /* The Node names: the pool's name in lowercase, other characters as '-', then -INDEX. */
        const char *name = o->pool_name ? o->pool_name : "node";
        if (!(prefix = calloc(1, 41)))
                return -ENOMEM;
        for (const char *c = name; *c && n < 40; c++) {
                char l = (*c >= 'A' && *c <= 'Z') ? (char) (*c - 'A' + 'a') : *c;
                if (lower_alnum(l))
                        prefix[n++] = l;
                else if (n > 0 && prefix[n - 1] != '-')
                        prefix[n++] = '-';
        }
        while (n > 0 && prefix[n - 1] == '-')
                prefix[--n] = 0;
        if (n == 0)
                strcpy(prefix, "node");
        r = json_object_set_new(state, "kubelet", json_string(kubelet)) < 0 ||
            json_object_set_new(state, "node_prefix", json_string(prefix)) < 0 ||
            json_object_set_new(state, "kube", json_pack("{s:s, s:s, s:s}", "endpoint", o->kube_endpoint, "ca_pin",
                                                         o->kube_ca_pin, "token", token)) < 0 ? -ENOMEM : 0;
        explicit_bzero(token, strlen(token));
        return r;
}

static int host_configure(json_t *state, const pool_create_options *o, buf *err) {
        int port_base = pool_cloud_port_base(o);
        int r;

        if (port_base < 1024 || port_base + PORT_MEMBER_FIRST + 2 * (MAX_INDEX + 1) > 65535)
                return buf_printf(err, "--port-base %d leaves no room for the pool's ports", port_base), -ERANGE;
        if (o->role && streq(o->role, "node")) {
                r = configure_node(state, o, err);
                if (r < 0)
                        return r;
        } else if (o->kubelet || o->kube_endpoint || o->kube_ca_pin || o->kube_token_file)
                return buf_printf(err, "--kubelet, --kube-endpoint, --kube-ca-pin and --kube-token-file are for "
                                  "a pool of role node"), -EINVAL;
        return json_object_set_new(state, "port_base", json_integer(port_base)) < 0 ? -ENOMEM : 0;
}

const pool_provider_ops pool_host_ops = {
        .name = "host",
        .help = "Provider \"host\" (the default otherwise): members are host processes (bootagent\n"
                "with units = exec, etcd on 127.0.0.x). A template is only a version label\n"
                "recorded on each member: every member runs the same bootagent and etcd\n"
                "binaries, $IMGBUILD_BOOTAGENT, or the one built next to imgbuild, or from PATH.\n"
                "A pool of role node (--role node) runs instead, per member, bootagent's node\n"
                "role and the kubelet binary --kubelet PATH names, with kubelet's own flags\n"
                "(--kubeconfig= --config= --hostname-override=). On one host only a stand-in\n"
                "such as tests/kubelet-standin runs several: a real kubelet needs root and its\n"
                "own ports. Each member joins with the user-data bootagent's node role reads:\n"
                "kube_endpoint (--kube-endpoint https://HOST:PORT, the control plane),\n"
                "kube_ca_pin (--kube-ca-pin sha256:HEX, the cluster CA's public key), kube_token\n"
                "(the bootstrap token, from --kube-token-file FILE: never on the command line)\n"
                "and node_name (POOL-INDEX, e.g. nodes-4). Pool create options only.\n",
        .configure = host_configure,
        .setup = host_setup,
        .teardown = pool_cloud_teardown,
        .reserve_member = host_reserve_member,
        .start_member = host_start_member,
        .leave_member = host_leave_member,
        .destroy_member = host_destroy_member,
        .member_state = host_member_state,
        .health_inputs = host_health_inputs,
        .agent_status = host_agent_status,
        .node_name = host_node_name,
};
