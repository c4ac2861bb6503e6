/* The backend request context and the cache key built from it (see
 * include/isr_ctx.h for why the key is the context). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "isr_ctx.h"

const char *isr_ctx_key(apr_pool_t *p, const isr_ctx_t *ctx, apr_size_t *klen)
{
    const char *unix_path = ctx->unix_path ? ctx->unix_path : "";
    const char *extra = ctx->extra ? ctx->extra : "";
    apr_size_t len, ul = strlen(unix_path), rl = strlen(ctx->url);
    apr_size_t el = strlen(extra), hl;
    apr_size_t vl = ctx->variant ? 1 + strlen(ctx->variant)
                    : ctx->strict ? 1 : 0;
    char *key, *w;
    int i, n = ctx->headers ? ctx->headers->nelts : 0;

    len = sizeof(ISR_CTX_MAGIC) + vl + ul + 1 + rl + 1 + 1 + el;
    for (i = 0; i < n; i++) {
        len += strlen(APR_ARRAY_IDX(ctx->headers, i, const char *)) + 1;
    }
    w = key = apr_palloc(p, len + 1);
    memcpy(w, ISR_CTX_MAGIC, sizeof(ISR_CTX_MAGIC) - 1);
    w += sizeof(ISR_CTX_MAGIC) - 1;
    if (ctx->variant) {
        *w++ = 'V';
        memcpy(w, ctx->variant, vl - 1);
        w += vl - 1;
    }
    else if (ctx->strict) {
        *w++ = 'S';
    }
    *w++ = '\0';
    memcpy(w, unix_path, ul + 1);
    w += ul + 1;
    memcpy(w, ctx->url, rl + 1);
    w += rl + 1;
    for (i = 0; i < n; i++) {
        const char *h = APR_ARRAY_IDX(ctx->headers, i, const char *);
        hl = strlen(h);
        memcpy(w, h, hl + 1);
        w += hl + 1;
    }
    *w++ = '\0';                       /* the empty field ends the headers */
    memcpy(w, extra, el + 1);
    *klen = len;
    return key;
}

/* The next NUL-terminated field of [*s, end), or NULL when none is left. */
static const char *next_field(const char **s, const char *end)
{
    const char *f = *s, *nul;

    if (f >= end || !(nul = memchr(f, '\0', end - f))) {
        return NULL;
    }
    *s = nul + 1;
    return f;
}

apr_status_t isr_ctx_parse(apr_pool_t *p, const char *key, apr_size_t klen,
                           isr_ctx_t *ctx)
{
    const char *copy = apr_pstrmemdup(p, key, klen), *end = copy + klen;
    const char *s = copy, *f;
    apr_array_header_t *h = apr_array_make(p, 4, sizeof(const char *));

    memset(ctx, 0, sizeof(*ctx));
    if (!(f = next_field(&s, end))
        || strncmp(f, ISR_CTX_MAGIC, sizeof(ISR_CTX_MAGIC) - 1)) {
        return APR_EINVAL;
    }
    f += sizeof(ISR_CTX_MAGIC) - 1;
    if (*f == 'V' && f[1]) {
        ctx->variant = f + 1;
        ctx->strict = 1;
    }
    else if (*f == 'S' && !f[1]) {
        ctx->strict = 1;
    }
    else if (*f) {
        return APR_EINVAL;
    }
    if (!(f = next_field(&s, end))) {
        return APR_EINVAL;
    }
    ctx->unix_path = *f ? f : NULL;
    if (!(f = next_field(&s, end)) || !*f) {
        return APR_EINVAL;
    }
    ctx->url = f;
    while ((f = next_field(&s, end)) && *f) {
        if (!strchr(f, ':')) {
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(h, const char *) = f;
    }
    if (!f) {
        return APR_EINVAL;             /* no end of the headers */
    }
    /* The rest is the extra part: no NUL inside, and the copy ends in one. */
    if (memchr(s, '\0', end - s)) {
        return APR_EINVAL;
    }
    ctx->headers = h;
    ctx->extra = *s ? s : NULL;
    return APR_SUCCESS;
}

static const char hex[] = "0123456789ABCDEF";

/* Percent-encode the bytes of s for which keep() is 0. */
static const char *encode(apr_pool_t *p, const char *s, int (*keep)(int c))
{
    const unsigned char *u;
    apr_size_t extra = 0;
    char *out, *w;

    for (u = (const unsigned char *)s; *u; u++) {
        extra += keep(*u) ? 0 : 2;
    }
    if (!extra) {
        return s;
    }
    w = out = apr_palloc(p, (u - (const unsigned char *)s) + extra + 1);
    for (u = (const unsigned char *)s; *u; u++) {
        if (keep(*u)) {
            *w++ = (char)*u;
        }
        else {
            *w++ = '%';
            *w++ = hex[*u >> 4];
            *w++ = hex[*u & 15];
        }
    }
    *w = '\0';
    return out;
}

static int url_safe(int c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"#<>\\^`{|}", c);
}

static int unreserved(int c)
{
    return c && c < 0x80 && (apr_isalnum(c) || strchr("-._~/", c));
}

const char *isr_ctx_url_clean(apr_pool_t *p, const char *url)
{
    return encode(p, url, url_safe);
}

const char *isr_ctx_urlencode(apr_pool_t *p, const char *s)
{
    return encode(p, s, unreserved);
}

const char *isr_ctx_authority(const char *url, const char *end,
                              apr_size_t *len)
{
    const char *a, *e;

    if (!end) {
        end = url + strlen(url);
    }
    if (end - url > 7 && !strncasecmp(url, "http://", 7)) {
        a = url + 7;
    }
    else if (end - url > 8 && !strncasecmp(url, "https://", 8)) {
        a = url + 8;
    }
    else {
        return NULL;
    }
    for (e = a; e < end && *e != '/' && *e != '?' && *e != '#'; e++) {
    }
    *len = (apr_size_t)(e - a);
    return a;
}

int isr_ctx_has_header(const isr_ctx_t *ctx, const char *name)
{
    apr_size_t nl = strlen(name);
    const char *h;
    int i;

    for (i = 0; ctx->headers && i < ctx->headers->nelts; i++) {
        h = APR_ARRAY_IDX(ctx->headers, i, const char *);
        if (!strncasecmp(h, name, nl) && h[nl] == ':') {
            return 1;
        }
    }
    return 0;
}
