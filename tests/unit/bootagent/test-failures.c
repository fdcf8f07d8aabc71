/* Bad inputs against a small fake (lib/http-server.h in a thread): metadata down, 404 or with
 * values the cloud cannot return, Vault 403 / 500 / garbage JSON, etcd unreachable. Every case ends
 * with a bounded retry and a clear error; a full `firstboot` run against a failing Vault writes no
 * secret or certificate file; a damaged journal is reported by `status` and kept aside by the
 * next run; a PKI reply that comes too late leaves one certificate; a lost "done" record does not
 * leave `renew` refusing for good. */
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cmd-renew.h"
#include "cmd-status.h"
#include "etcd.h"
#include "firstboot.h"
#include "fs.h"
#include "fsync-record.h"
#include "http.h"
#include "http-server.h"
#include "journal.h"
#include "json.h"
#include "metadata.h"
#include "pki.h"
#include "vault.h"

typedef enum mode {
        MODE_OK,
        MODE_403,
        MODE_500,
        MODE_GARBAGE,
} mode;

static mode vault_mode = MODE_OK;
static mode kv_mode = MODE_OK;
static int requests;
static const char *instance_id = "00000000-0000-4000-8000-000000000001";
static const char *zone = "local", *local_ipv4 = "127.0.0.1", *public_ipv4 = "127.0.0.1";
static volatile sig_atomic_t stop;
/* A slow service: every metadata / Vault request is answered only after this many ms. */
static int metadata_stall_ms, vault_stall_ms;

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* pki/sign and pki/issue/test: a certificate for the CSR's key, or a new key sent along (CN and IP
 * SANs from the request), from a CA made on first use. Each sign is counted and its serial and CSR public key recorded before the reply;
 * the first one is answered only after pki_first_stall_ms (the client has given up by then: a
 * certificate the agent never sees). */
static int pki_signs, pki_first_stall_ms;
static char *pki_serials[8], *pki_csr_keys[8];
static EVP_PKEY *ca_key;
static X509 *ca_cert;

static char *pem_of_x509(X509 *x) {
        BIO *b = BIO_new(BIO_s_mem());
        char *p;
        CHECK(b && PEM_write_bio_X509(b, x) == 1);
        long n = BIO_get_mem_data(b, &p);
        char *pem = strndup(p, (size_t) n);
        BIO_free(b);
        return pem;
}

static X509 *new_cert(const char *cn, const char *ip_sans, EVP_PKEY *pub, long serial) {
        X509 *x = X509_new();
        char san[256];
        CHECK(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(x, ca_cert ? X509_get_subject_name(ca_cert) : X509_get_subject_name(x));
        ASN1_TIME_set(X509_getm_notBefore(x), time(NULL) - 100);
        ASN1_TIME_set(X509_getm_notAfter(x), time(NULL) + 3600);
        X509_set_pubkey(x, pub);
        if (ip_sans && *ip_sans) {
                _cleanup_free_ char *list = strdup(ip_sans);
                size_t off = 0;
                CHECK(list);
                for (char *save = NULL, *ip = strtok_r(list, ",", &save); ip; ip = strtok_r(NULL, ",", &save))
                        off += (size_t) snprintf(san + off, sizeof(san) - off, "%sIP:%s", off ? "," : "", ip);
                CHECK(off < sizeof(san));
                X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
                CHECK(ext && X509_add_ext(x, ext, -1) == 1);
                X509_EXTENSION_free(ext);
        }
        CHECK(X509_sign(x, ca_key ? ca_key : pub, EVP_sha256()) > 0);
        return x;
}

static int pki_sign(const http_server_request *req, http_server_response *resp) {
        _cleanup_json_ json_t *body = NULL;
        CHECK_OK(json_parse(req->body, req->body_len, &body, NULL));
        const char *csr = json_string_value(json_object_get(body, "csr"));
        const char *cn = json_string_value(json_object_get(body, "common_name"));
        const char *ips = json_string_value(json_object_get(body, "ip_sans"));
        _cleanup_free_ char *key_pem = NULL;
        CHECK(cn);
        if (!ca_key) {
                EVP_PKEY *k = EVP_EC_gen("P-256");
                CHECK(k);
                ca_cert = new_cert("test CA", NULL, k, 1);
                ca_key = k;
        }
        BIO *rb = BIO_new_mem_buf(csr ? csr : "", -1), *kb = BIO_new(BIO_s_mem());
        X509_REQ *r = NULL;
        EVP_PKEY *pub;
        if (csr) {
                r = PEM_read_bio_X509_REQ(rb, NULL, NULL, NULL);
                CHECK(r);
                pub = X509_REQ_get_pubkey(r);
                CHECK(pub && X509_REQ_verify(r, pub) == 1);
        } else { /* pki/issue: the key comes with the reply */
                CHECK(pki_make_key(&key_pem) >= 0);
                BIO *b = BIO_new_mem_buf(key_pem, -1);
                pub = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
                BIO_free(b);
        }
        CHECK(pub && kb && PEM_write_bio_PUBKEY(kb, pub) == 1);
        char *p;
        long n = BIO_get_mem_data(kb, &p);
        int i = pki_signs++;
        CHECK(i < 8);
        pki_csr_keys[i] = strndup(p, (size_t) n);
        X509 *x = new_cert(cn, ips, pub, 100 + i);
        CHECK(asprintf(&pki_serials[i], "%02x", 100 + i) > 0);
        _cleanup_free_ char *cert = pem_of_x509(x), *ca = pem_of_x509(ca_cert);
        X509_free(x);
        EVP_PKEY_free(pub);
        X509_REQ_free(r);
        BIO_free(rb);
        BIO_free(kb);
        if (i == 0)
                sleep_ms(pki_first_stall_ms);
        _cleanup_json_ json_t *reply = json_pack("{s:{s:s, s:s, s:s, s:I, s:s?}}", "data", "certificate", cert, "issuing_ca",
                                                 ca, "serial_number", pki_serials[i], "expiration",
                                                 (json_int_t) time(NULL) + 3600, "private_key", key_pem);
        _cleanup_free_ char *text = json_dump_compact(reply);
        CHECK(text);
        resp->content_type = "application/json";
        return http_server_respond(resp, 200, "%s", text);
}

static int handler(const http_server_request *req, http_server_response *resp, void *userdata) {
        __atomic_add_fetch(&requests, 1, __ATOMIC_SEQ_CST);
        if (startswith(req->path, "/latest/meta-data/")) {
                sleep_ms(__atomic_load_n(&metadata_stall_ms, __ATOMIC_SEQ_CST));
                const char *key = req->path + strlen("/latest/meta-data/");
                resp->content_type = "text/plain";
                if (streq(key, "instance-id"))
                        return http_server_respond(resp, 200, "%s", instance_id);
                if (streq(key, "availability-zone"))
                        return http_server_respond(resp, 200, "%s", zone);
                if (streq(key, "local-ipv4"))
                        return http_server_respond(resp, 200, "%s", local_ipv4);
                if (streq(key, "public-ipv4"))
                        return http_server_respond(resp, 200, "%s", public_ipv4);
                return http_server_respond(resp, 404, "not found");
        }
        if (startswith(req->path, "/v1/"))
                sleep_ms(__atomic_load_n(&vault_stall_ms, __ATOMIC_SEQ_CST));
        if (streq(req->path, "/v1/sys/health"))
                return http_server_respond(resp, 200, "{\"initialized\":true,\"sealed\":false}");
        if (streq(req->path, "/v1/auth/exoscale/login") || streq(req->path, "/v1/auth/token/renew-self")) {
                switch (vault_mode) {
                case MODE_403: return http_server_respond(resp, 403, "{\"errors\":[\"permission denied\"]}");
                case MODE_500: return http_server_respond(resp, 500, "{\"errors\":[\"internal error\"]}");
                case MODE_GARBAGE: return http_server_respond(resp, 200, "{\"auth\": <html>");
                case MODE_OK: break;
                }
                return http_server_respond(resp, 200, "{\"auth\":{\"client_token\":\"tok\",\"lease_duration\":60}}");
        }
        if (startswith(req->path, "/v1/secret/data/")) {
                switch (kv_mode) {
                case MODE_500: return http_server_respond(resp, 503, "{\"errors\":[\"sealed\"]}");
                case MODE_GARBAGE: return http_server_respond(resp, 200, "[\"not\",\"an\",\"object\"]");
                case MODE_403: return http_server_respond(resp, 403, "{\"errors\":[\"permission denied\"]}");
                case MODE_OK: break;
                }
                return http_server_respond(resp, 200, "{\"data\":{\"data\":{\"token\":\"s3cret\"}}}");
        }
        if (startswith(req->path, "/v1/pki/sign/") || streq(req->path, "/v1/pki/issue/test"))
                return pki_sign(req, resp);
        if (startswith(req->path, "/v1/pki/issue/"))
                return http_server_respond(resp, 500, "{\"errors\":[\"pki backend down\"]}");
        return http_server_respond(resp, 404, "{\"errors\":[]}");
}

static void *serve(void *h) {
        http_server_run(h, &stop);
        return NULL;
}

static void test_metadata(int port) {
        char url[64];
        _cleanup_buf_ buf err = BUF_INIT(1024);
        char *v = NULL;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        CHECK(metadata_get(url, NULL, "no-such-key", &(request_deadline){ .ms = 1000 }, &v, &err) == -ENOENT);
        CHECK(strstr(err.data, "not found (404)"));

        /* Nothing listens on port 1: retried until the deadline, then a clear reason. */
        buf_clear(&err);
        int r = metadata_get("http://127.0.0.1:1", NULL, "instance-id", &(request_deadline){ .ms = 800 }, &v, &err);
        CHECK(r < 0);
        /* Bounded by the deadline (the message says so), not by a count of attempts. */
        CHECK(err.data && strstr(err.data, "127.0.0.1:1") && strstr(err.data, "deadline reached"));
}

static void test_vault(int port) {
        char addr[64];
        _cleanup_buf_ buf err = BUF_INIT(1024);
        snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
        vault v = { .addr = addr, .deadline_ms = 1000 };

        vault_mode = MODE_403;
        int before = requests;
        CHECK(vault_login(&v, "exoscale", "etcd", "i-1", &err) == -EACCES);
        CHECK(strstr(err.data, "HTTP 403: permission denied"));
        CHECK(requests - before == 1); /* a refusal is not retried */
        CHECK(v.token == NULL);

        vault_mode = MODE_500;
        buf_clear(&err);
        before = requests;
        CHECK(vault_login(&v, "exoscale", "etcd", "i-1", &err) == -EIO);
        /* Retried, then ended by the 1 s deadline: one that did not end it would retry up to
         * 1000 times and run into ctest's timeout (no wall-clock bound here). */
        CHECK(requests - before >= 2);
        CHECK(strstr(err.data, "internal error"));

        vault_mode = MODE_GARBAGE;
        buf_clear(&err);
        CHECK(vault_login(&v, "exoscale", "etcd", "i-1", &err) == -EBADMSG);

        vault_mode = MODE_OK;
        CHECK_OK(vault_login(&v, "exoscale", "etcd", "i-1", NULL));
        CHECK_STREQ(v.token, "tok");
        kv_mode = MODE_GARBAGE;
        json_t *data = NULL;
        buf_clear(&err);
        CHECK(vault_kv_read(&v, "secret", "x", &data, &err) == -EBADMSG);
        kv_mode = MODE_OK;
        vault_done(&v);
        CHECK(v.token == NULL);
}

static void test_etcd_unreachable(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        etcd_tls tls = { 0 };
        etcd_members m = { 0 };
        CHECK(etcd_member_list(&tls, "http://127.0.0.1:1", &m, &err) < 0);
        /* Refused at once: its three attempts, not its 10 s deadline, end it. */
        CHECK(err.data && strstr(err.data, "127.0.0.1:1") && strstr(err.data, "(3 attempts)"));
        CHECK(etcd_health(&tls, "http://127.0.0.1:1", NULL) < 0);
}

/* A whole firstboot against a Vault whose PKI fails: the secret (read before) is written, no
 * certificate or key is, and the journal records the failed stage. */
static void test_firstboot_pki_down(int port) {
        char root[] = "/tmp/test-failures.XXXXXX", path[256], conf[1024];
        struct stat st;
        CHECK(mkdtemp(root));
        snprintf(conf, sizeof(conf),
                 "[agent]\nrole = node\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = 1000\n"
                 "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = 1000\n"
                 "[secret]\npath = node/token\nfield = token\nfile = /etc/node/token\n"
                 "[pki]\nrole = node\ncert_file = /etc/node/pki/node.crt\nkey_file = /etc/node/pki/node.key\n"
                 "ca_file = /etc/node/pki/ca.crt\n[units]\nmode = exec\nexec_start = true\n",
                 port, port);
        snprintf(path, sizeof(path), "%s/agent.conf", root);
        CHECK_OK(write_file_atomic(path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
        char *argv[] = { (char *) "firstboot", (char *) "--config", path, (char *) "--root", root, NULL };
        CHECK(cmd_firstboot(5, argv) == 1);

        snprintf(path, sizeof(path), "%s/etc/node/token", root);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
        snprintf(path, sizeof(path), "%s/etc/node/pki/node.key", root);
        CHECK(stat(path, &st) < 0);
        snprintf(path, sizeof(path), "%s/etc/node/pki/node.crt", root);
        CHECK(stat(path, &st) < 0);
        /* Retried until the stage's deadline: the reason names it and the last error. */
        snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
        _cleanup_(journal_close) journal j = { .fd = -1 };
        CHECK_OK(journal_load(path, &j));
        CHECK(j.n >= 1 && !j.entries[j.n - 1].ok && streq(j.entries[j.n - 1].stage, "pki"));
        CHECK(startswith(j.entries[j.n - 1].detail, "deadline of 1000 ms"));
        CHECK(strstr(j.entries[j.n - 1].detail, "pki backend down"));
        snprintf(path, sizeof(path), "%s/agent.conf", root);
        char *sargv[] = { (char *) "status", (char *) "--config", path, (char *) "--root", root, NULL };
        CHECK(cmd_status(5, sargv) == 1); /* last stage failed */
        CHECK_OK(rm_rf(root));
}

/* Metadata values go into names, paths and URLs: one the cloud cannot return stops the identity
 * stage with what was wrong, before anything is written. */
static void test_firstboot_bad_metadata(int port) {
        static const struct {
                const char **field;
                const char *value, *key, *says;
        } bad[] = {
                { &instance_id, "x,evil=", "instance-id", "is not a UUID" },
                { &instance_id, "../../etc", "instance-id", "is not a UUID" },
                { &instance_id, "I-1", "instance-id", "is not a UUID" },
                { &zone, "ch-gva-2\nx", "availability-zone", "malformed value" },
                { &zone, "../x", "availability-zone", "is not a zone name" },
                { &zone, "ch-gva-2,x=y", "availability-zone", "is not a zone name" },
                { &local_ipv4, "10.0.0.1,evil", "local-ipv4", "is not an IPv4 address" },
                { &local_ipv4, "../x", "local-ipv4", "is not an IPv4 address" },
                { &local_ipv4, "10.0.0.1\nx", "local-ipv4", "malformed value" },
                { &public_ipv4, "10.0.0.1,evil", "public-ipv4", "is not an IPv4 address" },
                { &public_ipv4, "example.com", "public-ipv4", "is not an IPv4 address" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char root[] = "/tmp/test-failures.XXXXXX", path[256], conf[512];
                CHECK(mkdtemp(root));
                snprintf(conf, sizeof(conf),
                         "[agent]\nrole = node\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = 1000\n"
                         "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = 1000\n"
                         "[secret]\npath = node/token\nfield = token\nfile = /etc/node/token\n"
                         "[units]\nmode = exec\nexec_start = true\n", port, port);
                snprintf(path, sizeof(path), "%s/agent.conf", root);
                CHECK_OK(write_file_atomic(path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
                const char *good = *bad[i].field;
                *bad[i].field = bad[i].value;
                char *argv[] = { (char *) "firstboot", (char *) "--config", path, (char *) "--root", root, NULL };
                int r = cmd_firstboot(5, argv);
                *bad[i].field = good;
                CHECK(r == 1);
                snprintf(path, sizeof(path), "%s/etc/node/token", root);
                CHECK(access(path, F_OK) < 0);
                snprintf(path, sizeof(path), "%s/etc", root);
                CHECK(access(path, F_OK) < 0); /* nothing written under the root but the journal */
                snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
                _cleanup_(journal_close) journal j = { .fd = -1 };
                CHECK_OK(journal_load(path, &j));
                CHECK(j.n == 1 && !j.entries[0].ok && streq(j.entries[0].stage, "identity"));
                CHECK(strstr(j.entries[0].detail, bad[i].key) && strstr(j.entries[0].detail, bad[i].says));
                if (!strchr(bad[i].value, '\n'))
                        CHECK(strstr(j.entries[0].detail, bad[i].value));
                CHECK_OK(rm_rf(root));
        }
}

/* Run a bootagent command (status, renew) on root: its exit status, and what it wrote to
 * stdout (which_fd STDOUT_FILENO) or stderr in *ret_out. */
static int command_run(int (*cmd)(int, char **), const char *name, const char *root, int which_fd, char **ret_out) {
        char conf[256], out[256];
        snprintf(conf, sizeof(conf), "%s/agent.conf", root);
        snprintf(out, sizeof(out), "%s/%s.out", root, name);
        char *argv[] = { (char *) name, (char *) "--config", conf, (char *) "--root", (char *) root, NULL };
        fflush(stdout);
        fflush(stderr);
        int saved = dup(which_fd), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(saved >= 0 && fd >= 0 && dup2(fd, which_fd) == which_fd);
        close(fd);
        int r = cmd(5, argv);
        fflush(stdout);
        fflush(stderr);
        CHECK(dup2(saved, which_fd) == which_fd);
        close(saved);
        CHECK_OK(read_file(out, 64 * 1024, ret_out, NULL));
        return r;
}

static int status_run(const char *root, char **ret_out) {
        return command_run(cmd_status, "status", root, STDOUT_FILENO, ret_out);
}

/* Append data to path, or with len 0 cut the last cut bytes off. */
static void damage_journal(const char *path, const void *data, size_t len, off_t cut) {
        struct stat st;
        if (len == 0) {
                CHECK(stat(path, &st) == 0 && st.st_size > cut);
                CHECK(truncate(path, st.st_size - cut) == 0);
                return;
        }
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0 && write(fd, data, len) == (ssize_t) len);
        close(fd);
}

/* The journal of a completed first boot loses its end (5 bytes cut off, as by a truncated file)
 * or gets 100 random bytes: `status` says the journal is damaged, what and where, and exits 3
 * (not "incomplete" and 0); the next firstboot keeps the bytes aside byte for byte, records that
 * in the journal and runs the stages after the last whole entry again to "done". */
static void test_journal_damage(int port) {
        char root[] = "/tmp/test-failures.XXXXXX", conf_path[256], path[256], aside[300], conf[512];
        CHECK(mkdtemp(root));
        snprintf(conf, sizeof(conf),
                 "[agent]\nrole = vault\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = 5000\n"
                 "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = 5000\n"
                 "[units]\nmode = exec\nexec_start = true\n", port, port);
        snprintf(conf_path, sizeof(conf_path), "%s/agent.conf", root);
        CHECK_OK(write_file_atomic(conf_path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
        char *argv[] = { (char *) "firstboot", (char *) "--config", conf_path, (char *) "--root", root, NULL };
        snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
        unsigned char noise[100];
        srand(14);
        for (size_t i = 0; i < sizeof(noise); i++)
                noise[i] = (unsigned char) rand();

        vault_mode = MODE_OK;
        CHECK(cmd_firstboot(5, argv) == 0);
        for (int round = 0; round < 2; round++) {
                _cleanup_free_ char *out = NULL, *before = NULL, *kept = NULL;
                size_t before_len, kept_len;
                _cleanup_(journal_close) journal j = { .fd = -1 };
                CHECK_OK(journal_load(path, &j));
                size_t n = j.n;
                uint64_t run = j.run;
                CHECK(status_run(root, &out) == 0 && strstr(out, "outcome: done\n"));
                free(TAKE_PTR(out));

                if (round == 0)
                        damage_journal(path, NULL, 0, 5); /* "done" cut short */
                else
                        damage_journal(path, noise, sizeof(noise), 0);
                CHECK_OK(read_file(path, 1 << 20, &before, &before_len));
                CHECK(status_run(root, &out) == BOOTAGENT_EXIT_JOURNAL_DAMAGED);
                CHECK(strstr(out, "outcome: unknown, journal damaged\n"));
                CHECK(!strstr(out, "outcome: incomplete"));
                snprintf(aside, sizeof(aside), "%s.damaged-%" PRIu64, path, run + 1);
                CHECK(strstr(out, "journal damaged: ") && strstr(out, " bytes after the last whole entry (entry "));
                CHECK(strstr(out, aside));
                if (round == 0)
                        CHECK(strstr(out, "are a frame cut short (a truncated journal"));

                CHECK(cmd_firstboot(5, argv) == 0);
                free(TAKE_PTR(out));
                CHECK(status_run(root, &out) == 0 && strstr(out, "outcome: done\n"));
                CHECK(strstr(out, "journal    FAILED") && strstr(out, " damaged bytes after entry ") && strstr(out, aside));
                /* Kept byte for byte: what follows the last whole entry. */
                journal_close(&j);
                CHECK_OK(journal_load(path, &j));
                CHECK(j.n > n && j.damaged_bytes == 0 && streq(j.entries[j.n - 1].stage, "done"));
                CHECK_OK(read_file(aside, 1 << 20, &kept, &kept_len));
                CHECK(kept_len > 0 && kept_len <= before_len);
                CHECK(memcmp(kept, before + before_len - kept_len, kept_len) == 0);
                if (round == 1)
                        CHECK(kept_len >= sizeof(noise) &&
                              memcmp(kept + kept_len - sizeof(noise), noise, sizeof(noise)) == 0);
        }
        CHECK_OK(rm_rf(root));
}

/* The public key of a PEM private key, as PEM. */
static char *public_of(const char *key_pem) {
        BIO *kb = BIO_new_mem_buf(key_pem, -1), *out = BIO_new(BIO_s_mem());
        EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        char *p;
        CHECK(k && out && PEM_write_bio_PUBKEY(out, k) == 1);
        long n = BIO_get_mem_data(out, &p);
        char *pem = strndup(p, (size_t) n);
        EVP_PKEY_free(k);
        BIO_free(kb);
        BIO_free(out);
        return pem;
}

/* Issue 14 fault b, the reported case: Vault signs (or issues), but its reply comes after the
 * client's 5 s attempt timeout, and the request is retried in the same run. Vault then holds two
 * certificates (unavoidable once a reply is lost). With local_key = yes both are for the one key
 * saved before the first request; with pki/issue each came with its own key. Either way the
 * agent installs exactly one certificate, the second, with the key it was made for, and the
 * journal names its serial. */
static void test_pki_late_reply(int port, bool local_key) {
        char root[] = "/tmp/test-failures.XXXXXX", path[256], conf[1024];
        _cleanup_free_ char *cert = NULL, *key = NULL, *pub = NULL, *serial = NULL;
        CHECK(mkdtemp(root));
        snprintf(conf, sizeof(conf),
                 "[agent]\nrole = vault\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = 5000\n"
                 "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = 60000\n"
                 "[pki]\nrole = test\nlocal_key = %s\ncert_file = /etc/t/t.crt\nkey_file = /etc/t/t.key\n"
                 "ca_file = /etc/t/ca.crt\n[units]\nmode = exec\nexec_start = true\n", port, port,
                 local_key ? "yes" : "no");
        snprintf(path, sizeof(path), "%s/agent.conf", root);
        CHECK_OK(write_file_atomic(path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
        char *argv[] = { (char *) "firstboot", (char *) "--config", path, (char *) "--root", root, NULL };
        vault_mode = MODE_OK;
        pki_signs = 0;
        pki_first_stall_ms = 5500; /* the agent's attempt timeout for a Vault call is 5000 ms */
        CHECK(cmd_firstboot(5, argv) == 0);

        /* Signed twice: the same key both times with a local key. */
        CHECK(pki_signs == 2);
        CHECK(streq(pki_csr_keys[0], pki_csr_keys[1]) == local_key);
        /* One certificate installed: the second one, with its key. */
        snprintf(path, sizeof(path), "%s/etc/t/t.crt", root);
        CHECK_OK(read_file(path, 65536, &cert, NULL));
        snprintf(path, sizeof(path), "%s/etc/t/t.key", root);
        CHECK_OK(read_file(path, 65536, &key, NULL));
        CHECK(pub = public_of(key));
        CHECK_STREQ(pub, pki_csr_keys[1]);
        char *ips[] = { (char *) "127.0.0.1", NULL };
        const pki_want want = { .common_name = instance_id, .ips = ips };
        CHECK(pki_cert_check(cert, key, &want, 1.0, 0));
        int64_t not_after;
        CHECK_OK(pki_cert_info(cert, &serial, &not_after));
        CHECK_STREQ(serial, pki_serials[1]);
        /* The journal says which one it kept. */
        snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
        _cleanup_(journal_close) journal j = { .fd = -1 };
        CHECK_OK(journal_load(path, &j));
        const journal_entry *e = journal_find_ok(&j, "pki");
        char kept[64];
        snprintf(kept, sizeof(kept), "issued serial %s,", pki_serials[1]);
        CHECK(e && strstr(e->detail, kept));
        CHECK(journal_find_ok(&j, "done"));
        for (int i = 0; i < pki_signs; i++) {
                free(pki_serials[i]);
                free(pki_csr_keys[i]);
        }
        pki_first_stall_ms = 0;
        CHECK_OK(rm_rf(root));
}

/* Issue 14 item 3: a lost record must not leave `renew` refusing forever. The journal of a
 * completed first boot loses its "done" record (cut short by 5 bytes): renew refuses, naming
 * the way out ('bootagent firstboot'), and keeps the damage aside; firstboot then finishes again
 * without signing a second certificate (the one on disk is fresh), and renew runs. Also: a new
 * state directory is made durable (its parent fsynced) before the journal in it. */
static void test_renew_after_lost_record(int port) {
        char root[] = "/tmp/test-failures.XXXXXX", conf_path[256], path[256], conf[1024];
        _cleanup_free_ char *out = NULL;
        CHECK(mkdtemp(root));
        snprintf(conf, sizeof(conf),
                 "[agent]\nrole = vault\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = 5000\n"
                 "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = 5000\n"
                 "[pki]\nrole = test\nlocal_key = yes\ncert_file = /etc/t/t.crt\nkey_file = /etc/t/t.key\n"
                 "ca_file = /etc/t/ca.crt\n[units]\nmode = exec\nexec_start = true\n", port, port);
        snprintf(conf_path, sizeof(conf_path), "%s/agent.conf", root);
        CHECK_OK(write_file_atomic(conf_path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
        char *argv[] = { (char *) "firstboot", (char *) "--config", conf_path, (char *) "--root", root, NULL };
        vault_mode = MODE_OK;
        pki_signs = 0;
        n_synced_dirs = 0;
        CHECK(cmd_firstboot(5, argv) == 0);
        CHECK(pki_signs == 1);
        snprintf(path, sizeof(path), "%s/var/lib", root);
        CHECK(dir_synced(path));
        snprintf(path, sizeof(path), "%s/var/lib/bootagent", root);
        CHECK(dir_synced(path));

        snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
        damage_journal(path, NULL, 0, 5);
        CHECK(command_run(cmd_renew, "renew", root, STDERR_FILENO, &out) == 1);
        CHECK(strstr(out, "First boot has not completed yet"));
        CHECK(strstr(out, "'bootagent firstboot' finishes it again"));
        {
                _cleanup_(journal_close) journal j = { .fd = -1 };
                CHECK_OK(journal_load(path, &j));
                CHECK(j.damaged_bytes == 0 && !journal_find_ok(&j, "done"));
                CHECK(streq(j.entries[j.n - 1].stage, "journal") && !j.entries[j.n - 1].ok);
        }
        CHECK(cmd_firstboot(5, argv) == 0);
        free(TAKE_PTR(out));
        CHECK(command_run(cmd_renew, "renew", root, STDERR_FILENO, &out) == 0);
        CHECK(pki_signs == 1); /* the certificate on disk is fresh: neither signs again */
        for (int i = 0; i < pki_signs; i++) {
                free(pki_serials[i]);
                free(pki_csr_keys[i]);
        }
        CHECK_OK(rm_rf(root));
}

/* Run firstboot with the given deadlines against the fake, expecting it to fail; its journal in
 * *ret_j (the caller closes it). */
static void firstboot_deadline_run(int port, long metadata_deadline_ms, long vault_deadline_ms, journal *ret_j) {
        char root[] = "/tmp/test-failures.XXXXXX", path[256], conf[512];
        CHECK(mkdtemp(root));
        snprintf(conf, sizeof(conf),
                 "[agent]\nrole = node\n[metadata]\nurl = http://127.0.0.1:%d\ndeadline_ms = %ld\n"
                 "[vault]\naddress = http://127.0.0.1:%d\ndeadline_ms = %ld\n"
                 "[units]\nmode = exec\nexec_start = true\n", port, metadata_deadline_ms, port, vault_deadline_ms);
        snprintf(path, sizeof(path), "%s/agent.conf", root);
        CHECK_OK(write_file_atomic(path, conf, strlen(conf), 0600, (uid_t) -1, (gid_t) -1));
        char *argv[] = { (char *) "firstboot", (char *) "--config", path, (char *) "--root", root, NULL };
        CHECK(cmd_firstboot(5, argv) == 1);
        snprintf(path, sizeof(path), "%s/var/lib/bootagent/journal", root);
        CHECK_OK(journal_load(path, ret_j));
        CHECK(ret_j->n >= 1);
        CHECK_OK(rm_rf(root));
}

/* The deadline is the stage's, not each request's: a metadata service that answers every
 * request after 1.5 s gets one full answer and one cut short within a 2 s identity deadline
 * (each of the four keys got its own 2 s before, and the stage succeeded after 6 s). */
static void test_identity_deadline(int port) {
        _cleanup_(journal_close) journal j = { .fd = -1 };
        __atomic_store_n(&metadata_stall_ms, 1500, __ATOMIC_SEQ_CST);
        firstboot_deadline_run(port, 2000, 60000, &j);
        __atomic_store_n(&metadata_stall_ms, 0, __ATOMIC_SEQ_CST);
        journal_entry *e = &j.entries[j.n - 1];
        CHECK(j.n == 1 && !e->ok && streq(e->stage, "identity"));
        CHECK(strstr(e->detail, "deadline of 2000 ms exceeded after "));
        CHECK(strstr(e->detail, "/latest/meta-data/"));
        /* That the stage failed at all is the point: with a deadline per request each of the four
         * keys got its own 2 s and the stage succeeded after 6 s (no wall-clock bound here). */
        sleep_ms(1600); /* the fake is still answering the request that was cut short */
}

/* The same for the login stage's three Vault calls (health, login, renew-self): 1 s each under
 * a 1.5 s stage deadline, so login is the call cut short (each call got its 1.5 s before, and
 * the stage succeeded after 3 s). */
static void test_login_deadline(int port) {
        _cleanup_(journal_close) journal j = { .fd = -1 };
        vault_mode = MODE_OK;
        __atomic_store_n(&vault_stall_ms, 1000, __ATOMIC_SEQ_CST);
        firstboot_deadline_run(port, 10000, 1500, &j);
        __atomic_store_n(&vault_stall_ms, 0, __ATOMIC_SEQ_CST);
        journal_entry *e = &j.entries[j.n - 1];
        CHECK(j.n == 2 && j.entries[0].ok && !e->ok && streq(e->stage, "login"));
        CHECK(strstr(e->detail, "deadline of 1500 ms exceeded after "));
        CHECK(strstr(e->detail, "/v1/auth/exoscale/login"));
        sleep_ms(1100);
}

/* [metadata] and [vault] socket = PATH: the agent's clients reach the services through the UNIX
 * socket; the URLs give only Host and path (nothing listens on 127.0.0.1 port 1). */
static void test_sockets(const char *path) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        identity id = {};

        CHECK_OK(identity_fetch("http://127.0.0.1:1", path, &(request_deadline){ .ms = 1000 }, &id, &err));
        CHECK_STREQ(id.instance_id, instance_id);
        CHECK_STREQ(id.zone, "local");
        identity_done(&id);

        vault_mode = MODE_OK;
        vault v = { .addr = "http://127.0.0.1:1", .unix_socket = path, .deadline_ms = 1000 };
        CHECK_OK(vault_login(&v, "exoscale", "etcd", "i-1", &err));
        CHECK_STREQ(v.token, "tok");
        vault_done(&v);
}

int main(void) {
        _cleanup_(http_server_freep) http_server *h = NULL;
        char dir[] = "/tmp/test-failures.XXXXXX", path[64];
        pthread_t t;
        CHECK_OK(http_global_init());
        CHECK_OK(http_server_new(handler, NULL, &h));
        int port = http_server_listen(h, "127.0.0.1", 0, "fake");
        CHECK_OK(port);
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/cloud.sock", dir);
        CHECK_OK(http_server_listen_unix(h, path, "fake-unix"));
        CHECK(pthread_create(&t, NULL, serve, h) == 0);

        test_sockets(path);
        test_metadata(port);
        test_vault(port);
        test_etcd_unreachable();
        test_firstboot_pki_down(port);
        test_firstboot_bad_metadata(port);
        test_journal_damage(port);
        test_pki_late_reply(port, true);
        test_pki_late_reply(port, false);
        test_renew_after_lost_record(port);
        test_identity_deadline(port);
        test_login_deadline(port);

        stop = 1;
        pthread_join(t, NULL);
        http_server_free(TAKE_PTR(h)); /* removes the socket */
        EVP_PKEY_free(ca_key);
        X509_free(ca_cert);
        CHECK(rmdir(dir) == 0);
        return 0;
}
