/* bootagent status [--json]: the journal's stages, outcome and timeline. */
#pragma once

int cmd_status(int argc, char **argv);
