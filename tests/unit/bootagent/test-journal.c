/* The state journal: append, replay across runs, a torn tail and damage are kept aside,
 * ENOMEM loses nothing, one process at a time, find_ok, the directory fsynced on creation. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "fsync-record.h"
#include "journal.h"

/* journal.c grows its entry array with reallocarray: this definition (the executable's) replaces
 * libc's for it, so a test can make the n-th call fail. */
static int realloc_calls, fail_realloc_at;
void *reallocarray(void *p, size_t n, size_t size) {
        if (fail_realloc_at && ++realloc_calls == fail_realloc_at)
                return NULL;
        if (size && n > SIZE_MAX / size)
                return NULL;
        return realloc(p, n * size);
}

static off_t file_size(const char *path) {
        struct stat st;
        CHECK(stat(path, &st) == 0);
        return st.st_size;
}

int main(void) {
        char dir[] = "/tmp/test-journal.XXXXXX";
        char path[128];
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/journal", dir);

        /* Creating the journal makes its directory entry durable: the directory is fsynced. */
        journal j;
        n_synced_dirs = 0;
        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 1 && j.n == 0);
        CHECK(dir_synced(dir));
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

        /* A crash in the middle of a write, or a journal cut short, leaves a partial frame: what it
         * recorded is lost, so it is reported, kept aside byte for byte and cut off, and the next
         * frame follows the last complete one. */
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(write(fd, "\0\0\0\x40\xa1", 5) == 5);
        close(fd);
        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 3 && j.damaged_bytes == 5 && j.torn);
        journal_close(&j);
        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 3 && j.n == 4);
        CHECK(streq(j.entries[3].stage, "journal") && !j.entries[3].ok);
        CHECK(strstr(j.entries[3].detail, "5 damaged bytes after entry 3 (a frame cut short) kept in "));
        CHECK_OK(journal_append(&j, "done", true, 1, 1, 0, NULL));
        journal_close(&j);
        char aside[160], *kept = NULL;
        size_t kept_len;
        snprintf(aside, sizeof(aside), "%s.damaged-3", path);
        CHECK_OK(read_file(aside, 4096, &kept, &kept_len));
        CHECK(kept_len == 5 && memcmp(kept, "\0\0\0\x40\xa1", 5) == 0);
        free(kept);

        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 5 && j.damaged_bytes == 0);
        CHECK_STREQ(j.entries[4].stage, "done");
        CHECK(j.entries[4].run == 3);
        journal_close(&j);

        /* Only one agent process appends at a time. */
        journal other;
        CHECK_OK(journal_open(path, &j));
        CHECK(journal_open(path, &other) == -EBUSY);
        journal_close(&j);

        /* Running out of memory while replaying is not damage: nothing is cut off. */
        off_t before = file_size(path);
        realloc_calls = 0;
        fail_realloc_at = 3;
        CHECK(journal_open(path, &j) == -ENOMEM);
        fail_realloc_at = 0;
        CHECK(file_size(path) == before);
        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 5 && j.damaged_bytes == 0);
        journal_close(&j);

        /* A whole frame that is not an entry (damage, or a newer format), then more bytes: the
         * replay stops there; what follows is kept aside before it is cut off, and the journal
         * says so. */
        static const char damage[] = "\0\0\0\x01\x01" "later frames";
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(write(fd, damage, sizeof(damage) - 1) == (ssize_t) sizeof(damage) - 1);
        close(fd);
        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 5 && j.damaged_bytes == sizeof(damage) - 1 && !j.torn);
        journal_close(&j);
        CHECK_OK(journal_open(path, &j));
        CHECK(j.run == 4 && j.n == 6);
        CHECK_STREQ(j.entries[5].stage, "journal");
        CHECK(!j.entries[5].ok && strstr(j.entries[5].detail, "17 damaged bytes after entry 5 (not a journal entry)"));
        CHECK(journal_find_ok(&j, "done"));
        journal_close(&j);
        snprintf(aside, sizeof(aside), "%s.damaged-4", path);
        CHECK_OK(read_file(aside, 4096, &kept, &kept_len));
        CHECK(kept_len == sizeof(damage) - 1 && memcmp(kept, damage, kept_len) == 0);
        free(kept);
        CHECK_OK(journal_load(path, &j));
        CHECK(j.n == 6 && j.damaged_bytes == 0);
        journal_close(&j);

        CHECK(journal_load("/nonexistent/journal", &j) == -ENOENT);
        CHECK_OK(rm_rf(dir));
        return 0;
}
