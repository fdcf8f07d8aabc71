/* pool-cloud: processes are recognised by name and stopped as a group through a pidfd. */
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

static void *stop_member(void *userdata) {
        pool_stop_group(*(pid_t *) userdata, "member-x");
        return NULL;
}

/* A process named member-x leading its own group; only async-signal-safe calls after the fork
 * (a thread of the test may be running). */
static void become_member(void) {
        (void) setsid();
        (void) prctl(PR_SET_NAME, "member-x");
        for (;;)
                pause();
}

/* A member that exits on SIGTERM while pool_stop_group waits for it, whose PID is then given to
 * another process of the same name leading a group of the same id (clone3 with set_tid, as a
 * recycled PID would be): only the member was signalled. A wait on kill(pid, 0) or on
 * /proc/PID/comm would take the newcomer for the member and SIGKILL its group after 5 s; the
 * pidfd saw the member exit. Needs CAP_SYS_ADMIN (root) for set_tid: skipped otherwise. */
static void test_pid_reused(void) {
        pid_t member = fork();
        CHECK(member >= 0);
        if (member == 0)
                become_member();
        while (!pool_process_is(member, "member-x"))
                time_sleep_ms(10);

        pthread_t t;
        CHECK(pthread_create(&t, NULL, stop_member, &member) == 0);
        int status;
        CHECK(waitpid(member, &status, 0) == member);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

        pid_t want = member;
        struct clone_args args = { .exit_signal = SIGCHLD, .set_tid = (uint64_t) (uintptr_t) &want, .set_tid_size = 1 };
        long newcomer = syscall(SYS_clone3, &args, sizeof(args));
        if (newcomer == 0)
                become_member();
        int e = errno;
        CHECK(pthread_join(t, NULL) == 0);
        if (newcomer < 0) {
                fprintf(stderr, "pid reuse: skipped, clone3 with set_tid: %s\n", strerror(e));
                return;
        }
        CHECK(newcomer == member);
        /* The newcomer was not signalled: our SIGUSR2 is what ends it. (A SIGKILL sent to it
         * earlier, even one still being delivered, would be the signal it died of.) */
        CHECK(kill((pid_t) newcomer, SIGUSR2) == 0);
        CHECK(waitpid((pid_t) newcomer, &status, 0) == newcomer);
        CHECK(WIFSIGNALED(status));
        if (WTERMSIG(status) != SIGUSR2)
                fprintf(stderr, "the newcomer died of signal %d\n", WTERMSIG(status));
        CHECK(WTERMSIG(status) == SIGUSR2);
}

int main(void) {
        test_pid_reused();

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
