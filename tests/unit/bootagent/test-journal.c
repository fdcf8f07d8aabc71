/* The state journal: append, replay across runs, a torn tail is cut off, find_ok. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "journal.h"

int main(void) {
        char dir[] = "/tmp/test-journal.XXXXXX";
        char path[128];
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/journal", dir);

        journal j;
        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 1 && j.n == 0);
        CHECK_OK(journal_append(&j, "identity", true, 5, 5, 0, "instance i1"));
        CHECK_OK(journal_append(&j, "login", false, 9, 4, 1, "HTTP 403: permission denied"));
        journal_close(&j);

        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 2 && j.n == 2);
        CHECK_STREQ(j.entries[0].stage, "identity");
        CHECK(j.entries[0].ok && j.entries[0].t_ms == 5);
        CHECK_STREQ(j.entries[0].detail, "instance i1");
        CHECK(!j.entries[1].ok && j.entries[1].wait_ms == 1);
        CHECK(journal_find_ok(&j, "login") == NULL);
        CHECK_OK(journal_append(&j, "login", true, 7, 3, 0, NULL));
        CHECK(journal_find_ok(&j, "login")->run == 2);
        journal_close(&j);

        /* A crash in the middle of a write leaves a partial frame: it is dropped on open and the
         * next frame follows the last complete one. */
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(write(fd, "\0\0\0\x40\xa1", 5) == 5);
        close(fd);
        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 3 && j.n == 3);
        CHECK_OK(journal_append(&j, "done", true, 1, 1, 0, NULL));
        journal_close(&j);

        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 4);
        CHECK_STREQ(j.entries[3].stage, "done");
        CHECK(j.entries[3].run == 3);
        journal_close(&j);

        CHECK(journal_load("/nonexistent/journal", &j) == -ENOENT);
        CHECK_OK(rm_rf(dir));
        return 0;
}
