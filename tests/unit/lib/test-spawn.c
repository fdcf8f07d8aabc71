#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>

#include "check.h"
#include "fs.h"
#include "spawn.h"

static void no_children_left(void) {
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
}

static void test_run(void) {
        int status = -1;
        CHECK_OK(spawn_run(SPAWN_ARGV("true"), NULL, &status));
        CHECK(status == 0);
        CHECK_OK(spawn_run(SPAWN_ARGV("false"), NULL, &status));
        CHECK(status == 1);
        CHECK_OK(spawn_run(SPAWN_ARGV("sh", "-c", "exit 42"), NULL, &status));
        CHECK(status == 42);
        CHECK_OK(spawn_run(SPAWN_ARGV("sh", "-c", "kill -TERM $$"), NULL, &status));
        CHECK(status == 128 + SIGTERM);

        status = -1;
        CHECK(spawn_run(SPAWN_ARGV("no-such-program-for-test"), NULL, &status) == -ENOENT);
        CHECK(spawn_run(SPAWN_ARGV("/nonexistent/prog"), NULL, &status) == -ENOENT);
        CHECK(status == -1);
        CHECK(spawn_run(SPAWN_ARGV(NULL), NULL, &status) == -EINVAL);
        no_children_left();
}

static void capture(char *const argv[], const spawn_options *opts, const char *expected) {
        _cleanup_buf_ buf out = BUF_INIT(4096);
        int status = -1;
        CHECK_OK(spawn_capture(argv, opts, &out, &status));
        CHECK(status == 0);
        CHECK_STREQ(out.data ? out.data : "", expected);
}

static void test_capture(void) {
        capture(SPAWN_ARGV("echo", "hello", "world"), NULL, "hello world\n");
        capture(SPAWN_ARGV("true"), NULL, "");

        /* stdin defaults to /dev/null. */
        capture(SPAWN_ARGV("readlink", "/proc/self/fd/0"), NULL, "/dev/null\n");

        /* Appends to what is already in the buffer. */
        _cleanup_buf_ buf out = BUF_INIT(4096);
        int status;
        CHECK_OK(buf_puts(&out, "before:"));
        CHECK_OK(spawn_capture(SPAWN_ARGV("echo", "x"), NULL, &out, &status));
        CHECK_STREQ(out.data, "before:x\n");

        /* Exit status is reported with the output. */
        buf_clear(&out);
        CHECK_OK(spawn_capture(SPAWN_ARGV("sh", "-c", "echo partial; exit 3"), NULL, &out, &status));
        CHECK(status == 3);
        CHECK_STREQ(out.data, "partial\n");

        CHECK(spawn_capture(SPAWN_ARGV("no-such-program-for-test"), NULL, &out, &status) == -ENOENT);
        no_children_left();
}

static void test_capture_cap(void) {
        /* 1 MiB of output against a 10-byte cap: the first 10 bytes are kept, the rest drained
         * (the child must not block on a full pipe), and -ENOBUFS returned after it exited. */
        _cleanup_buf_ buf out = BUF_INIT(10);
        int status = -1;
        CHECK(spawn_capture(SPAWN_ARGV("sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a"), NULL, &out,
                            &status) == -ENOBUFS);
        CHECK(out.len == 10);
        CHECK_STREQ(out.data, "aaaaaaaaaa");
        CHECK(status == -1);
        no_children_left();

        /* Exactly at the cap is fine. */
        buf_clear(&out);
        CHECK_OK(spawn_capture(SPAWN_ARGV("printf", "0123456789"), NULL, &out, &status));
        CHECK(out.len == 10 && status == 0);
}

static void test_options(void) {
        /* cwd */
        spawn_options o = SPAWN_OPTIONS_DEFAULT;
        o.cwd = "/proc";
        capture(SPAWN_ARGV("pwd"), &o, "/proc\n");
        o.cwd = "/nonexistent-dir-for-test";
        int status;
        CHECK(spawn_run(SPAWN_ARGV("true"), &o, &status) == -ENOENT);

        /* envp */
        o = SPAWN_OPTIONS_DEFAULT;
        o.envp = SPAWN_ARGV("FOO=bar baz", "PATH=/usr/bin:/bin");
        capture(SPAWN_ARGV("sh", "-c", "echo \"$FOO\"; echo \"${HOME-unset}\""), &o, "bar baz\nunset\n");

        /* stdin and stderr from fds */
        int in[2], err[2];
        CHECK(pipe2(in, O_CLOEXEC) == 0);
        CHECK(pipe2(err, O_CLOEXEC) == 0);
        CHECK(write(in[1], "input", 5) == 5);
        close(in[1]);
        o = SPAWN_OPTIONS_DEFAULT;
        o.stdin_fd = in[0];
        o.stderr_fd = err[1];
        capture(SPAWN_ARGV("sh", "-c", "cat; echo oops >&2"), &o, "input");
        close(in[0]);
        close(err[1]);
        char msg[16] = { 0 };
        CHECK(read(err[0], msg, sizeof(msg) - 1) == 5);
        CHECK_STREQ(msg, "oops\n");
        close(err[0]);

        /* stderr onto the parent's stdout while stdout is captured: fd 1 here means the parent's
         * fd 1, not the child's redirected stdout. Point our fd 1 at a pipe to see it. */
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        fflush(stdout);
        int saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        CHECK(saved_stdout >= 0);
        CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
        close(p[1]);
        o = SPAWN_OPTIONS_DEFAULT;
        o.stderr_fd = STDOUT_FILENO;
        _cleanup_buf_ buf out = BUF_INIT(100);
        int r = spawn_capture(SPAWN_ARGV("sh", "-c", "echo to-stdout; echo to-stderr >&2"), &o, &out, &status);
        CHECK(dup2(saved_stdout, STDOUT_FILENO) == STDOUT_FILENO);
        close(saved_stdout);
        CHECK_OK(r);
        CHECK_STREQ(out.data, "to-stdout\n");
        memset(msg, 0, sizeof(msg));
        CHECK(read(p[0], msg, sizeof(msg) - 1) == 10);
        CHECK_STREQ(msg, "to-stderr\n");
        close(p[0]);
        no_children_left();
}

static void test_signals_reset(void) {
        /* Whatever the parent blocks or ignores, the child starts clean. */
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGTERM);
        CHECK(sigprocmask(SIG_BLOCK, &block, &old) == 0);
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe, old_int;
        CHECK(sigaction(SIGPIPE, &ign, &old_pipe) == 0);
        CHECK(sigaction(SIGINT, &ign, &old_int) == 0);

        _cleanup_buf_ buf out = BUF_INIT(4096);
        int status;
        CHECK_OK(spawn_capture(SPAWN_ARGV("grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"), NULL,
                               &out, &status));
        unsigned long long blocked, ignored;
        CHECK(sscanf(out.data, "SigBlk: %llx SigIgn: %llx", &blocked, &ignored) == 2);
        CHECK(blocked == 0);
        /* glibc's posix_spawn leaves its two internal signals (32, 33: bits 31, 32) ignored, as
         * sigfillset() cannot name them; every other signal must be back to default. */
        CHECK((ignored & ~0x180000000ull) == 0);

        CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
        CHECK(sigaction(SIGPIPE, &old_pipe, NULL) == 0);
        CHECK(sigaction(SIGINT, &old_int, NULL) == 0);
}

/* A long-running child of the current test, killed at exit if a CHECK fails while it runs
 * (CHECK exits, which runs atexit handlers). Negative: a process group. */
static pid_t running;

static void kill_running(void) {
        if (running != 0)
                (void) kill(running, SIGKILL);
}

static void test_process_group(void) {
        spawn_options o = SPAWN_OPTIONS_DEFAULT;
        pid_t pid;
        int status;

        CHECK(atexit(kill_running) == 0);
        CHECK_OK(spawn_start(SPAWN_ARGV("sleep", "30"), &o, &pid));
        running = pid;
        CHECK(getpgid(pid) == getpgrp());
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK_OK(spawn_wait(pid, &status));
        running = 0;
        CHECK(status == 128 + SIGKILL);

        /* In its own group, killing the group ends the child and its children. The shell
         * reports its background child's pid so we can watch it die. */
        o.new_process_group = true;
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        o.stdout_fd = p[1];
        CHECK_OK(spawn_start(SPAWN_ARGV("sh", "-c", "sleep 30 & echo $!; wait"), &o, &pid));
        running = -pid;
        close(p[1]);
        char line[32] = { 0 };
        CHECK(read(p[0], line, sizeof(line) - 1) > 0);
        close(p[0]);
        pid_t grandchild = (pid_t) atoi(line);
        CHECK(grandchild > 0 && getpgid(grandchild) == pid);
        CHECK(getpgid(pid) == pid);
        CHECK(kill(-pid, SIGTERM) == 0);
        CHECK_OK(spawn_wait(pid, &status));
        CHECK(status == 128 + SIGTERM);
        /* The grandchild is now another process's child: gone, or a zombie until reaped. */
        bool dead = false;
        for (int i = 0; i < 500 && !dead; i++) {
                char path[64], stat_line[256] = { 0 };
                snprintf(path, sizeof(path), "/proc/%d/stat", (int) grandchild);
                FILE *f = fopen(path, "re");
                if (!f) {
                        dead = true;
                        break;
                }
                bool ok = fgets(stat_line, sizeof(stat_line), f) != NULL;
                fclose(f);
                const char *end = strrchr(stat_line, ')');
                dead = !ok || (end && end[1] == ' ' && end[2] == 'Z');
                if (!dead)
                        usleep(10000);
        }
        CHECK(dead);
        running = 0;

        CHECK(spawn_wait(pid, &status) == -ECHILD);
        no_children_left();
}

static void test_argv_to_string(void) {
        char *s = spawn_argv_to_string(SPAWN_ARGV("qemu-img", "convert", "-O", "qcow2", "a", "b"));
        CHECK_STREQ(s, "qemu-img convert -O qcow2 a b");
        free(s);
        s = spawn_argv_to_string(SPAWN_ARGV("sh", "-c", "echo 'hi there'", "", "x=1,y=/a:b@c%d+e"));
        CHECK_STREQ(s, "sh -c 'echo '\\''hi there'\\''' '' x=1,y=/a:b@c%d+e");
        free(s);
        s = spawn_argv_to_string(SPAWN_ARGV(NULL));
        CHECK_STREQ(s, "");
        free(s);
}

static void test_pid_file_read(void) {
        char dir[] = "/tmp/test-spawn-XXXXXX", path[64];
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/x.pid", dir);

        CHECK(pid_file_read(path) == 0); /* missing */
        CHECK_OK(write_file_atomic(path, "4242\n", 5, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(pid_file_read(path) == 4242);
        CHECK_OK(write_file_atomic(path, "1\n", 2, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(pid_file_read(path) == 0); /* never PID 1 */
        CHECK_OK(write_file_atomic(path, "junk", 4, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(pid_file_read(path) == 0);
        CHECK_OK(rm_rf(dir));
}

/* A child that exited but was not reaped yet is a zombie: not alive. */
static void test_process_alive(void) {
        pid_t pid;
        int status;

        CHECK(process_alive(getpid()));
        CHECK(!process_alive(0));
        CHECK_OK(spawn_start(SPAWN_ARGV("sleep", "30"), NULL, &pid));
        CHECK(process_alive(pid));
        CHECK(kill(pid, SIGKILL) == 0);
        for (int i = 0; i < 200 && process_alive(pid); i++)
                usleep(10 * 1000);
        CHECK(!process_alive(pid)); /* a zombie until reaped */
        CHECK(kill(pid, 0) == 0);
        CHECK_OK(spawn_wait(pid, &status));
        CHECK(!process_alive(pid));
}

int main(void) {
        test_run();
        test_capture();
        test_capture_cap();
        test_options();
        test_signals_reset();
        test_process_group();
        test_argv_to_string();
        test_pid_file_read();
        test_process_alive();
        return 0;
}
