/* The exoscale build provider (build-provider.h; `imgbuild build --provider exoscale`): build a
 * template on an Exoscale instance.
 *
 * Flow (protocols.md §2.4): a temporary SSH key (ssh-keygen, private temp dir), a temporary
 * security group open for SSH, an instance from the recipe's base template; bootagent is copied
 * in over SSH (to /usr/local/bin/bootagent, its runtime libraries installed with apt-get when
 * missing) and `bootagent serve --stdio` runs over an OpenSSH channel: the same communicator
 * frames and the same step functions as the local build (the session: exo-ssh.h), but no step
 * layers (every step runs, every time). After the steps, cloud hygiene (the build's key out of authorized_keys, cloud-init
 * state, bootagent itself unless an agent step needs it) and the usual hygiene; then the instance
 * is stopped through the API, snapshotted, the snapshot promoted to template NAME-VERSION (or
 * exported and registered), copied to the extra zones, and every temporary resource deleted.
 * Each resource is journaled before it is created (builder/provider/exoscale/cloud-journal.h), so a killed build
 * is cleaned up by `imgbuild gc`; a failed or interrupted one cleans up after itself. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "build-provider.h"
#include "exoapi.h"
#include "sos.h"

extern const build_provider_ops exoscale_build_provider;

/* An API client for zone with credentials from the file (NULL: EXOSCALE_API_KEY and
 * EXOSCALE_API_SECRET), the endpoint from EXOSCALE_API_ENDPOINT and the polling interval from
 * IMGBUILD_EXOSCALE_POLL_MS when set. Returns 0 or -errno (logged). */
int exoscale_api_new(const char *credentials, const char *zone, exoapi **ret);

/* An object storage (SOS) client for zone with the same credentials, the endpoint from
 * EXOSCALE_SOS_ENDPOINT when set (default SOS_DEFAULT_ENDPOINT). Returns 0 or -errno (logged). */
int exoscale_sos_new(const char *credentials, const char *zone, sos **ret);

/* Log a failed cloud call ("Failed to WHAT: ERROR", error being the client's last error: URL,
 * status, message) and return r; a call cancelled by a signal is logged as the interruption
 * and returns -EINTR. */
int exoscale_call_failed(int r, const char *what, const char *error);

/* Write the manifest m to path (compact JSON, atomically, its directory created). Logs and
 * returns -errno on failure. */
int exoscale_write_manifest(const char *path, const json_t *m);
