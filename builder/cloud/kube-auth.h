/* The Kubernetes API stand-in's authentication and authorization: who a request is (client
 * certificate, bootstrap token, anonymous) and whether it may do what it asks.
 *
 * Stand-in, not kube-apiserver: authentication is the x509 authenticator (CN = user, O = groups)
 * and the bootstrap-token authenticator exactly as upstream decides (shared/reference/
 * kubernetes-vault.md A.3, A.4); authorization is a fixed policy that approximates the default
 * RBAC bootstrap roles plus the Node authorizer (see kube_authz_allowed), not RBAC objects read
 * from the store (ClusterRoleBindings are stored, and only the CSR auto-approver reads them:
 * kube-csr.h). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "macro.h"

typedef struct kube_user {
        char *name;
        char **groups;             /* sorted, deduplicated; always includes system:authenticated
                                    * (or system:unauthenticated for anonymous) */
} kube_user;

void kube_user_done(kube_user *u);

/* The user of a verified client certificate: CN and O (orgs NULL-terminated, may be empty).
 * Returns 0, -EACCES for a certificate without CN (upstream: "common name is required"), -ENOMEM. */
int kube_auth_from_cert(const char *cn, char *const *orgs, kube_user *ret);
/* The anonymous user (system:anonymous, system:unauthenticated). Returns 0 or -ENOMEM. */
int kube_auth_anonymous(kube_user *ret);

/* Parse "<id>.<secret>" (A.2's regexes). Returns true and the 6-character id in ret_id (7 bytes). */
bool kube_auth_bootstrap_token_id(const char *token, char ret_id[7]);
/* Authenticate bearer token against secret, the Secret kube-system/bootstrap-token-<id> (a
 * parsed object, or NULL when there is none), at now: type, token-id, token-secret (constant
 * time), expiration (RFC 3339; unparsable or past = expired), usage-bootstrap-authentication,
 * auth-extra-groups (one invalid group rejects the token). Returns 0 and the user
 * system:bootstrap:<id> with system:bootstrappers, the extra groups and system:authenticated;
 * -EACCES when the token is not valid (ret_reason, may be NULL, gets a static reason for the
 * log: never sent to the client, as upstream answers only "Unauthorized"); -ENOMEM. */
int kube_auth_bootstrap_token(const char *token, json_t *secret, time_t now, kube_user *ret,
                              const char **ret_reason);

/* What a request asks to do. Non-resource requests set path; resource requests set resource. */
typedef struct kube_attrs {
        const char *verb;          /* get list watch create update patch delete */
        const char *api_group;     /* "" for the core group */
        const char *resource;      /* "nodes"; NULL for a non-resource request */
        const char *subresource;   /* "status" or NULL */
        const char *namespace;     /* NULL when cluster-scoped */
        const char *name;          /* NULL for collections */
        const char *path;          /* non-resource: "/readyz" */
} kube_attrs;

/* authorization_mode: the --authorization-mode values (NULL-terminated). system:masters may do
 * everything (upstream's privileged-group authorizer runs before all modes). Then, in order:
 * AlwaysAllow allows, AlwaysDeny denies, Node and RBAC apply the built-in policy: health and
 * /version for everyone; discovery for system:authenticated; for system:nodes users
 * system:node:<n>, reading nodes and creating/updating/patching node <n> and its status;
 * for system:anonymous, get of the ConfigMap kube-public/cluster-info (kubeadm's role);
 * for system:bootstrappers and system:nodes, creating and reading CSRs (system:node-bootstrapper,
 * which a kubelet TLS bootstrap setup binds to system:bootstrappers; the Node authorizer's node
 * rules); for nodes, reading pods and writing a pod's status (the API layer checks the pod is
 * bound to the node); nothing else. CSR approval (/approval) is for system:masters. */
bool kube_authz_allowed(const kube_user *u, const kube_attrs *a, char *const *authorization_mode);

/* The message of upstream's 403 Status for a denied request, e.g.
 * `nodes is forbidden: User "x" cannot list resource "nodes" in API group "" at the cluster
 * scope`. Returns a new string or NULL. */
char *kube_authz_forbidden_message(const kube_user *u, const kube_attrs *a);
