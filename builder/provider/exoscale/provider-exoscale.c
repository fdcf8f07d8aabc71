#include "provider-exoscale.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "build-steps.h"
#include "export.h"
#include "cli.h"
#include "cloud-journal.h"
#include "comm-client.h"
#include "crypto.h"
#include "exoapi.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

#define DEFAULT_BOOT_TIMEOUT 300
#define SSH_RETRY_MS 3000

/* cloud-init on Debian's cloud templates refuses root logins unless told otherwise; the build
 * logs in as root with the temporary key. Nothing secret goes into user-data. */
static const char user_data[] = "#cloud-config\ndisable_root: false\n";

typedef struct exo_options {
        RecipeOptions recipe;
        const char *cache_dir;
        const char *bootagent;
        const char *zone;
        char **copy_zones;
        const char *credentials;
        const char *ssh_user;
        unsigned ssh_port;
        char **ssh_options;
        bool export_register;
        unsigned boot_timeout;
} exo_options;

static void exo_options_done(exo_options *o) {
        cli_recipe_options_done(&o->recipe);
        strv_free(o->copy_zones);
        strv_free(o->ssh_options);
}

/* One build: what it created so far, for the next phase and for cleanup. */
typedef struct exo_build {
        const exo_options *o;
        const Recipe *recipe;
        const char *store;
        char *bootagent;
        exoapi *api;
        cloud_journal *journal;
        char build_id[17];
        char *name;             /* of the key, group and instance: imgbuild-NAME-ID */
        const char *zone;
        char *tmpdir;           /* private: the key pair and known_hosts */
        char *key_path, *known_hosts;
        char *instance_type_id, *base_template_id, *base_template_name, *default_user;
        char *security_group_id, *instance_id, *ip, *snapshot_id, *template_id;
        json_t *templates;      /* zone -> template id */
        json_t *steps;          /* [{name, seconds, cached}] for the manifest */
        int64_t t0;
} exo_build;

static void exo_build_done(exo_build *b) {
        if (b->tmpdir)
                (void) rm_rf(b->tmpdir);
        free(b->tmpdir);
        free(b->key_path);
        free(b->known_hosts);
        free(b->bootagent);
        free(b->name);
        free(b->instance_type_id);
        free(b->base_template_id);
        free(b->base_template_name);
        free(b->default_user);
        free(b->security_group_id);
        free(b->instance_id);
        free(b->ip);
        free(b->snapshot_id);
        free(b->template_id);
        json_decref(b->templates);
        json_decref(b->steps);
        cloud_journal_free(b->journal);
        exoapi_free(b->api);
}

/* Signals: the build stops at the next check and cleans up; a running SSH session is ended at
 * once so a step in progress returns. Only these are touched from the handler. */
static volatile sig_atomic_t interrupted;
static volatile pid_t session_pid;

static void on_signal(int sig) {
        interrupted = sig;
        if (session_pid > 0)
                (void) kill(session_pid, SIGTERM);
}

static void install_signal_handlers(void) {
        /* No SA_RESTART: a blocked read returns and the build notices. */
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        /* A session dying under a write must give EPIPE. (lib/spawn resets dispositions.) */
        struct sigaction ign = { .sa_handler = SIG_IGN };
        (void) sigaction(SIGPIPE, &ign, NULL);
}

static int check_interrupted(void) {
        return interrupted ? log_error_errno(-EINTR, "Interrupted by signal %d, cleaning up", (int) interrupted) : 0;
}

static double elapsed(const exo_build *b) {
        return (double) (time_now_ms() - b->t0) / 1000.0;
}

/* Log the failed API call (URL, status, message) and return r. */
static int api_failed(exo_build *b, int r, const char *what) {
        log_error("Failed to %s: %s", what, exoapi_error(b->api));
        return r;
}

static int journal_failed(exo_build *b, int r) {
        return log_error_errno(r, "Failed to write the build journal %s, not creating anything more: %m",
                               cloud_journal_path(b->journal));
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
        const char *user = json_path_string(found, "default-user");
        b->base_template_id = strdup(json_path_string(found, "id"));
        b->base_template_name = strdup(strempty(json_path_string(found, "name")));
        b->default_user = user ? strdup(user) : NULL;
        if (!b->base_template_id || !b->base_template_name || (user && !b->default_user))
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

static int make_ssh_key(exo_build *b, char **ret_public) {
        _cleanup_free_ char *pub_path = NULL, *pub = NULL;
        int r, status;

        b->tmpdir = strdup("/tmp/imgbuild-exoscale-XXXXXX");
        if (!b->tmpdir)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (!mkdtemp(b->tmpdir)) {
                r = log_error_errno(errno, "Failed to create a private temporary directory: %m");
                free(b->tmpdir);
                b->tmpdir = NULL;
                return r;
        }
        if (asprintf(&b->key_path, "%s/key", b->tmpdir) < 0 || asprintf(&b->known_hosts, "%s/known_hosts", b->tmpdir) < 0 ||
            asprintf(&pub_path, "%s/key.pub", b->tmpdir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *argv[] = { (char *) "ssh-keygen", (char *) "-q", (char *) "-t", (char *) "ed25519", (char *) "-N",
                         (char *) "", (char *) "-C", b->name, (char *) "-f", b->key_path, NULL };
        r = spawn_run(argv, NULL, &status);
        if (r < 0)
                return log_error_errno(r, "Failed to run ssh-keygen: %m");
        if (status != 0) {
                log_error("ssh-keygen failed with status %d", status);
                return -EPROTO;
        }
        r = read_file(pub_path, 16 * 1024, &pub, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", pub_path);
        pub[strcspn(pub, "\n")] = 0;
        *ret_public = TAKE_PTR(pub);
        return 0;
}

static int create_ssh_key(exo_build *b) {
        _cleanup_free_ char *public_key = NULL;
        size_t ix;
        int r;

        r = make_ssh_key(b, &public_key);
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
        exoapi_sg_rule rule = { .flow_direction = "ingress", .protocol = "tcp", .start_port = b->o->ssh_port,
                                .end_port = b->o->ssh_port, .network = "0.0.0.0/0", .description = "SSH" };
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
        int64_t deadline = time_now_ms() + (int64_t) b->o->boot_timeout * 1000;
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
                        return b->ip ? 0 : log_error_errno(-ENOMEM, "Out of memory");
                }
                if (streq(state, "error") || streq(state, "destroyed") || streq(state, "destroying")) {
                        log_error("Instance %s went to state %s while starting", b->instance_id, state);
                        return -EIO;
                }
                if (time_now_ms() > deadline) {
                        log_error("Instance %s is still %s (public IP %s) after %u s", b->instance_id, state,
                                  ip ?: "none", b->o->boot_timeout);
                        return -ETIMEDOUT;
                }
                r = check_interrupted();
                if (r < 0)
                        return r;
                time_sleep_ms(2000);
        }
}

/* ssh OPTIONS USER@IP COMMAND as an argv (never a local shell). ssh takes the first value given
 * for an option, so the user's --ssh-option values come first and override the defaults. */
static int ssh_argv(exo_build *b, const char *command, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL, **defaults = NULL;
        int r;

        r = strv_split("-T -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes "
                       "-o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR",
                       " ", &defaults);
        if (r >= 0)
                r = strv_push(&argv, "ssh");
        for (char **o = b->o->ssh_options; r >= 0 && o && *o; o++) {
                r = strv_push(&argv, "-o");
                if (r >= 0)
                        r = strv_push(&argv, *o);
        }
        for (char **d = defaults; r >= 0 && d && *d; d++)
                r = strv_push(&argv, *d);
        if (r >= 0)
                r = strv_pushf(&argv, "-oUserKnownHostsFile=%s", b->known_hosts);
        if (r >= 0)
                r = strv_push(&argv, "-i");
        if (r >= 0)
                r = strv_push(&argv, b->key_path);
        if (r >= 0)
                r = strv_pushf(&argv, "-p%u", b->o->ssh_port);
        if (r >= 0)
                r = strv_pushf(&argv, "%s@%s", b->o->ssh_user, b->ip);
        if (r >= 0)
                r = strv_push(&argv, command);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* Shared libraries bootagent needs (as in builder/store/base.c); a stock template may lack some. */
static const char install_agent_script[] =
        "set -e; umask 022; mkdir -p /usr/local/bin; t=/usr/local/bin/.bootagent.imgbuild; "
        "cat > \"$t\"; chmod 0755 \"$t\"; mv -f \"$t\" /usr/local/bin/bootagent; "
        "if ! /usr/local/bin/bootagent --version >/dev/null 2>&1; then "
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >&2; "
        "apt-get install -y -q --no-install-recommends libarchive13 libcbor0.8 libcurl4 libjansson4 libssl3 "
        "libsystemd0 >&2; fi; /usr/local/bin/bootagent --version >&2";

/* Copy bootagent in: the first SSH connection, retried (ssh exits 255 when it cannot connect)
 * while the instance boots. */
static int install_agent(exo_build *b) {
        _cleanup_strv_free_ char **argv = NULL;
        int64_t deadline = time_now_ms() + (int64_t) b->o->boot_timeout * 1000;
        unsigned attempts = 0;
        int r, status;

        r = ssh_argv(b, install_agent_script, &argv);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        for (;;) {
                _cleanup_close_ int in = open(b->bootagent, O_RDONLY | O_CLOEXEC);
                if (in < 0)
                        return log_error_errno(errno, "Failed to open %s: %m", b->bootagent);
                spawn_options so = SPAWN_OPTIONS_DEFAULT;
                so.stdin_fd = in;
                so.stdout_fd = STDERR_FILENO;
                attempts++;
                r = spawn_run(argv, &so, &status);
                if (r < 0)
                        return log_error_errno(r, "Failed to run ssh: %m");
                if (status == 0)
                        return 0;
                if (status != 255) {
                        log_error("Installing bootagent on %s failed with status %d (see above)", b->ip, status);
                        return -EPROTO;
                }
                r = check_interrupted();
                if (r < 0)
                        return r;
                if (time_now_ms() + SSH_RETRY_MS > deadline) {
                        log_error("No SSH connection to %s@%s port %u after %u attempts in %u s (see ssh's errors above)",
                                  b->o->ssh_user, b->ip, b->o->ssh_port, attempts, b->o->boot_timeout);
                        return -ETIMEDOUT;
                }
                log_info("SSH to %s not ready yet, retrying", b->ip);
                time_sleep_ms(SSH_RETRY_MS);
        }
}

/* `bootagent serve --stdio` over an SSH channel: the communicator speaks to our end of a
 * socket pair whose other end is ssh's stdin and stdout. */
typedef struct exo_session {
        int fd;
        pid_t pid;
} exo_session;

static void session_end(exo_session *s) {
        int status;

        /* EOF on its stdin ends the remote serve loop, and then ssh. */
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        if (s->pid > 0) {
                session_pid = 0;
                (void) kill(s->pid, SIGTERM);
                (void) spawn_wait(s->pid, &status);
                s->pid = 0;
        }
}

static int session_start(exo_build *b, exo_session *ret) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *error = NULL;
        int sv[2], r;

        r = ssh_argv(b, "/usr/local/bin/bootagent serve --stdio", &argv);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return log_error_errno(errno, "Failed to create a socket pair: %m");
        exo_session s = { .fd = sv[0] };
        spawn_options so = SPAWN_OPTIONS_DEFAULT;
        so.stdin_fd = sv[1];
        so.stdout_fd = sv[1];
        r = spawn_start(argv, &so, &s.pid);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return log_error_errno(r, "Failed to run ssh: %m");
        }
        session_pid = s.pid;
        comm_client c = COMM_CLIENT_INIT(s.fd);
        r = comm_client_ping(&c, &error);
        if (r < 0) {
                session_end(&s);
                if (r == -EREMOTEIO)
                        log_error("bootagent serve on %s refused a ping: %s", b->ip, error);
                else
                        log_error_errno(r, "No communicator over SSH to %s (bootagent serve --stdio): %m", b->ip);
                return r;
        }
        *ret = s;
        return 0;
}

/* What a cloud instance adds to the usual hygiene: our key in authorized_keys, cloud-init's
 * record of this instance (so clones run it afresh), and bootagent when nothing needs it. */
static int cloud_hygiene(exo_build *b, comm_client *c, bool keep_agent) {
        _cleanup_free_ char *error = NULL, *script = NULL;
        int r, status;

        if (asprintf(&script,
                     "for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do "
                     "[ -f \"$f\" ] && sed -i '/ %s$/d' \"$f\"; done; "
                     "if command -v cloud-init >/dev/null; then cloud-init clean --logs; fi; %s",
                     b->name, keep_agent ? "true" : "rm -f /usr/local/bin/bootagent") < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
        r = comm_client_exec(c, argv, NULL, "/", STDOUT_FILENO, STDERR_FILENO, &status, &error);
        if (r == -EREMOTEIO)
                return log_error("Failed to run the cloud hygiene: %s", error), r;
        if (r < 0)
                return log_error_errno(r, "Lost the instance during the cloud hygiene: %m");
        if (status != 0) {
                log_error("Cloud hygiene exited with status %d", status);
                return -EPROTO;
        }
        return 0;
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

/* Every step runs: there are no step layers in the cloud. */
static int run_steps(exo_build *b) {
        const Recipe *recipe = b->recipe;
        size_t n = recipe->n_steps + 1;
        bool keep_agent = false;
        exo_session s = { .fd = -1 };
        int r;

        r = session_start(b, &s);
        if (r < 0)
                return r;
        comm_client c = COMM_CLIENT_INIT(s.fd);
        for (size_t i = 0; i < n; i++) {
                const RecipeStep *step = i < recipe->n_steps ? &recipe->steps[i] : NULL;
                _cleanup_free_ char *name = step ? build_step_name(step)
                                                 : strdup("hygiene (machine-id, host keys, apt lists, logs, history)");
                if (!name) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        break;
                }
                int64_t start = time_now_ms();
                log_info("Step %zu/%zu %s: running (no step cache in the cloud)", i + 1, n, name);
                if (step) {
                        keep_agent = keep_agent || step->kind == RECIPE_STEP_AGENT;
                        r = build_step_run(&c, step);
                } else {
                        _cleanup_free_ char *dir = output_dir(b), *packages = NULL;
                        if (!dir || asprintf(&packages, "%s/packages.json", dir) < 0)
                                r = log_error_errno(-ENOMEM, "Out of memory");
                        else if ((r = mkdir_p(dir, 0755)) < 0)
                                log_error_errno(r, "Failed to create %s: %m", dir);
                        if (r >= 0)
                                r = cloud_hygiene(b, &c, keep_agent);
                        if (r >= 0)
                                r = build_hygiene_run(&c, recipe->n_steps > 0 ? &recipe->steps[recipe->n_steps - 1] : NULL,
                                                      packages);
                }
                if (r < 0) {
                        if (interrupted)
                                r = log_error_errno(-EINTR, "Interrupted in step %zu/%zu %s", i + 1, n, name);
                        else
                                log_error("Step %zu/%zu %s failed", i + 1, n, name);
                        break;
                }
                double seconds = (double) (time_now_ms() - start) / 1000.0;
                log_info("Step %zu/%zu %s: done in %.1f s", i + 1, n, name, seconds);
                r = record_step(b, name, seconds);
                if (r < 0)
                        break;
        }
        session_end(&s);
        return r;
}

/* Promote (one API call, same zone) or export and register, giving template NAME-VERSION with
 * the build's id in its description (how gc finds one journaled as "creating"). */
static int make_template(exo_build *b, const char *template_name, const char *description) {
        size_t ix;
        int r;

        r = cloud_journal_add(b->journal, "template", template_name, b->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(b, r);
        if (b->o->export_register) {
                _cleanup_(json_decrefp) json_t *snap = NULL;
                r = exoapi_snapshot_export(b->api, b->snapshot_id, &snap);
                if (r < 0)
                        return api_failed(b, r, "export the snapshot");
                exoapi_template_spec spec = {
                        .name = template_name,
                        .url = json_path_string(snap, "export.presigned-url"),
                        .checksum = json_path_string(snap, "export.md5sum"),
                        .default_user = b->default_user,
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
                 b->o->export_register ? "exported and registered" : "promoted", (double) (time_now_ms() - t) / 1000.0);

        for (char **z = b->o->copy_zones; z && *z; z++) {
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
        _cleanup_free_ char *dir = output_dir(b), *path = NULL, *text = NULL, *packages_path = NULL, *packages_text = NULL;
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
        if (!m || !(text = json_dump_compact(m)))
                return log_error_errno(-ENOMEM, "Out of memory");
        r = mkdir_p(dir, 0755);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
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

static int exo_build_run(exo_build *b) {
        int r;

        log_info("[%6.1f s] Build %s in %s: instance type %s, template \"%s\", disk %u GB", elapsed(b), b->build_id,
                 b->zone, b->recipe->exoscale.instance_type, b->recipe->exoscale.template, b->recipe->exoscale.disk_gb);
        r = resolve_instance_type(b);
        if (r >= 0)
                r = resolve_base_template(b);
        if (r < 0)
                return r;
        r = cloud_journal_create(b->store, b->build_id, &b->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to start the build journal in %s/cloud: %m", b->store);
        log_info("[%6.1f s] Journal %s", elapsed(b), cloud_journal_path(b->journal));

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
        r = install_agent(b);
        if (r < 0)
                return r;
        log_info("[%6.1f s] bootagent installed over SSH", elapsed(b));
        r = run_steps(b);
        if (r >= 0)
                r = check_interrupted();
        if (r >= 0)
                r = snapshot_to_templates(b);
        return r;
}

static void exo_help(void) {
        printf("Usage: imgbuild build --provider exoscale [OPTIONS] RECIPE\n"
               "\n"
               "Build the recipe on an Exoscale instance (the recipe's `exoscale` line: zone,\n"
               "instance-type, template, disk) and turn it into template NAME-VERSION. Every step\n"
               "runs on the instance (no step cache in the cloud). Temporary resources (SSH key,\n"
               "security group, instance, snapshot) are journaled in STORE/cloud before they are\n"
               "created and deleted at the end, also on failure or SIGINT; `imgbuild gc` deletes\n"
               "what a killed build left.\n"
               "\n"
               "Options:\n"
               "  -h, --help              show this help\n"
               "      --provider exoscale build in the cloud (the default is the local qemu)\n"
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
               "      --bootagent PATH    bootagent binary to copy onto the instance\n"
               CLI_VAR_OPTIONS_HELP
               "\n"
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
               "(128+N when interrupted by signal N).\n");
}

int build_provider_is_exoscale(int argc, char **argv) {
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++) {
                const char *p = NULL;
                if (streq(argv[i], "--provider") && i + 1 < argc)
                        p = argv[i + 1];
                else if (startswith(argv[i], "--provider="))
                        p = argv[i] + strlen("--provider=");
                if (!p)
                        continue;
                if (streq(p, "exoscale"))
                        return 1;
                if (streq(p, "qemu"))
                        return 0;
                log_error("Unknown provider '%s' (qemu or exoscale)", p);
                return -EINVAL;
        }
        return 0;
}

int cmd_build_exoscale(int argc, char **argv) {
        enum { OPT_ZONE = CLI_OPT_FIRST_FREE, OPT_COPY, OPT_EXPORT, OPT_CREDENTIALS, OPT_SSH_PORT, OPT_SSH_USER,
               OPT_SSH_OPTION, OPT_BOOT_TIMEOUT, OPT_CACHE_DIR, OPT_BOOTAGENT, OPT_PROVIDER };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "zone", required_argument, NULL, OPT_ZONE },
                { "copy-to-zone", required_argument, NULL, OPT_COPY },
                { "export", no_argument, NULL, OPT_EXPORT },
                { "credentials", required_argument, NULL, OPT_CREDENTIALS },
                { "ssh-port", required_argument, NULL, OPT_SSH_PORT },
                { "ssh-user", required_argument, NULL, OPT_SSH_USER },
                { "ssh-option", required_argument, NULL, OPT_SSH_OPTION },
                { "boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT },
                { "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
                { "bootagent", required_argument, NULL, OPT_BOOTAGENT },
                CLI_VAR_OPTIONS,
                {}
        };
        _cleanup_(exo_options_done) exo_options o = { .recipe = { .require_values = true }, .ssh_user = "root",
                                                      .ssh_port = 22, .boot_timeout = DEFAULT_BOOT_TIMEOUT };
        _cleanup_(recipe_freep) Recipe *recipe = NULL;
        _cleanup_free_ char *store = NULL, *manifest = NULL;
        int c, r;

        optind = 0; /* the local build's parser may have started on argv */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                r = cli_var_option(&o.recipe, c, optarg);
                if (r < 0)
                        return log_error_errno(r, "Failed to record option: %m"), EXIT_FAILURE_GENERIC;
                if (r > 0)
                        continue;
                switch (c) {
                case 'h':
                        exo_help();
                        return EXIT_OK;
                case OPT_PROVIDER:
                        break; /* checked by build_provider_is_exoscale() */
                case OPT_ZONE:
                        o.zone = optarg;
                        break;
                case OPT_COPY:
                        r = strv_push(&o.copy_zones, optarg);
                        break;
                case OPT_EXPORT:
                        o.export_register = true;
                        break;
                case OPT_CREDENTIALS:
                        o.credentials = optarg;
                        break;
                case OPT_SSH_PORT:
                        r = parse_unsigned(optarg, 1, 65535, &o.ssh_port);
                        if (r < 0)
                                return log_error("--ssh-port: expected 1..65535, got '%s'", optarg), EXIT_FAILURE_GENERIC;
                        break;
                case OPT_SSH_USER:
                        o.ssh_user = optarg;
                        break;
                case OPT_SSH_OPTION:
                        r = strv_push(&o.ssh_options, optarg);
                        break;
                case OPT_BOOT_TIMEOUT:
                        r = parse_unsigned(optarg, 1, 86400, &o.boot_timeout);
                        if (r < 0)
                                return log_error("--boot-timeout: expected seconds, got '%s'", optarg), EXIT_FAILURE_GENERIC;
                        break;
                case OPT_CACHE_DIR:
                        o.cache_dir = optarg;
                        break;
                case OPT_BOOTAGENT:
                        o.bootagent = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
                if (r < 0)
                        return log_error_errno(r, "Out of memory"), EXIT_FAILURE_GENERIC;
        }
        if (optind + 1 != argc) {
                log_error("build needs exactly one recipe (see imgbuild build --provider exoscale --help)");
                return EXIT_FAILURE_GENERIC;
        }
        r = cli_load_recipe(argv[optind], &o.recipe, &recipe);
        if (r < 0)
                return r == -EINVAL ? EXIT_RECIPE_ERROR : EXIT_FAILURE_GENERIC;
        if (!recipe->exoscale.set) {
                log_error("%s has no exoscale line (exoscale zone=... instance-type=... template=... disk=...)",
                          recipe->path);
                return EXIT_RECIPE_ERROR;
        }
        for (size_t i = 0; i < recipe->n_steps; i++)
                if (recipe->steps[i].unresolved) {
                        log_error("%s:%u: step refers to a variable without a value", recipe->steps[i].file,
                                  recipe->steps[i].line);
                        return EXIT_RECIPE_ERROR;
                }

        r = base_store_dir(o.cache_dir, &store);
        if (r < 0)
                return log_error_errno(r, "Failed to find the image store (set --cache-dir or IMGBUILD_CACHE_DIR): %m"),
                       EXIT_FAILURE_GENERIC;

        _cleanup_(exo_build_done) exo_build b = { .o = &o, .recipe = recipe, .store = store,
                                                  .zone = o.zone ?: recipe->exoscale.zone, .t0 = time_now_ms(),
                                                  .templates = json_object(), .steps = json_array() };
        uint8_t id[8];
        if (!b.templates || !b.steps || random_bytes(id, sizeof(id)) < 0)
                return log_error_errno(-ENOMEM, "Failed to start the build"), EXIT_FAILURE_GENERIC;
        hex_encode(id, sizeof(id), b.build_id);
        if (asprintf(&b.name, "imgbuild-%.40s-%s", recipe->template_name, b.build_id) < 0)
                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE_GENERIC;
        r = base_find_bootagent(o.bootagent, &b.bootagent);
        if (r < 0)
                return log_error_errno(r, "Failed to find the bootagent binary (use --bootagent): %m"),
                       EXIT_FAILURE_GENERIC;
        r = exoscale_api_new(o.credentials, b.zone, &b.api);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;

        install_signal_handlers();
        r = exo_build_run(&b);
        if (b.journal) {
                /* The templates are the product: cleanup keeps them, unless the build failed. */
                if (r >= 0) {
                        r = cloud_journal_keep(b.journal, "template");
                        if (r < 0)
                                log_error_errno(r, "Failed to update %s: %m", cloud_journal_path(b.journal));
                }
                log_info("[%6.1f s] Deleting the build's temporary resources", elapsed(&b));
                int q = cloud_journal_cleanup(b.journal, b.api, false, stderr);
                if (q < 0) {
                        log_error("Some resources of build %s remain, recorded in %s: run `imgbuild gc` to retry",
                                  b.build_id, cloud_journal_path(b.journal));
                        r = r < 0 ? r : q;
                } else
                        (void) cloud_journal_remove(b.journal);
        }
        if (r >= 0)
                r = write_manifest(&b, &manifest);
        if (r < 0)
                return interrupted ? 128 + interrupted : EXIT_FAILURE_GENERIC;

        printf("%s@%s: %zu steps built on exoscale (no step cache in the cloud), %.1f s\n", recipe->template_name,
               recipe->template_version, recipe->n_steps + 1, elapsed(&b));
        const char *zone;
        json_t *tid;
        json_object_foreach(b.templates, zone, tid)
                printf("%s %s\n", zone, json_string_value(tid));
        printf("%s\n", manifest);
        return EXIT_OK;
}
