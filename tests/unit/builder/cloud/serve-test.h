/* Shared by the test-serve-*.c unit tests: a state dir with a cloud.json on free loopback ports,
 * a serve object running in a thread, a controllable clock, and small HTTP helpers over
 * lib/http.h. Static functions: each test binary includes it once. */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#include "check.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "serve.h"

/* A clock that stands still at the first reading plus test_clock_offset seconds, so tests move
 * time forward (token expiry) and get exact TTLs even when a real second passes mid-test. */
static _Atomic long long test_clock_offset;
static _Atomic long long test_clock_start;
static time_t test_now(void) {
        long long zero = 0;
        atomic_compare_exchange_strong(&test_clock_start, &zero, (long long) time(NULL));
        return (time_t) (test_clock_start + test_clock_offset);
}

typedef struct test_ports {
        uint16_t api, meta[3], vault[3];
} test_ports;

/* Distinct ports that were free a moment ago: bind them all to port 0 at once, then release. */
static void pick_ports(uint16_t *ports, size_t n) {
        int fds[16];
        CHECK(n <= ELEMENTSOF(fds));
        for (size_t i = 0; i < n; i++) {
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof(a);
                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                CHECK(fds[i] >= 0);
                CHECK(bind(fds[i], (struct sockaddr *) &a, sizeof(a)) == 0);
                CHECK(getsockname(fds[i], (struct sockaddr *) &a, &len) == 0);
                ports[i] = ntohs(a.sin_port);
        }
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
}

static void pick_test_ports(test_ports *p) {
        uint16_t all[7];
        pick_ports(all, ELEMENTSOF(all));
        p->api = all[0];
        for (int i = 0; i < 3; i++) {
                p->meta[i] = all[1 + i];
                p->vault[i] = all[4 + i];
        }
}

#define TEST_POOL "6d540f20-ac97-dd6a-5d67-cc11a5e224a5"
#define TEST_NET "ab8fbe95-72d4-0703-fcae-6401540d86ff"
#define TEST_API_KEY "EXOxxxxxxxxxxxxxxxxxxxxxxxx"
#define TEST_API_SECRET "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

/* Instances: i-1 and i-2 in the etcd pool (running); i-3 outside any pool. with_fourth: i-4, in
 * the pool, instead of i-3. The third instance uses p->meta[2] and p->vault[2]. */
static char *test_cloud_json(const test_ports *p, bool with_fourth) {
        char *s = NULL;
        CHECK(asprintf(&s,
                       "{\"zone\":\"local\",\"api_port\":%u,\"api_key\":\"" TEST_API_KEY "\","
                       "\"api_secret\":\"" TEST_API_SECRET "\",\"instances\":["
                       "{\"id\":\"i-1\",\"name\":\"etcd-1\",\"state\":\"running\",\"pool\":\"" TEST_POOL "\","
                       "\"private_ip\":\"10.0.0.11\",\"public_ip\":\"127.0.0.11\",\"security_groups\":[\"etcd\"],"
                       "\"labels\":{\"role\":\"etcd\"},\"user_data\":\"#!/bin/sh\\necho hi\\n\","
                       "\"metadata_port\":%u,\"vault_port\":%u},"
                       "{\"id\":\"i-2\",\"name\":\"etcd-2\",\"state\":\"running\",\"pool\":\"" TEST_POOL "\","
                       "\"private_ip\":\"10.0.0.12\",\"public_ip\":\"127.0.0.12\",\"security_groups\":[\"etcd\"],"
                       "\"labels\":{},\"metadata_port\":%u,\"vault_port\":%u},"
                       "{\"id\":\"%s\",\"name\":\"%s\",\"state\":\"running\",\"pool\":%s,"
                       "\"private_ip\":\"10.0.0.13\",\"public_ip\":\"127.0.0.13\",\"security_groups\":[\"etcd\"],"
                       "\"labels\":{},\"metadata_port\":%u,\"vault_port\":%u}],"
                       "\"pools\":[{\"id\":\"" TEST_POOL "\",\"name\":\"etcd\",\"size\":3,\"template\":\"etcd@1\","
                       "\"private_network\":\"" TEST_NET "\"}],"
                       "\"vault\":{\"roles\":{\"etcd\":{\"pool\":\"etcd\",\"security_group\":\"etcd\","
                       "\"policies\":[\"etcd\"],\"ttl\":3600},"
                       "\"short\":{\"pool\":\"etcd\",\"security_group\":\"etcd\",\"policies\":[\"etcd\"],"
                       "\"ttl\":600,\"max_ttl\":900}},"
                       "\"policies\":{\"etcd\":{\"secret/data/etcd/*\":[\"read\",\"create\",\"update\"],"
                       "\"secret/data/bootagent/*\":[\"read\"],\"pki/issue/etcd-peer\":[\"update\"],"
                       "\"pki/sign/etcd-peer\":[\"update\"],\"pki/sign/client\":[\"update\"],"
                       "\"pki/issue/client\":[\"update\"],"
                       "\"secret/data/scratch/*\":[\"read\",\"create\",\"update\",\"delete\",\"patch\"],"
                       "\"secret/metadata/scratch/*\":[\"read\",\"list\",\"delete\"]}},"
                       "\"pki_roles\":{\"etcd-peer\":{\"allowed_domains\":[\"etcd.local\"],\"allow_subdomains\":true,"
                       "\"allow_ip_sans\":true,\"allowed_uri_sans\":[\"spiffe://etcd.local/*\"],\"max_ttl\":86400},"
                       "\"client\":{\"allow_any_name\":true,\"organization\":[\"system:masters\",\"ops\"],"
                       "\"max_ttl\":3600}},"
                       "\"kv\":{\"bootagent/cloud-api\":{\"api_key\":\"k\",\"api_secret\":\"s\"}}}}",
                       p->api, p->meta[0], p->vault[0], p->meta[1], p->vault[1],
                       with_fourth ? "i-4" : "i-3", with_fourth ? "etcd-4" : "lone",
                       with_fourth ? "\"" TEST_POOL "\"" : "null", p->meta[2], p->vault[2]) >= 0);
        return s;
}

typedef struct test_server {
        char dir[64];
        test_ports ports;
        serve *s;
        pthread_t thread;
        volatile sig_atomic_t stop;
} test_server;

static void *server_thread(void *arg) {
        test_server *t = arg;
        CHECK_OK(serve_run(t->s, &t->stop));
        return NULL;
}

static void test_server_write_cloud(test_server *t, bool with_fourth) {
        _cleanup_free_ char *json = test_cloud_json(&t->ports, with_fourth), *path = NULL;
        CHECK(asprintf(&path, "%s/cloud.json", t->dir) >= 0);
        CHECK_OK(write_file_atomic(path, json, strlen(json), 0644, (uid_t) -1, (gid_t) -1));
}

static void test_server_start(test_server *t) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        int r = serve_new(t->dir, &t->s, &err);
        if (r < 0)
                fprintf(stderr, "serve_new: %s\n", err.data ? err.data : strerror(-r));
        CHECK_OK(r);
        t->s->state.now = test_now;
        t->stop = 0;
        CHECK(pthread_create(&t->thread, NULL, server_thread, t) == 0);
}

static void test_server_stop(test_server *t) {
        t->stop = 1;
        CHECK(pthread_join(t->thread, NULL) == 0);
        serve_free(t->s);
        t->s = NULL;
}

/* A fresh state dir with cloud.json, and a running server. */
static void test_server_setup(test_server *t) {
        snprintf(t->dir, sizeof(t->dir), "/tmp/test-serve-XXXXXX");
        CHECK(mkdtemp(t->dir));
        pick_test_ports(&t->ports);
        test_server_write_cloud(t, false);
        CHECK_OK(http_global_init());
        log_set_max_level(LOG_WARNING);
        test_server_start(t);
}

static void test_server_teardown(test_server *t) {
        test_server_stop(t);
        CHECK_OK(rm_rf(t->dir));
}

/* One request to 127.0.0.1:port. headers: NULL-terminated or NULL. Returns the status; the
 * parsed JSON body (if any) in *ret_json when not NULL, the raw body in *ret_body. */
static long request_full(const char *method, uint16_t port, const char *path, const char *body,
                         char *const *headers, json_t **ret_json, char **ret_body) {
        _cleanup_free_ char *url = NULL;
        http_response resp = {};
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK(asprintf(&url, "http://127.0.0.1:%u%s", port, path) >= 0);
        http_request req = { .method = method, .url = url, .headers = headers, .body = body,
                             .body_len = body ? strlen(body) : 0, .timeout_ms = 5000 };
        int r = http_do(&req, &resp, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.data);
        CHECK_OK(r);
        long status = resp.status;
        if (ret_json) {
                *ret_json = NULL;
                if (resp.body.len > 0)
                        (void) json_parse(resp.body.data, resp.body.len, ret_json, NULL);
        }
        if (ret_body)
                *ret_body = strdup(resp.body.data ? resp.body.data : "");
        http_response_free(&resp);
        return status;
}

/* A Vault request with an optional token. */
static long vault_request(const char *method, uint16_t port, const char *path, const char *token,
                          const char *body, json_t **ret_json) {
        _cleanup_free_ char *h = NULL;
        char *headers[3] = { (char *) "Content-Type: application/json", NULL, NULL };
        if (token) {
                CHECK(asprintf(&h, "X-Vault-Token: %s", token) >= 0);
                headers[1] = h;
        }
        return request_full(method, port, path, body, headers, ret_json, NULL);
}

/* Log in on instance idx's Vault port as role etcd; returns the token (caller frees). */
static char *vault_login_as(test_server *t, int idx, const char *instance) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *body = NULL;
        CHECK(asprintf(&body, "{\"role\":\"etcd\",\"instance\":\"%s\"}", instance) >= 0);
        CHECK(vault_request("POST", t->ports.vault[idx], "/v1/auth/exoscale/login", NULL, body, &j) == 200);
        const char *token = json_path_string(j, "auth.client_token");
        CHECK(token);
        return strdup(token);
}
