/* The local QEMU provider: boots build VMs from qcow2 overlays with direct kernel boot, talks to
 * `bootagent serve` over a virtio-serial port, powers them off over QMP.
 *
 * Every QEMU runs in its own process group and is killed (by that group's id) when its VM is
 * freed, when a deadline passes (qemu_vm_set_deadline), or when imgbuild gets SIGINT/SIGTERM/SIGHUP:
 * a VM that is not detached is registered with lib/interrupt.h, whose handlers the command layer
 * installs (the signal then shows up as -EINTR/-EPIPE from the call in progress and
 * interrupt_signal() says which signal it was). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "comm-client.h"
#include "macro.h"

typedef struct qemu_vm qemu_vm;

typedef struct qemu_vm_config {
        const char *kernel;
        const char *initrd;
        const char *disk;          /* qcow2 the VM writes to (an overlay: qemu_overlay_create) */
        const char *console_log;   /* ttyS0 goes here; NULL: inside the VM's private directory */
        unsigned memory_mb;        /* 0: 1024 */
        unsigned cpus;             /* 0: 2 */
        bool network;              /* user-mode NIC with outbound access (for the package mirror);
                                    * otherwise the NIC is restricted (no outbound access) */
        /* What pool members need (all may be 0/NULL): */
        const char *kernel_args;   /* appended to the kernel command line */
        const char *user_net;      /* options of the user-mode NIC ("net=...,host=...,dhcpstart=...") */
        char *const *guestfwd;     /* user-mode forwards into the host ("tcp:ADDR:PORT-cmd:..."), each */
        char *const *hostfwd;      /* forwards from the host ("tcp:127.0.0.1:P-GUESTADDR:GPORT"), each */
        const char *mcast;         /* "GROUP:PORT": a second NIC on a multicast socket bound to
                                    * 127.0.0.1 (VM-to-VM traffic stays on loopback) */
        const char *mcast_mac;     /* its MAC: distinct per VM on one group */
        const char *dir;           /* sockets, qemu.pid and logs go here and stay; NULL: a private
                                    * temporary directory removed with the VM */
        bool detached;             /* the VM outlives this process: not killed when freed or on
                                    * SIGINT/SIGTERM (end it with qemu_vm_powerdown or by its pid) */
} qemu_vm_config;

/* Acceleration decided once per process: KVM only when the CPU advertises vmx/svm and /dev/kvm
 * opens; otherwise TCG, with a one-line notice the first time. Returns the -accel value. */
const char *qemu_accel(void);

/* Create overlay as a qcow2 whose backing file is parent (qemu-img create -b parent -F qcow2). If
 * min_size (bytes) exceeds the parent's virtual size, the overlay is that large (the guest then
 * has to grow its file system). Returns 1 if it grew, 0 if not, or -errno (logged). */
int qemu_overlay_create(const char *parent, const char *overlay, uint64_t min_size);

/* Virtual disk size of a qcow2 image in bytes. Returns 0 or -errno. */
int qemu_image_virtual_size(const char *image, uint64_t *ret);

/* Start QEMU and connect to its communicator and QMP sockets. Returns 0 and a new VM, or -errno
 * (logged, with the console's last lines when QEMU died). */
int qemu_vm_start(const qemu_vm_config *config, qemu_vm **ret);

/* Connect to a detached VM started by another process (qemu_vm_config.dir, its QEMU pid) for
 * communicator calls and qemu_vm_powerdown; freeing it leaves the VM running. Calls on the
 * communicator fail with -EAGAIN after timeout_sec without an answer (0: none). Returns 0,
 * -ESRCH when pid is not running, or -errno (not logged). */
int qemu_vm_attach(const char *dir, pid_t pid, unsigned timeout_sec, qemu_vm **ret);

/* Wait for the guest's communicator to answer a ping: up to timeout_sec after the guest last wrote
 * to its console (a guest that boots slowly on a busy host keeps writing), and at most
 * QEMU_BOOT_PROGRESS_FACTOR * timeout_sec in all. Returns 0, -ETIMEDOUT, -ECHILD if QEMU exited,
 * -EINTR when interrupted (all logged, with the console's last lines). */
#define QEMU_BOOT_PROGRESS_FACTOR 4
int qemu_vm_wait_ready(qemu_vm *vm, unsigned timeout_sec);

/* The communicator client of a started VM (borrowed). */
comm_client *qemu_vm_comm(qemu_vm *vm);

/* Kill the VM if it is still running after timeout_sec from now (0: no deadline). Calls on the
 * communicator then fail with -EPIPE/-EIO. Only one deadline per process is active. */
void qemu_vm_set_deadline(qemu_vm *vm, unsigned timeout_sec);
/* True if the last deadline killed a VM. */
bool qemu_deadline_expired(void);

/* Clean shutdown: QMP system_powerdown (pressed again every POWERDOWN_REPEAT_MS: a guest still
 * loading its button driver drops the event), then wait for QEMU to exit (so the disk is complete
 * and can be snapshotted) as qemu_vm_wait_ready waits: up to timeout_sec after the guest's last
 * console output, QEMU_BOOT_PROGRESS_FACTOR * timeout_sec at most. Returns 0, or -ETIMEDOUT
 * after killing it (logged). */
#define POWERDOWN_REPEAT_MS 10000
int qemu_vm_powerdown(qemu_vm *vm, unsigned timeout_sec);

/* Freeze the VM's current disk layer while it runs: QEMU creates overlay (qcow2, backed by the
 * current layer) and sends every later write there (QMP blockdev-snapshot-sync). The frozen layer
 * is as consistent as a crash at this point: sync the guest first. Returns 0 or -errno (logged). */
int qemu_vm_snapshot(qemu_vm *vm, const char *overlay);

/* Print the console log's last lines to stderr. */
void qemu_vm_show_console(qemu_vm *vm, unsigned lines);

/* Kill QEMU if still running (its whole process group), reap it, remove the private directory.
 * Accepts NULL. */
qemu_vm *qemu_vm_free(qemu_vm *vm);
DEFINE_TRIVIAL_CLEANUP_FUNC(qemu_vm *, qemu_vm_free);

/* QMP, QEMU's line-delimited JSON control protocol. One line (without its newline): 0 for a
 * command's answer ("return") or the greeting ("QMP"), -EREMOTEIO for an "error" answer, 1 for
 * anything else (events), -EBADMSG if it is not JSON. */
int qemu_qmp_parse_line(const char *line, size_t len);
/* Read lines from fd until one that qemu_qmp_parse_line does not skip (an answer, an error or
 * garbage) and return its result. Lines are capped at QEMU_QMP_LINE_MAX bytes. Returns that, or
 * -ETIMEDOUT after timeout_ms, -EPIPE at end of file, -EINTR when a signal asks to stop,
 * -ENOBUFS for an overlong line, -errno. */
#define QEMU_QMP_LINE_MAX (1024 * 1024)
int qemu_qmp_read_reply(int fd, unsigned timeout_ms);
