/* Shared by the fuzz targets that feed their input through files: one private directory per
 * process (on /dev/shm when there is one, so the fsyncs of atomic writes cost nothing), removed
 * at exit. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs.h"

static char fuzz_dir_path[64];

static void fuzz_dir_remove(void) {
        (void) rm_rf(fuzz_dir_path);
}

/* The directory (created on first use; aborts if it cannot be). */
static inline const char *fuzz_dir(void) {
        if (!fuzz_dir_path[0]) {
                snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/imgbuild-fuzz-XXXXXX",
                         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
                if (!mkdtemp(fuzz_dir_path))
                        abort();
                atexit(fuzz_dir_remove);
        }
        return fuzz_dir_path;
}
