/* `imgbuild kube-apiserver FLAGS...`: the Kubernetes API stand-in (builder/cloud/kube-*.c), started
 * with kube-apiserver's own flags so a control-plane unit can run it in kube-apiserver's place. */
#include <stdio.h>

#include "cli.h"
#include "interrupt.h"
#include "kube-apiserver.h"
#include "log.h"


static void help(void) {
        printf("Usage: imgbuild kube-apiserver --etcd-servers URL[,URL] --tls-cert-file FILE\n"
               "         --tls-private-key-file FILE --service-account-issuer URL\n"
               "         --service-account-signing-key-file FILE [FLAG...]\n"
               "\n"
               "A local stand-in for kube-apiserver, for tests and the embedded default: it takes\n"
               "kube-apiserver's flags (a subset; others it knows are accepted and ignored, unknown\n"
               "ones are an error), validates them as kube-apiserver does, keeps its objects in\n"
               "etcd under /registry/, and serves over TLS: /version, /healthz, /livez, /readyz,\n"
               "discovery, watch, namespaces, configmaps, secrets, nodes, pods (+eviction),\n"
               "PodDisruptionBudgets, CertificateSigningRequests (+approval), ClusterRoleBindings\n"
               "and DaemonSets. It also runs the CSR auto-approver and, with\n"
               "--cluster-signing-cert-file/--cluster-signing-key-file (kube-controller-manager's\n"
               "flags), the kubelet client signer.\n"
               "Authentication: client certificates (--client-ca-file; CN = user, O = groups) and\n"
               "bootstrap tokens (--enable-bootstrap-token-auth). Authorization: system:masters,\n"
               "then --authorization-mode (AlwaysAllow, AlwaysDeny, and Node,RBAC as a fixed\n"
               "built-in policy). Not a full apiserver: no scheduler, RBAC roles, other kinds or\n"
               "controllers. Prints \"kube-apiserver: ready\" once listening.\n"
               "\n"
               "Flags: --etcd-servers --etcd-cafile --etcd-certfile --etcd-keyfile --etcd-prefix\n"
               "  --tls-cert-file --tls-private-key-file --client-ca-file --secure-port (6443)\n"
               "  --bind-address (0.0.0.0) --service-account-key-file\n"
               "  --service-account-signing-key-file --service-account-issuer\n"
               "  --service-cluster-ip-range --enable-bootstrap-token-auth --anonymous-auth (true)\n"
               "  --authorization-mode (AlwaysAllow) --cluster-signing-cert-file\n"
               "  --cluster-signing-key-file\n"
               "\n"
               "Exit status: 0 when stopped by SIGTERM/SIGINT, 1 for invalid flags or errors.\n");
}

int cmd_kube_apiserver(int argc, char **argv) {
        _cleanup_(kube_apiserver_flags_done) kube_apiserver_flags f = {};
        _cleanup_buf_ buf err = BUF_INIT(16384);
        int r;

        r = kube_apiserver_parse_flags(argc, argv, &f, &err);
        if (r < 0) {
                log_error("kube-apiserver: %s", err.len ? err.data : strerror(-r));
                return 1;
        }
        if (f.help) {
                help();
                return 0;
        }
        /* SIGTERM/SIGINT stop it (lib/interrupt, installed once by cli.c). */
        interrupt_hold();
        r = kube_apiserver_run(&f, interrupt_signal_flag(), &err);
        if (r < 0) {
                /* validation lists every problem, one a line */
                log_error("kube-apiserver: %s", err.len ? err.data : strerror(-r));
                return 1;
        }
        log_info("kube-apiserver: stopped");
        return 0;
}
