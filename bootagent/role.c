#include "role.h"

#include "macro.h"
#include "role-control-plane.h"
#include "role-etcd.h"
#include "role-node.h"

/* Every role with stages of its own. */
static const role_ops *const roles[] = {
        &role_control_plane_ops,
        &role_etcd_ops,
        &role_node_ops,
};

const role_ops *role_find(agent_config_role role) {
        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                if (roles[i]->role == role)
                        return roles[i];
        return NULL;
}
