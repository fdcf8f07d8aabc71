/* The first-boot state machine and the commands built on it (firstboot, renew, leave, status). */
#pragma once

/* Exit status when BOOTAGENT_ABORT_AFTER=<stage> stopped the agent (tests of crash recovery). */
#define BOOTAGENT_EXIT_ABORTED 99

int cmd_firstboot(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_leave(int argc, char **argv);
int cmd_status(int argc, char **argv);
