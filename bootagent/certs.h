/* The named certificates, kubeconfigs and environment files of agent.conf ([certificate NAME],
 * [kubeconfig NAME], [environment NAME]): the "certificates" stage, after pki, and what
 * `bootagent renew` reloads or restarts once a certificate changed.
 *
 * Issuance is idempotent from the agent's side: with a local key (the default) the key is made
 * and saved in <state_dir>/certificates/NAME.key (0600, fsynced) before pki/sign is called with a
 * CSR for it, and the signed certificate is saved beside it before it is installed. A run that
 * finds an installed certificate that matches its key, carries the configured names and is
 * younger than renew_fraction keeps it; one that finds a saved certificate for the saved key
 * installs that one instead of signing again; one that finds only the saved key signs a CSR of
 * that same key again (a reply that never arrived cannot be recovered: Vault may then hold a
 * second certificate for the same key, which is never installed). The journal names the serial
 * of every certificate installed. */
#pragma once

#include "stage.h"

/* Whether the configuration has any named section (else the stage is skipped). */
bool certs_configured(const agent_config *c);

/* The [pki] certificate, the way of a [certificate] (saved copies, the journaled serial) with
 * [pki]'s own defaults: pki/issue unless local_key = yes, the instance's IP always among the IP
 * SANs. *ret_issued: whether one was signed or installed (then *ret_serial and *ret_expiration
 * say which). Returns 0 or -errno with the reason in err. */
int certs_ensure_pki(agent *a, bool *ret_issued, char **ret_serial, int64_t *ret_expiration, buf *err);

/* The certificates stage. With ret_renewed (may be NULL), the names of the certificates that were
 * signed or installed in this run are returned (a new strv, possibly empty). Returns 0, or a
 * negative errno with the failed stage recorded; -ECANCELED for the test hooks
 * BOOTAGENT_ABORT_AFTER=certificate-key (stop right after the first new key is saved, before the
 * sign request) and BOOTAGENT_ABORT_AFTER=certificate-signed (right after the first certificate
 * is signed and saved, before it is installed). */
int certs_stage(agent *a, char ***ret_renewed);

/* The "reload" stage of bootagent renew: restart, then reload, the units that the renewed
 * certificates name (restart wins over reload for a unit named by both), over sd-bus. With
 * units = exec there is no systemd to ask: the units are listed in the journal detail as not
 * restarted, and a notice is logged. Nothing to do: no stage recorded. Returns 0 or -errno. */
int certs_stage_reload(agent *a, char *const *renewed);
