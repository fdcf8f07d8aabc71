/* `imgbuild push`: a template of the local store to Exoscale, as Packer's exoscale-import
 * post-processor does. The disk (STORE/templates/NAME/VERSION/disk.qcow2, checked against the
 * sha256 its manifest records) is uploaded to the zone's object storage (lib/sos.h: one PUT, or a
 * multipart upload above the part size), registered as template NAME-VERSION from a presigned
 * URL with its MD5 and boot mode, copied to the extra zones, and the object deleted. Every
 * resource (the object, each template) is journaled in STORE/cloud/PUSH-ID.json before it is
 * created (cloud-journal.h), so a failed or interrupted push deletes what it made and a killed
 * one leaves a journal for `imgbuild gc`. The template ids per zone go into
 * STORE/exoscale/NAME/VERSION/manifest.json, the file cloud builds write. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "progress.h"

#define EXO_PUSH_DEFAULT_PART_SIZE (64u * 1024u * 1024u)
#define EXO_PUSH_DEFAULT_URL_EXPIRES_S 86400L

typedef struct exo_push_options {
        const char *store;            /* the image store */
        const char *ref;              /* NAME@VERSION */
        const char *zone;
        char *const *copy_zones;      /* may be NULL */
        const char *bucket;
        const char *credentials;      /* api_key/api_secret file; NULL: the environment */
        const char *boot_mode;        /* "legacy" or "uefi"; NULL: the manifest's boot-mode, else legacy */
        const char *default_user;     /* may be NULL */
        size_t part_size;             /* a disk larger than this is uploaded in parts of this size */
        long url_expires_s;           /* how long the registration may download the disk */
        progress *progress;           /* may be NULL */
} exo_push_options;

/* Push; prints the template id per zone and the manifest's path on stdout. Returns 0, -EINVAL
 * for a usage error (logged), -EEXIST when NAME@VERSION was pushed or built on Exoscale already,
 * -EINTR when a signal stopped it (after cleaning up), or another -errno (logged). */
int exo_push(const exo_push_options *o);
