/* Helpers shared by test_store.c and stress_store.c: a zone on an anonymous
 * APR shm segment with an APR global mutex, a PRNG, and a checker of the
 * layout invariants of include/isr_shm.h. */
#ifndef ISR_UNIT_H
#define ISR_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_global_mutex.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "isr_store.h"
#include "isr_key.h"

typedef struct {
    apr_shm_t *shm;
    void *base;
    apr_size_t size;
    isr_zone_t z;
} tzone_t;

/* Anonymous segment (inherited across fork), formatted and attached, with a
 * global mutex created before any fork. */
static apr_status_t tzone_make(apr_pool_t *p, apr_size_t size,
                               apr_uint64_t seed, tzone_t *t)
{
    /* A reproducible 128-bit zone key from one number. */
    apr_uint64_t k[2] = { seed, seed ^ 0x9e3779b97f4a7c15ULL };
    apr_status_t rv;

    memset(t, 0, sizeof(*t));
    if ((rv = apr_shm_create(&t->shm, size, NULL, p)) != APR_SUCCESS) {
        return rv;
    }
    t->base = apr_shm_baseaddr_get(t->shm);
    t->size = apr_shm_size_get(t->shm);
    if ((rv = isr_store_format(t->base, t->size, k, apr_time_now()))
        != APR_SUCCESS) {
        return rv;
    }
    if ((rv = isr_store_attach(&t->z, t->base, t->size)) != APR_SUCCESS) {
        return rv;
    }
    t->z.name = "unit";
    return apr_global_mutex_create(&t->z.mutex, NULL, APR_LOCK_DEFAULT, p);
}

/* splitmix64 */
static inline apr_uint64_t rng_next(apr_uint64_t *s)
{
    apr_uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline apr_uint64_t rng_range(apr_uint64_t *s, apr_uint64_t lo,
                                     apr_uint64_t hi)
{
    return lo + rng_next(s) % (hi - lo + 1);
}

static inline void rng_fill(apr_uint64_t seed, unsigned char *buf,
                            apr_size_t len)
{
    apr_uint64_t s = seed, x = 0;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x = rng_next(&s);
        }
        buf[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

static inline apr_uint64_t fnv64(const unsigned char *p, apr_size_t len)
{
    apr_uint64_t h = 0xcbf29ce484222325ULL;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* Checks the invariants of isr_shm.h on a quiescent zone (no writer
 * running): the ring between tail and head parses, every VALID slot points
 * at a record of its own hash and index inside that range. Returns NULL or
 * a description of the first violation (static buffer). */
static const char *zone_check(isr_zone_t *z)
{
    static char msg[512];
    isr_shm_header_t *h = z->hdr;
    apr_uint64_t pos, used = h->head - h->tail;
    apr_uint32_t i;

    if (h->tail > h->head || used > h->ring_size) {
        snprintf(msg, sizeof(msg), "ring: tail %llu head %llu size %llu",
                 (unsigned long long)h->tail, (unsigned long long)h->head,
                 (unsigned long long)h->ring_size);
        return msg;
    }
    for (pos = h->tail; pos < h->head;) {
        apr_uint64_t phys = pos % h->ring_size;
        isr_record_t *r = (isr_record_t *)(z->ring + phys);
        if ((r->magic != ISR_REC_MAGIC && r->magic != ISR_SKIP_MAGIC)
            || r->total < ISR_REC_ALIGN || r->total % ISR_REC_ALIGN
            || phys + r->total > h->ring_size || pos + r->total > h->head) {
            snprintf(msg, sizeof(msg),
                     "ring does not parse at logical %llu (phys %llu): "
                     "magic %08x total %u", (unsigned long long)pos,
                     (unsigned long long)phys, r->magic, r->total);
            return msg;
        }
        if (r->magic == ISR_REC_MAGIC
            && (apr_uint64_t)sizeof(*r) + r->keylen + r->hdrlen + r->bodylen
               > r->total) {
            snprintf(msg, sizeof(msg), "record at %llu: lengths exceed total",
                     (unsigned long long)phys);
            return msg;
        }
        pos += r->total;
    }
    for (i = 0; i < z->nslots; i++) {
        isr_slot_t *s = &z->slots[i];
        isr_record_t *r;
        apr_uint64_t lpos;
        apr_uint32_t b[2];
        if (s->seq & 1u) {
            continue;
        }
        if (z->tags[i] != s->hash) {
            snprintf(msg, sizeof(msg), "slot %u: tag %016llx, hash %016llx", i,
                     (unsigned long long)z->tags[i],
                     (unsigned long long)s->hash);
            return msg;
        }
        if (s->state == ISR_SLOT_EMPTY) {
            continue;
        }
        isr_store_buckets(z, s->hash, b);
        if (i / ISR_BUCKET_WAYS != b[0] && i / ISR_BUCKET_WAYS != b[1]) {
            snprintf(msg, sizeof(msg), "slot %u: not in a bucket of its hash", i);
            return msg;
        }
        if (s->state != ISR_SLOT_VALID) {
            continue;
        }
        if (s->rec_off % ISR_REC_ALIGN || s->rec_off + s->rec_len > h->ring_size
            || s->rec_len < sizeof(isr_record_t)) {
            snprintf(msg, sizeof(msg), "slot %u: record out of the ring", i);
            return msg;
        }
        r = (isr_record_t *)(z->ring + s->rec_off);
        if (r->magic != ISR_REC_MAGIC || r->hash != s->hash || r->slot != i
            || r->total != s->rec_len) {
            snprintf(msg, sizeof(msg),
                     "slot %u (hash %016llx) points at phys %llu: magic %08x "
                     "hash %016llx slot %u total %u/%u", i,
                     (unsigned long long)s->hash,
                     (unsigned long long)s->rec_off, r->magic,
                     (unsigned long long)r->hash, r->slot, r->total,
                     s->rec_len);
            return msg;
        }
        /* The record must lie between tail and head (not in freed space). */
        lpos = h->tail - h->tail % h->ring_size + s->rec_off;
        if (lpos < h->tail) {
            lpos += h->ring_size;
        }
        if (lpos + s->rec_len > h->head) {
            snprintf(msg, sizeof(msg),
                     "slot %u points at phys %llu, outside tail..head", i,
                     (unsigned long long)s->rec_off);
            return msg;
        }
    }
    return NULL;
}

#endif /* ISR_UNIT_H */
