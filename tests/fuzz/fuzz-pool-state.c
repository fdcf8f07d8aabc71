/* Fuzz the pool state loader (pool_load of DIR/pool.json, builder/pool/pool.c) with the file's
 * content. Checked: a refused file is -EBADMSG (malformed) or -EINVAL (unknown provider or role)
 * with a reason; a loaded pool holds what the file says (size, within 1..POOL_SIZE_MAX, template,
 * provider, roll target, every member, the provider's object, the role (absent: etcd) and its
 * object (absent: empty)); saving it and loading again gives the same pool. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "json.h"
#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static bool same_pool(const pool *a, const pool *b) {
        if (!streq(a->template, b->template) || !streq(a->provider_name, b->provider_name) ||
            !str_eq(a->roll_target, b->roll_target) || a->size != b->size || a->n_members != b->n_members ||
            !json_equal(a->provider_state, b->provider_state) || a->role->ops != b->role->ops ||
            !json_equal(a->role_state, b->role_state))
                return false;
        for (size_t i = 0; i < a->n_members; i++)
                if (!streq(a->members[i].id, b->members[i].id) || !streq(a->members[i].ip, b->members[i].ip) ||
                    !streq(a->members[i].template, b->members[i].template) ||
                    !streq(a->members[i].state, b->members[i].state))
                        return false;
        return true;
}

/* The pool as the file says it, field by field. */
static bool matches_file(const pool *p, json_t *root) {
        json_t *members = json_object_get(root, "members"), *m, *role_config = json_object_get(root, "role_config");
        const char *role = json_path_string(root, "role");
        size_t i;

        if (!json_is_integer(json_object_get(root, "size")) || p->size < 1 || p->size > POOL_SIZE_MAX ||
            (json_int_t) p->size != json_integer_value(json_object_get(root, "size")) ||
            !str_eq(p->template, json_path_string(root, "template")) ||
            !str_eq(p->provider_name, json_path_string(root, "provider_name")) ||
            !str_eq(p->roll_target, json_path_string(root, "roll_target")) ||
            !json_equal(p->provider_state, json_object_get(root, "provider")) ||
            !streq(p->role->ops->name, role ?: "etcd") ||
            (role_config ? !json_equal(p->role_state, role_config) : json_object_size(p->role_state) != 0) ||
            p->n_members != json_array_size(members))
                return false;
        json_array_foreach(members, i, m)
                if (!str_eq(p->members[i].id, json_path_string(m, "id")) ||
                    !str_eq(p->members[i].ip, json_path_string(m, "ip")) ||
                    !str_eq(p->members[i].template, json_path_string(m, "template")) ||
                    !str_eq(p->members[i].state, json_path_string(m, "state")))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char file[192];
        _cleanup_(pool_freep) pool *p = NULL, *again = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        _cleanup_json_ json_t *root = NULL;

        if (size > 256 * 1024)
                return 0;
        if (!file[0]) {
                char dir[160];
                snprintf(dir, sizeof(dir), "%s/pools/fuzz", fuzz_dir());
                snprintf(file, sizeof(file), "%s/pool.json", dir);
                if (setenv("IMGBUILD_STATE_DIR", fuzz_dir(), 1) < 0 || mkdir_p(dir, 0700) < 0)
                        abort();
        }
        if (write_file_atomic(file, data, size, 0600, (uid_t) -1, (gid_t) -1) < 0)
                abort();
        int r = pool_load("fuzz", false, &p, &err);
        if (r < 0) {
                if ((r != -EBADMSG && r != -EINVAL) || !err.data || !*err.data || p)
                        abort();
                return 0;
        }
        if (json_parse((const char *) data, size, &root, NULL) < 0 || !matches_file(p, root))
                abort();

        buf_clear(&err);
        if (pool_save(p, &err) < 0 || pool_load("fuzz", false, &again, &err) < 0 || !same_pool(p, again))
                abort();
        return 0;
}
