#include "qemu.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "base.h"
#include "comm.h"
#include "fs.h"
#include "interrupt.h"
#include "io-util.h"
#include "json.h"
#include "log.h"
#include "logtail.h"
#include "spawn.h"
#include "strv.h"
#include "time-util.h"

/* The -drive id, the block device QMP snapshots name. */
#define QEMU_DISK_ID "disk0"

struct qemu_vm {
        pid_t pid;          /* QEMU, leader of its own process group */
        bool exited;
        bool child;         /* started by this process (else attached: not ours to reap) */
        bool detached;      /* outlives this process: freeing it leaves QEMU running */
        bool own_dir;       /* dir is private and goes with the VM */
        char *dir;          /* sockets, logs */
        char *console_log;
        char *qemu_log;     /* QEMU's own stdout/stderr */
        int comm_fd;
        int qmp_fd;
        comm_client comm;
};

/* Signals are the command layer's (lib/interrupt.h): a VM's process group is registered there
 * and killed on SIGINT/SIGTERM/SIGHUP, and the step deadline is its alarm. */
static void block_signals(sigset_t *old) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGALRM);
        sigprocmask(SIG_BLOCK, &set, old);
}

static void register_vm(pid_t pid) {
        /* A 33rd VM is not killed on a signal (as before: the table is full). */
        (void) interrupt_register(-pid, SIGKILL);
}

static void unregister_vm(pid_t pid) {
        interrupt_unregister(-pid); /* also disarms its deadline */
}

bool qemu_deadline_expired(void) { return interrupt_alarm_expired(); }

static bool cpu_has_virtualization(void) {
        _cleanup_free_ char *cpuinfo = NULL;
        if (read_file("/proc/cpuinfo", 16u * 1024u * 1024u, &cpuinfo, NULL) < 0)
                return false;
        for (char *line = cpuinfo; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (!startswith(line, "flags"))
                        continue;
                char *end = strchrnul(line, '\n');
                char saved = *end;
                *end = '\0';
                bool found = strstr(line, " vmx") || strstr(line, " svm");
                *end = saved;
                return found;
        }
        return false;
}

const char *qemu_accel(void) {
        static const char *accel;
        if (accel)
                return accel;
        /* Booting a probe guest would cost as much as a build step under TCG; the CPU flag and the
         * device are what decide whether KVM guests can run at all. */
        if (!cpu_has_virtualization()) {
                log_notice("KVM unavailable (no vmx/svm): using TCG, builds are slower");
                return accel = "tcg";
        }
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                log_internal(LOG_NOTICE, errno, "KVM unavailable (/dev/kvm: %m): using TCG, builds are slower");
                return accel = "tcg";
        }
        close(fd);
        return accel = "kvm";
}

int qemu_image_virtual_size(const char *image, uint64_t *ret) {
        char *argv[] = { (char *) "qemu-img", (char *) "info", (char *) "--output=json", (char *) image, NULL };
        _cleanup_buf_ buf out = BUF_INIT(4 * 1024 * 1024);
        _cleanup_(json_decrefp) json_t *info = NULL;
        int r, status;

        r = spawn_capture(argv, NULL, &out, &status);
        if (r < 0)
                return r;
        if (status != 0)
                return -EPROTO;
        r = json_parse(out.data ?: "", out.len, &info, NULL);
        if (r < 0)
                return r;
        return json_path_u64(info, "virtual-size", ret);
}

int qemu_overlay_create(const char *parent, const char *overlay, uint64_t min_size) {
        char size[32] = "";
        int r, status;

        if (min_size > 0) {
                uint64_t current;
                r = qemu_image_virtual_size(parent, &current);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the size of %s: %m", parent);
                /* Only ever grow: a smaller view would cut the file system short. */
                if (min_size > current)
                        snprintf(size, sizeof(size), "%" PRIu64, min_size);
        }
        char *argv[] = { (char *) "qemu-img", (char *) "create", (char *) "-q", (char *) "-f", (char *) "qcow2",
                         (char *) "-b", (char *) parent, (char *) "-F", (char *) "qcow2", (char *) overlay,
                         size[0] ? size : NULL, NULL };
        r = spawn_run(argv, NULL, &status);
        if (r < 0)
                return log_error_errno(r, "Failed to run qemu-img: %m");
        if (status != 0) {
                log_error("qemu-img create of %s on %s failed with status %d", overlay, parent, status);
                return -EPROTO;
        }
        return size[0] ? 1 : 0;
}

static int connect_unix(const char *path, int *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

/* Has QEMU exited? Reaps it if so. */
static bool vm_exited(qemu_vm *vm) {
        if (vm->exited)
                return true;
        int status;
        if (!vm->child) {
                /* Attached: reaped here only if this process happens to be its parent. */
                if (waitpid(vm->pid, &status, WNOHANG) == vm->pid || (kill(vm->pid, 0) < 0 && errno == ESRCH))
                        vm->exited = true;
                return vm->exited;
        }
        pid_t p = waitpid(vm->pid, &status, WNOHANG);
        if (p == vm->pid || (p < 0 && errno == ECHILD)) {
                vm->exited = true;
                unregister_vm(vm->pid);
                /* Anything it started in its group goes too. */
                (void) kill(-vm->pid, SIGKILL);
        }
        return vm->exited;
}

static void vm_kill(qemu_vm *vm) {
        if (vm->exited)
                return;
        (void) kill(-vm->pid, SIGKILL);
        int status;
        while (vm->child && waitpid(vm->pid, &status, 0) < 0 && errno == EINTR)
                ;
        vm->exited = true;
        unregister_vm(vm->pid);
}

void qemu_vm_show_console(qemu_vm *vm, unsigned lines) {
        log_error("Last lines of the VM console (%s):", vm->console_log);
        log_file_tail(vm->console_log, lines);
}

static void show_qemu_log(qemu_vm *vm) {
        log_error("QEMU output (%s):", vm->qemu_log);
        log_file_tail(vm->qemu_log, 10);
}

/* Connect to one of QEMU's listening sockets, which appear shortly after it starts. */
static int connect_vm_socket(qemu_vm *vm, const char *path, int *ret) {
        int64_t until = time_now_ms() + 30000;
        int r;

        for (;;) {
                r = connect_unix(path, ret);
                if (r >= 0)
                        return 0;
                if (r != -ENOENT && r != -ECONNREFUSED)
                        return r;
                if (vm_exited(vm))
                        return -ECHILD;
                if (interrupt_signal())
                        return -EINTR;
                if (time_now_ms() > until)
                        return -ETIMEDOUT;
                (void) usleep(50000);
        }
}

int qemu_qmp_parse_line(const char *line, size_t len) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        if (json_parse(line, len, &j, NULL) < 0)
                return -EBADMSG;
        if (json_path(j, "error"))
                return -EREMOTEIO;
        if (json_path(j, "return") || json_path(j, "QMP"))
                return 0;
        return 1;
}

int qemu_qmp_read_reply(int fd, unsigned timeout_ms) {
        _cleanup_buf_ buf line = BUF_INIT(QEMU_QMP_LINE_MAX);
        int64_t until = time_now_ms() + timeout_ms;

        for (;;) {
                char c;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int64_t left = until - time_now_ms();
                if (time_now_ms() >= until)
                        return -ETIMEDOUT;
                int n = poll(&pfd, 1, (int) left);
                if (n < 0 && errno == EINTR) {
                        if (interrupt_signal())
                                return -EINTR;
                        continue;
                }
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -ETIMEDOUT;
                ssize_t k = read(fd, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return -EPIPE;
                if (c != '\n') {
                        int r = buf_append(&line, &c, 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                int r = qemu_qmp_parse_line(line.data ?: "", line.len);
                buf_clear(&line);
                if (r <= 0)
                        return r;
        }
}

/* Send {"execute": command, "arguments": arguments} (arguments may be NULL) and wait for its
 * answer. */
static int qmp_execute_args(qemu_vm *vm, const char *command, json_t *arguments) {
        _cleanup_(json_decrefp) json_t *msg = json_pack("{s:s}", "execute", command);
        if (!msg || (arguments && json_object_set(msg, "arguments", arguments) < 0))
                return -ENOMEM;
        _cleanup_free_ char *text = json_dump_compact(msg);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        text[len++] = '\n'; /* replaces the NUL: written by length */
        int r = loop_write(vm->qmp_fd, text, len);
        if (r < 0)
                return r;
        return qemu_qmp_read_reply(vm->qmp_fd, 30000);
}

static int qmp_execute(qemu_vm *vm, const char *command) {
        return qmp_execute_args(vm, command, NULL);
}

/* Greeting, then capabilities negotiation: every new QMP connection starts with these. */
static int qmp_handshake(qemu_vm *vm) {
        int r = qemu_qmp_read_reply(vm->qmp_fd, 10000);
        return r < 0 ? r : qmp_execute(vm, "qmp_capabilities");
}

static int build_argv(const qemu_vm_config *config, qemu_vm *vm, char ***ret) {
        _cleanup_strv_free_ char **a = NULL;
        const char *accel = qemu_accel();
        int r = 0;

#define ADD(s) do { if (r >= 0) r = strv_push(&a, (s)); } while (0)
#define ADDF(...) do { if (r >= 0) r = strv_pushf(&a, __VA_ARGS__); } while (0)
        if (!config->detached) {
                /* A VM that belongs to this process dies with it, even when a SIGKILL leaves no
                 * chance to clean up: util-linux's setpriv sets the parent-death signal, then
                 * becomes QEMU (same PID). */
                ADD("setpriv");
                ADD("--pdeathsig");
                ADD("KILL");
                ADD("--");
        }
        ADD("qemu-system-x86_64");
        ADD("-nodefaults");
        ADD("-nographic");
        ADD("-no-user-config");
        ADD("-no-reboot");
        ADD("-accel");
        ADD(accel);
        ADD("-cpu");
        /* "max" keeps svm/vmx in the model, which the guest's systemd needs under TCG. */
        ADD(streq(accel, "kvm") ? "host" : "max");
        ADD("-smp");
        ADDF("%u", config->cpus ?: 2);
        ADD("-pidfile");
        ADDF("%s/qemu.pid", vm->dir);
        ADD("-m");
        ADDF("%u", config->memory_mb ?: 1024);
        ADD("-kernel");
        ADD(config->kernel);
        ADD("-initrd");
        ADD(config->initrd);
        ADD("-append");
        /* panic=-1 with -no-reboot: a guest that cannot boot ends QEMU instead of spinning.
         * no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check times out and
         * panics ("IO-APIC + timer doesn't work!"); the emulated timer works, the check is wrong. */
        ADDF("root=LABEL=rootfs rw console=ttyS0 panic=-1 no_timer_check%s%s", config->kernel_args ? " " : "",
             strempty(config->kernel_args));
        ADD("-drive");
        /* The overlay is throw-away until a clean power-off, which flushes it: no need to pay
         * for guest flushes on the way. */
        ADDF("file=%s,id=" QEMU_DISK_ID ",if=virtio,format=qcow2,cache=unsafe,discard=unmap", config->disk);
        ADD("-chardev");
        ADDF("file,id=console,path=%s", vm->console_log);
        ADD("-serial");
        ADD("chardev:console");
        ADD("-device");
        ADD("virtio-serial-pci");
        ADD("-chardev");
        ADDF("socket,id=comm,path=%s/comm.sock,server=on,wait=off", vm->dir);
        ADD("-device");
        ADD("virtserialport,chardev=comm,name=" BASE_COMM_PORT);
        ADD("-qmp");
        ADDF("unix:%s/qmp.sock,server=on,wait=off", vm->dir);
        ADD("-netdev");
        /* Always a NIC so the guest looks the same; it reaches out only when a step needs the
         * package mirror. Forwards work either way. */
        _cleanup_buf_ buf net = BUF_INIT(64 * 1024);
        if (r >= 0)
                r = buf_printf(&net, "user,id=n0%s%s%s", config->network ? "" : ",restrict=on",
                               config->user_net ? "," : "", strempty(config->user_net));
        for (char *const *f = config->guestfwd; r >= 0 && f && *f; f++)
                r = buf_printf(&net, ",guestfwd=%s", *f);
        for (char *const *f = config->hostfwd; r >= 0 && f && *f; f++)
                r = buf_printf(&net, ",hostfwd=%s", *f);
        ADD(net.data);
        ADD("-device");
        ADD("virtio-net-pci,netdev=n0");
        if (config->mcast) {
                ADD("-netdev");
                /* localaddr: without it the frames leave by the default route's interface. */
                ADDF("socket,id=n1,mcast=%s,localaddr=127.0.0.1", config->mcast);
                ADD("-device");
                ADDF("virtio-net-pci,netdev=n1%s%s", config->mcast_mac ? ",mac=" : "", strempty(config->mcast_mac));
        }
#undef ADD
#undef ADDF
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int qemu_vm_start(const qemu_vm_config *config, qemu_vm **ret) {
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int log_fd = -1;
        int r;

        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return log_error_errno(-ENOMEM, "Out of memory");
        vm->comm_fd = vm->qmp_fd = -1;
        vm->exited = true; /* until started */
        vm->child = true;
        vm->detached = config->detached;
        vm->own_dir = !config->dir;
        vm->dir = strdup(config->dir ?: "/tmp/imgbuild-vm-XXXXXX");
        if (!vm->dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (vm->own_dir && !mkdtemp(vm->dir)) {
                r = negative_errno();
                free(vm->dir);
                vm->dir = NULL;
                return log_error_errno(r, "Failed to create the VM's directory: %m");
        }
        if ((config->console_log ? !(vm->console_log = strdup(config->console_log))
                                 : asprintf(&vm->console_log, "%s/console.log", vm->dir) < 0) ||
            asprintf(&vm->qemu_log, "%s/qemu.log", vm->dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");

        r = build_argv(config, vm, &argv);
        if (r < 0)
                return log_error_errno(r, "Failed to build the QEMU command line: %m");
        log_fd = open(vm->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return log_error_errno(errno, "Failed to create %s: %m", vm->qemu_log);

        _cleanup_free_ char *cmdline = spawn_argv_to_string(argv);
        log_debug("Starting %s", strempty(cmdline));
        spawn_options opts = SPAWN_OPTIONS_DEFAULT;
        opts.stdout_fd = log_fd;
        opts.stderr_fd = log_fd;
        /* Its own group: terminal signals do not reach it directly, we end it, by its id. */
        opts.new_process_group = true;
        /* Registered before a signal could find it missing. */
        sigset_t old;
        block_signals(&old);
        r = spawn_start(argv, &opts, &vm->pid);
        if (r >= 0) {
                vm->exited = false;
                if (!vm->detached)
                        register_vm(vm->pid);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to start qemu-system-x86_64: %m");

        _cleanup_free_ char *comm_path = NULL, *qmp_path = NULL;
        if (asprintf(&comm_path, "%s/comm.sock", vm->dir) < 0 || asprintf(&qmp_path, "%s/qmp.sock", vm->dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = connect_vm_socket(vm, comm_path, &vm->comm_fd);
        if (r >= 0)
                r = connect_vm_socket(vm, qmp_path, &vm->qmp_fd);
        if (r >= 0)
                r = qmp_handshake(vm);
        if (r < 0) {
                log_error_errno(r, "Failed to connect to QEMU: %m");
                show_qemu_log(vm);
                return r;
        }
        vm->comm = COMM_CLIENT_INIT(vm->comm_fd);
        log_info("VM started (pid %d, %s, console %s)", (int) vm->pid, qemu_accel(), vm->console_log);
        *ret = TAKE_PTR(vm);
        return 0;
}

int qemu_vm_attach(const char *dir, pid_t pid, unsigned timeout_sec, qemu_vm **ret) {
        _cleanup_(qemu_vm_freep) qemu_vm *vm = NULL;
        _cleanup_free_ char *comm_path = NULL;
        int r;

        if (pid <= 1 || (kill(pid, 0) < 0 && errno == ESRCH))
                return -ESRCH;
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return -ENOMEM;
        vm->comm_fd = vm->qmp_fd = -1;
        vm->pid = pid;
        vm->detached = true;
        if (!(vm->dir = strdup(dir)) || asprintf(&vm->console_log, "%s/console.log", dir) < 0 ||
            asprintf(&vm->qemu_log, "%s/qemu.log", dir) < 0 || asprintf(&comm_path, "%s/comm.sock", dir) < 0)
                return -ENOMEM;
        r = connect_unix(comm_path, &vm->comm_fd);
        if (r < 0)
                return r;
        /* The channel serves one client at a time: a call waits while another process holds it,
         * but not forever. */
        struct timeval tv = { .tv_sec = timeout_sec };
        if (timeout_sec > 0 && setsockopt(vm->comm_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return negative_errno();
        vm->comm = COMM_CLIENT_INIT(vm->comm_fd);
        *ret = TAKE_PTR(vm);
        return 0;
}

comm_client *qemu_vm_comm(qemu_vm *vm) { return &vm->comm; }

/* The console log's size, or -1. */
static off_t console_size(const qemu_vm *vm) {
        struct stat st;
        return stat(vm->console_log, &st) < 0 ? -1 : st.st_size;
}

/* A wait on the guest, which a busy host slows down (TCG): it ends timeout_sec after the guest
 * last wrote to its console, and QEMU_BOOT_PROGRESS_FACTOR * timeout_sec after it began at most. */
typedef struct guest_wait {
        int64_t start, until, hard_until, timeout_ms;
        off_t console;
} guest_wait;

static guest_wait guest_wait_begin(const qemu_vm *vm, unsigned timeout_sec) {
        int64_t now = time_now_ms(), timeout_ms = (int64_t) timeout_sec * 1000;
        return (guest_wait) { .start = now, .until = now + timeout_ms,
                              .hard_until = now + timeout_ms * QEMU_BOOT_PROGRESS_FACTOR,
                              .timeout_ms = timeout_ms, .console = console_size(vm) };
}

/* Whether the wait is over; a console that moved since the last call moves its end. */
static bool guest_wait_expired(guest_wait *w, const qemu_vm *vm) {
        off_t now_console = console_size(vm);
        if (now_console != w->console) {
                w->console = now_console;
                w->until = time_now_ms() + w->timeout_ms;
                if (w->until > w->hard_until)
                        w->until = w->hard_until;
        }
        return time_now_ms() >= w->until;
}

int qemu_vm_wait_ready(qemu_vm *vm, unsigned timeout_sec) {
        guest_wait w = guest_wait_begin(vm, timeout_sec);
        int64_t start = w.start;
        bool extended = false;
        uint64_t id = vm->comm.next_id++;
        int r;

        /* QEMU holds the ping in the socket until the guest opens its port. */
        r = comm_send_simple(vm->comm_fd, COMM_PING, id);
        for (;;) {
                if (r < 0)
                        break;
                struct pollfd pfd = { .fd = vm->comm_fd, .events = POLLIN };
                int n = poll(&pfd, 1, 1000);
                if (interrupt_signal()) {
                        r = -EINTR;
                        break;
                }
                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (n > 0) {
                        comm_msg m = {};
                        r = comm_recv(vm->comm_fd, &m, NULL);
                        /* An earlier client's unread reply may come first (attached VMs). */
                        bool stale = r >= 0 && m.id != id;
                        if (r >= 0 && !stale && m.type != COMM_OK)
                                r = -EBADMSG;
                        comm_msg_done(&m);
                        if (stale)
                                continue;
                        if (r >= 0) {
                                log_info("VM ready after %.1f s", (double) (time_now_ms() - start) / 1000.0);
                                return 0;
                        }
                        break;
                }
                if (vm_exited(vm)) {
                        r = -ECHILD;
                        break;
                }
                /* A guest that still writes to its console is booting, only slowly. */
                if (guest_wait_expired(&w, vm)) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (!extended && time_now_ms() >= start + (int64_t) timeout_sec * 1000) {
                        extended = true;
                        log_warning("The VM is still booting after %u s (its console goes on): waiting up to %u s",
                                    timeout_sec, timeout_sec * QEMU_BOOT_PROGRESS_FACTOR);
                }
        }
        if (r == -EINTR)
                return log_error_errno(r, "Interrupted while waiting for the VM");
        if (r == -ECHILD)
                log_error("QEMU exited before the communicator answered");
        else if (r == -ETIMEDOUT)
                log_error("The VM's communicator did not answer: %s",
                          time_now_ms() >= w.hard_until ? "the hard limit was reached" : "no console output for the timeout");
        else
                log_error_errno(r, "Failed to reach the VM's communicator: %m");
        qemu_vm_show_console(vm, 25);
        if (r == -ECHILD)
                show_qemu_log(vm);
        return r;
}

void qemu_vm_set_deadline(qemu_vm *vm, unsigned timeout_sec) {
        interrupt_alarm(-vm->pid, SIGKILL, timeout_sec);
}

int qemu_vm_snapshot(qemu_vm *vm, const char *overlay) {
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "device", QEMU_DISK_ID,
                                                          "snapshot-file", overlay, "format", "qcow2",
                                                          "mode", "absolute-paths");
        int r;

        if (!args)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = qmp_execute_args(vm, "blockdev-snapshot-sync", args);
        if (r < 0)
                return log_error_errno(r, "Failed to switch the VM's disk to the new layer %s: %m", overlay);
        return 0;
}

int qemu_vm_powerdown(qemu_vm *vm, unsigned timeout_sec) {
        guest_wait w = guest_wait_begin(vm, timeout_sec);
        int64_t pressed = w.start;
        int r;

        if (vm->qmp_fd < 0) {
                _cleanup_free_ char *qmp_path = NULL;
                if (asprintf(&qmp_path, "%s/qmp.sock", vm->dir) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                r = connect_unix(qmp_path, &vm->qmp_fd);
                if (r >= 0)
                        r = qmp_handshake(vm);
        } else
                r = 0;
        if (r >= 0)
                r = qmp_execute(vm, "system_powerdown");
        if (r < 0) {
                log_error_errno(r, "Failed to ask the VM to power down: %m");
                vm_kill(vm);
                return r;
        }
        while (!vm_exited(vm)) {
                if (interrupt_signal()) {
                        vm_kill(vm);
                        return log_error_errno(-EINTR, "Interrupted while the VM was powering down");
                }
                if (guest_wait_expired(&w, vm)) {
                        log_error("The VM did not power off (%s), killed it",
                                  time_now_ms() >= w.hard_until ? "the hard limit was reached"
                                                                : "no console output for the timeout");
                        qemu_vm_show_console(vm, 20);
                        vm_kill(vm);
                        return -ETIMEDOUT;
                }
                /* An ACPI power button event that comes before the guest's button driver is bound
                 * (a guest still loading modules) is lost: press it again now and then. */
                if (time_now_ms() - pressed >= POWERDOWN_REPEAT_MS) {
                        pressed = time_now_ms();
                        (void) qmp_execute(vm, "system_powerdown");
                }
                (void) usleep(100000);
        }
        log_info("VM powered off");
        return 0;
}

qemu_vm *qemu_vm_free(qemu_vm *vm) {
        if (!vm)
                return NULL;
        if (!vm->detached)
                vm_kill(vm);
        if (vm->comm_fd >= 0)
                close(vm->comm_fd);
        if (vm->qmp_fd >= 0)
                close(vm->qmp_fd);
        if (vm->dir && vm->own_dir)
                (void) rm_rf(vm->dir);
        free(vm->dir);
        free(vm->console_log);
        free(vm->qemu_log);
        free(vm);
        return NULL;
}
