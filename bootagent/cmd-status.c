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
        _cleanup_free_ char *path = NULL, *damage = NULL;
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
        /* Bytes after the last whole entry recorded something that is lost: whatever the last
         * whole entry says, the outcome is not known. */
        const char *outcome = j.damaged_bytes > 0 ? "unknown, journal damaged" : !last ? "not started" :
                              !last->ok ? "failed" : streq(last->stage, "done") ? "done" : "incomplete";
        if (j.damaged_bytes > 0 &&
            asprintf(&damage, "journal damaged: %zu bytes after the last whole entry (entry %zu%s%s) are %s: what "
                     "they recorded is lost. They stay in %s until the next agent run keeps them in "
                     "%s.damaged-%" PRIu64 " and runs the stages after entry %zu again.",
                     j.damaged_bytes, j.n, last ? ", stage " : "", last ? last->stage : "",
                     j.torn ? "a frame cut short (a truncated journal, or a write a crash cut short)"
                            : "not a journal entry", path, path, j.run + 1, j.n) < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (json) {
                _cleanup_json_ json_t *root = json_pack("{s:s, s:I, s:s?, s:[]}", "outcome", outcome, "unread_bytes",
                                                        (json_int_t) j.damaged_bytes, "damage", damage, "stages");
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
                if (damage)
                        puts(damage);
        }
        r = j.damaged_bytes > 0 ? BOOTAGENT_EXIT_JOURNAL_DAMAGED : last && !last->ok ? 1 : 0;
out:
        journal_close(&j);
        agent_done(&a);
        return r < 0 ? 1 : r;
}
