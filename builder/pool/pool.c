/* Pools: persistence, membership changes one member at a time, and the etcd health gates that
 * every change passes through. See pool.h. */
#include "pool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "json.h"
#include "log.h"
#include "pool-providers.h"
#include "time-util.h"

#define POOL_FILE_MAX (1024 * 1024)
#define JOIN_TIMEOUT_MS 90000
#define HEAL_TIMEOUT_MS 30000

int pool_provider_new(const pool_provider_ops *ops, const char *dir, json_t *state, pool_provider **ret) {
        pool_provider *p = calloc(1, sizeof(*p));
        if (!p || !(p->dir = strdup(dir))) {
                free(p);
                return -ENOMEM;
        }
        p->ops = ops;
        p->state = state;
        *ret = p;
        return 0;
}

void pool_provider_free(pool_provider *p) {
        if (!p)
                return;
        free(p->dir);
        free(p);
}

static void member_done(pool_member *m) {
        free(m->id);
        free(m->ip);
        free(m->template);
        free(m->state);
        *m = (pool_member){};
}

void pool_free(pool *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_members; i++)
                member_done(&p->members[i]);
        free(p->members);
        pool_provider_free(p->provider);
        json_decref(p->provider_state);
        if (p->lock_fd >= 0)
                close(p->lock_fd);
        free(p->name);
        free(p->dir);
        free(p->template);
        free(p->roll_target);
        free(p->provider_name);
        free(p);
}

static bool name_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > 63)
                return false;
        for (const char *c = name; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '_')
                        return false;
        return true;
}

int pool_dir_for(const char *name, char **ret) {
        const char *base = getenv("IMGBUILD_STATE_DIR"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        char *s;
        int n;

        if (!name_valid(name))
                return -EINVAL;
        if (base && *base)
                n = asprintf(&s, "%s/pools/%s", base, name);
        else if (xdg && *xdg)
                n = asprintf(&s, "%s/imgbuild/pools/%s", xdg, name);
        else if (home && *home)
                n = asprintf(&s, "%s/.local/state/imgbuild/pools/%s", home, name);
        else
                return -ENOENT;
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int pool_lock(pool *p, buf *err) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/lock", p->dir) < 0)
                return -ENOMEM;
        p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (p->lock_fd < 0) {
                r = negative_errno();
                return buf_printf(err, "opening %s: %s", path, strerror(-r)), r;
        }
        if (flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return buf_printf(err, "pool %s is busy: another imgbuild pool command holds %s", p->name, path), -EBUSY;
                r = negative_errno();
                return buf_printf(err, "locking %s: %s", path, strerror(-r)), r;
        }
        return 0;
}

static pool *pool_alloc(const char *name) {
        pool *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->lock_fd = -1;
        if (!(p->name = strdup(name)) || pool_dir_for(name, &p->dir) < 0) {
                pool_free(p);
                return NULL;
        }
        return p;
}

/* The provider called name, or NULL with err saying which ones there are. */
static const pool_provider_ops *provider_find(const char *name, const char *where, buf *err) {
        const pool_provider_ops *ops = pool_provider_find(name);
        if (ops)
                return ops;
        (void) buf_printf(err, "%s%sunknown provider '%s' (", strempty(where), where ? ": " : "", name);
        for (size_t i = 0; pool_providers[i]; i++)
                (void) buf_printf(err, "%s%s", i > 0 ? ", " : "", pool_providers[i]->name);
        (void) buf_puts(err, ")");
        return NULL;
}

int pool_new(const char *name, const char *provider, const char *template, unsigned size, pool **ret, buf *err) {
        _cleanup_(pool_freep) pool *p = NULL;
        _cleanup_free_ char *file = NULL;
        const pool_provider_ops *ops;
        int r;

        if (!name_valid(name))
                return buf_printf(err, "invalid pool name '%s' (letters, digits, - and _)", name), -EINVAL;
        ops = provider_find(provider, NULL, err);
        if (!ops)
                return -EINVAL;
        p = pool_alloc(name);
        if (!p)
                return -ENOMEM;
        if (asprintf(&file, "%s/pool.json", p->dir) < 0)
                return -ENOMEM;
        if (access(file, F_OK) == 0)
                return buf_printf(err, "pool %s exists (%s)", name, p->dir), -EEXIST;
        r = mkdir_p(p->dir, 0700);
        if (r < 0)
                return buf_printf(err, "creating %s: %s", p->dir, strerror(-r)), r;
        r = pool_lock(p, err);
        if (r < 0)
                return r;
        /* Again under the lock: another `pool create` of the same name may have finished first. */
        if (access(file, F_OK) == 0)
                return buf_printf(err, "pool %s exists (%s)", name, p->dir), -EEXIST;
        p->size = size;
        if (!(p->template = strdup(template)) || !(p->provider_name = strdup(provider)) ||
            !(p->provider_state = json_object()))
                return -ENOMEM;
        r = pool_provider_new(ops, p->dir, p->provider_state, &p->provider);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int pool_configure(pool *p, const pool_create_options *o, buf *err) {
        if (!p->provider->ops->configure)
                return 0;
        return p->provider->ops->configure(p->provider_state, o, err);
}

static int member_from_json(json_t *j, pool_member *ret) {
        const char *id = json_string_value(json_object_get(j, "id")), *ip = json_string_value(json_object_get(j, "ip")),
                   *template = json_string_value(json_object_get(j, "template")),
                   *state = json_string_value(json_object_get(j, "state"));
        if (!id || !ip || !template || !state)
                return -EBADMSG;
        pool_member m = { strdup(id), strdup(ip), strdup(template), strdup(state) };
        if (!m.id || !m.ip || !m.template || !m.state) {
                member_done(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int pool_load(const char *name, bool lock, pool **ret, buf *err) {
        _cleanup_(pool_freep) pool *p = NULL;
        _cleanup_free_ char *file = NULL, *text = NULL;
        _cleanup_json_ json_t *root = NULL;
        _cleanup_buf_ buf parse_err = BUF_INIT(1024);
        const pool_provider_ops *ops;
        json_t *members, *j;
        size_t len, i;
        int r;

        if (!name_valid(name))
                return buf_printf(err, "invalid pool name '%s'", name), -EINVAL;
        p = pool_alloc(name);
        if (!p || asprintf(&file, "%s/pool.json", p->dir) < 0)
                return -ENOMEM;
        if (access(file, F_OK) < 0)
                return buf_printf(err, "no pool %s (%s)", name, file), -ENOENT;
        if (lock) {
                r = pool_lock(p, err);
                if (r < 0)
                        return r;
        }
        r = read_file(file, POOL_FILE_MAX, &text, &len);
        if (r < 0)
                return buf_printf(err, "reading %s: %s", file, strerror(-r)), r;
        r = json_parse(text, len, &root, &parse_err);
        if (r < 0)
                return buf_printf(err, "%s: %s", file, parse_err.data), r;
        const char *template = json_path_string(root, "template"), *provider = json_path_string(root, "provider_name"),
                   *target = json_path_string(root, "roll_target");
        int64_t size;
        members = json_object_get(root, "members");
        if (!template || !provider || json_path_i64(root, "size", &size) < 0 || size < 1 || size > POOL_SIZE_MAX || !json_is_array(members) ||
            !json_is_object(json_object_get(root, "provider")))
                return buf_printf(err, "%s: missing or malformed fields", file), -EBADMSG;
        p->size = (unsigned) size;
        if (!(p->template = strdup(template)) || !(p->provider_name = strdup(provider)) ||
            (target && !(p->roll_target = strdup(target))))
                return -ENOMEM;
        p->members = calloc(json_array_size(members) + 1, sizeof(pool_member));
        if (!p->members)
                return -ENOMEM;
        json_array_foreach(members, i, j) {
                r = member_from_json(j, &p->members[p->n_members]);
                if (r < 0)
                        return buf_printf(err, "%s: members[%zu] malformed", file, i), r;
                p->n_members++;
        }
        p->provider_state = json_incref(json_object_get(root, "provider"));
        ops = provider_find(provider, file, err);
        if (!ops)
                return -EINVAL;
        r = pool_provider_new(ops, p->dir, p->provider_state, &p->provider);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int pool_save(pool *p, buf *err) {
        _cleanup_json_ json_t *root = NULL, *members = json_array();
        _cleanup_free_ char *file = NULL, *text = NULL;
        int r;

        if (!members)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_members; i++) {
                const pool_member *m = &p->members[i];
                if (json_array_append_new(members, json_pack("{s:s, s:s, s:s, s:s}", "id", m->id, "ip", m->ip,
                                                             "template", m->template, "state", m->state)) < 0)
                        return -ENOMEM;
        }
        root = json_pack("{s:s, s:s, s:I, s:s?, s:s, s:O, s:O}", "name", p->name, "template", p->template, "size",
                         (json_int_t) p->size, "roll_target", p->roll_target, "provider_name", p->provider_name,
                         "provider", p->provider_state, "members", members);
        if (!root)
                return -ENOMEM;
        text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text || asprintf(&file, "%s/pool.json", p->dir) < 0)
                return -ENOMEM;
        /* 0600: the provider state holds the local cloud's API secret. */
        r = write_file_atomic(file, text, strlen(text), 0600, (uid_t) -1, (gid_t) -1);
        explicit_bzero(text, strlen(text));
        if (r < 0)
                buf_printf(err, "writing %s: %s", file, strerror(-r));
        return r;
}

/* ---- etcd, through the v3 JSON gateway ---- */

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

static pool_member *pool_member_by_peer(pool *p, json_t *em) {
        const char *url = strempty(json_path_string(em, "peerURLs.0"));
        for (size_t i = 0; i < p->n_members; i++) {
                _cleanup_free_ char *needle = NULL;
                if (asprintf(&needle, "//%s:", p->members[i].ip) >= 0 && strstr(url, needle))
                        return &p->members[i];
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

static void cluster_view_done(cluster_view *v) {
        free(v->healthy);
        json_decref(v->list);
        *v = (cluster_view){};
}

static int cluster_view_get(pool *p, const pool_member *except, cluster_view *ret, buf *err) {
        cluster_view v = { .healthy = calloc(p->n_members + 1, sizeof(bool)) };
        int r;

        if (!v.healthy)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_members; i++) {
                pool_health_inputs h = {};
                r = p->provider->ops->health_inputs(p->provider, &p->members[i], &h, err);
                if (r < 0) {
                        cluster_view_done(&v);
                        return r;
                }
                v.healthy[i] = pool_health_check(&h);
                if (v.healthy[i] && !v.list && &p->members[i] != except) {
                        long status = 0;
                        json_t *list = NULL;
                        if (pool_health_etcd_call(&h, h.etcd_url, "/v3/cluster/member/list", "{}", &status, &list) >= 0 &&
                            status == 200 && list) {
                                v.list = list;
                                v.source = i;
                        } else
                                json_decref(list);
                }
                pool_health_inputs_done(&h);
        }
        *ret = v;
        return 0;
}

/* The quorum floor: every pool member is healthy and a voting etcd member, and the cluster has
 * no member that is not in the pool. Returns 0, or -POOL_EUNHEALTHY with the reasons in why. */
static int cluster_check(pool *p, buf *why) {
        cluster_view v = {};
        json_t *em;
        size_t i;
        int r;

        r = cluster_view_get(p, NULL, &v, why);
        if (r < 0)
                return r;
        buf_clear(why);
        if (!v.list)
                buf_puts(why, "no member answers the etcd member list");
        for (i = 0; v.list && i < p->n_members; i++) {
                const pool_member *m = &p->members[i];
                em = etcd_member_by_ip(v.list, m->ip);
                if (!v.healthy[i])
                        buf_printf(why, "%smember %s (%s) is not healthy", why->len ? "; " : "", m->id, m->ip);
                else if (!em)
                        buf_printf(why, "%smember %s (%s) is not in the etcd cluster", why->len ? "; " : "", m->id, m->ip);
                else if (json_path_bool(em, "isLearner"))
                        buf_printf(why, "%smember %s (%s) is still a learner", why->len ? "; " : "", m->id, m->ip);
        }
        json_array_foreach(v.list ? json_object_get(v.list, "members") : NULL, i, em)
                if (!pool_member_by_peer(p, em))
                        buf_printf(why, "%setcd member %s (%s) is not in the pool", why->len ? "; " : "",
                                   strempty(json_path_string(em, "ID")), strempty(json_path_string(em, "peerURLs.0")));
        cluster_view_done(&v);
        return why->len ? -POOL_EUNHEALTHY : 0;
}

/* The gate before every membership change. A member whose machine is down is started again
 * once (the provider repairs it); if the cluster is still not healthy soon after (a restarted
 * member gets time to catch up) the step is refused. */
static int ensure_healthy(pool *p, buf *err) {
        _cleanup_buf_ buf why = BUF_INIT(8192);
        bool restarted = false;
        long deadline;
        int r;

        r = cluster_check(p, &why);
        if (r != -POOL_EUNHEALTHY)
                return r;
        log_warning("pool %s: cluster not healthy: %s", p->name, why.data);
        for (size_t i = 0; i < p->n_members; i++) {
                const pool_member *m = &p->members[i];
                if (streq(m->state, "active") && streq(p->provider->ops->member_state(p->provider, m), "stopped")) {
                        log_notice("pool %s: member %s (%s) is down, starting it again", p->name, m->id, m->ip);
                        _cleanup_buf_ buf start_err = BUF_INIT(4096);
                        r = p->provider->ops->start_member(p->provider, m, &start_err);
                        if (r < 0)
                                log_warning("pool %s: restarting member %s failed: %s", p->name, m->id, start_err.data);
                        else
                                restarted = true;
                }
        }
        deadline = time_now_ms() + (restarted ? HEAL_TIMEOUT_MS : 5000);
        while (time_now_ms() < deadline) {
                time_sleep_ms(500);
                r = cluster_check(p, &why);
                if (r != -POOL_EUNHEALTHY)
                        return r;
        }
        buf_printf(err, "cluster not healthy, refusing to change membership: %s", why.data);
        return -POOL_EUNHEALTHY;
}

/* Wait until m is a started, voting, healthy member. */
static int wait_voting(pool *p, const pool_member *m, buf *err) {
        long deadline = time_now_ms() + JOIN_TIMEOUT_MS;
        const char *last = "no member answers the etcd member list";
        int r;

        while (time_now_ms() < deadline) {
                cluster_view v = {};
                /* Any member's list will do: a learner's own answer fails, others come first. */
                r = cluster_view_get(p, NULL, &v, err);
                if (r < 0)
                        return r;
                json_t *em = v.list ? etcd_member_by_ip(v.list, m->ip) : NULL;
                bool self_healthy = false;
                for (size_t i = 0; i < p->n_members; i++)
                        if (&p->members[i] == m)
                                self_healthy = v.healthy[i];
                if (v.list && !em)
                        last = "not in the member list";
                else if (em && json_path_bool(em, "isLearner"))
                        last = "still a learner";
                else if (em && !json_path_string(em, "name"))
                        last = "added but not started";
                else if (em && !self_healthy)
                        last = "not healthy";
                else if (em) {
                        cluster_view_done(&v);
                        return 0;
                }
                cluster_view_done(&v);
                time_sleep_ms(500);
        }
        buf_printf(err, "member %s (%s) did not become a healthy voting member in %d s: %s", m->id, m->ip,
                   JOIN_TIMEOUT_MS / 1000, last);
        return -ETIMEDOUT;
}

/* Make sure the etcd cluster no longer lists m (it left, or it died and we remove it through a
 * healthy member). */
static int ensure_removed(pool *p, const pool_member *m, buf *err) {
        long deadline = time_now_ms() + HEAL_TIMEOUT_MS;
        cluster_view v = {};
        int r;

        /* The member that left may have been the leader: the others answer again once they have
         * elected a new one, so a short spell of no healthy member is waited out. */
        for (;;) {
                r = cluster_view_get(p, m, &v, err);
                if (r < 0)
                        return r;
                if (v.list || time_now_ms() >= deadline)
                        break;
                cluster_view_done(&v);
                time_sleep_ms(500);
        }
        json_t *em = v.list ? etcd_member_by_ip(v.list, m->ip) : NULL;
        if (!v.list) {
                buf_printf(err, "cluster not healthy: no other member answered the etcd member list in %d s, "
                           "so member %s (%s) cannot be removed through one", HEAL_TIMEOUT_MS / 1000, m->id, m->ip);
                r = -POOL_EUNHEALTHY;
        } else if (em) {
                pool_health_inputs h = {};
                _cleanup_free_ char *body = NULL;
                long status = 0;
                r = p->provider->ops->health_inputs(p->provider, &p->members[v.source], &h, err);
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
        cluster_view_done(&v);
        return r;
}

/* ---- membership changes; each one checkpointed in pool.json ---- */

static int add_member(pool *p, const char *template, buf *err) {
        _cleanup_free_ char *id = NULL, *ip = NULL;
        pool_member *members;
        int r;

        r = p->provider->ops->reserve_member(p->provider, template, &id, &ip, err);
        if (r < 0)
                return r;
        members = realloc(p->members, (p->n_members + 1) * sizeof(pool_member));
        if (!members)
                return -ENOMEM;
        p->members = members;
        pool_member m = { TAKE_PTR(id), TAKE_PTR(ip), strdup(template), strdup("joining") };
        p->members[p->n_members++] = m;
        if (!m.template || !m.state)
                return -ENOMEM;
        /* Recorded before anything runs: a crash from here on is resumed by finish_joining(). */
        return pool_save(p, err);
}

static int finish_joining(pool *p, pool_member *m, buf *err) {
        long start = time_now_ms();
        int r;

        log_info("pool %s: starting member %s (%s) on %s", p->name, m->id, m->ip, m->template);
        r = p->provider->ops->start_member(p->provider, m, err);
        if (r < 0)
                return r;
        r = wait_voting(p, m, err);
        if (r < 0)
                return r;
        free(m->state);
        if (!(m->state = strdup("active")))
                return -ENOMEM;
        log_info("pool %s: member %s (%s) is a healthy voting member after %ld ms", p->name, m->id, m->ip, time_now_ms() - start);
        return pool_save(p, err);
}

static int finish_leaving(pool *p, pool_member *m, buf *err) {
        _cleanup_buf_ buf leave_err = BUF_INIT(4096);
        int r;

        log_info("pool %s: member %s (%s) on %s leaves", p->name, m->id, m->ip, m->template);
        if (p->provider->ops->leave_member) {
                r = p->provider->ops->leave_member(p->provider, m, &leave_err);
                if (r < 0)
                        log_warning("pool %s: member %s did not leave by itself (%s), removing it from the cluster",
                                    p->name, m->id, leave_err.data);
        }
        r = ensure_removed(p, m, err);
        if (r < 0)
                return r;
        r = p->provider->ops->destroy_member(p->provider, m, err);
        if (r < 0)
                return r;
        member_done(m);
        size_t i = (size_t) (m - p->members);
        memmove(m, m + 1, (p->n_members - i - 1) * sizeof(pool_member));
        p->n_members--;
        return pool_save(p, err);
}

static int start_leaving(pool *p, pool_member *m, buf *err) {
        free(m->state);
        if (!(m->state = strdup("leaving")))
                return -ENOMEM;
        int r = pool_save(p, err);
        return r < 0 ? r : finish_leaving(p, m, err);
}

static pool_member *find_state(pool *p, const char *state) {
        for (size_t i = 0; i < p->n_members; i++)
                if (streq(p->members[i].state, state))
                        return &p->members[i];
        return NULL;
}

/* Finish what a killed command left half-done: a joining member joins, a leaving one leaves. */
static int finish_in_flight(pool *p, buf *err) {
        pool_member *m;
        int r;

        while ((m = find_state(p, "joining"))) {
                r = finish_joining(p, m, err);
                if (r < 0)
                        return r;
        }
        while ((m = find_state(p, "leaving"))) {
                r = finish_leaving(p, m, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pool_converge(pool *p, buf *err) {
        int r;

        r = p->provider->ops->setup(p->provider, err);
        if (r >= 0)
                r = pool_save(p, err);
        if (r >= 0)
                r = finish_in_flight(p, err);
        if (r < 0)
                return r;
        /* A new pool on a provider whose machines boot in the background: every member boots at
         * once (one bootstraps the cluster, the others join it), then each passes the gate. */
        if (p->n_members == 0 && p->provider->ops->boot_member) {
                while (r >= 0 && p->n_members < p->size)
                        r = add_member(p, p->template, err);
                for (size_t i = 0; r >= 0 && i < p->n_members; i++) {
                        log_info("pool %s: booting member %s (%s) on %s", p->name, p->members[i].id, p->members[i].ip,
                                 p->members[i].template);
                        r = p->provider->ops->boot_member(p->provider, &p->members[i], err);
                }
                if (r >= 0)
                        r = finish_in_flight(p, err);
                if (r < 0)
                        return r;
        }
        while (p->n_members != p->size) {
                /* The first member bootstraps the cluster: there is nothing to check before it. */
                if (p->n_members > 0) {
                        r = ensure_healthy(p, err);
                        if (r < 0)
                                return r;
                }
                if (p->n_members < p->size) {
                        r = add_member(p, p->template, err);
                        if (r >= 0)
                                r = finish_joining(p, &p->members[p->n_members - 1], err);
                } else
                        r = start_leaving(p, &p->members[0], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pool_roll(pool *p, const char *target, buf *err) {
        pool_member *old;
        int r;

        if (p->roll_target && !streq(p->roll_target, target))
                return buf_printf(err, "a roll to %s is in progress: resume it with --template %s or stop it with --abort",
                                  p->roll_target, p->roll_target), -EBUSY;
        if (!p->roll_target && !(p->roll_target = strdup(target)))
                return -ENOMEM;
        r = pool_save(p, err);
        if (r >= 0)
                r = p->provider->ops->setup(p->provider, err);
        if (r >= 0)
                r = finish_in_flight(p, err);
        if (r < 0)
                return r;
        for (;;) {
                old = NULL;
                for (size_t i = 0; i < p->n_members && !old; i++)
                        if (!streq(p->members[i].template, target))
                                old = &p->members[i];
                if (!old)
                        break;
                _cleanup_free_ char *old_id = strdup(old->id);
                if (!old_id)
                        return -ENOMEM;
                long start = time_now_ms();
                log_info("pool %s: replacing member %s (%s, %s)", p->name, old->id, old->ip, old->template);
                /* A surge member from a resumed step is already in: it replaces this one. */
                if (p->n_members <= p->size) {
                        r = ensure_healthy(p, err);
                        if (r < 0)
                                return r;
                        r = add_member(p, target, err);
                        if (r >= 0)
                                r = finish_joining(p, &p->members[p->n_members - 1], err);
                        if (r < 0)
                                return r;
                }
                r = ensure_healthy(p, err);
                if (r < 0)
                        return r;
                /* add_member moved the array: find the old member again. */
                for (size_t i = 0; i < p->n_members; i++)
                        if (streq(p->members[i].id, old_id))
                                old = &p->members[i];
                r = start_leaving(p, old, err);
                if (r < 0)
                        return r;
                log_info("pool %s: replaced member %s in %ld ms", p->name, old_id, time_now_ms() - start);
        }
        free(p->template);
        p->template = TAKE_PTR(p->roll_target);
        return pool_save(p, err);
}

int pool_roll_abort(pool *p, buf *err) {
        pool_member *m;
        int r;

        if (!p->roll_target)
                return buf_printf(err, "no roll in progress on pool %s", p->name), -ENOENT;
        r = p->provider->ops->setup(p->provider, err);
        if (r < 0)
                return r;
        /* A surged member that has not replaced anyone yet goes again (it is the newest); a
         * member already leaving finishes leaving (its replacement is in). Either way the pool
         * is back to its size with every member on the old or the new template. */
        while ((m = find_state(p, "joining"))) {
                log_info("pool %s: abort: removing joining member %s (%s)", p->name, m->id, m->ip);
                r = start_leaving(p, m, err);
                if (r < 0)
                        return r;
        }
        r = finish_in_flight(p, err);
        if (r < 0)
                return r;
        while (p->n_members > p->size) {
                m = &p->members[p->n_members - 1];
                log_info("pool %s: abort: removing surge member %s (%s)", p->name, m->id, m->ip);
                r = start_leaving(p, m, err);
                if (r < 0)
                        return r;
        }
        free(p->roll_target);
        p->roll_target = NULL;
        r = pool_save(p, err);
        if (r < 0)
                return r;
        return ensure_healthy(p, err);
}

int pool_delete(pool *p, buf *err) {
        int r;

        /* The whole cluster goes: no member leaves (that would shrink it down to one). */
        while (p->n_members > 0) {
                pool_member *m = &p->members[p->n_members - 1];
                r = p->provider->ops->destroy_member(p->provider, m, err);
                if (r < 0)
                        return r;
                member_done(m);
                p->n_members--;
                r = pool_save(p, err);
                if (r < 0)
                        return r;
        }
        r = p->provider->ops->teardown(p->provider, err);
        if (r < 0)
                return r;
        r = rm_rf(p->dir);
        if (r < 0)
                return buf_printf(err, "removing %s: %s", p->dir, strerror(-r)), r;
        return 0;
}

static json_t *member_etcd_status(pool *p, const pool_member *m) {
        pool_health_inputs h = {};
        _cleanup_buf_ buf ignored = BUF_INIT(1024);
        _cleanup_json_ json_t *st = NULL;
        const char *role = "unknown";
        long status = 0;
        bool healthy;

        if (p->provider->ops->health_inputs(p->provider, m, &h, &ignored) < 0)
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

int pool_status(pool *p, json_t **ret, buf *err) {
        _cleanup_json_ json_t *members = json_array();

        (void) err;
        if (!members)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_members; i++) {
                const pool_member *m = &p->members[i];
                _cleanup_buf_ buf agent_err = BUF_INIT(1024);
                json_t *agent = NULL;
                if (p->provider->ops->agent_status(p->provider, m, &agent, &agent_err) < 0)
                        agent = json_pack("{s:s, s:s}", "outcome", "unknown", "error", agent_err.data);
                if (json_array_append_new(members, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", m->id, "ip",
                                                             m->ip, "template", m->template, "state", m->state,
                                                             "machine", p->provider->ops->member_state(p->provider, m),
                                                             "etcd", member_etcd_status(p, m), "agent", agent)) < 0)
                        return -ENOMEM;
        }
        *ret = json_pack("{s:s, s:s, s:I, s:s?, s:s, s:O}", "name", p->name, "template", p->template, "size",
                         (json_int_t) p->size, "roll_target", p->roll_target, "provider", p->provider_name, "members",
                         members);
        return *ret ? 0 : -ENOMEM;
}
