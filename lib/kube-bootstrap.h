/* kubeadm's bootstrap-token discovery, the pieces a joining node needs before it trusts anything:
 * bootstrap token syntax, the detached JWS (HS256) in the cluster-info ConfigMap, the CA pin
 * ("sha256:<hex of the SPKI DER>") and the cluster-info kubeconfig. As in kubeadm
 * (cmd/kubeadm/app/discovery/token/token.go): fetch cluster-info without credentials and
 * without TLS verification, verify the JWS over the exact kubeconfig text with the token
 * secret, check the kubeconfig's CA against the pin, then fetch cluster-info again verified by
 * that CA and require the same kubeconfig (kube_bootstrap_cluster_info_same()). Only then may
 * the token go to the server. Nothing here logs or does I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

#define KUBE_TOKEN_ID_LEN 6
#define KUBE_TOKEN_SECRET_LEN 16
#define KUBE_CA_PIN_PREFIX "sha256:"

/* A bootstrap token "<id>.<secret>", [a-z0-9]{6}.[a-z0-9]{16}. The secret part is secret: wipe
 * the struct with kube_bootstrap_token_wipe() when done. */
typedef struct kube_bootstrap_token {
        char id[KUBE_TOKEN_ID_LEN + 1];
        char secret[KUBE_TOKEN_SECRET_LEN + 1];
} kube_bootstrap_token;

static inline void kube_bootstrap_token_wipe(kube_bootstrap_token *t) { explicit_bzero(t, sizeof(*t)); }

/* Parse s strictly (no surrounding whitespace, lower case only). Returns 0 and *ret, or -EINVAL
 * (*ret untouched). */
int kube_bootstrap_token_parse(const char *s, kube_bootstrap_token *ret);
/* A token ID alone, [a-z0-9]{6}. */
bool kube_bootstrap_token_id_valid(const char *id);

/* The detached JWS kubeadm's bootstrapsigner puts in data["jws-kubeconfig-<id>"]:
 * b64url({"alg":"HS256","kid":"<id>"}) ".." b64url(HMAC-SHA256(secret, b64url(header) "."
 * b64url(content))), base64url without padding, the key being the token secret only (not the
 * whole token). id must be printable ASCII without '"', '\\', '<', '>', '&' (characters a JSON
 * encoder would escape); real IDs are [a-z0-9]{6}. Returns 0 and a new string in *ret, -EINVAL
 * for such an id, -ENOMEM. */
int kube_bootstrap_jws_sign(const void *content, size_t len, const char *id, const char *secret,
                            char **ret);
/* Recompute the JWS and compare it with jws as a whole (constant time), as kubeadm does.
 * Returns 0 on a match, -EBADMSG when jws is not of the form "<header>..<signature>",
 * -EKEYREJECTED when it is but does not match (another token, another content, a changed
 * header), -EINVAL for an id kube_bootstrap_jws_sign() refuses, -ENOMEM. */
int kube_bootstrap_jws_verify(const void *content, size_t len, const char *jws, const char *id,
                              const char *secret);

/* The pin of a certificate: "sha256:" + lower-case hex of SHA-256 over its DER
 * SubjectPublicKeyInfo. cert_pem holds at least one PEM CERTIFICATE; the first is pinned.
 * Returns 0 and a new string in *ret, -EBADMSG when there is no parseable certificate, -ENOMEM. */
int kube_bootstrap_ca_pin(const char *cert_pem, char **ret);
/* Parse a pin: "sha256:" (case-insensitive) and exactly 64 hex digits (either case). Returns 0
 * and the digest in ret, or -EINVAL (ret untouched). */
int kube_bootstrap_pin_parse(const char *pin, uint8_t ret[32]);
/* Check a CA bundle against a pin: 0 when any certificate in ca_pem matches, -EKEYREJECTED when
 * none does, -EINVAL for a malformed pin, -EBADMSG when ca_pem holds no parseable certificate,
 * -ENOMEM. */
int kube_bootstrap_pin_check(const char *ca_pem, const char *pin);

/* What a node takes from cluster-info. */
typedef struct kube_cluster_info {
        char *kubeconfig;       /* data.kubeconfig exactly as signed */
        char *server;           /* clusters[0].cluster.server */
        char *ca_pem;           /* clusters[0].cluster.certificate-authority-data, decoded */
} kube_cluster_info;

void kube_cluster_info_done(kube_cluster_info *ci);

/* Read the single cluster of the kubeconfig in cluster-info: JSON, or the YAML kubeadm writes
 * (block mappings and sequences, plain or quoted one-line scalars; no anchors, flow
 * collections in the clusters section, multi-line scalars or escapes). Exactly one
 * "server" and one "certificate-authority-data" must appear under the top-level "clusters";
 * the CA must be base64 of PEM text. Returns 0 and server / ca_pem (new strings), -EBADMSG with
 * the reason in err (may be NULL; appended to), -ENOMEM. */
int kube_bootstrap_kubeconfig_cluster(const char *kubeconfig, char **ret_server, char **ret_ca_pem,
                                      buf *err);

/* Verify a cluster-info ConfigMap (the parsed GET reply) for token and pin, in kubeadm's order:
 * the JWS in data["jws-kubeconfig-<token id>"] over data.kubeconfig, then the kubeconfig's
 * cluster, then its CA against the pin (required: there is no unpinned mode). Returns 0 and
 * *ret (free with kube_cluster_info_done()); -ENOENT when the ConfigMap has no signature for
 * this token yet (kubeadm keeps polling: the signer may not have run yet); -EKEYREJECTED when
 * the signature does not match the token; -EPERM when the CA does not match the pin (do not send
 * the token there); -EBADMSG for a ConfigMap or kubeconfig that is malformed; -EINVAL for a
 * malformed pin; -ENOMEM. err (may be NULL) gets one line saying which. */
int kube_bootstrap_cluster_info_verify(json_t *configmap, const kube_bootstrap_token *token,
                                       const char *pin, kube_cluster_info *ret, buf *err);
/* The second, TLS-verified fetch must carry the very same kubeconfig: true when it does. */
bool kube_bootstrap_cluster_info_same(const kube_cluster_info *ci, json_t *configmap);
