/* imgbuild pool: create / status / scale / roll / delete instance pools (pool.h) on any provider
 * (pool-providers.h): one function per verb, one table of verbs, one option parser for all. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "log.h"
#include "pool-providers.h"
#include "pool-roles.h"
#include "pool.h"
#include "strv.h"

/* Exit status when the role's gate refused a step (pool-role.h: POOL_EUNHEALTHY). */
#define EXIT_POOL_UNHEALTHY 4

/* What the command line says; every verb reads the fields it needs. */
typedef struct pool_args {
        const char *name;
        const char *template, *provider;
        long size;                      /* -1: not given */
        long drain_timeout_s;           /* -1: not given */
        bool json, abort_roll;
        char **security_groups;         /* owned */
        pool_create_options create;     /* the provider options (borrowed strings) */
} pool_args;

typedef struct pool_verb {
        const char *name;
        /* p is the pool, loaded (and locked unless read_only) before the call; NULL for a verb
         * that makes the pool itself. Returns the exit status. */
        int (*run)(pool_args *a, pool *p);
        bool loads, read_only;
        const char *summary;            /* for help(); continuation lines indented by 10 */
} pool_verb;

static int verb_create(pool_args *a, pool *p);
static int verb_status(pool_args *a, pool *p);
static int verb_scale(pool_args *a, pool *p);
static int verb_roll(pool_args *a, pool *p);
static int verb_delete(pool_args *a, pool *p);

static const pool_verb verbs[] = {
        { "create", verb_create, false, false,
          "start N members (default 3) one after another; each must serve (see\n"
          "          the roles below) before the next starts. The role is the one the\n"
          "          template's manifest records (qemu: the recipe's agent step), else\n"
          "          --role (default etcd); a --role the template contradicts is refused" },
        { "status", verb_status, true, true,
          "per member: instance id, template, machine state, the role's state\n"
          "          and health, agent outcome and stage timeline" },
        { "scale", verb_scale, true, false, "add or remove members one at a time" },
        { "roll", verb_roll, true, false,
          "replace every member not on T@V, one at a time: a new member joins\n"
          "          and must serve, then the old one leaves and is destroyed. Before\n"
          "          each step the role's gate must pass, otherwise the roll stops with\n"
          "          exit status 4. The roll is checkpointed: run it again to resume;\n"
          "          --abort stops it with every member on the old or the new template,\n"
          "          size N." },
        { "delete", verb_delete, true, false, "stop and remove every member and the pool's files" },
};

static void help(void) {
        printf("Usage: imgbuild pool create NAME --template T[@V] [--size N] [--provider qemu|host]\n"
               "                               [--port-base P] [--cache-dir DIR] [--role R] [--kubeconfig F]\n"
               "       imgbuild pool create NAME --provider host --role node --template T@V --kubeconfig F\n"
               "                            --kubelet PATH --kube-endpoint URL --kube-ca-pin sha256:HEX\n"
               "                            --kube-token-file FILE [--size N] [--port-base P]\n"
               "       imgbuild pool create NAME --provider exoscale --template T --zone Z --private-network ID\n"
               "                            --etcd-ca F --etcd-cert F --etcd-key F [--size N] [--instance-type T]\n"
               "                            [--disk-size GB] [--security-group ID]... [--etcd-port P]\n"
               "                            [--start-timeout S] [--credentials FILE] [--api-endpoint URL]\n"
               "       imgbuild pool status NAME [--json]\n"
               "       imgbuild pool scale NAME --size N\n"
               "       imgbuild pool roll NAME --template T@V [--drain-timeout S] | --abort\n"
               "       imgbuild pool delete NAME\n"
               "\n"
               "Instance pools, one bootagent per member, with a role (");
        for (size_t i = 0; pool_roles[i]; i++)
                printf("%s%s", i > 0 ? ", " : "", pool_roles[i]->name);
        printf(").\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-6s  %s\n", verbs[i].name, verbs[i].summary);
        for (size_t i = 0; pool_roles[i]; i++)
                printf("\n%s", pool_roles[i]->help);
        printf("\n"
               "Local pools (qemu, host) run their own local cloud (imgbuild serve: metadata,\n"
               "Vault-compatible secrets and PKI, cloud API). Each member's metadata and Vault\n"
               "are UNIX sockets in the pool directory only this user can open; the cloud API,\n"
               "etcd and the qemu members' network use ports P..P+500 on 127.0.0.1 (random\n"
               "below 32268 when --port-base is not given).\n");
        for (size_t i = 0; pool_providers[i]; i++)
                printf("\n%s", pool_providers[i]->help);
        printf("\n"
               "State: $IMGBUILD_STATE_DIR/pools/NAME (else ~/.local/state/imgbuild/pools/NAME).\n"
               "Exit status: 0 success, 1 errors (also: pool busy), 4 the role's gate refused\n"
               "a step (the members are not healthy enough).\n");
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
        /* The role's column: its object's "role" (etcd: leader, follower, ...) or "state" (node:
         * Ready, cordoned, ...), headed by the role's name. */
        const char *role = strempty(json_path_string(st, "role"));
        char header[16];
        size_t n = 0;
        for (; role[n] && n < sizeof(header) - 1; n++)
                header[n] = (char) toupper((unsigned char) role[n]);
        header[n] = '\0';
        printf("%-36s  %-13s  %-10s  %-7s  %-7s  %-11s  %-7s  %s\n", "INSTANCE", "IP", "TEMPLATE", "STATE",
               "MACHINE", header, "HEALTH", "AGENT");
        json_array_foreach(json_object_get(st, "members"), i, m) {
                json_t *r = json_object_get(m, role);
                const char *what = json_path_string(r, "role") ?: json_path_string(r, "state");
                printf("%-36s  %-13s  %-10s  %-7s  %-7s  %-11s  %-7s  %s\n", json_path_string(m, "id"),
                       json_path_string(m, "ip"), json_path_string(m, "template"), json_path_string(m, "state"),
                       json_path_string(m, "machine"), strempty(what),
                       json_path_bool(r, "healthy") ? "healthy" : "DOWN",
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

static int verb_create(pool_args *a, pool *p_unused) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        _cleanup_(pool_freep) pool *p = NULL;
        int r;

        (void) p_unused;
        if (!a->template) {
                log_error("pool create: --template is required");
                return EXIT_FAILURE_GENERIC;
        }
        if (a->size > POOL_SIZE_MAX) {
                log_error("pool create: --size %ld is more than this tool will roll (%d)", a->size, POOL_SIZE_MAX);
                return EXIT_FAILURE_GENERIC;
        }
        if (a->drain_timeout_s >= 0) {
                log_error("pool create: --drain-timeout is an option of pool roll");
                return EXIT_FAILURE_GENERIC;
        }
        if (!a->provider)
                a->provider = pool_provider_default(a->create.cache_dir, a->template);
        r = pool_new(a->name, a->provider, a->template, a->size > 0 ? (unsigned) a->size : 3, &p, &err);
        if (r < 0)
                return fail("create", a->name, r, &err);
        a->create.pool_name = a->name;
        a->create.template = a->template;
        a->create.security_groups = a->security_groups;
        r = pool_configure(p, &a->create, &err);
        if (r < 0) {
                log_error("pool create: %s", err.len ? err.data : strerror(-r));
                buf_clear(&err);
                (void) pool_delete(p, &err);
                return EXIT_FAILURE_GENERIC;
        }
        r = pool_converge(p, &err);
        if (r < 0) {
                log_error("pool %s: create failed: %s (resume with 'imgbuild pool scale %s --size %u', "
                          "remove with 'imgbuild pool delete %s')",
                          a->name, err.len ? err.data : strerror(-r), a->name, p->size, a->name);
                return exit_status(r);
        }
        log_info("pool %s: %u members on %s", a->name, p->size, p->template);
        return EXIT_OK;
}

static int verb_status(pool_args *a, pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        _cleanup_json_ json_t *st = NULL;
        int r;

        r = pool_status(p, &st, &err);
        if (r < 0)
                return fail("status", a->name, r, &err);
        if (a->json) {
                _cleanup_free_ char *text = json_dump_compact(st);
                if (!text)
                        return fail("status", a->name, -ENOMEM, &err);
                puts(text);
        } else
                print_status(st);
        return EXIT_OK;
}

static int verb_scale(pool_args *a, pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        int r;

        if (a->size < 1 || a->size > POOL_SIZE_MAX) {
                log_error("pool scale: --size 1..%d is required", POOL_SIZE_MAX);
                return EXIT_FAILURE_GENERIC;
        }
        p->size = (unsigned) a->size;
        r = pool_converge(p, &err);
        return r < 0 ? fail("scale", a->name, r, &err) : EXIT_OK;
}

static int verb_roll(pool_args *a, pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        int r;

        if (a->abort_roll == !!a->template) {
                log_error("pool roll: give either --template T@V or --abort");
                return EXIT_FAILURE_GENERIC;
        }
        if (a->drain_timeout_s >= 0) {
                if (a->abort_roll) {
                        log_error("pool roll: --drain-timeout goes with --template, not --abort");
                        return EXIT_FAILURE_GENERIC;
                }
                p->drain_timeout_ms = a->drain_timeout_s * 1000;
        }
        r = a->abort_roll ? pool_roll_abort(p, &err) : pool_roll(p, a->template, &err);
        if (r < 0)
                return fail(a->abort_roll ? "roll --abort" : "roll", a->name, r, &err);
        log_info("pool %s: %s", a->name, a->abort_roll ? "roll stopped" : "every member is on the new template");
        return EXIT_OK;
}

static int verb_delete(pool_args *a, pool *p) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        int r = pool_delete(p, &err);
        return r < 0 ? fail("delete", a->name, r, &err) : EXIT_OK;
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
        OPT_ROLE,
        OPT_KUBECONFIG,
        OPT_DRAIN_TIMEOUT,
        OPT_KUBELET,
        OPT_KUBE_ENDPOINT,
        OPT_KUBE_CA_PIN,
        OPT_KUBE_TOKEN_FILE,
};

/* The options of every verb, the subcommand and the pool name. Returns -1 to go on, else the exit
 * status to stop with (after --help, or a usage error that was logged). */
static int parse_args(int argc, char **argv, pool_args *a, const pool_verb **ret_verb) {
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
                { "role", required_argument, NULL, OPT_ROLE },
                { "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
                { "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
                { "kubelet", required_argument, NULL, OPT_KUBELET },
                { "kube-endpoint", required_argument, NULL, OPT_KUBE_ENDPOINT },
                { "kube-ca-pin", required_argument, NULL, OPT_KUBE_CA_PIN },
                { "kube-token-file", required_argument, NULL, OPT_KUBE_TOKEN_FILE },
                {}
        };
        pool_create_options *o = &a->create;
        int c;

        while ((c = getopt_long(argc, argv, "t:s:p:P:c:jah", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        a->template = optarg;
                        break;
                case 's':
                case 'P': {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v < 1 || v > 65535) {
                                log_error("pool: invalid --%s '%s'", c == 's' ? "size" : "port-base", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        if (c == 's')
                                a->size = v;
                        else
                                o->port_base = (int) v;
                        break;
                }
                case 'p':
                        a->provider = optarg;
                        break;
                case 'c':
                        o->cache_dir = optarg;
                        break;
                case 'j':
                        a->json = true;
                        break;
                case 'a':
                        a->abort_roll = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case OPT_ZONE:
                        o->zone = optarg;
                        break;
                case OPT_INSTANCE_TYPE:
                        o->instance_type = optarg;
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
                        *(c == OPT_DISK_SIZE ? &o->disk_size_gb : c == OPT_ETCD_PORT ? &o->etcd_port :
                          &o->start_timeout_s) = (unsigned) v;
                        break;
                }
                case OPT_SECURITY_GROUP:
                        if (strv_push(&a->security_groups, optarg) < 0) {
                                log_error("pool: out of memory");
                                return EXIT_FAILURE_GENERIC;
                        }
                        break;
                case OPT_PRIVATE_NETWORK:
                        o->private_network = optarg;
                        break;
                case OPT_ETCD_CA:
                        o->etcd_ca = optarg;
                        break;
                case OPT_ETCD_CERT:
                        o->etcd_cert = optarg;
                        break;
                case OPT_ETCD_KEY:
                        o->etcd_key = optarg;
                        break;
                case OPT_CREDENTIALS:
                        o->credentials_file = optarg;
                        break;
                case OPT_API_ENDPOINT:
                        o->api_endpoint = optarg;
                        break;
                case OPT_ROLE:
                        o->role = optarg;
                        break;
                case OPT_KUBECONFIG:
                        o->kubeconfig = optarg;
                        break;
                case OPT_KUBELET:
                        o->kubelet = optarg;
                        break;
                case OPT_KUBE_ENDPOINT:
                        o->kube_endpoint = optarg;
                        break;
                case OPT_KUBE_CA_PIN:
                        o->kube_ca_pin = optarg;
                        break;
                case OPT_KUBE_TOKEN_FILE:
                        o->kube_token_file = optarg;
                        break;
                case OPT_DRAIN_TIMEOUT: {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v < 1 || v > 24 * 3600) {
                                log_error("pool: invalid --drain-timeout '%s' (seconds, 1..86400)", optarg);
                                return EXIT_FAILURE_GENERIC;
                        }
                        a->drain_timeout_s = v;
                        break;
                }
                default:
                        return EXIT_FAILURE_GENERIC;
                }
        if (argc - optind != 2) {
                log_error("pool: expected a subcommand and a pool name (see imgbuild pool --help)");
                return EXIT_FAILURE_GENERIC;
        }
        a->name = argv[optind + 1];
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind])) {
                        *ret_verb = &verbs[i];
                        return -1;
                }
        log_error("pool: unknown subcommand '%s'", argv[optind]);
        return EXIT_FAILURE_GENERIC;
}

int cmd_pool(int argc, char **argv) {
        _cleanup_buf_ buf err = BUF_INIT(8192);
        _cleanup_(pool_freep) pool *p = NULL;
        pool_args a = { .size = -1, .drain_timeout_s = -1 };
        const pool_verb *verb = NULL;
        int status, r;

        status = parse_args(argc, argv, &a, &verb);
        if (status < 0 && verb->loads) {
                r = pool_load(a.name, !verb->read_only, &p, &err);
                if (r < 0)
                        status = fail(verb->name, a.name, r, &err);
        }
        if (status < 0)
                status = verb->run(&a, p);
        strv_free(a.security_groups);
        return status;
}
