/* The QEMU provider: every pool member is a TCG (or KVM) VM booted from NAME@VERSION in the
 * local template store, running the template's own first-boot agent against the pool's local
 * cloud (`imgbuild serve`), exactly as an instance would in the cloud.
 *
 * Networking (no root needed, nothing leaves loopback):
 * - NIC0, user-mode, restricted (no way out): the link-local net 169.254.169.0/24, where
 *   169.254.169.254 port 80 is the member's own metadata socket, 8200 its own Vault socket (so the
 *   local cloud knows who calls by the socket, as the cloud knows a source IP; only this user can
 *   open them) and 8080 the cloud API's port, each a guestfwd to socat (pool_qemu_guestfwd()).
 *   A host forward 127.0.0.1:<etcd port> -> 10.10.0.N:2379 lets the CLI reach the member's etcd.
 * - NIC1, a multicast socket bound to 127.0.0.1 shared by the pool's members: the private
 *   network 10.10.0.0/24, each member's address (10.10.0.<10 + index>) given on the kernel
 *   command line (systemd-network-generator in the template turns ip= into a .network file).
 *   etcd peers and clients use it.
 *
 * Layout of the pool directory:
 *   cloud/cloud.json, cloud/pki/   the local cloud's state and CA
 *   cloud/sockets/                 each member's metadata and Vault sockets (pool-cloud.h), 0700
 *   serve.out serve.log            the local cloud's output
 *   client/ca.crt client.crt client.key  the CLI's etcd client certificate (0600), from that CA
 *   members/m<index>/              disk.qcow2 (overlay of the template's disk), template.sha256 (the
 *                                  digest of the disk it was made on, checked before each start), qemu.pid,
 *                                  comm.sock, qmp.sock, console.log, qemu.log
 * Provider state in pool.json: port_base, store, next_index, serve_pid, pool_id, network_id,
 * api_key, api_secret, etcd_token, instances [{id, ip, index}]. */
#include "pool-qemu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "fs.h"
#include "io-util.h"
#include "json.h"
#include "localpki.h"
#include "pool-cloud.h"
#include "qemu.h"
#include "spawn.h"
#include "strv.h"
#include "templates.h"
#include "time-util.h"

#define PORT_API 0
#define PORT_MCAST 1       /* UDP */
#define PORT_MEMBER_FIRST 10
#define PORTS_PER_MEMBER 3 /* two unused (metadata and Vault were ports), the etcd forward */
#define MAX_INDEX 150
#define MCAST_GROUP "230.0.0.1"
#define LINK_LOCAL "169.254.169.254"
#define BOOT_TIMEOUT_S 300
#define FIRSTBOOT_TIMEOUT_MS (10 * 60 * 1000)
#define POWERDOWN_TIMEOUT_S 30
#define COMM_TIMEOUT_S 120
#define QEMU_COMM "qemu-system-x86" /* the kernel's 15-character comm */

static int64_t state_int(pool_provider *p, const char *key) {
        return json_integer_value(json_object_get(p->state, key));
}

static const char *state_str(pool_provider *p, const char *key) {
        return json_string_value(json_object_get(p->state, key));
}

static int etcd_forward_port(pool_provider *p, int index) {
        return (int) state_int(p, "port_base") + PORT_MEMBER_FIRST + PORTS_PER_MEMBER * index + 2;
}

static char *member_dir(pool_provider *p, int index) {
        char *s;
        return asprintf(&s, "%s/members/m%d", p->dir, index) < 0 ? NULL : s;
}

static char *member_file(pool_provider *p, int index, const char *name) {
        char *s;
        return asprintf(&s, "%s/members/m%d/%s", p->dir, index, name) < 0 ? NULL : s;
}

static pid_t member_pid(pool_provider *p, int index) {
        _cleanup_free_ char *path = member_file(p, index, "qemu.pid");
        pid_t pid = path ? pid_file_read(path) : 0;
        return pool_process_is(pid, QEMU_COMM) ? pid : 0;
}

static int write_cloud_json(pool_provider *p, buf *err) {
        /* Members reach the cloud API through their guestfwd on the link-local address. */
        return pool_cloud_write(p, (int) state_int(p, "port_base") + PORT_API, "http://" LINK_LOCAL ":8080/v2", err);
}

/* The CLI's client certificate for the members' etcd (client certificate auth), issued once by
 * the local cloud's CA. */
static int write_client_cert(pool_provider *p, buf *err) {
        _cleanup_free_ char *dir = NULL, *ca_dir = NULL, *cert_path = NULL, *key_path = NULL, *ca_path = NULL,
                            *key_pem = NULL;
        _cleanup_(localpki_freep) localpki *pki = NULL;
        localpki_cert cert = {};
        EVP_PKEY *key = NULL;
        int r;

        if (asprintf(&dir, "%s/client", p->dir) < 0 || asprintf(&ca_dir, "%s/cloud/pki", p->dir) < 0 ||
            asprintf(&cert_path, "%s/client.crt", dir) < 0 || asprintf(&key_path, "%s/client.key", dir) < 0 ||
            asprintf(&ca_path, "%s/ca.crt", dir) < 0)
                return -ENOMEM;
        if (access(cert_path, F_OK) == 0)
                return 0;
        r = localpki_open(ca_dir, &pki);
        if (r < 0)
                return buf_printf(err, "opening the pool's CA in %s: %s", ca_dir, strerror(-r)), r;
        localpki_request req = { .common_name = "imgbuild-pool-client", .ttl = 365 * 24 * 3600 };
        r = localpki_generate_key(&key);
        if (r >= 0)
                r = localpki_issue(pki, &req, key, time(NULL), &cert);
        if (r >= 0)
                r = localpki_private_key_pem(key, &key_pem);
        EVP_PKEY_free(key);
        if (r >= 0)
                r = mkdir_p(dir, 0700);
        /* The key first: a certificate on disk means the set is complete. */
        if (r >= 0)
                r = write_file_atomic(key_path, key_pem, strlen(key_pem), 0600, (uid_t) -1, (gid_t) -1);
        if (r >= 0)
                r = write_file_atomic(ca_path, localpki_ca_pem(pki), strlen(localpki_ca_pem(pki)), 0600, (uid_t) -1,
                                      (gid_t) -1);
        if (r >= 0)
                r = write_file_atomic(cert_path, cert.certificate, strlen(cert.certificate), 0600, (uid_t) -1, (gid_t) -1);
        if (key_pem)
                explicit_bzero(key_pem, strlen(key_pem));
        localpki_cert_done(&cert);
        if (r < 0)
                buf_printf(err, "issuing the pool's etcd client certificate in %s: %s", dir, strerror(-r));
        return r;
}

static int qemu_setup(pool_provider *p, buf *err) {
        int r;

        r = pool_cloud_init(p);
        if (r < 0)
                return r;
        if (!pool_process_is((pid_t) state_int(p, "serve_pid"), "imgbuild")) {
                r = write_cloud_json(p, err);
                if (r >= 0)
                        r = pool_cloud_start(p, err);
                if (r < 0)
                        return r;
        }
        /* After serve: it creates the CA on its first start. */
        return write_client_cert(p, err);
}

/* A path socat can be given as written: in a QEMU option (',' ends it), split into argv by
 * libslirp (quotes, backslashes, blanks) and read as a socat address (':' ',' '!' and more). */
static bool guestfwd_path_ok(const char *path) {
        return path[0] == '/' &&
               strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-") == strlen(path);
}

int pool_qemu_guestfwd(const char *pool_dir, int index, int api_port, char ***ret, buf *err) {
        _cleanup_free_ char *metadata = pool_cloud_socket(pool_dir, index, "metadata"),
                            *vault = pool_cloud_socket(pool_dir, index, "vault");
        _cleanup_strv_free_ char **fwd = NULL;

        if (!metadata || !vault)
                return -ENOMEM;
        for (const char *path = metadata; path; path = path == metadata ? vault : NULL)
                if (!guestfwd_path_ok(path))
                        return buf_printf(err, "%s: QEMU's guestfwd cannot carry this path (only A-Z a-z 0-9 / . _ -): "
                                          "set IMGBUILD_STATE_DIR to a plainer directory", path), -EINVAL;
        if (strv_pushf(&fwd, "tcp:" LINK_LOCAL ":80-cmd:socat STDIO UNIX-CONNECT:%s", metadata) < 0 ||
            strv_pushf(&fwd, "tcp:" LINK_LOCAL ":8200-cmd:socat STDIO UNIX-CONNECT:%s", vault) < 0 ||
            strv_pushf(&fwd, "tcp:" LINK_LOCAL ":8080-cmd:socat STDIO TCP:127.0.0.1:%d", api_port) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(fwd);
        return 0;
}

static int qemu_reserve_member(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        (void) template;
        return pool_cloud_reserve(p, MAX_INDEX, "10.10.0.", ret_id, ret_ip, err);
}

/* A member's disk is an overlay on its template's disk, by path: started on other content (the
 * template deleted and built again) it would corrupt its file system. Refuse that. */
static int check_overlay_base(const char *record, const char *digest, const char *member_id, const char *template,
                              buf *err) {
        _cleanup_free_ char *made_on = NULL;
        int r = read_file(record, SHA256_HEX_SIZE, &made_on, NULL);

        if (r == -ENOENT)
                return 0; /* a member made before the record was kept */
        if (r < 0)
                return buf_printf(err, "reading %s: %s", record, strerror(-r)), r;
        if (!streq(made_on, digest))
                return buf_printf(err, "member %s: its disk is an overlay on %s as it was (disk sha256 %.12s), but the "
                                  "template's disk is now %.12s: replace the member instead of restarting it",
                                  member_id, template, made_on, digest), -ESTALE;
        return 0;
}

int pool_qemu_member_disk(const base_image *tmpl, const char *dir, const char *member_id, const char *template,
                          buf *err) {
        _cleanup_free_ char *disk = NULL, *base_record = NULL;
        char digest[SHA256_HEX_SIZE];
        int r;

        if (asprintf(&disk, "%s/disk.qcow2", dir) < 0 || asprintf(&base_record, "%s/template.sha256", dir) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return buf_printf(err, "creating %s: %s", dir, strerror(-r)), r;
        r = template_disk_sha256(tmpl, digest);
        if (r < 0)
                return buf_printf(err, "reading the disk digest in %s/manifest.json: %s", tmpl->dir, strerror(-r)), r;
        if (access(disk, F_OK) == 0)
                return check_overlay_base(base_record, digest, member_id, template, err);

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", disk) < 0)
                return -ENOMEM;
        /* The base's digest first, then the overlay under a temporary name: a disk that exists is
         * a whole overlay, and says what it was made on. */
        r = write_file_atomic(base_record, digest, strlen(digest), 0600, (uid_t) -1, (gid_t) -1);
        if (r >= 0)
                r = qemu_overlay_create(tmpl->disk, tmp, 0);
        if (r >= 0 && rename(tmp, disk) < 0)
                r = -errno;
        if (r < 0)
                return buf_printf(err, "creating %s on %s: %s", disk, tmpl->disk, strerror(-r)), r;
        return 0;
}

/* Boot the member's VM unless it runs: a new overlay for a new member, the existing disk for a
 * member whose VM died (its agent resumes from its journal). Returns without waiting. */
static int qemu_boot_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *dir = NULL, *disk = NULL, *kernel_args = NULL, *mcast = NULL, *mac = NULL;
        _cleanup_strv_free_ char **guestfwd = NULL, **hostfwd = NULL;
        _cleanup_(base_image_done) base_image tmpl = {};
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        int index = pool_cloud_member_index(p, m->id), base = (int) state_int(p, "port_base");
        int r;

        if (index < 0)
                return buf_printf(err, "member %s unknown to the qemu provider", m->id), index;
        r = qemu_setup(p, err); /* the local cloud may have died with the machine */
        if (r >= 0)
                r = write_cloud_json(p, err);
        if (r >= 0)
                r = pool_qemu_guestfwd(p->dir, index, base + PORT_API, &guestfwd, err);
        if (r >= 0) {
                _cleanup_free_ char *metadata = pool_cloud_socket(p->dir, index, "metadata");
                r = metadata ? pool_cloud_wait_metadata(metadata, err) : -ENOMEM;
        }
        if (r < 0)
                return r;
        if (member_pid(p, index) > 0)
                return 0;

        r = template_open(state_str(p, "store"), m->template, &tmpl);
        if (r < 0)
                return buf_printf(err, "template %s not in the store %s: %s", m->template, state_str(p, "store"),
                                  strerror(-r)), r;
        if (!(dir = member_dir(p, index)) || !(disk = member_file(p, index, "disk.qcow2")))
                return -ENOMEM;
        r = pool_qemu_member_disk(&tmpl, dir, m->id, m->template, err);
        if (r < 0)
                return r;
        if (asprintf(&kernel_args, "net.ifnames=0 ip=%s:::255.255.255.0::eth1:off", m->ip) < 0 ||
            asprintf(&mcast, MCAST_GROUP ":%d", base + PORT_MCAST) < 0 ||
            asprintf(&mac, "52:54:00:0a:0a:%02x", index) < 0 ||
            strv_pushf(&hostfwd, "tcp:127.0.0.1:%d-%s:2379", etcd_forward_port(p, index), m->ip) < 0)
                return -ENOMEM;
        qemu_vm_config config = {
                .kernel = tmpl.kernel, .initrd = tmpl.initrd, .disk = disk, .memory_mb = 1024, .cpus = 1,
                .kernel_args = kernel_args, .user_net = "net=169.254.169.0/24,host=169.254.169.1,dhcpstart=169.254.169.15", .guestfwd = guestfwd, .hostfwd = hostfwd,
                .mcast = mcast, .mcast_mac = mac, .dir = dir, .detached = true,
        };
        r = qemu_vm_start(&config, &vm);
        if (r < 0)
                return buf_printf(err, "starting the VM of member %s: %s (see %s/qemu.log)", m->id, strerror(-r), dir), r;
        return 0;
}

/* Run argv in the member's VM; its stdout (capped at 1 MiB) in out when out is not NULL. */
static int member_exec(pool_provider *p, int index, char *const *argv, buf *out, int *ret_status, buf *err) {
        _cleanup_free_ char *dir = member_dir(p, index), *remote_err = NULL;
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        _cleanup_close_ int fd = -1;
        pid_t pid = member_pid(p, index);
        int r;

        if (!dir)
                return -ENOMEM;
        if (pid <= 0)
                return buf_printf(err, "the VM of member index %d is not running", index), -ESRCH;
        r = qemu_vm_attach(dir, pid, COMM_TIMEOUT_S, &vm);
        if (r < 0)
                return buf_printf(err, "connecting to the VM in %s: %s", dir, strerror(-r)), r;
        if (out) {
                fd = memfd_create("member-exec", MFD_CLOEXEC);
                if (fd < 0) {
                        r = negative_errno();
                        return buf_printf(err, "memfd_create: %s", strerror(-r)), r;
                }
        }
        r = comm_client_exec(qemu_vm_comm(vm), argv, NULL, NULL, out ? fd : -1, -1, ret_status, &remote_err);
        if (r < 0)
                return buf_printf(err, "running %s in the VM: %s%s%s", argv[0], strerror(-r), remote_err ? ": " : "",
                                  strempty(remote_err)), r;
        if (out) {
                char chunk[16384];
                ssize_t n;
                if (lseek(fd, 0, SEEK_SET) < 0)
                        return -errno;
                while ((n = loop_read(fd, chunk, sizeof(chunk))) > 0)
                        if (out->len + (size_t) n > 1024 * 1024 || buf_append(out, chunk, (size_t) n) < 0)
                                return buf_printf(err, "%s printed too much", argv[0]), -ENOBUFS;
                if (n < 0)
                        return (int) n;
        }
        return 0;
}

static int agent_report(pool_provider *p, int index, json_t **ret, buf *err) {
        _cleanup_buf_ buf out = BUF_INIT(1024 * 1024);
        int status, r;

        r = member_exec(p, index, SPAWN_ARGV("/usr/local/bin/bootagent", "status", "--json"), &out, &status, err);
        if (r < 0)
                return r;
        /* Exit status 1 with a report means the last run failed: the report says so. */
        r = json_parse(out.data ?: "", out.len, ret, err);
        if (r < 0 && status != 0)
                return buf_printf(err, "bootagent status exited with %d", status), -EIO;
        return r;
}

/* Wait until the member's first-boot agent finished in this boot: its unit is active (Type=notify,
 * ready when the agent is done; the journal alone would still show an earlier boot's "done"). */
static int wait_firstboot(pool_provider *p, const pool_member *m, int index, buf *err) {
        int64_t deadline = time_now_ms() + FIRSTBOOT_TIMEOUT_MS;
        _cleanup_buf_ buf last = BUF_INIT(4096);
        int status, r;

        while (time_now_ms() < deadline) {
                _cleanup_buf_ buf out = BUF_INIT(4096);
                buf_clear(&last);
                if (member_pid(p, index) <= 0)
                        return buf_printf(err, "the VM of member %s exited during its first boot, see %s/members/m%d/console.log",
                                          m->id, p->dir, index), -ECHILD;
                r = member_exec(p, index, SPAWN_ARGV("systemctl", "is-active", "bootagent-firstboot.service"), &out,
                                &status, &last);
                const char *state = r >= 0 && out.data ? out.data : "";
                if (startswith(state, "active"))
                        return 0;
                if (startswith(state, "failed")) {
                        _cleanup_json_ json_t *report = NULL;
                        _cleanup_buf_ buf report_err = BUF_INIT(1024);
                        json_t *stages = NULL, *s = NULL;
                        if (agent_report(p, index, &report, &report_err) >= 0) {
                                stages = json_object_get(report, "stages");
                                s = json_array_get(stages, json_array_size(stages) - 1);
                        }
                        return buf_printf(err, "first boot of member %s failed in stage %s: %s", m->id,
                                          s ? strempty(json_path_string(s, "stage")) : "?",
                                          s ? strempty(json_path_string(s, "detail")) : report_err.data), -EIO;
                }
                if (r >= 0)
                        buf_printf(&last, "bootagent-firstboot.service: %.*s", (int) strcspn(state, "\n"), state);
                time_sleep_ms(2000);
        }
        return buf_printf(err, "first boot of member %s did not finish in %d s (%s)", m->id, FIRSTBOOT_TIMEOUT_MS / 1000,
                          last.len ? last.data : "no answer"), -ETIMEDOUT;
}

static int qemu_start_member(pool_provider *p, const pool_member *m, buf *err) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        int index = pool_cloud_member_index(p, m->id);
        int r;

        r = qemu_boot_member(p, m, err);
        if (r < 0)
                return r;
        if (!(dir = member_dir(p, index)))
                return -ENOMEM;
        /* The communicator answers once the guest's systemd started it. */
        r = qemu_vm_attach(dir, member_pid(p, index), 0, &vm);
        if (r >= 0)
                r = qemu_vm_wait_ready(vm, BOOT_TIMEOUT_S);
        if (r < 0)
                return buf_printf(err, "the VM of member %s did not come up: %s (console: %s/console.log)", m->id,
                                  strerror(-r), dir), r;
        vm = qemu_vm_free(vm);
        return wait_firstboot(p, m, index, err);
}

static int qemu_leave_member(pool_provider *p, const pool_member *m, buf *err) {
        int index = pool_cloud_member_index(p, m->id), status, r;

        if (index < 0 || member_pid(p, index) <= 0)
                return buf_printf(err, "the VM of member %s is not running", m->id), -ESRCH;
        r = member_exec(p, index, SPAWN_ARGV("/usr/local/bin/bootagent", "leave"), NULL, &status, err);
        if (r < 0)
                return r;
        if (status != 0)
                return buf_printf(err, "bootagent leave exited with status %d", status), -EIO;
        return 0;
}

static int qemu_destroy_member(pool_provider *p, const pool_member *m, buf *err) {
        json_t *instances = json_object_get(p->state, "instances"), *inst;
        int index = pool_cloud_member_index(p, m->id);
        size_t i;
        int r;

        if (index >= 0) {
                _cleanup_free_ char *dir = member_dir(p, index);
                pid_t pid = member_pid(p, index);
                if (!dir)
                        return -ENOMEM;
                if (pid > 0) {
                        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
                        /* A clean power-off first (etcd stops in order); the group goes either
                         * way, with the guestfwd helpers QEMU started. */
                        if (qemu_vm_attach(dir, pid, 0, &vm) >= 0)
                                (void) qemu_vm_powerdown(vm, POWERDOWN_TIMEOUT_S);
                        (void) kill(-pid, SIGKILL);
                        /* Ours to reap when this process started it. */
                        (void) waitpid(pid, NULL, WNOHANG);
                }
                r = rm_rf(dir);
                if (r < 0)
                        return buf_printf(err, "removing %s: %s", dir, strerror(-r)), r;
        }
        json_array_foreach(instances, i, inst)
                if (streq(strempty(json_string_value(json_object_get(inst, "id"))), m->id)) {
                        json_array_remove(instances, i);
                        break;
                }
        return write_cloud_json(p, err);
}

static const char *qemu_member_state(pool_provider *p, const pool_member *m) {
        int index = pool_cloud_member_index(p, m->id);
        return index >= 0 && member_pid(p, index) > 0 ? "running" : "stopped";
}

static int qemu_health_inputs(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err) {
        pool_health_inputs h = {};
        int index = pool_cloud_member_index(p, m->id);

        if (index < 0)
                return buf_printf(err, "member %s unknown to the qemu provider", m->id), -ENOENT;
        /* etcd listens on the private address only; the host forward reaches it there, and the
         * certificate is checked against that address. */
        if (asprintf(&h.etcd_url, "https://%s:2379", m->ip) < 0 ||
            asprintf(&h.connect_to, "127.0.0.1:%d", etcd_forward_port(p, index)) < 0 ||
            asprintf(&h.ca_file, "%s/client/ca.crt", p->dir) < 0 ||
            asprintf(&h.cert_file, "%s/client/client.crt", p->dir) < 0 ||
            asprintf(&h.key_file, "%s/client/client.key", p->dir) < 0) {
                pool_health_inputs_done(&h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

static int qemu_agent_status(pool_provider *p, const pool_member *m, json_t **ret, buf *err) {
        int index = pool_cloud_member_index(p, m->id);
        if (index < 0)
                return buf_printf(err, "member %s unknown to the qemu provider", m->id), -ENOENT;
        return agent_report(p, index, ret, err);
}

static int qemu_configure(json_t *state, const pool_create_options *o, buf *err) {
        _cleanup_free_ char *dir = NULL;
        int port_base = pool_cloud_port_base(o);
        int r;

        if (port_base < 1024 || port_base + PORT_MEMBER_FIRST + PORTS_PER_MEMBER * (MAX_INDEX + 1) > 65535)
                return buf_printf(err, "--port-base %d leaves no room for the pool's ports", port_base), -ERANGE;
        r = base_store_dir(o->cache_dir, &dir);
        if (r < 0)
                return buf_printf(err, "Failed to find the image store: %s", strerror(-r)), r;
        if (json_object_set_new(state, "port_base", json_integer(port_base)) < 0 ||
            json_object_set_new(state, "store", json_string(dir)) < 0)
                return -ENOMEM;
        return 0;
}

const pool_provider_ops pool_qemu_ops = {
        .name = "qemu",
        .help = "Provider \"qemu\" (the default when T@V is a template in the image store,\n"
                "--cache-dir or the default store): each member is a VM (1 vCPU, 1024 MB) booted\n"
                "from an overlay of the template's disk; its baked-in agent does the first boot.\n"
                "Members reach their own metadata and Vault on 169.254.169.254 (user-mode NIC,\n"
                "no other way out) and each other on 10.10.0.0/24 (a second NIC on a multicast\n"
                "socket bound to 127.0.0.1). The VMs outlive the command (pid, QMP and\n"
                "communicator sockets in the pool directory); etcd is checked through a port\n"
                "forward with a client certificate from the pool's CA. Needs socat.\n",
        .store_templates = true,
        .configure = qemu_configure,
        .setup = qemu_setup,
        .teardown = pool_cloud_teardown,
        .reserve_member = qemu_reserve_member,
        .boot_member = qemu_boot_member,
        .start_member = qemu_start_member,
        .leave_member = qemu_leave_member,
        .destroy_member = qemu_destroy_member,
        .member_state = qemu_member_state,
        .health_inputs = qemu_health_inputs,
        .agent_status = qemu_agent_status,
};
