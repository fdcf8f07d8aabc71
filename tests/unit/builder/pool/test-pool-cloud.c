/* pool-cloud: processes are recognised by name and stopped as a group through a pidfd. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pool-cloud.h"
#include "spawn.h"
#include "time-util.h"

static pid_t start_group(const char *script) {
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.new_process_group = true;
        pid_t pid;
        CHECK_OK(spawn_start(SPAWN_ARGV("/bin/sh", "-c", script), &opts, &pid));
        return pid;
}

/* Reaps pid (our child) and says whether it is gone within timeout_ms. */
static bool reaped(pid_t pid, int timeout_ms) {
        for (int64_t end = time_now_ms() + timeout_ms; time_now_ms() < end; time_sleep_ms(20))
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return true;
        return false;
}

int main(void) {
        /* A group leader named sh with a child: both end on SIGTERM. */
        pid_t pid = start_group("sleep 100 & wait");
        time_sleep_ms(200);
        CHECK(pool_process_is(pid, "sh"));
        CHECK(!pool_process_is(pid, "etcd"));
        CHECK(!pool_process_is(1, "systemd") && !pool_process_is(0, "sh"));

        /* Another name: not ours to stop (a recycled PID). */
        pool_stop_group(pid, "etcd");
        CHECK(!reaped(pid, 300));
        pool_stop_group(pid, "sh");
        CHECK(reaped(pid, 10000)); /* it has exited when pool_stop_group returns; reaping is ours */
        CHECK(!pool_process_is(pid, "sh"));

        /* One that ignores SIGTERM gets SIGKILL after 5 s. */
        pid = start_group("trap '' TERM; while :; do sleep 0.1; done");
        time_sleep_ms(200);
        int64_t t0 = time_now_ms();
        pool_stop_group(pid, "sh");
        CHECK(reaped(pid, 10000));
        CHECK(time_now_ms() - t0 >= 4900);
        return 0;
}
