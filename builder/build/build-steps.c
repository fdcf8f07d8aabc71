#include "build-steps.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "agent-config.h"
#include "comm-client.h"
#include "crypto.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

/* Where copied files wait in the guest before they are installed at their destination. */
#define GUEST_STAGING "/run/imgbuild-staging"

/* build_guest_exec with at most out_max bytes of stdout to out_fd (-EFBIG beyond, logged). */
static int guest_exec_capped(comm_client *c, char *const *argv, char *const *env, int out_fd, uint64_t out_max,
                             const char *where, const char *what) {
        _cleanup_free_ char *error = NULL;
        int r, status;

        r = comm_client_exec_capped(c, argv, env, "/", out_fd, out_max, STDERR_FILENO, &status, &error);
        if (r == -EFBIG) {
                log_error("%s%s wrote more than %ju bytes, stopped", strempty(where), what, (uintmax_t) out_max);
                return r;
        }
        if (r == -EREMOTEIO) {
                log_error("%sFailed to start %s in the VM: %s", strempty(where), what, error);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "%sLost the VM while running %s: %m", strempty(where), what);
        if (status != 0) {
                log_error("%s%s exited with status %d", strempty(where), what, status);
                return -EPROTO;
        }
        return 0;
}

int build_guest_exec(comm_client *c, char *const *argv, char *const *env, int out_fd, const char *where,
                     const char *what) {
        return guest_exec_capped(c, argv, env, out_fd, UINT64_MAX, where, what);
}

/* Run argv in the guest with the step's env, output streamed to ours. 0 only on exit status 0. */
static int guest_run(comm_client *c, const RecipeStep *s, char *const *argv, char *const *extra_env) {
        _cleanup_strv_free_ char **env = strv_copy(s->env ? s->env : (char *[]) { NULL });
        _cleanup_free_ char *where = NULL;

        if (!env || asprintf(&where, "%s:%u: ", s->file, s->line) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (char *const *e = extra_env; e && *e; e++)
                if (strv_push(&env, *e) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        return build_guest_exec(c, argv, env, STDOUT_FILENO, where, argv[0]);
}

static int step_packages(comm_client *c, const RecipeStep *s) {
        static char *const apt_env[] = { (char *) "DEBIAN_FRONTEND=noninteractive", NULL };
        /* The base image does not wait for the network at boot. */
        char *wait[] = { (char *) "/lib/systemd/systemd-networkd-wait-online", (char *) "--any",
                         (char *) "--timeout=90", NULL };
        char *update[] = { (char *) "apt-get", (char *) "update", (char *) "-q", NULL };
        char *policy_on[] = { (char *) "/bin/sh", (char *) "-c",
                              (char *) "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && "
                                       "chmod 0755 /usr/sbin/policy-rc.d", NULL };
        char *policy_off[] = { (char *) "rm", (char *) "-f", (char *) "/usr/sbin/policy-rc.d", NULL };
        _cleanup_strv_free_ char **install = NULL;
        int r;

        r = strv_split("apt-get install -y -q --no-install-recommends", " ", &install);
        for (char **p = s->packages; r >= 0 && p && *p; p++)
                r = strv_push(&install, *p);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        r = guest_run(c, s, wait, NULL);
        if (r >= 0)
                r = guest_run(c, s, update, apt_env);
        if (r < 0)
                return r;
        /* No daemon may start while packages install: a postinst starting etcd would leave a
         * data dir (and a member identity) in the template. invoke-rc.d honours policy-rc.d. */
        r = guest_run(c, s, policy_on, NULL);
        if (r < 0)
                return r;
        r = guest_run(c, s, install, apt_env);
        int q = guest_run(c, s, policy_off, NULL);
        return r < 0 ? r : q;
}

static int step_run(comm_client *c, const RecipeStep *s) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", s->command, NULL };
        return guest_run(c, s, argv, NULL);
}

/* Put a host file or directory into a fresh staging directory in the guest. */
static int put_staged(comm_client *c, const RecipeStep *s, const char *source) {
        char *clean[] = { (char *) "rm", (char *) "-rf", (char *) GUEST_STAGING, NULL };
        _cleanup_free_ char *error = NULL;
        int r;

        r = guest_run(c, s, clean, NULL);
        if (r < 0)
                return r;
        r = comm_client_put(c, source, GUEST_STAGING, &error);
        if (r == -EREMOTEIO)
                return log_error("%s:%u: Failed to copy %s into the VM: %s", s->file, s->line, source, error), r;
        if (r < 0)
                return log_error_errno(r, "%s:%u: Failed to copy %s into the VM: %m", s->file, s->line, source);
        return 0;
}

/* Install the staged file NAME at dest with mode and owner (owner NULL: root). */
static int install_staged_file(comm_client *c, const RecipeStep *s, const char *name, const char *dest,
                               mode_t mode, const char *owner) {
        static const char script[] =
                "set -e; mkdir -p \"$(dirname \"$2\")\"; cp -f \"$1\" \"$2\"; "
                "chown \"$3\" \"$2\"; chmod \"$4\" \"$2\"; rm -rf " GUEST_STAGING;
        _cleanup_free_ char *staged = NULL;
        char mode_text[16];

        if (asprintf(&staged, GUEST_STAGING "/%s", name) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        snprintf(mode_text, sizeof(mode_text), "%04o", (unsigned) mode);
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", staged,
                         (char *) dest, (char *) (owner ?: "root:root"), mode_text, NULL };
        return guest_run(c, s, argv, NULL);
}

static int step_copy(comm_client *c, const RecipeStep *s) {
        struct stat st;
        int r;

        if (stat(s->source, &st) < 0)
                return log_error_errno(errno, "%s:%u: %s: %m", s->file, s->line, s->source);
        r = put_staged(c, s, s->source);
        if (r < 0)
                return r;
        if (!S_ISDIR(st.st_mode)) {
                const char *base = strrchr(s->source, '/');
                return install_staged_file(c, s, base ? base + 1 : s->source, s->dest, s->mode, s->owner);
        }
        static const char script[] =
                "set -e; mkdir -p \"$1\"; cp -a " GUEST_STAGING "/. \"$1\"/; chown -R \"$2\" \"$1\"; "
                "rm -rf " GUEST_STAGING;
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", s->dest, s->owner, NULL };
        return guest_run(c, s, argv, NULL);
}

int build_download_check_local(const RecipeStep *s) {
        char hex[SHA512_HEX_SIZE];
        int r = s->digest_kind == RECIPE_DIGEST_SHA512 ? sha512_file_hex(s->source, hex) :
                                                         sha256_file_hex(s->source, hex);
        if (r < 0)
                return log_error_errno(r, "%s:%u: Failed to read %s: %m", s->file, s->line, s->source);
        if (!streq(hex, s->digest)) {
                log_error("%s:%u: %s has %s %s, the recipe pins %s", s->file, s->line, s->source,
                          recipe_digest_to_string(s->digest_kind), hex, s->digest);
                return -EBADMSG;
        }
        return 0;
}

/* $1 URL, $2 sha256 or sha512 (coreutils has a checking tool for each), $3 the pinned digest,
 * $4 DEST, $5 mode. A mismatch prints both digests and fails before anything is installed. */
const char build_download_script[] =
        "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
        "curl -fsSL --retry 3 -o \"$d/f\" \"$1\"; "
        "got=$(\"$2sum\" \"$d/f\"); got=${got%% *}; "
        "if [ \"$got\" != \"$3\" ]; then echo \"$1 has $2 $got, the recipe pins $3\" >&2; exit 1; fi; "
        "mkdir -p \"$(dirname \"$4\")\"; install -m \"$5\" \"$d/f\" \"$4\"";

static int step_download(comm_client *c, const RecipeStep *s) {
        int r;

        if (s->source) {
                r = build_download_check_local(s);
                if (r < 0)
                        return r;
                r = put_staged(c, s, s->source);
                if (r < 0)
                        return r;
                const char *base = strrchr(s->source, '/');
                return install_staged_file(c, s, base ? base + 1 : s->source, s->dest, s->mode, NULL);
        }

        char mode_text[16];
        snprintf(mode_text, sizeof(mode_text), "%04o", (unsigned) s->mode);
        char *wait[] = { (char *) "/lib/systemd/systemd-networkd-wait-online", (char *) "--any",
                         (char *) "--timeout=90", NULL };
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) build_download_script, (char *) "sh", s->url,
                         (char *) recipe_digest_to_string(s->digest_kind), s->digest, s->dest, mode_text, NULL };
        r = guest_run(c, s, wait, NULL);
        if (r < 0)
                return r;
        return guest_run(c, s, argv, NULL);
}

/* The agent's units come from the baked-in bootagent itself (bootagent install-units), so they
 * match the binary; it also checks the config (FILE:LINE on error) before installing it 0600. */
static int step_agent(comm_client *c, const RecipeStep *s) {
        _cleanup_free_ char *staged = NULL;
        int r;

        if (s->config) {
                const char *base = strrchr(s->config, '/');
                r = put_staged(c, s, s->config);
                if (r < 0)
                        return r;
                if (asprintf(&staged, GUEST_STAGING "/%s", base ? base + 1 : s->config) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        char *install[] = { (char *) "/usr/local/bin/bootagent", (char *) "install-units", (char *) "--role", s->role,
                            staged ? (char *) "--config" : NULL, staged, NULL };
        r = guest_run(c, s, install, NULL);
        if (r < 0) {
                if (s->config)
                        log_error("%s:%u: agent config %s was refused (see above; line numbers are %s's)", s->file,
                                  s->line, s->config, s->config);
                return r;
        }
        char *cleanup[] = { (char *) "rm", (char *) "-rf", (char *) GUEST_STAGING, NULL };
        char *enable[] = { (char *) "systemctl", (char *) "enable", (char *) "bootagent-firstboot.service",
                           (char *) "bootagent-renew.timer", NULL };
        r = guest_run(c, s, cleanup, NULL);
        if (r >= 0)
                r = guest_run(c, s, enable, NULL);
        return r;
}

int build_step_run(comm_client *c, const RecipeStep *s) {
        switch (s->kind) {
        case RECIPE_STEP_PACKAGES:
                return step_packages(c, s);
        case RECIPE_STEP_COPY:
                return step_copy(c, s);
        case RECIPE_STEP_RUN:
                return step_run(c, s);
        case RECIPE_STEP_DOWNLOAD:
                return step_download(c, s);
        case RECIPE_STEP_AGENT:
                return step_agent(c, s);
        default:
                log_error("%s:%u: '%s' steps cannot be run by the builder yet", s->file, s->line,
                          recipe_step_kind_to_string(s->kind));
                return -EOPNOTSUPP;
        }
}

int build_step_inputs_unchanged(const RecipeStep *s, const RecipeStepInputs *before) {
        _cleanup_free_ char *changed = NULL;
        int r;

        r = recipe_step_inputs_check(s, before, &changed);
        if (r == -ESTALE)
                log_error("%s:%u: %s changed during the build; run again", s->file, s->line, changed);
        else if (r < 0)
                log_error_errno(r, "%s:%u: Failed to check the step's host files again: %m", s->file, s->line);
        return r;
}

int build_step_run_checked(comm_client *c, const RecipeStep *s, const RecipeStepInputs *before) {
        int r = build_step_run(c, s);
        if (r < 0)
                return r;
        return build_step_inputs_unchanged(s, before);
}

/* What must not ship in a template: identity that every clone would share, host keys, caches and
 * logs of the build. Runs last, in its own layer, so the recipe's steps stay reusable. */
static const char hygiene_script[] =
        "set -e\n"
        ": > /etc/machine-id\n"
        "rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*\n"
        "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb "
        GUEST_STAGING "\n"
        "find /tmp /var/tmp -mindepth 1 -delete\n"
        "rm -f /root/.bash_history /root/.lesshst /home/*/.bash_history\n"
        "find /var/log -type f \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete\n"
        "find /var/log -type f -exec truncate -s 0 {} +\n"
        "rm -rf /var/log/journal/*\n"
        /* The blocks this build freed are discarded (the disk has discard=unmap), so the
         * exported template does not carry them; sync first, or ext4 has not freed them yet. */
        "sync\n"
        "fstrim -v / >&2 || echo 'hygiene: fstrim / failed: blocks freed during the build stay in the template' >&2\n"
        "sync\n";

/* What the template has installed: only packages dpkg calls installed ("ii"), not the ones removed
 * with their config kept. */
/* The most dpkg-query output kept (Debian with everything installed is a few MB). */
#define PACKAGE_LIST_MAX (16 * 1024 * 1024)
#define DPKG_QUERY_FORMAT "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\\n"

/* Installed packages ordered by name, then version and architecture: field vectors
 * {"ii", name, version, arch}. (Sorting whole lines is not that: "ii  a\x01 ..." sorts before
 * "ii  a ...", and the spacing after the status varies.) */
static int package_cmp(const void *a, const void *b) {
        char *const *x = *(char **const *) a, *const *y = *(char **const *) b;
        int c = 0;
        for (size_t i = 1; i < 4 && c == 0; i++)
                c = strcmp(x[i], y[i]);
        return c;
}

static void packages_free(char ***p, size_t n) {
        for (size_t i = 0; i < n; i++)
                strv_free(p[i]);
        free(p);
}

int build_packages_from_dpkg(const char *text, json_t **ret) {
        _cleanup_(json_decrefp) json_t *list = json_array();
        _cleanup_strv_free_ char **lines = NULL;
        char ***packages = NULL;
        size_t n = 0;
        int r;

        if (!list)
                return -ENOMEM;
        r = strv_split(text, "\n", &lines);
        if (r < 0)
                return r;
        packages = calloc(strv_length(lines) + 1, sizeof(char **));
        if (!packages)
                return -ENOMEM;
        for (char **l = lines; *l; l++) {
                if (!startswith(*l, "ii "))
                        continue;
                r = strv_split(*l, " ", &packages[n]);
                if (r < 0)
                        goto out;
                if (strv_length(packages[n++]) != 4) {
                        r = -EBADMSG;
                        goto out;
                }
        }
        qsort(packages, n, sizeof(char **), package_cmp);
        for (size_t i = 0; i < n; i++) {
                char **f = packages[i];
                json_error_t e;
                json_t *p = json_pack_ex(&e, 0, "{s:s, s:s, s:s}", "name", f[1], "version", f[2], "arch", f[3]);
                r = !p ? (json_error_code(&e) == json_error_invalid_utf8 ? -EBADMSG : -ENOMEM)
                       : json_array_append_new(list, p) < 0 ? -ENOMEM : 0;
                if (r < 0)
                        goto out;
        }
        *ret = TAKE_PTR(list);
out:
        packages_free(packages, n);
        return r;
}

/* Ask dpkg in the guest what is installed and keep it in path (for a local build, next to the
 * hygiene layer, written before the layer is committed so every committed one has it). */
static int record_packages(comm_client *c, const char *path) {
        char *argv[] = { (char *) "dpkg-query", (char *) "-W", (char *) "-f", (char *) DPKG_QUERY_FORMAT, NULL };
        _cleanup_free_ char *text = NULL, *json = NULL;
        _cleanup_(json_decrefp) json_t *list = NULL;
        _cleanup_close_ int fd = memfd_create("dpkg-query", MFD_CLOEXEC);
        int r;
        struct stat st;

        if (fd < 0)
                return log_error_errno(errno, "Failed to create a buffer for the package list: %m");
        /* Capped as it streams: the guest cannot fill the host's memory (a memfd) first. */
        r = guest_exec_capped(c, argv, NULL, fd, PACKAGE_LIST_MAX, NULL, "dpkg-query");
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Failed to read the package list: %m");
        if (st.st_size > PACKAGE_LIST_MAX)
                return log_error_errno(-EFBIG, "The package list of the VM is too long (%jd bytes)",
                                       (intmax_t) st.st_size);
        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return log_error_errno(-ENOMEM, "Out of memory");
        ssize_t k = pread(fd, text, (size_t) st.st_size, 0);
        if (k != (ssize_t) st.st_size)
                return log_error_errno(k < 0 ? -errno : -EIO, "Failed to read the package list: %m");
        text[st.st_size] = '\0';
        r = build_packages_from_dpkg(text, &list);
        if (r < 0)
                return log_error_errno(r, "Failed to parse dpkg-query's package list: %m");
        json = json_dump_compact(list);
        if (!json)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = write_file_atomic(path, json, strlen(json), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

int build_hygiene_run(comm_client *c, const RecipeStep *last, const char *packages_path) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) hygiene_script, NULL };
        RecipeStep s = { .file = last ? last->file : (char *) "hygiene", .line = last ? last->line : 0 };
        int r;

        /* Before the logs go: dpkg-query reads only its database, but nothing here should look at
         * a guest already cleaned. */
        if (packages_path) {
                r = record_packages(c, packages_path);
                if (r < 0)
                        return r;
        }
        return guest_run(c, &s, argv, NULL);
}

/* "FILE:LINE: reason" from the agent config parser, printed like the recipe's diagnostics. */
static void print_config_error(const char *file, const char *text) {
        const char *p = startswith(text, file);
        size_t digits = p && *p == ':' ? strspn(p + 1, "0123456789") : 0;
        if (digits > 0 && startswith(p + 1 + digits, ": "))
                fprintf(stderr, "%.*s: error: %s\n", (int) (p + 1 + digits - text), text, p + 3 + digits);
        else
                fprintf(stderr, "%s: error: %s\n", file, text);
}

int build_steps_check(const Recipe *recipe) {
        int r, status = 0;

        for (size_t i = 0; i < recipe->n_steps; i++) {
                const RecipeStep *s = &recipe->steps[i];
                _cleanup_free_ char *text = NULL;
                _cleanup_buf_ buf err = BUF_INIT(64 * 1024);

                if (s->kind != RECIPE_STEP_AGENT || !s->config || s->unresolved)
                        continue;
                r = read_file(s->config, 1024 * 1024, &text, NULL);
                if (r < 0) {
                        fprintf(stderr, "%s:%u: error: cannot read agent config %s: %s\n", s->file, s->line,
                                s->config, strerror(-r));
                        status = -EINVAL;
                        continue;
                }
                r = agent_config_check(text, s->config, &err);
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory");
                if (r < 0) {
                        print_config_error(s->config, err.data ? err.data : "invalid");
                        fprintf(stderr, "%s:%u: note: in the agent config of this step\n", s->file, s->line);
                        status = -EINVAL;
                }
        }
        return status;
}

/* "run systemctl mask ..." for progress lines: display arguments only (secrets masked), cut short. */
char *build_step_name(const RecipeStep *s) {
        _cleanup_free_ char *args = strv_join(s->display_args ? s->display_args : (char *[]) { NULL }, " ");
        char *name;
        if (!args || asprintf(&name, "%s %.60s%s", recipe_step_kind_to_string(s->kind), args,
                              strlen(args) > 60 ? "..." : "") < 0)
                return NULL;
        return name;
}

void build_result_done(build_result *r) {
        for (size_t i = 0; i < r->n_steps; i++) {
                free(r->steps[i].key);
                free(r->steps[i].name);
        }
        free(r->steps);
        free(r->disk);
        json_decref(r->packages);
        *r = (build_result) {};
}

int build_steps_resolved(const Recipe *recipe) {
        for (size_t i = 0; i < recipe->n_steps; i++)
                if (recipe->steps[i].unresolved) {
                        log_error("%s:%u: step refers to a variable without a value", recipe->steps[i].file,
                                  recipe->steps[i].line);
                        return -EINVAL;
                }
        return 0;
}

int build_hygiene_key(const char *previous_key, char ret[SHA256_HEX_SIZE]) {
        sha256_ctx *ctx = sha256_new();
        if (!ctx)
                return -ENOMEM;
        sha256_update_str(ctx, previous_key);
        sha256_update_str(ctx, DPKG_QUERY_FORMAT);
        sha256_update_str(ctx, hygiene_script);
        sha256_final_hex(ctx, ret);
        return 0;
}
