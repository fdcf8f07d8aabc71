#include "provider-exoscale.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "build-steps.h"
#include "cloud-journal.h"
#include "comm-client.h"
#include "crypto.h"
#include "exo-ssh.h"
#include "exoapi.h"
#include "export.h"
#include "fs.h"
#include "interrupt.h"
#include "json.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

#define DEFAULT_BOOT_TIMEOUT 300

/* cloud-init on Debian's cloud templates refuses root logins unless told otherwise; the build
 * logs in as root with the temporary key. Nothing secret goes into user-data. */
static const char user_data[] = "#cloud-config\ndisable_root: false\n";

enum { OPT_ZONE = BUILD_PROVIDER_OPT_FIRST, OPT_COPY, OPT_EXPORT, OPT_CREDENTIALS, OPT_SSH_PORT, OPT_SSH_USER,
       OPT_SSH_OPTION, OPT_BOOT_TIMEOUT };

/* One build: its options, what it created so far, for the next phase and for cleanup. */
typedef struct exo_build {
        /* Options: */
        const char *zone_option;
        char **copy_zones;
        const char *credentials;
        char **ssh_options;
        bool export_register;
        unsigned boot_timeout;
        exo_ssh ssh;            /* user and port from the options, the key pair once made */

        const Recipe *recipe;
        const char *store;
        char *bootagent;
        exoapi *api;
        cloud_journal *journal;
        bool holding;           /* interrupt_hold(): a signal is ours to clean up after */
        char build_id[17];
        char *name;             /* of the key, group and instance: imgbuild-NAME-ID */
        const char *zone;
        char *instance_type_id, *base_template_id, *base_template_name, *default_user;
        char *base_boot_mode;   /* the base template's boot-mode, which its snapshot keeps; may be NULL */
        char *security_group_id, *instance_id, *ip, *snapshot_id, *template_id;
        exo_session session;
        bool keep_agent;        /* an agent step ran: the template keeps bootagent */
        json_t *templates;      /* zone -> template id */
        json_t *steps;          /* [{name, seconds, cached}] for the manifest */
        int64_t t0;
} exo_build;

static void exo_init(void *state) {
        exo_build *b = state;
        b->ssh.user = "root";
        b->ssh.port = 22;
        b->boot_timeout = DEFAULT_BOOT_TIMEOUT;
        b->session = (exo_session) EXO_SESSION_INIT;
}

static void exo_done(void *state) {
        exo_build *b = state;
        exo_ssh_session_end(&b->session);
        exo_ssh_done(&b->ssh);
        strv_free(b->copy_zones);
        strv_free(b->ssh_options);
        free(b->bootagent);
        free(b->name);
        free(b->instance_type_id);
        free(b->base_template_id);
        free(b->base_template_name);
        free(b->default_user);
        free(b->base_boot_mode);
        free(b->security_group_id);
        free(b->instance_id);
        free(b->ip);
        free(b->snapshot_id);
        free(b->template_id);
        json_decref(b->templates);
        json_decref(b->steps);
        cloud_journal_free(b->journal);
        exoapi_free(b->api);
        if (b->holding)
                interrupt_release();
        b->holding = false;
}

/* Signals: the build stops at the next check and cleans up; a running SSH session is ended at
 * once (exo-ssh.h registers it) so a step in progress returns. */
static int check_interrupted(void) {
        int sig = interrupt_signal();
        return sig ? log_error_errno(-EINTR, "Interrupted by signal %d, cleaning up", sig) : 0;
}

static double elapsed(const exo_build *b) {
        return (double) (time_now_ms() - b->t0) / 1000.0;
}

int exoscale_call_failed(int r, const char *what, const char *error) {
        if (r == -ECANCELED && interrupt_signal())
                return log_error_errno(-EINTR, "Interrupted by signal %d while trying to %s, cleaning up",
                                       interrupt_signal(), what);
        log_error("Failed to %s: %s", what, error);
        return r;
}

int exoscale_write_manifest(const char *path, const json_t *m) {
        _cleanup_free_ char *text = json_dump_compact(m), *dir = strdup(path);
        int r;
        if (!text || !dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        *strrchr(dir, '/') = 0;
        r = mkdir_p(dir, 0755);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

static int api_failed(exo_build *b, int r, const char *what) {
        return exoscale_call_failed(r, what, exoapi_error(b->api));
}

static int journal_failed(exo_build *b, int r) {
        return cloud_journal_write_failed(b->journal, r);
}

/* The recipe's instance type (FAMILY.SIZE, or an id) as an id. */
static int resolve_instance_type(exo_build *b) {
        const char *want = b->recipe->exoscale.instance_type;
        int r = exoapi_instance_type_id(b->api, want, &b->instance_type_id);
        if (r == -ENOENT) {
                log_error("Instance type %s is not offered in %s", want, b->zone);
                return r;
        }
        if (r < 0)
                return api_failed(b, r, "list instance types");
        return 0;
}

/* The recipe's base template by id, or by name among the zone's public then private ones. */
static int resolve_base_template(exo_build *b) {
        const char *want = b->recipe->exoscale.template;
        _cleanup_(json_decrefp) json_t *found = NULL;
        int r;

        if (exoapi_is_id(want)) {
                r = exoapi_template_get(b->api, want, &found);
                if (r < 0)
                        return api_failed(b, r, "look up the base template");
        } else
                for (size_t pass = 0; pass < 2 && !found; pass++) {
                        _cleanup_(json_decrefp) json_t *resp = NULL;
                        json_t *t;
                        size_t i;
                        r = exoapi_request(b->api, "GET", "/template", pass == 0 ? "visibility=public" : "visibility=private",
                                           NULL, &resp);
                        if (r < 0)
                                return api_failed(b, r, "list templates");
                        json_array_foreach(json_object_get(resp, "templates"), i, t)
                                if (streq(strempty(json_path_string(t, "name")), want) && json_path_string(t, "id")) {
                                        found = json_incref(t);
                                        break;
                                }
                }
        if (!found) {
                log_error("Template \"%s\" not found in %s", want, b->zone);
                return -ENOENT;
        }
        const char *user = json_path_string(found, "default-user"), *boot_mode = json_path_string(found, "boot-mode");
        if (boot_mode && (streq(boot_mode, "legacy") || streq(boot_mode, "uefi")) && !(b->base_boot_mode = strdup(boot_mode)))
                return log_error_errno(-ENOMEM, "Out of memory");
        b->base_template_id = strdup(json_path_string(found, "id"));
        b->base_template_name = strdup(strempty(json_path_string(found, "name")));
        b->default_user = user ? strdup(user) : NULL;
        if (!b->base_template_id || !b->base_template_name || (user && !b->default_user))
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

static int create_ssh_key(exo_build *b) {
        _cleanup_free_ char *public_key = NULL;
        size_t ix;
        int r;

        r = exo_ssh_keygen(&b->ssh, b->name, &public_key);
        if (r < 0)
                return r;
        r = cloud_journal_add(b->journal, "ssh-key", b->name, b->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        r = exoapi_ssh_key_create(b->api, b->name, public_key);
        if (r < 0)
                return api_failed(b, r, "register the SSH key");
        r = cloud_journal_created(b->journal, ix, b->name);
        return r < 0 ? journal_failed(b, r) : 0;
}

static int create_security_group(exo_build *b) {
        size_t ix;
        int r;

        r = cloud_journal_add(b->journal, "security-group", b->name, b->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        r = exoapi_security_group_create(b->api, b->name, "imgbuild: SSH to a build instance", &b->security_group_id);
        if (r < 0)
                return api_failed(b, r, "create the security group");
        r = cloud_journal_created(b->journal, ix, b->security_group_id);
        if (r < 0)
                return journal_failed(b, r);
        exoapi_sg_rule rule = { .flow_direction = "ingress", .protocol = "tcp", .start_port = b->ssh.port,
                                .end_port = b->ssh.port, .network = "0.0.0.0/0", .description = "SSH" };
        r = exoapi_security_group_add_rule(b->api, b->security_group_id, &rule);
        return r < 0 ? api_failed(b, r, "allow SSH in the security group") : 0;
}

static int create_instance(exo_build *b) {
        char *groups[] = { b->security_group_id, NULL };
        _cleanup_free_ char *label = NULL;
        size_t ix;
        int r;

        if (asprintf(&label, "imgbuild-build=%s", b->build_id) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *labels[] = { label, NULL };
        exoapi_instance_spec spec = {
                .name = b->name,
                .instance_type_id = b->instance_type_id,
                .template_id = b->base_template_id,
                .disk_size_gb = b->recipe->exoscale.disk_gb,
                .security_group_ids = groups,
                .ssh_key = b->name,
                .user_data = user_data,
                .labels = labels,
        };
        r = cloud_journal_add(b->journal, "instance", b->name, b->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        r = exoapi_instance_create(b->api, &spec, &b->instance_id);
        if (r < 0)
                return api_failed(b, r, "create the instance");
        r = cloud_journal_created(b->journal, ix, b->instance_id);
        return r < 0 ? journal_failed(b, r) : 0;
}

static int wait_running(exo_build *b) {
        int64_t deadline = time_now_ms() + (int64_t) b->boot_timeout * 1000;
        int r;

        for (;;) {
                _cleanup_(json_decrefp) json_t *inst = NULL;
                r = exoapi_instance_get(b->api, b->instance_id, &inst);
                if (r < 0)
                        return api_failed(b, r, "get the instance");
                const char *state = strempty(json_path_string(inst, "state"));
                const char *ip = json_path_string(inst, "public-ip");
                if (streq(state, "running") && ip) {
                        b->ip = strdup(ip);
                        if (!b->ip)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        b->ssh.host = b->ip;
                        return 0;
                }
                if (streq(state, "error") || streq(state, "destroyed") || streq(state, "destroying")) {
                        log_error("Instance %s went to state %s while starting", b->instance_id, state);
                        return -EIO;
                }
                if (time_now_ms() > deadline) {
                        log_error("Instance %s is still %s (public IP %s) after %u s", b->instance_id, state,
                                  ip ?: "none", b->boot_timeout);
                        return -ETIMEDOUT;
                }
                if (time_sleep_ms_cancellable(2000, interrupt_signal_flag()) < 0)
                        return check_interrupted();
        }
}

/* What a cloud instance adds to the usual hygiene: our key in authorized_keys, cloud-init's
 * record of this instance (so clones run it afresh), and bootagent when nothing needs it. */
static int cloud_hygiene(exo_build *b, comm_client *c, bool keep_agent) {
        _cleanup_free_ char *script = NULL;

        if (asprintf(&script,
                     "for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do "
                     "[ -f \"$f\" ] && sed -i '/ %s$/d' \"$f\"; done; "
                     "if command -v cloud-init >/dev/null; then cloud-init clean --logs; fi; %s",
                     b->name, keep_agent ? "true" : "rm -f /usr/local/bin/bootagent") < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
        return build_guest_exec(c, argv, NULL, STDOUT_FILENO, NULL, "the cloud hygiene");
}

static int record_step(exo_build *b, const char *name, double seconds) {
        if (json_array_append_new(b->steps, json_pack("{s:s, s:b, s:f}", "name", name, "cached", false, "seconds",
                                                      seconds)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

/* STORE/exoscale/NAME/VERSION, where the build's manifest and package list go. */
static char *output_dir(const exo_build *b) {
        char *s;
        return asprintf(&s, "%s/exoscale/%s/%s", b->store, b->recipe->template_name, b->recipe->template_version) < 0
                       ? NULL : s;
}

/* Promote (one API call, same zone) or export and register, giving template NAME-VERSION with
 * the build's id in its description (how gc finds one journaled as "creating"). */
static int make_template(exo_build *b, const char *template_name, const char *description) {
        size_t ix;
        int r;

        r = cloud_journal_add(b->journal, "template", template_name, b->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        if (b->export_register) {
                _cleanup_(json_decrefp) json_t *snap = NULL;
                r = exoapi_snapshot_export(b->api, b->snapshot_id, &snap);
                if (r < 0)
                        return api_failed(b, r, "export the snapshot");
                exoapi_template_spec spec = {
                        .name = template_name,
                        .url = json_path_string(snap, "export.presigned-url"),
                        .checksum = json_path_string(snap, "export.md5sum"),
                        .default_user = b->default_user,
                        /* The disk boots as the base did: the API would register it legacy. */
                        .boot_mode = b->base_boot_mode,
                        .description = description,
                        .ssh_key_enabled = true,
                        .password_enabled = true,
                };
                if (!spec.url || !spec.checksum) {
                        log_error("The exported snapshot %s has no export.presigned-url or export.md5sum", b->snapshot_id);
                        return -EBADMSG;
                }
                r = exoapi_template_register(b->api, &spec, &b->template_id);
                if (r < 0)
                        return api_failed(b, r, "register the template");
        } else {
                _cleanup_(json_decrefp) json_t *op = NULL;
                _cleanup_(json_decrefp) json_t *body = json_pack("{s:s, s:s, s:s*, s:b, s:b}", "name", template_name,
                                                                  "description", description, "default-user",
                                                                  b->default_user, "ssh-key-enabled", true,
                                                                  "password-enabled", true);
                _cleanup_free_ char *path = NULL;
                if (!body || asprintf(&path, "/snapshot/%s:promote", b->snapshot_id) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                r = exoapi_request(b->api, "POST", path, NULL, body, &op);
                if (r >= 0)
                        r = exoapi_wait_operation(b->api, op, &b->template_id);
                if (r < 0)
                        return api_failed(b, r, "promote the snapshot to a template");
        }
        r = cloud_journal_created(b->journal, ix, b->template_id);
        if (r < 0)
                return journal_failed(b, r);
        if (json_object_set_new(b->templates, b->zone, json_string(b->template_id)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

static int copy_template(exo_build *b, const char *template_name, const char *zone) {
        _cleanup_free_ char *id = NULL;
        size_t ix;
        int r;

        r = cloud_journal_add(b->journal, "template", template_name, zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        r = exoapi_template_copy(b->api, b->template_id, zone, &id);
        if (r < 0)
                return api_failed(b, r, "copy the template");
        r = cloud_journal_created(b->journal, ix, id);
        if (r < 0)
                return journal_failed(b, r);
        if (json_object_set_new(b->templates, zone, json_string(id)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

static int snapshot_to_templates(exo_build *b) {
        _cleanup_free_ char *template_name = NULL, *description = NULL;
        int64_t t;
        size_t ix;
        int r;

        if (asprintf(&template_name, "%s-%s", b->recipe->template_name, b->recipe->template_version) < 0 ||
            asprintf(&description, "imgbuild build %s", b->build_id) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");

        t = time_now_ms();
        r = exoapi_instance_stop(b->api, b->instance_id);
        if (r < 0)
                return api_failed(b, r, "stop the instance");
        log_info("[%6.1f s] Instance stopped (%.1f s)", elapsed(b), (double) (time_now_ms() - t) / 1000.0);
        if ((r = check_interrupted()) < 0)
                return r;

        t = time_now_ms();
        r = cloud_journal_add(b->journal, "snapshot", b->name, b->zone, b->instance_id, &ix);
        if (r < 0)
                return journal_failed(b, r);
        r = exoapi_snapshot_create(b->api, b->instance_id, &b->snapshot_id);
        if (r < 0)
                return api_failed(b, r, "snapshot the instance");
        r = cloud_journal_created(b->journal, ix, b->snapshot_id);
        if (r < 0)
                return journal_failed(b, r);
        log_info("[%6.1f s] Snapshot %s taken (%.1f s)", elapsed(b), b->snapshot_id, (double) (time_now_ms() - t) / 1000.0);
        if ((r = check_interrupted()) < 0)
                return r;

        t = time_now_ms();
        r = make_template(b, template_name, description);
        if (r < 0)
                return r;
        log_info("[%6.1f s] Template %s (%s) in %s, %s (%.1f s)", elapsed(b), template_name, b->template_id, b->zone,
                 b->export_register ? "exported and registered" : "promoted", (double) (time_now_ms() - t) / 1000.0);

        for (char **z = b->copy_zones; z && *z; z++) {
                if ((r = check_interrupted()) < 0)
                        return r;
                if (streq(*z, b->zone))
                        continue;
                t = time_now_ms();
                r = copy_template(b, template_name, *z);
                if (r < 0)
                        return r;
                log_info("[%6.1f s] Template copied to %s as %s (%.1f s)", elapsed(b), *z,
                         json_string_value(json_object_get(b->templates, *z)), (double) (time_now_ms() - t) / 1000.0);
        }
        return check_interrupted();
}

/* STORE/exoscale/NAME/VERSION/manifest.json */
static int write_manifest(exo_build *b, char **ret_path) {
        _cleanup_free_ char *dir = output_dir(b), *path = NULL, *packages_path = NULL, *packages_text = NULL;
        _cleanup_(json_decrefp) json_t *packages = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char digest[SHA256_HEX_SIZE];
        int r;

        r = build_recipe_digest(b->recipe, digest);
        if (r < 0)
                return log_error_errno(r, "Failed to hash the recipe's files: %m");
        if (!dir || asprintf(&path, "%s/manifest.json", dir) < 0 || asprintf(&packages_path, "%s/packages.json", dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* Written by hygiene from dpkg-query on the instance. */
        r = read_file(packages_path, 16 * 1024 * 1024, &packages_text, NULL);
        if (r >= 0)
                r = json_parse(packages_text, strlen(packages_text), &packages, &err);
        if (r < 0)
                return log_error_errno(r, "Failed to read the package list %s: %s", packages_path,
                                       err.len ? err.data : strerror(-r));
        _cleanup_(json_decrefp) json_t *m = json_pack(
                "{s:{s:s, s:s}, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:O, s:s, s:O, s:O, s:I}",
                "template", "name", b->recipe->template_name, "version", b->recipe->template_version,
                "provider", "exoscale",
                "build", b->build_id,
                "recipe", "path", b->recipe->path, "digest", digest,
                "base", "template", b->base_template_name, "id", b->base_template_id, "zone", b->zone,
                "instance-type", b->recipe->exoscale.instance_type,
                "steps", b->steps,
                "step-cache", "none: every step ran on the instance",
                "templates", b->templates,
                "packages", packages,
                "created", (json_int_t) time(NULL));
        if (!m)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = exoscale_write_manifest(path, m);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int exoscale_api_new(const char *credentials, const char *zone, exoapi **ret) {
        _cleanup_(exoapi_credentials_done) exoapi_credentials creds = {};
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        _cleanup_buf_ buf err = {};
        const char *endpoint = getenv("EXOSCALE_API_ENDPOINT"), *poll = getenv("IMGBUILD_EXOSCALE_POLL_MS");
        int r;

        r = credentials ? exoapi_credentials_from_file(credentials, &creds, &err) : exoapi_credentials_from_env(&creds, &err);
        if (r < 0)
                return log_error_errno(r, "No Exoscale credentials: %s", err.data);
        r = exoapi_new(&creds, zone, &api);
        if (r >= 0 && endpoint)
                r = exoapi_set_endpoint(api, endpoint);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Exoscale API client: %m");
        if (poll) {
                unsigned ms;
                if (parse_unsigned(poll, 1, 60000, &ms) < 0)
                        return log_error_errno(-EINVAL, "IMGBUILD_EXOSCALE_POLL_MS: expected 1..60000, got '%s'", poll);
                exoapi_set_poll_interval(api, (long) ms);
        }
        *ret = TAKE_PTR(api);
        return 0;
}

int exoscale_sos_new(const char *credentials, const char *zone, sos **ret) {
        _cleanup_(exoapi_credentials_done) exoapi_credentials creds = {};
        _cleanup_(sos_freep) sos *store = NULL;
        _cleanup_buf_ buf err = {};
        const char *endpoint = getenv("EXOSCALE_SOS_ENDPOINT");
        int r;

        r = credentials ? exoapi_credentials_from_file(credentials, &creds, &err) : exoapi_credentials_from_env(&creds, &err);
        if (r < 0)
                return log_error_errno(r, "No Exoscale credentials: %s", err.data);
        r = sos_new(creds.key, creds.secret, zone, &store);
        if (r >= 0 && endpoint)
                r = sos_set_endpoint(store, endpoint);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the object storage client: %m");
        *ret = TAKE_PTR(store);
        return 0;
}

static int exo_parse_option(void *state, int opt, const char *arg) {
        exo_build *b = state;
        int r = 0;

        switch (opt) {
        case OPT_ZONE:
                b->zone_option = arg;
                break;
        case OPT_COPY:
                r = strv_push(&b->copy_zones, arg);
                break;
        case OPT_EXPORT:
                b->export_register = true;
                break;
        case OPT_CREDENTIALS:
                b->credentials = arg;
                break;
        case OPT_SSH_PORT:
                if (parse_unsigned(arg, 1, 65535, &b->ssh.port) < 0)
                        return log_error("--ssh-port: expected 1..65535, got '%s'", arg), -EINVAL;
                break;
        case OPT_SSH_USER:
                b->ssh.user = arg;
                break;
        case OPT_SSH_OPTION:
                r = strv_push(&b->ssh_options, arg);
                b->ssh.options = b->ssh_options;
                break;
        case OPT_BOOT_TIMEOUT:
                if (parse_unsigned(arg, 1, 86400, &b->boot_timeout) < 0)
                        return log_error("--boot-timeout: expected seconds, got '%s'", arg), -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        return r < 0 ? log_error_errno(r, "Out of memory") : 0;
}

static int exo_prepare(void *state, const build_context *ctx) {
        exo_build *b = state;
        const Recipe *recipe = ctx->recipe;
        int r;

        if (!recipe->exoscale.set) {
                log_error("%s has no exoscale line (exoscale zone=... instance-type=... template=... disk=...)",
                          recipe->path);
                return -EINVAL;
        }
        b->recipe = recipe;
        b->store = ctx->store;
        b->zone = b->zone_option ?: recipe->exoscale.zone;
        b->t0 = time_now_ms();
        b->templates = json_object();
        b->steps = json_array();
        uint8_t id[8];
        if (!b->templates || !b->steps || random_bytes(id, sizeof(id)) < 0)
                return log_error_errno(-ENOMEM, "Failed to start the build");
        hex_encode(id, sizeof(id), b->build_id);
        if (asprintf(&b->name, "imgbuild-%.40s-%s", recipe->template_name, b->build_id) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = base_find_bootagent(ctx->bootagent, &b->bootagent);
        if (r < 0)
                return log_error_errno(r == -EINVAL ? -EIO : r,
                                       "Failed to find the bootagent binary (use --bootagent): %m");
        r = exoscale_api_new(b->credentials, b->zone, &b->api);
        if (r < 0)
                return r == -EINVAL ? -EIO : r;

        /* From here on a signal is caught even between sessions: the build cleans up. */
        interrupt_hold();
        b->holding = true;
        /* Cloud calls and operation waits (up to an hour for a template) end within a second of
         * a signal; cleanup_resources lifts this again to delete what was made. */
        exoapi_set_cancel(b->api, interrupt_signal_flag());
        log_info("[%6.1f s] Build %s in %s: instance type %s, template \"%s\", disk %u GB", elapsed(b), b->build_id,
                 b->zone, recipe->exoscale.instance_type, recipe->exoscale.template, recipe->exoscale.disk_gb);
        r = resolve_instance_type(b);
        if (r >= 0)
                r = resolve_base_template(b);
        if (r >= 0) {
                r = cloud_journal_create(b->store, b->build_id, &b->journal);
                if (r < 0)
                        log_error_errno(r, "Failed to start the build journal in %s/cloud: %m", b->store);
        }
        if (r < 0)
                /* An API answer of 400 is no recipe error. */
                return r == -EINVAL ? -EIO : r;
        log_info("[%6.1f s] Journal %s", elapsed(b), cloud_journal_path(b->journal));
        return 0;
}

static int exo_connect(void *state, comm_client **ret) {
        exo_build *b = state;
        int r;

        r = create_ssh_key(b);
        if (r >= 0)
                r = check_interrupted();
        if (r >= 0)
                r = create_security_group(b);
        if (r >= 0)
                r = check_interrupted();
        if (r < 0)
                return r;
        log_info("[%6.1f s] SSH key and security group %s created", elapsed(b), b->name);
        r = create_instance(b);
        if (r >= 0)
                r = wait_running(b);
        if (r < 0)
                return r;
        log_info("[%6.1f s] Instance %s (%s) running at %s", elapsed(b), b->name, b->instance_id, b->ip);
        r = exo_ssh_install_agent(&b->ssh, b->bootagent, b->boot_timeout);
        if (r < 0)
                return r;
        log_info("[%6.1f s] bootagent installed over SSH", elapsed(b));
        r = exo_ssh_session_start(&b->ssh, &b->session);
        if (r < 0)
                return r;
        *ret = &b->session.comm;
        return 0;
}

/* Every step runs: there are no step layers in the cloud. */
static int exo_run_step(void *state, comm_client *c, size_t i) {
        exo_build *b = state;
        const Recipe *recipe = b->recipe;
        size_t n = recipe->n_steps + 1;
        const RecipeStep *step = i < recipe->n_steps ? &recipe->steps[i] : NULL;
        _cleanup_free_ char *name = step ? build_step_name(step) : strdup(BUILD_HYGIENE_NAME);
        int r = 0;

        if (!name)
                return log_error_errno(-ENOMEM, "Out of memory");
        int64_t start = time_now_ms();
        log_info("Step %zu/%zu %s: running (no step cache in the cloud)", i + 1, n, name);
        if (step) {
                b->keep_agent = b->keep_agent || step->kind == RECIPE_STEP_AGENT;
                r = build_step_run(c, step);
        } else {
                _cleanup_free_ char *dir = output_dir(b), *packages = NULL;
                if (!dir || asprintf(&packages, "%s/packages.json", dir) < 0)
                        r = log_error_errno(-ENOMEM, "Out of memory");
                else if ((r = mkdir_p(dir, 0755)) < 0)
                        log_error_errno(r, "Failed to create %s: %m", dir);
                if (r >= 0)
                        r = cloud_hygiene(b, c, b->keep_agent);
                if (r >= 0)
                        r = build_hygiene_run(c, recipe->n_steps > 0 ? &recipe->steps[recipe->n_steps - 1] : NULL,
                                              packages);
        }
        if (r < 0) {
                if (interrupt_signal())
                        return log_error_errno(-EINTR, "Interrupted in step %zu/%zu %s", i + 1, n, name);
                log_error("Step %zu/%zu %s failed", i + 1, n, name);
                return r;
        }
        double seconds = (double) (time_now_ms() - start) / 1000.0;
        log_info("Step %zu/%zu %s: done in %.1f s", i + 1, n, name, seconds);
        return record_step(b, name, seconds);
}

/* Delete the build's temporary resources (the templates too, unless the build got that far
 * and keep_templates). Returns r, or the cleanup's error when r was fine. */
static int cleanup_resources(exo_build *b, int r) {
        if (!b->journal)
                return r;
        /* The templates are the product: cleanup keeps them, unless the build failed. */
        if (r >= 0) {
                r = cloud_journal_keep(b->journal, "template");
                if (r < 0)
                        log_error_errno(r, "Failed to update %s: %m", cloud_journal_path(b->journal));
        }
        /* After a signal the cloud calls that delete are wanted: not cancelled. */
        exoapi_set_cancel(b->api, NULL);
        log_info("[%6.1f s] Deleting the build's temporary resources", elapsed(b));
        int q = cloud_journal_cleanup(b->journal, b->api, NULL, false, stderr);
        if (q < 0) {
                log_error("Some resources of build %s remain, recorded in %s: run `imgbuild gc` to retry",
                          b->build_id, cloud_journal_path(b->journal));
                r = r < 0 ? r : q;
        } else
                (void) cloud_journal_remove(b->journal);
        cloud_journal_free(b->journal);
        b->journal = NULL;
        return r;
}

static int exo_finish(void *state, int r) {
        exo_build *b = state;
        exo_ssh_session_end(&b->session);
        if (r >= 0)
                r = check_interrupted();
        /* A failed build deletes everything it made; a good one after its export. */
        return r < 0 ? cleanup_resources(b, r) : r;
}

static int exo_export(void *state) {
        exo_build *b = state;
        const Recipe *recipe = b->recipe;
        _cleanup_free_ char *manifest = NULL;
        int r;

        r = snapshot_to_templates(b);
        r = cleanup_resources(b, r);
        if (r >= 0)
                r = write_manifest(b, &manifest);
        if (r < 0)
                return r;

        printf("%s@%s: %zu steps built on exoscale (no step cache in the cloud), %.1f s\n", recipe->template_name,
               recipe->template_version, recipe->n_steps + 1, elapsed(b));
        const char *zone;
        json_t *tid;
        json_object_foreach(b->templates, zone, tid)
                printf("%s %s\n", zone, json_string_value(tid));
        printf("%s\n", manifest);
        return 0;
}

static const struct option exo_options[] = {
        { "zone", required_argument, NULL, OPT_ZONE },
        { "copy-to-zone", required_argument, NULL, OPT_COPY },
        { "export", no_argument, NULL, OPT_EXPORT },
        { "credentials", required_argument, NULL, OPT_CREDENTIALS },
        { "ssh-port", required_argument, NULL, OPT_SSH_PORT },
        { "ssh-user", required_argument, NULL, OPT_SSH_USER },
        { "ssh-option", required_argument, NULL, OPT_SSH_OPTION },
        { "boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT },
        {}
};

const build_provider_ops exoscale_build_provider = {
        .name = "exoscale",
        .summary = "an Exoscale instance, no step cache",
        .description =
                "Build the recipe on an Exoscale instance (the recipe's `exoscale` line: zone,\n"
                "instance-type, template, disk) and turn it into template NAME-VERSION. Every step\n"
                "runs on the instance (no step cache in the cloud). Temporary resources (SSH key,\n"
                "security group, instance, snapshot) are journaled in STORE/cloud before they are\n"
                "created and deleted at the end, also on failure or SIGINT; `imgbuild gc` deletes\n"
                "what a killed build left.\n",
        .options_help =
                "      --zone ZONE         build in ZONE instead of the recipe's\n"
                "      --copy-to-zone ZONE also copy the template to ZONE (repeatable)\n"
                "      --export            export the snapshot and register it as a template\n"
                "                          (default: promote the snapshot, no download)\n"
                "      --credentials FILE  api_key / api_secret lines (mode 0600); default\n"
                "                          EXOSCALE_API_KEY and EXOSCALE_API_SECRET\n"
                "      --ssh-port PORT     SSH port of the instance (default 22)\n"
                "      --ssh-user USER     login (default root; cloud-init is told to allow it)\n"
                "      --ssh-option OPT    extra `ssh -o OPT`, e.g. ProxyJump=bastion (repeatable;\n"
                "                          given first, so it overrides imgbuild's defaults)\n"
                "      --boot-timeout SEC  wait this long for the instance and SSH (default 300)\n"
                "      --cache-dir DIR     image store: journals and the manifest\n"
                "                          (default $IMGBUILD_CACHE_DIR or ~/.cache/imgbuild)\n"
                "      --bootagent PATH    bootagent binary to copy onto the instance\n",
        .notes =
                "The instance gets bootagent at /usr/local/bin/bootagent over SSH (its shared\n"
                "libraries installed with apt-get if missing) and runs `bootagent serve --stdio`\n"
                "over SSH as the communicator. The template keeps bootagent only when the recipe\n"
                "has an agent step. EXOSCALE_API_ENDPOINT overrides the API endpoint template\n"
                "(default " EXOAPI_DEFAULT_ENDPOINT ") and IMGBUILD_EXOSCALE_POLL_MS the\n"
                "operation polling interval (default 3000; for fakes).\n"
                "\n"
                "The manifest (template ids per zone) lands in\n"
                "STORE/exoscale/NAME/VERSION/manifest.json; its path is printed on success.\n"
                "Exit status: 0 on success, 2 if the recipe has errors, 1 on other errors\n"
                "(128+N when interrupted by signal N).\n",
        .options = exo_options,
        .state_size = sizeof(exo_build),
        .init = exo_init,
        .parse_option = exo_parse_option,
        .done = exo_done,
        .prepare = exo_prepare,
        .connect = exo_connect,
        .run_step = exo_run_step,
        .finish = exo_finish,
        .export = exo_export,
};
