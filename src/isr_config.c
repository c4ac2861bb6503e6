/* Directives: one table, one handler per kind of value, messages that name
 * the directive, the bad value and what is accepted. */
#include "isr.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>

#include "isr_config.h"
#include "isr_ctx.h"
#include "isr_fast.h"
#include "isr_zone.h"
#include "isr_persist.h"
#include "isr_tier.h"

#define UNSET -1
#define MERGE(f) (add->f != UNSET ? add->f : base->f)
#define MERGE_PTR(f) (add->f ? add->f : base->f)

#define DEF_TTL         apr_time_from_sec(60)
#define DEF_STALE_TTL   apr_time_from_sec(3600)
#define DEF_TIMEOUT     apr_time_from_sec(10)
#define DEF_CONNECT     apr_time_from_sec(3)
#define DEF_RETRY       apr_time_from_sec(10)
#define DEF_ERROR_TTL   apr_time_from_sec(1)
#define DEF_MAX_OBJECT  (1024 * 1024)
#define DEF_ON_ERROR    HTTP_BAD_GATEWAY
#define DEF_THREADS     4
#define DEF_LOCAL       (32 * 1024 * 1024)
#define DEF_RELAY       apr_time_from_sec(300)
#define MAX_OBJECT      (1024 * 1024 * 1024)
/* A miss buffers at most this much (isr_request.c): no larger object can
 * ever be stored. */
#define MAX_STORE       (256 * 1024 * 1024)
#define MAX_ZONE        ISR_PARSE_MAX_SIZE

/* ISRCache references, checked once every zone is known. */
typedef struct {
    const char *name;
    const char *where;
} zone_ref_t;

static apr_array_header_t *zone_refs;
static int quick_used;

/* ISRMaxObjectSize settings, checked against their zones in post_config. */
typedef struct {
    const isr_dir_conf_t *conf;
    const char *where;
} max_ref_t;

static apr_array_header_t *max_refs;

static const char *where(cmd_parms *cmd)
{
    return cmd->directive
           ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                          cmd->directive->line_num)
           : "command line";
}

/* ---- create / merge ----------------------------------------------------- */

void *isr_conf_create_dir(apr_pool_t *p, char *dir)
{
    isr_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;

    c->enabled = UNSET;
    c->quick = UNSET;
    c->ttl = c->stale_ttl = c->timeout = c->connect_timeout = c->retry = UNSET;
    c->relay_timeout = c->error_ttl = UNSET;
    c->cc_mode = UNSET;
    c->max_object = UNSET;
    c->apply = UNSET;
    c->on_error = UNSET;
    c->zlevel[ISR_CODING_IDENTITY] = UNSET;
    c->zmin = UNSET;
    c->fast_wait = UNSET;
    c->refresh_ahead = UNSET;
    return c;
}

void *isr_conf_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    isr_dir_conf_t *base = basev, *add = addv;
    isr_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    int add_backend = add->backend_url || add->backend_expr;

    c->enabled = MERGE(enabled);
    c->quick = MERGE(quick);
    c->backend_url = add_backend ? add->backend_url : base->backend_url;
    c->unix_path = add_backend ? add->unix_path : base->unix_path;
    c->backend_expr = add_backend ? add->backend_expr : base->backend_expr;
    c->backend_origin = add_backend ? add->backend_origin
                                    : base->backend_origin;
    c->prefix = add_backend ? add->prefix : base->prefix;
    c->key_expr = MERGE_PTR(key_expr);
    c->ca_file = MERGE_PTR(ca_file);
    c->zone = MERGE_PTR(zone);
    c->forward = MERGE_PTR(forward);
    c->cache_status = MERGE_PTR(cache_status);
    c->relay_timeout = MERGE(relay_timeout);
    c->ttl = MERGE(ttl);
    c->stale_ttl = MERGE(stale_ttl);
    c->timeout = MERGE(timeout);
    c->connect_timeout = MERGE(connect_timeout);
    c->retry = MERGE(retry);
    c->error_ttl = MERGE(error_ttl);
    c->cc_mode = MERGE(cc_mode);
    c->max_object = MERGE(max_object);
    c->apply = MERGE(apply);
    c->apply_name = add->apply != UNSET ? add->apply_name : base->apply_name;
    c->on_error = MERGE(on_error);
    memcpy(c->zlevel, add->zlevel[0] != UNSET ? add->zlevel : base->zlevel,
           sizeof(c->zlevel));
    c->ztypes = MERGE_PTR(ztypes);
    c->zmin = MERGE(zmin);
    c->fast_wait = MERGE(fast_wait);
    c->refresh_ahead = MERGE(refresh_ahead);
    c->tag_headers = MERGE_PTR(tag_headers);
    return c;
}

void *isr_conf_create_srv(apr_pool_t *p, server_rec *s)
{
    isr_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));
    (void)s;

    sc->zones = apr_array_make(p, 4, sizeof(isr_zone_def_t));
    sc->refresh_threads = UNSET;
    sc->local_copies = UNSET;
    sc->zero_copy = UNSET;
    return sc;
}

/* ---- getters ------------------------------------------------------------ */

int isr_conf_enabled(const isr_dir_conf_t *c)
{
    return c->enabled != 0 && (c->backend_url || c->backend_expr);
}

int isr_conf_apply(const isr_dir_conf_t *c)
{
    return c->apply != UNSET ? c->apply : ISR_APPLY_RESPONSE;
}

int isr_conf_quick(const isr_dir_conf_t *c)
{
    return c->quick == 1 && isr_conf_apply(c) == ISR_APPLY_RESPONSE;
}

int isr_conf_quick_used(void)
{
    return quick_used;
}

const char *isr_conf_zone(const isr_dir_conf_t *c)
{
    return c->zone ? c->zone : ISR_ZONE_DEFAULT;
}

apr_interval_time_t isr_conf_ttl(const isr_dir_conf_t *c)
{
    return c->ttl != UNSET ? c->ttl : DEF_TTL;
}

apr_interval_time_t isr_conf_stale_ttl(const isr_dir_conf_t *c)
{
    return c->stale_ttl != UNSET ? c->stale_ttl : DEF_STALE_TTL;
}

apr_interval_time_t isr_conf_timeout(const isr_dir_conf_t *c)
{
    return c->timeout != UNSET ? c->timeout : DEF_TIMEOUT;
}

apr_interval_time_t isr_conf_connect_timeout(const isr_dir_conf_t *c)
{
    return c->connect_timeout != UNSET ? c->connect_timeout : DEF_CONNECT;
}

apr_interval_time_t isr_conf_retry(const isr_dir_conf_t *c)
{
    return c->retry != UNSET ? c->retry : DEF_RETRY;
}

apr_interval_time_t isr_conf_error_ttl(const isr_dir_conf_t *c)
{
    /* Strict: RFC 9111 lets a cache reuse a 5xx only with explicit
     * freshness, so by default only the waiters of a failure share it. */
    return c->error_ttl != UNSET ? c->error_ttl
           : isr_conf_cc_mode(c) == ISR_CC_STRICT ? 0 : DEF_ERROR_TTL;
}

isr_cc_mode_t isr_conf_cc_mode(const isr_dir_conf_t *c)
{
    return c->cc_mode != UNSET ? (isr_cc_mode_t)c->cc_mode : ISR_CC_ON;
}

void isr_conf_policy(const isr_dir_conf_t *c, isr_policy_conf_t *pc)
{
    pc->mode = isr_conf_cc_mode(c);
    pc->ttl = isr_conf_ttl(c);
    pc->stale_ttl = isr_conf_stale_ttl(c);
}

apr_size_t isr_conf_max_object(const isr_dir_conf_t *c)
{
    return (apr_size_t)(c->max_object != UNSET ? c->max_object
                                               : DEF_MAX_OBJECT);
}

apr_interval_time_t isr_conf_relay_timeout(const isr_dir_conf_t *c)
{
    return c->relay_timeout != UNSET ? c->relay_timeout : DEF_RELAY;
}

int isr_conf_on_error(const isr_dir_conf_t *c)
{
    return c->on_error != UNSET ? c->on_error : DEF_ON_ERROR;
}

void isr_conf_compress(const isr_dir_conf_t *c, isr_compress_conf_t *out)
{
    out->level[ISR_CODING_IDENTITY] = -1;
    out->level[ISR_CODING_GZIP] = c->zlevel[0] != UNSET
                                  ? c->zlevel[ISR_CODING_GZIP] : -1;
    out->level[ISR_CODING_BR] = c->zlevel[0] != UNSET
                                ? c->zlevel[ISR_CODING_BR] : -1;
    out->types = c->ztypes;
    out->min_size = c->zmin != UNSET ? (apr_size_t)c->zmin
                                     : ISR_COMPRESS_MIN_SIZE;
}

int isr_conf_refresh_threads(const isr_srv_conf_t *sc)
{
    return sc->refresh_threads != UNSET ? sc->refresh_threads : DEF_THREADS;
}

int isr_conf_zero_copy(const isr_srv_conf_t *sc)
{
    return sc->zero_copy == 1;
}

apr_size_t isr_conf_local_copies(const isr_srv_conf_t *sc)
{
    return (apr_size_t)(sc->local_copies != UNSET ? sc->local_copies
                                                  : DEF_LOCAL);
}

const apr_array_header_t *isr_conf_tag_headers(const isr_dir_conf_t *c)
{
    return c->tag_headers;
}

int isr_conf_refresh_ahead(const isr_dir_conf_t *c)
{
    return c->refresh_ahead != UNSET ? c->refresh_ahead : 0;
}

apr_interval_time_t isr_conf_fast_wait(const isr_dir_conf_t *c)
{
    return c->fast_wait != UNSET ? c->fast_wait : ISR_FAST_DEFAULT_WAIT;
}

/* ---- directive handlers ------------------------------------------------- */

static int in_location(cmd_parms *cmd)
{
    const ap_directive_t *parent = cmd->directive ? cmd->directive->parent
                                                  : NULL;
    /* <Location ~ re> and <LocationMatch> have no prefix to replace. */
    return cmd->path && parent && !strcasecmp(parent->directive, "<Location")
           && parent->args && parent->args[0] != '~';
}

static const char *check_http_url(cmd_parms *cmd, const char *url)
{
    apr_uri_t uri;

    if (apr_uri_parse(cmd->pool, url, &uri) != APR_SUCCESS || !uri.scheme
        || (strcasecmp(uri.scheme, "http") && strcasecmp(uri.scheme, "https"))
        || !uri.hostname || !*uri.hostname) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an http:, https: or "
                            "unix:/path.sock|http://host/ URL",
                            cmd->cmd->name, url);
    }
    return NULL;
}

/* The literal "scheme://authority" an expr= template starts with. A client
 * must never choose the host a request is sent to: the template's text up
 * to its first interpolation (%{...}, $N) or escape must name the scheme
 * and a host, and every evaluated URL must have exactly that authority
 * (checked per request in isr_request.c). */
static const char *expr_origin(cmd_parms *cmd, const char *tmpl,
                               const char **origin)
{
    apr_size_t lit = strcspn(tmpl, "%$\\"), alen;
    const char *auth = isr_ctx_authority(tmpl, tmpl + lit, &alen);
    const char *host;
    apr_uri_t uri;

    if (!auth || !alen
        || apr_uri_parse(cmd->pool, apr_pstrcat(cmd->pool, "http://",
                         apr_pstrmemdup(cmd->pool, auth, alen), "/", NULL),
                         &uri) != APR_SUCCESS
        || !(host = uri.hostname) || !*host) {
        return apr_psprintf(cmd->pool, "%s: 'expr=%s' must begin with a "
                            "literal http:// or https:// URL naming the host "
                            "(e.g. expr=http://127.0.0.1:3000/render?path="
                            "%%{isr_urlencode:%%{REQUEST_URI}}): a host taken "
                            "from the request would let clients choose what "
                            "the server fetches", cmd->cmd->name, tmpl);
    }
    *origin = apr_pstrmemdup(cmd->pool, tmpl, (auth + alen) - tmpl);
    return NULL;
}

static const char *set_backend(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    const char *err = NULL, *bar;

    c->backend_url = NULL;
    c->backend_expr = NULL;
    c->backend_origin = NULL;
    c->unix_path = NULL;
    if (!strncasecmp(arg, "expr=", 5)) {
        if ((err = expr_origin(cmd, arg + 5, &c->backend_origin))) {
            return err;
        }
        c->backend_expr = ap_expr_parse_cmd(cmd, arg + 5,
                                            AP_EXPR_FLAG_STRING_RESULT, &err,
                                            NULL);
        if (err) {
            return apr_psprintf(cmd->pool, "%s: cannot parse expression '%s': "
                                "%s", cmd->cmd->name, arg + 5, err);
        }
    }
    else if (!strncasecmp(arg, "unix:", 5)) {
        bar = strchr(arg, '|');
        if (!bar || arg[5] != '/' || bar == arg + 6) {
            return apr_psprintf(cmd->pool, "%s: '%s' must look like "
                                "unix:/path/to.sock|http://host/",
                                cmd->cmd->name, arg);
        }
        c->unix_path = apr_pstrmemdup(cmd->pool, arg + 5, bar - arg - 5);
        c->backend_url = bar + 1;
    }
    else {
        c->backend_url = arg;
    }
    if (c->backend_url && (err = check_http_url(cmd, c->backend_url))) {
        return apr_psprintf(cmd->pool, "%s", err);
    }
    c->prefix = in_location(cmd) ? cmd->path : NULL;
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t fi;

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
        || fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable file of "
                            "PEM certificates", cmd->cmd->name, arg);
    }
    ((isr_dir_conf_t *)dc)->ca_file = path;
    return NULL;
}

static const char *set_enabled(cmd_parms *cmd, void *dc, int flag)
{
    (void)cmd;
    ((isr_dir_conf_t *)dc)->enabled = flag;
    return NULL;
}

static const char *set_quick(cmd_parms *cmd, void *dc, int flag)
{
    (void)cmd;
    ((isr_dir_conf_t *)dc)->quick = flag;
    quick_used |= flag;
    return NULL;
}

static const char *set_cc_mode(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;

    if (!strcasecmp(arg, "Off")) {
        c->cc_mode = ISR_CC_OFF;
    }
    else if (!strcasecmp(arg, "On")) {
        c->cc_mode = ISR_CC_ON;
    }
    else if (!strcasecmp(arg, "Strict")) {
        c->cc_mode = ISR_CC_STRICT;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: '%s' is not Off, On or Strict",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_key(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    const char *err = NULL;

    c->key_expr = ap_expr_parse_cmd(cmd, arg, AP_EXPR_FLAG_STRING_RESULT, &err,
                                    NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse expression '%s': %s",
                            cmd->cmd->name, arg, err);
    }
    return NULL;
}

static int valid_name(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isalnum(*s) && *s != '_' && *s != '-' && *s != '.') {
            return 0;
        }
    }
    return 1;
}

/* persist=PATH and persist_every=DURATION of ISRCacheZone NAME SIZE. */
static const char *zone_option(cmd_parms *cmd, isr_zone_def_t *nd,
                               const char *arg, const char **every)
{
    const char *v;
    apr_interval_time_t t;

    if (!strncasecmp(arg, "persist=", 8)) {
        v = arg + 8;
        if (nd->persist) {
            return apr_psprintf(cmd->pool, "%s %s: persist= given twice "
                                "('%s')", cmd->cmd->name, nd->name, arg);
        }
        if (!*v || !(nd->persist = ap_server_root_relative(cmd->pool, v))) {
            return apr_psprintf(cmd->pool, "%s %s: '%s' is not a file path "
                                "(persist=/var/cache/isr/NAME.zone)",
                                cmd->cmd->name, nd->name, arg);
        }
        if (ap_is_directory(cmd->temp_pool, nd->persist)) {
            return apr_psprintf(cmd->pool, "%s %s: '%s' is a directory: name "
                                "a file in it (persist=%s/NAME.zone)",
                                cmd->cmd->name, nd->name, arg, nd->persist);
        }
        return NULL;
    }
    if (!strncasecmp(arg, "persist_every=", 14)) {
        v = arg + 14;
        if (*every) {
            return apr_psprintf(cmd->pool, "%s %s: persist_every= given twice "
                                "('%s')", cmd->cmd->name, nd->name, arg);
        }
        if (isr_parse_duration(v, &t) != APR_SUCCESS
            || (t != 0 && t < apr_time_from_sec(1))) {
            return apr_psprintf(cmd->pool, "%s %s: '%s' is not 0 (write only "
                                "at stop) or a duration of at least 1s (e.g. "
                                "30s, 10m, 1h)", cmd->cmd->name, nd->name,
                                arg);
        }
        nd->persist_every = t;
        *every = arg;
        return NULL;
    }
    if (!strncasecmp(arg, "redis=", 6)) {
        isr_tier_conf_t *tc = apr_pcalloc(cmd->pool, sizeof(*tc));
        apr_interval_time_t keep = nd->tier ? nd->tier->timeout : 0;

        if (nd->tier && nd->tier->host) {
            return apr_psprintf(cmd->pool, "%s %s: redis= given twice",
                                cmd->cmd->name, nd->name);
        }
        if ((v = isr_tier_parse_url(cmd->pool, arg + 6, tc))) {
            return apr_psprintf(cmd->pool, "%s %s: '%s' %s (redis://"
                                "[:PASSWORD@]HOST:PORT[/DB])", cmd->cmd->name,
                                nd->name, arg + 6, v);
        }
        if (keep) {
            tc->timeout = keep;
            tc->timeout_arg = nd->tier->timeout_arg;
        }
        nd->tier = tc;
        return NULL;
    }
    if (!strncasecmp(arg, "redis_timeout=", 14)) {
        if (isr_parse_duration(arg + 14, &t) != APR_SUCCESS
            || t < apr_time_from_msec(1) || t > apr_time_from_sec(10)) {
            return apr_psprintf(cmd->pool, "%s %s: '%s' is not a duration "
                                "from 1ms to 10s (e.g. 200ms)",
                                cmd->cmd->name, nd->name, arg);
        }
        if (!nd->tier) {
            nd->tier = apr_pcalloc(cmd->pool, sizeof(*nd->tier));
        }
        else if (nd->tier->timeout_arg) {
            return apr_psprintf(cmd->pool, "%s %s: redis_timeout= given twice",
                                cmd->cmd->name, nd->name);
        }
        nd->tier->timeout = t;
        nd->tier->timeout_arg = arg;
        return NULL;
    }
    return apr_psprintf(cmd->pool, "%s %s: unknown option '%s' (persist=PATH, "
                        "persist_every=DURATION, redis=URL, "
                        "redis_timeout=DURATION)", cmd->cmd->name, nd->name,
                        arg);
}

static const char *set_zone_def(cmd_parms *cmd, void *dc, int argc,
                                char *const argv[])
{
    isr_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &isr_module);
    isr_zone_def_t *d = (isr_zone_def_t *)sc->zones->elts, nd;
    const char *err, *name, *size, *every = NULL;
    apr_off_t n;
    int i;
    (void)dc;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY))) {
        return err;
    }
    if (argc < 2) {
        return apr_psprintf(cmd->pool, "%s: expects NAME SIZE [persist=PATH] "
                            "[persist_every=DURATION] [redis=URL] "
                            "[redis_timeout=DURATION]", cmd->cmd->name);
    }
    name = argv[0];
    size = argv[1];
    if (!valid_name(name)) {
        return apr_psprintf(cmd->pool, "%s: zone name '%s' may contain only "
                            "letters, digits, '_', '-' and '.'",
                            cmd->cmd->name, name);
    }
    if (isr_parse_size(size, &n) != APR_SUCCESS || n < ISR_ZONE_MIN_SIZE
        || n > MAX_ZONE) {
        return apr_psprintf(cmd->pool, "%s %s: '%s' is not a size from 1M to "
                            "64G (e.g. 64M, 1G)", cmd->cmd->name, name, size);
    }
    for (i = 0; i < sc->zones->nelts; i++) {
        if (!strcmp(d[i].name, name)) {
            return apr_psprintf(cmd->pool, "%s: zone '%s' is already defined "
                                "at %s", cmd->cmd->name, name, d[i].where);
        }
    }
    memset(&nd, 0, sizeof(nd));
    nd.name = name;
    nd.size = (apr_size_t)n;
    nd.where = where(cmd);
    for (i = 2; i < argc; i++) {
        if ((err = zone_option(cmd, &nd, argv[i], &every))) {
            return err;
        }
    }
    if (nd.tier && !nd.tier->host) {
        return apr_psprintf(cmd->pool, "%s %s: '%s' needs redis=URL",
                            cmd->cmd->name, name, nd.tier->timeout_arg);
    }
    if (every && !nd.persist) {
        return apr_psprintf(cmd->pool, "%s %s: '%s' needs persist=PATH",
                            cmd->cmd->name, name, every);
    }
    if (nd.persist) {
        if (!every) {
            nd.persist_every = ISR_ZONE_PERSIST_EVERY;
        }
        if (strlen(name) >= ISR_PERSIST_NAME) {
            return apr_psprintf(cmd->pool, "%s %s: a zone with persist= needs "
                                "a name of at most %d characters",
                                cmd->cmd->name, name, ISR_PERSIST_NAME - 1);
        }
        for (i = 0; i < sc->zones->nelts; i++) {
            if (d[i].persist && !strcmp(d[i].persist, nd.persist)) {
                return apr_psprintf(cmd->pool, "%s %s: persist file '%s' is "
                                    "already the file of zone %s (%s)",
                                    cmd->cmd->name, name, nd.persist,
                                    d[i].name, d[i].where);
            }
        }
    }
    *(isr_zone_def_t *)apr_array_push(sc->zones) = nd;
    return NULL;
}

static const char *set_zone_use(cmd_parms *cmd, void *dc, const char *name)
{
    zone_ref_t *ref;

    if (!valid_name(name)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a zone name",
                            cmd->cmd->name, name);
    }
    ((isr_dir_conf_t *)dc)->zone = name;
    if (!zone_refs) {
        zone_refs = apr_array_make(cmd->pool, 8, sizeof(zone_ref_t));
    }
    ref = apr_array_push(zone_refs);
    ref->name = name;
    ref->where = where(cmd);
    return NULL;
}

/* cmd->info: offset of the field; +1 marks directives that accept 0. */
static const char *set_duration(cmd_parms *cmd, void *dc, const char *arg)
{
    apr_size_t info = (apr_size_t)cmd->info;
    int zero_ok = (int)(info & 1);
    apr_interval_time_t t;
    apr_status_t rv = isr_parse_duration(arg, &t);

    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a duration%s "
                            "(e.g. 60, 1500ms, 30s, 5m, 1h; at most 10 years)",
                            cmd->cmd->name, arg, zero_ok ? "" : " above 0");
    }
    if (t == 0 && !zero_ok) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be greater than 0",
                            cmd->cmd->name, arg);
    }
    *(apr_interval_time_t *)((char *)dc + (info & ~(apr_size_t)1)) = t;
    return NULL;
}

static const char *set_max_object(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    max_ref_t *ref;
    apr_off_t n;

    if (isr_parse_size(arg, &n) != APR_SUCCESS || n < 1 || n > MAX_STORE) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size from 1 to 256M "
                            "(e.g. 512K, 1M)", cmd->cmd->name, arg);
    }
    c->max_object = n;
    if (!max_refs) {
        max_refs = apr_array_make(cmd->pool, 8, sizeof(max_ref_t));
    }
    ref = apr_array_push(max_refs);
    ref->conf = c;
    ref->where = where(cmd);
    return NULL;
}

/* Client request headers that may be forwarded: not hop-by-hop ones, not
 * the framing, and not those mod_isr sets itself. */
static int forwardable(const char *name)
{
    static const char *const never[] = {
        "Host", "Connection", "Keep-Alive", "TE", "Trailer", "Trailers",
        "Transfer-Encoding", "Upgrade", "Content-Length", "Expect",
        "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Server",
        "User-Agent", NULL
    };
    int i;

    if (!isr_http_is_token(name)) {
        return 0;
    }
    for (i = 0; never[i]; i++) {
        if (!strcasecmp(name, never[i])) {
            return 0;
        }
    }
    return strncasecmp(name, "Proxy-", 6) != 0;
}

/* ISRTagHeader NAME... | None: None alone. A scope's names replace the
 * enclosing scope's (several directives in one scope add up). */
static const char *set_tag_header(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    const char *p;
    int none = !strcasecmp(arg, "None");

    if (!c->tag_headers) {
        c->tag_headers = apr_array_make(cmd->pool, 2, sizeof(const char *));
        c->tag_none = 0;
    }
    if (none ? c->tag_headers->nelts > 0 : c->tag_none) {
        return apr_psprintf(cmd->pool, "%s: None cannot be combined with "
                            "header names ('%s')", cmd->cmd->name, arg);
    }
    if (none) {
        c->tag_none = 1;
        return NULL;
    }
    for (p = arg; *p && (apr_isalnum(*p) || strchr("!#$%&'*+-.^_`|~", *p));
         p++) {
    }
    if (*p || !*arg) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a header name",
                            cmd->cmd->name, arg);
    }
    APR_ARRAY_PUSH(c->tag_headers, const char *) = arg;
    return NULL;
}

static const char *set_forward(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    int i;

    if (!forwardable(arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' cannot be forwarded (not a "
                            "header name, hop-by-hop, or set by mod_isr "
                            "itself)", cmd->cmd->name, arg);
    }
    if (!c->forward) {
        c->forward = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    for (i = 0; i < c->forward->nelts; i++) {
        if (!strcasecmp(APR_ARRAY_IDX(c->forward, i, const char *), arg)) {
            return NULL;
        }
    }
    APR_ARRAY_PUSH(c->forward, const char *) = arg;
    return NULL;
}

static const char *set_cache_status(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    long n;

    if (!isr_parse_long(arg, 200, 599, &n) || n == 206 || n == 304
        || (n >= 500 && n != 501)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a status that may be "
                            "stored (200-499 but 206 and 304, or 501; other "
                            "5xx are failures)", cmd->cmd->name, arg);
    }
    if (!c->cache_status) {
        c->cache_status = apr_pcalloc(cmd->pool, sizeof(*c->cache_status));
    }
    isr_http_status_add(c->cache_status, (int)n);
    return NULL;
}

static const char *set_apply(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;

    if (!strcasecmp(arg, "response")) {
        c->apply = ISR_APPLY_RESPONSE;
        c->apply_name = NULL;
    }
    else if (!strncasecmp(arg, "env=", 4) && valid_name(arg + 4)) {
        c->apply = ISR_APPLY_ENV;
        c->apply_name = arg + 4;
    }
    else if (!strncasecmp(arg, "header=", 7) && valid_name(arg + 7)) {
        c->apply = ISR_APPLY_HEADER;
        c->apply_name = arg + 7;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: '%s' is not one of response, "
                            "env=NAME, header=NAME", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_on_error(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    long n;

    if (!strcasecmp(arg, "pass")) {
        c->on_error = ISR_ONERROR_PASS;
        return NULL;
    }
    if (!isr_parse_long(arg, 400, 599, &n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is neither an HTTP status "
                            "from 400 to 599 nor 'pass'", cmd->cmd->name, arg);
    }
    c->on_error = (int)n;
    return NULL;
}

static const char *set_threads(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &isr_module);
    const char *err;
    long n;
    (void)dc;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY))) {
        return err;
    }
    if (!isr_parse_long(arg, 1, 256, &n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of threads "
                            "from 1 to 256", cmd->cmd->name, arg);
    }
    sc->refresh_threads = (int)n;
    return NULL;
}

static const char *set_zero_copy(cmd_parms *cmd, void *dc, int flag)
{
    isr_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &isr_module);
    const char *err;
    (void)dc;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY))) {
        return err;
    }
    sc->zero_copy = flag;
    return NULL;
}

static const char *set_local_copies(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &isr_module);
    const char *err;
    apr_off_t n;
    (void)dc;

    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY))) {
        return err;
    }
    if (isr_parse_size(arg, &n) != APR_SUCCESS || n > MAX_OBJECT) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size from 0 to 1G "
                            "(e.g. 0, 32M)", cmd->cmd->name, arg);
    }
    sc->local_copies = n;
    return NULL;
}

/* ISRRefreshAhead Off | N% (1 to 90) */
static const char *set_refresh_ahead(cmd_parms *cmd, void *dc,
                                     const char *arg)
{
    isr_dir_conf_t *c = dc;
    apr_size_t n = strlen(arg);
    char *end;
    long v;

    if (!strcasecmp(arg, "Off")) {
        c->refresh_ahead = 0;
        return NULL;
    }
    v = n > 1 && arg[n - 1] == '%' && apr_isdigit(*arg)
        ? strtol(arg, &end, 10) : -1;
    if (v < 1 || v > 90 || end != arg + n - 1) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not Off or a percentage "
                            "of the fresh time from 1%% to 90%% (e.g. 10%%)",
                            cmd->cmd->name, arg);
    }
    c->refresh_ahead = (int)v;
    return NULL;
}

/* ISRFastPath On | Off | WAIT (WAIT in us, ms or s, at most 100ms) */
static const char *set_fast_path(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    apr_interval_time_t t;
    apr_size_t n = strlen(arg);
    char *end;

    if (!strcasecmp(arg, "Off")) {
        c->fast_wait = 0;
        return NULL;
    }
    if (!strcasecmp(arg, "On")) {
        c->fast_wait = ISR_FAST_DEFAULT_WAIT;
        return NULL;
    }
    if (n > 2 && !strcasecmp(arg + n - 2, "us") && apr_isdigit(*arg)) {
        t = apr_strtoi64(arg, &end, 10);
        if (end != arg + n - 2) {
            t = -1;
        }
    }
    else if (isr_parse_duration(arg, &t) != APR_SUCCESS) {
        t = -1;
    }
    if (t <= 0 || t > ISR_FAST_MAX_WAIT) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not On, Off or a wait "
                            "from 1us to 100ms (e.g. 500us, 2ms)",
                            cmd->cmd->name, arg);
    }
    c->fast_wait = t;
    return NULL;
}

/* ISRCompress Off | CODING[=LEVEL] ... */
static const char *set_compress(cmd_parms *cmd, void *dc, const char *args)
{
    static const int max[ISR_CODINGS] = { 0, 9, 11 };
    static const int def[ISR_CODINGS] = { 0, ISR_COMPRESS_GZIP_LEVEL,
                                          ISR_COMPRESS_BR_LEVEL };
    isr_dir_conf_t *c = dc;
    int level[ISR_CODINGS] = { 0, -1, -1 }, off = 0, n = 0, k;
    const char *word, *eq, *name;
    long l;

    while (*(word = ap_getword_conf(cmd->temp_pool, &args))) {
        n++;
        if (!strcasecmp(word, "Off")) {
            off = 1;
            continue;
        }
        eq = strchr(word, '=');
        name = eq ? apr_pstrmemdup(cmd->temp_pool, word, eq - word) : word;
        k = !strcasecmp(name, "gzip") ? ISR_CODING_GZIP
            : !strcasecmp(name, "br") ? ISR_CODING_BR : -1;
        if (k < 0) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not a coding mod_isr "
                                "makes (gzip or br, each with an optional "
                                "=LEVEL), nor Off", cmd->cmd->name, word);
        }
        if (eq && !isr_parse_long(eq + 1, k == ISR_CODING_GZIP ? 1 : 0,
                                  max[k], &l)) {
            return apr_psprintf(cmd->pool, "%s: '%s': the %s level must be "
                                "a number from %d to %d", cmd->cmd->name,
                                word, isr_compress_name(k),
                                k == ISR_CODING_GZIP ? 1 : 0, max[k]);
        }
        level[k] = eq ? (int)l : def[k];
    }
    if (!n || (off && n > 1)) {
        return apr_psprintf(cmd->pool, "%s: give Off alone, or one or more "
                            "of gzip[=1-9] and br[=0-11]", cmd->cmd->name);
    }
    memcpy(c->zlevel, level, sizeof(level));
    return NULL;
}

/* A media type ("text/html") or a wildcard for a top-level type
 * ("text/" "*"), each part a token. */
static const char *set_compress_types(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    isr_dir_conf_t *c = dc;
    const char *slash = strchr(arg, '/');
    char *t;

    if (!slash || slash == arg || (slash - arg == 1 && *arg == '*')
        || !isr_http_is_token(apr_pstrmemdup(cmd->temp_pool, arg,
                                             slash - arg))
        || !(strcmp(slash + 1, "*") == 0 || isr_http_is_token(slash + 1))) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a media type (e.g. "
                            "text/html, application/json, text/*; not */*: "
                            "images and archives do not shrink)",
                            cmd->cmd->name, arg);
    }
    t = apr_pstrdup(cmd->pool, arg);
    ap_str_tolower(t);
    if (!c->ztypes) {
        c->ztypes = apr_array_make(cmd->pool, 8, sizeof(const char *));
    }
    APR_ARRAY_PUSH(c->ztypes, const char *) = t;
    return NULL;
}

static const char *set_compress_min(cmd_parms *cmd, void *dc, const char *arg)
{
    isr_dir_conf_t *c = dc;
    apr_off_t n;

    if (isr_parse_size(arg, &n) != APR_SUCCESS || n < 0 || n > MAX_STORE) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size from 0 to 256M "
                            "(e.g. 256, 1K)", cmd->cmd->name, arg);
    }
    c->zmin = n;
    return NULL;
}

#define DUR(field, zero_ok) \
    (void *)(APR_OFFSETOF(isr_dir_conf_t, field) + (zero_ok))
#define DIRCONF (ACCESS_CONF | RSRC_CONF)

const command_rec isr_cmds[] = {
    AP_INIT_TAKE1("ISRBackend", set_backend, NULL, DIRCONF,
                  "backend base URL (http:, https:, unix:/sock|http://h/) or "
                  "\"expr=<string expression>\"; enables mod_isr here"),
    AP_INIT_TAKE1("ISRBackendCA", set_ca_file, NULL, DIRCONF,
                  "PEM file of CA certificates that https: backends are "
                  "verified against (default: the system's)"),
    AP_INIT_FLAG("ISR", set_enabled, NULL, DIRCONF,
                 "On|Off: Off disables mod_isr in this scope"),
    AP_INIT_TAKE1("ISRRefreshAhead", set_refresh_ahead, NULL, DIRCONF,
                  "Off, or N%: a hit in the last N% of an entry's fresh time "
                  "starts its background refresh"),
    AP_INIT_TAKE1("ISRFastPath", set_fast_path, NULL, DIRCONF,
                  "On|Off|WAIT: under the event MPM, after a cached answer "
                  "look for the client's next request on the same worker "
                  "for up to WAIT (default On: 1ms)"),
    AP_INIT_FLAG("ISRQuickHandler", set_quick, NULL, DIRCONF,
                 "On|Off: answer fresh and stale hits before access control "
                 "and the rest of request processing (default Off)"),
    AP_INIT_TAKE1("ISRCacheKey", set_key, NULL, DIRCONF,
                  "string expression for the cache key (default: backend URL)"),
    AP_INIT_TAKE_ARGV("ISRCacheZone", set_zone_def, NULL, RSRC_CONF,
                      "NAME SIZE [persist=PATH] [persist_every=DURATION] "
                      "[redis=URL] [redis_timeout=DURATION]: define a "
                      "shared-memory cache zone, optionally kept in a file "
                      "across stops and shared with other servers through "
                      "Redis"),
    AP_INIT_TAKE1("ISRCache", set_zone_use, NULL, DIRCONF,
                  "the zone (ISRCacheZone NAME) this scope uses"),
    AP_INIT_TAKE1("ISRCacheTTL", set_duration, DUR(ttl, 0), DIRCONF,
                  "how long an entry is fresh (default 60s)"),
    AP_INIT_TAKE1("ISRStaleTTL", set_duration, DUR(stale_ttl, 1), DIRCONF,
                  "how long after expiry an entry is served stale (default 1h)"),
    AP_INIT_TAKE1("ISRTimeout", set_duration, DUR(timeout, 0), DIRCONF,
                  "total time a backend fetch may take (default 10s)"),
    AP_INIT_TAKE1("ISRConnectTimeout", set_duration, DUR(connect_timeout, 0),
                  DIRCONF, "time to connect to the backend (default 3s)"),
    AP_INIT_TAKE1("ISRRefreshRetry", set_duration, DUR(retry, 0), DIRCONF,
                  "delay before retrying a failed refresh (default 10s)"),
    AP_INIT_TAKE1("ISRErrorTTL", set_duration, DUR(error_ttl, 1), DIRCONF,
                  "how long a failed fetch of a key is remembered: requests "
                  "meanwhile get the error (or stale-if-error) without "
                  "asking the backend (default 1s)"),
    AP_INIT_TAKE1("ISRCacheControl", set_cc_mode, NULL, DIRCONF,
                  "Off|On|Strict: whether the backend's Cache-Control, "
                  "Expires and validators decide freshness (default On)"),
    AP_INIT_TAKE1("ISRMaxObjectSize", set_max_object, NULL, DIRCONF,
                  "larger responses are served but not stored (default 1M, "
                  "at most 256M)"),
    AP_INIT_TAKE1("ISRRelayTimeout", set_duration, DUR(relay_timeout, 0),
                  DIRCONF, "total time a body too large to store may take "
                  "to relay (default 5m)"),
    AP_INIT_ITERATE("ISRTagHeader", set_tag_header, NULL, DIRCONF,
                    "response headers whose values tag an entry for purges "
                    "by tag (default Surrogate-Key Cache-Tag), or None"),
    AP_INIT_ITERATE("ISRForwardHeader", set_forward, NULL, DIRCONF,
                    "client request headers sent to the backend; each is "
                    "part of the cache key"),
    AP_INIT_ITERATE("ISRCacheStatus", set_cache_status, NULL, DIRCONF,
                    "statuses stored without explicit freshness (default "
                    "200 203 204 300 301 308 404 405 410 414 501)"),
    AP_INIT_TAKE1("ISRApply", set_apply, NULL, DIRCONF,
                  "response | env=NAME | header=NAME (default response)"),
    AP_INIT_TAKE1("ISROnError", set_on_error, NULL, DIRCONF,
                  "status (400-599) or 'pass' after a failed fetch (default 502)"),
    AP_INIT_RAW_ARGS("ISRCompress", set_compress, NULL, DIRCONF,
                     "Off | gzip[=1-9] br[=0-11]: compress stored answers "
                     "once, when stored (default levels gzip 9, br 10)"),
    AP_INIT_ITERATE("ISRCompressTypes", set_compress_types, NULL, DIRCONF,
                    "media types ISRCompress compresses (default text/* "
                    "application/json application/javascript "
                    "application/xml image/svg+xml)"),
    AP_INIT_TAKE1("ISRCompressMinSize", set_compress_min, NULL, DIRCONF,
                  "smaller bodies are stored identity only (default 256)"),
    AP_INIT_TAKE1("ISRRefreshThreads", set_threads, NULL, RSRC_CONF,
                  "background refresh threads per child (default 4)"),
    AP_INIT_FLAG("ISRZeroCopy", set_zero_copy, NULL, RSRC_CONF,
                  "On|Off: keep large per-child copies in memfds and send "
                  "their bodies with sendfile (with EnableSendfile On; "
                  "default Off)"),
    AP_INIT_TAKE1("ISRLocalCopySize", set_local_copies, NULL, RSRC_CONF,
                  "memory per child for shared copies of large entries, "
                  "sent without a copy per hit (default 32M; 0: off)"),
    { NULL }
};

/* ---- lifecycle ---------------------------------------------------------- */

void isr_conf_pre_config(void)
{
    zone_refs = NULL;
    max_refs = NULL;
    quick_used = 0;
}

const char *isr_conf_check(apr_pool_t *p, server_rec *s)
{
    isr_srv_conf_t *sc = ap_get_module_config(s->module_config, &isr_module);
    const zone_ref_t *ref;
    isr_zone_def_t *d;
    int i, j, known;

    d = (isr_zone_def_t *)sc->zones->elts;
    for (j = 0, known = 0; j < sc->zones->nelts; j++) {
        known |= !strcmp(d[j].name, ISR_ZONE_DEFAULT);
    }
    if (!known) {
        d = apr_array_push(sc->zones);
        d->name = ISR_ZONE_DEFAULT;
        d->size = ISR_ZONE_DEFAULT_SIZE;
        d->where = "built in";
        d->persist = NULL;
        d->persist_every = 0;
        d->tier = NULL;
    }
    d = (isr_zone_def_t *)sc->zones->elts;
    for (i = 0; zone_refs && i < zone_refs->nelts; i++) {
        ref = &APR_ARRAY_IDX(zone_refs, i, zone_ref_t);
        for (j = 0, known = 0; j < sc->zones->nelts; j++) {
            known |= !strcmp(d[j].name, ref->name);
        }
        if (!known) {
            return apr_psprintf(p, "ISRCache %s (%s): no ISRCacheZone of that "
                                "name is defined", ref->name, ref->where);
        }
    }
    return NULL;
}

void isr_conf_check_zones(server_rec *s)
{
    const max_ref_t *ref;
    isr_zone_t *zone;
    apr_size_t most;
    int i;

    for (i = 0; max_refs && i < max_refs->nelts; i++) {
        ref = &APR_ARRAY_IDX(max_refs, i, max_ref_t);
        /* The zone named in the same section; an inherited one is not
         * known here, and the request path relays what cannot be stored
         * whatever the zone. */
        zone = isr_zone_get(isr_conf_zone(ref->conf));
        if (!zone) {
            continue;
        }
        most = isr_zone_max_body(zone, 0);
        if ((apr_size_t)ref->conf->max_object > most) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, ISR_LOGNO(0040)
                         "ISRMaxObjectSize %" APR_OFF_T_FMT " (%s) is more "
                         "than zone %s can store (%" APR_SIZE_T_FMT " bytes "
                         "of body): larger answers are relayed, not stored",
                         ref->conf->max_object, ref->where,
                         isr_conf_zone(ref->conf), most);
        }
    }
}

/* %{isr_urlencode:...}: a value spliced into a query string stays one
 * value (ap_expr's own escape leaves & = + ; alone). */
static const char *expr_urlencode(ap_expr_eval_ctx_t *ctx, const void *data,
                                  const char *arg)
{
    (void)data;
    return isr_ctx_urlencode(ctx->p, arg ? arg : "");
}

int isr_conf_expr_lookup(ap_expr_lookup_parms *parms)
{
    if (parms->type == AP_EXPR_FUNC_STRING
        && !strcasecmp(parms->name, "isr_urlencode")) {
        *parms->func = expr_urlencode;
        *parms->data = parms->name;
        return OK;
    }
    return DECLINED;
}
