/* Purge and revalidate without scans (include/isr_purge.h): the purge
 * table's writers (zone mutex held) and its lock-free readers, and the tag
 * block stored with every record.
 *
 * Write order, so that a reader that does not lock is never told "not
 * invalidated" about an entry that is: an operation writes the table first
 * and the zone's `seq` last (release); a way handed to another hash raises
 * the bucket's floors before its values change, and its values change
 * (release) before its hash. A reader loads the hash, then the values
 * (acquire), then the floors: whatever mix of old and new it sees is the
 * truth or more invalidation than the truth, never less. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include "isr_purge.h"
#include "isr_key.h"
#include "isr_store_int.h"

/* A block starts with this (then the hashes, the path, the tags). */
typedef struct {
    apr_uint32_t nhash;      /* hashes that follow (u64 each) */
    apr_uint32_t nimpl;      /* the first ones: URL key, path prefixes */
    apr_uint32_t pathlen;    /* the path, NUL-terminated, after them */
    apr_uint32_t flags;      /* BLOCK_OVERFLOW */
} block_head_t;

#define BLOCK_OVERFLOW 1u    /* the last hash is isr_purge_overflow_hash */
/* Implicit hashes: two keys (URL, variant), the path's prefixes. */
#define IMPL_MAX (2 + ISR_PURGE_MAX_DEPTH)
#define BLOCK_MAX_HASHES (IMPL_MAX + ISR_PURGE_MAX_TAGS + 1)

/* One SipHash key per namespace: the zone's, with its first half changed. */
#define NS_TAG      0x7461672d6e730001ull
#define NS_PREFIX   0x7072652d6e730002ull
#define NS_KEY      0x6b65792d6e730003ull
#define NS_OVERFLOW 0x6f76662d6e730004ull
#define NS_URL      0x75726c2d6e730005ull

static apr_uint64_t ns_hash(const isr_zone_t *zone, apr_uint64_t ns,
                            const void *data, apr_size_t len)
{
    apr_uint64_t k[2];

    k[0] = zone->hdr->seed[0] ^ ns;
    k[1] = zone->hdr->seed[1];
    return isr_key_hash(k, data, len);
}

apr_uint64_t isr_purge_tag_hash(const isr_zone_t *zone, const char *tag,
                                apr_size_t len)
{
    return ns_hash(zone, NS_TAG, tag, len);
}

apr_uint64_t isr_purge_prefix_hash(const isr_zone_t *zone, const char *path,
                                   apr_size_t len)
{
    return ns_hash(zone, NS_PREFIX, path, len);
}

apr_uint64_t isr_purge_key_hash(const isr_zone_t *zone, apr_uint64_t hash)
{
    return ns_hash(zone, NS_KEY, &hash, sizeof(hash));
}

apr_uint64_t isr_purge_url_hash(const isr_zone_t *zone, const char *unix_path,
                                const char *url)
{
    apr_size_t ul = unix_path ? strlen(unix_path) : 0, l = strlen(url);
    char buf[512];
    char *b = ul + l + 1 <= sizeof(buf) ? buf : malloc(ul + l + 1);
    apr_uint64_t h;

    if (!b) {
        return ns_hash(zone, NS_URL, url, l);   /* no memory: URL alone */
    }
    if (ul) {
        memcpy(b, unix_path, ul);
    }
    b[ul] = '\0';                 /* the socket, NUL, the URL */
    memcpy(b + ul + 1, url, l);
    h = ns_hash(zone, NS_URL, b, ul + 1 + l);
    if (b != buf) {
        free(b);
    }
    return h;
}

apr_uint64_t isr_purge_overflow_hash(const isr_zone_t *zone)
{
    return ns_hash(zone, NS_OVERFLOW, "", 0);
}

apr_uint64_t isr_purge_seq(const isr_zone_t *zone)
{
    return LOAD_ACQ(&zone->purge->seq);
}

/* Time first: a mark taken after `freed_at` (isr_shm.h) read a sequence
 * at least that of every operation forgotten so far. */
void isr_purge_mark(const isr_zone_t *zone, isr_purge_mark_t *m)
{
    m->at = apr_time_now();
    m->seq = LOAD_ACQ(&zone->purge->seq);
}

/* ---- readers ------------------------------------------------------------ */

static isr_purge_t bucket_check(const isr_zone_t *zone, apr_uint64_t h,
                                apr_uint64_t born)
{
    isr_purge_bucket_t *b = &zone->pbuckets[h & (zone->npurge - 1)];
    isr_purge_t res = ISR_PURGE_NONE;
    int i;

    for (i = 0; i < ISR_PURGE_WAYS; i++) {
        if (LOAD_ACQ(&b->way[i].hash) == h) {
            if (LOAD_ACQ(&b->way[i].hard) > born) {
                return ISR_PURGE_HARD;
            }
            if (LOAD_ACQ(&b->way[i].soft) > born) {
                res = ISR_PURGE_SOFT;
            }
        }
    }
    if (LOAD_ACQ(&b->floor_hard) > born) {
        return ISR_PURGE_HARD;
    }
    if (LOAD_ACQ(&b->floor_soft) > born) {
        res = ISR_PURGE_SOFT;
    }
    return res;
}

isr_purge_t isr_purge_check(const isr_zone_t *zone, apr_uint64_t born,
                            const unsigned char *blk, apr_size_t len)
{
    const isr_purge_head_t *ph = zone->purge;
    isr_purge_t res, r;
    block_head_t bh;
    apr_uint64_t h;
    apr_uint32_t i;

    /* The common case: nothing happened since the entry was fetched. */
    if (born >= LOAD_ACQ(&ph->seq)) {
        return ISR_PURGE_NONE;
    }
    if (LOAD_ACQ(&ph->all_hard) > born) {
        return ISR_PURGE_HARD;
    }
    res = LOAD_ACQ(&ph->all_soft) > born ? ISR_PURGE_SOFT : ISR_PURGE_NONE;
    if (!blk || !len) {
        return res;
    }
    if (len < sizeof(bh)) {
        return ISR_PURGE_HARD;   /* never written so: not to be trusted */
    }
    memcpy(&bh, blk, sizeof(bh));
    if (bh.nhash > BLOCK_MAX_HASHES
        || sizeof(bh) + (apr_uint64_t)bh.nhash * sizeof(h) > len) {
        return ISR_PURGE_HARD;
    }
    for (i = 0; i < bh.nhash; i++) {
        memcpy(&h, blk + sizeof(bh) + (apr_size_t)i * sizeof(h), sizeof(h));
        r = bucket_check(zone, h, born);
        if (r == ISR_PURGE_HARD) {
            return r;
        }
        if (r == ISR_PURGE_SOFT) {
            res = r;
        }
    }
    return res;
}

/* ---- writers (zone mutex held) ------------------------------------------ */

static apr_uint64_t max64(apr_uint64_t a, apr_uint64_t b)
{
    return a > b ? a : b;
}

/* A way whose operation is older than any entry can live (max_span, plus
 * a second for the rounding of `when`) names no live entry. */
static int way_dead(const isr_purge_head_t *ph, const isr_purge_bucket_t *b,
                    int i, apr_time_t now)
{
    apr_int64_t span = LOAD(&ph->max_span);

    return LOAD(&b->way[i].hash) == 0
           || apr_time_from_sec((apr_time_t)LOAD(&b->when[i]) + 3) + span
              < now;
}

static void bucket_put(isr_zone_t *zone, apr_uint64_t h, apr_uint64_t seq,
                       int hard, apr_time_t now)
{
    isr_purge_head_t *ph = zone->purge;
    isr_purge_bucket_t *b = &zone->pbuckets[h & (zone->npurge - 1)];
    apr_uint32_t when = (apr_uint32_t)apr_time_sec(now);
    int i, w = -1;

    for (i = 0; i < ISR_PURGE_WAYS; i++) {
        if (LOAD(&b->way[i].hash) == h) {
            /* Values only grow: any order is safe. */
            STORE(&b->when[i], when);
            STORE_REL(&b->way[i].soft, seq);
            if (hard) {
                STORE_REL(&b->way[i].hard, seq);
            }
            return;
        }
    }
    for (i = 0; i < ISR_PURGE_WAYS && w < 0; i++) {
        if (way_dead(ph, b, i, now)) {
            w = i;
        }
    }
    if (w >= 0 && LOAD(&b->way[w].hash)) {
        /* Forgotten without a floor: a fetch that began before it is not
         * stored any more (isr_store_publish). */
        apr_time_t t = apr_time_from_sec((apr_time_t)LOAD(&b->when[w]) + 2);

        if (t > LOAD(&ph->freed_at)) {
            STORE(&ph->freed_at, t);
        }
    }
    if (w < 0) {
        /* Full of live ways: the one used longest ago goes into the
         * floors. */
        w = 0;
        for (i = 1; i < ISR_PURGE_WAYS; i++) {
            if (LOAD(&b->way[i].soft) < LOAD(&b->way[w].soft)) {
                w = i;
            }
        }
        STORE(&b->floor_soft, max64(LOAD(&b->floor_soft),
                                    LOAD(&b->way[w].soft)));
        STORE(&b->floor_hard, max64(LOAD(&b->floor_hard),
                                    LOAD(&b->way[w].hard)));
        STORE(&ph->evictions, LOAD(&ph->evictions) + 1);
    }
    STORE(&b->when[w], when);
    STORE_REL(&b->way[w].soft, seq);
    STORE_REL(&b->way[w].hard, hard ? seq : 0);
    STORE_REL(&b->way[w].hash, h);
}

apr_status_t isr_purge_apply(isr_zone_t *zone, int hard,
                             const apr_uint64_t *hashes, apr_size_t n,
                             apr_uint64_t *pseq)
{
    isr_purge_head_t *ph = zone->purge;
    apr_uint64_t seq;
    apr_time_t now;
    sigset_t sigs;
    apr_size_t i;

    if (!isr_store_lock(zone, &sigs)) {
        return APR_EGENERAL;
    }
    /* Taken with the mutex held, so that the sequence below is stored
     * within microseconds of it (way_dead and freed_at leave 2 s). */
    now = apr_time_now();
    seq = LOAD(&ph->seq) + 1;
    if (n == 0) {
        STORE_REL(&ph->all_soft, seq);
        if (hard) {
            STORE_REL(&ph->all_hard, seq);
        }
    }
    for (i = 0; i < n; i++) {
        bucket_put(zone, hashes[i], seq, hard, now);
    }
    STORE_REL(&ph->seq, seq);
    isr_store_unlock(zone, &sigs);
    isr_store_count(zone, ISR_STAT_PURGE_OPS);
    *pseq = seq;
    return APR_SUCCESS;
}

/* ---- paths and tags ----------------------------------------------------- */

apr_status_t isr_purge_op(isr_zone_t *zone, int hard, char kind,
                          const apr_array_header_t *values, apr_pool_t *p,
                          apr_uint64_t *pseq)
{
    int i, nv = values ? values->nelts : 0;
    apr_uint64_t *hs = apr_palloc(p, sizeof(*hs) * (apr_size_t)(nv + 1));
    const isr_purge_val_t *v = nv ? (const isr_purge_val_t *)values->elts
                                  : NULL;
    apr_size_t n = 0;

    switch (kind) {
    case 'k':
        for (i = 0; i < nv; i++) {
            hs[n++] = isr_purge_key_hash(zone, isr_store_hash(zone, v[i].v,
                                                              v[i].len));
        }
        break;
    case 'p':
        if (nv != 1) {
            return APR_EINVAL;
        }
        if (v[0].len > 1) {
            hs[n++] = isr_purge_prefix_hash(zone, v[0].v, v[0].len);
        }
        break;
    case 't':
        for (i = 0; i < nv; i++) {
            hs[n++] = isr_purge_tag_hash(zone, v[i].v, v[i].len);
        }
        /* Entries with more tags than they could keep answer to every
         * tag. */
        hs[n++] = isr_purge_overflow_hash(zone);
        break;
    case 'u':
        if (nv != 2 || memchr(v[1].v, '\0', v[1].len)
            || memchr(v[0].v, '\0', v[0].len)) {
            return APR_EINVAL;
        }
        hs[n++] = isr_purge_url_hash(
            zone, v[0].len ? apr_pstrmemdup(p, v[0].v, v[0].len) : NULL,
            apr_pstrmemdup(p, v[1].v, v[1].len));
        break;
    case 'a':
        break;
    default:
        return APR_EINVAL;
    }
    if ((kind == 'k' || kind == 't') && !nv) {
        return APR_EINVAL;  /* never the whole zone by accident */
    }
    return isr_purge_apply(zone, hard, hs, n, pseq);
}

int isr_purge_prefixes(const char *path, apr_size_t len, apr_size_t *out)
{
    apr_size_t i;
    int n = 0;

    if (!path || !len || path[0] != '/') {
        return 0;
    }
    while (len > 1 && path[len - 1] == '/') {
        len--;
    }
    /* Not "/" itself: every entry would share that hash (a prefix purge of
     * "/" is a purge of the zone). */
    for (i = 1; i < len && n < ISR_PURGE_MAX_DEPTH; i++) {
        if (path[i] == '/') {
            out[n++] = i;
        }
    }
    if (len > 1 && n < ISR_PURGE_MAX_DEPTH) {
        out[n++] = len;
    }
    return n;
}

static int tag_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',';
}

static void tags_add(apr_array_header_t *tags, const char *list,
                     apr_size_t len, int max, int *overflow)
{
    apr_size_t i = 0, j;
    int k, dup;

    while (i < len) {
        while (i < len && tag_sep(list[i])) {
            i++;
        }
        for (j = i; j < len && !tag_sep(list[j]) && list[j]; j++) {
        }
        if (j == i) {
            break;
        }
        if (j - i > ISR_PURGE_MAX_TAGLEN) {
            *overflow = 1;
        }
        else {
            for (k = 0, dup = 0; k < tags->nelts && !dup; k++) {
                const char *t = APR_ARRAY_IDX(tags, k, const char *);
                dup = strlen(t) == j - i && !memcmp(t, list + i, j - i);
            }
            if (!dup && tags->nelts >= max) {
                *overflow = 1;
            }
            else if (!dup) {
                APR_ARRAY_PUSH(tags, const char *) =
                    apr_pstrmemdup(tags->pool, list + i, j - i);
            }
        }
        i = j;
    }
}

apr_array_header_t *isr_purge_split_tags(apr_pool_t *p, const char *list,
                                         apr_size_t len, int max,
                                         int *overflow)
{
    apr_array_header_t *tags = apr_array_make(p, 4, sizeof(const char *));

    *overflow = 0;
    tags_add(tags, list, len, max, overflow);
    return tags;
}

int isr_purge_is_tag_header(const apr_array_header_t *tag_headers,
                            const char *name)
{
    int i;

    if (!tag_headers) {
        return !strcasecmp(name, "Surrogate-Key")
               || !strcasecmp(name, "Cache-Tag");
    }
    for (i = 0; i < tag_headers->nelts; i++) {
        if (!strcasecmp(name, APR_ARRAY_IDX(tag_headers, i, const char *))) {
            return 1;
        }
    }
    return 0;
}

/* The tags in the head's tag headers. */
static apr_array_header_t *head_tags(apr_pool_t *p,
                                     const apr_array_header_t *tag_headers,
                                     const char *h, apr_size_t hl,
                                     int *overflow)
{
    apr_array_header_t *tags = apr_array_make(p, 4, sizeof(const char *));
    const char *end = h + hl, *name, *value;
    apr_size_t nl, vl;

    *overflow = 0;
    while ((!tag_headers || tag_headers->nelts) && h < end) {
        name = h;
        nl = strnlen(name, (apr_size_t)(end - name));
        if (name + nl >= end) {
            break;
        }
        value = name + nl + 1;
        vl = strnlen(value, (apr_size_t)(end - value));
        if (value + vl >= end) {
            break;
        }
        if (isr_purge_is_tag_header(tag_headers, name)) {
            tags_add(tags, value, vl, ISR_PURGE_MAX_TAGS, overflow);
        }
        h = value + vl + 1;
    }
    return tags;
}

/* Write a block of implicit hashes (with path) and tags. */
static void block_write(apr_pool_t *p, const isr_zone_t *zone,
                        const apr_uint64_t *impl, apr_uint32_t nimpl,
                        const char *path, apr_size_t pathlen,
                        const apr_array_header_t *tags, int overflow,
                        const unsigned char **blk, apr_size_t *len)
{
    block_head_t bh;
    apr_size_t size, off;
    unsigned char *b;
    apr_uint64_t h;
    int i;

    memset(&bh, 0, sizeof(bh));
    bh.nimpl = nimpl;
    bh.nhash = nimpl + (apr_uint32_t)tags->nelts + (overflow ? 1 : 0);
    bh.pathlen = (apr_uint32_t)pathlen;
    bh.flags = overflow ? BLOCK_OVERFLOW : 0;
    size = sizeof(bh) + (apr_size_t)bh.nhash * sizeof(h) + pathlen + 1;
    for (i = 0; i < tags->nelts; i++) {
        size += strlen(APR_ARRAY_IDX(tags, i, const char *)) + 1;
    }
    b = apr_palloc(p, size);
    memcpy(b, &bh, sizeof(bh));
    off = sizeof(bh);
    memcpy(b + off, impl, (apr_size_t)nimpl * sizeof(h));
    off += (apr_size_t)nimpl * sizeof(h);
    for (i = 0; i < tags->nelts; i++) {
        const char *t = APR_ARRAY_IDX(tags, i, const char *);

        h = isr_purge_tag_hash(zone, t, strlen(t));
        memcpy(b + off, &h, sizeof(h));
        off += sizeof(h);
    }
    if (overflow) {
        h = isr_purge_overflow_hash(zone);
        memcpy(b + off, &h, sizeof(h));
        off += sizeof(h);
    }
    if (pathlen) {
        memcpy(b + off, path, pathlen);
    }
    b[off + pathlen] = '\0';
    off += pathlen + 1;
    for (i = 0; i < tags->nelts; i++) {
        const char *t = APR_ARRAY_IDX(tags, i, const char *);
        apr_size_t tl = strlen(t) + 1;

        memcpy(b + off, t, tl);
        off += tl;
    }
    *blk = b;
    *len = size;
}

void isr_purge_block_from(apr_pool_t *p, const isr_zone_t *zone,
                          const char *path, apr_uint64_t url_hash,
                          apr_uint64_t key_hash,
                          const apr_array_header_t *tags, int overflow,
                          const unsigned char **blk, apr_size_t *len)
{
    apr_uint64_t impl[IMPL_MAX];
    apr_size_t ends[ISR_PURGE_MAX_DEPTH], pl = path ? strlen(path) : 0;
    apr_uint32_t n = 0;
    int np, i;

    if (url_hash) {
        impl[n++] = url_hash;
    }
    if (key_hash) {
        impl[n++] = isr_purge_key_hash(zone, key_hash);
    }
    np = isr_purge_prefixes(path, pl, ends);
    for (i = 0; i < np; i++) {
        impl[n++] = isr_purge_prefix_hash(zone, path, ends[i]);
    }
    block_write(p, zone, impl, n, np ? path : NULL, np ? pl : 0, tags,
                overflow, blk, len);
}

void isr_purge_block_make(apr_pool_t *p, const isr_zone_t *zone,
                          const char *path, apr_uint64_t url_hash,
                          apr_uint64_t key_hash,
                          const apr_array_header_t *tag_headers,
                          const char *headers, apr_size_t hdrlen,
                          const unsigned char **blk, apr_size_t *len)
{
    int overflow;
    apr_array_header_t *tags = head_tags(p, tag_headers, headers, hdrlen,
                                         &overflow);

    isr_purge_block_from(p, zone, path, url_hash, key_hash, tags, overflow,
                         blk, len);
}

/* The parts of a block, checked against len: 1 when well formed. */
static int block_parse(const unsigned char *blk, apr_size_t len,
                       block_head_t *bh, const char **path,
                       const char **tags, apr_size_t *tagslen)
{
    apr_uint64_t off;

    if (!blk || len < sizeof(*bh)) {
        return 0;
    }
    memcpy(bh, blk, sizeof(*bh));
    off = sizeof(*bh) + (apr_uint64_t)bh->nhash * sizeof(apr_uint64_t);
    if (bh->nhash > BLOCK_MAX_HASHES || bh->nimpl > bh->nhash
        || off + bh->pathlen + 1 > len || blk[off + bh->pathlen] != '\0'
        || (len > off + bh->pathlen + 1 && blk[len - 1] != '\0')) {
        return 0;
    }
    *path = (const char *)blk + off;
    *tags = *path + bh->pathlen + 1;
    *tagslen = len - (apr_size_t)(off + bh->pathlen + 1);
    return 1;
}

void isr_purge_block_renew(apr_pool_t *p, const isr_zone_t *zone,
                           const unsigned char *old, apr_size_t oldlen,
                           const apr_array_header_t *tag_headers,
                           const char *headers, apr_size_t hdrlen,
                           const unsigned char **blk, apr_size_t *len)
{
    apr_uint64_t impl[IMPL_MAX];
    apr_array_header_t *tags;
    const char *path = NULL, *ts;
    apr_size_t tl;
    block_head_t bh;
    int overflow;

    if (!block_parse(old, oldlen, &bh, &path, &ts, &tl)
        || bh.nimpl > sizeof(impl) / sizeof(impl[0])) {
        bh.nimpl = 0;
        bh.pathlen = 0;
        path = NULL;
    }
    else {
        memcpy(impl, old + sizeof(bh), (apr_size_t)bh.nimpl * sizeof(impl[0]));
    }
    tags = head_tags(p, tag_headers, headers, hdrlen, &overflow);
    block_write(p, zone, impl, bh.nimpl, path, bh.pathlen, tags, overflow,
                blk, len);
}

int isr_purge_block_read(apr_pool_t *p, const unsigned char *blk,
                         apr_size_t len, const char **path,
                         apr_array_header_t **tags, int *overflow)
{
    const char *ts, *end;
    apr_size_t tl;
    block_head_t bh;

    if (!block_parse(blk, len, &bh, path, &ts, &tl)) {
        return 0;
    }
    if (!bh.pathlen) {
        *path = NULL;
    }
    *overflow = (bh.flags & BLOCK_OVERFLOW) != 0;
    *tags = apr_array_make(p, 4, sizeof(const char *));
    for (end = ts + tl; ts < end; ts += strlen(ts) + 1) {
        APR_ARRAY_PUSH(*tags, const char *) = ts;
    }
    return 1;
}
