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

static int csr_for(EVP_PKEY *key, const char *common_name, const char *organization, char **ret_csr) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(BIO_freep) BIO *rb = BIO_new(BIO_s_mem());
        if (!req || !rb)
                return -ENOMEM;
        X509_NAME *name = X509_REQ_get_subject_name(req);
        if (X509_REQ_set_version(req, 0) != 1 ||
            (organization && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) organization, -1, -1, 0) != 1) ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1, 0) != 1 ||
            X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
                return -EIO;
        if (PEM_write_bio_X509_REQ(rb, req) != 1)
                return -EIO;
        char *c = bio_to_string(rb);
        if (!c)
                return -ENOMEM;
        *ret_csr = c;
        return 0;
}

static int key_to_pem(EVP_PKEY *key, char **ret_key) {
        _cleanup_(BIO_freep) BIO *kb = BIO_new(BIO_s_secmem());
        if (!kb)
                return -ENOMEM;
        if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        char *k = bio_to_string(kb);
        if (!k)
                return -ENOMEM;
        *ret_key = k;
        return 0;
}

int pki_make_csr(const char *common_name, char **ret_key, char **ret_csr) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_secret_ char *k = NULL;
        int r;
        if (!key)
                return -ENOMEM;
        if ((r = key_to_pem(key, &k)) < 0 || (r = csr_for(key, common_name, NULL, ret_csr)) < 0)
                return r;
        *ret_key = TAKE_PTR(k);
        return 0;
}

int pki_new_key(char **ret_key) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        if (!key)
                return -ENOMEM;
        return key_to_pem(key, ret_key);
}

static EVP_PKEY *key_from_pem(const char *key_pem) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(key_pem, -1);
        return b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
}

int pki_key_csr(const char *key_pem, const char *common_name, const char *organization, char **ret_csr) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = key_from_pem(key_pem);
        if (!key)
                return -EBADMSG;
        return csr_for(key, common_name, organization, ret_csr);
}

int pki_key_spki_sha256(const char *key_pem, char ret_hex[65]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = key_from_pem(key_pem);
        unsigned char *der = NULL;
        uint8_t d[32];
        if (!key)
                return -EBADMSG;
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return -EBADMSG;
        sha256(der, (size_t) n, d);
        OPENSSL_free(der);
        hex_encode(d, sizeof(d), ret_hex);
        return 0;
}

int pki_cert_matches_key(const char *cert_pem, const char *key_pem, time_t now) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(cert_pem, -1);
        _cleanup_(X509_freep) X509 *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = key_from_pem(key_pem);
        time_t nb, na;
        if (!cert || !key || X509_check_private_key(cert, key) != 1)
                return 0;
        if (asn1_to_time(X509_get0_notBefore(cert), &nb) < 0 || asn1_to_time(X509_get0_notAfter(cert), &na) < 0)
                return 0;
        return now >= nb && now < na ? 1 : 0;
}
