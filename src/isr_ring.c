/* The ring of records in a zone (layout in include/isr_shm.h): allocation
 * at the head, eviction at the tail with CLOCK second chance. Every function
 * here runs under the zone mutex.
 *
 * Why second chance and not oldest-first: with plain FIFO a flood of
 * one-hit keys (a scan, or a client requesting ?cb=1, ?cb=2, ...) pushes
 * every entry out, the ones in use included. Here a record that was hit
 * since it was written (or last moved) is moved to the head with one hit
 * less instead of dropped, so entries in use survive floods that are many
 * times the zone, and one-hit records go first (S3-FIFO's observation:
 * most one-hit objects should never get past their first trip through the
 * queue). Moving costs a copy, so it is bounded per allocation. */
#include <string.h>

#include "isr_store.h"
#include "isr_store_int.h"

/* What one allocation adds to the ring's move credit (isr_shm.h): moving
 * costs a copy, so moves are a bounded multiple of what is written. */
#define MOVE_FACTOR 4

static apr_uint64_t ring_free(const isr_shm_header_t *h)
{
    return h->ring_size - (h->head - h->tail);
}

static void credit_add(isr_shm_header_t *h, apr_uint64_t need)
{
    apr_uint64_t cap = h->ring_size / 2, add = MOVE_FACTOR * need;

    h->move_credit = h->move_credit >= cap || add >= cap - h->move_credit
                     ? cap : h->move_credit + add;
}

/* Called before ring bytes that may have held a dropped record are written
 * again (a record, a SKIP filler, a moved record). A reader copies a record
 * with plain loads between two loads of the slot's seq, with an acquire
 * fence before the second; the writer that dropped or moved the record
 * bumped that seq first, maybe in an earlier critical section of another
 * process (ordered before us by the zone mutex). By the C11 fence rule
 * (7.17.4p4: a release fence A synchronizes with an acquire fence B when a
 * write X after A is read by a read Y before B), a copy that read any byte
 * written after this fence makes the reader's acquire fence synchronize
 * with it, so its second seq load sees the bump and it throws the copy
 * away. On x86-64 and arm64 the mutex chain already orders this; the C11
 * model needs the fence (and the byte copies counted as relaxed accesses,
 * as every seqlock does: Boehm, "Can seqlocks get along with programming
 * language memory models?", MSPC 2012). */
static void ring_write_fence(void)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void ring_write_skip(isr_zone_t *zone, apr_uint64_t phys,
                            apr_uint64_t len)
{
    isr_record_t *filler = (isr_record_t *)(zone->ring + phys);

    ring_write_fence();
    /* A filler may be as short as ISR_REC_ALIGN (64) bytes, less than a
     * record header (80): clear only its own bytes. */
    memset(filler, 0, len < sizeof(*filler) ? (apr_size_t)len
                                            : sizeof(*filler));
    filler->magic = ISR_SKIP_MAGIC;
    filler->total = (apr_uint32_t)len;
    zone->hdr->head += len;
}

/* Forget every record. Used only if the ring does not parse, which the
 * write order should make impossible: better empty than a wrong body. */
static void ring_reset(isr_zone_t *zone, apr_time_t now)
{
    apr_uint32_t i;

    for (i = 0; i < zone->nslots; i++) {
        if (LOAD(&zone->slots[i].state) == ISR_SLOT_VALID) {
            slot_drop_record(zone, &zone->slots[i], now);
        }
    }
    zone->hdr->tail = zone->hdr->head;
}

/* Second chance for the record of slot s, `total` bytes at the tail (phys
 * `from`): moved to the head with one hit less, in place. Returns 0 when it
 * cannot be moved (then it is evicted). The order keeps the ring parsing
 * between tail and head whenever this process dies: the slot goes odd (no
 * reader uses the record, and the next writer repairs the slot), a SKIP
 * filler covers the end of the ring if the record would wrap, the tail
 * leaves the old copy, and only then are bytes written: the target is free
 * space plus the old copy's own bytes (memmove), nothing a reader may use.
 * Then the head takes the new copy and the slot points at it. */
static int ring_move_to_head(isr_zone_t *zone, isr_slot_t *s,
                             apr_uint64_t from, apr_uint32_t total)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t to = h->head % h->ring_size, skip = 0;
    apr_uint32_t ref = LOAD(&s->ref);

    if (to + total > h->ring_size) {
        skip = h->ring_size - to;
        /* With the head past the tail physically, [to, end) is free; the
         * check keeps a damaged header from writing over records. */
        if (skip > ring_free(h)) {
            return 0;
        }
    }
    slot_begin(s);
    if (skip) {
        ring_write_skip(zone, to, skip);
        to = 0;
    }
    h->tail += total;
    ring_write_fence();
    memmove(zone->ring + to, zone->ring + from, total);
    h->head += total;
    STORE(&s->rec_off, to);
    STORE(&s->ref, ref ? ref - 1 : 0u);
    slot_end(s);
    isr_store_count(zone, ISR_STAT_SECOND_CHANCE);
    return 1;
}

/* One step at the tail: the record there gets a second chance (while the
 * move credit lasts) or leaves the ring. Returns 0 when the ring is empty. */
static int ring_step(isr_zone_t *zone, apr_time_t now)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t phys, used = h->head - h->tail;
    isr_record_t *rec;
    isr_slot_t *s = NULL;
    apr_uint32_t total;

    if (used == 0) {
        return 0;
    }
    phys = h->tail % h->ring_size;
    rec = (isr_record_t *)(zone->ring + phys);
    total = rec->total;
    if ((rec->magic != ISR_REC_MAGIC && rec->magic != ISR_SKIP_MAGIC)
        || total < ISR_REC_ALIGN || total % ISR_REC_ALIGN || total > used
        || phys + total > h->ring_size) {
        ring_reset(zone, now);
        return 1;
    }
    if (rec->magic == ISR_REC_MAGIC && rec->slot < zone->nslots) {
        s = &zone->slots[rec->slot];
        slot_repair(zone, s);
        /* Only the slot's current record counts: older versions of the
         * key and records of a slot given to another key just go. */
        if (LOAD(&s->state) != ISR_SLOT_VALID || LOAD(&s->rec_off) != phys
            || LOAD(&s->rec_len) != total || LOAD(&s->hash) != rec->hash) {
            s = NULL;
        }
    }
    if (s) {
        /* Hit since it was written and still servable (fresh or stale): a
         * second chance. An entry past its stale window gets none, however
         * often it was hit: nobody can be served from it. */
        /* A record may overdraw what is left of the credit: a hot record
         * larger than the credit would otherwise never be moved. */
        if (LOAD(&s->ref) > 0 && now <= LOAD(&s->until) && h->move_credit
            && ring_move_to_head(zone, s, phys, total)) {
            h->move_credit = h->move_credit > total ? h->move_credit - total
                                                    : 0;
            return 1;
        }
        slot_drop_record(zone, s, now);
        isr_store_count(zone, ISR_STAT_EVICT);
    }
    h->tail += total;
    return 1;
}

/* Records never wrap: the end of the ring is covered by a filler. Second
 * chances move the head, so the wrap is decided once there is room. */
apr_uint64_t isr_ring_alloc(isr_zone_t *zone, apr_uint64_t need,
                            apr_time_t now)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t phys, skip;

    credit_add(h, need);
    for (;;) {
        phys = h->head % h->ring_size;
        skip = phys + need > h->ring_size ? h->ring_size - phys : 0;
        /* skip + need <= ring_size, as need <= ring_size / 2: an empty
         * ring always has room, so this ends. */
        if (ring_free(h) >= skip + need || !ring_step(zone, now)) {
            break;
        }
    }
    if (skip) {
        ring_write_skip(zone, phys, skip);
        phys = 0;
    }
    ring_write_fence();
    return phys;
}

void isr_ring_commit(isr_zone_t *zone, apr_uint64_t need)
{
    zone->hdr->head += need;
}
