/* The etcd role: members form one etcd cluster, watched through its v3 JSON gateway
 * (pool-health.h). The gate is the quorum floor, a new member must become a healthy voter, and a
 * member leaves the cluster (bootagent leave, else member remove through a healthy member) before
 * its machine goes. See pool-role.h. */
#include "pool-role-etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "pool-health.h"
#include "time-util.h"

#define JOIN_TIMEOUT_MS 90000
#define HEAL_TIMEOUT_MS 30000

/* The etcd member whose peer URL is on ip, or NULL. Borrowed. */
static json_t *etcd_member_by_ip(json_t *list, const char *ip) {
        _cleanup_free_ char *needle = NULL;
        json_t *m;
        size_t i;
        if (asprintf(&needle, "//%s:", ip) < 0)
                return NULL;
        json_array_foreach(json_object_get(list, "members"), i, m)
                if (strstr(strempty(json_path_string(m, "peerURLs.0")), needle))
                        return m;
        return NULL;
}

static const pool_member *pool_member_by_peer(const pool_view *v, json_t *em) {
        const char *url = strempty(json_path_string(em, "peerURLs.0"));
        for (size_t i = 0; i < v->n_members; i++) {
                _cleanup_free_ char *needle = NULL;
                if (asprintf(&needle, "//%s:", v->members[i].ip) >= 0 && strstr(url, needle))
                        return &v->members[i];
        }
        return NULL;
}

/* A view of the cluster: which pool members answer /health, and the member list as seen by the
 * first healthy one (excluding except, which may be on its way out). */
typedef struct cluster_view {
        bool *healthy;            /* per pool member */
        json_t *list;             /* member/list reply, or NULL when no member answered */
        size_t source;            /* pool member the list came from */
} cluster_view;

static void cluster_view_done(cluster_view *cv) {
        free(cv->healthy);
        json_decref(cv->list);
        *cv = (cluster_view){};
}

static int cluster_view_get(const pool_view *v, const pool_member *except, cluster_view *ret, buf *err) {
        cluster_view cv = { .healthy = calloc(v->n_members + 1, sizeof(bool)) };
        int r;

        if (!cv.healthy)
                return -ENOMEM;
        for (size_t i = 0; i < v->n_members; i++) {
                pool_health_inputs h = {};
                r = v->provider->ops->health_inputs(v->provider, &v->members[i], &h, err);
                if (r < 0) {
                        cluster_view_done(&cv);
                        return r;
                }
                cv.healthy[i] = pool_health_check(&h);
                if (cv.healthy[i] && !cv.list && &v->members[i] != except) {
                        long status = 0;
                        json_t *list = NULL;
                        if (pool_health_etcd_call(&h, h.etcd_url, "/v3/cluster/member/list", "{}", &status, &list) >= 0 &&
                            status == 200 && list) {
                                cv.list = list;
                                cv.source = i;
                        } else
                                json_decref(list);
                }
                pool_health_inputs_done(&h);
        }
        *ret = cv;
        return 0;
}

/* The quorum floor: every pool member is healthy and a voting etcd member, and the cluster has
 * no member that is not in the pool. Returns 0, or -POOL_EUNHEALTHY with the reasons in why. */
static int cluster_check(const pool_view *v, buf *why) {
        cluster_view cv = {};
        json_t *em;
        size_t i;
        int r;

        r = cluster_view_get(v, NULL, &cv, why);
        if (r < 0)
                return r;
        buf_clear(why);
        if (!cv.list)
                buf_puts(why, "no member answers the etcd member list");
        for (i = 0; cv.list && i < v->n_members; i++) {
                const pool_member *m = &v->members[i];
                em = etcd_member_by_ip(cv.list, m->ip);
                if (!cv.healthy[i])
                        buf_printf(why, "%smember %s (%s) is not healthy", why->len ? "; " : "", m->id, m->ip);
                else if (!em)
                        buf_printf(why, "%smember %s (%s) is not in the etcd cluster", why->len ? "; " : "", m->id, m->ip);
                else if (json_path_bool(em, "isLearner"))
                        buf_printf(why, "%smember %s (%s) is still a learner", why->len ? "; " : "", m->id, m->ip);
        }
        json_array_foreach(cv.list ? json_object_get(cv.list, "members") : NULL, i, em)
                if (!pool_member_by_peer(v, em))
                        buf_printf(why, "%setcd member %s (%s) is not in the pool", why->len ? "; " : "",
                                   strempty(json_path_string(em, "ID")), strempty(json_path_string(em, "peerURLs.0")));
        cluster_view_done(&cv);
        return why->len ? -POOL_EUNHEALTHY : 0;
}

/* The gate before every membership change. A member whose machine is down is started again
 * once (the provider repairs it); if the cluster is still not healthy soon after (a restarted
 * member gets time to catch up) the step is refused. */
static int ensure_healthy(const pool_view *v, buf *err) {
        _cleanup_buf_ buf why = BUF_INIT(8192);
        bool restarted = false;
        long deadline;
        int r;

        r = cluster_check(v, &why);
        if (r != -POOL_EUNHEALTHY)
                return r;
        log_warning("pool %s: cluster not healthy: %s", v->name, why.data);
        for (size_t i = 0; i < v->n_members; i++) {
                const pool_member *m = &v->members[i];
                if (streq(m->state, "active") && streq(v->provider->ops->member_state(v->provider, m), "stopped")) {
                        log_notice("pool %s: member %s (%s) is down, starting it again", v->name, m->id, m->ip);
                        _cleanup_buf_ buf start_err = BUF_INIT(4096);
                        r = v->provider->ops->start_member(v->provider, m, &start_err);
                        if (r < 0)
                                log_warning("pool %s: restarting member %s failed: %s", v->name, m->id, start_err.data);
                        else
                                restarted = true;
                }
        }
        deadline = time_now_ms() + (restarted ? HEAL_TIMEOUT_MS : 5000);
        while (time_now_ms() < deadline) {
                time_sleep_ms(500);
                r = cluster_check(v, &why);
                if (r != -POOL_EUNHEALTHY)
                        return r;
        }
        buf_printf(err, "cluster not healthy, refusing to change membership: %s", why.data);
        return -POOL_EUNHEALTHY;
}

/* Wait until m is a started, voting, healthy member. */
static int wait_voting(const pool_view *v, const pool_member *m, buf *err) {
        long deadline = time_now_ms() + JOIN_TIMEOUT_MS;
        const char *last = "no member answers the etcd member list";
        int r;

        while (time_now_ms() < deadline) {
                cluster_view cv = {};
                /* Any member's list will do: a learner's own answer fails, others come first. */
                r = cluster_view_get(v, NULL, &cv, err);
                if (r < 0)
                        return r;
                json_t *em = cv.list ? etcd_member_by_ip(cv.list, m->ip) : NULL;
                bool self_healthy = false;
                for (size_t i = 0; i < v->n_members; i++)
                        if (&v->members[i] == m)
                                self_healthy = cv.healthy[i];
                if (cv.list && !em)
                        last = "not in the member list";
                else if (em && json_path_bool(em, "isLearner"))
                        last = "still a learner";
                else if (em && !json_path_string(em, "name"))
                        last = "added but not started";
                else if (em && !self_healthy)
                        last = "not healthy";
                else if (em) {
                        cluster_view_done(&cv);
                        return 0;
                }
                cluster_view_done(&cv);
                time_sleep_ms(500);
        }
        buf_printf(err, "member %s (%s) did not become a healthy voting member in %d s: %s", m->id, m->ip,
                   JOIN_TIMEOUT_MS / 1000, last);
        return -ETIMEDOUT;
}

/* Make sure the etcd cluster no longer lists m (it left, or it died and we remove it through a
 * healthy member). */
static int ensure_removed(const pool_view *v, const pool_member *m, buf *err) {
        long deadline = time_now_ms() + HEAL_TIMEOUT_MS;
        cluster_view cv = {};
        int r;

        /* The member that left may have been the leader: the others answer again once they have
         * elected a new one, so a short spell of no healthy member is waited out. */
        for (;;) {
                r = cluster_view_get(v, m, &cv, err);
                if (r < 0)
                        return r;
                if (cv.list || time_now_ms() >= deadline)
                        break;
                cluster_view_done(&cv);
                time_sleep_ms(500);
        }
        json_t *em = cv.list ? etcd_member_by_ip(cv.list, m->ip) : NULL;
        if (!cv.list) {
                buf_printf(err, "cluster not healthy: no other member answered the etcd member list in %d s, "
                           "so member %s (%s) cannot be removed through one", HEAL_TIMEOUT_MS / 1000, m->id, m->ip);
                r = -POOL_EUNHEALTHY;
        } else if (em) {
                pool_health_inputs h = {};
                _cleanup_free_ char *body = NULL;
                long status = 0;
                r = v->provider->ops->health_inputs(v->provider, &v->members[cv.source], &h, err);
                if (r >= 0 && asprintf(&body, "{\"ID\":\"%s\"}", strempty(json_path_string(em, "ID"))) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = pool_health_etcd_call(&h, h.etcd_url, "/v3/cluster/member/remove", body, &status, NULL);
                if (r >= 0 && status != 200)
                        r = -EIO;
                if (r < 0)
                        buf_printf(err, "removing etcd member of %s (%s) failed (HTTP %ld)", m->id, m->ip, status);
                pool_health_inputs_done(&h);
        }
        cluster_view_done(&cv);
        return r;
}

static json_t *member_etcd_status(const pool_view *v, const pool_member *m) {
        pool_health_inputs h = {};
        _cleanup_buf_ buf ignored = BUF_INIT(1024);
        _cleanup_json_ json_t *st = NULL;
        const char *role = "unknown";
        long status = 0;
        bool healthy;

        if (v->provider->ops->health_inputs(v->provider, m, &h, &ignored) < 0)
                return json_pack("{s:s, s:b}", "role", role, "healthy", 0);
        healthy = pool_health_check(&h);
        if (pool_health_etcd_call(&h, h.etcd_url, "/v3/maintenance/status", "{}", &status, &st) >= 0 && status == 200 && st) {
                const char *self = json_path_string(st, "header.member_id"), *leader = json_path_string(st, "leader");
                role = json_path_bool(st, "isLearner") ? "learner" :
                       self && leader && streq(self, leader) ? "leader" : "follower";
        } else
                role = "unreachable";
        pool_health_inputs_done(&h);
        return json_pack("{s:s, s:b}", "role", role, "healthy", healthy);
}


/* ---- the ops table ---- */

static int etcd_gate(pool_role *r, const pool_view *v, buf *err) {
        (void) r;
        return ensure_healthy(v, err);
}

static int etcd_wait_joined(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        (void) r;
        return wait_voting(v, m, err);
}

/* The member leaves by itself (bootagent leave) when the provider can reach its agent; whatever
 * it did, the cluster must not list it any more before its machine goes. */
static int etcd_before_destroy(pool_role *r, const pool_view *v, const pool_member *m, buf *err) {
        _cleanup_buf_ buf leave_err = BUF_INIT(4096);

        (void) r;
        if (v->provider->ops->leave_member && v->provider->ops->leave_member(v->provider, m, &leave_err) < 0)
                log_warning("pool %s: member %s did not leave by itself (%s), removing it from the cluster",
                            v->name, m->id, leave_err.data);
        return ensure_removed(v, m, err);
}

static json_t *etcd_member_status(pool_role *r, const pool_view *v, const pool_member *m) {
        (void) r;
        return member_etcd_status(v, m);
}

const pool_role_ops pool_role_etcd_ops = {
        .name = "etcd",
        .serving = "a healthy voting member",
        .help = "Role etcd: the members form one etcd cluster. Before each change every member\n"
                "must be healthy and voting with no stale member (the quorum floor; a member\n"
                "whose machine is down is started again once); a new member joins as a learner\n"
                "and must become a voter; a member leaves the cluster before it is destroyed.\n",
        .gate = etcd_gate,
        .wait_joined = etcd_wait_joined,
        .before_destroy = etcd_before_destroy,
        .member_status = etcd_member_status,
};
