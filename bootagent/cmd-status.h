/* bootagent status [--json]: the journal's stages, outcome and timeline. */
#pragma once

/* Exit status when the journal has bytes after its last whole entry: what they recorded is lost,
 * so the outcome is not known (1: the last stage failed, or no journal). */
#define BOOTAGENT_EXIT_JOURNAL_DAMAGED 3

int cmd_status(int argc, char **argv);
