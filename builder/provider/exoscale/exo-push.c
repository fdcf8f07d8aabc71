#include "exo-push.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloud-journal.h"
#include "crypto.h"
#include "exoapi.h"
#include "fs.h"
#include "interrupt.h"
#include "json.h"
#include "log.h"
#include "provider-exoscale.h"
#include "sos.h"
#include "strv.h"
#include "templates.h"
#include "time-util.h"

typedef struct push {
        const exo_push_options *o;
        char id[17];
        char *name, *version;         /* from the reference */
        char *template_name;          /* NAME-VERSION */
        char *description;            /* "imgbuild push ID": how gc finds a template without an id */
        char *key;                    /* the object: imgbuild/NAME-VERSION-ID.qcow2 */
        const char *boot_mode;
        char *boot_mode_owned;
        char *disk;
        char sha256[SHA256_HEX_SIZE];
        char md5[33];
        const uint8_t *data;          /* the disk, mapped */
        size_t size;
        exoapi *api;
        sos *store;
        cloud_journal *journal;
        json_t *templates;            /* zone -> id */
        bool holding;
        int64_t t0;
} push;

static double elapsed(const push *p) {
        return (double) (time_now_ms() - p->t0) / 1000.0;
}

static int check_interrupted(void) {
        int sig = interrupt_signal();
        return sig ? log_error_errno(-EINTR, "Interrupted by signal %d, cleaning up", sig) : 0;
}

static int api_failed(push *p, int r, const char *what) {
        return exoscale_call_failed(r, what, exoapi_error(p->api));
}

static int sos_failed(push *p, int r, const char *what) {
        return exoscale_call_failed(r, what, sos_error(p->store));
}

static int journal_failed(push *p, int r) {
        return cloud_journal_write_failed(p->journal, r);
}

/* The boot mode: the option, else the local manifest's "boot-mode", else legacy (today's
 * templates are booted with -kernel and have no UEFI system partition). */
static int choose_boot_mode(push *p, json_t *manifest) {
        const char *m = p->o->boot_mode ?: json_path_string(manifest, "boot-mode");
        if (!m)
                m = "legacy";
        if (!streq(m, "legacy") && !streq(m, "uefi")) {
                log_error("Boot mode '%s'%s: expected legacy or uefi", m,
                          p->o->boot_mode ? "" : " in the template's manifest");
                return -EINVAL;
        }
        p->boot_mode_owned = strdup(m);
        p->boot_mode = p->boot_mode_owned;
        return p->boot_mode ? 0 : log_error_errno(-ENOMEM, "Out of memory");
}

/* Map the disk, check it is a qcow2 and what the manifest says it is, and hash it (MD5 for the
 * registration, sha256 for the check). */
static int read_disk(push *p, json_t *manifest) {
        _cleanup_close_ int fd = open(p->disk, O_RDONLY | O_CLOEXEC);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Failed to open %s: %m", p->disk);
        if (st.st_size < 4) {
                log_error("%s is not a qcow2 image (%lld bytes)", p->disk, (long long) st.st_size);
                return -EINVAL;
        }
        p->size = (size_t) st.st_size;
        void *m = mmap(NULL, p->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
                return log_error_errno(-errno, "Failed to map %s: %m", p->disk);
        p->data = m;
        if (memcmp(p->data, "QFI\xfb", 4) != 0) {
                log_error("%s is not a qcow2 image (no QFI magic)", p->disk);
                return -EINVAL;
        }

        uint8_t md5[16], sha[32];
        unsigned n1 = 0, n2 = 0;
        EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
        bool ok = a && b && EVP_DigestInit_ex(a, EVP_md5(), NULL) == 1 && EVP_DigestInit_ex(b, EVP_sha256(), NULL) == 1;
        for (size_t off = 0; ok && off < p->size; off += 16u << 20) {
                size_t len = p->size - off < (16u << 20) ? p->size - off : (16u << 20);
                ok = EVP_DigestUpdate(a, p->data + off, len) == 1 && EVP_DigestUpdate(b, p->data + off, len) == 1;
        }
        ok = ok && EVP_DigestFinal_ex(a, md5, &n1) == 1 && EVP_DigestFinal_ex(b, sha, &n2) == 1;
        EVP_MD_CTX_free(a);
        EVP_MD_CTX_free(b);
        if (!ok)
                return log_error_errno(-EIO, "Failed to hash %s", p->disk);
        hex_encode(md5, 16, p->md5);
        hex_encode(sha, 32, p->sha256);

        const char *want = json_path_string(manifest, "output.sha256");
        if (want && !streq(want, p->sha256)) {
                log_error("%s has sha256 %s but its manifest records %s: the template changed after it was built",
                          p->disk, p->sha256, want);
                return -EBADMSG;
        }
        return 0;
}

/* A part's MD5 against the ETag the store answered (a quoted MD5 for a plain upload): a
 * difference means the bytes changed on the way. ETags of other forms are not checked. */
static int check_etag(push *p, const char *etag, const uint8_t *data, size_t len, const char *what) {
        uint8_t sum[16];
        char hex[33];
        unsigned n = 16;

        if (!etag || strlen(etag) != 34 || etag[0] != '"' || etag[33] != '"')
                return 0;
        if (EVP_Digest(data, len, sum, &n, EVP_md5(), NULL) != 1)
                return log_error_errno(-EIO, "Failed to hash %s", what);
        hex_encode(sum, 16, hex);
        if (strncasecmp(etag + 1, hex, 32) != 0) {
                log_error("The object store answered ETag %s for %s, whose MD5 is %s: corrupted on the way", etag,
                          what, hex);
                return -EIO;
        }
        return 0;
}

static int upload(push *p) {
        const exo_push_options *o = p->o;
        _cleanup_free_ char *etag = NULL, *upload_id = NULL, *task = NULL;
        _cleanup_strv_free_ char **etags = NULL;
        size_t ix;
        int r;

        r = cloud_journal_add(p->journal, "sos-object", p->key, o->zone, o->bucket, &ix);
        if (r < 0)
                return journal_failed(p, r);
        if (asprintf(&task, "upload %s/%s", o->bucket, p->key) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        progress_task_start(o->progress, task, NULL);

        if (p->size <= o->part_size) {
                log_info("[%6.1f s] Uploading %s (%.1f MiB) to %s/%s in %s", elapsed(p), p->disk,
                         (double) p->size / 1048576.0, o->bucket, p->key, o->zone);
                r = sos_put_object(p->store, o->bucket, p->key, p->data, p->size, &etag);
                if (r < 0) {
                        progress_task_end(o->progress, false);
                        return sos_failed(p, r, "upload the disk");
                }
                r = check_etag(p, etag, p->data, p->size, "the disk");
                if (r >= 0)
                        r = cloud_journal_created(p->journal, ix, p->key);
                progress_task_end(o->progress, r >= 0);
                return r;
        }

        size_t n = (p->size + o->part_size - 1) / o->part_size;
        if (n > SOS_MAX_PARTS) {
                progress_task_end(o->progress, false);
                log_error("%zu parts of %zu bytes are more than the %u a multipart upload may have: raise the part size",
                          n, o->part_size, SOS_MAX_PARTS);
                return -EINVAL;
        }
        log_info("[%6.1f s] Uploading %s (%.1f MiB) to %s/%s in %s: %zu parts of %.1f MiB", elapsed(p), p->disk,
                 (double) p->size / 1048576.0, o->bucket, p->key, o->zone, n, (double) o->part_size / 1048576.0);
        r = sos_multipart_create(p->store, o->bucket, p->key, &upload_id);
        if (r < 0) {
                progress_task_end(o->progress, false);
                return sos_failed(p, r, "start the multipart upload");
        }
        r = cloud_journal_created(p->journal, ix, upload_id);
        if (r < 0) {
                progress_task_end(o->progress, false);
                return journal_failed(p, r);
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *part_etag = NULL, *what = NULL;
                size_t off = i * o->part_size, len = p->size - off < o->part_size ? p->size - off : o->part_size;
                if ((r = check_interrupted()) < 0)
                        break;
                r = sos_multipart_put_part(p->store, o->bucket, p->key, upload_id, (unsigned) (i + 1), p->data + off, len,
                                           &part_etag);
                if (r < 0) {
                        r = sos_failed(p, r, "upload a part of the disk");
                        break;
                }
                if (asprintf(&what, "part %zu", i + 1) < 0) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        break;
                }
                r = check_etag(p, part_etag, p->data + off, len, what);
                if (r >= 0)
                        r = strv_consume(&etags, TAKE_PTR(part_etag));
                if (r < 0)
                        break;
                progress_task_bytes(o->progress, (int64_t) (off + len));
                log_info("[%6.1f s] Part %zu/%zu uploaded (%.1f of %.1f MiB)", elapsed(p), i + 1, n,
                         (double) (off + len) / 1048576.0, (double) p->size / 1048576.0);
        }
        if (r >= 0) {
                r = sos_multipart_complete(p->store, o->bucket, p->key, upload_id, etags);
                if (r < 0)
                        r = sos_failed(p, r, "complete the multipart upload");
        }
        /* On failure the cleanup aborts the upload (the journal lists its key). */
        progress_task_end(o->progress, r >= 0);
        return r;
}

static int register_template(push *p) {
        const exo_push_options *o = p->o;
        _cleanup_free_ char *url = NULL, *id = NULL;
        size_t ix;
        int r;

        r = sos_presign(p->store, "GET", o->bucket, p->key, o->url_expires_s, &url);
        if (r < 0)
                return sos_failed(p, r, "presign the download URL");
        r = cloud_journal_add(p->journal, "template", p->template_name, o->zone, NULL, &ix);
        if (r < 0)
                return journal_failed(p, r);
        exoapi_template_spec spec = {
                .name = p->template_name,
                .url = url,
                .checksum = p->md5,
                .boot_mode = p->boot_mode,
                .default_user = o->default_user,
                .description = p->description,
                .ssh_key_enabled = true,
                .password_enabled = true,
        };
        log_info("[%6.1f s] Registering template %s in %s (boot mode %s, MD5 %s)", elapsed(p), p->template_name,
                 o->zone, p->boot_mode, p->md5);
        r = exoapi_template_register(p->api, &spec, &id);
        if (r < 0)
                return api_failed(p, r, "register the template");
        r = cloud_journal_created(p->journal, ix, id);
        if (r < 0)
                return journal_failed(p, r);
        if (json_object_set_new(p->templates, o->zone, json_string(id)) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        log_info("[%6.1f s] Template %s (%s) registered in %s", elapsed(p), p->template_name, id, o->zone);
        return 0;
}

static int copy_templates(push *p) {
        const exo_push_options *o = p->o;
        const char *source = json_string_value(json_object_get(p->templates, o->zone));
        int r;

        for (char *const *z = o->copy_zones; z && *z; z++) {
                _cleanup_free_ char *id = NULL;
                size_t ix;
                if ((r = check_interrupted()) < 0)
                        return r;
                if (streq(*z, o->zone) || json_object_get(p->templates, *z))
                        continue;
                r = cloud_journal_add(p->journal, "template", p->template_name, *z, NULL, &ix);
                if (r < 0)
                        return journal_failed(p, r);
                r = exoapi_set_zone(p->api, o->zone);
                if (r >= 0)
                        r = exoapi_template_copy(p->api, source, *z, &id);
                if (r < 0)
                        return api_failed(p, r, "copy the template");
                r = cloud_journal_created(p->journal, ix, id);
                if (r < 0)
                        return journal_failed(p, r);
                if (json_object_set_new(p->templates, *z, json_string(id)) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                log_info("[%6.1f s] Template copied to %s as %s", elapsed(p), *z, id);
        }
        return 0;
}

/* Delete the object (always: the templates hold their own copy) and, unless the push got through,
 * the templates. Returns r: an object that could not be deleted after a good push is a warning
 * (the journal keeps it for gc). */
static int cleanup(push *p, int r) {
        if (!p->journal)
                return r;
        if (r >= 0) {
                int q = cloud_journal_keep(p->journal, "template");
                if (q < 0) {
                        log_error_errno(q, "Failed to update %s: %m", cloud_journal_path(p->journal));
                        r = q;
                }
        }
        exoapi_set_cancel(p->api, NULL);
        sos_set_cancel(p->store, NULL);
        log_info("[%6.1f s] Deleting the %s", elapsed(p), r >= 0 ? "uploaded object" : "push's resources");
        int q = cloud_journal_cleanup(p->journal, p->api, p->store, false, stderr);
        if (q < 0 && r >= 0)
                /* The templates are there: only the object is left, for gc. */
                log_warning("The uploaded object of push %s remains, recorded in %s: run `imgbuild gc` to delete it",
                            p->id, cloud_journal_path(p->journal));
        else if (q < 0)
                log_error("Some resources of push %s remain, recorded in %s: run `imgbuild gc` to retry", p->id,
                          cloud_journal_path(p->journal));
        else
                (void) cloud_journal_remove(p->journal);
        cloud_journal_free(p->journal);
        p->journal = NULL;
        return r;
}

static int write_manifest(push *p, const char *path) {
        const exo_push_options *o = p->o;
        _cleanup_(json_decrefp) json_t *m = json_pack(
                "{s:{s:s, s:s}, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:I}, s:s, s:{s:s, s:s, s:s}, s:O, s:I}",
                "template", "name", p->name, "version", p->version,
                "provider", "exoscale",
                "source", "push",
                "push", p->id,
                "disk", "path", p->disk, "sha256", p->sha256, "md5", p->md5, "size", (json_int_t) p->size,
                "boot-mode", p->boot_mode,
                "object", "zone", o->zone, "bucket", o->bucket, "key", p->key,
                "templates", p->templates,
                "created", (json_int_t) time(NULL));
        if (!m)
                return log_error_errno(-ENOMEM, "Out of memory");
        return exoscale_write_manifest(path, m);
}

static int push_run(push *p, const char *manifest_path) {
        const exo_push_options *o = p->o;
        int r;

        r = exoscale_api_new(o->credentials, o->zone, &p->api);
        if (r >= 0)
                r = exoscale_sos_new(o->credentials, o->zone, &p->store);
        if (r < 0)
                return r == -EINVAL ? -EIO : r;
        /* From here on a signal is ours: the push stops and cleans up. */
        interrupt_hold();
        p->holding = true;
        exoapi_set_cancel(p->api, interrupt_signal_flag());
        sos_set_cancel(p->store, interrupt_signal_flag());
        r = cloud_journal_create(o->store, p->id, &p->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to start the push journal in %s/cloud: %m", o->store);
        log_info("[%6.1f s] Push %s of %s to %s: journal %s", elapsed(p), p->id, o->ref, o->zone,
                 cloud_journal_path(p->journal));

        r = upload(p);
        if (r >= 0)
                r = check_interrupted();
        if (r >= 0)
                r = register_template(p);
        if (r >= 0)
                r = copy_templates(p);
        if (r >= 0)
                r = check_interrupted();
        r = cleanup(p, r);
        if (r < 0)
                return r;
        r = write_manifest(p, manifest_path);
        if (r < 0)
                return r;
        printf("%s: pushed to Exoscale as template %s (boot mode %s), %.1f s\n", o->ref, p->template_name, p->boot_mode,
               elapsed(p));
        const char *zone;
        json_t *tid;
        json_object_foreach(p->templates, zone, tid)
                printf("%s %s\n", zone, json_string_value(tid));
        printf("%s\n", manifest_path);
        return 0;
}

int exo_push(const exo_push_options *o) {
        _cleanup_free_ char *manifest_path = NULL, *manifest_text = NULL, *out_path = NULL;
        _cleanup_(json_decrefp) json_t *manifest = NULL;
        base_image tmpl = {};
        push p = { .o = o, .t0 = time_now_ms() };
        uint8_t raw[8];
        int r;

        if (!o->bucket || !*o->bucket) {
                log_error("--bucket is required: the object storage bucket to upload the disk to (it must exist)");
                return -EINVAL;
        }
        if (o->part_size < 1024) {
                log_error("Part size %zu is below 1 KiB", o->part_size);
                return -EINVAL;
        }
        r = template_open(o->store, o->ref, &tmpl);
        if (r == -ENOENT || r == -EINVAL) {
                log_error("%s: no such template in %s/templates (see imgbuild templates)", o->ref, o->store);
                return -EINVAL;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to open %s: %m", o->ref);
        const char *at = strchr(o->ref, '@');
        p.name = strndup(o->ref, (size_t) (at - o->ref));
        p.version = strdup(at + 1);
        p.disk = strdup(tmpl.disk);
        p.templates = json_object();
        if (!p.name || !p.version || !p.disk || !p.templates || random_bytes(raw, sizeof(raw)) < 0 ||
            asprintf(&manifest_path, "%s/manifest.json", tmpl.dir) < 0 ||
            asprintf(&out_path, "%s/exoscale/%s/%s/manifest.json", o->store, p.name, p.version) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        hex_encode(raw, sizeof(raw), p.id);
        if (asprintf(&p.template_name, "%s-%s", p.name, p.version) < 0 ||
            asprintf(&p.description, "imgbuild push %s", p.id) < 0 ||
            asprintf(&p.key, "imgbuild/%s-%s-%s.qcow2", p.name, p.version, p.id) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        if (access(out_path, F_OK) == 0) {
                log_error("%s is on Exoscale already (%s): bump the version, or remove that manifest to push again",
                          o->ref, out_path);
                r = -EEXIST;
                goto out;
        }
        r = read_file(manifest_path, 16 * 1024 * 1024, &manifest_text, NULL);
        if (r >= 0)
                r = json_parse(manifest_text, strlen(manifest_text), &manifest, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", manifest_path);
                goto out;
        }
        r = choose_boot_mode(&p, manifest);
        if (r >= 0)
                r = read_disk(&p, manifest);
        if (r >= 0)
                r = push_run(&p, out_path);
out:
        if (p.data)
                munmap((void *) p.data, p.size);
        cloud_journal_free(p.journal);
        exoapi_free(p.api);
        sos_free(p.store);
        json_decref(p.templates);
        free(p.name);
        free(p.version);
        free(p.template_name);
        free(p.description);
        free(p.key);
        free(p.boot_mode_owned);
        free(p.disk);
        base_image_done(&tmpl);
        if (p.holding)
                interrupt_release();
        return r;
}
