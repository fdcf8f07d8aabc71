/* The stand-in's CSR controllers (kube-csr.c): the kubelet-client validation with upstream's
 * messages, the auto-approval rules (selfnodeclient / nodeclient, only with the RBAC binding that
 * grants them, never for another node's name from a node), and the signer (subject, usages,
 * lifetime, Failed on an invalid request). Requests are made here with OpenSSL. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "crypto.h"
#include "json.h"
#include "kube-csr.h"

static EVP_PKEY *key(void) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        CHECK(k);
        return k;
}

/* base64 of the PEM of a request for cn (may be NULL) and the orgs, with a SAN ext if san. */
static char *request(const char *cn, const char *const *orgs, const char *san) {
        EVP_PKEY *k = key();
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_REQ_get_subject_name(req);
        for (const char *const *o = orgs; o && *o; o++)
                CHECK(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) *o, -1, -1, 0));
        if (cn)
                CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0));
        if (san) {
                STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
                CHECK(e);
                sk_X509_EXTENSION_push(exts, e);
                CHECK(X509_REQ_add_extensions(req, exts));
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        }
        CHECK(X509_REQ_set_pubkey(req, k));
        CHECK(X509_REQ_sign(req, k, EVP_sha256()));
        BIO *b = BIO_new(BIO_s_mem());
        CHECK(PEM_write_bio_X509_REQ(b, req));
        char *data;
        long n = BIO_get_mem_data(b, &data);
        char *out = base64_encode(data, (size_t) n);
        BIO_free(b);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
        return out;
}

static const char *const nodes_org[] = { "system:nodes", NULL };

static json_t *csr(const char *request_b64, const char *signer, json_t *usages, const char *user, const char *group) {
        return json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:o,s:s,s:[s,s]},s:{}}", "kind", "CertificateSigningRequest",
                         "apiVersion", "certificates.k8s.io/v1", "metadata", "name", "c", "spec", "request", request_b64,
                         "signerName", signer, "usages", usages, "username", user, "groups", group,
                         "system:authenticated", "status");
}

static json_t *usages_full(void) { return json_pack("[s,s,s]", "digital signature", "key encipherment", "client auth"); }

static json_t *crb(const char *kind, const char *subject, const char *role) {
        return json_pack("{s:{s:s},s:[{s:s,s:s}],s:{s:s,s:s,s:s}}", "metadata", "name", "b", "subjects", "kind", kind,
                         "name", subject, "roleRef", "kind", "ClusterRole", "name", role, "apiGroup",
                         "rbac.authorization.k8s.io");
}

#define NODECLIENT "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
#define SELFNODECLIENT "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"

static void test_validate(void) {
        static const char *const two_orgs[] = { "system:nodes", "extra", NULL };
        static const char *const wrong_org[] = { "system:masters", NULL };
        struct {
                const char *cn;
                const char *const *orgs;
                const char *san;
                json_t *usages;
                const char *why;
        } cases[] = {
                { "system:node:a", nodes_org, NULL, usages_full(), NULL },
                { "system:node:a", nodes_org, NULL, json_pack("[s,s]", "client auth", "digital signature"), NULL },
                { "system:node:a", nodes_org, NULL, json_pack("[s,s,s,s]", "client auth", "digital signature", "client auth", "key encipherment"), NULL },
                { "system:node:a", wrong_org, NULL, usages_full(), "subject organization is not system:nodes" },
                { "system:node:a", two_orgs, NULL, usages_full(), "subject organization is not system:nodes" },
                { "system:node:a", NULL, NULL, usages_full(), "subject organization is not system:nodes" },
                { "system:node:a", nodes_org, "DNS:a.example", usages_full(), "DNS subjectAltNames are not allowed" },
                { "system:node:a", nodes_org, "email:a@example.com", usages_full(), "Email subjectAltNames are not allowed" },
                { "system:node:a", nodes_org, "IP:10.0.0.1", usages_full(), "IP subjectAltNames are not allowed" },
                { "system:node:a", nodes_org, "URI:spiffe://a", usages_full(), "URI subjectAltNames are not allowed" },
                { "a", nodes_org, NULL, usages_full(), "subject common name does not begin with system:node:" },
                { NULL, nodes_org, NULL, usages_full(), "subject common name does not begin with system:node:" },
                { "system:node:a", nodes_org, NULL, json_pack("[s,s]", "digital signature", "server auth"),
                  "usages did not match [client auth digital signature key encipherment]" },
                { "system:node:a", nodes_org, NULL, json_pack("[s]", "client auth"),
                  "usages did not match [client auth digital signature key encipherment]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *req = request(cases[i].cn, cases[i].orgs, cases[i].san);
                kube_csr_request r = {};
                _cleanup_buf_ buf why = BUF_INIT(512);
                CHECK_OK(kube_csr_parse_request(req, &r, NULL));
                int k = kube_csr_validate_kubelet_client(&r, cases[i].usages, &why);
                if (!cases[i].why)
                        CHECK(k == 0);
                else {
                        CHECK(k == -EINVAL);
                        CHECK_STREQ(why.data, cases[i].why);
                }
                kube_csr_request_done(&r);
                json_decref(cases[i].usages);
        }
        /* not a request: not base64, not PEM, a certificate instead, a broken signature */
        kube_csr_request r = {};
        CHECK(kube_csr_parse_request("!!", &r, NULL) == -EBADMSG);
        CHECK(kube_csr_parse_request("aGVsbG8=", &r, NULL) == -EBADMSG);
        CHECK(kube_csr_parse_request(NULL, &r, NULL) == -EBADMSG);
        _cleanup_free_ char *good = request("system:node:a", nodes_org, NULL);
        uint8_t *pem = NULL;
        size_t len;
        CHECK_OK(base64_decode(good, &pem, &len));
        char *end = strstr((char *) pem, "-----END");
        CHECK(end);
        /* The signature ends the DER: change its second-to-last base64 character. (Not the last:
         * with padding, its low bits are not part of any byte, and a change there may decode to
         * the same DER.) */
        char *p = end - 1;
        while (*p == '\n' || *p == '=')
                p--;
        p--;
        if (*p == '\n')
                p--;
        *p = *p == 'A' ? 'B' : 'A';
        _cleanup_free_ char *tampered = base64_encode(pem, len);
        CHECK(kube_csr_parse_request(tampered, &r, NULL) == -EBADMSG);
        free(pem);
}

static void test_approve(void) {
        time_t now = 1700000000;
        _cleanup_free_ char *w1 = request("system:node:w1", nodes_org, NULL);
        _cleanup_free_ char *n1 = request("system:node:n1", nodes_org, NULL);
        _cleanup_free_ char *n9 = request("system:node:n9", nodes_org, NULL);
        _cleanup_free_ char *bad = request("system:node:w1", NULL, NULL);
        json_t *none = json_array();
        json_t *boot = json_pack("[o]", crb("Group", "system:bootstrappers", NODECLIENT));
        json_t *self = json_pack("[o]", crb("Group", "system:nodes", SELFNODECLIENT));
        json_t *both = json_pack("[o,o]", crb("Group", "system:bootstrappers", NODECLIENT),
                                 crb("Group", "system:nodes", SELFNODECLIENT));
        json_t *user = json_pack("[o]", crb("User", "system:bootstrap:abcdef", NODECLIENT));
        json_t *admin = json_pack("[o]", crb("Group", "system:bootstrappers", "cluster-admin"));
        json_t *other_role = json_pack("[o]", crb("Group", "system:bootstrappers", "system:node-bootstrapper"));
        const char *signer = KUBE_SIGNER_KUBELET_CLIENT;
        json_t *c;

        /* a bootstrapper: only with a binding to nodeclient (or cluster-admin) for it */
        c = csr(w1, signer, usages_full(), "system:bootstrap:abcdef", "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, none, now) == 0);
        CHECK(kube_csr_auto_approve(c, self, now) == 0);
        CHECK(kube_csr_auto_approve(c, other_role, now) == 0);
        CHECK(!kube_csr_condition(c, "Approved"));
        CHECK(kube_csr_auto_approve(c, boot, now) == 1);
        CHECK(kube_csr_condition(c, "Approved"));
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(json_path(c, "status.conditions"), 0), "reason")), "AutoApproved");
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(json_path(c, "status.conditions"), 0), "message")),
                    "Auto approving kubelet client certificate after SubjectAccessReview.");
        /* decided already: left alone */
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        CHECK(json_array_size(json_path(c, "status.conditions")) == 1);
        json_decref(c);
        c = csr(w1, signer, usages_full(), "system:bootstrap:abcdef", "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, user, now) == 1);
        json_decref(c);
        c = csr(w1, signer, usages_full(), "system:bootstrap:zzzzzz", "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, user, now) == 0); /* bound to another user */
        CHECK(kube_csr_auto_approve(c, admin, now) == 1);
        json_decref(c);
        /* a bootstrapper's request that is no kubelet client request, or for another signer */
        c = csr(bad, signer, usages_full(), "system:bootstrap:abcdef", "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        json_decref(c);
        c = csr(w1, "kubernetes.io/kube-apiserver-client", usages_full(), "system:bootstrap:abcdef", "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        json_decref(c);
        c = csr(w1, signer, json_pack("[s,s]", "digital signature", "server auth"), "system:bootstrap:abcdef",
                "system:bootstrappers");
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        json_decref(c);

        /* a node renewing: selfnodeclient for system:nodes */
        c = csr(n1, signer, usages_full(), "system:node:n1", "system:nodes");
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        CHECK(kube_csr_auto_approve(c, self, now) == 1);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(json_path(c, "status.conditions"), 0), "message")),
                    "Auto approving self kubelet client certificate after SubjectAccessReview.");
        json_decref(c);
        /* a node asking for another node's name: not self, and nodes are not bound to nodeclient */
        c = csr(n9, signer, usages_full(), "system:node:n1", "system:nodes");
        CHECK(kube_csr_auto_approve(c, self, now) == 0);
        CHECK(kube_csr_auto_approve(c, both, now) == 0);
        CHECK(!kube_csr_condition(c, "Approved"));
        json_decref(c);
        /* system:masters may do anything (upstream's privileged group) */
        c = csr(n9, signer, usages_full(), "kubernetes-admin", "system:masters");
        CHECK(kube_csr_auto_approve(c, none, now) == 1);
        json_decref(c);
        /* a denied one is never approved */
        c = csr(w1, signer, usages_full(), "system:bootstrap:abcdef", "system:bootstrappers");
        json_object_set_new(json_object_get(c, "status"), "conditions",
                            json_pack("[{s:s,s:s}]", "type", "Denied", "status", "True"));
        CHECK(kube_csr_auto_approve(c, boot, now) == 0);
        CHECK(!kube_csr_condition(c, "Approved"));
        json_decref(c);

        json_decref(none);
        json_decref(boot);
        json_decref(self);
        json_decref(both);
        json_decref(user);
        json_decref(admin);
        json_decref(other_role);
}

static void test_sign(void) {
        time_t now = time(NULL);
        EVP_PKEY *ca_key = key();
        X509 *ca = X509_new();
        X509_NAME *cn = X509_get_subject_name(ca);
        X509V3_CTX ctx;
        CHECK(X509_NAME_add_entry_by_txt(cn, "CN", MBSTRING_UTF8, (const unsigned char *) "test-ca", -1, -1, 0));
        CHECK(X509_set_issuer_name(ca, cn));
        X509_set_version(ca, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
        X509_gmtime_adj(X509_getm_notBefore(ca), -3600);
        X509_gmtime_adj(X509_getm_notAfter(ca), 30 * 86400);
        X509_set_pubkey(ca, ca_key);
        X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        X509_add_ext(ca, e, -1);
        X509_EXTENSION_free(e);
        CHECK(X509_sign(ca, ca_key, EVP_sha256()));
        _cleanup_free_ char *w1 = request("system:node:w1", nodes_org, NULL);
        _cleanup_free_ char *ip = request("system:node:w1", nodes_org, "IP:10.0.0.1");
        _cleanup_buf_ buf err = BUF_INIT(512);
        json_t *approved = json_pack("[{s:s,s:s}]", "type", "Approved", "status", "True");

        /* not approved: nothing */
        json_t *c = csr(w1, KUBE_SIGNER_KUBELET_CLIENT, json_pack("[s,s]", "digital signature", "client auth"),
                        "system:bootstrap:abcdef", "system:bootstrappers");
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 0);
        json_object_set(json_object_get(c, "status"), "conditions", approved);
        json_object_set_new(json_object_get(c, "spec"), "expirationSeconds", json_integer(3600));
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 1);
        const char *b64 = json_path_string(c, "status.certificate");
        CHECK(b64);
        uint8_t *pem = NULL;
        CHECK_OK(base64_decode(b64, &pem, NULL));
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        CHECK(x);
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
        CHECK_STREQ(subject, "/O=system:nodes/CN=system:node:w1");
        CHECK(X509_verify(x, ca_key) == 1);
        CHECK(X509_get_extended_key_usage(x) == XKU_SSL_CLIENT);
        CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE); /* no key encipherment asked for */
        /* the requested hour, backdated five minutes */
        int days, secs;
        CHECK(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
        CHECK(days == 0 && secs == 3600 + KUBE_CSR_BACKDATE);
        X509_free(x);
        BIO_free(b);
        free(pem);
        /* issued: nothing more */
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 0);
        json_decref(c);

        /* approved but invalid: Failed with the validation message, no certificate */
        c = csr(ip, KUBE_SIGNER_KUBELET_CLIENT, usages_full(), "kubernetes-admin", "system:masters");
        json_object_set(json_object_get(c, "status"), "conditions", approved);
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 1);
        CHECK(kube_csr_condition(c, "Failed"));
        CHECK(!json_path(c, "status.certificate"));
        json_t *failed = json_array_get(json_path(c, "status.conditions"), 1);
        CHECK_STREQ(json_string_value(json_object_get(failed, "reason")), "SignerValidationFailure");
        CHECK_STREQ(json_string_value(json_object_get(failed, "message")), "IP subjectAltNames are not allowed");
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 0); /* failed stays failed */
        json_decref(c);
        /* another signer: not ours to sign */
        c = csr(w1, "kubernetes.io/kube-apiserver-client", usages_full(), "kubernetes-admin", "system:masters");
        json_object_set(json_object_get(c, "status"), "conditions", approved);
        CHECK(kube_csr_sign(c, ca, ca_key, 0, now, &err) == 0);
        json_decref(c);

        json_decref(approved);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
}

int main(void) {
        test_validate();
        test_approve();
        test_sign();
        return 0;
}
