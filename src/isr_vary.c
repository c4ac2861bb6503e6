/* Vary: names, normalised values, markers and variant contexts (see
 * include/isr_vary.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "isr_http.h"
#include "isr_vary.h"

#define MARKER_GEN "ISR-Vary-Generation"

static int ows(int c)
{
    return c == ' ' || c == '\t';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

isr_vary_t isr_vary_names(apr_pool_t *p, const char *headers,
                          apr_size_t hdrlen, const char **names)
{
    isr_http_walk_t w = { headers, headers + hdrlen };
    const char *name, *value, *s, *e;
    const char *list[ISR_VARY_NAMES_MAX];
    char *item, *c;
    int n = 0, i, j;

    *names = NULL;
    while (isr_http_walk(&w, &name, &value)) {
        if (strcasecmp(name, "Vary")) {
            continue;
        }
        for (s = value; *s; s = *e ? e + 1 : e) {
            while (ows(*s)) {
                s++;
            }
            for (e = s; *e && *e != ','; e++) {
            }
            for (c = (char *)e; c > s && ows(c[-1]); c--) {
            }
            if (c == s) {
                continue;
            }
            item = apr_pstrmemdup(p, s, c - s);
            if (!strcmp(item, "*")) {
                return ISR_VARY_ANY;
            }
            for (c = item; *c; c++) {
                if (!isr_http_is_tchar((unsigned char)*c)) {
                    return ISR_VARY_BAD;
                }
                *c = (char)apr_tolower(*c);
            }
            for (j = 0; j < n && strcmp(list[j], item); j++) {
            }
            if (j < n) {
                continue;
            }
            if (n == ISR_VARY_NAMES_MAX) {
                return ISR_VARY_BAD;
            }
            list[n++] = item;
        }
    }
    if (!n) {
        return ISR_VARY_NONE;
    }
    qsort(list, n, sizeof(list[0]), by_name);
    *names = list[0];
    for (i = 1; i < n; i++) {
        *names = apr_pstrcat(p, *names, ",", list[i], NULL);
    }
    return ISR_VARY_SOME;
}

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

/* Accept-Encoding as a cache needs it: which of br and gzip are
 * acceptable (a coding listed with q=0 is not; "*" stands for the
 * others). */
static const char *accept_encoding(const char *v)
{
    int q_br = -1, q_gzip = -1, q_star = -1, q, br, gzip;
    const char *s, *e, *t, *c, *semi;

    for (s = v; *s; s = *e ? e + 1 : e) {
        while (ows(*s)) {
            s++;
        }
        for (e = s; *e && *e != ','; e++) {
        }
        for (t = s; t < e && isr_http_is_tchar((unsigned char)*t); t++) {
        }
        q = 1000;
        for (semi = t; semi < e && *semi != ';'; semi++) {
        }
        if (semi < e) {
            for (c = semi + 1; c < e && ows(*c); c++) {
            }
            if (e - c > 2 && (c[0] == 'q' || c[0] == 'Q') && c[1] == '=') {
                q = qvalue(c + 2, e);
            }
        }
        if (t - s == 2 && !strncasecmp(s, "br", 2)) {
            q_br = q;
        }
        else if ((t - s == 4 && !strncasecmp(s, "gzip", 4))
                 || (t - s == 6 && !strncasecmp(s, "x-gzip", 6))) {
            q_gzip = q > q_gzip ? q : q_gzip;
        }
        else if (t - s == 1 && *s == '*') {
            q_star = q;
        }
    }
    br = q_br >= 0 ? q_br > 0 : q_star > 0;
    gzip = q_gzip >= 0 ? q_gzip > 0 : q_star > 0;
    return br && gzip ? "br,gzip" : br ? "br" : gzip ? "gzip" : "identity";
}

const char *isr_vary_value(apr_pool_t *p, const char *name,
                           const char *value)
{
    char *out, *w;
    const char *s;

    if (!strcasecmp(name, "Accept-Encoding")) {
        return accept_encoding(value);
    }
    w = out = apr_palloc(p, strlen(value) + 1);
    for (s = value; ows(*s); s++) {
    }
    for (; *s; s++) {
        if (ows(*s)) {
            while (ows(s[1])) {
                s++;
            }
            if (s[1] && s[1] != ',' && w > out && w[-1] != ',') {
                *w++ = ' ';
            }
        }
        else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

void isr_vary_marker(apr_pool_t *p, const char *names, const char *gen,
                     const char **headers, apr_size_t *hdrlen)
{
    apr_size_t nl = strlen(names) + 1, gl = strlen(gen) + 1;
    char *b = apr_palloc(p, sizeof("Vary") + nl + sizeof(MARKER_GEN) + gl);
    char *w = b;

    memcpy(w, "Vary", sizeof("Vary"));
    w += sizeof("Vary");
    memcpy(w, names, nl);
    w += nl;
    memcpy(w, MARKER_GEN, sizeof(MARKER_GEN));
    w += sizeof(MARKER_GEN);
    memcpy(w, gen, gl);
    w += gl;
    *headers = b;
    *hdrlen = w - b;
}

int isr_vary_marker_read(const char *headers, apr_size_t hdrlen,
                         const char **names, const char **gen)
{
    isr_http_walk_t w = { headers, headers + hdrlen };
    const char *name, *value;

    *names = *gen = NULL;
    while (isr_http_walk(&w, &name, &value)) {
        if (!strcmp(name, "Vary")) {
            *names = value;
        }
        else if (!strcmp(name, MARKER_GEN)) {
            *gen = value;
        }
    }
    return *names && **names && *gen && **gen;
}

void isr_vary_ctx(apr_pool_t *p, const isr_ctx_t *base, const char *names,
                  const char *gen, apr_table_t *in, isr_ctx_t *out)
{
    apr_array_header_t *h = base->headers
                            ? apr_array_copy(p, base->headers)
                            : apr_array_make(p, 4, sizeof(const char *));
    const char *s, *e, *name, *v;

    *out = *base;
    for (s = names; *s; s = *e ? e + 1 : e) {
        for (e = s; *e && *e != ','; e++) {
        }
        name = apr_pstrmemdup(p, s, e - s);
        /* A header the URL's context has is keyed (and sent) already. */
        if (*name && !isr_ctx_has_header(base, name)
            && (v = apr_table_getm(p, in, name))) {
            APR_ARRAY_PUSH(h, const char *) = apr_pstrcat(
                p, name, ": ", isr_vary_value(p, name, v), NULL);
        }
    }
    out->headers = h;
    out->variant = gen;
}
