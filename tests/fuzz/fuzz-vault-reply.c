/* Fuzz Vault reply handling: first byte picks the HTTP status, the rest is the body, which goes
 * through the envelope parser and then the auth, KV and PKI extractors. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const long statuses[] = { 200, 204, 400, 403, 404, 429, 500, 503 };
        _cleanup_buf_ buf err = BUF_INIT(4096);
        json_t *j = NULL;
        if (size == 0)
                return 0;
        long status = statuses[data[0] % 8];
        if (vault_parse_reply(status, (const char *) data + 1, size - 1, &j, &err) < 0 || !j)
                return 0;
        char *token = NULL;
        uint64_t lease;
        if (vault_parse_auth(j, &token, &lease) >= 0)
                free_secret(token);
        pki_bundle b = { 0 };
        if (vault_parse_pki(j, &b) >= 0)
                pki_bundle_done(&b);
        (void) json_path(j, "data.data");
        json_decref(j);
        return 0;
}
