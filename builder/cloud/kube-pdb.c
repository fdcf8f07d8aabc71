/* PodDisruptionBudget arithmetic of the API stand-in (kube-pdb.h). */
#include "kube-pdb.h"

#include <errno.h>
#include <limits.h>

#include "json.h"
#include "macro.h"

static bool in_values(json_t *values, const char *v) {
        size_t i;
        json_t *x;
        json_array_foreach(values, i, x)
                if (streq(json_string_value(x), v))
                        return true;
        return false;
}

int kube_selector_match(json_t *selector, json_t *labels) {
        const char *k;
        json_t *v;
        size_t i;

        if (!selector || json_is_null(selector))
                return 0;
        if (!json_is_object(selector))
                return -EINVAL;
        json_t *ml = json_object_get(selector, "matchLabels");
        if (ml && !json_is_object(ml) && !json_is_null(ml))
                return -EINVAL;
        json_object_foreach(ml, k, v) {
                const char *have = json_string_value(json_object_get(labels, k));
                if (!json_is_string(v))
                        return -EINVAL;
                if (!have || !streq(have, json_string_value(v)))
                        return 0;
        }
        json_t *exprs = json_object_get(selector, "matchExpressions");
        if (exprs && !json_is_array(exprs) && !json_is_null(exprs))
                return -EINVAL;
        json_array_foreach(exprs, i, v) {
                const char *key = json_string_value(json_object_get(v, "key"));
                const char *op = json_string_value(json_object_get(v, "operator"));
                json_t *values = json_object_get(v, "values");
                size_t j;
                json_t *x;
                if (!key || !op || (values && !json_is_array(values) && !json_is_null(values)))
                        return -EINVAL;
                json_array_foreach(values, j, x)
                        if (!json_is_string(x))
                                return -EINVAL;
                const char *have = json_string_value(json_object_get(labels, key));
                bool m;
                if (streq(op, "In") || streq(op, "NotIn")) {
                        if (json_array_size(values) == 0)
                                return -EINVAL;
                        m = have && in_values(values, have);
                        if (streq(op, "NotIn"))
                                m = !m;
                } else if (streq(op, "Exists") || streq(op, "DoesNotExist")) {
                        if (json_array_size(values) > 0)
                                return -EINVAL;
                        m = streq(op, "Exists") ? have != NULL : have == NULL;
                } else
                        return -EINVAL;
                if (!m)
                        return 0;
        }
        return 1;
}

bool kube_pod_healthy(json_t *pod) {
        size_t i;
        json_t *c;
        if (json_path(pod, "metadata.deletionTimestamp"))
                return false;
        json_array_foreach(json_path(pod, "status.conditions"), i, c) {
                const char *t = json_string_value(json_object_get(c, "type"));
                const char *s = json_string_value(json_object_get(c, "status"));
                if (t && streq(t, "Ready"))
                        return s && streq(s, "True");
        }
        return false;
}

/* An IntOrString: an integer >= 0, or "N%" (0..100 not required upstream beyond >= 0) scaled to
 * total, rounded up. Returns 0 or -EINVAL. */
static int int_or_percent(json_t *v, int64_t total, int64_t *ret) {
        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return -EINVAL;
                *ret = json_integer_value(v);
                return 0;
        }
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;
        int64_t p = 0;
        if (n < 2 || n > 10 || s[n - 1] != '%')
                return -EINVAL;
        for (size_t i = 0; i < n - 1; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                p = p * 10 + (s[i] - '0');
        }
        *ret = (p * total + 99) / 100;
        return 0;
}

int kube_pdb_compute(json_t *pdb, json_t *pods, kube_pdb_status *ret) {
        json_t *selector = json_path(pdb, "spec.selector");
        json_t *min = json_path(pdb, "spec.minAvailable"), *max = json_path(pdb, "spec.maxUnavailable");
        kube_pdb_status s = {};
        size_t i;
        json_t *pod;

        if (json_is_null(min))
                min = NULL;
        if (json_is_null(max))
                max = NULL;
        if (!min == !max)
                return -EINVAL;
        json_array_foreach(pods, i, pod) {
                int m = kube_selector_match(selector, json_path(pod, "metadata.labels"));
                if (m < 0)
                        return m;
                if (!m)
                        continue;
                s.expected_pods++;
                if (kube_pod_healthy(pod))
                        s.current_healthy++;
        }
        if (min) {
                if (int_or_percent(min, s.expected_pods, &s.desired_healthy) < 0)
                        return -EINVAL;
        } else {
                int64_t unavailable;
                if (int_or_percent(max, s.expected_pods, &unavailable) < 0)
                        return -EINVAL;
                s.desired_healthy = s.expected_pods - unavailable;
                if (s.desired_healthy < 0)
                        s.desired_healthy = 0;
        }
        s.disruptions_allowed = s.current_healthy - s.desired_healthy;
        if (s.disruptions_allowed < 0)
                s.disruptions_allowed = 0;
        *ret = s;
        return 0;
}

int kube_pdb_set_status(json_t *pdb, const kube_pdb_status *s, const char *now) {
        json_t *gen = json_path(pdb, "metadata.generation");
        bool allowed = s->disruptions_allowed > 0;
        json_t *st = json_pack("{s:I,s:I,s:I,s:I,s:I,s:[{s:s,s:s,s:s,s:s,s:I,s:s}]}", "observedGeneration",
                               (json_int_t) (json_is_integer(gen) ? json_integer_value(gen) : 1),
                               "disruptionsAllowed", (json_int_t) s->disruptions_allowed, "currentHealthy",
                               (json_int_t) s->current_healthy, "desiredHealthy", (json_int_t) s->desired_healthy,
                               "expectedPods", (json_int_t) s->expected_pods, "conditions", "type",
                               "DisruptionAllowed", "status", allowed ? "True" : "False", "reason",
                               allowed ? "SufficientPods" : "InsufficientPods", "message", "",
                               "observedGeneration",
                               (json_int_t) (json_is_integer(gen) ? json_integer_value(gen) : 1),
                               "lastTransitionTime", now);
        if (!st || json_object_set_new(pdb, "status", st) < 0)
                return -ENOMEM;
        return 0;
}
