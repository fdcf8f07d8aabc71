/* The Kubernetes control-plane role: keys from Vault KV, the etcd servers from the etcd pool, the
 * flags of kube-apiserver / kube-controller-manager / kube-scheduler, /readyz, then the objects
 * nodes need to join (bootagent/README.md, "control-plane role"). Its certificates and
 * kubeconfigs are [certificate] and [kubeconfig] sections (certs.h), made before it runs. */
#pragma once

#include "role.h"

extern const role_ops role_control_plane_ops;
