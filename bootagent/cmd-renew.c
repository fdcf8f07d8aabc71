#include "cmd-renew.h"

#include <errno.h>

#include "certs.h"
#include "firstboot.h"
#include "journal.h"
#include "log.h"
#include "stage.h"
#include "strv.h"

/* bootagent renew: re-issue the [pki] certificate and every [certificate NAME] past
 * renew_fraction of its lifetime, rewrite the kubeconfigs and environment files, then restart or
 * reload the units the renewed certificates name. */
int cmd_renew(int argc, char **argv) {
        _cleanup_strv_free_ char **renewed = NULL;
        agent a;
        int r = agent_init(&a, argc, argv, true);
        /* Before the first boot is done, certificates are its business. */
        if (r >= 0 && !journal_find_ok(&a.journal, "done"))
                r = log_error_errno(-EAGAIN, "First boot has not completed yet: nothing to renew "
                                     "(if the journal lost its record, 'bootagent firstboot' finishes it again)");
        if (r >= 0 && (r = firstboot_stage_identity(&a)) >= 0 && (r = firstboot_stage_login(&a)) >= 0)
                r = firstboot_stage_pki(&a);
        if (r >= 0 && certs_configured(a.cfg) && (r = certs_stage(&a, &renewed)) >= 0)
                r = certs_stage_reload(&a, renewed);
        agent_done(&a);
        return r < 0 ? 1 : 0;
}
