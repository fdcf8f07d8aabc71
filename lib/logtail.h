/* Show the end of a tool's log (mmdebstrap output, a VM's console, a service's output) when
 * something failed. */
#pragma once

#include <stddef.h>

/* Print the last `lines` lines of path to stderr, indented. Reads at most the last 64 KiB.
 * Errors are ignored: this only ever adds context to an error already logged. */
void log_file_tail(const char *path, unsigned lines);

/* The end of the log at path as one line for an error message: its last `lines` non-blank lines,
 * each trimmed, joined with " | ", cut at the front to at most max bytes ("..." then marks the
 * cut). Reads at most the last 64 KiB. Returns 0 and a new string in *ret ("" for an empty log),
 * or a negative errno (-ENOENT: no such file). */
int log_file_tail_line(const char *path, unsigned lines, size_t max, char **ret);
