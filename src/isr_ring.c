/* The ring of records in a zone (layout in include/isr_shm.h): allocation
 * at the head, eviction at the tail. Every function here runs under the
 * zone mutex. */
#include <string.h>

#include "isr_store.h"
#include "isr_store_int.h"

/* Forget every record. Used only if the ring does not parse, which the
 * write order should make impossible: better empty than a wrong body. */
static void ring_reset(isr_zone_t *zone)
{
    apr_time_t now = apr_time_now();
    apr_uint32_t i;

    for (i = 0; i < zone->nslots; i++) {
        if (LOAD(&zone->slots[i].state) == ISR_SLOT_VALID) {
            slot_drop_record(zone, &zone->slots[i], now);
        }
    }
    zone->hdr->tail = zone->hdr->head;
}

/* Called before ring bytes that may have held a dropped record are written
 * again (a record, a SKIP filler). A reader copies a record with plain loads
 * between two loads of the slot's seq, with an acquire fence before the
 * second; the writer that dropped the record bumped that seq first, maybe
 * in an earlier critical section of another process (ordered before us by
 * the zone mutex). By the C11 fence rule (7.17.4p4: a release fence A
 * synchronizes with an acquire fence B when a write X after A is read by a
 * read Y before B), a copy that read any byte written after this fence
 * makes the reader's acquire fence synchronize with it, so its second seq
 * load sees the bump and it throws the copy away. On x86-64 and arm64 the
 * mutex chain already orders this; the C11 model needs the fence (and the
 * byte copies counted as relaxed accesses, as every seqlock does: Boehm,
 * "Can seqlocks get along with programming language memory models?",
 * MSPC 2012). */
static void ring_write_fence(void)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Drop the oldest record in the ring. Returns 0 when the ring is empty. */
static int ring_evict_one(isr_zone_t *zone)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t phys, used = h->head - h->tail;
    isr_record_t *rec;
    isr_slot_t *s;

    if (used == 0) {
        return 0;
    }
    phys = h->tail % h->ring_size;
    rec = (isr_record_t *)(zone->ring + phys);
    if ((rec->magic != ISR_REC_MAGIC && rec->magic != ISR_SKIP_MAGIC)
        || rec->total < ISR_REC_ALIGN || rec->total % ISR_REC_ALIGN
        || rec->total > used || phys + rec->total > h->ring_size) {
        ring_reset(zone);
        return 1;
    }
    if (rec->magic == ISR_REC_MAGIC && rec->slot < zone->nslots) {
        s = &zone->slots[rec->slot];
        if (LOAD(&s->state) == ISR_SLOT_VALID && LOAD(&s->rec_off) == phys
            && LOAD(&s->hash) == rec->hash) {
            slot_drop_record(zone, s, apr_time_now());
            isr_store_count(zone, ISR_STAT_EVICT);
        }
    }
    h->tail += rec->total;
    return 1;
}

static void ring_make_room(isr_zone_t *zone, apr_uint64_t need)
{
    isr_shm_header_t *h = zone->hdr;

    while (h->ring_size - (h->head - h->tail) < need && ring_evict_one(zone)) {
    }
}

/* Records never wrap: the end of the ring is covered by a filler. */
apr_uint64_t isr_ring_alloc(isr_zone_t *zone, apr_uint64_t need)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t phys = h->head % h->ring_size, skip;
    isr_record_t *filler;

    if (phys + need > h->ring_size) {
        skip = h->ring_size - phys;
        ring_make_room(zone, skip);
        filler = (isr_record_t *)(zone->ring + phys);
        ring_write_fence();
        memset(filler, 0, sizeof(*filler));
        filler->magic = ISR_SKIP_MAGIC;
        filler->total = (apr_uint32_t)skip;
        h->head += skip;
        phys = 0;
    }
    ring_make_room(zone, need);
    ring_write_fence();
    return phys;
}

void isr_ring_commit(isr_zone_t *zone, apr_uint64_t need)
{
    zone->hdr->head += need;
}

