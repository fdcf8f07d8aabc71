/* Fuzz etcd gateway replies: member lists/adds, status, and error bodies. */
#include <stdint.h>
#include <stdlib.h>

#include "etcd.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_buf_ buf err = BUF_INIT(4096);
        json_t *j = NULL;
        (void) etcd_parse_error(400, (const char *) data, size, &err);
        if (json_parse((const char *) data, size, &j, NULL) < 0)
                return 0;
        etcd_members m = { 0 };
        if (etcd_parse_members(j, &m) >= 0) {
                for (size_t i = 0; i < m.n; i++)
                        if (m.v[i].peer_urls && m.v[i].peer_urls[0])
                                free(etcd_url_host(m.v[i].peer_urls[0]));
                etcd_members_done(&m);
        }
        uint64_t id, leader;
        bool learner;
        (void) etcd_parse_added_id(j, &id);
        (void) etcd_parse_status(j, &learner, &leader);
        json_decref(j);
        return 0;
}
