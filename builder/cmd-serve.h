/* `imgbuild serve --state-dir DIR`: run the local cloud services in the foreground. */
#pragma once

/* Exit status: 0 after SIGTERM/SIGINT, 1 for usage or system errors (a port in use), 2 when
 * DIR/cloud.json is invalid. */
int cmd_serve(int argc, char **argv);
