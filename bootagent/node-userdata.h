/* The node role's user-data: what the platform hands a pool's instances at creation (the
 * metadata service's /latest/user-data), so that no secret is baked into the template.
 *
 * Format: "key=value" lines (white space around key and value ignored, "\r\n" accepted), blank
 * lines and '#' comment lines ignored; every key at most once, no other key:
 *   kube_token    the bootstrap token "<id>.<secret>" ([a-z0-9]{6}.[a-z0-9]{16}); required
 *   kube_endpoint the API server, "https://<host>:<port>" (DNS name, IPv4 or [IPv6]); required
 *   kube_ca_pin   "sha256:<64 hex digits>" of the cluster CA's SubjectPublicKeyInfo; required
 *   node_name     the Node's name (DNS-1123 subdomain); optional, default the host name
 * The token never appears in an error message. */
#pragma once

#include <stddef.h>

#include "buf.h"
#include "kube-bootstrap.h"

#define NODE_USERDATA_MAX (64u * 1024u)

typedef struct node_userdata {
        kube_bootstrap_token token;     /* secret: node_userdata_done() wipes it */
        char *endpoint;                 /* "https://host:port", as given */
        char *ca_pin;                   /* "sha256:<hex>", lower case */
        char *node_name;                /* NULL when not given */
} node_userdata;

/* Parse len bytes of user-data (no NUL needed; at most NODE_USERDATA_MAX, no NUL bytes inside).
 * Returns 0 and *ret (free with node_userdata_done()), -EINVAL with "user-data line N: reason"
 * or "user-data: missing kube_token" in err (may be NULL; appended to), -ENOMEM. *ret is
 * untouched on failure. */
int node_userdata_parse(const char *text, size_t len, node_userdata *ret, buf *err);
void node_userdata_done(node_userdata *u);

/* Whether s is "https://<host>:<port>" as kube_endpoint must be. */
bool node_userdata_endpoint_valid(const char *s);
/* Whether s is a DNS-1123 subdomain (lower case letters, digits, '-', '.'; alphanumeric at both
 * ends and around each '.'; 1..253 bytes), what a Node name must be. */
bool node_userdata_name_valid(const char *s);
