/* EXO2-HMAC-SHA256 request signing, as egoscale's signRequest does it (protocols.md §1): the
 * message is five segments joined by '\n' (request line, body, single-valued query values sorted
 * by name, an empty headers segment, expiry), the signature base64(HMAC-SHA256(secret, message)). */
#include "exoscale.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>

#include "crypto.h"
#include "http.h"

#define EXO_SCHEME "EXO2-HMAC-SHA256 "

typedef struct query_param {
        char *name;
        char *value;
} query_param;

static void query_params_free(query_param *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

static int query_param_cmp(const void *a, const void *b) {
        return strcmp(((const query_param *) a)->name, ((const query_param *) b)->name);
}

/* Split a raw query into decoded (name, value) pairs sorted by name, the way Go's
 * url.ParseQuery reads it: '&'-separated, empty pieces skipped, "k" alone is ("k", ""), '+' is a
 * space. A ';' or a malformed escape is -EINVAL (Go would drop that piece; we never send one). */
static int query_parse(const char *query, query_param **ret, size_t *ret_n) {
        query_param *params = NULL;
        size_t n = 0;
        int r;

        for (const char *p = strempty(query); *p;) {
                const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
                const char *eq = memchr(p, '=', (size_t) (end - p));
                const char *name_end = eq ? eq : end;
                if (end == p) {
                        p = end + 1;
                        continue;
                }
                if (memchr(p, ';', (size_t) (end - p))) {
                        r = -EINVAL;
                        goto fail;
                }
                query_param *np = realloc(params, (n + 1) * sizeof(*np));
                if (!np) {
                        r = -ENOMEM;
                        goto fail;
                }
                params = np;
                params[n] = (query_param){};
                n++;
                r = http_unescape(p, (size_t) (name_end - p), true, &params[n - 1].name);
                if (r >= 0)
                        r = eq ? http_unescape(eq + 1, (size_t) (end - eq - 1), true, &params[n - 1].value)
                               : ((params[n - 1].value = strdup("")) ? 0 : -ENOMEM);
                if (r < 0) {
                        r = r == -EBADMSG ? -EINVAL : r;
                        goto fail;
                }
                p = amp ? amp + 1 : end;
        }
        if (n > 1)
                qsort(params, n, sizeof(*params), query_param_cmp);
        *ret = params;
        *ret_n = n;
        return 0;
fail:
        query_params_free(params, n);
        return r;
}

/* Compute the signature (base64) and the signed-query-args list ("" when none are signed). */
static int exo_signature(const char *method, const char *path, const char *query, const void *body,
                         size_t body_len, const char *api_secret, int64_t expires, char **ret_sig,
                         char **ret_signed_args) {
        query_param *params = NULL;
        size_t n = 0;
        buf msg = {}, names = {};
        uint8_t mac[SHA256_DIGEST_SIZE];
        int r;

        r = query_parse(query, &params, &n);
        if (r < 0)
                return r;

        r = buf_printf(&msg, "%s %s\n", method, path);
        if (r >= 0)
                r = buf_append(&msg, body, body_len);
        if (r >= 0)
                r = buf_puts(&msg, "\n");
        /* Only names that occur exactly once are signed: params are sorted, so repeats are
         * neighbours. */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool repeated = (i > 0 && streq(params[i].name, params[i - 1].name)) ||
                                (i + 1 < n && streq(params[i].name, params[i + 1].name));
                if (repeated)
                        continue;
                r = buf_puts(&msg, params[i].value);
                if (r >= 0)
                        r = buf_printf(&names, "%s%s", names.len ? ";" : "", params[i].name);
        }
        if (r >= 0)
                r = buf_printf(&msg, "\n\n%" PRId64, expires);
        if (r < 0)
                goto out;

        hmac_sha256(api_secret, strlen(api_secret), msg.data, msg.len, mac);
        char *sig = base64_encode(mac, sizeof(mac));
        char *signed_args = buf_steal(&names);
        if (!sig || !signed_args) {
                free(sig);
                free(signed_args);
                r = -ENOMEM;
                goto out;
        }
        *ret_sig = sig;
        *ret_signed_args = signed_args;
        r = 0;
out:
        /* The body may carry secrets of its own (user data, keys). */
        buf_free_secret(&msg);
        buf_free(&names);
        explicit_bzero(mac, sizeof(mac));
        query_params_free(params, n);
        return r;
}

int exo_sign(const char *method, const char *path, const char *query, const void *body,
             size_t body_len, const char *api_key, const char *api_secret, int64_t expires,
             buf *out) {
        _cleanup_free_ char *sig = NULL, *signed_args = NULL;
        int r;

        r = exo_signature(method, path, query, body, body_len, api_secret, expires, &sig,
                          &signed_args);
        if (r < 0)
                return r;
        return buf_printf(out, EXO_SCHEME "credential=%s%s%s,expires=%" PRId64 ",signature=%s",
                          api_key, *signed_args ? ",signed-query-args=" : "", signed_args, expires,
                          sig);
}

typedef struct exo_auth {
        char *credential;
        char *signed_args;         /* NULL when the part is absent */
        char *signature;
        int64_t expires;
        bool has_expires;
} exo_auth;

static void exo_auth_done(exo_auth *a) {
        free(a->credential);
        free(a->signed_args);
        free(a->signature);
}

static int parse_expires(const char *s, size_t len, int64_t *ret) {
        int64_t v = 0;
        if (len == 0 || len > 18) /* 18 digits cannot overflow int64 */
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

/* "EXO2-HMAC-SHA256 credential=K[,signed-query-args=a;b],expires=T,signature=S": parts in any
 * order, each at most once; credential, expires and signature required. */
static int exo_auth_parse(const char *header, exo_auth *ret) {
        exo_auth a = {};
        const char *p = startswith(header, EXO_SCHEME);
        int r = -EBADMSG;

        if (!p || !*p)
                return -EBADMSG;
        for (;;) {
                const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
                const char *eq = memchr(p, '=', (size_t) (end - p));
                if (!eq)
                        goto fail;
                size_t klen = (size_t) (eq - p), vlen = (size_t) (end - eq - 1);
                char **slot = NULL;
                if (klen == strlen("credential") && strneq(p, "credential", klen))
                        slot = &a.credential;
                else if (klen == strlen("signed-query-args") && strneq(p, "signed-query-args", klen))
                        slot = &a.signed_args;
                else if (klen == strlen("signature") && strneq(p, "signature", klen))
                        slot = &a.signature;
                else if (klen == strlen("expires") && strneq(p, "expires", klen)) {
                        if (a.has_expires || parse_expires(eq + 1, vlen, &a.expires) < 0)
                                goto fail;
                        a.has_expires = true;
                } else
                        goto fail;
                if (slot) {
                        if (*slot || vlen == 0)
                                goto fail;
                        *slot = strndup(eq + 1, vlen);
                        if (!*slot) {
                                r = -ENOMEM;
                                goto fail;
                        }
                }
                if (!comma)
                        break;
                p = comma + 1;
        }
        if (!a.credential || !a.signature || !a.has_expires)
                goto fail;
        *ret = a;
        return 0;
fail:
        exo_auth_done(&a);
        return r;
}

static bool secure_streq(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

int exo_verify(const char *authorization, const char *method, const char *path, const char *query,
               const void *body, size_t body_len, const char *api_key, const char *api_secret,
               time_t now) {
        exo_auth a = {};
        _cleanup_free_ char *sig = NULL, *signed_args = NULL;
        int r;

        r = exo_auth_parse(authorization, &a);
        if (r < 0)
                return r;
        if (!streq(a.credential, api_key)) {
                r = -EACCES;
                goto out;
        }
        r = exo_signature(method, path, query, body, body_len, api_secret, a.expires, &sig,
                          &signed_args);
        if (r < 0) {
                r = r == -EINVAL ? -EBADMSG : r;
                goto out;
        }
        /* The client must have signed exactly the single-valued parameters we see. */
        if (!streq(strempty(a.signed_args), signed_args) || !secure_streq(a.signature, sig)) {
                r = -EACCES;
                goto out;
        }
        r = a.expires > (int64_t) now ? 0 : -ETIME;
out:
        exo_auth_done(&a);
        return r;
}
