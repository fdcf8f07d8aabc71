/* Request bodies in Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf), which
 * kubectl 1.32+ sends for typed creates (`kubectl create namespace|configmap|secret`) with no
 * fallback to JSON. Only decoding, and only the kinds and fields the stand-in stores:
 * Namespace, ConfigMap and Secret (v1), CertificateSigningRequest (certificates.k8s.io/v1: spec,
 * and status conditions and certificate, which `kubectl certificate approve|deny` PUTs) and
 * Eviction (policy/v1, v1beta1: deleteOptions.dryRun and gracePeriodSeconds, as kubectl drain
 * POSTs it), with ObjectMeta's name, generateName, namespace, labels,
 * annotations and finalizers; other ObjectMeta fields (uid, resourceVersion, timestamps, owner
 * references, managed fields) are skipped, as the server sets or ignores them on create.
 * Wire format: the "k8s\0" magic, then a runtime.Unknown {typeMeta{apiVersion, kind}, raw,
 * contentEncoding, contentType} whose raw holds the object (k8s.io/api/core/v1/generated.proto). */
#pragma once

#include <jansson.h>
#include <stddef.h>

/* Decode len bytes at data into a JSON object in *ret (kind and apiVersion set). Returns 0,
 * -EBADMSG for malformed input (truncated, bad wire types, invalid UTF-8 in strings), -EOPNOTSUPP
 * for a kind this decoder does not know (the caller answers 415), -ENOMEM. Input is untrusted:
 * every length is checked against what is left; nesting is bounded by the fixed schema. */
int kube_proto_decode(const void *data, size_t len, json_t **ret);
