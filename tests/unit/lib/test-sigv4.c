/* AWS SigV4: vectors of the AWS SigV4 test suite (aws-sig-v4-test-suite: get-vanilla,
 * get-vanilla-query-order-key-case, post-vanilla, post-header-value-case, get-header-value-trim,
 * get-unreserved, post-x-www-form-urlencoded) and the three examples of the S3 documentation
 * ("Authenticating Requests: Using the Authorization Header" GET and PUT, "Using Query
 * Parameters" presigned GET), byte for byte; then verification of good, tampered, expired,
 * skewed and malformed requests in both forms. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "crypto.h"
#include "sigv4.h"

static const sigv4_credentials suite = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1",
                                         "service" };
static const sigv4_credentials s3doc = { "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                         "us-east-1", "s3" };

#define SCOPE "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

typedef struct vector {
        const char *name, *method, *path, *query;
        const char *headers[6];
        const char *payload;
        const char *authorization;
} vector;

static const vector vectors[] = {
        { "get-vanilla", "GET", "/", NULL, { "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;x-amz-date, "
          "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        { "get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1",
          { "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;x-amz-date, "
          "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
        { "post-vanilla", "POST", "/", NULL, { "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;x-amz-date, "
          "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
        { "post-header-value-case", "POST", "/", NULL,
          { "Host:example.amazonaws.com", "My-Header1:VALUE1", "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;my-header1;x-amz-date, "
          "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
        { "get-header-value-trim", "GET", "/", NULL,
          { "Host:example.amazonaws.com", "My-Header1: value1", "My-Header2: \"a   b   c\"",
            "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
          "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
        { "get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL,
          { "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z" }, "",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=host;x-amz-date, "
          "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
        { "post-x-www-form-urlencoded", "POST", "/", NULL,
          { "Content-Type:application/x-www-form-urlencoded", "Host:example.amazonaws.com",
            "X-Amz-Date:20150830T123600Z" }, "Param1=value1",
          SIGV4_ALGORITHM " " SCOPE "SignedHeaders=content-type;host;x-amz-date, "
          "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
};

static void test_suite_vectors(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const vector *v = &vectors[i];
                _cleanup_buf_ buf auth = {};
                char hash[SHA256_HEX_SIZE];
                sha256_hex(v->payload, strlen(v->payload), hash);
                CHECK_OK(sigv4_authorization(&suite, "20150830T123600Z", v->method, v->path, v->query,
                                             (char *const *) v->headers, hash, &auth));
                if (!streq(auth.data, v->authorization))
                        fprintf(stderr, "%s:\n  got  %s\n  want %s\n", v->name, auth.data, v->authorization);
                CHECK_STREQ(auth.data, v->authorization);
        }
}

static void test_canonical_request(void) {
        /* The suite's canonical request of get-vanilla-query-order-key-case. */
        const char *headers[] = { "X-Amz-Date:20150830T123600Z", "Host:example.amazonaws.com", NULL };
        _cleanup_buf_ buf creq = {}, names = {};
        CHECK_OK(sigv4_canonical_request("GET", "/", "Param2=value2&Param1=value1", (char *const *) headers, NULL,
                                         SIGV4_EMPTY_SHA256, &creq, &names));
        CHECK_STREQ(creq.data, "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
                               "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" SIGV4_EMPTY_SHA256);
        CHECK_STREQ(names.data, "host;x-amz-date");

        /* Query values are decoded then encoded again: %2f and / give the same; '+' stays '+'
         * (as %2B); a name without '=' has an empty value; repeated names sort by value. */
        buf_clear(&creq);
        CHECK_OK(sigv4_canonical_request("GET", "/a%20b/c~d", "b=x/y&a&b=%41&c=1+2", (char *const *) headers, "host",
                                         SIGV4_UNSIGNED_PAYLOAD, &creq, NULL));
        CHECK_STREQ(creq.data, "GET\n/a%20b/c~d\na=&b=A&b=x%2Fy&c=1%2B2\nhost:example.amazonaws.com\n\nhost\n"
                               SIGV4_UNSIGNED_PAYLOAD);

        /* A signed name that is not among the headers; a malformed escape. */
        buf_clear(&creq);
        CHECK(sigv4_canonical_request("GET", "/", NULL, (char *const *) headers, "host;range", SIGV4_EMPTY_SHA256,
                                      &creq, NULL) == -ENOENT);
        buf_clear(&creq);
        CHECK(sigv4_canonical_request("GET", "/%zz", NULL, (char *const *) headers, NULL, SIGV4_EMPTY_SHA256, &creq,
                                      NULL) == -EBADMSG);
}

static void test_s3_examples(void) {
        /* GET Object with a Range header. */
        const char *get_headers[] = { "Host: examplebucket.s3.amazonaws.com", "Range: bytes=0-9",
                                      "x-amz-content-sha256: " SIGV4_EMPTY_SHA256, "x-amz-date: 20130524T000000Z",
                                      NULL };
        _cleanup_buf_ buf auth = {};
        CHECK_OK(sigv4_authorization(&s3doc, "20130524T000000Z", "GET", "/test.txt", NULL,
                                     (char *const *) get_headers, SIGV4_EMPTY_SHA256, &auth));
        CHECK_STREQ(auth.data, SIGV4_ALGORITHM " Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                               "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

        /* PUT Object: '$' in the key is encoded in the canonical URI. */
        const char *payload = "Welcome to Amazon S3.";
        char hash[SHA256_HEX_SIZE];
        sha256_hex(payload, strlen(payload), hash);
        CHECK_STREQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
        const char *put_headers[] = { "Date: Fri, 24 May 2013 00:00:00 GMT", "Host: examplebucket.s3.amazonaws.com",
                                      "x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                                      "x-amz-date: 20130524T000000Z", "x-amz-storage-class: REDUCED_REDUNDANCY", NULL };
        buf_clear(&auth);
        CHECK_OK(sigv4_authorization(&s3doc, "20130524T000000Z", "PUT", "/test$file.text", NULL,
                                     (char *const *) put_headers, hash, &auth));
        CHECK(strstr(auth.data, "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));

        /* Presigned GET, 24 hours. */
        _cleanup_free_ char *url = NULL;
        CHECK_OK(sigv4_presign(&s3doc, "20130524T000000Z", "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                               86400, &url));
        CHECK_STREQ(url, "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                         "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                         "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                         "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
        CHECK(sigv4_presign(&s3doc, "20130524T000000Z", "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                            SIGV4_MAX_EXPIRES_S + 1, &url) == -EINVAL);
        CHECK(sigv4_presign(&s3doc, "20130524T000000Z", "GET", "examplebucket/test.txt", 60, &url) == -EINVAL);
}

/* 2013-05-24T00:00:00Z */
#define T0 ((time_t) 1369353600)

static void test_verify_presigned(void) {
        _cleanup_free_ char *url = NULL;
        const char *headers[] = { "host: examplebucket.s3.amazonaws.com", NULL };
        _cleanup_buf_ buf err = {};

        CHECK_OK(sigv4_presign(&s3doc, "20130524T000000Z", "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                               3600, &url));
        const char *query = strchr(url, '?') + 1;
        CHECK_OK(sigv4_verify(&s3doc, "GET", "/test.txt", query, (char *const *) headers, NULL, T0 + 10, &err));
        /* Another object, method, host, or secret; expired; not yet valid; no signature. */
        CHECK(sigv4_verify(&s3doc, "GET", "/test2.txt", query, (char *const *) headers, NULL, T0, &err) == -EACCES);
        CHECK(sigv4_verify(&s3doc, "PUT", "/test.txt", query, (char *const *) headers, NULL, T0, &err) == -EACCES);
        const char *other_host[] = { "host: evil.example", NULL };
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", query, (char *const *) other_host, NULL, T0, &err) == -EACCES);
        sigv4_credentials wrong = s3doc;
        wrong.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
        CHECK(sigv4_verify(&wrong, "GET", "/test.txt", query, (char *const *) headers, NULL, T0, &err) == -EACCES);
        buf_clear(&err);
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", query, (char *const *) headers, NULL, T0 + 3601, &err) == -ETIME);
        CHECK_STREQ(err.data, "request has expired");
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", query, (char *const *) headers, NULL, T0 - 3600, &err) == -ETIME);
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", "", (char *const *) headers, NULL, T0, &err) == -ENOKEY);
        /* Another region or key in the scope. */
        wrong = s3doc;
        wrong.region = "ch-gva-2";
        CHECK(sigv4_verify(&wrong, "GET", "/test.txt", query, (char *const *) headers, NULL, T0, &err) == -EBADMSG);
        wrong = s3doc;
        wrong.access_key = "EXOother";
        CHECK(sigv4_verify(&wrong, "GET", "/test.txt", query, (char *const *) headers, NULL, T0, &err) == -EPERM);
        /* A tampered signature, and a tampered expiry. */
        _cleanup_free_ char *tampered = strdup(query);
        tampered[strlen(tampered) - 1] = tampered[strlen(tampered) - 1] == '0' ? '1' : '0';
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", tampered, (char *const *) headers, NULL, T0, &err) == -EACCES);
        free(tampered);
        tampered = strdup(query);
        memcpy(strstr(tampered, "X-Amz-Expires=3600"), "X-Amz-Expires=7200", 18);
        CHECK(sigv4_verify(&s3doc, "GET", "/test.txt", tampered, (char *const *) headers, NULL, T0, &err) == -EACCES);
}

static void test_verify_header(void) {
        const char *body = "part one";
        char hash[SHA256_HEX_SIZE], date[SIGV4_DATE_SIZE];
        _cleanup_buf_ buf auth = {}, content = {}, dateh = {}, authh = {}, err = {};
        sigv4_credentials creds = { "EXOkey", "secret", "ch-gva-2", "s3" };

        sigv4_format_date(T0, date);
        CHECK_STREQ(date, "20130524T000000Z");
        sha256_hex(body, strlen(body), hash);
        CHECK_OK(buf_printf(&content, "x-amz-content-sha256: %s", hash));
        CHECK_OK(buf_printf(&dateh, "X-Amz-Date: %s", date));
        char *headers[] = { (char *) "Host: 127.0.0.1:29500", content.data, dateh.data, NULL };
        CHECK_OK(sigv4_authorization(&creds, date, "PUT", "/bucket/key.qcow2", "partNumber=1&uploadId=abc", headers,
                                     hash, &auth));
        CHECK_OK(buf_printf(&authh, "Authorization: %s", auth.data));
        char *received[] = { (char *) "host: 127.0.0.1:29500", (char *) "content-length: 8", content.data,
                             dateh.data, authh.data, NULL };
        CHECK_OK(sigv4_verify(&creds, "PUT", "/bucket/key.qcow2", "uploadId=abc&partNumber=1", received, hash,
                              T0 + 60, &err));
        /* Another body (its hash differs from the signed one), part, or path. */
        char other[SHA256_HEX_SIZE];
        sha256_hex("part two", 8, other);
        CHECK(sigv4_verify(&creds, "PUT", "/bucket/key.qcow2", "uploadId=abc&partNumber=1", received, other, T0,
                           &err) == -EILSEQ);
        CHECK(sigv4_verify(&creds, "PUT", "/bucket/key.qcow2", "uploadId=abc&partNumber=2", received, hash, T0,
                           &err) == -EACCES);
        CHECK(sigv4_verify(&creds, "PUT", "/bucket/other", "uploadId=abc&partNumber=1", received, hash, T0, &err) ==
              -EACCES);
        /* A clock 16 minutes off. */
        CHECK(sigv4_verify(&creds, "PUT", "/bucket/key.qcow2", "uploadId=abc&partNumber=1", received, hash,
                           T0 + 16 * 60, &err) == -ETIME);
        /* Malformed Authorization headers. */
        static const char *const malformed[] = {
                "Authorization: AWS4-HMAC-SHA256",
                "Authorization: AWS4-HMAC-SHA256 Credential=EXOkey/20130524/ch-gva-2/s3/aws4_request",
                "Authorization: AWS4-HMAC-SHA256 Credential=EXOkey/20130524/ch-gva-2/s3, SignedHeaders=host, Signature=00",
                "Authorization: AWS4-HMAC-SHA256 Credential=EXOkey/20130524/ch-gva-2/s3/aws4_request, SignedHeaders=host, Signature=00",
                "Authorization: AWS4-HMAC-SHA256 Credential=EXOkey/20130525/ch-gva-2/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00",
                "Authorization: AWS4-HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host, Signature=00",
                "Authorization: AWS4-HMAC-SHA256 Credential=EXOkey/20130524/ch-gva-2/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=00",
                "Authorization: AWS3 Credential=EXOkey/20130524/ch-gva-2/s3/aws4_request, SignedHeaders=host, Signature=00",
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                received[4] = (char *) malformed[i];
                int r = sigv4_verify(&creds, "PUT", "/bucket/key.qcow2", "uploadId=abc&partNumber=1", received, hash,
                                     T0, &err);
                if (r != -EBADMSG)
                        fprintf(stderr, "malformed case %zu: %d\n", i, r);
                CHECK(r == -EBADMSG);
        }
}

int main(void) {
        test_suite_vectors();
        test_canonical_request();
        test_s3_examples();
        test_verify_presigned();
        test_verify_header();
        return 0;
}
