/* The files and API objects of the control-plane role (role-control-plane.c), built without I/O:
 * the EncryptionConfiguration, the kube-apiserver / kube-controller-manager / kube-scheduler
 * flags, the bootstrap-token Secret, the cluster-info kubeconfig and ConfigMap, and kubeadm's
 * RBAC objects for node bootstrap (shared/reference/kubernetes-vault.md A.3, A.4, B.1, D.2, D.3). */
#pragma once

#include <stdbool.h>

#include "buf.h"
#include "json.h"
#include "kube-bootstrap.h"

/* The group kubeadm gives its default node token, and binds (A.4): auth-extra-groups. */
#define CP_BOOTSTRAP_GROUP "system:bootstrappers:kubeadm:default-node-token"

/* The EncryptionConfiguration (apiserver.config.k8s.io/v1) that encrypts Secrets with provider
 * ("secretbox", "aescbc" or "aesgcm") under key name key_name (a DNS-1123 label-like name:
 * [a-z0-9-], 1..63) and key_b64 (standard base64 of 32 bytes; aesgcm also takes 16 or 24),
 * identity after it so that data written before stays readable. Returns 0 and the YAML text
 * (a secret: free with free_secret()), -EINVAL with the reason in err (never the key), -ENOMEM. */
int cp_encryption_config(const char *provider, const char *key_name, const char *key_b64, char **ret, buf *err);

/* The Secret kube-system/bootstrap-token-<id> for token (A.3): type bootstrap.kubernetes.io/token,
 * data (base64) token-id, token-secret, usage-bootstrap-authentication and -signing "true",
 * auth-extra-groups CP_BOOTSTRAP_GROUP, a description, and expiration when given (RFC 3339, not
 * checked here). The object holds the token secret. Returns it or NULL (ENOMEM). */
json_t *cp_bootstrap_token_secret(const kube_bootstrap_token *token, const char *expiration);
/* Whether an existing Secret (as read) is the one for token: same type, token-id and token-secret
 * (compared in constant time). */
bool cp_bootstrap_token_secret_matches(json_t *secret, const kube_bootstrap_token *token);

/* The kubeconfig kubeadm puts in cluster-info (B.1): one cluster named "", server and the CA as
 * certificate-authority-data, no users or contexts, as YAML in kubeadm's key order. The text is
 * what the JWS signs: the same inputs always give the same bytes. Returns 0, -EINVAL (no
 * server or CA), -ENOMEM. */
int cp_cluster_info_kubeconfig(const char *server, const char *ca_pem, char **ret);

/* kubeadm's RBAC objects for node bootstrap: ClusterRoleBindings kubeadm:kubelet-bootstrap,
 * kubeadm:node-autoapprove-bootstrap (CP_BOOTSTRAP_GROUP: create CSRs, first certificates
 * auto-approved), kubeadm:node-autoapprove-certificate-rotation (system:nodes: renewals), and the
 * Role and RoleBinding kube-public/kubeadm:bootstrap-signer-clusterinfo (anonymous get of
 * cluster-info). Returns an array of {"path": the collection to POST to, "object": ...} or NULL. */
json_t *cp_rbac_objects(void);

/* What the flags of the three components are made of: paths are as the components see them
 * (absolute), optional ones NULL. */
typedef struct cp_flags {
        const char *advertise_address;
        unsigned secure_port;
        char **etcd_servers;                       /* "https://ip:port" */
        const char *etcd_ca, *etcd_cert, *etcd_key;
        const char *tls_cert, *tls_key;
        const char *client_ca;                     /* the bundle client certificates chain to */
        const char *cluster_ca;                    /* the CA of the serving certificate */
        const char *kubelet_cert, *kubelet_key;    /* optional */
        const char *front_proxy_cert, *front_proxy_key, *front_proxy_ca; /* optional */
        const char *sa_key, *sa_pub;
        const char *encryption_config;
        const char *service_cidr;
        const char *cluster_cidr;                  /* optional */
        const char *signing_cert, *signing_key;    /* optional */
        const char *controller_manager_kubeconfig; /* optional: no controller-manager flags */
        const char *scheduler_kubeconfig;          /* optional */
} cp_flags;

/* The environment file the three units read (EnvironmentFile=): KUBE_ETCD_SERVERS,
 * KUBE_APISERVER_ARGS, KUBE_CLUSTER_SIGNING_ARGS, KUBE_CONTROLLER_MANAGER_ARGS (which includes
 * the signing flags) and KUBE_SCHEDULER_ARGS, one "KEY=value" line each, flags as
 * "--name=value" separated by single spaces (systemd's $VAR in ExecStart= splits there). Returns
 * 0 and the text, -EINVAL with the reason in err for a value with white space or a missing
 * required value, -ENOMEM. */
int cp_flags_env(const cp_flags *f, char **ret, buf *err);
