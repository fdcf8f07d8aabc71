/* The files under bootagent/units/, embedded at build time (CMake generates units-data.c). */
#pragma once

#include <stddef.h>

typedef struct unit_file {
        const char *name;            /* relative to /etc/systemd/system, e.g. etcd.service.d/bootagent.conf */
        const unsigned char *data;
        size_t size;
} unit_file;

extern const unit_file unit_files[];
extern const size_t n_unit_files;
