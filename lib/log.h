/* Logging. Writes to stderr: "imgbuild: error: message" on a terminal, "<3>message" (a journal
 * priority prefix that systemd understands) when stderr is not a terminal or when journal mode is
 * forced. Helper code in lib/ never logs; callers log once at the program boundary. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Set the program name shown before messages (a static string; not copied). */
void log_set_program(const char *name);
/* Only messages with priority <= level are shown (LOG_ERR .. LOG_DEBUG). Default LOG_INFO. */
void log_set_max_level(int level);
int log_get_max_level(void);
/* Force the journal "<N>" prefix style on (1), off (0), or decide by isatty(stderr) (-1). */
void log_set_journal_style(int mode);

/* Log at priority; errno-style error r (negative or positive) is substituted for %m.
 * Returns -abs(r) so callers can write: return log_error_errno(r, "Failed to x: %m"); */
int log_internal(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_WARNING, (r), __VA_ARGS__)
#define log_error_errno(r, ...) log_internal(LOG_ERR, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_internal(LOG_DEBUG, (r), __VA_ARGS__)
