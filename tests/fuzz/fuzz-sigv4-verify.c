/* Fuzz sigv4_verify() (lib/sigv4.h), what a server runs on a request's untrusted target and
 * headers: the input is "PATH\nQUERY\nHEADER\nHEADER..." (at most 32 headers). It must return one
 * of its documented errors, never crash, and accept nothing without the secret (the only accepted
 * inputs would carry a signature made with it, which the corpus does not hold). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const sigv4_credentials creds = { "EXOfuzz", "fuzz-secret", "ch-gva-2", "s3" };
        char *text = malloc(size + 1), *lines[35] = {};
        size_t n = 0;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        for (char *p = text, *nl; n < 34 && p; p = nl ? nl + 1 : NULL) {
                nl = strchr(p, '\n');
                if (nl)
                        *nl = 0;
                lines[n++] = p;
        }
        if (n >= 2) {
                buf err = {};
                /* 2013-05-24T00:00:00Z, the date of the corpus' requests. */
                int r = sigv4_verify(&creds, "GET", lines[0], lines[1], &lines[2], SIGV4_EMPTY_SHA256, 1369353600, &err);
                if (r == 0 || (r != -EACCES && r != -EPERM && r != -ETIME && r != -EILSEQ && r != -ENOKEY &&
                               r != -EBADMSG && r != -ENOMEM))
                        abort();
                buf_free(&err);
        }
        free(text);
        return 0;
}
