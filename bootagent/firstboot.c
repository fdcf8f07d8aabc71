#include "firstboot.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent-config.h"
#include "crypto.h"
#include "discover.h"
#include "etcd.h"
#include "fs.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "metadata.h"
#include "pki.h"
#include "strv.h"
#include "units.h"
#include "vault.h"
#include "time-util.h"

typedef struct agent {
        agent_config *cfg;
        const char *root;
        journal journal;
        uint64_t t0;            /* monotonic ms at start */
        uint64_t stage_start;
        uint64_t stage_wait;    /* ms spent waiting in the current stage */
        identity id;
        vault vault;
        char *cert_file, *key_file, *ca_file, *state_dir;
        /* etcd */
        pool_view pool;
        char *name, *peer_url, *client_url, *data_dir, *env_file;
        etcd_tls tls;
        uint64_t added_id;      /* member we added in this run and have not started yet */
} agent;

/* Sleep ms with +-25% jitter, counted as waiting time of the stage. */
static void agent_sleep(agent *a, long ms) {
        long j = ms / 4 > 0 ? (long) (random_u64() % (uint64_t) (ms / 2 + 1)) - ms / 4 : 0;
        int64_t t = time_now_ms();
        usleep((useconds_t) (ms + j) * 1000);
        a->stage_wait += time_now_ms() - t;
}

static void stage_begin(agent *a) {
        a->stage_start = time_now_ms();
        a->stage_wait = 0;
}

/* Record a stage in the journal. Returns -ECANCELED when BOOTAGENT_ABORT_AFTER names it. */
static int stage_end(agent *a, const char *stage, bool ok, const char *detail) {
        int64_t t = time_now_ms();
        int r = journal_append(&a->journal, stage, ok, t - a->t0, t - a->stage_start, a->stage_wait, detail);
        if (r < 0)
                return log_error_errno(r, "Failed to append to the journal: %m");
        if (ok)
                log_info("stage %s: ok (%" PRIu64 " ms)%s%s", stage, t - a->stage_start, detail ? ": " : "", strempty(detail));
        const char *abort_after = getenv("BOOTAGENT_ABORT_AFTER");
        if (abort_after && streq(abort_after, stage)) {
                log_notice("BOOTAGENT_ABORT_AFTER=%s: stopping here (test hook)", stage);
                return -ECANCELED;
        }
        return 0;
}

/* Log one clear reason, record the failed stage, return r. */
static int stage_fail(agent *a, const char *stage, int r, const buf *err) {
        const char *reason = err && err->data && err->len ? err->data : strerror(-r);
        log_error("stage %s failed: %s", stage, reason);
        (void) stage_end(a, stage, false, reason);
        return r;
}

static void agent_done(agent *a) {
        journal_close(&a->journal);
        identity_done(&a->id);
        vault_done(&a->vault);
        pool_view_done(&a->pool);
        free(a->cert_file);
        free(a->key_file);
        free(a->ca_file);
        free(a->state_dir);
        free(a->name);
        free(a->peer_url);
        free(a->client_url);
        free(a->data_dir);
        free(a->env_file);
        agent_config_free(a->cfg);
}

static int rooted(const agent *a, const char *path, char **ret) {
        if (!path) {
                *ret = NULL;
                return 0;
        }
        *ret = agent_config_path(a->root, path);
        return *ret ? 0 : -ENOMEM;
}

/* Parse --config/--root, load the config, open the journal. */
static int agent_init(agent *a, int argc, char **argv, bool open_journal) {
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
        if (rooted(a, cfg->cert_file, &a->cert_file) < 0 || rooted(a, cfg->key_file, &a->key_file) < 0 ||
            rooted(a, cfg->ca_file, &a->ca_file) < 0 || rooted(a, cfg->state_dir, &a->state_dir) < 0 ||
            rooted(a, cfg->etcd_data_dir, &a->data_dir) < 0 || rooted(a, cfg->etcd_env_file, &a->env_file) < 0)
                return -ENOMEM;
        a->tls = (etcd_tls){ .ca_file = a->ca_file, .cert_file = a->cert_file, .key_file = a->key_file };
        a->vault = (vault){ .addr = cfg->vault_addr, .ca_file = cfg->vault_ca_file, .deadline_ms = cfg->vault_deadline_ms };
        if (!open_journal)
                return 0;
        r = mkdir_p(a->state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", a->state_dir);
        if (asprintf(&journal_path, "%s/journal", a->state_dir) < 0)
                return -ENOMEM;
        r = journal_open(journal_path, &a->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to open journal %s: %m", journal_path);
        if (cfg->units_exec)
                log_notice("units = exec: running the role's command directly, not through systemd (test hosts only)");
        return 0;
}

static int stage_identity(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char detail[512];
        stage_begin(a);
        int r = identity_fetch(a->cfg->metadata_url, a->cfg->metadata_deadline_ms, &a->id, &err);
        if (r < 0)
                return stage_fail(a, "identity", r, &err);
        snprintf(detail, sizeof(detail), "instance %s, zone %s, ip %s, public ip %s", a->id.instance_id, a->id.zone,
                 a->id.local_ipv4, a->id.public_ipv4);
        return stage_end(a, "identity", true, detail);
}

static int stage_login(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        int r;
        stage_begin(a);
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

/* Write atomically unless unchanged, creating the parent directory (0755) first. */
static int write_file_in_dir(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid) {
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

static int write_secret_file(const agent *a, const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *p = agent_config_path(a->root, path);
        if (!p)
                return -ENOMEM;
        return write_file_in_dir(p, data, mode, uid, gid);
}

static int stage_secrets(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        unsigned changed = 0;
        char detail[128];
        int r;

        stage_begin(a);
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

/* Issue (or sign) a certificate unless the one on disk is still fresh. */
static int ensure_certificate(agent *a, bool *ret_issued, char **ret_serial, int64_t *ret_expiration, buf *err) {
        const agent_config *cfg = a->cfg;
        _cleanup_secret_ char *local_key = NULL;
        _cleanup_free_ char *csr = NULL, *alt = NULL, *ips = NULL;
        _cleanup_free_ char *extra_ips = cfg->pki_ip_sans ? strv_join(cfg->pki_ip_sans, ",") : NULL;
        pki_bundle b = { 0 };
        int r;

        r = pki_cert_fresh(a->cert_file, a->key_file, a->id.local_ipv4, cfg->renew_fraction, time(NULL));
        if (r < 0) {
                buf_printf(err, "reading %s: %s", a->cert_file, strerror(-r));
                return r;
        }
        if (r > 0) {
                *ret_issued = false;
                return 0;
        }
        const char *cn = cfg->pki_common_name ? cfg->pki_common_name : a->id.instance_id;
        if (cfg->pki_local_key) {
                r = pki_make_csr(cn, &local_key, &csr);
                if (r < 0) {
                        buf_printf(err, "generating a key and CSR: %s", strerror(-r));
                        return r;
                }
        }
        alt = strv_join(cfg->pki_alt_names, ",");
        if (!alt)
                return -ENOMEM;
        if (asprintf(&ips, "%s%s%s", a->id.local_ipv4, cfg->pki_ip_sans ? "," : "", strempty(extra_ips)) < 0)
                return -ENOMEM;
        r = vault_pki(&a->vault, cfg->pki_mount, cfg->pki_role, cn, alt, ips, cfg->pki_ttl, csr, &b, err);
        if (r < 0)
                return r;
        const char *key = local_key ? local_key : b.private_key;
        /* Key first: a crash in between leaves a cert/key mismatch that the freshness check
         * catches, never a fresh-looking certificate without its key. */
        if ((r = write_file_in_dir(a->key_file, key, 0600, cfg->pki_uid, cfg->pki_gid)) < 0 ||
            (r = write_file_in_dir(a->ca_file, b.issuing_ca, 0644, cfg->pki_uid, cfg->pki_gid)) < 0 ||
            (r = write_file_in_dir(a->cert_file, b.certificate, 0644, cfg->pki_uid, cfg->pki_gid)) < 0) {
                buf_printf(err, "writing certificate files: %s", strerror(-r));
                goto out;
        }
        *ret_issued = true;
        *ret_serial = TAKE_PTR(b.serial);
        *ret_expiration = b.expiration;
        r = 0;
out:
        pki_bundle_done(&b);
        return r;
}

static int stage_pki(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *serial = NULL;
        bool issued = false;
        int64_t expiration = 0;
        char detail[256];

        if (!a->cfg->pki_role)
                return 0;
        stage_begin(a);
        int r = ensure_certificate(a, &issued, &serial, &expiration, &err);
        if (r < 0)
                return stage_fail(a, "pki", r, &err);
        if (issued)
                snprintf(detail, sizeof(detail), "issued serial %s, expires %" PRId64 " (unix)", serial, expiration);
        else
                snprintf(detail, sizeof(detail), "certificate on disk is fresh");
        return stage_end(a, "pki", true, detail);
}

/* ---- etcd role ---- */

static int stage_discover(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_json_ json_t *creds = NULL;
        char detail[256];
        int r;

        stage_begin(a);
        r = vault_kv_read(&a->vault, a->cfg->kv_mount, a->cfg->cloud_api_secret, &creds, &err);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        const char *url = json_path_string(creds, "api_url");
        exoapi_credentials key = {
                .key = (char *) json_path_string(creds, "api_key"),
                .secret = (char *) json_path_string(creds, "api_secret"),
        };
        if (!url || !key.key || !key.secret) {
                buf_printf(&err, "secret %s needs api_url, api_key and api_secret", a->cfg->cloud_api_secret);
                return stage_fail(a, "discover", -EINVAL, &err);
        }
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        r = exoapi_new(&key, a->id.zone && *a->id.zone ? a->id.zone : "local", &api);
        /* The client holds its own copy of the API secret (wiped when freed): wipe this one. */
        explicit_bzero(key.secret, strlen(key.secret));
        if (r >= 0)
                r = exoapi_set_endpoint(api, url);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        r = discover_pool(api, a->id.instance_id, &a->pool, &err);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        if (!pool_view_find_ip(&a->pool, a->id.local_ipv4)) {
                buf_printf(&err, "own address %s is not among the pool's leases", a->id.local_ipv4);
                return stage_fail(a, "discover", -ENOENT, &err);
        }
        if (asprintf(&a->name, "%s%s", a->cfg->etcd_name_prefix, a->id.instance_id) < 0 ||
            asprintf(&a->peer_url, "https://%s:%u", a->id.local_ipv4, a->cfg->etcd_peer_port) < 0 ||
            asprintf(&a->client_url, "https://%s:%u", a->id.local_ipv4, a->cfg->etcd_client_port) < 0)
                return -ENOMEM;
        snprintf(detail, sizeof(detail), "pool %s, %zu members", a->pool.pool_id, a->pool.n_peers);
        return stage_end(a, "discover", true, detail);
}

/* Seed election: the first KV v2 write with cas:0 wins, so two clusters can never form. */
static int stage_seed(agent *a, bool *ret_seed) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *mine = json_pack("{s:s}", "instance", a->id.instance_id);
        char detail[256];
        int r;

        stage_begin(a);
        if (!mine || asprintf(&path, "etcd/%s/bootstrap", a->pool.pool_id) < 0)
                return -ENOMEM;
        for (int attempt = 0;; attempt++) {
                _cleanup_json_ json_t *cur = NULL;
                buf_clear(&err);
                r = vault_kv_read(&a->vault, a->cfg->kv_mount, path, &cur, &err);
                if (r >= 0) {
                        const char *seed = json_path_string(cur, "instance");
                        if (!seed) {
                                buf_printf(&err, "%s holds no instance", path);
                                return stage_fail(a, "seed", -EBADMSG, &err);
                        }
                        *ret_seed = streq(seed, a->id.instance_id);
                        snprintf(detail, sizeof(detail), "seed %s%s", seed, *ret_seed ? " (self)" : "");
                        return stage_end(a, "seed", true, detail);
                }
                if (r != -ENOENT || attempt >= 3)
                        return stage_fail(a, "seed", r, &err);
                buf_clear(&err);
                r = vault_kv_write(&a->vault, a->cfg->kv_mount, path, mine, 0, &err);
                if (r < 0 && r != -EEXIST)
                        return stage_fail(a, "seed", r, &err);
                /* Won or lost: read back who holds it. */
        }
}

static char *peer_client_url(const agent *a, const char *ip) {
        char *s;
        return asprintf(&s, "https://%s:%u", ip, a->cfg->etcd_client_port) < 0 ? NULL : s;
}

/* A healthy voting member's client URL among the pool peers other than us. */
static int find_voting_endpoint(agent *a, char **ret) {
        for (size_t i = 0; i < a->pool.n_peers; i++) {
                const pool_peer *p = &a->pool.peers[i];
                if (streq(p->ip, a->id.local_ipv4))
                        continue;
                _cleanup_free_ char *url = peer_client_url(a, p->ip);
                bool learner;
                if (!url)
                        return -ENOMEM;
                if (etcd_health(&a->tls, url, NULL) < 0 || etcd_status(&a->tls, url, &learner, NULL) < 0 || learner)
                        continue;
                *ret = TAKE_PTR(url);
                return 0;
        }
        return -ENOENT;
}

static int wait_voting_endpoint(agent *a, char **ret, buf *err) {
        int64_t end = time_now_ms() + a->cfg->etcd_deadline_ms;
        long delay = 250;
        for (;;) {
                int r = find_voting_endpoint(a, ret);
                if (r != -ENOENT)
                        return r;
                if (time_now_ms() >= end) {
                        buf_printf(err, "no healthy voting etcd member among %zu pool peers within %ld ms",
                                   a->pool.n_peers, a->cfg->etcd_deadline_ms);
                        return -ETIMEDOUT;
                }
                agent_sleep(a, delay);
                delay = delay < 2000 ? delay * 2 : 2000;
        }
}

static bool data_dir_populated(const agent *a) {
        _cleanup_free_ char *p = NULL;
        struct stat st;
        return asprintf(&p, "%s/member", a->data_dir) >= 0 && stat(p, &st) == 0;
}

/* Empty the data dir for a fresh member: etcd (running as the key's owner) needs it to exist
 * with mode 0700 and cannot create it under a root-owned parent. */
static int reset_data_dir(const agent *a) {
        int r = rm_rf(a->data_dir);
        if (r < 0)
                return r;
        r = mkdir_p(a->data_dir, 0700);
        if (r < 0)
                return r;
        if (chown(a->data_dir, a->cfg->pki_uid, a->cfg->pki_gid) < 0 || chmod(a->data_dir, 0700) < 0)
                return negative_errno();
        return 0;
}

static int write_env_file(agent *a, const char *initial_cluster, const char *state) {
        _cleanup_buf_ buf env = BUF_INIT(64 * 1024);
        buf_printf(&env,
                   "# Written by bootagent; read by etcd.service (EnvironmentFile=).\n"
                   "ETCD_NAME=%s\nETCD_DATA_DIR=%s\n"
                   "ETCD_LISTEN_PEER_URLS=%s\nETCD_INITIAL_ADVERTISE_PEER_URLS=%s\n"
                   "ETCD_LISTEN_CLIENT_URLS=%s\nETCD_ADVERTISE_CLIENT_URLS=%s\n"
                   "ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\nETCD_INITIAL_CLUSTER_TOKEN=%s\n"
                   "ETCD_CERT_FILE=%s\nETCD_KEY_FILE=%s\nETCD_TRUSTED_CA_FILE=%s\nETCD_CLIENT_CERT_AUTH=true\n"
                   "ETCD_PEER_CERT_FILE=%s\nETCD_PEER_KEY_FILE=%s\nETCD_PEER_TRUSTED_CA_FILE=%s\n"
                   "ETCD_PEER_CLIENT_CERT_AUTH=true\n",
                   a->name, a->data_dir, a->peer_url, a->peer_url, a->client_url, a->client_url,
                   initial_cluster, state, a->pool.pool_id, a->cert_file, a->key_file, a->ca_file,
                   a->cert_file, a->key_file, a->ca_file);
        if (!env.data)
                return -ENOMEM;
        return write_file_in_dir(a->env_file, env.data, 0644, (uid_t) -1, (gid_t) -1);
}

/* "name=peerURL,..." for every member (learners and unstarted ones included), ourselves by name. */
static char *initial_cluster(const agent *a, const etcd_members *m) {
        _cleanup_buf_ buf b = BUF_INIT(64 * 1024);
        for (size_t i = 0; i < m->n; i++)
                for (char **u = m->v[i].peer_urls; u && *u; u++) {
                        const char *name = streq(*u, a->peer_url) ? a->name : strempty(m->v[i].name);
                        if (buf_printf(&b, "%s%s=%s", b.len ? "," : "", name, *u) < 0)
                                return NULL;
                }
        return buf_steal(&b);
}

/* member/remove, retried while etcd answers "unhealthy cluster" (503): it refuses a removal
 * that would leave fewer members active than a quorum, and a member counts as active only after
 * the leader has been connected to it for a few seconds (e.g. right after a join). An unknown
 * member is already gone. */
static int remove_member(agent *a, const char *endpoint, uint64_t id, buf *err) {
        int64_t end = time_now_ms() + a->cfg->etcd_deadline_ms;
        for (;;) {
                buf_clear(err);
                int r = etcd_member_remove(&a->tls, endpoint, id, err);
                if (r == -ENOENT)
                        return 0;
                if (r != -EAGAIN || time_now_ms() >= end)
                        return r;
                agent_sleep(a, 1000);
        }
}

/* Remove members whose peer IP left the pool, one at a time, only while quorum holds. */
static int remove_stale_members(agent *a, const char *endpoint, unsigned *ret_removed, buf *err) {
        unsigned removed = 0;
        for (;;) {
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                int r = etcd_member_list(&a->tls, endpoint, &m, err);
                if (r < 0)
                        return r;
                etcd_member *stale = NULL;
                for (size_t i = 0; i < m.n && !stale; i++) {
                        _cleanup_free_ char *host = m.v[i].peer_urls ? etcd_url_host(m.v[i].peer_urls[0]) : NULL;
                        if (host && !pool_view_find_ip(&a->pool, host) && !streq(m.v[i].peer_urls[0], a->peer_url))
                                stale = &m.v[i];
                }
                if (!stale)
                        break;
                if (m.n <= 2) {
                        log_warning("Not removing stale member %" PRIx64 " from a %zu-member cluster", stale->id, m.n);
                        break;
                }
                unsigned voters = 0, healthy = 0;
                for (size_t i = 0; i < m.n; i++) {
                        if (m.v[i].is_learner)
                                continue;
                        voters++;
                        if (&m.v[i] != stale && m.v[i].client_urls && etcd_health(&a->tls, m.v[i].client_urls[0], NULL) >= 0)
                                healthy++;
                }
                unsigned after = voters - (stale->is_learner ? 0 : 1);
                if (healthy < after / 2 + 1) {
                        buf_printf(err, "stale member %" PRIx64 " left the pool, but removing it would break quorum (%u healthy of %u voters)",
                                   stale->id, healthy, after);
                        return -EBUSY;
                }
                log_info("Removing stale etcd member %" PRIx64 " (%s): its address left the pool", stale->id, stale->peer_urls[0]);
                r = remove_member(a, endpoint, stale->id, err);
                if (r < 0)
                        return r;
                removed++;
        }
        *ret_removed = removed;
        return 0;
}

static int stop_etcd(agent *a) {
        const char *unit = a->cfg->units ? a->cfg->units[0] : "etcd.service";
        if (!a->cfg->units_exec)
                return units_systemd_job("StopUnit", unit, 60000, NULL);
        _cleanup_free_ char *pid_file = NULL;
        if (asprintf(&pid_file, "%s/%s.pid", a->state_dir, unit) < 0)
                return -ENOMEM;
        return units_stop_exec(pid_file, 10000);
}

/* Join as a learner through a voting member (protocols.md §6.4). */
static int join_cluster(agent *a, char **detail, buf *err) {
        _cleanup_free_ char *endpoint = NULL, *cluster = NULL;
        unsigned removed = 0;
        int r;

        r = wait_voting_endpoint(a, &endpoint, err);
        if (r < 0)
                return r;
        r = remove_stale_members(a, endpoint, &removed, err);
        if (r < 0)
                return r;

        int64_t end = time_now_ms() + a->cfg->etcd_deadline_ms;
        for (;;) {
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                buf_clear(err);
                r = etcd_member_list(&a->tls, endpoint, &m, err);
                if (r < 0)
                        return r;
                etcd_member *me = etcd_members_find_peer(&m, a->peer_url);
                if (me && !me->name) {
                        /* Our own earlier add whose etcd never started: reuse it. */
                        log_info("Reusing etcd member %" PRIx64 " added by an earlier run", me->id);
                        a->added_id = me->id;
                } else if (me) {
                        /* Started under our peer URL but our data dir is gone: a replacement
                         * that lost its disk. Remove the old identity, then add again. */
                        log_info("Member %" PRIx64 " holds our peer URL with no data dir here: removing it", me->id);
                        r = remove_member(a, endpoint, me->id, err);
                        if (r < 0)
                                return r;
                        continue;
                } else {
                        etcd_members added = { 0 };
                        uint64_t id;
                        r = etcd_member_add_learner(&a->tls, endpoint, a->peer_url, &id, &added, err);
                        /* 3.4's gateway maps FailedPrecondition to 412, 3.5's to 400. */
                        if (r < 0 && err->data && strstr(err->data, "too many learner")) {
                                /* Another member is joining; wait for its promotion. */
                                if (time_now_ms() >= end)
                                        return -ETIMEDOUT;
                                agent_sleep(a, 500);
                                continue;
                        }
                        if (r < 0) {
                                /* The add may have been applied with the reply lost: the next
                                 * list shows our peer URL and we reuse it. */
                                if (time_now_ms() >= end)
                                        return r;
                                log_warning("Adding etcd member failed (%s), re-checking the member list", err->data);
                                agent_sleep(a, 500);
                                continue;
                        }
                        etcd_members_done(&m);
                        m = added;
                        a->added_id = id;
                        log_info("Added etcd learner %" PRIx64, id);
                }
                cluster = initial_cluster(a, &m);
                if (!cluster)
                        return -ENOMEM;
                break;
        }
        /* A member removed earlier cannot restart from its old data dir. */
        r = reset_data_dir(a);
        if (r < 0)
                return r;
        r = write_env_file(a, cluster, "existing");
        if (r < 0)
                return r;
        if (asprintf(detail, "learner %" PRIx64 ", %u stale removed", a->added_id, removed) < 0)
                return -ENOMEM;
        return 0;
}

/* Decide between bootstrap, join and restart; write the environment file. */
static int stage_member(agent *a, bool seed) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *detail = NULL, *endpoint = NULL;
        int r;

        stage_begin(a);
        if (data_dir_populated(a)) {
                /* A restart. If the cluster no longer knows us, our data dir is stale. */
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                if (find_voting_endpoint(a, &endpoint) >= 0 && etcd_member_list(&a->tls, endpoint, &m, &err) >= 0 &&
                    !etcd_members_find_peer(&m, a->peer_url)) {
                        log_notice("This member was removed from the cluster: wiping %s and joining again", a->data_dir);
                        r = stop_etcd(a);
                        if (r < 0)
                                log_warning_errno(r, "Failed to stop etcd: %m");
                        r = reset_data_dir(a);
                        if (r < 0)
                                return stage_fail(a, "member", r, NULL);
                } else {
                        buf_clear(&err);
                        return stage_end(a, "member", true, "restart with existing data dir");
                }
        }
        if (seed && find_voting_endpoint(a, &endpoint) == -ENOENT) {
                _cleanup_free_ char *cluster = NULL;
                if (asprintf(&cluster, "%s=%s", a->name, a->peer_url) < 0)
                        return -ENOMEM;
                r = reset_data_dir(a);
                if (r >= 0)
                        r = write_env_file(a, cluster, "new");
                if (r < 0)
                        return stage_fail(a, "member", r, NULL);
                return stage_end(a, "member", true, "bootstrap new cluster");
        }
        r = join_cluster(a, &detail, &err);
        if (r < 0)
                return stage_fail(a, "member", r, &err);
        return stage_end(a, "member", true, detail);
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

static int stage_units(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char detail[256] = "";
        int r;

        stage_begin(a);
        if (a->cfg->units_exec) {
                _cleanup_strv_free_ char **env = NULL, **argv = NULL;
                _cleanup_free_ char *pid_file = NULL, *log_file = NULL;
                const char *unit = a->cfg->units ? a->cfg->units[0] : "etcd.service";
                pid_t pid;
                if (a->cfg->role == AGENT_CONFIG_ROLE_ETCD && (r = read_env_file(a->env_file, &env)) < 0) {
                        buf_printf(&err, "reading %s: %s", a->env_file, strerror(-r));
                        return stage_fail(a, "units", r, &err);
                }
                r = units_expand(a->cfg->exec_start, env, &argv);
                if (r < 0 || strv_length(argv) == 0) {
                        buf_printf(&err, "exec_start: unknown ${VAR} or empty command");
                        return stage_fail(a, "units", r < 0 ? r : -EINVAL, &err);
                }
                if (asprintf(&pid_file, "%s/%s.pid", a->state_dir, unit) < 0 ||
                    asprintf(&log_file, "%s/%s.log", a->state_dir, unit) < 0)
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
                        r = units_systemd_job("StartUnit", *u, 120000, &result);
                        if (r < 0) {
                                buf_printf(&err, "starting %s: %s", *u, result ? result : strerror(-r));
                                return stage_fail(a, "units", r, &err);
                        }
                }
                snprintf(detail, sizeof(detail), "%zu units started", strv_length(a->cfg->units));
        }
        a->added_id = 0; /* etcd runs now: the member is no longer half-added */
        return stage_end(a, "units", true, detail);
}

/* Promote ourselves once caught up (a learner can only be promoted by a voting member). */
static int stage_promote(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        int64_t end = time_now_ms() + a->cfg->etcd_deadline_ms;
        char detail[128];
        int r;

        stage_begin(a);
        for (;;) {
                _cleanup_free_ char *endpoint = NULL;
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                int64_t probe_start = time_now_ms();
                buf_clear(&err);
                r = find_voting_endpoint(a, &endpoint);
                if (r == -ENOENT) {
                        /* We may be the only voter (bootstrap): check our own endpoint. */
                        bool learner;
                        if (etcd_status(&a->tls, a->client_url, &learner, &err) >= 0 && !learner)
                                return stage_end(a, "promote", true, "voting member");
                } else if (r < 0)
                        return r;
                else if (etcd_member_list(&a->tls, endpoint, &m, &err) >= 0) {
                        etcd_member *me = etcd_members_find_peer(&m, a->peer_url);
                        if (!me) {
                                buf_printf(&err, "our member vanished from the cluster");
                                return stage_fail(a, "promote", -ENOENT, &err);
                        }
                        if (!me->is_learner) {
                                snprintf(detail, sizeof(detail), "voting member %" PRIx64 ", %zu members", me->id, m.n);
                                return stage_end(a, "promote", true, detail);
                        }
                        buf_clear(&err);
                        r = etcd_member_promote(&a->tls, endpoint, me->id, &err);
                        if (r >= 0)
                                continue; /* confirm with the next list */
                }
                /* Probes that did not finish the stage were waiting for etcd to start or catch up. */
                a->stage_wait += time_now_ms() - probe_start;
                if (time_now_ms() >= end) {
                        if (!err.len)
                                buf_printf(&err, "not promoted within %ld ms", a->cfg->etcd_deadline_ms);
                        return stage_fail(a, "promote", -ETIMEDOUT, &err);
                }
                agent_sleep(a, 300);
        }
}

/* Never leave a half-added member behind: if we added one and etcd never started, remove it. */
static void rollback_member(agent *a) {
        _cleanup_free_ char *endpoint = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        if (a->added_id == 0)
                return;
        if (find_voting_endpoint(a, &endpoint) < 0 || etcd_member_remove(&a->tls, endpoint, a->added_id, &err) < 0)
                log_warning("Could not remove half-added member %" PRIx64 ": %s", a->added_id, strempty(err.data));
        else
                log_notice("Removed half-added member %" PRIx64, a->added_id);
}

static int run_etcd(agent *a) {
        bool seed = false;
        int r;
        if ((r = stage_discover(a)) < 0 || (r = stage_seed(a, &seed)) < 0 || (r = stage_member(a, seed)) < 0)
                return r;
        r = stage_units(a);
        if (r < 0 && r != -ECANCELED) {
                rollback_member(a);
                return r;
        }
        if (r < 0)
                return r;
        return stage_promote(a);
}

int cmd_firstboot(int argc, char **argv) {
        agent a;
        int r = agent_init(&a, argc, argv, true);
        if (r < 0)
                goto out;
        if ((r = stage_identity(&a)) < 0 || (r = stage_login(&a)) < 0 || (r = stage_secrets(&a)) < 0 ||
            (r = stage_pki(&a)) < 0)
                goto out;
        if (a.cfg->role == AGENT_CONFIG_ROLE_ETCD)
                r = run_etcd(&a);
        else {
                stage_begin(&a);
                r = stage_units(&a);
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

/* bootagent renew: re-issue the certificate when past renew_fraction of its lifetime. */
int cmd_renew(int argc, char **argv) {
        agent a;
        int r = agent_init(&a, argc, argv, true);
        /* Before the first boot is done, certificates are its business. */
        if (r >= 0 && !journal_find_ok(&a.journal, "done"))
                r = log_error_errno(-EAGAIN, "First boot has not completed yet: nothing to renew");
        if (r >= 0 && (r = stage_identity(&a)) >= 0 && (r = stage_login(&a)) >= 0)
                r = stage_pki(&a);
        agent_done(&a);
        return r < 0 ? 1 : 0;
}

/* bootagent leave: remove this member from the etcd cluster, stop etcd, wipe its data dir. */
int cmd_leave(int argc, char **argv) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(etcd_members_done) etcd_members m = { 0 };
        agent a;
        int r = agent_init(&a, argc, argv, true);
        if (r < 0)
                goto out;
        if (a.cfg->role != AGENT_CONFIG_ROLE_ETCD) {
                r = log_error_errno(-EINVAL, "leave is only meaningful for the etcd role");
                goto out;
        }
        if ((r = stage_identity(&a)) < 0 || (r = stage_login(&a)) < 0 || (r = stage_discover(&a)) < 0)
                goto out;
        stage_begin(&a);
        /* Ask ourselves for the member list; removal goes through another voting member. */
        r = etcd_member_list(&a.tls, a.client_url, &m, &err);
        if (r < 0) {
                r = stage_fail(&a, "leave", r, &err);
                goto out;
        }
        etcd_member *me = etcd_members_find_peer(&m, a.peer_url);
        if (me) {
                _cleanup_free_ char *endpoint = NULL;
                const char *via = find_voting_endpoint(&a, &endpoint) >= 0 ? endpoint : a.client_url;
                r = remove_member(&a, via, me->id, &err);
                if (r < 0) {
                        r = stage_fail(&a, "leave", r, &err);
                        goto out;
                }
        }
        r = stop_etcd(&a);
        if (r < 0)
                log_warning_errno(r, "Failed to stop etcd: %m");
        r = rm_rf(a.data_dir);
        if (r < 0) {
                r = stage_fail(&a, "leave", r, NULL);
                goto out;
        }
        r = stage_end(&a, "leave", true, me ? "member removed" : "was not a member");
out:
        agent_done(&a);
        return r < 0 ? 1 : 0;
}

int cmd_status(int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        bool json = false;
        agent a;
        journal j = { .fd = -1 };
        int r;

        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--json"))
                        json = true;
        r = agent_init(&a, argc, argv, false);
        if (r < 0)
                goto out;
        if (asprintf(&path, "%s/journal", a.state_dir) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = journal_load(path, &j);
        if (r < 0) {
                log_error_errno(r, "No journal at %s: %m", path);
                goto out;
        }
        const journal_entry *last = j.n ? &j.entries[j.n - 1] : NULL;
        const char *outcome = !last ? "not started" : !last->ok ? "failed" :
                              streq(last->stage, "done") ? "done" : "incomplete";
        if (json) {
                _cleanup_json_ json_t *root = json_pack("{s:s, s:[]}", "outcome", outcome, "stages");
                json_t *stages = json_object_get(root, "stages");
                for (size_t i = 0; i < j.n; i++) {
                        const journal_entry *e = &j.entries[i];
                        json_array_append_new(stages, json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:s?}", "run", (json_int_t) e->run,
                                                                "stage", e->stage, "ok", e->ok, "t_ms", (json_int_t) e->t_ms,
                                                                "ms", (json_int_t) e->ms, "wait_ms", (json_int_t) e->wait_ms,
                                                                "detail", e->detail));
                }
                _cleanup_free_ char *text = json_dump_compact(root);
                if (!text) {
                        r = -ENOMEM;
                        goto out;
                }
                puts(text);
        } else {
                printf("outcome: %s\n", outcome);
                for (size_t i = 0; i < j.n; i++) {
                        const journal_entry *e = &j.entries[i];
                        printf("run %-3" PRIu64 " %-10s %-6s t=%-7" PRIu64 " %6" PRIu64 " ms (wait %" PRIu64 ")  %s\n", e->run, e->stage,
                               e->ok ? "ok" : "FAILED", e->t_ms, e->ms, e->wait_ms, strempty(e->detail));
                }
        }
        r = last && !last->ok ? -EIO : 0;
out:
        journal_close(&j);
        agent_done(&a);
        return r < 0 ? 1 : 0;
}
