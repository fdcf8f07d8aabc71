/* The agent's state journal: one CBOR frame per event (lib/frame.h), appended and fsynced to
 * <state_dir>/journal. Replayed to skip finished stages and by `bootagent status`. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct journal_entry {
        uint64_t run;        /* run number, counts agent starts */
        char *stage;
        bool ok;
        uint64_t t_ms;       /* monotonic ms since the run started, at the end of the stage */
        uint64_t ms;         /* stage duration */
        uint64_t wait_ms;    /* part of ms spent waiting on others (retries, peers, promote) */
        char *detail;        /* non-secret: member id, failure reason, ... */
} journal_entry;

typedef struct journal {
        int fd;
        uint64_t run;
        journal_entry *entries; /* replayed content, including this run's appends */
        size_t n;
        size_t damaged_bytes;   /* journal_load: bytes after the last whole entry */
        bool torn;              /* they begin with a frame cut short (a truncated journal or a write
                                 * a crash cut short), not with a frame that is not an entry */
} journal;

/* Open (create, fsyncing the directory) path, lock it, replay it, start a new run. A frame cut
 * short (a crash mid-write, or a truncated journal) or a frame that is not a valid entry (damage,
 * or a newer format) stops the replay: it and everything after it are first saved to
 * <path>.damaged-<run>, then cut off, and a failed "journal" entry saying so is appended. Returns
 * 0; -EBUSY if another process holds the journal; -ENOMEM (nothing is cut off); other -errno. */
int journal_open(const char *path, journal *ret);
/* Read only, no lock (status). Missing file: -ENOENT. damaged_bytes counts what follows the last
 * whole entry (what journal_open will keep aside in <path>.damaged-<run + 1>). */
int journal_load(const char *path, journal *ret);
int journal_append(journal *j, const char *stage, bool ok, uint64_t t_ms, uint64_t ms,
                   uint64_t wait_ms, const char *detail);
/* Last successful entry for stage across runs (or NULL). */
const journal_entry *journal_find_ok(const journal *j, const char *stage);
void journal_close(journal *j);
