#include "runner.h"

#include <assert.h>
#include <stdio.h>
#include <time.h>

#include "fs.h"
#include "interrupt.h"
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

struct runner {
        const runner_config *config;
        runner_step *steps;
        size_t n;
        size_t first;        /* steps before it are cached */
        size_t done;         /* steps before it are cached or ran */
        progress *p;
        progress *plain;     /* ours, when config->progress is NULL */
        qemu_vm *vm;
        char *parent;        /* the layer the first step to run starts from */
        char *layer;         /* the layer being written (unlinked if its step does not finish) */
        bool grown;
};

runner *runner_free(runner *r) {
        if (!r)
                return NULL;
        /* The layer being written is unfinished: it goes; the committed ones before it stay. */
        r->vm = qemu_vm_free(r->vm);
        if (r->layer && r->done < r->n)
                (void) unlink(r->layer);
        free(r->layer);
        free(r->parent);
        progress_free(r->plain);
        free(r);
        return NULL;
}

int runner_new(const runner_config *config, runner_step *steps, size_t n, runner **ret) {
        _cleanup_(runner_freep) runner *r = calloc(1, sizeof(*r));
        int q;

        if (!r)
                return log_error_errno(-ENOMEM, "Out of memory");
        *r = (runner) { .config = config, .steps = steps, .n = n, .p = config->progress };
        if (!r->p) {
                q = progress_new(PROGRESS_PLAIN, &r->plain);
                if (q < 0)
                        return log_error_errno(q, "Out of memory");
                r->p = r->plain;
        }
        q = runner_cached_prefix(config->store, steps, n, &r->first);
        if (q < 0)
                return log_error_errno(q, "Failed to look up cached steps: %m");
        for (size_t i = 0; i < n; i++) {
                steps[i].cached = i < r->first;
                steps[i].seconds = 0;
        }
        r->done = r->first;
        q = 0;
        if (r->first == 0)
                r->parent = strdup(config->base->disk);
        else
                q = runner_layer_path(config->store, steps[r->first - 1].key, &r->parent);
        if (q < 0 || !r->parent)
                return log_error_errno(-ENOMEM, "Out of memory");
        *ret = TAKE_PTR(r);
        return 0;
}

int runner_boot(runner *r, comm_client **ret) {
        const runner_config *config = r->config;
        _cleanup_free_ char *layers_dir = NULL;
        int q;

        for (size_t i = 0; i < r->first; i++)
                progress_step_cached(r->p, i, r->n, r->steps[i].name, r->steps[i].key);
        if (r->first == r->n) {
                *ret = NULL;
                return 0;
        }

        if (asprintf(&layers_dir, "%s/layers", config->store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        q = mkdir_p(layers_dir, 0755);
        if (q < 0)
                return log_error_errno(q, "Failed to create %s: %m", layers_dir);

        q = discard_layer(config->store, r->steps[r->first].key);
        if (q >= 0)
                q = runner_layer_path(config->store, r->steps[r->first].key, &r->layer);
        if (q < 0)
                return log_error_errno(q, "Failed to prepare the layer of step %zu: %m", r->first + 1);
        q = qemu_overlay_create(r->parent, r->layer, config->disk_size);
        if (q < 0)
                return q;
        r->grown = q > 0;

        /* A VM's NIC is decided at boot: open it if any remaining step needs the mirror. */
        bool network = false;
        for (size_t i = r->first; i < r->n; i++)
                network = network || r->steps[i].network;
        qemu_vm_config vc = { .kernel = config->base->kernel, .initrd = config->base->initrd, .disk = r->layer,
                              .memory_mb = config->memory_mb, .cpus = config->cpus, .network = network };
        progress_task_start(r->p, "booting the build VM", NULL);
        q = qemu_vm_start(&vc, &r->vm);
        if (q >= 0)
                q = qemu_vm_wait_ready(r->vm, config->boot_timeout ?: 300);
        if (q >= 0 && r->grown)
                q = guest_grow_root(r->vm);
        progress_task_end(r->p, q >= 0);
        if (q < 0)
                return q;
        *ret = qemu_vm_comm(r->vm);
        return 0;
}

int runner_run_step(runner *r, size_t i) {
        const runner_config *config = r->config;
        runner_step *steps = r->steps;
        size_t n = r->n;
        int q;

        if (i < r->first)
                return 0;
        assert(i == r->done && r->vm);
        int64_t start = time_now_ms();
        progress_step_start(r->p, i, n, steps[i].name, steps[i].key);

        qemu_vm_set_deadline(r->vm, config->step_timeout ?: 3600);
        q = steps[i].run(qemu_vm_comm(r->vm), steps[i].userdata);
        if (q >= 0 && i + 1 < n)
                q = guest_sync(r->vm);
        qemu_vm_set_deadline(r->vm, 0);
        if (q < 0) {
                progress_step_end(r->p, false);
                if (interrupt_signal())
                        q = log_error_errno(-EINTR, "Interrupted in step %zu, VM stopped", i + 1);
                else if (qemu_deadline_expired())
                        q = log_error_errno(-ETIMEDOUT, "Step %zu did not finish in time, VM stopped", i + 1);
                else
                        log_error("Step %zu/%zu %s failed", i + 1, n, steps[i].name);
                return q;
        }

        if (i + 1 < n) {
                /* Freeze this layer; the next step writes to a new one on top. */
                _cleanup_free_ char *next = NULL;
                q = discard_layer(config->store, steps[i + 1].key);
                if (q >= 0)
                        q = runner_layer_path(config->store, steps[i + 1].key, &next);
                if (q < 0) {
                        progress_step_end(r->p, false);
                        return log_error_errno(q, "Failed to prepare the layer of step %zu: %m", i + 2);
                }
                free(r->layer);
                r->layer = TAKE_PTR(next);
                q = qemu_vm_snapshot(r->vm, r->layer);
        } else
                q = qemu_vm_powerdown(r->vm, 120);
        if (q >= 0)
                q = commit_layer(config->store, steps[i].key);
        if (q < 0) {
                progress_step_end(r->p, false);
                return log_error_errno(q, "Failed to keep the layer of step %zu: %m", i + 1);
        }
        steps[i].seconds = (double) (time_now_ms() - start) / 1000.0;
        progress_step_end(r->p, true);
        r->done = i + 1;
        return 0;
}

char *runner_disk(runner *r) {
        if (r->done < r->n)
                return NULL;
        return strdup(r->first == r->n ? r->parent : r->layer);
}

int runner_run(const runner_config *config, runner_step *steps, size_t n, char **ret_disk) {
        _cleanup_(runner_freep) runner *r = NULL;
        comm_client *c;
        int q;

        q = runner_new(config, steps, n, &r);
        if (q < 0)
                return q;
        q = runner_boot(r, &c);
        for (size_t i = 0; q >= 0 && i < n; i++)
                q = runner_run_step(r, i);
        if (q < 0)
                return q;
        if (ret_disk) {
                *ret_disk = runner_disk(r);
                if (!*ret_disk)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        return 0;
}
