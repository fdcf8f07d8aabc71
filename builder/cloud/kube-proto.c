/* Protobuf request bodies (kube-proto.h). A minimal protobuf reader: varints, length-delimited
 * fields, and skipping of the fixed-size ones; no groups (proto3 has none). */
#include "kube-proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "json.h"
#include "macro.h"

typedef struct pb {
        const uint8_t *p, *end;
} pb;

typedef struct pb_field {
        uint32_t number;
        uint32_t wire;             /* 0 varint, 1 64-bit, 2 bytes, 5 32-bit */
        uint64_t varint;
        pb bytes;                  /* wire 2 */
} pb_field;

static int pb_varint(pb *b, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (b->p >= b->end)
                        return -EBADMSG;
                uint8_t c = *b->p++;
                v |= (uint64_t) (c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* Next field, or 0 at the end (1 when one was read). */
static int pb_next(pb *b, pb_field *f) {
        uint64_t key, n;
        int r;
        if (b->p >= b->end)
                return 0;
        if ((r = pb_varint(b, &key)) < 0)
                return r;
        *f = (pb_field){ .number = (uint32_t) (key >> 3), .wire = (uint32_t) (key & 7) };
        if (key >> 3 == 0 || key >> 3 > UINT32_MAX)
                return -EBADMSG;
        switch (f->wire) {
        case 0:
                return pb_varint(b, &f->varint) < 0 ? -EBADMSG : 1;
        case 1:
        case 5: {
                size_t size = f->wire == 1 ? 8 : 4;
                if ((size_t) (b->end - b->p) < size)
                        return -EBADMSG;
                b->p += size;
                return 1;
        }
        case 2:
                if ((r = pb_varint(b, &n)) < 0)
                        return r;
                if (n > (uint64_t) (b->end - b->p))
                        return -EBADMSG;
                f->bytes = (pb){ b->p, b->p + n };
                b->p += n;
                return 1;
        default:
                return -EBADMSG;
        }
}

static json_t *pb_string(const pb_field *f) {
        if (f->wire != 2)
                return NULL;
        /* json_stringn refuses invalid UTF-8, which is what proto3 requires of strings too */
        return json_stringn((const char *) f->bytes.p, (size_t) (f->bytes.end - f->bytes.p));
}

static json_t *pb_base64(const pb_field *f) {
        if (f->wire != 2)
                return NULL;
        _cleanup_free_ char *s = base64_encode(f->bytes.p, (size_t) (f->bytes.end - f->bytes.p));
        return s ? json_string(s) : NULL;
}

/* A map<string, string|bytes> entry {1: key, 2: value} into obj. */
static int pb_map_entry(const pb_field *f, json_t *obj, bool bytes_value) {
        pb b;
        pb_field e;
        json_t *key = NULL, *value = NULL;
        int r;
        if (f->wire != 2)
                return -EBADMSG;
        b = f->bytes;
        while ((r = pb_next(&b, &e)) > 0) {
                json_t **slot = e.number == 1 ? &key : e.number == 2 ? &value : NULL;
                if (!slot)
                        continue;
                json_decref(*slot);
                *slot = e.number == 2 && bytes_value ? pb_base64(&e) : pb_string(&e);
                if (!*slot) {
                        r = -EBADMSG;
                        break;
                }
        }
        if (r == 0 && key) {
                if (!value)
                        value = json_string("");
                r = value && json_object_set_new(obj, json_string_value(key), value) == 0 ? 0 : -ENOMEM;
                value = NULL;
        } else if (r == 0)
                r = -EBADMSG;
        json_decref(key);
        json_decref(value);
        return r;
}

/* Sub-object name of obj, created on first use. */
static json_t *child(json_t *obj, const char *name) {
        json_t *c = json_object_get(obj, name);
        if (!c) {
                c = json_object();
                if (!c || json_object_set_new(obj, name, c) < 0)
                        return NULL;
        }
        return c;
}

/* An empty string is what gogo-protobuf sends for an unset optional string: left out. */
static int set_string(json_t *obj, const char *name, const pb_field *f) {
        json_t *s = pb_string(f);
        if (!s)
                return -EBADMSG;
        if (json_string_length(s) == 0) {
                json_decref(s);
                return 0;
        }
        return json_object_set_new(obj, name, s) == 0 ? 0 : -ENOMEM;
}

static int append_string(json_t *obj, const char *name, const pb_field *f) {
        json_t *list = json_object_get(obj, name), *s = pb_string(f);
        if (!s)
                return -EBADMSG;
        if (!list) {
                list = json_array();
                if (!list || json_object_set_new(obj, name, list) < 0) {
                        json_decref(s);
                        return -ENOMEM;
                }
        }
        return json_array_append_new(list, s) == 0 ? 0 : -ENOMEM;
}

static int decode_meta(pb b, json_t *md) {
        pb_field f;
        int r;
        while ((r = pb_next(&b, &f)) > 0) {
                switch (f.number) {
                case 1: r = set_string(md, "name", &f); break;
                case 2: r = set_string(md, "generateName", &f); break;
                case 3: r = set_string(md, "namespace", &f); break;
                case 11: r = child(md, "labels") ? pb_map_entry(&f, child(md, "labels"), false) : -ENOMEM; break;
                case 12: r = child(md, "annotations") ? pb_map_entry(&f, child(md, "annotations"), false) : -ENOMEM; break;
                case 14: r = append_string(md, "finalizers", &f); break;
                default: r = 0; /* server-owned or not stored by the stand-in */
                }
                if (r < 0)
                        return r;
        }
        return r;
}

/* A metav1.Time {1: seconds, 2: nanos} as the API's JSON text. */
static int set_time(json_t *obj, const char *name, const pb_field *f) {
        pb b = f->bytes;
        pb_field e;
        int64_t seconds = 0;
        int r;
        char ts[32];
        struct tm tm;
        if (f->wire != 2)
                return -EBADMSG;
        while ((r = pb_next(&b, &e)) > 0)
                if (e.number == 1 && e.wire == 0)
                        seconds = (int64_t) e.varint;
        if (r < 0)
                return r;
        /* years 0..9999 only, as Go's RFC 3339 formatting */
        if (seconds < -62135596800LL || seconds > 253402300799LL)
                return -EBADMSG;
        time_t t = (time_t) seconds;
        if (!gmtime_r(&t, &tm))
                return -EBADMSG;
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_object_set_new(obj, name, json_string(ts)) == 0 ? 0 : -ENOMEM;
}

/* certificates.k8s.io/v1 CertificateSigningRequestSpec. */
static int decode_csr_spec(pb b, json_t *spec) {
        pb_field f;
        int r;
        while ((r = pb_next(&b, &f)) > 0) {
                switch (f.number) {
                case 1: r = f.wire == 2 ? (json_object_set_new(spec, "request", pb_base64(&f)) == 0 ? 0 : -ENOMEM) : -EBADMSG; break;
                case 2: r = set_string(spec, "username", &f); break;
                case 3: r = set_string(spec, "uid", &f); break;
                case 4: r = append_string(spec, "groups", &f); break;
                case 5: r = append_string(spec, "usages", &f); break;
                case 7: r = set_string(spec, "signerName", &f); break;
                case 8:
                        if (f.wire != 0)
                                return -EBADMSG;
                        /* int32, sign-extended to 64 bits on the wire */
                        r = json_object_set_new(spec, "expirationSeconds", json_integer((json_int_t) (int32_t) f.varint)) == 0 ? 0 : -ENOMEM;
                        break;
                default: r = 0; /* extra: set by the server */
                }
                if (r < 0)
                        return r;
        }
        return r;
}

/* CertificateSigningRequestStatus {1: conditions, 2: certificate}. */
static int decode_csr_status(pb b, json_t *status) {
        pb_field f;
        int r;
        while ((r = pb_next(&b, &f)) > 0) {
                if (f.number == 2) {
                        r = f.wire == 2 ? (json_object_set_new(status, "certificate", pb_base64(&f)) == 0 ? 0 : -ENOMEM) : -EBADMSG;
                } else if (f.number == 1) {
                        /* {1 type, 2 reason, 3 message, 4 lastUpdateTime, 5 lastTransitionTime, 6 status} */
                        json_t *list = json_object_get(status, "conditions"), *cond = json_object();
                        pb c = f.bytes;
                        pb_field e;
                        if (!cond)
                                return -ENOMEM;
                        if (!list) {
                                list = json_array();
                                if (!list || json_object_set_new(status, "conditions", list) < 0) {
                                        json_decref(cond);
                                        return -ENOMEM;
                                }
                        }
                        if (json_array_append_new(list, cond) < 0 || f.wire != 2)
                                return f.wire != 2 ? -EBADMSG : -ENOMEM;
                        while ((r = pb_next(&c, &e)) > 0) {
                                switch (e.number) {
                                case 1: r = set_string(cond, "type", &e); break;
                                case 2: r = set_string(cond, "reason", &e); break;
                                case 3: r = set_string(cond, "message", &e); break;
                                case 4: r = set_time(cond, "lastUpdateTime", &e); break;
                                case 5: r = set_time(cond, "lastTransitionTime", &e); break;
                                case 6: r = set_string(cond, "status", &e); break;
                                default: r = 0;
                                }
                                if (r < 0)
                                        return r;
                        }
                } else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return r;
}

/* policy/v1 DeleteOptions, as far as an eviction uses it: {1: gracePeriodSeconds, 5: dryRun}. */
static int decode_delete_options(pb b, json_t *opts) {
        pb_field f;
        int r;
        while ((r = pb_next(&b, &f)) > 0) {
                if (f.number == 5)
                        r = append_string(opts, "dryRun", &f);
                else if (f.number == 1 && f.wire == 0)
                        r = json_object_set_new(opts, "gracePeriodSeconds", json_integer((json_int_t) f.varint)) == 0 ? 0 : -ENOMEM;
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return r;
}

/* The object's own fields: for each kind, which field numbers mean what. */
static int decode_object(const char *kind, pb b, json_t *obj) {
        pb_field f;
        int r;
        while ((r = pb_next(&b, &f)) > 0) {
                if (f.number == 1) {
                        json_t *md = child(obj, "metadata");
                        r = f.wire != 2 ? -EBADMSG : md ? decode_meta(f.bytes, md) : -ENOMEM;
                } else if (streq(kind, "Namespace") && f.number == 2 && f.wire == 2) {
                        /* NamespaceSpec {1: repeated finalizers} */
                        pb s = f.bytes;
                        pb_field e;
                        json_t *spec = child(obj, "spec");
                        if (!spec)
                                return -ENOMEM;
                        while ((r = pb_next(&s, &e)) > 0)
                                if (e.number == 1 && (r = append_string(spec, "finalizers", &e)) < 0)
                                        break;
                } else if (streq(kind, "ConfigMap") && (f.number == 2 || f.number == 3)) {
                        json_t *m = child(obj, f.number == 2 ? "data" : "binaryData");
                        r = m ? pb_map_entry(&f, m, f.number == 3) : -ENOMEM;
                } else if (streq(kind, "ConfigMap") && f.number == 4 && f.wire == 0) {
                        r = json_object_set_new(obj, "immutable", json_boolean(f.varint)) == 0 ? 0 : -ENOMEM;
                } else if (streq(kind, "Secret") && (f.number == 2 || f.number == 4)) {
                        json_t *m = child(obj, f.number == 2 ? "data" : "stringData");
                        r = m ? pb_map_entry(&f, m, f.number == 2) : -ENOMEM;
                } else if (streq(kind, "Secret") && f.number == 3) {
                        r = set_string(obj, "type", &f);
                } else if (streq(kind, "CertificateSigningRequest") && (f.number == 2 || f.number == 3)) {
                        json_t *m = child(obj, f.number == 2 ? "spec" : "status");
                        r = !m ? -ENOMEM : f.wire != 2 ? -EBADMSG
                                : f.number == 2 ? decode_csr_spec(f.bytes, m) : decode_csr_status(f.bytes, m);
                } else if (streq(kind, "Eviction") && f.number == 2) {
                        json_t *m = child(obj, "deleteOptions");
                        r = !m ? -ENOMEM : f.wire != 2 ? -EBADMSG : decode_delete_options(f.bytes, m);
                } else if (streq(kind, "Secret") && f.number == 5 && f.wire == 0) {
                        r = json_object_set_new(obj, "immutable", json_boolean(f.varint)) == 0 ? 0 : -ENOMEM;
                } else
                        r = 0; /* status and fields not stored: skipped */
                if (r < 0)
                        return r;
        }
        return r;
}

int kube_proto_decode(const void *data, size_t len, json_t **ret) {
        static const uint8_t magic[4] = { 'k', '8', 's', 0 };
        pb b = { (const uint8_t *) data + 4, (const uint8_t *) data + len };
        pb_field f;
        _cleanup_json_ json_t *api_version = NULL, *kind = NULL;
        pb raw = {};
        bool have_raw = false;
        int r;

        if (len < 4 || memcmp(data, magic, 4) != 0)
                return -EBADMSG;
        while ((r = pb_next(&b, &f)) > 0) {
                if (f.number == 1 && f.wire == 2) {
                        pb t = f.bytes;
                        pb_field e;
                        while ((r = pb_next(&t, &e)) > 0) {
                                json_t **slot = e.number == 1 ? &api_version : e.number == 2 ? &kind : NULL;
                                if (!slot)
                                        continue;
                                json_decref(*slot);
                                if (!(*slot = pb_string(&e)))
                                        return -EBADMSG;
                        }
                        if (r < 0)
                                return r;
                } else if (f.number == 2 && f.wire == 2) {
                        raw = f.bytes;
                        have_raw = true;
                } else if ((f.number == 3 || f.number == 4) && f.wire == 2) {
                        /* contentEncoding / contentType: only the plain encoding is known */
                        if (f.bytes.end != f.bytes.p)
                                return -EOPNOTSUPP;
                }
        }
        if (r < 0)
                return r;
        if (!kind || !api_version || !have_raw)
                return -EBADMSG;
        const char *k = json_string_value(kind);
        const char *av = json_string_value(api_version);
        if (!(streq(av, "v1") && (streq(k, "Namespace") || streq(k, "ConfigMap") || streq(k, "Secret"))) &&
            !(streq(av, "certificates.k8s.io/v1") && streq(k, "CertificateSigningRequest")) &&
            !((streq(av, "policy/v1") || streq(av, "policy/v1beta1")) && streq(k, "Eviction")))
                return -EOPNOTSUPP;
        _cleanup_json_ json_t *obj = json_pack("{s:O,s:O}", "kind", kind, "apiVersion", api_version);
        if (!obj)
                return -ENOMEM;
        r = decode_object(k, raw, obj);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(obj);
        return 0;
}
