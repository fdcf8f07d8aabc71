/* `imgbuild serve`: option parsing, signals and the ready line around serve.c. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "interrupt.h"
#include "log.h"
#include "serve.h"


static void help(void) {
        printf("Usage: imgbuild serve --state-dir DIR\n"
               "\n"
               "Run the local cloud services until SIGTERM or SIGINT: the Exoscale-compatible\n"
               "API (api_port on 127.0.0.1), and per instance its metadata service\n"
               "(metadata_port, or metadata_socket) and Vault-compatible service (vault_port,\n"
               "or vault_socket), as DIR/cloud.json describes. A port on 127.0.0.1 is open to\n"
               "every local user; a socket NAME is DIR/sockets/NAME, which only this user can\n"
               "reach (directory 0700, socket 0600). DIR/cloud.json is re-read when it\n"
               "changes. The CA (DIR/pki/) and Vault tokens and secrets (DIR/vault.json) are\n"
               "kept in DIR.\n"
               "Prints \"serve: ready\" once every listener is bound.\n"
               "\n"
               "  -d, --state-dir DIR  the state directory\n"
               "  -h, --help           show this help\n"
               "\n"
               "Exit status: 0 when stopped, 1 on errors, 2 when cloud.json is invalid.\n");
}

int cmd_serve(int argc, char **argv) {
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(serve_freep) serve *s = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        const char *state_dir = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "d:h", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        state_dir = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 1;
                }
        if (optind < argc || !state_dir) {
                log_error("serve: %s", state_dir ? "unexpected arguments" : "--state-dir is required");
                return 1;
        }

        r = serve_new(state_dir, &s, &err);
        if (r < 0) {
                log_error("serve: %s", err.len > 0 ? err.data : strerror(-r));
                return r == -EINVAL ? 2 : 1;
        }
        /* SIGTERM/SIGINT stop the loop (lib/interrupt, installed once by cli.c). */
        interrupt_hold();
        printf("serve: ready\n");
        fflush(stdout);

        r = serve_run(s, interrupt_signal_flag());
        if (r < 0) {
                log_error_errno(r, "serve: Event loop failed: %m");
                return 1;
        }
        log_info("serve: stopped");
        return 0;
}
