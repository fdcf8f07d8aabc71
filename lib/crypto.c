#include "crypto.h"

#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "io-util.h"
#include "macro.h"

struct sha256_ctx {
        EVP_MD_CTX *md;
};

/* OpenSSL's digest calls fail only when memory allocation fails, and these functions have no
 * error return (callers hash cache keys and signatures inline), so that is fatal. */
static void check_openssl(int ok) {
        if (!ok)
                abort();
}

void hex_encode(const uint8_t *data, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[data[i] >> 4];
                out[2 * i + 1] = digits[data[i] & 15];
        }
        out[2 * len] = 0;
}

void hex_encode_sep(const uint8_t *data, size_t len, char sep, char *out) {
        char *p = out;
        for (size_t i = 0; i < len; i++) {
                if (i > 0)
                        *p++ = sep;
                hex_encode(data + i, 1, p);
                p += 2;
        }
        *p = 0;
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]) {
        check_openssl(EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL));
}

void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_SIZE]) {
        uint8_t md[SHA256_DIGEST_SIZE];
        sha256(data, len, md);
        hex_encode(md, sizeof(md), out);
}

sha256_ctx *sha256_new(void) {
        sha256_ctx *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->md = EVP_MD_CTX_new();
        if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL)) {
                sha256_free(c);
                return NULL;
        }
        return c;
}

void sha256_update(sha256_ctx *c, const void *data, size_t len) {
        check_openssl(EVP_DigestUpdate(c->md, data, len));
}

void sha256_update_str(sha256_ctx *c, const char *s) {
        /* 8-byte big-endian length, then the bytes. NULL gets a length no string can have, so an
         * absent value and "" hash differently. */
        uint64_t n = s ? strlen(s) : UINT64_MAX;
        uint8_t prefix[8];
        for (int i = 0; i < 8; i++)
                prefix[i] = (uint8_t) (n >> (56 - 8 * i));
        sha256_update(c, prefix, sizeof(prefix));
        if (s)
                sha256_update(c, s, (size_t) n);
}

void sha256_final_hex(sha256_ctx *c, char out[SHA256_HEX_SIZE]) {
        uint8_t md[SHA256_DIGEST_SIZE];
        check_openssl(EVP_DigestFinal_ex(c->md, md, NULL));
        hex_encode(md, sizeof(md), out);
        sha256_free(c);
}

void sha256_free(sha256_ctx *c) {
        if (!c)
                return;
        EVP_MD_CTX_free(c->md);
        free(c);
}

/* The digest of a file's content under md, streamed, as lower-case hex into out (2 * the digest
 * size + 1 bytes). Returns 0 or -errno. */
static int digest_file_hex(const EVP_MD *md, const char *path, char *out) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!c || !EVP_DigestInit_ex(c, md, NULL)) {
                EVP_MD_CTX_free(c);
                return -ENOMEM;
        }
        uint8_t chunk[16384], digest[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        for (;;) {
                ssize_t n = loop_read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        EVP_MD_CTX_free(c);
                        return (int) n;
                }
                if (n == 0)
                        break;
                check_openssl(EVP_DigestUpdate(c, chunk, (size_t) n));
        }
        check_openssl(EVP_DigestFinal_ex(c, digest, &len));
        EVP_MD_CTX_free(c);
        hex_encode(digest, len, out);
        return 0;
}

int sha256_file_hex(const char *path, char out[SHA256_HEX_SIZE]) {
        return digest_file_hex(EVP_sha256(), path, out);
}

int sha512_file_hex(const char *path, char out[SHA512_HEX_SIZE]) {
        return digest_file_hex(EVP_sha512(), path, out);
}

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t out[SHA256_DIGEST_SIZE]) {
        static const uint8_t empty[1];
        if (key_len > INT_MAX)
                abort(); /* HMAC() takes an int; no caller has keys anywhere near this */
        unsigned out_len = 0;
        check_openssl(HMAC(EVP_sha256(), key_len ? key : empty, (int) key_len,
                           len ? data : empty, len, out, &out_len) != NULL);
        check_openssl(out_len == SHA256_DIGEST_SIZE);
}

char *base64_encode(const void *data, size_t len) {
        if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT_MAX)
                return NULL;
        size_t out_len = (len + 2) / 3 * 4;
        unsigned char *out = malloc(out_len + 1);
        if (!out)
                return NULL;
        int n = EVP_EncodeBlock(out, data ? data : (const void *) "", (int) len);
        out[n] = 0;
        return (char *) out;
}

static int base64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t len = strlen(s);
        if (len % 4 != 0 || len > INT_MAX)
                return -EINVAL;

        /* Validate first: EVP_DecodeBlock skips surrounding whitespace, accepts misplaced '=' in
         * some positions and ignores non-zero padding bits. Only canonical base64 passes here. */
        size_t pad = 0;
        if (len >= 4 && s[len - 1] == '=')
                pad = s[len - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < len - pad; i++)
                if (base64_value(s[i]) < 0)
                        return -EINVAL;
        if (pad == 2 && (base64_value(s[len - 3]) & 0x0f) != 0)
                return -EINVAL;
        if (pad == 1 && (base64_value(s[len - 2]) & 0x03) != 0)
                return -EINVAL;

        uint8_t *out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int n = len ? EVP_DecodeBlock(out, (const unsigned char *) s, (int) len) : 0;
        if (n < 0 || (size_t) n != len / 4 * 3) {
                free(out);
                return -EINVAL;
        }
        /* EVP_DecodeBlock counts the bytes the padding stands for; drop them. */
        size_t out_len = (size_t) n - pad;
        out[out_len] = 0;
        *ret = out;
        if (ret_len)
                *ret_len = out_len;
        return 0;
}

int random_bytes(void *p, size_t n) {
        uint8_t *q = p;
        while (n > 0) {
                int chunk = n > INT_MAX ? INT_MAX : (int) n;
                if (RAND_bytes(q, chunk) != 1)
                        return -EIO;
                q += chunk;
                n -= (size_t) chunk;
        }
        return 0;
}

uint64_t random_u64(void) {
        uint64_t v;
        if (random_bytes(&v, sizeof(v)) == 0)
                return v;
        /* Only for jitter: if the RNG is unavailable, the clock is random enough. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t) ts.tv_sec ^ (uint64_t) getpid();
}

void random_uuid(char ret[UUID_STRING_SIZE]) {
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, ret);
}

bool crypto_cert_key_match(X509 *cert, EVP_PKEY *key) {
        if (X509_check_private_key(cert, key) != 1)
                return false;
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        int r = c ? EVP_PKEY_pairwise_check(c) : 0;
        EVP_PKEY_CTX_free(c);
        return r == 1;
}
