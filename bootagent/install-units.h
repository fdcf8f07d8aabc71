/* bootagent install-units: the agent's units (and config) into an image. */
#pragma once

int cmd_install_units(int argc, char **argv);
