/* The client's request headers as a reverse proxy forwards them (RFC 9110
 * 7.6: hop-by-hop ones dropped), for the two kinds of backend request that
 * carry them: an exchange that is never stored (other methods: the proxy)
 * and, in ISRCacheControl Strict mode, a fetch whose answer may be stored
 * and shared, where Vary decides who shares it. */
#ifndef ISR_FORWARD_H
#define ISR_FORWARD_H

#include <httpd.h>
#include "isr_ctx.h"

/* What a forwarded request head may cost (httpd's own limits bound what
 * a client sends; these bound what other modules may have added). */
#define ISR_FORWARD_HEADERS_MAX 256
#define ISR_FORWARD_BYTES_MAX   (64 * 1024)

typedef enum {
    /* Never stored: the client's end-to-end headers as received, and
     * X-Forwarded-For with its address. */
    ISR_FORWARD_PROXY,
    /* May be stored (Strict mode): no X-Forwarded-For (nothing of the
     * client that Vary cannot name), no conditionals, Range,
     * Cache-Control or Pragma (the cache answers those from the whole
     * response), Accept-Encoding as variants are keyed by it. */
    ISR_FORWARD_CACHE
} isr_forward_t;

/* The context's X-Forwarded-Host/-Proto/-Server (as a GET of the URI sends
 * them), then the client's end-to-end headers. OK, or 400 for a name that
 * is not a token or a value with a control byte, 431 for more than
 * ISR_FORWARD_HEADERS_MAX headers or ISR_FORWARD_BYTES_MAX bytes, with
 * *why set. */
int isr_forward_headers(request_rec *r, const isr_ctx_t *ctx, isr_forward_t how,
                        apr_array_header_t **out, const char **why);

/* Whether a header value can stand in a header line as it is: no CR, LF,
 * NUL or other control byte but HTAB. */
int isr_forward_value_ok(const char *v);

#endif /* ISR_FORWARD_H */
