/* bootagent command-line entry: dispatches to one function per command. */
#pragma once

int bootagent_main(int argc, char **argv);
