#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "strv.h"

static void test_push_join(void) {
        _cleanup_strv_free_ char **l = NULL;

        CHECK(strv_length(l) == 0);
        CHECK_OK(strv_push(&l, "a"));
        CHECK_OK(strv_pushf(&l, "%s=%d", "b", 2));
        char *c = strdup("c");
        CHECK(c);
        CHECK_OK(strv_consume(&l, c));
        CHECK(strv_length(l) == 3);
        CHECK(!l[3]);
        CHECK(strv_contains(l, "b=2"));
        CHECK(!strv_contains(l, "b"));
        CHECK(!strv_contains(NULL, "a"));

        char *j = strv_join(l, ", ");
        CHECK_STREQ(j, "a, b=2, c");
        free(j);
        j = strv_join(NULL, ",");
        CHECK_STREQ(j, "");
        free(j);
        char *one[] = { (char *) "only", NULL };
        j = strv_join(one, ",");
        CHECK_STREQ(j, "only");
        free(j);
}

static void test_split(void) {
        _cleanup_strv_free_ char **l = NULL;

        CHECK_OK(strv_split("  a b\t\tc  ", " \t", &l));
        CHECK(strv_length(l) == 3);
        CHECK_STREQ(l[0], "a");
        CHECK_STREQ(l[1], "b");
        CHECK_STREQ(l[2], "c");
        strv_free(l);

        CHECK_OK(strv_split("", ",", &l));
        CHECK(l && strv_length(l) == 0); /* an empty vector, not NULL */
        strv_free(l);

        CHECK_OK(strv_split(",,,", ",", &l));
        CHECK(l && strv_length(l) == 0);
        strv_free(l);

        CHECK_OK(strv_split("a:b,c", ":,", &l));
        CHECK(strv_length(l) == 3);
        CHECK_STREQ(l[2], "c");
}

static void test_copy_sort(void) {
        _cleanup_strv_free_ char **l = NULL;
        CHECK_OK(strv_split("pear apple fig", " ", &l));

        _cleanup_strv_free_ char **c = strv_copy(l);
        CHECK(c && strv_length(c) == 3);
        CHECK(c[0] != l[0]); /* deep copy */
        strv_sort(c);
        char *j = strv_join(c, " ");
        CHECK_STREQ(j, "apple fig pear");
        free(j);
        j = strv_join(l, " ");
        CHECK_STREQ(j, "pear apple fig"); /* original untouched */
        free(j);

        _cleanup_strv_free_ char **e = strv_copy(NULL);
        CHECK(e && strv_length(e) == 0);
        strv_sort(e);
        strv_sort(NULL);
        strv_free(NULL);
}

static void test_env_expand(void) {
        char a[] = "local_ipv4=10.0.0.5", b[] = "ID=i-1", c[] = "EMPTY=";
        char *env[] = { a, b, c, NULL };
        char *out = NULL;
        CHECK_OK(strv_env_expand("https://${local_ipv4}:6443/${ID}${EMPTY}$x{", env, &out));
        CHECK_STREQ(out, "https://10.0.0.5:6443/i-1$x{");
        free(out);
        CHECK(strv_env_get(env, "IDX", 2) && streq(strv_env_get(env, "IDX", 2), "i-1"));
        CHECK(!strv_env_get(env, "local", 5));
        out = NULL;
        CHECK(strv_env_expand("${NOPE}", env, &out) == -EINVAL && !out);
        CHECK(strv_env_expand("a ${ID", env, &out) == -EINVAL && !out);
}

int main(void) {
        test_env_expand();
        test_push_join();
        test_split();
        test_copy_sort();
        return 0;
}
