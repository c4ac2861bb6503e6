/* The bytes of an entry in the second tier (isr_tier.h). Another server
 * wrote them, so a reader checks every length against what it got, the key
 * against the one it asked for, and the parts against what the local store
 * accepts. Integers are big-endian: servers of a cluster need not share an
 * architecture.
 *
 *   "ISRT" | version | status | flags (1: tags overflowed)
 *   fetched | fresh_until | stale_until | swr_until | sie_until  (int64)
 *   klen | hdrlen | bodylen | altlen | pathlen | ntags            (uint32)
 *   key | headers | body | alts | path | ntags x (uint16 len | tag)
 *
 * `fetched` stays at offset 16: the claim script in isr_redis.c reads it
 * (a record newer than the caller's is returned, else the lease taken).
 *
 * APR only: fuzzed without a server (fuzz/fuzz_tier.c). */
#include <string.h>
#include <apr_strings.h>

#include "isr_tier.h"
#include "isr_compress.h"
#include "isr_purge.h"

#define REC_MAGIC   "ISRT"
#define REC_VERSION 1u
#define REC_HEAD    (4 + 4 + 4 + 4 + 5 * 8 + 6 * 4)
#define FLAG_OVERFLOW 1u

static unsigned char *be_put32(unsigned char *w, apr_uint32_t v)
{
    w[0] = (unsigned char)(v >> 24);
    w[1] = (unsigned char)(v >> 16);
    w[2] = (unsigned char)(v >> 8);
    w[3] = (unsigned char)v;
    return w + 4;
}

static unsigned char *be_put64(unsigned char *w, apr_uint64_t v)
{
    return be_put32(be_put32(w, (apr_uint32_t)(v >> 32)), (apr_uint32_t)v);
}

static apr_uint32_t be_get32(const unsigned char *r)
{
    return ((apr_uint32_t)r[0] << 24) | ((apr_uint32_t)r[1] << 16)
           | ((apr_uint32_t)r[2] << 8) | r[3];
}

static apr_uint64_t be_get64(const unsigned char *r)
{
    return ((apr_uint64_t)be_get32(r) << 32) | be_get32(r + 4);
}

static unsigned char *put_bytes(unsigned char *w, const void *b, apr_size_t l)
{
    if (l) {
        memcpy(w, b, l);
    }
    return w + l;
}

void isr_tier_rec_pack(apr_pool_t *p, const isr_tier_rec_t *rec,
                       const char **buf, apr_size_t *len)
{
    apr_size_t pl = rec->path ? strlen(rec->path) : 0, n = REC_HEAD, tl;
    int i, nt = rec->tags ? rec->tags->nelts : 0;
    unsigned char *b, *w;

    for (i = 0; i < nt; i++) {
        n += 2 + strlen(APR_ARRAY_IDX(rec->tags, i, const char *));
    }
    n += rec->klen + rec->hdrlen + rec->bodylen + rec->altlen + pl;
    b = w = apr_palloc(p, n);
    w = put_bytes(w, REC_MAGIC, 4);
    w = be_put32(w, REC_VERSION);
    w = be_put32(w, (apr_uint32_t)rec->status);
    w = be_put32(w, rec->overflow ? FLAG_OVERFLOW : 0);
    w = be_put64(w, (apr_uint64_t)rec->fetched);
    w = be_put64(w, (apr_uint64_t)rec->fresh_until);
    w = be_put64(w, (apr_uint64_t)rec->stale_until);
    w = be_put64(w, (apr_uint64_t)rec->swr_until);
    w = be_put64(w, (apr_uint64_t)rec->sie_until);
    w = be_put32(w, (apr_uint32_t)rec->klen);
    w = be_put32(w, (apr_uint32_t)rec->hdrlen);
    w = be_put32(w, (apr_uint32_t)rec->bodylen);
    w = be_put32(w, (apr_uint32_t)rec->altlen);
    w = be_put32(w, (apr_uint32_t)pl);
    w = be_put32(w, (apr_uint32_t)nt);
    w = put_bytes(w, rec->key, rec->klen);
    w = put_bytes(w, rec->headers, rec->hdrlen);
    w = put_bytes(w, rec->body, rec->bodylen);
    w = put_bytes(w, rec->alts, rec->altlen);
    w = put_bytes(w, rec->path, pl);
    for (i = 0; i < nt; i++) {
        const char *t = APR_ARRAY_IDX(rec->tags, i, const char *);

        tl = strlen(t);
        w[0] = (unsigned char)(tl >> 8);
        w[1] = (unsigned char)tl;
        w = put_bytes(w + 2, t, tl);
    }
    *buf = (const char *)b;
    *len = (apr_size_t)(w - b);
}

/* A head as the store keeps it: "name\0value\0" pairs, names not empty. */
static int head_ok(const char *h, apr_size_t len)
{
    apr_size_t i, start = 0;
    int field = 0;

    if (len && h[len - 1] != '\0') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (h[i] == '\0') {
            if (!field && i == start) {
                return 0;
            }
            field ^= 1;
            start = i + 1;
        }
    }
    return field == 0;
}

/* A tag as isr_purge_split_tags makes them: no separator, no control. */
static int tag_ok(const char *t, apr_size_t len)
{
    apr_size_t i;

    if (!len || len > ISR_PURGE_MAX_TAGLEN) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];

        if (c <= ' ' || c == ',' || c == 127) {
            return 0;
        }
    }
    return 1;
}

/* Take n bytes at *at from a record of len bytes: NULL when they are not
 * there. */
static const char *take(const char *buf, apr_size_t len, apr_size_t *at,
                        apr_size_t n)
{
    const char *r;

    if (n > len - *at) {
        return NULL;
    }
    r = buf + *at;
    *at += n;
    return r;
}

int isr_tier_rec_unpack(apr_pool_t *p, const char *buf, apr_size_t len,
                        const char *key, apr_size_t klen,
                        isr_tier_rec_t *rec)
{
    const unsigned char *u = (const unsigned char *)buf;
    apr_uint32_t flags, nt, i, pl;
    apr_size_t at = REC_HEAD, tl;
    const char *path, *t, *tb;
    isr_tier_rec_t r;

    if (!buf || len < REC_HEAD || memcmp(buf, REC_MAGIC, 4)
        || be_get32(u + 4) != REC_VERSION) {
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.status = (int)be_get32(u + 8);
    flags = be_get32(u + 12);
    r.fetched = (apr_time_t)be_get64(u + 16);
    r.fresh_until = (apr_time_t)be_get64(u + 24);
    r.stale_until = (apr_time_t)be_get64(u + 32);
    r.swr_until = (apr_time_t)be_get64(u + 40);
    r.sie_until = (apr_time_t)be_get64(u + 48);
    r.klen = be_get32(u + 56);
    r.hdrlen = be_get32(u + 60);
    r.bodylen = be_get32(u + 64);
    r.altlen = be_get32(u + 68);
    pl = be_get32(u + 72);
    nt = be_get32(u + 76);
    if (r.status < 100 || r.status > 999 || (flags & ~FLAG_OVERFLOW)
        || r.fetched < 0 || r.fresh_until < 0 || r.stale_until < r.fresh_until
        || r.swr_until < 0 || r.sie_until < 0 || nt > ISR_PURGE_MAX_TAGS
        || r.klen != klen) {
        return 0;
    }
    r.overflow = (flags & FLAG_OVERFLOW) != 0;
    if (!(r.key = take(buf, len, &at, r.klen)) || memcmp(r.key, key, klen)
        || !(r.headers = take(buf, len, &at, r.hdrlen))
        || !(r.body = take(buf, len, &at, r.bodylen))
        || !(r.alts = take(buf, len, &at, r.altlen))
        || !(path = take(buf, len, &at, pl))) {
        return 0;
    }
    if (!head_ok(r.headers, r.hdrlen)
        || (r.altlen && !isr_compress_alts_valid(r.alts, r.altlen))) {
        return 0;
    }
    if (!r.altlen) {
        r.alts = NULL;
    }
    if (pl) {
        if (path[0] != '/' || memchr(path, '\0', pl)) {
            return 0;
        }
        r.path = apr_pstrmemdup(p, path, pl);
    }
    r.tags = apr_array_make(p, nt ? (int)nt : 1, sizeof(const char *));
    for (i = 0; i < nt; i++) {
        if (!(tb = take(buf, len, &at, 2))) {
            return 0;
        }
        tl = ((apr_size_t)(unsigned char)tb[0] << 8) | (unsigned char)tb[1];
        if (!(t = take(buf, len, &at, tl)) || !tag_ok(t, tl)) {
            return 0;
        }
        APR_ARRAY_PUSH(r.tags, const char *) = apr_pstrmemdup(p, t, tl);
    }
    if (at != len) {
        return 0;
    }
    *rec = r;
    return 1;
}
