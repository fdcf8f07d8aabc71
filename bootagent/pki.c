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
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
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
        return now >= nb && now < nb + (time_t) ((double) (na - nb) * fraction) ? 1 : 0;
}

static char *bio_to_string(BIO *b) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? strndup(p, (size_t) n) : NULL;
}

int pki_make_key(char **ret_key) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_(BIO_freep) BIO *kb = BIO_new(BIO_s_secmem());
        if (!key || !kb)
                return -ENOMEM;
        if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        char *k = bio_to_string(kb);
        if (!k)
                return -ENOMEM;
        *ret_key = k;
        return 0;
}

static EVP_PKEY *key_from_pem(const char *key_pem) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(key_pem, -1);
        return b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
}

static X509 *cert_from_pem(const char *cert_pem) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(cert_pem, -1);
        return b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
}

int pki_make_csr_for_key(const char *key_pem, const char *common_name, char *const *organization, char **ret_csr) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = key_from_pem(key_pem);
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(BIO_freep) BIO *rb = BIO_new(BIO_s_mem());

        if (!key)
                return -EBADMSG;
        if (!req || !rb)
                return -ENOMEM;
        X509_NAME *name = X509_REQ_get_subject_name(req);
        for (char *const *o = organization; o && *o; o++)
                if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) *o, -1, -1, 0) != 1)
                        return -EIO;
        if (X509_REQ_set_version(req, 0) != 1 ||
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

int pki_make_csr(const char *common_name, char **ret_key, char **ret_csr) {
        _cleanup_secret_ char *k = NULL;
        char *c;
        int r = pki_make_key(&k);
        if (r < 0)
                return r;
        r = pki_make_csr_for_key(k, common_name, NULL, &c);
        if (r < 0)
                return r;
        *ret_key = TAKE_PTR(k);
        *ret_csr = c;
        return 0;
}

/* Whether the subject has an entry nid equal to value. */
static bool subject_has(X509 *cert, int nid, const char *value) {
        X509_NAME *name = X509_get_subject_name(cert);
        for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0;) {
                unsigned char *utf8 = NULL;
                int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
                bool eq = len >= 0 && (size_t) len == strlen(value) && memcmp(utf8, value, (size_t) len) == 0;
                OPENSSL_free(utf8);
                if (eq)
                        return true;
        }
        return false;
}

static bool cert_has(X509 *cert, const pki_want *w) {
        if (!w)
                return true;
        if (w->common_name && !subject_has(cert, NID_commonName, w->common_name))
                return false;
        for (char *const *o = w->organization; o && *o; o++)
                if (!subject_has(cert, NID_organizationName, *o))
                        return false;
        for (char *const *d = w->dns; d && *d; d++)
                if (X509_check_host(cert, *d, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1)
                        return false;
        for (char *const *i = w->ips; i && *i; i++)
                if (X509_check_ip_asc(cert, *i, 0) != 1)
                        return false;
        return true;
}

int pki_cert_check(const char *cert_pem, const char *key_pem, const pki_want *want, double fraction, time_t now) {
        _cleanup_(X509_freep) X509 *cert = cert_from_pem(cert_pem);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = key_pem ? key_from_pem(key_pem) : NULL;
        time_t nb, na;

        if (!cert || (key_pem && (!key || X509_check_private_key(cert, key) != 1)) || !cert_has(cert, want))
                return 0;
        if (now == 0)
                return 1;
        if (asn1_to_time(X509_get0_notBefore(cert), &nb) < 0 || asn1_to_time(X509_get0_notAfter(cert), &na) < 0 ||
            na <= nb)
                return 0;
        return now >= nb && now < nb + (time_t) ((double) (na - nb) * fraction) ? 1 : 0;
}

int pki_cert_info(const char *cert_pem, char **ret_serial, int64_t *ret_not_after) {
        _cleanup_(X509_freep) X509 *cert = cert_from_pem(cert_pem);
        time_t na;
        if (!cert || asn1_to_time(X509_get0_notAfter(cert), &na) < 0)
                return -EBADMSG;
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        if (!bn)
                return -ENOMEM;
        int n = BN_num_bytes(bn);
        _cleanup_free_ unsigned char *bytes = malloc(n > 0 ? (size_t) n : 1);
        char *s = malloc(n > 0 ? (size_t) n * 3 : 1);
        if (!bytes || !s) {
                free(s);
                return -ENOMEM;
        }
        BN_bn2bin(bn, bytes);
        hex_encode_sep(bytes, (size_t) n, ':', s);
        *ret_serial = s;
        *ret_not_after = na;
        return 0;
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
