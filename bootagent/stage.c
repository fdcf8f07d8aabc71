#include "stage.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

int agent_identity_env(const agent *a, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        if (strv_pushf(&env, "instance_id=%s", strempty(a->id.instance_id)) < 0 ||
            strv_pushf(&env, "zone=%s", strempty(a->id.zone)) < 0 ||
            strv_pushf(&env, "local_ipv4=%s", strempty(a->id.local_ipv4)) < 0 ||
            strv_pushf(&env, "public_ipv4=%s", strempty(a->id.public_ipv4)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

void agent_sleep(agent *a, long ms) {
        long j = ms / 4 > 0 ? (long) (random_u64() % (uint64_t) (ms / 2 + 1)) - ms / 4 : 0;
        int64_t t = time_now_ms();
        int64_t d = ms + j;
        if (a->deadline.at > 0 && t + d > a->deadline.at)
                d = a->deadline.at > t ? a->deadline.at - t : 0;
        time_sleep_ms((long) d);
        a->stage_wait += time_now_ms() - t;
}

void stage_begin(agent *a) {
        a->stage_start = time_now_ms();
        a->stage_wait = 0;
        a->deadline = (request_deadline){ 0 };
}

void stage_deadline(agent *a, long ms) {
        a->deadline = (request_deadline){ .at = time_now_ms() + ms, .ms = ms };
}

bool stage_deadline_passed(const agent *a) {
        return a->deadline.at > 0 && time_now_ms() >= a->deadline.at;
}

int stage_end(agent *a, const char *stage, bool ok, const char *detail) {
        int64_t t = time_now_ms();
        int r = journal_append(&a->journal, stage, ok, t - a->t0, t - a->stage_start, a->stage_wait, detail);
        if (r < 0)
                return log_error_errno(r, "Failed to append to the journal: %m");
        if (ok)
                log_info("stage %s: ok (%" PRIu64 " ms)%s%s", stage, t - a->stage_start, detail ? ": " : "", strempty(detail));
        return stage_abort_point(stage);
}

int stage_abort_point(const char *point) {
        const char *abort_after = getenv("BOOTAGENT_ABORT_AFTER");
        if (abort_after && streq(abort_after, point)) {
                log_notice("BOOTAGENT_ABORT_AFTER=%s: stopping here (test hook)", point);
                return -ECANCELED;
        }
        return 0;
}

int stage_fail(agent *a, const char *stage, int r, const buf *err) {
        const char *reason = err && err->data && err->len ? err->data : strerror(-r);
        _cleanup_free_ char *why = NULL;
        bool passed = stage_deadline_passed(a);
        if (a->deadline.at > 0 && (a->deadline.reached || passed)) {
                /* reached but not passed: the next retry's wait would have ended past it. */
                if (asprintf(&why, "deadline of %ld ms%s after %u request%s: %s", a->deadline.ms,
                             passed ? " exceeded" : ": no time left for another retry", a->deadline.requests,
                             a->deadline.requests == 1 ? "" : "s", reason) < 0)
                        why = NULL;
                else
                        reason = why;
        }
        log_error("stage %s failed: %s", stage, reason);
        (void) stage_end(a, stage, false, reason);
        return r;
}

void agent_done(agent *a) {
        journal_close(&a->journal);
        identity_done(&a->id);
        vault_done(&a->vault);
        free(a->cert_file);
        free(a->key_file);
        free(a->ca_file);
        free(a->state_dir);
        agent_config_free(a->cfg);
}

int agent_rooted(const agent *a, const char *path, char **ret) {
        if (!path) {
                *ret = NULL;
                return 0;
        }
        *ret = agent_config_path(a->root, path);
        return *ret ? 0 : -ENOMEM;
}

int agent_init(agent *a, int argc, char **argv, bool open_journal) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "root", required_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        _cleanup_free_ char *config_file = NULL, *journal_path = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        const char *config_arg = NULL;
        int c, r;

        *a = (agent){ .t0 = time_now_ms(), .journal = { .fd = -1 } };
        optind = 0;
        while ((c = getopt_long(argc, argv, "c:r:j", options, NULL)) >= 0)
                switch (c) {
                case 'c': config_arg = optarg; break;
                case 'r': a->root = optarg; break;
                case 'j': break; /* status only */
                default: return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
        config_file = config_arg ? strdup(config_arg) : agent_config_path(a->root, "/etc/bootagent/agent.conf");
        if (!config_file)
                return -ENOMEM;
        r = agent_config_load(config_file, &a->cfg, &err);
        if (r < 0) {
                log_error("Invalid configuration: %s", err.data ? err.data : strerror(-r));
                return r;
        }
        const agent_config *cfg = a->cfg;
        if (agent_rooted(a, cfg->cert_file, &a->cert_file) < 0 || agent_rooted(a, cfg->key_file, &a->key_file) < 0 ||
            agent_rooted(a, cfg->ca_file, &a->ca_file) < 0 || agent_rooted(a, cfg->state_dir, &a->state_dir) < 0)
                return -ENOMEM;
        a->vault = (vault){ .addr = cfg->vault_addr, .unix_socket = cfg->vault_socket, .ca_file = cfg->vault_ca_file,
                            .deadline_ms = cfg->vault_deadline_ms, .deadline = &a->deadline };
        if (!open_journal)
                return 0;
        /* A state directory made here is made durable (its entry in its parent fsynced) before
         * the journal in it, whose creation fsyncs the state directory. */
        bool existed = access(a->state_dir, F_OK) == 0;
        r = mkdir_p(a->state_dir, 0700);
        if (r >= 0 && !existed)
                r = fsync_parent_dir(a->state_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", a->state_dir);
        if (asprintf(&journal_path, "%s/journal", a->state_dir) < 0)
                return -ENOMEM;
        r = journal_open(journal_path, &a->journal);
        if (r == -EBUSY)
                return log_error_errno(r, "Another bootagent process (firstboot, renew or leave) is using %s; "
                                       "try again when it has finished", journal_path);
        if (r < 0)
                return log_error_errno(r, "Failed to open journal %s: %m", journal_path);
        if (cfg->units_exec)
                log_notice("units = exec: running the role's command directly, not through systemd (test hosts only)");
        return 0;
}

int stage_write_file(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        /* The directories must be 0755 whatever the unit's UMask= (0077): a service running as
         * the file's owner (etcd) has to reach its files. The files get their own mode. */
        mode_t old = umask(0022);
        int r = mkdir_p(dirname(dir), 0755);
        umask(old);
        if (r < 0)
                return r;
        return write_file_atomic_if_changed(path, data, strlen(data), mode, uid, gid);
}
