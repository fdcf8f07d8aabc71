/* Files: whole-file reads with a cap, and atomic writes that never leave a half-written file. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

/* Write data to path atomically: create a temporary file in the same directory (O_CLOEXEC,
 * mode 0600), write everything, fchown to uid/gid unless they are (uid_t)-1/(gid_t)-1, fchmod to
 * mode, fsync, rename over path, fsync the directory. On any failure the temporary file is
 * removed and path is untouched. Returns 0 or a negative errno. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid);

/* Like write_file_atomic, but if path already holds exactly these bytes with this mode and owner,
 * do nothing. Returns 1 if the file was written, 0 if it was already up to date, or -errno. */
int write_file_atomic_if_changed(const char *path, const void *data, size_t len, mode_t mode,
                                 uid_t uid, gid_t gid);

/* Read a whole file (at most max bytes; -EFBIG if larger). *ret_data is NUL-terminated and
 * owned by the caller; ret_len may be NULL. */
int read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);
/* The same for an open fd, read from its current offset to EOF (fd stays open). A regular file
 * larger than max is refused whatever the offset. */
int read_fd(int fd, size_t max, char **ret_data, size_t *ret_len);

/* mkdir -p with the given mode for created directories. Existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);

/* Remove path recursively (like rm -rf, without following symlinks). Missing path is fine.
 * Does not descend into directories on another file system (mount points): their content is
 * kept, removal continues with the rest, and -EBUSY is returned. */
int rm_rf(const char *path);

/* Directory part of path ("a/b" -> "a", "b" -> ".", "/b" -> "/"). Returns a new string or NULL. */
char *path_dirname(const char *path);

/* fsync the directory containing path. */
int fsync_parent_dir(const char *path);
