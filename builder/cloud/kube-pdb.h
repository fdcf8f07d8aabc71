/* PodDisruptionBudgets in the API stand-in: label selectors, pod health, and the status
 * kube-controller-manager's disruption controller computes (pkg/controller/disruption/
 * disruption.go), computed here from the pods whenever a PDB is read or an eviction is decided,
 * not kept by a controller.
 *
 * Stand-in differences: there is no scale subresource to ask, so the expected pod count is always
 * the number of pods the selector matches (upstream uses the owning controllers' replicas for a
 * percentage minAvailable or any maxUnavailable); status.disruptedPods is not kept, as an
 * eviction deletes the pod at once (no graceful termination). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Whether labels (an object of strings, or NULL) match selector, a metav1.LabelSelector:
 * matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist), all of them. An empty
 * selector ({}) matches everything, a missing one (NULL / JSON null) nothing, as policy/v1 PDBs
 * have it. Returns 1, 0, or -EINVAL for a malformed selector (unknown operator, In without
 * values, values that are not strings). */
int kube_selector_match(json_t *selector, json_t *labels);

/* A pod is healthy when it is not being deleted and its Ready condition is "True" (upstream's
 * IsPodReady), which a kubelet (or a test) sets through pods/NAME/status. */
bool kube_pod_healthy(json_t *pod);

typedef struct kube_pdb_status {
        int64_t expected_pods;
        int64_t current_healthy;
        int64_t desired_healthy;
        int64_t disruptions_allowed;
} kube_pdb_status;

/* The status of pdb over pods (the pods of its namespace, an array): the matching pods, how many
 * are healthy, the desired count from spec.minAvailable (integer, or "N%" of the expected pods,
 * rounded up) or spec.maxUnavailable (expected minus it, "N%" rounded up), and
 * disruptionsAllowed = max(0, healthy - desired). Returns 0, -EINVAL for a malformed spec (both
 * or neither of the two, a bad percentage, a negative value, a bad selector). */
int kube_pdb_compute(json_t *pdb, json_t *pods, kube_pdb_status *ret);

/* Set pdb's status (observedGeneration, disruptionsAllowed, currentHealthy, desiredHealthy,
 * expectedPods, the DisruptionAllowed condition) from s. Returns 0 or -ENOMEM. */
int kube_pdb_set_status(json_t *pdb, const kube_pdb_status *s, const char *now);
