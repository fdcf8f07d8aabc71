/* Recipes: the parser and the resolved model the builder consumes.
 *
 * A recipe is line-oriented (see recipe-lex.h for comments, continuations, quoting and ${var}).
 * Header instructions, each at most once unless noted, anywhere in the file:
 *   template NAME VERSION        NAME [a-z0-9-]+, VERSION N[.N[.N]]
 *   base NAME                    images/NAME/image.conf next to the recipe directory, or under
 *                                ./images (the current directory as repository root)
 *   var NAME [= VALUE]           a variable; without a default it is required (may repeat for
 *   secret var NAME [= VALUE]    different names). Declare before use. Secret values are shown
 *                                as <secret> everywhere the model offers display text.
 *   qemu KEY=VALUE...            memory (size, bare number = MiB), cpus (1..64), disk (size)
 *   exoscale KEY=VALUE...        zone, instance-type, template, disk (GB, 10..51200)
 *   include PATH                 insert another file's lines here (PATH relative to the file
 *                                holding the include)
 *   env NAME=VALUE               set for every later step. Not a step itself: it does nothing in
 *                                the guest, and it enters the cache key of every later step.
 * Steps, in order, each one cache unit:
 *   packages NAME...             apt-get install
 *   copy SRC DEST [mode=0644] [owner=root:root]
 *   run COMMAND...               the rest of the line, for /bin/sh -c
 *   agent role=ROLE [config=FILE]
 *   download URL DEST sha256=HEX|sha512=HEX [mode=0644]
 *                                exactly one of the two checksums (64 or 128 hex digits)
 * SRC, FILE and local download paths are relative to the directory of the file holding the step.
 *
 * Variable values, lowest to highest priority: the default, IMGBUILD_VAR_<NAME> in the
 * environment, --var-file files (in order), --var NAME=VALUE (in order). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "crypto.h"
#include "recipe-lex.h"

typedef enum RecipeVarSource {
        RECIPE_VAR_UNSET,
        RECIPE_VAR_DEFAULT,
        RECIPE_VAR_ENVIRONMENT,
        RECIPE_VAR_FILE,
        RECIPE_VAR_COMMAND_LINE,
} RecipeVarSource;

typedef struct RecipeVar {
        char *name;
        char *value;  /* NULL when required and not set; wiped on free when secret */
        bool secret;
        bool required; /* declared without a default */
        RecipeVarSource source;
        char *file;   /* where it was declared */
        unsigned line;
} RecipeVar;

typedef enum RecipeStepKind {
        RECIPE_STEP_PACKAGES,
        RECIPE_STEP_COPY,
        RECIPE_STEP_RUN,
        RECIPE_STEP_AGENT,
        RECIPE_STEP_DOWNLOAD,
} RecipeStepKind;

typedef enum RecipeDigest {
        RECIPE_DIGEST_SHA256,
        RECIPE_DIGEST_SHA512,
} RecipeDigest;

typedef struct RecipeStep {
        RecipeStepKind kind;
        char *file;          /* source location, display path */
        unsigned line;

        /* Arguments, fully expanded, normalized (defaults filled in, e.g. "mode=0644"). args may
         * hold secret values; display_args has them masked as <secret>: print only those. */
        char **args;
        char **display_args;
        bool secret;         /* some argument holds a secret value */
        bool unresolved;     /* some argument refers to a variable without a value (validate
                              * and inspect only; a build refuses such recipes) */
        char **env;          /* NAME=VALUE in effect, sorted by name (may hold secrets) */
        char **display_env;  /* the same, secrets masked */

        /* Typed views of the arguments, per kind (NULL / 0 when not applicable). */
        char **packages;     /* packages */
        char *command;       /* run */
        char *source;        /* copy: host path; download: local host path for file:// or plain
                              * path URLs, NULL for http(s) */
        char *url;           /* download */
        RecipeDigest digest_kind; /* download: the checksum's algorithm */
        char *digest;        /* download: the checksum, lower-case hex */
        char *dest;          /* copy, download: absolute guest path */
        mode_t mode;         /* copy, download */
        char *owner;         /* copy: user:group */
        char *role;          /* agent: vault, etcd, control-plane, node */
        char *config;        /* agent: host path of the config file or NULL */

        /* Host files the step reads (copy: every regular file under source, sorted; agent: the
         * config file), with their names relative to the step's source for the cache key. */
        char **host_files;
        char **host_names;
        /* copy of a directory: "." and every directory under it, relative, sorted. The copy keeps
         * the modes of the tree, so the cache key covers these and every file's mode. */
        char **host_dirs;

        /* Canonical encoding, the step's identity in its cache key: netstrings ("LEN:BYTES,")
         * of "imgbuild-step/1", the kind, the argument count, each argument, the env count and
         * each env entry. Stable across runs and machines. May hold secret values: hash it,
         * never print it. */
        char *canonical;
        size_t canonical_len;
} RecipeStep;

typedef struct RecipeQemu {
        uint64_t memory;  /* bytes */
        unsigned cpus;
        uint64_t disk;    /* bytes */
} RecipeQemu;

typedef struct RecipeExoscale {
        bool set;         /* the recipe has an exoscale line */
        char *zone;
        char *instance_type;
        char *template;
        unsigned disk_gb;
} RecipeExoscale;

typedef struct Recipe {
        char *path;             /* as given */
        char *template_name;
        char *template_version;
        char *base_name;
        char *base_dir;         /* images/NAME directory (display path) */
        char *base_definition;  /* base_dir/image.conf */
        RecipeVar *vars;
        size_t n_vars;
        RecipeQemu qemu;
        RecipeExoscale exoscale;
        RecipeStep *steps;
        size_t n_steps;
        char **files;           /* every recipe and include file read, in order */
} Recipe;

typedef struct RecipeOptions {
        char **vars;            /* "NAME=VALUE" from --var, in order */
        char **var_files;       /* paths from --var-file, in order */
        bool no_environment;    /* ignore IMGBUILD_VAR_* */
        bool require_values;    /* every variable needs a value (build) */
        /* Never touch the filesystem beyond the recipe itself: includes are errors, and copied
         * files, configs and the base are not checked (for fuzzing). */
        bool no_host_files;
} RecipeOptions;

#define RECIPE_MAX_SIZE (1024u * 1024u)
#define RECIPE_MAX_INCLUDE_DEPTH 16

/* Parse and validate a recipe file. On success returns 0 and a new Recipe in *ret. Problems with
 * the recipe are added to diag (which may also receive warnings on success) and -EINVAL is
 * returned; -ENOMEM on allocation failure. */
int recipe_parse_file(const char *path, const RecipeOptions *o, Diagnostics *diag, Recipe **ret);
/* Same, for text already in memory; name is the path shown in diagnostics and the base for
 * relative paths. */
int recipe_parse_buffer(const char *name, const char *text, size_t len, const RecipeOptions *o,
                        Diagnostics *diag, Recipe **ret);

Recipe *recipe_free(Recipe *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Recipe *, recipe_free);

const char *recipe_step_kind_to_string(RecipeStepKind k);
const char *recipe_var_source_to_string(RecipeVarSource s);
/* "sha256" or "sha512": the recipe key, and the name of coreutils' checking tool without "sum". */
const char *recipe_digest_to_string(RecipeDigest d);

/* The cache key chain: key[0] = sha256(base_digest, step 0), key[i] = sha256(key[i-1], step i),
 * where step i contributes its canonical encoding and, for every host file it reads, the file's
 * name relative to the step source and the sha256 of its content. ret_keys receives n_steps
 * lower-case hex strings (a strv, caller frees). Returns 0, or -errno when a file cannot be read
 * (its path in *ret_failed_path if not NULL, caller frees), -ENOMEM.
 * Variables enter a key through the expanded arguments and env of the steps that use them, so
 * changing a variable re-runs only the steps from the first one that refers to it. */
int recipe_step_keys(const Recipe *r, const char *base_digest, char ***ret_keys, char **ret_failed_path);

/* What a step reads from the host, as one look saw it: each host file (its content's sha256,
 * through a symlink, as the copy reads it), each directory of a copied tree, and a local
 * download's source, with lstat's mode and change time. */
typedef struct RecipeHostInput {
        char *path;                     /* host path */
        bool file;                      /* content hashed (else a directory) */
        char sha256[SHA256_HEX_SIZE];   /* "" for a directory */
        mode_t mode;
        struct timespec ctime;          /* moves with every write, chmod, entry added or removed */
} RecipeHostInput;

typedef struct RecipeStepInputs {
        RecipeHostInput *items;
        size_t n;
} RecipeStepInputs;

/* The bytes a step sends are read when it runs, after its key was computed. So a build takes the
 * keys from one look at the host (recipe_step_keys_inputs: the same keys as recipe_step_keys, and
 * in *ret_inputs, if not NULL, an array of r->n_steps looks, freed with recipe_step_inputs_free)
 * and, once a step ran and before its result is kept under the key, checks that nothing changed
 * since (recipe_step_inputs_check): a file edited, replaced, chmod-ed or removed, or an entry
 * added to a copied directory (even since the recipe was read). Returns 0 when nothing changed,
 * -ESTALE with the first changed path in *ret_changed_path (caller frees), or -ENOMEM. */
int recipe_step_keys_inputs(const Recipe *r, const char *base_digest, char ***ret_keys, RecipeStepInputs **ret_inputs,
                            char **ret_failed_path);
int recipe_step_inputs_check(const RecipeStep *s, const RecipeStepInputs *before, char **ret_changed_path);
/* One step's look (recipe_step_keys_inputs does this for each step). Returns 0, or -errno (the
 * path that could not be read in *ret_failed_path if not NULL, caller frees). */
int recipe_step_inputs_read(const RecipeStep *s, RecipeStepInputs *ret, char **ret_failed_path);
void recipe_step_inputs_done(RecipeStepInputs *in);
RecipeStepInputs *recipe_step_inputs_free(RecipeStepInputs *a, size_t n);

/* The resolved model as JSON (secrets masked), for inspect --json. NULL on ENOMEM. */
json_t *recipe_to_json(const Recipe *r);
/* Format a size in bytes compactly with the largest exact binary suffix ("4G", "1536M"). */
void recipe_format_size(uint64_t bytes, char out[32]);
