/* mod_isr: Incremental Static Regeneration (stale-while-revalidate) for
 * Apache httpd 2.4. This file is the httpd glue: the module record, the
 * hooks and when each runs. The work is in src/. */
#define ISR_MODULE_RECORD
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include "isr.h"
#include "isr_config.h"
#include "isr_fast.h"
#include "isr_fetch.h"
#include "isr_local.h"
#include "isr_proxy.h"
#include "isr_refresh.h"
#include "isr_request.h"
#include "isr_status.h"
#include "isr_admin.h"
#include "isr_zone.h"
#include "isr_tier.h"

static int isr_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    isr_conf_pre_config();
    return isr_zones_pre_config(pconf) == APR_SUCCESS ? OK : !OK;
}

/* Runs for `apachectl -t` too, so references to undefined zones are caught
 * there, not at the first request. */
static int isr_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    const char *err = isr_conf_check(ptemp, s);
    (void)pconf; (void)plog;

    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, ISR_LOGNO(0005) "%s", err);
        return !OK;
    }
    return OK;
}

static int isr_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    isr_srv_conf_t *sc = ap_get_module_config(s->module_config, &isr_module);
    apr_status_t rv;
    (void)plog; (void)ptemp;

    /* The first pass only checks the configuration: make nothing yet. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    /* Still single-threaded here, as libcurl's global init requires. */
    if (APR_SUCCESS != (rv = isr_fetch_global_init())) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, ISR_LOGNO(0006)
                     "libcurl initialisation failed");
        return !OK;
    }
    if (APR_SUCCESS != isr_zones_setup(sc->zones, s, pconf)) {
        return !OK;
    }
    isr_conf_check_zones(s);
    return OK;
}

static void isr_child_init(apr_pool_t *pchild, server_rec *s)
{
    isr_srv_conf_t *sc = ap_get_module_config(s->module_config, &isr_module);

    isr_zones_child_init(pchild, s);
    /* Cleanups run in reverse order, and the refresh threads stop in a
     * pre-cleanup before any of them: nothing uses these after. */
    isr_fetch_child_init(pchild);
    isr_local_init(pchild, isr_conf_local_copies(sc), isr_conf_zero_copy(sc));
    isr_fast_child_init(pchild, s);
    isr_refresh_start(pchild, isr_conf_refresh_threads(sc), s);
    /* On the refresh threads: after them. */
    isr_zones_child_start(s);
    /* Its pre-cleanup runs before the refresh threads': it ends their
     * waits on other servers' fetches. */
    isr_tier_child_init(pchild, s);
}

/* In the quick handler r->uri is still the raw request path: httpd decodes
 * and normalises it later. Only a path that decoding and normalising leave
 * as it is gives the same key here as on the normal path; any other
 * declines (the normal path answers it). */
static int uri_is_canonical(const char *uri)
{
    const char *s;

    if (*uri != '/' || strchr(uri, '%')) {
        return 0;
    }
    for (s = uri; (s = strchr(s, '/')) != NULL; s++) {
        if (s[1] == '/' || (s[1] == '.' && (!s[2] || s[2] == '/'
                                            || (s[2] == '.'
                                                && (!s[3] || s[3] == '/'))))) {
            return 0;
        }
    }
    return 1;
}

/* The scope's SetHandler is isr-admin. */
static int is_admin(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);

    return cd && cd->handler && !strcmp(cd->handler, ISR_ADMIN_HANDLER);
}

/* ISRQuickHandler On: answer hits before the request is even mapped, as
 * mod_cache's CacheQuickHandler does (and, like it, before access control).
 * Everything that is not a hit declines to the normal path. */
static int isr_quick_handler(request_rec *r, int lookup_uri)
{
    isr_dir_conf_t *c;
    isr_req_t *q;

    if (lookup_uri || !isr_conf_quick_used() || r->method_number != M_GET
        || !uri_is_canonical(r->uri) || ap_location_walk(r) != OK) {
        return DECLINED;
    }
    c = ap_get_module_config(r->per_dir_config, &isr_module);
    /* Expressions may read what later phases set (SetEnvIf, mod_rewrite's
     * E=, the mapped file name): here they would give another key than on
     * the normal path, so scopes that use them are not answered here. Nor
     * is the admin API, wherever it sits. */
    if (!isr_conf_enabled(c) || !isr_conf_quick(c) || c->backend_expr
        || c->key_expr || is_admin(r)) {
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    if (isr_request_prepare(r, c, q) != OK
        || isr_request_lookup(r, q) != APR_SUCCESS) {
        return DECLINED;
    }
    return isr_respond_send(r, q);
}

/* A request answered by ISRApply response maps to no file: mark it here
 * (translate_name runs after an early <Location> walk, so our per-location
 * config is visible) and skip the filesystem directory walk in
 * map_to_storage, as mod_proxy does. Not with ISROnError pass, whose
 * fallback handler may need the file. */
static int isr_translate(request_rec *r)
{
    isr_dir_conf_t *c = ap_get_module_config(r->per_dir_config, &isr_module);

    if (!isr_conf_enabled(c) || isr_conf_apply(c) != ISR_APPLY_RESPONSE) {
        return DECLINED;
    }
    /* Proxied methods never fall back to a file, whatever ISROnError. */
    if (r->method_number == M_GET ? isr_conf_on_error(c) == ISR_ONERROR_PASS
                                  : !isr_proxy_wanted(r)) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, ISR_FILENAME_PREFIX, r->uri, NULL);
    return OK;
}

static int isr_map_to_storage(request_rec *r)
{
    return r->filename && !strncmp(r->filename, ISR_FILENAME_PREFIX,
                                   sizeof(ISR_FILENAME_PREFIX) - 1)
           ? OK : DECLINED;
}

/* Resolve and obtain the answer, or the ISROnError action as a hook result
 * (OK means q holds an answer). */
static int isr_obtain(request_rec *r, isr_dir_conf_t *c, isr_req_t *q)
{
    apr_status_t rv;
    int rc;

    if ((rc = isr_request_prepare(r, c, q)) != OK) {
        if (q->no_backend) {
            return isr_respond_error(r, q, APR_EINVAL);
        }
        /* A client's oversized header is its own fault: info, as httpd
         * logs its own request errors. */
        ap_log_rerror(APLOG_MARK, rc < 500 ? APLOG_INFO : APLOG_ERR, 0, r,
                      ISR_LOGNO(0007) "%s", q->error);
        return rc;
    }
    if (APR_SUCCESS != (rv = isr_request_obtain(r, q))) {
        if (q->relayed) {
            /* Part of the answer is out: no error page any more. */
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, ISR_LOGNO(0008)
                          "relaying %s broke off: %s", q->url,
                          q->error ? q->error : "unknown error");
            q->relay_failed = 1;
            return OK;
        }
        return isr_respond_error(r, q, rv);
    }
    return OK;
}

/* Whether r is a lookup subrequest for an invalidation or a purge, or one
 * made by such a lookup. */
static int lookup_only(request_rec *r)
{
    request_rec *m;

    for (m = r->main; m; m = m->main) {
        if (apr_table_get(m->notes, ISR_PROXY_NOTE_LOOKUP)) {
            return 1;
        }
    }
    return 0;
}

/* After authentication and access control, before the handler. env= and
 * header= act here so that PHP, CGI, SSI or mod_proxy see the value.
 * `response` only claims the request: the lookup waits for the handler, so
 * lookup-only subrequests (mod_dir, mod_negotiation) cost nothing. */
static int isr_fixups(request_rec *r)
{
    isr_dir_conf_t *c = ap_get_module_config(r->per_dir_config, &isr_module);
    isr_req_t *q;
    int rc;

    /* A lookup for an invalidation only wants the configuration (and so
     * do the subrequests it makes, mod_dir's for one); the admin API
     * answers itself, wherever it sits. */
    if (!isr_conf_enabled(c) || lookup_only(r)
        || (r->handler && !strcmp(r->handler, ISR_ADMIN_HANDLER))) {
        return DECLINED;
    }
    if (isr_conf_apply(c) == ISR_APPLY_HEADER) {
        /* The handler must see only what mod_isr set, never a value the
         * client sent under that name: whatever the method, and also when
         * the fetch failed (ISROnError pass leaves it unset). */
        apr_table_unset(r->headers_in, c->apply_name);
    }
    if (r->method_number != M_GET) {
        /* Other methods are proxied (isr_proxy.c), for ISRApply response
         * only: with env=/header= the normal handler answers them. */
        if (isr_conf_apply(c) == ISR_APPLY_RESPONSE && isr_proxy_wanted(r)) {
            r->handler = ISR_PROXY_HANDLER;
        }
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    if (isr_conf_apply(c) != ISR_APPLY_RESPONSE) {
        if ((rc = isr_obtain(r, c, q)) == OK) {
            isr_respond_apply(r, q);
        }
        return rc == OK ? DECLINED : rc;
    }
    q->prev_handler = r->handler;
    ap_set_module_config(r->request_config, &isr_module, q);
    r->handler = ISR_HANDLER;
    return DECLINED;
}

static int isr_handler(request_rec *r)
{
    isr_dir_conf_t *c;
    isr_req_t *q;
    int rc;

    if (r->handler && !strcmp(r->handler, ISR_PROXY_HANDLER)) {
        c = ap_get_module_config(r->per_dir_config, &isr_module);
        return isr_conf_enabled(c) && isr_proxy_wanted(r)
               ? isr_proxy_handle(r, c) : DECLINED;
    }
    if (!r->handler || strcmp(r->handler, ISR_HANDLER)
        || !(q = ap_get_module_config(r->request_config, &isr_module))) {
        return DECLINED;
    }
    c = ap_get_module_config(r->per_dir_config, &isr_module);
    q->can_relay = 1;
    if ((rc = isr_obtain(r, c, q)) == DECLINED) {
        /* ISROnError pass: the handlers after us see the request as if
         * mod_isr had never claimed it. */
        r->handler = q->prev_handler;
    }
    return rc == OK ? isr_respond_send(r, q) : rc;
}

static void isr_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(isr_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(isr_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(isr_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(isr_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_quick_handler(isr_quick_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(isr_translate, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(isr_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_fixups(isr_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(isr_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_expr_lookup(isr_conf_expr_lookup, NULL, NULL, APR_HOOK_MIDDLE);
    isr_status_register_hooks(p);
    isr_admin_register_hooks(p);
    isr_fast_register_hooks(p);
}

AP_DECLARE_MODULE(isr) = {
    STANDARD20_MODULE_STUFF,
    isr_conf_create_dir,
    isr_conf_merge_dir,
    isr_conf_create_srv,
    NULL,
    isr_cmds,
    isr_register_hooks
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    , AP_MODULE_FLAG_NONE
#endif
};
