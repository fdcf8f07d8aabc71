/* EXO2-HMAC-SHA256: egoscale's two test vectors and the four derived ones from protocols.md §1.3,
 * byte for byte, then verification of good, tampered, expired and malformed requests. */
#include <stdio.h>

#include "check.h"
#include "exoscale.h"

#define KEY "EXOxxxxxxxxxxxxxxxxxxxxxxxx"
#define SECRET "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" /* 43 x 'X' */
#define EXPIRES INT64_C(3376684800)                            /* 2077-01-01T00:00:00Z */

typedef struct vector {
        const char *method, *path, *query, *body, *header;
} vector;

static const vector vectors[] = {
        /* egoscale v2/api/security_test.go */
        { "GET", "/v2/zone", NULL, NULL,
          "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,"
          "signature=Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY=" },
        { "GET", "/v2/zone", "k1=v1&k2=v2", NULL,
          "EXO2-HMAC-SHA256 credential=" KEY ",signed-query-args=k1;k2,expires=3376684800,"
          "signature=iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY=" },
        /* derived vectors */
        { "POST", "/v2/security-group", "", "{\"name\":\"my-security-group\"}",
          "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,"
          "signature=cUQHnW6MsaNkuO2fRRA0LQNzuV+CA6oJJIezlLGqEd4=" },
        { "GET", "/v2/instance",
          "manager-type=instance-pool&manager-id=6d540f20-ac97-dd6a-5d67-cc11a5e224a5", NULL,
          "EXO2-HMAC-SHA256 credential=" KEY ",signed-query-args=manager-id;manager-type,"
          "expires=3376684800,signature=+IK7TnaOyADgvaEp87HoOl84liEYmZvJu/gcsZJdP7o=" },
        { "PUT", "/v2/instance-pool/ab8fbe95-72d4-0703-fcae-6401540d86ff:scale", NULL,
          "{\"size\":3}",
          "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,"
          "signature=rQZgmrHq2KQZvmPue0r25K1zzhQ6qTN1rxlkVzx5UAM=" },
        { "GET", "/v2/operation/e2047130-b86e-11e8-a5ae-7e4d0d1e1a6a", NULL, NULL,
          "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,"
          "signature=U5sJCKz94vCKZJwVogZi6GWj16M0BrXsAB5r7lKyZwo=" },
};

static size_t body_len(const vector *v) { return v->body ? strlen(v->body) : 0; }

static void test_vectors(void) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const vector *v = &vectors[i];
                buf out = {};
                CHECK_OK(exo_sign(v->method, v->path, v->query, v->body, body_len(v), KEY, SECRET,
                                  EXPIRES, &out));
                CHECK_STREQ(out.data, v->header);
                CHECK_OK(exo_verify(out.data, v->method, v->path, v->query, v->body, body_len(v),
                                    KEY, SECRET, (time_t) EXPIRES - 1));
                buf_free(&out);
        }
}

static void test_query_rules(void) {
        buf a = {}, b = {};

        /* values are signed decoded: the escaped and the plain spelling sign alike, '+' is a
         * space like %20 */
        CHECK_OK(exo_sign("GET", "/v2/x", "k=a%20b%2Fc", NULL, 0, KEY, SECRET, EXPIRES, &a));
        CHECK_OK(exo_sign("GET", "/v2/x", "k=a+b/c", NULL, 0, KEY, SECRET, EXPIRES, &b));
        CHECK_STREQ(a.data, b.data);
        buf_clear(&a);
        buf_clear(&b);

        /* multi-valued parameters are not signed: the header lists only the single ones, and
         * the signature equals that of the request without the repeated parameter */
        CHECK_OK(exo_sign("GET", "/v2/x", "z=1&m=a&m=b&a=2", NULL, 0, KEY, SECRET, EXPIRES, &a));
        CHECK(strstr(a.data, ",signed-query-args=a;z,"));
        CHECK_OK(exo_sign("GET", "/v2/x", "a=2&z=1", NULL, 0, KEY, SECRET, EXPIRES, &b));
        CHECK_STREQ(a.data, b.data);
        buf_clear(&a);
        buf_clear(&b);

        /* "k=" and "k" are one empty value each, so they are signed */
        CHECK_OK(exo_sign("GET", "/v2/x", "k=", NULL, 0, KEY, SECRET, EXPIRES, &a));
        CHECK(strstr(a.data, ",signed-query-args=k,"));
        CHECK_OK(exo_sign("GET", "/v2/x", "k&&", NULL, 0, KEY, SECRET, EXPIRES, &b));
        CHECK_STREQ(a.data, b.data);
        buf_clear(&a);

        CHECK(exo_sign("GET", "/v2/x", "k=%zz", NULL, 0, KEY, SECRET, EXPIRES, &a) == -EINVAL);
        CHECK(exo_sign("GET", "/v2/x", "k=1;j=2", NULL, 0, KEY, SECRET, EXPIRES, &a) == -EINVAL);
        buf_free(&a);
        buf_free(&b);
}

static void test_verify(void) {
        const vector *v = &vectors[2]; /* POST with a body */
        const vector *q = &vectors[3]; /* query parameters */
        time_t now = (time_t) EXPIRES - 600;
        size_t len = body_len(v);

        CHECK_OK(exo_verify(v->header, v->method, v->path, v->query, v->body, len, KEY, SECRET, now));

        /* anything that was signed, changed */
        CHECK(exo_verify(v->header, v->method, v->path, v->query, "{\"name\":\"my-security-groupX\"}",
                         len + 1, KEY, SECRET, now) == -EACCES);
        CHECK(exo_verify(v->header, v->method, v->path, v->query, "{\"name\":\"my-security-grouq\"}",
                         len, KEY, SECRET, now) == -EACCES);
        CHECK(exo_verify(v->header, "PUT", v->path, v->query, v->body, len, KEY, SECRET, now) ==
              -EACCES);
        CHECK(exo_verify(v->header, v->method, "/v2/security-groups", v->query, v->body, len, KEY,
                         SECRET, now) == -EACCES);
        CHECK(exo_verify(q->header, q->method, q->path,
                         "manager-type=instance-pool&manager-id=6d540f20-ac97-dd6a-5d67-cc11a5e224a6",
                         NULL, 0, KEY, SECRET, now) == -EACCES);
        /* an extra single-valued parameter the client did not sign */
        CHECK(exo_verify(v->header, v->method, v->path, "x=1", v->body, len, KEY, SECRET, now) ==
              -EACCES);
        /* wrong secret, wrong key */
        CHECK(exo_verify(v->header, v->method, v->path, v->query, v->body, len, KEY,
                         SECRET "X", now) == -EACCES);
        CHECK(exo_verify(v->header, v->method, v->path, v->query, v->body, len, "EXOother", SECRET,
                         now) == -EACCES);
        /* the expiry is signed too: moving it breaks the signature */
        _cleanup_free_ char *moved = strdup(v->header);
        CHECK(moved);
        char *e = strstr(moved, "expires=3376684800");
        CHECK(e);
        e[strlen("expires=337668480")] = '1';
        CHECK(exo_verify(moved, v->method, v->path, v->query, v->body, len, KEY, SECRET, now) ==
              -EACCES);

        /* expired: at and after the expiry time */
        CHECK(exo_verify(v->header, v->method, v->path, v->query, v->body, len, KEY, SECRET,
                         (time_t) EXPIRES) == -ETIME);
        CHECK(exo_verify(v->header, v->method, v->path, v->query, v->body, len, KEY, SECRET,
                         (time_t) EXPIRES + 3600) == -ETIME);

        /* parts in another order are still understood */
        CHECK_OK(exo_verify("EXO2-HMAC-SHA256 signature=Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY=,"
                            "expires=3376684800,credential=" KEY,
                            "GET", "/v2/zone", NULL, NULL, 0, KEY, SECRET, now));

        static const char *const malformed[] = {
                "",
                "EXO2-HMAC-SHA256",
                "EXO2-HMAC-SHA256 ",
                "Bearer abc",
                "EXO2-HMAC-SHA256  credential=" KEY ",expires=3376684800,signature=abc",
                "exo2-hmac-sha256 credential=" KEY ",expires=3376684800,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800",
                "EXO2-HMAC-SHA256 credential=" KEY ",signature=abc",
                "EXO2-HMAC-SHA256 expires=3376684800,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,signature=",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=-1,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=99999999999999999999,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=1x,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=1,expires=1,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",credential=" KEY ",expires=1,signature=abc",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,signature=abc,",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,signature=abc,other=1",
                "EXO2-HMAC-SHA256 credential=" KEY ",expires=3376684800,,signature=abc",
                "EXO2-HMAC-SHA256 credential " KEY ",expires=3376684800,signature=abc",
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                int r = exo_verify(malformed[i], "GET", "/v2/zone", NULL, NULL, 0, KEY, SECRET, now);
                if (r != -EBADMSG)
                        fprintf(stderr, "case %zu: %d\n", i, r);
                CHECK(r == -EBADMSG);
        }
}

int main(void) {
        test_vectors();
        test_query_rules();
        test_verify();
        return 0;
}
