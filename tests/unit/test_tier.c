/* Unit tests of an entry's bytes in the second tier (src/isr_tier_rec.c):
 * what one server packs another unpacks to the same value; what does not
 * hold the key asked for, or is short, long, or malformed in any part is
 * refused. APR, zlib and libbrotli only (the alternates check). Prints
 * "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "isr_tier.h"

static int checks_failed, checks;

#define CHECK(cond) do {                                                     \
    checks++;                                                                \
    if (!(cond)) {                                                           \
        printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
        checks_failed++;                                                     \
    }                                                                        \
} while (0)

static const char KEY[] = "ISR1\0\0http://o/k\0\0";
#define KLEN (sizeof(KEY) - 1)
static const char HEAD[] = "Content-Type\0text/plain\0ETag\0\"v1\"\0";
#define HLEN (sizeof(HEAD) - 1)

static void rec_make(apr_pool_t *p, isr_tier_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->key = KEY;
    r->klen = KLEN;
    r->status = 200;
    r->headers = HEAD;
    r->hdrlen = HLEN;
    r->body = "hello";
    r->bodylen = 5;
    r->path = "/app/k";
    r->tags = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(r->tags, const char *) = "red";
    APR_ARRAY_PUSH(r->tags, const char *) = "blue";
    r->fetched = 1000;
    r->fresh_until = 2000;
    r->stale_until = 3000;
    r->swr_until = 2500;
    r->sie_until = 2600;
}

static void roundtrip(apr_pool_t *p)
{
    isr_tier_rec_t r, g;
    const char *b;
    apr_size_t l;

    rec_make(p, &r);
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    CHECK(g.status == 200 && g.bodylen == 5 && !memcmp(g.body, "hello", 5));
    CHECK(g.hdrlen == HLEN && !memcmp(g.headers, HEAD, HLEN));
    CHECK(g.path && !strcmp(g.path, "/app/k"));
    CHECK(g.tags->nelts == 2
          && !strcmp(APR_ARRAY_IDX(g.tags, 1, const char *), "blue"));
    CHECK(g.fetched == 1000 && g.fresh_until == 2000 && g.stale_until == 3000
          && g.swr_until == 2500 && g.sie_until == 2600 && !g.overflow);
    CHECK(!g.alts && g.altlen == 0);
    /* The claim script reads `fetched` at offset 16, big-endian. */
    CHECK((unsigned char)b[16 + 7] == (1000 & 0xff)
          && (unsigned char)b[16 + 6] == (1000 >> 8));
}

static void refusals(apr_pool_t *p)
{
    isr_tier_rec_t r, g;
    const char *b;
    char *m;
    apr_size_t l, i;
    int short_ok = 0;

    rec_make(p, &r);
    isr_tier_rec_pack(p, &r, &b, &l);
    /* Another key (same length, one byte off), a shorter key. */
    m = apr_pmemdup(p, KEY, KLEN);
    m[10] ^= 1;
    CHECK(!isr_tier_rec_unpack(p, b, l, m, KLEN, &g));
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN - 1, &g));
    /* Every prefix, and one byte more. */
    for (i = 0; i < l; i++) {
        short_ok |= isr_tier_rec_unpack(p, b, i, KEY, KLEN, &g);
    }
    CHECK(!short_ok);
    m = apr_palloc(p, l + 1);
    memcpy(m, b, l);
    m[l] = 'x';
    CHECK(!isr_tier_rec_unpack(p, m, l + 1, KEY, KLEN, &g));
    /* A bad magic, version, status, flag; stale before fresh. */
    m = apr_pmemdup(p, b, l);
    m[0] = 'X';
    CHECK(!isr_tier_rec_unpack(p, m, l, KEY, KLEN, &g));
    m = apr_pmemdup(p, b, l);
    m[7] = 2;
    CHECK(!isr_tier_rec_unpack(p, m, l, KEY, KLEN, &g));
    m = apr_pmemdup(p, b, l);
    m[11] = 50;         /* status 50 */
    m[10] = 0;
    CHECK(!isr_tier_rec_unpack(p, m, l, KEY, KLEN, &g));
    m = apr_pmemdup(p, b, l);
    m[15] = 2;
    CHECK(!isr_tier_rec_unpack(p, m, l, KEY, KLEN, &g));
    r.stale_until = 1500;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    /* A head that is not name\0value\0 pairs: an odd count, an empty name,
     * no final NUL. */
    rec_make(p, &r);
    r.headers = "A\0b\0C\0";
    r.hdrlen = 6;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    r.headers = "\0b\0";
    r.hdrlen = 3;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    r.headers = "A\0b";
    r.hdrlen = 3;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    /* A tag with a space or a comma, an empty one; a relative path; an
     * alternates block that is not one. */
    rec_make(p, &r);
    APR_ARRAY_PUSH(r.tags, const char *) = "a b";
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    rec_make(p, &r);
    APR_ARRAY_PUSH(r.tags, const char *) = "a,b";
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    rec_make(p, &r);
    APR_ARRAY_PUSH(r.tags, const char *) = "";
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    rec_make(p, &r);
    r.path = "app/k";
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    rec_make(p, &r);
    r.alts = "junk";
    r.altlen = 4;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(!isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    /* No path, no tags, overflowed: kept as such. */
    rec_make(p, &r);
    r.path = NULL;
    r.tags = NULL;
    r.overflow = 1;
    isr_tier_rec_pack(p, &r, &b, &l);
    CHECK(isr_tier_rec_unpack(p, b, l, KEY, KLEN, &g));
    CHECK(!g.path && g.tags && g.tags->nelts == 0 && g.overflow);
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS
        || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return 2;
    }
    roundtrip(p);
    refusals(p);
    printf("%d passed, %d failed\n", checks - checks_failed, checks_failed);
    apr_terminate();
    return checks_failed ? 1 : 0;
}
