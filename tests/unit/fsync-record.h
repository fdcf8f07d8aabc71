/* fsync defined in the test executable (lib/fs.c's fsync_parent_dir and the agent call the libc
 * name, so this one is what they get): it records the directories fsynced, by inode, then syncs
 * for real. Include it in exactly one file of a test executable. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "macro.h"

static ino_t synced_dirs[4096];
static size_t n_synced_dirs;

int fsync(int fd) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && n_synced_dirs < ELEMENTSOF(synced_dirs))
                synced_dirs[n_synced_dirs++] = st.st_ino;
        return (int) syscall(SYS_fsync, fd);
}

/* Whether the directory at path was fsynced since the executable started. */
static bool dir_synced(const char *path) {
        struct stat st;
        CHECK(stat(path, &st) == 0);
        for (size_t i = 0; i < n_synced_dirs; i++)
                if (synced_dirs[i] == st.st_ino)
                        return true;
        return false;
}
