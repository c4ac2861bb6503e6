/* The operator's API: `SetHandler isr-admin` (protect it with Require).
 *
 *   POST <admin>/purge       one selector: url= key= prefix= tag= all=1
 *   POST <admin>/revalidate  the same; matching entries become stale (soft)
 *   POST <admin>/warm        URLs (a text body, one a line, or url=) fetched
 *                            in the background
 *   GET  <admin>/status      per-zone counters as JSON (isr_report.c)
 *   GET  <admin>/metrics     the same in Prometheus text format
 *   GET  <admin>/entries     a bounded listing: prefix= state= limit= zone=
 *   GET  <admin>/            the live status page (isr_page.c)
 *
 * plus zone= to limit the operation to one zone. Parameters come from an
 * application/x-www-form-urlencoded body or the query string. Answers are
 * JSON. Operations go through the purge table (isr_purge.h): O(hashes
 * named), never a walk of the zone. */
#include "isr.h"
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_vhost.h>
#include <util_script.h>

#include "isr_admin.h"
#include "isr_forward.h"
#include "isr_proxy.h"
#include "isr_page.h"
#include "isr_purge.h"
#include "isr_report.h"
#include "isr_request.h"
#include "isr_tier.h"
#include "isr_zone.h"

#define ADMIN_BODY_MAX (64 * 1024)
#define ADMIN_TAGS_MAX 256      /* tags one operation may name */
#define ENTRIES_DEFAULT 100     /* entries listed without limit= */
#define ENTRIES_MAX 10000
#define WARM_MAX 1000           /* URLs one warm may name */

typedef struct {
    request_rec *r;
    const char *op;             /* "purge" or "revalidate" */
    int hard;
    const char *kind;           /* the selector's name */
    const char *value;          /* url, key, prefix: its value */
    apr_size_t vlen;
    apr_array_header_t *tags;   /* tag: the tags named */
    const char *zone;           /* zone=, or NULL: every zone */
    apr_array_header_t *out;    /* JSON objects, one per zone */
} admin_op_t;

/* ---- JSON --------------------------------------------------------------- */

static int answer(request_rec *r, int status, const char *json)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rputs(json, r);
    ap_rputs("\n", r);
    return OK;
}

static int fail(request_rec *r, int status, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, ISR_LOGNO(0055)
                  "isr-admin %s %s: %d, %s", r->method,
                  ap_escape_logitem(r->pool, r->uri), status,
                  ap_escape_logitem(r->pool, why));
    return answer(r, status, apr_psprintf(r->pool, "{\"error\":%s}",
                                          isr_report_json_str(r->pool, why,
                                                   strlen(why))));
}

/* ---- the request -------------------------------------------------------- */

/* A Host a browser page cannot have been given by DNS rebinding: an IP
 * literal, localhost, or a name of the virtual host that answers. */
static int host_trusted(request_rec *r)
{
    const char *h = r->hostname;
    apr_port_t port = r->parsed_uri.port ? r->parsed_uri.port
                                         : ap_get_server_port(r);

    if (!h) {
        return 0;
    }
    return apr_isdigit(*h) || *h == '[' || strchr(h, ':')
           || !strcasecmp(h, "localhost")
           || ap_matches_request_vhost(r, h, port);
}

/* The authority of an Origin value ("scheme://host[:port]"), or NULL. */
static const char *origin_authority(const char *origin)
{
    const char *a = strstr(origin, "://");

    return a && a[3] && !strchr(a + 3, '/') ? a + 3 : NULL;
}

/* A browser page of another site must not drive the API with the
 * operator's credentials (CSRF): fetch metadata or an Origin that is not
 * this site's refuses it, and so does a Host that is not this site's (a
 * page whose name was rebound to this server's address sends its own
 * name). curl sends neither header. */
static int cross_site(request_rec *r)
{
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *auth;

    if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none")) {
        return 1;
    }
    if ((site || origin) && !host_trusted(r)) {
        return 1;
    }
    if (origin) {
        /* The scheme is not compared: behind a TLS terminator the page's
         * is https and ours http. */
        auth = origin_authority(origin);
        return !auth || !host || strcasecmp(auth, host);
    }
    return 0;
}

static const char *brigade_str(request_rec *r, apr_bucket_brigade *bb,
                               apr_size_t *len)
{
    apr_off_t l = 0;
    char *buf;

    apr_brigade_length(bb, 1, &l);
    buf = apr_palloc(r->pool, (apr_size_t)l + 1);
    *len = (apr_size_t)l;
    apr_brigade_flatten(bb, buf, len);
    buf[*len] = '\0';
    return buf;
}

/* One parameter: a selector, zone=, or an error message. */
static const char *param(admin_op_t *op, const char *name, const char *v,
                         apr_size_t vl)
{
    static const char *const selectors[] = {
        "url", "key", "prefix", "tag", "all", NULL
    };
    int i, overflow;

    if (!strcmp(name, "zone")) {
        if (op->zone) {
            return "zone= given twice";
        }
        op->zone = apr_pstrmemdup(op->r->pool, v, vl);
        return NULL;
    }
    for (i = 0; selectors[i] && strcmp(name, selectors[i]); i++) {
    }
    if (!selectors[i]) {
        return apr_psprintf(op->r->pool, "unknown parameter '%s'", name);
    }
    if (op->kind && (strcmp(op->kind, name) || strcmp(name, "tag"))) {
        return "exactly one selector (url=, key=, prefix=, tag= or all=1)";
    }
    op->kind = selectors[i];
    if (!strcmp(name, "tag")) {
        apr_array_header_t *t = isr_purge_split_tags(op->r->pool, v, vl,
                                                     ADMIN_TAGS_MAX,
                                                     &overflow);
        if (overflow) {
            return apr_psprintf(op->r->pool, "more than %d tags, or a tag "
                                "longer than %d bytes", ADMIN_TAGS_MAX,
                                ISR_PURGE_MAX_TAGLEN);
        }
        if (!op->tags) {
            op->tags = t;
        }
        else {
            apr_array_cat(op->tags, t);
        }
        if (op->tags->nelts > ADMIN_TAGS_MAX) {
            return apr_psprintf(op->r->pool, "more than %d tags",
                                ADMIN_TAGS_MAX);
        }
        return op->tags->nelts ? NULL : "tag= names no tag";
    }
    if (!strcmp(name, "all")) {
        return vl == 1 && v[0] == '1' ? NULL : "all= takes 1";
    }
    if (!vl || (strcmp(name, "key") && v[0] != '/')) {
        return apr_psprintf(op->r->pool, "%s= takes %s", name,
                            strcmp(name, "key") ? "a path starting with /"
                                                : "a key");
    }
    op->value = v;
    op->vlen = vl;
    return NULL;
}

/* Decode a query string part in place as a form body is decoded ('+' is a
 * space, %XX a byte, %00 included: keys hold NUL bytes); its length. */
static apr_size_t form_decode(char *s)
{
    char *start = s, *w = s;

    while (*s) {
        if (s[0] == '%' && apr_isxdigit(s[1]) && apr_isxdigit(s[2])) {
            char h[3];

            h[0] = s[1];
            h[1] = s[2];
            h[2] = '\0';
            *w++ = (char)strtol(h, NULL, 16);
            s += 3;
        }
        else {
            *w++ = *s == '+' ? ' ' : *s;
            s++;
        }
    }
    return (apr_size_t)(w - start);
}

static const char *read_params(admin_op_t *op)
{
    request_rec *r = op->r;
    apr_array_header_t *pairs = NULL;
    const char *ct = apr_table_get(r->headers_in, "Content-Type"), *err;
    apr_size_t vl;
    const char *v;
    int i;

    if (r->args) {
        char *a = apr_pstrdup(r->pool, r->args), *tok, *last, *eq;
        apr_size_t nl;

        pairs = apr_array_make(r->pool, 4, sizeof(ap_form_pair_t));
        for (tok = apr_strtok(a, "&", &last); tok;
             tok = apr_strtok(NULL, "&", &last)) {
            ap_form_pair_t *f = apr_array_push(pairs);

            if ((eq = strchr(tok, '='))) {
                *eq++ = '\0';
            }
            nl = form_decode(tok);
            f->name = apr_pstrmemdup(r->pool, tok, nl);
            f->value = apr_brigade_create(r->pool,
                                          r->connection->bucket_alloc);
            if (eq) {
                apr_brigade_write(f->value, NULL, NULL, eq, form_decode(eq));
            }
        }
    }
    if (r->method_number == M_POST && ct
        && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)
        && (ct[33] == '\0' || ct[33] == ';' || ct[33] == ' ')) {
        apr_array_header_t *fp = NULL;

        if (ap_parse_form_data(r, NULL, &fp, 64, ADMIN_BODY_MAX) != OK) {
            return "the form body could not be read (at most 64 "
                   "parameters and 64 KiB)";
        }
        if (pairs && fp) {
            apr_array_cat(pairs, fp);
        }
        else if (fp) {
            pairs = fp;
        }
    }
    else if (ap_discard_request_body(r) != OK) {
        return "the request body could not be read";
    }
    for (i = 0; pairs && i < pairs->nelts; i++) {
        ap_form_pair_t *f = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);

        v = brigade_str(r, f->value, &vl);
        if ((err = param(op, f->name, v, vl))) {
            return err;
        }
    }
    return op->kind ? NULL
                    : "a selector is needed: url=, key=, prefix=, tag= or "
                      "all=1";
}

/* ---- operations --------------------------------------------------------- */

/* An operation for every server (the second tier, isr_tier.h), made before
 * it is applied here: until then this zone still has what it matches, so
 * no request here can take the old answer back from Redis. Its cluster
 * sequence for the answer, or that the other servers did not get it (then
 * nothing fetched before now is taken from Redis by this server). */
static const char *cluster(admin_op_t *op, isr_zone_t *z, char kind,
                           const apr_array_header_t *vals)
{
    apr_uint64_t cseq;

    if (!isr_tier_on(z)) {
        return "";
    }
    if ((cseq = isr_tier_op(z, op->hard, kind, vals, op->r->pool))) {
        return apr_psprintf(op->r->pool, ",\"cluster_seq\":%"
                            APR_UINT64_T_FMT, cseq);
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, op->r, ISR_LOGNO(0078)
                  "isr-admin: %s by %s in zone %s for this server only: "
                  "Redis did not take it", op->op, op->kind, z->name);
    return ",\"cluster\":\"not sent: Redis did not answer\"";
}

static void zone_done(admin_op_t *op, isr_zone_t *z, apr_status_t rv,
                      apr_uint64_t seq, long matched, apr_uint64_t ev_before,
                      const char *cl)
{
    apr_pool_t *p = op->r->pool;
    const char *o;

    if (rv != APR_SUCCESS) {
        o = apr_psprintf(p, "{\"zone\":%s,\"error\":\"the zone's lock could "
                         "not be taken\"}", isr_report_json_str(p, z->name,
                                                     strlen(z->name)));
    }
    else {
        o = apr_psprintf(p, "{\"zone\":%s,\"seq\":%" APR_UINT64_T_FMT ",%s%s}",
                         isr_report_json_str(p, z->name, strlen(z->name)), seq,
                         matched < 0 ? "\"lazy\":true"
                         : apr_psprintf(p, "\"matched\":%ld", matched),
                         cl);
    }
    APR_ARRAY_PUSH(op->out, const char *) = o;
    if (z->purge->evictions != ev_before) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, op->r, ISR_LOGNO(0057)
                      "isr-admin: the purge table of zone %s is full: %"
                      APR_UINT64_T_FMT " operations given up so far, so "
                      "entries older than them that share their table "
                      "buckets are purged too (a larger zone has a larger "
                      "table)", z->name, z->purge->evictions);
    }
    if (rv == APR_SUCCESS) {
        isr_zone_persist_soon(z, op->r->server);
    }
    ap_log_rerror(APLOG_MARK, rv == APR_SUCCESS ? APLOG_INFO : APLOG_ERR, rv,
                  op->r, ISR_LOGNO(0056) "isr-admin: %s by %s in zone %s: "
                  "operation %" APR_UINT64_T_FMT "%s", op->op, op->kind,
                  z->name, seq, rv == APR_SUCCESS ? "" : " failed");
}

static void val_push(apr_array_header_t *vals, const char *v, apr_size_t len)
{
    isr_purge_val_t *pv = apr_array_push(vals);

    pv->v = v;
    pv->len = len;
}

/* 1 when the key holds an answer now. */
static long stored(request_rec *r, isr_zone_t *z, const char *key,
                   apr_size_t klen, apr_uint64_t hash)
{
    isr_entry_t e;
    isr_look_t st = isr_store_lookup(z, key, klen, hash, apr_time_now(),
                                     r->pool, &e);

    return st == ISR_LOOK_FRESH || st == ISR_LOOK_STALE;
}

/* The request for url a client's GET would be, prepared (*prr, *pq), or
 * why not. *prr is to be destroyed once done with *pq (its pool holds the
 * key). `plain`: without the operator's credentials and cookies, which are
 * not the clients' (a warm stores what a client gets). */
static const char *url_req(request_rec *r, const char *url, apr_size_t len,
                           int plain, request_rec **prr, isr_req_t **pq)
{
    apr_table_t *headers = r->headers_in;
    request_rec *rr;
    const isr_dir_conf_t *c;
    isr_req_t *q;

    if (strlen(url) != len || *url != '/' || strchr(url, '#')
        || !isr_forward_value_ok(url)) {
        return "takes a path and query";
    }
    if (plain) {
        /* Before the subrequest copies them: its access checks judge a
         * client without credentials too. */
        r->headers_in = apr_table_copy(r->pool, headers);
        apr_table_unset(r->headers_in, "Authorization");
        apr_table_unset(r->headers_in, "Proxy-Authorization");
        apr_table_unset(r->headers_in, "Cookie");
    }
    apr_table_setn(r->notes, ISR_PROXY_NOTE_LOOKUP, "1");
    rr = ap_sub_req_method_uri("GET", url, r, NULL);
    apr_table_unset(r->notes, ISR_PROXY_NOTE_LOOKUP);
    r->headers_in = headers;
    if (plain && rr->status != HTTP_OK) {
        /* Denied to such a client (Require), or no URL of this server (a
         * redirect, a bad path): not the operator's to fetch for them. */
        int st = rr->status;

        ap_destroy_sub_req(rr);
        return apr_psprintf(r->pool, "refused: a client gets %d", st);
    }
    c = ap_get_module_config(rr->per_dir_config, &isr_module);
    q = apr_pcalloc(rr->pool, sizeof(*q));
    if (!c || !isr_conf_enabled(c) || isr_request_prepare(rr, c, q) != OK
        || !q->zone) {
        ap_destroy_sub_req(rr);
        return "is not answered by mod_isr here";
    }
    *prr = rr;
    *pq = q;
    return NULL;
}

/* url=: the key a GET of it would have, in the zone its location uses. */
static const char *by_url(admin_op_t *op)
{
    request_rec *r = op->r, *rr;
    apr_array_header_t *vals;
    apr_uint64_t seq = 0, ev;
    apr_status_t rv;
    isr_req_t *q;
    long matched;
    const char *url = apr_pstrmemdup(r->pool, op->value, op->vlen), *err;
    const char *cl;

    if ((err = url_req(r, url, op->vlen, 0, &rr, &q))) {
        return apr_psprintf(r->pool, "url= %s: %s",
                            ap_escape_logitem(r->pool, url), err);
    }
    if (op->zone && strcmp(op->zone, q->zone->name)) {
        err = apr_psprintf(r->pool, "%s is cached in zone %s, not %s", url,
                           q->zone->name, op->zone);
        ap_destroy_sub_req(rr);
        return err;
    }
    matched = stored(r, q->zone, q->key, q->klen, q->hash);
    /* Every entry of that URL: whatever forwarded headers, ISRCacheKey
     * value or Vary variant its key has. */
    vals = apr_array_make(r->pool, 2, sizeof(isr_purge_val_t));
    val_push(vals, q->ctx.unix_path ? q->ctx.unix_path : "",
             q->ctx.unix_path ? strlen(q->ctx.unix_path) : 0);
    val_push(vals, q->ctx.url, strlen(q->ctx.url));
    ev = q->zone->purge->evictions;
    cl = cluster(op, q->zone, 'u', vals);
    rv = isr_purge_op(q->zone, op->hard, 'u', vals, r->pool, &seq);
    zone_done(op, q->zone, rv, seq, matched, ev, cl);
    ap_destroy_sub_req(rr);
    return NULL;
}

/* ---- warm --------------------------------------------------------------- */

typedef struct {
    const char *url;
    apr_size_t len;
} warm_url_t;

static void warm_add(apr_array_header_t *urls, const char *url,
                     apr_size_t len)
{
    warm_url_t *w = apr_array_push(urls);

    w->url = url;
    w->len = len;
}

/* The URLs of a warm: a text body, one a line (blank lines and # comments
 * skipped), or url= form parameters. */
static const char *warm_urls(request_rec *r, apr_array_header_t *urls)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    apr_bucket_brigade *bb;
    char *body, *line, *last;
    apr_size_t len;
    apr_off_t total = 0;
    apr_status_t rv;
    int seen_eos = 0, i;

    if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        apr_array_header_t *fp = NULL;

        if (ap_parse_form_data(r, NULL, &fp, WARM_MAX, ADMIN_BODY_MAX) != OK) {
            return apr_psprintf(r->pool, "the form body could not be read "
                                "(at most %d parameters and 64 KiB)",
                                WARM_MAX);
        }
        for (i = 0; fp && i < fp->nelts; i++) {
            ap_form_pair_t *f = &APR_ARRAY_IDX(fp, i, ap_form_pair_t);

            if (strcmp(f->name, "url")) {
                return apr_psprintf(r->pool, "unknown parameter '%s' (warm "
                                    "takes url=, or a text body of URLs)",
                                    ap_escape_logitem(r->pool, f->name));
            }
            body = (char *)brigade_str(r, f->value, &len);
            warm_add(urls, body, len);
        }
        return NULL;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    body = apr_palloc(r->pool, ADMIN_BODY_MAX + 1);
    len = 0;
    do {
        apr_bucket *b;

        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            return "the request body could not be read";
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *d;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (apr_bucket_read(b, &d, &n, APR_BLOCK_READ) != APR_SUCCESS) {
                return "the request body could not be read";
            }
            total += n;
            if (total > ADMIN_BODY_MAX) {
                return "a body of more than 64 KiB";
            }
            memcpy(body + len, d, n);
            len += n;
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);
    body[len] = '\0';
    if (strlen(body) != len) {
        return "a NUL byte in the body";
    }
    for (line = apr_strtok(body, "\r\n", &last); line;
         line = apr_strtok(NULL, "\r\n", &last)) {
        apr_size_t n;

        while (apr_isspace(*line)) {
            line++;
        }
        n = strlen(line);
        while (n && apr_isspace(line[n - 1])) {
            line[--n] = '\0';
        }
        if (n && *line != '#') {
            warm_add(urls, line, n);
        }
    }
    return NULL;
}

/* POST warm: each URL's answer fetched in the background (at most the
 * refresh threads at once, within half their queue), never stored over a
 * newer one (isr_request_warm). */
static int warm(request_rec *r)
{
    apr_array_header_t *urls = apr_array_make(r->pool, 16,
                                              sizeof(warm_url_t));
    apr_array_header_t *out = apr_array_make(r->pool, 16,
                                             sizeof(const char *));
    const char *err, *res;
    const warm_url_t *w;
    request_rec *rr;
    isr_req_t *q;
    int i, n, queued = 0;

    if ((err = warm_urls(r, urls))) {
        return fail(r, HTTP_BAD_REQUEST, err);
    }
    n = urls->nelts;
    if (!n) {
        return fail(r, HTTP_BAD_REQUEST, "no URL to warm (a text body, one a "
                    "line, or url=)");
    }
    if (n > WARM_MAX) {
        return fail(r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                    apr_psprintf(r->pool, "more than %d URLs", WARM_MAX));
    }
    for (i = 0; i < n; i++) {
        w = &APR_ARRAY_IDX(urls, i, warm_url_t);
        if ((err = url_req(r, w->url, w->len, 1, &rr, &q))) {
            res = err;
        }
        else {
            res = isr_request_warm(rr, q);
            queued += !strcmp(res, "queued");
            ap_destroy_sub_req(rr);
        }
        APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
            r->pool, "{\"url\":%s,\"result\":%s}",
            isr_report_json_str(r->pool, w->url, w->len),
            isr_report_json_str(r->pool, res, strlen(res)));
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, ISR_LOGNO(0067)
                  "isr-admin: warm of %d URLs, %d queued", n, queued);
    return answer(r, queued ? HTTP_ACCEPTED : HTTP_OK, apr_psprintf(
        r->pool, "{\"operation\":\"warm\",\"urls\":%d,\"queued\":%d,"
        "\"results\":[%s]}", n, queued,
        apr_array_pstrcat(r->pool, out, ',')));
}

/* Every other selector, in one zone. */
static void in_zone(admin_op_t *op, isr_zone_t *z)
{
    apr_array_header_t *vals = apr_array_make(op->r->pool, 4,
                                              sizeof(isr_purge_val_t));
    apr_uint64_t seq = 0, ev;
    apr_status_t rv;
    long matched = -1;
    char kind = 'a';
    const char *cl;
    int i;

    if (!strcmp(op->kind, "key")) {
        kind = 'k';
        matched = stored(op->r, z, op->value, op->vlen,
                         isr_store_hash(z, op->value, op->vlen));
        val_push(vals, op->value, op->vlen);
    }
    else if (!strcmp(op->kind, "prefix")) {
        kind = 'p';
        val_push(vals, op->value, op->vlen);
    }
    else if (!strcmp(op->kind, "tag")) {
        kind = 't';
        for (i = 0; i < op->tags->nelts; i++) {
            const char *t = APR_ARRAY_IDX(op->tags, i, const char *);

            val_push(vals, t, strlen(t));
        }
    }
    ev = z->purge->evictions;
    cl = cluster(op, z, kind, vals);
    rv = isr_purge_op(z, op->hard, kind, vals, op->r->pool, &seq);
    zone_done(op, z, rv, seq, matched, ev, cl);
}

/* prefix=: as a prefix purge names it (isr_purge_prefixes): decoded,
 * no dot segments or double slashes, no trailing slash. */
static const char *prefix_norm(admin_op_t *op)
{
    apr_size_t ends[ISR_PURGE_MAX_DEPTH];
    char *p = apr_pstrmemdup(op->r->pool, op->value, op->vlen);
    apr_size_t len;
    int n;

    if (strlen(p) != op->vlen || strchr(p, '?')) {
        return "prefix= takes a path (no query)";
    }
    ap_getparents(p);
    ap_no2slash(p);
    len = strlen(p);
    while (len > 1 && p[len - 1] == '/') {
        len--;
    }
    n = isr_purge_prefixes(p, len, ends);
    if (len > 1 && (n < 1 || ends[n - 1] != len)) {
        return apr_psprintf(op->r->pool, "prefix= deeper than %d segments",
                            ISR_PURGE_MAX_DEPTH);
    }
    /* "/": the whole zone (no entry keeps a hash of "/"). */
    op->value = p;
    op->vlen = len;
    return NULL;
}

static int run(admin_op_t *op)
{
    request_rec *r = op->r;
    const char *err = NULL;
    isr_zone_t *z;
    int i;

    if (op->zone && !isr_zone_get(op->zone)) {
        return fail(r, HTTP_NOT_FOUND, apr_psprintf(r->pool, "no zone '%s'",
                                                    op->zone));
    }
    if (!strcmp(op->kind, "prefix")) {
        err = prefix_norm(op);
    }
    if (!err && !strcmp(op->kind, "url")) {
        err = by_url(op);
    }
    else if (!err) {
        for (i = 0; i < isr_zones_count(); i++) {
            z = isr_zone_at(i);
            if (!op->zone || !strcmp(op->zone, z->name)) {
                in_zone(op, z);
            }
        }
    }
    if (err) {
        return fail(r, HTTP_BAD_REQUEST, err);
    }
    return answer(r, HTTP_OK, apr_psprintf(
        r->pool, "{\"operation\":\"%s\",\"selector\":\"%s\",\"zones\":[%s]}",
        op->op, op->kind, apr_array_pstrcat(r->pool, op->out, ',')));
}

/* GET entries?prefix=&state=&limit=&zone= */
static int entries(request_rec *r)
{
    const char *zone, *prefix, *state, *limit, *err;
    apr_table_t *args;
    admin_op_t op;
    char *end;
    long lim = ENTRIES_DEFAULT;
    int st = 0, rc;

    ap_args_to_table(r, &args);
    zone = apr_table_get(args, "zone");
    prefix = apr_table_get(args, "prefix");
    state = apr_table_get(args, "state");
    limit = apr_table_get(args, "limit");
    if (state && *state && (st = isr_report_state(state)) < 0) {
        return fail(r, HTTP_BAD_REQUEST, "state= takes fresh, stale, expired, "
                    "pending, pass or failed");
    }
    if (limit && *limit) {
        lim = strtol(limit, &end, 10);
        if (*end || lim < 1 || lim > ENTRIES_MAX) {
            return fail(r, HTTP_BAD_REQUEST,
                        apr_psprintf(r->pool, "limit= takes 1 to %d",
                                     ENTRIES_MAX));
        }
    }
    if (prefix && *prefix) {
        memset(&op, 0, sizeof(op));
        op.r = r;
        op.value = prefix;
        op.vlen = strlen(prefix);
        if (*prefix != '/') {
            return fail(r, HTTP_BAD_REQUEST, "prefix= takes a path starting "
                        "with /");
        }
        if ((err = prefix_norm(&op))) {
            return fail(r, HTTP_BAD_REQUEST, err);
        }
        prefix = apr_pstrmemdup(r->pool, op.value, op.vlen);
    }
    else {
        prefix = NULL;
    }
    rc = isr_report_entries(r, zone, prefix, st, (int)lim);
    return rc == OK ? OK
                    : fail(r, rc, apr_psprintf(r->pool, "no zone '%s'", zone));
}

static int admin_handler(request_rec *r)
{
    const char *name = strrchr(r->uri, '/');
    admin_op_t op;
    const char *err;

    if (!r->handler || strcmp(r->handler, ISR_ADMIN_HANDLER)) {
        return DECLINED;
    }
    name = name ? name + 1 : r->uri;
    memset(&op, 0, sizeof(op));
    op.r = r;
    op.out = apr_array_make(r->pool, 4, sizeof(const char *));
    if (!strcmp(name, "purge") || !strcmp(name, "revalidate")) {
        op.op = !strcmp(name, "purge") ? "purge" : "revalidate";
        op.hard = !strcmp(name, "purge");
        if (r->method_number != M_POST) {
            r->allowed = (AP_METHOD_BIT << M_POST);
            apr_table_setn(r->headers_out, "Allow", "POST");
            return fail(r, HTTP_METHOD_NOT_ALLOWED,
                        apr_psprintf(r->pool, "%s takes POST", name));
        }
        if (cross_site(r)) {
            return fail(r, HTTP_FORBIDDEN, "a cross-site request");
        }
        if ((err = read_params(&op))) {
            return fail(r, HTTP_BAD_REQUEST, err);
        }
        return run(&op);
    }
    if (!strcmp(name, "warm")) {
        if (r->method_number != M_POST) {
            r->allowed = (AP_METHOD_BIT << M_POST);
            apr_table_setn(r->headers_out, "Allow", "POST");
            return fail(r, HTTP_METHOD_NOT_ALLOWED, "warm takes POST");
        }
        if (cross_site(r)) {
            return fail(r, HTTP_FORBIDDEN, "a cross-site request");
        }
        return warm(r);
    }
    if (!*name || !strcmp(name, "page")) {
        if (r->method_number != M_GET) {
            r->allowed = (AP_METHOD_BIT << M_GET);
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
            return fail(r, HTTP_METHOD_NOT_ALLOWED, "the page takes GET");
        }
        return isr_page_send(r);
    }
    if (!strcmp(name, "entries")) {
        if (r->method_number != M_GET) {
            r->allowed = (AP_METHOD_BIT << M_GET);
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
            return fail(r, HTTP_METHOD_NOT_ALLOWED, "entries takes GET");
        }
        return entries(r);
    }
    if (!strcmp(name, "status") || !strcmp(name, "metrics")) {
        const char *zone = NULL;
        apr_table_t *args;
        int rc;

        if (r->method_number != M_GET) {
            r->allowed = (AP_METHOD_BIT << M_GET);
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
            return fail(r, HTTP_METHOD_NOT_ALLOWED,
                        apr_psprintf(r->pool, "%s takes GET", name));
        }
        if (*name == 'm') {
            return isr_report_metrics(r);
        }
        ap_args_to_table(r, &args);
        zone = apr_table_get(args, "zone");
        rc = isr_report_status(r, zone);
        return rc == OK ? OK
                        : fail(r, rc, apr_psprintf(r->pool, "no zone '%s'",
                                                   zone));
    }
    return fail(r, HTTP_NOT_FOUND,
                apr_psprintf(r->pool, "no operation '%s' (purge, "
                             "revalidate, warm, status, metrics, entries, "
                             "or the page at the location's own path with "
                             "a trailing /)", name));
}

void isr_admin_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(admin_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
