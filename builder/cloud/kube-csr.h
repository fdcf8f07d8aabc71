/* CertificateSigningRequests in the Kubernetes API stand-in: what kube-controller-manager's
 * csrapproving and csrsigning controllers decide for the kubelet client signer
 * (shared/reference/kubernetes-vault.md A.6): the kubelet-client validation
 * (pkg/apis/certificates/helpers.go ValidateKubeletClientCSR), the auto-approval rules
 * (pkg/controller/certificates/approver/sarapprove.go: selfnodeclient when the requester is the
 * CN, else nodeclient, each only when RBAC allows the requester `create` on that subresource) and
 * the signing (pkg/controller/certificates/signer/signer.go).
 *
 * Stand-in differences: the SubjectAccessReview is answered from the stored ClusterRoleBindings
 * against the fixed bootstrap ClusterRoles (ClusterRoles are not stored): a binding to
 * system:certificates.k8s.io:certificatesigningrequests:<subresource> or to cluster-admin allows
 * it, and so does the group system:masters. Only the kubelet client signer is implemented;
 * CSRs of other signers are left as they are (approved ones stay without a certificate). */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "buf.h"

#define KUBE_SIGNER_KUBELET_CLIENT "kubernetes.io/kube-apiserver-client-kubelet"
/* --cluster-signing-duration's default (8760h) */
#define KUBE_CSR_DEFAULT_DURATION (365L * 86400L)
/* the signer backdates certificates by this much for clock skew (signer.go) */
#define KUBE_CSR_BACKDATE 300

/* The parts of a CSR's spec.request the rules look at. */
typedef struct kube_csr_request {
        X509_REQ *req;
        char *cn;                  /* the first CN, or NULL */
        char **orgs;               /* every O, in order; never NULL once parsed */
        bool dns_sans, email_sans, ip_sans, uri_sans;
} kube_csr_request;

void kube_csr_request_done(kube_csr_request *r);

/* spec.request as JSON carries it: base64 of a PEM "CERTIFICATE REQUEST" block (at most 64 KiB
 * decoded). Decodes, parses and verifies the request's self-signature. Returns 0, -EBADMSG with
 * a one-line reason in err (may be NULL) for anything else, -ENOMEM. Input is untrusted. */
int kube_csr_parse_request(const char *request_b64, kube_csr_request *ret, buf *err);

/* ValidateKubeletClientCSR: O exactly [system:nodes], no SANs of any kind, CN starting with
 * system:node:, usages (a JSON array of strings) exactly {digital signature, key encipherment,
 * client auth} or {digital signature, client auth}. Returns 0 or -EINVAL with upstream's message
 * in why (may be NULL). */
int kube_csr_validate_kubelet_client(const kube_csr_request *r, json_t *usages, buf *why);

/* Whether user (with groups, a JSON array of strings) may `create` certificatesigningrequests/
 * <subresource> by RBAC: system:masters, or a ClusterRoleBinding in crbs (an array of
 * ClusterRoleBinding objects) whose roleRef is the ClusterRole granting it (see above) and whose
 * subjects name the user (kind User), one of the groups (Group) or the user as a service account
 * (ServiceAccount, system:serviceaccount:<ns>:<name>). */
bool kube_csr_rbac_allows(json_t *crbs, const char *user, json_t *groups, const char *subresource);

/* The auto-approver on one CSR object: leaves it alone when it has a certificate or an Approved
 * or Denied condition, is not for the kubelet client signer, its request does not parse or is not
 * a valid kubelet client request, or RBAC allows neither selfnodeclient (spec.username == the
 * CN) nor nodeclient for the requester (spec.username, spec.groups). Otherwise appends
 * {type Approved, status True, reason AutoApproved, message upstream's} to status.conditions.
 * Never denies. Returns 1 when it approved, 0 when not, -ENOMEM. */
int kube_csr_auto_approve(json_t *csr, json_t *crbs, time_t now);

/* The kubelet-client signer on one CSR object: for an Approved CSR of that signer without a
 * certificate or Failed condition, a valid kubelet client request gets status.certificate (base64
 * of the PEM) signed by ca/ca_key for min(duration_s, spec.expirationSeconds) from now (backdated
 * by KUBE_CSR_BACKDATE), with key usage from spec.usages and extended key usage clientAuth; an
 * invalid one gets {type Failed, reason SignerValidationFailure, message why}. Returns 1 when it
 * changed csr, 0 when there was nothing to do, -ENOMEM, -EIO (OpenSSL; err says so). */
int kube_csr_sign(json_t *csr, X509 *ca, EVP_PKEY *ca_key, long duration_s, time_t now, buf *err);

/* Whether status.conditions has a condition of type with status "True". */
bool kube_csr_condition(json_t *csr, const char *type);
