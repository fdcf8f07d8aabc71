/* Reply parsers: metadata values, Vault envelopes (errors, auth, KV, PKI), etcd gateway replies,
 * Exoscale API discovery replies. */
#include <string.h>

#include "check.h"
#include "discover.h"
#include "etcd.h"
#include "json.h"
#include "metadata.h"
#include "vault.h"

static json_t *parse(const char *s) {
        json_t *j = NULL;
        CHECK_OK(json_parse(s, strlen(s), &j, NULL));
        return j;
}

static void test_metadata(void) {
        char *v = NULL;
        CHECK_OK(metadata_parse_value("i-123\n", 6, &v));
        CHECK_STREQ(v, "i-123");
        free(v);
        CHECK(metadata_parse_value("", 0, &v) == -EBADMSG);
        CHECK(metadata_parse_value("\n", 1, &v) == -EBADMSG);
        CHECK(metadata_parse_value("a b", 3, &v) == -EBADMSG);
        CHECK(metadata_parse_value("a\nb", 3, &v) == -EBADMSG);
        CHECK(metadata_parse_value("a\0b", 3, &v) == -EBADMSG);
        char big[300];
        memset(big, 'a', sizeof(big));
        CHECK(metadata_parse_value(big, sizeof(big), &v) == -EBADMSG);
}

static void test_vault_reply(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        json_t *j = NULL;
        const char *e = "{\"errors\":[\"permission denied\"]}";
        CHECK(vault_parse_reply(403, e, strlen(e), &j, &err) == -EACCES);
        CHECK_STREQ(err.data, "HTTP 403: permission denied");
        buf_clear(&err);
        const char *e2 = "{\"errors\":[\"a\",\"b\"]}";
        CHECK(vault_parse_reply(400, e2, strlen(e2), &j, &err) == -EINVAL);
        CHECK_STREQ(err.data, "HTTP 400: a; b");
        buf_clear(&err);
        CHECK(vault_parse_reply(500, "<html>", 6, &j, &err) == -EIO);
        CHECK_STREQ(err.data, "HTTP 500");
        CHECK(vault_parse_reply(404, "{\"errors\":[]}", 13, &j, NULL) == -ENOENT);
        CHECK(vault_parse_reply(200, "not json", 8, &j, NULL) == -EBADMSG);
        CHECK(vault_parse_reply(200, "[1]", 3, &j, NULL) == -EBADMSG);
        CHECK(vault_parse_reply(302, "", 0, &j, NULL) == -EPROTO);
        CHECK_OK(vault_parse_reply(204, "", 0, &j, NULL));
        CHECK(j == NULL);
        CHECK_OK(vault_parse_reply(200, "{\"data\":{}}", 11, &j, NULL));
        CHECK(json_is_object(j));
        json_decref(j);
}

static void test_vault_auth(void) {
        _cleanup_json_ json_t *ok = parse("{\"auth\":{\"client_token\":\"hvs.abc\",\"lease_duration\":3600}}");
        _cleanup_json_ json_t *none = parse("{\"auth\":null}");
        _cleanup_json_ json_t *bad = parse("{\"auth\":{\"client_token\":\"t\",\"lease_duration\":\"x\"}}");
        char *t = NULL;
        uint64_t lease = 0;
        CHECK_OK(vault_parse_auth(ok, &t, &lease));
        CHECK_STREQ(t, "hvs.abc");
        CHECK(lease == 3600);
        free_secret(t);
        CHECK(vault_parse_auth(none, &t, &lease) == -EBADMSG);
        CHECK(vault_parse_auth(bad, &t, &lease) == -EBADMSG);
}

static void test_vault_pki(void) {
        _cleanup_json_ json_t *ok = parse("{\"data\":{\"certificate\":\"-----BEGIN CERTIFICATE-----\\nX\\n\","
                                          "\"issuing_ca\":\"CA\",\"private_key\":\"K\",\"serial_number\":\"01:02\","
                                          "\"expiration\":\"1700000000\"}}");
        _cleanup_json_ json_t *nocert = parse("{\"data\":{\"certificate\":\"garbage\",\"issuing_ca\":\"CA\"}}");
        pki_bundle b = { 0 };
        CHECK_OK(vault_parse_pki(ok, &b));
        CHECK_STREQ(b.private_key, "K");
        CHECK_STREQ(b.serial, "01:02");
        CHECK(b.expiration == 1700000000);
        pki_bundle_done(&b);
        CHECK(vault_parse_pki(nocert, &b) == -EBADMSG);
}

static void test_etcd(void) {
        _cleanup_json_ json_t *list = parse(
                "{\"header\":{\"cluster_id\":\"17237436991929493444\",\"member_id\":\"1\"},\"members\":["
                "{\"ID\":\"10501334649042878790\",\"name\":\"etcd-a\",\"peerURLs\":[\"https://10.0.0.1:2380\"],"
                "\"clientURLs\":[\"https://10.0.0.1:2379\"]},"
                "{\"ID\":\"42\",\"peerURLs\":[\"https://10.0.0.2:2380\"],\"isLearner\":true}]}");
        etcd_members m = { 0 };
        CHECK_OK(etcd_parse_members(list, &m));
        CHECK(m.n == 2);
        CHECK(m.cluster_id == 17237436991929493444ull);
        CHECK(m.v[0].id == 10501334649042878790ull);
        CHECK_STREQ(m.v[0].name, "etcd-a");
        CHECK(!m.v[0].is_learner);
        CHECK(m.v[1].name == NULL); /* unstarted */
        CHECK(m.v[1].is_learner);
        CHECK(etcd_members_find_peer(&m, "https://10.0.0.2:2380") == &m.v[1]);
        CHECK(etcd_members_find_peer(&m, "https://10.0.0.3:2380") == NULL);
        etcd_members_done(&m);

        _cleanup_json_ json_t *bad_id = parse("{\"members\":[{\"ID\":\"x\"}]}");
        _cleanup_json_ json_t *bad_urls = parse("{\"members\":[{\"ID\":\"1\",\"peerURLs\":[1]}]}");
        _cleanup_json_ json_t *no_members = parse("{\"header\":{}}");
        CHECK(etcd_parse_members(bad_id, &m) == -EBADMSG);
        CHECK(etcd_parse_members(bad_urls, &m) == -EBADMSG);
        CHECK(etcd_parse_members(no_members, &m) == -EBADMSG);

        _cleanup_json_ json_t *added = parse("{\"member\":{\"ID\":\"77\",\"peerURLs\":[\"https://x:2380\"]},\"members\":[]}");
        uint64_t id;
        CHECK_OK(etcd_parse_added_id(added, &id));
        CHECK(id == 77);

        _cleanup_json_ json_t *status = parse("{\"leader\":\"5\",\"isLearner\":true,\"version\":\"3.4.23\"}");
        bool learner;
        uint64_t leader;
        CHECK_OK(etcd_parse_status(status, &learner, &leader));
        CHECK(learner && leader == 5);

        _cleanup_buf_ buf err = BUF_INIT(1024);
        const char *e = "{\"error\":\"etcdserver: too many learner members in cluster\",\"code\":9}";
        CHECK(etcd_parse_error(412, e, strlen(e), &err) == -EIO);
        CHECK_STREQ(err.data, "HTTP 412: etcdserver: too many learner members in cluster");
        CHECK(etcd_parse_error(400, "junk", 4, NULL) == -EINVAL);
        CHECK(etcd_parse_error(503, "", 0, NULL) == -EAGAIN);

        _cleanup_free_ char *host = etcd_url_host("https://10.0.0.5:2380");
        CHECK_STREQ(host, "10.0.0.5");
        CHECK(etcd_url_host("no-scheme") == NULL);
}

static void test_discover(void) {
        _cleanup_json_ json_t *self = parse("{\"id\":\"i1\",\"manager\":{\"id\":\"p1\",\"type\":\"instance-pool\"},"
                                            "\"private-networks\":[{\"id\":\"n1\"}]}");
        _cleanup_json_ json_t *lonely = parse("{\"id\":\"i1\",\"private-networks\":[{\"id\":\"n1\"}]}");
        char *pool = NULL, *net = NULL;
        CHECK_OK(discover_parse_manager(self, &pool, &net));
        CHECK_STREQ(pool, "p1");
        CHECK_STREQ(net, "n1");
        free(pool);
        free(net);
        CHECK(discover_parse_manager(lonely, &pool, &net) == -EBADMSG);

        _cleanup_json_ json_t *instances = parse("[{\"id\":\"i2\",\"state\":\"running\"},"
                                                 "{\"id\":\"i1\",\"state\":\"running\"},{\"id\":\"i3\",\"state\":\"stopped\"},"
                                                 "{\"id\":\"i4\",\"state\":\"running\"}]");
        _cleanup_json_ json_t *network = parse("{\"leases\":[{\"instance-id\":\"i1\",\"ip\":\"10.0.0.1\"},"
                                               "{\"instance-id\":\"i2\",\"ip\":\"10.0.0.2\"},{\"instance-id\":\"i3\",\"ip\":\"10.0.0.3\"}]}");
        pool_view v = { 0 };
        CHECK_OK(discover_parse_peers(instances, network, &v));
        CHECK(v.n_peers == 2); /* i3 stopped, i4 without lease */
        CHECK_STREQ(v.peers[0].instance_id, "i1");
        CHECK_STREQ(v.peers[1].ip, "10.0.0.2");
        CHECK(pool_view_find_ip(&v, "10.0.0.2") == &v.peers[1]);
        CHECK(pool_view_find_ip(&v, "10.0.0.3") == NULL);
        pool_view_done(&v);
        CHECK(discover_parse_peers(network, instances, &v) == -EBADMSG);
}

int main(void) {
        test_metadata();
        test_vault_reply();
        test_vault_auth();
        test_vault_pki();
        test_etcd();
        test_discover();
        return 0;
}
