/* etcd v3 JSON gateway client (protocols.md §6) over https with the PKI client certificate. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"
#include "request.h"

typedef struct etcd_member {
        uint64_t id;
        char *name;          /* NULL: added but not started yet */
        char **peer_urls;
        char **client_urls;
        bool is_learner;
} etcd_member;

typedef struct etcd_members {
        etcd_member *v;
        size_t n;
        uint64_t cluster_id;
} etcd_members;

typedef struct etcd_tls {
        const char *ca_file, *cert_file, *key_file; /* borrowed */
        /* The calling stage's deadline (borrowed, may be NULL): with deadline->at set, no call
         * outlives it (a call's own deadline still applies when earlier). Counts the requests. */
        request_deadline *deadline;
} etcd_tls;

/* Parse a gateway error body {"error"|"message":...} into err; returns the HTTP-mapped errno:
 * 400 -EINVAL, 404 -ENOENT, 409 -EEXIST, 503 -EAGAIN, other -EIO. */
int etcd_parse_error(long status, const char *body, size_t len, buf *err);
/* Parse .members (list/add/remove/promote replies) and header.cluster_id. */
int etcd_parse_members(json_t *reply, etcd_members *ret);
/* From a member/add reply: the new member's ID. */
int etcd_parse_added_id(json_t *reply, uint64_t *ret);
/* From a maintenance/status reply: whether the answering member is a learner, and its leader. */
int etcd_parse_status(json_t *reply, bool *ret_is_learner, uint64_t *ret_leader);

void etcd_members_done(etcd_members *m);
/* Member whose peer URLs contain url, or NULL. */
etcd_member *etcd_members_find_peer(const etcd_members *m, const char *url);

/* POST <endpoint><path> with body; *ret a new reference to the JSON reply. attempts/deadline as
 * in http.h (attempts 1 for probes). */
int etcd_call(const etcd_tls *tls, const char *endpoint, const char *path, const char *body,
              unsigned attempts, long deadline_ms, json_t **ret, buf *err);
/* GET <endpoint>/health: 0 when {"health":"true"}, -EAGAIN otherwise. One attempt. */
int etcd_health(const etcd_tls *tls, const char *endpoint, buf *err);

int etcd_member_list(const etcd_tls *tls, const char *endpoint, etcd_members *ret, buf *err);
int etcd_member_add_learner(const etcd_tls *tls, const char *endpoint, const char *peer_url,
                            uint64_t *ret_id, etcd_members *ret_members, buf *err);
int etcd_member_remove(const etcd_tls *tls, const char *endpoint, uint64_t id, buf *err);
int etcd_member_promote(const etcd_tls *tls, const char *endpoint, uint64_t id, buf *err);
int etcd_status(const etcd_tls *tls, const char *endpoint, bool *ret_is_learner, buf *err);

/* "https://10.0.0.5:2380" -> "10.0.0.5" (new string) or NULL. */
char *etcd_url_host(const char *url);
