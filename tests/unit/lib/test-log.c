#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char tmp[] = "/tmp/test-log-XXXXXX";
static int saved_stderr = -1;

/* Send stderr to a temporary file. */
static void capture_start(void) {
        fflush(stderr);
        int fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
        close(fd);
}

/* Restore stderr and return what was written. */
static char *capture_end(void) {
        fflush(stderr);
        CHECK(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
        FILE *f = fopen(tmp, "re");
        CHECK(f);
        static char out[8192];
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = 0;
        fclose(f);
        return out;
}

int main(void) {
        int fd = mkstemp(tmp);
        CHECK(fd >= 0);
        close(fd);
        saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        CHECK(saved_stderr >= 0);

        /* Journal style: "<priority>message", %m from r (either sign), -abs(r) returned. */
        log_set_journal_style(1);
        capture_start();
        errno = EAGAIN;
        int r = log_error_errno(-ENOENT, "Failed to open %s: %m", "x.conf");
        int saved = errno;
        CHECK(log_warning_errno(EACCES, "warn %d: %m", 5) == -EACCES);
        log_info("info line");
        log_debug("hidden at the default level");
        CHECK(log_error("plain") == 0);
        CHECK_STREQ(capture_end(), "<3>Failed to open x.conf: No such file or directory\n"
                                   "<4>warn 5: Permission denied\n"
                                   "<6>info line\n"
                                   "<3>plain\n");
        CHECK(r == -ENOENT);
        CHECK(saved == EAGAIN); /* errno preserved */

        /* Terminal style with the program name and a level word. */
        log_set_journal_style(0);
        log_set_program("bootagent");
        log_set_max_level(LOG_DEBUG);
        CHECK(log_get_max_level() == LOG_DEBUG);
        capture_start();
        log_error("e");
        log_warning("w");
        log_notice("n");
        log_debug("d");
        CHECK_STREQ(capture_end(), "bootagent: error: e\nbootagent: warning: w\nbootagent: n\n"
                                   "bootagent: debug: d\n");

        /* Filtering: still returns the error when not shown. */
        log_set_max_level(LOG_ERR);
        capture_start();
        CHECK(log_warning_errno(-EIO, "not shown") == -EIO);
        log_error("shown");
        CHECK_STREQ(capture_end(), "bootagent: error: shown\n");

        /* Long messages are cut, not overflowed. */
        log_set_journal_style(1);
        capture_start();
        log_error("%5000s", "x");
        char *out = capture_end();
        CHECK(strncmp(out, "<3>    ", 7) == 0);
        CHECK(strlen(out) < 4200 && out[strlen(out) - 1] == '\n');

        close(saved_stderr);
        unlink(tmp);
        return 0;
}
