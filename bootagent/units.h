/* Starting the role's units: over sd-bus (StartUnit "replace", wait for JobRemoved), or, with
 * "units = exec" on hosts without systemd (tests), by running exec_start ourselves detached in
 * its own process group with the PID recorded in <state_dir>/<unit>.pid. */
#pragma once

#include <sys/types.h>

/* Call method ("StartUnit", "StopUnit", "RestartUnit") for unit over the system bus with mode
 * "replace" and wait for its job (timeout_ms). Returns 0, -EIO when the job result is not "done"
 * (*ret_result, may be NULL, receives it), or -errno. */
int units_systemd_job(const char *method, const char *unit, long timeout_ms, char **ret_result);

/* Expand ${NAME} in tmpl from env ("NAME=value" strings; unknown names: -EINVAL) and split at
 * spaces into argv. */
int units_expand(const char *tmpl, char *const *env, char ***ret_argv);

/* units = exec: start argv with env added to our environment unless the PID in pid_file is still
 * alive. stdout/stderr go to log_file. Returns 1 started, 0 already running, or -errno. */
int units_start_exec(char *const *argv, char *const *env, const char *pid_file, const char *log_file, pid_t *ret_pid);

/* Stop what units_start_exec started: SIGTERM to its process group, wait up to timeout_ms,
 * then SIGKILL. Removes pid_file. Missing file: 0. */
int units_stop_exec(const char *pid_file, long timeout_ms);

/* sd_notify READY=1 when run by systemd (no-op otherwise). */
void units_notify_ready(const char *status);
