/* The journal of the cloud resources one build creates: STORE/cloud/BUILD-ID.json, rewritten
 * atomically before each resource is created and after each change, so that a build killed at
 * any point leaves a record `imgbuild gc` can clean up through the API. A running build holds an
 * exclusive flock on STORE/cloud/BUILD-ID.lock; gc skips journals whose lock is taken.
 *
 * {"build": ID, "resources": [{"kind", "name", "zone", "id", "parent", "state"}...]}
 *   kind    "ssh-key", "security-group", "instance", "snapshot", "template", and for a push
 *           (exo-push.h) "sos-object": an object uploaded to the object store (name: its key,
 *           parent: its bucket, id: the multipart upload's id once known), deleted by aborting
 *           every unfinished multipart upload of its key and deleting the object
 *   name    what it is called (ssh-key, security-group, instance: unique per build, so one
 *           created just before a kill can be found by name; template: NAME-VERSION)
 *   parent  snapshot: the instance it was taken of (how gc finds one without an id)
 *   id      once the API returned it
 *   state   "creating" (journaled, maybe created), "created", "deleted", or "kept" (a
 *           finished build's template: the product, never deleted by gc)
 * A template is found without an id by its description, "imgbuild build ID" or "imgbuild push ID".
 * The journal of a push has the same form, its id in "build". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "exoapi.h"
#include "sos.h"
#include "macro.h"

typedef struct cloud_journal cloud_journal;

/* Start the journal of a new build (creates STORE/cloud, takes the lock). Returns 0, -EEXIST if
 * the id is taken, or -errno. */
int cloud_journal_create(const char *store, const char *build_id, cloud_journal **ret);
/* Open an existing journal at path for cleanup. Returns 0, -EBUSY when a running build holds it,
 * -EBADMSG if it is not a journal, or -errno. */
int cloud_journal_open(const char *path, cloud_journal **ret);
void cloud_journal_free(cloud_journal *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(cloud_journal *, cloud_journal_free);

const char *cloud_journal_build_id(const cloud_journal *j);
const char *cloud_journal_path(const cloud_journal *j);
/* Log that the journal could not be written ("not creating anything more": the caller stops
 * creating resources) and return r. */
int cloud_journal_write_failed(const cloud_journal *j, int r);

/* Record a resource about to be created (state "creating"). parent may be NULL. Returns 0 and
 * its index, or -errno (then do not create it). */
int cloud_journal_add(cloud_journal *j, const char *kind, const char *name, const char *zone,
                      const char *parent, size_t *ret_index);
/* The API returned its id: state "created". Returns 0 or -errno. */
int cloud_journal_created(cloud_journal *j, size_t index, const char *id);
/* State "deleted" or "kept". Returns 0 or -errno. */
int cloud_journal_set_state(cloud_journal *j, size_t index, const char *state);

/* Mark every created resource of kind "kept" (a finished build's templates). Returns 0 or -errno. */
int cloud_journal_keep(cloud_journal *j, const char *kind);

/* Resources not yet deleted or kept. */
size_t cloud_journal_pending(const cloud_journal *j);

/* Delete every pending resource, newest first, through api (its zone is switched to each
 * resource's) and, for objects, through store (may be NULL when the journal lists none: an
 * object then fails with -EBADMSG). A resource the API no longer has counts as deleted; one journaled as "creating"
 * is looked up by name (parent, description) first. Each deletion is journaled and reported on
 * out ("deleted instance NAME (ID) in ZONE"); with dry_run nothing is deleted and out says what
 * would be. Returns 0, or the first failure (-errno) after trying every resource; the reason is
 * then logged with the failing API call. */
int cloud_journal_cleanup(cloud_journal *j, exoapi *api, sos *store, bool dry_run, FILE *out);

/* Remove a journal with nothing pending, and its lock file. Returns 0 or -errno. */
int cloud_journal_remove(cloud_journal *j);
