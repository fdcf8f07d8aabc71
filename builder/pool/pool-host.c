/* The host provider: each pool member is a bootagent run on this host with `units = exec`, which
 * starts a real etcd on its own loopback address (127.0.0.<10 + index>). The pool runs its own
 * local cloud (`imgbuild serve`) whose cloud.json lists the members as instances of one instance
 * pool, exactly as tests/integration/agent-lib.sh does by hand. A "template" here is only a label
 * recorded on the member: every member runs the same bootagent and etcd binaries.
 *
 * Layout of the pool directory:
 *   cloud/cloud.json    the local cloud's state (rewritten from provider.instances)
 *   cloud/sockets/      each member's metadata and Vault sockets (pool-cloud.h), 0700
 *   serve.out serve.log the local cloud's output
 *   members/<id>/       the member's root (bootagent --root): config, certificates, etcd data,
 *                       var/lib/bootagent/etcd.service.pid (etcd leads its own process group)
 * Provider state in pool.json: port_base, next_index, serve_pid, pool_id, network_id, api_key,
 * api_secret, etcd_token,
 * bootagent (path), instances [{id, ip, index}]. */
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
        (void) template;
        return pool_cloud_reserve(p, MAX_INDEX, "127.0.0.", ret_id, ret_ip, err);
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
        if (asprintf(&text,
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
        if (access(root, F_OK) < 0)
                return 0;
        return run_agent(p, "leave", root, err);
}

static char *etcd_pid_path(pool_provider *p, const char *id) {
        char *s;
        return asprintf(&s, "%s/members/%s/var/lib/bootagent/etcd.service.pid", p->dir, id) < 0 ? NULL : s;
}

static int host_destroy_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *root = member_root(p, m->id), *pid_path = etcd_pid_path(p, m->id);
        json_t *instances = json_object_get(p->state, "instances"), *inst;
        size_t i;
        int r;

        _cleanup_free_ char *agent_pid = root ? agent_pid_path(root) : NULL;
        pid_t pid;

        if (!root || !pid_path || !agent_pid)
                return -ENOMEM;
        /* An agent a killed imgbuild left running, then the etcd it started. */
        pid = pid_file_read(agent_pid);
        if (pool_process_is(pid, "bootagent"))
                (void) kill(pid, SIGKILL);
        pool_stop_group(pid_file_read(pid_path), "etcd");
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
        _cleanup_free_ char *pid_path = etcd_pid_path(p, m->id);
        return pid_path && pool_process_is(pid_file_read(pid_path), "etcd") ? "running" : "stopped";
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

static int host_configure(json_t *state, const pool_create_options *o, buf *err) {
        int port_base = pool_cloud_port_base(o);
        if (port_base < 1024 || port_base + PORT_MEMBER_FIRST + 2 * (MAX_INDEX + 1) > 65535)
                return buf_printf(err, "--port-base %d leaves no room for the pool's ports", port_base), -ERANGE;
        return json_object_set_new(state, "port_base", json_integer(port_base)) < 0 ? -ENOMEM : 0;
}

const pool_provider_ops pool_host_ops = {
        .name = "host",
        .help = "Provider \"host\" (the default otherwise): members are host processes (bootagent\n"
                "with units = exec, etcd on 127.0.0.x). A template is only a version label\n"
                "recorded on each member: every member runs the same bootagent and etcd\n"
                "binaries, $IMGBUILD_BOOTAGENT, or the one built next to imgbuild, or from PATH.\n",
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
};
