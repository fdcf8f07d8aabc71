/* Fuzz the agent.conf parser (lib/agent-config.c) from memory: the builder's check (names only
 * checked for form) and the image's parse (names looked up on this host), each with its
 * FILE:LINE error text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent-config.h"
#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 64 * 1024)
                return 0;
        /* The parser takes a C string: an embedded NUL ends the text, as it would in a file read. */
        _cleanup_free_ char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        _cleanup_buf_ buf err = BUF_INIT(4096);
        (void) agent_config_check(text, "fuzz.conf", &err);
        buf_free(&err);

        _cleanup_(agent_config_freep) agent_config *c = NULL;
        if (agent_config_parse(text, "fuzz.conf", &c, &err) >= 0) {
                /* A parsed config has its defaults: every string a consumer reads is set. Only a
                 * node may go without Vault, and then it has nothing to fetch from it. */
                if (!c->state_dir || !c->metadata_url || !agent_config_role_to_string(c->role))
                        abort();
                if (c->vault_addr ? !c->vault_role
                                  : c->role != AGENT_CONFIG_ROLE_NODE || c->n_secrets || c->pki_role || c->n_certs)
                        abort();
                /* Named sections: required fields and defaults set, every kubeconfig's certificate
                 * exists. */
                for (size_t i = 0; i < c->n_certs; i++)
                        if (!c->certs[i].name || !c->certs[i].role || !c->certs[i].mount || !c->certs[i].common_name ||
                            !c->certs[i].cert_file || !c->certs[i].key_file || !c->certs[i].ca_file)
                                abort();
                for (size_t i = 0; i < c->n_kubeconfigs; i++)
                        if (!c->kubeconfigs[i].file || !c->kubeconfigs[i].server || !c->kubeconfigs[i].cluster ||
                            !c->kubeconfigs[i].user || !agent_config_find_cert(c, c->kubeconfigs[i].certificate))
                                abort();
                for (size_t i = 0; i < c->n_envs; i++)
                        if (!c->envs[i].name || !c->envs[i].file)
                                abort();
        } else if (c)
                abort();
        return 0;
}
