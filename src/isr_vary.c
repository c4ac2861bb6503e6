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

/* Accept-Encoding as a cache needs it: which of br and gzip are
 * acceptable (isr_http_accept_codings). */
static const char *accept_encoding(const char *v)
{
    int q[ISR_CODINGS];
    int br, gzip;

    isr_http_accept_codings(v, q);
    br = q[ISR_CODING_BR] > 0;
    gzip = q[ISR_CODING_GZIP] > 0;
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
