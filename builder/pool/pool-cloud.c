/* The local cloud a pool runs: see pool-cloud.h. */
#include "pool-cloud.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "spawn.h"
#include "time-util.h"

static const char *state_str(pool_provider *p, const char *key) {
        return json_string_value(json_object_get(p->state, key));
}

static int random_hex(size_t n_bytes, char **ret) {
        unsigned char b[32];
        char *s;
        int r;

        if (n_bytes > sizeof(b))
                return -EINVAL;
        r = random_bytes(b, n_bytes);
        if (r < 0)
                return r;
        s = malloc(2 * n_bytes + 1);
        if (!s)
                return -ENOMEM;
        hex_encode(b, n_bytes, s);
        explicit_bzero(b, sizeof(b));
        *ret = s;
        return 0;
}

int pool_cloud_port_base(const pool_create_options *o) {
        /* Below the kernel's ephemeral range (32768..): a port an outgoing connection holds
         * cannot be listened on. */
        return o->port_base > 0 ? o->port_base : 10000 + (int) (random_u64() % 44) * 500;
}

int pool_cloud_init(pool_provider *p) {
        _cleanup_free_ char *key = NULL, *secret = NULL, *token = NULL, *api_key = NULL;
        char pool_id[UUID_STRING_SIZE], network_id[UUID_STRING_SIZE];
        int r;

        if (json_object_get(p->state, "pool_id"))
                return 0;
        random_uuid(pool_id);
        random_uuid(network_id);
        if ((r = random_hex(12, &key)) < 0 || (r = random_hex(24, &secret)) < 0 || (r = random_hex(16, &token)) < 0)
                return r;
        if (asprintf(&api_key, "EXO%s", key) < 0)
                return -ENOMEM;
        r = json_object_set_new(p->state, "pool_id", json_string(pool_id)) < 0 ||
            json_object_set_new(p->state, "network_id", json_string(network_id)) < 0 ||
            json_object_set_new(p->state, "api_key", json_string(api_key)) < 0 ||
            json_object_set_new(p->state, "api_secret", json_string(secret)) < 0 ||
            json_object_set_new(p->state, "etcd_token", json_string(token)) < 0 ||
            json_object_set_new(p->state, "instances", json_array()) < 0 ||
            json_object_set_new(p->state, "next_index", json_integer(1)) < 0 ? -ENOMEM : 0;
        explicit_bzero(secret, strlen(secret));
        explicit_bzero(token, strlen(token));
        return r;
}

char *pool_cloud_socket(const char *pool_dir, int index, const char *service) {
        char *s;
        return asprintf(&s, "%s/cloud/sockets/m%d-%s.sock", pool_dir, index, service) < 0 ? NULL : s;
}

int pool_cloud_write(pool_provider *p, int api_port, const char *api_url, buf *err) {
        _cleanup_json_ json_t *instances = json_array();
        _cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL, *longest = NULL;
        struct sockaddr_un sa;
        json_t *inst;
        size_t i;
        int r;

        if (!instances)
                return -ENOMEM;
        /* The longest socket path of any member index (three digits): it must fit sun_path. */
        if (!(longest = pool_cloud_socket(p->dir, 999, "metadata")))
                return -ENOMEM;
        if (strlen(longest) >= sizeof(sa.sun_path))
                return buf_printf(err, "the pool directory %s is too long for the local cloud's UNIX sockets (%s is "
                                  "over %zu bytes): set IMGBUILD_STATE_DIR to a shorter directory", p->dir, longest,
                                  sizeof(sa.sun_path) - 1), -ENAMETOOLONG;
        json_t *kube = json_object_get(p->state, "kube");
        const char *role = kube ? "node" : "etcd";
        json_array_foreach(json_object_get(p->state, "instances"), i, inst) {
                const char *id = json_string_value(json_object_get(inst, "id"));
                const char *ip = json_string_value(json_object_get(inst, "ip"));
                const char *node_name = json_string_value(json_object_get(inst, "node_name"));
                int index = (int) json_integer_value(json_object_get(inst, "index"));
                _cleanup_free_ char *user_data = NULL;
                char metadata[32], vault[32];
                snprintf(metadata, sizeof(metadata), "m%d-metadata.sock", index);
                snprintf(vault, sizeof(vault), "m%d-vault.sock", index);
                /* A node's user-data, as bootagent's node role reads it (node-userdata.h). */
                if (kube && node_name &&
                    asprintf(&user_data, "kube_token=%s\nkube_endpoint=%s\nkube_ca_pin=%s\nnode_name=%s\n",
                             strempty(json_string_value(json_object_get(kube, "token"))),
                             strempty(json_string_value(json_object_get(kube, "endpoint"))),
                             strempty(json_string_value(json_object_get(kube, "ca_pin"))), node_name) < 0)
                        return -ENOMEM;
                r = json_array_append_new(instances, json_pack(
                            "{s:s, s:s++, s:s, s:s, s:s, s:s, s:[s], s:{s:s}, s:s, s:s, s:s}", "id", id, "name", role,
                            "-", id, "state", "running", "pool", state_str(p, "pool_id"), "private_ip", ip, "public_ip", ip,
                            "security_groups", "etcd", "labels", "role", role, "user_data", strempty(user_data),
                            "metadata_socket", metadata, "vault_socket", vault));
                if (user_data)
                        explicit_bzero(user_data, strlen(user_data));
                if (r < 0)
                        return -ENOMEM;
        }
        _cleanup_json_ json_t *cloud = json_pack(
                "{s:s, s:i, s:s, s:s, s:O, s:[{s:s, s:s, s:I, s:s, s:s}], s:{s:{s:{s:s, s:s, s:[s], s:i}}, s:{s:{s:[s,s,s], s:[s], s:[s], s:[s]}}, s:{s:{s:[s], s:b, s:b, s:b, s:i}}, s:{s:{s:s, s:s, s:s}, s:{s:s}}}}",
                "zone", "local", "api_port", api_port, "api_key",
                state_str(p, "api_key"), "api_secret", state_str(p, "api_secret"), "instances", instances, "pools",
                "id", state_str(p, "pool_id"), "name", "etcd", "size", (json_int_t) json_array_size(instances),
                "template", "etcd", "private_network", state_str(p, "network_id"), "vault", "roles", "etcd", "pool", "etcd", "security_group", "etcd", "policies",
                "etcd", "ttl", 3600, "policies", "etcd", "secret/data/etcd/*", "read", "create", "update",
                "secret/data/bootagent/*", "read", "pki/issue/etcd-peer", "update", "pki/sign/etcd-peer", "update",
                "pki_roles", "etcd-peer", "allowed_domains", "etcd.local", "allow_subdomains", 1, "allow_ip_sans", 1,
                "allow_any_name", 1, "max_ttl", 86400, "kv", "bootagent/cloud-api", "api_key",
                state_str(p, "api_key"), "api_secret", state_str(p, "api_secret"), "api_url", api_url,
                "etcd/shared", "token", state_str(p, "etcd_token"));
        if (!cloud)
                return -ENOMEM;
        text = json_dumps(cloud, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text || asprintf(&dir, "%s/cloud", p->dir) < 0 || asprintf(&path, "%s/cloud.json", dir) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1);
        explicit_bzero(text, strlen(text));
        if (r < 0)
                buf_printf(err, "writing %s: %s", path, strerror(-r));
        return r;
}

/* A pidfd for pid if it is a live (not zombie) process named comm, else -1. The pidfd follows
 * that process, not the number: it polls readable once that process exits, even if the PID is
 * then given to another process (the kernel frees the number when the process is reaped, pidfd
 * or not). A kill by number right after the check can still, in theory, reach a process that
 * took the PID in between. */
static int pidfd_of(pid_t pid, const char *comm) {
        _cleanup_free_ char *path = NULL, *s = NULL;
        if (pid <= 1)
                return -1;
        int fd = pidfd_open(pid, 0);
        if (fd < 0)
                return -1;
        if (asprintf(&path, "/proc/%d/comm", (int) pid) < 0 || read_file(path, 64, &s, NULL) < 0) {
                close(fd);
                return -1;
        }
        s[strcspn(s, "\n")] = 0;
        if (!streq(s, comm) || !process_alive(pid)) {
                close(fd);
                return -1;
        }
        return fd;
}

bool pool_process_is(pid_t pid, const char *comm) {
        _cleanup_close_ int fd = pidfd_of(pid, comm);
        return fd >= 0;
}

/* Whether the process behind pidfd exits within timeout_ms (a pidfd polls readable then). */
static bool pidfd_wait_exit(int pidfd, int timeout_ms) {
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
        int64_t deadline = time_now_ms() + timeout_ms;
        for (;;) {
                int64_t left = deadline - time_now_ms();
                int n = poll(&pfd, 1, left > 0 ? (int) left : 0);
                if (n > 0)
                        return true;
                if (n == 0 || errno != EINTR)
                        return false;
        }
}

int pool_cloud_member_index(pool_provider *p, const char *id) {
        size_t i;
        json_t *inst;
        json_array_foreach(json_object_get(p->state, "instances"), i, inst)
                if (streq(strempty(json_string_value(json_object_get(inst, "id"))), id))
                        return (int) json_integer_value(json_object_get(inst, "index"));
        return -ENOENT;
}

int pool_cloud_reserve(pool_provider *p, int max_index, const char *ip_prefix, char **ret_id, char **ret_ip, buf *err) {
        _cleanup_free_ char *id = NULL, *ip = NULL;
        char uuid[UUID_STRING_SIZE];
        int index = (int) json_integer_value(json_object_get(p->state, "next_index"));

        if (index < 1 || index > max_index)
                return buf_printf(err, "no member addresses left (index %d)", index), -ERANGE;
        random_uuid(uuid);
        if (!(id = strdup(uuid)) || asprintf(&ip, "%s%d", ip_prefix, 10 + index) < 0)
                return -ENOMEM;
        if (json_array_append_new(json_object_get(p->state, "instances"),
                                  json_pack("{s:s, s:s, s:i}", "id", id, "ip", ip, "index", index)) < 0 ||
            json_object_set_new(p->state, "next_index", json_integer(index + 1)) < 0)
                return -ENOMEM;
        *ret_id = TAKE_PTR(id);
        *ret_ip = TAKE_PTR(ip);
        return 0;
}

void pool_stop_group(pid_t pid, const char *comm) {
        _cleanup_close_ int pidfd = pidfd_of(pid, comm);
        if (pidfd < 0)
                return;
        /* The SIGKILL goes only while the leader itself has not exited (its pidfd not readable):
         * a process that took its PID since is not signalled (test-pool-cloud test_pid_reused). */
        (void) kill(-pid, SIGTERM);
        if (!pidfd_wait_exit(pidfd, 5000))
                (void) kill(-pid, SIGKILL);
}

int pool_cloud_start(pool_provider *p, buf *err) {
        _cleanup_free_ char *cloud_dir = NULL, *out_path = NULL, *log_path = NULL, *text = NULL;
        _cleanup_close_ int out_fd = -1, log_fd = -1;
        char self[PATH_MAX];
        pid_t pid;
        int r;

        pid = (pid_t) json_integer_value(json_object_get(p->state, "serve_pid"));
        if (pool_process_is(pid, "imgbuild"))
                return 0;
        if (asprintf(&cloud_dir, "%s/cloud", p->dir) < 0 || asprintf(&out_path, "%s/serve.out", p->dir) < 0 ||
            asprintf(&log_path, "%s/serve.log", p->dir) < 0)
                return -ENOMEM;
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
                r = n < 0 ? negative_errno() : -EIO;
                return buf_printf(err, "cannot find imgbuild itself: %s", strerror(-r)), r;
        }
        self[n] = 0;
        out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out_fd < 0) {
                r = negative_errno();
                return buf_printf(err, "opening %s: %s", out_path, strerror(-r)), r;
        }
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                r = negative_errno();
                return buf_printf(err, "opening %s: %s", log_path, strerror(-r)), r;
        }
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stdout_fd = out_fd;
        opts.stderr_fd = log_fd;
        /* Its own process group: it outlives this command and is stopped by `pool delete`. */
        opts.new_process_group = true;
        r = spawn_start(SPAWN_ARGV(self, "serve", "--state-dir", cloud_dir), &opts, &pid);
        if (r < 0)
                return buf_printf(err, "starting imgbuild serve: %s", strerror(-r)), r;
        if (json_object_set_new(p->state, "serve_pid", json_integer(pid)) < 0)
                return -ENOMEM;
        for (int i = 0; i < 200; i++) {
                free(text);
                text = NULL;
                if (read_file(out_path, 4096, &text, NULL) >= 0 && strstr(text, "serve: ready"))
                        return 0;
                if (!pool_process_is(pid, "imgbuild"))
                        return buf_printf(err, "imgbuild serve exited, see %s", log_path), -ECHILD;
                time_sleep_ms(50);
        }
        return buf_printf(err, "imgbuild serve not ready after 10 s, see %s", log_path), -ETIMEDOUT;
}

int pool_cloud_teardown(pool_provider *p, buf *err) {
        (void) err;
        pool_stop_group((pid_t) json_integer_value(json_object_get(p->state, "serve_pid")), "imgbuild");
        return 0;
}

int pool_cloud_wait_metadata(const char *socket_path, buf *err) {
        static const char url[] = "http://169.254.169.254/latest/meta-data/instance-id";
        for (int i = 0; i < 100; i++) {
                http_response resp = {};
                http_request req = { .url = url, .unix_socket = socket_path, .timeout_ms = 1000 };
                int r = http_do(&req, &resp, NULL);
                long status = resp.status;
                http_response_free(&resp);
                if (r >= 0 && status == 200)
                        return 0;
                time_sleep_ms(100);
        }
        return buf_printf(err, "instance metadata not served on %s", socket_path), -ETIMEDOUT;
}
