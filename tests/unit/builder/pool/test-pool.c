/* The pool core (pool.c) against a scripted in-memory provider and a fake etcd cluster served
 * over the v3 JSON gateway paths by lib/http-server in a thread: persistence, converge, the rolling
 * state machine (surge before leave, never fewer voters than the size), resume after a failed
 * step, abort, the quorum floor, and removal of a member that could not leave by itself. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "http-server.h"
#include "json.h"
#include "pool.h"

typedef struct fake_member {
        char ip[32];
        unsigned long long etcd_id;
        bool in_cluster;
        bool up;
} fake_member;

/* The world: machines and the etcd cluster they form. Shared with the server thread. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fake_member world[64];
static size_t n_world;
static int next_index = 1;
static int min_voters = 99;
static char events[4096];
static const char *fail_start_ip;   /* start_member of this IP fails (scripted) */
static const char *fail_leave_ip;   /* leave_member of this IP fails (scripted) */
static bool fail_next_surge;        /* the next start of a new member fails once */
static uint16_t port;

static fake_member *find(const char *ip) {
        for (size_t i = 0; i < n_world; i++)
                if (streq(world[i].ip, ip))
                        return &world[i];
        return NULL;
}

static int voters_up(void) {
        int n = 0;
        for (size_t i = 0; i < n_world; i++)
                n += world[i].in_cluster && world[i].up;
        return n;
}

static void event(const char *what, const char *ip) {
        snprintf(events + strlen(events), sizeof(events) - strlen(events), "%s %s;", what, ip);
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        char ip[32];
        const char *rest;
        int r = 0;

        (void) userdata;
        pthread_mutex_lock(&lock);
        rest = strchr(req->path + 1, '/');
        snprintf(ip, sizeof(ip), "%.*s", rest ? (int) (rest - req->path - 1) : 0, req->path + 1);
        fake_member *m = find(ip);
        int voters = 0;
        for (size_t i = 0; i < n_world; i++)
                voters += world[i].in_cluster;
        bool quorum = voters_up() > voters / 2;
        if (!m || !m->up || !m->in_cluster || !quorum)
                r = http_server_respond(resp, 503, "{\"health\":\"false\"}");
        else if (streq(rest, "/health"))
                r = http_server_respond(resp, 200, "{\"health\":\"true\"}");
        else if (streq(rest, "/v3/cluster/member/list")) {
                r = http_server_respond(resp, 200, "{\"members\":[");
                bool first = true;
                for (size_t i = 0; r >= 0 && i < n_world; i++)
                        if (world[i].in_cluster) {
                                r = buf_printf(&resp->body, "%s{\"ID\":\"%llu\",\"name\":\"m\",\"peerURLs\":[\"https://%s:2380\"]}",
                                               first ? "" : ",", world[i].etcd_id, world[i].ip);
                                first = false;
                        }
                if (r >= 0)
                        r = buf_puts(&resp->body, "]}");
        } else if (streq(rest, "/v3/cluster/member/remove")) {
                _cleanup_json_ json_t *body = NULL;
                uint64_t id = 0;
                CHECK_OK(json_parse(req->body, req->body_len, &body, NULL));
                CHECK_OK(json_path_u64(body, "ID", &id));
                for (size_t i = 0; i < n_world; i++)
                        if (world[i].etcd_id == id) {
                                world[i].in_cluster = false;
                                event("removed", world[i].ip);
                        }
                r = http_server_respond(resp, 200, "{}");
        } else if (streq(rest, "/v3/maintenance/status"))
                r = http_server_respond(resp, 200, "{\"header\":{\"member_id\":\"%llu\"},\"leader\":\"1\"}", m->etcd_id);
        else
                r = http_server_respond(resp, 404, "{}");
        pthread_mutex_unlock(&lock);
        return r;
}

static void track_voters(void) {
        int v = voters_up();
        if (v < min_voters)
                min_voters = v;
}

static int fake_setup(pool_provider *p, buf *err) { (void) p, (void) err; return 0; }
static int fake_teardown(pool_provider *p, buf *err) { (void) p, (void) err; return 0; }

static int fake_reserve(pool_provider *p, const char *template, char **ret_id, char **ret_ip, buf *err) {
        (void) p, (void) template, (void) err;
        CHECK(asprintf(ret_id, "i-%d", next_index) > 0);
        CHECK(asprintf(ret_ip, "10.0.0.%d", next_index) > 0);
        next_index++;
        return 0;
}

/* The "agent": joins (as a voter, the learner step is the agent's business) or comes back up. */
static int fake_start(pool_provider *p, const pool_member *m, buf *err) {
        (void) p;
        pthread_mutex_lock(&lock);
        fake_member *f = find(m->ip);
        int r = 0;
        if ((fail_start_ip && streq(fail_start_ip, m->ip)) || (!f && fail_next_surge)) {
                fail_next_surge = false;
                buf_printf(err, "scripted failure");
                r = -EIO;
        } else if (!f) {
                f = &world[n_world++];
                snprintf(f->ip, sizeof(f->ip), "%s", m->ip);
                f->etcd_id = 1000 + n_world;
                f->in_cluster = f->up = true;
                event("joined", m->ip);
        } else
                f->up = true;
        track_voters();
        pthread_mutex_unlock(&lock);
        return r;
}

static int fake_leave(pool_provider *p, const pool_member *m, buf *err) {
        (void) p;
        pthread_mutex_lock(&lock);
        fake_member *f = find(m->ip);
        int r = 0;
        if (fail_leave_ip && streq(fail_leave_ip, m->ip)) {
                buf_printf(err, "scripted failure");
                r = -EIO;
        } else if (f && f->in_cluster) {
                f->in_cluster = false;
                event("left", m->ip);
        }
        track_voters();
        pthread_mutex_unlock(&lock);
        return r;
}

static int fake_destroy(pool_provider *p, const pool_member *m, buf *err) {
        (void) p, (void) err;
        pthread_mutex_lock(&lock);
        fake_member *f = find(m->ip);
        if (f)
                f->up = false;
        event("destroyed", m->ip);
        track_voters();
        pthread_mutex_unlock(&lock);
        return 0;
}

static const char *fake_member_state(pool_provider *p, const pool_member *m) {
        (void) p;
        pthread_mutex_lock(&lock);
        fake_member *f = find(m->ip);
        bool up = f && f->up;
        pthread_mutex_unlock(&lock);
        return up ? "running" : "stopped";
}

static int fake_health_inputs(pool_provider *p, const pool_member *m, pool_health_inputs *ret, buf *err) {
        (void) p, (void) err;
        *ret = (pool_health_inputs){};
        CHECK(asprintf(&ret->etcd_url, "http://127.0.0.1:%u/%s", port, m->ip) > 0);
        return 0;
}

static int fake_agent_status(pool_provider *p, const pool_member *m, json_t **ret, buf *err) {
        (void) p, (void) m, (void) err;
        *ret = json_pack("{s:s, s:[]}", "outcome", "done", "stages");
        return 0;
}

static const pool_provider_ops fake_ops = {
        .name = "fake",
        .setup = fake_setup,
        .teardown = fake_teardown,
        .reserve_member = fake_reserve,
        .start_member = fake_start,
        .leave_member = fake_leave,
        .destroy_member = fake_destroy,
        .member_state = fake_member_state,
        .health_inputs = fake_health_inputs,
        .agent_status = fake_agent_status,
};

static void use_fake_provider(pool *p) {
        pool_provider *f = NULL;
        CHECK_OK(pool_provider_new(&fake_ops, p->dir, p->provider_state, &f));
        pool_provider_free(p->provider);
        p->provider = f;
}

static pool *reload(pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        pool *q = NULL;
        pool_free(p);
        CHECK_OK(pool_load("etcd", true, &q, &err));
        use_fake_provider(q);
        return q;
}

static size_t count_template(pool *p, const char *template) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_members; i++)
                n += streq(p->members[i].template, template) && streq(p->members[i].state, "active");
        return n;
}

/* The cluster is exactly the pool's members, all up. */
static void check_clean(pool *p) {
        pthread_mutex_lock(&lock);
        size_t in = 0;
        for (size_t i = 0; i < n_world; i++)
                in += world[i].in_cluster;
        CHECK(in == p->n_members);
        for (size_t i = 0; i < p->n_members; i++) {
                fake_member *f = find(p->members[i].ip);
                CHECK(f && f->in_cluster && f->up);
        }
        pthread_mutex_unlock(&lock);
}

static volatile sig_atomic_t stop_server;
static void *serve_thread(void *h) {
        http_server_run(h, &stop_server);
        return NULL;
}

int main(void) {
        char dir[] = "/tmp/test-pool.XXXXXX";
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_(http_server_freep) http_server *h = NULL;
        pool *p = NULL, *other = NULL;
        pthread_t thread;
        int r;

        CHECK(mkdtemp(dir));
        setenv("IMGBUILD_STATE_DIR", dir, 1);
        CHECK_OK(http_server_new(handler, NULL, &h));
        r = http_server_listen(h, "127.0.0.1", 0, NULL);
        CHECK_OK(r);
        port = (uint16_t) r;
        CHECK(pthread_create(&thread, NULL, serve_thread, h) == 0);

        /* Names and directories. */
        char *d = NULL;
        CHECK(pool_dir_for("../x", &d) == -EINVAL);
        CHECK_OK(pool_dir_for("etcd", &d));
        CHECK(strstr(d, "/pools/etcd") && strncmp(d, dir, strlen(dir)) == 0);
        free(d);

        /* Create: three members, one at a time; persisted; a second command is locked out. */
        CHECK_OK(pool_new("etcd", "host", "etcd@1", 3, &p, &err));
        use_fake_provider(p);
        CHECK_OK(pool_converge(p, &err));
        CHECK(p->n_members == 3 && count_template(p, "etcd@1") == 3);
        check_clean(p);
        CHECK(pool_load("etcd", true, &other, &err) == -EBUSY);
        CHECK(pool_new("etcd", "host", "etcd@1", 3, &other, &err) == -EEXIST);
        p = reload(p);
        CHECK(p->n_members == 3 && streq(p->template, "etcd@1"));

        /* Roll: surge first, then the old one leaves and goes; never fewer than 3 voters. */
        events[0] = 0;
        min_voters = 99;
        CHECK_OK(pool_roll(p, "etcd@2", &err));
        CHECK(count_template(p, "etcd@2") == 3 && p->n_members == 3 && !p->roll_target);
        CHECK_STREQ(p->template, "etcd@2");
        CHECK_STREQ(events, "joined 10.0.0.4;left 10.0.0.1;destroyed 10.0.0.1;joined 10.0.0.5;left 10.0.0.2;"
                            "destroyed 10.0.0.2;joined 10.0.0.6;left 10.0.0.3;destroyed 10.0.0.3;");
        CHECK(min_voters >= 3);
        check_clean(p);

        /* A failed surge: the roll stops with the checkpoint on disk; a new process resumes. */
        fail_next_surge = true;
        CHECK(pool_roll(p, "etcd@3", &err) < 0);
        CHECK(strstr(err.data, "scripted failure"));
        p = reload(p);
        CHECK_STREQ(p->roll_target, "etcd@3");
        CHECK(p->n_members == 4 && streq(p->members[3].state, "joining"));
        buf_clear(&err);
        CHECK(pool_roll(p, "etcd@4", &err) == -EBUSY);
        CHECK_OK(pool_roll(p, "etcd@3", &err));
        CHECK(count_template(p, "etcd@3") == 3 && p->n_members == 3);
        check_clean(p);

        /* Abort after a failed surge: back to size, every member old or new, all voting. */
        fail_next_surge = true;
        CHECK(pool_roll(p, "etcd@4", &err) < 0);
        p = reload(p);
        CHECK_OK(pool_roll_abort(p, &err));
        CHECK(!p->roll_target && p->n_members == 3 && count_template(p, "etcd@3") == 3);
        check_clean(p);
        p = reload(p);
        CHECK(!p->roll_target);

        /* The quorum floor: a member that is down and cannot be started again stops the roll
         * before anything changes. */
        char victim[32], leaver[32];
        snprintf(victim, sizeof(victim), "%s", p->members[0].ip);
        pthread_mutex_lock(&lock);
        find(victim)->up = false;
        fail_start_ip = victim;
        pthread_mutex_unlock(&lock);
        events[0] = 0;
        buf_clear(&err);
        CHECK(pool_roll(p, "etcd@5", &err) == -POOL_EUNHEALTHY);
        CHECK(strstr(err.data, "refusing") && strstr(err.data, victim));
        CHECK(events[0] == 0 && p->n_members == 3);
        fail_start_ip = NULL;
        CHECK_OK(pool_roll_abort(p, &err));  /* restarts the member */
        check_clean(p);

        /* A member that cannot leave by itself is removed through a healthy one. */
        snprintf(leaver, sizeof(leaver), "%s", p->members[0].ip);
        fail_leave_ip = leaver;
        CHECK_OK(pool_roll(p, "etcd@6", &err));
        CHECK(strstr(events, "removed ") != NULL);
        check_clean(p);

        /* Status reports every member. */
        _cleanup_json_ json_t *st = NULL;
        CHECK_OK(pool_status(p, &st, &err));
        CHECK(json_array_size(json_object_get(st, "members")) == 3);
        CHECK(json_path_bool(st, "members.0.etcd.healthy"));
        CHECK_STREQ(json_path_string(st, "members.0.agent.outcome"), "done");

        CHECK_OK(pool_delete(p, &err));
        CHECK(access(dir, F_OK) == 0);
        pool_free(p);
        stop_server = 1;
        pthread_join(thread, NULL);
        CHECK_OK(rm_rf(dir));
        return 0;
}
