#include "cmd-leave.h"

#include <errno.h>

#include "firstboot.h"
#include "log.h"
#include "role.h"
#include "stage.h"

/* bootagent leave: log in, then the role's leave step (etcd: remove this member from the
 * cluster, stop etcd, wipe its data dir). */
int cmd_leave(int argc, char **argv) {
        const role_ops *role;
        agent a;
        int r = agent_init(&a, argc, argv, true);
        if (r < 0)
                goto out;
        role = role_find(a.cfg->role);
        if (!role || !role->leave) {
                r = log_error_errno(-EINVAL, "leave is only meaningful for the etcd role");
                goto out;
        }
        if ((r = firstboot_stage_identity(&a)) < 0 || (r = firstboot_stage_login(&a)) < 0)
                goto out;
        r = role->leave(&a);
out:
        agent_done(&a);
        return r < 0 ? 1 : 0;
}
