/* The QEMU provider's guestfwd forwards: a member's metadata and Vault reach its own UNIX sockets
 * of the local cloud through socat (so only this user's processes, QEMU among them, get in), the
 * cloud API its port; paths QEMU, libslirp or socat would misread are refused. */
#include <errno.h>

#include "check.h"
#include "pool-cloud.h"
#include "pool-qemu.h"
#include "strv.h"

int main(void) {
        _cleanup_buf_ buf err = BUF_INIT(1024);
        _cleanup_strv_free_ char **fwd = NULL;

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
