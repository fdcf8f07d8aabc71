/* Hashes, MACs, base64 and randomness over OpenSSL; random UUIDs over libuuid. The void hash functions cannot fail short of
 * OpenSSL running out of memory, in which case they abort(). */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */
#define SHA512_HEX_SIZE 129 /* 128 hex digits + NUL */

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);
/* Lower-case hex of data's sha256 into out (65 bytes with NUL). */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_SIZE]);
/* sha256 of a file's content, streamed. Returns 0 or -errno. */
int sha256_file_hex(const char *path, char out[SHA256_HEX_SIZE]);
/* sha512 of a file's content, streamed (what Kubernetes publishes for its release tarballs).
 * Returns 0 or -errno. */
int sha512_file_hex(const char *path, char out[SHA512_HEX_SIZE]);
/* Lower-case hex of len bytes into out, which must hold 2*len+1 bytes; always NUL-terminated. */
void hex_encode(const uint8_t *data, size_t len, char *out /* 2*len+1 */);
/* Like hex_encode, with sep between bytes ("39:dd:2e"): out must hold 3*len bytes, or 1 when len
 * is 0; always NUL-terminated. */
void hex_encode_sep(const uint8_t *data, size_t len, char sep, char *out /* max(3*len, 1) */);

/* Incremental sha256 for cache keys built from many parts. */
typedef struct sha256_ctx sha256_ctx;
/* Returns a new context or NULL on ENOMEM. */
sha256_ctx *sha256_new(void);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Feed a string with its length first (8 bytes big-endian), so ("ab","c") and ("a","bc") hash
 * differently. NULL is accepted and hashes differently from "". */
void sha256_update_str(sha256_ctx *c, const char *s);
/* Finish into hex and free the context. */
void sha256_final_hex(sha256_ctx *c, char out[SHA256_HEX_SIZE]);
/* Free without finishing (error paths). Accepts NULL. */
void sha256_free(sha256_ctx *c);

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t out[SHA256_DIGEST_SIZE]);

/* Standard base64 with padding, no newlines. Returns a new NUL-terminated string or NULL. */
char *base64_encode(const void *data, size_t len);
/* Decode standard base64 (padding required; whitespace and non-zero padding bits rejected).
 * Returns 0 and a new buffer (NUL-terminated for convenience, length in ret_len, which may be
 * NULL), -EINVAL for bad input, -ENOMEM. */
int base64_decode(const char *s, uint8_t **ret, size_t *ret_len);

/* Fill with cryptographically strong random bytes. Returns 0 or -EIO. */
int random_bytes(void *p, size_t n);
/* Random 64-bit value for jitter (not for secrets). */
uint64_t random_u64(void);

#define UUID_STRING_SIZE 37 /* 36 characters + NUL */
/* A random (version 4) UUID in lower-case text form, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", from
 * libuuid (uuid_generate_random, getrandom()). Cannot fail: libuuid falls back to a weaker source
 * by itself when the kernel RNG is unavailable, so use it for identifiers, never for secrets. */
void random_uuid(char ret[UUID_STRING_SIZE]);

/* Whether key is the private key of cert: the public halves are equal (X509_check_private_key)
 * and the key is whole, its private half matching its public half (a key file whose private
 * part is damaged but whose stored public part is intact passes the first check alone, and
 * signs nothing the certificate verifies). */
bool crypto_cert_key_match(X509 *cert, EVP_PKEY *key);
