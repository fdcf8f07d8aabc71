/* What the node and control-plane pool roles need from the Kubernetes API: a Node's state, cordon,
 * drain through the eviction API (PodDisruptionBudgets honoured), deleting the Node, /readyz.
 * A leaf: it uses only lib/ (kube-client), so the pool core and the roles depend on it, never the
 * other way. Nothing here logs; errors are a negative errno plus one line in err (may be NULL;
 * appended to), kube-client's mapping (429 -EBUSY, 404 -ENOENT, ...) unless said otherwise.
 *
 * Drain follows kubectl drain --ignore-daemonsets --delete-emptydir-data --force
 * (staging/src/k8s.io/kubectl/pkg/drain/filters.go, ../shared/reference/kubernetes-vault.md C.4):
 * a pod whose controller (the ownerReference with controller: true) is a DaemonSet is skipped
 * unless it is finished, a mirror pod (annotation kubernetes.io/config.mirror) is always skipped,
 * every other pod bound to the node is evicted, finished ones (Succeeded / Failed) included: the
 * server lets those go without asking the budgets, and a pod left bound to a Node that is then
 * deleted would be an orphan. */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "kube-client.h"

typedef struct pool_kube_node {
        bool exists, ready, unschedulable;   /* Node object present; Ready condition "True"; spec.unschedulable */
        unsigned pods;                       /* pods bound to it that a drain would evict (pool_kube_drain_plan():
                                              * not DaemonSet-managed unless finished, not mirror) */
        unsigned daemonset_pods, mirror_pods; /* pods bound to it that a drain leaves */
} pool_kube_node;

/* The state of Node node and the pods bound to it (listed even when the Node is missing: pods
 * may outlive their Node). Returns 0 and *ret (exists false and the rest zero but the pod counts
 * when the Node is not there), or kube-client's errors (*ret untouched). */
int pool_kube_node_get(kube_client *k, const char *node, pool_kube_node *ret, buf *err);

/* Cordon (unschedulable true) or uncordon (false) node: a merge patch of spec.unschedulable,
 * true, or null to drop the field as kubectl uncordon does. Idempotent. Returns 0, -ENOENT for
 * a missing Node, kube-client's other errors. */
int pool_kube_cordon(kube_client *k, const char *node, bool unschedulable, buf *err);

typedef struct pool_drain_report {
        /* evicted: evictions accepted; skipped_*: pods left (pool_kube_drain_plan()); blocked_retries:
         * evictions refused with 429 (each one then asked again after retry_ms, until the deadline) */
        unsigned evicted, skipped_daemonset, skipped_mirror, blocked_retries;
        unsigned gone;   /* pods that were gone before their eviction was accepted (404) */
        char *blocked;   /* the last "ns/pod: <server's 429 message>" that blocked, or NULL; owned */
} pool_drain_report;

/* Free r's strings and zero it (r itself is the caller's). */
void pool_drain_report_done(pool_drain_report *r);

/* Cordon node, then evict every pod bound to it (fieldSelector spec.nodeName=NODE across namespaces) through
 * POST /api/v1/namespaces/NS/pods/NAME/eviction (policy/v1 Eviction), skipping DaemonSet-owned pods
 * and mirror pods as kubectl drain does (the header comment above says which); a 429 (PDB) is retried
 * every retry_ms until deadline_ms (absolute, time_now_ms() clock); then wait until those pods are gone
 * (404, or a new UID under the name), looked at every second (or retry_ms when shorter).
 * An eviction answered 404 means the pod is already gone: success (counted in gone).
 * Returns 0; -ETIMEDOUT with err naming the pod and the budget that blocked ("drain of node n2 blocked for
 * 30 s: default/web-1: Cannot evict pod as it would violate the pod's disruption budget. (causes: The
 * disruption budget web-pdb needs 1 healthy pods and has 1 currently)") or the pods still there ("drain of
 * node n2: 2 evicted pods still there after 30 s: default/web-1, ..."); -ECANCELED when *cancel becomes
 * non-zero (checked before every request and at least every TIME_CANCEL_SLICE_MS while waiting; a request
 * in flight ends first, within the client's timeout; cancel may be NULL); -EINVAL for retry_ms <= 0;
 * -EBADMSG for a pod list that is not one; other errors as kube-client's (the node missing: -ENOENT from the
 * cordon). *ret (may be NULL) is zeroed first and says what was done also when the drain fails; the caller
 * calls pool_drain_report_done() in any case. */
int pool_kube_drain(kube_client *k, const char *node, long deadline_ms, long retry_ms,
                    const volatile sig_atomic_t *cancel, pool_drain_report *ret, buf *err);

/* DELETE /api/v1/nodes/NODE. Returns 0 (also when the Node is not there), kube-client's errors. */
int pool_kube_delete_node(kube_client *k, const char *node, buf *err);

/* GET /readyz. Returns 0 when it answers "ok" (trailing white space ignored), -EPROTO for another
 * 2xx body (quoted in err, cut to 100 bytes), kube-client's errors (an apiserver whose etcd is
 * down answers 500: -EIO). */
int pool_kube_readyz(kube_client *k, buf *err);

/* ---- the pure part, exposed for tests ---- */

typedef enum pool_kube_pod_verdict {
        POOL_KUBE_POD_EVICT,
        POOL_KUBE_POD_SKIP_DAEMONSET,
        POOL_KUBE_POD_SKIP_MIRROR,
} pool_kube_pod_verdict;

/* What a drain does with pod (a v1 Pod object), by the rules in the header comment. */
pool_kube_pod_verdict pool_kube_pod_classify(json_t *pod);

typedef struct pool_kube_pod_ref {
        char *namespace, *name, *uid;   /* owned; uid may be NULL when the object has none */
} pool_kube_pod_ref;

typedef struct pool_drain_plan {
        pool_kube_pod_ref *evict;   /* owned array of n_evict, in the list's order */
        size_t n_evict;
        unsigned skipped_daemonset, skipped_mirror;
} pool_drain_plan;

/* The plan for items (a PodList's "items" array, the pods of one node): which to evict, how many
 * are skipped. Returns 0 and *ret (free with pool_drain_plan_done()), -EBADMSG when items is not
 * an array or a pod lacks a string metadata.name or metadata.namespace (*ret untouched), -ENOMEM. */
int pool_kube_drain_plan(json_t *items, pool_drain_plan *ret);

/* Free p's array and strings and zero it. */
void pool_drain_plan_done(pool_drain_plan *p);

/* "ns/pod: <message>" from kube-client's error line for a refused eviction ("POST <url>: HTTP 429
 * TooManyRequests: <message> (causes: ...)"): the text after the status and reason, causes kept;
 * the whole line when it has no such prefix. Returns a new string or NULL (out of memory). */
char *pool_kube_blocked_message(const char *ns, const char *pod, const char *err_line);
