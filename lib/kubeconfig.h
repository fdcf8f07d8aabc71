/* Kubeconfig files for client certificates: one cluster (server + CA), one user (certificate +
 * key), one context, written as JSON (which kubectl and client-go read like YAML). */
#pragma once

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
