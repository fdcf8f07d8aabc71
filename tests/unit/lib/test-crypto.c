#include <stdbool.h>
#include <stdio.h>

#include "check.h"
#include "crypto.h"
#include "fs.h"

static void check_sha256_hex(const void *data, size_t len, const char *expected) {
        char hex[SHA256_HEX_SIZE];
        sha256_hex(data, len, hex);
        CHECK_STREQ(hex, expected);
}

static void test_sha256(void) {
        check_sha256_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check_sha256_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

        uint8_t md[SHA256_DIGEST_SIZE];
        sha256("abc", 3, md);
        CHECK(md[0] == 0xba && md[31] == 0xad);

        char hex[7];
        hex_encode((const uint8_t *) "\x00\xff\x10", 3, hex);
        CHECK_STREQ(hex, "00ff10");

        char sep[9];
        hex_encode_sep((const uint8_t *) "\x39\xdd\x2e", 3, ':', sep);
        CHECK_STREQ(sep, "39:dd:2e");
        hex_encode_sep((const uint8_t *) "\x0a", 1, ':', sep);
        CHECK_STREQ(sep, "0a");
        hex_encode_sep(NULL, 0, ':', sep);
        CHECK_STREQ(sep, "");
}

static void test_sha256_incremental(void) {
        char a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];

        sha256_ctx *c = sha256_new();
        CHECK(c);
        sha256_update(c, "a", 1);
        sha256_update(c, "", 0);
        sha256_update(c, "bc", 2);
        sha256_final_hex(c, a);
        CHECK_STREQ(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        /* update_str is an 8-byte big-endian length followed by the bytes. */
        c = sha256_new();
        CHECK(c);
        sha256_update_str(c, "abc");
        sha256_final_hex(c, a);
        sha256_hex("\0\0\0\0\0\0\0\3abc", 11, b);
        CHECK_STREQ(a, b);

        /* Different splits of the same bytes give different keys. */
        c = sha256_new();
        sha256_update_str(c, "ab");
        sha256_update_str(c, "c");
        sha256_final_hex(c, a);
        c = sha256_new();
        sha256_update_str(c, "a");
        sha256_update_str(c, "bc");
        sha256_final_hex(c, b);
        CHECK(!streq(a, b));

        /* NULL differs from "". */
        c = sha256_new();
        sha256_update_str(c, NULL);
        sha256_final_hex(c, a);
        c = sha256_new();
        sha256_update_str(c, "");
        sha256_final_hex(c, b);
        CHECK(!streq(a, b));

        sha256_free(sha256_new());
        sha256_free(NULL);
}

static void test_sha256_file(void) {
        char path[] = "/tmp/test-crypto-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);

        /* One million 'a' (FIPS 180-2 vector): larger than the read chunk. */
        char *million = malloc(1000000);
        CHECK(million);
        memset(million, 'a', 1000000);
        CHECK_OK(write_file_atomic(path, million, 1000000, 0600, (uid_t) -1, (gid_t) -1));
        free(million);

        char hex[SHA256_HEX_SIZE];
        CHECK_OK(sha256_file_hex(path, hex));
        CHECK_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        char hex512[SHA512_HEX_SIZE];
        CHECK_OK(sha512_file_hex(path, hex512));
        CHECK_STREQ(hex512, "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
                            "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
        CHECK(unlink(path) == 0);
        CHECK(sha256_file_hex(path, hex) == -ENOENT);
        CHECK(sha512_file_hex(path, hex512) == -ENOENT);
}

/* FIPS 180-2 vectors, from files. */
static void test_sha512_file(void) {
        char path[] = "/tmp/test-crypto-XXXXXX", hex[SHA512_HEX_SIZE];
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);
        CHECK_OK(sha512_file_hex(path, hex));
        CHECK_STREQ(hex, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                         "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
        CHECK_OK(write_file_atomic(path, "abc", 3, 0600, (uid_t) -1, (gid_t) -1));
        CHECK_OK(sha512_file_hex(path, hex));
        CHECK_STREQ(hex, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                         "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
        CHECK(unlink(path) == 0);
}

static void test_hmac(void) {
        uint8_t mac[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];

        /* RFC 4231 test case 1 */
        uint8_t key1[20];
        memset(key1, 0x0b, sizeof(key1));
        hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac);
        hex_encode(mac, sizeof(mac), hex);
        CHECK_STREQ(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

        /* RFC 4231 test case 2 */
        hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
        hex_encode(mac, sizeof(mac), hex);
        CHECK_STREQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

        /* RFC 4231 test case 6: key longer than the block size is hashed first. */
        uint8_t key6[131];
        memset(key6, 0xaa, sizeof(key6));
        const char *data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
        hmac_sha256(key6, sizeof(key6), data6, strlen(data6), mac);
        hex_encode(mac, sizeof(mac), hex);
        CHECK_STREQ(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

        /* Empty key and message (well-known value). */
        hmac_sha256(NULL, 0, NULL, 0, mac);
        hex_encode(mac, sizeof(mac), hex);
        CHECK_STREQ(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void check_b64(const char *plain, const char *encoded) {
        char *e = base64_encode(plain, strlen(plain));
        CHECK_STREQ(e, encoded);
        free(e);

        uint8_t *d;
        size_t len;
        CHECK_OK(base64_decode(encoded, &d, &len));
        CHECK(len == strlen(plain));
        CHECK(memcmp(d, plain, len) == 0);
        CHECK(d[len] == 0);
        free(d);
}

static void test_base64(void) {
        /* RFC 4648 section 10 */
        check_b64("", "");
        check_b64("f", "Zg==");
        check_b64("fo", "Zm8=");
        check_b64("foo", "Zm9v");
        check_b64("foob", "Zm9vYg==");
        check_b64("fooba", "Zm9vYmE=");
        check_b64("foobar", "Zm9vYmFy");

        /* Binary round trips over every length up to 300, including all byte values. */
        uint8_t data[300];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 7 + 3);
        for (size_t n = 0; n <= sizeof(data); n++) {
                char *e = base64_encode(data, n);
                CHECK(e);
                CHECK(strlen(e) == (n + 2) / 3 * 4);
                uint8_t *d;
                size_t len;
                CHECK_OK(base64_decode(e, &d, &len));
                CHECK(len == n);
                CHECK(memcmp(d, data, n) == 0);
                free(d);
                free(e);
        }
        char *e = base64_encode("\xfb\xff", 2);
        CHECK_STREQ(e, "+/8=");
        free(e);

        const char *bad[] = {
                "Zg=", "Zg", "Z", "Zm9v\n", " Zm9v", "Zm9 ", "Zm9v\r\n", "Zh==", "Zm9=",
                "Z===", "====", "Zm=v", "Zm9*", "=Zm9", "Zg==Zg==", "Zm9-", "Zm9_",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t *d = (uint8_t *) "untouched";
                if (base64_decode(bad[i], &d, NULL) != -EINVAL) {
                        fprintf(stderr, "accepted bad base64 \"%s\"\n", bad[i]);
                        CHECK(false);
                }
                CHECK_STREQ((char *) d, "untouched");
        }
}

static void test_random(void) {
        uint8_t a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
        CHECK_OK(random_bytes(a, sizeof(a)));
        CHECK_OK(random_bytes(b, sizeof(b)));
        CHECK(memcmp(a, b, sizeof(a)) != 0);
        CHECK(memcmp(a, zero, sizeof(a)) != 0);
        CHECK_OK(random_bytes(a, 0));
        CHECK(random_u64() != random_u64());

        /* Version 4, RFC 4122 variant, lower case, and a new one each call. */
        char u[UUID_STRING_SIZE], v[UUID_STRING_SIZE];
        random_uuid(u);
        random_uuid(v);
        CHECK(strlen(u) == 36);
        for (size_t i = 0; i < 36; i++)
                CHECK(i == 8 || i == 13 || i == 18 || i == 23 ? u[i] == '-' : !!strchr("0123456789abcdef", u[i]));
        CHECK(u[14] == '4');
        CHECK(!!strchr("89ab", u[19]));
        CHECK(!streq(u, v));
}

int main(void) {
        test_sha256();
        test_sha256_incremental();
        test_sha256_file();
        test_sha512_file();
        test_hmac();
        test_base64();
        test_random();
        return 0;
}
