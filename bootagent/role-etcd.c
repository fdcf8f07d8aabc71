#include "role-etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "etcd.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "logtail.h"
#include "stage.h"
#include "time-util.h"
#include "units.h"
#include "vault.h"

/* The role's state for one run, next to the driver's agent. */
typedef struct role_etcd {
        agent *a;
        pool_view pool;
        char *name, *peer_url, *client_url, *data_dir, *env_file;
        etcd_tls tls;
        uint64_t added_id;      /* member we added in this run and have not started yet */
        bool bootstrapped;      /* the seed record says the cluster was bootstrapped */
} role_etcd;

static int role_etcd_init(role_etcd *e, agent *a) {
        *e = (role_etcd){ .a = a };
        if (agent_rooted(a, a->cfg->etcd_data_dir, &e->data_dir) < 0 ||
            agent_rooted(a, a->cfg->etcd_env_file, &e->env_file) < 0)
                return -ENOMEM;
        e->tls = (etcd_tls){ .ca_file = a->ca_file, .cert_file = a->cert_file, .key_file = a->key_file,
                             .deadline = &a->deadline };
        return 0;
}

static void role_etcd_done(role_etcd *e) {
        pool_view_done(&e->pool);
        free(e->name);
        free(e->peer_url);
        free(e->client_url);
        free(e->data_dir);
        free(e->env_file);
}

static int stage_discover(role_etcd *e) {
        agent *a = e->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_json_ json_t *creds = NULL;
        char detail[256];
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        r = vault_kv_read(&a->vault, a->cfg->kv_mount, a->cfg->cloud_api_secret, &creds, &err);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        _cleanup_(exoapi_freep) exoapi *api = NULL;
        r = discover_api_new(creds, a->cfg->cloud_api_secret, a->id.zone, &api, &err);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        r = discover_pool(api, a->id.instance_id, &e->pool, &err);
        if (r < 0)
                return stage_fail(a, "discover", r, &err);
        if (!pool_view_find_ip(&e->pool, a->id.local_ipv4)) {
                buf_printf(&err, "own address %s is not among the pool's leases", a->id.local_ipv4);
                return stage_fail(a, "discover", -ENOENT, &err);
        }
        if (asprintf(&e->name, "%s%s", a->cfg->etcd_name_prefix, a->id.instance_id) < 0 ||
            asprintf(&e->peer_url, "https://%s:%u", a->id.local_ipv4, a->cfg->etcd_peer_port) < 0 ||
            asprintf(&e->client_url, "https://%s:%u", a->id.local_ipv4, a->cfg->etcd_client_port) < 0)
                return -ENOMEM;
        snprintf(detail, sizeof(detail), "pool %s, %zu members", e->pool.pool_id, e->pool.n_peers);
        return stage_end(a, "discover", true, detail);
}

/* Seed election: the first KV v2 write with cas:0 wins, so two clusters can never form. */
static int stage_seed(role_etcd *e, bool *ret_seed) {
        agent *a = e->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *mine = json_pack("{s:s}", "instance", a->id.instance_id);
        char detail[256];
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        if (!mine || asprintf(&path, "etcd/%s/bootstrap", e->pool.pool_id) < 0)
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
                        e->bootstrapped = json_is_true(json_object_get(cur, "bootstrapped"));
                        snprintf(detail, sizeof(detail), "seed %s%s%s", seed, *ret_seed ? " (self)" : "",
                                 e->bootstrapped ? ", bootstrapped" : "");
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

static char *peer_client_url(const role_etcd *e, const char *ip) {
        const agent *a = e->a;
        char *s;
        return asprintf(&s, "https://%s:%u", ip, a->cfg->etcd_client_port) < 0 ? NULL : s;
}

/* A healthy voting member's client URL among the pool peers other than us. */
static int find_voting_endpoint(role_etcd *e, char **ret) {
        agent *a = e->a;
        for (size_t i = 0; i < e->pool.n_peers; i++) {
                const pool_peer *p = &e->pool.peers[i];
                if (streq(p->ip, a->id.local_ipv4))
                        continue;
                _cleanup_free_ char *url = peer_client_url(e, p->ip);
                bool learner;
                if (!url)
                        return -ENOMEM;
                if (etcd_health(&e->tls, url, NULL) < 0 || etcd_status(&e->tls, url, &learner, NULL) < 0 || learner)
                        continue;
                *ret = TAKE_PTR(url);
                return 0;
        }
        return -ENOENT;
}

/* Until the stage's deadline (stage_member). */
static int wait_voting_endpoint(role_etcd *e, char **ret, buf *err) {
        agent *a = e->a;
        long delay = 250;
        for (;;) {
                int r = find_voting_endpoint(e, ret);
                if (r != -ENOENT)
                        return r;
                if (stage_deadline_passed(a)) {
                        buf_printf(err, "no healthy voting etcd member among %zu pool peers", e->pool.n_peers);
                        return -ETIMEDOUT;
                }
                agent_sleep(a, delay);
                delay = delay < 2000 ? delay * 2 : 2000;
        }
}

static bool data_dir_populated(const role_etcd *e) {
        _cleanup_free_ char *p = NULL;
        struct stat st;
        return asprintf(&p, "%s/member", e->data_dir) >= 0 && stat(p, &st) == 0;
}

static const char *etcd_unit(const role_etcd *e) {
        return e->a->cfg->units ? e->a->cfg->units[0] : "etcd.service";
}

static int stop_etcd(role_etcd *e) {
        agent *a = e->a;
        _cleanup_free_ char *pid_file = NULL, *log_file = NULL;
        if (!a->cfg->units_exec)
                return units_systemd_job("StopUnit", etcd_unit(e), 60000, NULL);
        if (units_exec_paths(a->state_dir, etcd_unit(e), &pid_file, &log_file) < 0)
                return -ENOMEM;
        return units_stop_exec(pid_file, 10000);
}

/* Empty the data dir for a fresh member: etcd (running as the key's owner) needs it to exist
 * with mode 0700 and cannot create it under a root-owned parent. An etcd that an earlier run
 * started may still be starting on it (that run was stopped after its units stage, before etcd
 * wrote anything): stop it first, or it dies on its files vanishing ("failed to purge snap db
 * file"). */
static int reset_data_dir(role_etcd *e) {
        const agent *a = e->a;
        int r = stop_etcd(e);
        if (r < 0)
                return log_warning_errno(r, "Failed to stop %s before emptying %s: %m", etcd_unit(e), e->data_dir);
        r = rm_rf(e->data_dir);
        if (r < 0)
                return r;
        r = mkdir_p(e->data_dir, 0700);
        if (r < 0)
                return r;
        if (chown(e->data_dir, a->cfg->pki_uid, a->cfg->pki_gid) < 0 || chmod(e->data_dir, 0700) < 0)
                return negative_errno();
        return 0;
}

static int write_env_file(role_etcd *e, const char *initial_cluster, const char *state) {
        agent *a = e->a;
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
                   e->name, e->data_dir, e->peer_url, e->peer_url, e->client_url, e->client_url,
                   initial_cluster, state, e->pool.pool_id, a->cert_file, a->key_file, a->ca_file,
                   a->cert_file, a->key_file, a->ca_file);
        if (!env.data)
                return -ENOMEM;
        return stage_write_file(e->env_file, env.data, 0644, (uid_t) -1, (gid_t) -1);
}

/* "name=peerURL,..." for every member (learners and unstarted ones included), ourselves by name. */
static char *initial_cluster(const role_etcd *e, const etcd_members *m) {
        _cleanup_buf_ buf b = BUF_INIT(64 * 1024);
        for (size_t i = 0; i < m->n; i++)
                for (char **u = m->v[i].peer_urls; u && *u; u++) {
                        const char *name = streq(*u, e->peer_url) ? e->name : strempty(m->v[i].name);
                        if (buf_printf(&b, "%s%s=%s", b.len ? "," : "", name, *u) < 0)
                                return NULL;
                }
        return buf_steal(&b);
}

/* member/remove, retried while etcd answers "unhealthy cluster" (503): it refuses a removal
 * that would leave fewer members active than a quorum, and a member counts as active only after
 * the leader has been connected to it for a few seconds (e.g. right after a join). An unknown
 * member is already gone. */
static int remove_member(role_etcd *e, const char *endpoint, uint64_t id, buf *err) {
        agent *a = e->a;
        for (;;) {
                buf_clear(err);
                int r = etcd_member_remove(&e->tls, endpoint, id, err);
                if (r == -ENOENT)
                        return 0;
                if (r != -EAGAIN || stage_deadline_passed(a))
                        return r;
                agent_sleep(a, 1000);
        }
}

/* Remove members whose peer IP left the pool, one at a time, only while quorum holds. */
static int remove_stale_members(role_etcd *e, const char *endpoint, unsigned *ret_removed, buf *err) {
        unsigned removed = 0;
        for (;;) {
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                int r = etcd_member_list(&e->tls, endpoint, &m, err);
                if (r < 0)
                        return r;
                etcd_member *stale = NULL;
                for (size_t i = 0; i < m.n && !stale; i++) {
                        _cleanup_free_ char *host = m.v[i].peer_urls ? etcd_url_host(m.v[i].peer_urls[0]) : NULL;
                        if (host && !pool_view_find_ip(&e->pool, host) && !streq(m.v[i].peer_urls[0], e->peer_url))
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
                        if (&m.v[i] != stale && m.v[i].client_urls && etcd_health(&e->tls, m.v[i].client_urls[0], NULL) >= 0)
                                healthy++;
                }
                unsigned after = voters - (stale->is_learner ? 0 : 1);
                if (healthy < after / 2 + 1) {
                        buf_printf(err, "stale member %" PRIx64 " left the pool, but removing it would break quorum (%u healthy of %u voters)",
                                   stale->id, healthy, after);
                        return -EBUSY;
                }
                log_info("Removing stale etcd member %" PRIx64 " (%s): its address left the pool", stale->id, stale->peer_urls[0]);
                r = remove_member(e, endpoint, stale->id, err);
                if (r < 0)
                        return r;
                removed++;
        }
        *ret_removed = removed;
        return 0;
}

/* Once etcd runs, a probe that finds nobody listening may mean etcd is gone (a bad flag, a data
 * dir it cannot use). Say that, with its exit status (and with units = exec the end of its
 * output; under systemd its journal has it), rather than "Connection refused" until the deadline.
 * Returns 0 while it runs (or systemd cannot tell), -ESRCH with the reason in err once it exited. */
static int check_etcd_running(role_etcd *e, const char *waiting_for, buf *err) {
        agent *a = e->a;
        _cleanup_free_ char *pid_file = NULL, *log_file = NULL, *tail = NULL;
        int status;
        if (!a->cfg->units_exec) {
                _cleanup_(units_state_done) units_state st = { 0 };
                if (units_systemd_state(etcd_unit(e), &st) != 0)
                        return 0;
                buf_clear(err);
                buf_printf(err, "%s exited (%s, status %d; %s/%s) while waiting for %s: see journalctl -u %s",
                           etcd_unit(e), st.result, st.exec_main_status, st.active_state, st.sub_state, waiting_for,
                           etcd_unit(e));
                return -ESRCH;
        }
        if (units_exec_paths(a->state_dir, etcd_unit(e), &pid_file, &log_file) < 0)
                return -ENOMEM;
        if (units_exec_running(pid_file, &status) != 0)
                return 0;
        buf_clear(err);
        if (status >= 0)
                buf_printf(err, "%s exited (status %d) while waiting for %s", etcd_unit(e), status, waiting_for);
        else
                buf_printf(err, "%s is not running while waiting for %s", etcd_unit(e), waiting_for);
        if (log_file_tail_line(log_file, 20, 1024, &tail) >= 0 && *tail)
                buf_printf(err, ": %s", tail);
        return -ESRCH;
}

/* Join as a learner through a voting member (protocols.md §6.4). */
static int join_cluster(role_etcd *e, char **detail, buf *err) {
        agent *a = e->a;
        _cleanup_free_ char *endpoint = NULL, *cluster = NULL;
        unsigned removed = 0;
        int r;

        r = wait_voting_endpoint(e, &endpoint, err);
        if (r < 0)
                return r;
        r = remove_stale_members(e, endpoint, &removed, err);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                buf_clear(err);
                r = etcd_member_list(&e->tls, endpoint, &m, err);
                if (r < 0)
                        return r;
                etcd_member *me = etcd_members_find_peer(&m, e->peer_url);
                if (me && !me->name) {
                        /* Our own earlier add whose etcd never started: reuse it. */
                        log_info("Reusing etcd member %" PRIx64 " added by an earlier run", me->id);
                        e->added_id = me->id;
                } else if (me) {
                        /* Started under our peer URL but our data dir is gone: a replacement
                         * that lost its disk. Remove the old identity, then add again. */
                        log_info("Member %" PRIx64 " holds our peer URL with no data dir here: removing it", me->id);
                        r = remove_member(e, endpoint, me->id, err);
                        if (r < 0)
                                return r;
                        continue;
                } else {
                        etcd_members added = { 0 };
                        uint64_t id;
                        r = etcd_member_add_learner(&e->tls, endpoint, e->peer_url, &id, &added, err);
                        /* 3.4's gateway maps FailedPrecondition to 412, 3.5's to 400. */
                        if (r < 0 && err->data && strstr(err->data, "too many learner")) {
                                /* Another member is joining; wait for its promotion. */
                                if (stage_deadline_passed(a))
                                        return -ETIMEDOUT;
                                agent_sleep(a, 500);
                                continue;
                        }
                        if (r < 0) {
                                /* The add may have been applied with the reply lost: the next
                                 * list shows our peer URL and we reuse it. */
                                if (stage_deadline_passed(a))
                                        return r;
                                log_warning("Adding etcd member failed (%s), re-checking the member list", err->data);
                                agent_sleep(a, 500);
                                continue;
                        }
                        etcd_members_done(&m);
                        m = added;
                        e->added_id = id;
                        log_info("Added etcd learner %" PRIx64, id);
                }
                cluster = initial_cluster(e, &m);
                if (!cluster)
                        return -ENOMEM;
                break;
        }
        /* A member removed earlier cannot restart from its old data dir. */
        r = reset_data_dir(e);
        if (r < 0)
                return r;
        r = write_env_file(e, cluster, "existing");
        if (r < 0)
                return r;
        if (asprintf(detail, "learner %" PRIx64 ", %u stale removed", e->added_id, removed) < 0)
                return -ENOMEM;
        return 0;
}

/* Decide between bootstrap, join and restart; write the environment file. */
static int stage_member(role_etcd *e, bool seed) {
        agent *a = e->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *detail = NULL, *endpoint = NULL;
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->etcd_deadline_ms);
        if (data_dir_populated(e)) {
                /* A restart. If the cluster no longer knows us, our data dir is stale. */
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                if (find_voting_endpoint(e, &endpoint) >= 0 && etcd_member_list(&e->tls, endpoint, &m, &err) >= 0 &&
                    !etcd_members_find_peer(&m, e->peer_url)) {
                        log_notice("This member was removed from the cluster: wiping %s and joining again", e->data_dir);
                        r = reset_data_dir(e);
                        if (r < 0)
                                return stage_fail(a, "member", r, NULL);
                } else {
                        buf_clear(&err);
                        return stage_end(a, "member", true, "restart with existing data dir");
                }
        }
        /* Only a seed whose record does not say "bootstrapped" may start a new cluster: once one
         * exists, no voter answering (a transient loss of quorum) means wait and join, never a
         * second cluster. */
        if (seed && e->bootstrapped)
                log_notice("The seed record says the cluster was bootstrapped: joining it, not bootstrapping another");
        if (seed && !e->bootstrapped && find_voting_endpoint(e, &endpoint) == -ENOENT) {
                _cleanup_free_ char *cluster = NULL;
                if (asprintf(&cluster, "%s=%s", e->name, e->peer_url) < 0)
                        return -ENOMEM;
                r = reset_data_dir(e);
                if (r >= 0)
                        r = write_env_file(e, cluster, "new");
                if (r < 0)
                        return stage_fail(a, "member", r, NULL);
                return stage_end(a, "member", true, "bootstrap new cluster");
        }
        r = join_cluster(e, &detail, &err);
        if (r < 0)
                return stage_fail(a, "member", r, &err);
        return stage_end(a, "member", true, detail);
}

/* Promote ourselves once caught up (a learner can only be promoted by a voting member). */
static int stage_promote(role_etcd *e) {
        agent *a = e->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        char detail[128];
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->etcd_deadline_ms);
        for (;;) {
                _cleanup_free_ char *endpoint = NULL;
                _cleanup_(etcd_members_done) etcd_members m = { 0 };
                int64_t probe_start = time_now_ms();
                buf_clear(&err);
                r = find_voting_endpoint(e, &endpoint);
                if (r == -ENOENT) {
                        /* We may be the only voter (bootstrap): check our own endpoint. */
                        bool learner;
                        if (etcd_status(&e->tls, e->client_url, &learner, &err) >= 0 && !learner)
                                return stage_end(a, "promote", true, "voting member");
                } else if (r < 0)
                        return r;
                else if (etcd_member_list(&e->tls, endpoint, &m, &err) >= 0) {
                        etcd_member *me = etcd_members_find_peer(&m, e->peer_url);
                        if (!me) {
                                buf_printf(&err, "our member vanished from the cluster");
                                return stage_fail(a, "promote", -ENOENT, &err);
                        }
                        if (!me->is_learner) {
                                snprintf(detail, sizeof(detail), "voting member %" PRIx64 ", %zu members", me->id, m.n);
                                return stage_end(a, "promote", true, detail);
                        }
                        buf_clear(&err);
                        r = etcd_member_promote(&e->tls, endpoint, me->id, &err);
                        if (r >= 0)
                                continue; /* confirm with the next list */
                }
                /* Probes that did not finish the stage were waiting for etcd to start or catch up. */
                a->stage_wait += time_now_ms() - probe_start;
                r = check_etcd_running(e, "promotion", &err);
                if (r < 0)
                        return stage_fail(a, "promote", r, &err);
                if (stage_deadline_passed(a)) {
                        if (!err.len)
                                buf_printf(&err, "not promoted yet");
                        return stage_fail(a, "promote", -ETIMEDOUT, &err);
                }
                agent_sleep(a, 300);
        }
}

/* Never leave a half-added member behind: if we added one and etcd never started, remove it. */
static void rollback_member(role_etcd *e) {
        _cleanup_free_ char *endpoint = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        if (e->added_id == 0)
                return;
        if (find_voting_endpoint(e, &endpoint) < 0 || etcd_member_remove(&e->tls, endpoint, e->added_id, &err) < 0)
                log_warning("Could not remove half-added member %" PRIx64 ": %s", e->added_id, strempty(err.data));
        else
                log_notice("Removed half-added member %" PRIx64, e->added_id);
}

/* The seed's cluster runs: say so in the seed record, so that no later run (this seed's data dir
 * wiped while no voter answers) bootstraps a second one. Only the seed writes after the election. */
static int record_bootstrapped(role_etcd *e) {
        agent *a = e->a;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *record = json_pack("{s:s, s:b}", "instance", a->id.instance_id, "bootstrapped", true);
        int r;

        if (!record || asprintf(&path, "etcd/%s/bootstrap", e->pool.pool_id) < 0)
                return -ENOMEM;
        stage_deadline(a, a->cfg->vault_deadline_ms);
        r = vault_kv_write(&a->vault, a->cfg->kv_mount, path, record, -1, &err);
        if (r < 0)
                return log_error_errno(r, "Failed to record the bootstrap in %s: %s", path, strempty(err.data));
        e->bootstrapped = true;
        return 0;
}

/* discover -> seed -> member -> units -> promote. */
static int role_etcd_firstboot(agent *a, role_start_units_fn start_units) {
        _cleanup_(role_etcd_done) role_etcd e = { 0 };
        bool seed = false, started = false;
        int r;
        if ((r = role_etcd_init(&e, a)) < 0)
                return r;
        if ((r = stage_discover(&e)) < 0 || (r = stage_seed(&e, &seed)) < 0 || (r = stage_member(&e, seed)) < 0)
                return r;
        r = start_units(a, e.env_file, &started);
        if (started)
                e.added_id = 0; /* etcd runs now: the member is no longer half-added */
        if (r < 0 && r != -ECANCELED) {
                rollback_member(&e);
                return r;
        }
        if (r < 0)
                return r;
        r = stage_promote(&e);
        if (r >= 0 && seed && !e.bootstrapped)
                r = record_bootstrapped(&e);
        return r;
}

/* bootagent leave: remove this member from the etcd cluster, stop etcd, wipe its data dir. */
static int role_etcd_leave(agent *a) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(etcd_members_done) etcd_members m = { 0 };
        _cleanup_(role_etcd_done) role_etcd e = { 0 };
        int r;
        if ((r = role_etcd_init(&e, a)) < 0 || (r = stage_discover(&e)) < 0)
                return r;
        stage_begin(a);
        stage_deadline(a, a->cfg->etcd_deadline_ms);
        /* Ask ourselves for the member list; removal goes through another voting member. */
        r = etcd_member_list(&e.tls, e.client_url, &m, &err);
        if (r < 0)
                return stage_fail(a, "leave", r, &err);
        etcd_member *me = etcd_members_find_peer(&m, e.peer_url);
        if (me) {
                _cleanup_free_ char *endpoint = NULL;
                const char *via = find_voting_endpoint(&e, &endpoint) >= 0 ? endpoint : e.client_url;
                r = remove_member(&e, via, me->id, &err);
                if (r < 0)
                        return stage_fail(a, "leave", r, &err);
        }
        r = stop_etcd(&e);
        if (r < 0)
                log_warning_errno(r, "Failed to stop etcd: %m");
        r = rm_rf(e.data_dir);
        if (r < 0)
                return stage_fail(a, "leave", r, NULL);
        return stage_end(a, "leave", true, me ? "member removed" : "was not a member");
}

const role_ops role_etcd_ops = {
        .role = AGENT_CONFIG_ROLE_ETCD,
        .firstboot = role_etcd_firstboot,
        .leave = role_etcd_leave,
};
