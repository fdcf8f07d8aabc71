#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "http.h"
#include "http-server.h"
#include "macro.h"
#include "strv.h"

void sigv4_format_date(time_t t, char out[SIGV4_DATE_SIZE]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(out, SIGV4_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_SIZE - 1)
                snprintf(out, SIGV4_DATE_SIZE, "19700101T000000Z");
}

/* "YYYYMMDDTHHMMSSZ" -> time_t. Returns 0 or -EBADMSG. */
static int parse_date(const char *s, time_t *ret) {
        struct tm tm = {};
        if (!s || strlen(s) != SIGV4_DATE_SIZE - 1 || s[8] != 'T' || s[15] != 'Z')
                return -EBADMSG;
        for (size_t i = 0; i < 15; i++)
                if (i != 8 && !isdigit((unsigned char) s[i]))
                        return -EBADMSG;
        if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec) != 6 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
            tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return -EBADMSG;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        *ret = timegm(&tm);
        return 0;
}

int sigv4_uri_encode(const char *s, size_t len, bool keep_slash, buf *out) {
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) s[i];
                int r;
                if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/'))
                        r = buf_append(out, &s[i], 1);
                else {
                        char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
                        r = buf_append(out, e, 3);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The len bytes at s decoded and encoded again the SigV4 way, into a new string. */
static int reencode(const char *s, size_t len, bool keep_slash, char **ret) {
        _cleanup_free_ char *decoded = NULL;
        _cleanup_buf_ buf b = {};
        int r = http_unescape(s, len, false, &decoded);
        if (r < 0)
                return r;
        r = sigv4_uri_encode(decoded, strlen(decoded), keep_slash, &b);
        if (r >= 0)
                r = buf_puts(&b, ""); /* NUL-terminated even when empty */
        if (r < 0)
                return r;
        *ret = buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* "name=value" pairs, re-encoded, sorted ('=' sorts before every encoded character, so sorting
 * the joined pairs sorts by name, then value). */
static int canonical_query(const char *query, buf *out) {
        _cleanup_strv_free_ char **pairs = NULL;
        const char *p = query;
        int r;

        while (p && *p) {
                const char *end = strchrnul(p, '&'), *eq = memchr(p, '=', (size_t) (end - p));
                const char *vend = end, *nend = eq ? eq : end;
                _cleanup_free_ char *name = NULL, *value = NULL;

                if (end > p) {
                        r = reencode(p, (size_t) (nend - p), false, &name);
                        if (r >= 0)
                                r = eq ? reencode(eq + 1, (size_t) (vend - eq - 1), false, &value)
                                       : ((value = strdup("")) ? 0 : -ENOMEM);
                        if (r < 0)
                                return r;
                        if (!streq(name, "X-Amz-Signature") && strv_pushf(&pairs, "%s=%s", name, value) < 0)
                                return -ENOMEM;
                }
                p = *end ? end + 1 : end;
        }
        size_t n = strv_length(pairs);
        if (n > 1)
                qsort(pairs, n, sizeof(char *), compare_strings);
        for (size_t i = 0; i < n; i++)
                if ((i > 0 && buf_puts(out, "&") < 0) || buf_puts(out, pairs[i]) < 0)
                        return -ENOMEM;
        return 0;
}

typedef struct header {
        char *name;   /* lower-case */
        char *value;  /* trimmed, blanks collapsed */
        size_t order;
} header;

static int compare_headers(const void *a, const void *b) {
        const header *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

static int parse_header(const char *line, size_t order, header *ret) {
        const char *colon = strchr(line, ':');
        if (!colon || colon == line)
                return -EBADMSG;
        ret->name = strndup(line, (size_t) (colon - line));
        ret->value = malloc(strlen(colon) + 1);
        ret->order = order;
        if (!ret->name || !ret->value)
                return -ENOMEM;
        for (char *c = ret->name; *c; c++) {
                if (*c == ' ' || *c == '\t')
                        return -EBADMSG;
                *c = (char) tolower((unsigned char) *c);
        }
        size_t n = 0;
        bool blank = false;
        for (const char *v = colon + 1; *v; v++) {
                if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
                        blank = n > 0;
                        continue;
                }
                if (blank)
                        ret->value[n++] = ' ';
                blank = false;
                ret->value[n++] = *v;
        }
        ret->value[n] = 0;
        return 0;
}

static bool name_listed(const char *list, const char *name) {
        size_t n = strlen(name);
        for (const char *p = list; p && *p;) {
                const char *end = strchrnul(p, ';');
                if ((size_t) (end - p) == n && strneq(p, name, n))
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

int sigv4_canonical_request(const char *method, const char *path, const char *query, char *const *headers,
                            const char *signed_names, const char *payload_hash, buf *out,
                            buf *ret_signed_names) {
        _cleanup_free_ char *uri = NULL;
        _cleanup_buf_ buf names = {};
        size_t n = strv_length(headers), m = 0;
        header *h = calloc(n + 1, sizeof(header));
        int r = 0;

        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                header x = {};
                r = parse_header(headers[i], i, &x);
                if (r >= 0 && signed_names && !name_listed(signed_names, x.name))
                        r = 1;
                if (r == 0)
                        h[m++] = x;
                else {
                        free(x.name);
                        free(x.value);
                        r = r > 0 ? 0 : r;
                }
        }
        if (r < 0)
                goto out;
        qsort(h, m, sizeof(header), compare_headers);
        r = reencode(path, strlen(path), true, &uri);
        if (r < 0)
                goto out;
        if (buf_printf(out, "%s\n%s\n", method, *uri ? uri : "/") < 0 || (r = canonical_query(query, out)) < 0 ||
            buf_puts(out, "\n") < 0) {
                r = r < 0 ? r : -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < m; i++) {
                bool same = i > 0 && streq(h[i].name, h[i - 1].name);
                if (same)
                        r = buf_printf(out, ",%s", h[i].value);
                else
                        r = buf_printf(out, "%s%s:%s", i > 0 ? "\n" : "", h[i].name, h[i].value);
                if (r >= 0 && !same)
                        r = buf_printf(&names, "%s%s", names.len ? ";" : "", h[i].name);
                if (r < 0)
                        goto out;
        }
        /* Every signed name must be among the headers. */
        for (const char *p = signed_names; p && *p;) {
                const char *end = strchrnul(p, ';');
                bool found = false;
                for (size_t i = 0; i < m && !found; i++)
                        found = strlen(h[i].name) == (size_t) (end - p) && strneq(h[i].name, p, (size_t) (end - p));
                if (!found) {
                        r = -ENOENT;
                        goto out;
                }
                p = *end ? end + 1 : end;
        }
        if (buf_printf(out, "%s\n%s\n%s", m > 0 ? "\n" : "", signed_names ?: strempty(names.data), payload_hash) < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (ret_signed_names && !signed_names && buf_puts(ret_signed_names, strempty(names.data)) < 0)
                r = -ENOMEM;
out:
        for (size_t i = 0; i < n; i++) {
                free(h[i].name);
                free(h[i].value);
        }
        free(h);
        return r < 0 ? r : 0;
}

int sigv4_signature(const sigv4_credentials *creds, const char *amz_date, const char *canonical_request,
                    char out[SIGV4_SIGNATURE_SIZE]) {
        uint8_t k[SHA256_DIGEST_SIZE], mac[SHA256_DIGEST_SIZE];
        char date[9], creq_hash[SHA256_HEX_SIZE];
        _cleanup_buf_ buf sts = {};
        time_t t;

        if (!creds || !creds->access_key || !creds->secret || !creds->region || !creds->service ||
            parse_date(amz_date, &t) < 0)
                return -EINVAL;
        memcpy(date, amz_date, 8);
        date[8] = 0;
        sha256_hex(canonical_request, strlen(canonical_request), creq_hash);
        if (buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date, creds->region,
                       creds->service, creq_hash) < 0)
                return -ENOMEM;

        size_t slen = strlen(creds->secret);
        char *key = malloc(slen + 5);
        if (!key)
                return -ENOMEM;
        memcpy(key, "AWS4", 4);
        memcpy(key + 4, creds->secret, slen + 1);
        hmac_sha256(key, slen + 4, date, 8, k);
        explicit_bzero(key, slen + 4);
        free(key);
        hmac_sha256(k, sizeof(k), creds->region, strlen(creds->region), k);
        hmac_sha256(k, sizeof(k), creds->service, strlen(creds->service), k);
        hmac_sha256(k, sizeof(k), "aws4_request", 12, k);
        hmac_sha256(k, sizeof(k), sts.data, sts.len, mac);
        explicit_bzero(k, sizeof(k));
        hex_encode(mac, sizeof(mac), out);
        return 0;
}

int sigv4_authorization(const sigv4_credentials *creds, const char *amz_date, const char *method,
                        const char *path, const char *query, char *const *headers, const char *payload_hash,
                        buf *out) {
        _cleanup_buf_ buf creq = {}, names = {};
        char sig[SIGV4_SIGNATURE_SIZE];
        int r;

        r = sigv4_canonical_request(method, path, query, headers, NULL, payload_hash, &creq, &names);
        if (r < 0)
                return r;
        r = sigv4_signature(creds, amz_date, creq.data, sig);
        if (r < 0)
                return r;
        return buf_printf(out, SIGV4_ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                          creds->access_key, amz_date, creds->region, creds->service, strempty(names.data), sig) < 0
                       ? -ENOMEM : 0;
}

int sigv4_presign(const sigv4_credentials *creds, const char *amz_date, const char *method, const char *url,
                  long expires_s, char **ret) {
        _cleanup_buf_ buf credential = {}, query = {}, creq = {}, host_header = {}, result = {};
        char sig[SIGV4_SIGNATURE_SIZE];
        const char *scheme_end = strstr(url, "://");
        int r;

        if (!scheme_end || expires_s < 1 || expires_s > SIGV4_MAX_EXPIRES_S || !creds || !creds->access_key ||
            !creds->region || !creds->service || strlen(strempty(amz_date)) != SIGV4_DATE_SIZE - 1)
                return -EINVAL;
        const char *host = scheme_end + 3, *path = strchr(host, '/');
        if (!path || path == host)
                return -EINVAL;
        const char *q = strchr(path, '?');
        size_t path_len = q ? (size_t) (q - path) : strlen(path);
        _cleanup_free_ char *path_only = strndup(path, path_len);
        if (!path_only)
                return -ENOMEM;

        if (buf_printf(&credential, "%s/%.8s/%s/%s/aws4_request", creds->access_key, amz_date, creds->region,
                       creds->service) < 0 ||
            buf_printf(&query, "%s%sX-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=", q ? q + 1 : "",
                       q && q[1] ? "&" : "") < 0 ||
            sigv4_uri_encode(credential.data, credential.len, false, &query) < 0 ||
            buf_printf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host", amz_date, expires_s) < 0 ||
            buf_printf(&host_header, "Host: %.*s", (int) (path - host), host) < 0)
                return -ENOMEM;
        char *headers[] = { host_header.data, NULL };
        r = sigv4_canonical_request(method, path_only, query.data, headers, "host", SIGV4_UNSIGNED_PAYLOAD, &creq, NULL);
        if (r >= 0)
                r = sigv4_signature(creds, amz_date, creq.data, sig);
        if (r < 0)
                return r;
        if (buf_printf(&result, "%.*s?%s&X-Amz-Signature=%s", (int) (path - url) + (int) path_len, url, query.data,
                       sig) < 0)
                return -ENOMEM;
        *ret = buf_steal(&result);
        return *ret ? 0 : -ENOMEM;
}

static const char *find_header(char *const *headers, const char *name) {
        size_t n = strlen(name);
        for (char *const *h = headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':') {
                        const char *v = *h + n + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        return NULL;
}

/* "KEY/YYYYMMDD/REGION/SERVICE/aws4_request" against creds and the request's date. */
static int check_credential(const sigv4_credentials *creds, const char *credential, const char *amz_date, buf *err) {
        _cleanup_strv_free_ char **parts = NULL;
        if (strv_split(credential, "/", &parts) < 0)
                return -ENOMEM;
        if (strv_length(parts) != 5 || !streq(parts[4], "aws4_request")) {
                buf_printf(err, "malformed credential '%s'", credential);
                return -EBADMSG;
        }
        if (!streq(parts[0], creds->access_key)) {
                buf_printf(err, "unknown access key '%s'", parts[0]);
                return -EPERM;
        }
        if (!strneq(parts[1], amz_date, 8) || strlen(parts[1]) != 8) {
                buf_printf(err, "the credential's date %s is not the request's %.8s", parts[1], amz_date);
                return -EBADMSG;
        }
        if (!streq(parts[2], creds->region) || !streq(parts[3], creds->service)) {
                buf_printf(err, "the credential is for region %s and service %s, expected %s and %s", parts[2],
                           parts[3], creds->region, creds->service);
                return -EBADMSG;
        }
        return 0;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static int parse_authorization(const char *auth, char **credential, char **signed_names, char **signature) {
        const char *p = startswith(auth, SIGV4_ALGORITHM " ");
        if (!p)
                return -EBADMSG;
        while (*p) {
                while (*p == ' ' || *p == ',')
                        p++;
                const char *end = strchrnul(p, ','), *eq = memchr(p, '=', (size_t) (end - p));
                if (!eq)
                        return -EBADMSG;
                size_t vlen = (size_t) (end - eq - 1);
                while (vlen > 0 && eq[vlen] == ' ')
                        vlen--;
                char **slot = NULL;
                if ((size_t) (eq - p) == 10 && strneq(p, "Credential", 10))
                        slot = credential;
                else if ((size_t) (eq - p) == 13 && strneq(p, "SignedHeaders", 13))
                        slot = signed_names;
                else if ((size_t) (eq - p) == 9 && strneq(p, "Signature", 9))
                        slot = signature;
                else
                        return -EBADMSG;
                if (*slot)
                        return -EBADMSG;
                *slot = strndup(eq + 1, vlen);
                if (!*slot)
                        return -ENOMEM;
                p = end;
        }
        return *credential && *signed_names && *signature ? 0 : -EBADMSG;
}

int sigv4_verify(const sigv4_credentials *creds, const char *method, const char *raw_path, const char *query,
                 char *const *headers, const char *body_sha256, time_t now, buf *err) {
        _cleanup_free_ char *credential = NULL, *signed_names = NULL, *signature = NULL, *amz_date = NULL;
        _cleanup_free_ char *algorithm = NULL, *expires = NULL;
        _cleanup_buf_ buf creq = {}, scratch = {};
        const char *payload_hash;
        char want[SIGV4_SIGNATURE_SIZE];
        time_t t;
        int r;

        if (!err)
                err = &scratch;
        algorithm = http_server_query_lookup(query, "X-Amz-Algorithm");
        if (algorithm) {
                /* The query form (a presigned URL). */
                credential = http_server_query_lookup(query, "X-Amz-Credential");
                amz_date = http_server_query_lookup(query, "X-Amz-Date");
                expires = http_server_query_lookup(query, "X-Amz-Expires");
                signed_names = http_server_query_lookup(query, "X-Amz-SignedHeaders");
                signature = http_server_query_lookup(query, "X-Amz-Signature");
                if (!streq(algorithm, SIGV4_ALGORITHM) || !credential || !amz_date || !expires || !signed_names ||
                    !signature) {
                        buf_printf(err, "a presigned URL needs X-Amz-Algorithm=" SIGV4_ALGORITHM
                                   ", X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature");
                        return -EBADMSG;
                }
                char *end;
                errno = 0;
                long e = strtol(expires, &end, 10);
                if (errno || end == expires || *end || e < 1 || e > SIGV4_MAX_EXPIRES_S) {
                        buf_printf(err, "X-Amz-Expires must be 1..%d seconds", SIGV4_MAX_EXPIRES_S);
                        return -EBADMSG;
                }
                if (parse_date(amz_date, &t) < 0) {
                        buf_printf(err, "malformed X-Amz-Date '%s'", amz_date);
                        return -EBADMSG;
                }
                if (now > t + e || t > now + SIGV4_MAX_SKEW_S) {
                        buf_printf(err, now > t + e ? "request has expired" : "request is not valid yet");
                        return -ETIME;
                }
                payload_hash = SIGV4_UNSIGNED_PAYLOAD;
        } else {
                const char *auth = find_header(headers, "authorization");
                if (!auth) {
                        buf_printf(err, "no Authorization header and no presigned query");
                        return -ENOKEY;
                }
                r = parse_authorization(auth, &credential, &signed_names, &signature);
                if (r < 0) {
                        if (r == -EBADMSG)
                                buf_printf(err, "malformed Authorization header (expected " SIGV4_ALGORITHM
                                           " Credential=..., SignedHeaders=..., Signature=...)");
                        return r;
                }
                const char *d = find_header(headers, "x-amz-date");
                if (!d || parse_date(d, &t) < 0) {
                        buf_printf(err, "missing or malformed X-Amz-Date header");
                        return -EBADMSG;
                }
                amz_date = strdup(d);
                if (!amz_date)
                        return -ENOMEM;
                if (t > now + SIGV4_MAX_SKEW_S || t < now - SIGV4_MAX_SKEW_S) {
                        buf_printf(err, "the difference between the request time and the server's time is too large");
                        return -ETIME;
                }
                payload_hash = find_header(headers, "x-amz-content-sha256");
                if (!payload_hash) {
                        buf_printf(err, "missing X-Amz-Content-Sha256 header");
                        return -EBADMSG;
                }
                if (!streq(payload_hash, SIGV4_UNSIGNED_PAYLOAD) && !streq(payload_hash, strempty(body_sha256))) {
                        buf_printf(err, "the X-Amz-Content-Sha256 header does not match the body received");
                        return -EILSEQ;
                }
                if (!name_listed(signed_names, "x-amz-content-sha256") || !name_listed(signed_names, "x-amz-date")) {
                        buf_printf(err, "SignedHeaders must include x-amz-content-sha256 and x-amz-date");
                        return -EBADMSG;
                }
        }
        r = check_credential(creds, credential, amz_date, err);
        if (r < 0)
                return r;
        if (!name_listed(signed_names, "host")) {
                buf_printf(err, "SignedHeaders must include host");
                return -EBADMSG;
        }
        r = sigv4_canonical_request(method, raw_path, query, headers, signed_names, payload_hash, &creq, NULL);
        if (r == -ENOENT || r == -EBADMSG) {
                buf_printf(err, "a signed header is missing or malformed");
                return -EBADMSG;
        }
        if (r >= 0)
                r = sigv4_signature(creds, amz_date, creq.data, want);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;
        if (strlen(signature) != SIGV4_SIGNATURE_SIZE - 1 || CRYPTO_memcmp(want, signature, SIGV4_SIGNATURE_SIZE - 1)) {
                buf_printf(err, "The request signature we calculated does not match the signature you provided");
                return -EACCES;
        }
        return 0;
}
