/* imgbuild command-line entry: dispatches to one function per command (builder/cmd-*.c). */
#pragma once

int imgbuild_main(int argc, char **argv);
