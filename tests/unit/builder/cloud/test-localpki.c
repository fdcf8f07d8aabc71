/* The local CA: created once with a 0600 key and reused; issued certificates verify against it
 * and carry the requested names, key and validity; CSRs are parsed and verified. */
#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "fs.h"
#include "localpki.h"
#include "strv.h"

static char dir[64];

static void test_create_and_reuse(void) {
        _cleanup_(localpki_freep) localpki *a = NULL, *b = NULL;
        _cleanup_free_ char *key_path = NULL, *pem_path = NULL;
        struct stat st;

        CHECK(asprintf(&key_path, "%s/pki/ca.key", dir) >= 0 && asprintf(&pem_path, "%s/pki/ca.pem", dir) >= 0);
        char pki[128];
        snprintf(pki, sizeof(pki), "%s/pki", dir);
        CHECK_OK(localpki_open(pki, &a));
        CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(stat(pem_path, &st) == 0);
        CHECK(strstr(localpki_ca_pem(a), "BEGIN CERTIFICATE"));
        CHECK(localpki_ca_not_after(a) > time(NULL) + 9 * 365 * 86400L);

        CHECK_OK(localpki_open(pki, &b));
        CHECK_STREQ(localpki_ca_pem(a), localpki_ca_pem(b));

        /* a certificate without its key is not silently replaced */
        localpki_free(TAKE_PTR(b));
        CHECK(unlink(key_path) == 0);
        CHECK(localpki_open(pki, &b) == -EBADMSG);

        /* a key without its certificate is a creation cut short: made again */
        CHECK(unlink(pem_path) == 0);
        CHECK(write_file_atomic(key_path, "half", 4, 0600, (uid_t) -1, (gid_t) -1) == 0);
        CHECK_OK(localpki_open(pki, &b));
        CHECK(!streq(localpki_ca_pem(a), localpki_ca_pem(b)));
}

/* Processes opening one new directory at once end up with one CA, its key next to it. */
static void test_concurrent_create(void) {
        char pki[128];
        pid_t pids[4];
        snprintf(pki, sizeof(pki), "%s/pki-concurrent", dir);
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                pids[i] = fork();
                CHECK(pids[i] >= 0);
                if (pids[i] == 0) {
                        localpki *p = NULL;
                        char out[160];
                        snprintf(out, sizeof(out), "%s/ca-%zu.pem", dir, i);
                        if (localpki_open(pki, &p) < 0 ||
                            write_file_atomic(out, localpki_ca_pem(p), strlen(localpki_ca_pem(p)), 0600, (uid_t) -1, (gid_t) -1) < 0)
                                _exit(1);
                        _exit(0);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                int status;
                CHECK(waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        _cleanup_(localpki_freep) localpki *p = NULL;
        CHECK_OK(localpki_open(pki, &p));
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                _cleanup_free_ char *path = NULL, *pem = NULL;
                CHECK(asprintf(&path, "%s/ca-%zu.pem", dir, i) >= 0);
                CHECK_OK(read_file(path, 1 << 16, &pem, NULL));
                CHECK_STREQ(pem, localpki_ca_pem(p));
        }
}

static void test_issue(void) {
        _cleanup_(localpki_freep) localpki *p = NULL;
        char pki[128];
        char *dns[] = { (char *) "a.etcd.local", (char *) "b.etcd.local", NULL };
        char *ips[] = { (char *) "10.0.0.5", (char *) "fd00::1", NULL };
        localpki_request req = { .common_name = "a.etcd.local", .dns_names = dns, .ip_addresses = ips, .ttl = 3600 };
        localpki_cert cert = {};
        EVP_PKEY *key = NULL;
        time_t now = time(NULL);

        snprintf(pki, sizeof(pki), "%s/pki2", dir);
        CHECK_OK(localpki_open(pki, &p));
        CHECK_OK(localpki_generate_key(&key));
        CHECK_OK(localpki_issue(p, &req, key, now, &cert));
        CHECK(cert.expiration == now + 3600);
        CHECK(strlen(cert.serial_number) == 47);

        BIO *b = BIO_new_mem_buf(cert.certificate, -1), *cb = BIO_new_mem_buf(localpki_ca_pem(p), -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL), *ca = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        CHECK(x && ca);
        CHECK(X509_verify(x, X509_get0_pubkey(ca)) == 1);
        CHECK(X509_check_private_key(x, key) == 1);
        CHECK(X509_check_host(x, "b.etcd.local", 0, 0, NULL) == 1);
        CHECK(X509_check_host(x, "c.etcd.local", 0, 0, NULL) == 0);
        CHECK(X509_check_ip_asc(x, "10.0.0.5", 0) == 1);
        CHECK(X509_check_ip_asc(x, "fd00::1", 0) == 1);
        CHECK(X509_check_ip_asc(x, "10.0.0.6", 0) == 0);
        CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) == 1);
        CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1);
        CHECK(X509_check_ca(x) == 0);
        CHECK(X509_check_ca(ca) >= 1);

        _cleanup_free_ char *key_pem = NULL;
        CHECK_OK(localpki_private_key_pem(key, &key_pem));
        CHECK(strstr(key_pem, "BEGIN EC PRIVATE KEY"));

        /* the CA's own expiry bounds a leaf */
        localpki_cert long_cert = {};
        req.ttl = 100L * 365 * 86400;
        CHECK_OK(localpki_issue(p, &req, key, now, &long_cert));
        CHECK(long_cert.expiration == localpki_ca_not_after(p));

        char *bad_ips[] = { (char *) "10.0.0.500", NULL };
        req.ip_addresses = bad_ips;
        req.ttl = 60;
        localpki_cert bad = {};
        CHECK(localpki_issue(p, &req, key, now, &bad) == -EINVAL);

        localpki_cert_done(&long_cert);
        localpki_cert_done(&cert);
        X509_free(x);
        X509_free(ca);
        BIO_free(b);
        BIO_free(cb);
        EVP_PKEY_free(key);
}

static void test_csr(void) {
        EVP_PKEY *key = NULL;
        X509_REQ *req = X509_REQ_new();
        X509V3_CTX ctx;
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        BIO *b = BIO_new(BIO_s_mem());
        char *data;

        CHECK_OK(localpki_generate_key(&key));
        CHECK(X509_REQ_set_pubkey(req, key) == 1);
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                   (const unsigned char *) "node.etcd.local", -1, -1, 0);
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
                                                         "DNS:x.etcd.local,IP:10.1.2.3,email:a@b"));
        CHECK(X509_REQ_add_extensions(req, exts) == 1);
        CHECK(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        CHECK(PEM_write_bio_X509_REQ(b, req) == 1);
        long len = BIO_get_mem_data(b, &data);
        _cleanup_free_ char *pem = strndup(data, (size_t) len);

        X509_REQ *parsed = NULL;
        _cleanup_free_ char *cn = NULL;
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL;
        CHECK_OK(localpki_parse_csr(pem, &parsed));
        CHECK_OK(localpki_csr_names(parsed, &cn, &dns, &ips));
        CHECK_STREQ(cn, "node.etcd.local");
        CHECK(strv_length(dns) == 1 && streq(dns[0], "x.etcd.local"));
        CHECK(strv_length(ips) == 1 && streq(ips[0], "10.1.2.3"));
        X509_REQ_free(parsed);

        /* flip a byte inside the base64: the signature (or the DER) no longer holds */
        char *p = strchr(pem, '\n') + 40;
        *p = *p == 'A' ? 'B' : 'A';
        parsed = NULL;
        CHECK(localpki_parse_csr(pem, &parsed) == -EBADMSG);
        CHECK(localpki_parse_csr("not a csr", &parsed) == -EBADMSG);

        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        BIO_free(b);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
}

int main(void) {
        snprintf(dir, sizeof(dir), "/tmp/test-localpki-XXXXXX");
        CHECK(mkdtemp(dir));
        test_create_and_reuse();
        test_concurrent_create();
        test_issue();
        test_csr();
        CHECK_OK(rm_rf(dir));
        return 0;
}
