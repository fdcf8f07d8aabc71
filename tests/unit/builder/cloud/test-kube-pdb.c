/* The stand-in's PodDisruptionBudget arithmetic (kube-pdb.c): label selectors (matchLabels,
 * matchExpressions, empty and missing), pod health, and currentHealthy / desiredHealthy /
 * disruptionsAllowed for integer and percentage minAvailable and maxUnavailable. */
#include "check.h"
#include "json.h"
#include "kube-pdb.h"

static json_t *pod(const char *app, const char *ready, bool deleting) {
        json_t *p = json_pack("{s:{s:{s:s}},s:{s:s}}", "metadata", "labels", "app", app, "status", "phase", "Running");
        if (ready)
                json_object_set_new(json_object_get(p, "status"), "conditions",
                                    json_pack("[{s:s,s:s},{s:s,s:s}]", "type", "PodScheduled", "status", "True", "type",
                                              "Ready", "status", ready));
        if (deleting)
                json_object_set_new(json_object_get(p, "metadata"), "deletionTimestamp", json_string("2026-01-01T00:00:00Z"));
        return p;
}

static json_t *pdb(const char *spec_json) {
        json_t *spec = NULL;
        CHECK_OK(json_parse(spec_json, strlen(spec_json), &spec, NULL));
        return json_pack("{s:{s:s,s:i},s:o}", "metadata", "name", "p", "generation", 3, "spec", spec);
}

static void check_status(const char *spec, json_t *pods, int64_t expected, int64_t healthy, int64_t desired,
                         int64_t allowed) {
        json_t *p = pdb(spec);
        kube_pdb_status s;
        CHECK_OK(kube_pdb_compute(p, pods, &s));
        if (s.expected_pods != expected || s.current_healthy != healthy || s.desired_healthy != desired ||
            s.disruptions_allowed != allowed) {
                fprintf(stderr, "%s: got %lld/%lld/%lld/%lld\n", spec, (long long) s.expected_pods,
                        (long long) s.current_healthy, (long long) s.desired_healthy, (long long) s.disruptions_allowed);
                CHECK(!"pdb status");
        }
        json_decref(p);
}

static void test_selector(void) {
        json_t *labels = json_pack("{s:s,s:s}", "app", "web", "tier", "front");
        struct { const char *sel; int want; } cases[] = {
                { "{}", 1 },
                { "null", 0 },
                { "{\"matchLabels\":{\"app\":\"web\"}}", 1 },
                { "{\"matchLabels\":{\"app\":\"web\",\"tier\":\"back\"}}", 0 },
                { "{\"matchLabels\":{\"zone\":\"a\"}}", 0 },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"back\",\"front\"]}]}", 1 },
                { "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"front\"]}]}", 0 },
                { "{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}", 1 },
                { "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Exists\"}]}", 1 },
                { "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"DoesNotExist\"}]}", 0 },
                { "{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"Exists\"}]}", 0 },
                { "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[]}]}", -EINVAL },
                { "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}", -EINVAL },
                { "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}", -EINVAL },
                { "{\"matchLabels\":{\"app\":1}}", -EINVAL },
                { "[]", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *sel = NULL;
                CHECK_OK(json_parse(cases[i].sel, strlen(cases[i].sel), &sel, NULL));
                int m = kube_selector_match(sel, labels);
                if (m != cases[i].want) {
                        fprintf(stderr, "%s: %d\n", cases[i].sel, m);
                        CHECK(!"selector");
                }
                json_decref(sel);
        }
        CHECK(kube_selector_match(NULL, labels) == 0);
        json_t *empty = json_object();
        CHECK(kube_selector_match(empty, NULL) == 1);
        json_decref(empty);
        json_decref(labels);
}

static void test_health(void) {
        json_t *p = pod("web", "True", false);
        CHECK(kube_pod_healthy(p));
        json_decref(p);
        p = pod("web", "False", false);
        CHECK(!kube_pod_healthy(p));
        json_decref(p);
        p = pod("web", NULL, false); /* no Ready condition: a pod the kubelet has not reported */
        CHECK(!kube_pod_healthy(p));
        json_decref(p);
        p = pod("web", "True", true); /* being deleted */
        CHECK(!kube_pod_healthy(p));
        json_decref(p);
}

static void test_status(void) {
        /* four web pods (three ready), one db pod */
        json_t *pods = json_pack("[o,o,o,o,o]", pod("web", "True", false), pod("web", "True", false),
                                 pod("web", "True", false), pod("web", "False", false), pod("db", "True", false));
        const char *sel = "\"selector\":{\"matchLabels\":{\"app\":\"web\"}}";
        char spec[256];
#define SPEC(...) (snprintf(spec, sizeof(spec), "{" __VA_ARGS__ ",%s}", sel), spec)
        check_status(SPEC("\"minAvailable\":1"), pods, 4, 3, 1, 2);
        check_status(SPEC("\"minAvailable\":3"), pods, 4, 3, 3, 0);
        check_status(SPEC("\"minAvailable\":5"), pods, 4, 3, 5, 0);   /* never negative */
        check_status(SPEC("\"minAvailable\":\"50%%\""), pods, 4, 3, 2, 1);
        check_status(SPEC("\"minAvailable\":\"60%%\""), pods, 4, 3, 3, 0); /* 2.4 rounds up */
        check_status(SPEC("\"maxUnavailable\":1"), pods, 4, 3, 3, 0);
        check_status(SPEC("\"maxUnavailable\":2"), pods, 4, 3, 2, 1);
        check_status(SPEC("\"maxUnavailable\":\"25%%\""), pods, 4, 3, 3, 0);
        check_status(SPEC("\"maxUnavailable\":9"), pods, 4, 3, 0, 3);
        check_status("{\"minAvailable\":1,\"selector\":{}}", pods, 5, 4, 1, 3); /* empty: every pod */
        check_status("{\"minAvailable\":0}", pods, 0, 0, 0, 0);                /* none: no pod */

        /* malformed: both, neither, negative, bad percentages, a bad selector */
        static const char *const bad[] = {
                "{\"minAvailable\":1,\"maxUnavailable\":1,\"selector\":{}}",
                "{\"selector\":{}}",
                "{\"minAvailable\":-1,\"selector\":{}}",
                "{\"minAvailable\":\"x%\",\"selector\":{}}",
                "{\"minAvailable\":\"50\",\"selector\":{}}",
                "{\"maxUnavailable\":\"%\",\"selector\":{}}",
                "{\"minAvailable\":1,\"selector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *p = pdb(bad[i]);
                kube_pdb_status s;
                CHECK(kube_pdb_compute(p, pods, &s) == -EINVAL);
                json_decref(p);
        }

        /* the status object as the API shows it */
        json_t *p = pdb(SPEC("\"minAvailable\":3"));
        kube_pdb_status s;
        CHECK_OK(kube_pdb_compute(p, pods, &s));
        CHECK_OK(kube_pdb_set_status(p, &s, "2026-01-01T00:00:00Z"));
        _cleanup_free_ char *text = json_dump_compact(json_object_get(p, "status"));
        CHECK_STREQ(text, "{\"conditions\":[{\"lastTransitionTime\":\"2026-01-01T00:00:00Z\",\"message\":\"\",\"observedGeneration\":3,"
                          "\"reason\":\"InsufficientPods\",\"status\":\"False\",\"type\":\"DisruptionAllowed\"}],"
                          "\"currentHealthy\":3,\"desiredHealthy\":3,\"disruptionsAllowed\":0,\"expectedPods\":4,\"observedGeneration\":3}");
        json_decref(p);
        json_decref(pods);
}

int main(void) {
        test_selector();
        test_health();
        test_status();
        return 0;
}
