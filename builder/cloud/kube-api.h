/* The REST routes of the Kubernetes API stand-in (`imgbuild kube-apiserver`): version, health,
 * discovery, and create/get/list/update/patch/delete of namespaces, configmaps, secrets and
 * nodes (+status), with the Table form kubectl asks for. Authentication and authorization
 * (kube-auth.h) run on every request; objects live in etcd (kube-store.h).
 *
 * Also: pods (+status, +eviction honouring PodDisruptionBudgets: kube-pdb.h), PDBs
 * (policy/v1, status computed when read), CertificateSigningRequests (certificates.k8s.io/v1,
 * +status, +approval) with the auto-approver and kubelet client signer (kube-csr.h,
 * kube_api_run_controllers), ClusterRoleBindings, Roles and RoleBindings (rbac.authorization.k8s.io/v1,
 * named like path segments as upstream: "kubeadm:node-autoapprove-bootstrap"; stored, only the
 * approver reads them) and DaemonSets (apps/v1, stored only, for drain's owner lookup), and
 * watch (?watch=true: the collection polled from etcd every 250 ms and the differences sent as
 * ADDED/MODIFIED/DELETED events; changes between two polls collapse, no bookmarks).
 *
 * This is a stand-in for tests and for the embedded default, not kube-apiserver. Not served:
 * other kinds and groups (Roles, ClusterRoles, Deployments, ...), a scheduler (pods are created
 * bound, spec.nodeName set), graceful pod termination (delete and eviction remove at once),
 * server-side apply, JSON patch, OpenAPI documents, limit/continue (lists are answered whole),
 * admission beyond the few checks below, and the other controllers (namespace, node-lifecycle,
 * garbage collector, disruption controller: PDB status is computed on read). */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "etcd-client.h"
#include "http-server.h"

typedef struct kube_api {
        etcd_client *etcd;            /* borrowed */
        /* The kubelet client signer's CA (--cluster-signing-cert-file/-key-file), borrowed;
         * NULL: approved CSRs are not signed (as without kube-controller-manager's signer). */
        X509 *signing_cert;
        EVP_PKEY *signing_key;
        long signing_duration;        /* seconds; 0: KUBE_CSR_DEFAULT_DURATION */
        char **authorization_mode;    /* borrowed; the --authorization-mode values */
        bool bootstrap_token_auth;
        bool anonymous_auth;
        time_t (*now)(void);          /* NULL: time() (tests set a fixed clock) */
} kube_api;

/* The http_server handler (userdata: a kube_api). */
int kube_api_handle(const http_server_request *req, http_server_response *resp, void *userdata);

/* Create the namespaces a cluster starts with (default, kube-system, kube-public,
 * kube-node-lease) where they do not exist yet, as upstream's system-namespaces controller does.
 * Returns 0 or an error of kube-store.h (err says why). */
int kube_api_ensure_namespaces(kube_api *api, buf *err);

/* One round of the controllers the stand-in runs in kube-controller-manager's place: the CSR
 * auto-approver and the kubelet client signer (kube-csr.h) over every CSR, writing each change
 * with its resourceVersion (a CSR changed meanwhile waits for the next round). Returns the number
 * of CSRs changed, or an error of kube-store.h (err says why). */
int kube_api_run_controllers(kube_api *api, buf *err);

/* A metav1.Status for a failure (status "Failure", reason, code) into resp. For tests. */
int kube_api_status(http_server_response *resp, int code, const char *reason, const char *message);

/* RFC 7386 JSON merge patch of patch onto target (modified in place; target must be an object).
 * strategic: Kubernetes' strategic merge patch for the simple kinds served: lists of objects at
 * known paths (status.conditions and status.addresses by "type", spec.taints by "key") merge by
 * that key, `$patch: delete|replace` in maps and list elements is honoured, other `$` directives
 * are dropped; every other list is replaced. Returns 0, -EINVAL for a patch that is not an
 * object, -ENOMEM. */
int kube_api_patch(json_t *target, json_t *patch, bool strategic);

/* "5m3s" the way kubectl's Age column shows a duration (k8s.io/apimachinery duration.HumanDuration). */
void kube_api_human_duration(long long seconds, char out[32]);
