/* The metadata service, one listener per instance: Exoscale's (EC2-style) /latest/meta-data/
 * keys and /latest/user-data as plain text. */
#include <errno.h>

#include "serve-service.h"

typedef const char *(*metadata_getter)(const cloud_state *c, const cloud_instance *in);

static const char *get_id(const cloud_state *c, const cloud_instance *in) { return in->id; }
static const char *get_zone(const cloud_state *c, const cloud_instance *in) { return c->zone; }
/* The address the instance has on its pool's private network: what the agent puts in its
 * certificates and peer URLs. */
static const char *get_local_ipv4(const cloud_state *c, const cloud_instance *in) { return in->private_ip; }
static const char *get_public_ipv4(const cloud_state *c, const cloud_instance *in) { return in->public_ip; }
static const char *get_name(const cloud_state *c, const cloud_instance *in) { return in->name; }
static const char *get_cloud(const cloud_state *c, const cloud_instance *in) { return "imgbuild-local"; }
static const char *get_offering(const cloud_state *c, const cloud_instance *in) { return "standard.small"; }

static const struct {
        const char *key;
        metadata_getter get;
} metadata_keys[] = {
        { "availability-zone", get_zone },
        { "cloud-identifier", get_cloud },
        { "instance-id", get_id },
        { "local-hostname", get_name },
        { "local-ipv4", get_local_ipv4 },
        { "public-hostname", get_name },
        { "public-ipv4", get_public_ipv4 },
        { "service-offering", get_offering },
        { "vm-id", get_id },
};

static int reply_text(http_server_response *resp, int status, const char *text) {
        resp->status = status;
        resp->content_type = "text/plain";
        buf_clear(&resp->body);
        return buf_puts(&resp->body, text);
}

static int reply_index(http_server_response *resp) {
        int r = reply_text(resp, 200, "");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(metadata_keys); i++)
                r = buf_printf(&resp->body, "%s%s", metadata_keys[i].key,
                               i + 1 < ELEMENTSOF(metadata_keys) ? "\n" : "");
        return r;
}

int serve_metadata(const serve_state *s, const char *instance_id, const http_server_request *req, http_server_response *resp) {
        const cloud_instance *in = cloud_find_instance(s->cloud, instance_id);
        const char *key;

        if (!streq(req->method, "GET") && !streq(req->method, "HEAD"))
                return reply_text(resp, 405, "method not allowed\n");
        if (!in)
                return reply_text(resp, 404, "not found\n");
        if (streq(req->path, "/latest/user-data"))
                return reply_text(resp, 200, strempty(in->user_data));
        if (streq(req->path, "/latest/meta-data/") || streq(req->path, "/latest/meta-data"))
                return reply_index(resp);
        if ((key = startswith(req->path, "/latest/meta-data/")))
                for (size_t i = 0; i < ELEMENTSOF(metadata_keys); i++)
                        if (streq(key, metadata_keys[i].key))
                                return reply_text(resp, 200, metadata_keys[i].get(s->cloud, in));
        return reply_text(resp, 404, "not found\n");
}
