/* The registry of pool roles: see pool-roles.h. */
#include "pool-roles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "pool-role-etcd.h"
#include "pool-role-node.h"
#include "templates.h"

const pool_role_ops *const pool_roles[] = {
        &pool_role_etcd_ops,
        &pool_role_node_ops,
        NULL,
};

const pool_role_ops *pool_role_find(const char *name) {
        for (size_t i = 0; name && pool_roles[i]; i++)
                if (streq(pool_roles[i]->name, name))
                        return pool_roles[i];
        return NULL;
}

static const pool_role_ops *role_find(const char *name, const char *where, buf *err) {
        const pool_role_ops *ops = pool_role_find(name);
        if (ops)
                return ops;
        (void) buf_printf(err, "%s: unknown role '%s' (", where, name);
        for (size_t i = 0; pool_roles[i]; i++)
                (void) buf_printf(err, "%s%s", i > 0 ? ", " : "", pool_roles[i]->name);
        (void) buf_puts(err, ")");
        return NULL;
}

int pool_role_choose(const pool_provider_ops *provider, const char *cache_dir, const char *template,
                     const char *given, const pool_role_ops **ret, buf *err) {
        _cleanup_free_ char *store = NULL, *recorded = NULL;
        _cleanup_(base_image_done) base_image b = {};
        const pool_role_ops *ops = NULL;
        int r;

        if (given && !(ops = role_find(given, "--role", err)))
                return -EINVAL;
        if (provider->store_templates && strchr(template, '@') && base_store_dir(cache_dir, &store) >= 0 &&
            template_open(store, template, &b) >= 0) {
                r = template_agent_role(&b, &recorded);
                if (r < 0 && r != -ENODATA)
                        return buf_printf(err, "template %s: reading the role from its manifest: %s", template,
                                          strerror(-r)), r;
                if (recorded) {
                        _cleanup_buf_ buf where = BUF_INIT(256);
                        const pool_role_ops *t;
                        if (buf_printf(&where, "template %s (its recipe's agent step)", template) < 0)
                                return -ENOMEM;
                        t = role_find(recorded, where.data, err);
                        if (!t)
                                return -EINVAL;
                        if (ops && ops != t)
                                return buf_printf(err, "--role %s contradicts template %s, whose agent runs role %s "
                                                  "(leave --role out, or use a %s template)", given, template,
                                                  recorded, given), -EINVAL;
                        ops = t;
                }
        }
        *ret = ops ?: &pool_role_etcd_ops;
        return 0;
}
