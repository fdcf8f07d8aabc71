/* Fuzz the stand-in's CSR controllers on untrusted CSR objects (kube-csr.c): the input is a
 * CertificateSigningRequest as JSON; its spec.request goes through base64, PEM and X.509 request
 * parsing, the kubelet-client validation, the auto-approver (with a fixed set of bindings) and
 * the signer (with a CA made once). Any input either leaves the object alone or changes it in the
 * ways those allow: an Approved condition, a certificate, or a Failed condition. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "kube-csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;
static EVP_PKEY *ca_key;

static void make_ca(void) {
        ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ca = X509_new();
        if (!ca_key || !ca)
                abort();
        X509_NAME *n = X509_get_subject_name(ca);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *) "fuzz-ca", -1, -1, 0);
        X509_set_issuer_name(ca, n);
        X509_gmtime_adj(X509_getm_notBefore(ca), 0);
        X509_gmtime_adj(X509_getm_notAfter(ca), 86400);
        X509_set_pubkey(ca, ca_key);
        if (!X509_sign(ca, ca_key, EVP_sha256()))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *csr = NULL;
        if (!ca)
                make_ca();
        if (json_parse((const char *) data, size, &csr, NULL) < 0)
                return 0;
        json_t *crbs = json_pack("[{s:{s:s,s:s},s:[{s:s,s:s}]},{s:{s:s,s:s},s:[{s:s,s:s}]}]", "roleRef", "kind",
                                 "ClusterRole", "name", "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                                 "subjects", "kind", "Group", "name", "system:bootstrappers", "roleRef", "kind",
                                 "ClusterRole", "name", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                                 "subjects", "kind", "Group", "name", "system:nodes");
        kube_csr_request r = {};
        if (kube_csr_parse_request(json_string_value(json_path(csr, "spec.request")), &r, NULL) == 0) {
                json_t *usages = json_path(csr, "spec.usages");
                (void) kube_csr_validate_kubelet_client(&r, usages, NULL);
                kube_csr_request_done(&r);
        }
        bool had_cert = json_path_string(csr, "status.certificate") != NULL;
        int a = kube_csr_auto_approve(csr, crbs, 1700000000);
        if (a < 0 && a != -ENOMEM)
                abort();
        if (a == 1 && !kube_csr_condition(csr, "Approved"))
                abort();
        int s = kube_csr_sign(csr, ca, ca_key, 3600, 1700000000, NULL);
        if (s < 0 && s != -ENOMEM && s != -EIO)
                abort();
        /* a certificate only ever comes from an approved, valid kubelet client request */
        if (s == 1 && !had_cert && json_path_string(csr, "status.certificate") &&
            (!kube_csr_condition(csr, "Approved") || kube_csr_condition(csr, "Failed")))
                abort();
        json_decref(crbs);
        json_decref(csr);
        return 0;
}
