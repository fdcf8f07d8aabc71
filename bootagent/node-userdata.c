#include "node-userdata.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

void node_userdata_done(node_userdata *u) {
        kube_bootstrap_token_wipe(&u->token);
        free(u->endpoint);
        free(u->ca_pin);
        free(u->node_name);
        *u = (node_userdata){ 0 };
}

static bool label_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

bool node_userdata_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool alnum = label_char(s[i]) && s[i] != '-';
                if (s[i] == '.' || s[i] == '-') {
                        /* not first or last, and a '.' only between alphanumerics */
                        if (i == 0 || i == n - 1)
                                return false;
                        if (s[i] == '.' && (s[i - 1] == '.' || s[i - 1] == '-' || s[i + 1] == '-' || s[i + 1] == '.'))
                                return false;
                } else if (!alnum)
                        return false;
        }
        return true;
}

/* A DNS host name: letters (either case), digits, '-', '.', 1..253 bytes, no empty label. */
static bool host_name_valid(const char *s, size_t n) {
        if (n < 1 || n > 253 || s[0] == '.' || s[n - 1] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = (char) tolower((unsigned char) s[i]);
                if (!label_char(c) && c != '.')
                        return false;
                if (c == '.' && s[i + 1] == '.')
                        return false;
        }
        return true;
}

bool node_userdata_endpoint_valid(const char *s) {
        const char *h = startswith(s, "https://");
        if (!h)
                return false;
        const char *colon, *host_end;
        char host[254];
        if (*h == '[') {
                host_end = strchr(h, ']');
                if (!host_end || host_end[1] != ':' || (size_t) (host_end - h - 1) >= sizeof(host))
                        return false;
                memcpy(host, h + 1, (size_t) (host_end - h - 1));
                host[host_end - h - 1] = 0;
                struct in6_addr a6;
                if (inet_pton(AF_INET6, host, &a6) != 1)
                        return false;
                colon = host_end + 1;
        } else {
                colon = strrchr(h, ':');
                if (!colon || !host_name_valid(h, (size_t) (colon - h)))
                        return false;
                /* All digits and dots: must then be a dotted quad. */
                size_t n = (size_t) (colon - h);
                if (strspn(h, "0123456789.") >= n) {
                        memcpy(host, h, n);
                        host[n] = 0;
                        struct in_addr a4;
                        if (inet_pton(AF_INET, host, &a4) != 1)
                                return false;
                }
        }
        unsigned long port;
        return parse_ulong(colon + 1, 1, 65535, &port) >= 0;
}

#define FAIL(line, ...)                                                            \
        do {                                                                       \
                if (err) {                                                         \
                        (void) buf_printf(err, "user-data line %u: ", (line));     \
                        (void) buf_printf(err, __VA_ARGS__);                       \
                }                                                                  \
                r = -EINVAL;                                                       \
                goto out;                                                          \
        } while (0)

int node_userdata_parse(const char *text, size_t len, node_userdata *ret, buf *err) {
        node_userdata u = { 0 };
        char *copy = NULL;
        bool have_token = false;
        unsigned line = 0;
        int r;

        if (len > NODE_USERDATA_MAX) {
                if (err)
                        (void) buf_printf(err, "user-data: %zu bytes, more than %u", len, NODE_USERDATA_MAX);
                return -EINVAL;
        }
        if (memchr(text, 0, len)) {
                if (err)
                        (void) buf_puts(err, "user-data: contains a NUL byte");
                return -EINVAL;
        }
        copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;
        for (char *next = copy; next;) {
                char *s = next, *nl = strchr(s, '\n');
                if (nl)
                        *nl = 0;
                next = nl ? nl + 1 : NULL;
                line++;
                s = parse_strip(s);
                if (*s == 0 || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        FAIL(line, "expected 'key=value'");
                *eq = 0;
                char *key = parse_strip(s), *value = parse_strip(eq + 1);
                if (streq(key, "kube_token")) {
                        if (have_token)
                                FAIL(line, "kube_token given twice");
                        /* never the value: it is the secret */
                        if (kube_bootstrap_token_parse(value, &u.token) < 0)
                                FAIL(line, "kube_token is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})");
                        have_token = true;
                } else if (streq(key, "kube_endpoint")) {
                        if (u.endpoint)
                                FAIL(line, "kube_endpoint given twice");
                        if (strlen(value) > 300 || !node_userdata_endpoint_valid(value))
                                FAIL(line, "kube_endpoint '%.300s' is not https://<host>:<port>", value);
                        if (!(u.endpoint = strdup(value))) {
                                r = -ENOMEM;
                                goto out;
                        }
                } else if (streq(key, "kube_ca_pin")) {
                        uint8_t d[32];
                        if (u.ca_pin)
                                FAIL(line, "kube_ca_pin given twice");
                        if (kube_bootstrap_pin_parse(value, d) < 0)
                                FAIL(line, "kube_ca_pin '%.100s' is not sha256:<64 hex digits>", value);
                        for (char *p = value; *p; p++)
                                *p = (char) tolower((unsigned char) *p);
                        if (!(u.ca_pin = strdup(value))) {
                                r = -ENOMEM;
                                goto out;
                        }
                } else if (streq(key, "node_name")) {
                        if (u.node_name)
                                FAIL(line, "node_name given twice");
                        if (!node_userdata_name_valid(value))
                                FAIL(line, "node_name '%.253s' is not a DNS-1123 subdomain", value);
                        if (!(u.node_name = strdup(value))) {
                                r = -ENOMEM;
                                goto out;
                        }
                } else
                        FAIL(line, "unknown key '%.64s'", key);
        }
        const char *missing = !have_token ? "kube_token" : !u.endpoint ? "kube_endpoint" : !u.ca_pin ? "kube_ca_pin" : NULL;
        if (missing) {
                if (err)
                        (void) buf_printf(err, "user-data: missing %s", missing);
                r = -EINVAL;
                goto out;
        }
        *ret = u;
        r = 0;
        goto wipe;
out:
        node_userdata_done(&u);
wipe:
        /* the copy holds the token, cut into pieces by the NULs put in above */
        explicit_bzero(copy, len);
        free(copy);
        return r;
}
