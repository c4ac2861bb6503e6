/* Backend fetches with libcurl, the only file that sees curl. Easy handles
 * (and the backend connections they keep open) are reused from a small
 * per-process stack, so a child holds at most IDLE_MAX idle handles however
 * many threads have fetched. */
#include "isr.h"
#include <pthread.h>
#include <string.h>
#include <curl/curl.h>

#include <apr_strings.h>
#include <httpd.h>
#include "isr_fetch.h"
#include "isr_http.h"

#define BODY_CHUNK (16 * 1024)
#define IDLE_MAX   16

typedef struct {
    apr_pool_t *p;
    const isr_fetch_req_t *req;
    CURL *h;
    isr_fetch_resp_t *resp;
    int sink_failed;            /* the sink refused data: abort */
    int sink_done;              /* the sink wants no more (HEAD): success */
    int timed_out;
    apr_time_t start, last_data;
    char *body;
    apr_size_t len, cap;
    isr_http_head_t *head;      /* the response head as it arrives */
    int over_limit;
    int bad_head;               /* the head is invalid: aborted */
    int read_failed;            /* req->read refused: aborted */
    apr_off_t uploaded;         /* body bytes req->read gave so far */
    curl_off_t seen_up, seen_down; /* progress last seen (stall check) */
} fetch_ctx_t;

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *idle[IDLE_MAX];
static int nidle;

static CURL *handle_get(void)
{
    CURL *h = NULL;

    pthread_mutex_lock(&idle_lock);
    if (nidle) {
        h = idle[--nidle];
    }
    pthread_mutex_unlock(&idle_lock);
    return h ? h : curl_easy_init();
}

static void handle_put(CURL *h)
{
    pthread_mutex_lock(&idle_lock);
    if (nidle < IDLE_MAX) {
        idle[nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&idle_lock);
    if (h) {
        curl_easy_cleanup(h);
    }
}

apr_status_t isr_fetch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? APR_SUCCESS
                                                         : APR_EGENERAL;
}

static apr_status_t idle_cleanup(void *data)
{
    (void)data;
    pthread_mutex_lock(&idle_lock);
    while (nidle) {
        curl_easy_cleanup(idle[--nidle]);
    }
    pthread_mutex_unlock(&idle_lock);
    return APR_SUCCESS;
}

void isr_fetch_child_init(apr_pool_t *pchild)
{
    apr_pool_cleanup_register(pchild, NULL, idle_cleanup,
                              apr_pool_cleanup_null);
}

static apr_status_t headers_finish(fetch_ctx_t *ctx, isr_fetch_resp_t *resp);

static apr_status_t sink_call(fetch_ctx_t *ctx, const char *data,
                              apr_size_t n)
{
    apr_status_t rv = ctx->req->sink(ctx->req->sink_baton, ctx->resp, data, n);

    ctx->last_data = apr_time_now();
    if (rv == APR_EOF) {
        ctx->sink_done = 1;
    }
    else if (rv != APR_SUCCESS) {
        ctx->sink_failed = 1;
    }
    return rv;
}

/* Hand the response over to the sink once the body outgrows max_store: a
 * body that will not be stored need not be held in memory whole. 5xx
 * bodies are never streamed: they are failures. */
static int stream(fetch_ctx_t *ctx, const char *data, apr_size_t n)
{
    isr_fetch_resp_t *resp = ctx->resp;
    long status = 0;

    if (!resp->streamed) {
        curl_easy_getinfo(ctx->h, CURLINFO_RESPONSE_CODE, &status);
        if ((ISR_FETCH_FAILED_STATUS(status) && !ctx->req->sink_all)
            || status < 100) {
            return 0;
        }
        resp->status = (int)status;
        resp->too_large = 1;
        if (headers_finish(ctx, resp) != APR_SUCCESS) {
            ctx->bad_head = 1;
            return -1;
        }
        resp->streamed = 1;
        if (sink_call(ctx, ctx->body, ctx->len) != APR_SUCCESS) {
            return -1;
        }
        ctx->len = 0;
    }
    if (n && sink_call(ctx, data, n) != APR_SUCCESS) {
        return -1;
    }
    return 1;
}

/* A body whose announced length could never be stored is relayed from its
 * first byte instead of being buffered up to the limit first. */
static int announced_too_large(fetch_ctx_t *ctx)
{
    curl_off_t cl = -1;

    if (ctx->len == 0
        && curl_easy_getinfo(ctx->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl)
           == CURLE_OK) {
        return cl > 0 && (apr_uint64_t)cl > ctx->req->max_store;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    fetch_ctx_t *ctx = baton;
    apr_size_t n = size * nmemb, cap;
    char *nbody;
    int rc;

    if (ctx->req->sink && (ctx->resp->streamed || ctx->req->sink_all
                           || n > ctx->req->max_store - ctx->len
                           || announced_too_large(ctx))) {
        if ((rc = stream(ctx, data, n)) != 0) {
            return rc > 0 ? n : 0;
        }
    }
    if (n > ctx->req->max_body - ctx->len) {
        ctx->over_limit = 1;
        return 0;   /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (ctx->len + n > ctx->cap) {
        cap = ctx->cap ? ctx->cap : BODY_CHUNK;
        while (cap < ctx->len + n) {
            cap *= 2;
        }
        nbody = apr_palloc(ctx->p, cap);
        if (ctx->len) {
            memcpy(nbody, ctx->body, ctx->len);
        }
        ctx->body = nbody;
        ctx->cap = cap;
    }
    memcpy(ctx->body + ctx->len, data, n);
    ctx->len += n;
    return n;
}

/* Every line of the head (and of trailers, which the parser ignores). An
 * invalid head aborts the transfer: it is refused, never stored. */
static size_t on_header(char *line, size_t size, size_t nitems, void *baton)
{
    fetch_ctx_t *ctx = baton;
    apr_size_t n = size * nitems;

    const char *h;
    apr_size_t hl;
    int st;

    if (isr_http_head_line(ctx->head, line, n) != APR_SUCCESS) {
        ctx->bad_head = 1;
        ctx->resp->error = apr_psprintf(ctx->p, "invalid response head: %s",
                                        isr_http_head_error(ctx->head));
        return 0;
    }
    if (ctx->req->interim
        && (st = isr_http_head_interim(ctx->head, ctx->p, &h, &hl))) {
        ctx->req->interim(ctx->req->interim_baton, st, h, hl);
    }
    return n;
}

/* The request body, pulled from req->read as curl sends it. Returning 0
 * tells curl the body ended, so only the reader's APR_EOF does that. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *baton)
{
    fetch_ctx_t *ctx = baton;
    apr_size_t n = size * nitems;
    apr_status_t rv = ctx->req->read(ctx->req->read_baton, buf, &n);

    /* A reader that blocked on a slow client was not a stalled backend. */
    ctx->last_data = apr_time_now();
    if (rv == APR_EOF) {
        return 0;
    }
    if (rv != APR_SUCCESS || n == 0 || n > size * nitems) {
        ctx->read_failed = 1;
        return CURL_READFUNC_ABORT;
    }
    ctx->uploaded += n;
    return n;
}

/* curl rewinds the body to resend it on a fresh connection when a reused
 * one turns out dead. A streamed body cannot be read twice: that is only
 * possible while none of it has been read. */
static int on_seek(void *baton, curl_off_t offset, int origin)
{
    fetch_ctx_t *ctx = baton;

    return origin == SEEK_SET && offset == 0 && ctx->uploaded == 0
           ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
}

/* Aborts on shutdown; with a sink, also enforces the timeouts: the whole
 * fetch until the relay starts, then a stall limit, so that a slow client
 * of a large relayed body is not cut off at ISRTimeout. A proxied request
 * has a stall limit throughout (its upload may be long) and relay_timeout
 * in total. */
static int on_progress(void *baton, curl_off_t dt, curl_off_t dn,
                       curl_off_t ut, curl_off_t un)
{
    fetch_ctx_t *ctx = baton;
    apr_time_t now;
    (void)dt; (void)ut;

    if (ctx->req->abort_flag && *ctx->req->abort_flag) {
        return 1;
    }
    if (ctx->req->method) {
        now = apr_time_now();
        if (un != ctx->seen_up || dn != ctx->seen_down) {
            ctx->seen_up = un;
            ctx->seen_down = dn;
            ctx->last_data = now;
        }
        if (now - ctx->last_data > ctx->req->timeout
            || now - ctx->start > ctx->req->relay_timeout) {
            ctx->timed_out = 1;
            return 1;
        }
        return 0;
    }
    if (ctx->req->sink) {
        now = apr_time_now();
        if (ctx->resp->streamed ? (now - ctx->last_data > ctx->req->timeout
                                   || now - ctx->start
                                      > ctx->req->relay_timeout)
                                : now - ctx->start > ctx->req->timeout) {
            ctx->timed_out = 1;
            return 1;
        }
    }
    return 0;
}

/* Keep the end-to-end headers as "name\0value\0" pairs and note what makes
 * the response unfit for a shared cache. */
static apr_status_t headers_finish(fetch_ctx_t *ctx, isr_fetch_resp_t *resp)
{
    isr_http_result_t res;
    apr_status_t rv = isr_http_head_finish(ctx->head, ctx->p, &res);

    if (rv != APR_SUCCESS) {
        resp->error = apr_psprintf(ctx->p, "invalid response head: %s",
                                   res.error);
        return rv;
    }
    resp->headers = res.headers;
    resp->hdrlen = res.hdrlen;
    resp->uncacheable = res.uncacheable;
    resp->explicit_fresh = res.explicit_fresh;
    return APR_SUCCESS;
}

static void setup(CURL *c, const isr_fetch_req_t *req, fetch_ctx_t *ctx,
                  struct curl_slist *hdrs, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    if (req->unix_path) {
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req->unix_path);
    }
    if (req->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);   /* many threads */
    /* Backends are named by the configuration, never via a proxy taken
     * from httpd's environment. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (!req->sink) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                         (long)apr_time_as_msec(req->timeout));
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)apr_time_as_msec(req->connect_timeout));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_isr/" ISR_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ctx);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ctx);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ctx);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (req->method) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->read) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, ctx);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, ctx);
        /* -1: unknown, which curl sends chunked. */
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(req->body_len >= 0 ? req->body_len : -1));
    }
}

static apr_status_t map_error(CURLcode res, const fetch_ctx_t *ctx,
                              const char *errbuf, isr_fetch_resp_t *resp)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(res);

    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        resp->error = apr_psprintf(ctx->p, "timed out (%s)", why);
        return APR_TIMEUP;
    case CURLE_COULDNT_CONNECT:
        resp->error = apr_psprintf(ctx->p, "cannot connect (%s)", why);
        return APR_ECONNREFUSED;
    case CURLE_WRITE_ERROR:
        if (ctx->bad_head) {
            return APR_EINVAL;   /* resp->error says why */
        }
        if (ctx->sink_failed) {
            resp->error = "the client went away while the body was relayed";
            return APR_ECONNABORTED;
        }
        if (ctx->over_limit) {
            resp->error = apr_psprintf(ctx->p, "body larger than %"
                                       APR_SIZE_T_FMT " bytes",
                                       ctx->req->max_body);
            return APR_ENOSPC;
        }
        break;
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        if (ctx->read_failed) {
            resp->error = "reading the request body from the client failed";
            return APR_ECONNABORTED;
        }
        if (ctx->timed_out && ctx->req->method) {
            resp->error = apr_psprintf(ctx->p, "stalled for %" APR_TIME_T_FMT
                                       " ms or took longer than %"
                                       APR_TIME_T_FMT " ms (ISRTimeout, "
                                       "ISRRelayTimeout)",
                                       apr_time_as_msec(ctx->req->timeout),
                                       apr_time_as_msec(ctx->req->relay_timeout));
            return APR_TIMEUP;
        }
        if (res == CURLE_READ_ERROR) {
            break;
        }
        if (ctx->timed_out) {
            resp->error = ctx->resp->streamed
                ? apr_psprintf(ctx->p, "relay stalled for %" APR_TIME_T_FMT
                               " ms or took longer than %" APR_TIME_T_FMT
                               " ms (ISRTimeout, ISRRelayTimeout)",
                               apr_time_as_msec(ctx->req->timeout),
                               apr_time_as_msec(ctx->req->relay_timeout))
                : apr_psprintf(ctx->p, "timed out after %" APR_TIME_T_FMT
                               " ms", apr_time_as_msec(ctx->req->timeout));
            return APR_TIMEUP;
        }
        resp->error = "aborted: the server is stopping";
        return APR_ECONNABORTED;
    default:
        break;
    }
    resp->error = apr_pstrdup(ctx->p, why);
    return APR_EGENERAL;
}

/* A client header as curl must be given it: "Name:" would delete one of
 * curl's own headers instead of sending an empty one, which is "Name;". */
static const char *proxy_header(apr_pool_t *p, const char *h)
{
    const char *colon = strchr(h, ':'), *v;

    if (!colon) {
        return h;
    }
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {
    }
    return *v ? h : apr_pstrcat(p, apr_pstrmemdup(p, h, colon - h), ";", NULL);
}

apr_status_t isr_fetch(isr_fetch_resp_t **presp, const isr_fetch_req_t *req,
                       apr_pool_t *p)
{
    isr_fetch_resp_t *resp = apr_pcalloc(p, sizeof(*resp));
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    fetch_ctx_t ctx;
    apr_status_t rv = APR_SUCCESS;
    CURL *h;
    CURLcode res;
    long status = 0;
    int i;

    *presp = resp;
    memset(&ctx, 0, sizeof(ctx));
    ctx.p = p;
    ctx.req = req;
    ctx.resp = resp;
    ctx.start = ctx.last_data = apr_time_now();
    ctx.head = isr_http_head_make(p);
    errbuf[0] = '\0';
    if (!(h = handle_get())) {
        resp->error = "cannot create a libcurl handle";
        return APR_ENOMEM;
    }
    ctx.h = h;
    for (i = 0; req->headers && i < req->headers->nelts; i++) {
        hdrs = curl_slist_append(hdrs, req->method
            ? proxy_header(p, APR_ARRAY_IDX(req->headers, i, const char *))
            : APR_ARRAY_IDX(req->headers, i, const char *));
    }
    if (req->method) {
        /* httpd answered the client's Expect itself; curl must not wait
         * for a 100 of the backend's either. */
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    setup(h, req, &ctx, hdrs, errbuf);
    res = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    /* The handle outlives this pool and the header list: forget both (a
     * reset keeps the handle's open connections). */
    curl_easy_reset(h);
    handle_put(h);
    curl_slist_free_all(hdrs);
    if (res == CURLE_WRITE_ERROR && ctx.sink_done) {
        res = CURLE_OK;   /* the sink had all it wanted */
    }
    if (res != CURLE_OK) {
        return map_error(res, &ctx, errbuf, resp);
    }
    resp->status = (int)status;
    if (!resp->streamed && (rv = headers_finish(&ctx, resp)) != APR_SUCCESS) {
        return rv;
    }
    resp->body = ctx.body ? ctx.body : apr_pcalloc(p, 1);
    resp->bodylen = ctx.len;
    resp->too_large |= ctx.len > req->max_store;
    return rv;
}
