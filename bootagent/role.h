/* The role boundary: what a role ([agent] role) adds to the first boot and to `bootagent leave`.
 * A role uses the driver only through stage.h and the start_units callback it is given; it never
 * calls firstboot.c. One role-<name>.c per role, listed in role.c. */
#pragma once

#include <stdbool.h>

#include "agent-config.h"
#include "stage.h"

/* The driver's units stage. env_file: KEY=value lines for units = exec (NULL: none). Sets
 * *ret_started once the units run, even when recording the stage then fails. Returns 0 or a
 * negative errno (-ECANCELED: BOOTAGENT_ABORT_AFTER stopped after it). */
typedef int (*role_start_units_fn)(agent *a, const char *env_file, bool *ret_started);

typedef struct role_ops {
        agent_config_role role;
        /* The role's first-boot stages, after pki. Calls start_units at the point where its
         * units must run; nothing else runs them. Returns 0 or a negative errno, the failed
         * stage already recorded. NULL: the driver only starts the units. */
        int (*firstboot)(agent *a, role_start_units_fn start_units);
        /* bootagent leave, after identity and login. NULL: the role has nothing to leave. */
        int (*leave)(agent *a);
} role_ops;

/* The ops of role, or NULL for a role with no stages of its own (the driver just starts its
 * units). The result is static. */
const role_ops *role_find(agent_config_role role);
