#include "agent.h"

#include <stdio.h>

#include "log.h"

int bootagent_main(int argc, char **argv) {
        log_set_program("bootagent");
        fprintf(stderr, "bootagent %s: no commands yet\n", BOOTAGENT_VERSION);
        return 2;
}
