/* Certificate freshness on disk and local key + CSR generation. The certificate is made here
 * with OpenSSL from the CSR's key, valid from now-100 s to now+100 s, with one IP SAN. */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fs.h"
#include "kube-bootstrap.h"
#include "pki.h"

static char *make_cert(const char *key_pem, const char *csr_pem, const char *ip, time_t now) {
        BIO *kb = BIO_new_mem_buf(key_pem, -1), *rb = BIO_new_mem_buf(csr_pem, -1), *out = BIO_new(BIO_s_mem());
        EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        X509_REQ *req = PEM_read_bio_X509_REQ(rb, NULL, NULL, NULL);
        X509 *x = X509_new();
        char san[64];
        CHECK(key && req && x && out);
        CHECK(X509_REQ_verify(req, key) == 1);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_set_subject_name(x, X509_REQ_get_subject_name(req));
        X509_set_issuer_name(x, X509_REQ_get_subject_name(req));
        ASN1_TIME_set(X509_getm_notBefore(x), now - 100);
        ASN1_TIME_set(X509_getm_notAfter(x), now + 100);
        X509_set_pubkey(x, key);
        snprintf(san, sizeof(san), "IP:%s", ip);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        CHECK(ext && X509_add_ext(x, ext, -1) == 1);
        CHECK(X509_sign(x, key, EVP_sha256()) > 0);
        CHECK(PEM_write_bio_X509(out, x) == 1);
        char *p;
        long n = BIO_get_mem_data(out, &p);
        char *pem = strndup(p, (size_t) n);
        X509_EXTENSION_free(ext);
        X509_free(x);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        BIO_free(kb);
        BIO_free(rb);
        BIO_free(out);
        return pem;
}

/* key_pem (EC) re-encoded as an ECPrivateKey with one bit of the private scalar flipped and the
 * stored public key left as it was. */
static char *damage_private_half(const char *key_pem) {
        BIO *kb = BIO_new_mem_buf(key_pem, -1), *out = BIO_new(BIO_s_mem());
        EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        unsigned char *der = NULL;
        CHECK(key && out);
        int len = i2d_PrivateKey(key, &der);
        /* SEQUENCE { INTEGER 1, OCTET STRING (32 bytes: the scalar), [0] curve, [1] public key } */
        CHECK(len > 40 && der[5] == 0x04 && der[6] == 32);
        der[7 + 31] ^= 1;
        const unsigned char *p = der;
        EVP_PKEY *bad = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, len);
        CHECK(bad);
        CHECK(PEM_write_bio_PrivateKey(out, bad, NULL, NULL, 0, NULL, NULL) == 1);
        char *s;
        long n = BIO_get_mem_data(out, &s);
        char *pem = strndup(s, (size_t) n);
        OPENSSL_clear_free(der, (size_t) len);
        EVP_PKEY_free(bad);
        EVP_PKEY_free(key);
        BIO_free(kb);
        BIO_free(out);
        return pem;
}

int main(void) {
        char dir[] = "/tmp/test-pki.XXXXXX", cert[128], key[128], other[128];
        char *key_pem, *csr_pem, *key2_pem, *csr2_pem;
        time_t now = time(NULL);

        CHECK(mkdtemp(dir));
        snprintf(cert, sizeof(cert), "%s/c.pem", dir);
        snprintf(key, sizeof(key), "%s/k.pem", dir);
        snprintf(other, sizeof(other), "%s/k2.pem", dir);

        CHECK(pki_cert_fresh(cert, key, NULL, 0.5, now) == 0); /* missing */

        CHECK_OK(pki_make_csr("etcd-1.etcd.local", &key_pem, &csr_pem));
        CHECK(strstr(key_pem, "-----BEGIN PRIVATE KEY-----"));
        CHECK(strstr(csr_pem, "-----BEGIN CERTIFICATE REQUEST-----"));
        char *cert_pem = make_cert(key_pem, csr_pem, "10.0.0.5", now);
        CHECK_OK(write_file_atomic(cert, cert_pem, strlen(cert_pem), 0644, (uid_t) -1, (gid_t) -1));
        CHECK_OK(write_file_atomic(key, key_pem, strlen(key_pem), 0600, (uid_t) -1, (gid_t) -1));

        /* Lifetime 200 s, 100 s elapsed. */
        CHECK(pki_cert_fresh(cert, key, "10.0.0.5", 0.9, now) == 1);
        CHECK(pki_cert_fresh(cert, key, NULL, 0.9, now) == 1);
        CHECK(pki_cert_fresh(cert, key, "10.0.0.5", 0.4, now) == 0);   /* past its renewal point */
        CHECK(pki_cert_fresh(cert, key, "10.0.0.6", 0.9, now) == 0);   /* wrong IP */
        CHECK(pki_cert_fresh(cert, key, "10.0.0.5", 0.9, now + 1000) == 0); /* expired */

        /* A key that does not belong to the certificate (crash between the two writes). */
        CHECK_OK(pki_make_csr("x", &key2_pem, &csr2_pem));
        CHECK_OK(write_file_atomic(other, key2_pem, strlen(key2_pem), 0600, (uid_t) -1, (gid_t) -1));
        CHECK(pki_cert_fresh(cert, other, "10.0.0.5", 0.9, now) == 0);

        /* The right key with its private half damaged (bit rot): the public half it stores still
         * matches the certificate, but it signs nothing that verifies. */
        char damaged[128];
        snprintf(damaged, sizeof(damaged), "%s/k3.pem", dir);
        char *damaged_pem = damage_private_half(key_pem);
        CHECK_OK(write_file_atomic(damaged, damaged_pem, strlen(damaged_pem), 0600, (uid_t) -1, (gid_t) -1));
        CHECK(pki_cert_fresh(cert, damaged, "10.0.0.5", 0.9, now) == 0);
        free_secret(damaged_pem);

        /* The node role's pieces: a key first, a CSR for it with O and CN, the SPKI hash (the
         * same digest a kube CA pin of a certificate with that key holds), key/certificate match. */
        char *node_key, *node_csr, *node_cert, *pin, hex[65], nodes[] = "system:nodes";
        CHECK_OK(pki_make_key(&node_key));
        CHECK(strstr(node_key, "-----BEGIN PRIVATE KEY-----"));
        CHECK_OK(pki_make_csr_for_key(node_key, "system:node:n1", (char *[]){ nodes, NULL }, &node_csr));
        BIO *rb = BIO_new_mem_buf(node_csr, -1);
        X509_REQ *req = PEM_read_bio_X509_REQ(rb, NULL, NULL, NULL);
        CHECK(req);
        char subject[256];
        X509_NAME_oneline(X509_REQ_get_subject_name(req), subject, sizeof(subject));
        CHECK_STREQ(subject, "/O=system:nodes/CN=system:node:n1");
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        CHECK(!exts || sk_X509_EXTENSION_num(exts) == 0); /* no SANs: a kubelet client CSR has none */
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);
        BIO_free(rb);
        node_cert = make_cert(node_key, node_csr, "10.0.0.7", now);
        CHECK_OK(pki_key_spki_sha256(node_key, hex));
        CHECK_OK(kube_bootstrap_ca_pin(node_cert, &pin));
        CHECK_STREQ(pin + strlen("sha256:"), hex);
        CHECK(pki_cert_check(node_cert, node_key, NULL, 1.0, now) == 1);
        CHECK(pki_cert_check(node_cert, node_key, NULL, 1.0, now + 1000) == 0); /* expired */
        CHECK(pki_cert_check(node_cert, node_key, NULL, 1.0, now - 1000) == 0); /* not yet valid */
        CHECK(pki_cert_check(node_cert, key2_pem, NULL, 1.0, now) == 0);        /* another key */
        CHECK(pki_cert_check("junk", node_key, NULL, 1.0, now) == 0);
        CHECK(pki_key_spki_sha256("junk", hex) == -EBADMSG);
        free_secret(node_key);
        free(node_csr);
        free(node_cert);
        free(pin);

        /* In memory, with the names a [certificate] asks for: subject O and CN from the CSR. */
        char *key3_pem = NULL, *csr3_pem = NULL, *serial = NULL;
        char o1[] = "system:masters", o2[] = "other", ip[] = "10.0.0.5", ip2[] = "10.0.0.6";
        char *orgs[] = { o1, NULL }, *wrong_orgs[] = { o2, NULL }, *ips[] = { ip, NULL }, *wrong_ips[] = { ip2, NULL };
        int64_t not_after = 0;
        CHECK_OK(pki_make_key(&key3_pem));
        CHECK(pki_make_csr_for_key("junk", "x", NULL, &csr3_pem) == -EBADMSG && !csr3_pem);
        CHECK_OK(pki_make_csr_for_key(key3_pem, "kubernetes-admin", orgs, &csr3_pem));
        char *cert3_pem = make_cert(key3_pem, csr3_pem, "10.0.0.5", now);
        pki_want want = { .common_name = "kubernetes-admin", .organization = orgs, .ips = ips };
        CHECK(pki_cert_check(cert3_pem, key3_pem, &want, 0.9, now) == 1);
        CHECK(pki_cert_check(cert3_pem, NULL, NULL, 0.9, now) == 1);
        CHECK(pki_cert_check(cert3_pem, key3_pem, &want, 0.4, now) == 0);       /* past its renewal point */
        CHECK(pki_cert_check(cert3_pem, key3_pem, &want, 0.4, 0) == 1);         /* time not checked */
        CHECK(pki_cert_check(cert3_pem, key2_pem, &want, 0.9, now) == 0);       /* another key */
        CHECK(pki_cert_check(cert3_pem, key3_pem, &(pki_want){ .common_name = "kubernetes" }, 0.9, now) == 0);
        CHECK(pki_cert_check(cert3_pem, key3_pem, &(pki_want){ .organization = wrong_orgs }, 0.9, now) == 0);
        CHECK(pki_cert_check(cert3_pem, key3_pem, &(pki_want){ .ips = wrong_ips }, 0.9, now) == 0);
        CHECK(pki_cert_check(cert3_pem, key3_pem, &(pki_want){ .dns = orgs }, 0.9, now) == 0); /* no DNS SAN */
        CHECK(pki_cert_check("junk", key3_pem, NULL, 0.9, now) == 0);
        CHECK_OK(pki_cert_info(cert3_pem, &serial, &not_after));
        CHECK_STREQ(serial, "01");
        CHECK(not_after == (int64_t) now + 100);
        CHECK(pki_cert_info("junk", &serial, &not_after) == -EBADMSG);
        free(serial);
        free_secret(key3_pem);
        free(csr3_pem);
        free(cert3_pem);

        /* Garbage instead of a certificate. */
        CHECK_OK(write_file_atomic(cert, "junk", 4, 0644, (uid_t) -1, (gid_t) -1));
        CHECK(pki_cert_fresh(cert, key, NULL, 0.9, now) == 0);

        free_secret(key_pem);
        free_secret(key2_pem);
        free(csr_pem);
        free(csr2_pem);
        free(cert_pem);
        CHECK_OK(rm_rf(dir));
        return 0;
}
