#include "build-provider.h"

#include <errno.h>

int build_provider_run(const build_provider_ops *ops, void *state, const build_context *ctx) {
        comm_client *c = NULL;
        int r;

        r = ops->prepare(state, ctx);
        if (r > 0)
                return ops->finish(state, 0);
        if (r == -EINVAL) {
                (void) ops->finish(state, r);
                return r;
        }
        if (r >= 0)
                r = ops->connect(state, &c);
        for (size_t i = 0; r >= 0 && i <= ctx->recipe->n_steps; i++)
                r = ops->run_step(state, c, i);
        r = ops->finish(state, r);
        if (r >= 0)
                r = ops->export(state);
        /* Only prepare tells a wrong recipe; later an EINVAL is a failure like any other. */
        return r == -EINVAL ? -EIO : r;
}
