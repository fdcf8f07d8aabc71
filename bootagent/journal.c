#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "fs.h"

#define JOURNAL_MAX (16u * 1024u * 1024u)
#define JOURNAL_FRAME_MAX (64u * 1024u)

static void entry_done(journal_entry *e) {
        free(e->stage);
        free(e->detail);
}

void journal_close(journal *j) {
        if (j->fd >= 0)
                close(j->fd);
        for (size_t i = 0; i < j->n; i++)
                entry_done(&j->entries[i]);
        free(j->entries);
        *j = (journal){ .fd = -1 };
}

static int push_entry(journal *j, const journal_entry *e) {
        journal_entry *a = reallocarray(j->entries, j->n + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        j->entries = a;
        j->entries[j->n++] = *e;
        return 0;
}

/* A text value: 0 with *ret set (NULL if absent and optional), -EBADMSG if absent when required
 * or not usable text, -ENOMEM if it is text but could not be copied. */
static int get_text(const cbor_item_t *m, const char *key, bool required, char **ret) {
        *ret = cbor_map_get_string(m, key);
        if (*ret)
                return 0;
        const cbor_item_t *v = cbor_map_get(m, key);
        if (!v)
                return required ? -EBADMSG : 0;
        if (!cbor_isa_string(v) || !cbor_string_is_definite(v) ||
            memchr(cbor_string_handle(v), 0, cbor_string_length(v)))
                return -EBADMSG;
        return -ENOMEM;
}

static int decode_entry(const cbor_item_t *m, journal_entry *ret) {
        journal_entry e = { 0 };
        uint64_t ok = 0;
        int r;

        if (!cbor_isa_map(m))
                return -EBADMSG;
        if ((r = get_text(m, "stage", true, &e.stage)) < 0 || (r = get_text(m, "detail", false, &e.detail)) < 0) {
                entry_done(&e);
                return r;
        }
        if (cbor_map_get_uint(m, "run", &e.run) < 0 || cbor_map_get_uint(m, "ok", &ok) < 0 ||
            cbor_map_get_uint(m, "t_ms", &e.t_ms) < 0 || cbor_map_get_uint(m, "ms", &e.ms) < 0) {
                entry_done(&e);
                return -EBADMSG;
        }
        (void) cbor_map_get_uint(m, "wait_ms", &e.wait_ms);
        e.ok = ok != 0;
        *ret = e;
        return 0;
}

/* Replays data into j. Returns the length of the prefix of whole, valid entries; j->torn tells
 * whether what follows it begins with a frame cut short (a truncated file, or a write a crash cut
 * short) rather than a frame that is not a valid entry. -ENOMEM is not damage: it is returned as
 * such. */
static ssize_t replay(journal *j, const char *data, size_t len) {
        size_t off = 0;

        j->torn = false;
        while (off < len) {
                _cleanup_cbor_ cbor_item_t *item = NULL;
                journal_entry e;
                ssize_t n = frame_decode(data + off, len - off, JOURNAL_FRAME_MAX, &item);
                if (n == -ENOMEM)
                        return -ENOMEM;
                if (n == 0) {
                        j->torn = true;
                        break;
                }
                int r = n < 0 ? (int) n : decode_entry(item, &e);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        break;
                if (push_entry(j, &e) < 0) {
                        entry_done(&e);
                        return -ENOMEM;
                }
                if (e.run > j->run)
                        j->run = e.run;
                off += (size_t) n;
        }
        return (ssize_t) off;
}

int journal_load(const char *path, journal *ret) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        journal j = { .fd = -1 };
        int r = read_file(path, JOURNAL_MAX, &data, &len);
        if (r < 0)
                return r;
        ssize_t valid = replay(&j, data, len);
        if (valid < 0) {
                journal_close(&j);
                return (int) valid;
        }
        j.damaged_bytes = len - (size_t) valid;
        *ret = j;
        return 0;
}

/* Copy the damaged part of the journal to <path>.damaged-<run>, durably, before it is cut off. */
static int keep_damaged(const char *path, uint64_t run, const char *data, size_t len, char **ret_aside) {
        _cleanup_free_ char *aside = NULL;
        int r;

        if (asprintf(&aside, "%s.damaged-%" PRIu64, path, run) < 0)
                return -ENOMEM;
        r = write_file_atomic(aside, data, len, 0600, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        *ret_aside = TAKE_PTR(aside);
        return 0;
}

int journal_open(const char *path, journal *ret) {
        _cleanup_free_ char *data = NULL, *aside = NULL;
        journal j = { .fd = -1 };
        size_t len = 0;
        bool created = false;
        int r;

        j.fd = open(path, O_RDWR | O_CLOEXEC);
        if (j.fd < 0 && errno == ENOENT) {
                j.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                created = j.fd >= 0;
        }
        if (j.fd < 0)
                return negative_errno();
        /* One agent process at a time (firstboot, renew, leave): they all append. */
        if (flock(j.fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : negative_errno();
                journal_close(&j);
                return r;
        }
        if (created && (r = fsync_parent_dir(path)) < 0) {
                journal_close(&j);
                return r;
        }
        r = read_fd(j.fd, JOURNAL_MAX, &data, &len);
        ssize_t valid = r < 0 ? r : replay(&j, data, len);
        if (valid < 0) {
                journal_close(&j);
                return (int) valid;
        }
        j.run++;
        /* Whatever follows the last whole entry is kept aside (and said in the journal) before it
         * is cut off: a frame cut short may be a crash in the middle of a write, but also a
         * truncated journal, and what it recorded is lost either way. New frames follow the last
         * whole entry. */
        bool damaged = (size_t) valid < len;
        if (damaged && (r = keep_damaged(path, j.run, data + valid, len - (size_t) valid, &aside)) < 0) {
                journal_close(&j);
                return r;
        }
        if (((size_t) valid < len && ftruncate(j.fd, valid) < 0) || lseek(j.fd, valid, SEEK_SET) < 0) {
                r = negative_errno();
                journal_close(&j);
                return r;
        }
        if (damaged) {
                _cleanup_free_ char *detail = NULL;
                if (asprintf(&detail, "%zu damaged bytes after entry %zu (%s) kept in %s; the stages after it run again",
                             len - (size_t) valid, j.n, j.torn ? "a frame cut short" : "not a journal entry",
                             aside) < 0 ||
                    (r = journal_append(&j, "journal", false, 0, 0, 0, detail)) < 0) {
                        journal_close(&j);
                        return r < 0 ? r : -ENOMEM;
                }
        }
        *ret = j;
        return 0;
}

int journal_append(journal *j, const char *stage, bool ok, uint64_t t_ms, uint64_t ms,
                   uint64_t wait_ms, const char *detail) {
        _cleanup_cbor_ cbor_item_t *m = cbor_new_indefinite_map();
        int r;

        if (!m)
                return -ENOMEM;
        if ((r = cbor_map_put_uint(m, "run", j->run)) < 0 || (r = cbor_map_put_string(m, "stage", stage)) < 0 ||
            (r = cbor_map_put_uint(m, "ok", ok)) < 0 || (r = cbor_map_put_uint(m, "t_ms", t_ms)) < 0 ||
            (r = cbor_map_put_uint(m, "ms", ms)) < 0 || (r = cbor_map_put_uint(m, "wait_ms", wait_ms)) < 0 ||
            (detail && (r = cbor_map_put_string(m, "detail", detail)) < 0))
                return r;
        r = frame_write(j->fd, m, JOURNAL_FRAME_MAX);
        if (r < 0)
                return r;
        if (fsync(j->fd) < 0)
                return negative_errno();
        journal_entry e = { .run = j->run, .stage = strdup(stage), .ok = ok, .t_ms = t_ms, .ms = ms,
                            .wait_ms = wait_ms, .detail = detail ? strdup(detail) : NULL };
        if (!e.stage || (detail && !e.detail) || push_entry(j, &e) < 0) {
                entry_done(&e);
                return -ENOMEM;
        }
        return 0;
}

const journal_entry *journal_find_ok(const journal *j, const char *stage) {
        for (size_t i = j->n; i > 0; i--)
                if (j->entries[i - 1].ok && streq(j->entries[i - 1].stage, stage))
                        return &j->entries[i - 1];
        return NULL;
}
