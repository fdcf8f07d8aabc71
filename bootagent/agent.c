#include "agent.h"

#include <stdio.h>
#include <string.h>

#include "cmd-leave.h"
#include "cmd-renew.h"
#include "cmd-status.h"
#include "comm-serve.h"
#include "firstboot.h"
#include "http.h"
#include "install-units.h"
#include "json.h"
#include "log.h"

typedef struct command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *help;
} command;

/* One line per command. */
static const command commands[] = {
        { "firstboot", cmd_firstboot, "identity, Vault login, secrets, certificates, role setup, units" },
        { "renew", cmd_renew, "re-issue certificates past their renewal point" },
        { "leave", cmd_leave, "remove this etcd member from its cluster and wipe its data" },
        { "status", cmd_status, "show the journal: stages, outcome, timeline (--json)" },
        { "install-units", cmd_install_units, "put the units (and --config) into an image (the image builder runs this)" },
        { "serve", cmd_comm_serve, "serve the imgbuild communicator (build VMs; --device PATH | --stdio)" },
};

static void usage(FILE *f) {
        fprintf(f, "Usage: bootagent COMMAND [--config PATH] [--root DIR]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int bootagent_main(int argc, char **argv) {
        log_set_program("bootagent");
        json_wipe_on_free();
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "--version")) {
                printf("bootagent %s\n", BOOTAGENT_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[1], commands[i].name)) {
                        if (http_global_init() < 0) {
                                log_error("Failed to initialize libcurl");
                                return 1;
                        }
                        return commands[i].run(argc - 1, argv + 1);
                }
        log_error("Unknown command '%s'", argv[1]);
        usage(stderr);
        return 2;
}
