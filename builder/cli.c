#include "cli.h"

#include <stdio.h>

#include "log.h"

int imgbuild_main(int argc, char **argv) {
        log_set_program("imgbuild");
        fprintf(stderr, "imgbuild %s: no commands yet\n", IMGBUILD_VERSION);
        return 2;
}
