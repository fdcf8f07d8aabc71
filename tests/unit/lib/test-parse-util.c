/* The shared value parsers: the recipe parser, agent.conf and the credentials file agree on them. */
#include <errno.h>

#include "check.h"
#include "parse-util.h"

static void test_strip(void) {
        char s[] = " \t a b \r\n";
        CHECK_STREQ(parse_strip(s), "a b");
        char e[] = "   ";
        CHECK_STREQ(parse_strip(e), "");
}

static void test_ulong(void) {
        unsigned long n = 7;
        CHECK_OK(parse_ulong("100", 100, 200, &n));
        CHECK(n == 100);
        CHECK(parse_ulong("99", 100, 200, &n) == -EINVAL && n == 100);
        CHECK(parse_ulong("201", 100, 200, &n) == -EINVAL);
        CHECK(parse_ulong("+150", 100, 200, &n) == -EINVAL);
        CHECK(parse_ulong(" 150", 100, 200, &n) == -EINVAL);
        CHECK(parse_ulong("150x", 100, 200, &n) == -EINVAL);
        CHECK(parse_ulong("", 0, 200, &n) == -EINVAL);
        CHECK(parse_ulong("99999999999999999999999", 0, ~0UL, &n) == -EINVAL);
}

static void test_bool(void) {
        bool b = false;
        CHECK_OK(parse_bool("yes", &b));
        CHECK(b);
        CHECK_OK(parse_bool("0", &b));
        CHECK(!b);
        CHECK(parse_bool("on", &b) == -EINVAL);
}

static void test_mode(void) {
        mode_t m = 0;
        CHECK_OK(parse_mode("640", &m));
        CHECK(m == 0640);
        CHECK_OK(parse_mode("4755", &m));
        CHECK(m == 04755);
        CHECK(parse_mode("64", &m) == -EINVAL && m == 04755);
        CHECK(parse_mode("00640", &m) == -EINVAL);
        CHECK(parse_mode("0680", &m) == -EINVAL);
        CHECK(parse_mode("+640", &m) == -EINVAL);
        CHECK(parse_mode("rw", &m) == -EINVAL);
}

static void test_user_name(void) {
        CHECK(parse_user_name_valid("etcd", 4));
        CHECK(parse_user_name_valid("_apt", 4));
        CHECK(parse_user_name_valid("systemd-network", 15));
        CHECK(parse_user_name_valid("0", 1));
        CHECK(parse_user_name_valid("etcd:etcd", 4)); /* only the first n bytes count */
        CHECK(!parse_user_name_valid("", 0));
        CHECK(!parse_user_name_valid("Etcd", 4));
        CHECK(!parse_user_name_valid("-x", 2));
        CHECK(!parse_user_name_valid("bad name", 8));
        CHECK(!parse_user_name_valid("1abc", 4));
        CHECK(!parse_user_name_valid("abcdefghijklmnopqrstuvwxyz0123456", 33));
}

int main(void) {
        test_strip();
        test_ulong();
        test_bool();
        test_mode();
        test_user_name();
        return 0;
}
