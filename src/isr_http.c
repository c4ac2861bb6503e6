/* HTTP rules on backend answers (see include/isr_http.h). The head parser
 * is strict where httpd would refuse to send what it stored (a 500 on
 * every later hit) and where a lenient reading lets an origin's "private"
 * slip past the storability check (obs-fold, Connection-named headers). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_date.h>

#include "isr_http.h"

/* One header field; a folded value grows in place (amortised doubling), so
 * a head of many fold lines costs linear memory, not quadratic. */
typedef struct {
    char *name;
    char *value;
    apr_size_t vlen, vcap;      /* vcap 0: value is not ours to grow */
} field_t;

struct isr_http_head_t {
    apr_pool_t *p;
    apr_array_header_t *fields; /* field_t */
    apr_size_t bytes;           /* of the current head's lines */
    int lines;                  /* of the current head */
    int status;                 /* of the last status line, 0 before one */
    int done;                   /* the current head ended (blank line) */
    int interims;               /* 1xx heads before this one */
    const char *error;          /* first reason the head is invalid */
};

isr_http_head_t *isr_http_head_make(apr_pool_t *p)
{
    isr_http_head_t *h = apr_pcalloc(p, sizeof(*h));

    h->p = p;
    h->fields = apr_array_make(p, 32, sizeof(field_t));
    return h;
}

const char *isr_http_head_error(const isr_http_head_t *h)
{
    return h->error;
}

int isr_http_head_done(const isr_http_head_t *h)
{
    return h->done && h->status >= 200;
}

/* RFC 9110 5.6.2 tchar. */
int isr_http_is_tchar(int c)
{
    return c > 0 && c < 0x7f
           && (apr_isalnum(c) || strchr("!#$%&'*+-.^_`|~", c));
}

#define is_tchar isr_http_is_tchar

int isr_http_is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!is_tchar((unsigned char)*s)) {
            return 0;
        }
    }
    return 1;
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

/* "HTTP/1.1 200 OK": the status, or 0 if the line is not a status line. */
static int status_of(const char *s, const char *end)
{
    int n = 0, i;

    if (end - s < 5 || strncmp(s, "HTTP/", 5)) {
        return 0;
    }
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
    return (s == end || *s == ' ') && n >= 100 ? n : 0;
}

/* Append " piece" to the last field's value. */
static void unfold(isr_http_head_t *h, const char *v, apr_size_t n)
{
    field_t *f = &APR_ARRAY_IDX(h->fields, h->fields->nelts - 1, field_t);
    apr_size_t need = f->vlen + (f->vlen ? 1 : 0) + n + 1, cap;
    char *nv;

    if (need > f->vcap) {
        cap = f->vcap ? f->vcap : 64;
        while (cap < need) {
            cap *= 2;
        }
        nv = apr_palloc(h->p, cap);
        memcpy(nv, f->value, f->vlen);
        f->value = nv;
        f->vcap = cap;
    }
    if (f->vlen) {
        f->value[f->vlen++] = ' ';
    }
    memcpy(f->value + f->vlen, v, n);
    f->vlen += n;
    f->value[f->vlen] = '\0';
}

apr_status_t isr_http_head_line(isr_http_head_t *h, const char *line,
                                apr_size_t len)
{
    const char *end = line + len, *colon, *v, *ve, *c;
    field_t *f;
    int st;

    if (h->error) {
        return APR_EINVAL;
    }
    if (h->done && h->status >= 200) {
        return APR_SUCCESS;   /* trailers of the final answer */
    }
    if (end > line && end[-1] == '\n') {
        end--;
        if (end > line && end[-1] == '\r') {
            end--;
        }
    }
    if (memchr(line, '\0', end - line) || memchr(line, '\r', end - line)) {
        return invalid(h, "a NUL or bare CR in the response head");
    }
    /* A status line may only start a head: the first line, or the one
     * after a finished 1xx head. Anywhere else "HTTP/..." is a header
     * line, and not a valid one. */
    if (!h->status || h->done) {
        if (!(st = status_of(line, end))) {
            return invalid(h, h->status ? "no status line after a 1xx head"
                                        : "no valid status line");
        }
        /* Each head has its own limits: the number of heads has one too,
         * or a backend could send interim responses without end. */
        if (h->status && ++h->interims > ISR_HTTP_INTERIM_MAX) {
            return invalid(h, "more 1xx responses than a response may have");
        }
        apr_array_clear(h->fields);
        h->status = st;
        h->done = 0;
        h->bytes = 0;
        h->lines = 0;
        return APR_SUCCESS;
    }
    /* Bounds before anything grows: a backend cannot make the head cost
     * more than this. */
    h->bytes += len;
    if (h->bytes > ISR_HTTP_HEAD_MAX || ++h->lines > ISR_HTTP_LINES_MAX) {
        return invalid(h, "a response head longer than 64 KiB or 256 lines");
    }
    if (end == line) {
        h->done = 1;
        return APR_SUCCESS;
    }
    if (is_ows(*line)) {
        /* obs-fold (RFC 9112 5.2): continue the previous value, joined by
         * one space, as a proxy that forwards the message must. */
        if (!h->fields->nelts) {
            return invalid(h, "a folded line with no header to continue");
        }
        for (v = line; v < end && is_ows(*v); v++) {
        }
        for (ve = end; ve > v && is_ows(ve[-1]); ve--) {
        }
        if (ve > v) {
            unfold(h, v, ve - v);
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
    f = apr_array_push(h->fields);
    f->name = apr_pstrmemdup(h->p, line, colon - line);
    f->value = apr_pstrmemdup(h->p, v, ve - v);
    f->vlen = ve - v;
    f->vcap = 0;
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

/* Whether `name` is hop-by-hop: one of the fixed list, Proxy-*, or a
 * token of one of the head's Connection fields (at most
 * ISR_HTTP_LINES_MAX of them, so this stays bounded). */
static int is_hop_by_hop(const char *name, const isr_http_head_t *h)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Trailers",
        "Transfer-Encoding", "Upgrade", "Content-Length", NULL
    };
    const field_t *f = (const field_t *)h->fields->elts;
    int i;

    if (!strncasecmp(name, "Proxy-", 6)) {
        return 1;
    }
    for (i = 0; hop[i]; i++) {
        if (!strcasecmp(name, hop[i])) {
            return 1;
        }
    }
    for (i = 0; i < h->fields->nelts; i++) {
        if (!strcasecmp(f[i].name, "Connection")
            && isr_http_has_token(f[i].value, name)) {
            return 1;
        }
    }
    return 0;
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

/* The delta-seconds of directive `name` in a Cache-Control value: 1 with
 * *secs set when present (a malformed value counts as 0, RFC 9111 1.2.2
 * says to treat it as stale), 0 when absent. */
static int cc_seconds(const char *list, const char *name, apr_int64_t *secs)
{
    apr_size_t nl = strlen(name);
    const char *s;
    apr_int64_t n = 0;

    for (s = list; *s; s++) {
        if (strncasecmp(s, name, nl)
            || (s != list && (apr_isalnum(s[-1]) || s[-1] == '-'))
            || apr_isalnum(s[nl]) || s[nl] == '-') {
            continue;
        }
        s += nl;
        while (is_ows(*s)) {
            s++;
        }
        if (*s++ != '=') {
            *secs = 0;
            return 1;
        }
        while (is_ows(*s)) {
            s++;
        }
        if (*s == '"') {
            s++;
        }
        for (; apr_isdigit(*s) && n < APR_INT64_C(1) << 40; s++) {
            n = n * 10 + (*s - '0');
        }
        *secs = n;
        return 1;
    }
    return 0;
}

/* Explicit freshness that is still ahead (RFC 9111 4.2.1, shared cache):
 * s-maxage, else max-age, else Expires after Date (or after `now` without
 * a usable Date). Fields named by Connection are not the answer's. */
static int fresh_ahead(const isr_http_head_t *h, apr_time_t now)
{
    const field_t *f = (const field_t *)h->fields->elts;
    const char *expires = NULL, *date = NULL;
    apr_int64_t smax = -1, max = -1, n;
    apr_time_t e, d;
    int i;

    for (i = 0; i < h->fields->nelts; i++) {
        if (is_hop_by_hop(f[i].name, h)) {
            continue;
        }
        if (!strcasecmp(f[i].name, "Cache-Control")) {
            if (smax < 0 && cc_seconds(f[i].value, "s-maxage", &n)) {
                smax = n;
            }
            if (max < 0 && cc_seconds(f[i].value, "max-age", &n)) {
                max = n;
            }
        }
        else if (!expires && !strcasecmp(f[i].name, "Expires")) {
            expires = f[i].value;
        }
        else if (!date && !strcasecmp(f[i].name, "Date")) {
            date = f[i].value;
        }
    }
    if (smax >= 0) {
        return smax > 0;
    }
    if (max >= 0) {
        return max > 0;
    }
    if (!expires || !(e = apr_date_parse_http(expires))) {
        return 0;              /* none, or invalid: already expired */
    }
    d = date ? apr_date_parse_http(date) : 0;
    return e > (d ? d : now);
}

/* The current head's end-to-end fields as "name\0value\0" pairs. */
static void end_to_end(const isr_http_head_t *h, apr_pool_t *p,
                       const char **out, apr_size_t *olen)
{
    const field_t *f = (const field_t *)h->fields->elts;
    apr_size_t len = 0, nl, vl;
    char *blob, *w;
    int i, n = h->fields->nelts;

    for (i = 0; i < n; i++) {
        if (!is_hop_by_hop(f[i].name, h)) {
            len += strlen(f[i].name) + strlen(f[i].value) + 2;
        }
    }
    w = blob = apr_palloc(p, len + 1);
    for (i = 0; i < n; i++) {
        if (is_hop_by_hop(f[i].name, h)) {
            continue;
        }
        nl = strlen(f[i].name) + 1;
        vl = strlen(f[i].value) + 1;
        memcpy(w, f[i].name, nl);
        memcpy(w + nl, f[i].value, vl);
        w += nl + vl;
    }
    *out = blob;
    *olen = len;
}

apr_status_t isr_http_head_finish(isr_http_head_t *h, apr_pool_t *p,
                                  isr_http_result_t *out)
{
    const field_t *f = (const field_t *)h->fields->elts;
    apr_int64_t cl = -1;
    const char *c;
    int i, n = h->fields->nelts;

    memset(out, 0, sizeof(*out));
    if (!h->error && h->status && h->status < 200) {
        invalid(h, "a 1xx status as the final answer");
    }
    if (!h->error && h->status > 599) {
        invalid(h, "a status above 599");
    }
    for (i = 0; !h->error && i < n; i++) {
        for (c = f[i].value; *c; c++) {
            if ((apr_iscntrl(*c) && *c != '\t') || *c == 0x7f) {
                invalid(h, "a control byte in a header value");
                break;
            }
        }
        if (!strcasecmp(f[i].name, "Content-Length")
            && !content_length_ok(f[i].value, &cl)) {
            invalid(h, "conflicting or malformed Content-Length");
        }
        /* Judged on every header, before any is dropped as hop-by-hop: a
         * "Connection: Cache-Control" must not hide a "private". */
        if (!strcasecmp(f[i].name, "Set-Cookie")
            || !strcasecmp(f[i].name, "Set-Cookie2")
            || (!strcasecmp(f[i].name, "Cache-Control")
                && (isr_http_has_token(f[i].value, "no-store")
                    || isr_http_has_token(f[i].value, "private")))) {
            out->uncacheable = 1;
        }
    }
    if (h->error || !h->status) {
        out->error = h->error ? h->error : "no status line";
        return APR_EINVAL;
    }
    out->explicit_fresh = fresh_ahead(h, apr_time_now());
    end_to_end(h, p, &out->headers, &out->hdrlen);
    return APR_SUCCESS;
}

int isr_http_head_interim(const isr_http_head_t *h, apr_pool_t *p,
                          const char **headers, apr_size_t *hdrlen)
{
    const field_t *f = (const field_t *)h->fields->elts;
    const char *c;
    int i;

    if (h->error || !h->done || h->status >= 200) {
        return 0;
    }
    for (i = 0; i < h->fields->nelts; i++) {
        for (c = f[i].value; *c; c++) {
            if ((apr_iscntrl(*c) && *c != '\t') || *c == 0x7f) {
                return 0;
            }
        }
    }
    end_to_end(h, p, headers, hdrlen);
    return h->status;
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

int isr_http_walk(isr_http_walk_t *w, const char **name, const char **value)
{
    apr_size_t nl, vl;

    if (w->h >= w->end) {
        return 0;
    }
    nl = strnlen(w->h, w->end - w->h);
    if (w->h + nl >= w->end) {
        return 0;
    }
    *name = w->h;
    *value = w->h + nl + 1;
    vl = strnlen(*value, w->end - *value);
    if (*value + vl >= w->end) {
        return 0;
    }
    w->h = *value + vl + 1;
    return 1;
}

/* ---- content codings ---------------------------------------------------- */

/* A qvalue (RFC 9110 12.4.2) in thousandths; malformed counts as 0. */
static int qvalue(const char *s, const char *end)
{
    int q, d;

    if (s >= end || (*s != '0' && *s != '1')) {
        return 0;
    }
    q = (*s++ - '0') * 1000;
    if (s < end && *s == '.') {
        for (s++, d = 100; s < end && apr_isdigit(*s) && d; s++, d /= 10) {
            q += (*s - '0') * d;
        }
    }
    return q > 1000 ? 1000 : q;
}

int isr_http_coding(const char *name, apr_size_t n)
{
    if ((n == 4 && !strncasecmp(name, "gzip", 4))
        || (n == 6 && !strncasecmp(name, "x-gzip", 6))) {
        return ISR_CODING_GZIP;
    }
    if (n == 2 && !strncasecmp(name, "br", 2)) {
        return ISR_CODING_BR;
    }
    return n == 8 && !strncasecmp(name, "identity", 8) ? ISR_CODING_IDENTITY
                                                        : -1;
}

void isr_http_accept_codings(const char *v, int q[ISR_CODINGS])
{
    int listed[ISR_CODINGS] = { 0, 0, 0 }, q_star = -1, w, i;
    const char *s, *e, *t, *c, *semi;

    q[ISR_CODING_IDENTITY] = q[ISR_CODING_GZIP] = q[ISR_CODING_BR] = 0;
    for (s = v; *s; s = *e ? e + 1 : e) {
        while (is_ows(*s)) {
            s++;
        }
        for (e = s; *e && *e != ','; e++) {
        }
        for (t = s; t < e && is_tchar((unsigned char)*t); t++) {
        }
        w = 1000;
        for (semi = t; semi < e && *semi != ';'; semi++) {
        }
        if (semi < e) {
            for (c = semi + 1; c < e && is_ows(*c); c++) {
            }
            if (e - c > 2 && (c[0] == 'q' || c[0] == 'Q') && c[1] == '=') {
                w = qvalue(c + 2, e);
            }
        }
        i = isr_http_coding(s, t - s);
        if (i < 0 && t - s == 1 && *s == '*') {
            q_star = w > q_star ? w : q_star;
        }
        if (i >= 0) {
            q[i] = listed[i] && q[i] > w ? q[i] : w;
            listed[i] = 1;
        }
    }
    for (i = ISR_CODING_GZIP; i < ISR_CODINGS; i++) {
        if (!listed[i]) {
            q[i] = q_star > 0 ? q_star : 0;
        }
    }
    if (!listed[ISR_CODING_IDENTITY]) {
        q[ISR_CODING_IDENTITY] = q_star == 0 ? 0 : 1;
    }
}
