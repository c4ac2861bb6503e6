/* Forwarded request headers (include/isr_forward.h). */
#include "isr.h"
#include <apr_strings.h>

#include "isr_forward.h"
#include "isr_http.h"
#include "isr_vary.h"

static int listed(const char *name, const char *const *list)
{
    int i;

    for (i = 0; list[i]; i++) {
        if (!strcasecmp(name, list[i])) {
            return 1;
        }
    }
    return 0;
}

/* Client headers that are not forwarded: hop-by-hop ones (RFC 9110 7.6.1),
 * those curl sets from the URL and the body, Expect (httpd answered it),
 * and what the proxy sets itself (X-Forwarded-*, and Forwarded, so that a
 * client cannot pose as its own proxy). */
static int not_forwarded(const char *name, const char *connection,
                         isr_forward_t how)
{
    static const char *const drop[] = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Trailers",
        "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
        "Forwarded", NULL
    };
    /* Answered by the cache from the whole response, or re-sent as keyed. */
    static const char *const cached[] = {
        "If-Match", "If-None-Match", "If-Modified-Since",
        "If-Unmodified-Since", "If-Range", "Range", "Cache-Control", "Pragma",
        "Accept-Encoding", NULL
    };

    if (!strncasecmp(name, "Proxy-", 6)
        || !strncasecmp(name, "X-Forwarded-", 12) || listed(name, drop)
        || (how == ISR_FORWARD_CACHE && listed(name, cached))) {
        return 1;
    }
    return connection && isr_http_has_token(connection, name);
}

/* A value that can stand in a header line as it is: no CR, LF, NUL or
 * other control byte but HTAB (httpd refuses them from clients; another
 * module may have put them there). */
int isr_forward_value_ok(const char *v)
{
    for (; *v; v++) {
        if ((*v > 0 && *v < 0x20 && *v != '\t') || *v == 0x7f) {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    apr_array_header_t *out;
    const char *connection;
    const isr_ctx_t *ctx;
    isr_forward_t how;
    apr_size_t bytes;
    int rc;                     /* OK, or the status that refuses it */
    const char *why;
} fwd_t;

static void fwd_add(fwd_t *f, apr_pool_t *p, const char *name,
                    const char *value)
{
    if (f->rc != OK) {
        return;
    }
    if (!isr_http_is_token(name) || !isr_forward_value_ok(value)) {
        f->rc = HTTP_BAD_REQUEST;
        f->why = apr_psprintf(p, "request header %s is not a token with a "
                              "value free of control bytes", name);
        return;
    }
    f->bytes += strlen(name) + strlen(value) + 4;
    if (f->out->nelts >= ISR_FORWARD_HEADERS_MAX
        || f->bytes > ISR_FORWARD_BYTES_MAX) {
        f->rc = HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
        f->why = apr_psprintf(p, "more than %d request headers or %d bytes "
                              "of them", ISR_FORWARD_HEADERS_MAX,
                              ISR_FORWARD_BYTES_MAX);
        return;
    }
    APR_ARRAY_PUSH(f->out, const char *) = apr_pstrcat(p, name, ": ", value,
                                                       NULL);
}

static int fwd_client(void *baton, const char *name, const char *value)
{
    fwd_t *f = baton;

    /* A cacheable fetch sends the keyed context's own values (below),
     * never the client's for the same name. */
    if (!not_forwarded(name, f->connection, f->how)
        && !(f->how == ISR_FORWARD_CACHE
             && isr_ctx_has_header(f->ctx, name))) {
        fwd_add(f, f->out->pool, name, value);
    }
    return f->rc == OK;
}

int isr_forward_headers(request_rec *r, const isr_ctx_t *ctx, isr_forward_t how,
                        apr_array_header_t **out, const char **why)
{
    fwd_t f;
    const char *h, *colon, *ae;
    int i;

    memset(&f, 0, sizeof(f));
    f.out = apr_array_make(r->pool, 16, sizeof(const char *));
    f.connection = apr_table_get(r->headers_in, "Connection");
    f.how = how;
    f.rc = OK;
    f.ctx = ctx;
    for (i = 0; ctx->headers && i < ctx->headers->nelts; i++) {
        h = APR_ARRAY_IDX(ctx->headers, i, const char *);
        /* For the proxy, ISRForwardHeader ones come with the client's
         * below; a cacheable fetch sends every keyed one as keyed (a
         * "Connection: X-Tenant" cannot strip what the key holds). */
        if ((how == ISR_FORWARD_CACHE || !strncasecmp(h, "X-Forwarded-", 12))
            && (colon = strchr(h, ':')) != NULL) {
            fwd_add(&f, r->pool, apr_pstrmemdup(r->pool, h, colon - h),
                    colon[1] == ' ' ? colon + 2 : colon + 1);
        }
    }
    if (how == ISR_FORWARD_PROXY) {
        fwd_add(&f, r->pool, "X-Forwarded-For", r->useragent_ip
                                                ? r->useragent_ip
                                                : r->connection->client_ip);
    }
    else if (!isr_ctx_has_header(ctx, "Accept-Encoding")
             && (ae = apr_table_getm(r->pool, r->headers_in,
                                     "Accept-Encoding"))) {
        fwd_add(&f, r->pool, "Accept-Encoding",
                isr_vary_value(r->pool, "Accept-Encoding", ae));
    }
    apr_table_do(fwd_client, &f, r->headers_in, NULL);
    *out = f.out;
    *why = f.why;
    return f.rc;
}
