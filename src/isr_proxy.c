/* The reverse proxy for methods other than GET/HEAD (include/isr_proxy.h).
 *
 * The exchange runs in the request thread: curl pulls the request body
 * from httpd's input filters as it sends it (so LimitRequestBody, Expect:
 * 100-continue and the client Timeout are httpd's), and hands the response
 * to the sink as it arrives, which passes it on with a flush. Nothing of
 * it is stored. Cookie and Authorization are forwarded here, unlike on the
 * cache path: an answer that is never stored is never shared. */
#include "isr.h"
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "isr_fetch.h"
#include "isr_forward.h"
#include "isr_proxy.h"
#include "isr_tier.h"
#include "isr_request.h"

/* Location and Content-Location values looked at per answer. */
#define TARGETS_MAX      4
/* How often an invalidation waiting for an earlier fetch looks again. */
#define INVAL_SLICE      apr_time_from_msec(50)
#define INVAL_MARGIN     apr_time_from_sec(3)

typedef struct {
    request_rec *r;
    isr_req_t *q;               /* the request's backend context and key */
    apr_bucket_brigade *in;     /* request body not yet given to curl */
    apr_bucket_brigade *out;
    apr_status_t client_rv;     /* why reading the request body failed */
    int eos;                    /* the request body has ended */
    int sent;                   /* the response head went out */
} proxy_t;

/* TRACE and CONNECT stay httpd's: TRACE would echo the client's cookies
 * back through the backend, and CONNECT is no request for a URL. */
int isr_proxy_wanted(const request_rec *r)
{
    return !r->main && r->method_number != M_GET
           && r->method_number != M_TRACE && r->method_number != M_CONNECT;
}

/* RFC 9110 9.2.1: GET, HEAD, OPTIONS and TRACE are safe; every other
 * method, extension methods included, may change the resource. */
static int method_unsafe(const request_rec *r)
{
    return r->method_number != M_GET && r->method_number != M_OPTIONS
           && r->method_number != M_TRACE;
}

/* Whether the request has a body and its length (-1: chunked). httpd has
 * refused a Transfer-Encoding other than chunked already, and drops a
 * Content-Length that comes with one; the length must still be a plain
 * number before curl announces it. */
static int request_body(request_rec *r, int *has_body, apr_off_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *end;

    *has_body = 0;
    *len = -1;
    if (apr_table_get(r->headers_in, "Transfer-Encoding")) {
        *has_body = 1;
        return OK;
    }
    if (!cl) {
        return OK;
    }
    if (!apr_isdigit(*cl) || apr_strtoff(len, cl, &end, 10) != APR_SUCCESS
        || *end || *len < 0) {
        return HTTP_BAD_REQUEST;
    }
    *has_body = 1;
    return OK;
}

/* curl's read callback: the next bytes of the body from the input filters
 * (which send the 100 Continue on the first read and enforce
 * LimitRequestBody). Blocks, bounded by httpd's Timeout. */
static apr_status_t body_read(void *baton, char *buf, apr_size_t *len)
{
    proxy_t *px = baton;
    apr_size_t want = *len, n;
    const char *data;
    apr_bucket *b;
    apr_status_t rv;

    *len = 0;
    while (!px->eos && *len < want) {
        if (APR_BRIGADE_EMPTY(px->in)) {
            if (*len) {
                break;          /* give curl what there is */
            }
            rv = ap_get_brigade(px->r->input_filters, px->in,
                                AP_MODE_READBYTES, APR_BLOCK_READ, want);
            if (rv != APR_SUCCESS) {
                px->client_rv = rv;
                return rv;
            }
            continue;
        }
        b = APR_BRIGADE_FIRST(px->in);
        if (APR_BUCKET_IS_EOS(b)) {
            px->eos = 1;
            apr_brigade_cleanup(px->in);
            break;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            apr_bucket_delete(b);
            continue;
        }
        if ((rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ))
            != APR_SUCCESS) {
            px->client_rv = rv;
            return rv;
        }
        if (n > want - *len) {
            apr_bucket_split(b, want - *len);
            n = want - *len;
        }
        memcpy(buf + *len, data, n);
        *len += n;
        apr_bucket_delete(b);
    }
    return *len ? APR_SUCCESS : APR_EOF;
}

/* ---- invalidation ----------------------------------------------------------- */

/* Drop q's entry. A fetch of it that was under way when the backend
 * answered may bring the old answer: wait for it to land (bounded by its
 * lease, ISRTimeout plus a margin) and drop that too. */
static void invalidate(request_rec *r, const isr_req_t *q)
{
    apr_time_t now = apr_time_now();
    apr_time_t give_up = now + isr_conf_timeout(q->conf) + INVAL_MARGIN;
    apr_uint64_t live = 0;
    apr_uint32_t slot = 0, seq = 0;
    isr_inval_t res;

    if (isr_tier_on(q->zone)) {
        /* Every server's copy, Redis's first (isr_admin.c's cluster()). */
        apr_array_header_t *k = apr_array_make(r->pool, 1,
                                               sizeof(isr_purge_val_t));
        isr_purge_val_t *v = apr_array_push(k);

        v->v = q->key;
        v->len = q->klen;
        (void)isr_tier_op(q->zone, 1, 'k', k, r->pool);
    }
    for (;; now = apr_time_now()) {
        res = isr_store_invalidate(q->zone, q->key, q->klen, q->hash, now,
                                   now < give_up ? &live : NULL, &slot, &seq);
        if (res != ISR_INVAL_WAIT) {
            break;
        }
        isr_store_wait(q->zone, slot, seq, INVAL_SLICE);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, ISR_LOGNO(0046)
                  "%s %s: %s %s", r->method, r->uri,
                  res == ISR_INVAL_DONE ? "invalidated" : "nothing stored for",
                  q->url);
}

/* "scheme://authority" of a backend URL: its length, 0 if none. */
static apr_size_t origin_len(const char *url)
{
    apr_size_t alen;
    const char *auth = isr_ctx_authority(url, NULL, &alen);

    return auth ? (apr_size_t)(auth + alen - url) : 0;
}

/* Whether two contexts talk to the same backend: one backend can only
 * invalidate what it answered itself. */
static int same_backend(const isr_req_t *a, const isr_req_t *b)
{
    apr_size_t la = origin_len(a->url), lb = origin_len(b->url);

    return a->zone == b->zone && la && la == lb
           && !strncasecmp(a->url, b->url, la)
           && ((!a->ctx.unix_path && !b->ctx.unix_path)
               || (a->ctx.unix_path && b->ctx.unix_path
                   && !strcmp(a->ctx.unix_path, b->ctx.unix_path)));
}

/* The path and query a Location or Content-Location value names, resolved
 * against the request URI (RFC 3986 5.2), when it is of the request's own
 * origin (scheme, host and port as the request came in); NULL otherwise. */
static const char *same_origin_target(request_rec *r, const char *ref)
{
    const char *scheme = ap_http_scheme(r), *base, *path;
    apr_port_t port = ap_get_server_port(r), uport;
    apr_uri_t u;

    if (!isr_forward_value_ok(ref) || apr_uri_parse(r->pool, ref, &u) != APR_SUCCESS) {
        return NULL;
    }
    if (u.scheme && strcasecmp(u.scheme, scheme)) {
        return NULL;
    }
    if (u.scheme || u.hostinfo) {
        if (!u.hostname || u.user || u.password
            || strcasecmp(u.hostname, ap_get_server_name(r))) {
            return NULL;
        }
        uport = u.port_str && *u.port_str ? u.port
                                          : apr_uri_port_of_scheme(scheme);
        if (uport != port) {
            return NULL;
        }
    }
    base = r->parsed_uri.path ? r->parsed_uri.path : "/";
    path = u.path;
    if (!path || !*path) {
        path = u.hostinfo ? "/" : base;
    }
    else if (*path != '/') {
        path = apr_pstrcat(r->pool, ap_make_dirstr_parent(r->pool, base),
                           path, NULL);
    }
    return u.query ? apr_pstrcat(r->pool, path, "?", u.query, NULL) : path;
}

/* Invalidate what a GET of `target` (a path and query of this origin)
 * would be answered from: the location, ISR configuration and key that
 * request would have, found by a lookup subrequest. Only entries of the
 * same zone and backend as the request: a backend cannot make mod_isr drop
 * what another backend answered. */
static void invalidate_target(request_rec *r, const isr_req_t *q,
                              const char *target)
{
    request_rec *rr;
    const isr_dir_conf_t *c;
    isr_req_t *q2;

    apr_table_setn(r->notes, ISR_PROXY_NOTE_LOOKUP, "1");
    rr = ap_sub_req_method_uri("GET", target, r, NULL);
    apr_table_unset(r->notes, ISR_PROXY_NOTE_LOOKUP);
    c = ap_get_module_config(rr->per_dir_config, &isr_module);
    q2 = apr_pcalloc(r->pool, sizeof(*q2));
    if (rr->status == HTTP_OK && c && isr_conf_enabled(c)
        && isr_request_prepare(rr, c, q2) == OK && same_backend(q, q2)) {
        invalidate(r, q2);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "%s %s: not "
                      "invalidating %s (not a GET of this backend)",
                      r->method, r->uri, target);
    }
    ap_destroy_sub_req(rr);
}

/* RFC 9111 4.4: a non-error answer to an unsafe method invalidates the
 * target URI and the same-origin URIs in Location and Content-Location. */
static void invalidate_all(proxy_t *px, int status, const char *h,
                           apr_size_t len)
{
    request_rec *r = px->r;
    isr_http_walk_t w = { h, h + len };
    const char *name, *value, *target;
    int n = 0;

    if (!method_unsafe(r) || status < 200 || status >= 400) {
        return;
    }
    invalidate(r, px->q);
    while (n < TARGETS_MAX && isr_http_walk(&w, &name, &value)) {
        if (strcasecmp(name, "Location")
            && strcasecmp(name, "Content-Location")) {
            continue;
        }
        n++;
        if ((target = same_origin_target(r, value)) != NULL) {
            invalidate_target(r, px->q, target);
        }
    }
}

/* ---- the response ---------------------------------------------------------- */

/* The backend's status and end-to-end headers ("name\0value\0" pairs,
 * hop-by-hop ones already dropped), after the invalidation: a client that
 * has the answer finds the old entries gone. */
static void send_head(proxy_t *px, int status, const char *h, apr_size_t len)
{
    request_rec *r = px->r;

    invalidate_all(px, status, h, len);
    px->sent = 1;
    r->status = status;
    r->proxyreq = PROXYREQ_REVERSE;
    r->status_line = ap_get_status_line_ex(r->pool, status);
    isr_respond_set_headers(r, h, len);
    apr_table_setn(r->subprocess_env, "ISR_STATUS", "PROXY");
    apr_table_setn(r->headers_out, "X-ISR-Status", "PROXY");
    /* RFC 9211: forwarded because of the method. */
    apr_table_mergen(r->headers_out, "Cache-Status", apr_psprintf(
                         r->pool, "mod_isr; fwd=method; fwd-status=%d", status));
}

/* Every piece goes out as it arrives (flushed): a trickling answer reaches
 * the client as it trickles. */
static apr_status_t sink(void *baton, const isr_fetch_resp_t *head,
                         const char *data, apr_size_t len)
{
    proxy_t *px = baton;
    request_rec *r = px->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_status_t rv = APR_SUCCESS;

    if (!px->sent) {
        send_head(px, head->status, head->headers, head->hdrlen);
    }
    if (len) {
        APR_BRIGADE_INSERT_TAIL(px->out, apr_bucket_transient_create(data, len,
                                                                     ba));
        APR_BRIGADE_INSERT_TAIL(px->out, apr_bucket_flush_create(ba));
        rv = ap_pass_brigade(r->output_filters, px->out);
        apr_brigade_cleanup(px->out);
    }
    return rv == APR_SUCCESS && !r->connection->aborted ? APR_SUCCESS
                                                        : APR_ECONNABORTED;
}

/* The end of the answer; one that broke off ends with a 502 error bucket,
 * so that the client sees a truncated body (as in isr_respond.c). */
static int finish(proxy_t *px, int broken)
{
    request_rec *r = px->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (broken) {
        r->connection->keepalive = AP_CONN_CLOSE;
        APR_BRIGADE_INSERT_TAIL(px->out, ap_bucket_error_create(
            HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    }
    APR_BRIGADE_INSERT_TAIL(px->out, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, px->out);
    return OK;
}

/* ---- the exchange ----------------------------------------------------------- */

int isr_proxy_handle(request_rec *r, const isr_dir_conf_t *c)
{
    proxy_t px;
    isr_fetch_req_t fr;
    isr_fetch_resp_t *resp;
    apr_array_header_t *headers;
    const char *why = NULL;
    apr_off_t body_len;
    apr_status_t rv;
    int rc, has_body;

    memset(&px, 0, sizeof(px));
    px.r = r;
    px.q = apr_pcalloc(r->pool, sizeof(*px.q));
    /* httpd parsed the method as a token already; it goes on the request
     * line verbatim, so make sure. */
    if (!isr_http_is_token(r->method)) {
        return HTTP_NOT_IMPLEMENTED;
    }
    if ((rc = isr_request_prepare(r, c, px.q)) != OK) {
        ap_log_rerror(APLOG_MARK, rc < 500 ? APLOG_INFO : APLOG_ERR, 0, r,
                      ISR_LOGNO(0045) "%s %s: %s", r->method, r->uri,
                      px.q->error);
        return rc;
    }
    if ((rc = isr_forward_headers(r, &px.q->ctx, ISR_FORWARD_PROXY, &headers,
                                  &why)) != OK
        || (rc = request_body(r, &has_body, &body_len)) != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, ISR_LOGNO(0047)
                      "%s %s: not forwarded: %s", r->method, r->uri,
                      why ? why : "invalid Content-Length");
        return rc;
    }
    px.in = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    px.out = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    memset(&fr, 0, sizeof(fr));
    fr.url = isr_ctx_url_clean(r->pool, px.q->url);
    fr.unix_path = px.q->ctx.unix_path;
    fr.ca_file = c->ca_file;
    fr.headers = headers;
    fr.timeout = isr_conf_timeout(c);
    fr.connect_timeout = isr_conf_connect_timeout(c);
    fr.relay_timeout = isr_conf_relay_timeout(c);
    fr.max_store = 0;
    fr.max_body = 0;
    fr.method = r->method;
    fr.sink = sink;
    fr.sink_baton = &px;
    fr.sink_all = 1;
    if (has_body) {
        fr.read = body_read;
        fr.read_baton = &px;
        fr.body_len = body_len;
    }
    rv = isr_fetch(&resp, &fr, r->pool);

    if (px.client_rv != APR_SUCCESS) {
        /* The client's fault (gone, too slow, over LimitRequestBody, a
         * broken chunk): info, as httpd logs its own request errors. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, px.client_rv, r, ISR_LOGNO(0044)
                      "%s %s: reading the request body failed, backend "
                      "request aborted", r->method, r->uri);
        if (px.sent) {
            return finish(&px, 1);
        }
        return ap_map_http_request_error(px.client_rv, HTTP_BAD_REQUEST);
    }
    if (rv != APR_SUCCESS) {
        if (px.sent) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, ISR_LOGNO(0043)
                          "%s %s: relaying the answer of %s broke off: %s",
                          r->method, r->uri, px.q->url, resp->error);
            return finish(&px, 1);
        }
        rc = rv == APR_TIMEUP ? HTTP_GATEWAY_TIME_OUT : HTTP_BAD_GATEWAY;
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, ISR_LOGNO(0042)
                      "%s %s: backend %s failed (%s): answering %d",
                      r->method, r->uri, px.q->url,
                      resp->error ? resp->error : "unknown error", rc);
        apr_table_setn(r->subprocess_env, "ISR_STATUS", "ERROR");
        return rc;
    }
    if (!px.sent) {
        /* No body came (a 204, an empty 201): the head alone. */
        send_head(&px, resp->status, resp->headers, resp->hdrlen);
        if (resp->bodylen) {
            APR_BRIGADE_INSERT_TAIL(px.out, apr_bucket_pool_create(
                resp->body, resp->bodylen, r->pool,
                r->connection->bucket_alloc));
        }
    }
    return finish(&px, 0);
}
