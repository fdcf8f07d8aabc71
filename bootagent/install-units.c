/* bootagent install-units [--root DIR] [--role ROLE] [--config FILE]: put the agent's systemd
 * units (embedded at build time from bootagent/units/, see units-data.h) under
 * ROOT/etc/systemd/system, and, with --config, check FILE and install it as
 * ROOT/etc/bootagent/agent.conf (0600). The image builder runs this in the build VM, so the
 * units always match the baked-in binary and a broken config fails the build with FILE:LINE. */
#include "install-units.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent-config.h"
#include "fs.h"
#include "log.h"
#include "units-data.h"

/* The unit each role starts (agent.conf's [units] start default), whose drop-ins it gets. */
static const struct {
        const char *role, *unit;
} role_units[] = {
        { "etcd", "etcd.service" },
        { "node", "kubelet.service" },
};

/* Drop-ins for a role's own unit live in UNIT.d/ directories: only the role's are installed
 * (etcd.service.d/ for role etcd, kubelet.service.d/ for role node). */
static bool unit_wanted(const char *name, const char *role) {
        const char *slash = strchr(name, '/');
        if (!slash)
                return true;
        if (!role)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(role_units); i++) {
                size_t n = strlen(role_units[i].unit);
                if (streq(role, role_units[i].role) && strneq(name, role_units[i].unit, n) && strneq(name + n, ".d/", 3))
                        return true;
        }
        return false;
}

static int install_config(const char *root, const char *file, const char *role) {
        _cleanup_(agent_config_freep) agent_config *cfg = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_free_ char *text = NULL, *dest = NULL, *dir = NULL;
        size_t len;
        int r;

        r = agent_config_load(file, &cfg, &err);
        if (r < 0) {
                log_error("Invalid configuration: %s", err.data ? err.data : strerror(-r));
                return r;
        }
        if (role && !streq(agent_config_role_to_string(cfg->role), role)) {
                log_error("%s: [agent] role is %s, expected %s", file, agent_config_role_to_string(cfg->role), role);
                return -EINVAL;
        }
        r = read_file(file, 1024 * 1024, &text, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", file);
        if (asprintf(&dir, "%s/etc/bootagent", root) < 0 || asprintf(&dest, "%s/agent.conf", dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", dir);
        r = write_file_atomic(dest, text, len, 0600, 0, 0);
        explicit_bzero(text, len);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", dest);
        return 0;
}

int cmd_install_units(int argc, char **argv) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },
                { "role", required_argument, NULL, 'o' },
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *root = "", *role = NULL, *config = NULL;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r': root = optarg; break;
                case 'o': role = optarg; break;
                case 'c': config = optarg; break;
                case 'h':
                        printf("Usage: bootagent install-units [--root DIR] [--role ROLE] [--config FILE]\n"
                               "Install the agent's units into DIR/etc/systemd/system (the role's drop-ins too)\n"
                               "and, with --config, check FILE and install it as DIR/etc/bootagent/agent.conf.\n");
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'", argv[optind]);
                return 2;
        }

        if (config) {
                r = install_config(root, config, role);
                if (r < 0)
                        return 1;
        }
        for (size_t i = 0; i < n_unit_files; i++) {
                const unit_file *u = &unit_files[i];
                _cleanup_free_ char *path = NULL, *dir = NULL;

                if (!unit_wanted(u->name, role))
                        continue;
                if (asprintf(&path, "%s/etc/systemd/system/%s", root, u->name) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory"), 1;
                dir = path_dirname(path);
                r = dir ? mkdir_p(dir, 0755) : -ENOMEM;
                if (r >= 0)
                        r = write_file_atomic(path, u->data, u->size, 0644, (uid_t) -1, (gid_t) -1);
                if (r < 0) {
                        log_error_errno(r, "Failed to write %s: %m", path);
                        return 1;
                }
                printf("%s\n", path);
        }
        return 0;
}
