/* The serve object: state loading, listeners, dispatch by port and cloud.json reloads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "serve.h"
#include "strv.h"

static time_t real_now(void) { return time(NULL); }

typedef enum service {
        SERVICE_NONE,
        SERVICE_API,
        SERVICE_METADATA,
        SERVICE_VAULT,
} service;

static const serve_handler service_handlers[] = {
        [SERVICE_API] = serve_api,
        [SERVICE_METADATA] = serve_metadata,
        [SERVICE_VAULT] = serve_vault,
};

/* What cloud.json says a listener serves and, in *ret_instance_id if not NULL, for which instance
 * (NULL for the API and for none). A listener's tag is "port:<n>" or "socket:<name>". */
static service tag_service(const cloud_state *c, const char *tag, const char **ret_instance_id) {
        const char *name = startswith(tag, "socket:");
        service which = SERVICE_NONE;
        const char *id = NULL;
        unsigned port = 0;

        if (!name && sscanf(tag, "port:%u", &port) != 1)
                port = 0;
        if (port && port == c->api_port)
                which = SERVICE_API;
        for (size_t i = 0; (port || name) && which == SERVICE_NONE && i < c->n_instances; i++) {
                const cloud_instance *in = &c->instances[i];
                if (name ? in->metadata_socket && streq(name, in->metadata_socket) : port == in->metadata_port)
                        which = SERVICE_METADATA;
                else if (name ? in->vault_socket && streq(name, in->vault_socket) : port == in->vault_port)
                        which = SERVICE_VAULT;
                else
                        continue;
                id = in->id;
        }
        if (ret_instance_id)
                *ret_instance_id = id;
        return which;
}

/* What a listener serves, and for which instance, is looked up in the current cloud.json at each
 * request. So a port or socket handed from a removed instance to a new one (or moved between
 * services) follows cloud.json without rebinding. */
static int dispatch(const http_server_request *req, http_server_response *resp, void *userdata) {
        serve *s = userdata;
        const char *instance_id;

        service which = tag_service(s->state.cloud, req->listener_tag, &instance_id);
        if (which == SERVICE_NONE)
                /* A port or socket cloud.json stopped naming is closed at the next reload
                 * (unbind_stale); until then, or for one that could not be closed, this. */
                return serve_vault_error(resp, 404, startswith(req->listener_tag, "socket:") ? "no service on this socket"
                                                                                          : "no service on this port");
        return service_handlers[which](&s->state, instance_id, req, resp);
}

/* The HTTP server's own error replies (400 malformed, 413 too large, 500 handler failure) on a
 * Vault listener take Vault's {"errors":[...]} shape, so a Vault client reads them as it reads
 * Vault's; other listeners keep the server's default. */
static int error_body(const char *listener_tag, int status, const char *message, buf *body, void *userdata) {
        serve *s = userdata;
        (void) status;

        if (tag_service(s->state.cloud, listener_tag, NULL) != SERVICE_VAULT)
                return -EOPNOTSUPP;
        _cleanup_json_ json_t *j = json_pack("{s:[s]}", "errors", message);
        _cleanup_free_ char *text = j ? json_dump_compact(j) : NULL;
        if (!text)
                return -ENOMEM;
        return buf_puts(body, text);
}

/* Listen on 127.0.0.1:port unless that is done already. On failure err says which port. */
static int bind_port(serve *s, uint16_t port, buf *err) {
        char tag[16];
        int r;

        snprintf(tag, sizeof(tag), "port:%u", port);
        if (strv_contains(s->bound, tag))
                return 0;
        r = http_server_listen(s->http, "127.0.0.1", port, tag);
        if (r < 0) {
                buf_clear(err);
                (void) buf_printf(err, "127.0.0.1:%u: %s", port, strerror(-r));
                return r;
        }
        return strv_push(&s->bound, tag);
}

/* DIR/sockets: made 0700 if missing; if there, it must be a directory of ours (not a symlink)
 * and is made 0700 again. The sockets' privacy rests on it: their files are 0600, but only
 * after bind() set them up with the umask's mode. Returns 0 or -errno with err set. */
static int sockets_dir_open(const char *path, buf *err) {
        struct stat st;
        int r;

        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                r = negative_errno();
                return buf_printf(err, "creating %s: %s", path, strerror(-r)), r;
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = negative_errno();
                return buf_printf(err, "opening %s: %s", path, strerror(-r)), r;
        }
        if (st.st_uid != geteuid())
                return buf_printf(err, "%s belongs to uid %u, not to this user", path, (unsigned) st.st_uid), -EPERM;
        if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
                r = negative_errno();
                return buf_printf(err, "chmod 0700 %s: %s", path, strerror(-r)), r;
        }
        return 0;
}

/* Listen on DIR/sockets/name unless that is done already. On failure err says which socket. */
static int bind_socket(serve *s, const char *name, buf *err) {
        _cleanup_free_ char *tag = NULL, *path = NULL;
        int r;

        if (asprintf(&tag, "socket:%s", name) < 0 || asprintf(&path, "%s/%s", s->sockets_dir, name) < 0)
                return -ENOMEM;
        if (strv_contains(s->bound, tag))
                return 0;
        r = http_server_listen_unix(s->http, path, tag);
        if (r < 0) {
                buf_clear(err);
                if (r == -ENAMETOOLONG)
                        (void) buf_printf(err, "%s: longer than a UNIX socket path may be (107 bytes): "
                                          "use a shorter state directory", path);
                else
                        (void) buf_printf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        return strv_consume(&s->bound, TAKE_PTR(tag));
}

/* Close the listeners of ports and sockets the current cloud.json no longer names (a removed
 * instance's, a moved one's old ports), so they refuse connections instead of answering 404
 * forever; a socket's file goes with it. */
static void unbind_stale(serve *s) {
        size_t j = 0;
        for (size_t i = 0; s->bound && s->bound[i]; i++) {
                if (tag_service(s->state.cloud, s->bound[i], NULL) == SERVICE_NONE) {
                        (void) http_server_unlisten(s->http, s->bound[i]);
                        free(s->bound[i]);
                } else
                        s->bound[j++] = s->bound[i];
        }
        if (s->bound)
                s->bound[j] = NULL;
}

/* Bind every port and socket cloud.json names. Keeps going past a failure so one busy port does
 * not hide the others; returns the first error (err says the last). */
static int bind_all(serve *s, buf *err) {
        int r = bind_port(s, s->state.cloud->api_port, err);

        for (size_t i = 0; i < s->state.cloud->n_instances; i++) {
                const cloud_instance *in = &s->state.cloud->instances[i];
                int k = in->metadata_socket ? bind_socket(s, in->metadata_socket, err) : bind_port(s, in->metadata_port, err);
                r = r < 0 ? r : k;
                k = in->vault_socket ? bind_socket(s, in->vault_socket, err) : bind_port(s, in->vault_port, err);
                r = r < 0 ? r : k;
        }
        return r;
}

int serve_new(const char *state_dir, serve **ret, buf *err) {
        _cleanup_(serve_freep) serve *s = NULL;
        _cleanup_free_ char *pki_dir = NULL, *vault_path = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->state.now = real_now;
        s->state_dir = strdup(state_dir);
        if (!s->state_dir || asprintf(&s->cloud_path, "%s/cloud.json", state_dir) < 0 ||
            asprintf(&pki_dir, "%s/pki", state_dir) < 0 ||
            asprintf(&vault_path, "%s/vault.json", state_dir) < 0 ||
            asprintf(&s->sockets_dir, "%s/sockets", state_dir) < 0)
                return -ENOMEM;

        if (stat(s->cloud_path, &s->cloud_stat) < 0) {
                r = negative_errno();
                (void) buf_printf(err, "%s: %s", s->cloud_path, strerror(-r));
                return r;
        }
        r = cloud_state_load(s->cloud_path, &s->state.cloud, err);
        if (r == -EINVAL) {
                /* Put the file name in front of the JSON path. */
                _cleanup_free_ char *detail = buf_steal(err);
                (void) buf_printf(err, "%s: %s", s->cloud_path, strempty(detail));
                return r;
        }
        if (r < 0) {
                (void) buf_printf(err, "Failed to read %s: %s", s->cloud_path, strerror(-r));
                return r;
        }
        if ((r = localpki_open(pki_dir, &s->state.pki)) < 0) {
                (void) buf_printf(err, "Failed to open the CA in %s: %s", pki_dir, strerror(-r));
                return r;
        }
        if ((r = vault_store_open(vault_path, &s->state.vault)) < 0 ||
            (r = vault_store_seed(s->state.vault, s->state.cloud->kv_seeds, s->state.now())) < 0) {
                (void) buf_printf(err, "Failed to open %s: %s", vault_path, strerror(-r));
                return r;
        }
        if ((r = sockets_dir_open(s->sockets_dir, err)) < 0)
                return r;
        if ((r = http_server_new(dispatch, s, &s->http)) < 0)
                return r;
        http_server_set_error_body(s->http, error_body);
        if ((r = bind_all(s, err)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void serve_free(serve *s) {
        if (!s)
                return;
        http_server_free(s->http);
        vault_store_free(s->state.vault);
        localpki_free(s->state.pki);
        cloud_state_free(s->state.cloud);
        strv_free(s->bound);
        free(s->cloud_path);
        free(s->sockets_dir);
        free(s->state_dir);
        free(s);
}

static bool stat_changed(const struct stat *a, const struct stat *b) {
        return a->st_ino != b->st_ino || a->st_size != b->st_size ||
               a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

int serve_reload_if_changed(serve *s) {
        _cleanup_(cloud_state_freep) cloud_state *next = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096);
        struct stat st;
        int r;

        if (stat(s->cloud_path, &st) < 0 || !stat_changed(&st, &s->cloud_stat))
                return 0;
        s->cloud_stat = st;
        r = cloud_state_load(s->cloud_path, &next, &err);
        if (r == -EINVAL) {
                log_error("serve: Ignoring changed %s, keeping the previous state: %s", s->cloud_path, err.data);
                return 0;
        }
        if (r < 0) {
                log_error_errno(r, "serve: Ignoring changed %s, keeping the previous state: %m", s->cloud_path);
                return 0;
        }
        cloud_state_free(s->state.cloud);
        s->state.cloud = TAKE_PTR(next);
        r = vault_store_seed(s->state.vault, s->state.cloud->kv_seeds, s->state.now());
        if (r < 0)
                log_warning_errno(r, "serve: Failed to seed new KV secrets: %m");
        unbind_stale(s);
        r = bind_all(s, &err);
        if (r < 0)
                log_error("serve: Failed to listen on %s", err.data);
        log_info("serve: reloaded %s (%zu instances)", s->cloud_path, s->state.cloud->n_instances);
        return 1;
}

int serve_run(serve *s, volatile sig_atomic_t *stop) {
        while (!*stop) {
                int r = http_server_step(s->http, 200);
                if (r < 0)
                        return r;
                (void) serve_reload_if_changed(s);
        }
        return 0;
}
