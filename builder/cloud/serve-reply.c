/* JSON replies shared by the services of `imgbuild serve`. */
#include <errno.h>

#include "json.h"
#include "serve-reply.h"

int serve_reply_json(http_server_response *resp, int status, json_t *doc) {
        _cleanup_json_ json_t *j = doc;
        if (!j)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dump_compact(j);
        if (!text)
                return -ENOMEM;
        resp->status = status;
        resp->content_type = "application/json";
        buf_clear(&resp->body);
        return buf_puts(&resp->body, text);
}

int serve_vault_error(http_server_response *resp, int status, const char *message) {
        return serve_reply_json(resp, status, json_pack("{s:[s]}", "errors", message));
}
