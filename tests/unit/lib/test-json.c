#include <stdio.h>

#include "check.h"
#include "json.h"

static json_t *parse_ok(const char *text) {
        json_t *j = NULL;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        int r = json_parse(text, strlen(text), &j, &err);
        if (r < 0)
                fprintf(stderr, "parse failed: %s\n", err.data);
        CHECK_OK(r);
        CHECK(j);
        return j;
}

static void check_parse_error(const char *text, const char *expected_prefix, const char *reason) {
        json_t *j = (json_t *) 0x1;
        _cleanup_buf_ buf err = BUF_INIT(1024);
        CHECK_OK(buf_puts(&err, "old content "));
        CHECK(json_parse(text, strlen(text), &j, &err) == -EBADMSG);
        CHECK(j == (json_t *) 0x1); /* untouched */
        if (!startswith(err.data, expected_prefix) || !strstr(err.data, reason)) {
                fprintf(stderr, "unexpected error \"%s\" for %s\n", err.data, text);
                CHECK(0);
        }
}

static void test_parse(void) {
        _cleanup_json_ json_t *j = parse_ok("{\"a\": {\"b\": [1, {\"c\": \"x\"}]}}");
        CHECK(json_is_object(j));

        /* Not NUL-terminated: only len bytes count. */
        const char text[] = "{\"k\":1}trailing garbage";
        json_t *k = NULL;
        CHECK_OK(json_parse(text, 7, &k, NULL));
        CHECK(json_integer_value(json_object_get(k, "k")) == 1);
        json_decref(k);
        CHECK(json_parse(text, sizeof(text) - 1, &k, NULL) == -EBADMSG);

        /* Scalars at the top level. */
        json_t *s = parse_ok("\"str\"");
        CHECK_STREQ(json_string_value(s), "str");
        json_decref(s);

        check_parse_error("{\"a\":1,\"a\":2}", "line 1 column ", "duplicate");
        check_parse_error("{\"x\": {\"a\":1,\n \"a\":2}}", "line 2 column ", "duplicate");
        check_parse_error("{\n\n  \"a\": tru }", "line 3 column ", "invalid");
        check_parse_error("", "line 1 column ", "");
        check_parse_error("[1, 2", "line 1 column ", "");
        check_parse_error("\"a\\u0000b\"", "line 1 column ", "NUL");

        /* The error buffer is optional. */
        CHECK(json_parse("{", 1, &k, NULL) == -EBADMSG);
}

static void test_path(void) {
        _cleanup_json_ json_t *j = parse_ok(
                "{\"data\": {\"data\": {\"token\": \"s.abc\", \"n\": 3}, \"flag\": true, \"off\": false,"
                " \"str_true\": \"true\"}, \"kvs\": [{\"key\": \"k0\"}, {\"key\": \"k1\"}], \"a.b\": 1}");

        CHECK_STREQ(json_path_string(j, "data.data.token"), "s.abc");
        CHECK(json_path(j, "data.data") == json_object_get(json_object_get(j, "data"), "data"));
        CHECK_STREQ(json_path_string(j, "kvs.1.key"), "k1");
        CHECK_STREQ(json_path_string(j, "kvs.0.key"), "k0");
        CHECK(!json_path(j, "kvs.2.key"));
        CHECK(!json_path(j, "kvs.x"));
        CHECK(!json_path(j, "kvs.99999999999999999999"));
        CHECK(!json_path_string(j, "data.data.n")); /* wrong type */
        CHECK(!json_path_string(j, "data.missing.token"));
        CHECK(!json_path_string(j, "data.data.token.more"));
        CHECK(!json_path(j, ""));
        CHECK(!json_path(j, "data..data"));
        CHECK(!json_path(j, "data."));
        CHECK(!json_path(j, ".data"));
        CHECK(!json_path(j, "a.b")); /* dots always separate */
        CHECK(json_path(j, "data"));
        CHECK(!json_path(NULL, "data"));

        CHECK(json_path_bool(j, "data.flag"));
        CHECK(!json_path_bool(j, "data.off"));
        CHECK(!json_path_bool(j, "data.str_true"));
        CHECK(!json_path_bool(j, "data.missing"));
}

static void test_integers(void) {
        _cleanup_json_ json_t *j = parse_ok(
                "{\"header\": {\"member_id\": \"10501334649042878790\", \"revision\": \"2\"},"
                " \"max\": \"18446744073709551615\", \"over\": \"18446744073709551616\","
                " \"int\": 42, \"neg\": -5, \"real\": 1.0, \"bool\": true, \"zero\": \"0\","
                " \"i64min\": \"-9223372036854775808\", \"i64max\": \"9223372036854775807\","
                " \"i64over\": \"9223372036854775808\", \"i64under\": \"-9223372036854775809\","
                " \"bad\": [\"-1\", \"+1\", \" 1\", \"1 \", \"1a\", \"\", \"0x10\", \"-\", \"1.5\", \"--1\"]}");
        uint64_t u = 7;
        int64_t i = 7;

        CHECK_OK(json_path_u64(j, "header.member_id", &u));
        CHECK(u == UINT64_C(10501334649042878790));
        CHECK_OK(json_path_u64(j, "header.revision", &u));
        CHECK(u == 2);
        CHECK_OK(json_path_u64(j, "max", &u));
        CHECK(u == UINT64_MAX);
        CHECK_OK(json_path_u64(j, "zero", &u));
        CHECK(u == 0);
        CHECK_OK(json_path_u64(j, "int", &u));
        CHECK(u == 42);

        u = 7;
        CHECK(json_path_u64(j, "over", &u) == -EBADMSG);
        CHECK(json_path_u64(j, "neg", &u) == -EBADMSG);
        CHECK(json_path_u64(j, "real", &u) == -EBADMSG);
        CHECK(json_path_u64(j, "bool", &u) == -EBADMSG);
        CHECK(json_path_u64(j, "header", &u) == -EBADMSG);
        CHECK(json_path_u64(j, "missing", &u) == -ENOENT);
        CHECK(u == 7);

        CHECK_OK(json_path_i64(j, "i64min", &i));
        CHECK(i == INT64_MIN);
        CHECK_OK(json_path_i64(j, "i64max", &i));
        CHECK(i == INT64_MAX);
        CHECK_OK(json_path_i64(j, "neg", &i));
        CHECK(i == -5);
        CHECK_OK(json_path_i64(j, "header.revision", &i));
        CHECK(i == 2);
        i = 7;
        CHECK(json_path_i64(j, "i64over", &i) == -EBADMSG);
        CHECK(json_path_i64(j, "i64under", &i) == -EBADMSG);
        CHECK(json_path_i64(j, "header.member_id", &i) == -EBADMSG);
        CHECK(json_path_i64(j, "real", &i) == -EBADMSG);
        CHECK(json_path_i64(j, "missing", &i) == -ENOENT);
        CHECK(i == 7);

        json_t *bad = json_object_get(j, "bad");
        for (size_t k = 0; k < json_array_size(bad); k++) {
                char path[32];
                snprintf(path, sizeof(path), "bad.%zu", k);
                int r = json_path_u64(j, path, &u);
                if (r != -EBADMSG) {
                        fprintf(stderr, "u64 accepted \"%s\"\n", json_path_string(j, path));
                        CHECK(0);
                }
                /* "-1" is the one valid i64 among them */
                r = json_path_i64(j, path, &i);
                CHECK(streq(json_path_string(j, path), "-1") ? r == 0 && i == -1 : r == -EBADMSG);
        }
}

static void test_dump(void) {
        _cleanup_json_ json_t *j = parse_ok("{ \"b\": 1, \"a\": [1, 2, {\"z\": null, \"y\": \"\\u00e9\"}] }");
        char *s = json_dump_compact(j);
        CHECK_STREQ(s, "{\"a\":[1,2,{\"y\":\"\xc3\xa9\",\"z\":null}],\"b\":1}");
        free(s);

        json_t *n = json_integer(5);
        s = json_dump_compact(n);
        CHECK_STREQ(s, "5");
        free(s);
        json_decref(n);
}

int main(void) {
        test_parse();
        test_path();
        test_integers();
        test_dump();
        return 0;
}
