/* The pure part of pool-kube.c, without a server: which pods a drain evicts and which it leaves
 * (kubectl drain's daemonSetFilter and mirrorPodFilter: a DaemonSet controller, unless the pod is
 * finished; the mirror annotation whatever the phase; a DaemonSet owner that is not the controller
 * does not count), the plan over a pod list (order, counts, UIDs, malformed lists), and the
 * "ns/pod: message" line taken from kube-client's 429 error. */
#include <errno.h>

#include "check.h"
#include "json.h"
#include "pool-kube.h"

static json_t *parse(const char *text) {
        json_t *j = NULL;
        CHECK_OK(json_parse(text, strlen(text), &j, NULL));
        return j;
}

static void test_classify(void) {
        static const struct {
                const char *pod;
                pool_kube_pod_verdict want;
        } cases[] = {
                /* a ReplicaSet's pod */
                { "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"default\",\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"controller\":true}]},\"status\":{\"phase\":\"Running\"}}",
                  POOL_KUBE_POD_EVICT },
                /* a DaemonSet's pod, running or pending */
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]},\"status\":{\"phase\":\"Running\"}}",
                  POOL_KUBE_POD_SKIP_DAEMONSET },
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]}}",
                  POOL_KUBE_POD_SKIP_DAEMONSET },
                /* ... but a finished one goes, as kubectl's "any finished pod can be removed" */
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]},\"status\":{\"phase\":\"Failed\"}}",
                  POOL_KUBE_POD_EVICT },
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]},\"status\":{\"phase\":\"Succeeded\"}}",
                  POOL_KUBE_POD_EVICT },
                /* a DaemonSet owner that is not the controller (GetControllerOf ignores it) */
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\"}]},\"status\":{\"phase\":\"Running\"}}",
                  POOL_KUBE_POD_EVICT },
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":false},{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"controller\":true}]}}",
                  POOL_KUBE_POD_EVICT },
                /* the controller is what counts, wherever it is in the list */
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":\"ConfigMap\",\"name\":\"x\"},{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]}}",
                  POOL_KUBE_POD_SKIP_DAEMONSET },
                /* mirror pods: the annotation, any value, any phase */
                { "{\"metadata\":{\"name\":\"s\",\"namespace\":\"kube-system\",\"annotations\":{\"kubernetes.io/config.mirror\":\"0123abcd\"}},\"status\":{\"phase\":\"Running\"}}",
                  POOL_KUBE_POD_SKIP_MIRROR },
                { "{\"metadata\":{\"name\":\"s\",\"namespace\":\"kube-system\",\"annotations\":{\"kubernetes.io/config.mirror\":\"\"}},\"status\":{\"phase\":\"Succeeded\"}}",
                  POOL_KUBE_POD_SKIP_MIRROR },
                { "{\"metadata\":{\"name\":\"s\",\"namespace\":\"kube-system\",\"annotations\":{\"kubernetes.io/config.source\":\"file\"}}}",
                  POOL_KUBE_POD_EVICT },
                /* no controller at all (kubectl wants --force; a pool drains the node anyway), finished */
                { "{\"metadata\":{\"name\":\"bare\",\"namespace\":\"default\"}}", POOL_KUBE_POD_EVICT },
                { "{\"metadata\":{\"name\":\"job-1\",\"namespace\":\"default\",\"ownerReferences\":[{\"kind\":\"Job\",\"name\":\"j\",\"controller\":true}]},\"status\":{\"phase\":\"Succeeded\"}}",
                  POOL_KUBE_POD_EVICT },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *pod = parse(cases[i].pod);
                pool_kube_pod_verdict got = pool_kube_pod_classify(pod);
                if (got != cases[i].want) {
                        fprintf(stderr, "case %zu: got %d, want %d: %s\n", i, (int) got, (int) cases[i].want, cases[i].pod);
                        CHECK(!"classify");
                }
                json_decref(pod);
        }
}

static void test_plan(void) {
        json_t *items = parse(
                "["
                "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"default\",\"uid\":\"u1\",\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"controller\":true}]},\"status\":{\"phase\":\"Running\"}},"
                "{\"metadata\":{\"name\":\"agent-n1\",\"namespace\":\"default\",\"uid\":\"u2\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]},\"status\":{\"phase\":\"Running\"}},"
                "{\"metadata\":{\"name\":\"static-n1\",\"namespace\":\"kube-system\",\"uid\":\"u3\",\"annotations\":{\"kubernetes.io/config.mirror\":\"x\"}}},"
                "{\"metadata\":{\"name\":\"cache-1\",\"namespace\":\"team\"},\"status\":{\"phase\":\"Pending\"}},"
                "{\"metadata\":{\"name\":\"agent-old\",\"namespace\":\"default\",\"uid\":\"u5\",\"ownerReferences\":[{\"kind\":\"DaemonSet\",\"name\":\"agent\",\"controller\":true}]},\"status\":{\"phase\":\"Failed\"}}"
                "]");
        pool_drain_plan p = {};
        CHECK_OK(pool_kube_drain_plan(items, &p));
        CHECK(p.n_evict == 3);
        CHECK(p.skipped_daemonset == 1);
        CHECK(p.skipped_mirror == 1);
        CHECK_STREQ(p.evict[0].namespace, "default");
        CHECK_STREQ(p.evict[0].name, "web-1");
        CHECK_STREQ(p.evict[0].uid, "u1");
        CHECK_STREQ(p.evict[1].namespace, "team");
        CHECK_STREQ(p.evict[1].name, "cache-1");
        CHECK(p.evict[1].uid == NULL);
        CHECK_STREQ(p.evict[2].name, "agent-old");
        pool_drain_plan_done(&p);
        CHECK(p.evict == NULL && p.n_evict == 0 && p.skipped_daemonset == 0);
        pool_drain_plan_done(&p); /* twice: harmless */
        json_decref(items);

        /* an empty list: nothing to do */
        items = json_array();
        CHECK_OK(pool_kube_drain_plan(items, &p));
        CHECK(p.n_evict == 0 && p.evict == NULL && p.skipped_daemonset == 0 && p.skipped_mirror == 0);
        pool_drain_plan_done(&p);
        json_decref(items);

        /* only skipped pods */
        items = parse("[{\"metadata\":{\"name\":\"s\",\"namespace\":\"kube-system\",\"annotations\":{\"kubernetes.io/config.mirror\":\"x\"}}}]");
        CHECK_OK(pool_kube_drain_plan(items, &p));
        CHECK(p.n_evict == 0 && p.skipped_mirror == 1);
        pool_drain_plan_done(&p);
        json_decref(items);

        /* malformed: not an array, a pod without a namespace or name; *ret untouched */
        static const char *const bad[] = {
                "{\"items\":[]}",
                "null",
                "[{\"metadata\":{\"name\":\"x\"}}]",
                "[{\"metadata\":{\"namespace\":\"d\"}}]",
                "[{\"metadata\":{\"name\":\"\",\"namespace\":\"d\"}}]",
                "[{\"metadata\":{\"name\":\"ok\",\"namespace\":\"d\"}},{\"metadata\":{\"name\":7,\"namespace\":\"d\"}}]",
                "[42]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                pool_drain_plan q = { .skipped_mirror = 99 };
                items = parse(bad[i]);
                int r = pool_kube_drain_plan(items, &q);
                if (r != -EBADMSG) {
                        fprintf(stderr, "bad case %zu: %d: %s\n", i, r, bad[i]);
                        CHECK(!"malformed list accepted");
                }
                CHECK(q.skipped_mirror == 99 && q.evict == NULL);
                json_decref(items);
        }
}

static void test_blocked_message(void) {
        char *m = pool_kube_blocked_message(
                "default", "web-1",
                "POST https://127.0.0.1:4002/api/v1/namespaces/default/pods/web-1/eviction: HTTP 429 TooManyRequests: "
                "Cannot evict pod as it would violate the pod's disruption budget. (causes: The disruption budget "
                "web-pdb needs 2 healthy pods and has 2 currently)");
        CHECK_STREQ(m, "default/web-1: Cannot evict pod as it would violate the pod's disruption budget. (causes: "
                       "The disruption budget web-pdb needs 2 healthy pods and has 2 currently)");
        free(m);
        /* no reason, a message */
        m = pool_kube_blocked_message("ns", "p", "POST http://h/x: HTTP 429: too many requests");
        CHECK_STREQ(m, "ns/p: too many requests");
        free(m);
        /* not a Status: the quoted body stays, "HTTP 429" kept as the message */
        m = pool_kube_blocked_message("ns", "p", "POST http://h/x: HTTP 429 (causes: x: y)");
        CHECK_STREQ(m, "ns/p: HTTP 429 (causes: x: y)");
        free(m);
        m = pool_kube_blocked_message("ns", "p", "something else");
        CHECK_STREQ(m, "ns/p: something else");
        free(m);
        m = pool_kube_blocked_message("ns", "p", NULL);
        CHECK_STREQ(m, "ns/p: ");
        free(m);
}

static void test_report_done(void) {
        pool_drain_report r = { .evicted = 3, .blocked = strdup("default/web-1: blocked") };
        CHECK(r.blocked);
        pool_drain_report_done(&r);
        CHECK(r.blocked == NULL && r.evicted == 0);
        pool_drain_report_done(NULL);
}

int main(void) {
        test_classify();
        test_plan();
        test_blocked_message();
        test_report_done();
        return 0;
}
