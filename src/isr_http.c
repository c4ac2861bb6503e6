/* HTTP rules on backend answers (see include/isr_http.h). The head parser
 * is strict where httpd would refuse to send what it stored (a 500 on
 * every later hit) and where a lenient reading lets an origin's "private"
 * slip past the storability check (obs-fold, Connection-named headers). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "isr_http.h"

struct isr_http_head_t {
    apr_pool_t *p;
    apr_array_header_t *hdrs;   /* name, value, name, value, ... (mutable) */
    int status;                 /* of the last status line, 0 before one */
    int done;                   /* the final head ended */
    const char *error;          /* first reason the head is invalid */
};

isr_http_head_t *isr_http_head_make(apr_pool_t *p)
{
    isr_http_head_t *h = apr_pcalloc(p, sizeof(*h));

    h->p = p;
    h->hdrs = apr_array_make(p, 32, sizeof(char *));
    return h;
}

const char *isr_http_head_error(const isr_http_head_t *h)
{
    return h->error;
}

int isr_http_head_done(const isr_http_head_t *h)
{
    return h->done;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(int c)
{
    return c > 0 && c < 0x7f
           && (apr_isalnum(c) || strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ows(int c)
{
    return c == ' ' || c == '\t';
}

static apr_status_t invalid(isr_http_head_t *h, const char *why)
{
    if (!h->error) {
        h->error = why;
    }
    return APR_EINVAL;
}

/* "HTTP/1.1 200 OK": the status, or 0 if the line does not carry one. */
static int status_of(const char *s, const char *end)
{
    int n = 0, i;

    while (s < end && *s != ' ') {
        s++;
    }
    while (s < end && *s == ' ') {
        s++;
    }
    for (i = 0; i < 3; i++, s++) {
        if (s >= end || !apr_isdigit(*s)) {
            return 0;
        }
        n = n * 10 + (*s - '0');
    }
    return (s == end || *s == ' ') ? n : 0;
}

apr_status_t isr_http_head_line(isr_http_head_t *h, const char *line,
                                apr_size_t len)
{
    const char *end = line + len, *colon, *v, *ve, *c;
    char **prev;

    if (h->error) {
        return APR_EINVAL;
    }
    /* The line ending, then nothing else may be a CR or a NUL. */
    if (end > line && end[-1] == '\n') {
        end--;
        if (end > line && end[-1] == '\r') {
            end--;
        }
    }
    if (h->done) {
        /* Trailers of the final answer, or what follows a 1xx head. */
        if (h->status >= 200 || len < 5 || strncmp(line, "HTTP/", 5)) {
            return APR_SUCCESS;
        }
    }
    if (memchr(line, '\0', end - line) || memchr(line, '\r', end - line)) {
        return invalid(h, "a NUL or bare CR in the response head");
    }
    if (end - line >= 5 && !strncmp(line, "HTTP/", 5)) {
        /* A status line: a new head begins (after a 1xx). */
        apr_array_clear(h->hdrs);
        h->done = 0;
        h->status = status_of(line, end);
        return APR_SUCCESS;
    }
    if (end == line) {
        h->done = h->status != 0;
        return APR_SUCCESS;
    }
    if (!h->status) {
        return invalid(h, "a header before the status line");
    }
    if (is_ows(*line)) {
        /* obs-fold (RFC 9112 5.2): continue the previous value, joined by
         * one space, as a proxy that forwards the message must. */
        if (h->hdrs->nelts < 2) {
            return invalid(h, "a folded line with no header to continue");
        }
        for (v = line; v < end && is_ows(*v); v++) {
        }
        for (ve = end; ve > v && is_ows(ve[-1]); ve--) {
        }
        prev = &APR_ARRAY_IDX(h->hdrs, h->hdrs->nelts - 1, char *);
        if (ve > v) {
            *prev = **prev ? apr_pstrcat(h->p, *prev, " ",
                                         apr_pstrmemdup(h->p, v, ve - v), NULL)
                           : apr_pstrmemdup(h->p, v, ve - v);
        }
        return APR_SUCCESS;
    }
    if (!(colon = memchr(line, ':', end - line)) || colon == line) {
        return invalid(h, "a header line without a name and a colon");
    }
    for (c = line; c < colon; c++) {
        if (!is_tchar((unsigned char)*c)) {
            return invalid(h, "a header name that is not a token");
        }
    }
    for (v = colon + 1; v < end && is_ows(*v); v++) {
    }
    for (ve = end; ve > v && is_ows(ve[-1]); ve--) {
    }
    APR_ARRAY_PUSH(h->hdrs, char *) = apr_pstrmemdup(h->p, line, colon - line);
    APR_ARRAY_PUSH(h->hdrs, char *) = apr_pstrmemdup(h->p, v, ve - v);
    return APR_SUCCESS;
}

int isr_http_has_token(const char *list, const char *token)
{
    apr_size_t tl = strlen(token);
    const char *s;

    for (s = list; *s; s++) {
        if (!strncasecmp(s, token, tl)
            && (s == list || (!apr_isalnum(s[-1]) && s[-1] != '-'))
            && !apr_isalnum(s[tl]) && s[tl] != '-') {
            return 1;
        }
    }
    return 0;
}

static int is_hop_by_hop(const char *name, const char *connection)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Trailers",
        "Transfer-Encoding", "Upgrade", "Content-Length", NULL
    };
    int i;

    if (!strncasecmp(name, "Proxy-", 6)) {
        return 1;
    }
    for (i = 0; hop[i]; i++) {
        if (!strcasecmp(name, hop[i])) {
            return 1;
        }
    }
    return connection && isr_http_has_token(connection, name);
}

/* Every element of a Content-Length list must be the same number, and so
 * must every Content-Length header (RFC 9112 6.3: otherwise the message
 * framing is unknown). *seen is -1 before the first. */
static int content_length_ok(const char *v, apr_int64_t *seen)
{
    const char *s = v;
    apr_int64_t n;

    for (;;) {
        while (is_ows(*s)) {
            s++;
        }
        if (!apr_isdigit(*s)) {
            return 0;
        }
        for (n = 0; apr_isdigit(*s); s++) {
            if (n > (APR_INT64_MAX - 9) / 10) {
                return 0;
            }
            n = n * 10 + (*s - '0');
        }
        if (*seen >= 0 && *seen != n) {
            return 0;
        }
        *seen = n;
        while (is_ows(*s)) {
            s++;
        }
        if (*s != ',') {
            return *s == '\0';
        }
        s++;
    }
}

apr_status_t isr_http_head_finish(isr_http_head_t *h, apr_pool_t *p,
                                  isr_http_result_t *out)
{
    char **hd = (char **)h->hdrs->elts;
    const char *connection = NULL, *c;
    apr_int64_t cl = -1;
    apr_size_t len = 0, nl, vl;
    char *blob, *w;
    int i, n = h->hdrs->nelts;

    memset(out, 0, sizeof(*out));
    for (i = 0; !h->error && i + 1 < n; i += 2) {
        for (c = hd[i + 1]; *c; c++) {
            if ((apr_iscntrl(*c) && *c != '\t') || *c == 0x7f) {
                invalid(h, "a control byte in a header value");
                break;
            }
        }
        if (!strcasecmp(hd[i], "Connection")) {
            connection = connection ? apr_pstrcat(p, connection, ",",
                                                  hd[i + 1], NULL)
                                    : hd[i + 1];
        }
        else if (!strcasecmp(hd[i], "Content-Length")) {
            if (!content_length_ok(hd[i + 1], &cl)) {
                invalid(h, "conflicting or malformed Content-Length");
            }
        }
        /* Judged on every header, before any is dropped as hop-by-hop: a
         * "Connection: Cache-Control" must not hide a "private". */
        if (!strcasecmp(hd[i], "Set-Cookie") || !strcasecmp(hd[i], "Set-Cookie2")
            || (!strcasecmp(hd[i], "Cache-Control")
                && (isr_http_has_token(hd[i + 1], "no-store")
                    || isr_http_has_token(hd[i + 1], "private")))) {
            out->uncacheable = 1;
        }
        if ((!strcasecmp(hd[i], "Cache-Control")
             && (isr_http_has_token(hd[i + 1], "max-age")
                 || isr_http_has_token(hd[i + 1], "s-maxage")))
            || !strcasecmp(hd[i], "Expires")) {
            out->explicit_fresh = 1;
        }
    }
    if (h->error || !h->status) {
        out->error = h->error ? h->error : "no status line";
        return APR_EINVAL;
    }
    for (i = 0; i + 1 < n; i += 2) {
        if (!is_hop_by_hop(hd[i], connection)) {
            len += strlen(hd[i]) + strlen(hd[i + 1]) + 2;
        }
    }
    w = blob = apr_palloc(p, len + 1);
    for (i = 0; i + 1 < n; i += 2) {
        if (is_hop_by_hop(hd[i], connection)) {
            continue;
        }
        nl = strlen(hd[i]) + 1;
        vl = strlen(hd[i + 1]) + 1;
        memcpy(w, hd[i], nl);
        memcpy(w + nl, hd[i + 1], vl);
        w += nl + vl;
    }
    out->headers = blob;
    out->hdrlen = len;
    return APR_SUCCESS;
}

/* ---- what may be stored -------------------------------------------------- */

void isr_http_status_add(isr_status_set_t *set, int status)
{
    if (status >= 0 && status < ISR_HTTP_STATUS_MAX) {
        set->bits[status / 8] |= (unsigned char)(1u << (status % 8));
    }
}

int isr_http_status_has(const isr_status_set_t *set, int status)
{
    return status >= 0 && status < ISR_HTTP_STATUS_MAX
           && (set->bits[status / 8] & (1u << (status % 8)));
}

void isr_http_status_default(isr_status_set_t *set)
{
    static const int heuristic[] = {
        200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501, 0
    };
    int i;

    memset(set, 0, sizeof(*set));
    for (i = 0; heuristic[i]; i++) {
        isr_http_status_add(set, heuristic[i]);
    }
}

int isr_http_storable(const isr_status_set_t *set, int status,
                      int explicit_fresh)
{
    isr_status_set_t def;

    if (!set) {
        isr_http_status_default(&def);
        set = &def;
    }
    if (isr_http_status_has(set, status)) {
        return 1;
    }
    /* A 206 or 304 answers a request mod_isr never makes; 5xx (but 501)
     * are failures. */
    return explicit_fresh && status >= 200 && status < 500
           && status != 206 && status != 304;
}
