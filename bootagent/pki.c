#include "pki.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

static int asn1_to_time(const ASN1_TIME *t, time_t *ret) {
        struct tm tm;
        if (ASN1_TIME_to_tm(t, &tm) != 1)
                return -EBADMSG;
        *ret = timegm(&tm);
        return 0;
}

int pki_cert_fresh(const char *cert_path, const char *key_path, const char *ip, double fraction, time_t now) {
        _cleanup_(fclosep) FILE *cf = fopen(cert_path, "re");
        if (!cf)
                return errno == ENOENT ? 0 : negative_errno();
        _cleanup_(fclosep) FILE *kf = fopen(key_path, "re");
        if (!kf)
                return errno == ENOENT ? 0 : negative_errno();
        _cleanup_(X509_freep) X509 *cert = PEM_read_X509(cf, NULL, NULL, NULL);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
        time_t nb, na;

        if (!cert || !key || !crypto_cert_key_match(cert, key))
                return 0;
        if (ip && X509_check_ip_asc(cert, ip, 0) != 1)
                return 0;
        if (asn1_to_time(X509_get0_notBefore(cert), &nb) < 0 || asn1_to_time(X509_get0_notAfter(cert), &na) < 0)
                return 0;
        if (na <= nb)
                return 0;
        return now < nb + (time_t) ((double) (na - nb) * fraction) ? 1 : 0;
}

static char *bio_to_string(BIO *b) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? strndup(p, (size_t) n) : NULL;
}

int pki_make_csr(const char *common_name, char **ret_key, char **ret_csr) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(BIO_freep) BIO *kb = BIO_new(BIO_s_secmem());
        _cleanup_(BIO_freep) BIO *rb = BIO_new(BIO_s_mem());

        if (!key || !req || !kb || !rb)
                return -ENOMEM;
        X509_NAME *name = X509_REQ_get_subject_name(req);
        if (X509_REQ_set_version(req, 0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1, 0) != 1 ||
            X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
                return -EIO;
        if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 || PEM_write_bio_X509_REQ(rb, req) != 1)
                return -EIO;
        char *k = bio_to_string(kb), *c = bio_to_string(rb);
        if (!k || !c) {
                free_secret(k);
                free(c);
                return -ENOMEM;
        }
        *ret_key = k;
        *ret_csr = c;
        return 0;
}
