#include "interrupt.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* The handler only reads these and calls kill(): a slot is filled sig first, target last. */
#define INTERRUPT_SLOTS 32
static volatile pid_t targets[INTERRUPT_SLOTS];
static volatile sig_atomic_t target_signals[INTERRUPT_SLOTS];
static volatile sig_atomic_t holds;
static volatile sig_atomic_t caught;
static volatile pid_t alarm_target;
static volatile sig_atomic_t alarm_signal;
static volatile sig_atomic_t alarm_expired;

static void on_signal(int sig) {
        bool any = holds > 0;
        for (size_t i = 0; i < INTERRUPT_SLOTS; i++)
                any = any || targets[i] != 0;
        if (!any) {
                /* Nothing to stop and nobody to clean up: behave as if we never caught it. */
                signal(sig, SIG_DFL);
                raise(sig);
                return;
        }
        for (size_t i = 0; i < INTERRUPT_SLOTS; i++) {
                pid_t t = targets[i];
                if (t != 0)
                        (void) kill(t, target_signals[i]);
        }
        caught = sig;
}

static void on_alarm(int sig) {
        pid_t t = alarm_target;
        if (t != 0) {
                (void) kill(t, alarm_signal);
                alarm_expired = 1;
        }
}

static void install_alarm(void) {
        static bool installed;
        if (installed)
                return;
        struct sigaction al = { .sa_handler = on_alarm };
        sigemptyset(&al.sa_mask);
        (void) sigaction(SIGALRM, &al, NULL);
        installed = true;
}

void interrupt_install(void) {
        install_alarm();
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigemptyset(&ign.sa_mask);
        (void) sigaction(SIGPIPE, &ign, NULL);
}

int interrupt_register(pid_t target, int sig) {
        for (size_t i = 0; i < INTERRUPT_SLOTS; i++)
                if (targets[i] == 0) {
                        target_signals[i] = sig;
                        targets[i] = target;
                        return 0;
                }
        return -ENOSPC;
}

void interrupt_unregister(pid_t target) {
        for (size_t i = 0; i < INTERRUPT_SLOTS; i++)
                if (targets[i] == target)
                        targets[i] = 0;
        if (alarm_target == target)
                alarm_target = 0;
}

void interrupt_alarm(pid_t target, int sig, unsigned seconds) {
        install_alarm();
        alarm(0);
        alarm_expired = 0;
        alarm_signal = sig;
        alarm_target = seconds > 0 ? target : 0;
        if (seconds > 0)
                alarm(seconds);
}

bool interrupt_alarm_expired(void) {
        return alarm_expired;
}

void interrupt_hold(void) {
        holds = holds + 1;
}

void interrupt_release(void) {
        if (holds > 0)
                holds = holds - 1;
}

int interrupt_signal(void) {
        return caught;
}

volatile sig_atomic_t *interrupt_signal_flag(void) {
        return &caught;
}
