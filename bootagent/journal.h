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
} journal;

/* Open (create) path, replay it, start a new run. A torn last frame (crash mid-write) is cut
 * off. Returns 0 or -errno. */
int journal_open(const char *path, journal *ret);
/* Read only (status). Missing file: -ENOENT. */
int journal_load(const char *path, journal *ret);
int journal_append(journal *j, const char *stage, bool ok, uint64_t t_ms, uint64_t ms,
                   uint64_t wait_ms, const char *detail);
/* Last successful entry for stage across runs (or NULL). */
const journal_entry *journal_find_ok(const journal *j, const char *stage);
void journal_close(journal *j);
