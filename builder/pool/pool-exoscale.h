/* The exoscale provider: pool members are the instances of one Exoscale instance pool (API v2,
 * lib/exoapi.h), on a managed private network whose leases give each member its address. See
 * pool-exoscale.c for how each pool operation maps onto the API. */
#pragma once

#include <jansson.h>

#include "buf.h"
#include "pool-provider.h"

/* What `imgbuild pool create --provider exoscale` is told. Strings are borrowed. */
typedef struct pool_exoscale_options {
        const char *pool_name;          /* the imgbuild pool's name: the instance pool's name */
        const char *template;           /* the pool's first template reference (id or name) */
        const char *zone;               /* required */
        const char *instance_type;      /* id or FAMILY.SIZE; NULL: standard.small */
        unsigned disk_size_gb;          /* 0: 10 */
        char *const *security_groups;   /* ids; may be NULL */
        const char *private_network;    /* id of a managed private network; required */
        const char *etcd_ca, *etcd_cert, *etcd_key;   /* the operator's etcd client TLS files; required */
        unsigned etcd_port;             /* the members' etcd client port; 0: 2379 */
        unsigned start_timeout_s;       /* how long a new member may take to boot and join; 0: 900 */
        const char *api_endpoint;       /* NULL: $EXOSCALE_API_ENDPOINT, else EXOAPI_DEFAULT_ENDPOINT */
        const char *credentials_file;   /* NULL: EXOSCALE_API_KEY / EXOSCALE_API_SECRET */
} pool_exoscale_options;

/* Check o and record it in the provider state of a new pool (file names made absolute; no
 * secret is stored, only where to find it). Returns 0, or -EINVAL / -ENOENT with err set, or
 * -ENOMEM. */
int pool_exoscale_configure(json_t *state, const pool_exoscale_options *o, buf *err);

/* See pool_provider_new(). */
int pool_exoscale_provider_new(const char *dir, json_t *state, pool_provider **ret);
