/* The Kubernetes API calls of the node and control-plane pool roles (pool-kube.h). */
#include "pool-kube.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "macro.h"
#include "time-util.h"

/* Pods per page of the node's pod list, as kubectl drain asks (limit=500, then continue). */
#define POD_PAGE 500
/* How often a drain looks whether the evicted pods are gone (kubectl: every second). */
#define GONE_POLL_MS 1000L

static bool pod_finished(json_t *pod) {
        const char *phase = json_path_string(pod, "status.phase");
        return phase && (streq(phase, "Succeeded") || streq(phase, "Failed"));
}

pool_kube_pod_verdict pool_kube_pod_classify(json_t *pod) {
        size_t i;
        json_t *ref;

        /* daemonSetFilter: the controller reference only (metav1.GetControllerOf), and a finished
         * pod goes whatever owns it */
        json_array_foreach(json_path(pod, "metadata.ownerReferences"), i, ref) {
                if (!json_is_true(json_object_get(ref, "controller")))
                        continue;
                const char *kind = json_string_value(json_object_get(ref, "kind"));
                if (kind && streq(kind, "DaemonSet") && !pod_finished(pod))
                        return POOL_KUBE_POD_SKIP_DAEMONSET;
                break;
        }
        /* mirrorPodFilter: the annotation's presence, whatever its value */
        json_t *annotations = json_path(pod, "metadata.annotations");
        if (json_is_object(annotations) && json_object_get(annotations, "kubernetes.io/config.mirror"))
                return POOL_KUBE_POD_SKIP_MIRROR;
        return POOL_KUBE_POD_EVICT;
}

static void pod_ref_done(pool_kube_pod_ref *r) {
        free(r->namespace);
        free(r->name);
        free(r->uid);
        *r = (pool_kube_pod_ref){};
}

void pool_drain_plan_done(pool_drain_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_evict; i++)
                pod_ref_done(&p->evict[i]);
        free(p->evict);
        *p = (pool_drain_plan){};
}

int pool_kube_drain_plan(json_t *items, pool_drain_plan *ret) {
        _cleanup_(pool_drain_plan_done) pool_drain_plan p = {};
        size_t i;
        json_t *pod;

        if (!json_is_array(items))
                return -EBADMSG;
        json_array_foreach(items, i, pod) {
                const char *ns = json_path_string(pod, "metadata.namespace");
                const char *name = json_path_string(pod, "metadata.name");
                if (!ns || !name || !*ns || !*name)
                        return -EBADMSG;
        }
        json_array_foreach(items, i, pod) {
                switch (pool_kube_pod_classify(pod)) {
                case POOL_KUBE_POD_SKIP_DAEMONSET:
                        p.skipped_daemonset++;
                        continue;
                case POOL_KUBE_POD_SKIP_MIRROR:
                        p.skipped_mirror++;
                        continue;
                case POOL_KUBE_POD_EVICT:
                        break;
                }
                if (!p.evict) {
                        p.evict = calloc(json_array_size(items), sizeof(*p.evict));
                        if (!p.evict)
                                return -ENOMEM;
                }
                pool_kube_pod_ref *r = &p.evict[p.n_evict++];
                const char *uid = json_path_string(pod, "metadata.uid");
                r->namespace = strdup(json_path_string(pod, "metadata.namespace"));
                r->name = strdup(json_path_string(pod, "metadata.name"));
                r->uid = uid ? strdup(uid) : NULL;
                if (!r->namespace || !r->name || (uid && !r->uid))
                        return -ENOMEM;
        }
        *ret = p;
        p = (pool_drain_plan){};
        return 0;
}

char *pool_kube_blocked_message(const char *ns, const char *pod, const char *err_line) {
        const char *msg = strempty(err_line);
        const char *http = strstr(msg, ": HTTP ");
        char *out = NULL;

        if (http) {
                /* "HTTP 429 TooManyRequests: message": skip up to the ": " after the status */
                const char *colon = strstr(http + 7, ": ");
                const char *open = strchr(http + 7, '(');
                if (colon && (!open || colon < open))
                        msg = colon + 2;
                else
                        msg = http + 2;
        }
        if (asprintf(&out, "%s/%s: %s", ns, pod, msg) < 0)
                return NULL;
        return out;
}

void pool_drain_report_done(pool_drain_report *r) {
        if (!r)
                return;
        free(r->blocked);
        *r = (pool_drain_report){};
}

static int node_path(const char *node, const char *suffix, char **ret) {
        _cleanup_free_ char *e = http_escape(node);
        if (!e || asprintf(ret, "/api/v1/nodes/%s%s", e, suffix) < 0)
                return -ENOMEM;
        return 0;
}

/* Every pod bound to node, across namespaces, following "continue". Returns 0 and a new array in
 * *ret, -EBADMSG for a reply that is not a PodList, kube-client's errors. */
static int node_pods(kube_client *k, const char *node, json_t **ret, buf *err) {
        _cleanup_json_ json_t *all = json_array();
        _cleanup_free_ char *selector = NULL, *sel = NULL, *cont = NULL;
        int r;

        if (!all || asprintf(&selector, "spec.nodeName=%s", node) < 0 || !(sel = http_escape(selector)))
                return -ENOMEM;
        for (unsigned page = 0;; page++) {
                _cleanup_free_ char *path = NULL, *econt = NULL;
                _cleanup_json_ json_t *list = NULL;
                if (cont && !(econt = http_escape(cont)))
                        return -ENOMEM;
                if (asprintf(&path, "/api/v1/pods?fieldSelector=%s&limit=%d%s%s", sel, POD_PAGE,
                             econt ? "&continue=" : "", strempty(econt)) < 0)
                        return -ENOMEM;
                r = kube_get(k, path, &list, err);
                if (r < 0)
                        return r;
                json_t *items = json_object_get(list, "items");
                if (!json_is_array(items) && !json_is_null(items) && items) {
                        if (err)
                                (void) buf_printf(err, "GET %s: the reply is not a PodList", path);
                        return -EBADMSG;
                }
                if (items && json_array_extend(all, items) < 0)
                        return -ENOMEM;
                const char *next = json_path_string(list, "metadata.continue");
                if (!next || !*next)
                        break;
                /* a server that hands back the same token would loop for ever */
                if ((cont && streq(cont, next)) || page > 100000) {
                        if (err)
                                (void) buf_printf(err, "GET %s: the pod list does not advance", path);
                        return -EBADMSG;
                }
                if (free_and_strdup(&cont, next) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(all);
        return 0;
}

int pool_kube_node_get(kube_client *k, const char *node, pool_kube_node *ret, buf *err) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *obj = NULL, *pods = NULL;
        _cleanup_(pool_drain_plan_done) pool_drain_plan plan = {};
        _cleanup_buf_ buf e = BUF_INIT(1024); /* a 404 is no error here: its line stays out of err */
        pool_kube_node n = {};
        int r;

        if ((r = node_path(node, "", &path)) < 0)
                return r;
        r = kube_get(k, path, &obj, &e);
        if (r < 0 && r != -ENOENT) {
                if (err)
                        (void) buf_puts(err, strempty(e.data));
                return r;
        }
        if (r >= 0) {
                size_t i;
                json_t *c;
                n.exists = true;
                n.unschedulable = json_is_true(json_path(obj, "spec.unschedulable"));
                json_array_foreach(json_path(obj, "status.conditions"), i, c) {
                        const char *type = json_string_value(json_object_get(c, "type"));
                        const char *status = json_string_value(json_object_get(c, "status"));
                        if (type && streq(type, "Ready"))
                                n.ready = status && streq(status, "True");
                }
        }
        r = node_pods(k, node, &pods, err);
        if (r < 0)
                return r;
        r = pool_kube_drain_plan(pods, &plan);
        if (r == -EBADMSG && err)
                (void) buf_printf(err, "the pods of node %s: a pod without a name or namespace", node);
        if (r < 0)
                return r;
        n.pods = (unsigned) plan.n_evict;
        n.daemonset_pods = plan.skipped_daemonset;
        n.mirror_pods = plan.skipped_mirror;
        *ret = n;
        return 0;
}

int pool_kube_cordon(kube_client *k, const char *node, bool unschedulable, buf *err) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *patch = json_pack("{s:{s:o}}", "spec", "unschedulable",
                                                 unschedulable ? json_true() : json_null());
        int r;

        if (!patch)
                return -ENOMEM;
        if ((r = node_path(node, "", &path)) < 0)
                return r;
        return kube_patch(k, path, KUBE_PATCH_MERGE, patch, NULL, err);
}

int pool_kube_delete_node(kube_client *k, const char *node, buf *err) {
        _cleanup_free_ char *path = NULL;
        _cleanup_buf_ buf e = BUF_INIT(1024);
        int r;

        if ((r = node_path(node, "", &path)) < 0)
                return r;
        r = kube_delete(k, path, NULL, NULL, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0 && err)
                (void) buf_puts(err, strempty(e.data));
        return r;
}

int pool_kube_readyz(kube_client *k, buf *err) {
        _cleanup_free_ char *body = NULL;
        int r = kube_get_text(k, "/readyz", &body, err);
        if (r < 0)
                return r;
        size_t n = strlen(body);
        while (n > 0 && strchr(" \t\r\n", body[n - 1]))
                n--;
        if (n == 2 && strneq(body, "ok", 2))
                return 0;
        if (err) {
                (void) buf_printf(err, "GET %s/readyz answered \"", kube_client_server(k));
                for (size_t i = 0; i < n && i < 100; i++)
                        (void) buf_printf(err, "%c", body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?');
                (void) buf_puts(err, n > 100 ? "...\"" : "\"");
        }
        return -EPROTO;
}

/* ---- drain ---- */

static bool cancelled(const volatile sig_atomic_t *cancel) { return cancel && *cancel; }

/* Sleep ms, but not past deadline. Returns 0 or -ECANCELED. */
static int nap(long ms, long deadline_ms, const volatile sig_atomic_t *cancel) {
        int64_t left = deadline_ms - time_now_ms();
        if (left < ms)
                ms = left > 0 ? (long) left : 0;
        if (ms > 0)
                return time_sleep_ms_cancellable(ms, cancel);
        return cancelled(cancel) ? -ECANCELED : 0;
}

static int fail_cancelled(const char *node, buf *err) {
        if (err)
                (void) buf_printf(err, "drain of node %s cancelled", node);
        return -ECANCELED;
}

/* POST the eviction of one pod. Returns 0 (accepted), -ENOENT (already gone), -EBUSY (refused:
 * *blocked set to "ns/pod: message"), kube-client's other errors with err. */
static int evict(kube_client *k, const pool_kube_pod_ref *p, char **blocked, buf *err) {
        _cleanup_free_ char *ens = http_escape(p->namespace), *ename = http_escape(p->name), *path = NULL;
        _cleanup_buf_ buf e = BUF_INIT(2048);
        /* what kubectl sends for policy/v1 (kubernetes-vault.md C.4) */
        _cleanup_json_ json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{}}", "kind", "Eviction", "apiVersion",
                                                "policy/v1", "metadata", "name", p->name, "namespace", p->namespace,
                                                "deleteOptions");
        int r;

        if (!ens || !ename || !body || asprintf(&path, "/api/v1/namespaces/%s/pods/%s/eviction", ens, ename) < 0)
                return -ENOMEM;
        r = kube_post(k, path, body, NULL, &e);
        if (r == -EBUSY) {
                char *m = pool_kube_blocked_message(p->namespace, p->name, e.data);
                if (!m)
                        return -ENOMEM;
                free(*blocked);
                *blocked = m;
        } else if (r < 0 && r != -ENOENT && err)
                (void) buf_printf(err, "evicting %s/%s: %s", p->namespace, p->name, strempty(e.data));
        return r;
}

/* Whether p is still among pods (same namespace and name, and the same UID when both have one). */
static bool still_there(const pool_kube_pod_ref *p, json_t *pods) {
        size_t i;
        json_t *pod;
        json_array_foreach(pods, i, pod) {
                const char *ns = json_path_string(pod, "metadata.namespace");
                const char *name = json_path_string(pod, "metadata.name");
                const char *uid = json_path_string(pod, "metadata.uid");
                if (!ns || !name || !streq(ns, p->namespace) || !streq(name, p->name))
                        continue;
                if (uid && p->uid && !streq(uid, p->uid))
                        continue; /* the name now belongs to a new pod: ours is gone */
                return true;
        }
        return false;
}

static long seconds_since(int64_t t0) {
        int64_t d = time_now_ms() - t0;
        return d > 0 ? (long) ((d + 500) / 1000) : 0;
}

/* One round of a drain of the cordoned node: list its pods, evict those to evict, wait until
 * they are gone. *ret_planned: how many it listed to evict (0: the node is drained). */
static int drain_round(kube_client *k, const char *node, long deadline_ms, long retry_ms,
                       const volatile sig_atomic_t *cancel, pool_drain_report *rep, buf *err, int64_t start,
                       int64_t *first_block_io, size_t *ret_planned) {
        _cleanup_(pool_drain_plan_done) pool_drain_plan plan = {};
        _cleanup_json_ json_t *pods = NULL;
        _cleanup_free_ bool *done = NULL;
        int64_t first_block = *first_block_io;
        size_t left;
        int r;

        *ret_planned = 0;
        r = node_pods(k, node, &pods, err);
        if (r < 0)
                return r;
        r = pool_kube_drain_plan(pods, &plan);
        if (r == -EBADMSG && err)
                (void) buf_printf(err, "the pods of node %s: a pod without a name or namespace", node);
        if (r < 0)
                return r;
        rep->skipped_daemonset = plan.skipped_daemonset;
        rep->skipped_mirror = plan.skipped_mirror;
        *ret_planned = plan.n_evict;
        if (plan.n_evict == 0)
                return 0;
        done = calloc(plan.n_evict + 1, sizeof(*done));
        if (!done)
                return -ENOMEM;

        /* Evict, in rounds: every pod not yet evicted once per round, retry_ms between rounds,
         * one request at a time (so each eviction sees the budget as the previous one left it). */
        for (left = plan.n_evict; left > 0;) {
                for (size_t i = 0; i < plan.n_evict; i++) {
                        if (done[i])
                                continue;
                        if (cancelled(cancel))
                                return fail_cancelled(node, err);
                        r = evict(k, &plan.evict[i], &rep->blocked, err);
                        if (r == -EBUSY) {
                                rep->blocked_retries++;
                                if (!first_block)
                                        *first_block_io = first_block = time_now_ms();
                                continue;
                        }
                        if (r == -ENOENT)
                                rep->gone++;
                        else if (r < 0)
                                return r;
                        else
                                rep->evicted++;
                        done[i] = true;
                        left--;
                }
                if (left == 0)
                        break;
                if (time_now_ms() >= deadline_ms) {
                        if (err)
                                (void) buf_printf(err, "drain of node %s blocked for %ld s: %s", node,
                                                  seconds_since(first_block ? first_block : start),
                                                  strempty(rep->blocked));
                        return -ETIMEDOUT;
                }
                if (nap(retry_ms, deadline_ms, cancel) < 0)
                        return fail_cancelled(node, err);
        }

        /* Wait until the evicted pods are gone (the stand-in deletes at once; a kubelet takes the
         * grace period). */
        long poll = retry_ms < GONE_POLL_MS ? retry_ms : GONE_POLL_MS;
        for (;;) {
                _cleanup_json_ json_t *now = NULL;
                _cleanup_buf_ buf names = BUF_INIT(1024);
                size_t there = 0;
                if (cancelled(cancel))
                        return fail_cancelled(node, err);
                r = node_pods(k, node, &now, err);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < plan.n_evict; i++)
                        if (still_there(&plan.evict[i], now)) {
                                if (there++ < 5)
                                        (void) buf_printf(&names, "%s%s/%s", there > 1 ? ", " : "",
                                                          plan.evict[i].namespace, plan.evict[i].name);
                        }
                if (there == 0)
                        return 0;
                if (time_now_ms() >= deadline_ms) {
                        if (err)
                                (void) buf_printf(err, "drain of node %s: %zu evicted pods still there after %ld s: %s%s",
                                                  node, there, seconds_since(start), strempty(names.data),
                                                  there > 5 ? ", ..." : "");
                        return -ETIMEDOUT;
                }
                if (nap(poll, deadline_ms, cancel) < 0)
                        return fail_cancelled(node, err);
        }
}

static int drain(kube_client *k, const char *node, long deadline_ms, long retry_ms,
                 const volatile sig_atomic_t *cancel, pool_drain_report *rep, buf *err) {
        int64_t start = time_now_ms(), first_block = 0;
        size_t planned;
        int r;

        if (retry_ms <= 0) {
                if (err)
                        (void) buf_printf(err, "drain of node %s: retry interval %ld ms", node, retry_ms);
                return -EINVAL;
        }
        if (cancelled(cancel))
                return fail_cancelled(node, err);
        r = pool_kube_cordon(k, node, true, err);
        if (r < 0)
                return r;
        /* Rounds until a listing finds nothing to evict: a pod bound to the node by a scheduler
         * that did not see the cordon yet (between the cordon and the first listing) is evicted
         * too, instead of staying on a node that is about to go. */
        do {
                if (cancelled(cancel))
                        return fail_cancelled(node, err);
                r = drain_round(k, node, deadline_ms, retry_ms, cancel, rep, err, start, &first_block, &planned);
                if (r < 0)
                        return r;
        } while (planned > 0);
        return 0;
}

int pool_kube_drain(kube_client *k, const char *node, long deadline_ms, long retry_ms,
                    const volatile sig_atomic_t *cancel, pool_drain_report *ret, buf *err) {
        _cleanup_(pool_drain_report_done) pool_drain_report local = {};
        if (ret)
                *ret = (pool_drain_report){};
        return drain(k, node, deadline_ms, retry_ms, cancel, ret ? ret : &local, err);
}
