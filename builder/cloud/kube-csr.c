/* CSR approval and signing rules of the API stand-in (kube-csr.h). */
#include "kube-csr.h"

#include <openssl/x509v3.h>
#include <stdio.h>

#include "crypto.h"
#include "json.h"
#include "kube-store.h"
#include "localpki.h"
#include "strv.h"

#define REQUEST_MAX (64u * 1024u)

void kube_csr_request_done(kube_csr_request *r) {
        X509_REQ_free(r->req);
        free(r->cn);
        strv_free(r->orgs);
        *r = (kube_csr_request){};
}

/* Every entry of nid in name as UTF-8 text, appended to *list. Returns 0, -EBADMSG (not text, or
 * an embedded NUL), -ENOMEM. */
static int name_entries(X509_NAME *name, int nid, char ***list) {
        for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
             i = X509_NAME_get_index_by_NID(name, nid, i)) {
                unsigned char *utf8 = NULL;
                int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
                if (n < 0)
                        return -EBADMSG;
                if (memchr(utf8, 0, (size_t) n)) {
                        OPENSSL_free(utf8);
                        return -EBADMSG;
                }
                char *s = strndup((const char *) utf8, (size_t) n);
                OPENSSL_free(utf8);
                if (!s || strv_consume(list, s) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int kube_csr_parse_request(const char *request_b64, kube_csr_request *ret, buf *err) {
        _cleanup_(kube_csr_request_done) kube_csr_request r = {};
        _cleanup_free_ uint8_t *pem = NULL;
        _cleanup_strv_free_ char **cns = NULL;
        size_t len = 0;
        int k;

        if (!request_b64 || base64_decode(request_b64, &pem, &len) < 0) {
                if (err)
                        buf_printf(err, "spec.request is not base64");
                return -EBADMSG;
        }
        if (len > REQUEST_MAX || memchr(pem, 0, len) || !strstr((char *) pem, "-----BEGIN CERTIFICATE REQUEST-----") ||
            localpki_parse_csr((char *) pem, &r.req) < 0) {
                /* upstream's ParseCSR wording */
                if (err)
                        buf_printf(err, "PEM block type must be CERTIFICATE REQUEST (with a valid, self-signed request)");
                return -EBADMSG;
        }
        X509_NAME *subject = X509_REQ_get_subject_name(r.req);
        k = name_entries(subject, NID_commonName, &cns);
        if (k >= 0)
                k = name_entries(subject, NID_organizationName, &r.orgs);
        if (k == -EBADMSG && err)
                buf_printf(err, "the request's subject is not text");
        if (k < 0)
                return k;
        if (!r.orgs && !(r.orgs = calloc(1, sizeof(char *))))
                return -ENOMEM;
        if (cns && !(r.cn = strdup(cns[0])))
                return -ENOMEM;

        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(r.req);
        GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                switch (sk_GENERAL_NAME_value(gens, i)->type) {
                case GEN_DNS:
                        r.dns_sans = true;
                        break;
                case GEN_EMAIL:
                        r.email_sans = true;
                        break;
                case GEN_IPADD:
                        r.ip_sans = true;
                        break;
                case GEN_URI:
                        r.uri_sans = true;
                        break;
                default:
                        break; /* Go's x509 ignores other name types too */
                }
        }
        GENERAL_NAMES_free(gens);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        *ret = r;
        r = (kube_csr_request){};
        return 0;
}

static bool usages_are(json_t *usages, const char *const *want, size_t n_want) {
        size_t i, n = 0;
        json_t *u;
        bool seen[8] = {};
        if (!json_is_array(usages))
                return false;
        /* a set: duplicates collapse, order does not matter */
        json_array_foreach(usages, i, u) {
                const char *s = json_string_value(u);
                size_t j;
                if (!s)
                        return false;
                for (j = 0; j < n_want && !streq(s, want[j]); j++)
                        ;
                if (j == n_want)
                        return false;
                if (!seen[j]) {
                        seen[j] = true;
                        n++;
                }
        }
        return n == n_want;
}

int kube_csr_validate_kubelet_client(const kube_csr_request *r, json_t *usages, buf *why) {
        static const char *const full[] = { "digital signature", "key encipherment", "client auth" };
        static const char *const no_rsa[] = { "digital signature", "client auth" };
        const char *m = NULL;

        if (strv_length(r->orgs) != 1 || !streq(r->orgs[0], "system:nodes"))
                m = "subject organization is not system:nodes";
        else if (r->dns_sans)
                m = "DNS subjectAltNames are not allowed";
        else if (r->email_sans)
                m = "Email subjectAltNames are not allowed";
        else if (r->ip_sans)
                m = "IP subjectAltNames are not allowed";
        else if (r->uri_sans)
                m = "URI subjectAltNames are not allowed";
        else if (!r->cn || !startswith(r->cn, "system:node:"))
                m = "subject common name does not begin with system:node:";
        else if (!usages_are(usages, full, ELEMENTSOF(full)) && !usages_are(usages, no_rsa, ELEMENTSOF(no_rsa)))
                /* Go's %v of the sorted set */
                m = "usages did not match [client auth digital signature key encipherment]";
        if (!m)
                return 0;
        if (why)
                buf_puts(why, m);
        return -EINVAL;
}

static bool json_strings_contain(json_t *list, const char *s) {
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
                if (json_is_string(v) && streq(json_string_value(v), s))
                        return true;
        return false;
}

bool kube_csr_rbac_allows(json_t *crbs, const char *user, json_t *groups, const char *subresource) {
        char role[128];
        size_t i;
        json_t *crb;

        if (!user)
                return false;
        if (json_strings_contain(groups, "system:masters"))
                return true;
        snprintf(role, sizeof(role), "system:certificates.k8s.io:certificatesigningrequests:%s", subresource);
        json_array_foreach(crbs, i, crb) {
                const char *kind = json_path_string(crb, "roleRef.kind");
                const char *name = json_path_string(crb, "roleRef.name");
                const char *group = json_path_string(crb, "roleRef.apiGroup");
                size_t j;
                json_t *s;
                if (!kind || !streq(kind, "ClusterRole") || !name || (group && !streq(group, "rbac.authorization.k8s.io")) ||
                    !(streq(name, role) || streq(name, "cluster-admin")))
                        continue;
                json_array_foreach(json_object_get(crb, "subjects"), j, s) {
                        const char *sk = json_string_value(json_object_get(s, "kind"));
                        const char *sn = json_string_value(json_object_get(s, "name"));
                        const char *sns = json_string_value(json_object_get(s, "namespace"));
                        if (!sk || !sn)
                                continue;
                        if (streq(sk, "User") && streq(sn, user))
                                return true;
                        if (streq(sk, "Group") && json_strings_contain(groups, sn))
                                return true;
                        if (streq(sk, "ServiceAccount") && sns) {
                                char sa[512];
                                snprintf(sa, sizeof(sa), "system:serviceaccount:%s:%s", sns, sn);
                                if (streq(sa, user))
                                        return true;
                        }
                }
        }
        return false;
}

bool kube_csr_condition(json_t *csr, const char *type) {
        size_t i;
        json_t *c;
        json_array_foreach(json_path(csr, "status.conditions"), i, c) {
                const char *t = json_string_value(json_object_get(c, "type"));
                const char *s = json_string_value(json_object_get(c, "status"));
                if (t && streq(t, type) && s && streq(s, "True"))
                        return true;
        }
        return false;
}

static int append_condition(json_t *csr, const char *type, const char *reason, const char *message,
                            time_t now) {
        char ts[32];
        json_t *status = json_object_get(csr, "status");
        kube_format_time(now, ts);
        if (!json_is_object(status)) {
                status = json_object();
                if (!status || json_object_set_new(csr, "status", status) < 0)
                        return -ENOMEM;
        }
        json_t *conds = json_object_get(status, "conditions");
        if (!json_is_array(conds)) {
                conds = json_array();
                if (!conds || json_object_set_new(status, "conditions", conds) < 0)
                        return -ENOMEM;
        }
        json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status", "True", "reason", reason,
                              "message", message, "lastUpdateTime", ts, "lastTransitionTime", ts);
        return c && json_array_append_new(conds, c) == 0 ? 0 : -ENOMEM;
}

static bool has_certificate(json_t *csr) {
        const char *cert = json_path_string(csr, "status.certificate");
        return cert && *cert;
}

static bool is_kubelet_client_signer(json_t *csr) {
        const char *signer = json_path_string(csr, "spec.signerName");
        return signer && streq(signer, KUBE_SIGNER_KUBELET_CLIENT);
}

int kube_csr_auto_approve(json_t *csr, json_t *crbs, time_t now) {
        _cleanup_(kube_csr_request_done) kube_csr_request r = {};
        const char *user = json_path_string(csr, "spec.username");
        json_t *groups = json_path(csr, "spec.groups");
        int k;

        if (has_certificate(csr) || kube_csr_condition(csr, "Approved") || kube_csr_condition(csr, "Denied") ||
            !is_kubelet_client_signer(csr))
                return 0;
        k = kube_csr_parse_request(json_path_string(csr, "spec.request"), &r, NULL);
        if (k == -ENOMEM)
                return k;
        if (k < 0 || kube_csr_validate_kubelet_client(&r, json_path(csr, "spec.usages"), NULL) < 0)
                return 0;
        /* the recognizers in upstream's order: self first, then any node client */
        if (user && streq(user, r.cn) && kube_csr_rbac_allows(crbs, user, groups, "selfnodeclient")) {
                k = append_condition(csr, "Approved", "AutoApproved",
                                     "Auto approving self kubelet client certificate after SubjectAccessReview.", now);
                return k < 0 ? k : 1;
        }
        if (kube_csr_rbac_allows(crbs, user, groups, "nodeclient")) {
                k = append_condition(csr, "Approved", "AutoApproved",
                                     "Auto approving kubelet client certificate after SubjectAccessReview.", now);
                return k < 0 ? k : 1;
        }
        return 0;
}

/* The key usage and extended key usage extensions for spec.usages (the kubelet client set). */
static void usage_extensions(json_t *usages, char key_usage[128], char ext_usage[64]) {
        snprintf(key_usage, 128, "critical");
        ext_usage[0] = 0;
        if (json_strings_contain(usages, "digital signature"))
                strcat(key_usage, ",digitalSignature");
        if (json_strings_contain(usages, "key encipherment"))
                strcat(key_usage, ",keyEncipherment");
        if (json_strings_contain(usages, "client auth"))
                strcat(ext_usage, "clientAuth");
}

int kube_csr_sign(json_t *csr, X509 *ca, EVP_PKEY *ca_key, long duration_s, time_t now, buf *err) {
        _cleanup_(kube_csr_request_done) kube_csr_request r = {};
        _cleanup_buf_ buf why = BUF_INIT(512);
        _cleanup_free_ char *pem = NULL, *b64 = NULL;
        json_t *usages = json_path(csr, "spec.usages");
        char key_usage[128], ext_usage[64];
        int64_t exp;
        int k;

        if (!kube_csr_condition(csr, "Approved") || kube_csr_condition(csr, "Failed") || has_certificate(csr) ||
            !is_kubelet_client_signer(csr))
                return 0;
        k = kube_csr_parse_request(json_path_string(csr, "spec.request"), &r, &why);
        if (k == -ENOMEM)
                return k;
        if (k >= 0)
                k = kube_csr_validate_kubelet_client(&r, usages, &why);
        if (k < 0) {
                k = append_condition(csr, "Failed", "SignerValidationFailure", why.len ? why.data : "invalid request", now);
                return k < 0 ? k : 1;
        }
        if (duration_s <= 0)
                duration_s = KUBE_CSR_DEFAULT_DURATION;
        /* spec.expirationSeconds shortens it (the API refuses values under 600) */
        if (json_path_i64(csr, "spec.expirationSeconds", &exp) == 0 && exp >= 600 && exp < duration_s)
                duration_s = (long) exp;
        usage_extensions(usages, key_usage, ext_usage);
        k = localpki_sign_csr(ca, ca_key, r.req, now - KUBE_CSR_BACKDATE, now + duration_s, key_usage,
                              *ext_usage ? ext_usage : NULL, &pem);
        if (k < 0) {
                if (err)
                        buf_printf(err, "signing %s: %s", strempty(json_path_string(csr, "metadata.name")),
                                   k == -ENOMEM ? "out of memory" : "OpenSSL failed");
                return k;
        }
        b64 = base64_encode(pem, strlen(pem));
        json_t *status = json_object_get(csr, "status");
        if (!b64 || !json_is_object(status) || json_object_set_new(status, "certificate", json_string(b64)) < 0)
                return -ENOMEM;
        return 1;
}
