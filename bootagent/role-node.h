/* The Kubernetes node role: bootstrap token, endpoint and CA pin from user-data, kubeadm's
 * cluster-info discovery (JWS + CA pin before the token goes anywhere), the node's client
 * certificate through a CSR made with the token, kubelet's kubeconfig and KubeletConfiguration,
 * kubelet started, the Node Ready (shared/reference/kubernetes-vault.md A, B). */
#pragma once

#include "role.h"

extern const role_ops role_node_ops;
