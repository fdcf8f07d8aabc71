/* kube-apiserver's flags, their validation, and the serving loop of the API stand-in
 * (kube-apiserver.h). Flag names, defaults and messages follow upstream's
 * cmd/kube-apiserver/app/options (validation.go) and k8s.io/apiserver's options. */
#include "kube-apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "etcd-client.h"
#include "fs.h"
#include "http-server.h"
#include "kube-api.h"
#include "log.h"
#include "strv.h"
#include "time-util.h"

#define PEM_MAX (1u << 20)

typedef enum { F_STRING, F_LIST, F_CSV, F_BOOL, F_INT, F_IGNORED, F_IGNORED_BOOL } flag_type;

typedef struct flag_def {
        const char *name;
        flag_type type;
        size_t offset;
} flag_def;

#define S(n, field) { n, F_STRING, offsetof(kube_apiserver_flags, field) }
#define L(n, field) { n, F_LIST, offsetof(kube_apiserver_flags, field) }
#define C(n, field) { n, F_CSV, offsetof(kube_apiserver_flags, field) }
#define B(n, field) { n, F_BOOL, offsetof(kube_apiserver_flags, field) }
#define I(n, field) { n, F_INT, offsetof(kube_apiserver_flags, field) }
#define IGN(n) { n, F_IGNORED, 0 }
#define IGNB(n) { n, F_IGNORED_BOOL, 0 }

static const flag_def flags[] = {
        L("etcd-servers", etcd_servers),
        S("etcd-prefix", etcd_prefix),
        S("etcd-cafile", etcd_cafile),
        S("etcd-certfile", etcd_certfile),
        S("etcd-keyfile", etcd_keyfile),
        S("tls-cert-file", tls_cert_file),
        S("tls-private-key-file", tls_private_key_file),
        S("client-ca-file", client_ca_file),
        I("secure-port", secure_port),
        S("bind-address", bind_address),
        L("service-account-key-file", service_account_key_files),
        S("service-account-signing-key-file", service_account_signing_key_file),
        L("service-account-issuer", service_account_issuers),
        C("service-cluster-ip-range", service_cluster_ip_ranges),
        B("enable-bootstrap-token-auth", enable_bootstrap_token_auth),
        B("anonymous-auth", anonymous_auth),
        L("authorization-mode", authorization_mode),
        /* kube-controller-manager's, for the CSR signer the stand-in runs */
        S("cluster-signing-cert-file", cluster_signing_cert_file),
        S("cluster-signing-key-file", cluster_signing_key_file),
        /* Upstream flags a control plane commonly sets that the stand-in accepts and ignores
         * (it has no admission chain, kubelet client, aggregation layer, audit log, encryption
         * at rest or service-account token issuing yet). */
        IGN("advertise-address"), IGNB("allow-privileged"), IGN("apiserver-count"),
        IGN("api-audiences"), IGN("audit-log-maxage"), IGN("audit-log-maxbackup"),
        IGN("audit-log-maxsize"), IGN("audit-log-path"), IGN("audit-policy-file"),
        IGN("enable-admission-plugins"), IGN("disable-admission-plugins"),
        IGN("encryption-provider-config"), IGN("egress-selector-config-file"), IGN("event-ttl"),
        IGN("kubelet-certificate-authority"), IGN("kubelet-client-certificate"),
        IGN("kubelet-client-key"), IGN("kubelet-preferred-address-types"),
        IGN("proxy-client-cert-file"), IGN("proxy-client-key-file"),
        IGN("requestheader-allowed-names"), IGN("requestheader-client-ca-file"),
        IGN("requestheader-extra-headers-prefix"), IGN("requestheader-group-headers"),
        IGN("requestheader-username-headers"), IGN("runtime-config"),
        IGN("service-node-port-range"), IGN("storage-backend"), IGN("v"), IGNB("logtostderr"),
        IGNB("profiling"), IGNB("enable-aggregator-routing"),
};

void kube_apiserver_flags_done(kube_apiserver_flags *f) {
        strv_free(f->etcd_servers);
        free(f->etcd_prefix);
        free(f->etcd_cafile);
        free(f->etcd_certfile);
        free(f->etcd_keyfile);
        free(f->tls_cert_file);
        free(f->tls_private_key_file);
        free(f->client_ca_file);
        free(f->bind_address);
        strv_free(f->service_account_key_files);
        free(f->service_account_signing_key_file);
        strv_free(f->service_account_issuers);
        strv_free(f->service_cluster_ip_ranges);
        strv_free(f->authorization_mode);
        free(f->cluster_signing_cert_file);
        free(f->cluster_signing_key_file);
        strv_free(f->ignored);
        *f = (kube_apiserver_flags){};
}

static int parse_bool(const char *v, bool *ret) {
        /* Go's strconv.ParseBool */
        static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
        static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                if (streq(v, t[i])) {
                        *ret = true;
                        return 0;
                }
                if (streq(v, f[i])) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int set_flag(kube_apiserver_flags *f, const flag_def *d, const char *value, buf *err) {
        void *field = (char *) f + d->offset;
        switch (d->type) {
        case F_STRING: {
                char **s = field;
                free(*s);
                *s = strdup(value);
                return *s ? 0 : -ENOMEM;
        }
        case F_CSV:
                /* a plain string flag upstream, split on commas later: repeating replaces */
                strv_free(*(char ***) field);
                *(char ***) field = NULL;
                __attribute__((fallthrough));
        case F_LIST: {
                /* pflag's StringSlice: comma-separated, and repeating the flag appends */
                _cleanup_(strv_freep) char **parts = NULL;
                if (strv_split(value, ",", &parts) < 0)
                        return -ENOMEM;
                for (char **p = parts; p && *p; p++)
                        if (**p && strv_push((char ***) field, *p) < 0)
                                return -ENOMEM;
                return 0;
        }
        case F_BOOL:
        case F_IGNORED_BOOL: {
                bool b;
                if (parse_bool(value, &b) < 0) {
                        buf_printf(err, "invalid argument \"%s\" for \"--%s\" flag: strconv.ParseBool: parsing \"%s\": invalid syntax",
                                   value, d->name, value);
                        return -EINVAL;
                }
                if (d->type == F_BOOL)
                        *(bool *) field = b;
                return 0;
        }
        case F_INT: {
                char *end;
                errno = 0;
                long n = strtol(value, &end, 0);
                if (errno || end == value || *end || n < INT_MIN || n > INT_MAX) {
                        buf_printf(err, "invalid argument \"%s\" for \"--%s\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
                                   value, d->name, value);
                        return -EINVAL;
                }
                *(int *) field = (int) n;
                return 0;
        }
        case F_IGNORED:
                return 0;
        }
        return -EINVAL;
}

int kube_apiserver_parse_flags(int argc, char **argv, kube_apiserver_flags *ret, buf *err) {
        _cleanup_(kube_apiserver_flags_done) kube_apiserver_flags f = {
                .secure_port = 6443,
                .anonymous_auth = true,
        };
        int r;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *name;
                if (streq(a, "-h") || streq(a, "--help")) {
                        f.help = true;
                        continue;
                }
                /* pflag: "--name", and "-v" style shorthand only for -v */
                if (!(name = startswith(a, "--")) || !*name) {
                        if (startswith(a, "-v") && (a[2] == 0 || a[2] == '='))
                                name = a + 1; /* "v" or "v=2" */
                        else {
                                if (a[0] == '-')
                                        buf_printf(err, "unknown shorthand flag: '%c' in %s", a[1], a);
                                else
                                        buf_printf(err, "unknown command \"%s\" for \"kube-apiserver\"", a);
                                return -EINVAL;
                        }
                }
                const char *eq = strchr(name, '=');
                _cleanup_free_ char *n = eq ? strndup(name, (size_t) (eq - name)) : strdup(name);
                if (!n)
                        return -ENOMEM;
                /* pflag treats '_' as '-' only with a normalizer; kube-apiserver has one that
                 * turns '_' into '-' (with a deprecation warning) */
                for (char *p = n; *p; p++)
                        if (*p == '_')
                                *p = '-';
                const flag_def *d = NULL;
                for (size_t k = 0; k < ELEMENTSOF(flags); k++)
                        if (streq(flags[k].name, n))
                                d = &flags[k];
                if (!d) {
                        buf_printf(err, "unknown flag: --%s", n);
                        return -EINVAL;
                }
                const char *value;
                if (eq)
                        value = eq + 1;
                else if (d->type == F_BOOL || d->type == F_IGNORED_BOOL)
                        value = "true";
                else if (i + 1 < argc)
                        value = argv[++i];
                else {
                        buf_printf(err, "flag needs an argument: --%s", n);
                        return -EINVAL;
                }
                r = set_flag(&f, d, value, err);
                if (r < 0)
                        return r;
                if ((d->type == F_IGNORED || d->type == F_IGNORED_BOOL) && !streq(d->name, "v") &&
                    !strv_contains(f.ignored, d->name) && strv_pushf(&f.ignored, "--%s", d->name) < 0)
                        return -ENOMEM;
        }
        if (!f.bind_address && !(f.bind_address = strdup("0.0.0.0")))
                return -ENOMEM;
        if (!f.etcd_prefix && !(f.etcd_prefix = strdup("/registry")))
                return -ENOMEM;
        if (!f.authorization_mode && strv_push(&f.authorization_mode, "AlwaysAllow") < 0)
                return -ENOMEM;
        *ret = f;
        f = (kube_apiserver_flags){};
        return 0;
}

/* ---- validation ---- */

/* An errno as Go prints it ("no such file or directory"). */
static const char *go_strerror(int r, char out[128]) {
        snprintf(out, 128, "%s", strerror(r < 0 ? -r : r));
        if (out[0] >= 'A' && out[0] <= 'Z')
                out[0] = (char) (out[0] - 'A' + 'a');
        return out;
}

static void x509_freep(X509 **x) { X509_free(*x); }
static void evp_pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }

static bool is_file(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_cert(const char *path, X509 **ret) {
        FILE *fp = fopen(path, "re");
        if (!fp)
                return negative_errno();
        X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
        fclose(fp);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int load_key(const char *path, EVP_PKEY **ret) {
        FILE *fp = fopen(path, "re");
        if (!fp)
                return negative_errno();
        EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
        fclose(fp);
        if (!k)
                return -EBADMSG;
        *ret = k;
        return 0;
}

/* A service-account key file: PEM public keys, private keys or certificates (upstream's
 * keyutil.PublicKeysFromFile). */
static bool sa_key_file_ok(const char *path) {
        FILE *fp = fopen(path, "re");
        if (!fp)
                return false;
        EVP_PKEY *k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
        if (!k) {
                rewind(fp);
                k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
        }
        if (!k) {
                rewind(fp);
                X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
                if (x) {
                        k = X509_get_pubkey(x);
                        X509_free(x);
                }
        }
        fclose(fp);
        EVP_PKEY_free(k);
        return k != NULL;
}

/* "a.b.c.d/n" or an IPv6 CIDR; ret_bits: address size. */
static bool parse_cidr(const char *s, int *ret_bits, int *ret_prefix) {
        const char *slash = strchr(s, '/');
        char addr[64];
        unsigned char buf6[16];
        if (!slash || (size_t) (slash - s) >= sizeof(addr))
                return false;
        memcpy(addr, s, (size_t) (slash - s));
        addr[slash - s] = 0;
        int bits = inet_pton(AF_INET, addr, buf6) == 1 ? 32 : inet_pton(AF_INET6, addr, buf6) == 1 ? 128 : 0;
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!bits || end == slash + 1 || *end || p < 0 || p > bits)
                return false;
        *ret_bits = bits;
        *ret_prefix = (int) p;
        return true;
}

int kube_apiserver_validate(const kube_apiserver_flags *f, buf *err) {
        size_t before = err->len;
        struct in6_addr a6;
        struct in_addr a4;

#define PROBLEM(...) (void) (buf_printf(err, "%s", err->len > before ? "\n" : ""), buf_printf(err, __VA_ARGS__))

        if (!f->etcd_servers)
                PROBLEM("--etcd-servers must be specified");
        for (char **e = f->etcd_servers; e && *e; e++)
                if (!startswith(*e, "http://") && !startswith(*e, "https://"))
                        PROBLEM("--etcd-servers: \"%s\" is not an http:// or https:// URL", *e);
        if (!streq(f->etcd_prefix, "/registry"))
                PROBLEM("--etcd-prefix: only /registry is supported by this stand-in");
        if (f->secure_port < 1 || f->secure_port > 65535)
                PROBLEM("--secure-port %d must be between 1 and 65535, inclusive. It cannot be turned off with 0",
                        f->secure_port);
        if (inet_pton(AF_INET, f->bind_address, &a4) != 1 && inet_pton(AF_INET6, f->bind_address, &a6) != 1)
                PROBLEM("invalid argument \"%s\" for \"--bind-address\" flag: failed to parse IP: \"%s\"",
                        f->bind_address, f->bind_address);

        /* serving certificate: upstream would generate a self-signed pair without these */
        if (!f->tls_cert_file || !f->tls_private_key_file)
                PROBLEM("--tls-cert-file and --tls-private-key-file are required by this stand-in "
                        "(kube-apiserver would generate a self-signed pair in --cert-dir)");
        else {
                X509 *x = NULL;
                EVP_PKEY *k = NULL;
                int r1 = load_cert(f->tls_cert_file, &x), r2 = load_key(f->tls_private_key_file, &k);
                char e[128];
                if (r1 == -EBADMSG)
                        PROBLEM("unable to load server certificate: %s: tls: failed to find any PEM data in certificate input", f->tls_cert_file);
                else if (r1 < 0)
                        PROBLEM("unable to load server certificate: open %s: %s", f->tls_cert_file, go_strerror(r1, e));
                if (r2 == -EBADMSG)
                        PROBLEM("unable to load server certificate: %s: tls: failed to find any PEM data in key input", f->tls_private_key_file);
                else if (r2 < 0)
                        PROBLEM("unable to load server certificate: open %s: %s", f->tls_private_key_file, go_strerror(r2, e));
                if (x && k && X509_check_private_key(x, k) != 1)
                        PROBLEM("unable to load server certificate: tls: private key does not match public key");
                X509_free(x);
                EVP_PKEY_free(k);
        }
        if (f->client_ca_file) {
                X509 *x = NULL;
                int r = load_cert(f->client_ca_file, &x);
                char e[128];
                if (r == -EBADMSG)
                        PROBLEM("unable to load client CA provider: %s: data does not contain any valid RSA or ECDSA certificates", f->client_ca_file);
                else if (r < 0)
                        PROBLEM("unable to load client CA provider: open %s: %s", f->client_ca_file, go_strerror(r, e));
                X509_free(x);
        }
        if (!f->cluster_signing_cert_file != !f->cluster_signing_key_file)
                PROBLEM("--cluster-signing-cert-file and --cluster-signing-key-file must be given together");
        else if (f->cluster_signing_cert_file) {
                X509 *x = NULL;
                EVP_PKEY *k = NULL;
                int r1 = load_cert(f->cluster_signing_cert_file, &x), r2 = load_key(f->cluster_signing_key_file, &k);
                char e[128];
                if (r1 < 0)
                        PROBLEM("error reading CA cert file \"%s\": %s", f->cluster_signing_cert_file,
                                r1 == -EBADMSG ? "data does not contain any valid RSA or ECDSA certificates" : go_strerror(r1, e));
                if (r2 < 0)
                        PROBLEM("error reading CA key file \"%s\": %s", f->cluster_signing_key_file,
                                r2 == -EBADMSG ? "data does not contain a valid RSA or ECDSA private key" : go_strerror(r2, e));
                if (x && k && X509_check_private_key(x, k) != 1)
                        PROBLEM("--cluster-signing-key-file does not match --cluster-signing-cert-file");
                X509_free(x);
                EVP_PKEY_free(k);
        }
        const char *const *etcd_files[] = { (const char *const *) &f->etcd_cafile,
                                            (const char *const *) &f->etcd_certfile,
                                            (const char *const *) &f->etcd_keyfile };
        for (size_t i = 0; i < ELEMENTSOF(etcd_files); i++)
                if (*etcd_files[i] && !is_file(*etcd_files[i]))
                        PROBLEM("open %s: no such file or directory", *etcd_files[i]);
        if (!f->etcd_certfile != !f->etcd_keyfile)
                PROBLEM("--etcd-certfile and --etcd-keyfile must be given together");

        /* service accounts (required since 1.20) */
        if (!f->service_account_issuers)
                PROBLEM("service-account-issuer is a required flag");
        if (!f->service_account_signing_key_file || !f->service_account_issuers)
                PROBLEM("--service-account-signing-key-file and --service-account-issuer are required flags");
        if (f->service_account_signing_key_file) {
                EVP_PKEY *k = NULL;
                int r = load_key(f->service_account_signing_key_file, &k);
                char e[128];
                if (r == -EBADMSG)
                        PROBLEM("failed to parse service-account-issuer-key-file: %s: data does not contain a valid RSA or ECDSA private key",
                                f->service_account_signing_key_file);
                else if (r < 0)
                        PROBLEM("failed to parse service-account-issuer-key-file: open %s: %s",
                                f->service_account_signing_key_file, go_strerror(r, e));
                EVP_PKEY_free(k);
        }
        for (char **p = f->service_account_key_files; p && *p; p++)
                if (!sa_key_file_ok(*p))
                        PROBLEM("failed to parse service-account key file %s: data does not contain any valid RSA or ECDSA public keys", *p);

        /* service IPs */
        size_t n_ranges = strv_length(f->service_cluster_ip_ranges);
        if (n_ranges > 2)
                PROBLEM("--service-cluster-ip-range must not contain more than two entries");
        for (size_t i = 0; i < n_ranges; i++) {
                int bits, prefix;
                if (!parse_cidr(f->service_cluster_ip_ranges[i], &bits, &prefix))
                        PROBLEM("service-cluster-ip-range[%zu] is not a valid cidr", i);
                else if (bits == 32 && prefix < 12)
                        PROBLEM("specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12");
                else if (bits == 128 && prefix < 108)
                        PROBLEM("specified --secondary-service-cluster-ip-range is too large; for 128-bit addresses, the mask must be >= 108");
        }

        for (char **m = f->authorization_mode; m && *m; m++) {
                static const char *const modes[] = { "AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node" };
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                        known = known || streq(*m, modes[i]);
                if (!known)
                        PROBLEM("authorization-mode \"%s\" is not a valid mode", *m);
                else if (streq(*m, "ABAC") || streq(*m, "Webhook"))
                        PROBLEM("authorization-mode \"%s\" is not supported by this stand-in", *m);
                for (char **o = f->authorization_mode; o < m; o++)
                        if (streq(*o, *m))
                                PROBLEM("authorization-mode %s has mode specified more than once", *m);
        }
#undef PROBLEM
        return err->len > before ? -EINVAL : 0;
}

/* ---- serving ---- */

static int read_pem(const char *path, char **ret, buf *err) {
        int r = read_file(path, PEM_MAX, ret, NULL);
        if (r < 0)
                buf_printf(err, "%s: %s", path, strerror(-r));
        return r;
}

int kube_apiserver_run(const kube_apiserver_flags *f, volatile sig_atomic_t *stop, buf *err) {
        _cleanup_(etcd_client_freep) etcd_client *etcd = NULL;
        _cleanup_(http_server_freep) http_server *h = NULL;
        _cleanup_free_ char *cert = NULL, *ca = NULL;
        _cleanup_secret_ char *key = NULL;
        _cleanup_buf_ buf etcd_err = BUF_INIT(1024);
        int r;

        r = kube_apiserver_validate(f, err);
        if (r < 0)
                return r;
        if ((r = read_pem(f->tls_cert_file, &cert, err)) < 0 ||
            (r = read_pem(f->tls_private_key_file, &key, err)) < 0 ||
            (f->client_ca_file && (r = read_pem(f->client_ca_file, &ca, err)) < 0))
                return r;
        r = etcd_client_new(&(etcd_client_options){ .endpoints = f->etcd_servers, .ca_file = f->etcd_cafile,
                                                    .cert_file = f->etcd_certfile, .key_file = f->etcd_keyfile,
                                                    .timeout_ms = 5000 },
                            &etcd);
        if (r < 0) {
                buf_printf(err, "etcd client: %s", strerror(-r));
                return r;
        }
        _cleanup_(x509_freep) X509 *signing_cert = NULL;
        _cleanup_(evp_pkey_freep) EVP_PKEY *signing_key = NULL;
        if (f->cluster_signing_cert_file &&
            ((r = load_cert(f->cluster_signing_cert_file, &signing_cert)) < 0 ||
             (r = load_key(f->cluster_signing_key_file, &signing_key)) < 0)) {
                buf_printf(err, "reading the cluster signing CA: %s", strerror(-r));
                return r;
        }
        kube_api api = {
                .etcd = etcd,
                .signing_cert = signing_cert,
                .signing_key = signing_key,
                .authorization_mode = f->authorization_mode,
                .bootstrap_token_auth = f->enable_bootstrap_token_auth,
                .anonymous_auth = f->anonymous_auth,
        };
        r = http_server_new(kube_api_handle, &api, &h);
        if (r < 0)
                return r;
        r = http_server_listen_tls(h, f->bind_address, (uint16_t) f->secure_port, "kube-apiserver",
                                   &(http_server_tls){ .cert_pem = cert, .key_pem = key, .client_ca_pem = ca });
        if (r < 0) {
                buf_printf(err, "failed to listen on %s:%d: %s", f->bind_address, f->secure_port, strerror(-r));
                return r;
        }
        for (char **i = f->ignored; i && *i; i++)
                log_notice("kube-apiserver: %s accepted but not acted upon by this stand-in", *i);
        printf("kube-apiserver: ready\n");
        fflush(stdout);

        /* The system namespaces are created once etcd answers; until then /readyz fails on
         * etcd, as upstream's does. */
        bool have_namespaces = false;
        int64_t next_try = 0, next_controllers = 0;
        while (!*stop) {
                if (!have_namespaces && time_now_ms() >= next_try) {
                        buf_clear(&etcd_err);
                        r = kube_api_ensure_namespaces(&api, &etcd_err);
                        if (r >= 0)
                                have_namespaces = true;
                        else {
                                log_warning("kube-apiserver: creating the system namespaces: %s",
                                            etcd_err.len ? etcd_err.data : strerror(-r));
                                next_try = time_now_ms() + 1000;
                        }
                }
                /* the controllers kube-controller-manager would run (CSR approver, signer) */
                if (have_namespaces && time_now_ms() >= next_controllers) {
                        buf_clear(&etcd_err);
                        r = kube_api_run_controllers(&api, &etcd_err);
                        if (r < 0)
                                log_warning("kube-apiserver: CSR controllers: %s", etcd_err.len ? etcd_err.data : strerror(-r));
                        next_controllers = time_now_ms() + (r < 0 ? 2000 : 250);
                }
                r = http_server_step(h, 200);
                if (r < 0) {
                        buf_printf(err, "event loop: %s", strerror(-r));
                        return r;
                }
        }
        return 0;
}
