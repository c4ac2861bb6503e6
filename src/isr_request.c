/* The request flow: fresh -> HIT, stale -> STALE plus one background
 * refresh, absent or too old -> one synchronous fetch that concurrent
 * requests for the key wait for. */
#include "isr.h"
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "isr_fetch.h"
#include "isr_forward.h"
#include "isr_http.h"
#include "isr_local.h"
#include "isr_purge.h"
#include "isr_refresh.h"
#include "isr_request.h"
#include "isr_vary.h"
#include "isr_zone.h"

/* A synchronous fetch buffers at most this much (the client still gets
 * bodies above ISRMaxObjectSize; they are just not stored). */
#define SYNC_MAX_BODY   ((apr_size_t)256 * 1024 * 1024)
#define LEASE_MARGIN    apr_time_from_sec(2)

/* How long a claim holds: the backend timeout plus a margin. Waiters for a
 * miss give up after the same time. */
#define LEASE_HOLD(c)   (isr_conf_timeout(c) + LEASE_MARGIN)
#define WAIT_SLICE      apr_time_from_msec(100)


/* ---- URL and key -------------------------------------------------------- */

static const char *join_url(apr_pool_t *p, const char *base, const char *path,
                            const char *args)
{
    apr_size_t bl = strlen(base);

    if (bl && base[bl - 1] == '/' && *path == '/') {
        path++;
    }
    else if (bl && base[bl - 1] != '/' && *path && *path != '/') {
        base = apr_pstrcat(p, base, "/", NULL);
    }
    return apr_pstrcat(p, base, path, args ? "?" : "", args ? args : "", NULL);
}

static const char *map_path(request_rec *r, const isr_dir_conf_t *c)
{
    const char *path = r->uri;
    apr_size_t pl;

    if (c->prefix) {
        pl = strlen(c->prefix);
        if (!strncmp(path, c->prefix, pl)) {
            path += pl;
        }
        else if (pl && c->prefix[pl - 1] == '/' && strlen(path) == pl - 1
                 && !strncmp(path, c->prefix, pl - 1)) {
            path = "";
        }
    }
    return ap_os_escape_path(r->pool, path, 1);
}

/* The URL an ISRBackend "expr=" template gives for r: bytes that may not
 * stand in a URL percent-encoded (a decoded space or '#' from the request
 * must not truncate or break it), and the authority exactly the template's
 * literal one, so no request can pick the host. */
static const char *expr_url(request_rec *r, const isr_dir_conf_t *c,
                            const char **why)
{
    const char *err = NULL, *url, *auth;
    apr_size_t alen, olen = strlen(c->backend_origin);

    url = ap_expr_str_exec(r, c->backend_expr, &err);
    if (err || !url) {
        *why = apr_psprintf(r->pool, "ISRBackend expression failed: %s",
                            err ? err : "no value");
        return NULL;
    }
    url = isr_ctx_url_clean(r->pool, url);
    auth = isr_ctx_authority(url, NULL, &alen);
    if (!auth || (apr_size_t)(auth + alen - url) != olen
        || strncasecmp(url, c->backend_origin, olen)) {
        *why = apr_psprintf(r->pool, "ISRBackend expression gave '%s', which "
                            "is not on %s", url, c->backend_origin);
        return NULL;
    }
    return url;
}

/* What the backend is told besides the URL: how httpd resolved the request
 * (host and port as UseCanonicalName says, scheme, virtual host) and the
 * client headers ISRForwardHeader names. Nothing else of the client: not
 * its address, cookies or credentials. All of it goes into the key. */
static int forward_headers(request_rec *r, const isr_dir_conf_t *c,
                           apr_array_header_t **out, const char **why)
{
    apr_array_header_t *h = apr_array_make(r->pool, 4, sizeof(const char *));
    const char *host = ap_get_server_name_for_url(r), *name, *value;
    apr_port_t port = ap_get_server_port(r);
    int i;

    APR_ARRAY_PUSH(h, const char *) = ap_is_default_port(port, r)
        ? apr_pstrcat(r->pool, "X-Forwarded-Host: ", host, NULL)
        : apr_psprintf(r->pool, "X-Forwarded-Host: %s:%u", host,
                       (unsigned)port);
    APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(
        r->pool, "X-Forwarded-Proto: ", ap_http_scheme(r), NULL);
    APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(
        r->pool, "X-Forwarded-Server: ", r->server->server_hostname, NULL);
    for (i = 0; c->forward && i < c->forward->nelts; i++) {
        name = APR_ARRAY_IDX(c->forward, i, const char *);
        if (!(value = apr_table_get(r->headers_in, name))) {
            continue;
        }
        if (strlen(value) > ISR_FORWARD_MAX) {
            *why = apr_psprintf(r->pool, "request header %s is longer than "
                                "%d bytes: not forwarded, answering 431",
                                name, ISR_FORWARD_MAX);
            return HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
        }
        /* Accept-Encoding as caches tell it apart (br, gzip, identity),
         * so that every browser's spelling of it does not get an entry. */
        if (!strcasecmp(name, "Accept-Encoding")) {
            value = isr_vary_value(r->pool, name, value);
        }
        APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(r->pool, name, ": ",
                                                      value, NULL);
    }
    *out = h;
    return OK;
}

int isr_request_prepare(request_rec *r, const isr_dir_conf_t *c, isr_req_t *q)
{
    apr_array_header_t *headers;
    const char *err = NULL;
    int rc;

    q->conf = c;
    if (!(q->zone = isr_zone_get(isr_conf_zone(c)))) {
        q->error = apr_psprintf(r->pool, "zone %s is not set up",
                                isr_conf_zone(c));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (c->backend_expr) {
        if (!(q->url = expr_url(r, c, &q->error))) {
            q->no_backend = 1;
            return HTTP_BAD_GATEWAY;
        }
    }
    else {
        q->url = join_url(r->pool, c->backend_url, map_path(r, c), r->args);
    }
    if ((rc = forward_headers(r, c, &headers, &q->error)) != OK) {
        return rc;
    }
    q->ctx.unix_path = c->unix_path;
    q->ctx.url = q->url;
    q->ctx.headers = headers;
    if (c->key_expr) {
        /* The operator's part can only split entries: the context stays in
         * the key, so requests the backend may answer differently never
         * share one. */
        q->ctx.extra = ap_expr_str_exec(r, c->key_expr, &err);
        if (err || !q->ctx.extra) {
            q->error = apr_psprintf(r->pool, "ISRCacheKey failed: %s",
                                    err ? err : "no value");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    q->ctx.strict = q->strict = isr_conf_cc_mode(c) == ISR_CC_STRICT;
    q->key = isr_ctx_key(r->pool, &q->ctx, &q->klen);
    q->hash = isr_store_hash(q->zone, q->key, q->klen);
    q->send = q->ctx.headers;
    if (q->strict) {
        /* A shared cache in front of an origin the operator does not
         * control: the client's end-to-end headers go to it, as mod_proxy
         * sends them, and its Vary says which of them split entries. */
        if ((rc = isr_forward_headers(r, &q->ctx, ISR_FORWARD_CACHE, &headers,
                                      &q->error)) != OK) {
            return rc;
        }
        q->send = headers;
        q->authorized = apr_table_get(r->headers_in, "Authorization")
                        || apr_table_get(r->headers_in, "Cookie");
        isr_policy_request(apr_table_get(r->headers_in, "Cache-Control"),
                           apr_table_get(r->headers_in, "Pragma"), &q->rcc);
    }
    return OK;
}

/* ---- fetching ----------------------------------------------------------- */

/* The largest body that could be stored for q: a larger one is relayed (or
 * not stored) as soon as it passes this, whatever ISRMaxObjectSize says. */
static apr_size_t max_store(const isr_req_t *q)
{
    apr_size_t conf = isr_conf_max_object(q->conf);
    apr_size_t zone = isr_zone_max_body(q->zone, q->klen);

    return conf < zone ? conf : zone;
}

/* A fetch of context ctx (the caller keeps ctx alive for the fetch). */
static void fetch_req_init(isr_fetch_req_t *fr, const isr_req_t *q,
                           const isr_ctx_t *ctx, apr_size_t max_body)
{
    memset(fr, 0, sizeof(*fr));
    fr->url = ctx->url;
    fr->unix_path = ctx->unix_path;
    fr->ca_file = q->conf->ca_file;
    fr->headers = ctx->headers;
    fr->timeout = isr_conf_timeout(q->conf);
    fr->connect_timeout = isr_conf_connect_timeout(q->conf);
    fr->relay_timeout = isr_conf_relay_timeout(q->conf);
    fr->max_store = max_store(q);
    fr->max_body = max_body > fr->max_store ? max_body : fr->max_store;
    fr->abort_flag = isr_refresh_stopping();
}

/* The validators of a stored answer as request headers (RFC 9110 13.1):
 * added to `base` in a copy, so that the context itself stays as keyed. */
static const apr_array_header_t *conditional(apr_pool_t *p,
                                             const apr_array_header_t *base,
                                             const isr_entry_t *stale)
{
    apr_array_header_t *h;
    isr_policy_t pol;

    if (!stale) {
        return base;
    }
    isr_policy_read(stale->headers, stale->hdrlen, &pol);
    if (!pol.etag && !pol.last_modified_str) {
        return base;
    }
    h = apr_array_copy(p, base);
    if (pol.etag) {
        APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(p, "If-None-Match: ",
                                                      pol.etag, NULL);
    }
    if (pol.last_modified_str) {
        APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(
            p, "If-Modified-Since: ", pol.last_modified_str, NULL);
    }
    return h;
}

/* What to store for an answer (status, head, body) requested at `asked`
 * and received at `now`, as the location's ISRCacheControl mode reads its
 * head; *ok is 0 when it may not be stored: marked private (Set-Cookie,
 * no-store, private), too large, of a status not to store (RFC 9111 4.2.2,
 * ISRCacheStatus, or any with explicit freshness), or with nothing to use
 * it for (no freshness, no stale window, no validator). */
typedef struct {
    isr_policy_conf_t pc;
    const isr_status_set_t *cache_status;
    int authorized;             /* the request sent Authorization/Cookie */
    /* The tag block (isr_purge.h): made from the request's path and URL
     * key, or (a refresh) renewed from the entry's old block. */
    const isr_zone_t *zone;
    const apr_array_header_t *tag_headers;
    const char *path;
    apr_uint64_t url_hash, key_hash;
    const unsigned char *old_tags;
    apr_size_t old_taglen;
} store_rules_t;

static void rules_init(store_rules_t *sr, const isr_dir_conf_t *c,
                       const isr_zone_t *zone)
{
    memset(sr, 0, sizeof(*sr));
    isr_conf_policy(c, &sr->pc);
    sr->cache_status = c->cache_status;
    sr->zone = zone;
    sr->tag_headers = isr_conf_tag_headers(c);
}

/* The request's own: its path and its URL's key (a variant's URL's). */
static void rules_for(store_rules_t *sr, request_rec *r, const isr_req_t *q)
{
    rules_init(sr, q->conf, q->zone);
    sr->authorized = q->authorized;
    sr->path = r->uri;
    sr->url_hash = isr_purge_url_hash(q->zone, q->ctx.unix_path, q->ctx.url);
    sr->key_hash = q->hash;
}

static int value_make(apr_pool_t *p, isr_value_t *v, const store_rules_t *sr,
                      const isr_fetch_resp_t *resp, int status,
                      const char *headers, apr_size_t hdrlen,
                      const char *body, apr_size_t bodylen,
                      apr_time_t asked, const isr_purge_mark_t *born,
                      apr_time_t now)
{
    isr_policy_t pol;
    isr_times_t t;
    int ok;

    isr_policy_read(headers, hdrlen, &pol);
    isr_policy_times(&pol, &sr->pc, asked, now, &t);
    memset(v, 0, sizeof(*v));
    v->status = status;
    v->headers = headers;
    v->hdrlen = hdrlen;
    v->body = body;
    v->bodylen = bodylen;
    v->fetched = t.born;
    v->fresh_until = t.fresh_until;
    v->swr_until = t.swr_until;
    v->sie_until = t.sie_until;
    v->stale_until = t.keep_until;
    v->born = born->seq;
    v->born_at = born->at;
    if (sr->old_tags) {
        isr_purge_block_renew(p, sr->zone, sr->old_tags, sr->old_taglen,
                              sr->tag_headers, headers, hdrlen, &v->tags,
                              &v->taglen);
    }
    else {
        isr_purge_block_make(p, sr->zone, sr->path, sr->url_hash,
                             sr->key_hash, sr->tag_headers, headers, hdrlen,
                             &v->tags,
                             &v->taglen);
    }
    if (sr->pc.mode == ISR_CC_OFF) {
        return !resp->uncacheable && !resp->too_large
               && isr_http_storable(sr->cache_status, status,
                                    resp->explicit_fresh);
    }
    /* A targeted field decides alone (RFC 9213); otherwise a private or
     * no-store anywhere in the head counts, as the head parser saw it. */
    ok = !t.uncacheable && !resp->too_large
         && (pol.targeted || !resp->uncacheable)
         && isr_http_storable(sr->cache_status, status,
                              isr_policy_explicit(&pol))
         && t.keep_until > now;
    if (ok && sr->pc.mode == ISR_CC_STRICT) {
        const char *names;
        isr_vary_t vr = isr_vary_names(p, headers, hdrlen, &names);

        /* Vary: * never matches again (RFC 9111 4.1); an answer to a
         * request with credentials is shared only when it says so (3.5:
         * public, s-maxage or must-revalidate; Cookie counts as one). */
        ok = vr != ISR_VARY_ANY && vr != ISR_VARY_BAD
             && (!sr->authorized || pol.public_ || pol.smaxage
                 || pol.must_revalidate);
    }
    return ok;
}

/* ---- compress once ------------------------------------------------------ */

/* Bodies above this renew the fetch's lease before they are compressed. */
#define RENEW_BEFORE_COMPRESS (1024 * 1024)

/* ISRCompress on a value about to be stored (the miss or the refresh)
 * under the lease *lease on (slot, hash). A large body takes a while: the
 * lease is renewed first, so that waiters keep waiting for this fetch. */
static void compress_with(apr_pool_t *p, const isr_compress_conf_t *cc,
                          apr_size_t max_body, isr_value_t *v, server_rec *s,
                          const char *url, isr_zone_t *zone, apr_uint32_t slot,
                          apr_uint64_t hash, apr_uint64_t *lease,
                          apr_interval_time_t hold)
{
    if (isr_compress_on(cc) && v->bodylen > RENEW_BEFORE_COMPRESS) {
        (void)isr_store_renew(zone, slot, hash, lease, apr_time_now(), hold);
    }
    if (isr_compress_value(p, cc, max_body, v) == ISR_COMPRESS_UNDECODED) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0049)
                     "%s: the backend's Content-Encoding could not be "
                     "decoded (another coding, bad data, or over the size "
                     "limit): stored and sent as it came", url);
    }
}

/* The same for a request's fetch. */
static void compress(request_rec *r, isr_req_t *q, isr_value_t *v,
                     apr_uint32_t slot, apr_uint64_t *lease)
{
    isr_compress_conf_t cc;

    isr_conf_compress(q->conf, &cc);
    compress_with(r->pool, &cc, max_store(q), v, r->server, q->url, q->zone,
                  slot, q->hash, lease, LEASE_HOLD(q->conf));
}

/* The location's ISRCompress for a refresh job, in the job's pool. */
static void compress_conf_copy(apr_pool_t *p, const isr_dir_conf_t *c,
                               isr_compress_conf_t *out)
{
    apr_array_header_t *t;
    int i;

    isr_conf_compress(c, out);
    if (out->types) {
        t = apr_array_make(p, out->types->nelts, sizeof(const char *));
        for (i = 0; i < out->types->nelts; i++) {
            APR_ARRAY_PUSH(t, const char *) = apr_pstrdup(
                p, APR_ARRAY_IDX(out->types, i, const char *));
        }
        out->types = t;
    }
}

/* A body too large to store goes to the client as it arrives. The owner of
 * the miss first releases its waiters (they fetch for themselves). */
typedef struct {
    request_rec *r;
    isr_req_t *q;
    apr_uint32_t slot;
    apr_uint64_t lease;         /* 0: no claim to release */
    int keep;                   /* a stored entry is being revalidated: it
                                 * stays (the lease is released) */
} relay_t;

static apr_status_t relay(void *baton, const isr_fetch_resp_t *head,
                          const char *data, apr_size_t len)
{
    relay_t *rl = baton;

    if (!rl->q->relayed) {
        if (rl->lease && rl->keep) {
            /* One request's oversized answer does not flush what the
             * others are served. */
            isr_store_release(rl->q->zone, rl->slot, rl->lease);
            rl->lease = 0;
        }
        else if (rl->lease) {
            isr_store_mark_pass(rl->q->zone, rl->slot, rl->q->hash, rl->lease,
                                apr_time_now() + isr_conf_ttl(rl->q->conf));
            rl->lease = 0;
        }
        rl->q->relayed = 1;
        rl->q->fwd = "uri-miss";
        rl->q->fwd_status = head->status;
        isr_respond_relay_head(rl->r, rl->q, head->status, head->headers,
                               head->hdrlen);
        if (rl->r->header_only) {
            return APR_EOF;   /* HEAD: the head is all the client gets */
        }
    }
    return isr_respond_relay_data(rl->r, rl->q, data, len);
}

/* A 102 or 103 from the backend goes on to the client at once (RFC 9110
 * 15.2: a proxy forwards 1xx; it is never stored), at most INTERIM_MAX of
 * them per fetch. Not 100 (httpd answers the client's Expect itself), not
 * to HTTP/1.0, not on HTTP/2 (mod_http2 makes its own), and only when
 * mod_isr's answer is the response (ISRApply response): with env=/header=
 * another handler answers. The interim head is its own table: nothing of
 * the request's (its type, its status line) changes. */
#define INTERIM_MAX 8

typedef struct {
    request_rec *r;
    int sent;
} interim_t;

static void send_interim(void *baton, int status, const char *headers,
                         apr_size_t hdrlen)
{
    interim_t *in = baton;
    request_rec *r = in->r;
    apr_table_t *saved = r->headers_out;
    isr_http_walk_t w = { headers, headers + hdrlen };
    const char *saved_line = r->status_line, *name, *value;
    int saved_status = r->status;

    if ((status != 102 && status != 103) || r->proto_num < HTTP_VERSION(1, 1)
        || r->connection->master || r->main || in->sent >= INTERIM_MAX) {
        return;
    }
    in->sent++;
    r->headers_out = apr_table_make(r->pool, 4);
    while (isr_http_walk(&w, &name, &value)) {
        if (strncasecmp(name, "Content-", 8)
            && !isr_policy_is_targeted(name)) {
            apr_table_addn(r->headers_out, name, value);
        }
    }
    r->status = status;
    r->status_line = NULL;
    ap_send_interim_response(r, 1);
    r->status = saved_status;
    r->status_line = saved_line;
    r->headers_out = saved;
}

/* isr_fetch(), its time counted in the zone's fetch-duration histogram. */
static apr_status_t timed_fetch(isr_zone_t *zone, isr_fetch_resp_t **presp,
                                const isr_fetch_req_t *req, apr_pool_t *p)
{
    apr_time_t t0 = apr_time_now();
    apr_status_t rv = isr_fetch(presp, req, p);

    isr_store_fetched(zone, apr_time_now() - t0);
    return rv;
}

/* A fetch that produced no usable answer: 5xx counts as a failure. `rl`
 * (or NULL) relays bodies too large to store; `stale` (or NULL) is the
 * entry being revalidated: its validators make the request conditional. */
static apr_status_t fetch_sync(request_rec *r, isr_req_t *q,
                               isr_fetch_resp_t **presp, relay_t *rl,
                               const isr_entry_t *stale)
{
    isr_fetch_req_t fr;
    interim_t in = { r, 0 };
    apr_status_t rv;

    fetch_req_init(&fr, q, &q->ctx, SYNC_MAX_BODY);
    fr.headers = conditional(r->pool, q->send, stale);
    if (isr_conf_apply(q->conf) == ISR_APPLY_RESPONSE) {
        fr.interim = send_interim;
        fr.interim_baton = &in;
    }
    if (q->can_relay) {
        rl->r = r;
        rl->q = q;
        fr.sink = relay;
        fr.sink_baton = rl;
    }
    q->fwd = stale ? "stale" : "uri-miss";
    rv = timed_fetch(q->zone, presp, &fr, r->pool);
    if (rv != APR_SUCCESS) {
        q->error = (*presp)->error;
        return rv;
    }
    q->fwd_status = (*presp)->status;
    if (ISR_FETCH_FAILED_STATUS((*presp)->status)) {
        q->error = apr_psprintf(r->pool, "backend answered %d",
                                (*presp)->status);
        q->failure = *presp;
        return APR_EGENERAL;
    }
    q->label = "MISS";
    q->kept = NULL;
    q->status = (*presp)->status;
    q->headers = (*presp)->headers;
    q->hdrlen = (*presp)->hdrlen;
    q->body = (*presp)->body;
    q->bodylen = (*presp)->bodylen;
    q->alts = NULL;
    q->altlen = 0;
    q->fetched = 0;
    q->fresh_until = 0;
    return APR_SUCCESS;
}

static void answer_value(isr_req_t *q, const isr_value_t *v, const char *label)
{
    q->label = label;
    q->kept = NULL;
    q->status = v->status;
    q->headers = v->headers;
    q->hdrlen = v->hdrlen;
    q->body = v->body;
    q->bodylen = v->bodylen;
    q->alts = v->alts;
    q->altlen = v->altlen;
    q->fetched = v->fetched;
    q->fresh_until = v->fresh_until;
}

static void answer_entry(isr_req_t *q, const isr_entry_t *e, const char *label)
{
    q->label = label;
    q->status = e->status;
    q->headers = e->headers;
    q->hdrlen = e->hdrlen;
    q->body = e->body;
    q->bodylen = e->bodylen;
    q->alts = e->alts;
    q->altlen = e->altlen;
    q->fetched = e->fetched;
    q->fresh_until = e->fresh_until;
}

/* A synchronous fetch that failed while a stale entry was at hand: the
 * entry is the answer inside its stale-if-error window (RFC 5861 4;
 * ISRStaleTTL in Off and On modes), the error otherwise. */
static apr_status_t stale_or_error(isr_req_t *q, const isr_entry_t *stale,
                                   apr_status_t rv, apr_time_t now)
{
    if (now > stale->sie_until) {
        return rv;
    }
    answer_entry(q, stale, "STALE");
    q->fwd = "stale";
    q->detail = "stale-if-error";
    return APR_SUCCESS;
}

/* The fields of a 304 to a request with credentials that may update a
 * shared entry: its freshness and validators. */
static void renewal_fields(apr_pool_t *p, const char **h, apr_size_t *len)
{
    static const char *const keep[] = {
        "Cache-Control", "Expires", "Date", "Age", "ETag", "Last-Modified",
        ISR_POLICY_TARGETED, "CDN-Cache-Control", "Set-Cookie", NULL
    };
    isr_http_walk_t in = { *h, *h + *len };
    const char *name, *value;
    char *out = apr_palloc(p, *len + 1), *w = out;
    apr_size_t n;
    int i;

    while (isr_http_walk(&in, &name, &value)) {
        for (i = 0; keep[i] && strcasecmp(name, keep[i]); i++) {
        }
        if (keep[i]) {
            n = in.h - name;          /* the pair, both NULs included */
            memcpy(w, name, n);
            w += n;
        }
    }
    *h = out;
    *len = w - out;
}

/* Whether a 304 renews the stored answer it answers (RFC 9111 4.3.4): a
 * validator was sent, and a strong ETag in the 304 is the stored one. */
static int renews(const isr_entry_t *stale, const isr_fetch_resp_t *resp)
{
    isr_policy_t sp, np;

    isr_policy_read(stale->headers, stale->hdrlen, &sp);
    isr_policy_read(resp->headers, resp->hdrlen, &np);
    if (!sp.etag && !sp.last_modified_str) {
        return 0;
    }
    return !np.etag || !strncmp(np.etag, "W/", 2)
           || (sp.etag && !strcmp(np.etag, sp.etag));
}

/* isr_store_publish(), counting the bytes stored per coding; a record
 * whose compressed copies make it too large for the zone is stored with
 * fewer (then none: v says what was stored). */
static apr_status_t publish(apr_pool_t *p, isr_zone_t *zone,
                            apr_uint32_t slot, apr_uint64_t lease,
                            const char *key, apr_size_t klen,
                            apr_uint64_t hash, isr_value_t *v,
                            isr_tier_lease_t *tl)
{
    static const isr_stat_t src[ISR_CODINGS] = {
        0, ISR_STAT_GZIP_SRC, ISR_STAT_BR_SRC
    };
    static const isr_stat_t out[ISR_CODINGS] = {
        0, ISR_STAT_GZIP_BYTES, ISR_STAT_BR_BYTES
    };
    apr_status_t rv = isr_store_publish(zone, slot, lease, key, klen, hash, v);
    const char *b;
    apr_size_t l;
    int c;

    while (rv == APR_ENOSPC && isr_compress_trim(p, v)) {
        rv = isr_store_publish(zone, slot, lease, key, klen, hash, v);
    }
    if (rv == APR_SUCCESS && tl && tl->token) {
        /* Under the cluster lease: for every server (the second tier). */
        isr_tier_put(zone, key, klen, tl, v, p);
    }
    if (rv == APR_SUCCESS) {
        isr_store_add(zone, ISR_STAT_BODY_BYTES, v->bodylen);
        for (c = ISR_CODING_GZIP; c < ISR_CODINGS; c++) {
            if (isr_compress_alt(v->alts, v->altlen, c, &b, &l)) {
                isr_store_add(zone, src[c], v->bodylen);
                isr_store_add(zone, out[c], l);
            }
        }
    }
    return rv;
}

/* Publish v for key under the caller's lease. A failure releases the
 * waiters at once (they fetch for themselves); a record too large for the
 * zone stays uncached for a TTL. */
static apr_status_t store_value(request_rec *r, isr_req_t *q,
                                apr_uint32_t slot, apr_uint64_t lease,
                                const char *key, apr_size_t klen,
                                apr_uint64_t hash, isr_value_t *v,
                                apr_time_t now)
{
    apr_status_t rv = publish(r->pool, q->zone, slot, lease, key, klen, hash,
                              v, key == q->key ? &q->tier_lease : NULL);

    if (rv == APR_EEXIST) {
        /* A newer answer is there already: this one goes to its client
         * only. */
        isr_store_release(q->zone, slot, lease);
        return rv;
    }
    isr_store_count(q->zone, rv == APR_SUCCESS ? ISR_STAT_STORE
                                               : ISR_STAT_PASS);
    if (rv != APR_SUCCESS) {
        isr_store_mark_pass(q->zone, slot, hash, lease,
                            now + (rv == APR_ENOSPC ? isr_conf_ttl(q->conf)
                                                    : APR_USEC_PER_SEC));
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, ISR_LOGNO(0021)
                      "%s: answer served but not stored in zone %s", q->url,
                      q->zone->name);
        return rv;
    }
    q->stored = 1;
    q->fresh_until = v->fresh_until;
    return APR_SUCCESS;
}

/* ---- Vary (Strict mode) -------------------------------------------------- */

/* A marker outlives its variants' windows by this much. */
#define MARKER_SLACK apr_time_from_sec(86400)

/* Where a variant's header values come from: what the backend is sent
 * (q->send), never the client's headers as they came: a header the
 * forwarding drops (one that Connection names, a conditional, the client's
 * X-Forwarded-*) must not key a variant its answer was not made for. */
static apr_table_t *vary_source(request_rec *r, const isr_req_t *q)
{
    apr_table_t *t;
    const char *h, *colon;
    int i;

    t = apr_table_make(r->pool, 8);
    for (i = 0; q->send && i < q->send->nelts; i++) {
        h = APR_ARRAY_IDX(q->send, i, const char *);
        if ((colon = strchr(h, ':'))) {
            apr_table_addn(t, apr_pstrmemdup(r->pool, h, colon - h),
                           colon[1] == ' ' ? colon + 2 : colon + 1);
        }
    }
    return t;
}

static int is_marker(isr_look_t st, const isr_entry_t *e)
{
    return (st == ISR_LOOK_FRESH || st == ISR_LOOK_STALE)
           && e->status == ISR_VARY_STATUS;
}

/* The URL's key holds marker e: q becomes the request's variant. 0 when
 * the marker does not parse (or q is a variant already). */
static int to_variant(request_rec *r, isr_req_t *q, const isr_entry_t *e)
{
    isr_ctx_t v;

    if (q->variant || !isr_vary_marker_read(e->headers, e->hdrlen,
                                            &q->marker_names,
                                            &q->marker_gen)) {
        return 0;
    }
    q->variant = 1;
    q->marker = *e;
    q->base_key = q->key;
    q->base_klen = q->klen;
    isr_vary_ctx(r->pool, &q->ctx, q->marker_names, q->marker_gen,
                 vary_source(r, q), &v);
    q->ctx = v;
    q->key = isr_ctx_key(r->pool, &q->ctx, &q->klen);
    q->hash = isr_store_hash(q->zone, q->key, q->klen);
    return 1;
}

static void marker_value(apr_pool_t *p, isr_value_t *m, const char *names,
                         const char *gen, const isr_value_t *v, apr_time_t now)
{
    memset(m, 0, sizeof(*m));
    m->status = ISR_VARY_STATUS;
    isr_vary_marker(p, names, gen, &m->headers, &m->hdrlen);
    m->fetched = now;
    m->born = v->born;
    m->born_at = v->born_at;
    m->no_span = 1;
    m->tags = v->tags;
    m->taglen = v->taglen;
    m->fresh_until = m->stale_until = m->swr_until = m->sie_until
        = (v->stale_until > now ? v->stale_until : now) + MARKER_SLACK;
}

/* An answer that varies on request headers. For the URL's own key (no
 * marker yet; the caller holds its lease): the answer goes under its
 * variant key, then the marker under the URL's key, so that waiters for
 * the URL find both. For a variant: stored as it is, and the marker's life
 * extended when it would end before the variant's. */
static void store_varied(request_rec *r, isr_req_t *q, apr_uint32_t slot,
                         apr_uint64_t lease, isr_value_t *v,
                         const char *names, apr_time_t now)
{
    apr_interval_time_t hold = LEASE_HOLD(q->conf);
    apr_uint64_t vhash, vlease, mlease;
    apr_uint32_t vslot, vseq;
    const char *vkey, *gen;
    apr_size_t vklen;
    apr_status_t rv;
    isr_value_t m;
    isr_ctx_t vctx;

    if (q->variant) {
        if (strcmp(names, q->marker_names)) {
            /* The URL varies on other headers now: its marker goes (the
             * next request makes a new one, of a new generation), and
             * this answer is not stored under a key of the old names. */
            isr_store_mark_pass(q->zone, slot, q->hash, lease,
                                now + APR_USEC_PER_SEC);
            if (isr_store_claim_stale(q->zone, &q->marker, now, hold, &mlease)
                == ISR_CLAIM_OWNED) {
                isr_store_mark_pass(q->zone, q->marker.slot, q->marker.hash,
                                    mlease, now + APR_USEC_PER_SEC);
            }
            return;
        }
        if (store_value(r, q, slot, lease, q->key, q->klen, q->hash, v, now)
            == APR_SUCCESS
            && q->marker.until < v->stale_until + MARKER_SLACK / 2
            && isr_store_claim_stale(q->zone, &q->marker, now, hold, &mlease)
               == ISR_CLAIM_OWNED) {
            marker_value(r->pool, &m, names, q->marker_gen, v, now);
            if (isr_store_publish(q->zone, q->marker.slot, mlease, q->base_key,
                                  q->base_klen, q->marker.hash, &m)
                != APR_SUCCESS) {
                isr_store_release(q->zone, q->marker.slot, mlease);
            }
        }
        return;
    }
    gen = apr_psprintf(r->pool, "%" APR_UINT64_T_HEX_FMT,
                       (apr_uint64_t)now ^ ((apr_uint64_t)getpid() << 44));
    isr_vary_ctx(r->pool, &q->ctx, names, gen, vary_source(r, q), &vctx);
    vkey = isr_ctx_key(r->pool, &vctx, &vklen);
    vhash = isr_store_hash(q->zone, vkey, vklen);
    if (isr_store_claim_miss(q->zone, vhash, now, hold, &vslot, &vseq, &vlease)
        == ISR_CLAIM_OWNED) {
        (void)store_value(r, q, vslot, vlease, vkey, vklen, vhash, v, now);
    }
    marker_value(r->pool, &m, names, gen, v, now);
    rv = isr_store_publish(q->zone, slot, lease, q->key, q->klen, q->hash, &m);
    if (rv == APR_EEXIST) {
        isr_store_release(q->zone, slot, lease);
    }
    else if (rv != APR_SUCCESS) {
        isr_store_mark_pass(q->zone, slot, q->hash, lease,
                            now + APR_USEC_PER_SEC);
    }
    q->fresh_until = v->fresh_until;
}

static apr_status_t fetch_and_store(request_rec *r, isr_req_t *q,
                                    apr_uint32_t slot, apr_uint64_t lease,
                                    const isr_entry_t *stale)
{
    relay_t rl = { NULL, NULL, slot, lease, stale != NULL };
    store_rules_t sr;
    isr_fetch_resp_t *resp;
    isr_value_t v;
    apr_time_t asked = apr_time_now(), now;
    isr_purge_mark_t born = q->mark;
    apr_status_t rv = fetch_sync(r, q, &resp, &rl, stale);
    const char *names;
    int ok, renewed = 0;

    if (rv == APR_SUCCESS && stale && resp->status == HTTP_NOT_MODIFIED
        && !(renewed = renews(stale, resp))) {
        /* Not about the stored answer (another strong validator, or no
         * validator was sent): fetch it whole. */
        asked = apr_time_now();
        isr_purge_mark(q->zone, &born);
        rv = fetch_sync(r, q, &resp, &rl, NULL);
    }
    now = apr_time_now();
    if (q->relayed) {
        /* Waiters were released when the relay started. */
        isr_store_count(q->zone, ISR_STAT_PASS);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        /* Remembered for ISRErrorTTL: until then requests for the key get
         * this answer (or the stale entry) without asking the backend. */
        if (stale) {
            if (isr_conf_error_ttl(q->conf) > 0) {
                isr_store_remember_failure(q->zone, slot, lease,
                                           now + isr_conf_error_ttl(q->conf));
            }
            else {
                isr_store_release(q->zone, slot, lease);
            }
            isr_store_count(q->zone, ISR_STAT_REFRESH_FAIL);
            return stale_or_error(q, stale, rv, now);
        }
        isr_store_mark_failed(q->zone, slot, q->hash, lease, now,
                              now + isr_conf_error_ttl(q->conf));
        return rv;
    }
    rules_for(&sr, r, q);
    if (renewed) {
        /* RFC 9111 4.3.4: the stored answer, its head updated. */
        const char *h;
        apr_size_t hl;

        const char *fh = resp->headers;
        apr_size_t fl = resp->hdrlen;

        /* The body is the shared one the validator names: a 304 to a
         * request with credentials renews it too (unless the 304 itself
         * says private, no-store or sets a cookie), but only its freshness
         * and validators: whatever else it carries may be that user's. */
        if (q->authorized) {
            renewal_fields(r->pool, &fh, &fl);
        }
        isr_policy_update(r->pool, stale->headers, stale->hdrlen, fh, fl, &h,
                          &hl);
        sr.authorized = 0;
        ok = value_make(r->pool, &v, &sr, resp, stale->status, h, hl,
                        stale->body, stale->bodylen, asked, &born, now);
        v.alts = stale->alts;
        v.altlen = stale->altlen;
        isr_compress_renewed(&v);
        answer_value(q, &v, "REVALIDATED");
        if (!ok) {
            /* Renewed for this request only (a Set-Cookie in the 304, or
             * credentials): the stored entry stays as it was. */
            isr_store_release(q->zone, slot, lease);
            return APR_SUCCESS;
        }
    }
    else {
        ok = value_make(r->pool, &v, &sr, resp, resp->status, resp->headers,
                        resp->hdrlen, resp->body, resp->bodylen, asked, &born,
                        now);
        if (ok) {
            /* Compressed once, here; the miss is answered from it too
             * (its copies as stored: below). */
            compress(r, q, &v, slot, &lease);
            q->headers = v.headers;
            q->hdrlen = v.hdrlen;
            q->body = v.body;
            q->bodylen = v.bodylen;
        }
    }
    if (!ok && stale && q->authorized) {
        /* A revalidation whose answer may not be stored because of this
         * client's credentials: served to this request, and the stored
         * entry stays for the others (no client flushes it at will). An
         * answer the origin itself made uncacheable passes the key below,
         * which releases every waiter at once. */
        isr_store_count(q->zone, ISR_STAT_PASS);
        isr_store_release(q->zone, slot, lease);
        return APR_SUCCESS;
    }
    if (!ok) {
        /* Release every waiter at once: they fetch for themselves. An
         * answer the backend marked private stays uncached for a TTL; one
         * of a status not to store (a 429, a 302) is looked at again soon;
         * one refused for this request's credentials at once (no client
         * can make the URL uncached for the others). */
        isr_store_count(q->zone, ISR_STAT_PASS);
        isr_store_mark_pass(q->zone, slot, q->hash, lease,
                            now + (q->authorized ? apr_time_from_msec(100)
                                   : resp->uncacheable || resp->too_large
                                   ? isr_conf_ttl(q->conf) : APR_USEC_PER_SEC));
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, ISR_LOGNO(0020)
                      "%s: not stored (%s)", q->url,
                      resp->too_large ? "too large to store"
                      : resp->uncacheable ? "Set-Cookie or Cache-Control"
                      : apr_psprintf(r->pool, "status %d or no freshness",
                                     resp->status));
        return APR_SUCCESS;
    }
    if (q->strict && isr_vary_names(r->pool, v.headers, v.hdrlen, &names)
                     == ISR_VARY_SOME) {
        store_varied(r, q, slot, lease, &v, names, now);
    }
    else {
        store_value(r, q, slot, lease, q->key, q->klen, q->hash, &v, now);
    }
    /* The copies as stored (fewer when the zone could not take them). */
    q->alts = v.alts;
    q->altlen = v.altlen;
    return APR_SUCCESS;
}

/* ---- background refresh ------------------------------------------------- */

typedef struct {
    apr_pool_t *pool;            /* unmanaged: the job owns it */
    server_rec *s;
    isr_zone_t *zone;
    apr_uint32_t slot;
    apr_uint64_t lease;
    apr_uint64_t hash;
    const char *key;
    apr_size_t klen;
    isr_fetch_req_t req;
    store_rules_t rules;
    apr_interval_time_t ttl, retry;
    apr_interval_time_t hold;    /* lease length once the fetch starts */
    const char *etag, *lastmod;  /* the validators sent, or NULL */
    int url_key;                 /* Strict mode, the key of a URL (not of
                                  * a variant) */
    int warm;                    /* POST <admin>/warm: the job claims the
                                  * key when it runs (no client waits for a
                                  * job in the queue, no refresh of a stale
                                  * entry is held off by one): WARM_ENTRY
                                  * under the entry's lease, as a refresh,
                                  * or WARM_MISS as a miss would */
    isr_compress_conf_t compress;
    apr_time_t fetched;          /* the entry's birth (0: none) */
    isr_tier_lease_t tier;       /* the cluster lease (isr_tier.h), or 0 */
} refresh_job_t;

#define WARM_QUEUED 1
#define WARM_ENTRY  2
#define WARM_MISS   3

/* A refresh that fetched but could not store: the entry stays stale. A
 * record too large for the zone is dropped for a TTL (like a miss); any
 * other failure backs off like a failed fetch. Never retried per request. */
static void refresh_not_stored(refresh_job_t *job, apr_status_t rv,
                               apr_time_t now)
{
    if (rv == APR_EEXIST) {
        /* A refresh backs off as after a failure: were the clock stepped
         * back, each stale hit would fetch again and again be refused. */
        if (job->warm) {
            isr_store_release(job->zone, job->slot, job->lease);
        }
        else {
            isr_store_backoff(job->zone, job->slot, job->lease,
                              now + job->retry);
        }
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, job->s, ISR_LOGNO(0066)
                     "%s of %s not stored: zone %s holds a newer answer",
                     job->warm ? "warm" : "refresh", job->req.url,
                     job->zone->name);
        return;
    }
    isr_store_count(job->zone, ISR_STAT_PASS);
    if (rv == APR_ENOSPC) {
        isr_store_mark_pass(job->zone, job->slot, job->hash, job->lease,
                            now + job->ttl);
    }
    else {
        isr_store_backoff(job->zone, job->slot, job->lease, now + job->retry);
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, rv, job->s, ISR_LOGNO(0025)
                 "refresh of %s fetched but not stored in zone %s",
                 job->req.url, job->zone->name);
}

static int same(const char *a, const char *b)
{
    return a ? b && !strcmp(a, b) : !b;
}

/* A 304 to a refresh: the entry as it is now (the job holds its lease, so
 * it is the version whose validators were sent), its head updated. 1 with
 * *v to store, 0 when the renewed answer may not be stored (a Set-Cookie
 * or no-store in the 304), -1 when it is not the entry's (gone, or the
 * 304 names another strong validator). */
static int refresh_not_modified(refresh_job_t *job,
                                const isr_fetch_resp_t *resp,
                                apr_time_t asked,
                                const isr_purge_mark_t *born,
                                apr_time_t now, isr_value_t *v)
{
    isr_policy_t pol;
    isr_entry_t e;
    isr_look_t st;
    const char *h;
    apr_size_t hl;
    int ok;

    st = isr_store_lookup(job->zone, job->key, job->klen, job->hash, now,
                          job->pool, &e);
    if ((st != ISR_LOOK_FRESH && st != ISR_LOOK_STALE) || e.slot != job->slot
        || !renews(&e, resp)) {
        return -1;
    }
    isr_policy_read(e.headers, e.hdrlen, &pol);
    if (!same(pol.etag, job->etag) || !same(pol.last_modified_str,
                                             job->lastmod)) {
        return -1;
    }
    isr_policy_update(job->pool, e.headers, e.hdrlen, resp->headers,
                      resp->hdrlen, &h, &hl);
    ok = value_make(job->pool, v, &job->rules, resp, e.status, h, hl, e.body,
                    e.bodylen, asked, born, now);
    v->alts = e.alts;
    v->altlen = e.altlen;
    isr_compress_renewed(v);
    return ok;
}

static void refresh_health(const refresh_job_t *job, unsigned result,
                           const isr_fetch_resp_t *resp, apr_status_t rv,
                           apr_time_t now)
{
    isr_store_health_note(job->zone, job->slot, job->hash, result,
                          resp ? resp->status : 0, rv, now);
}

/* A warm job's claim, when it runs: the key's entry under its lease (with
 * its validators and tag block, as a refresh), or the key as a miss. 0 when
 * there is nothing for it to do: a fetch or refresh under way or backing
 * off, an uncacheable key, a Vary marker (its variants are clients'). */
static int warm_claim(refresh_job_t *job, apr_time_t now)
{
    isr_policy_t pol;
    isr_entry_t e;
    apr_uint32_t seq;

    switch (isr_store_lookup(job->zone, job->key, job->klen, job->hash, now,
                             job->pool, &e)) {
    case ISR_LOOK_FRESH:
    case ISR_LOOK_STALE:
        if (e.status == ISR_VARY_STATUS
            || !isr_store_claim_refresh(job->zone, &e, now, job->hold,
                                        &job->lease)) {
            return 0;
        }
        job->warm = WARM_ENTRY;
        job->slot = e.slot;
        if (e.taglen) {
            job->rules.old_tags = apr_pmemdup(job->pool, e.tags, e.taglen);
            job->rules.old_taglen = e.taglen;
        }
        isr_policy_read(e.headers, e.hdrlen, &pol);
        job->etag = pol.etag ? apr_pstrdup(job->pool, pol.etag) : NULL;
        job->lastmod = pol.last_modified_str
                           ? apr_pstrdup(job->pool, pol.last_modified_str)
                           : NULL;
        job->req.headers = conditional(job->pool, job->req.headers, &e);
        return 1;
    case ISR_LOOK_PENDING:
        if (isr_store_lease_live(e.lease, now)) {
            return 0;
        }
        break;
    case ISR_LOOK_PASS:
        return 0;
    default:
        break;
    }
    job->warm = WARM_MISS;
    return isr_store_claim_miss(job->zone, job->hash, now, job->hold,
                                &job->slot, &seq, &job->lease)
           == ISR_CLAIM_OWNED;
}

/* The second tier before a refresh's fetch: an answer newer than the
 * entry's that another server stored is taken instead, and while another
 * server refreshes the key this job waits for it (the entry is served
 * stale meanwhile). 1 when the job is done, 0 when it fetches (holding the
 * cluster lease in job->tier, or alone when the tier does not answer). */
static int tier_refresh(refresh_job_t *job)
{
    apr_time_t now = apr_time_now(), until = now + job->hold;
    isr_tier_ticket_t tk;
    isr_purge_mark_t born;
    isr_tier_rec_t rec;
    isr_tier_claim_t st;
    apr_status_t rv;
    isr_value_t v;
    int want = 1;

    for (;;) {
        isr_purge_mark(job->zone, &born);
        tk = isr_tier_ticket(job->zone, job->key, job->klen);
        st = isr_tier_claim(job->zone, job->key, job->klen, want,
                            job->fetched, job->hold, job->pool, &rec,
                            &job->tier);
        now = apr_time_now();
        if (st == ISR_TIER_FOUND) {
            if (rec.fetched > job->fetched && rec.fresh_until > now
                && isr_tier_value(job->zone, &rec, &born, now, job->pool,
                                  &v)) {
                rv = publish(job->pool, job->zone, job->slot, job->lease,
                             job->key, job->klen, job->hash, &v, NULL);
                if (rv != APR_SUCCESS) {
                    refresh_not_stored(job, rv, now);
                }
                else {
                    isr_store_count(job->zone, ISR_STAT_REFRESH_OK);
                    refresh_health(job, ISR_HEALTH_OK, NULL, APR_SUCCESS,
                                   now);
                    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, job->s,
                                 ISR_LOGNO(0079) "refreshed %s from Redis",
                                 job->req.url);
                }
                return 1;
            }
            /* Of no use now (not fresh, or malformed): the lease alone. */
            want = 0;
            continue;
        }
        if (st != ISR_TIER_BUSY) {
            return 0;
        }
        if (now >= until
            || !isr_store_renew(job->zone, job->slot, job->hash, &job->lease,
                                now, job->hold)) {
            /* The other server's refresh did not land in time: the entry
             * stays stale, a later request refreshes it. */
            isr_store_release(job->zone, job->slot, job->lease);
            return 1;
        }
        isr_tier_wait(job->zone, job->key, job->klen, tk,
                      until - now < apr_time_from_sec(1)
                          ? until - now : apr_time_from_sec(1));
        want = 1;
    }
}

static void refresh_run(void *baton)
{
    refresh_job_t *job = baton;
    isr_fetch_resp_t *resp = NULL;
    isr_value_t v;
    apr_time_t now = apr_time_now(), asked;
    isr_purge_mark_t born;
    apr_status_t rv;
    int ok = 0;

    if (job->warm) {
        if (*isr_refresh_stopping() || !warm_claim(job, now)) {
            goto leave;
        }
    }
    else if (*isr_refresh_stopping()) {
        /* The child is stopping: let another child refresh soon. */
        isr_store_release(job->zone, job->slot, job->lease);
        goto leave;
    }
    /* A job that waited in the queue past its lease may have been claimed
     * again meanwhile: only the holder of the lease fetches. */
    if (!isr_store_renew(job->zone, job->slot, job->hash, &job->lease, now,
                         job->hold)) {
        goto leave;
    }
    if (isr_tier_on(job->zone) && tier_refresh(job)) {
        goto leave;
    }
    asked = now = apr_time_now();
    isr_purge_mark(job->zone, &born);
    rv = timed_fetch(job->zone, &resp, &job->req, job->pool);
    now = apr_time_now();
    if (rv == APR_SUCCESS && resp->status == HTTP_NOT_MODIFIED
        && (job->etag || job->lastmod)) {
        ok = refresh_not_modified(job, resp, asked, &born, now, &v);
        if (ok < 0) {
            /* Not this entry's: back off like any answer not to store. */
            ok = 0;
            rv = APR_EGENERAL;
            resp->error = "a 304 that does not renew the stored answer";
        }
        else if (!ok) {
            isr_store_mark_pass(job->zone, job->slot, job->hash, job->lease,
                                now + job->ttl);
            refresh_health(job, ISR_HEALTH_UNCACHEABLE, resp, rv, now);
            goto leave;
        }
    }
    else if (rv == APR_SUCCESS && !ISR_FETCH_FAILED_STATUS(resp->status)) {
        const char *names;

        ok = value_make(job->pool, &v, &job->rules, resp, resp->status,
                        resp->headers, resp->hdrlen, resp->body, resp->bodylen,
                        asked, &born, now);
        if (ok) {
            compress_with(job->pool, &job->compress, job->req.max_store, &v,
                          job->s, job->req.url, job->zone, job->slot,
                          job->hash, &job->lease, job->hold);
        }
        if (ok && job->url_key
            && isr_vary_names(job->pool, resp->headers, resp->hdrlen, &names)
               == ISR_VARY_SOME) {
            /* The URL varies now: the refresh sent none of the client's
             * headers, so its answer is no variant's. The entry goes; the
             * next request stores the marker and its own variant. A warm
             * leaves the key to that request. */
            if (job->warm) {
                isr_store_release(job->zone, job->slot, job->lease);
            }
            else {
                isr_store_mark_pass(job->zone, job->slot, job->hash,
                                    job->lease, now + APR_USEC_PER_SEC);
            }
            goto leave;
        }
    }
    if (rv == APR_ECONNABORTED) {
        isr_store_release(job->zone, job->slot, job->lease);
    }
    else if (rv == APR_ENOSPC || (rv == APR_SUCCESS && !ok
                                  && (resp->uncacheable || resp->too_large))) {
        isr_store_mark_pass(job->zone, job->slot, job->hash, job->lease,
                            now + job->ttl);
        refresh_health(job, ISR_HEALTH_UNCACHEABLE, resp, rv, now);
    }
    else if (!ok) {
        /* A 5xx, or an answer of a status not to store (a 400 or a 429
         * must not replace a good page): keep serving the stale entry. A
         * warm of a key without one leaves it to the next request. */
        if (job->warm == WARM_MISS) {
            isr_store_release(job->zone, job->slot, job->lease);
        }
        else {
            isr_store_backoff(job->zone, job->slot, job->lease,
                              now + job->retry);
        }
        isr_store_count(job->zone, ISR_STAT_REFRESH_FAIL);
        refresh_health(job, ISR_HEALTH_FAILED, resp, rv, now);
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, job->s, ISR_LOGNO(0022)
                     "%s of %s failed (%s)%s", job->warm ? "warm" : "refresh",
                     job->req.url,
                     rv == APR_SUCCESS
                         ? apr_psprintf(job->pool, "status %d", resp->status)
                         : resp->error,
                     job->warm == WARM_MISS ? ""
                     : apr_psprintf(job->pool, ": serving stale, next try in "
                                    "%" APR_TIME_T_FMT "s",
                                    apr_time_sec(job->retry)));
    }
    else {
        rv = publish(job->pool, job->zone, job->slot, job->lease, job->key,
                     job->klen, job->hash, &v, &job->tier);
        if (rv != APR_SUCCESS) {
            refresh_not_stored(job, rv, now);
            refresh_health(job, ISR_HEALTH_NOT_STORED, resp, APR_SUCCESS,
                           now);
        }
        else {
            refresh_health(job, resp->status == HTTP_NOT_MODIFIED
                                    ? ISR_HEALTH_NOT_MODIFIED : ISR_HEALTH_OK,
                           resp, APR_SUCCESS, now);
            isr_store_count(job->zone, ISR_STAT_STORE);
            isr_store_count(job->zone, ISR_STAT_REFRESH_OK);
            if (resp->status == HTTP_NOT_MODIFIED) {
                isr_store_count(job->zone, ISR_STAT_REFRESH_304);
            }
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, job->s, ISR_LOGNO(0023)
                         "%s %s%s", job->warm ? "warmed" : "refreshed",
                         job->req.url,
                         resp->status == HTTP_NOT_MODIFIED
                             ? " (not modified)" : "");
        }
    }
leave:
    isr_tier_release(job->zone, job->key, job->klen, &job->tier);
    apr_pool_destroy(job->pool);
}

/* An array of strings, copied into p (NULL stays NULL). */
static const apr_array_header_t *strings_copy(apr_pool_t *p,
                                              const apr_array_header_t *a)
{
    apr_array_header_t *c;
    int i;

    if (!a) {
        return NULL;
    }
    c = apr_array_make(p, a->nelts ? a->nelts : 1, sizeof(const char *));
    for (i = 0; i < a->nelts; i++) {
        APR_ARRAY_PUSH(c, const char *) =
            apr_pstrdup(p, APR_ARRAY_IDX(a, i, const char *));
    }
    return c;
}

/* The job owns what it needs: the request is gone when it runs. What it
 * sends is parsed back out of the entry's key, the context recorded with
 * the entry, never taken from the request that found it stale; the
 * validators are the entry's own. */
static apr_status_t refresh_queue(request_rec *r, isr_req_t *q,
                                  const isr_entry_t *e, apr_uint64_t lease,
                                  int warm)
{
    const isr_dir_conf_t *c = q->conf;
    refresh_job_t *job;
    isr_policy_t pol;
    isr_ctx_t *ctx;
    apr_pool_t *p;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL))) {
        if (e) {
            isr_store_release(q->zone, e->slot, lease);
        }
        return rv;
    }
    job = apr_pcalloc(p, sizeof(*job));
    ctx = apr_pcalloc(p, sizeof(*ctx));
    job->pool = p;
    job->s = r->server;
    job->zone = q->zone;
    job->slot = e ? e->slot : 0;
    job->lease = lease;
    job->warm = warm;
    job->hash = q->hash;
    job->key = apr_pmemdup(p, q->key, q->klen);
    job->klen = q->klen;
    job->ttl = isr_conf_ttl(c);
    job->retry = isr_conf_retry(c);
    job->hold = LEASE_HOLD(c);
    if (e) {
        rules_init(&job->rules, c, q->zone);
    }
    else {
        /* A warm: the request's own tag block, as a miss makes it (its
         * path and URL, for purges by prefix and url), unless the job
         * finds an entry whose block it renews (warm_claim). */
        rules_for(&job->rules, r, q);
        job->rules.path = apr_pstrdup(p, r->uri);
    }
    job->rules.tag_headers = strings_copy(p, job->rules.tag_headers);
    if (e && e->taglen) {
        job->rules.old_tags = apr_pmemdup(p, e->tags, e->taglen);
        job->rules.old_taglen = e->taglen;
    }
    compress_conf_copy(p, c, &job->compress);
    if (job->rules.cache_status) {
        job->rules.cache_status = apr_pmemdup(p, c->cache_status,
                                              sizeof(*c->cache_status));
    }
    if (isr_ctx_parse(p, job->key, job->klen, ctx) != APR_SUCCESS) {
        /* Every key is built by isr_ctx_key: this cannot happen. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, ISR_LOGNO(0041)
                      "%s: the stored key does not parse, not refreshed",
                      q->url);
        if (e) {
            isr_store_release(q->zone, e->slot, lease);
        }
        apr_pool_destroy(p);
        return APR_EGENERAL;
    }
    fetch_req_init(&job->req, q, ctx, 0);
    job->url_key = q->strict && !ctx->variant;
    if (e) {
        job->fetched = e->fetched;
        isr_policy_read(e->headers, e->hdrlen, &pol);
        job->etag = pol.etag ? apr_pstrdup(p, pol.etag) : NULL;
        job->lastmod = pol.last_modified_str
                           ? apr_pstrdup(p, pol.last_modified_str) : NULL;
    }
    job->req.headers = conditional(p, ctx->headers, e);
    job->req.ca_file = c->ca_file ? apr_pstrdup(p, c->ca_file) : NULL;
    isr_store_count(q->zone, ISR_STAT_REFRESH);
    rv = warm ? isr_refresh_submit_bulk(refresh_run, job)
              : isr_refresh_submit(refresh_run, job);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, ISR_LOGNO(0024)
                      "%s: refresh queue full, %s", q->url,
                      warm ? "not warmed" : "a later request will retry");
        if (e) {
            isr_store_release(q->zone, e->slot, lease);
        }
        apr_pool_destroy(p);
        return rv;
    }
    return APR_SUCCESS;
}

static void refresh_start(request_rec *r, isr_req_t *q, const isr_entry_t *e,
                          apr_uint64_t lease)
{
    (void)refresh_queue(r, q, e, lease, 0);
}

const char *isr_request_warm(request_rec *r, isr_req_t *q)
{
    apr_time_t now = apr_time_now();
    isr_entry_t e;
    isr_look_t st;

    st = isr_store_lookup(q->zone, q->key, q->klen, q->hash, now, r->pool, &e);
    if (is_marker(st, &e)) {
        /* The URL varies: the variant of the warm request's headers. */
        if (!to_variant(r, q, &e)) {
            return "varies";
        }
        st = isr_store_lookup(q->zone, q->key, q->klen, q->hash, now, r->pool,
                              &e);
    }
    /* What the job would find now; it decides again when it runs. */
    switch (st) {
    case ISR_LOOK_FRESH:
    case ISR_LOOK_STALE:
        if (isr_store_refresh_held(&e, now)) {
            return "busy";
        }
        break;
    case ISR_LOOK_PENDING:
        if (isr_store_lease_live(e.lease, now)) {
            return "busy";
        }
        break;
    case ISR_LOOK_PASS:
        return "uncacheable";
    default:
        break;
    }
    return refresh_queue(r, q, NULL, 0, WARM_QUEUED) == APR_SUCCESS
               ? "queued" : "queue full";
}

/* ---- the flow ----------------------------------------------------------- */

/* A lookup that may use this child's shared record copies. */
static isr_look_t lookup(request_rec *r, isr_req_t *q, apr_time_t now,
                         isr_entry_t *e)
{
    isr_local_lookup_t l;
    isr_look_t st;

    isr_local_lookup_init(&l, r->pool);
    st = isr_store_lookup_with(q->zone, q->key, q->klen, q->hash, now,
                               r->pool, &l.ops, e);
    q->kept = (e->record && e->record == l.kept) ? l.kept : NULL;
    return st;
}


/* Whether a stored answer suits the request's Cache-Control as it is
 * (RFC 9111 5.2.1: no-cache, max-age, min-fresh). */
static int request_accepts(const isr_req_t *q, const isr_entry_t *e,
                           apr_time_t now)
{
    const isr_policy_req_t *c = &q->rcc;

    return !c->no_cache
           && (c->max_age < 0 || now - e->fetched
                                 <= apr_time_from_sec(c->max_age))
           && (c->min_fresh < 0 || e->fresh_until - now
                                   >= apr_time_from_sec(c->min_fresh));
}

/* Whether the request's max-stale accepts a stale answer the origin lets
 * be served stale at all (not no-cache or must-revalidate). */
static int stale_accepted(const isr_req_t *q, const isr_entry_t *e,
                          apr_time_t now)
{
    isr_policy_t pol;

    if (q->rcc.max_stale < 0 || now - e->fresh_until
                                > apr_time_from_sec(q->rcc.max_stale)) {
        return 0;
    }
    isr_policy_read(e->headers, e->hdrlen, &pol);
    return !pol.no_cache && !pol.must_revalidate;
}

/* ISRRefreshAhead: a fresh entry (fresh for a second or more) in the last
 * part of its fresh time. A hit then costs a comparison, and one load of
 * the lease while a refresh runs (isr_store_claim_refresh). */
static int ahead(const isr_dir_conf_t *c, const isr_entry_t *e,
                 apr_time_t now)
{
    int pct = isr_conf_refresh_ahead(c);
    apr_interval_time_t life = e->fresh_until - e->fetched;

    return pct > 0 && life >= APR_USEC_PER_SEC
           && e->fresh_until - now <= life / 100 * pct;
}

/* FRESH is answered at once, and STALE inside its stale-while-revalidate
 * window, starting its refresh unless another is under way or backing off.
 * Returns 1 when answered. */
static int answer_cached(request_rec *r, isr_req_t *q, isr_look_t st,
                         const isr_entry_t *e, apr_time_t now, int waited)
{
    apr_uint64_t lease;

    if (st == ISR_LOOK_FRESH) {
        /* A request that waited for the fetch is a miss to its client. */
        if (waited) {
            isr_store_count(q->zone, ISR_STAT_WAIT);
            q->fwd = "uri-miss";
            q->collapsed = 1;
        }
        answer_entry(q, e, waited ? "MISS" : "HIT");
        if (!waited && ahead(q->conf, e, now)
            && isr_store_claim_refresh(q->zone, e, now, LEASE_HOLD(q->conf),
                                       &lease)) {
            refresh_start(r, q, e, lease);
            q->detail = "refresh-ahead";
        }
        return 1;
    }
    if (st != ISR_LOOK_STALE || now > e->swr_until) {
        return 0;
    }
    if (isr_store_claim_refresh(q->zone, e, now, LEASE_HOLD(q->conf),
                                &lease)) {
        refresh_start(r, q, e, lease);
    }
    answer_entry(q, e, "STALE");
    q->detail = "stale-while-revalidate";
    return 1;
}

apr_status_t isr_request_lookup(request_rec *r, isr_req_t *q)
{
    apr_time_t now = apr_time_now();
    isr_entry_t e;
    isr_look_t st;

    if (q->rcc.any) {
        return APR_NOTFOUND;  /* the normal path reads it */
    }
    st = lookup(r, q, now, &e);

    if (is_marker(st, &e)) {
        if (!to_variant(r, q, &e)) {
            return APR_NOTFOUND;
        }
        st = lookup(r, q, now, &e);
    }
    return answer_cached(r, q, st, &e, now, 0) ? APR_SUCCESS : APR_NOTFOUND;
}

/* A miss this request owns (slot, lease), or the revalidation of `stale`,
 * asks the second tier first: an entry another server stored (newer than
 * `stale`) is stored here (1: look it up again); while another server
 * fetches the key, this request waits for it to land (its own waiters with
 * it); else it fetches (0), under the cluster lease in q->tier_lease when
 * the tier gave it one. */
static int tier_first(request_rec *r, isr_req_t *q, apr_uint32_t slot,
                      apr_uint64_t lease, const isr_entry_t *stale,
                      apr_time_t give_up)
{
    apr_interval_time_t hold = LEASE_HOLD(q->conf);
    isr_tier_ticket_t tk;
    isr_purge_mark_t born;
    isr_tier_rec_t rec;
    isr_value_t v;
    apr_time_t now;
    int want = 1;

    for (;;) {
        isr_purge_mark(q->zone, &born);
        tk = isr_tier_ticket(q->zone, q->key, q->klen);
        switch (isr_tier_claim(q->zone, q->key, q->klen, want,
                               stale ? stale->fetched : -1, hold, r->pool,
                               &rec, &q->tier_lease)) {
        case ISR_TIER_FOUND:
            now = apr_time_now();
            if (!isr_tier_value(q->zone, &rec, &born, now, r->pool, &v)
                || (stale && (rec.fetched <= stale->fetched
                              || rec.fresh_until <= now))) {
                /* Of no use, or what this server has already: the lease
                 * alone. */
                want = 0;
                continue;
            }
            if (publish(r->pool, q->zone, slot, lease, q->key, q->klen,
                        q->hash, &v, NULL) != APR_SUCCESS) {
                /* A newer one is here already, or it cannot be kept: the
                 * lookup decides. */
                isr_store_release(q->zone, slot, lease);
            }
            q->from_tier = 1;
            return 1;
        case ISR_TIER_BUSY:
            now = apr_time_now();
            if (now >= give_up
                || !isr_store_renew(q->zone, slot, q->hash, &lease, now,
                                    hold)) {
                return 0;
            }
            q->collapsed = 1;
            isr_tier_wait(q->zone, q->key, q->klen, tk,
                          give_up - now < apr_time_from_sec(1)
                              ? give_up - now : apr_time_from_sec(1));
            want = 1;
            break;
        default:
            return 0;
        }
    }
}

static apr_status_t obtain(request_rec *r, isr_req_t *q);

apr_status_t isr_request_obtain(request_rec *r, isr_req_t *q)
{
    apr_status_t rv = obtain(r, q);
    const isr_fetch_resp_t *f = q->failure;

    if (rv == APR_SUCCESS && q->from_tier && !q->detail && !q->fwd) {
        q->detail = "redis";
    }

    /* Strict mode is a reverse proxy for origins the operator does not
     * control: their 5xx answers go to the client as they are (never
     * stored), where stale-if-error does not apply. */
    if (rv == APR_EGENERAL && q->strict && f) {
        q->label = "MISS";
        q->kept = NULL;
        q->status = f->status;
        q->headers = f->headers;
        q->hdrlen = f->hdrlen;
        q->body = f->body;
        q->bodylen = f->bodylen;
        q->alts = NULL;
        q->altlen = 0;
        q->fetched = q->fresh_until = 0;
        return APR_SUCCESS;
    }
    return rv;
}

static apr_status_t obtain(request_rec *r, isr_req_t *q)
{
    apr_interval_time_t hold = LEASE_HOLD(q->conf);
    apr_time_t started = apr_time_now(), now = started;
    apr_time_t give_up = started + hold;
    apr_uint32_t slot = 0, seq = 0;
    apr_uint64_t lease;
    relay_t rl = { NULL, NULL, 0, 0, 0 };
    isr_fetch_resp_t *resp;
    isr_entry_t e;
    isr_look_t st;
    apr_status_t rv;
    int waited = 0, check;

    for (;; now = apr_time_now()) {
        /* Before the lookup: a fetch that revalidates what it finds must
         * not be newer than a purge made after it looked. */
        isr_purge_mark(q->zone, &q->mark);
        st = lookup(r, q, now, &e);
        if (is_marker(st, &e)) {
            /* The URL varies: its variant for this request. */
            if (!to_variant(r, q, &e)) {
                q->detail = "pass";
                return fetch_sync(r, q, &resp, &rl, NULL);
            }
            continue;
        }
        if (waited && st == ISR_LOOK_STALE && e.slot == slot && e.seq != seq) {
            /* The fetch this request waited for landed, already stale (an
             * old Age, no-cache): it is the validation the request waited
             * for (RFC 9111 4.3.4), not a reason to make another. */
            isr_store_count(q->zone, ISR_STAT_WAIT);
            answer_entry(q, &e, "MISS");
            q->fwd = "uri-miss";
            q->collapsed = 1;
            return APR_SUCCESS;
        }
        check = 0;
        if ((st == ISR_LOOK_FRESH || st == ISR_LOOK_STALE) && q->rcc.any
            && !waited) {
            /* Strict mode: the client's own Cache-Control. */
            if (!request_accepts(q, &e, now)) {
                if (q->rcc.only_if_cached) {
                    goto not_cached;
                }
                check = 1;
            }
            else if (st == ISR_LOOK_STALE && now > e.swr_until
                     && stale_accepted(q, &e, now)) {
                answer_entry(q, &e, "STALE");
                q->detail = "max-stale";
                return APR_SUCCESS;
            }
        }
        if (!check && answer_cached(r, q, st, &e, now, waited)) {
            return APR_SUCCESS;
        }
        if (q->rcc.only_if_cached) {
            goto not_cached;
        }
        if (q->rcc.no_store && !waited) {
            /* Nothing of this exchange is stored (RFC 9111 5.2.1.5). */
            return fetch_sync(r, q, &resp, &rl, NULL);
        }
        if (check) {
            st = ISR_LOOK_STALE;
        }
        switch (st) {
        case ISR_LOOK_STALE:
            /* Past its stale-while-revalidate window (or not acceptable to
             * the client as it is): revalidated before it is used, by one
             * request; the others wait for it. */
            switch (isr_store_claim_stale(q->zone, &e, now, hold, &lease)) {
            case ISR_CLAIM_OWNED:
                if (isr_tier_on(q->zone) && !q->tier_tried) {
                    q->tier_tried = 1;
                    if (tier_first(r, q, e.slot, lease, &e, give_up)) {
                        continue;
                    }
                }
                rv = fetch_and_store(r, q, e.slot, lease, &e);
                isr_tier_release(q->zone, q->key, q->klen, &q->tier_lease);
                return rv;
            case ISR_CLAIM_BACKOFF:
                q->error = "the backend failed a moment ago";
                return stale_or_error(q, &e, APR_EGENERAL, now);
            case ISR_CLAIM_BUSY:
                slot = e.slot;
                seq = e.seq;
                goto wait;
            default:
                if (now < give_up) {
                    continue;
                }
                goto wait;
            }
        case ISR_LOOK_PASS:
            q->detail = "pass";
            return fetch_sync(r, q, &resp, &rl, NULL);
        case ISR_LOOK_FAILED:
            /* The fetch this request waited for failed, or one failed
             * less than ISRErrorTTL ago. */
            if (e.until >= started) {
                q->error = "the backend fetch this request waited for failed";
                return APR_EGENERAL;
            }
            break;
        case ISR_LOOK_PENDING:
        case ISR_LOOK_EXPIRED:
            if (isr_store_lease_live(e.lease, now)) {
                slot = e.slot;
                seq = e.seq;
                goto wait;
            }
            break;
        default:
            break;
        }
        switch (isr_store_claim_miss(q->zone, q->hash, now, hold, &slot, &seq,
                                     &lease)) {
        case ISR_CLAIM_OWNED:
            if (isr_tier_on(q->zone) && !q->tier_tried) {
                q->tier_tried = 1;
                if (tier_first(r, q, slot, lease, NULL, give_up)) {
                    /* Stored here from the second tier: look up again. */
                    continue;
                }
            }
            rv = fetch_and_store(r, q, slot, lease, NULL);
            isr_tier_release(q->zone, q->key, q->klen, &q->tier_lease);
            return rv;
        case ISR_CLAIM_NOSLOT:
            return fetch_sync(r, q, &resp, &rl, NULL);
        case ISR_CLAIM_READY:
            if (now < give_up) {
                continue;
            }
            break;
        default:
            break;
        }
    wait:
        if (now >= give_up) {
            q->error = "gave up waiting for another request's backend fetch";
            return APR_TIMEUP;
        }
        isr_store_wait(q->zone, slot, seq,
                       give_up - now < WAIT_SLICE ? give_up - now : WAIT_SLICE);
        waited = 1;
    }
not_cached:
    /* RFC 9111 5.2.1.7 */
    q->error = "only-if-cached, and no stored answer the request accepts";
    q->error_status = HTTP_GATEWAY_TIME_OUT;
    return APR_NOTFOUND;
}
