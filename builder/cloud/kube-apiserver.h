/* `imgbuild kube-apiserver`: the Kubernetes API stand-in started with (a subset of) the flags a
 * control-plane agent writes for kube-apiserver, validated the way kube-apiserver validates them:
 * unknown flags and malformed values are errors, the required flags must be there, the files
 * must exist and parse, the serving key must match its certificate. Then it serves the API
 * (kube-api.h) over TLS on --bind-address:--secure-port with objects in --etcd-servers.
 *
 * A stand-in: see kube-api.h for what is not served. Flags upstream has that the stand-in
 * accepts without acting on them are listed by kube_apiserver_flags.ignored and logged at start. */
#pragma once

#include <signal.h>
#include <stdbool.h>

#include "buf.h"

typedef struct kube_apiserver_flags {
        char **etcd_servers;
        char *etcd_prefix;                 /* default "/registry"; only that is supported */
        char *etcd_cafile, *etcd_certfile, *etcd_keyfile;
        char *tls_cert_file, *tls_private_key_file;
        char *client_ca_file;
        int secure_port;                   /* default 6443 */
        char *bind_address;                /* default 0.0.0.0 */
        char **service_account_key_files;  /* repeatable */
        char *service_account_signing_key_file;
        char **service_account_issuers;
        char **service_cluster_ip_ranges;  /* "10.96.0.0/12[,fd00::/108]" */
        bool enable_bootstrap_token_auth;
        bool anonymous_auth;               /* default true */
        char **authorization_mode;         /* default AlwaysAllow */
        /* kube-controller-manager's flags: the CA (certificate and key) that signs approved
         * kubelet client CSRs, as the stand-in runs that controller too. Both or neither. */
        char *cluster_signing_cert_file, *cluster_signing_key_file;
        char **ignored;                    /* "--name" of accepted flags the stand-in ignores */
        bool help;
} kube_apiserver_flags;

void kube_apiserver_flags_done(kube_apiserver_flags *f);

/* Parse argv (argv[0] is the command name) as kube-apiserver's pflag set does: "--name=value",
 * "--name value", booleans as "--name" or "--name=true|false", list flags comma-separated and
 * repeatable. Returns 0, or -EINVAL with one line in err ("unknown flag: --foo",
 * "invalid argument \"x\" for \"--secure-port\" flag: ..."). */
int kube_apiserver_parse_flags(int argc, char **argv, kube_apiserver_flags *ret, buf *err);

/* What kube-apiserver checks before serving: required flags, values (port range, IP, CIDRs,
 * authorization modes), files that exist and parse (certificates, keys, CA bundles), the serving
 * key matching its certificate, the service-account keys. Returns 0 or -EINVAL with every
 * problem in err, one a line, in upstream's wording where upstream has one. */
int kube_apiserver_validate(const kube_apiserver_flags *f, buf *err);

/* Validate, connect, create the system namespaces, listen, print "kube-apiserver: ready" on
 * stdout, and serve until *stop. Returns 0 when stopped, -EINVAL (validation; err), or another
 * negative errno (err says what failed). */
int kube_apiserver_run(const kube_apiserver_flags *f, volatile sig_atomic_t *stop, buf *err);
