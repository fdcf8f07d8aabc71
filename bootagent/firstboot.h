/* bootagent firstboot: the stage driver (identity -> login -> secrets -> pki -> the role's stages
 * and units -> done), each stage journaled so a rerun resumes. The stages other commands reuse. */
#pragma once

#include "stage.h"

/* Exit status when BOOTAGENT_ABORT_AFTER=<stage> stopped the agent (tests of crash recovery). */
#define BOOTAGENT_EXIT_ABORTED 99

int cmd_firstboot(int argc, char **argv);

/* The stages renew and leave share with the first boot. Each records itself in a's journal and
 * returns 0 or a negative errno (the failure logged and recorded). */
int firstboot_stage_identity(agent *a);
int firstboot_stage_login(agent *a);
/* Issue or sign the certificate unless the one on disk is fresh; nothing without a pki role. */
int firstboot_stage_pki(agent *a);
