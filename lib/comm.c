#include "comm.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "frame.h"
#include "fs.h"
#include "log.h"
#include "strv.h"

static const char *const type_names[_COMM_TYPE_MAX] = {
        [COMM_PING] = "ping",     [COMM_EXEC] = "exec",     [COMM_PUT] = "put",
        [COMM_GET] = "get",       [COMM_SHUTDOWN] = "shutdown", [COMM_DATA] = "data",
        [COMM_END] = "end",       [COMM_STDOUT] = "stdout", [COMM_STDERR] = "stderr",
        [COMM_EXIT] = "exit",     [COMM_OK] = "ok",         [COMM_ERROR] = "error",
};

const char *comm_type_to_string(comm_type t) {
        if ((unsigned) t >= _COMM_TYPE_MAX)
                return NULL;
        return type_names[t];
}

void comm_msg_done(comm_msg *msg) {
        strv_free(msg->argv);
        strv_free(msg->env);
        free(msg->cwd);
        free(msg->path);
        free(msg->data);
        free(msg->error);
        *msg = (comm_msg) {};
}

/* A definite text string without NUL bytes, copied. */
static int text_dup(const cbor_item_t *item, char **ret) {
        if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(item))
                return -EBADMSG;
        size_t len = cbor_string_length(item);
        const unsigned char *p = cbor_string_handle(item);
        if (len > 0 && memchr(p, 0, len))
                return -EBADMSG;
        char *s = strndup(p ? (const char *) p : "", len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int text_array_dup(const cbor_item_t *item, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (!item || !cbor_isa_array(item) || !cbor_array_is_definite(item))
                return -EBADMSG;
        /* An empty list is still a list, not NULL. */
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        size_t n = cbor_array_size(item);
        for (size_t i = 0; i < n; i++) {
                char *s = NULL;
                r = text_dup(cbor_array_handle(item)[i], &s);
                if (r < 0)
                        return r;
                r = strv_consume(&l, s);
                if (r < 0) {
                        free(s);
                        return r;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int bytes_dup(const cbor_item_t *item, uint8_t **ret, size_t *ret_size) {
        if (!item || !cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
                return -EBADMSG;
        size_t len = cbor_bytestring_length(item);
        if (len > COMM_CHUNK_MAX)
                return -EBADMSG;
        uint8_t *d = malloc(len + 1);
        if (!d)
                return -ENOMEM;
        if (len > 0)
                memcpy(d, cbor_bytestring_handle(item), len);
        *ret = d;
        *ret_size = len;
        return 0;
}

static int parse_request(const cbor_item_t *item, const cbor_item_t *op, comm_msg *m) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = text_dup(op, &name);
        if (r < 0)
                return r;
        if (streq(name, "ping"))
                m->type = COMM_PING;
        else if (streq(name, "shutdown"))
                m->type = COMM_SHUTDOWN;
        else if (streq(name, "exec")) {
                m->type = COMM_EXEC;
                r = text_array_dup(cbor_map_get(item, "argv"), &m->argv);
                if (r < 0)
                        return r;
                if (!m->argv[0] || m->argv[0][0] == '\0')
                        return -EBADMSG;
                const cbor_item_t *env = cbor_map_get(item, "env");
                if (env) {
                        r = text_array_dup(env, &m->env);
                        if (r < 0)
                                return r;
                        for (char **e = m->env; *e; e++)
                                if (!strchr(*e, '=') || (*e)[0] == '=')
                                        return -EBADMSG;
                }
                const cbor_item_t *cwd = cbor_map_get(item, "cwd");
                if (cwd) {
                        r = text_dup(cwd, &m->cwd);
                        if (r < 0)
                                return r;
                }
        } else if (streq(name, "put") || streq(name, "get")) {
                m->type = streq(name, "put") ? COMM_PUT : COMM_GET;
                r = text_dup(cbor_map_get(item, "path"), &m->path);
                if (r < 0)
                        return r;
                if (m->path[0] == '\0')
                        return -EBADMSG;
        } else
                return -EBADMSG;
        return 0;
}

static bool is_true(const cbor_item_t *item) {
        return cbor_isa_float_ctrl(item) && cbor_is_bool(item) && cbor_get_bool(item);
}

static int parse_reply(const cbor_item_t *item, comm_msg *m) {
        static const comm_type reply_types[] = { COMM_DATA, COMM_END, COMM_STDOUT, COMM_STDERR,
                                                 COMM_EXIT, COMM_OK, COMM_ERROR };
        const cbor_item_t *value = NULL;
        int found = 0, r;

        for (size_t i = 0; i < ELEMENTSOF(reply_types); i++) {
                const cbor_item_t *v = cbor_map_get(item, type_names[reply_types[i]]);
                if (v) {
                        m->type = reply_types[i];
                        value = v;
                        found++;
                }
        }
        if (found != 1)
                return -EBADMSG;

        switch (m->type) {
        case COMM_DATA:
        case COMM_STDOUT:
        case COMM_STDERR:
                return bytes_dup(value, &m->data, &m->size);
        case COMM_END:
        case COMM_OK:
                return is_true(value) ? 0 : -EBADMSG;
        case COMM_EXIT:
                r = cbor_map_get_uint(item, "exit", &m->status);
                if (r < 0)
                        return -EBADMSG;
                return m->status <= 255 ? 0 : -EBADMSG;
        case COMM_ERROR:
                return text_dup(value, &m->error);
        default:
                return -EBADMSG;
        }
}

int comm_msg_parse(const cbor_item_t *item, comm_msg *ret, uint64_t *ret_id) {
        comm_msg m = {};
        uint64_t id = 0;
        int r;

        if (ret_id)
                *ret_id = 0;
        if (!cbor_isa_map(item) || !cbor_map_is_definite(item))
                return -EBADMSG;
        r = cbor_map_get_uint(item, "id", &id);
        if (r < 0)
                return -EBADMSG;
        if (ret_id)
                *ret_id = id;
        m.id = id;

        const cbor_item_t *op = cbor_map_get(item, "op");
        r = op ? parse_request(item, op, &m) : parse_reply(item, &m);
        if (r < 0) {
                comm_msg_done(&m);
                return r == -ENOMEM ? r : -EBADMSG;
        }
        *ret = m;
        return 0;
}

static int put_text_array(cbor_item_t *map, const char *key, char *const *l) {
        _cleanup_cbor_ cbor_item_t *a = cbor_new_definite_array(strv_length(l));
        if (!a)
                return -ENOMEM;
        for (char *const *s = l; s && *s; s++) {
                cbor_item_t *t = cbor_build_string(*s);
                if (!t)
                        return -ENOMEM;
                bool ok = cbor_array_push(a, t);
                cbor_decref(&t);
                if (!ok)
                        return -ENOMEM;
        }
        return cbor_map_put(map, key, a);
}

static int put_bool(cbor_item_t *map, const char *key) {
        _cleanup_cbor_ cbor_item_t *b = cbor_build_bool(true);
        if (!b)
                return -ENOMEM;
        return cbor_map_put(map, key, b);
}

int comm_msg_build(const comm_msg *m, cbor_item_t **ret) {
        int r;

        if ((unsigned) m->type >= _COMM_TYPE_MAX)
                return -EINVAL;
        _cleanup_cbor_ cbor_item_t *map = cbor_new_definite_map(6);
        if (!map)
                return -ENOMEM;
        r = cbor_map_put_uint(map, "id", m->id);
        if (r < 0)
                return r;

        const char *name = type_names[m->type];
        switch (m->type) {
        case COMM_PING:
        case COMM_SHUTDOWN:
                r = cbor_map_put_string(map, "op", name);
                break;
        case COMM_EXEC:
                if (!m->argv || !m->argv[0])
                        return -EINVAL;
                r = cbor_map_put_string(map, "op", name);
                if (r >= 0)
                        r = put_text_array(map, "argv", m->argv);
                if (r >= 0 && m->env)
                        r = put_text_array(map, "env", m->env);
                if (r >= 0 && m->cwd)
                        r = cbor_map_put_string(map, "cwd", m->cwd);
                break;
        case COMM_PUT:
        case COMM_GET:
                if (!m->path)
                        return -EINVAL;
                r = cbor_map_put_string(map, "op", name);
                if (r >= 0)
                        r = cbor_map_put_string(map, "path", m->path);
                break;
        case COMM_DATA:
        case COMM_STDOUT:
        case COMM_STDERR: {
                if (m->size > COMM_CHUNK_MAX || (m->size > 0 && !m->data))
                        return -EINVAL;
                _cleanup_cbor_ cbor_item_t *b = cbor_build_bytestring(m->data, m->size);
                if (!b)
                        return -ENOMEM;
                r = cbor_map_put(map, name, b);
                break;
        }
        case COMM_END:
        case COMM_OK:
                r = put_bool(map, name);
                break;
        case COMM_EXIT:
                r = cbor_map_put_uint(map, name, m->status);
                break;
        case COMM_ERROR:
                r = cbor_map_put_string(map, name, strempty(m->error));
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(map);
        return 0;
}

int comm_send(int fd, const comm_msg *msg) {
        _cleanup_cbor_ cbor_item_t *item = NULL;
        int r;

        r = comm_msg_build(msg, &item);
        if (r < 0)
                return r;
        return frame_write(fd, item, COMM_FRAME_MAX);
}

int comm_send_simple(int fd, comm_type type, uint64_t id) {
        return comm_send(fd, &(comm_msg) { .type = type, .id = id });
}

int comm_send_data(int fd, comm_type type, uint64_t id, const void *data, size_t size) {
        /* The message only borrows data here; it is never freed through it. */
        return comm_send(fd, &(comm_msg) { .type = type, .id = id, .data = (uint8_t *) data, .size = size });
}

int comm_send_error(int fd, uint64_t id, const char *message) {
        return comm_send(fd, &(comm_msg) { .type = COMM_ERROR, .id = id, .error = (char *) message });
}

int comm_recv(int fd, comm_msg *ret, uint64_t *ret_bad_id) {
        _cleanup_cbor_ cbor_item_t *item = NULL;
        int r;

        if (ret_bad_id)
                *ret_bad_id = 0;
        r = frame_read(fd, COMM_FRAME_MAX, &item);
        if (r < 0)
                return r;
        return comm_msg_parse(item, ret, ret_bad_id);
}

/* --- tar streams --- */

/* libarchive is loaded on first use (dlopen) rather than linked: only these tar streams need it
 * (the communicator of build VMs, the builder's put/get), and linking it would map libarchive
 * and what it links (libxml2, ICU, libstdc++, ...) into every bootagent process, ~2 MB of the
 * agent's peak RSS at first boot. The image keeps the package (builder/store/base.c). */
#define LIBARCHIVE_SONAME "libarchive.so.13"
#define LIBARCHIVE_FUNCTIONS(X) \
        X(archive_entry_filetype) \
        X(archive_entry_free) \
        X(archive_entry_hardlink) \
        X(archive_entry_new) \
        X(archive_entry_pathname) \
        X(archive_entry_set_hardlink) \
        X(archive_entry_set_pathname) \
        X(archive_entry_size) \
        X(archive_errno) \
        X(archive_read_data) \
        X(archive_read_data_block) \
        X(archive_read_disk_descend) \
        X(archive_read_disk_new) \
        X(archive_read_disk_open) \
        X(archive_read_disk_set_standard_lookup) \
        X(archive_read_disk_set_symlink_physical) \
        X(archive_read_free) \
        X(archive_read_new) \
        X(archive_read_next_header) \
        X(archive_read_next_header2) \
        X(archive_read_open) \
        X(archive_read_support_format_tar) \
        X(archive_set_error) \
        X(archive_write_close) \
        X(archive_write_data) \
        X(archive_write_data_block) \
        X(archive_write_disk_new) \
        X(archive_write_disk_set_options) \
        X(archive_write_disk_set_standard_lookup) \
        X(archive_write_finish_entry) \
        X(archive_write_free) \
        X(archive_write_header) \
        X(archive_write_new) \
        X(archive_write_open) \
        X(archive_write_set_bytes_per_block) \
        X(archive_write_set_format_pax_restricted)

static struct {
#define X(f) __typeof__(f) *f;
        LIBARCHIVE_FUNCTIONS(X)
#undef X
} libarchive;
static int libarchive_result;

static void libarchive_open(void) {
        void *h = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                log_error("Failed to load %s: %s", LIBARCHIVE_SONAME, dlerror());
                libarchive_result = -ELIBACC;
                return;
        }
#define X(f)                                                                                  \
        if (!(libarchive.f = (__typeof__(f) *) dlsym(h, #f))) {                               \
                log_error("Failed to load %s: no symbol %s", LIBARCHIVE_SONAME, #f);          \
                libarchive_result = -ELIBBAD;                                                 \
                return;                                                                       \
        }
        LIBARCHIVE_FUNCTIONS(X)
#undef X
}

/* 0 once libarchive's functions are resolved, or -ELIBACC / -ELIBBAD (logged). Thread-safe. */
static int libarchive_load(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&once, libarchive_open);
        return libarchive_result;
}


static void archive_readp(struct archive **a) {
        if (*a)
                libarchive.archive_read_free(*a);
}
static void archive_writep(struct archive **a) {
        if (*a)
                libarchive.archive_write_free(*a);
}
static void archive_entryp(struct archive_entry **e) {
        if (*e)
                libarchive.archive_entry_free(*e);
}

/* libarchive reports errno-style codes through archive_errno(); map them to -errno. */
static int archive_error(struct archive *a, int fallback) {
        int e = libarchive.archive_errno(a);
        return e > 0 ? -e : fallback;
}

typedef struct tar_writer {
        int fd;
        uint64_t id;
        int r;
} tar_writer;

static la_ssize_t tar_write_cb(struct archive *a, void *userdata, const void *buffer, size_t length) {
        tar_writer *w = userdata;
        const uint8_t *p = buffer;
        size_t left = length;

        while (left > 0) {
                size_t n = left < COMM_CHUNK_MAX ? left : COMM_CHUNK_MAX;
                int r = comm_send_data(w->fd, COMM_DATA, w->id, p, n);
                if (r < 0) {
                        w->r = r;
                        libarchive.archive_set_error(a, -r, "Failed to send tar data");
                        return -1;
                }
                p += n;
                left -= n;
        }
        return (la_ssize_t) length;
}

/* Entry name for a path found while walking root: relative to root for a directory walk, the base
 * name for a single file. NULL for the root directory itself, which is not sent (extracting it
 * would change the target directory's own mode). */
static const char *tar_entry_name(const char *root, bool root_is_dir, const char *path) {
        if (!root_is_dir) {
                const char *slash = strrchr(root, '/');
                return slash && slash[1] ? slash + 1 : root;
        }
        const char *rest = startswith(path, root);
        if (!rest)
                return NULL;
        while (*rest == '/')
                rest++;
        return *rest ? rest : NULL;
}

int comm_send_tar(int fd, uint64_t id, const char *path) {
        _cleanup_(archive_readp) struct archive *disk = NULL;
        _cleanup_(archive_writep) struct archive *out = NULL;
        _cleanup_free_ char *root = NULL;
        tar_writer w = { .fd = fd, .id = id };
        struct stat st;
        int r;

        r = libarchive_load();
        if (r < 0)
                return r;
        if (lstat(path, &st) < 0)
                return negative_errno();
        root = strdup(path);
        if (!root)
                return -ENOMEM;
        /* Strip trailing slashes so prefix matching against walked paths works. */
        for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--)
                root[l - 1] = '\0';

        disk = libarchive.archive_read_disk_new();
        out = libarchive.archive_write_new();
        if (!disk || !out)
                return -ENOMEM;
        if (libarchive.archive_read_disk_set_standard_lookup(disk) != ARCHIVE_OK ||
            libarchive.archive_read_disk_set_symlink_physical(disk) != ARCHIVE_OK ||
            libarchive.archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            libarchive.archive_write_set_bytes_per_block(out, 0) != ARCHIVE_OK)
                return -EIO;
        if (libarchive.archive_write_open(out, &w, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
                return w.r < 0 ? w.r : archive_error(out, -EIO);
        if (libarchive.archive_read_disk_open(disk, root) != ARCHIVE_OK)
                return archive_error(disk, -EIO);

        for (;;) {
                _cleanup_(archive_entryp) struct archive_entry *entry = libarchive.archive_entry_new();
                if (!entry)
                        return -ENOMEM;
                r = libarchive.archive_read_next_header2(disk, entry);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return archive_error(disk, -EIO);
                if (S_ISDIR(st.st_mode))
                        libarchive.archive_read_disk_descend(disk);

                const char *name = tar_entry_name(root, S_ISDIR(st.st_mode), libarchive.archive_entry_pathname(entry));
                if (!name)
                        continue;
                libarchive.archive_entry_set_pathname(entry, name);
                if (libarchive.archive_write_header(out, entry) != ARCHIVE_OK)
                        return w.r < 0 ? w.r : archive_error(out, -EIO);
                if (libarchive.archive_entry_filetype(entry) != AE_IFREG || libarchive.archive_entry_size(entry) == 0)
                        continue;
                for (;;) {
                        char chunk[16384];
                        la_ssize_t n = libarchive.archive_read_data(disk, chunk, sizeof(chunk));
                        if (n == 0)
                                break;
                        if (n < 0)
                                return archive_error(disk, -EIO);
                        if (libarchive.archive_write_data(out, chunk, (size_t) n) < 0)
                                return w.r < 0 ? w.r : archive_error(out, -EIO);
                }
        }
        if (libarchive.archive_write_close(out) != ARCHIVE_OK)
                return w.r < 0 ? w.r : archive_error(out, -EIO);
        return comm_send_simple(fd, COMM_END, id);
}

typedef struct tar_reader {
        int fd;
        uint64_t id;
        comm_msg chunk;   /* the DATA frame libarchive is reading from */
        bool done;        /* END seen (or the stream cannot continue) */
        bool broken;      /* transport failed: nothing more can be read */
        int r;            /* first transport/protocol error */
        char *remote_error;
} tar_reader;

static la_ssize_t tar_read_cb(struct archive *a, void *userdata, const void **ret_buffer) {
        tar_reader *rd = userdata;

        for (;;) {
                if (rd->done)
                        return 0;
                comm_msg_done(&rd->chunk);
                int r = comm_recv(rd->fd, &rd->chunk, NULL);
                if (r == -EBADMSG) {
                        /* A bad frame inside the stream: stop, but the transport is still usable. */
                        rd->r = r;
                        libarchive.archive_set_error(a, EBADMSG, "Bad frame in tar stream");
                        return -1;
                }
                if (r < 0) {
                        rd->r = r;
                        rd->broken = rd->done = true;
                        libarchive.archive_set_error(a, -r, "Failed to receive tar data");
                        return -1;
                }
                if (rd->chunk.id != rd->id) {
                        rd->r = -EBADMSG;
                        libarchive.archive_set_error(a, EBADMSG, "Frame for another request in tar stream");
                        return -1;
                }
                switch (rd->chunk.type) {
                case COMM_DATA:
                        if (rd->chunk.size == 0)
                                continue; /* returning 0 would mean end of stream */
                        *ret_buffer = rd->chunk.data;
                        return (la_ssize_t) rd->chunk.size;
                case COMM_END:
                        rd->done = true;
                        return 0;
                case COMM_ERROR:
                        rd->done = true;
                        rd->r = -EREMOTEIO;
                        rd->remote_error = TAKE_PTR(rd->chunk.error);
                        libarchive.archive_set_error(a, EREMOTEIO, "Sender failed");
                        return -1;
                default:
                        rd->r = -EBADMSG;
                        libarchive.archive_set_error(a, EBADMSG, "Unexpected frame in tar stream");
                        return -1;
                }
        }
}

/* Read and drop frames of the stream up to its END or ERROR, so the session stays in sync. */
static void tar_reader_drain(tar_reader *rd) {
        while (!rd->done) {
                comm_msg_done(&rd->chunk);
                int r = comm_recv(rd->fd, &rd->chunk, NULL);
                if (r == -EBADMSG)
                        continue;
                if (r < 0) {
                        rd->broken = rd->done = true;
                        if (rd->r >= 0)
                                rd->r = r;
                        break;
                }
                if (rd->chunk.id == rd->id &&
                    (rd->chunk.type == COMM_END || rd->chunk.type == COMM_ERROR))
                        rd->done = true;
        }
        comm_msg_done(&rd->chunk);
}

/* A relative entry name without "..": anything else could land outside the target directory. */
static bool entry_name_safe(const char *name) {
        if (!name || name[0] == '\0' || name[0] == '/')
                return false;
        for (const char *p = name; p; ) {
                if (strneq(p, "..", 2) && (p[2] == '/' || p[2] == '\0'))
                        return false;
                p = strchr(p, '/');
                if (p)
                        p++;
        }
        return true;
}

static int prefix_entry_path(struct archive_entry *entry, const char *dir,
                             const char *(*get)(struct archive_entry *),
                             void (*set)(struct archive_entry *, const char *)) {
        const char *name = get(entry);
        if (!name)
                return 0;
        if (!entry_name_safe(name))
                return -EPERM;
        _cleanup_free_ char *full = NULL;
        if (asprintf(&full, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        set(entry, full);
        return 0;
}

static int extract_stream(struct archive *in, const char *dir, bool preserve_owner) {
        _cleanup_(archive_writep) struct archive *disk = libarchive.archive_write_disk_new();
        int r;

        if (!disk)
                return -ENOMEM;
        int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                    ARCHIVE_EXTRACT_SECURE_NODOTDOT;
        if (preserve_owner)
                flags |= ARCHIVE_EXTRACT_OWNER;
        if (libarchive.archive_write_disk_set_options(disk, flags) != ARCHIVE_OK ||
            libarchive.archive_write_disk_set_standard_lookup(disk) != ARCHIVE_OK)
                return -EIO;

        for (;;) {
                struct archive_entry *entry;
                r = libarchive.archive_read_next_header(in, &entry);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return archive_error(in, -EBADMSG);
                r = prefix_entry_path(entry, dir, (const char *(*)(struct archive_entry *)) libarchive.archive_entry_pathname,
                                      libarchive.archive_entry_set_pathname);
                if (r < 0)
                        return r;
                r = prefix_entry_path(entry, dir, (const char *(*)(struct archive_entry *)) libarchive.archive_entry_hardlink,
                                      libarchive.archive_entry_set_hardlink);
                if (r < 0)
                        return r;
                if (libarchive.archive_write_header(disk, entry) != ARCHIVE_OK)
                        return archive_error(disk, -EIO);
                for (;;) {
                        const void *buffer;
                        size_t size;
                        la_int64_t offset;
                        r = libarchive.archive_read_data_block(in, &buffer, &size, &offset);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r != ARCHIVE_OK)
                                return archive_error(in, -EBADMSG);
                        if (libarchive.archive_write_data_block(disk, buffer, size, offset) != ARCHIVE_OK)
                                return archive_error(disk, -EIO);
                }
                if (libarchive.archive_write_finish_entry(disk) != ARCHIVE_OK)
                        return archive_error(disk, -EIO);
        }
        if (libarchive.archive_write_close(disk) != ARCHIVE_OK)
                return archive_error(disk, -EIO);
        return 0;
}

int comm_recv_tar(int fd, uint64_t id, const char *dir, bool preserve_owner, char **ret_remote_error) {
        _cleanup_(archive_readp) struct archive *in = NULL;
        _cleanup_free_ char *real = NULL;
        tar_reader rd = { .fd = fd, .id = id };
        int r;

        r = libarchive_load();
        if (r >= 0)
                r = mkdir_p(dir, 0755);
        if (r >= 0) {
                /* Resolve symlinks in the target itself, so the secure-symlink check during
                 * extraction only judges what the stream creates. */
                real = realpath(dir, NULL);
                if (!real)
                        r = negative_errno();
        }
        if (r >= 0) {
                in = libarchive.archive_read_new();
                if (!in)
                        r = -ENOMEM;
        }
        if (r >= 0 && (libarchive.archive_read_support_format_tar(in) != ARCHIVE_OK ||
                       libarchive.archive_read_open(in, &rd, NULL, tar_read_cb, NULL) != ARCHIVE_OK))
                r = rd.r < 0 ? rd.r : -EBADMSG;
        if (r >= 0)
                r = extract_stream(in, real, preserve_owner);
        /* libarchive may stop before reading END (trailing blocks): always finish the stream. */
        tar_reader_drain(&rd);
        if (rd.r == -EREMOTEIO) {
                if (ret_remote_error)
                        *ret_remote_error = TAKE_PTR(rd.remote_error);
                free(rd.remote_error);
                return -EREMOTEIO;
        }
        free(rd.remote_error);
        if (rd.r < 0)
                return rd.r;
        return r;
}
