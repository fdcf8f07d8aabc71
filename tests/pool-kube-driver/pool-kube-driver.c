/* pool-kube-driver: a TEST DRIVER (test code, not product code) that calls builder/pool/pool-kube.c
 * once per run, so tests/integration/test-pool-kube.sh can drive the module against a real API
 * server (the stand-in) and check it with the real kubectl.
 *
 *   pool-kube-driver --server URL --ca-file F --cert-file F --key-file F COMMAND [ARGS]
 *     node-get NODE       prints "exists=0|1 ready=0|1 unschedulable=0|1 pods=N daemonset_pods=N mirror_pods=N"
 *     cordon NODE | uncordon NODE | delete-node NODE | readyz
 *     drain NODE --timeout-ms MS [--retry-ms MS]
 *                         prints "evicted=N gone=N skipped_daemonset=N skipped_mirror=N blocked_retries=N"
 *                         and "blocked=<ns/pod: message>" when something blocked, on success and failure
 *
 * lib/kubeconfig.h only writes kubeconfigs, so the credentials come as flags. Exit codes: 0 done,
 * 1 failed, 2 usage, 3 timed out (-ETIMEDOUT: a drain blocked past its deadline), 4 cancelled
 * (SIGTERM / SIGINT during a drain). Errors go to stderr as one line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube-client.h"
#include "parse-util.h"
#include "pool-kube.h"
#include "time-util.h"

enum { EXIT_USAGE = 2, EXIT_TIMEOUT = 3, EXIT_CANCELLED = 4 };

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }

static int usage(void) {
        fprintf(stderr, "usage: pool-kube-driver --server URL --ca-file F --cert-file F --key-file F\n"
                        "         node-get NODE | cordon NODE | uncordon NODE | delete-node NODE | readyz |\n"
                        "         drain NODE --timeout-ms MS [--retry-ms MS]\n");
        return EXIT_USAGE;
}

static int exit_code(int r) {
        if (r >= 0)
                return 0;
        if (r == -ETIMEDOUT)
                return EXIT_TIMEOUT;
        if (r == -ECANCELED)
                return EXIT_CANCELLED;
        return 1;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "server", required_argument, NULL, 's' },
                { "ca-file", required_argument, NULL, 'a' },
                { "cert-file", required_argument, NULL, 'c' },
                { "key-file", required_argument, NULL, 'k' },
                { "timeout-ms", required_argument, NULL, 't' },
                { "retry-ms", required_argument, NULL, 'r' },
                {},
        };
        const char *server = NULL, *ca = NULL, *cert = NULL, *key = NULL;
        unsigned long timeout_ms = 0, retry_ms = 5000;
        bool have_timeout = false;
        int c, r;

        /* "+": options before the command, then the command's own (getopt resumes after it) */
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 's': server = optarg; break;
                case 'a': ca = optarg; break;
                case 'c': cert = optarg; break;
                case 'k': key = optarg; break;
                default: return usage();
                }
        if (optind >= argc || !server)
                return usage();
        const char *cmd = argv[optind++];
        const char *node = NULL;
        if (!streq(cmd, "readyz")) {
                if (optind >= argc)
                        return usage();
                node = argv[optind++];
        }
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (parse_ulong(optarg, 0, 24UL * 3600 * 1000, &timeout_ms) < 0)
                                return usage();
                        have_timeout = true;
                        break;
                case 'r':
                        if (parse_ulong(optarg, 1, 600000, &retry_ms) < 0)
                                return usage();
                        break;
                default: return usage();
                }
        if (optind != argc)
                return usage();
        if (streq(cmd, "drain") != have_timeout)
                return usage();

        _cleanup_buf_ buf err = BUF_INIT(8192);
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        r = kube_client_new(&(kube_client_config){ .server = server, .ca_file = ca, .cert_file = cert, .key_file = key,
                                                   .user_agent = "pool-kube-driver" },
                            &k, &err);
        if (r < 0) {
                fprintf(stderr, "pool-kube-driver: %s\n", strempty(err.data));
                return 1;
        }

        if (streq(cmd, "node-get")) {
                pool_kube_node n = {};
                r = pool_kube_node_get(k, node, &n, &err);
                if (r >= 0)
                        printf("exists=%d ready=%d unschedulable=%d pods=%u daemonset_pods=%u mirror_pods=%u\n", n.exists,
                               n.ready, n.unschedulable, n.pods, n.daemonset_pods, n.mirror_pods);
        } else if (streq(cmd, "cordon") || streq(cmd, "uncordon"))
                r = pool_kube_cordon(k, node, streq(cmd, "cordon"), &err);
        else if (streq(cmd, "delete-node"))
                r = pool_kube_delete_node(k, node, &err);
        else if (streq(cmd, "readyz")) {
                r = pool_kube_readyz(k, &err);
                if (r >= 0)
                        printf("ok\n");
        } else if (streq(cmd, "drain")) {
                _cleanup_(pool_drain_report_done) pool_drain_report rep = {};
                struct sigaction sa = { .sa_handler = on_signal };
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGINT, &sa, NULL);
                r = pool_kube_drain(k, node, (long) (time_now_ms() + (int64_t) timeout_ms), (long) retry_ms, &stop, &rep,
                                    &err);
                printf("evicted=%u gone=%u skipped_daemonset=%u skipped_mirror=%u blocked_retries=%u\n", rep.evicted,
                       rep.gone, rep.skipped_daemonset, rep.skipped_mirror, rep.blocked_retries);
                if (rep.blocked)
                        printf("blocked=%s\n", rep.blocked);
        } else
                return usage();
        fflush(stdout);
        if (r < 0)
                fprintf(stderr, "pool-kube-driver: %s: %s\n", cmd, err.len ? err.data : strerror(-r));
        return exit_code(r);
}
