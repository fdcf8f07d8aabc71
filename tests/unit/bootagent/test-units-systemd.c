/* The sd-bus path of units.c against a real systemd. It needs systemd as PID 1 and root, so on
 * the build host (no systemd) it is skipped; tests/e2e/test-units-systemd.sh copies this binary
 * into a booted base VM through the communicator and runs it there. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "spawn.h"
#include "units.h"

#define UNIT "imgbuild-units-test.service"
#define UNIT_PATH "/run/systemd/system/" UNIT
#define MARKER "/run/imgbuild-units-test.started"

static int systemctl(const char *verb, const char *unit) {
        int status;
        CHECK_OK(spawn_run(SPAWN_ARGV("systemctl", verb, unit), NULL, &status));
        return status;
}

static bool is_active(void) { return systemctl("is-active", UNIT) == 0; }

static void daemon_reload(void) { CHECK(systemctl("daemon-reload", NULL) == 0); }

/* Poll the unit's state until it reports stopped (a readiness wait, not a timing check: 60 s is
 * far above the second it takes). */
static bool wait_stopped(units_state *st) {
        for (int i = 0; i < 600; i++) {
                int r = units_systemd_state(UNIT, st);
                CHECK(r >= 0);
                if (r == 0)
                        return true;
                units_state_done(st);
                usleep(100 * 1000);
        }
        return false;
}

int main(void) {
        char *result = NULL;

        if (sd_booted() <= 0)
                TEST_SKIP("systemd is not PID 1 here (the e2e tier runs this inside a VM)");
        if (geteuid() != 0)
                TEST_SKIP("needs root to start units");

        /* A unit that records that it ran, then stays active. */
        static const char unit[] = "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                                   "ExecStart=/bin/touch " MARKER "\n";
        unlink(MARKER);
        CHECK_OK(write_file_atomic(UNIT_PATH, unit, sizeof(unit) - 1, 0644, (uid_t) -1, (gid_t) -1));
        daemon_reload();

        CHECK_OK(units_systemd_job("StartUnit", UNIT, 30000, &result));
        CHECK_STREQ(result, "done");
        free(result);
        CHECK(access(MARKER, F_OK) == 0);
        CHECK(is_active());

        CHECK_OK(units_systemd_job("StopUnit", UNIT, 30000, NULL));
        CHECK(!is_active());

        /* A unit whose start fails reports the job result, not success. */
        static const char failing[] = "[Service]\nType=oneshot\nExecStart=/bin/false\n";
        CHECK_OK(write_file_atomic(UNIT_PATH, failing, sizeof(failing) - 1, 0644, (uid_t) -1, (gid_t) -1));
        daemon_reload();
        CHECK(units_systemd_job("StartUnit", UNIT, 30000, &result) == -EIO);
        CHECK_STREQ(result, "failed");
        free(result);

        /* An unknown unit is an error from the bus, not a hang. */
        CHECK(units_systemd_job("StartUnit", "imgbuild-no-such-unit.service", 30000, NULL) < 0);
        units_state st = { 0 };
        CHECK(units_systemd_state("imgbuild-no-such-unit.service", &st) == -ENOENT);

        /* The state of a running service, then of one that exited with status 2 after it started
         * (the job is done at once for Type=simple: the exit comes later). */
        static const char running[] = "[Service]\nExecStart=/bin/sleep 1000\n";
        CHECK_OK(write_file_atomic(UNIT_PATH, running, sizeof(running) - 1, 0644, (uid_t) -1, (gid_t) -1));
        daemon_reload();
        CHECK_OK(units_systemd_job("StartUnit", UNIT, 30000, NULL));
        CHECK(units_systemd_state(UNIT, &st) == 1);
        CHECK_STREQ(st.active_state, "active");
        CHECK_STREQ(st.sub_state, "running");
        units_state_done(&st);
        CHECK_OK(units_systemd_job("StopUnit", UNIT, 30000, NULL));

        static const char exits[] = "[Service]\nExecStart=/bin/sh -c 'sleep 1; exit 2'\n";
        CHECK_OK(write_file_atomic(UNIT_PATH, exits, sizeof(exits) - 1, 0644, (uid_t) -1, (gid_t) -1));
        daemon_reload();
        CHECK_OK(units_systemd_job("StartUnit", UNIT, 30000, NULL));
        CHECK(wait_stopped(&st));
        CHECK_STREQ(st.active_state, "failed");
        CHECK_STREQ(st.result, "exit-code");
        CHECK(st.exec_main_status == 2);
        units_state_done(&st);
        CHECK(systemctl("reset-failed", UNIT) == 0);

        /* One that systemd restarts counts as exited while it waits for the restart. */
        static const char restarts[] = "[Service]\nExecStart=/bin/sh -c 'exit 3'\nRestart=always\nRestartSec=30\n";
        CHECK_OK(write_file_atomic(UNIT_PATH, restarts, sizeof(restarts) - 1, 0644, (uid_t) -1, (gid_t) -1));
        daemon_reload();
        CHECK_OK(units_systemd_job("StartUnit", UNIT, 30000, NULL));
        CHECK(wait_stopped(&st));
        CHECK_STREQ(st.sub_state, "auto-restart");
        CHECK(st.exec_main_status == 3);
        units_state_done(&st);
        CHECK_OK(units_systemd_job("StopUnit", UNIT, 30000, NULL));

        unlink(UNIT_PATH);
        unlink(MARKER);
        daemon_reload();
        printf("units over sd-bus: start, stop, failed job, unknown unit and the state of running, exited and restarting units all behave\n");
        return 0;
}
