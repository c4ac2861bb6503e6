/*
 * mod_null - the ceiling for the mod_isr benchmark.
 *
 * Answers every GET/HEAD request below a scope that has `NullSize N` with a constant body of
 * N bytes kept in memory (built once at configuration time and sent as an immortal bucket,
 * no copy), from the normal handler phase (ap_hook_handler), i.e. after httpd has mapped the
 * request (translate_name, map_to_storage with its directory walk, access control, fixups).
 * No handler inside httpd can answer faster, so isr/null is the share of the limit reached.
 *
 *   LoadModule null_module bench/.build/mod_null.so
 *   <Location /n/1024/>
 *       NullSize 1024
 *   </Location>
 *
 * Build: apxs -c -o bench/.build/mod_null.so bench/mod_null.c
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_buckets.h"
#include "apr_strings.h"

module AP_MODULE_DECLARE_DATA null_module;

typedef struct {
    apr_off_t size;   /* -1: not set here */
    char *body;
} null_dir_conf;

static void *null_create_dir(apr_pool_t *p, char *dir)
{
    null_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->size = -1;
    return c;
}

static void *null_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    null_dir_conf *base = basev, *add = addv;
    null_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    *c = add->size >= 0 ? *add : *base;
    return c;
}

static const char *set_null_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    null_dir_conf *c = dconf;
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (*end || n < 0 || n > (apr_int64_t)64 * 1024 * 1024)
        return apr_psprintf(cmd->pool, "NullSize: '%s' is not a size between 0 and 67108864", arg);
    c->size = (apr_off_t)n;
    c->body = apr_palloc(cmd->pool, (apr_size_t)n + 1);
    for (apr_int64_t i = 0; i < n; i++)
        c->body[i] = (char)('a' + (i % 26));
    if (n > 0)
        c->body[n - 1] = '\n';
    return NULL;
}

static int null_handler(request_rec *r)
{
    null_dir_conf *c = ap_get_module_config(r->per_dir_config, &null_module);
    if (!c || c->size < 0)
        return DECLINED;
    if (r->method_number != M_GET)
        return DECLINED;

    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, c->size);
    if (r->header_only)
        return OK;

    conn_rec *cn = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, cn->bucket_alloc);
    if (c->size > 0)
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(c->body, (apr_size_t)c->size,
                                                                cn->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(cn->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

static void null_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(null_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

static const command_rec null_cmds[] = {
    AP_INIT_TAKE1("NullSize", set_null_size, NULL, OR_ALL,
                  "answer every GET/HEAD here with a constant body of this many bytes"),
    { NULL, { NULL }, NULL, 0, 0, NULL }
};

AP_DECLARE_MODULE(null) = {
    STANDARD20_MODULE_STUFF,
    null_create_dir,
    null_merge_dir,
    NULL,
    NULL,
    null_cmds,
    null_register_hooks,
    AP_MODULE_FLAG_NONE
};
