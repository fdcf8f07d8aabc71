/* Pools: persistence and membership changes one member at a time, each through the role's gate
 * (pool-role.h). See pool.h. */
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
#include "pool-roles.h"
#include "time-util.h"

#define POOL_FILE_MAX (1024 * 1024)

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

int pool_role_new(const pool_role_ops *ops, json_t *state, pool_role **ret) {
        pool_role *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->ops = ops;
        r->state = state;
        *ret = r;
        return 0;
}

void pool_role_free(pool_role *r) {
        if (!r)
                return;
        if (r->ops->done)
                r->ops->done(r);
        free(r);
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
        pool_role_free(p->role);
        json_decref(p->role_state);
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
        p->drain_timeout_ms = POOL_DRAIN_TIMEOUT_MS_DEFAULT;
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
            !(p->provider_state = json_object()) || !(p->role_state = json_object()))
                return -ENOMEM;
        r = pool_provider_new(ops, p->dir, p->provider_state, &p->provider);
        if (r >= 0)
                r = pool_role_new(pool_role_find("etcd"), p->role_state, &p->role);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int pool_configure(pool *p, const pool_create_options *o, buf *err) {
        const pool_role_ops *role;
        int r;

        r = pool_role_choose(p->provider->ops, o->cache_dir, o->template, o->role, &role, err);
        if (r < 0)
                return r;
        if (role->needs_node_names && !p->provider->ops->node_name)
                return buf_printf(err, "provider %s cannot make members of role %s yet (it does not name their "
                                  "Nodes)", p->provider->ops->name, role->name), -EOPNOTSUPP;
        if (role->needs_kubeconfig && !o->kubeconfig)
                return buf_printf(err, "a %s pool needs --kubeconfig FILE (an admin kubeconfig of its cluster)",
                                  role->name), -EINVAL;
        if (!role->needs_kubeconfig && o->kubeconfig)
                return buf_printf(err, "--kubeconfig is for roles that talk to Kubernetes, not for role %s",
                                  role->name), -EINVAL;
        if (role != p->role->ops) {
                pool_role *new_role = NULL;
                r = pool_role_new(role, p->role_state, &new_role);
                if (r < 0)
                        return r;
                pool_role_free(p->role);
                p->role = new_role;
        }
        if (role->configure) {
                r = role->configure(p->role_state, o, err);
                if (r < 0)
                        return r;
        }
        if (!p->provider->ops->configure)
                return 0;
        /* The provider is told the role chosen here (host: what its members run). */
        pool_create_options po = *o;
        po.role = role->name;
        return p->provider->ops->configure(p->provider_state, &po, err);
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
        json_t *role = json_object_get(root, "role"), *role_config = json_object_get(root, "role_config");
        int64_t size;
        members = json_object_get(root, "members");
        if (!template || !provider || json_path_i64(root, "size", &size) < 0 || size < 1 || size > POOL_SIZE_MAX || !json_is_array(members) ||
            !json_is_object(json_object_get(root, "provider")) || (role && !json_is_string(role)) ||
            (role_config && !json_is_object(role_config)))
                return buf_printf(err, "%s: missing or malformed fields", file), -EBADMSG;
        /* Pools from before roles have neither: they are etcd pools. */
        const pool_role_ops *role_ops = pool_role_find(role ? json_string_value(role) : "etcd");
        if (!role_ops)
                return buf_printf(err, "%s: unknown role '%s'", file, json_string_value(role)), -EINVAL;
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
        p->role_state = role_config ? json_incref(role_config) : json_object();
        if (!p->role_state)
                return -ENOMEM;
        ops = provider_find(provider, file, err);
        if (!ops)
                return -EINVAL;
        r = pool_provider_new(ops, p->dir, p->provider_state, &p->provider);
        if (r >= 0)
                r = pool_role_new(role_ops, p->role_state, &p->role);
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
        root = json_pack("{s:s, s:s, s:I, s:s?, s:s, s:O, s:s, s:O, s:O}", "name", p->name, "template", p->template,
                         "size", (json_int_t) p->size, "roll_target", p->roll_target, "provider_name",
                         p->provider_name, "provider", p->provider_state, "role", p->role->ops->name, "role_config",
                         p->role_state, "members", members);
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

/* What the role sees of p for one call (pool-role.h). */
static pool_view view_of(pool *p) {
        return (pool_view){ .name = p->name, .members = p->members, .n_members = p->n_members,
                            .provider = p->provider, .drain_timeout_ms = p->drain_timeout_ms };
}

/* The role's gate before a membership change. */
static int ensure_healthy(pool *p, buf *err) {
        pool_view v = view_of(p);
        return p->role->ops->gate(p->role, &v, err);
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
        pool_view v = view_of(p);
        r = p->role->ops->wait_joined(p->role, &v, m, err);
        if (r < 0)
                return r;
        free(m->state);
        if (!(m->state = strdup("active")))
                return -ENOMEM;
        log_info("pool %s: member %s (%s) is %s after %ld ms", p->name, m->id, m->ip, p->role->ops->serving,
                 time_now_ms() - start);
        return pool_save(p, err);
}

static int finish_leaving(pool *p, pool_member *m, buf *err) {
        pool_view v = view_of(p);
        int r;

        log_info("pool %s: member %s (%s) on %s leaves", p->name, m->id, m->ip, m->template);
        r = p->role->ops->before_destroy(p->role, &v, m, err);
        if (r < 0)
                return r;
        r = p->provider->ops->destroy_member(p->provider, m, err);
        if (r < 0)
                return r;
        if (p->role->ops->after_destroy) {
                r = p->role->ops->after_destroy(p->role, &v, m, err);
                if (r < 0)
                        return r;
        }
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
         * is back to its size with every member on the old or the new template. A leaving member
         * the role can take back (node: its drain was stopped) goes back in service instead, and
         * the newest member leaves in its place below. */
        for (size_t i = 0; p->role->ops->cancel_leave && i < p->n_members; i++) {
                m = &p->members[i];
                if (!streq(m->state, "leaving") || !streq(p->provider->ops->member_state(p->provider, m), "running"))
                        continue;
                pool_view v = view_of(p);
                log_info("pool %s: abort: member %s (%s) stays", p->name, m->id, m->ip);
                r = p->role->ops->cancel_leave(p->role, &v, m, err);
                if (r < 0)
                        return r;
                free(m->state);
                if (!(m->state = strdup("active")))
                        return -ENOMEM;
                r = pool_save(p, err);
                if (r < 0)
                        return r;
        }
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

        /* The whole cluster goes: no member leaves (that would shrink it down to one), nothing is
         * drained; what the role cleans up after a member (node: its Node object) still goes. */
        while (p->n_members > 0) {
                pool_member *m = &p->members[p->n_members - 1];
                r = p->provider->ops->destroy_member(p->provider, m, err);
                if (r >= 0 && p->role->ops->after_destroy) {
                        pool_view v = view_of(p);
                        r = p->role->ops->after_destroy(p->role, &v, m, err);
                }
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

int pool_status(pool *p, json_t **ret, buf *err) {
        _cleanup_json_ json_t *members = json_array();

        pool_view v = view_of(p);

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
                                                             p->role->ops->name,
                                                             p->role->ops->member_status(p->role, &v, m), "agent",
                                                             agent)) < 0)
                        return -ENOMEM;
        }
        *ret = json_pack("{s:s, s:s, s:I, s:s?, s:s, s:s, s:O}", "name", p->name, "template", p->template, "size",
                         (json_int_t) p->size, "roll_target", p->roll_target, "provider", p->provider_name, "role",
                         p->role->ops->name, "members", members);
        return *ret ? 0 : -ENOMEM;
}
