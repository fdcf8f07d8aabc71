#include "certs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "kubeconfig.h"
#include "log.h"
#include "pki.h"
#include "strv.h"
#include "units.h"
#include "vault.h"

#define PEM_MAX (256 * 1024)

bool certs_configured(const agent_config *c) { return c->n_certs > 0 || c->n_kubeconfigs > 0 || c->n_envs > 0; }

static int expand_list(char *const *l, char *const *env, char ***ret) {
        _cleanup_strv_free_ char **out = calloc(1, sizeof(char *));
        if (!out)
                return -ENOMEM;
        for (; l && *l; l++) {
                char *s;
                int r = strv_env_expand(*l, env, &s);
                if (r < 0 || (r = strv_consume(&out, s)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* Read a PEM file; a missing one gives 0 and NULL. */
static int read_pem(const char *path, char **ret) {
        int r = read_file(path, PEM_MAX, ret, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}

static int unlink_missing_ok(const char *path) { return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0; }

typedef enum cert_outcome { CERT_FRESH, CERT_SIGNED, CERT_RESUMED } cert_outcome;

/* One certificate's files: installed (rooted) and saved while pending. */
typedef struct cert_paths {
        char *cert, *key, *ca;
        char *pending_cert, *pending_key, *pending_ca;
} cert_paths;

static void cert_paths_done(cert_paths *p) {
        free(p->cert);
        free(p->key);
        free(p->ca);
        free(p->pending_cert);
        free(p->pending_key);
        free(p->pending_ca);
}

static int cert_paths_get(const agent *a, const agent_config_cert *t, cert_paths *ret) {
        cert_paths p = {};
        if (agent_rooted(a, t->cert_file, &p.cert) < 0 || agent_rooted(a, t->key_file, &p.key) < 0 ||
            agent_rooted(a, t->ca_file, &p.ca) < 0 ||
            asprintf(&p.pending_cert, "%s/certificates/%s.crt", a->state_dir, t->name) < 0 ||
            asprintf(&p.pending_key, "%s/certificates/%s.key", a->state_dir, t->name) < 0 ||
            asprintf(&p.pending_ca, "%s/certificates/%s.ca", a->state_dir, t->name) < 0) {
                cert_paths_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

/* Key first, then CA, then the certificate: a crash in between leaves a pair that does not
 * match, which the next run replaces from the saved copies. Then the saved copies go. */
static int install(const agent_config_cert *t, const cert_paths *p, const char *key, const char *cert, const char *ca) {
        int r;
        if ((r = stage_write_file(p->key, key, t->mode, t->uid, t->gid)) < 0 ||
            (r = stage_write_file(p->ca, ca, 0644, t->uid, t->gid)) < 0 ||
            (r = stage_write_file(p->cert, cert, 0644, t->uid, t->gid)) < 0)
                return r;
        if ((r = unlink_missing_ok(p->pending_cert)) < 0 || (r = unlink_missing_ok(p->pending_ca)) < 0 ||
            (r = unlink_missing_ok(p->pending_key)) < 0)
                return r;
        return 0;
}

/* Ensure one certificate; label names it in messages ("[certificate NAME]"). *ret_serial and
 * *ret_not_after: what was signed or installed (NULL and 0 when fresh). */
static int ensure_one(agent *a, char *const *env, const agent_config_cert *t, const char *label,
                      cert_outcome *ret_outcome, char **ret_serial, int64_t *ret_not_after, buf *err) {
        _cleanup_(cert_paths_done) cert_paths p = {};
        _cleanup_free_ char *cn = NULL, *cert = NULL, *pcert = NULL, *pca = NULL, *csr = NULL;
        _cleanup_free_ char *alt = NULL, *ips_joined = NULL;
        _cleanup_secret_ char *key = NULL, *pkey = NULL;
        _cleanup_strv_free_ char **dns = NULL, **ips = NULL;
        pki_bundle b = {};
        time_t now = time(NULL);
        int r;

        if ((r = cert_paths_get(a, t, &p)) < 0)
                return r;
        if ((r = strv_env_expand(t->common_name, env, &cn)) < 0 || (r = expand_list(t->alt_names, env, &dns)) < 0 ||
            (r = expand_list(t->ip_sans, env, &ips)) < 0)
                return r;
        const pki_want want = { .common_name = cn, .organization = t->organization, .dns = dns, .ips = ips };

        if ((r = read_pem(p.cert, &cert)) < 0 || (r = read_pem(p.key, &key)) < 0) {
                buf_printf(err, "%s: reading %s: %s", label, cert ? p.key : p.cert, strerror(-r));
                return r;
        }
        if (cert && key && pki_cert_check(cert, key, &want, a->cfg->renew_fraction, now)) {
                *ret_outcome = CERT_FRESH;
                *ret_serial = NULL;
                *ret_not_after = 0;
                return 0;
        }

        if ((r = read_pem(p.pending_key, &pkey)) < 0 || (r = read_pem(p.pending_cert, &pcert)) < 0 ||
            (r = read_pem(p.pending_ca, &pca)) < 0) {
                buf_printf(err, "%s: reading its saved copy: %s", label, strerror(-r));
                return r;
        }
        if (pkey && pcert && pca && pki_cert_check(pcert, pkey, &want, a->cfg->renew_fraction, now)) {
                /* Signed by an earlier run that stopped before installing it. */
                if ((r = pki_cert_info(pcert, ret_serial, ret_not_after)) < 0 || (r = install(t, &p, pkey, pcert, pca)) < 0) {
                        buf_printf(err, "%s: installing the saved certificate: %s", label, strerror(-r));
                        return r;
                }
                log_info("%s: installed serial %s, signed before a restart (not signed again)",
                         label, *ret_serial);
                *ret_outcome = CERT_RESUMED;
                return 0;
        }

        _cleanup_free_ char *dir = path_dirname(p.pending_key);
        if (!dir)
                return -ENOMEM;
        if ((r = mkdir_p(dir, 0700)) < 0) {
                buf_printf(err, "creating %s: %s", dir, strerror(-r));
                return r;
        }
        alt = strv_join(dns, ",");
        ips_joined = strv_join(ips, ",");
        if (!alt || !ips_joined)
                return -ENOMEM;
        if (t->local_key) {
                /* A saved key that is no key (damage) is replaced: nothing was signed for it. */
                if (pkey && (r = pki_make_csr_for_key(pkey, cn, t->organization, &csr)) == -EBADMSG) {
                        log_warning("%s: the saved key %s is unreadable; making a new one", label,
                                    p.pending_key);
                        free_secret(pkey);
                        pkey = NULL;
                } else if (pkey && r < 0) {
                        buf_printf(err, "%s: making a CSR: %s", label, strerror(-r));
                        return r;
                } else if (pkey)
                        log_info("%s: signing the key saved by an earlier attempt", label);
                /* The key is on disk before Vault hears of it: a retry signs the same key. */
                if (!pkey) {
                        if ((r = pki_make_key(&pkey)) < 0 ||
                            (r = write_file_atomic(p.pending_key, pkey, strlen(pkey), 0600, (uid_t) -1, (gid_t) -1)) < 0) {
                                buf_printf(err, "%s: making its key: %s", label, strerror(-r));
                                return r;
                        }
                        if ((r = stage_abort_point("certificate-key")) < 0)
                                return r;
                        if ((r = pki_make_csr_for_key(pkey, cn, t->organization, &csr)) < 0) {
                                buf_printf(err, "%s: making a CSR: %s", label, strerror(-r));
                                return r;
                        }
                }
        }
        r = vault_pki(&a->vault, t->mount, t->role, cn, alt, ips_joined, t->ttl, csr, &b, err);
        if (r < 0) {
                buf_printf(err, " (%s)", label);
                return r;
        }
        if (!t->local_key) {
                free_secret(pkey);
                pkey = TAKE_PTR(b.private_key);
        }
        if (!pki_cert_check(b.certificate, pkey, &want, 1.0, 0)) {
                /* Vault's sign and issue take O from the role (its "organization"), not from us. */
                buf_printf(err, "%s: the certificate %s from %s/%s does not carry the configured "
                           "names or organization (does the PKI role set them?)", label, b.serial, t->mount, t->role);
                r = -EPROTO;
                goto out;
        }
        /* Saved before it is installed: a run stopped from here on installs this one. */
        if ((!t->local_key && (r = write_file_atomic(p.pending_key, pkey, strlen(pkey), 0600, (uid_t) -1, (gid_t) -1)) < 0) ||
            (r = write_file_atomic(p.pending_ca, b.issuing_ca, strlen(b.issuing_ca), 0600, (uid_t) -1, (gid_t) -1)) < 0 ||
            (r = write_file_atomic(p.pending_cert, b.certificate, strlen(b.certificate), 0600, (uid_t) -1, (gid_t) -1)) < 0) {
                buf_printf(err, "%s: saving it: %s", label, strerror(-r));
                goto out;
        }
        log_info("%s: %s serial %s, expires %" PRId64 " (unix)", label,
                 t->local_key ? "signed" : "issued", b.serial, b.expiration);
        if ((r = stage_abort_point("certificate-signed")) < 0)
                goto out;
        if ((r = install(t, &p, pkey, b.certificate, b.issuing_ca)) < 0) {
                buf_printf(err, "%s: installing it: %s", label, strerror(-r));
                goto out;
        }
        *ret_serial = TAKE_PTR(b.serial);
        *ret_not_after = b.expiration;
        *ret_outcome = CERT_SIGNED;
        r = 0;
out:
        pki_bundle_done(&b);
        return r;
}

static int write_kubeconfig(const agent *a, char *const *env, const agent_config_kubeconfig *k, buf *err) {
        const agent_config_cert *t = agent_config_find_cert(a->cfg, k->certificate);
        _cleanup_(cert_paths_done) cert_paths p = {};
        _cleanup_free_ char *cert = NULL, *ca = NULL, *server = NULL, *file = NULL;
        _cleanup_secret_ char *key = NULL, *text = NULL;
        int r;

        if ((r = cert_paths_get(a, t, &p)) < 0 || (r = strv_env_expand(k->server, env, &server)) < 0 ||
            (r = agent_rooted(a, k->file, &file)) < 0)
                return r;
        if ((r = read_file(p.cert, PEM_MAX, &cert, NULL)) < 0 || (r = read_file(p.key, PEM_MAX, &key, NULL)) < 0 ||
            (r = read_file(p.ca, PEM_MAX, &ca, NULL)) < 0) {
                buf_printf(err, "[kubeconfig %s]: reading the files of [certificate %s]: %s", k->name, t->name, strerror(-r));
                return r;
        }
        const kubeconfig_spec spec = { .cluster = k->cluster, .server = server, .ca_pem = ca, .user = k->user,
                                       .cert_pem = cert, .key_pem = key };
        if ((r = kubeconfig_build(&spec, &text)) < 0 || (r = stage_write_file(file, text, k->mode, k->uid, k->gid)) < 0) {
                buf_printf(err, "[kubeconfig %s]: writing %s: %s", k->name, k->file, strerror(-r));
                return r;
        }
        return r;
}

static int write_env(const agent *a, char *const *env, const agent_config_env *e, buf *err) {
        _cleanup_buf_ buf text = BUF_INIT(256 * 1024);
        _cleanup_free_ char *file = NULL;
        int r = agent_rooted(a, e->file, &file);
        if (r < 0)
                return r;
        if ((r = buf_printf(&text, "# Written by bootagent from [environment %s] of agent.conf.\n", e->name)) < 0)
                return r;
        for (char *const *v = e->vars; v && *v; v++) {
                _cleanup_free_ char *line = NULL;
                if ((r = strv_env_expand(*v, env, &line)) < 0 || (r = buf_printf(&text, "%s\n", line)) < 0)
                        return r;
        }
        r = stage_write_file(file, text.data, e->mode, e->uid, e->gid);
        if (r < 0)
                buf_printf(err, "[environment %s]: writing %s: %s", e->name, e->file, strerror(-r));
        return r;
}

int certs_ensure_pki(agent *a, bool *ret_issued, char **ret_serial, int64_t *ret_expiration, buf *err) {
        const agent_config *c = a->cfg;
        _cleanup_strv_free_ char **env = NULL, **ips = NULL;
        char name[] = "[pki]", instance_id[] = "${instance_id}";
        cert_outcome o = CERT_FRESH;
        int r;

        if ((r = agent_identity_env(a, &env)) < 0 || (r = strv_push(&ips, "${local_ipv4}")) < 0)
                return r;
        for (char **i = c->pki_ip_sans; i && *i; i++)
                if ((r = strv_push(&ips, *i)) < 0)
                        return r;
        /* [pki] as an unnamed [certificate]: its own defaults (issue unless local_key = yes, the
         * instance's IP always), saved copies under a name no section can have. */
        const agent_config_cert t = {
                .name = name, .mount = c->pki_mount, .role = c->pki_role,
                .common_name = c->pki_common_name ? c->pki_common_name : instance_id, .alt_names = c->pki_alt_names,
                .ip_sans = ips, .ttl = c->pki_ttl, .local_key = c->pki_local_key, .cert_file = c->cert_file,
                .key_file = c->key_file, .ca_file = c->ca_file, .mode = 0600, .uid = c->pki_uid, .gid = c->pki_gid,
        };
        r = ensure_one(a, env, &t, "[pki]", &o, ret_serial, ret_expiration, err);
        if (r >= 0)
                *ret_issued = o != CERT_FRESH;
        return r;
}

int certs_stage(agent *a, char ***ret_renewed) {
        _cleanup_buf_ buf err = BUF_INIT(4096), detail = BUF_INIT(8192), serials = BUF_INIT(8192);
        _cleanup_strv_free_ char **env = NULL, **renewed = calloc(1, sizeof(char *));
        unsigned n[3] = {}, written = 0;
        int r;

        stage_begin(a);
        stage_deadline(a, a->cfg->vault_deadline_ms);
        if (!renewed || (r = agent_identity_env(a, &env)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < a->cfg->n_certs; i++) {
                const agent_config_cert *t = &a->cfg->certs[i];
                _cleanup_free_ char *serial = NULL, *label = NULL;
                cert_outcome o = CERT_FRESH;
                int64_t not_after;
                if (asprintf(&label, "[certificate %s]", t->name) < 0)
                        return -ENOMEM;
                r = ensure_one(a, env, t, label, &o, &serial, &not_after, &err);
                if (r == -ECANCELED)
                        return r;
                if (r < 0)
                        return stage_fail(a, "certificates", r, &err);
                n[o]++;
                if (o != CERT_FRESH &&
                    ((r = buf_printf(&serials, "%s %s %s", serials.len ? "," : ";", t->name, serial)) < 0 ||
                     (r = strv_push(&renewed, t->name)) < 0))
                        return r;
        }
        for (size_t i = 0; i < a->cfg->n_kubeconfigs; i++) {
                r = write_kubeconfig(a, env, &a->cfg->kubeconfigs[i], &err);
                if (r < 0)
                        return stage_fail(a, "certificates", r, &err);
                written += r > 0;
        }
        for (size_t i = 0; i < a->cfg->n_envs; i++) {
                r = write_env(a, env, &a->cfg->envs[i], &err);
                if (r < 0)
                        return stage_fail(a, "certificates", r, &err);
                written += r > 0;
        }
        if ((r = buf_printf(&detail, "%zu certificates: %u signed, %u installed from a saved copy, %u fresh%s; "
                            "%zu kubeconfigs, %zu environment files, %u written",
                            a->cfg->n_certs, n[CERT_SIGNED], n[CERT_RESUMED], n[CERT_FRESH], strempty(serials.data),
                            a->cfg->n_kubeconfigs, a->cfg->n_envs, written)) < 0)
                return r;
        r = stage_end(a, "certificates", true, detail.data);
        if (r >= 0 && ret_renewed)
                *ret_renewed = TAKE_PTR(renewed);
        return r;
}

int certs_stage_reload(agent *a, char *const *renewed) {
        _cleanup_strv_free_ char **restart = NULL, **reload = NULL;
        _cleanup_buf_ buf err = BUF_INIT(4096), detail = BUF_INIT(4096);
        int r;

        for (char *const *name = renewed; name && *name; name++) {
                const agent_config_cert *t = agent_config_find_cert(a->cfg, *name);
                for (char **u = t->restart; u && *u; u++)
                        if (!strv_contains(restart, *u) && strv_push(&restart, *u) < 0)
                                return -ENOMEM;
                for (char **u = t->reload; u && *u; u++)
                        if (!strv_contains(reload, *u) && strv_push(&reload, *u) < 0)
                                return -ENOMEM;
        }
        if (!restart && !reload)
                return 0;
        stage_begin(a);
        _cleanup_free_ char *restart_list = strv_join(restart, " "), *reload_list = NULL;
        _cleanup_strv_free_ char **only_reload = NULL;
        for (char **u = reload; u && *u; u++)
                if (!strv_contains(restart, *u) && strv_push(&only_reload, *u) < 0)
                        return -ENOMEM;
        reload_list = strv_join(only_reload, " ");
        if (!restart_list || !reload_list)
                return -ENOMEM;
        if (a->cfg->units_exec) {
                log_notice("units = exec: not restarting [%s] nor reloading [%s] after the renewal (systemd units only)",
                           restart_list, reload_list);
                buf_printf(&detail, "units = exec: not restarted: [%s], not reloaded: [%s]", restart_list, reload_list);
                return stage_end(a, "reload", true, detail.data);
        }
        for (int pass = 0; pass < 2; pass++)
                for (char **u = pass == 0 ? restart : only_reload; u && *u; u++) {
                        _cleanup_free_ char *result = NULL;
                        const char *method = pass == 0 ? "RestartUnit" : "ReloadUnit";
                        r = units_systemd_job(method, *u, 120000, &result);
                        if (r < 0) {
                                buf_printf(&err, "%s %s: %s", method, *u, result ? result : strerror(-r));
                                return stage_fail(a, "reload", r, &err);
                        }
                }
        buf_printf(&detail, "restarted: [%s], reloaded: [%s]", restart_list, reload_list);
        return stage_end(a, "reload", true, detail.data);
}
