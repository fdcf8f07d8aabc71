/* Child processes via posix_spawn with argv arrays: never a shell string. */
#pragma once

/* This header's name shadows the C library's <spawn.h> for everything built with lib/ on the
 * include path, so pull the real one in here: both <spawn.h> and "spawn.h" then give both.
 * (Inside lib/, write <spawn.h>: a quoted include found in the including file's own directory
 * makes #include_next find this file again.) */
#include_next <spawn.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

typedef struct spawn_options {
        char *const *envp;     /* NULL: inherit environ */
        const char *cwd;       /* NULL: inherit (uses posix_spawn_file_actions_addchdir_np) */
        int stdin_fd;          /* -1: /dev/null; otherwise dup'ed onto 0 */
        int stdout_fd;         /* -1: inherit; otherwise dup'ed onto 1 */
        int stderr_fd;         /* -1: inherit; otherwise dup'ed onto 2 */
        /* (The fds are the parent's: stderr_fd = 1 means the parent's stdout even when stdout_fd
         * redirects the child's stdout. Other fds are not inherited if they are O_CLOEXEC.) */
        bool new_process_group;/* child leads a new process group (kill(-pid) ends it and its children) */
} spawn_options;

/* An argv from string literals for the calls below, e.g.
 * spawn_run(SPAWN_ARGV("qemu-img", "info", path), NULL, &status). The array lives until the end
 * of the enclosing block. (-Wwrite-strings makes literals const; exec never writes to argv.) */
#define SPAWN_ARGV(...) ((char *const *) (const char *const[]){ __VA_ARGS__, NULL })

#define SPAWN_OPTIONS_DEFAULT ((spawn_options){ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 })

/* Start argv[0] (looked up in PATH). opts may be NULL for defaults. The child starts with no
 * blocked signals and all dispositions at default. Returns 0 and the pid, or a negative errno
 * (-ENOENT if the program or cwd does not exist, -EINVAL for an empty argv). */
int spawn_start(char *const argv[], const spawn_options *opts, pid_t *ret_pid);

/* Wait for pid. *ret_status is the exit code, or 128+signal if it was killed. Returns 0 or -errno. */
int spawn_wait(pid_t pid, int *ret_status);

/* Start and wait. Returns 0 and the exit status (see spawn_wait). */
int spawn_run(char *const argv[], const spawn_options *opts, int *ret_status);

/* Start and wait, appending stdout to out (capped by out->max; output beyond the cap is drained
 * and dropped, and -ENOBUFS returned after the child exits, with out holding the first max bytes
 * and *ret_status untouched). stderr is inherited unless set in opts; opts->stdout_fd is ignored.
 * Returns 0 and the exit status. */
int spawn_capture(char *const argv[], const spawn_options *opts, buf *out, int *ret_status);

/* Render argv for messages ("qemu-img convert -O qcow2 a b"), single-quoting words with spaces
 * or other shell characters so the result can be pasted into a shell. Returns a new string or
 * NULL. */
char *spawn_argv_to_string(char *const argv[]);

/* The PID in a PID file (decimal, as written by whoever started the process), or 0 when the file
 * is missing, unreadable or holds no PID > 1. */
pid_t pid_file_read(const char *path);

/* Whether pid exists and is not a zombie: a killed child of a parent that is gone may stay a
 * zombie for good where PID 1 does not reap (containers), and must count as dead. */
bool process_alive(pid_t pid);
