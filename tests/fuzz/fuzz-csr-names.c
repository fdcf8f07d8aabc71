/* Fuzz what the local PKI takes from a certificate signing request (builder/cloud/localpki.c):
 * the input is a DER CSR, read without checking its signature (a requester signs whatever it
 * wants, so every field is the requester's), then given to localpki_csr_names; its PEM form also
 * goes through localpki_parse_csr. Checked: names come back only as -EBADMSG or as lists, and
 * every IP name is a whole IPv4 or IPv6 address that reads back as itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "localpki.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ip(const char *ip) {
        unsigned char a[16];
        char back[INET6_ADDRSTRLEN];
        int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(family, ip, a) != 1 || !inet_ntop(family, a, back, sizeof(back)) || !streq(back, ip))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const unsigned char *p = data;
        X509_REQ *req = d2i_X509_REQ(NULL, &p, (long) size);
        char *cn = NULL, **dns = NULL, **ips = NULL;

        if (!req)
                return 0;
        int r = localpki_csr_names(req, &cn, &dns, &ips);
        if (r >= 0) {
                if (!dns || !ips)
                        abort();
                for (char **n = ips; *n; n++)
                        check_ip(*n);
                free(cn);
                strv_free(dns);
                strv_free(ips);
        } else if (r != -EBADMSG)
                abort();

        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        if (b && PEM_write_bio_X509_REQ(b, req) == 1 && BIO_write(b, "", 1) == 1 && BIO_get_mem_data(b, &pem) > 0) {
                X509_REQ *parsed = NULL;
                if (localpki_parse_csr(pem, &parsed) >= 0)
                        X509_REQ_free(parsed);
        }
        BIO_free(b);
        X509_REQ_free(req);
        return 0;
}
