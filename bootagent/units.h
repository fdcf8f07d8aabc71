/* Starting the role's units: over sd-bus (StartUnit "replace", wait for JobRemoved), or, with
 * "units = exec" on hosts without systemd (tests), by running exec_start ourselves detached in
 * its own process group with the PID recorded in <state_dir>/<unit>.pid. */
#pragma once

#include <sys/types.h>

/* How long the units stage waits for a unit's start job: above the TimeoutStartSec of the role
 * drop-ins (units/etcd.service.d: 5 min). */
#define UNITS_START_WAIT_MS (6 * 60 * 1000)

/* Call method ("StartUnit", "StopUnit", "RestartUnit") for unit over the system bus with mode
 * "replace" and wait for its job (timeout_ms). Returns 0, -EIO when the job result is not "done"
 * (*ret_result, may be NULL, receives it), or -errno. */
int units_systemd_job(const char *method, const char *unit, long timeout_ms, char **ret_result);

/* Whether unit (a loaded service) still runs, asked over the system bus. Returns 1 when it is
 * active, reloading or starting; 0 when it stopped or waits to be restarted by its Restart=
 * (ActiveState "failed" or "inactive", or SubState "auto-restart"), with its ActiveState,
 * SubState, the service's Result ("exit-code", "signal", ...) and ExecMainStatus (exit status or
 * signal number) in *ret (strings owned by ret: units_state_done()); -errno when the bus or
 * systemd cannot tell (a unit systemd does not know: -ENOENT). */
typedef struct units_state {
        char *active_state;
        char *sub_state;
        char *result;
        int exec_main_status;
} units_state;
int units_systemd_state(const char *unit, units_state *ret);
void units_state_done(units_state *s);

/* Expand ${NAME} in tmpl from env ("NAME=value" strings; unknown names: -EINVAL) and split at
 * spaces into argv. */
int units_expand(const char *tmpl, char *const *env, char ***ret_argv);

/* units = exec: start argv with env added to our environment unless the PID in pid_file is still
 * alive. stdout/stderr go to log_file. Returns 1 started, 0 already running, or -errno. */
int units_start_exec(char *const *argv, char *const *env, const char *pid_file, const char *log_file, pid_t *ret_pid);

/* Stop what units_start_exec started: SIGTERM to its process group, wait up to timeout_ms,
 * then SIGKILL. Removes pid_file. Missing file: 0. */
int units_stop_exec(const char *pid_file, long timeout_ms);

/* units = exec: the PID file and log file of unit under state_dir (<state_dir>/<unit>.pid and
 * .log), as new strings. Returns 0 or -ENOMEM (nothing set). */
int units_exec_paths(const char *state_dir, const char *unit, char **ret_pid_file, char **ret_log_file);

/* units = exec: whether what units_start_exec() started (pid_file) still runs. Returns 1 when it
 * does; 0 when it exited (or pid_file names no process), with *ret_status its exit status
 * (128+signal when killed) if it was this process's child, -1 otherwise (started by an earlier
 * run: only that it is gone is known). Reaps the child. */
int units_exec_running(const char *pid_file, int *ret_status);

/* sd_notify READY=1 when run by systemd (no-op otherwise). */
void units_notify_ready(const char *status);
