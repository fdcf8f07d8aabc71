/* Runs a build's steps in one QEMU VM, one qcow2 layer per step, kept in the image store under
 * the step's cache key: STORE/layers/KEY.qcow2 (backed by the previous step's layer, the first by
 * the base disk), committed by STORE/layers/KEY.done once the step succeeded and its layer is
 * frozen. A rebuild boots nothing for the cached prefix of steps and starts the VM on the last
 * cached layer; a failed or killed build keeps every step before the failing one.
 *
 * Between steps the guest is synced and the layer frozen live (QMP blockdev-snapshot-sync), so
 * intermediate layers are crash-consistent; the last one is frozen by a clean power-off. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "comm-client.h"
#include "macro.h"
#include "progress.h"

typedef struct runner_step {
        const char *key;     /* cache key, lower-case hex */
        const char *name;    /* for progress lines, e.g. "run apt-get clean" (no secrets) */
        bool network;        /* needs the package mirror */
        /* Do the step through the communicator. Returns 0, or -errno after logging why. */
        int (*run)(comm_client *c, void *userdata);
        void *userdata;
        /* Set by runner_run: */
        bool cached;         /* its layer was reused */
        double seconds;      /* time it took when it ran */
} runner_step;

typedef struct runner_config {
        const char *store;         /* image store directory */
        const base_image *base;
        unsigned step_timeout;     /* seconds per step; 0: 3600 */
        unsigned boot_timeout;     /* seconds; 0: 300 */
        unsigned memory_mb;        /* 0: provider default */
        unsigned cpus;             /* 0: provider default */
        uint64_t disk_size;        /* bytes; 0: the base's. Grows (never shrinks) the disk and the
                                    * root file system in the first layer that is built */
        progress *progress;        /* how steps and the boot are shown; NULL: plain log lines */
} runner_config;

/* Path of the layer for key (whether or not it exists). Returns 0 and a new string or -ENOMEM. */
int runner_layer_path(const char *store, const char *key, char **ret);

/* Number of leading steps whose layers are committed. Returns >= 0 or -errno. */
int runner_cached_prefix(const char *store, const runner_step *steps, size_t n, size_t *ret);

/* One run of the steps, in pieces for the build provider (qemu-build.c): runner_new finds the
 * cached prefix (and marks steps[].cached), runner_boot shows the cached steps and boots the VM
 * on the last cached layer when a step is left to run, runner_run_step runs step i in it (a cached
 * step does nothing), freezing its layer (the last by a clean power-off) and committing it, and
 * runner_free stops the VM and drops the layer of a step that did not finish. steps and config
 * must outlive the runner. Each returns 0 or -errno (logged; -EINTR when imgbuild was
 * interrupted, -ETIMEDOUT when the step's deadline passed). */
typedef struct runner runner;
int runner_new(const runner_config *config, runner_step *steps, size_t n, runner **ret);
/* *ret: the VM's communicator (borrowed, until runner_free), NULL when every step is cached. */
int runner_boot(runner *r, comm_client **ret);
int runner_run_step(runner *r, size_t i);
/* The last step's layer (the base disk when n == 0) once every step is done. Returns a new
 * string or NULL (-ENOMEM, or steps left). */
char *runner_disk(runner *r);
runner *runner_free(runner *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(runner *, runner_free);

/* All of the above: run every step not cached yet, then power off. On success *ret_disk (may be
 * NULL) is the last step's layer (the base disk when n == 0). Returns 0 or -errno (logged; -EINTR
 * when imgbuild was interrupted). */
int runner_run(const runner_config *config, runner_step *steps, size_t n, char **ret_disk);
