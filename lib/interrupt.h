/* What SIGINT, SIGTERM and SIGHUP do to a command-line program that runs processes it must not
 * leave behind (build VMs, an SSH session to a build instance). The command layer installs the
 * handlers once (interrupt_install); the modules that start such processes register them here.
 *
 * On one of these signals the handler kills every registered process (kill(target, sig), both
 * async-signal-safe) and records the signal; the call in progress then fails (EINTR, or EPIPE/EOF
 * from the dead process) and interrupt_signal() says which signal it was, so the caller can clean
 * up and exit 128+N. When nothing is registered and nobody holds (interrupt_hold), the signal has
 * its default effect, as if it had never been caught: the process dies. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/* Handlers for SIGINT, SIGTERM, SIGHUP (and SIGALRM, for interrupt_alarm), without SA_RESTART (a blocked read returns, so its
 * caller sees the process it talks to is gone), and SIGPIPE ignored (a peer dying under a write
 * gives EPIPE; lib/spawn resets dispositions for the programs started). Call once, from the
 * program's entry point, before any process is registered. */
void interrupt_install(void);

/* Kill target with sig when a signal comes: target as kill() takes it (a pid, or -pgid for a
 * whole process group). Block the signals around starting the process and registering it if a
 * signal must not find it missing. Returns 0, or -ENOSPC when 32 targets are registered (it is
 * then not killed). Async-signal-safe against the handler; not thread-safe. */
int interrupt_register(pid_t target, int sig);
/* Forget target (as registered; unknown ones are ignored), and disarm interrupt_alarm() if it
 * was armed for target. */
void interrupt_unregister(pid_t target);

/* A deadline (one for the process, as alarm() has): after seconds, kill target with sig and make
 * interrupt_alarm_expired() true; the call in progress then fails as the target dies. seconds 0
 * disarms it. Re-arming clears interrupt_alarm_expired(). Installs the SIGALRM handler on first
 * use, so it also works without interrupt_install (tests). Not thread-safe. */
void interrupt_alarm(pid_t target, int sig, unsigned seconds);
/* Whether the last armed deadline passed (and killed its target). */
bool interrupt_alarm_expired(void);

/* Catch the signals even while nothing is registered: the caller checks interrupt_signal() and
 * cleans up itself (a cloud build deletes what it created). Holds nest; release each one. */
void interrupt_hold(void);
void interrupt_release(void);

/* The signal (SIGINT, SIGTERM or SIGHUP) that was caught, or 0. It stays set. */
int interrupt_signal(void);
/* The same as a flag an event loop can watch (nonzero once a signal was caught), for a service
 * that runs until stopped: hold (interrupt_hold), then loop until *flag. */
volatile sig_atomic_t *interrupt_signal_flag(void);
