#include "cli.h"

int main(int argc, char **argv) { return imgbuild_main(argc, argv); }
