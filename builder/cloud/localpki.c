/* Local CA over OpenSSL 3: keys via EVP_PKEY_Q_keygen, certificates via X509_*. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "crypto.h"
#include "fs.h"
#include "localpki.h"
#include "strv.h"

#define CA_VALIDITY (10 * 365 * 86400L)
#define PEM_MAX (64u * 1024u)

struct localpki {
        EVP_PKEY *key;
        X509 *cert;
        char *cert_pem;
        time_t not_after;
};

static void bio_freep(BIO **b) { BIO_free_all(*b); }
static void x509_freep(X509 **x) { X509_free(*x); }
static void gens_freep(GENERAL_NAMES **g) { GENERAL_NAMES_free(*g); }

/* Copy a memory BIO's contents into a new string. */
static int bio_to_string(BIO *b, char **ret) {
        char *data;
        long len = BIO_get_mem_data(b, &data);
        char *s = len >= 0 ? strndup(data, (size_t) len) : NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int cert_to_pem(X509 *x, char **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio_X509(b, x) != 1)
                return -EIO;
        return bio_to_string(b, ret);
}

int localpki_generate_key(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

int localpki_private_key_pem(EVP_PKEY *key, char **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        return bio_to_string(b, ret);
}

int localpki_private_key_pkcs8_pem(EVP_PKEY *key, char **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        return bio_to_string(b, ret);
}

/* 16 random bytes, top bit clear (a positive serial) and the next one set, so every serial has
 * exactly 16 bytes (a leading zero byte would shorten it). Unique in practice. */
static int set_random_serial(X509 *x) {
        uint8_t bytes[16];
        int r = random_bytes(bytes, sizeof(bytes));
        if (r < 0)
                return r;
        bytes[0] = (uint8_t) ((bytes[0] & 0x3f) | 0x40);
        BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
        int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
        BN_free(bn);
        return ok ? 0 : -EIO;
}

/* Add an extension given in OpenSSL's config syntax; only used with fixed strings. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        int ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EIO;
}

static int set_subject(X509 *x, char *const *organization, const char *cn) {
        X509_NAME *name = X509_get_subject_name(x);
        for (char *const *o = organization; o && *o; o++)
                if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) *o, -1, -1, 0))
                        return -EIO;
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0))
                return -EIO;
        return 0;
}

static int create_ca(const char *dir, localpki *p) {
        _cleanup_free_ char *key_pem = NULL, *cert_path = NULL, *key_path = NULL;
        _cleanup_(bio_freep) BIO *b = NULL;
        time_t now = time(NULL);
        int r;

        if ((r = localpki_generate_key(&p->key)) < 0)
                return r;
        p->cert = X509_new();
        if (!p->cert)
                return -ENOMEM;
        if (!X509_set_version(p->cert, X509_VERSION_3) || (r = set_random_serial(p->cert)) < 0 ||
            (r = set_subject(p->cert, NULL, "imgbuild local CA")) < 0 ||
            !X509_set_issuer_name(p->cert, X509_get_subject_name(p->cert)) ||
            !ASN1_TIME_set(X509_getm_notBefore(p->cert), now - 60) ||
            !ASN1_TIME_set(X509_getm_notAfter(p->cert), now + CA_VALIDITY) ||
            !X509_set_pubkey(p->cert, p->key))
                return r < 0 ? r : -EIO;
        if ((r = add_ext(p->cert, p->cert, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
            (r = add_ext(p->cert, p->cert, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
            (r = add_ext(p->cert, p->cert, NID_subject_key_identifier, "hash")) < 0)
                return r;
        if (!X509_sign(p->cert, p->key, EVP_sha256()))
                return -EIO;

        if ((r = cert_to_pem(p->cert, &p->cert_pem)) < 0)
                return r;
        b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio_PrivateKey(b, p->key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        if ((r = bio_to_string(b, &key_pem)) < 0)
                return r;
        if (asprintf(&cert_path, "%s/ca.pem", dir) < 0 || asprintf(&key_path, "%s/ca.key", dir) < 0)
                r = -ENOMEM;
        /* Key first: a crash in between leaves no certificate without its key. */
        if (r >= 0)
                r = write_file_atomic(key_path, key_pem, strlen(key_pem), 0600, (uid_t) -1, (gid_t) -1);
        if (r >= 0)
                r = write_file_atomic(cert_path, p->cert_pem, strlen(p->cert_pem), 0644, (uid_t) -1,
                                      (gid_t) -1);
        explicit_bzero(key_pem, strlen(key_pem));
        return r;
}

static int load_ca(const char *cert_path, const char *key_path, localpki *p) {
        _cleanup_free_ char *key_pem = NULL;
        _cleanup_(bio_freep) BIO *cb = NULL, *kb = NULL;
        size_t key_len;
        int r;

        if ((r = read_file(cert_path, PEM_MAX, &p->cert_pem, NULL)) < 0 ||
            (r = read_file(key_path, PEM_MAX, &key_pem, &key_len)) < 0)
                return r;
        cb = BIO_new_mem_buf(p->cert_pem, -1);
        kb = BIO_new_mem_buf(key_pem, (int) key_len);
        if (cb && kb) {
                p->cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
                p->key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        }
        explicit_bzero(key_pem, key_len);
        if (!p->cert || !p->key || !crypto_cert_key_match(p->cert, p->key))
                return -EBADMSG;
        return 0;
}

int localpki_open(const char *dir, localpki **ret) {
        _cleanup_(localpki_freep) localpki *p = NULL;
        _cleanup_free_ char *cert_path = NULL, *key_path = NULL, *lock_path = NULL;
        _cleanup_close_ int lock_fd = -1;
        struct stat st;
        int r;

        if (asprintf(&cert_path, "%s/ca.pem", dir) < 0 || asprintf(&key_path, "%s/ca.key", dir) < 0)
                return -ENOMEM;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;

        /* One process decides whether to create the CA: two `imgbuild serve` on one directory
         * must not pair a key with the other's certificate. */
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        if (asprintf(&lock_path, "%s/.lock", dir) < 0)
                return -ENOMEM;
        lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
                return negative_errno();

        /* The key is written first: a key without a certificate is a creation that did not
         * finish (the key was never used) and is made again; a certificate without its key is
         * damage. */
        bool have_cert = stat(cert_path, &st) == 0, have_key = stat(key_path, &st) == 0;
        if (have_cert && !have_key)
                return -EBADMSG;
        r = have_cert ? load_ca(cert_path, key_path, p) : create_ca(dir, p);
        if (r < 0)
                return r;

        struct tm tm;
        if (!ASN1_TIME_to_tm(X509_get0_notAfter(p->cert), &tm))
                return -EBADMSG;
        p->not_after = timegm(&tm);
        *ret = TAKE_PTR(p);
        return 0;
}

void localpki_free(localpki *p) {
        if (!p)
                return;
        EVP_PKEY_free(p->key);
        X509_free(p->cert);
        free(p->cert_pem);
        free(p);
}

const char *localpki_ca_pem(const localpki *p) { return p->cert_pem; }
time_t localpki_ca_not_after(const localpki *p) { return p->not_after; }

/* A DNS name or a URI: both are IA5Strings. */
static int push_ia5(GENERAL_NAMES *gens, int type, const char *name) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!g || !s || !ASN1_STRING_set(s, name, -1)) {
                GENERAL_NAME_free(g);
                ASN1_IA5STRING_free(s);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(g, type, s);
        if (!sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        return 0;
}

static int push_ip(GENERAL_NAMES *gens, const char *ip) {
        ASN1_OCTET_STRING *o = a2i_IPADDRESS(ip);
        if (!o)
                return -EINVAL;
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!g) {
                ASN1_OCTET_STRING_free(o);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, o);
        if (!sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        return 0;
}

static int add_subject_alt_names(X509 *x, const localpki_request *req) {
        _cleanup_(gens_freep) GENERAL_NAMES *gens = GENERAL_NAMES_new();
        int r;

        if (!gens)
                return -ENOMEM;
        for (char **n = req->dns_names; n && *n; n++)
                if ((r = push_ia5(gens, GEN_DNS, *n)) < 0)
                        return r;
        for (char **n = req->ip_addresses; n && *n; n++)
                if ((r = push_ip(gens, *n)) < 0)
                        return r;
        for (char **n = req->uris; n && *n; n++)
                if ((r = push_ia5(gens, GEN_URI, *n)) < 0)
                        return r;
        if (sk_GENERAL_NAME_num(gens) == 0)
                return 0;
        return X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 ? 0 : -EIO;
}

/* "39:dd:2e:..." from the certificate's serial. */
static int serial_to_colon_hex(X509 *x, char **ret) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        uint8_t bytes[64];
        int n = bn ? BN_num_bytes(bn) : -1;

        if (n < 1 || n > (int) sizeof(bytes)) {
                BN_free(bn);
                return -EIO;
        }
        BN_bn2bin(bn, bytes);
        BN_free(bn);
        char *s = malloc((size_t) n * 3);
        if (!s)
                return -ENOMEM;
        hex_encode_sep(bytes, (size_t) n, ':', s);
        *ret = s;
        return 0;
}

int localpki_issue(localpki *p, const localpki_request *req, EVP_PKEY *public_key, time_t now,
                   localpki_cert *ret) {
        _cleanup_(x509_freep) X509 *x = X509_new();
        localpki_cert c = {};
        time_t not_after = now + req->ttl;
        int r = 0;

        if (!x)
                return -ENOMEM;
        if (not_after > p->not_after)
                not_after = p->not_after;
        if (!X509_set_version(x, X509_VERSION_3) || (r = set_random_serial(x)) < 0 ||
            (r = set_subject(x, req->organization, req->common_name)) < 0 ||
            !X509_set_issuer_name(x, X509_get_subject_name(p->cert)) ||
            !ASN1_TIME_set(X509_getm_notBefore(x), now - 30) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), not_after) || !X509_set_pubkey(x, public_key))
                return r < 0 ? r : -EIO;
        /* server_flag and client_flag (both Vault defaults): etcd peers use one cert both ways. */
        if ((r = add_ext(x, p->cert, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_ext(x, p->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyAgreement")) < 0 ||
            (r = add_ext(x, p->cert, NID_ext_key_usage, "serverAuth,clientAuth")) < 0 ||
            (r = add_ext(x, p->cert, NID_subject_key_identifier, "hash")) < 0 ||
            (r = add_ext(x, p->cert, NID_authority_key_identifier, "keyid:always")) < 0 ||
            (r = add_subject_alt_names(x, req)) < 0)
                return r;
        if (!X509_sign(x, p->key, EVP_sha256()))
                return -EIO;

        if ((r = cert_to_pem(x, &c.certificate)) < 0 || (r = serial_to_colon_hex(x, &c.serial_number)) < 0) {
                localpki_cert_done(&c);
                return r;
        }
        c.expiration = not_after;
        *ret = c;
        return 0;
}

void localpki_cert_done(localpki_cert *c) {
        free(c->certificate);
        free(c->serial_number);
        *c = (localpki_cert){};
}

int localpki_sign_csr(X509 *ca, EVP_PKEY *ca_key, X509_REQ *csr, time_t not_before, time_t not_after,
                     const char *key_usage, const char *ext_key_usage, char **ret_pem) {
        _cleanup_(x509_freep) X509 *x = X509_new();
        EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
        const ASN1_TIME *ca_end = X509_get0_notAfter(ca);
        int r = 0;

        if (!x)
                return -ENOMEM;
        if (!pub)
                return -EIO;
        if (!X509_set_version(x, X509_VERSION_3) || (r = set_random_serial(x)) < 0 ||
            !X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) ||
            !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
            !ASN1_TIME_set(X509_getm_notBefore(x), not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), not_after) || !X509_set_pubkey(x, pub))
                return r < 0 ? r : -EIO;
        /* never past the CA's own expiry */
        if (X509_cmp_time(ca_end, &not_after) < 0 && !X509_set1_notAfter(x, ca_end))
                return -EIO;
        if ((r = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (key_usage && (r = add_ext(x, ca, NID_key_usage, key_usage)) < 0) ||
            (ext_key_usage && (r = add_ext(x, ca, NID_ext_key_usage, ext_key_usage)) < 0) ||
            (r = add_ext(x, ca, NID_authority_key_identifier, "keyid")) < 0)
                return r;
        /* Ed25519/Ed448 CAs sign without a separate digest */
        int id = EVP_PKEY_get_id(ca_key);
        if (!X509_sign(x, ca_key, id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256()))
                return -EIO;
        return cert_to_pem(x, ret_pem);
}

int localpki_parse_csr(const char *pem, X509_REQ **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new_mem_buf(pem, -1);
        X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
        EVP_PKEY *key = req ? X509_REQ_get0_pubkey(req) : NULL;

        if (!key || X509_REQ_verify(req, key) != 1) {
                X509_REQ_free(req);
                return -EBADMSG;
        }
        *ret = req;
        return 0;
}

static int csr_common_name(X509_REQ *csr, char **ret) {
        X509_NAME *name = X509_REQ_get_subject_name(csr);
        int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        unsigned char *utf8 = NULL;

        if (i < 0) {
                *ret = NULL;
                return 0;
        }
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (len < 0)
                return -EBADMSG;
        /* An embedded NUL would let "a\0.evil" pass a name check as "a". */
        if (memchr(utf8, 0, (size_t) len)) {
                OPENSSL_free(utf8);
                return -EBADMSG;
        }
        *ret = strdup((char *) utf8);
        OPENSSL_free(utf8);
        return *ret ? 0 : -ENOMEM;
}

static int general_name_to_strv(const GENERAL_NAME *g, char ***dns, char ***ips) {
        int type;
        void *v = GENERAL_NAME_get0_value(g, &type);
        char text[INET6_ADDRSTRLEN];

        /* Only these two are strings (the others are names, OIDs, other structures). */
        if (type != GEN_DNS && type != GEN_IPADD)
                return 0; /* other name types are not carried over */
        const unsigned char *d = ASN1_STRING_get0_data(v);
        int len = ASN1_STRING_length(v);
        if (type == GEN_DNS) {
                if (memchr(d, 0, (size_t) len))
                        return -EBADMSG;
                _cleanup_free_ char *s = strndup((const char *) d, (size_t) len);
                return s ? strv_consume(dns, TAKE_PTR(s)) : -ENOMEM;
        }
        /* inet_ntop reads 4 or 16 bytes whatever the length: check it first. */
        if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, text, sizeof(text)))
                return -EBADMSG;
        return strv_push(ips, text);
}

int localpki_csr_names(X509_REQ *csr, char **ret_cn, char ***ret_dns, char ***ret_ips) {
        _cleanup_free_ char *cn = NULL;
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL;
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
        int r;

        r = csr_common_name(csr, &cn);
        if (r >= 0 && exts) {
                GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
                for (int i = 0; r >= 0 && gens && i < sk_GENERAL_NAME_num(gens); i++)
                        r = general_name_to_strv(sk_GENERAL_NAME_value(gens, i), &dns, &ips);
                GENERAL_NAMES_free(gens);
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (r < 0)
                return r;
        if ((!dns && !(dns = calloc(1, sizeof(char *)))) || (!ips && !(ips = calloc(1, sizeof(char *)))))
                return -ENOMEM;
        *ret_cn = TAKE_PTR(cn);
        *ret_dns = TAKE_PTR(dns);
        *ret_ips = TAKE_PTR(ips);
        return 0;
}
