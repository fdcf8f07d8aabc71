#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *program = "imgbuild";
static int max_level = LOG_INFO;
static int journal_style = -1;

void log_set_program(const char *name) { program = name; }
void log_set_max_level(int level) { max_level = level; }
int log_get_max_level(void) { return max_level; }
void log_set_journal_style(int mode) { journal_style = mode; }

static const char *level_word(int level) {
        switch (level) {
        case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error: ";
        case LOG_WARNING: return "warning: ";
        case LOG_DEBUG: return "debug: ";
        default: return "";
        }
}

int log_internal(int level, int r, const char *fmt, ...) {
        int saved = errno;
        int err = r < 0 ? -r : r;

        if (level <= max_level) {
                char msg[4096];
                va_list ap;

                errno = err; /* so that %m expands to r */
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);

                bool journal = journal_style >= 0 ? journal_style : !isatty(STDERR_FILENO);
                if (journal)
                        fprintf(stderr, "<%d>%s\n", level, msg);
                else
                        fprintf(stderr, "%s: %s%s\n", program, level_word(level), msg);
        }
        errno = saved;
        return -err;
}
