/* Show the end of a tool's log (mmdebstrap output, a VM's console) when something failed. */
#pragma once

/* Print the last `lines` lines of path to stderr, indented. Reads at most the last 64 KiB.
 * Errors are ignored: this only ever adds context to an error already logged. */
void log_file_tail(const char *path, unsigned lines);
