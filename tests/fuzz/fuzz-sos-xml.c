/* Fuzz the S3 XML reply readers (lib/sos.h): sos_error_message() gives one bounded line without
 * control characters; sos_xml_element() walks forward and stays inside the input; sos_xml_text()
 * gives a NUL-free string of bounded length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *xml = (const char *) data;
        char *m = sos_error_message(xml, size);
        if (m) {
                size_t n = strlen(m);
                if (n > 502)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) m[i] < 0x20 || m[i] == 0x7f)
                                abort();
                free(m);
        }

        static const char *const tags[] = { "Upload", "UploadId", "Key", "Error", "Code" };
        for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
                size_t pos = 0, last = 0;
                const char *inner;
                size_t inner_len;
                int r;
                while ((r = sos_xml_element(xml, size, &pos, tags[t], &inner, &inner_len)) > 0) {
                        if (pos <= last || pos > size || inner < xml || inner + inner_len > xml + size)
                                abort();
                        last = pos;
                        char *text = NULL;
                        if (sos_xml_text(inner, inner_len, "Key", &text) == 0) {
                                if (strlen(text) > 64 * 1024)
                                        abort();
                                free(text);
                        }
                }
                char *text = NULL;
                if (sos_xml_text(xml, size, tags[t], &text) == 0) {
                        if (strlen(text) > 64 * 1024)
                                abort();
                        free(text);
                }
        }
        return 0;
}
