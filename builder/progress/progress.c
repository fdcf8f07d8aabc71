#include "progress.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io-util.h"
#include "json.h"
#include "log.h"
#include "time-util.h"

/* Output without its newline yet is held back up to this much, so the live line never lands in
 * the middle of someone's line. */
#define PENDING_MAX 4096

struct progress {
        progress_mode mode;

        /* The current step or task. */
        bool active;
        size_t index, n;
        char *name, *key, *size_of;
        int64_t bytes;       /* progress_task_bytes(); < 0: none */
        int64_t start_ms;

        /* Live only. The lock covers everything above and below; nothing logs while holding it
         * (a log line would go into the pipe the lock's holder may be waiting to drain). */
        pthread_mutex_t lock;
        pthread_t thread;
        bool thread_started;
        int tty;             /* the terminal: a copy of the original stderr */
        int saved_stdout;    /* the original stdout, when it was redirected too; else -1 */
        int pipe_rd;         /* what stderr (and stdout) now write to */
        int stop[2];         /* a byte here tells the thread to finish */
        bool drawn;          /* the live line is on the terminal */
        char pending[PENDING_MAX];
        size_t n_pending;
};

static void format_duration(int64_t ms, bool precise, char *out, size_t size) {
        if (precise)
                snprintf(out, size, "%.1fs", (double) ms / 1000.0);
        else if (ms < 60 * 60 * 1000)
                snprintf(out, size, "%" PRId64 "s", ms / 1000);
        else
                snprintf(out, size, "%" PRId64 "m%02" PRId64 "s", ms / 60000, ms / 1000 % 60);
}

void progress_format(const progress_line *l, unsigned width, char *out, size_t size) {
        char prefix[48] = "", suffix[96], duration[32];

        if (l->n > 0)
                snprintf(prefix, sizeof(prefix), "[%zu/%zu] ", l->index + 1, l->n);
        format_duration(l->elapsed_ms, l->state != PROGRESS_RUNNING, duration, sizeof(duration));
        switch (l->state) {
        case PROGRESS_RUNNING:
                if (l->bytes >= 0)
                        snprintf(suffix, sizeof(suffix), " ... %s %.1f MiB", duration,
                                 (double) l->bytes / (1024.0 * 1024.0));
                else
                        snprintf(suffix, sizeof(suffix), " ... %s", duration);
                break;
        case PROGRESS_CACHED:
                snprintf(suffix, sizeof(suffix), " ... cached");
                break;
        case PROGRESS_DONE:
        case PROGRESS_FAILED:
                snprintf(suffix, sizeof(suffix), " ... %s %s", duration, l->state == PROGRESS_DONE ? "done" : "FAILED");
                break;
        }

        size_t name_len = strlen(l->name), room = SIZE_MAX;
        if (width > 0)
                room = width > strlen(prefix) + strlen(suffix) ? width - strlen(prefix) - strlen(suffix) : 0;
        if (name_len <= room)
                snprintf(out, size, "%s%s%s", prefix, l->name, suffix);
        else if (room >= 4)
                snprintf(out, size, "%s%.*s...%s", prefix, (int) (room - 3), l->name, suffix);
        else
                snprintf(out, size, "%.*s", (int) width, suffix + 1);
}

/* Live: terminal writes, all with the lock held. */

static void tty_write(progress *p, const char *s, size_t len) {
        /* A terminal that went away: nothing to show anything on. */
        (void) loop_write(p->tty, s, len);
}

static void tty_puts(progress *p, const char *s) { tty_write(p, s, strlen(s)); }

static void erase_line(progress *p) {
        if (p->drawn)
                tty_puts(p, "\r\033[K");
        p->drawn = false;
}

static unsigned tty_width(progress *p) {
        struct winsize ws;
        if (ioctl(p->tty, TIOCGWINSZ, &ws) < 0 || ws.ws_col < 2)
                return 80;
        return ws.ws_col - 1; /* the last column would wrap on some terminals */
}

/* The current line as it stands, or finished with state. */
static void current_line(progress *p, progress_state state, char *out, size_t size) {
        struct stat st;
        progress_line l = {
                .index = p->index,
                .n = p->n,
                .name = strempty(p->name),
                .state = state,
                .elapsed_ms = time_now_ms() - p->start_ms,
                .bytes = state != PROGRESS_RUNNING ? -1
                        : p->size_of ? (stat(p->size_of, &st) >= 0 ? st.st_size : -1) : p->bytes,
        };
        progress_format(&l, tty_width(p), out, size);
}

static void redraw(progress *p) {
        char line[1024];

        if (!p->active) {
                erase_line(p);
                return;
        }
        current_line(p, PROGRESS_RUNNING, line, sizeof(line));
        tty_puts(p, "\r");
        tty_puts(p, line);
        tty_puts(p, "\033[K");
        p->drawn = true;
}

/* Copy complete lines from the pipe to the terminal above the live line. */
static void drain(progress *p, bool all) {
        for (;;) {
                ssize_t k = read(p->pipe_rd, p->pending + p->n_pending, sizeof(p->pending) - p->n_pending);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k > 0)
                        p->n_pending += (size_t) k;
                char *nl = memrchr(p->pending, '\n', p->n_pending);
                size_t out = nl ? (size_t) (nl - p->pending) + 1 : 0;
                if (p->n_pending == sizeof(p->pending) || (all && k <= 0))
                        out = p->n_pending;
                if (out > 0) {
                        erase_line(p);
                        tty_write(p, p->pending, out);
                        if (p->pending[out - 1] != '\n')
                                tty_puts(p, "\n");
                        memmove(p->pending, p->pending + out, p->n_pending - out);
                        p->n_pending -= out;
                }
                if (k <= 0)
                        return;
        }
}

/* Milliseconds until the elapsed time shown next changes. */
static int next_redraw_ms(progress *p) {
        if (!p->active)
                return 1000;
        int64_t elapsed = time_now_ms() - p->start_ms;
        return (int) (1000 - elapsed % 1000) + 5;
}

static void *live_thread(void *userdata) {
        progress *p = userdata;

        for (;;) {
                pthread_mutex_lock(&p->lock);
                int timeout = next_redraw_ms(p);
                pthread_mutex_unlock(&p->lock);

                struct pollfd fds[] = { { .fd = p->pipe_rd, .events = POLLIN }, { .fd = p->stop[0], .events = POLLIN } };
                int n = poll(fds, ELEMENTSOF(fds), timeout);
                if (n < 0 && errno != EINTR)
                        break;
                pthread_mutex_lock(&p->lock);
                bool stop = n > 0 && fds[1].revents;
                drain(p, stop);
                if (stop) {
                        erase_line(p);
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                redraw(p);
                pthread_mutex_unlock(&p->lock);
                if (n > 0 && (fds[0].revents & (POLLHUP | POLLERR)) && !(fds[0].revents & POLLIN))
                        (void) poll(&fds[1], 1, -1); /* every writer is gone: wait for the stop */
        }
        return NULL;
}

static void safe_close(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static int start_live(progress *p) {
        _cleanup_close_ int tty = -1;
        int fds[2] = { -1, -1 };
        sigset_t all, old;
        int r;

        tty = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (tty < 0)
                return negative_errno();
        if (pipe2(p->stop, O_CLOEXEC) < 0 || pipe2(fds, O_CLOEXEC) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Only we read it, and must never block on it while holding the lock. */
        if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
                r = negative_errno();
                goto fail;
        }
        p->pipe_rd = fds[0];

        /* stdout too when it is the same terminal (a step's stdout goes there). */
        struct stat a, b;
        if (isatty(STDOUT_FILENO) && fstat(STDOUT_FILENO, &a) >= 0 && fstat(tty, &b) >= 0 && a.st_rdev == b.st_rdev) {
                p->saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                if (p->saved_stdout < 0) {
                        r = negative_errno();
                        goto fail;
                }
        }
        fflush(stdout);
        fflush(stderr);
        if (dup2(fds[1], STDERR_FILENO) < 0 || (p->saved_stdout >= 0 && dup2(fds[1], STDOUT_FILENO) < 0)) {
                r = negative_errno();
                goto restore;
        }
        safe_close(&fds[1]);
        p->tty = TAKE_FD(tty);

        /* The thread inherits a mask that blocks everything: signals go to the main thread, whose
         * blocking calls they must interrupt. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&p->thread, NULL, live_thread, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                tty = TAKE_FD(p->tty);
                goto restore;
        }
        p->thread_started = true;
        return 0;

restore:
        (void) dup2(tty, STDERR_FILENO);
        if (p->saved_stdout >= 0)
                (void) dup2(p->saved_stdout, STDOUT_FILENO);
fail:
        safe_close(&p->saved_stdout);
        safe_close(&p->pipe_rd);
        safe_close(&fds[0]);
        safe_close(&fds[1]);
        safe_close(&p->stop[0]);
        safe_close(&p->stop[1]);
        return r;
}

int progress_new(progress_mode mode, progress **ret) {
        progress *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        *p = (progress) { .mode = mode, .tty = -1, .saved_stdout = -1, .pipe_rd = -1, .stop = { -1, -1 } };
        pthread_mutex_init(&p->lock, NULL);
        if (mode == PROGRESS_LIVE) {
                r = start_live(p);
                if (r < 0) {
                        pthread_mutex_destroy(&p->lock);
                        free(p);
                        return r;
                }
        }
        *ret = p;
        return 0;
}

static bool is_live(const progress *p) { return p->mode == PROGRESS_LIVE; }

static void lock(progress *p) {
        if (is_live(p))
                pthread_mutex_lock(&p->lock);
}

static void unlock(progress *p) {
        if (is_live(p))
                pthread_mutex_unlock(&p->lock);
}

/* Leave the current line on the screen as state. Lock held. */
static void finish_line(progress *p, progress_state state) {
        char line[1024];

        drain(p, false);
        erase_line(p);
        current_line(p, state, line, sizeof(line));
        tty_puts(p, line);
        tty_puts(p, "\n");
}

static void set_current(progress *p, size_t index, size_t n, const char *name, const char *key, const char *size_of) {
        free(p->name);
        free(p->key);
        free(p->size_of);
        /* Out of memory only shortens what is shown. */
        p->name = strdup(name ?: "");
        p->key = key ? strdup(key) : NULL;
        p->size_of = size_of ? strdup(size_of) : NULL;
        p->index = index;
        p->n = n;
        p->bytes = -1;
        p->start_ms = time_now_ms();
}

static void json_event(const char *event, progress *p, bool cached, double seconds) {
        json_t *e = streq(event, "step-end")
                ? json_pack("{s:s, s:I, s:I, s:s, s:s?, s:b, s:f}", "event", event, "index", (json_int_t) p->index + 1,
                            "count", (json_int_t) p->n, "name", strempty(p->name), "key", p->key, "cached", cached,
                            "seconds", seconds)
                : json_pack("{s:s, s:I, s:I, s:s, s:s?}", "event", event, "index", (json_int_t) p->index + 1, "count",
                            (json_int_t) p->n, "name", strempty(p->name), "key", p->key);
        _cleanup_free_ char *text = e ? json_dump_compact(e) : NULL;
        json_decref(e);
        if (text) {
                printf("%s\n", text);
                fflush(stdout);
        }
}

void progress_step_cached(progress *p, size_t index, size_t n, const char *name, const char *key) {
        if (!is_live(p)) {
                log_info("Step %zu/%zu %s: cached (%.12s)", index + 1, n, name, key);
                if (p->mode == PROGRESS_JSON) {
                        set_current(p, index, n, name, key, NULL);
                        json_event("step-end", p, true, 0);
                }
                return;
        }
        lock(p);
        set_current(p, index, n, name, key, NULL);
        finish_line(p, PROGRESS_CACHED);
        redraw(p);
        unlock(p);
}

void progress_step_start(progress *p, size_t index, size_t n, const char *name, const char *key) {
        if (!is_live(p)) {
                log_info("Step %zu/%zu %s: running (%.12s)", index + 1, n, name, key);
                set_current(p, index, n, name, key, NULL);
                p->active = true;
                if (p->mode == PROGRESS_JSON)
                        json_event("step-start", p, false, 0);
                return;
        }
        lock(p);
        set_current(p, index, n, name, key, NULL);
        p->active = true;
        drain(p, false);
        redraw(p);
        unlock(p);
}

void progress_step_end(progress *p, bool ok) {
        if (!p->active)
                return;
        double seconds = (double) (time_now_ms() - p->start_ms) / 1000.0;
        if (!is_live(p)) {
                p->active = false;
                if (ok)
                        log_info("Step %zu/%zu %s: done in %.1f s", p->index + 1, p->n, strempty(p->name), seconds);
                if (ok && p->mode == PROGRESS_JSON)
                        json_event("step-end", p, false, seconds);
                return;
        }
        lock(p);
        finish_line(p, ok ? PROGRESS_DONE : PROGRESS_FAILED);
        p->active = false;
        unlock(p);
}

void progress_task_start(progress *p, const char *name, const char *size_of) {
        if (!is_live(p))
                return;
        lock(p);
        set_current(p, 0, 0, name, NULL, size_of);
        p->active = true;
        drain(p, false);
        redraw(p);
        unlock(p);
}

void progress_task_bytes(progress *p, int64_t bytes) {
        if (!is_live(p) || !p->active)
                return;
        lock(p);
        p->bytes = bytes;
        unlock(p);
}

void progress_task_end(progress *p, bool ok) {
        if (!is_live(p) || !p->active)
                return;
        lock(p);
        if (!ok || time_now_ms() - p->start_ms >= 1000)
                finish_line(p, ok ? PROGRESS_DONE : PROGRESS_FAILED);
        else {
                drain(p, false);
                erase_line(p);
        }
        p->active = false;
        unlock(p);
}

progress *progress_free(progress *p) {
        if (!p)
                return NULL;
        if (is_live(p)) {
                if (p->active) {
                        lock(p);
                        finish_line(p, PROGRESS_FAILED);
                        p->active = false;
                        unlock(p);
                }
                /* Put stderr and stdout back first: what is written from now on goes straight to
                 * the terminal, and the thread drains what the pipe still holds. */
                fflush(stdout);
                fflush(stderr);
                (void) dup2(p->tty, STDERR_FILENO);
                if (p->saved_stdout >= 0)
                        (void) dup2(p->saved_stdout, STDOUT_FILENO);
                if (p->thread_started) {
                        (void) write(p->stop[1], "x", 1);
                        pthread_join(p->thread, NULL);
                }
                safe_close(&p->saved_stdout);
                safe_close(&p->pipe_rd);
                safe_close(&p->stop[0]);
                safe_close(&p->stop[1]);
                safe_close(&p->tty);
        }
        pthread_mutex_destroy(&p->lock);
        free(p->name);
        free(p->key);
        free(p->size_of);
        free(p);
        return NULL;
}
