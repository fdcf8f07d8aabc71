/* Fuzz the agent's journal replay (bootagent/journal.c) with the file's content. Checked, against
 * journal_load of the same bytes: journal_open keeps every entry before the first bad frame as it
 * was, keeps the bytes from there on (damage or a frame cut short) byte for byte in
 * <path>.damaged-<run> (and says so in a failed "journal" entry), leaves the
 * file as the valid prefix plus what it appended, and starts run max(run) + 1. A new entry then
 * appends, and the file replays to the same entries with nothing damaged. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static bool entry_eq(const journal_entry *a, const journal_entry *b) {
        return a->run == b->run && str_eq(a->stage, b->stage) && a->ok == b->ok && a->t_ms == b->t_ms &&
               a->ms == b->ms && a->wait_ms == b->wait_ms && str_eq(a->detail, b->detail);
}

static bool same_entries(const journal *a, const journal *b, size_t n) {
        if (a->n < n || b->n < n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!entry_eq(&a->entries[i], &b->entries[i]))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[128], aside[192];
        _cleanup_free_ char *after = NULL, *kept = NULL;
        size_t after_len, kept_len;
        journal loaded, opened, again;

        if (size > 256 * 1024)
                return 0;
        snprintf(path, sizeof(path), "%s/journal", fuzz_dir());
        if (write_file_atomic(path, data, size, 0600, (uid_t) -1, (gid_t) -1) < 0)
                abort();

        if (journal_load(path, &loaded) < 0)
                abort();
        size_t valid = size - loaded.damaged_bytes;
        uint64_t max_run = 0;
        for (size_t i = 0; i < loaded.n; i++)
                if (loaded.entries[i].run > max_run)
                        max_run = loaded.entries[i].run;
        if (loaded.damaged_bytes > size || loaded.run != max_run)
                abort();

        if (journal_open(path, &opened) < 0)
                abort();
        if (opened.run != max_run + 1 || !same_entries(&loaded, &opened, loaded.n))
                abort();
        snprintf(aside, sizeof(aside), "%s.damaged-%" PRIu64, path, opened.run);
        bool damaged = access(aside, F_OK) == 0;
        if (opened.n != loaded.n + damaged || damaged != (valid < size))
                abort();
        if (damaged) {
                const journal_entry *e = &opened.entries[loaded.n];
                if (!streq(e->stage, "journal") || e->ok || e->run != opened.run || !e->detail)
                        abort();
                if (read_file(aside, 16 * 1024 * 1024, &kept, &kept_len) < 0 || kept_len != size - valid ||
                    memcmp(kept, data + valid, kept_len) != 0)
                        abort();
                (void) unlink(aside);
        }
        if (journal_append(&opened, "fuzz", true, 1, 2, 3, "after replay") < 0)
                abort();
        if (read_file(path, 16 * 1024 * 1024, &after, &after_len) < 0 || after_len <= valid ||
            memcmp(after, data, valid) != 0)
                abort();

        if (journal_load(path, &again) < 0 || again.damaged_bytes != 0 || again.n != opened.n ||
            !same_entries(&opened, &again, opened.n))
                abort();
        journal_close(&again);
        journal_close(&opened);
        journal_close(&loaded);
        (void) unlink(path);
        return 0;
}
