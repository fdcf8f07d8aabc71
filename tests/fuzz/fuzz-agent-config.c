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
                /* A parsed config has its defaults: every string a consumer reads is set. */
                if (!c->state_dir || !c->metadata_url || !c->vault_addr || !c->vault_role ||
                    !agent_config_role_to_string(c->role))
                        abort();
        } else if (c)
                abort();
        return 0;
}
