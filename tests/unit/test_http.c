/* Unit tests of the request-side parsers that need APR only:
 * src/isr_http.c (response heads, storability), src/isr_ctx.c (the backend
 * request context and the key built from it), src/isr_parse.c (directive
 * values). One pool per case; prints "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "isr_http.h"
#include "isr_ctx.h"
#include "isr_parse.h"
#include "isr_policy.h"
#include "heads.h"
#include "isr_vary.h"

static int checks_failed;

#define CHECK(cond) do {                                                     \
    if (!(cond)) {                                                           \
        printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
        checks_failed++;                                                     \
    }                                                                        \
} while (0)

/* Feed a whole head, split at LF as libcurl does; returns finish's rv. */
static apr_status_t head(apr_pool_t *p, const char *text, apr_size_t len,
                         isr_http_result_t *res)
{
    isr_http_head_t *h = isr_http_head_make(p);
    const char *s = text, *end = text + len, *nl;

    while (s < end) {
        nl = memchr(s, '\n', end - s);
        nl = nl ? nl + 1 : end;
        isr_http_head_line(h, s, nl - s);
        s = nl;
    }
    return isr_http_head_finish(h, p, res);
}

#define HEAD(p, lit, res) head((p), (lit), sizeof(lit) - 1, (res))

/* The value of header `name` in a "name\0value\0" blob, or NULL. */
static const char *blob_get(const isr_http_result_t *res, const char *name)
{
    const char *s = res->headers, *end = s + res->hdrlen;

    while (s < end) {
        const char *v = s + strlen(s) + 1;
        if (!strcasecmp(s, name)) {
            return v;
        }
        s = v + strlen(v) + 1;
    }
    return NULL;
}

static void case_head_plain(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                  "X-A:   spaced  \t\r\nContent-Length: 5\r\nConnection: x-b\r\n"
                  "X-B: hop\r\nKeep-Alive: 5\r\n\r\n", &r) == APR_SUCCESS);
    CHECK(!strcmp(blob_get(&r, "Content-Type"), "text/html"));
    CHECK(!strcmp(blob_get(&r, "X-A"), "spaced"));
    CHECK(!blob_get(&r, "Content-Length"));
    CHECK(!blob_get(&r, "X-B"));          /* named by Connection */
    CHECK(!blob_get(&r, "Keep-Alive"));
    CHECK(!r.uncacheable && !r.explicit_fresh);
}

/* Finding 10: obs-fold is unfolded, so the "private" on the folded line
 * counts; it was dropped before. */
static void case_head_fold(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nCache-Control: public,\r\n private\r\n"
                  "\r\n", &r) == APR_SUCCESS);
    CHECK(!strcmp(blob_get(&r, "Cache-Control"), "public, private"));
    CHECK(r.uncacheable);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\n continued\r\n\r\n", &r) == APR_EINVAL);
}

/* Finding 10: a header Connection names is judged before it is dropped. */
static void case_head_connection_hides_private(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nConnection: Cache-Control\r\n"
                  "Cache-Control: private\r\n\r\n", &r) == APR_SUCCESS);
    CHECK(r.uncacheable);
    CHECK(!blob_get(&r, "Cache-Control"));
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nConnection: Set-Cookie\r\n"
                  "Set-Cookie: a=b\r\n\r\n", &r) == APR_SUCCESS);
    CHECK(r.uncacheable);
}

/* Finding 10: trailers (after the final head) are neither headers nor a
 * new head, also when the body was empty; 1xx heads are forgotten. */
static void case_head_trailers_and_1xx(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nX-Real: 1\r\n\r\n"
                  "Set-Cookie: t=1\r\nHTTP/1.1 200 OK\r\nX-Late: 1\r\n\r\n",
               &r) == APR_SUCCESS);
    CHECK(blob_get(&r, "X-Real"));
    CHECK(!blob_get(&r, "X-Early"));
    CHECK(!blob_get(&r, "Set-Cookie") && !blob_get(&r, "X-Late"));
    CHECK(!r.uncacheable);
    /* Interim heads are bounded in number (each has its own size limit),
     * and each is handed over with its end-to-end fields. */
    {
        isr_http_head_t *h = isr_http_head_make(p);
        const char *b;
        apr_size_t bl;
        int i, st = 0;
        apr_status_t rv = APR_SUCCESS;

        for (i = 0; i <= ISR_HTTP_INTERIM_MAX && rv == APR_SUCCESS; i++) {
            rv = isr_http_head_line(h, "HTTP/1.1 103 Early Hints\r\n", 26);
            if (rv == APR_SUCCESS) {
                rv = isr_http_head_line(h, "Link: </a>\r\n", 12);
            }
            if (rv == APR_SUCCESS) {
                rv = isr_http_head_line(h, "\r\n", 2);
                st = isr_http_head_interim(h, p, &b, &bl);
            }
        }
        CHECK(i == ISR_HTTP_INTERIM_MAX + 1 && rv == APR_SUCCESS && st == 103
              && bl == sizeof("Link\0</a>"));
        CHECK(isr_http_head_line(h, "HTTP/1.1 103 Early Hints\r\n", 26)
              == APR_EINVAL);
    }
}

/* Finding 10: what httpd would refuse to send is refused at fetch time. */
static void case_head_invalid(apr_pool_t *p)
{
    isr_http_result_t r;
    static const char nul[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n";

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", &r) == APR_EINVAL);
    CHECK(r.error != NULL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX-A: a\001b\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX-A: a\177\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\n: v\r\n\r\n", &r) == APR_EINVAL);
    CHECK(head(p, nul, sizeof(nul) - 1, &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX-A: tab\there \xc3\xa9\r\n\r\n", &r)
          == APR_SUCCESS);
    CHECK(HEAD(p, "X-A: before the status line\r\n\r\n", &r) == APR_EINVAL);
}

/* Review finding: "HTTP/" starts a head only where a head may start; in
 * the middle of a head it is a (bad) header line, after the final head a
 * trailer. A 1xx is never the answer. */
static void case_head_status_lines(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nHTTP/1.1: 200 OK\r\n"
                  "\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nHTTP/1.1 200 OK\r\n"
                  "X-From-Trailer: 1\r\n\r\n", &r) == APR_SUCCESS);
    CHECK(!blob_get(&r, "X-From-Trailer") && blob_get(&r, "X-A"));
    CHECK(HEAD(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
               &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 100 Continue\r\n\r\nX-A: 1\r\n\r\n", &r)
          == APR_EINVAL);        /* no status line after the 1xx head */
    CHECK(HEAD(p, "HTTP/1.1 600 Nope\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 099 Nope\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200\r\n\r\n", &r) == APR_SUCCESS);
}

/* Review finding: a head may not cost more than its limits, and folding
 * within them is linear (each fold appends in place). */
static void case_head_limits(apr_pool_t *p)
{
    isr_http_result_t r;
    char *big, *w;
    const char *v;
    int i;

    big = w = apr_palloc(p, 300 * 16 + 64);
    w += sprintf(w, "HTTP/1.1 200 OK\r\nX-F: a\r\n");
    for (i = 0; i < 250; i++) {
        w += sprintf(w, " b\r\n");
    }
    w += sprintf(w, "\r\n");
    CHECK(head(p, big, w - big, &r) == APR_SUCCESS);
    v = blob_get(&r, "X-F");
    CHECK(v && strlen(v) == 1 + 250 * 2 && v[1] == ' ' && v[2] == 'b');
    w = big;
    w += sprintf(w, "HTTP/1.1 200 OK\r\n");
    for (i = 0; i < 300; i++) {
        w += sprintf(w, "Connection: k\r\n");
    }
    w += sprintf(w, "\r\n");
    CHECK(head(p, big, w - big, &r) == APR_EINVAL);
    big = apr_palloc(p, ISR_HTTP_HEAD_MAX + 64);
    w = big + sprintf(big, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(w, 'v', ISR_HTTP_HEAD_MAX);
    w += ISR_HTTP_HEAD_MAX;
    w += sprintf(w, "\r\n\r\n");
    CHECK(head(p, big, w - big, &r) == APR_EINVAL);
}

/* Review finding: freshness that is already over is no freshness. */
static void case_head_freshness(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 429 x\r\nExpires: 0\r\n\r\n", &r) == APR_SUCCESS
          && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 429 x\r\nExpires: Thu, 01 Jan 1970 00:00:00 GMT"
                  "\r\n\r\n", &r) == APR_SUCCESS && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 429 x\r\nDate: Thu, 01 Jan 2099 00:00:00 GMT\r\n"
                  "Expires: Thu, 01 Jan 2099 00:00:00 GMT\r\n\r\n", &r)
          == APR_SUCCESS && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 400 x\r\nCache-Control: max-age=0\r\n\r\n", &r)
          == APR_SUCCESS && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 400 x\r\nCache-Control: max-age=60, s-maxage=0"
                  "\r\n\r\n", &r) == APR_SUCCESS && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 400 x\r\nCache-Control: max-age=\"30\"\r\n\r\n",
               &r) == APR_SUCCESS && r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 400 x\r\nCache-Control: max-age=60\r\n"
                  "Connection: Cache-Control\r\n\r\n", &r) == APR_SUCCESS
          && !r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 400 x\r\nCache-Control: max-age=0\r\n"
                  "Expires: Thu, 01 Jan 2099 00:00:00 GMT\r\n\r\n", &r)
          == APR_SUCCESS && !r.explicit_fresh);   /* max-age wins */
}

static void case_head_content_length(apr_pool_t *p)
{
    isr_http_result_t r;

    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                  "Content-Length: 5\r\n\r\n", &r) == APR_SUCCESS);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", &r)
          == APR_SUCCESS);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                  "Content-Length: 6\r\n\r\n", &r) == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", &r)
          == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &r)
          == APR_EINVAL);
    CHECK(HEAD(p, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999"
                  "\r\n\r\n", &r) == APR_EINVAL);
}

/* Finding 3: the statuses a shared cache may store. */
static void case_storable(apr_pool_t *p)
{
    static const int yes[] = { 200, 203, 204, 300, 301, 308, 404, 405, 410,
                               414, 501, 0 };
    static const int no[] = { 201, 206, 302, 303, 307, 400, 401, 403, 409,
                              429, 500, 502, 503, 0 };
    isr_status_set_t set;
    isr_http_result_t r;
    int i;

    for (i = 0; yes[i]; i++) {
        CHECK(isr_http_storable(NULL, yes[i], 0));
    }
    for (i = 0; no[i]; i++) {
        CHECK(!isr_http_storable(NULL, no[i], 0));
    }
    CHECK(isr_http_storable(NULL, 302, 1) && isr_http_storable(NULL, 400, 1));
    CHECK(!isr_http_storable(NULL, 500, 1) && !isr_http_storable(NULL, 206, 1)
          && !isr_http_storable(NULL, 304, 1));
    memset(&set, 0, sizeof(set));
    isr_http_status_add(&set, 200);
    isr_http_status_add(&set, 302);
    CHECK(isr_http_storable(&set, 302, 0) && !isr_http_storable(&set, 404, 0));
    isr_http_status_add(&set, 5000);       /* out of range: ignored */
    CHECK(!isr_http_status_has(&set, 5000));
    CHECK(HEAD(p, "HTTP/1.1 302 Found\r\nCache-Control: public, max-age=60"
                  "\r\n\r\n", &r) == APR_SUCCESS && r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 302 Found\r\nExpires: Thu, 01 Jan 2099 00:00:00 "
                  "GMT\r\n\r\n", &r) == APR_SUCCESS && r.explicit_fresh);
    CHECK(HEAD(p, "HTTP/1.1 302 Found\r\nCache-Control: max-agent=1\r\n\r\n",
               &r) == APR_SUCCESS && !r.explicit_fresh);
    CHECK(isr_http_has_token("a, no-store", "no-store"));
    CHECK(!isr_http_has_token("no-stored", "no-store"));
    CHECK(!isr_http_has_token("x-private", "private"));
}

static apr_array_header_t *strings(apr_pool_t *p, ...)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    const char *s;
    va_list ap;

    va_start(ap, p);
    while ((s = va_arg(ap, const char *)) != NULL) {
        APR_ARRAY_PUSH(a, const char *) = s;
    }
    va_end(ap);
    return a;
}

/* Findings 1, 2, 5: the key is the context, both ways, and no two
 * different contexts give one key. */
static void case_ctx_roundtrip(apr_pool_t *p)
{
    isr_ctx_t c = { "/a.sock", "http://localhost/x?y",
                    strings(p, "X-Forwarded-Host: a.test", "Accept-Language: de",
                            NULL), "extra|part", NULL, 0 }, back;
    const char *k, *k2;
    apr_size_t kl, kl2;

    k = isr_ctx_key(p, &c, &kl);
    CHECK(isr_ctx_parse(p, k, kl, &back) == APR_SUCCESS);
    CHECK(!strcmp(back.unix_path, "/a.sock") && !strcmp(back.url, c.url));
    CHECK(back.headers->nelts == 2
          && !strcmp(APR_ARRAY_IDX(back.headers, 1, const char *),
                     "Accept-Language: de"));
    CHECK(!strcmp(back.extra, "extra|part"));
    k2 = isr_ctx_key(p, &back, &kl2);
    CHECK(kl2 == kl && !memcmp(k, k2, kl));
    /* Each part changes the key: socket, URL, a header, the extra part. */
    c.unix_path = "/b.sock";
    k2 = isr_ctx_key(p, &c, &kl2);
    CHECK(kl2 != kl || memcmp(k, k2, kl));
    c.unix_path = NULL;
    k2 = isr_ctx_key(p, &c, &kl2);
    CHECK(kl2 != kl || memcmp(k, k2, kl));
    /* A header moved into the extra part is another key. */
    c.headers = strings(p, "X-Forwarded-Host: a.test", NULL);
    c.extra = "Accept-Language: de";
    k2 = isr_ctx_key(p, &c, &kl2);
    CHECK(kl2 != kl || memcmp(k, k2, kl));
    CHECK(isr_ctx_parse(p, "ISR1", 4, &back) == APR_EINVAL);
    CHECK(isr_ctx_parse(p, "ISR2\0\0http://h/\0\0", 17, &back) == APR_EINVAL);
    CHECK(isr_ctx_parse(p, "ISR1\0\0\0\0", 8, &back) == APR_EINVAL);  /* no URL */
    CHECK(isr_ctx_parse(p, "ISR1\0\0http://h/\0nocolon\0\0", 25, &back)
          == APR_EINVAL);
    CHECK(isr_ctx_parse(p, "ISR1\0\0http://h/\0\0x\0y", 21, &back)
          == APR_EINVAL);                  /* a NUL in the extra part */
    CHECK(isr_ctx_parse(p, "ISR1\0\0http://h/\0\0", 17, &back) == APR_SUCCESS
          && !back.unix_path && !back.extra && back.headers->nelts == 0
          && !back.variant);
    /* A variant key is never its URL's key, and parses back. */
    c.headers = strings(p, "X-Forwarded-Host: a.test", NULL);
    c.extra = NULL;
    k = isr_ctx_key(p, &c, &kl);
    c.variant = "1f";
    k2 = isr_ctx_key(p, &c, &kl2);
    CHECK(kl2 == kl + 3 && !memcmp(k2, "ISR1V1f", 8));
    CHECK(isr_ctx_parse(p, k2, kl2, &back) == APR_SUCCESS
          && back.variant && !strcmp(back.variant, "1f"));
    CHECK(isr_ctx_parse(p, "ISR1V\0\0http://h/\0\0", 18, &back) == APR_EINVAL);
    /* Strict mode's keys are its own. */
    c.variant = NULL;
    c.strict = 1;
    k2 = isr_ctx_key(p, &c, &kl2);
    CHECK(kl2 == kl + 1 && !memcmp(k2, "ISR1S", 6));
    CHECK(isr_ctx_parse(p, k2, kl2, &back) == APR_SUCCESS && back.strict
          && !back.variant);
    CHECK(isr_ctx_parse(p, "ISR1SS\0\0http://h/\0\0", 19, &back)
          == APR_EINVAL);
    CHECK(isr_ctx_parse(p, "ISR1X\0\0http://h/\0\0", 18, &back) == APR_EINVAL);
}

/* Finding 6: URLs sent to the backend, and the authority check. */
static void case_ctx_urls(apr_pool_t *p)
{
    const char *a;
    apr_size_t n;

    CHECK(!strcmp(isr_ctx_url_clean(p, "http://h/a b#c\"<>\\^`{|}\x01\xc3"),
                  "http://h/a%20b%23c%22%3C%3E%5C%5E%60%7B%7C%7D%01%C3"));
    CHECK(!strcmp(isr_ctx_url_clean(p, "http://h/a?b=c&d=%41"),
                  "http://h/a?b=c&d=%41"));
    CHECK(!strcmp(isr_ctx_urlencode(p, "/a&b=c#d e/~_.-"),
                  "/a%26b%3Dc%23d%20e/~_.-"));
    a = isr_ctx_authority("http://user:pw@h:81/x", NULL, &n);
    CHECK(a && n == 12 && !strncmp(a, "user:pw@h:81", n));
    a = isr_ctx_authority("HTTPS://h?x", NULL, &n);
    CHECK(a && n == 1);
    CHECK(!isr_ctx_authority("ftp://h/", NULL, &n));
    CHECK(!isr_ctx_authority("http:/h/", NULL, &n));
    a = isr_ctx_authority("http://h:1%{X}", "http://h:1%{X}" + 10, &n);
    CHECK(a && n == 3);
}

static void case_parse(apr_pool_t *p)
{
    apr_interval_time_t t;
    apr_off_t n;
    long l;
    (void)p;

    CHECK(isr_parse_duration("90", &t) == APR_SUCCESS
          && t == apr_time_from_sec(90));
    CHECK(isr_parse_duration("1500ms", &t) == APR_SUCCESS && t == 1500000);
    CHECK(isr_parse_duration("2h", &t) == APR_SUCCESS);
    CHECK(isr_parse_duration("1x", &t) == APR_EINVAL);
    CHECK(isr_parse_duration("-1", &t) == APR_EINVAL);
    CHECK(isr_parse_duration("99999999999h", &t) == APR_ERANGE);
    CHECK(isr_parse_size("64K", &n) == APR_SUCCESS && n == 65536);
    CHECK(isr_parse_size("1MB", &n) == APR_SUCCESS && n == 1048576);
    CHECK(isr_parse_size("1T", &n) == APR_EINVAL);
    CHECK(isr_parse_size("65G", &n) == APR_ERANGE);
    CHECK(isr_parse_long("12", 1, 20, &l) && l == 12);
    CHECK(!isr_parse_long("12x", 1, 20, &l) && !isr_parse_long("21", 1, 20, &l));
}

static void case_policy_read(apr_pool_t *p)
{
    isr_policy_t pol;

    policy(p, "Cache-Control: max-age=5, s-maxage=\"7\", no-cache\n", &pol);
    CHECK(pol.lifetime == 7 && pol.smaxage && pol.no_cache && !pol.targeted);
    policy(p, "Cache-Control: max-age=-1\n", &pol);
    CHECK(pol.lifetime == 0);                    /* invalid: stale */
    policy(p, "Cache-Control: max-age=99999999999999999999\n", &pol);
    CHECK(pol.lifetime == ISR_POLICY_DELTA_MAX);
    policy(p, "Cache-Control: max-age=10\nCache-Control: max-age=1\n", &pol);
    CHECK(pol.lifetime == 10);                   /* the first counts */
    policy(p, "Cache-Control: max-age=10, stale-while-revalidate=3, "
              "stale-if-error=4, must-revalidate\n", &pol);
    CHECK(pol.swr == 3 && pol.sie == 4 && pol.must_revalidate);
    policy(p, "Cache-Control: no-store\nCDN-Cache-Control: max-age=60\n",
           &pol);
    CHECK(pol.targeted && pol.lifetime == 60 && !pol.no_store);
    policy(p, "CDN-Cache-Control: max-age=60\n"
              "ISR-Cache-Control: private\n", &pol);
    CHECK(pol.targeted && pol.private_ && pol.lifetime < 0);
    /* A targeted field that does not parse is ignored. */
    policy(p, "Cache-Control: max-age=30\nCDN-Cache-Control: ,,=\n", &pol);
    CHECK(!pol.targeted && pol.lifetime == 30);
    policy(p, "Expires: 0\n", &pol);
    CHECK(pol.lifetime == 0 && !pol.expires);
    policy(p, "Expires: Thu, 01 Jan 2037 00:00:00 GMT\n"
              "Cache-Control: max-age=3\n", &pol);
    CHECK(pol.lifetime == 3);                    /* max-age beats Expires */
    policy(p, "Age: 12\n", &pol);
    CHECK(pol.age == 12);
    policy(p, "Age: 1.5\n", &pol);
    CHECK(pol.age == 0);
    policy(p, "ETag: \"a\"\nLast-Modified: Tue, 01 Dec 2026 00:00:00 GMT\n"
              "Set-Cookie: a=b\n", &pol);
    CHECK(pol.etag && !strcmp(pol.etag, "\"a\"") && pol.last_modified
          && pol.set_cookie);
}

static void case_policy_times(apr_pool_t *p)
{
    apr_time_t now = apr_time_from_sec(1764633600), s = APR_USEC_PER_SEC;
    isr_policy_conf_t on = { ISR_CC_ON, 60 * s, 30 * s };
    isr_policy_conf_t strict = { ISR_CC_STRICT, 60 * s, 30 * s };
    isr_policy_conf_t off = { ISR_CC_OFF, 60 * s, 30 * s };
    isr_policy_t pol;
    isr_times_t t;

    policy(p, "Cache-Control: max-age=5\n", &pol);
    isr_policy_times(&pol, &on, now - s, now, &t);
    /* one second of delay counts as age (RFC 9111 4.2.3) */
    CHECK(t.born == now - s && t.fresh_until == now + 4 * s);
    CHECK(t.swr_until == t.fresh_until + 30 * s
          && t.keep_until == t.swr_until + ISR_POLICY_KEEP);
    isr_policy_times(&pol, &off, now - s, now, &t);
    CHECK(t.fresh_until == now + 60 * s && t.born == now);
    isr_policy_times(&pol, &strict, now, now, &t);
    CHECK(t.swr_until == t.fresh_until && t.sie_until == t.fresh_until);
    policy(p, "Cache-Control: s-maxage=5\n", &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.swr_until == t.fresh_until);         /* proxy-revalidate */
    policy(p, "Cache-Control: max-age=100\nAge: 98\n", &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.fresh_until == now + 2 * s && t.born == now - 98 * s);
    policy(p, "Cache-Control: no-cache\nETag: \"x\"\n", &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.fresh_until == now && t.swr_until == now
          && t.keep_until == now + ISR_POLICY_KEEP);
    policy(p, "Date: Tue, 01 Dec 2026 00:00:00 GMT\n"
              "Last-Modified: Sat, 21 Nov 2026 00:00:00 GMT\n", &pol);
    isr_policy_times(&pol, &strict, pol.date, pol.date, &t);
    CHECK(t.fresh_until == pol.date + 86400 * s); /* 10% of 10 days */
    policy(p, "Date: Tue, 01 Dec 2026 00:00:00 GMT\n"
              "Expires: Tue, 01 Dec 2026 00:00:10 GMT\n", &pol);
    isr_policy_times(&pol, &on, pol.date, pol.date, &t);
    CHECK(t.fresh_until == pol.date + 10 * s);
}

static void case_policy_update(apr_pool_t *p)
{
    const char *a, *b, *out;
    apr_size_t al = blob(p, "ETag: \"1\"\nX-A: 1\nX-A: 2\nX-B: keep\n", &a);
    apr_size_t bl = blob(p, "X-A: 3\nContent-Length: 9\nETag: \"1\"\n", &b);
    apr_size_t ol;
    const char *want;
    apr_size_t wl = blob(p, "X-B: keep\nX-A: 3\nETag: \"1\"\n", &want);

    isr_policy_update(p, a, al, b, bl, &out, &ol);
    CHECK(ol == wl && !memcmp(out, want, wl));
}

static void case_vary(apr_pool_t *p)
{
    const char *b, *names, *gen;
    apr_size_t n;
    apr_table_t *in = apr_table_make(p, 4);
    isr_ctx_t base = { NULL, "http://h/x", NULL, NULL, NULL, 1 }, v;

    n = blob(p, "Vary: Accept-Language, accept-encoding\nVary: X-A ,ACCEPT-LANGUAGE\n",
             &b);
    CHECK(isr_vary_names(p, b, n, &names) == ISR_VARY_SOME
          && !strcmp(names, "accept-encoding,accept-language,x-a"));
    n = blob(p, "Vary: a, *\n", &b);
    CHECK(isr_vary_names(p, b, n, &names) == ISR_VARY_ANY);
    n = blob(p, "Vary: a b\n", &b);
    CHECK(isr_vary_names(p, b, n, &names) == ISR_VARY_BAD);
    n = blob(p, "Content-Type: text/plain\n", &b);
    CHECK(isr_vary_names(p, b, n, &names) == ISR_VARY_NONE && !names);
    CHECK(!strcmp(isr_vary_value(p, "Accept-Encoding", "gzip, deflate, br"),
                  "br,gzip"));
    CHECK(!strcmp(isr_vary_value(p, "accept-encoding", "gzip;q=1.0, br;q=0"),
                  "gzip"));
    CHECK(!strcmp(isr_vary_value(p, "Accept-Encoding", "*"), "br,gzip"));
    CHECK(!strcmp(isr_vary_value(p, "Accept-Encoding", "br, *;q=0"), "br"));
    CHECK(!strcmp(isr_vary_value(p, "Accept-Encoding", "deflate"), "identity"));
    CHECK(!strcmp(isr_vary_value(p, "Accept-Encoding", "x-gzip;q=0.5"), "gzip"));
    CHECK(!strcmp(isr_vary_value(p, "Accept-Language", "  de ,  en-GB;q=0.8 "),
                  "de,en-GB;q=0.8"));
    CHECK(!strcmp(isr_vary_value(p, "X", "a   b"), "a b"));
    isr_vary_marker(p, "accept-language", "5f", &b, &n);
    CHECK(isr_vary_marker_read(b, n, &names, &gen)
          && !strcmp(names, "accept-language") && !strcmp(gen, "5f"));
    CHECK(!isr_vary_marker_read(b, n - 3, &names, &gen));
    apr_table_add(in, "Accept-Language", "fr");
    apr_table_add(in, "Accept-Language", "de");
    isr_vary_ctx(p, &base, "accept-language,x-absent", "5f", in, &v);
    CHECK(v.variant && !strcmp(v.variant, "5f") && v.headers->nelts == 1
          && !strcmp(APR_ARRAY_IDX(v.headers, 0, const char *),
                     "accept-language: fr,de"));
}

static const struct {
    const char *name;
    void (*fn)(apr_pool_t *p);
} cases[] = {
    { "vary", case_vary },
    { "policy_read", case_policy_read },
    { "policy_times", case_policy_times },
    { "policy_update", case_policy_update },
    { "head_plain", case_head_plain },
    { "head_fold", case_head_fold },
    { "head_connection_hides_private", case_head_connection_hides_private },
    { "head_trailers_and_1xx", case_head_trailers_and_1xx },
    { "head_invalid", case_head_invalid },
    { "head_status_lines", case_head_status_lines },
    { "head_limits", case_head_limits },
    { "head_freshness", case_head_freshness },
    { "head_content_length", case_head_content_length },
    { "storable", case_storable },
    { "ctx_roundtrip", case_ctx_roundtrip },
    { "ctx_urls", case_ctx_urls },
    { "parse", case_parse },
};

int main(int argc, const char *const *argv)
{
    int i, passed = 0, failed = 0, before;
    apr_pool_t *p;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    atexit(apr_terminate);
    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        apr_pool_create(&p, NULL);
        before = checks_failed;
        cases[i].fn(p);
        apr_pool_destroy(p);
        if (checks_failed == before) {
            printf("ok   %s\n", cases[i].name);
            passed++;
        }
        else {
            printf("FAIL %s\n", cases[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
