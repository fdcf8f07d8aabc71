/* builder/progress: the line format; the live display on a pseudo-terminal (a step's line drawn and
 * redrawn in place with \r, output and log lines printed whole above it, a task with the size of
 * the file it writes); plain lines without any escape sequence when stderr is a file; --json
 * events. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "log.h"
#include "progress.h"

static void test_format(void) {
        char out[256];
        progress_line l = { .index = 2, .n = 6, .name = "packages etcd-server etcd-client",
                            .state = PROGRESS_RUNNING, .elapsed_ms = 41500, .bytes = -1 };

        progress_format(&l, 0, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... 41s");
        progress_format(&l, 100, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... 41s");
        l.state = PROGRESS_DONE;
        progress_format(&l, 0, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... 41.5s done");
        l.state = PROGRESS_FAILED;
        progress_format(&l, 0, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... 41.5s FAILED");
        l.state = PROGRESS_CACHED;
        progress_format(&l, 0, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... cached");

        /* Narrow terminals: the name gives way, the state stays. */
        l.state = PROGRESS_RUNNING;
        progress_format(&l, 30, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd... ... 41s");
        CHECK(strlen(out) == 30);
        progress_format(&l, 12, out, sizeof(out));
        CHECK_STREQ(out, "... 41s");
        l.elapsed_ms = 3725000;
        progress_format(&l, 0, out, sizeof(out));
        CHECK_STREQ(out, "[3/6] packages etcd-server etcd-client ... 62m05s");

        /* A task: no counter, the bytes written so far. */
        progress_line task = { .name = "exporting the template disk", .state = PROGRESS_RUNNING, .elapsed_ms = 12900,
                               .bytes = 3 * 1024 * 1024 + 512 * 1024 };
        progress_format(&task, 0, out, sizeof(out));
        CHECK_STREQ(out, "exporting the template disk ... 12s 3.5 MiB");
}

/* Whether text has start, a number of seconds (at least min), then end. */
static bool shows_seconds(const char *text, const char *start, double min, const char *end) {
        for (const char *p = strstr(text, start); p; p = strstr(p + 1, start)) {
                char *after;
                double v = strtod(p + strlen(start), &after);
                if (after != p + strlen(start) && v >= min && startswith(after, end))
                        return true;
        }
        return false;
}

/* What the terminal showed so far, read from the pseudo-terminal's master side. */
static char shown[65536];
static size_t n_shown;

/* Read the terminal until it has shown start, at least one second, then end (a redraw comes about
 * once a second; on a loaded machine one may be late, so a count may be skipped). */
static void wait_shown(int master, const char *start, const char *end) {
        for (int i = 0; i < 200 && !shows_seconds(shown, start, 1, end); i++) {
                struct pollfd pfd = { .fd = master, .events = POLLIN };
                if (poll(&pfd, 1, 100) > 0) {
                        ssize_t n = read(master, shown + n_shown, sizeof(shown) - 1 - n_shown);
                        CHECK(n > 0);
                        n_shown += (size_t) n;
                        shown[n_shown] = '\0';
                }
        }
        CHECK(shows_seconds(shown, start, 1, end));
}

static char *read_all(int fd) {
        static char data[65536];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, data + len, sizeof(data) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        data[len] = '\0';
        return data;
}


static void test_live(void) {
        char dir[] = "/tmp/test-progress-XXXXXX", file[64];
        CHECK(mkdtemp(dir));
        snprintf(file, sizeof(file), "%s/disk", dir);

        int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
        int tty = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(tty >= 0);
        /* Exact bytes: no \n to \r\n translation. */
        struct termios t;
        CHECK(tcgetattr(tty, &t) == 0);
        t.c_oflag &= ~(tcflag_t) OPOST;
        CHECK(tcsetattr(tty, TCSANOW, &t) == 0);
        struct winsize ws = { .ws_row = 24, .ws_col = 101 };
        CHECK(ioctl(tty, TIOCSWINSZ, &ws) == 0);

        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        CHECK(dup2(tty, STDOUT_FILENO) >= 0 && dup2(tty, STDERR_FILENO) >= 0);

        progress *p = NULL;
        CHECK_OK(progress_new(PROGRESS_LIVE, &p));
        progress_step_cached(p, 0, 3, "run first", "aaaa");
        progress_step_start(p, 1, 3, "run second", "bbbb");
        log_info("a log line");
        /* Half a line on stdout, the same terminal: held back until its end comes. */
        printf("partial ");
        fflush(stdout);
        wait_shown(master, "\r[2/3] run second ... ", "s\033[K");
        printf("line\n");
        fflush(stdout);
        progress_step_end(p, true);

        progress_task_start(p, "exporting", file);
        static char mib[1024 * 1024];
        CHECK_OK(write_file_atomic(file, mib, sizeof(mib), 0644, (uid_t) -1, (gid_t) -1));
        wait_shown(master, "\rexporting ... ", "s 1.0 MiB\033[K");
        progress_task_end(p, true);
        progress_step_start(p, 2, 3, "run third", "cccc");
        p = progress_free(p); /* still running: ends as FAILED */
        fprintf(stderr, "after\n");

        fflush(stdout);
        fflush(stderr);
        CHECK(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
        close(saved_out);
        close(saved_err);
        close(tty);
        char *rest = read_all(master);
        close(master);
        CHECK(n_shown + strlen(rest) < sizeof(shown));
        strcat(shown, rest);
        char *out = shown;
        fprintf(stderr, "--- on the terminal:\n%s\n---\n", out);

        CHECK(startswith(out, "[1/3] run first ... cached\n"));
        CHECK(strstr(out, "\r[2/3] run second ... 0s\033[K"));
        CHECK(strstr(out, "\r\033[Kimgbuild: a log line\n"));
        CHECK(strstr(out, "partial line\n"));
        CHECK(shows_seconds(out, "\r[2/3] run second ... ", 1, "s\033[K"));
        CHECK(shows_seconds(out, "[2/3] run second ... ", 0, "s done\n"));
        CHECK(shows_seconds(out, "\rexporting ... ", 1, "s 1.0 MiB\033[K"));
        CHECK(shows_seconds(out, "\r\033[Kexporting ... ", 0, "s done\n\r[3/3] run third ... 0s"));
        CHECK(shows_seconds(out, "[3/3] run third ... ", 0, "s FAILED\nafter\n"));
        /* The output came out whole, in order, and the line is gone at the end. */
        CHECK(strstr(out, "a log line") < strstr(out, "partial line"));
        CHECK(strstr(out, "partial line") < strstr(out, "s done\n"));
        CHECK(out[strlen(out) - 1] == '\n');
        CHECK_OK(rm_rf(dir));
}

/* Run the same steps with stdout and stderr in files. */
static void run_captured(progress_mode mode, char **ret_out, char **ret_err) {
        FILE *out = tmpfile(), *err = tmpfile();
        CHECK(out && err);
        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        CHECK(dup2(fileno(out), STDOUT_FILENO) >= 0 && dup2(fileno(err), STDERR_FILENO) >= 0);

        progress *p = NULL;
        CHECK_OK(progress_new(mode, &p));
        progress_step_cached(p, 0, 2, "run first", "aaaaaaaaaaaaaaaa");
        progress_task_start(p, "booting", NULL);
        progress_task_end(p, true);
        progress_step_start(p, 1, 2, "run second", "bbbbbbbbbbbbbbbb");
        progress_step_end(p, true);
        progress_free(p);

        fflush(stdout);
        fflush(stderr);
        CHECK(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
        close(saved_out);
        close(saved_err);
        rewind(out);
        rewind(err);
        *ret_out = strdup(read_all(fileno(out)));
        *ret_err = strdup(read_all(fileno(err)));
        fclose(out);
        fclose(err);
}

static void test_plain_and_json(void) {
        char *out, *err;

        run_captured(PROGRESS_PLAIN, &out, &err);
        CHECK_STREQ(out, "");
        CHECK(startswith(err, "imgbuild: Step 1/2 run first: cached (aaaaaaaaaaaa)\n"
                              "imgbuild: Step 2/2 run second: running (bbbbbbbbbbbb)\n"
                              "imgbuild: Step 2/2 run second: done in 0."));
        CHECK(!strchr(err, '\r') && !strchr(err, '\033'));
        free(out);
        free(err);

        run_captured(PROGRESS_JSON, &out, &err);
        CHECK(!strchr(err, '\r') && strstr(err, "Step 2/2 run second: running"));
        CHECK(startswith(out, "{\"cached\":true,\"count\":2,\"event\":\"step-end\",\"index\":1,"
                              "\"key\":\"aaaaaaaaaaaaaaaa\",\"name\":\"run first\",\"seconds\":0.0}\n"
                              "{\"count\":2,\"event\":\"step-start\",\"index\":2,\"key\":\"bbbbbbbbbbbbbbbb\","
                              "\"name\":\"run second\"}\n"
                              "{\"cached\":false,\"count\":2,\"event\":\"step-end\",\"index\":2,"));
        free(out);
        free(err);
}

int main(void) {
        log_set_journal_style(0);
        test_format();
        test_plain_and_json();
        test_live();
        return 0;
}
