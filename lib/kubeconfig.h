/* Kubeconfig files for client certificates: one cluster (server + CA), one user (certificate +
 * key), one context, written as JSON (which kubectl and client-go read like YAML); and reading the
 * current context of a JSON kubeconfig back into what kube-client needs. */
#pragma once

#include "buf.h"
#include "macro.h"

typedef struct kubeconfig_spec {
        const char *cluster;   /* cluster name, e.g. "kubernetes" */
        const char *server;    /* https://host:port */
        const char *ca_pem;    /* the cluster's CA certificate, PEM */
        const char *user;      /* user name, e.g. "admin" */
        const char *cert_pem;  /* client certificate, PEM */
        const char *key_pem;   /* its private key, PEM (a secret) */
} kubeconfig_spec;

/* The kubeconfig text: apiVersion v1, kind Config, clusters / users / contexts with one entry
 * each (the context is named "<user>@<cluster>" and is current-context); the PEMs go in
 * certificate-authority-data, client-certificate-data and client-key-data as base64. The text
 * holds the key: the caller wipes and frees it (free_secret). Returns 0, -EINVAL for a missing
 * field, or -ENOMEM. */
int kubeconfig_build(const kubeconfig_spec *s, char **ret);

/* The current context of a kubeconfig: the server and credentials, as kube_client_config takes
 * them (a *_file or the matching *_pem, never both). Strings owned; key_pem and token are
 * secrets, wiped by kubeconfig_client_done(). */
typedef struct kubeconfig_client {
        char *server;
        char *ca_file, *ca_pem;
        char *cert_file, *cert_pem;
        char *key_file, *key_pem;
        char *token;
} kubeconfig_client;

/* Read path (capped at 1 MiB), a kubeconfig in JSON: what kubeconfig_build() and bootagent write;
 * a YAML one converts with `kubectl config view --raw --flatten -o json`. Follows current-context
 * to its cluster (server, certificate-authority[-data]) and user (client-certificate[-data],
 * client-key[-data], token); relative file paths are relative to path's directory, as kubectl
 * takes them. Returns 0 and *ret, or read_file()'s errors, -EBADMSG (not JSON, no current context,
 * a name that is not there, no server, base64 that does not decode) or -EOPNOTSUPP (exec or
 * auth-provider users), with one line in err (appended to). */
int kubeconfig_load(const char *path, kubeconfig_client *ret, buf *err);

/* Free c's strings, wiping the secrets, and zero it. */
void kubeconfig_client_done(kubeconfig_client *c);
