/* Reverse proxy for the methods mod_isr does not cache: every method but
 * GET and HEAD (and TRACE and CONNECT, which httpd keeps) goes to the URL a
 * GET of the same URI would fetch, with the client's end-to-end headers and
 * body streamed both ways, and is never stored. A non-error answer to an
 * unsafe method invalidates what is stored for the URI (RFC 9111 4.4). */
#ifndef ISR_PROXY_H
#define ISR_PROXY_H

#include <httpd.h>
#include "isr_config.h"

#define ISR_PROXY_HANDLER "isr-proxy"

/* Set on the main request while a lookup subrequest for an invalidation
 * runs: the lookup must not fetch anything (ISRApply env=/header= fetch in
 * fixups). */
#define ISR_PROXY_NOTE_LOOKUP "isr-invalidation-lookup"

/* Whether r is a request the proxy answers (its scope has ISR on with
 * ISRApply response; the caller checks that). */
int isr_proxy_wanted(const request_rec *r);

/* The handler for such a request: OK once an answer went out, or an HTTP
 * status (502/504 for a backend failure, 4xx for a bad request or request
 * body) for httpd's error response. */
int isr_proxy_handle(request_rec *r, const isr_dir_conf_t *conf);

#endif /* ISR_PROXY_H */
