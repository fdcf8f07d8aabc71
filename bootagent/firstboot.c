#include "firstboot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-config.h"
#include "certs.h"
#include "fs.h"
#include "json.h"
#include "role.h"
#include "stage.h"
#include "strv.h"
#include "units.h"
#include "vault.h"

int firstboot_stage_identity(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char detail[512];
        stage_begin(a);
        stage_deadline(a, a->cfg->metadata_deadline_ms);
        int r = identity_fetch(a->cfg->metadata_url, a->cfg->metadata_socket, &a->deadline, &a->id, &err);
        if (r < 0)
                return stage_fail(a, "identity", r, &err);
        snprintf(detail, sizeof(detail), "instance %s, zone %s, ip %s, public ip %s", a->id.instance_id, a->id.zone,
                 a->id.local_ipv4, a->id.public_ipv4);
        return stage_end(a, "identity", true, detail);
}

int firstboot_stage_login(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        int r;
        /* No Vault (a node without [vault]): nothing reads it, so no login either. */
        if (!a->cfg->vault_addr)
                return 0;
        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        r = vault_health(&a->vault, &err);
        if (r >= 0)
                r = vault_login(&a->vault, a->cfg->vault_auth_mount, a->cfg->vault_role, a->id.instance_id, &err);
        /* Renew right away: proves the token works and re-validates the instance server-side. */
        if (r >= 0)
                r = vault_renew_self(&a->vault, &err);
        if (r < 0)
                return stage_fail(a, "login", r, &err);
        return stage_end(a, "login", true, NULL);
}

static int write_secret_file(const agent *a, const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *p = agent_config_path(a->root, path);
        if (!p)
                return -ENOMEM;
        return stage_write_file(p, data, mode, uid, gid);
}

static int stage_secrets(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        unsigned changed = 0;
        char detail[128];
        int r;

        if (!a->cfg->vault_addr) /* and then no [secret] either (agent-config.c) */
                return 0;
        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        for (size_t i = 0; i < a->cfg->n_secrets; i++) {
                const agent_config_secret *s = &a->cfg->secrets[i];
                _cleanup_json_ json_t *data = NULL;
                r = vault_kv_read(&a->vault, a->cfg->kv_mount, s->path, &data, &err);
                if (r < 0)
                        return stage_fail(a, "secrets", r, &err);
                const char *value = json_string_value(json_object_get(data, s->field));
                if (!value) {
                        buf_printf(&err, "secret %s has no string field '%s'", s->path, s->field);
                        return stage_fail(a, "secrets", -ENOENT, &err);
                }
                r = write_secret_file(a, s->file, value, s->mode, s->uid, s->gid);
                if (r < 0) {
                        buf_printf(&err, "writing %s: %s", s->file, strerror(-r));
                        return stage_fail(a, "secrets", r, &err);
                }
                changed += r > 0;
        }
        snprintf(detail, sizeof(detail), "%zu secrets, %u written", a->cfg->n_secrets, changed);
        return stage_end(a, "secrets", true, detail);
}

int firstboot_stage_pki(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *serial = NULL;
        bool issued = false;
        int64_t expiration = 0;
        char detail[256];

        if (!a->cfg->pki_role)
                return 0;
        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        int r = certs_ensure_pki(a, &issued, &serial, &expiration, &err);
        if (r < 0)
                return stage_fail(a, "pki", r, &err);
        if (issued)
                snprintf(detail, sizeof(detail), "issued serial %s, expires %" PRId64 " (unix)", serial, expiration);
        else
                snprintf(detail, sizeof(detail), "certificate on disk is fresh");
        return stage_end(a, "pki", true, detail);
}

/* Read "KEY=value" lines of the environment file for units = exec. */
static int read_env_file(const char *path, char ***ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **lines = NULL, **env = NULL;
        int r = read_file(path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        r = strv_split(text, "\n", &lines);
        if (r < 0)
                return r;
        for (char **l = lines; l && *l; l++)
                if ((*l)[0] != '#' && strchr(*l, '=') && strv_push(&env, *l) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

/* The units stage (role.h: role_start_units_fn). */
static int stage_units(agent *a, const char *env_file, bool *ret_started) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char detail[256] = "";
        int r;

        stage_begin(a);
        if (a->cfg->units_exec) {
                _cleanup_strv_free_ char **env = NULL, **argv = NULL;
                _cleanup_free_ char *pid_file = NULL, *log_file = NULL;
                const char *unit = a->cfg->units ? a->cfg->units[0] : "etcd.service";
                pid_t pid;
                if (env_file && (r = read_env_file(env_file, &env)) < 0) {
                        buf_printf(&err, "reading %s: %s", env_file, strerror(-r));
                        return stage_fail(a, "units", r, &err);
                }
                r = units_expand(a->cfg->exec_start, env, &argv);
                if (r < 0 || strv_length(argv) == 0) {
                        buf_printf(&err, "exec_start: unknown ${VAR} or empty command");
                        return stage_fail(a, "units", r < 0 ? r : -EINVAL, &err);
                }
                if (units_exec_paths(a->state_dir, unit, &pid_file, &log_file) < 0)
                        return -ENOMEM;
                r = units_start_exec(argv, env, pid_file, log_file, &pid);
                if (r < 0) {
                        buf_printf(&err, "starting %s: %s", argv[0], strerror(-r));
                        return stage_fail(a, "units", r, &err);
                }
                snprintf(detail, sizeof(detail), "%s %s (exec, pid %d)", unit, r > 0 ? "started" : "already running", (int) pid);
        } else {
                for (char **u = a->cfg->units; u && *u; u++) {
                        _cleanup_free_ char *result = NULL;
                        /* Longer than the start timeout of the role's drop-in (etcd: 5 min), so
                         * systemd's verdict comes first. */
                        r = units_systemd_job("StartUnit", *u, UNITS_START_WAIT_MS, &result);
                        if (r < 0) {
                                _cleanup_(units_state_done) units_state st = { 0 };
                                buf_printf(&err, "starting %s: %s", *u, result ? result : strerror(-r));
                                /* Why: the service's Result (exit-code, timeout, signal, ...) */
                                if (result && units_systemd_state(*u, &st) >= 0)
                                        buf_printf(&err, " (%s, status %d; see journalctl -u %s)", st.result,
                                                   st.exec_main_status, *u);
                                return stage_fail(a, "units", r, &err);
                        }
                }
                snprintf(detail, sizeof(detail), "%zu units started", strv_length(a->cfg->units));
        }
        *ret_started = true;
        return stage_end(a, "units", true, detail);
}

int cmd_firstboot(int argc, char **argv) {
        agent a;
        int r = agent_init(&a, argc, argv, true);
        if (r < 0)
                goto out;
        if ((r = firstboot_stage_identity(&a)) < 0 || (r = firstboot_stage_login(&a)) < 0 ||
            (r = stage_secrets(&a)) < 0 || (r = firstboot_stage_pki(&a)) < 0 ||
            (certs_configured(a.cfg) && (r = certs_stage(&a, NULL)) < 0))
                goto out;
        /* The role runs its own stages and the units at its point; a role without stages only
         * has its units. */
        const role_ops *role = role_find(a.cfg->role);
        if (role && role->firstboot)
                r = role->firstboot(&a, stage_units);
        else {
                bool started = false;
                r = stage_units(&a, NULL, &started);
        }
        if (r < 0)
                goto out;
        stage_begin(&a);
        r = stage_end(&a, "done", true, NULL);
        if (r >= 0)
                units_notify_ready("first boot done");
out:
        agent_done(&a);
        if (r == -ECANCELED)
                return BOOTAGENT_EXIT_ABORTED;
        return r < 0 ? 1 : 0;
}
