#include "frame.h"
#include "io-util.h"

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* Deeper nesting is rejected: libcbor frees and serializes items recursively. */
#define FRAME_MAX_DEPTH 64

/* Parse an item head at d[*pos]: major type, additional info, and its argument. */
static int read_head(const uint8_t *d, size_t len, size_t *pos, unsigned *ret_major,
                     unsigned *ret_info, uint64_t *ret_value) {
        if (*pos >= len)
                return -EBADMSG;
        uint8_t ib = d[(*pos)++];
        unsigned info = ib & 31, extra = 0;
        uint64_t value = info;
        if (info >= 24 && info <= 27)
                extra = 1u << (info - 24);
        else if (info >= 28 && info <= 30)
                return -EBADMSG; /* reserved */
        if (len - *pos < extra)
                return -EBADMSG;
        if (extra) {
                value = 0;
                for (unsigned i = 0; i < extra; i++)
                        value = value << 8 | d[(*pos)++];
        }
        *ret_major = ib >> 5;
        *ret_info = info;
        *ret_value = value;
        return 0;
}

static bool at_break(const uint8_t *d, size_t len, size_t pos) { return pos < len && d[pos] == 0xff; }

/* Check that d[*pos] starts one complete, well-formed item and advance past it. Every declared
 * length or count must fit in the bytes that are left: libcbor allocates arrays and maps for
 * their declared count before reading any element, so a 5-byte header could ask for gigabytes. */
static int check_item(const uint8_t *d, size_t len, size_t *pos, unsigned depth) {
        unsigned major, info;
        uint64_t value;
        int r;

        if (depth > FRAME_MAX_DEPTH)
                return -EBADMSG;
        r = read_head(d, len, pos, &major, &info, &value);
        if (r < 0)
                return r;

        switch (major) {
        case 0: /* unsigned and negative integers */
        case 1:
                return info == 31 ? -EBADMSG : 0;
        case 2: /* byte and text strings */
        case 3:
                if (info != 31) {
                        if (value > len - *pos)
                                return -EBADMSG;
                        *pos += value;
                        return 0;
                }
                /* Indefinite: definite chunks of the same type up to a break. */
                while (!at_break(d, len, *pos)) {
                        unsigned chunk_major, chunk_info;
                        r = read_head(d, len, pos, &chunk_major, &chunk_info, &value);
                        if (r < 0)
                                return r;
                        if (chunk_major != major || chunk_info == 31 || value > len - *pos)
                                return -EBADMSG;
                        *pos += value;
                }
                (*pos)++;
                return 0;
        case 4: /* arrays and maps */
        case 5: {
                unsigned per_entry = major == 5 ? 2 : 1;
                if (info == 31) {
                        uint64_t n = 0;
                        for (; !at_break(d, len, *pos); n++) {
                                if (*pos >= len)
                                        return -EBADMSG;
                                r = check_item(d, len, pos, depth + 1);
                                if (r < 0)
                                        return r;
                        }
                        if (*pos >= len || n % per_entry != 0)
                                return -EBADMSG;
                        (*pos)++;
                        return 0;
                }
                /* Each element takes at least one byte. */
                if (value > (len - *pos) / per_entry)
                        return -EBADMSG;
                for (uint64_t i = 0; i < value * per_entry; i++) {
                        r = check_item(d, len, pos, depth + 1);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        case 6:
                /* Tags: the protocol has none, and libcbor 0.8 rejects the tags it writes itself
                 * for 6..20 (one-byte form 0xc6..0xd4), so they are refused altogether. */
                return -EBADMSG;
        default: /* 7: simple values and floats; a break outside an indefinite item is invalid */
                return info == 31 ? -EBADMSG : 0;
        }
}

int frame_encode(const cbor_item_t *item, size_t max, buf *out) {
        unsigned char *data = NULL;
        size_t allocated;
        size_t n = cbor_serialize_alloc(item, &data, &allocated);
        if (n == 0)
                return -ENOMEM;
        if (n > max || n > UINT32_MAX) {
                free(data);
                return -EMSGSIZE;
        }

        uint8_t header[4] = { (uint8_t) (n >> 24), (uint8_t) (n >> 16), (uint8_t) (n >> 8), (uint8_t) n };
        size_t old_len = out->len;
        int r = buf_append(out, header, sizeof(header));
        if (r >= 0)
                r = buf_append(out, data, n);
        free(data);
        if (r < 0) {
                /* Leave out as it was, without half a frame. */
                out->len = old_len;
                if (out->data)
                        out->data[old_len] = 0;
                return r;
        }
        return 0;
}

int frame_write(int fd, const cbor_item_t *item, size_t max) {
        _cleanup_buf_ buf b = BUF_INIT(max > SIZE_MAX - 4 ? SIZE_MAX : max + 4);
        int r = frame_encode(item, max, &b);
        if (r < 0)
                return r;
        return loop_write(fd, b.data, b.len);
}

/* Decode a payload of exactly len bytes into one item. */
static int decode_payload(const uint8_t *data, size_t len, cbor_item_t **ret) {
        size_t pos = 0;
        int r = check_item(data, len, &pos, 0);
        if (r < 0)
                return r;
        if (pos != len)
                return -EBADMSG; /* trailing bytes after the item */

        struct cbor_load_result result;
        cbor_item_t *item = cbor_load(data, len, &result);
        if (!item)
                return result.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EBADMSG;
        if (result.read != len) {
                cbor_decref(&item);
                return -EBADMSG;
        }
        *ret = item;
        return 0;
}

static size_t frame_length(const uint8_t *header) {
        return (size_t) header[0] << 24 | (size_t) header[1] << 16 | (size_t) header[2] << 8 | header[3];
}

ssize_t frame_decode(const void *data, size_t len, size_t max, cbor_item_t **ret) {
        const uint8_t *d = data;
        if (len < 4)
                return 0;
        size_t n = frame_length(d);
        if (n > max)
                return -EMSGSIZE;
        if (len - 4 < n)
                return 0;
        int r = decode_payload(d + 4, n, ret);
        if (r < 0)
                return r;
        return (ssize_t) (4 + n);
}

int frame_read(int fd, size_t max, cbor_item_t **ret) {
        uint8_t header[4];
        ssize_t k = loop_read(fd, header, sizeof(header));
        if (k < 0)
                return (int) k;
        if (k == 0)
                return -EPIPE;
        if (k < (ssize_t) sizeof(header))
                return -EIO;

        size_t n = frame_length(header);
        if (n > max)
                return -EMSGSIZE; /* checked before allocating anything */
        _cleanup_free_ uint8_t *payload = malloc(n ? n : 1);
        if (!payload)
                return -ENOMEM;
        k = loop_read(fd, payload, n);
        if (k < 0)
                return (int) k;
        if ((size_t) k < n)
                return -EIO;
        return decode_payload(payload, n, ret);
}

cbor_item_t *cbor_map_get(const cbor_item_t *map, const char *key) {
        if (!map || !cbor_isa_map(map))
                return NULL;
        size_t key_len = strlen(key);
        struct cbor_pair *pairs = cbor_map_handle(map);
        for (size_t i = 0; i < cbor_map_size(map); i++) {
                cbor_item_t *k = pairs[i].key;
                if (cbor_isa_string(k) && cbor_string_is_definite(k) &&
                    cbor_string_length(k) == key_len &&
                    memcmp(cbor_string_handle(k), key, key_len) == 0)
                        return pairs[i].value;
        }
        return NULL;
}

char *cbor_map_get_string(const cbor_item_t *map, const char *key) {
        cbor_item_t *v = cbor_map_get(map, key);
        if (!v || !cbor_isa_string(v) || !cbor_string_is_definite(v))
                return NULL;
        const char *s = (const char *) cbor_string_handle(v);
        size_t n = cbor_string_length(v);
        /* An embedded NUL would silently cut the C string short. */
        if (n > 0 && memchr(s, 0, n))
                return NULL;
        char *copy = malloc(n + 1);
        if (!copy)
                return NULL;
        if (n > 0)
                memcpy(copy, s, n);
        copy[n] = 0;
        return copy;
}

int cbor_map_get_uint(const cbor_item_t *map, const char *key, uint64_t *ret) {
        cbor_item_t *v = cbor_map_get(map, key);
        if (!v)
                return -ENOENT;
        if (!cbor_isa_uint(v))
                return -EBADMSG;
        *ret = cbor_get_int(v);
        return 0;
}

int cbor_map_put(cbor_item_t *map, const char *key, cbor_item_t *value) {
        if (!value)
                return -ENOMEM; /* so callers can pass cbor_build_*() results directly */
        cbor_item_t *k = cbor_build_string(key);
        if (!k)
                return -ENOMEM;
        bool ok = cbor_map_add(map, (struct cbor_pair){ .key = k, .value = value });
        cbor_decref(&k);
        if (!ok)
                return cbor_map_is_definite(map) ? -ENOSPC : -ENOMEM;
        return 0;
}

int cbor_map_put_string(cbor_item_t *map, const char *key, const char *value) {
        _cleanup_cbor_ cbor_item_t *v = cbor_build_string(value);
        return cbor_map_put(map, key, v);
}

int cbor_map_put_uint(cbor_item_t *map, const char *key, uint64_t value) {
        /* The smallest width that holds the value: libcbor encodes with the item's width. */
        _cleanup_cbor_ cbor_item_t *v = value <= UINT8_MAX    ? cbor_build_uint8((uint8_t) value)
                                        : value <= UINT16_MAX ? cbor_build_uint16((uint16_t) value)
                                        : value <= UINT32_MAX ? cbor_build_uint32((uint32_t) value)
                                                              : cbor_build_uint64(value);
        return cbor_map_put(map, key, v);
}
