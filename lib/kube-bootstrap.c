/* Bootstrap-token discovery as kubeadm does it; the sources are named in the header and in
 * the reference notes (kubernetes-vault.md, section B). */
#include "kube-bootstrap.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <strings.h>

#include "crypto.h"

static bool token_chars(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

bool kube_bootstrap_token_id_valid(const char *id) {
        return id && strlen(id) == KUBE_TOKEN_ID_LEN && token_chars(id, KUBE_TOKEN_ID_LEN);
}

int kube_bootstrap_token_parse(const char *s, kube_bootstrap_token *ret) {
        if (!s || strlen(s) != KUBE_TOKEN_ID_LEN + 1 + KUBE_TOKEN_SECRET_LEN || s[KUBE_TOKEN_ID_LEN] != '.' ||
            !token_chars(s, KUBE_TOKEN_ID_LEN) ||
            !token_chars(s + KUBE_TOKEN_ID_LEN + 1, KUBE_TOKEN_SECRET_LEN))
                return -EINVAL;
        memcpy(ret->id, s, KUBE_TOKEN_ID_LEN);
        ret->id[KUBE_TOKEN_ID_LEN] = 0;
        memcpy(ret->secret, s + KUBE_TOKEN_ID_LEN + 1, KUBE_TOKEN_SECRET_LEN);
        ret->secret[KUBE_TOKEN_SECRET_LEN] = 0;
        return 0;
}

/* base64url without padding (RFC 7515 section 2). */
static char *base64url(const void *data, size_t len) {
        char *s = base64_encode(data, len);
        if (!s)
                return NULL;
        size_t n = 0;
        for (char *p = s; *p; p++) {
                if (*p == '=')
                        break;
                s[n++] = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        }
        s[n] = 0;
        return s;
}

static bool base64url_chars(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '_')
                        return false;
        return true;
}

/* A kid that goes into the header verbatim, byte for byte as Go's encoder would write it. */
static bool kid_valid(const char *id) {
        if (!id || !*id)
                return false;
        for (const char *c = id; *c; c++)
                if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\' || *c == '<' || *c == '>' || *c == '&')
                        return false;
        return true;
}

int kube_bootstrap_jws_sign(const void *content, size_t len, const char *id, const char *secret,
                            char **ret) {
        _cleanup_free_ char *header = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *s64 = NULL;
        uint8_t mac[SHA256_DIGEST_SIZE];

        if (!kid_valid(id) || !secret)
                return -EINVAL;
        if (asprintf(&header, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", id) < 0) {
                header = NULL;
                return -ENOMEM;
        }
        h64 = base64url(header, strlen(header));
        p64 = base64url(content, len);
        if (!h64 || !p64)
                return -ENOMEM;
        if (asprintf(&input, "%s.%s", h64, p64) < 0) {
                input = NULL;
                return -ENOMEM;
        }
        /* go-jose pads short keys to 32 zero bytes; HMAC pads to the block size with zeros
         * anyway, so the plain secret gives the same MAC (reference B.2, [derived]). */
        hmac_sha256(secret, strlen(secret), input, strlen(input), mac);
        s64 = base64url(mac, sizeof(mac));
        explicit_bzero(mac, sizeof(mac));
        if (!s64)
                return -ENOMEM;
        char *jws;
        if (asprintf(&jws, "%s..%s", h64, s64) < 0)
                return -ENOMEM;
        *ret = jws;
        return 0;
}

int kube_bootstrap_jws_verify(const void *content, size_t len, const char *jws, const char *id,
                              const char *secret) {
        _cleanup_free_ char *expected = NULL;
        const char *dots;
        int r;

        if (!jws || !(dots = strstr(jws, "..")) || !base64url_chars(jws, (size_t) (dots - jws)) ||
            !base64url_chars(dots + 2, strlen(dots + 2)))
                return -EBADMSG;
        r = kube_bootstrap_jws_sign(content, len, id, secret, &expected);
        if (r < 0)
                return r;
        size_t n = strlen(expected);
        if (strlen(jws) != n || CRYPTO_memcmp(jws, expected, n) != 0)
                return -EKEYREJECTED;
        return 0;
}

/* Call f on each certificate's SPKI digest until it returns non-zero. Returns that value, 0
 * when all were seen, -EBADMSG when there was none, -ENOMEM. */
static int foreach_spki_digest(const char *pem, int (*f)(const uint8_t d[SHA256_DIGEST_SIZE], void *u),
                               void *userdata) {
        BIO *bio = BIO_new_mem_buf(pem, -1);
        unsigned count = 0;
        int r = 0;

        if (!bio)
                return -ENOMEM;
        for (;;) {
                X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
                if (!x)
                        break;
                unsigned char *der = NULL;
                int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
                X509_free(x);
                if (n <= 0) {
                        r = -EBADMSG;
                        break;
                }
                uint8_t d[SHA256_DIGEST_SIZE];
                sha256(der, (size_t) n, d);
                OPENSSL_free(der);
                count++;
                r = f(d, userdata);
                if (r != 0)
                        break;
        }
        /* The loop ends on "no more PEM": not an error to leave in the queue. */
        ERR_clear_error();
        BIO_free(bio);
        if (r == 0 && count == 0)
                return -EBADMSG;
        return r;
}

static int take_first(const uint8_t d[SHA256_DIGEST_SIZE], void *u) {
        memcpy(u, d, SHA256_DIGEST_SIZE);
        return 1;
}

int kube_bootstrap_ca_pin(const char *cert_pem, char **ret) {
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];

        if (!cert_pem)
                return -EBADMSG;
        int r = foreach_spki_digest(cert_pem, take_first, d);
        if (r < 0)
                return r;
        hex_encode(d, sizeof(d), hex);
        char *pin;
        if (asprintf(&pin, KUBE_CA_PIN_PREFIX "%s", hex) < 0)
                return -ENOMEM;
        *ret = pin;
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int kube_bootstrap_pin_parse(const char *pin, uint8_t ret[32]) {
        uint8_t d[SHA256_DIGEST_SIZE];
        size_t plen = strlen(KUBE_CA_PIN_PREFIX);

        if (!pin || strncasecmp(pin, KUBE_CA_PIN_PREFIX, plen) != 0)
                return -EINVAL;
        const char *h = pin + plen;
        if (strlen(h) != 2 * SHA256_DIGEST_SIZE)
                return -EINVAL;
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
                int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                d[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(ret, d, sizeof(d));
        return 0;
}

static int match_pin(const uint8_t d[SHA256_DIGEST_SIZE], void *u) {
        return memcmp(d, u, SHA256_DIGEST_SIZE) == 0 ? 1 : 0;
}

int kube_bootstrap_pin_check(const char *ca_pem, const char *pin) {
        uint8_t want[SHA256_DIGEST_SIZE];
        int r = kube_bootstrap_pin_parse(pin, want);
        if (r < 0)
                return r;
        if (!ca_pem)
                return -EBADMSG;
        r = foreach_spki_digest(ca_pem, match_pin, want);
        if (r < 0)
                return r;
        return r > 0 ? 0 : -EKEYREJECTED;
}

void kube_cluster_info_done(kube_cluster_info *ci) {
        if (!ci)
                return;
        free(ci->kubeconfig);
        free(ci->server);
        free(ci->ca_pem);
        *ci = (kube_cluster_info){ 0 };
}

static int kc_error(buf *err, const char *fmt, ...) _printf_(2, 3);
static int kc_error(buf *err, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                (void) buf_puts(err, "cluster-info kubeconfig: ");
                (void) buf_vprintf(err, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

/* After a quoted scalar's closing quote only blanks and a comment may follow. */
static bool yaml_rest_blank(const char *s, size_t n) {
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
        return i == n || (s[i] == '#' && i > 0);
}

/* One YAML scalar on one line: plain, "double" (no escapes) or 'single' ('' for '), each
 * optionally followed by " # comment". Returns a new string, or NULL with *ret_bad set for
 * what this subset does not read. */
static char *yaml_scalar(const char *s, size_t n, bool *ret_bad) {
        *ret_bad = false;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                n--;
        if (n > 0 && s[0] == '"') {
                const char *close = memchr(s + 1, '"', n - 1);
                if (!close || memchr(s + 1, '\\', (size_t) (close - s - 1)) ||
                    !yaml_rest_blank(close + 1, n - (size_t) (close + 1 - s))) {
                        *ret_bad = true;
                        return NULL;
                }
                return strndup(s + 1, (size_t) (close - s - 1));
        }
        if (n > 0 && s[0] == '\'') {
                char *out = malloc(n), *o = out;
                size_t i;
                if (!out)
                        return NULL;
                for (i = 1; i < n; i++) {
                        if (s[i] == '\'') {
                                if (i + 1 < n && s[i + 1] == '\'') {
                                        *o++ = '\'';
                                        i++;
                                        continue;
                                }
                                break;
                        }
                        *o++ = s[i];
                }
                if (i >= n || !yaml_rest_blank(s + i + 1, n - i - 1)) {
                        free(out);
                        *ret_bad = true;
                        return NULL;
                }
                *o = 0;
                return out;
        }
        /* Plain: a " #" starts a comment; indicators that open other kinds of node are refused. */
        for (size_t i = 1; i < n; i++)
                if (s[i] == '#' && (s[i - 1] == ' ' || s[i - 1] == '\t')) {
                        n = i - 1;
                        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                                n--;
                        break;
                }
        if (n == 0 || strchr("{[&*!|>%@`'\"", s[0])) {
                *ret_bad = true;
                return NULL;
        }
        return strndup(s, n);
}

static int yaml_clusters(const char *text, char **ret_server, char **ret_ca64, buf *err) {
        _cleanup_free_ char *server = NULL, *ca64 = NULL;
        bool in_clusters = false, seen_clusters = false;
        unsigned lineno = 0;

        for (const char *line = text; *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                const char *next = eol ? eol + 1 : line + len;
                lineno++;

                size_t ind = 0;
                while (ind < len && line[ind] == ' ')
                        ind++;
                if (ind < len && line[ind] == '\t')
                        return kc_error(err, "line %u: tab in indentation", lineno);
                const char *c = line + ind;
                size_t clen = len - ind;
                if (clen == 0 || c[0] == '#' || (clen == 1 && c[0] == '\r')) {
                        line = next;
                        continue;
                }
                if (lineno == 1 && clen >= 3 && strneq(c, "---", 3)) {
                        line = next;
                        continue;
                }
                bool item = clen >= 2 && c[0] == '-' && (c[1] == ' ' || c[1] == '\r');
                if (ind == 0 && !item) {
                        /* A top-level key: is it the clusters section? */
                        in_clusters = false;
                        if (clen >= 9 && strneq(c, "clusters:", 9)) {
                                const char *rest = c + 9;
                                size_t rlen = clen - 9;
                                while (rlen > 0 && (*rest == ' ' || *rest == '\t')) {
                                        rest++;
                                        rlen--;
                                }
                                if (rlen > 0 && *rest != '#' && *rest != '\r')
                                        return kc_error(err, "line %u: \"clusters\" is not a block sequence", lineno);
                                if (seen_clusters)
                                        return kc_error(err, "line %u: \"clusters\" twice", lineno);
                                seen_clusters = in_clusters = true;
                        }
                        line = next;
                        continue;
                }
                if (!in_clusters) {
                        line = next;
                        continue;
                }
                /* Inside clusters: drop "- " item markers, then read "key: value". */
                while (clen >= 2 && c[0] == '-' && c[1] == ' ') {
                        c += 2;
                        clen -= 2;
                        while (clen > 0 && *c == ' ') {
                                c++;
                                clen--;
                        }
                }
                const char *colon = memchr(c, ':', clen);
                if (!colon) {
                        line = next;
                        continue;
                }
                size_t klen = (size_t) (colon - c);
                char **slot = NULL;
                if (klen == 6 && strneq(c, "server", 6))
                        slot = &server;
                else if (klen == 26 && strneq(c, "certificate-authority-data", 26))
                        slot = &ca64;
                if (!slot) {
                        line = next;
                        continue;
                }
                if (*slot)
                        return kc_error(err, "line %u: a second \"%.*s\" (only one cluster is read)", lineno,
                                        (int) klen, c);
                const char *v = colon + 1;
                size_t vlen = clen - klen - 1;
                if (vlen == 0 || (*v != ' ' && *v != '\t' && *v != '\r'))
                        return kc_error(err, "line %u: \"%.*s\" without a value", lineno, (int) klen, c);
                while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                        v++;
                        vlen--;
                }
                bool bad;
                *slot = yaml_scalar(v, vlen, &bad);
                if (!*slot)
                        return bad ? kc_error(err, "line %u: \"%.*s\" is not a one-line scalar", lineno,
                                              (int) klen, c)
                                   : -ENOMEM;
                line = next;
        }
        if (!seen_clusters)
                return kc_error(err, "no \"clusters\"");
        if (!server)
                return kc_error(err, "no cluster \"server\"");
        if (!ca64)
                return kc_error(err, "no cluster \"certificate-authority-data\"");
        *ret_server = TAKE_PTR(server);
        *ret_ca64 = TAKE_PTR(ca64);
        return 0;
}

static int json_clusters(const char *text, char **ret_server, char **ret_ca64, buf *err) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_buf_ buf perr = BUF_INIT(512);

        if (json_parse(text, strlen(text), &j, &perr) < 0)
                return kc_error(err, "%s", strempty(perr.data));
        json_t *clusters = json_object_get(j, "clusters");
        if (!json_is_array(clusters) || json_array_size(clusters) != 1)
                return kc_error(err, "\"clusters\" is not a list of one cluster");
        const char *server = json_path_string(j, "clusters.0.cluster.server");
        const char *ca = json_path_string(j, "clusters.0.cluster.certificate-authority-data");
        if (!server)
                return kc_error(err, "no cluster \"server\"");
        if (!ca)
                return kc_error(err, "no cluster \"certificate-authority-data\"");
        char *s = strdup(server), *c = strdup(ca);
        if (!s || !c) {
                free(s);
                free(c);
                return -ENOMEM;
        }
        *ret_server = s;
        *ret_ca64 = c;
        return 0;
}

int kube_bootstrap_kubeconfig_cluster(const char *kubeconfig, char **ret_server, char **ret_ca_pem,
                                      buf *err) {
        _cleanup_free_ char *server = NULL, *ca64 = NULL;
        _cleanup_free_ uint8_t *ca = NULL;
        size_t ca_len = 0;
        int r;

        if (!kubeconfig)
                return kc_error(err, "missing");
        const char *p = kubeconfig + strspn(kubeconfig, " \t\r\n");
        r = *p == '{' ? json_clusters(kubeconfig, &server, &ca64, err)
                      : yaml_clusters(kubeconfig, &server, &ca64, err);
        if (r < 0)
                return r;
        if (!startswith(server, "https://"))
                return kc_error(err, "server \"%.100s\" is not https://", server);
        if (base64_decode(ca64, &ca, &ca_len) < 0)
                return kc_error(err, "certificate-authority-data is not base64");
        if (memchr(ca, 0, ca_len) || !strstr((char *) ca, "-----BEGIN CERTIFICATE-----"))
                return kc_error(err, "certificate-authority-data is not a PEM certificate");
        *ret_server = TAKE_PTR(server);
        *ret_ca_pem = (char *) TAKE_PTR(ca);
        return 0;
}

int kube_bootstrap_cluster_info_verify(json_t *configmap, const kube_bootstrap_token *token,
                                       const char *pin, kube_cluster_info *ret, buf *err) {
        _cleanup_free_ char *server = NULL, *ca_pem = NULL, *kc = NULL;
        char key[32];
        uint8_t d[SHA256_DIGEST_SIZE];
        int r;

        if (kube_bootstrap_pin_parse(pin, d) < 0) {
                if (err)
                        (void) buf_puts(err, "CA pin is not \"sha256:<64 hex digits>\"");
                return -EINVAL;
        }
        json_t *data = json_object_get(configmap, "data");
        const char *kubeconfig = json_string_value(json_object_get(data, "kubeconfig"));
        if (!json_is_object(data) || !kubeconfig) {
                if (err)
                        (void) buf_puts(err, "cluster-info has no data.kubeconfig");
                return -EBADMSG;
        }
        snprintf(key, sizeof(key), "jws-kubeconfig-%s", token->id);
        json_t *sig = json_object_get(data, key);
        if (!sig) {
                if (err)
                        (void) buf_printf(err, "cluster-info has no signature for token ID %s (%s) yet", token->id, key);
                return -ENOENT;
        }
        if (!json_is_string(sig)) {
                if (err)
                        (void) buf_printf(err, "cluster-info: %s is not a string", key);
                return -EBADMSG;
        }
        r = kube_bootstrap_jws_verify(kubeconfig, strlen(kubeconfig), json_string_value(sig), token->id,
                                      token->secret);
        if (r < 0) {
                if (err) {
                        if (r == -EBADMSG)
                                (void) buf_printf(err, "cluster-info: %s is not a detached JWS", key);
                        else if (r == -EKEYREJECTED)
                                (void) buf_printf(err, "cluster-info: %s was not signed with token %s", key, token->id);
                        else
                                (void) buf_printf(err, "cluster-info: cannot check %s: %s", key, strerror(-r));
                }
                return r;
        }
        r = kube_bootstrap_kubeconfig_cluster(kubeconfig, &server, &ca_pem, err);
        if (r < 0)
                return r;
        r = kube_bootstrap_pin_check(ca_pem, pin);
        if (r == -EKEYREJECTED) {
                _cleanup_free_ char *got = NULL;
                if (err) {
                        (void) kube_bootstrap_ca_pin(ca_pem, &got);
                        (void) buf_printf(err, "cluster-info: the cluster CA (%s) does not match the pin %s",
                                          got ? got : "?", pin);
                }
                return -EPERM;
        }
        if (r < 0) {
                if (err)
                        (void) buf_puts(err, "cluster-info: certificate-authority-data holds no certificate");
                return r == -ENOMEM ? r : -EBADMSG;
        }
        kc = strdup(kubeconfig);
        if (!kc)
                return -ENOMEM;
        *ret = (kube_cluster_info){
                .kubeconfig = TAKE_PTR(kc),
                .server = TAKE_PTR(server),
                .ca_pem = TAKE_PTR(ca_pem),
        };
        return 0;
}

bool kube_bootstrap_cluster_info_same(const kube_cluster_info *ci, json_t *configmap) {
        const char *kubeconfig = json_string_value(json_path(configmap, "data.kubeconfig"));
        return ci && ci->kubeconfig && kubeconfig && streq(ci->kubeconfig, kubeconfig);
}
