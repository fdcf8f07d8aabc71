#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

extern char **environ;

typedef struct job_wait {
        const char *path;
        char *result;
} job_wait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        job_wait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->path && streq(path, w->path) && !w->result)
                w->result = strdup(result);
        return 0;
}

int units_systemd_job(const char *method, const char *unit, long timeout_ms, char **ret_result) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        job_wait w = { 0 };
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        /* Subscribe before starting so the JobRemoved signal cannot be missed. */
        r = sd_bus_match_signal(bus, &slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return r;
        /* On the API bus systemd sends job signals only to subscribers (or the job's requester). */
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", &error, NULL, NULL);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", method, &error, &reply, "ss", unit, "replace");
        if (r < 0) {
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &w.path);
        if (r < 0)
                return r;
        int64_t end = time_now_ms() + timeout_ms;
        while (!w.result) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                int64_t t = time_now_ms();
                if (t >= end)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, (end - t) * 1000);
                if (r < 0)
                        return r;
        }
        r = streq(w.result, "done") ? 0 : -EIO;
        if (ret_result)
                *ret_result = w.result;
        else
                free(w.result);
        return r;
}

void units_state_done(units_state *s) {
        free(s->active_state);
        free(s->sub_state);
        free(s->result);
        *s = (units_state){ 0 };
}

int units_systemd_state(const char *unit, units_state *ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        units_state st = { .exec_main_status = -1 };
        const char *path;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        /* GetUnit, not LoadUnit: a unit systemd has not loaded has not run either. */
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "GetUnit", &error, &reply, "s", unit);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                        r = -ENOENT;
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        if ((r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                            "ActiveState", &error, &st.active_state)) < 0 ||
            (r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                            "SubState", &error, &st.sub_state)) < 0 ||
            (r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path,
                                            "org.freedesktop.systemd1.Service", "Result", &error, &st.result)) < 0 ||
            (r = sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path,
                                             "org.freedesktop.systemd1.Service", "ExecMainStatus", &error, 'i',
                                             &st.exec_main_status)) < 0) {
                sd_bus_error_free(&error);
                units_state_done(&st);
                return r;
        }
        bool stopped = streq(st.active_state, "failed") || streq(st.active_state, "inactive") ||
                       streq(st.sub_state, "auto-restart");
        *ret = st;
        return stopped ? 0 : 1;
}

int units_expand(const char *tmpl, char *const *env, char ***ret_argv) {
        _cleanup_free_ char *s = NULL;
        int r = strv_env_expand(tmpl, env, &s);
        if (r < 0)
                return r;
        return strv_split(s, " \t", ret_argv);
}

int units_start_exec(char *const *argv, char *const *env, const char *pid_file, const char *log_file, pid_t *ret_pid) {
        _cleanup_strv_free_ char **envp = strv_copy(environ);
        _cleanup_close_ int log_fd = -1;
        char pidbuf[32];
        pid_t pid = pid_file_read(pid_file);
        int r;

        if (process_alive(pid)) {
                *ret_pid = pid;
                return 0;
        }
        if (!envp && environ && environ[0])
                return -ENOMEM;
        for (char *const *e = env; e && *e; e++)
                if (strv_push(&envp, *e) < 0)
                        return -ENOMEM;
        log_fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return negative_errno();
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.envp = envp;
        opts.stdout_fd = log_fd;
        opts.stderr_fd = log_fd;
        opts.new_process_group = true;
        r = spawn_start(argv, &opts, &pid);
        if (r < 0)
                return r;
        snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int) pid);
        r = write_file_atomic(pid_file, pidbuf, strlen(pidbuf), 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0) {
                kill(-pid, SIGKILL);
                return r;
        }
        *ret_pid = pid;
        return 1;
}

int units_stop_exec(const char *pid_file, long timeout_ms) {
        pid_t pid = pid_file_read(pid_file);
        if (pid <= 0)
                return 0;
        if (kill(-pid, SIGTERM) < 0 && errno != ESRCH)
                return negative_errno();
        (void) kill(-pid, SIGCONT); /* a stopped process gets the SIGTERM only once it runs */
        for (long waited = 0; process_alive(pid) && waited < timeout_ms; waited += 50)
                usleep(50 * 1000);
        if (process_alive(pid))
                kill(-pid, SIGKILL);
        if (unlink(pid_file) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int units_exec_paths(const char *state_dir, const char *unit, char **ret_pid_file, char **ret_log_file) {
        _cleanup_free_ char *pid_file = NULL, *log_file = NULL;
        if (asprintf(&pid_file, "%s/%s.pid", state_dir, unit) < 0 ||
            asprintf(&log_file, "%s/%s.log", state_dir, unit) < 0)
                return -ENOMEM;
        *ret_pid_file = TAKE_PTR(pid_file);
        *ret_log_file = TAKE_PTR(log_file);
        return 0;
}

int units_exec_running(const char *pid_file, int *ret_status) {
        pid_t pid = pid_file_read(pid_file);
        int status;

        *ret_status = -1;
        if (pid <= 0)
                return 0;
        /* Started by this run: a child, whose exit status waitpid() tells. */
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == 0)
                return 1;
        if (w == pid) {
                *ret_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
                return 0;
        }
        return process_alive(pid) ? 1 : 0;
}

void units_notify_ready(const char *status) {
        (void) sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}
