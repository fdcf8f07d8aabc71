/* Kubernetes objects of the API stand-in kept in etcd, as kube-apiserver keeps them: one key per
 * object under /registry/<resource>/[<namespace>/]<name> (nodes under /registry/minions/, as
 * upstream's storage does), resourceVersion = the key's etcd mod_revision, a list's
 * resourceVersion = the store revision it was read at. Several stand-ins pointed at one etcd
 * cluster therefore share one state, as real apiservers do.
 *
 * Stand-in differences: values are the object's JSON (upstream writes protobuf with a "k8s\0"
 * prefix, and encrypts what --encryption-provider-config says); resourceVersion is not stored in
 * the value (as upstream), uid and creationTimestamp are. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "etcd-client.h"

typedef struct kube_resource {
        const char *name;          /* "nodes" */
        const char *singular;      /* "node" */
        const char *kind;          /* "Node" */
        const char *list_kind;     /* "NodeList" */
        const char *etcd_prefix;   /* "minions" */
        bool namespaced;
        const char *short_name;    /* "no", or NULL */
        bool has_status;           /* a /status subresource */
        const char *group;         /* API group: "" for the core group, "certificates.k8s.io" */
        const char *version;       /* "v1" */
} kube_resource;

/* The resources served, by plural name (unique across the groups served). Returns NULL for
 * others. */
const kube_resource *kube_resource_find(const char *name);
/* The API groups served besides the core group, NULL-terminated ("apps", "certificates.k8s.io",
 * "policy", "rbac.authorization.k8s.io"); all at version v1. */
extern const char *const kube_api_groups[];
/* All of them, NULL-terminated, for discovery. */
extern const kube_resource *const kube_resources[];

/* The etcd key of an object (new string). namespace NULL for cluster-scoped; name NULL gives
 * the collection's prefix (ending in '/'). */
char *kube_store_key(const kube_resource *res, const char *namespace, const char *name);

/* Every function: 0 or a negative errno; -ENOENT (no such object), -EEXIST (create: exists),
 * -ESTALE (update/delete: changed since the given resourceVersion), or etcd-client's errors
 * (-ECONNREFUSED ... when etcd did not answer; err says why). Objects are jansson objects with
 * metadata.resourceVersion set from etcd. */

/* One object, a new reference in *ret. */
int kube_store_get(etcd_client *etcd, const kube_resource *res, const char *namespace,
                   const char *name, json_t **ret, buf *err);
/* Every object of the collection (namespace NULL: all namespaces), sorted by key, as a new
 * array in *ret; ret_revision: the list's resourceVersion. */
int kube_store_list(etcd_client *etcd, const kube_resource *res, const char *namespace,
                    json_t **ret, int64_t *ret_revision, buf *err);
/* kube_store_list as the collection was at etcd revision rev (> 0; errors of
 * etcd_client_list_prefix_at for a compacted or future one). */
int kube_store_list_at(etcd_client *etcd, const kube_resource *res, const char *namespace, int64_t rev,
                       json_t **ret, int64_t *ret_revision, buf *err);
/* Write obj (its metadata.name/namespace say where) if absent, else -EEXIST. On success obj
 * gets its new resourceVersion. */
int kube_store_create(etcd_client *etcd, const kube_resource *res, json_t *obj, buf *err);
/* Replace the object if its resourceVersion is still rv (> 0). obj gets the new one. */
int kube_store_update(etcd_client *etcd, const kube_resource *res, json_t *obj, int64_t rv,
                      buf *err);
/* Delete the object; rv > 0: only if still at rv. */
int kube_store_delete(etcd_client *etcd, const kube_resource *res, const char *namespace,
                      const char *name, int64_t rv, buf *err);

/* A metav1.Time as the API writes it ("2026-12-07T17:38:46Z"), UTC. */
void kube_format_time(time_t t, char out[32]);

/* metadata.resourceVersion of obj as a number (0 when missing). Returns 0, -EINVAL when it is
 * set but not a positive decimal number. */
int kube_object_rv(json_t *obj, int64_t *ret);
