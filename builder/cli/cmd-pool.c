/* imgbuild pool: create / status / scale / roll / delete instance pools (pool.h): host or exoscale. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "crypto.h"
#include "json.h"
#include "log.h"
#include "base.h"
#include "pool-exoscale.h"
#include "pool-host.h"
#include "pool-qemu.h"
#include "pool.h"
#include "templates.h"
#include "strv.h"

/* Exit status when the quorum floor refused a step (pool.h: POOL_EUNHEALTHY). */
#define EXIT_POOL_UNHEALTHY 4

static void help(void) {
        printf("Usage: imgbuild pool create NAME --template T[@V] [--size N] [--provider qemu|host]\n"
               "                               [--port-base P] [--cache-dir DIR]\n"
               "       imgbuild pool create NAME --provider exoscale --template T --zone Z --private-network ID\n"
               "                            --etcd-ca F --etcd-cert F --etcd-key F [--size N] [--instance-type T]\n"
               "                            [--disk-size GB] [--security-group ID]... [--etcd-port P]\n"
               "                            [--start-timeout S] [--credentials FILE] [--api-endpoint URL]\n"
               "       imgbuild pool status NAME [--json]\n"
               "       imgbuild pool scale NAME --size N\n"
               "       imgbuild pool roll NAME --template T@V | --abort\n"
               "       imgbuild pool delete NAME\n"
               "\n"
               "Instance pools running an etcd cluster, one bootagent per member.\n"
               "  create  start N members (default 3) one after another; each must become a\n"
               "          healthy voting etcd member before the next starts\n"
               "  status  per member: instance id, template, machine state, etcd role and\n"
               "          health, agent outcome and stage timeline\n"
               "  scale   add or remove members one at a time\n"
               "  roll    replace every member not on T@V, one at a time: a new member joins\n"
               "          (learner, then voter), then the old one leaves and is destroyed.\n"
               "          Before each step the cluster must be healthy (every member healthy\n"
               "          and voting, no stale member); a member whose machine is down is\n"
               "          started again once, otherwise the roll stops with exit status 4.\n"
               "          The roll is checkpointed: run it again to resume; --abort stops it\n"
               "          with every member on the old or the new template, size N.\n"
               "  delete  stop and remove every member and the pool's files\n"
               "\n"
               "Local pools (qemu, host) run their own local cloud (imgbuild serve: metadata,\n"
               "Vault-compatible secrets and PKI, cloud API) and use ports P..P+500 on\n"
               "127.0.0.1 (random below 32268 when --port-base is not given).\n"
               "\n"
               "Provider \"qemu\" (the default when T@V is a template in the image store,\n"
               "--cache-dir or the default store): each member is a VM (1 vCPU, 1024 MB) booted\n"
               "from an overlay of the template's disk; its baked-in agent does the first boot.\n"
               "Members reach their own metadata and Vault on 169.254.169.254 (user-mode NIC,\n"
               "no other way out) and each other on 10.10.0.0/24 (a second NIC on a multicast\n"
               "socket bound to 127.0.0.1). The VMs outlive the command (pid, QMP and\n"
               "communicator sockets in the pool directory); etcd is checked through a port\n"
               "forward with a client certificate from the pool's CA. Needs socat.\n"
               "\n"
               "Provider \"host\" (the default otherwise): members are host processes (bootagent\n"
               "with units = exec, etcd on 127.0.0.x). A template is only a version label\n"
               "recorded on each member: every member runs the same bootagent and etcd\n"
               "binaries, $IMGBUILD_BOOTAGENT, or the one built next to imgbuild, or from PATH.\n"
               "\n"
               "Provider \"exoscale\": members are the instances of an Exoscale instance pool\n"
               "(created at size 0, then scaled up one member at a time) booted from template T:\n"
               "a template id, or the name of a private template in the zone (etcd-2 is what\n"
               "imgbuild build --provider exoscale makes of template etcd 2). The instances' own\n"
               "bootagent joins etcd on first boot; members are told apart by their lease on\n"
               "the managed private network. This command must reach the members'\n"
               "etcd (default port 2379) at those addresses with the operator's client\n"
               "certificate (--etcd-*; the files are read at each command, not copied). A member\n"
               "leaves by being removed through the etcd API, then it is evicted from the pool.\n"
               "A new member that is not healthy after --start-timeout seconds (default 900)\n"
               "stops the command.\n"
               "A roll points the pool at the new template (re-sending its list fields) before\n"
               "each new member. Agent reports are not available (no SSH). Credentials:\n"
               "--credentials FILE (api_key = ..., api_secret = ...; mode 0600) or\n"
               "EXOSCALE_API_KEY and EXOSCALE_API_SECRET. --api-endpoint (default\n"
               "$EXOSCALE_API_ENDPOINT, else https://api-{zone}.exoscale.com/v2; e.g.\n"
               "http://127.0.0.1:PORT/{zone}/v2) is for private endpoints and tests.\n"
               "\n"
               "State: $IMGBUILD_STATE_DIR/pools/NAME (else ~/.local/state/imgbuild/pools/NAME).\n"
               "Exit status: 0 success, 1 errors (also: pool busy), 4 cluster not healthy.\n");
}

/* Whether ref is NAME@VERSION of a template in the image store. */
static bool template_in_store(const char *cache_dir, const char *ref) {
        _cleanup_free_ char *store = NULL;
        _cleanup_(base_image_done) base_image b = {};
        return strchr(ref, '@') && base_store_dir(cache_dir, &store) >= 0 && template_open(store, ref, &b) >= 0;
}

static int exit_status(int r) {
        return r >= 0 ? EXIT_OK : r == -POOL_EUNHEALTHY ? EXIT_POOL_UNHEALTHY : EXIT_FAILURE_GENERIC;
}

static int fail(const char *what, const char *name, int r, const buf *err) {
        log_error("pool %s: %s failed: %s", name, what, err->len ? err->data : strerror(-r));
        return exit_status(r);
}

static void print_status(json_t *st) {
        json_t *m;
        size_t i;

        printf("pool %s: template %s, size %" JSON_INTEGER_FORMAT ", provider %s%s%s\n",
               json_path_string(st, "name"), json_path_string(st, "template"),
               json_integer_value(json_object_get(st, "size")), json_path_string(st, "provider"),
               json_path_string(st, "roll_target") ? ", rolling to " : "",
               strempty(json_path_string(st, "roll_target")));
        printf("%-36s  %-13s  %-10s  %-7s  %-7s  %-11s  %-7s  %s\n", "INSTANCE", "IP", "TEMPLATE", "STATE",
               "MACHINE", "ETCD", "HEALTH", "AGENT");
        json_array_foreach(json_object_get(st, "members"), i, m) {
                printf("%-36s  %-13s  %-10s  %-7s  %-7s  %-11s  %-7s  %s\n", json_path_string(m, "id"),
                       json_path_string(m, "ip"), json_path_string(m, "template"), json_path_string(m, "state"),
                       json_path_string(m, "machine"), strempty(json_path_string(m, "etcd.role")),
                       json_path_bool(m, "etcd.healthy") ? "healthy" : "DOWN",
                       strempty(json_path_string(m, "agent.outcome")));
                /* Timeline of the agent's last run: stage at t ms (took ms). */
                json_t *stages = json_path(m, "agent.stages"), *s;
                size_t k;
                int64_t last_run = 0;
                json_array_foreach(stages, k, s)
                        (void) json_path_i64(s, "run", &last_run);
                bool any = false;
                json_array_foreach(stages, k, s) {
                        int64_t run = 0, t = 0, ms = 0;
                        (void) json_path_i64(s, "run", &run);
                        (void) json_path_i64(s, "t_ms", &t);
                        (void) json_path_i64(s, "ms", &ms);
                        if (run != last_run)
                                continue;
                        printf("%s%s@%" PRId64 "ms(%" PRId64 ")%s", any ? " " : "    timeline: ",
                               json_path_string(s, "stage"), t, ms, json_path_bool(s, "ok") ? "" : "!FAILED");
                        any = true;
                }
                if (any)
                        printf("\n");
        }
}

/* Options of the exoscale provider (no short forms). */
enum {
        OPT_ZONE = 0x100,
        OPT_INSTANCE_TYPE,
        OPT_DISK_SIZE,
        OPT_SECURITY_GROUP,
        OPT_PRIVATE_NETWORK,
        OPT_ETCD_CA,
        OPT_ETCD_CERT,
        OPT_ETCD_KEY,
        OPT_ETCD_PORT,
        OPT_CREDENTIALS,
        OPT_API_ENDPOINT,
        OPT_START_TIMEOUT,
};

int cmd_pool(int argc, char **argv) {
        static const struct option options[] = {
                { "template", required_argument, NULL, 't' },
                { "size", required_argument, NULL, 's' },
                { "provider", required_argument, NULL, 'p' },
                { "port-base", required_argument, NULL, 'P' },
                { "cache-dir", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                { "abort", no_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                { "zone", required_argument, NULL, OPT_ZONE },
                { "instance-type", required_argument, NULL, OPT_INSTANCE_TYPE },
                { "disk-size", required_argument, NULL, OPT_DISK_SIZE },
                { "security-group", required_argument, NULL, OPT_SECURITY_GROUP },
                { "private-network", required_argument, NULL, OPT_PRIVATE_NETWORK },
                { "etcd-ca", required_argument, NULL, OPT_ETCD_CA },
                { "etcd-cert", required_argument, NULL, OPT_ETCD_CERT },
                { "etcd-key", required_argument, NULL, OPT_ETCD_KEY },
                { "etcd-port", required_argument, NULL, OPT_ETCD_PORT },
                { "credentials", required_argument, NULL, OPT_CREDENTIALS },
                { "api-endpoint", required_argument, NULL, OPT_API_ENDPOINT },
                { "start-timeout", required_argument, NULL, OPT_START_TIMEOUT },
                {}
        };
        _cleanup_strv_free_ char **security_groups = NULL;
        pool_exoscale_options exo = {};
        const char *template = NULL, *provider = NULL, *cache_dir = NULL;
        long size = -1, port_base = -1;
        bool json = false, abort_roll = false;
        _cleanup_buf_ buf err = BUF_INIT(8192);
        _cleanup_(pool_freep) pool *p = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "t:s:p:P:c:jah", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        template = optarg;
                        break;
                case 's':
                case 'P': {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v < 1 || v > 65535) {
                                log_error("pool: invalid --%s '%s'", c == 's' ? "size" : "port-base", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        *(c == 's' ? &size : &port_base) = v;
                        break;
                }
                case 'p':
                        provider = optarg;
                        break;
                case 'c':
                        cache_dir = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'a':
                        abort_roll = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case OPT_ZONE:
                        exo.zone = optarg;
                        break;
                case OPT_INSTANCE_TYPE:
                        exo.instance_type = optarg;
                        break;
                case OPT_DISK_SIZE:
                case OPT_ETCD_PORT:
                case OPT_START_TIMEOUT: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v == 0 || v > 65535) {
                                log_error("pool: invalid --%s '%s'", c == OPT_DISK_SIZE ? "disk-size" :
                                          c == OPT_ETCD_PORT ? "etcd-port" : "start-timeout", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        *(c == OPT_DISK_SIZE ? &exo.disk_size_gb : c == OPT_ETCD_PORT ? &exo.etcd_port :
                          &exo.start_timeout_s) = (unsigned) v;
                        break;
                }
                case OPT_SECURITY_GROUP:
                        if (strv_push(&security_groups, optarg) < 0) {
                                log_error("pool: out of memory");
                                return EXIT_FAILURE_GENERIC;
                        }
                        break;
                case OPT_PRIVATE_NETWORK:
                        exo.private_network = optarg;
                        break;
                case OPT_ETCD_CA:
                        exo.etcd_ca = optarg;
                        break;
                case OPT_ETCD_CERT:
                        exo.etcd_cert = optarg;
                        break;
                case OPT_ETCD_KEY:
                        exo.etcd_key = optarg;
                        break;
                case OPT_CREDENTIALS:
                        exo.credentials_file = optarg;
                        break;
                case OPT_API_ENDPOINT:
                        exo.api_endpoint = optarg;
                        break;
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        if (argc - optind != 2) {
                log_error("pool: expected a subcommand and a pool name (see imgbuild pool --help)");
                return EXIT_FAILURE_GENERIC;
        }
        const char *verb = argv[optind], *name = argv[optind + 1];

        if (streq(verb, "create")) {
                if (!template) {
                        log_error("pool create: --template is required");
                        return EXIT_FAILURE_GENERIC;
                }
                if (size > 15) {
                        log_error("pool create: --size %ld is more than this tool will roll (15)", size);
                        return EXIT_FAILURE_GENERIC;
                }
                if (!provider)
                        provider = template_in_store(cache_dir, template) ? "qemu" : "host";
                r = pool_new(name, provider, template, size > 0 ? (unsigned) size : 3, &p, &err);
                if (r < 0)
                        return fail("create", name, r, &err);
                if (streq(provider, "exoscale")) {
                        exo.pool_name = name;
                        exo.template = template;
                        exo.security_groups = security_groups;
                        r = pool_exoscale_configure(p->provider_state, &exo, &err);
                        if (r < 0) {
                                log_error("pool create: %s", err.data);
                                (void) pool_delete(p, &err);
                                return EXIT_FAILURE_GENERIC;
                        }
                } else {
                        /* Below the kernel's ephemeral range (32768..): a port an outgoing
                         * connection holds cannot be listened on. */
                        if (port_base < 0)
                                port_base = 10000 + (long) (random_u64() % 44) * 500;
                        r = streq(provider, "qemu") ? pool_qemu_configure(p->provider_state, (int) port_base, cache_dir)
                                                    : pool_host_set_port_base(p->provider_state, (int) port_base);
                        if (r == -ERANGE) {
                                log_error("pool create: --port-base %ld leaves no room for the pool's ports", port_base);
                                return EXIT_FAILURE_GENERIC;
                        }
                        if (r < 0) {
                                log_error_errno(r, "pool create: Failed to find the image store: %m");
                                return EXIT_FAILURE_GENERIC;
                        }
                }
                r = pool_converge(p, &err);
                if (r < 0) {
                        log_error("pool %s: create failed: %s (resume with 'imgbuild pool scale %s --size %u', "
                                  "remove with 'imgbuild pool delete %s')",
                                  name, err.len ? err.data : strerror(-r), name, p->size, name);
                        return exit_status(r);
                }
                log_info("pool %s: %u members on %s", name, p->size, p->template);
                return EXIT_OK;
        }

        if (!streq(verb, "status") && !streq(verb, "scale") && !streq(verb, "roll") && !streq(verb, "delete")) {
                log_error("pool: unknown subcommand '%s'", verb);
                return EXIT_FAILURE_GENERIC;
        }
        r = pool_load(name, !streq(verb, "status"), &p, &err);
        if (r < 0)
                return fail(verb, name, r, &err);

        if (streq(verb, "status")) {
                _cleanup_json_ json_t *st = NULL;
                r = pool_status(p, &st, &err);
                if (r < 0)
                        return fail("status", name, r, &err);
                if (json) {
                        _cleanup_free_ char *text = json_dump_compact(st);
                        if (!text)
                                return fail("status", name, -ENOMEM, &err);
                        puts(text);
                } else
                        print_status(st);
                return EXIT_OK;
        }
        if (streq(verb, "scale")) {
                if (size < 1 || size > 15) {
                        log_error("pool scale: --size 1..15 is required");
                        return EXIT_FAILURE_GENERIC;
                }
                p->size = (unsigned) size;
                r = pool_converge(p, &err);
                return r < 0 ? fail("scale", name, r, &err) : EXIT_OK;
        }
        if (streq(verb, "roll")) {
                if (abort_roll == !!template) {
                        log_error("pool roll: give either --template T@V or --abort");
                        return EXIT_FAILURE_GENERIC;
                }
                r = abort_roll ? pool_roll_abort(p, &err) : pool_roll(p, template, &err);
                if (r < 0)
                        return fail(abort_roll ? "roll --abort" : "roll", name, r, &err);
                log_info("pool %s: %s", name, abort_roll ? "roll stopped" : "every member is on the new template");
                return EXIT_OK;
        }
        r = pool_delete(p, &err);
        return r < 0 ? fail("delete", name, r, &err) : EXIT_OK;
}
