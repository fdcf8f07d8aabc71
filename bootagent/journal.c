#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

static int decode_entry(const cbor_item_t *m, journal_entry *ret) {
        journal_entry e = { 0 };
        uint64_t ok = 0;
        if (!cbor_isa_map(m))
                return -EBADMSG;
        e.stage = cbor_map_get_string(m, "stage");
        e.detail = cbor_map_get_string(m, "detail");
        if (!e.stage || cbor_map_get_uint(m, "run", &e.run) < 0 || cbor_map_get_uint(m, "ok", &ok) < 0 ||
            cbor_map_get_uint(m, "t_ms", &e.t_ms) < 0 || cbor_map_get_uint(m, "ms", &e.ms) < 0) {
                entry_done(&e);
                return -EBADMSG;
        }
        (void) cbor_map_get_uint(m, "wait_ms", &e.wait_ms);
        e.ok = ok != 0;
        *ret = e;
        return 0;
}

/* Replays data into j; returns the length of the valid prefix. */
static size_t replay(journal *j, const char *data, size_t len) {
        size_t off = 0;
        while (off < len) {
                _cleanup_cbor_ cbor_item_t *item = NULL;
                journal_entry e;
                ssize_t n = frame_decode(data + off, len - off, JOURNAL_FRAME_MAX, &item);
                if (n <= 0 || decode_entry(item, &e) < 0)
                        break;
                if (push_entry(j, &e) < 0) {
                        entry_done(&e);
                        break;
                }
                if (e.run > j->run)
                        j->run = e.run;
                off += (size_t) n;
        }
        return off;
}

int journal_load(const char *path, journal *ret) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        journal j = { .fd = -1 };
        int r = read_file(path, JOURNAL_MAX, &data, &len);
        if (r < 0)
                return r;
        replay(&j, data, len);
        *ret = j;
        return 0;
}

int journal_open(const char *path, journal *ret) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        journal j = { .fd = -1 };
        int r;

        r = read_file(path, JOURNAL_MAX, &data, &len);
        if (r < 0 && r != -ENOENT)
                return r;
        size_t valid = data ? replay(&j, data, len) : 0;
        j.fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (j.fd < 0) {
                r = negative_errno();
                journal_close(&j);
                return r;
        }
        /* Drop a torn tail so new frames follow the last complete one. */
        if ((valid < len && ftruncate(j.fd, (off_t) valid) < 0) || lseek(j.fd, (off_t) valid, SEEK_SET) < 0) {
                r = negative_errno();
                journal_close(&j);
                return r;
        }
        j.run++;
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
