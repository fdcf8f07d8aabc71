#include "runner.h"

#include <stdio.h>
#include <time.h>

#include "fs.h"
#include "log.h"
#include "qemu.h"
#include "time-util.h"

int runner_layer_path(const char *store, const char *key, char **ret) {
        return asprintf(ret, "%s/layers/%s.qcow2", store, key) < 0 ? -ENOMEM : 0;
}

static int marker_path(const char *store, const char *key, char **ret) {
        return asprintf(ret, "%s/layers/%s.done", store, key) < 0 ? -ENOMEM : 0;
}

int runner_cached_prefix(const char *store, const runner_step *steps, size_t n, size_t *ret) {
        size_t i;
        int r;

        for (i = 0; i < n; i++) {
                _cleanup_free_ char *marker = NULL, *layer = NULL;
                r = marker_path(store, steps[i].key, &marker);
                if (r >= 0)
                        r = runner_layer_path(store, steps[i].key, &layer);
                if (r < 0)
                        return r;
                if (access(marker, F_OK) < 0 || access(layer, F_OK) < 0) {
                        if (errno != ENOENT)
                                return negative_errno();
                        break;
                }
        }
        *ret = i;
        return 0;
}

/* Mark a frozen layer as good: durable before anything builds on it. */
static int commit_layer(const char *store, const char *key) {
        _cleanup_free_ char *marker = NULL;
        int r;

        r = marker_path(store, key, &marker);
        if (r < 0)
                return r;
        return write_file_atomic(marker, key, strlen(key), 0644, (uid_t) -1, (gid_t) -1);
}

/* A fresh, empty start for a layer that is about to be written (leftovers of a killed build). */
static int discard_layer(const char *store, const char *key) {
        _cleanup_free_ char *marker = NULL, *layer = NULL;
        int r;

        r = marker_path(store, key, &marker);
        if (r >= 0)
                r = runner_layer_path(store, key, &layer);
        if (r < 0)
                return r;
        if (unlink(marker) < 0 && errno != ENOENT)
                return negative_errno();
        if (unlink(layer) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

/* Flush the guest's page cache to the disk layer before freezing it. */
static int guest_sync(qemu_vm *vm) {
        char *argv[] = { (char *) "sync", NULL };
        _cleanup_free_ char *error = NULL;
        int status, r;

        r = comm_client_exec(qemu_vm_comm(vm), argv, NULL, "/", -1, -1, &status, &error);
        if (r == -EREMOTEIO)
                return log_error("Failed to sync the guest: %s", error), -EREMOTEIO;
        if (r < 0)
                return log_error_errno(r, "Failed to sync the guest: %m");
        if (status != 0) {
                log_error("sync in the guest failed with status %d", status);
                return -EPROTO;
        }
        return 0;
}

/* The root file system lies directly on /dev/vda: ext4 grows online to the new disk size. */
static int guest_grow_root(qemu_vm *vm) {
        char *argv[] = { (char *) "resize2fs", (char *) "/dev/vda", NULL };
        _cleanup_free_ char *error = NULL;
        int status, r;

        r = comm_client_exec(qemu_vm_comm(vm), argv, NULL, "/", -1, STDERR_FILENO, &status, &error);
        if (r == -EREMOTEIO)
                return log_error("Failed to grow the guest's file system: %s", error), -EREMOTEIO;
        if (r < 0)
                return log_error_errno(r, "Failed to grow the guest's file system: %m");
        if (status != 0) {
                log_error("resize2fs in the guest failed with status %d", status);
                return -EPROTO;
        }
        return 0;
}

int runner_run(const runner_config *config, runner_step *steps, size_t n, char **ret_disk) {
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        _cleanup_(progress_freep) progress *plain = NULL;
        _cleanup_free_ char *layers_dir = NULL, *parent = NULL, *layer = NULL;
        progress *p = config->progress;
        size_t first;
        int r;

        if (!p) {
                r = progress_new(PROGRESS_PLAIN, &plain);
                if (r < 0)
                        return log_error_errno(r, "Out of memory");
                p = plain;
        }
        r = runner_cached_prefix(config->store, steps, n, &first);
        if (r < 0)
                return log_error_errno(r, "Failed to look up cached steps: %m");
        for (size_t i = 0; i < n; i++) {
                steps[i].cached = i < first;
                steps[i].seconds = 0;
        }
        for (size_t i = 0; i < first; i++)
                progress_step_cached(p, i, n, steps[i].name, steps[i].key);

        if (first == 0)
                parent = strdup(config->base->disk);
        else
                r = runner_layer_path(config->store, steps[first - 1].key, &parent);
        if (r < 0 || !parent)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (first == n) {
                if (ret_disk)
                        *ret_disk = TAKE_PTR(parent);
                return 0;
        }

        if (asprintf(&layers_dir, "%s/layers", config->store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = mkdir_p(layers_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", layers_dir);

        r = discard_layer(config->store, steps[first].key);
        if (r >= 0)
                r = runner_layer_path(config->store, steps[first].key, &layer);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare the layer of step %zu: %m", first + 1);
        r = qemu_overlay_create(parent, layer, config->disk_size);
        if (r < 0)
                return r;
        bool grown = r > 0;

        /* A VM's NIC is decided at boot: open it if any remaining step needs the mirror. */
        bool network = false;
        for (size_t i = first; i < n; i++)
                network = network || steps[i].network;
        qemu_vm_config vc = { .kernel = config->base->kernel, .initrd = config->base->initrd, .disk = layer,
                              .memory_mb = config->memory_mb, .cpus = config->cpus, .network = network };
        progress_task_start(p, "booting the build VM", NULL);
        r = qemu_vm_start(&vc, &vm);
        if (r >= 0)
                r = qemu_vm_wait_ready(vm, config->boot_timeout ?: 300);
        if (r >= 0 && grown)
                r = guest_grow_root(vm);
        progress_task_end(p, r >= 0);
        if (r < 0)
                goto fail;

        for (size_t i = first; i < n; i++) {
                int64_t start = time_now_ms();
                progress_step_start(p, i, n, steps[i].name, steps[i].key);

                qemu_vm_set_deadline(vm, config->step_timeout ?: 3600);
                r = steps[i].run(qemu_vm_comm(vm), steps[i].userdata);
                if (r >= 0 && i + 1 < n)
                        r = guest_sync(vm);
                qemu_vm_set_deadline(vm, 0);
                if (r < 0) {
                        progress_step_end(p, false);
                        if (qemu_interrupted())
                                r = log_error_errno(-EINTR, "Interrupted in step %zu, VM stopped", i + 1);
                        else if (qemu_deadline_expired())
                                r = log_error_errno(-ETIMEDOUT, "Step %zu did not finish in time, VM stopped", i + 1);
                        else
                                log_error("Step %zu/%zu %s failed", i + 1, n, steps[i].name);
                        goto fail;
                }

                if (i + 1 < n) {
                        /* Freeze this layer; the next step writes to a new one on top. */
                        free(layer);
                        layer = NULL;
                        r = discard_layer(config->store, steps[i + 1].key);
                        if (r >= 0)
                                r = runner_layer_path(config->store, steps[i + 1].key, &layer);
                        if (r < 0) {
                                progress_step_end(p, false);
                                log_error_errno(r, "Failed to prepare the layer of step %zu: %m", i + 2);
                                goto fail;
                        }
                        r = qemu_vm_snapshot(vm, layer);
                } else
                        r = qemu_vm_powerdown(vm, 120);
                if (r >= 0)
                        r = commit_layer(config->store, steps[i].key);
                if (r < 0) {
                        progress_step_end(p, false);
                        log_error_errno(r, "Failed to keep the layer of step %zu: %m", i + 1);
                        goto fail;
                }
                steps[i].seconds = (double) (time_now_ms() - start) / 1000.0;
                progress_step_end(p, true);
        }
        if (ret_disk)
                *ret_disk = TAKE_PTR(layer);
        return 0;

fail:
        /* The layer being written is unfinished: it goes; the committed ones before it stay. */
        vm = qemu_vm_free(vm);
        if (layer)
                (void) unlink(layer);
        return r;
}
