/* HTTP rules on backend answers, with no shm and no request_rec: parsing a
 * response head as libcurl hands it over (RFC 9112: obs-fold unfolded,
 * invalid heads refused so that nothing is stored that could not be
 * replayed), and what a shared cache may store (RFC 9111 section 3 and
 * 4.2.2). APR only: unit-tested and fuzzed without a server. */
#ifndef ISR_HTTP_H
#define ISR_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>

/* ---- response heads ----------------------------------------------------- */

typedef struct isr_http_head_t isr_http_head_t;

/* What one response head may cost: more is refused (like httpd's own
 * LimitRequestFieldSize/LimitRequestFields for requests). */
#define ISR_HTTP_HEAD_MAX  (64 * 1024)
#define ISR_HTTP_LINES_MAX 256
/* 1xx heads one response may have before its final head. */
#define ISR_HTTP_INTERIM_MAX 16

/* A parser for one response (its 1xx heads, the final head, trailers). */
isr_http_head_t *isr_http_head_make(apr_pool_t *p);

/* One header-callback line (status line, header, blank line or trailer;
 * CRLF or LF included). Trailers after the final head are ignored: they
 * are not part of what is stored or sent. Returns APR_EINVAL once the head
 * is invalid (then and later: the response must be refused). */
apr_status_t isr_http_head_line(isr_http_head_t *h, const char *line,
                                apr_size_t len);

/* Why the head is invalid, or NULL. */
const char *isr_http_head_error(const isr_http_head_t *h);

/* Right after a 1xx head ended (its blank line was the last line given):
 * its status, with its end-to-end fields in *headers ("name\0value\0"
 * pairs, allocated from p); 0 otherwise, or when a value holds a control
 * byte. Such a head is never stored: it may only be passed on. */
int isr_http_head_interim(const isr_http_head_t *h, apr_pool_t *p,
                          const char **headers, apr_size_t *hdrlen);

/* Non-zero once the final (non-1xx) head has ended with its blank line. */
int isr_http_head_done(const isr_http_head_t *h);

typedef struct {
    const char *headers;   /* end-to-end headers, "name\0value\0" pairs */
    apr_size_t hdrlen;
    int uncacheable;       /* Set-Cookie, Cache-Control private/no-store,
                            * wherever they appear (also in a header that
                            * Connection names) */
    int explicit_fresh;    /* freshness still ahead: s-maxage, else max-age,
                            * above 0, else an Expires after Date */
    const char *error;     /* set when the head is invalid */
} isr_http_result_t;

/* The headers to store and send: hop-by-hop ones (and those Connection
 * names) dropped, Content-Length dropped (httpd sets its own). APR_EINVAL
 * with out->error when the head is invalid: a bare CR, NUL or other control
 * byte, a header name that is not a token, a line without a colon, a fold
 * with nothing to continue, conflicting or malformed Content-Length, a
 * final status below 200 or above 599, a head over the limits above. */
apr_status_t isr_http_head_finish(isr_http_head_t *h, apr_pool_t *p,
                                  isr_http_result_t *out);

/* ---- what may be stored -------------------------------------------------- */

#define ISR_HTTP_STATUS_MAX 600

/* A set of statuses (ISRCacheStatus). */
typedef struct {
    unsigned char bits[(ISR_HTTP_STATUS_MAX + 7) / 8];
} isr_status_set_t;

/* The statuses RFC 9111 4.2.2 lets a cache store without explicit
 * freshness: 200 203 204 300 301 308 404 405 410 414 501. */
void isr_http_status_default(isr_status_set_t *set);
void isr_http_status_add(isr_status_set_t *set, int status);
int isr_http_status_has(const isr_status_set_t *set, int status);

/* Whether an answer with this status may be stored: listed in `set` (NULL:
 * the default set), or any status but 206/304 and 5xx with explicit
 * freshness from the backend. */
int isr_http_storable(const isr_status_set_t *set, int status,
                      int explicit_fresh);

/* Whether byte c is a tchar (RFC 9110 5.6.2). */
int isr_http_is_tchar(int c);

/* Walks a stored head ("name\0value\0" pairs): each call gives the next
 * pair, every string checked against the end; 0 at the end, or where the
 * blob breaks off. */
typedef struct {
    const char *h, *end;
} isr_http_walk_t;

int isr_http_walk(isr_http_walk_t *w, const char **name, const char **value);

/* Whether s is a non-empty token (RFC 9110 5.6.2): a valid header name. */
int isr_http_is_token(const char *s);

/* Whether Cache-Control value `list` has directive `token` (case-blind,
 * as a whole word; a "token=value" form counts). */
int isr_http_has_token(const char *list, const char *token);

/* ---- content codings ---------------------------------------------------- */

/* The codings a cache tells apart (RFC 9110 8.4.1). */
#define ISR_CODING_IDENTITY 0
#define ISR_CODING_GZIP     1   /* gzip, x-gzip */
#define ISR_CODING_BR       2
#define ISR_CODINGS         3

/* The coding named by [name, name + n) (case-blind; x-gzip is gzip), or
 * -1 for any other. */
int isr_http_coding(const char *name, apr_size_t n);

/* An Accept-Encoding value (all its lines joined) as the weight of each
 * coding, in thousandths (RFC 9110 12.5.3): a coding listed gets its
 * qvalue (malformed: 0), one not listed gets that of "*", or 0 without
 * one. identity is acceptable unless "identity;q=0", or "*;q=0" without
 * identity listed; when it is not listed it weighs 1 (the least), so any
 * acceptable coding is preferred to it. */
void isr_http_accept_codings(const char *value, int q[ISR_CODINGS]);

#endif /* ISR_HTTP_H */
