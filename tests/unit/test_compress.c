/* Unit tests of compress once (src/isr_compress.c) and the Accept-Encoding
 * weights it chooses by (src/isr_http.c): what is made at store time, the
 * alternates block and its bounds, the choice on a hit, variant ETags.
 * zlib, libbrotli and APR only. Prints "N passed, M failed". */
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <zlib.h>
#include <brotli/encode.h>
#include <brotli/decode.h>

#include "isr_compress.h"
#include "isr_http.h"

static int checks_failed;

#define CHECK(cond) do {                                                     \
    if (!(cond)) {                                                           \
        printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
        checks_failed++;                                                     \
    }                                                                        \
} while (0)

/* A head blob from "name", "value", ... NULL. */
static void head(apr_pool_t *p, isr_value_t *v, ...)
{
    va_list ap;
    const char *s;
    char *buf = apr_palloc(p, 4096), *w = buf;

    va_start(ap, v);
    while ((s = va_arg(ap, const char *)) != NULL) {
        memcpy(w, s, strlen(s) + 1);
        w += strlen(s) + 1;
    }
    va_end(ap);
    v->headers = buf;
    v->hdrlen = w - buf;
}

/* n bytes of HTML-like text of varied words (a fixed PRNG). */
static char *page(apr_pool_t *p, apr_size_t n)
{
    static const char *const words[] = {
        "cache", "<p>", "stale", "</p>", "origin", "refresh", "<a href=\"/x\">",
        "</a>", "while", "revalidate", "the", "server", "answers", "<li>",
        "quickly", "module", "zone", "httpd", "entry", "\n"
    };
    char *b = apr_palloc(p, n + 1);
    apr_size_t i = 0, l;
    unsigned int x = 12345;

    while (i < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 20];
        l = strlen(w);
        l = l > n - i ? n - i : l;
        memcpy(b + i, w, l);
        i += l;
        if (i < n) {
            b[i++] = ' ';
        }
    }
    b[n] = 0;
    return b;
}

static char *random_bytes(apr_pool_t *p, apr_size_t n)
{
    char *b = apr_palloc(p, n);
    unsigned int x = 777;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        b[i] = (char)(x >> 24);
    }
    return b;
}

static void conf_both(isr_compress_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->level[ISR_CODING_IDENTITY] = -1;
    c->level[ISR_CODING_GZIP] = 6;
    c->level[ISR_CODING_BR] = 5;
    c->types = NULL;
    c->min_size = 256;
}

static int gunzip_eq(const char *z, apr_size_t zl, const char *want,
                     apr_size_t wl)
{
    z_stream zs;
    char *out = malloc(wl + 16);
    int ok;

    memset(&zs, 0, sizeof(zs));
    inflateInit2(&zs, 15 + 16);
    zs.next_in = (Bytef *)z;
    zs.avail_in = (uInt)zl;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)(wl + 16);
    ok = inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == wl
         && !memcmp(out, want, wl);
    inflateEnd(&zs);
    free(out);
    return ok;
}

static int unbrotli_eq(const char *z, apr_size_t zl, const char *want,
                       apr_size_t wl)
{
    size_t n = wl + 16;
    uint8_t *out = malloc(n);
    int ok = BrotliDecoderDecompress(zl, (const uint8_t *)z, &n, out)
             == BROTLI_DECODER_RESULT_SUCCESS
             && n == wl && !memcmp(out, want, wl);

    free(out);
    return ok;
}

static apr_size_t gzip_of(const char *in, apr_size_t n, char *out,
                          apr_size_t room)
{
    z_stream zs;
    apr_size_t l;

    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)room;
    deflate(&zs, Z_FINISH);
    l = zs.total_out;
    deflateEnd(&zs);
    return l;
}

static int count_of(const isr_value_t *v)
{
    apr_uint32_t n;

    if (v->altlen < 4) {
        return -1;
    }
    memcpy(&n, v->alts, 4);
    return (int)n;
}

/* ---- cases -------------------------------------------------------------- */

static void case_accept(apr_pool_t *p)
{
    int q[ISR_CODINGS];
    (void)p;

    isr_http_accept_codings("gzip, deflate, br", q);
    CHECK(q[ISR_CODING_GZIP] == 1000 && q[ISR_CODING_BR] == 1000);
    CHECK(q[ISR_CODING_IDENTITY] == 1);
    isr_http_accept_codings("br;q=0, gzip;q=0.5", q);
    CHECK(q[ISR_CODING_BR] == 0 && q[ISR_CODING_GZIP] == 500);
    isr_http_accept_codings("*", q);
    CHECK(q[ISR_CODING_BR] == 1000 && q[ISR_CODING_GZIP] == 1000);
    CHECK(q[ISR_CODING_IDENTITY] == 1);
    isr_http_accept_codings("*;q=0", q);
    CHECK(q[ISR_CODING_BR] == 0 && q[ISR_CODING_GZIP] == 0
          && q[ISR_CODING_IDENTITY] == 0);
    isr_http_accept_codings("identity;q=0.8, gzip;q=0.5", q);
    CHECK(q[ISR_CODING_IDENTITY] == 800 && q[ISR_CODING_GZIP] == 500);
    isr_http_accept_codings("x-gzip;q=0.3, gzip;q=0.7", q);
    CHECK(q[ISR_CODING_GZIP] == 700);
    isr_http_accept_codings("GZIP ; Q=0.25", q);
    CHECK(q[ISR_CODING_GZIP] == 250);
    isr_http_accept_codings("gzip;q=2, br;q=bogus", q);
    CHECK(q[ISR_CODING_GZIP] == 0 && q[ISR_CODING_BR] == 0);
    isr_http_accept_codings("", q);
    CHECK(q[ISR_CODING_GZIP] == 0 && q[ISR_CODING_BR] == 0
          && q[ISR_CODING_IDENTITY] == 1);
    isr_http_accept_codings("brotli, gzipx", q);
    CHECK(q[ISR_CODING_GZIP] == 0 && q[ISR_CODING_BR] == 0);
}

static void case_types(apr_pool_t *p)
{
    isr_compress_conf_t c;
    apr_array_header_t *t = apr_array_make(p, 2, sizeof(const char *));

    conf_both(&c);
    CHECK(isr_compress_type(&c, "text/html"));
    CHECK(isr_compress_type(&c, "text/html; charset=utf-8"));
    CHECK(isr_compress_type(&c, "Application/JSON"));
    CHECK(isr_compress_type(&c, "image/svg+xml"));
    CHECK(!isr_compress_type(&c, "image/png"));
    CHECK(!isr_compress_type(&c, "application/jsonx"));
    CHECK(!isr_compress_type(&c, "textual/html"));
    CHECK(!isr_compress_type(&c, ""));
    APR_ARRAY_PUSH(t, const char *) = "application/*";
    APR_ARRAY_PUSH(t, const char *) = "text/csv";
    c.types = t;
    CHECK(isr_compress_type(&c, "application/wasm"));
    CHECK(isr_compress_type(&c, "text/csv;header=present"));
    CHECK(!isr_compress_type(&c, "text/html"));
}

static void case_compress_page(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;
    const char *b, *body = page(p, 20000);
    apr_size_t l;

    conf_both(&c);
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html; charset=utf-8", "ETag", "\"a\"",
         NULL);
    v.body = body;
    v.bodylen = 20000;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(v.body == body && v.bodylen == 20000);     /* identity untouched */
    CHECK(count_of(&v) == 2);
    CHECK(isr_compress_alts_valid(v.alts, v.altlen));
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &b, &l));
    CHECK(l < 20000 && gunzip_eq(b, l, body, 20000));
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
    CHECK(l < 20000 && unbrotli_eq(b, l, body, 20000));
    CHECK(!isr_compress_alt(v.alts, v.altlen, ISR_CODING_IDENTITY, &b, &l));
    CHECK(isr_compress_varies(&c, v.alts, v.altlen));

    /* Choosing. */
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "gzip, br")
          == ISR_CODING_BR);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "gzip")
          == ISR_CODING_GZIP);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "br;q=0, gzip")
          == ISR_CODING_GZIP);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "gzip;q=1, br;q=0.5")
          == ISR_CODING_GZIP);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "gzip;q=0")
          == ISR_CODING_IDENTITY);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "*") == ISR_CODING_BR);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "*;q=0")
          == ISR_CODING_IDENTITY);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "identity")
          == ISR_CODING_IDENTITY);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "identity, gzip;q=0.5")
          == ISR_CODING_IDENTITY);
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, NULL)
          == ISR_CODING_IDENTITY);
    /* Only what the location lists is served. */
    c.level[ISR_CODING_BR] = -1;
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "br, gzip")
          == ISR_CODING_GZIP);
    c.level[ISR_CODING_GZIP] = -1;
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "br, gzip")
          == ISR_CODING_IDENTITY);
    CHECK(!isr_compress_varies(&c, v.alts, v.altlen));
}

static void case_compress_not(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;

    conf_both(&c);
    /* Does not shrink: decided, nothing kept. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/plain", NULL);
    v.body = random_bytes(p, 5000);
    v.bodylen = 5000;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(count_of(&v) == 0 && v.altlen == 4);
    CHECK(!isr_compress_varies(&c, v.alts, v.altlen));
    CHECK(isr_compress_choose(&c, v.alts, v.altlen, "gzip, br")
          == ISR_CODING_IDENTITY);
    /* Below the minimum size. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", NULL);
    v.body = page(p, 200);
    v.bodylen = 200;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(count_of(&v) == 0);
    /* Out of scope: type, no type, no-transform, status, off. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    v.body = page(p, 5000);
    v.bodylen = 5000;
    head(p, &v, "Content-Type", "image/png", NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_NONE);
    CHECK(!v.alts && !v.altlen);
    head(p, &v, "ETag", "\"x\"", NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_NONE);
    head(p, &v, "Content-Type", "text/html", "Cache-Control",
         "public, no-transform", NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_NONE);
    head(p, &v, "Content-Type", "text/html", NULL);
    v.status = 206;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_NONE);
    v.status = 200;
    c.level[ISR_CODING_GZIP] = c.level[ISR_CODING_BR] = -1;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_NONE);
    CHECK(!v.alts);
    /* A 404 page is compressed too. */
    conf_both(&c);
    v.status = 404;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(count_of(&v) == 2);
}

static void case_precompressed(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;
    const char *body = page(p, 30000), *b, *name, *value;
    char *z = apr_palloc(p, 40000);
    apr_size_t zl = gzip_of(body, 30000, z, 40000), l;
    isr_http_walk_t w;
    int ce = 0;

    conf_both(&c);
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip",
         "Vary", "Accept-Encoding", NULL);
    v.body = z;
    v.bodylen = zl;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(v.bodylen == 30000 && !memcmp(v.body, body, 30000));
    w.h = v.headers;
    w.end = v.headers + v.hdrlen;
    while (isr_http_walk(&w, &name, &value)) {
        ce += !strcasecmp(name, "Content-Encoding");
    }
    CHECK(ce == 0);
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &b, &l));
    CHECK(l == zl && !memcmp(b, z, zl));            /* the backend's bytes */
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
    CHECK(unbrotli_eq(b, l, body, 30000));

    /* Larger than max_body once decoded: as it came. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip", NULL);
    v.body = z;
    v.bodylen = zl;
    CHECK(isr_compress_value(p, &c, 29999, &v) == ISR_COMPRESS_UNDECODED);
    CHECK(v.body == z && v.bodylen == zl && !v.alts);
    CHECK(isr_compress_value(p, &c, 30000, &v) == ISR_COMPRESS_DONE);
    /* Bad data, truncated, trailing bytes, other codings. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip", NULL);
    v.body = z;
    v.bodylen = zl - 5;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    {
        char *t = apr_palloc(p, zl + 3);

        memcpy(t, z, zl);
        memcpy(t + zl, "abc", 3);
        v.body = t;
        v.bodylen = zl + 3;
        CHECK(isr_compress_value(p, &c, 1 << 20, &v)
              == ISR_COMPRESS_UNDECODED);
    }
    v.body = body;
    v.bodylen = 30000;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "br", NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "deflate",
         NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip, br",
         NULL);
    v.body = z;
    v.bodylen = zl;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip",
         "Content-Encoding", "gzip", NULL);
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_UNDECODED);
    /* "identity" is no coding: compressed as usual, the field dropped. */
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "identity",
         NULL);
    v.body = body;
    v.bodylen = 30000;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(count_of(&v) == 2 && !memmem(v.headers, v.hdrlen, "Content-Enc",
                                       11));
    /* br from the backend, gzip made from the decoded body. */
    {
        size_t bl = BrotliEncoderMaxCompressedSize(30000);
        uint8_t *bz = apr_palloc(p, bl);

        BrotliEncoderCompress(5, 22, BROTLI_MODE_TEXT, 30000,
                              (const uint8_t *)body, &bl, bz);
        memset(&v, 0, sizeof(v));
        v.status = 200;
        head(p, &v, "Content-Type", "text/html", "Content-Encoding", "br",
             NULL);
        v.body = (const char *)bz;
        v.bodylen = bl;
        CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
        CHECK(v.bodylen == 30000 && !memcmp(v.body, body, 30000));
        CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
        CHECK(l == bl && !memcmp(b, bz, bl));
        CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &b, &l));
        CHECK(gunzip_eq(b, l, body, 30000));
        /* br not listed: only the gzip copy is kept. */
        memset(&v, 0, sizeof(v));
        v.status = 200;
        head(p, &v, "Content-Type", "text/html", "Content-Encoding", "br",
             NULL);
        v.body = (const char *)bz;
        v.bodylen = bl;
        c.level[ISR_CODING_BR] = -1;
        CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
        CHECK(count_of(&v) == 1);
        CHECK(!isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
    }
}

static void case_large_br(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;
    const char *body = page(p, 600 * 1024), *b;
    apr_size_t l;

    /* Level 11 asked, a body over ISR_COMPRESS_BR_SLOW_MAX: still a
     * valid stream (made at level 9 at most). */
    conf_both(&c);
    c.level[ISR_CODING_BR] = 11;
    c.level[ISR_CODING_GZIP] = -1;
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", NULL);
    v.body = body;
    v.bodylen = 600 * 1024;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
    CHECK(unbrotli_eq(b, l, body, 600 * 1024));
}

static void case_alts_bounds(apr_pool_t *p)
{
    char blk[64];
    apr_uint32_t w[8];
    const char *b;
    apr_size_t l;
    (void)p;

    CHECK(!isr_compress_alts_valid(NULL, 0));
    CHECK(!isr_compress_alts_valid("abc", 3));
    w[0] = 0;
    memcpy(blk, w, 4);
    CHECK(isr_compress_alts_valid(blk, 4));
    CHECK(!isr_compress_alts_valid(blk, 5));         /* bytes left over */
    /* One gzip body of 3 bytes. */
    w[0] = 1; w[1] = ISR_CODING_GZIP; w[2] = 3;
    memcpy(blk, w, 12);
    memcpy(blk + 12, "xyz", 3);
    CHECK(isr_compress_alts_valid(blk, 15));
    CHECK(isr_compress_alt(blk, 15, ISR_CODING_GZIP, &b, &l) && l == 3
          && !memcmp(b, "xyz", 3));
    CHECK(!isr_compress_alts_valid(blk, 14));        /* truncated */
    w[2] = 0xffffffffu;                              /* length past the end */
    memcpy(blk, w, 12);
    CHECK(!isr_compress_alts_valid(blk, 15));
    CHECK(!isr_compress_alt(blk, 15, ISR_CODING_GZIP, &b, &l));
    w[1] = 7; w[2] = 3;                              /* unknown coding */
    memcpy(blk, w, 12);
    CHECK(!isr_compress_alts_valid(blk, 15));
    w[0] = 3;                                        /* too many */
    memcpy(blk, w, 4);
    CHECK(!isr_compress_alts_valid(blk, 40));
    w[0] = 2; w[1] = ISR_CODING_GZIP; w[2] = 0x80000000u;
    w[3] = ISR_CODING_BR; w[4] = 0x80000000u;        /* sum wraps 32 bits */
    memcpy(blk, w, 20);
    CHECK(!isr_compress_alts_valid(blk, 20));
}

static void case_etag(apr_pool_t *p)
{
    CHECK(!strcmp(isr_compress_etag(p, "\"a\"", ISR_CODING_GZIP),
                  "\"a-isr-gzip\""));
    CHECK(!strcmp(isr_compress_etag(p, "W/\"a\"", ISR_CODING_BR),
                  "W/\"a-isr-br\""));
    CHECK(!strcmp(isr_compress_etag(p, "\"a\"", ISR_CODING_IDENTITY),
                  "\"a\""));
    CHECK(!strcmp(isr_compress_etag(p, "\"\"", ISR_CODING_GZIP),
                  "\"-isr-gzip\""));
    /* Not a quoted entity-tag: a copy gets none (never the identity's). */
    CHECK(isr_compress_etag(p, "a", ISR_CODING_GZIP) == NULL);
    CHECK(isr_compress_etag(p, "W/a", ISR_CODING_GZIP) == NULL);
    CHECK(isr_compress_etag(p, "\"", ISR_CODING_GZIP) == NULL);
    CHECK(isr_compress_etag(p, "W/\"", ISR_CODING_BR) == NULL);
    CHECK(!strcmp(isr_compress_etag(p, "a", ISR_CODING_IDENTITY), "a"));
    CHECK(isr_compress_etag(p, NULL, ISR_CODING_GZIP) == NULL);
}

static void case_trim_renew(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;
    const char *body = page(p, 20000), *b, *gz;
    apr_size_t l, gl, bl;

    conf_both(&c);
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", NULL);
    v.body = body;
    v.bodylen = 20000;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &gz, &gl));
    CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &bl));
    /* The smaller copy stays, then none (count 0), then nothing to do. */
    CHECK(isr_compress_trim(p, &v) == 1 && count_of(&v) == 1);
    if (bl < gl) {
        CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l)
              && l == bl && unbrotli_eq(b, l, body, 20000));
        CHECK(!isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &b, &l));
    }
    else {
        CHECK(isr_compress_alt(v.alts, v.altlen, ISR_CODING_GZIP, &b, &l)
              && l == gl && gunzip_eq(b, l, body, 20000));
        CHECK(!isr_compress_alt(v.alts, v.altlen, ISR_CODING_BR, &b, &l));
    }
    (void)gz;
    CHECK(isr_compress_trim(p, &v) == 1 && count_of(&v) == 0);
    CHECK(isr_compress_trim(p, &v) == 0 && count_of(&v) == 0);
    v.alts = NULL;
    v.altlen = 0;
    CHECK(isr_compress_trim(p, &v) == 0);
    /* A 304 that says no-transform drops the copies. */
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(isr_compress_renewed(&v) == 0 && count_of(&v) == 2);
    head(p, &v, "Content-Type", "text/html", "Cache-Control",
         "max-age=60, no-transform", NULL);
    CHECK(isr_compress_renewed(&v) == 1 && count_of(&v) == 0);
}

static void case_multi_member(apr_pool_t *p)
{
    isr_compress_conf_t c;
    isr_value_t v;
    const char *body = page(p, 30000);
    char *z = apr_palloc(p, 80000);
    apr_size_t a = gzip_of(body, 10000, z, 40000);
    apr_size_t b = gzip_of(body + 10000, 20000, z + a, 40000);

    conf_both(&c);
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip", NULL);
    v.body = z;
    v.bodylen = a + b;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(v.bodylen == 30000 && !memcmp(v.body, body, 30000));
    /* The limit counts both members. */
    memset(&v, 0, sizeof(v));
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip", NULL);
    v.body = z;
    v.bodylen = a + b;
    CHECK(isr_compress_value(p, &c, 29999, &v) == ISR_COMPRESS_UNDECODED);
    CHECK(isr_compress_value(p, &c, 30000, &v) == ISR_COMPRESS_DONE);
    /* A tiny first member, so that the second starts with room to spare. */
    memset(&v, 0, sizeof(v));
    a = gzip_of("x", 1, z, 100);
    b = gzip_of(body, 30000, z + a, 40000);
    v.status = 200;
    head(p, &v, "Content-Type", "text/html", "Content-Encoding", "gzip", NULL);
    v.body = z;
    v.bodylen = a + b;
    CHECK(isr_compress_value(p, &c, 1 << 20, &v) == ISR_COMPRESS_DONE);
    CHECK(v.bodylen == 30001 && v.body[0] == 'x'
          && !memcmp(v.body + 1, body, 30000));
}

typedef struct {
    const char *name;
    void (*fn)(apr_pool_t *p);
} case_t;

static const case_t cases[] = {
    { "accept", case_accept },
    { "types", case_types },
    { "compress_page", case_compress_page },
    { "compress_not", case_compress_not },
    { "precompressed", case_precompressed },
    { "large_br", case_large_br },
    { "alts_bounds", case_alts_bounds },
    { "etag", case_etag },
    { "trim_renew", case_trim_renew },
    { "multi_member", case_multi_member },
    { NULL, NULL }
};

int main(int argc, const char *const *argv)
{
    apr_pool_t *root, *p;
    int i, passed = 0, failed = 0, before;

    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&root, NULL);
    for (i = 0; cases[i].name; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name)) {
            continue;
        }
        apr_pool_create(&p, root);
        before = checks_failed;
        cases[i].fn(p);
        if (checks_failed == before) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        }
        else {
            failed++;
            printf("FAIL %s\n", cases[i].name);
        }
        apr_pool_destroy(p);
    }
    printf("%d passed, %d failed\n", passed, failed);
    apr_terminate();
    return failed ? 1 : 0;
}
