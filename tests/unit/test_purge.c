/* Unit cases of the purge table (src/isr_purge.c) on a real zone: purges
 * and revalidations by tag, path prefix, key and all; a fetch under way
 * when an operation comes cannot undo it; a full bucket forgets nothing;
 * and the cost: an operation writes the purge table and nothing else (no
 * walk of the slots or the ring), whatever the zone holds.
 *
 *   make -C tests/unit && tests/unit/build/test_purge [case ...]
 */
#include "unit.h"
#include "cases.h"
#include "isr_purge.h"

#define ZONE (8 * MiB)

/* Store key with a tag block made as the module makes it. */
static apr_status_t put_tagged(isr_zone_t *z, const char *key,
                               const char *path, const char *tags,
                               apr_uint64_t born, apr_time_t now,
                               apr_pool_t *p)
{
    char *h = apr_pstrcat(p, "Surrogate-Key", "", NULL);
    apr_size_t hl = 0;
    char *hdrs;
    isr_value_t v = VAL(200, NULL, 0, "body", 4, now, now + 60 * SEC,
                        now + 120 * SEC);

    if (tags) {
        hl = strlen(h) + 1 + strlen(tags) + 1;
        hdrs = apr_palloc(p, hl);
        memcpy(hdrs, h, strlen(h) + 1);
        memcpy(hdrs + strlen(h) + 1, tags, strlen(tags) + 1);
        v.headers = hdrs;
        v.hdrlen = hl;
    }
    v.born = born;
    isr_purge_block_make(p, z, path, isr_purge_url_hash(z, NULL, key),
                         H(z, key), NULL, v.headers, v.hdrlen, &v.tags,
                         &v.taglen);
    return put(z, key, &v, now, p);
}

static isr_look_t look(isr_zone_t *z, const char *key, apr_pool_t *p,
                       isr_entry_t *e)
{
    return LOOK(z, key, apr_time_now(), p, e);
}

static apr_uint64_t tag(isr_zone_t *z, const char *t)
{
    return isr_purge_tag_hash(z, t, strlen(t));
}

static int c_tag_exact(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t hs[2], seq = 0;

    CHECK_RV(tzone_make(p, ZONE, 1, &t));
    CHECK_RV(put_tagged(&t.z, "k/a", "/a", "x y", isr_purge_seq(&t.z), now, p));
    CHECK_RV(put_tagged(&t.z, "k/b", "/b", "y", isr_purge_seq(&t.z), now, p));
    CHECK_RV(put_tagged(&t.z, "k/c", "/c", NULL, isr_purge_seq(&t.z), now, p));
    hs[0] = tag(&t.z, "x");
    hs[1] = isr_purge_overflow_hash(&t.z);
    CHECK_RV(isr_purge_apply(&t.z, 1, hs, 2, &seq));
    CHECK_EQ(seq, 1);
    CHECK_LOOK(look(&t.z, "k/a", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/b", p, &e), ISR_LOOK_FRESH);
    CHECK_LOOK(look(&t.z, "k/c", p, &e), ISR_LOOK_FRESH);
    hs[0] = tag(&t.z, "y");
    CHECK_RV(isr_purge_apply(&t.z, 0, hs, 2, &seq));
    CHECK_EQ(seq, 2);
    CHECK_LOOK(look(&t.z, "k/b", p, &e), ISR_LOOK_STALE);
    CHECK(e.revalidated);
    CHECK_LOOK(look(&t.z, "k/c", p, &e), ISR_LOOK_FRESH);
    CHECK(!e.revalidated);
    CHECK_ZONE(&t.z);
    return 0;
}

/* A fetch that began before an operation lands with an older `born`. */
static int c_in_flight(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t h, seq, before;

    CHECK_RV(tzone_make(p, ZONE, 2, &t));
    CHECK_RV(put_tagged(&t.z, "k/1", "/p/1", NULL, isr_purge_seq(&t.z), now, p));
    before = isr_purge_seq(&t.z);            /* the refresh begins */
    h = isr_purge_key_hash(&t.z, H(&t.z, "k/1"));
    CHECK_RV(isr_purge_apply(&t.z, 1, &h, 1, &seq));
    CHECK_RV(put_tagged(&t.z, "k/1", "/p/1", NULL, before, now, p));
    CHECK_LOOK(look(&t.z, "k/1", p, &e), ISR_LOOK_ABSENT);
    /* One begun after it is the new answer. */
    CHECK_RV(put_tagged(&t.z, "k/1", "/p/1", NULL, isr_purge_seq(&t.z), now, p));
    CHECK_LOOK(look(&t.z, "k/1", p, &e), ISR_LOOK_FRESH);
    /* Soft: the same for a revalidation. */
    before = isr_purge_seq(&t.z);
    CHECK_RV(isr_purge_apply(&t.z, 0, &h, 1, &seq));
    CHECK_RV(put_tagged(&t.z, "k/1", "/p/1", NULL, before, now, p));
    CHECK_LOOK(look(&t.z, "k/1", p, &e), ISR_LOOK_STALE);
    CHECK_RV(put_tagged(&t.z, "k/1", "/p/1", NULL, isr_purge_seq(&t.z), now, p));
    CHECK_LOOK(look(&t.z, "k/1", p, &e), ISR_LOOK_FRESH);
    return 0;
}

static int c_prefixes(apr_pool_t *p)
{
    static const char *const want[] = { "/a", "/a/b" };
    apr_size_t ends[ISR_PURGE_MAX_DEPTH];
    char deep[256];
    int n, i;
    (void)p;

    n = isr_purge_prefixes("/a/b/", 5, ends);
    CHECK_EQ(n, 2);
    for (i = 0; i < n; i++) {
        CHECK(ends[i] == strlen(want[i]) && !strncmp("/a/b/", want[i], ends[i]));
    }
    /* "/" is no entry's hash (a purge of "/" is a purge of the zone). */
    CHECK_EQ(isr_purge_prefixes("/", 1, ends), 0);
    CHECK_EQ(isr_purge_prefixes("//", 2, ends), 0);
    CHECK_EQ(isr_purge_prefixes("rel", 3, ends), 0);
    for (i = 0, deep[0] = '\0'; i < 20; i++) {
        strcat(deep, "/d");
    }
    n = isr_purge_prefixes(deep, strlen(deep), ends);
    CHECK_EQ(n, ISR_PURGE_MAX_DEPTH);
    CHECK_EQ(ends[n - 1], 2 * ISR_PURGE_MAX_DEPTH);
    return 0;
}

static int c_prefix_and_all(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t h, seq;

    CHECK_RV(tzone_make(p, ZONE, 3, &t));
    CHECK_RV(put_tagged(&t.z, "k/ax", "/a/x", NULL, 0, now, p));
    CHECK_RV(put_tagged(&t.z, "k/ab", "/ab", NULL, 0, now, p));
    CHECK_RV(put_tagged(&t.z, "k/a", "/a/", NULL, 0, now, p));
    h = isr_purge_prefix_hash(&t.z, "/a", 2);
    CHECK_RV(isr_purge_apply(&t.z, 1, &h, 1, &seq));
    CHECK_LOOK(look(&t.z, "k/ax", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/a", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/ab", p, &e), ISR_LOOK_FRESH);
    CHECK_RV(isr_purge_apply(&t.z, 0, NULL, 0, &seq));
    CHECK_LOOK(look(&t.z, "k/ab", p, &e), ISR_LOOK_STALE);
    CHECK_RV(isr_purge_apply(&t.z, 1, NULL, 0, &seq));
    CHECK_LOOK(look(&t.z, "k/ab", p, &e), ISR_LOOK_ABSENT);
    CHECK_ZONE(&t.z);
    return 0;
}

/* More hashes in one bucket than it has ways: an entry whose tag's way was
 * given up is still purged (the floor), one born after the floor is not. */
static int c_full_bucket(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t hs[ISR_PURGE_WAYS + 2], seq, mask, h;
    const char *names[ISR_PURGE_WAYS + 2];
    int n = 0, i;

    CHECK_RV(tzone_make(p, ZONE, 4, &t));
    mask = t.z.npurge - 1;
    /* Tags that all fall into one bucket. */
    for (i = 0; n < ISR_PURGE_WAYS + 2 && i < 10000000; i++) {
        const char *nm = apr_psprintf(p, "t%d", i);

        h = tag(&t.z, nm);
        if (n == 0 || (h & mask) == (hs[0] & mask)) {
            names[n] = nm;
            hs[n++] = h;
        }
    }
    CHECK_EQ(n, ISR_PURGE_WAYS + 2);
    CHECK_RV(put_tagged(&t.z, "k/old", "/o", names[0], 0, now, p));
    for (i = 0; i < n - 1; i++) {             /* names[0]'s way goes */
        CHECK_RV(isr_purge_apply(&t.z, 1, &hs[i], 1, &seq));
    }
    CHECK_LOOK(look(&t.z, "k/old", p, &e), ISR_LOOK_ABSENT);
    /* Born after every one of them, tagged with the last (not purged). */
    CHECK_RV(put_tagged(&t.z, "k/new", "/n", names[n - 1],
                        isr_purge_seq(&t.z), now, p));
    CHECK_RV(put_tagged(&t.z, "k/new0", "/n0", names[0],
                        isr_purge_seq(&t.z), now, p));
    CHECK_LOOK(look(&t.z, "k/new", p, &e), ISR_LOOK_FRESH);
    CHECK_LOOK(look(&t.z, "k/new0", p, &e), ISR_LOOK_FRESH);
    CHECK_RV(isr_purge_apply(&t.z, 1, &hs[0], 1, &seq));
    CHECK_LOOK(look(&t.z, "k/new0", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/new", p, &e), ISR_LOOK_FRESH);
    return 0;
}

/* The cost: with the zone full of entries, every kind of operation writes
 * the purge table and nothing else: the index, the slots and the ring are
 * byte for byte what they were (no walk, no lock held over the zone). The
 * entries are dropped one at a time by the lookups that meet them. */
static int c_no_scan(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t h, seq, before_off, purge_end;
    unsigned char *snap;
    apr_size_t len;
    int i, kinds, stored = 0;

    CHECK_RV(tzone_make(p, 64 * MiB, 5, &t));
    for (i = 0; i < 20000; i++) {
        char *k = apr_psprintf(p, "k/%d", i);
        char *path = apr_psprintf(p, "/s/%d/%d", i % 10, i);
        char *tg = apr_psprintf(p, "g%d all", i % 100);

        stored += put_tagged(&t.z, k, path, tg, 0, now, p) == APR_SUCCESS;
    }
    CHECK_EQ(stored, 20000);
    /* Everything outside the purge table, before and after each kind. */
    before_off = t.z.hdr->purge_off;
    purge_end = before_off + sizeof(isr_purge_head_t)
                + (apr_uint64_t)t.z.npurge * sizeof(isr_purge_bucket_t);
    len = t.size - purge_end;
    snap = malloc(len);
    CHECK(snap);
    memcpy(snap, (char *)t.base + purge_end, len);
    for (kinds = 0; kinds < 5; kinds++) {
        switch (kinds) {
        case 0: h = tag(&t.z, "all"); break;
        case 1: h = isr_purge_prefix_hash(&t.z, "/s", 2); break;
        case 2: h = isr_purge_key_hash(&t.z, H(&t.z, "k/7")); break;
        default: h = 0; break;
        }
        CHECK_RV(isr_purge_apply(&t.z, kinds != 3, &h, kinds < 3 ? 1 : 0,
                                 &seq));
        if (memcmp(snap, (char *)t.base + purge_end, len)) {
            free(snap);
            FAILF("operation %d wrote outside the purge table", kinds);
        }
    }
    free(snap);
    /* The stats stripes sit before the purge table: only its count moved. */
    CHECK_LOOK(look(&t.z, "k/1", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/19999", p, &e), ISR_LOOK_ABSENT);
    CHECK_ZONE(&t.z);
    return 0;
}

/* A block that is not one of ours is never trusted once an operation
 * happened: the entry counts as purged. */
static int c_bad_block(apr_pool_t *p)
{
    tzone_t t;
    apr_uint64_t seq, h = 12345;
    unsigned char junk[24];
    (void)p;

    CHECK_RV(tzone_make(p, ZONE, 6, &t));
    memset(junk, 0xff, sizeof(junk));
    CHECK_EQ(isr_purge_check(&t.z, 0, junk, sizeof(junk)), ISR_PURGE_NONE);
    CHECK_RV(isr_purge_apply(&t.z, 0, &h, 1, &seq));
    CHECK_EQ(isr_purge_check(&t.z, 0, junk, sizeof(junk)), ISR_PURGE_HARD);
    CHECK_EQ(isr_purge_check(&t.z, 0, junk, 3), ISR_PURGE_HARD);
    CHECK_EQ(isr_purge_check(&t.z, 0, NULL, 0), ISR_PURGE_NONE);
    CHECK_EQ(isr_purge_check(&t.z, seq, junk, sizeof(junk)), ISR_PURGE_NONE);
    return 0;
}

/* Tags: split, deduplicated, overflow past the limit; the block reads
 * back. */
static int c_block(apr_pool_t *p)
{
    tzone_t t;
    const unsigned char *b;
    apr_size_t bl;
    const char *path;
    apr_array_header_t *tags;
    int overflow;
    static const char h[] = "Cache-Tag\0a, b,,a\tc\0X\0y\0";
    char *many = apr_pstrdup(p, "Surrogate-Key");
    char *hh;
    apr_size_t hl;
    int i;

    CHECK_RV(tzone_make(p, ZONE, 7, &t));
    isr_purge_block_make(p, &t.z, "/x/y", 99, 0, NULL, h, sizeof(h) - 1, &b, &bl);
    CHECK(isr_purge_block_read(p, b, bl, &path, &tags, &overflow));
    CHECK(path && !strcmp(path, "/x/y"));
    CHECK_EQ(tags->nelts, 3);
    CHECK(!overflow);
    CHECK(!strcmp(APR_ARRAY_IDX(tags, 2, const char *), "c"));
    /* 70 tags: 64 kept and the overflow mark. */
    {
        char *list = "";
        for (i = 0; i < 70; i++) {
            list = apr_psprintf(p, "%s t%d", list, i);
        }
        hl = strlen(many) + 1 + strlen(list) + 1;
        hh = apr_palloc(p, hl);
        memcpy(hh, many, strlen(many) + 1);
        memcpy(hh + strlen(many) + 1, list, strlen(list) + 1);
    }
    isr_purge_block_make(p, &t.z, NULL, 99, 0, NULL, hh, hl, &b, &bl);
    CHECK(isr_purge_block_read(p, b, bl, &path, &tags, &overflow));
    CHECK(!path);
    CHECK_EQ(tags->nelts, ISR_PURGE_MAX_TAGS);
    CHECK(overflow);
    /* Renewed: the old block's path and key, the new head's tags. */
    isr_purge_block_make(p, &t.z, "/x/y", 99, 0, NULL, h, sizeof(h) - 1, &b, &bl);
    {
        const unsigned char *b2;
        apr_size_t bl2;

        isr_purge_block_renew(p, &t.z, b, bl, NULL, "Surrogate-Key\0z\0", 16,
                              &b2, &bl2);
        CHECK(isr_purge_block_read(p, b2, bl2, &path, &tags, &overflow));
        CHECK(path && !strcmp(path, "/x/y"));
        CHECK_EQ(tags->nelts, 1);
        CHECK(!strcmp(APR_ARRAY_IDX(tags, 0, const char *), "z"));
    }
    return 0;
}

/* A way older than any entry can live is reused without raising the
 * floors; a fetch that began before it is then not stored. */
static int c_ways_age(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_uint64_t hs[ISR_PURGE_WAYS + 1], seq, mask, h;
    isr_purge_bucket_t *b;
    isr_value_t v;
    int n = 0, i;

    CHECK_RV(tzone_make(p, ZONE, 8, &t));
    /* Entries live 10 s past the start of their fetch. */
    v = VAL(200, NULL, 0, "b", 1, now, now + 5 * SEC, now + 10 * SEC);
    v.born_at = now;
    CHECK_RV(put(&t.z, "k/span", &v, now, p));
    CHECK(t.z.purge->max_span >= 10 * SEC && t.z.purge->max_span < 11 * SEC);
    mask = t.z.npurge - 1;
    for (i = 0; n < ISR_PURGE_WAYS + 1 && i < 10000000; i++) {
        h = tag(&t.z, apr_psprintf(p, "a%d", i));
        if (n == 0 || (h & mask) == (hs[0] & mask)) {
            hs[n++] = h;
        }
    }
    for (i = 0; i < ISR_PURGE_WAYS; i++) {
        CHECK_RV(isr_purge_apply(&t.z, 1, &hs[i], 1, &seq));
    }
    b = &t.z.pbuckets[hs[0] & mask];
    /* Their operations were a minute ago: older than any live entry. */
    for (i = 0; i < ISR_PURGE_WAYS; i++) {
        b->when[i] -= 60;
    }
    CHECK_RV(isr_purge_apply(&t.z, 1, &hs[ISR_PURGE_WAYS], 1, &seq));
    CHECK_EQ(t.z.purge->evictions, 0);
    CHECK_EQ(b->floor_hard, 0);
    CHECK(t.z.purge->freed_at > now - 60 * SEC);
    /* A fetch that began before the forgotten operation is not stored. */
    v.born_at = now - 59 * SEC - SEC / 2;
    v.born = 0;
    CHECK_EQ(put(&t.z, "k/late", &v, now, p), APR_EBUSY);
    v.born_at = apr_time_now();
    v.born = isr_purge_seq(&t.z);
    CHECK_RV(put(&t.z, "k/late2", &v, now, p));
    CHECK_LOOK(look(&t.z, "k/late2", p, &e), ISR_LOOK_FRESH);
    /* Live ways are given up into the floors (counted). */
    for (i = 0; i < ISR_PURGE_WAYS; i++) {
        b->when[i] = (apr_uint32_t)apr_time_sec(now);
    }
    h = tag(&t.z, "unrelated");
    for (i = 0; n < ISR_PURGE_WAYS + 2 && i < 10000000; i++) {
        h = tag(&t.z, apr_psprintf(p, "b%d", i));
        if ((h & mask) == (hs[0] & mask)) {
            break;
        }
    }
    CHECK_RV(isr_purge_apply(&t.z, 1, &h, 1, &seq));
    CHECK_EQ(t.z.purge->evictions, 1);
    CHECK(b->floor_hard > 0);
    return 0;
}

static void val(apr_array_header_t *a, const char *v, apr_size_t len)
{
    isr_purge_val_t *pv = apr_array_push(a);

    pv->v = v;
    pv->len = len;
}

/* isr_purge_op: an operation by what it names, as the admin API and the
 * second tier's bus carry it; never the whole zone by accident. */
static int c_op_kinds(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_array_header_t *v;
    apr_uint64_t seq = 0;

    CHECK_RV(tzone_make(p, ZONE, 7, &t));
    CHECK_RV(put_tagged(&t.z, "k/a", "/a/x", "red", isr_purge_seq(&t.z), now,
                        p));
    CHECK_RV(put_tagged(&t.z, "k/b", "/b/x", "blue", isr_purge_seq(&t.z), now,
                        p));
    CHECK_RV(put_tagged(&t.z, "k/c", "/c/x", NULL, isr_purge_seq(&t.z), now,
                        p));
    CHECK_RV(put_tagged(&t.z, "k/d", "/d/x", NULL, isr_purge_seq(&t.z), now,
                        p));
    /* Refused: no values for t or k, two values for p, a NUL in a URL, an
     * unknown kind. Nothing applied. */
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    CHECK(isr_purge_op(&t.z, 1, 't', v, p, &seq) == APR_EINVAL);
    CHECK(isr_purge_op(&t.z, 1, 'k', v, p, &seq) == APR_EINVAL);
    CHECK(isr_purge_op(&t.z, 1, 'k', NULL, p, &seq) == APR_EINVAL);
    CHECK(isr_purge_op(&t.z, 1, 'x', v, p, &seq) == APR_EINVAL);
    val(v, "/a", 2);
    val(v, "/b", 2);
    CHECK(isr_purge_op(&t.z, 1, 'p', v, p, &seq) == APR_EINVAL);
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "", 0);
    val(v, "k/c\0x", 5);
    CHECK(isr_purge_op(&t.z, 1, 'u', v, p, &seq) == APR_EINVAL);
    CHECK_EQ(isr_purge_seq(&t.z), 0);
    CHECK_LOOK(look(&t.z, "k/a", p, &e), ISR_LOOK_FRESH);
    /* By tag, by prefix, by URL (socket "", URL), by key. */
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "red", 3);
    CHECK_RV(isr_purge_op(&t.z, 1, 't', v, p, &seq));
    CHECK_LOOK(look(&t.z, "k/a", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/b", p, &e), ISR_LOOK_FRESH);
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "/b", 2);
    CHECK_RV(isr_purge_op(&t.z, 0, 'p', v, p, &seq));
    CHECK_LOOK(look(&t.z, "k/b", p, &e), ISR_LOOK_STALE);
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "", 0);
    val(v, "k/c", 3);
    CHECK_RV(isr_purge_op(&t.z, 1, 'u', v, p, &seq));
    CHECK_LOOK(look(&t.z, "k/c", p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(look(&t.z, "k/d", p, &e), ISR_LOOK_FRESH);
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "k/d", 3);
    CHECK_RV(isr_purge_op(&t.z, 1, 'k', v, p, &seq));
    CHECK_LOOK(look(&t.z, "k/d", p, &e), ISR_LOOK_ABSENT);
    CHECK_EQ(seq, 4);
    /* A prefix of "/" is the zone. */
    CHECK_RV(put_tagged(&t.z, "k/e", "/e/x", NULL, isr_purge_seq(&t.z), now,
                        p));
    v = apr_array_make(p, 2, sizeof(isr_purge_val_t));
    val(v, "/", 1);
    CHECK_RV(isr_purge_op(&t.z, 1, 'p', v, p, &seq));
    CHECK_LOOK(look(&t.z, "k/e", p, &e), ISR_LOOK_ABSENT);
    return 0;
}

/* isr_purge_block_from (an entry from the second tier, its block made
 * anew from its path and tags) answers the operations block_make's
 * would. */
static int c_block_from(apr_pool_t *p)
{
    tzone_t t;
    isr_entry_t e;
    apr_time_t now = apr_time_now();
    apr_array_header_t *tags = apr_array_make(p, 2, sizeof(const char *));
    isr_value_t v = VAL(200, NULL, 0, "body", 4, now, now + 60 * SEC,
                        now + 120 * SEC);
    apr_array_header_t *got;
    const char *path;
    apr_uint64_t h, seq;
    int overflow;

    CHECK_RV(tzone_make(p, ZONE, 8, &t));
    APR_ARRAY_PUSH(tags, const char *) = "green";
    APR_ARRAY_PUSH(tags, const char *) = "tea";
    v.born = isr_purge_seq(&t.z);
    isr_purge_block_from(p, &t.z, "/shop/x", isr_purge_url_hash(&t.z, NULL,
                                                                "k/f"),
                         H(&t.z, "k/f"), tags, 0, &v.tags, &v.taglen);
    CHECK(isr_purge_block_read(p, v.tags, v.taglen, &path, &got, &overflow));
    CHECK(path && !strcmp(path, "/shop/x"));
    CHECK_EQ(got->nelts, 2);
    CHECK(!overflow);
    CHECK_RV(put(&t.z, "k/f", &v, now, p));
    CHECK_LOOK(look(&t.z, "k/f", p, &e), ISR_LOOK_FRESH);
    h = tag(&t.z, "tea");
    CHECK_RV(isr_purge_apply(&t.z, 0, &h, 1, &seq));
    CHECK_LOOK(look(&t.z, "k/f", p, &e), ISR_LOOK_STALE);
    h = isr_purge_prefix_hash(&t.z, "/shop", 5);
    CHECK_RV(isr_purge_apply(&t.z, 1, &h, 1, &seq));
    CHECK_LOOK(look(&t.z, "k/f", p, &e), ISR_LOOK_ABSENT);
    /* Overflowed: every tag operation names it. */
    v.born = isr_purge_seq(&t.z);
    isr_purge_block_from(p, &t.z, "/shop/y", 0, H(&t.z, "k/g"), tags, 1,
                         &v.tags, &v.taglen);
    CHECK_RV(put(&t.z, "k/g", &v, now, p));
    h = isr_purge_overflow_hash(&t.z);
    CHECK_RV(isr_purge_apply(&t.z, 1, &h, 1, &seq));
    CHECK_LOOK(look(&t.z, "k/g", p, &e), ISR_LOOK_ABSENT);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(apr_pool_t *p);
} cases[] = {
    { "tag_exact", c_tag_exact },
    { "in_flight", c_in_flight },
    { "prefixes", c_prefixes },
    { "prefix_and_all", c_prefix_and_all },
    { "full_bucket", c_full_bucket },
    { "no_scan", c_no_scan },
    { "bad_block", c_bad_block },
    { "block", c_block },
    { "ways_age", c_ways_age },
    { "op_kinds", c_op_kinds },
    { "block_from", c_block_from },
};

int main(int argc, const char *const *argv)
{
    int failed = 0, ran = 0, i, a;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    atexit(apr_terminate);
    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        int want = argc < 2;

        for (a = 1; a < argc; a++) {
            want |= !strcmp(argv[a], cases[i].name);
        }
        if (want) {
            failed += run_case(cases[i].name, cases[i].fn);
            ran++;
        }
    }
    printf("%d cases, %d failed\n", ran, failed);
    return failed || ran == 0 ? 1 : 0;
}
