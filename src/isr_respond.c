/* Applying an answer: as the response (handler), into the request for the
 * normal handler (env=/header=), or the ISROnError action. */
#include "isr.h"
#include <apr_strings.h>
#include <apr_buckets.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_ssl.h>
#include <http_request.h>

#include "isr_compress.h"
#include "isr_fast.h"
#include "isr_http.h"
#include "isr_local.h"
#include "isr_policy.h"
#include "isr_request.h"
#include "isr_purge.h"

/* RFC 9211: how this answer came about, after any upstream cache's entry
 * (the list runs from the origin's side to the client's). */
static void set_cache_status(request_rec *r, const isr_req_t *q,
                             apr_table_t *headers)
{
    char ttl[32] = "", fwd_status[24] = "";
    apr_interval_time_t d;

    /* On a hit this costs one small formatting into the request pool. */
    if (q->fresh_until) {
        /* Whole seconds away from zero: a stale answer's is negative. */
        d = q->fresh_until - apr_time_now();
        apr_snprintf(ttl, sizeof(ttl), "; ttl=%" APR_TIME_T_FMT,
                     d > 0 ? apr_time_sec(d + APR_USEC_PER_SEC - 1)
                           : -apr_time_sec(-d + APR_USEC_PER_SEC - 1));
    }
    if (q->fwd_status) {
        apr_snprintf(fwd_status, sizeof(fwd_status), "; fwd-status=%d",
                     q->fwd_status);
    }
    apr_table_mergen(headers, "Cache-Status", apr_pstrcat(
        r->pool, "mod_isr", q->fwd ? "; fwd=" : "; hit", q->fwd ? q->fwd : "",
        fwd_status, ttl, q->stored ? "; stored" : "",
        q->collapsed ? "; collapsed" : "", q->detail ? "; detail=" : "",
        q->detail ? q->detail : "", NULL));
}

/* The ISR_STATUS variable, the X-ISR-Status header and the zone's
 * counter of that answer. */
static void set_status_vars(request_rec *r, const isr_req_t *q,
                            const char *label, apr_table_t *headers)
{
    isr_store_count(q->zone, label[0] == 'H' ? ISR_STAT_HIT
                             : label[0] == 'S' ? ISR_STAT_STALE
                             : ISR_STAT_MISS);
    apr_table_setn(r->subprocess_env, "ISR_STATUS", label);
    apr_table_setn(headers, "X-ISR-Status", label);
    set_cache_status(r, q, headers);
}

void isr_respond_apply(request_rec *r, const isr_req_t *q)
{
    const isr_dir_conf_t *c = q->conf;
    char *v = apr_pstrmemdup(r->pool, q->body, q->bodylen), *s;

    if (isr_conf_apply(c) == ISR_APPLY_HEADER) {
        for (s = v; *s; s++) {
            if (*s == '\r' || *s == '\n') {
                *s = ' ';
            }
        }
        apr_table_setn(r->headers_in, c->apply_name, v);
    }
    else {
        apr_table_setn(r->subprocess_env, c->apply_name, v);
    }
    set_status_vars(r, q, q->label, r->err_headers_out);
}

/* Stored headers are "name\0value\0" pairs; the record they came from was
 * bounds-checked, but each string is still checked against the end. The
 * answer's type, encoding and languages are the backend's alone: what
 * mod_mime guessed from the internal name (isr:/api/data;.html) or a
 * fallback file name is dropped first. */
void isr_respond_set_headers(request_rec *r, const char *h, apr_size_t len)
{
    const isr_dir_conf_t *c = ap_get_module_config(r->per_dir_config,
                                                   &isr_module);
    const apr_array_header_t *tag_headers = c ? isr_conf_tag_headers(c)
                                              : NULL;
    isr_http_walk_t w = { h, h + len };
    const char *name, *value;

    r->content_type = NULL;
    r->content_encoding = NULL;
    r->content_languages = NULL;

    while (isr_http_walk(&w, &name, &value)) {
        if (!strcasecmp(name, "Content-Type")) {
            ap_set_content_type(r, value);
        }
        else if (isr_policy_is_targeted(name)
                 || isr_purge_is_tag_header(tag_headers, name)) {
            /* For this cache alone (RFC 9213), or its tags (isr_purge.h):
             * not sent on. */
        }
        else {
            apr_table_addn(r->headers_out, name, value);
        }
    }
}

void isr_respond_relay_head(request_rec *r, isr_req_t *q, int status,
                            const char *headers, apr_size_t hdrlen)
{
    r->status = status;
    r->status_line = ap_get_status_line_ex(r->pool, status);
    r->proxyreq = PROXYREQ_REVERSE;
    isr_respond_set_headers(r, headers, hdrlen);
    set_status_vars(r, q, "MISS", r->headers_out);
    q->relay_bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

apr_status_t isr_respond_relay_data(request_rec *r, isr_req_t *q,
                                    const char *data, apr_size_t len)
{
    apr_status_t rv = APR_SUCCESS;

    if (len && !r->header_only) {
        APR_BRIGADE_INSERT_TAIL(q->relay_bb, apr_bucket_transient_create(
            data, len, r->connection->bucket_alloc));
        rv = ap_pass_brigade(r->output_filters, q->relay_bb);
        apr_brigade_cleanup(q->relay_bb);
    }
    return rv == APR_SUCCESS && !r->connection->aborted ? APR_SUCCESS
                                                        : APR_ECONNABORTED;
}

/* The end of a relayed body. One that broke off ends with a 502 error
 * bucket, which makes the chunked encoding omit its last chunk (as for
 * mod_proxy): the client sees a truncated body, never a complete-looking
 * wrong one. */
static int relay_end(request_rec *r, const isr_req_t *q)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (q->relay_failed) {
        r->connection->keepalive = AP_CONN_CLOSE;
        APR_BRIGADE_INSERT_TAIL(q->relay_bb, ap_bucket_error_create(
            HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    }
    APR_BRIGADE_INSERT_TAIL(q->relay_bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, q->relay_bb);
    return OK;
}

/* ap_meets_conditions(), but with If-None-Match taking precedence over
 * If-Modified-Since (RFC 9110 13.2.2: the latter is not evaluated when
 * the former is present; httpd requires both to hold). */
static int meets_conditions(request_rec *r)
{
    const char *ims = NULL;
    int rc;

    if (apr_table_get(r->headers_in, "If-None-Match")
        && (ims = apr_table_get(r->headers_in, "If-Modified-Since"))) {
        apr_table_unset(r->headers_in, "If-Modified-Since");
    }
    rc = ap_meets_conditions(r);
    if (ims) {
        apr_table_setn(r->headers_in, "If-Modified-Since", ims);
    }
    return rc;
}

/* ISRCompress: the stored copy for the client's Accept-Encoding, with its
 * Content-Encoding, ETag and Vary; *body and *len point at it. An entry
 * whose coding mod_isr decided keeps mod_deflate and mod_brotli away (no
 * answer is compressed twice, or per hit). A location without ISRCompress
 * sends the identity body of an entry another location compressed. */
static void choose_coding(request_rec *r, const isr_req_t *q,
                          const char **body, apr_size_t *len)
{
    isr_compress_conf_t cc;
    const char *vary, *etag;
    int coding;

    isr_conf_compress(q->conf, &cc);
    if (!isr_compress_on(&cc)) {
        return;   /* a location without ISRCompress: identity, as before */
    }
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_setn(r->subprocess_env, "no-brotli", "1");
    if (!isr_compress_varies(&cc, q->alts, q->altlen)) {
        return;
    }
    vary = apr_table_get(r->headers_out, "Vary");
    if (!vary || (!isr_http_has_token(vary, "Accept-Encoding")
                  && !isr_http_has_token(vary, "*"))) {
        apr_table_mergen(r->headers_out, "Vary", "Accept-Encoding");
    }
    coding = isr_compress_choose(&cc, q->alts, q->altlen, apr_table_getm(
                                     r->pool, r->headers_in,
                                     "Accept-Encoding"));
    if (coding == ISR_CODING_IDENTITY
        || !isr_compress_alt(q->alts, q->altlen, coding, body, len)) {
        return;
    }
    apr_table_setn(r->headers_out, "Content-Encoding",
                   isr_compress_name(coding));
    /* Digests of the identity bytes (or representation) do not hold for
     * a copy (mod_deflate drops Content-MD5 for the same reason). */
    apr_table_unset(r->headers_out, "Content-MD5");
    apr_table_unset(r->headers_out, "Content-Digest");
    apr_table_unset(r->headers_out, "Repr-Digest");
    apr_table_unset(r->headers_out, "Digest");
    if ((etag = apr_table_get(r->headers_out, "ETag")) != NULL) {
        if ((etag = isr_compress_etag(r->pool, etag, coding)) != NULL) {
            apr_table_setn(r->headers_out, "ETag", etag);
        }
        else {
            apr_table_unset(r->headers_out, "ETag");
        }
    }
}

/* Does httpd's core write this request's file buckets with sendfile? Only
 * with EnableSendfile On, and not when mod_ssl or mod_http2 carries the
 * answer (they read the bytes, and a file read copies them). Not for a
 * subrequest: its pool, which holds the copy, may go before its bytes are
 * written. */
static int sendfile_carries(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);

    return cd->enable_sendfile == ENABLE_SENDFILE_ON && !r->main
           && !r->connection->master && !ap_ssl_conn_is_ssl(r->connection);
}

/* A shared copy is sent as is, from its memfd when sendfile can carry it;
 * anything else lives in r->pool. */
static apr_bucket *body_bucket(request_rec *r, const isr_req_t *q,
                               const char *body, apr_size_t len)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket *b;

    if (!q->kept) {
        return apr_bucket_pool_create(body, len, r->pool, ba);
    }
    if (sendfile_carries(r)
        && (b = isr_local_file_bucket(q->kept, body, len, r->pool, ba))) {
        return b;
    }
    return isr_local_bucket(q->kept, body, len, ba);
}

int isr_respond_send(request_rec *r, const isr_req_t *q)
{
    apr_bucket_brigade *bb;
    const char *body = q->body;
    apr_size_t bodylen = q->bodylen;
    apr_time_t age;
    int rc;

    if (q->relayed) {
        return relay_end(r, q);
    }
    /* A stored answer: its client may well ask again at once. */
    isr_fast_arm(r, isr_conf_fast_wait(q->conf));
    r->status = q->status;
    /* A status httpd has no reason phrase for (a 299) would otherwise go
     * out as "500 Internal Server Error". */
    r->status_line = ap_get_status_line_ex(r->pool, q->status);
    isr_respond_set_headers(r, q->headers, q->hdrlen);
    set_status_vars(r, q, q->label, r->headers_out);
    if (q->fetched) {
        age = apr_time_sec(apr_time_now() - q->fetched);
        apr_table_setn(r->headers_out, "Age", apr_psprintf(
                           r->pool, "%" APR_TIME_T_FMT, age > 0 ? age : 0));
    }
    /* The stored Date stays (RFC 9110 6.6.1; httpd keeps a proxy's). */
    r->proxyreq = PROXYREQ_REVERSE;
    if (q->altlen) {
        choose_coding(r, q, &body, &bodylen);
    }
    if (q->status == HTTP_OK && (rc = meets_conditions(r)) != OK) {
        r->status = HTTP_OK;
        r->status_line = NULL;
        return rc;
    }
    ap_set_content_length(r, bodylen);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    if (bodylen && !r->header_only) {
        APR_BRIGADE_INSERT_TAIL(bb, body_bucket(r, q, body, bodylen));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
        r->connection->bucket_alloc));
    return ap_pass_brigade_fchk(r, bb, ISR_LOGNO(0030)
                                "sending a cached answer failed");
}

int isr_respond_error(request_rec *r, const isr_req_t *q, apr_status_t rv)
{
    int action = isr_conf_on_error(q->conf);

    apr_table_setn(r->subprocess_env, "ISR_STATUS", "ERROR");
    if (q->error_status) {
        /* The client's own choice (only-if-cached): no backend failed. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, ISR_LOGNO(0048)
                      "%s: %s: answering %d", q->url ? q->url : "(no URL)",
                      q->error, q->error_status);
        return q->error_status;
    }
    if (q->zone) {
        isr_store_count(q->zone, ISR_STAT_ERROR);
    }
    if (action == ISR_ONERROR_PASS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, ISR_LOGNO(0031)
                      "fetch of %s failed (%s): passing to the normal handler",
                      q->url ? q->url : "(no URL)", q->error ? q->error : "unknown error");
        return DECLINED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, ISR_LOGNO(0032)
                  "fetch of %s failed (%s): answering %d",
                  q->url ? q->url : "(no URL)",
                  q->error ? q->error : "unknown error", action);
    return action;
}
