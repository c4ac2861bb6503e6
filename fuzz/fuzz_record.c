/* libFuzzer target: the stored record codec and the bounds checks around
 * it. A record in the ring is bytes of shared memory that any child could
 * have left half written (or a bug could have damaged): the reader must
 * never be sent outside the ring nor outside the record by its lengths
 * (invariant 6).
 *
 * Each input is   flags (1) | rec_off (4, LE) | rec_len (4, LE) | bytes
 * and becomes a record in the ring of a zone formatted in a malloc'd
 * buffer (the ring ends where the buffer ends, so AddressSanitizer sees any
 * read past it). One slot of the key's bucket points at it; then
 *   - isr_store_lookup() runs over it, copying into a malloc'd buffer of
 *     exactly the record's length (so a parse that reads past the record is
 *     caught too), and every header and body byte it returns is read;
 *   - isr_store_record_parse() runs on an exact copy of the bytes;
 *   - with flag 0x80 the ring's tail is put on the record and the allocator
 *     makes room over it (the tail parser, second chance, eviction).
 * Flags: 0x01 fix the record's magic, total and hash (so the parser gets to
 * the lengths), 0x02 take the key from the record (so the key compares
 * equal), 0x04 use rec_off from the input, 0x08 use rec_len from the input,
 * 0x10 stale instead of fresh, 0x20 the slot was hit (ref 3), 0x40 expired.
 *
 * Build and run:
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude \
 *       $(apr-1-config --cflags --cppflags --includes) fuzz/fuzz_record.c \
 *       $(apr-1-config --link-ld --libs) -o fuzz_record
 *   ./fuzz_record -max_total_time=30 fuzz/corpus/record/
 */
#include "../src/isr_store.c"
#include "../src/isr_ring.c"
#include "../src/isr_key.c"
#include "../src/isr_purge.c"

#include <stdint.h>
#include <stdlib.h>
#include <apr_general.h>

#define ZONE_SIZE (256 * 1024)
#define KEY       "http://127.0.0.1/app/fuzz"

static apr_pool_t *pool;
static unsigned char *zone_mem;
static apr_time_t now;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        abort();
    }
    zone_mem = aligned_alloc(ISR_REC_ALIGN, ZONE_SIZE);
    if (!zone_mem) {
        abort();
    }
    now = apr_time_now();
    return 0;
}

/* The lookup copies the record into an exact-size heap buffer. */
static void *copy_alloc(void *baton, apr_uint32_t len)
{
    (void)baton;
    return malloc(len ? len : 1);
}

static const void *copy_find(void *baton, const isr_zone_t *zone,
                             apr_uint32_t slot, apr_uint32_t seq,
                             apr_uint32_t len)
{
    (void)baton; (void)zone; (void)slot; (void)seq; (void)len;
    return NULL;
}

static void copy_done(void *baton, const void *buf, int ok,
                      const isr_zone_t *zone, apr_uint32_t slot,
                      apr_uint32_t seq)
{
    (void)zone; (void)slot; (void)seq;
    if (ok) {
        *(const void **)baton = buf;   /* freed once the entry was read */
    }
    else {
        free((void *)buf);
    }
}

static apr_uint32_t le32(const uint8_t *p)
{
    return (apr_uint32_t)p[0] | (apr_uint32_t)p[1] << 8
           | (apr_uint32_t)p[2] << 16 | (apr_uint32_t)p[3] << 24;
}

/* Read every byte an entry points at; the sum keeps the reads. */
static unsigned entry_touch(const isr_entry_t *e)
{
    unsigned sum = 0;
    apr_size_t i;

    for (i = 0; i < e->hdrlen; i++) {
        sum += (unsigned char)e->headers[i];
    }
    for (i = 0; i < e->bodylen; i++) {
        sum += (unsigned char)e->body[i];
    }
    return sum;
}

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const apr_uint64_t seed[2] = {0x0706050403020100ULL,
                                         0x0f0e0d0c0b0a0908ULL};
    isr_zone_t zone;
    isr_record_t rec;
    isr_entry_t e;
    isr_copy_t copy;
    isr_slot_t *s;
    const void *kept = NULL;
    const char *key = KEY;
    apr_size_t klen = sizeof(KEY) - 1, n;
    apr_uint64_t hash, ring_size;
    apr_uint32_t flags, b[2], idx;
    unsigned char *exact;
    isr_look_t l;

    if (size < 9) {
        return 0;
    }
    flags = data[0];
    if (isr_store_format(zone_mem, ZONE_SIZE, seed, now) != APR_SUCCESS) {
        abort();
    }
    memset(&zone, 0, sizeof(zone));
    if (isr_store_attach(&zone, zone_mem, ZONE_SIZE) != APR_SUCCESS) {
        abort();
    }
    ring_size = zone.hdr->ring_size;
    n = size - 9;
    if (n > ring_size) {
        n = (apr_size_t)ring_size;
    }
    memcpy(zone.ring, data + 9, n);

    if ((flags & 0x02) && n >= sizeof(rec)) {
        memcpy(&rec, zone.ring, sizeof(rec));
        key = (const char *)zone.ring + sizeof(rec);
        klen = rec.keylen < n - sizeof(rec) ? rec.keylen : n - sizeof(rec);
        /* The key must outlive the ring changes below. */
        key = apr_pmemdup(pool, key, klen ? klen : 1);
    }
    hash = isr_key_hash(zone.hdr->seed, key, klen);
    if ((flags & 0x01) && n >= sizeof(rec)) {
        memcpy(&rec, zone.ring, sizeof(rec));
        rec.magic = ISR_REC_MAGIC;
        rec.total = (apr_uint32_t)n;
        rec.hash = hash;
        memcpy(zone.ring, &rec, sizeof(rec));
    }

    /* One slot of the key's first bucket points at the bytes. */
    isr_store_buckets(&zone, hash, b);
    idx = b[0] * ISR_BUCKET_WAYS;
    s = &zone.slots[idx];
    zone.tags[idx] = hash;
    s->hash = hash;
    s->state = ISR_SLOT_VALID;
    s->rec_off = (flags & 0x04) ? le32(data + 1) : 0;
    s->rec_len = (flags & 0x08) ? le32(data + 5) : (apr_uint32_t)n;
    s->ref = (flags & 0x20) ? ISR_REF_MAX : 0;
    s->fetched = now - APR_USEC_PER_SEC;
    s->fresh_until = (flags & 0x10) ? now - 1 : now + 60 * APR_USEC_PER_SEC;
    s->until = (flags & 0x40) ? now - 1 : now + 120 * APR_USEC_PER_SEC;

    /* An odd-sized input: an operation happened after every record was
     * born, so the lookup reads the record's tag block (isr_purge.c), and
     * one tag and the zone's all-marks are set, so each outcome is met. */
    if (size & 1) {
        apr_uint64_t th = isr_purge_tag_hash(&zone, "t", 1);
        isr_purge_bucket_t *pb = &zone.pbuckets[th & (zone.npurge - 1)];

        zone.purge->seq = 1 + (size & 4);
        zone.purge->all_soft = (size & 4) ? 1 : 0;
        pb->way[0].hash = th;
        pb->way[0].soft = 1;
        pb->way[0].hard = (size & 2) ? 1 : 0;
    }
    copy.find = copy_find;
    copy.alloc = copy_alloc;
    copy.done = copy_done;
    copy.baton = &kept;
    l = isr_store_lookup_with(&zone, key, klen, hash, now, pool, &copy, &e);
    if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
        if (!kept || e.record != kept) {
            abort();
        }
        sink += entry_touch(&e);
    }
    free((void *)kept);

    /* The parser alone, on an exact copy. */
    exact = malloc(n ? n : 1);
    memcpy(exact, data + 9, n);
    memset(&e, 0, sizeof(e));
    if (isr_store_record_parse(exact, n, hash, key, klen, &e)) {
        if ((const unsigned char *)e.body + e.bodylen > exact + n
            || (const unsigned char *)e.headers < exact) {
            abort();
        }
        sink += entry_touch(&e);
        if (e.tags && (e.tags < (const unsigned char *)e.body + e.bodylen
                       || e.tags + e.taglen > exact + n)) {
            abort();
        }
        {
            const char *path;
            apr_array_header_t *tags;
            int overflow, i;

            if (isr_purge_block_read(pool, e.tags, e.taglen, &path, &tags,
                                     &overflow)) {
                for (i = 0; i < tags->nelts; i++) {
                    sink += (unsigned)strlen(APR_ARRAY_IDX(tags, i,
                                                           const char *));
                }
                sink += path ? (unsigned)strlen(path) : 0;
            }
            sink += isr_purge_check(&zone, e.born, e.tags, e.taglen);
        }
    }
    free(exact);

    /* The tail parser: the record is the whole used ring. The allocator
     * validates it, gives it a second chance or evicts it, and must leave
     * a ring that still parses. */
    if (flags & 0x80) {
        apr_uint64_t used = ALIGN_UP((apr_uint64_t)n, ISR_REC_ALIGN);
        zone.hdr->tail = 0;
        zone.hdr->head = used > ring_size ? ring_size : used;
        (void)isr_ring_alloc(&zone,
                             ring_size / 2 / ISR_REC_ALIGN * ISR_REC_ALIGN,
                             now);
        if (zone.hdr->head < zone.hdr->tail
            || zone.hdr->head - zone.hdr->tail > ring_size) {
            abort();
        }
    }
    apr_pool_clear(pool);
    return 0;
}
