/* What a build shows while it works, in one of three forms:
 *   plain (stderr is not a terminal): a log line as each step is found cached, starts and ends.
 *   live (stderr is a terminal, no --json): one line per step, redrawn in place about once a
 *     second with the elapsed time ("[3/6] packages etcd-server ... 41s"), and left on the screen
 *     with the step's duration and done, cached or FAILED. Long work that is not a step (base
 *     image, boot, export) shows the same way as a task, with the size of the file it writes if
 *     given. Everything else written meanwhile (log lines, the steps' own output) is printed
 *     above the live line, never through it: while live, stderr (and stdout, when it is the same
 *     terminal) is a pipe that a thread copies to the terminal, clearing the line before and
 *     redrawing it after. The thread blocks every signal, so imgbuild's signal handling
 *     (builder/provider/qemu/qemu.c) sees them as before.
 *   json: the plain lines, plus step-start and step-end events on stdout (see imgbuild build
 *     --help). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum progress_mode {
        PROGRESS_PLAIN,
        PROGRESS_LIVE,
        PROGRESS_JSON,
} progress_mode;

typedef struct progress progress;

/* PROGRESS_LIVE redirects stderr (and stdout if it is the terminal) until progress_free. Returns
 * 0 or -errno (not logged; nothing is redirected on failure). */
int progress_new(progress_mode mode, progress **ret);
/* Ends a line still running as FAILED, puts stderr and stdout back and stops the thread. */
progress *progress_free(progress *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(progress *, progress_free);

/* Steps, index counting from 0 of n. One step or task runs at a time. name and key are copied. */
void progress_step_cached(progress *p, size_t index, size_t n, const char *name, const char *key);
void progress_step_start(progress *p, size_t index, size_t n, const char *name, const char *key);
void progress_step_end(progress *p, bool ok);

/* A task: shown only when live. size_of (may be NULL) is a file whose size is shown as it grows.
 * A task that succeeded within a second leaves no line. */
void progress_task_start(progress *p, const char *name, const char *size_of);
/* The bytes done so far by a task started without size_of (an upload), shown with the next
 * redraw. */
void progress_task_bytes(progress *p, int64_t bytes);
void progress_task_end(progress *p, bool ok);

/* One status line, for drawing and for tests. */
typedef enum progress_state {
        PROGRESS_RUNNING,
        PROGRESS_DONE,
        PROGRESS_CACHED,
        PROGRESS_FAILED,
} progress_state;

typedef struct progress_line {
        size_t index, n;     /* n == 0: a task */
        const char *name;
        progress_state state;
        int64_t elapsed_ms;
        int64_t bytes;       /* < 0: not shown */
} progress_line;

/* "[3/6] NAME ... 41s", "[3/6] NAME ... 41.2s done", "[1/6] NAME ... cached", "NAME ... 12s 340.0 MiB"
 * into out, the name shortened with "..." so the line fits width columns (0: no limit). */
void progress_format(const progress_line *l, unsigned width, char *out, size_t size);
