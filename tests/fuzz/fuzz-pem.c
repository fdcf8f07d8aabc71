/* Fuzz the certificate and key PEM files the programs read back: the agent's freshness check
 * (pki_cert_fresh, bootagent/pki.c) and the local CA's loading (localpki_open of an existing
 * DIR/ca.pem + ca.key, builder/cloud/localpki.c). The input is the certificate file, a NUL byte,
 * then the key file. Checked: freshness is 0 or 1 and monotone (fresh at t is fresh earlier, for
 * a larger fraction of the lifetime, and without the IP check); a CA that loads hands back its
 * file as its PEM, and a leaf it issues is signed by the CA's key and ends no later than the CA. */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "localpki.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW ((time_t) 1790000000) /* 2026-09-21 */

static int fresh(const char *cert, const char *key, const char *ip, double fraction, time_t now) {
        int r = pki_cert_fresh(cert, key, ip, fraction, now);
        if (r != 0 && r != 1)
                abort();
        return r;
}

static void check_fresh(const char *cert, const char *key) {
        static const time_t times[] = { 0, NOW, (time_t) 4102444800 /* 2100 */ };
        for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
                int r = fresh(cert, key, "10.0.0.5", 2.0 / 3.0, times[i]);
                if (r && (!fresh(cert, key, NULL, 2.0 / 3.0, times[i]) || !fresh(cert, key, "10.0.0.5", 1.0, times[i]) ||
                          !fresh(cert, key, "10.0.0.5", 2.0 / 3.0, times[i] - 86400)))
                        abort();
        }
}

static void check_ca(const char *dir, const char *cert_pem) {
        static EVP_PKEY *leaf_key;
        _cleanup_(localpki_freep) localpki *p = NULL;
        localpki_cert c = {};

        int r = localpki_open(dir, &p);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return;
        }
        if (!streq(localpki_ca_pem(p), cert_pem))
                abort();
        if (!leaf_key && localpki_generate_key(&leaf_key) < 0)
                abort();
        char *ips[] = { (char *) "10.0.0.5", NULL }, *dns[] = { (char *) "etcd-1.example", NULL };
        localpki_request req = { .common_name = "etcd-1", .dns_names = dns, .ip_addresses = ips, .ttl = 3600 };
        r = localpki_issue(p, &req, leaf_key, NOW, &c);
        if (r < 0) {
                if (r != -EIO) /* a CA key OpenSSL cannot sign with, a CA without a key id */
                        abort();
                return;
        }
        if (c.expiration > localpki_ca_not_after(p))
                abort();
        BIO *b = BIO_new_mem_buf(c.certificate, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
        X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        X509 *ca = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
        if (!leaf || !ca || X509_verify(leaf, X509_get0_pubkey(ca)) != 1)
                abort();
        X509_free(leaf);
        X509_free(ca);
        BIO_free(b);
        BIO_free(cb);
        localpki_cert_done(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char cert[128], key[128];
        const char *dir = fuzz_dir();

        if (size > 64 * 1024)
                return 0;
        const uint8_t *nul = memchr(data, 0, size);
        size_t cert_len = nul ? (size_t) (nul - data) : size;
        const uint8_t *key_data = nul ? nul + 1 : data + size;
        size_t key_len = (size_t) (data + size - key_data);
        _cleanup_free_ char *cert_pem = strndup((const char *) data, cert_len);
        if (!cert_pem)
                return 0;

        /* The CA's file names; pki_cert_fresh takes any. */
        snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
        snprintf(key, sizeof(key), "%s/ca.key", dir);
        if (write_file_atomic(cert, data, cert_len, 0600, (uid_t) -1, (gid_t) -1) < 0 ||
            write_file_atomic(key, key_data, key_len, 0600, (uid_t) -1, (gid_t) -1) < 0)
                abort();
        check_fresh(cert, key);
        check_ca(dir, cert_pem);
        return 0;
}
