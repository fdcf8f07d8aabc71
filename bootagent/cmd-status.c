#include "cmd-status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "journal.h"
#include "json.h"
#include "log.h"
#include "stage.h"

int cmd_status(int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        bool json = false;
        agent a;
        journal j = { .fd = -1 };
        int r;

        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--json"))
                        json = true;
        r = agent_init(&a, argc, argv, false);
        if (r < 0)
                goto out;
        if (asprintf(&path, "%s/journal", a.state_dir) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = journal_load(path, &j);
        if (r < 0) {
                log_error_errno(r, "No journal at %s: %m", path);
                goto out;
        }
        const journal_entry *last = j.n ? &j.entries[j.n - 1] : NULL;
        const char *outcome = !last ? "not started" : !last->ok ? "failed" :
                              streq(last->stage, "done") ? "done" : "incomplete";
        if (json) {
                _cleanup_json_ json_t *root = json_pack("{s:s, s:I, s:[]}", "outcome", outcome, "unread_bytes",
                                                        (json_int_t) j.damaged_bytes, "stages");
                json_t *stages = json_object_get(root, "stages");
                for (size_t i = 0; i < j.n; i++) {
                        const journal_entry *e = &j.entries[i];
                        json_array_append_new(stages, json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:s?}", "run", (json_int_t) e->run,
                                                                "stage", e->stage, "ok", e->ok, "t_ms", (json_int_t) e->t_ms,
                                                                "ms", (json_int_t) e->ms, "wait_ms", (json_int_t) e->wait_ms,
                                                                "detail", e->detail));
                }
                _cleanup_free_ char *text = json_dump_compact(root);
                if (!text) {
                        r = -ENOMEM;
                        goto out;
                }
                puts(text);
        } else {
                printf("outcome: %s\n", outcome);
                for (size_t i = 0; i < j.n; i++) {
                        const journal_entry *e = &j.entries[i];
                        printf("run %-3" PRIu64 " %-10s %-6s t=%-7" PRIu64 " %6" PRIu64 " ms (wait %" PRIu64 ")  %s\n", e->run, e->stage,
                               e->ok ? "ok" : "FAILED", e->t_ms, e->ms, e->wait_ms, strempty(e->detail));
                }
                if (j.damaged_bytes > 0)
                        printf("journal: %zu bytes after the last whole entry (a torn write, or damage the next "
                               "agent run keeps in journal.damaged-<run>)\n", j.damaged_bytes);
        }
        r = last && !last->ok ? -EIO : 0;
out:
        journal_close(&j);
        agent_done(&a);
        return r < 0 ? 1 : 0;
}
