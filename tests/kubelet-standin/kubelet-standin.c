/* kubelet-standin: a STAND-IN for kubelet in tests (not kubelet, not product code). It does on the
 * wire what kubelet does to register its Node and report it Ready (kubernetes-vault.md A.8), with
 * the kubeconfig bootagent's node role wrote:
 *   POST /api/v1/nodes (metadata.name, labels kubernetes.io/hostname / os / arch,
 *   status.nodeInfo.kubeletVersion); 409 AlreadyExists is fine (a restart);
 *   then PATCH /api/v1/nodes/<name>/status (strategic merge) with Ready=True and a fresh
 *   lastHeartbeatTime every --heartbeat-ms, until SIGTERM or SIGINT (exit 0).
 * It runs no pods and checks nothing else. The API stand-in never marks a Node Ready itself:
 * only this does. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "http.h"
#include "json.h"
#include "kube-bootstrap.h"
#include "kube-client.h"
#include "parse-util.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }

/* The value of "key: value" on a line of the kubeconfig's user (client-certificate, client-key). */
static char *kubeconfig_value(const char *text, const char *key) {
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                const char *s = p + strspn(p, " ");
                size_t n = strlen(key);
                if (strneq(s, key, n) && s[n] == ':') {
                        s += n + 1;
                        s += strspn(s, " ");
                        return strndup(s, strcspn(s, "\r\n"));
                }
        }
        return NULL;
}

static void now_rfc3339(char out[32]) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static json_t *status_patch(const char *version) {
        char ts[32];
        now_rfc3339(ts);
        return json_pack("{s:{s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:{s:s}}}", "status", "conditions", "type", "Ready",
                         "status", "True", "reason", "KubeletReady", "message", "kubelet-standin is posting ready status",
                         "lastHeartbeatTime", ts, "lastTransitionTime", ts, "nodeInfo", "kubeletVersion", version);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "kubeconfig", required_argument, NULL, 'k' },
                { "node-name", required_argument, NULL, 'n' },
                /* kubelet's own flags, as kubelet.service.d/bootagent.conf passes them */
                { "hostname-override", required_argument, NULL, 'n' },
                { "config", required_argument, NULL, 'c' },
                { "heartbeat-ms", required_argument, NULL, 'b' },
                { "kubelet-version", required_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *kubeconfig = NULL, *node_name = NULL, *config = NULL, *version = "v1.31.0-standin";
        unsigned long heartbeat = 2000;
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'k': kubeconfig = optarg; break;
                case 'n': node_name = optarg; break;
                case 'c': config = optarg; break;
                case 'v': version = optarg; break;
                case 'b':
                        if (parse_ulong(optarg, 100, 600000, &heartbeat) < 0) {
                                fprintf(stderr, "kubelet-standin: bad --heartbeat-ms\n");
                                return 2;
                        }
                        break;
                case 'h':
                        printf("Usage: kubelet-standin --kubeconfig FILE --node-name|--hostname-override NAME [--config FILE]\n"
                               "                       [--heartbeat-ms MS] [--kubelet-version V]\n"
                               "A TEST STAND-IN for kubelet: registers the Node and reports it Ready until SIGTERM.\n"
                               "--config must name a KubeletConfiguration (nothing else of it is used).\n");
                        return 0;
                default: return 2;
                }
        if (!kubeconfig || !node_name) {
                fprintf(stderr, "kubelet-standin: --kubeconfig and --node-name are required\n");
                return 2;
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);

        _cleanup_free_ char *text = NULL, *server = NULL, *ca = NULL, *cert = NULL, *key = NULL, *cfg = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        int r;
        if (config) {
                /* as kubelet would refuse to start without it */
                r = read_file(config, 1024 * 1024, &cfg, NULL);
                if (r < 0 || !strstr(cfg, "\nkind: KubeletConfiguration\n")) {
                        fprintf(stderr, "kubelet-standin: %s: %s\n", config, r < 0 ? strerror(-r) : "not a KubeletConfiguration");
                        return 1;
                }
        }
        r = read_file(kubeconfig, 1024 * 1024, &text, NULL);
        if (r < 0) {
                fprintf(stderr, "kubelet-standin: %s: %s\n", kubeconfig, strerror(-r));
                return 1;
        }
        cert = kubeconfig_value(text, "client-certificate");
        key = kubeconfig_value(text, "client-key");
        if (kube_bootstrap_kubeconfig_cluster(text, &server, &ca, &err) < 0 || !cert || !key) {
                fprintf(stderr, "kubelet-standin: %s: no cluster or client certificate: %s\n", kubeconfig, strempty(err.data));
                return 1;
        }
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        r = kube_client_new(&(kube_client_config){ .server = server, .ca_pem = ca, .cert_file = cert, .key_file = key,
                                                   .user_agent = "kubelet-standin" },
                            &k, &err);
        if (r < 0) {
                fprintf(stderr, "kubelet-standin: %s\n", err.data);
                return 1;
        }
        printf("kubelet-standin: node %s, server %s, certificate %s\n", node_name, server, cert);
        fflush(stdout);

        /* Register, retrying as kubelet does (100 ms doubling up to 7 s). */
        _cleanup_json_ json_t *node = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s}},s:{s:{s:s}}}", "apiVersion", "v1",
                                                "kind", "Node", "metadata", "name", node_name, "labels",
                                                "kubernetes.io/hostname", node_name, "kubernetes.io/os", "linux",
                                                "kubernetes.io/arch", "amd64", "status", "nodeInfo", "kubeletVersion",
                                                version);
        if (!node)
                return 1;
        for (long delay = 100; !stop; delay = delay < 3500 ? delay * 2 : 7000) {
                buf_clear(&err);
                r = kube_post(k, "/api/v1/nodes", node, NULL, &err);
                if (r >= 0 || r == -EEXIST) {
                        printf("kubelet-standin: node %s %s\n", node_name, r >= 0 ? "registered" : "already registered");
                        fflush(stdout);
                        break;
                }
                fprintf(stderr, "kubelet-standin: registering: %s\n", err.data);
                sleep_ms(delay);
        }

        _cleanup_free_ char *escaped = http_escape(node_name), *path = NULL;
        if (!escaped || asprintf(&path, "/api/v1/nodes/%s/status", escaped) < 0)
                return 1;
        unsigned beats = 0;
        while (!stop) {
                _cleanup_json_ json_t *patch = status_patch(version);
                buf_clear(&err);
                if (!patch)
                        return 1;
                r = kube_patch(k, path, KUBE_PATCH_STRATEGIC, patch, NULL, &err);
                if (r < 0)
                        fprintf(stderr, "kubelet-standin: status: %s\n", err.data);
                else if (beats++ == 0) {
                        printf("kubelet-standin: node %s Ready\n", node_name);
                        fflush(stdout);
                }
                sleep_ms((long) heartbeat);
        }
        printf("kubelet-standin: stopping on signal %d after %u heartbeats\n", (int) stop, beats);
        return 0;
}
