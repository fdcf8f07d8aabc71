/* The QEMU provider's guestfwd forwards: a member's metadata and Vault reach its own UNIX sockets
 * of the local cloud through socat (so only this user's processes, QEMU among them, get in), the
 * cloud API its port; paths QEMU, libslirp or socat would misread are refused. And a member's
 * disk before its VM starts: made on the template's disk once, then refused (-ESTALE) when the
 * template was built again with other content. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"
#include "spawn.h"
#include "pool-cloud.h"
#include "pool-qemu.h"
#include "strv.h"

static char root[] = "/var/tmp/test-pool-qemu-XXXXXX";

static char *at(const char *rel) {
        char *p;
        CHECK(asprintf(&p, "%s/%s", root, rel) > 0);
        return p;
}

/* A template as the store keeps it, as far as the member's disk needs: its disk and a manifest
 * giving the disk's sha256 (the digest is what is compared, the disk is not read again). */
static void put_manifest(const char *digest) {
        _cleanup_free_ char *path = at("tmpl/manifest.json"), *text = NULL;
        CHECK(asprintf(&text, "{\"output\": {\"path\": \"%s/tmpl/disk.qcow2\", \"sha256\": \"%s\"}}", root,
                       digest) > 0);
        CHECK_OK(write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1));
}

static void test_member_disk(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        int status;
        char *probe[] = { (char *) "qemu-img", (char *) "--version", NULL };
        if (spawn_run(probe, NULL, &status) < 0 || status != 0) {
                fprintf(stderr, "member disk: skipped, qemu-img not available\n");
                return;
        }
        CHECK(mkdtemp(root));
        _cleanup_free_ char *tdir = at("tmpl"), *tdisk = at("tmpl/disk.qcow2"), *mdir = at("members/m1"),
                            *mdisk = at("members/m1/disk.qcow2"), *record = at("members/m1/template.sha256");
        CHECK_OK(mkdir_p(tdir, 0755));
        char *create[] = { (char *) "qemu-img", (char *) "create", (char *) "-q", (char *) "-f", (char *) "qcow2",
                           tdisk, (char *) "16M", NULL };
        CHECK_OK(spawn_run(create, NULL, &status));
        CHECK(status == 0);
        char old[SHA256_HEX_SIZE], new[SHA256_HEX_SIZE];
        memset(old, 'a', SHA256_HEX_SIZE - 1);
        old[SHA256_HEX_SIZE - 1] = 0;
        memset(new, 'b', SHA256_HEX_SIZE - 1);
        new[SHA256_HEX_SIZE - 1] = 0;
        put_manifest(old);
        base_image tmpl = { .dir = tdir, .disk = tdisk };

        /* First start: the record, then the overlay on the template's disk. */
        CHECK_OK(pool_qemu_member_disk(&tmpl, mdir, "i-1", "etcd@1", &err));
        CHECK(access(mdisk, R_OK) == 0);
        _cleanup_free_ char *made_on = NULL;
        CHECK_OK(read_file(record, 1024, &made_on, NULL));
        CHECK_STREQ(made_on, old);
        char *info[] = { (char *) "qemu-img", (char *) "info", (char *) "-U", mdisk, NULL };
        buf out = BUF_INIT(65536);
        CHECK_OK(spawn_capture(info, NULL, &out, &status));
        CHECK(status == 0 && strstr(out.data, tdisk));
        buf_free(&out);

        /* A restart on the same template: the disk is kept as it is. */
        struct stat before, after;
        CHECK(stat(mdisk, &before) == 0);
        CHECK_OK(pool_qemu_member_disk(&tmpl, mdir, "i-1", "etcd@1", &err));
        CHECK(stat(mdisk, &after) == 0 && after.st_ino == before.st_ino && after.st_mtime == before.st_mtime);

        /* The template deleted and built again with other content: refused before any start,
         * the member's disk untouched. */
        put_manifest(new);
        buf_clear(&err);
        CHECK(pool_qemu_member_disk(&tmpl, mdir, "i-1", "etcd@1", &err) == -ESTALE);
        CHECK(strstr(err.data, "member i-1: its disk is an overlay on etcd@1 as it was (disk sha256 aaaaaaaaaaaa), "
                               "but the template's disk is now bbbbbbbbbbbb: replace the member"));
        CHECK(stat(mdisk, &after) == 0 && after.st_ino == before.st_ino);
        _cleanup_free_ char *still = NULL;
        CHECK_OK(read_file(record, 1024, &still, NULL));
        CHECK_STREQ(still, old);

        /* A disk made before the record was kept starts as it is. */
        CHECK(unlink(record) == 0);
        CHECK_OK(pool_qemu_member_disk(&tmpl, mdir, "i-1", "etcd@1", &err));
        /* A manifest without the digest is an error, not a pass. */
        _cleanup_free_ char *mpath = at("tmpl/manifest.json");
        CHECK_OK(write_file_atomic(mpath, "{}", 2, 0644, (uid_t) -1, (gid_t) -1));
        buf_clear(&err);
        CHECK(pool_qemu_member_disk(&tmpl, mdir, "i-1", "etcd@1", &err) == -EBADMSG);
        CHECK(strstr(err.data, "reading the disk digest"));
        CHECK_OK(rm_rf(root));
}

int main(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        _cleanup_strv_free_ char **fwd = NULL;

        test_member_disk();

        CHECK_OK(pool_qemu_guestfwd("/home/u/.local/state/imgbuild/pools/etcd", 3, 20000, &fwd, &err));
        CHECK(strv_length(fwd) == 3);
        CHECK_STREQ(fwd[0], "tcp:169.254.169.254:80-cmd:socat STDIO "
                            "UNIX-CONNECT:/home/u/.local/state/imgbuild/pools/etcd/cloud/sockets/m3-metadata.sock");
        CHECK_STREQ(fwd[1], "tcp:169.254.169.254:8200-cmd:socat STDIO "
                            "UNIX-CONNECT:/home/u/.local/state/imgbuild/pools/etcd/cloud/sockets/m3-vault.sock");
        CHECK_STREQ(fwd[2], "tcp:169.254.169.254:8080-cmd:socat STDIO TCP:127.0.0.1:20000");

        /* The sockets are the ones the local cloud's cloud.json names for that member. */
        _cleanup_free_ char *metadata = pool_cloud_socket("/p", 3, "metadata");
        CHECK_STREQ(metadata, "/p/cloud/sockets/m3-metadata.sock");

        /* ',' would end QEMU's option, ' ' split socat's argv, ':' start a socat option. */
        static const char *const bad[] = { "/tmp/a,b", "/tmp/a b", "/tmp/a:b", "/tmp/a!b", "/tmp/a'b", "relative" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char **none = NULL;
                buf_clear(&err);
                CHECK(pool_qemu_guestfwd(bad[i], 1, 20000, &none, &err) == -EINVAL);
                CHECK(!none);
                CHECK(strstr(err.data, "QEMU's guestfwd cannot carry this path"));
        }
        return 0;
}
