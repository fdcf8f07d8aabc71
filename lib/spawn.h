/* Child processes via posix_spawn with argv arrays: never a shell string. */
#pragma once

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
        bool new_process_group;/* child leads a new process group (kill(-pid) ends it and its children) */
} spawn_options;

#define SPAWN_OPTIONS_DEFAULT ((spawn_options){ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 })

/* Start argv[0] (looked up in PATH). opts may be NULL for defaults. Returns 0 and the pid, or a
 * negative errno (-ENOENT if the program does not exist). */
int spawn_start(char *const argv[], const spawn_options *opts, pid_t *ret_pid);

/* Wait for pid. *ret_status is the exit code, or 128+signal if it was killed. Returns 0 or -errno. */
int spawn_wait(pid_t pid, int *ret_status);

/* Start and wait. Returns 0 and the exit status (see spawn_wait). */
int spawn_run(char *const argv[], const spawn_options *opts, int *ret_status);

/* Start and wait, collecting stdout into out (capped by out->max; the child's further output is
 * drained and dropped, and -ENOBUFS returned after it exits). stderr is inherited unless set in
 * opts. Returns 0 and the exit status. */
int spawn_capture(char *const argv[], const spawn_options *opts, buf *out, int *ret_status);

/* Render argv for messages ("qemu-img convert -O qcow2 a b"), quoting words with spaces.
 * Returns a new string or NULL. */
char *spawn_argv_to_string(char *const argv[]);
