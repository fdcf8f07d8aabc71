/* Watch on the API stand-in (kube-api.c over a real etcd, which this test starts; skipped without
 * one), read with lib/kube-client's kube_watch, the client the agent uses: events since a
 * resourceVersion (what changed after a list: ADDED, DELETED), an event while the watch is open,
 * a field selector, the server-side timeout ending the stream, and a selector the stand-in does
 * not take (400 before the stream starts), and a watch cut when the server shuts down. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "etcd-client.h"
#include "fs.h"
#include "http-server.h"
#include "json.h"
#include "kube-api.h"
#include "kube-client.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

typedef struct server {
        http_server *h;
        kube_api api;
        pthread_t thread;
        volatile sig_atomic_t stop;
        int run_result;
        uint16_t port;
} server;

static void *server_thread(void *userdata) {
        server *s = userdata;
        s->run_result = http_server_run(s->h, &s->stop);
        return NULL;
}

static uint16_t free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0);
        CHECK(getsockname(fd, (struct sockaddr *) &a, &len) == 0);
        close(fd);
        return ntohs(a.sin_port);
}

static kube_client *client(uint16_t port) {
        char u[64];
        kube_client *k = NULL;
        snprintf(u, sizeof(u), "http://127.0.0.1:%u", port);
        CHECK_OK(kube_client_new(&(kube_client_config){ .server = u }, &k, NULL));
        return k;
}

static void post_node(kube_client *k, const char *name) {
        json_t *n = json_pack("{s:s,s:s,s:{s:s}}", "kind", "Node", "apiVersion", "v1", "metadata", "name", name);
        CHECK_OK(kube_post(k, "/api/v1/nodes", n, NULL, NULL));
        json_decref(n);
}

typedef struct events {
        char **got;
        size_t stop_after;
} events;

static int collect(const char *type, json_t *object, void *userdata) {
        events *e = userdata;
        CHECK_OK(strv_pushf(&e->got, "%s %s", type, strempty(json_path_string(object, "metadata.name"))));
        /* objects come whole, with kind and a resourceVersion */
        CHECK(json_path_string(object, "metadata.resourceVersion"));
        return strv_length(e->got) >= e->stop_after ? 1 : 0;
}

typedef struct later {
        uint16_t port;
        pthread_t thread;
} later;

static void *create_later(void *userdata) {
        later *l = userdata;
        time_sleep_ms(600);
        kube_client *k = client(l->port);
        post_node(k, "w-c");
        kube_client_free(k);
        return NULL;
}

typedef struct open_watch {
        uint16_t port;
        pthread_t thread;
        events events;
        int result;
} open_watch;

static void *watch_thread(void *userdata) {
        open_watch *w = userdata;
        kube_client *k = client(w->port);
        char *rv = NULL;
        w->events.stop_after = 1;
        /* from now: existing nodes are not replayed as ADDED (rv "" would), so it waits */
        json_t *list = NULL;
        CHECK_OK(kube_get(k, "/api/v1/nodes", &list, NULL));
        rv = strdup(json_path_string(list, "metadata.resourceVersion"));
        json_decref(list);
        w->result = kube_watch(k, "/api/v1/nodes", &rv, 30, collect, &w->events, NULL);
        free(rv);
        kube_client_free(k);
        return NULL;
}

int main(void) {
        char dir[] = "/tmp/test-kube-watch-XXXXXX";
        char etcd_url[64], peer_url[64], data_dir[128];
        server s = {};
        pid_t etcd_pid;
        int r;

        if (access("/usr/bin/etcd", X_OK) != 0 && access("/usr/local/bin/etcd", X_OK) != 0)
                TEST_SKIP("no etcd");
        CHECK(mkdtemp(dir));
        uint16_t ep = free_port(), pp = free_port();
        snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%u", ep);
        snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%u", pp);
        snprintf(data_dir, sizeof(data_dir), "%s/etcd", dir);
        _cleanup_free_ char *cluster = NULL;
        CHECK(asprintf(&cluster, "w=%s", peer_url) > 0);
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        spawn_options o = SPAWN_OPTIONS_DEFAULT;
        o.stdout_fd = o.stderr_fd = devnull;
        CHECK_OK(spawn_start(SPAWN_ARGV("etcd", "--name", "w", "--data-dir", data_dir, "--listen-client-urls", etcd_url,
                                        "--advertise-client-urls", etcd_url, "--listen-peer-urls", peer_url,
                                        "--initial-advertise-peer-urls", peer_url, "--initial-cluster", cluster),
                             &o, &etcd_pid));
        close(devnull);

        _cleanup_(etcd_client_freep) etcd_client *etcd = NULL;
        char *endpoints[] = { etcd_url, NULL };
        CHECK_OK(etcd_client_new(&(etcd_client_options){ .endpoints = endpoints, .timeout_ms = 1000 }, &etcd));
        for (int i = 0; i < 100 && (r = etcd_client_ping(etcd, "/registry/health", 500, NULL)) < 0; i++)
                time_sleep_ms(100);
        CHECK_OK(r);

        static char *const modes[] = { (char *) "AlwaysAllow", NULL };
        s.api = (kube_api){ .etcd = etcd, .authorization_mode = (char **) modes, .anonymous_auth = true };
        CHECK_OK(http_server_new(kube_api_handle, &s.api, &s.h));
        r = http_server_listen(s.h, "127.0.0.1", 0, "api");
        CHECK_OK(r);
        s.port = (uint16_t) r;
        CHECK(pthread_create(&s.thread, NULL, server_thread, &s) == 0);

        _cleanup_(kube_client_freep) kube_client *k = client(s.port);
        _cleanup_buf_ buf err = BUF_INIT(2048);
        json_t *list = NULL;

        /* changes after a list, seen by a watch from the list's resourceVersion */
        post_node(k, "w-a");
        CHECK_OK(kube_get(k, "/api/v1/nodes", &list, NULL));
        char *rv = strdup(json_path_string(list, "metadata.resourceVersion"));
        json_decref(list);
        post_node(k, "w-b");
        json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "x", "1");
        CHECK_OK(kube_patch(k, "/api/v1/nodes/w-a", KUBE_PATCH_MERGE, patch, NULL, NULL));
        json_decref(patch);
        CHECK_OK(kube_delete(k, "/api/v1/nodes/w-a", NULL, NULL, NULL));
        events e = { .stop_after = 2 };
        r = kube_watch(k, "/api/v1/nodes", &rv, 5, collect, &e, &err);
        if (r != 1)
                fprintf(stderr, "watch: %d %s\n", r, strempty(err.data));
        CHECK(r == 1);
        strv_sort(e.got);
        _cleanup_free_ char *joined = strv_join(e.got, "|");
        CHECK_STREQ(joined, "ADDED w-b|DELETED w-a");
        strv_free(e.got);

        /* an event while the watch is open, and only what the field selector selects */
        later l = { .port = s.port };
        CHECK(pthread_create(&l.thread, NULL, create_later, &l) == 0);
        e = (events){ .stop_after = 1 };
        int64_t t0 = time_now_ms();
        r = kube_watch(k, "/api/v1/nodes?fieldSelector=metadata.name%3Dw-c", &rv, 10, collect, &e, &err);
        CHECK(pthread_join(l.thread, NULL) == 0);
        CHECK(r == 1);
        CHECK_STREQ(e.got[0], "ADDED w-c");
        CHECK(time_now_ms() - t0 >= 500); /* it came when it happened, not from the past */
        strv_free(e.got);

        /* nothing happens: the server ends the stream at timeoutSeconds, and the client may
         * watch again from where it was */
        e = (events){ .stop_after = 1 };
        t0 = time_now_ms();
        CHECK(kube_watch(k, "/api/v1/nodes", &rv, 1, collect, &e, &err) == 0);
        CHECK(!e.got);
        CHECK(time_now_ms() - t0 >= 900);

        /* a selector the stand-in does not take: refused before the stream starts */
        buf_clear(&err);
        CHECK(kube_watch(k, "/api/v1/nodes?fieldSelector=spec.podCIDR%3Dx", &rv, 1, collect, &e, &err) == -EBADR);
        CHECK(strstr(strempty(err.data), "not supported by this stand-in"));
        free(rv);

        /* a watch still open when the server shuts down: the stream is cut (its connection was
         * suspended, waiting for events), the client is told, nothing hangs or leaks */
        open_watch ow = { .port = s.port };
        CHECK(pthread_create(&ow.thread, NULL, watch_thread, &ow) == 0);
        time_sleep_ms(700);
        s.stop = 1;
        CHECK(pthread_join(s.thread, NULL) == 0);
        CHECK_OK(s.run_result);
        http_server_free(s.h);
        CHECK(pthread_join(ow.thread, NULL) == 0);
        CHECK(ow.result < 0);
        CHECK(!ow.events.got);

        kill(etcd_pid, SIGTERM);
        int status;
        CHECK_OK(spawn_wait(etcd_pid, &status));
        CHECK_OK(rm_rf(dir));
        return 0;
}
