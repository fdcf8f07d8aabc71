/* lib/interrupt: with nothing registered or held a signal has its default effect; held, it is
 * recorded and the process goes on; a registered target is killed with its signal; SIGPIPE is
 * ignored (EPIPE instead); the alarm kills its target unless disarmed; the table is bounded. Each case runs in a child of its own, since the
 * caught signal stays set for the life of the process. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "interrupt.h"

/* Run fn in a child; returns its wait status. */
static int in_child(int (*fn)(void)) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
                _exit(fn());
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        return status;
}

static int unhandled(void) {
        interrupt_install();
        (void) raise(SIGTERM);
        return 0; /* not reached: SIGTERM kills */
}

static int held(void) {
        interrupt_install();
        if (interrupt_signal() != 0)
                return 10;
        interrupt_hold();
        (void) raise(SIGINT);
        if (interrupt_signal() != SIGINT)
                return 11;
        interrupt_release();
        return 0;
}

static int registered(void) {
        interrupt_install();
        pid_t sleeper = fork();
        if (sleeper < 0)
                return 20;
        if (sleeper == 0) {
                for (;;)
                        pause();
        }
        if (interrupt_register(sleeper, SIGKILL) < 0)
                return 21;
        (void) raise(SIGHUP);
        if (interrupt_signal() != SIGHUP)
                return 22;
        int status;
        if (waitpid(sleeper, &status, 0) != sleeper || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                return 23;
        interrupt_unregister(sleeper);
        return 0;
}

static int sigpipe_ignored(void) {
        int p[2];
        interrupt_install();
        if (pipe2(p, O_CLOEXEC) < 0)
                return 30;
        close(p[0]);
        if (write(p[1], "x", 1) != -1 || errno != EPIPE)
                return 31;
        return 0;
}

static int alarm_kills(void) {
        pid_t sleeper = fork();
        if (sleeper < 0)
                return 50;
        if (sleeper == 0) {
                for (;;)
                        pause();
        }
        /* Disarmed by unregistering its target: nothing happens. */
        interrupt_alarm(sleeper, SIGKILL, 1);
        interrupt_unregister(sleeper);
        sleep(2);
        if (interrupt_alarm_expired() || waitpid(sleeper, NULL, WNOHANG) != 0)
                return 51;
        /* Armed: it kills the target with the signal given. */
        interrupt_alarm(sleeper, SIGKILL, 1);
        int status;
        pid_t w;
        while ((w = waitpid(sleeper, &status, 0)) < 0 && errno == EINTR) /* the alarm interrupts it */
                ;
        if (w != sleeper || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                return 52;
        if (!interrupt_alarm_expired())
                return 53;
        interrupt_alarm(sleeper, SIGKILL, 0);
        if (interrupt_alarm_expired())
                return 54;
        return 0;
}

static int table_full(void) {
        /* Targets that do not exist: kill() is never called here (no signal comes). */
        for (pid_t t = 1000000; t < 1000000 + 32; t++)
                if (interrupt_register(t, SIGKILL) < 0)
                        return 40;
        if (interrupt_register(2000000, SIGKILL) != -ENOSPC)
                return 41;
        interrupt_unregister(1000005);
        if (interrupt_register(2000000, SIGKILL) < 0)
                return 42;
        return 0;
}

int main(void) {
        int status = in_child(unhandled);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        status = in_child(held);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        status = in_child(registered);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        status = in_child(sigpipe_ignored);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        status = in_child(alarm_kills);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "alarm_kills: status %#x\n", (unsigned) status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        status = in_child(table_full);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return 0;
}
