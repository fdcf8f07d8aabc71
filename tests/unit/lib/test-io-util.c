#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "io-util.h"

static void test_short_reads_and_eof(void) {
        int p[2];
        char got[16];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        /* Two writes arrive as separate reads; loop_read joins them and stops at EOF. */
        CHECK_OK(loop_write(p[1], "abc", 3));
        CHECK_OK(loop_write(p[1], "defg", 4));
        close(p[1]);
        CHECK(loop_read(p[0], got, sizeof(got)) == 7);
        CHECK(memcmp(got, "abcdefg", 7) == 0);
        CHECK(loop_read(p[0], got, sizeof(got)) == 0);
        CHECK(loop_read(p[0], got, 0) == 0);
        close(p[0]);

        /* Exactly nbytes, leaving the rest for the next call. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK_OK(loop_write(p[1], "0123456789", 10));
        CHECK(loop_read(p[0], got, 4) == 4);
        CHECK(memcmp(got, "0123", 4) == 0);
        close(p[0]);
        close(p[1]);

        CHECK(loop_read(-1, got, 1) == -EBADF);
        CHECK(loop_write(-1, "x", 1) == -EBADF);
        CHECK_OK(loop_write(-1, "", 0));
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
        (void) sig;
        alarms++;
}

static void *slow_writer(void *userdata) {
        int fd = *(int *) userdata;
        /* The alarms go to the reader, which is blocked in read() all this time. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGALRM);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        struct timespec ts = { .tv_nsec = 200 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        static uint8_t big[256 * 1024];
        memset(big, 'x', sizeof(big));
        if (loop_write(fd, big, sizeof(big)) < 0)
                abort();
        close(fd);
        return NULL;
}

/* A blocked read interrupted by a signal (no SA_RESTART) goes on; so does a pipe-sized write. */
static void test_eintr(void) {
        struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART: read() gets EINTR */
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
        struct itimerval it = { .it_interval = { .tv_usec = 20000 }, .it_value = { .tv_usec = 20000 } };
        CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);

        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, slow_writer, &p[1]) == 0);
        static uint8_t got[256 * 1024 + 1];
        CHECK(loop_read(p[0], got, sizeof(got)) == 256 * 1024);
        CHECK(got[0] == 'x' && got[256 * 1024 - 1] == 'x');
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(alarms > 0);
        close(p[0]);

        struct itimerval off = {};
        CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
}

int main(void) {
        test_short_reads_and_eof();
        test_eintr();
        return 0;
}
