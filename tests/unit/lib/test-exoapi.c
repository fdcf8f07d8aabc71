/* lib/exoapi against tests/fake-exoscale (started here on loopback, killed by PID at exit):
 * the template flow, pools (list fields surviving an update), and the errors a caller sees. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "crypto.h"
#include "exoapi.h"
#include "exoscale.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "spawn.h"

#define KEY "EXO0123456789abcdef01234567"
#define SECRET "s3cr3t-fake-exoscale-secret-do-not-log-abcd"

static pid_t fake_pid;
static int fake_port;
static char endpoint[128];

/* Returns the fake's exit status: 0 after a clean shutdown (and no sanitizer reports). */
static int stop_fake(void) {
        int status = -1;
        if (fake_pid > 0) {
                kill(fake_pid, SIGTERM);
                (void) spawn_wait(fake_pid, &status);
                fake_pid = 0;
        }
        return status;
}

static void stop_fake_at_exit(void) {
        (void) stop_fake();
}

static void start_fake(void) {
        int fds[2];
        char line[32] = {};

        CHECK(setenv("EXOSCALE_API_KEY", KEY, 1) == 0);
        CHECK(setenv("EXOSCALE_API_SECRET", SECRET, 1) == 0);
        CHECK(pipe2(fds, O_CLOEXEC) == 0);
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stdout_fd = fds[1];
        CHECK_OK(spawn_start(SPAWN_ARGV(FAKE_EXOSCALE, "--pending-polls", "2"), &opts, &fake_pid));
        atexit(stop_fake_at_exit);
        close(fds[1]);
        CHECK(read(fds[0], line, sizeof(line) - 1) > 0);
        close(fds[0]);
        fake_port = atoi(line);
        CHECK(fake_port > 0);
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/{zone}/v2", fake_port);
}

static exoapi *client(const char *secret, const char *zone) {
        exoapi_credentials cr = { .key = (char *) KEY, .secret = (char *) secret };
        exoapi *c;
        CHECK_OK(exoapi_new(&cr, zone, &c));
        CHECK_OK(exoapi_set_endpoint(c, endpoint));
        exoapi_set_poll_interval(c, 5);
        exoapi_set_operation_timeout(c, 10000);
        return c;
}

/* A failed call: the errno, a message containing want, and no credentials in it. */
static void check_failure(exoapi *c, int r, int want_r, const char *want) {
        const char *e = exoapi_error(c);
        if (r != want_r || !strstr(e, want)) {
                fprintf(stderr, "expected %d with \"%s\", got %d: \"%s\"\n", want_r, want, r, e);
                exit(1);
        }
        CHECK(!strstr(e, KEY) && !strstr(e, SECRET));
}

static void check_private_template(exoapi *c, const char *id, bool want) {
        _cleanup_json_ json_t *list = NULL;
        json_t *t;
        size_t i;
        bool found = false;

        CHECK_OK(exoapi_template_list_private(c, &list));
        json_array_foreach(list, i, t)
                found = found || streq(strempty(json_path_string(t, "id")), id);
        CHECK(found == want);
}

static char *first_id(exoapi *c, const char *path, const char *query, const char *field) {
        _cleanup_json_ json_t *j = NULL;
        CHECK_OK(exoapi_request(c, "GET", path, query, NULL, &j));
        char *id = strdup(strempty(json_path_string(json_array_get(json_object_get(j, field), 0), "id")));
        CHECK(id && *id);
        return id;
}

/* The packer flow (protocols.md §2.4): instance, stop, snapshot, export + register, copy to a
 * second zone; and the promote shortcut. Returns the registered template's id. */
static char *test_template_flow(exoapi *c, const char *type_id, const char *base_id) {
        _cleanup_free_ char *sg = NULL, *inst = NULL, *snap = NULL, *tid = NULL, *copy = NULL, *promoted = NULL;
        _cleanup_json_ json_t *j = NULL, *s = NULL, *t = NULL;
        int r;

        CHECK_OK(exoapi_security_group_create(c, "imgbuild-build", "build instances", &sg));
        CHECK_OK(exoapi_security_group_add_rule(c, sg, &(exoapi_sg_rule){
                .flow_direction = "ingress", .protocol = "tcp", .start_port = 22, .end_port = 22,
                .network = "0.0.0.0/0" }));
        CHECK_OK(exoapi_security_group_add_rule(c, sg, &(exoapi_sg_rule){
                .flow_direction = "ingress", .protocol = "tcp", .start_port = 2379, .end_port = 2380,
                .security_group_id = sg, .description = "etcd peers" }));
        CHECK_OK(exoapi_security_group_get(c, sg, &j));
        CHECK(json_array_size(json_object_get(j, "rules")) == 2);
        CHECK_STREQ(json_path_string(j, "rules.1.security-group.id"), sg);
        CHECK(json_integer_value(json_path(j, "rules.0.start-port")) == 22);
        json_decref(TAKE_PTR(j));

        CHECK_OK(exoapi_ssh_key_create(c, "imgbuild-build", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA build"));
        check_failure(c, exoapi_ssh_key_create(c, "imgbuild-build", "ssh-ed25519 AAAA x"), -EEXIST,
                      "/ch-gva-2/v2/ssh-key: HTTP 409: ssh-key imgbuild-build already exists");

        exoapi_instance_spec spec = {
                .name = "imgbuild-etcd",
                .instance_type_id = type_id,
                .template_id = base_id,
                .disk_size_gb = 20,
                .security_group_ids = (char *const[]){ sg, NULL },
                .ssh_key = "imgbuild-build",
                .user_data = "#cloud-config\n",
                .labels = (char *const[]){ (char *) "imgbuild-build=b1", NULL },
        };
        CHECK_OK(exoapi_instance_create(c, &spec, &inst));
        CHECK_OK(exoapi_instance_get(c, inst, &j));
        CHECK_STREQ(json_path_string(j, "state"), "running");
        CHECK_STREQ(json_path_string(j, "user-data"), "I2Nsb3VkLWNvbmZpZwo=");
        CHECK_STREQ(json_path_string(j, "labels.imgbuild-build"), "b1");
        CHECK_STREQ(json_path_string(j, "security-groups.0.id"), sg);
        CHECK_STREQ(json_path_string(j, "ssh-key.name"), "imgbuild-build");
        json_decref(TAKE_PTR(j));

        CHECK_OK(exoapi_instance_stop(c, inst));
        CHECK_OK(exoapi_instance_get(c, inst, &j));
        CHECK_STREQ(json_path_string(j, "state"), "stopped");
        json_decref(TAKE_PTR(j));
        CHECK_OK(exoapi_instance_start(c, inst));
        CHECK_OK(exoapi_instance_stop(c, inst));

        CHECK_OK(exoapi_snapshot_create(c, inst, &snap));
        CHECK_OK(exoapi_snapshot_get(c, snap, &j));
        CHECK_STREQ(json_path_string(j, "instance.id"), inst);
        json_decref(TAKE_PTR(j));
        CHECK_OK(exoapi_snapshot_export(c, snap, &s));
        const char *url = json_path_string(s, "export.presigned-url");
        const char *md5 = json_path_string(s, "export.md5sum");
        CHECK(url && md5 && strlen(md5) == 32);
        CHECK_STREQ(json_path_string(s, "state"), "exported");

        exoapi_template_spec ts = {
                .name = "etcd", .url = url, .checksum = md5, .boot_mode = "uefi",
                .default_user = "debian", .description = "etcd role", .ssh_key_enabled = true,
        };
        CHECK_OK(exoapi_template_register(c, &ts, &tid));
        CHECK_OK(exoapi_template_get(c, tid, &t));
        CHECK_STREQ(json_path_string(t, "checksum"), md5);
        CHECK_STREQ(json_path_string(t, "boot-mode"), "uefi");
        CHECK(json_is_false(json_object_get(t, "password-enabled")));
        check_private_template(c, tid, true);

        /* Registration that cannot verify its image fails as an operation, with the reason. */
        ts.checksum = "00000000000000000000000000000000";
        _cleanup_free_ char *bad = NULL;
        r = exoapi_template_register(c, &ts, &bad);
        check_failure(c, r, -EREMOTEIO, ": incorrect: checksum mismatch");
        CHECK(startswith(exoapi_error(c), "operation ") && strstr(exoapi_error(c), " failed: "));
        CHECK(!bad);

        /* Copy: the new id lives in the target zone only. */
        CHECK_OK(exoapi_template_copy(c, tid, "de-fra-1", &copy));
        CHECK(!streq(copy, tid));
        check_failure(c, exoapi_template_get(c, copy, &j), -ENOENT, "HTTP 404: template");
        CHECK_OK(exoapi_set_zone(c, "de-fra-1"));
        CHECK_OK(exoapi_template_get(c, copy, &j));
        CHECK_STREQ(json_path_string(j, "name"), "etcd");
        CHECK_STREQ(json_path_string(j, "zones.0"), "de-fra-1");
        json_decref(TAKE_PTR(j));
        check_private_template(c, copy, true);
        CHECK_OK(exoapi_template_delete(c, copy));
        check_private_template(c, copy, false);
        CHECK_OK(exoapi_set_zone(c, "ch-gva-2"));
        CHECK_STREQ(exoapi_zone(c), "ch-gva-2");

        /* The shortcut: promote the snapshot in place. */
        CHECK_OK(exoapi_snapshot_promote(c, snap, "etcd-promoted", "debian", &promoted));
        CHECK_OK(exoapi_template_get(c, promoted, &j));
        CHECK_STREQ(json_path_string(j, "name"), "etcd-promoted");
        CHECK_STREQ(json_path_string(j, "default-user"), "debian");
        json_decref(TAKE_PTR(j));
        CHECK_OK(exoapi_template_delete(c, promoted));
        check_failure(c, exoapi_template_get(c, promoted, &j), -ENOENT, "HTTP 404: template");

        CHECK_OK(exoapi_instance_delete(c, inst));
        check_failure(c, exoapi_instance_stop(c, inst), -ENOENT, ":stop: HTTP 404: instance");
        CHECK_OK(exoapi_ssh_key_delete(c, "imgbuild-build"));
        CHECK_OK(exoapi_security_group_delete(c, sg));
        return TAKE_PTR(tid);
}

static size_t members(exoapi *c, const char *pool) {
        _cleanup_json_ json_t *list = NULL;
        json_t *inst;
        size_t i;

        CHECK_OK(exoapi_instance_list_by_pool(c, pool, &list));
        json_array_foreach(list, i, inst)
                CHECK_STREQ(json_path_string(inst, "manager.id"), pool);
        return json_array_size(list);
}

static void check_pool_lists(json_t *pool, const char *sg, const char *pn) {
        CHECK_STREQ(json_path_string(pool, "security-groups.0.id"), sg);
        CHECK_STREQ(json_path_string(pool, "private-networks.0.id"), pn);
        CHECK_STREQ(json_path_string(pool, "elastic-ips.0.id"), "5f2bd2a9-6b06-4b8c-9e3b-2b0d1a2fd8e1");
        CHECK_STREQ(json_path_string(pool, "anti-affinity-groups.0.id"), "a4c1cd2f-a8a3-4a05-8d3b-66f3cd3b3d87");
        CHECK_STREQ(json_path_string(pool, "ssh-key.name"), "ops");
}

static void arm_failure(const char *command, const char *reason, const char *message) {
        _cleanup_free_ char *url = NULL;
        http_response resp = {};
        CHECK(asprintf(&url, "http://127.0.0.1:%d/_fake/fail?command=%s&reason=%s&message=%s",
                       fake_port, command, reason, message) > 0);
        CHECK_OK(http_do(&(http_request){ .method = "POST", .url = url }, &resp, NULL));
        CHECK(resp.status == 200);
        http_response_free(&resp);
}

static void test_pool(exoapi *c, const char *type_id, const char *base_id, const char *new_template) {
        _cleanup_free_ char *sg = NULL, *pn = NULL, *pool = NULL;
        _cleanup_json_ json_t *j = NULL, *op = NULL, *body = NULL, *list = NULL;

        /* The generic request and the operation wait, as a caller without a wrapper uses them. */
        body = json_pack("{s:s, s:s, s:s, s:s}", "name", "etcd", "netmask", "255.255.255.0",
                         "start-ip", "10.0.0.10", "end-ip", "10.0.0.20");
        CHECK_OK(exoapi_request(c, "POST", "/private-network", NULL, body, &op));
        CHECK_OK(exoapi_wait_operation(c, op, &pn));
        CHECK_OK(exoapi_security_group_create(c, "etcd", NULL, &sg));
        CHECK_OK(exoapi_ssh_key_create(c, "ops", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA ops"));

        exoapi_pool_spec spec = {
                .name = "etcd",
                .instance_type_id = type_id,
                .template_id = base_id,
                .size = 2,
                .disk_size_gb = 50,
                .instance_prefix = "etcd",
                .security_group_ids = (char *const[]){ sg, NULL },
                .private_network_ids = (char *const[]){ pn, NULL },
                .elastic_ip_ids = (char *const[]){ (char *) "5f2bd2a9-6b06-4b8c-9e3b-2b0d1a2fd8e1", NULL },
                .anti_affinity_group_ids = (char *const[]){ (char *) "a4c1cd2f-a8a3-4a05-8d3b-66f3cd3b3d87", NULL },
                .ssh_key = "ops",
                .user_data = "role: etcd\n",
                .labels = (char *const[]){ (char *) "role=etcd", NULL },
        };
        CHECK_OK(exoapi_pool_create(c, &spec, &pool));
        CHECK_OK(exoapi_pool_get(c, pool, &j));
        CHECK(json_integer_value(json_object_get(j, "size")) == 2);
        CHECK(json_array_size(json_object_get(j, "instances")) == 2);
        CHECK_STREQ(json_path_string(j, "labels.role"), "etcd");
        check_pool_lists(j, sg, pn);
        json_decref(TAKE_PTR(j));
        CHECK(members(c, pool) == 2);

        CHECK_OK(exoapi_private_network_get(c, pn, &j));
        CHECK(json_array_size(json_object_get(j, "leases")) == 2);
        CHECK_STREQ(json_path_string(j, "leases.0.ip"), "10.0.0.10");
        CHECK_STREQ(json_path_string(j, "leases.1.ip"), "10.0.0.11");
        json_decref(TAKE_PTR(j));

        /* Roll the template: every list field must survive the PUT. */
        _cleanup_json_ json_t *changes = json_pack("{s:{s:s}}", "template", "id", new_template);
        CHECK_OK(exoapi_pool_update(c, pool, changes));
        CHECK_OK(exoapi_pool_get(c, pool, &j));
        CHECK_STREQ(json_path_string(j, "template.id"), new_template);
        check_pool_lists(j, sg, pn);
        json_decref(TAKE_PTR(j));

        CHECK_OK(exoapi_pool_scale(c, pool, 3));
        CHECK(members(c, pool) == 3);
        CHECK_OK(exoapi_instance_list_by_pool(c, pool, &list));
        const char *evicted = json_path_string(list, "0.id");
        CHECK_OK(exoapi_pool_evict(c, pool, (char *const[]){ (char *) evicted, NULL }));
        CHECK_OK(exoapi_pool_get(c, pool, &j));
        CHECK(json_integer_value(json_object_get(j, "size")) == 2);
        json_decref(TAKE_PTR(j));
        CHECK(members(c, pool) == 2);
        check_failure(c, exoapi_instance_get(c, evicted, &j), -ENOENT, "HTTP 404");
        CHECK_OK(exoapi_private_network_get(c, pn, &j));
        CHECK(json_array_size(json_object_get(j, "leases")) == 2);
        CHECK(!streq(json_path_string(j, "leases.0.instance-id"), evicted));
        json_decref(TAKE_PTR(j));
        /* Evicting one that is gone already is done (the API says 400 "not a member"). */
        CHECK_OK(exoapi_pool_evict(c, pool, (char *const[]){ (char *) evicted, NULL }));
        CHECK(members(c, pool) == 2);
        /* The reply to an evict is lost after the API acted: the retry is refused as "not a
         * member", and the evict has still succeeded. */
        arm_failure("evict-instance-pool-members", "lost-reply", "");
        json_decref(TAKE_PTR(list));
        CHECK_OK(exoapi_instance_list_by_pool(c, pool, &list));
        _cleanup_free_ char *second = strdup(json_path_string(list, "0.id"));
        CHECK(second);
        CHECK_OK(exoapi_pool_evict(c, pool, (char *const[]){ second, NULL }));
        CHECK(members(c, pool) == 1);
        /* A member that stays one is still an error. */
        json_decref(TAKE_PTR(list));
        CHECK_OK(exoapi_instance_list_by_pool(c, pool, &list));
        char *last = (char *) json_path_string(list, "0.id");
        check_failure(c, exoapi_pool_evict(c, pool, (char *const[]){ last, (char *) "no-such-instance", NULL }),
                      -EINVAL, ":evict: HTTP 400: instance");
        CHECK(members(c, pool) == 1);

        /* The schema: :start takes a JSON object (the fake refuses a bare PUT, the client sends
         * {}); instance-prefix has at most 30 characters. */
        _cleanup_free_ char *start_path = NULL;
        CHECK(asprintf(&start_path, "/instance/%s:start", last) > 0);
        check_failure(c, exoapi_request(c, "PUT", start_path, NULL, NULL, &op), -EINVAL, "must be a JSON object");
        CHECK_OK(exoapi_instance_start(c, last));
        check_failure(c, exoapi_pool_create(c, &(exoapi_pool_spec){ .name = "p", .instance_prefix =
                                            "etcd-production-zone-a-members" "x" }, NULL),
                      -EINVAL, "must be 1 to 30 characters");

        CHECK_OK(exoapi_pool_list(c, &j));
        CHECK_STREQ(json_path_string(j, "0.id"), pool);
        json_decref(TAKE_PTR(j));

        /* Control: the fake does clear what a bare PUT omits, so the check above can fail. */
        json_decref(TAKE_PTR(body));
        json_decref(TAKE_PTR(op));
        _cleanup_free_ char *path = NULL;
        CHECK(asprintf(&path, "/instance-pool/%s", pool) > 0);
        body = json_pack("{s:s}", "name", "etcd-renamed");
        CHECK_OK(exoapi_request(c, "PUT", path, NULL, body, &op));
        CHECK_OK(exoapi_wait_operation(c, op, NULL));
        CHECK_OK(exoapi_pool_get(c, pool, &j));
        CHECK(!json_object_get(j, "security-groups") && !json_object_get(j, "private-networks"));
        CHECK_STREQ(json_path_string(j, "name"), "etcd-renamed");
        json_decref(TAKE_PTR(j));

        CHECK_OK(exoapi_pool_delete(c, pool));
        check_failure(c, exoapi_pool_get(c, pool, &j), -ENOENT, "HTTP 404: instance-pool");
        CHECK(members(c, pool) == 0);
        CHECK_OK(exoapi_ssh_key_delete(c, "ops"));
        CHECK_OK(exoapi_security_group_delete(c, sg));
}


static void test_errors(exoapi *c) {
        _cleanup_(exoapi_freep) exoapi *wrong = client("not-the-secret", "ch-gva-2");
        _cleanup_(exoapi_freep) exoapi *late = client(SECRET, "ch-gva-2");
        _cleanup_free_ char *id = NULL, *expected = NULL;
        _cleanup_json_ json_t *j = NULL;

        CHECK(asprintf(&expected, "GET http://127.0.0.1:%d/ch-gva-2/v2/template?visibility=private: HTTP 403: Invalid signature",
                       fake_port) > 0);
        check_failure(wrong, exoapi_template_list_private(wrong, &j), -EACCES, expected);
        CHECK_STREQ(exoapi_error(wrong), expected);

        /* The client's clock 601 s behind: the signature has expired when it arrives. */
        exoapi_set_clock_offset(late, -601);
        check_failure(late, exoapi_security_group_create(late, "x", NULL, &id), -EACCES,
                      "/ch-gva-2/v2/security-group: HTTP 403: Request expired");
        CHECK(startswith(exoapi_error(late), "POST http://127.0.0.1:"));
        exoapi_set_clock_offset(late, 0);
        CHECK_OK(exoapi_security_group_create(late, "x", NULL, &id));
        CHECK_OK(exoapi_security_group_delete(late, id));

        /* A body changed after signing: sign one body, send another. */
        _cleanup_free_ char *url = NULL, *header = NULL, *msg = NULL;
        _cleanup_buf_ buf auth = {};
        http_response resp = {};
        const char *signed_body = "{\"name\":\"a\"}", *sent_body = "{\"name\":\"b\"}";
        CHECK(asprintf(&url, "http://127.0.0.1:%d/ch-gva-2/v2/security-group", fake_port) > 0);
        CHECK_OK(exo_sign("POST", "/ch-gva-2/v2/security-group", NULL, signed_body, strlen(signed_body),
                          KEY, SECRET, (int64_t) time(NULL) + 600, &auth));
        CHECK(asprintf(&header, "Authorization: %s", auth.data) > 0);
        CHECK_OK(http_do(&(http_request){ .method = "POST", .url = url,
                                          .headers = (char *const[]){ header, NULL },
                                          .body = sent_body, .body_len = strlen(sent_body) },
                         &resp, NULL));
        CHECK(resp.status == 403);
        msg = exoapi_error_message(resp.body.data, resp.body.len);
        CHECK_STREQ(msg, "Invalid signature");
        http_response_free(&resp);

        /* A failed operation gives its reason and message; nothing is created. */
        arm_failure("create-security-group", "unavailable", "no%20capacity");
        free(TAKE_PTR(id));
        check_failure(c, exoapi_security_group_create(c, "y", NULL, &id), -EREMOTEIO,
                      " failed: unavailable: no capacity");
        CHECK(!id);

        /* Polling: the deadline, and giving up after repeated poll errors (the operation is
         * unknown on this zone's endpoint). */
        exoapi_set_operation_timeout(late, 1);
        check_failure(late, exoapi_security_group_create(late, "z", NULL, &id), -ETIME, "still pending after");
        _cleanup_json_ json_t *op = json_pack("{s:s, s:s}", "id", "3b0cf3e1-0c2d-4f0e-9d5a-6d0c4f8e7a21",
                                              "state", "pending");
        _cleanup_(exoapi_freep) exoapi *poller = client(SECRET, "ch-gva-2");
        exoapi_set_poll_interval(poller, 50);
        /* An hour: only the repeated poll errors may end this wait (a loaded machine once took
         * over 2 s for the five polls); a wait they did not end runs into ctest's timeout. */
        exoapi_set_operation_timeout(poller, 3600 * 1000);
        check_failure(poller, exoapi_wait_operation(poller, op, NULL), -ENOENT,
                      "/ch-gva-2/v2/operation/3b0cf3e1-0c2d-4f0e-9d5a-6d0c4f8e7a21: HTTP 404");
        json_decref(TAKE_PTR(op));
        op = json_pack("{s:s, s:s}", "id", "x", "state", "done");
        check_failure(c, exoapi_wait_operation(c, op, NULL), -EBADMSG, "invalid operation");

        /* Unknown ids, and a connection refused (port 1 on loopback). */
        check_failure(c, exoapi_instance_get(c, "0c2f5f6e-4c0e-4b8e-9a55-2f3f3f3f3f3f", &j), -ENOENT,
                      "HTTP 404: instance 0c2f5f6e-4c0e-4b8e-9a55-2f3f3f3f3f3f not found");
        CHECK_OK(exoapi_set_endpoint(late, "http://127.0.0.1:1/v2"));
        check_failure(late, exoapi_pool_create(late, &(exoapi_pool_spec){ .name = "p", .instance_type_id = "t",
                                                                          .template_id = "t" }, &id),
                      -ECONNREFUSED, "POST http://127.0.0.1:1/v2/instance-pool: ");
        check_failure(c, exoapi_instance_get(c, "", &j), -EINVAL, "empty id");
        check_failure(c, exoapi_instance_create(c, &(exoapi_instance_spec){ .name = "n" }, &id), -EINVAL,
                      "cannot build");
}

static volatile sig_atomic_t cancel_flag;

static void *cancel_later(void *userdata) {
        nanosleep(&(struct timespec) { 0, 300 * 1000000L }, NULL);
        cancel_flag = 1;
        return NULL;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* exoapi_set_cancel: a wait for an operation (held pending by the fake, polled every hour) ends
 * on the flag; later calls fail at once; without the flag they work. No upper time bound: a wait
 * that did not end on the flag would outlast ctest's 120 s timeout. */
static void test_cancel(void) {
        _cleanup_(exoapi_freep) exoapi *c = client(SECRET, "ch-gva-2");
        _cleanup_free_ char *url = NULL, *id = NULL;
        http_response resp = {};

        CHECK(asprintf(&url, "http://127.0.0.1:%d/_fake/hold?command=create-security-group", fake_port) > 0);
        CHECK_OK(http_do(&(http_request){ .method = "POST", .url = url }, &resp, NULL));
        CHECK(resp.status == 200);
        http_response_free(&resp);

        exoapi_set_poll_interval(c, 3600 * 1000L);
        exoapi_set_operation_timeout(c, 3600 * 1000L);
        exoapi_set_cancel(c, &cancel_flag);
        cancel_flag = 0;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cancel_later, NULL) == 0);
        int64_t start = now_ms();
        check_failure(c, exoapi_security_group_create(c, "held", NULL, &id), -ECANCELED, "cancelled while pending");
        int64_t took = now_ms() - start;
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(took >= 250); /* it did wait for the flag (lower bound only) */
        CHECK(!id);

        /* Still set: no request goes out. */
        check_failure(c, exoapi_instance_get(c, "0c2f5f6e-4c0e-4b8e-9a55-2f3f3f3f3f3f", &(json_t *){ NULL }),
                      -ECANCELED, "cancelled");
        /* Lifted (as a build does to clean up): calls work again. */
        exoapi_set_cancel(c, NULL);
        check_failure(c, exoapi_instance_get(c, "0c2f5f6e-4c0e-4b8e-9a55-2f3f3f3f3f3f", &(json_t *){ NULL }),
                      -ENOENT, "not found");
}

static void test_error_message(void) {
        static const struct {
                const char *body, *want;
        } cases[] = {
                { "{\"message\":\"Invalid signature\"}", "Invalid signature" },
                { "{\"error\":\"boom\",\"message\":\"boom\"}", "boom" },
                { "{\"message\":\"a\",\"error\":\"b\"}", "a: b" },
                { "{\"title\":\"Bad Request\",\"detail\":\"size too big\",\"errors\":[\"x\",{\"detail\":\"must be > 0\",\"location\":\"body.size\"},{\"detail\":\"y\"}]}",
                  "Bad Request: size too big: x: body.size: must be > 0: y" },
                { "  <html>\n502 Bad Gateway\n</html>\n", "<html> 502 Bad Gateway </html>" },
                { "[1,2]", "[1,2]" },
                { "{}", "{}" },
                { "", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *m = exoapi_error_message(cases[i].body, strlen(cases[i].body));
                CHECK_STREQ(m, cases[i].want);
        }
        char big[2000];
        memset(big, 'a', sizeof(big));
        _cleanup_free_ char *m = exoapi_error_message(big, sizeof(big));
        CHECK(strlen(m) == 512);
}

static void test_poll_interval(void) {
        /* egoscale v3: 3 s for the first 30 s, linear to 60 s at 15 min, then 60 s. */
        CHECK(exoapi_poll_interval_ms(3000, 0) == 3000);
        CHECK(exoapi_poll_interval_ms(3000, 30000) == 3000);
        CHECK(exoapi_poll_interval_ms(3000, 465000) == 31500);
        CHECK(exoapi_poll_interval_ms(3000, 900000) == 60000);
        CHECK(exoapi_poll_interval_ms(3000, 7200000) == 60000);
        CHECK(exoapi_poll_interval_ms(10, 50) == 10);
        CHECK(exoapi_poll_interval_ms(10, 100000) == 200);
}

static void test_credentials(void) {
        char dir[] = "/tmp/test-exoapi-XXXXXX", path[64];
        exoapi_credentials cr = {};
        _cleanup_buf_ buf err = {};
        const char *good = "# Exoscale\n\napi_key = " KEY "\n  api_secret=" SECRET "  \n";

        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/credentials", dir);
        CHECK_OK(write_file_atomic(path, good, strlen(good), 0600, (uid_t) -1, (gid_t) -1));
        CHECK_OK(exoapi_credentials_from_file(path, &cr, &err));
        CHECK_STREQ(cr.key, KEY);
        CHECK_STREQ(cr.secret, SECRET);
        exoapi_credentials_done(&cr);
        CHECK(!cr.key && !cr.secret);

        CHECK(chmod(path, 0640) == 0);
        CHECK(exoapi_credentials_from_file(path, &cr, &err) == -EPERM);
        CHECK(strstr(err.data, path) && strstr(err.data, "chmod 600") && !strstr(err.data, SECRET));

        static const struct {
                const char *text, *want;
        } bad[] = {
                { "api_key = k\n", "api_secret is missing" },
                { "api_key = k\napi_secret " SECRET "\n", ":2: expected \"key = value\"" },
                { "api_key = k\napi_key = k\n", ":2: api_key given twice" },
                { "api_secret: " SECRET " = x\n", ":1: unknown key (expected api_key or api_secret)" },
                { "api_key =\n", ":1: api_key is empty" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_OK(write_file_atomic(path, bad[i].text, strlen(bad[i].text), 0600, (uid_t) -1, (gid_t) -1));
                CHECK(exoapi_credentials_from_file(path, &cr, &err) == -EBADMSG);
                CHECK(strstr(err.data, bad[i].want) && !strstr(err.data, SECRET));
        }
        CHECK(exoapi_credentials_from_file("/nonexistent/credentials", &cr, &err) == -ENOENT);
        CHECK_OK(rm_rf(dir));

        CHECK(setenv("EXOSCALE_API_KEY", KEY, 1) == 0);
        CHECK(unsetenv("EXOSCALE_API_SECRET") == 0);
        CHECK(exoapi_credentials_from_env(&cr, &err) == -ENOKEY);
        CHECK_STREQ(err.data, "EXOSCALE_API_SECRET is not set");
        CHECK(setenv("EXOSCALE_API_SECRET", SECRET, 1) == 0);
        CHECK_OK(exoapi_credentials_from_env(&cr, &err));
        CHECK_STREQ(cr.secret, SECRET);
        exoapi_credentials_done(&cr);
}

/* The read-only smoke client of ci/cloud-smoke.sh, against the fake. */
static void test_smoke(void) {
        _cleanup_buf_ buf out = {};
        int status;

        CHECK(setenv("EXOSCALE_API_ENDPOINT", endpoint, 1) == 0);
        CHECK_OK(spawn_capture(SPAWN_ARGV(EXOAPI_SMOKE, "de-fra-1"), NULL, &out, &status));
        CHECK(status == 0);
        CHECK(strstr(out.data, "zones: 3\n") && strstr(out.data, "instance-types: 2\n"));
        CHECK(setenv("EXOSCALE_API_SECRET", "wrong", 1) == 0);
        CHECK_OK(spawn_capture(SPAWN_ARGV(EXOAPI_SMOKE, "de-fra-1"), &(spawn_options){
                .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = open("/dev/null", O_WRONLY | O_CLOEXEC) },
                &out, &status));
        CHECK(status == 1);
        CHECK(setenv("EXOSCALE_API_SECRET", SECRET, 1) == 0);
}

int main(void) {
        _cleanup_(exoapi_freep) exoapi *c = NULL;
        _cleanup_free_ char *type_id = NULL, *base_id = NULL, *template_id = NULL;

        CHECK_OK(http_global_init());
        test_error_message();
        test_poll_interval();
        test_credentials();
        start_fake();
        c = client(SECRET, "ch-gva-2");
        CHECK(exoapi_new(&(exoapi_credentials){ .key = (char *) KEY }, "ch-gva-2", &(exoapi *){ NULL }) == -EINVAL);

        type_id = first_id(c, "/instance-type", NULL, "instance-types");
        base_id = first_id(c, "/template", "visibility=public", "templates");
        template_id = test_template_flow(c, type_id, base_id);
        test_pool(c, type_id, base_id, template_id);
        test_errors(c);
        test_cancel();
        test_smoke();
        CHECK(stop_fake() == 0);
        return 0;
}
