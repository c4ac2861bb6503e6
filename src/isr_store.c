/* The cache store on one zone: lock-free lookups (seqlock per slot), lease
 * claims by compare-and-swap, and writers serialised by the zone mutex.
 * The invariants are spelled out in include/isr_shm.h. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#endif

#include <apr_strings.h>
#include "isr_store.h"
#include "isr_key.h"
#include "isr_store_int.h"
#include "isr_signal.h"
#include "isr_purge.h"

/* The layout is shared by processes that may run different builds across a
 * graceful restart: sizes are part of the contract. */
typedef char isr_slot_is_64_bytes[sizeof(isr_slot_t) == 64 ? 1 : -1];
typedef char isr_record_is_80_bytes[sizeof(isr_record_t) == 80 ? 1 : -1];
typedef char isr_purge_bucket_is_128_bytes[sizeof(isr_purge_bucket_t) == 128
                                           ? 1 : -1];
typedef char isr_stats_is_320_bytes[sizeof(isr_stats_t) == 320 ? 1 : -1];
typedef char isr_stats_fit[ISR_STAT_COUNT <= 40 ? 1 : -1];

#define LOOKUP_TRIES 8

/* ---- segment header ---------------------------------------------------- */

/* The offsets and sizes of every region of a `size`-byte segment: the one
 * place they are computed, so that isr_store_attach() can require exactly
 * what isr_store_format() writes (a header may come from a file). */
static apr_status_t layout_make(apr_size_t size, isr_shm_header_t *h)
{
    apr_uint64_t want = size / 1024, slots_bytes;
    apr_uint32_t nb = 8, np = 128;

    while ((apr_uint64_t)nb * ISR_BUCKET_WAYS < want && nb < (1u << 30)) {
        nb <<= 1;
    }
    /* The purge table: at most 1/32 of the zone (a 1 MiB zone: 16 KiB),
     * up to 8 MiB (65536 buckets of 4 ways). */
    while ((apr_uint64_t)np * 2 * sizeof(isr_purge_bucket_t) <= size / 32
           && np < 65536) {
        np <<= 1;
    }
    memset(h, 0, sizeof(*h));
    h->stats_off = ALIGN_UP(sizeof(*h), ISR_REC_ALIGN);
    h->purge_off = h->stats_off + ISR_STAT_STRIPES * sizeof(isr_stats_t);
    h->purge_buckets = np;
    h->tags_off = h->purge_off + sizeof(isr_purge_head_t)
                  + (apr_uint64_t)np * sizeof(isr_purge_bucket_t);
    h->slots_off = h->tags_off
                   + (apr_uint64_t)nb * ISR_BUCKET_WAYS * sizeof(apr_uint64_t);
    slots_bytes = (apr_uint64_t)nb * ISR_BUCKET_WAYS * sizeof(isr_slot_t);
    h->health_off = ALIGN_UP(h->slots_off + slots_bytes, ISR_REC_ALIGN);
    h->ring_off = ALIGN_UP(h->health_off + (apr_uint64_t)nb * ISR_BUCKET_WAYS
                           * sizeof(isr_health_t), ISR_REC_ALIGN);
    if (h->ring_off + 64 * 1024 > size) {
        return APR_ENOMEM;
    }
    h->ring_size = (size - h->ring_off) / ISR_REC_ALIGN * ISR_REC_ALIGN;
    h->nbuckets = nb;
    h->size = size;
    return APR_SUCCESS;
}

apr_status_t isr_store_format(void *base, apr_size_t size,
                              const apr_uint64_t seed[2], apr_time_t now)
{
    isr_shm_header_t *h = base;
    apr_status_t rv;

    if (size < sizeof(*h)) {
        return APR_ENOMEM;
    }
    if (APR_SUCCESS != (rv = layout_make(size, h))) {
        memset(h, 0, sizeof(*h));
        return rv;
    }
    h->seed[0] = seed[0];
    h->seed[1] = seed[1];
    h->created = now;
    memset((char *)base + h->stats_off, 0, h->ring_off - h->stats_off);
    h->layout = ISR_SHM_LAYOUT;
    STORE_REL(&h->magic, ISR_SHM_MAGIC);
    return APR_SUCCESS;
}

/* The header may come from a file (isr_persist.h) as well as from
 * isr_store_format(): every offset and size must be the one format makes
 * for this size (which also keeps each region aligned, inside the segment
 * and apart from the others, the counts powers of two and the ring at
 * least 64 KiB and a multiple of ISR_REC_ALIGN). */
apr_status_t isr_store_attach(isr_zone_t *zone, void *base, apr_size_t size)
{
    isr_shm_header_t *h = base, want;

    if (size < sizeof(*h) || LOAD_ACQ(&h->magic) != ISR_SHM_MAGIC
        || h->layout != ISR_SHM_LAYOUT || h->size != size
        || layout_make(size, &want) != APR_SUCCESS
        || h->stats_off != want.stats_off || h->purge_off != want.purge_off
        || h->purge_buckets != want.purge_buckets
        || h->tags_off != want.tags_off || h->slots_off != want.slots_off
        || h->health_off != want.health_off
        || h->ring_off != want.ring_off || h->ring_size != want.ring_size
        || h->nbuckets != want.nbuckets
        /* Implied by the above; spelled out so that a change to
         * layout_make() cannot quietly loosen them. */
        || h->nbuckets < 2 || (h->nbuckets & (h->nbuckets - 1))
        || h->purge_buckets < 2
        || (h->purge_buckets & (h->purge_buckets - 1))
        || h->ring_size < 64 * 1024 || h->ring_size % ISR_REC_ALIGN
        || h->ring_off % ISR_REC_ALIGN || h->stats_off % ISR_REC_ALIGN
        || h->ring_off + h->ring_size > size) {
        return APR_EINVAL;
    }
    zone->hdr = h;
    zone->stats = (isr_stats_t *)((char *)base + h->stats_off);
    zone->purge = (isr_purge_head_t *)((char *)base + h->purge_off);
    zone->pbuckets = (isr_purge_bucket_t *)(zone->purge + 1);
    zone->npurge = h->purge_buckets;
    zone->tags = (apr_uint64_t *)((char *)base + h->tags_off);
    zone->slots = (isr_slot_t *)((char *)base + h->slots_off);
    zone->ring = (unsigned char *)base + h->ring_off;
    zone->health = (isr_health_t *)((char *)base + h->health_off);
    zone->nslots = h->nbuckets * ISR_BUCKET_WAYS;
    return APR_SUCCESS;
}

/* ---- refresh health ----------------------------------------------------- */

void isr_store_health_note(isr_zone_t *zone, apr_uint32_t slot,
                           apr_uint64_t hash, unsigned result, int status,
                           apr_status_t rv, apr_time_t now)
{
    isr_health_t *h = &zone->health[slot % zone->nslots];
    apr_uint32_t key = (apr_uint32_t)hash ? (apr_uint32_t)hash : 1u;
    unsigned char fails = LOAD(&h->key) == key ? LOAD(&h->failures) : 0;
    unsigned err = 0;

    if (result == ISR_HEALTH_FAILED) {
        err = rv == APR_SUCCESS ? ISR_HEALTH_ERR_STATUS
              : APR_STATUS_IS_TIMEUP(rv) ? ISR_HEALTH_ERR_TIMEOUT
              : rv == APR_ECONNREFUSED ? ISR_HEALTH_ERR_CONNECT
              : ISR_HEALTH_ERR_OTHER;
        fails = fails < 255 ? fails + 1 : 255;
    }
    else if (result != ISR_HEALTH_NOT_STORED) {
        fails = 0;
    }
    STORE(&h->key, key);
    STORE(&h->at, (apr_uint32_t)apr_time_sec(now));
    STORE(&h->status, (apr_uint32_t)(status > 0 ? status : 0));
    STORE(&h->result, (apr_uint16_t)result);
    STORE(&h->error, (unsigned char)err);
    STORE(&h->failures, fails);
}

int isr_store_health_get(const isr_zone_t *zone, apr_uint32_t slot,
                         apr_uint64_t hash, isr_health_t *out)
{
    const isr_health_t *h = &zone->health[slot % zone->nslots];
    apr_uint32_t key = (apr_uint32_t)hash ? (apr_uint32_t)hash : 1u;

    out->key = LOAD(&h->key);
    out->at = LOAD(&h->at);
    out->status = LOAD(&h->status);
    out->result = LOAD(&h->result);
    out->error = LOAD(&h->error);
    out->failures = LOAD(&h->failures);
    return out->key == key && out->result >= ISR_HEALTH_OK
           && out->result <= ISR_HEALTH_UNCACHEABLE;
}

/* ---- an image from a file (isr_persist.h) ------------------------------- */

/* Whether VALID slot idx points at a record that could be its own: inside
 * the ring, aligned, and a record header that agrees with the slot. */
static int recover_record_ok(const isr_zone_t *zone, apr_uint32_t idx,
                             const isr_slot_t *s)
{
    apr_uint64_t off = s->rec_off, ring_size = zone->hdr->ring_size;
    apr_uint32_t len = s->rec_len;
    isr_record_t rec;

    if (off > ring_size || len > ring_size - off || len < sizeof(rec)
        || off % ISR_REC_ALIGN || len % ISR_REC_ALIGN) {
        return 0;
    }
    memcpy(&rec, zone->ring + off, sizeof(rec));
    return rec.magic == ISR_REC_MAGIC && rec.total == len
           && rec.hash == s->hash && rec.slot == idx
           && (apr_uint64_t)sizeof(rec) + rec.keylen + rec.hdrlen
              + rec.bodylen + rec.altlen + rec.taglen <= len;
}

/* Walk the ring from tail to head. Slots marked (odd seq) by the caller
 * whose record is met on the way are confirmed (seq even again). Returns 0
 * when the chain does not parse: then nothing in the ring can be trusted. */
static int recover_ring(isr_zone_t *zone)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint64_t pos, phys, ring_size = h->ring_size;
    apr_uint32_t word[2], total;
    isr_record_t rec;
    isr_slot_t *s;

    /* The ring size is a multiple of the alignment: a logical position is
     * aligned exactly when its physical one is. */
    if (h->tail > h->head || h->head - h->tail > ring_size
        || h->tail % ISR_REC_ALIGN || h->head % ISR_REC_ALIGN) {
        return 0;
    }
    for (pos = h->tail; pos != h->head; pos += total) {
        phys = pos % ring_size;
        /* phys is aligned and the ring a multiple of the alignment: the
         * first ISR_REC_ALIGN bytes are inside the ring. */
        if (phys % ISR_REC_ALIGN) {
            return 0;
        }
        memcpy(word, zone->ring + phys, sizeof(word));
        total = word[1];
        if ((word[0] != ISR_REC_MAGIC && word[0] != ISR_SKIP_MAGIC)
            || total < ISR_REC_ALIGN || total % ISR_REC_ALIGN
            || total > h->head - pos || total > ring_size - phys) {
            return 0;
        }
        if (word[0] != ISR_REC_MAGIC) {
            continue;
        }
        if (total < sizeof(rec)) {
            return 0;
        }
        memcpy(&rec, zone->ring + phys, sizeof(rec));
        if (rec.slot < zone->nslots) {
            s = &zone->slots[rec.slot];
            if ((s->seq & 1u) && s->state == ISR_SLOT_VALID
                && s->rec_off == phys && s->rec_len == total
                && s->hash == rec.hash) {
                s->seq++;
            }
        }
    }
    return 1;
}

/* Times of the run that wrote the image, from a clock that may have been
 * ahead (or a forged file): none may be later than now. No fetch of that
 * run exists any more, so nothing is lost by it. */
static void recover_purge_times(isr_zone_t *zone)
{
    isr_purge_head_t *ph = zone->purge;
    apr_time_t now = apr_time_now();
    apr_uint32_t i, w, sec = (apr_uint32_t)apr_time_sec(now);
    /* A life longer than ten years is none a record asked for. */
    const apr_int64_t span_max = apr_time_from_sec(10 * 366 * 86400);

    if (ph->freed_at > now) {
        ph->freed_at = now;
    }
    if (ph->max_span < 0) {
        ph->max_span = 0;
    }
    else if (ph->max_span > span_max) {
        ph->max_span = span_max;
    }
    for (i = 0; i < zone->npurge; i++) {
        for (w = 0; w < ISR_PURGE_WAYS; w++) {
            if (zone->pbuckets[i].when[w] > sec) {
                zone->pbuckets[i].when[w] = sec;
            }
        }
    }
}

/* Single-threaded, before any child maps the segment: plain stores. */
apr_uint32_t isr_store_recover(isr_zone_t *zone)
{
    isr_shm_header_t *h = zone->hdr;
    apr_uint32_t i, kept = 0;
    isr_slot_t *s;
    int sound;

    for (i = 0; i < zone->nslots; i++) {
        s = &zone->slots[i];
        /* No process of the run that wrote the image exists. */
        s->lease = 0;
        if (s->seq & 1u) {
            /* A writer was inside its section when the copy was taken. */
            s->state = ISR_SLOT_EMPTY;
            s->seq++;
        }
        if (s->ref > ISR_REF_MAX) {
            s->ref = ISR_REF_MAX;
        }
        switch (s->state) {
        case ISR_SLOT_PASS:
        case ISR_SLOT_FAILED:
            break;
        case ISR_SLOT_VALID:
            if (recover_record_ok(zone, i, s)) {
                s->seq |= 1u;   /* to be confirmed by the ring walk */
                break;
            }
            /* fall through */
        default:
            /* EMPTY, PENDING (its fetch died with the old run), a record
             * that is not its own, or a state this build does not know. */
            s->state = ISR_SLOT_EMPTY;
            s->hash = 0;
            s->ref = 0;
            break;
        }
    }
    sound = recover_ring(zone);
    if (!sound) {
        /* Positions only have to grow while records of the ring may be
         * referred to; none is now, and head may be anything. */
        h->tail = h->head = 0;
    }
    else {
        /* Far from wrapping: positions near 2^64 would wrap as the ring
         * grows, and pos % ring_size jump (the ring is no power of two). A
         * multiple of the ring size off both keeps every physical place. */
        apr_uint64_t base = h->tail - h->tail % h->ring_size;

        h->tail -= base;
        h->head -= base;
    }
    recover_purge_times(zone);
    for (i = 0; i < zone->nslots; i++) {
        s = &zone->slots[i];
        if (s->state == ISR_SLOT_VALID) {
            if (!sound || (s->seq & 1u)) {
                /* Its record is not one of the ring's. */
                s->state = ISR_SLOT_EMPTY;
                s->hash = 0;
                s->ref = 0;
                s->seq = (s->seq | 1u) + 1;
            }
            else {
                kept++;
            }
        }
        zone->tags[i] = s->hash;
    }
    if (h->move_credit > h->ring_size / 2) {
        h->move_credit = h->ring_size / 2;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return kept;
}

apr_uint64_t isr_store_hash(const isr_zone_t *zone, const char *key,
                            apr_size_t len)
{
    return isr_key_hash(zone->hdr->seed, key, len);
}

void isr_store_buckets(const isr_zone_t *zone, apr_uint64_t hash,
                       apr_uint32_t b[2])
{
    apr_uint32_t mask = zone->hdr->nbuckets - 1;

    b[0] = (apr_uint32_t)hash & mask;
    b[1] = (apr_uint32_t)(hash >> 32) & mask;
    if (b[1] == b[0]) {
        b[1] = b[0] ^ 1;
    }
}

/* ---- counters ----------------------------------------------------------- */

void isr_store_count(isr_zone_t *zone, isr_stat_t what)
{
    isr_store_add(zone, what, 1);
}

void isr_store_add(isr_zone_t *zone, isr_stat_t what, apr_uint64_t n)
{
    static __thread unsigned int stripe = ~0u;

    if (stripe == ~0u) {
        /* Any stripe is correct; spreading threads keeps them apart. */
        stripe = (unsigned int)(((uintptr_t)&stripe >> 12) ^ getpid())
                 % ISR_STAT_STRIPES;
    }
    __atomic_fetch_add(&zone->stats[stripe].n[what], n, __ATOMIC_RELAXED);
}

void isr_store_fetched(isr_zone_t *zone, apr_interval_time_t took)
{
    static const apr_interval_time_t bounds[ISR_FETCH_BUCKETS] =
        ISR_FETCH_BOUNDS_US;
    int i;

    if (took < 0) {
        took = 0;
    }
    isr_store_count(zone, ISR_STAT_FETCHES);
    isr_store_add(zone, ISR_STAT_FETCH_USEC, (apr_uint64_t)took);
    for (i = 0; i < ISR_FETCH_BUCKETS; i++) {
        if (took <= bounds[i]) {
            isr_store_count(zone, (isr_stat_t)(ISR_STAT_FETCH_LE + i));
            break;
        }
    }
}

void isr_store_info(const isr_zone_t *zone, isr_store_info_t *info)
{
    const isr_shm_header_t *h = zone->hdr;
    apr_uint32_t i, k;

    memset(info, 0, sizeof(*info));
    for (i = 0; i < ISR_STAT_STRIPES; i++) {
        for (k = 0; k < ISR_STAT_COUNT; k++) {
            info->counts[k] += LOAD(&zone->stats[i].n[k]);
        }
    }
    info->slots = zone->nslots;
    for (i = 0; i < zone->nslots; i++) {
        info->slots_used += LOAD(&zone->slots[i].state) != ISR_SLOT_EMPTY;
    }
    info->ring_size = h->ring_size;
    info->ring_used = LOAD(&h->head) - LOAD(&h->tail);
}

/* ---- leases ------------------------------------------------------------- */

static apr_uint32_t sec_ceil(apr_time_t t)
{
    return (apr_uint32_t)((t + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
}

/* Per process; inherited across fork, but the pid tells children apart. */
static apr_uint32_t lease_counter;

/* A new lease value: the counter makes two claims by one process within one
 * second differ, so an old holder's CAS cannot hit a newer claim. */
static apr_uint64_t lease_make(apr_time_t now, apr_interval_time_t hold,
                               int queued)
{
    apr_uint32_t n = __atomic_add_fetch(&lease_counter, 1, __ATOMIC_RELAXED);
    apr_uint64_t l = ISR_LEASE_MAKE(sec_ceil(now + hold), getpid(), n);

    return queued ? l | ISR_LEASE_QUEUED : l;
}

static int pid_alive(apr_uint32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* A queued refresh has not started: nobody should wait for it, and the
 * slot may go (its job's renew then fails and it does not fetch). */
int isr_store_lease_live(apr_uint64_t lease, apr_time_t now)
{
    return lease != 0 && ISR_LEASE_PID(lease) != 0
           && !ISR_LEASE_IS_QUEUED(lease)
           && ISR_LEASE_DEADLINE(lease) >= sec_ceil(now)
           && pid_alive(ISR_LEASE_PID(lease));
}

static void lease_drop(isr_slot_t *s, apr_uint64_t mine, apr_uint64_t to)
{
    apr_uint64_t expect = mine;
    (void)CAS(&s->lease, &expect, to);
}

/* ---- futex -------------------------------------------------------------- */

void isr_store_wait(isr_zone_t *zone, apr_uint32_t slot, apr_uint32_t seq,
                    apr_interval_time_t max_wait)
{
    isr_slot_t *s = &zone->slots[slot % zone->nslots];
#if defined(__linux__)
    struct timespec ts;
    ts.tv_sec = max_wait / APR_USEC_PER_SEC;
    ts.tv_nsec = (max_wait % APR_USEC_PER_SEC) * 1000;
    syscall(SYS_futex, &s->seq, FUTEX_WAIT, seq, &ts, NULL, 0);
#else
    if (LOAD(&s->seq) == seq) {
        apr_sleep(max_wait < 10000 ? max_wait : 10000);
    }
#endif
}

/* ---- writers (zone mutex held) ------------------------------------------ */

/* A published slot must point inside the ring; anything else is cleared
 * rather than retried for ever. */
static void slot_check(isr_zone_t *zone, isr_slot_t *s)
{
    apr_uint64_t off = LOAD(&s->rec_off), ring_size = zone->hdr->ring_size;
    apr_uint32_t len = LOAD(&s->rec_len);

    if (LOAD(&s->state) == ISR_SLOT_VALID
        && (off > ring_size || len > ring_size - off
            || len < sizeof(isr_record_t))) {
        slot_clear(zone, s);
    }
}

int isr_store_lock(isr_zone_t *zone, sigset_t *saved)
{
    isr_signals_block(saved);
    if (zone->mutex && apr_global_mutex_lock(zone->mutex) == APR_SUCCESS) {
        return 1;
    }
    isr_signals_restore(saved);
    return 0;
}

void isr_store_unlock(isr_zone_t *zone, const sigset_t *saved)
{
    apr_global_mutex_unlock(zone->mutex);
    isr_signals_restore(saved);
}

/* Whether a slot may be reused for another key, best candidates first:
 * 0 empty, 1 dead (nobody can serve it), 2 unreferenced (ref 0),
 * 3 referenced, 9 never (a live fetch owns it). Among rank 3 the fewest
 * hits go first (victim_better). */
static int victim_rank(isr_slot_t *s, apr_time_t now)
{
    apr_uint32_t state = LOAD(&s->state);

    switch (state) {
    case ISR_SLOT_EMPTY:
        return 0;
    case ISR_SLOT_PASS:
    case ISR_SLOT_FAILED:
        return 1;
    case ISR_SLOT_PENDING:
        return isr_store_lease_live(LOAD(&s->lease), now) ? 9 : 1;
    default:
        if (now > LOAD(&s->until)) {
            /* Expired, but maybe being refetched by a live miss owner. */
            return isr_store_lease_live(LOAD(&s->lease), now) ? 9 : 1;
        }
        return LOAD(&s->ref) ? 3 : 2;
    }
}

/* Between two usable slots of one rank: fewer hits, then older. */
static int victim_better(isr_slot_t *a, isr_slot_t *b)
{
    apr_uint32_t ra = LOAD(&a->ref), rb = LOAD(&b->ref);

    return ra != rb ? ra < rb : LOAD(&a->fetched) < LOAD(&b->fetched);
}

/* Slots of a bucket a new key may take: EMPTY ones count double, so that a
 * new key goes to the emptier of its two buckets (two-choice hashing keeps
 * every bucket below its 8 ways far longer than one choice does). */
static int bucket_room(isr_zone_t *zone, apr_uint32_t b, apr_time_t now)
{
    int i, room = 0, rank;

    for (i = 0; i < ISR_BUCKET_WAYS; i++) {
        rank = victim_rank(&zone->slots[b * ISR_BUCKET_WAYS + i], now);
        room += rank == 0 ? 2 : rank == 1 ? 1 : 0;
    }
    return room;
}

/* Find the slot holding `hash` (*found = 1) or the best slot to reuse for
 * it (*found = 0). Returns -1 when no slot of its buckets may be reused. */
static long bucket_find(isr_zone_t *zone, apr_uint64_t hash, apr_time_t now,
                        int *found)
{
    apr_uint32_t b[2], base, k;
    long best = -1;
    int best_rank = 9, rank, i;
    isr_slot_t *s;

    *found = 0;
    isr_store_buckets(zone, hash, b);
    for (k = 0; k < 2; k++) {
        for (i = 0; i < ISR_BUCKET_WAYS; i++) {
            s = &zone->slots[b[k] * ISR_BUCKET_WAYS + i];
            slot_repair(zone, s);
            slot_check(zone, s);
            if (LOAD(&s->hash) == hash && LOAD(&s->state) != ISR_SLOT_EMPTY) {
                *found = 1;
                return s - zone->slots;
            }
        }
    }
    if (bucket_room(zone, b[1], now) > bucket_room(zone, b[0], now)) {
        k = b[0];
        b[0] = b[1];
        b[1] = k;
    }
    for (k = 0; k < 2; k++) {
        base = b[k] * ISR_BUCKET_WAYS;
        for (i = 0; i < ISR_BUCKET_WAYS; i++) {
            s = &zone->slots[base + i];
            rank = victim_rank(s, now);
            if (rank < best_rank
                || (rank == best_rank && rank > 1 && best >= 0
                    && victim_better(s, &zone->slots[best]))) {
                best = base + i;
                best_rank = rank;
            }
        }
    }
    if (best_rank >= 2 && best_rank <= 3) {
        isr_store_count(zone, ISR_STAT_EVICT);  /* a usable entry goes */
    }
    if (best_rank == 3) {
        /* Every slot was used lately: age them all by one hit, as the ring's
         * tail does, so that what is no longer hit goes next time. */
        for (k = 0; k < 2; k++) {
            for (i = 0; i < ISR_BUCKET_WAYS; i++) {
                s = &zone->slots[b[k] * ISR_BUCKET_WAYS + i];
                if (LOAD(&s->ref)) {
                    STORE(&s->ref, LOAD(&s->ref) - 1);
                }
            }
        }
    }
    return best;
}

/* ---- readers ------------------------------------------------------------ */

/* The bytes come from shared memory, a copy of it or a fuzzer: every
 * length is checked against len before it is used, the header is copied
 * out (buf need not be aligned), and sums are done in 64 bits so that no
 * 32-bit field can wrap them. */
int isr_store_record_parse(const unsigned char *buf, apr_size_t len,
                           apr_uint64_t hash, const char *key, apr_size_t klen,
                           isr_entry_t *e)
{
    isr_record_t rec;
    apr_uint64_t used;

    if (!buf || len < sizeof(rec)) {
        return 0;
    }
    memcpy(&rec, buf, sizeof(rec));
    if (rec.magic != ISR_REC_MAGIC || rec.total != len || rec.hash != hash) {
        return 0;
    }
    used = (apr_uint64_t)sizeof(rec) + rec.keylen + rec.hdrlen + rec.bodylen
           + rec.altlen + rec.taglen;
    if (used > len || rec.keylen != klen
        || memcmp(buf + sizeof(rec), key, klen) != 0) {
        return 0;
    }
    e->status = (int)rec.status;
    e->headers = (const char *)buf + sizeof(rec) + klen;
    e->hdrlen = rec.hdrlen;
    e->body = e->headers + rec.hdrlen;
    e->bodylen = rec.bodylen;
    e->alts = rec.altlen ? e->body + rec.bodylen : NULL;
    e->altlen = rec.altlen;
    e->tags = rec.taglen ? (const unsigned char *)e->body + rec.bodylen
                           + rec.altlen : NULL;
    e->taglen = rec.taglen;
    e->born = rec.born;
    e->swr_until = rec.swr_until;
    e->sie_until = rec.sie_until;
    return 1;
}

/* Bring the record of (slot, seq) into memory no writer touches: a kept
 * copy, or a fresh copy out of the ring (checked by the caller's seq test). */
static const unsigned char *record_get(isr_zone_t *zone, const isr_copy_t *copy,
                                       apr_uint32_t slot, apr_uint32_t seq,
                                       apr_uint64_t off, apr_uint32_t len,
                                       apr_pool_t *p, int *from_copy)
{
    const void *kept = copy ? copy->find(copy->baton, zone, slot, seq, len)
                            : NULL;
    void *buf = NULL;

    *from_copy = 1;
    if (kept) {
        return kept;
    }
    if (!copy || !(buf = copy->alloc(copy->baton, len))) {
        buf = apr_palloc(p, len);
        *from_copy = 0;
    }
    memcpy(buf, zone->ring + off, len);
    return buf;
}

/* Hand a buffer that came from `copy` back to it, used or not. */
static void record_done(const isr_copy_t *copy, const void *rec, int from_copy,
                        int ok, const isr_zone_t *zone, apr_uint32_t slot,
                        apr_uint32_t seq)
{
    if (rec && from_copy) {
        copy->done(copy->baton, rec, ok, zone, slot, seq);
    }
}

/* A lookup met a purged entry: it leaves the ring (once: the first to
 * come drops it, the others find the slot changed). */
static void purge_drop(isr_zone_t *zone, isr_slot_t *s, apr_uint32_t seq,
                       apr_time_t now)
{
    sigset_t sigs;

    if (!isr_store_lock(zone, &sigs)) {
        return;
    }
    (void)now;
    if (LOAD(&s->seq) == seq && LOAD(&s->state) == ISR_SLOT_VALID) {
        /* Cleared even while a refresh of it runs: that refresh began
         * before the purge, so what it brings is purged too; nobody waits
         * for it (its publish finds the slot gone and lands elsewhere, to
         * be dropped in turn). */
        slot_clear(zone, s);
        isr_store_count(zone, ISR_STAT_PURGED);
    }
    isr_store_unlock(zone, &sigs);
}

isr_look_t isr_store_lookup_with(isr_zone_t *zone, const char *key,
                                 apr_size_t klen, apr_uint64_t hash,
                                 apr_time_t now, apr_pool_t *p,
                                 const isr_copy_t *copy, isr_entry_t *e)
{
    apr_uint64_t off, shash, ring_size = zone->hdr->ring_size;
    apr_uint32_t b[2], seq, state, len, i, tries, ref;
    const unsigned char *rec;
    int from_copy = 0;
    isr_slot_t *s;

    memset(e, 0, sizeof(*e));
    isr_store_buckets(zone, hash, b);
    /* The 16 candidate slots, found through their buckets' tag lines. */
    for (i = 0; i < 2 * ISR_BUCKET_WAYS; i++) {
        apr_uint32_t idx = b[i / ISR_BUCKET_WAYS] * ISR_BUCKET_WAYS
                           + i % ISR_BUCKET_WAYS;
        if (LOAD(&zone->tags[idx]) != hash) {
            continue;
        }
        s = &zone->slots[idx];
        if (LOAD(&s->hash) != hash) {
            continue;
        }
        for (tries = 0; tries < LOOKUP_TRIES; tries++) {
            seq = LOAD_ACQ(&s->seq);
            if (seq & 1u) {
                continue;
            }
            /* The hash is read inside the section like every other field:
             * read after the second seq load, a slot that went K -> Y -> K
             * meanwhile would give K the state of Y. */
            shash = LOAD(&s->hash);
            state = LOAD(&s->state);
            e->slot = idx;
            e->seq = seq;
            e->hash = shash;
            e->lease = LOAD(&s->lease);
            e->fresh_until = LOAD(&s->fresh_until);
            e->until = LOAD(&s->until);
            e->fetched = LOAD(&s->fetched);
            off = LOAD(&s->rec_off);
            len = LOAD(&s->rec_len);
            rec = NULL;
            if (shash == hash && state == ISR_SLOT_VALID && now <= e->until) {
                /* Bounds first: the fields may be torn until seq is
                 * checked, and they must never send us outside the ring. */
                if (off > ring_size || len > ring_size - off
                    || len < sizeof(isr_record_t)) {
                    continue;
                }
                rec = record_get(zone, copy, e->slot, seq, off, len, p,
                                 &from_copy);
            }
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (LOAD(&s->seq) != seq) {
                record_done(copy, rec, from_copy, 0, zone, e->slot, seq);
                continue;
            }
            if (shash != hash) {
                break;  /* another key's slot now: try the next candidate */
            }
            switch (state) {
            case ISR_SLOT_PENDING:
                return e->state = ISR_LOOK_PENDING;
            case ISR_SLOT_PASS:
                return e->state = now < e->until ? ISR_LOOK_PASS
                                                 : ISR_LOOK_ABSENT;
            case ISR_SLOT_FAILED:
                return e->state = ISR_LOOK_FAILED;
            case ISR_SLOT_VALID:
                if (now > e->until) {
                    return e->state = ISR_LOOK_EXPIRED;
                }
                if (!isr_store_record_parse(rec, len, hash, key, klen, e)) {
                    /* Another key with the same 64-bit hash: serve this
                     * one uncached rather than ever sending a wrong body. */
                    record_done(copy, rec, from_copy, 0, zone, e->slot, seq);
                    e->until = now + APR_USEC_PER_SEC;
                    return e->state = ISR_LOOK_PASS;
                }
                switch (isr_purge_check(zone, e->born, e->tags, e->taglen)) {
                case ISR_PURGE_HARD:
                    record_done(copy, rec, from_copy, 0, zone, e->slot, seq);
                    purge_drop(zone, s, seq, now);
                    memset(e, 0, sizeof(*e));
                    return e->state = ISR_LOOK_ABSENT;
                case ISR_PURGE_SOFT:
                    if (e->fresh_until >= now) {
                        e->fresh_until = now - 1;
                    }
                    e->revalidated = 1;
                    break;
                default:
                    break;
                }
                record_done(copy, rec, from_copy, 1, zone, e->slot, seq);
                e->record = rec;
                /* CLOCK: count the hit, a plain store and only when the
                 * value changes, so hits on a hot entry stay reads. A lost
                 * race between two hits loses a count, nothing more. */
                ref = LOAD(&s->ref);
                if (ref < ISR_REF_MAX) {
                    STORE(&s->ref, ref + 1);
                }
                return e->state = now <= e->fresh_until ? ISR_LOOK_FRESH
                                                        : ISR_LOOK_STALE;
            default:
                break;
            }
            break;
        }
    }
    return e->state = ISR_LOOK_ABSENT;
}

isr_look_t isr_store_peek(const isr_zone_t *zone, apr_uint32_t idx,
                          apr_time_t now, apr_pool_t *p, isr_entry_t *e,
                          const char **pkey, apr_size_t *pklen)
{
    apr_uint64_t off, ring_size = zone->hdr->ring_size, hash;
    apr_uint32_t seq, state, len, tries;
    isr_slot_t *s;
    unsigned char *rec;
    isr_record_t rh;

    memset(e, 0, sizeof(*e));
    *pkey = NULL;
    *pklen = 0;
    if (idx >= zone->nslots) {
        return ISR_LOOK_ABSENT;
    }
    s = &zone->slots[idx];
    for (tries = 0; tries < LOOKUP_TRIES; tries++) {
        seq = LOAD_ACQ(&s->seq);
        if (seq & 1u) {
            continue;
        }
        hash = LOAD(&s->hash);
        state = LOAD(&s->state);
        e->slot = idx;
        e->seq = seq;
        e->hash = hash;
        e->lease = LOAD(&s->lease);
        e->fresh_until = LOAD(&s->fresh_until);
        e->until = LOAD(&s->until);
        e->fetched = LOAD(&s->fetched);
        off = LOAD(&s->rec_off);
        len = LOAD(&s->rec_len);
        rec = NULL;
        if (state == ISR_SLOT_VALID) {
            if (off > ring_size || len > ring_size - off
                || len < sizeof(isr_record_t)) {
                continue;
            }
            rec = apr_palloc(p, len);
            memcpy(rec, zone->ring + off, len);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(&s->seq) != seq) {
            continue;
        }
        switch (state) {
        case ISR_SLOT_EMPTY:
            return e->state = ISR_LOOK_ABSENT;
        case ISR_SLOT_PENDING:
            return e->state = ISR_LOOK_PENDING;
        case ISR_SLOT_PASS:
            return e->state = ISR_LOOK_PASS;
        case ISR_SLOT_FAILED:
            return e->state = ISR_LOOK_FAILED;
        case ISR_SLOT_VALID:
            memcpy(&rh, rec, sizeof(rh));
            if (rh.keylen > len - sizeof(rh)
                || !isr_store_record_parse(rec, len, hash,
                                           (const char *)rec + sizeof(rh),
                                           rh.keylen, e)) {
                return e->state = ISR_LOOK_ABSENT;
            }
            *pkey = (const char *)rec + sizeof(rh);
            *pklen = rh.keylen;
            e->record = rec;
            if (now > e->until) {
                return e->state = ISR_LOOK_EXPIRED;
            }
            switch (isr_purge_check(zone, e->born, e->tags, e->taglen)) {
            case ISR_PURGE_HARD:
                return e->state = ISR_LOOK_ABSENT;
            case ISR_PURGE_SOFT:
                e->revalidated = 1;
                return e->state = ISR_LOOK_STALE;
            default:
                return e->state = now <= e->fresh_until ? ISR_LOOK_FRESH
                                                        : ISR_LOOK_STALE;
            }
        default:
            return e->state = ISR_LOOK_ABSENT;
        }
    }
    return e->state = ISR_LOOK_ABSENT;   /* busy: skipped */
}

isr_look_t isr_store_lookup(isr_zone_t *zone, const char *key, apr_size_t klen,
                            apr_uint64_t hash, apr_time_t now, apr_pool_t *p,
                            isr_entry_t *e)
{
    return isr_store_lookup_with(zone, key, klen, hash, now, p, NULL, e);
}

/* ---- claims ------------------------------------------------------------- */

int isr_store_refresh_held(const isr_entry_t *e, apr_time_t now)
{
    return e->lease != 0 && ISR_LEASE_DEADLINE(e->lease) >= sec_ceil(now);
}

int isr_store_claim_refresh(isr_zone_t *zone, const isr_entry_t *e,
                            apr_time_t now, apr_interval_time_t hold,
                            apr_uint64_t *please)
{
    isr_slot_t *s = &zone->slots[e->slot % zone->nslots];
    apr_uint64_t cur = LOAD_ACQ(&s->lease), mine;

    /* Any lease inside its deadline holds refreshes off: a refresh under
     * way, or the backoff after a failed one. */
    if (cur != 0 && ISR_LEASE_DEADLINE(cur) >= sec_ceil(now)) {
        return 0;
    }
    if (LOAD_ACQ(&s->seq) != e->seq || LOAD(&s->hash) != e->hash) {
        return 0;
    }
    /* Queued: it holds other refresh claims off (deadline), but misses do
     * not wait for it until the job starts and renews it. */
    mine = lease_make(now, hold, 1);
    if (!CAS(&s->lease, &cur, mine)) {
        return 0;
    }
    /* The slot may have been given to another key between the check and
     * the CAS. Writers that re-key reset the lease inside the slot's
     * seqlock section, so a CAS that read such a reset (acquire) sees the
     * odd or newer seq here; then the lease is not ours to keep: give back
     * the value we replaced. */
    if (LOAD_ACQ(&s->seq) != e->seq || LOAD(&s->hash) != e->hash) {
        lease_drop(s, mine, cur);
        return 0;
    }
    *please = mine;
    return 1;
}

isr_claim_t isr_store_claim_stale(isr_zone_t *zone, const isr_entry_t *e,
                                  apr_time_t now, apr_interval_time_t hold,
                                  apr_uint64_t *please)
{
    isr_slot_t *s = &zone->slots[e->slot % zone->nslots];
    apr_uint64_t cur = LOAD_ACQ(&s->lease), mine;

    if (cur != 0 && ISR_LEASE_DEADLINE(cur) >= sec_ceil(now)) {
        /* A refresh's backoff (counter 0) is no reason not to revalidate
         * now; a failed synchronous fetch (counter 1) is, for ISRErrorTTL. */
        if (ISR_LEASE_PID(cur) == 0 && ISR_LEASE_CTR(cur) == 1) {
            return ISR_CLAIM_BACKOFF;
        }
        if (isr_store_lease_live(cur, now)) {
            return ISR_CLAIM_BUSY;
        }
    }
    if (LOAD_ACQ(&s->seq) != e->seq || LOAD(&s->hash) != e->hash) {
        return ISR_CLAIM_READY;
    }
    mine = lease_make(now, hold, 0);
    if (!CAS(&s->lease, &cur, mine)) {
        return ISR_CLAIM_BUSY;
    }
    /* Re-keyed between the check and the CAS: see claim_refresh. */
    if (LOAD_ACQ(&s->seq) != e->seq || LOAD(&s->hash) != e->hash) {
        lease_drop(s, mine, cur);
        return ISR_CLAIM_READY;
    }
    *please = mine;
    return ISR_CLAIM_OWNED;
}

int isr_store_renew(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t hash,
                    apr_uint64_t *lease, apr_time_t now,
                    apr_interval_time_t hold)
{
    isr_slot_t *s = &zone->slots[slot % zone->nslots];
    apr_uint64_t expect = *lease, mine = lease_make(now, hold, 0);

    if (!CAS(&s->lease, &expect, mine)) {
        return 0;
    }
    /* An equal lease word on a slot re-keyed meanwhile is another key's
     * claim (as in claim_refresh): give it back. A writer re-keying after
     * this check resets the lease itself. */
    if (LOAD_ACQ(&s->hash) != hash) {
        expect = mine;
        (void)CAS(&s->lease, &expect, *lease);
        return 0;
    }
    *lease = mine;
    return 1;
}

isr_claim_t isr_store_claim_miss(isr_zone_t *zone, apr_uint64_t hash,
                                 apr_time_t now, apr_interval_time_t hold,
                                 apr_uint32_t *pslot, apr_uint32_t *pseq,
                                 apr_uint64_t *please)
{
    sigset_t sigs;
    apr_uint64_t mine = lease_make(now, hold, 0), cur;
    isr_claim_t res = ISR_CLAIM_OWNED;
    apr_uint32_t state;
    isr_slot_t *s;
    int found;
    long idx;

    if (!isr_store_lock(zone, &sigs)) {
        return ISR_CLAIM_NOSLOT;
    }
    idx = bucket_find(zone, hash, now, &found);
    if (idx < 0) {
        res = ISR_CLAIM_NOSLOT;
        goto leave;
    }
    s = &zone->slots[idx];
    *pslot = (apr_uint32_t)idx;
    *pseq = LOAD(&s->seq);
    if (!found) {
        slot_begin(s);
        slot_set_hash(zone, s, hash);
        STORE(&s->state, ISR_SLOT_PENDING);
        STORE(&s->fresh_until, (apr_int64_t)0);
        STORE(&s->until, (apr_int64_t)0);
        STORE(&s->fetched, (apr_int64_t)0);
        STORE(&s->ref, 0u);
        __atomic_exchange_n(&s->lease, mine, __ATOMIC_ACQ_REL);
        slot_end(s);
        goto leave;
    }
    state = LOAD(&s->state);
    if ((state == ISR_SLOT_VALID || state == ISR_SLOT_PASS)
        && now <= LOAD(&s->until)) {
        res = ISR_CLAIM_READY;
        goto leave;
    }
    cur = LOAD(&s->lease);
    if (isr_store_lease_live(cur, now) || !CAS(&s->lease, &cur, mine)) {
        res = ISR_CLAIM_BUSY;
        goto leave;
    }
    if (state != ISR_SLOT_PENDING && state != ISR_SLOT_VALID) {
        slot_begin(s);
        STORE(&s->state, ISR_SLOT_PENDING);
        slot_end(s);
    }
leave:
    isr_store_unlock(zone, &sigs);
    if (res == ISR_CLAIM_OWNED) {
        *please = mine;
    }
    return res;
}

/* ---- results ------------------------------------------------------------ */

/* s holds an answer for hash that its backend gave after `since`. */
static int newer(isr_slot_t *s, apr_uint64_t hash, apr_time_t since)
{
    return LOAD(&s->hash) == hash && !(LOAD(&s->seq) & 1u)
           && LOAD(&s->state) == ISR_SLOT_VALID && LOAD(&s->fetched) > since;
}

apr_status_t isr_store_publish(isr_zone_t *zone, apr_uint32_t slot,
                               apr_uint64_t lease, const char *key,
                               apr_size_t klen, apr_uint64_t hash,
                               const isr_value_t *v)
{
    sigset_t sigs;
    apr_uint64_t need = sizeof(isr_record_t) + (apr_uint64_t)klen + v->hdrlen
                        + v->bodylen + v->altlen + v->taglen, phys;
    isr_slot_t *orig = &zone->slots[slot % zone->nslots], *s = orig;
    isr_record_t *rec;
    unsigned char *w;
    apr_time_t now;
    int found = 1;
    long idx;

    /* On failure the caller keeps its lease, to mark the key or back off.
     * Each part is checked on its own first, so the sum cannot wrap, and
     * the record's sizes are 32-bit fields: a ring over 4 GiB must still
     * refuse a record of 4 GiB or more rather than truncate its length. */
    if (klen > zone->hdr->ring_size || v->hdrlen > zone->hdr->ring_size
        || v->bodylen > zone->hdr->ring_size
        || v->altlen > zone->hdr->ring_size
        || v->taglen > zone->hdr->ring_size) {
        return APR_ENOSPC;
    }
    need = ALIGN_UP(need, ISR_REC_ALIGN);
    if (need > zone->hdr->ring_size / 2 || need > APR_UINT32_MAX) {
        return APR_ENOSPC;
    }
    if (!isr_store_lock(zone, &sigs)) {
        return APR_EGENERAL;
    }
    now = apr_time_now();
    /* A fetch that began before an operation whose way was since reused
     * could be an answer that operation purged (isr_purge.c). */
    if (v->born_at && v->born_at <= LOAD(&zone->purge->freed_at)) {
        isr_store_unlock(zone, &sigs);
        return APR_EBUSY;
    }
    /* Never over an answer newer than this one: one whose fetch answered
     * after this one's began (a fetch made after a purge, say, while this
     * one was under way). */
    if (v->born_at && newer(orig, hash, v->born_at)) {
        isr_store_unlock(zone, &sigs);
        return APR_EEXIST;
    }
    if (!v->no_span) {
        apr_int64_t span = v->stale_until - (v->born_at ? v->born_at : now);

        if (span > LOAD(&zone->purge->max_span)) {
            STORE(&zone->purge->max_span, span);
        }
    }
    /* Room first: making it may drop records (this key's own included,
     * which turns its slot PENDING while our lease is live) and move
     * others, so the slot is chosen once the ring has settled. */
    phys = isr_ring_alloc(zone, need, now);
    /* The slot may have been evicted and reused while we fetched. */
    if (LOAD(&s->hash) != hash || LOAD(&s->state) == ISR_SLOT_EMPTY
        || (LOAD(&s->seq) & 1u)) {
        idx = bucket_find(zone, hash, now, &found);
        if (idx < 0) {
            isr_store_unlock(zone, &sigs);
            return APR_EBUSY;
        }
        s = &zone->slots[idx];
        if (found && v->born_at && newer(s, hash, v->born_at)) {
            isr_store_unlock(zone, &sigs);
            return APR_EEXIST;
        }
    }
    rec = (isr_record_t *)(zone->ring + phys);
    memset(rec, 0, sizeof(*rec));
    rec->magic = ISR_REC_MAGIC;
    rec->total = (apr_uint32_t)need;
    rec->slot = (apr_uint32_t)(s - zone->slots);
    rec->status = (apr_uint32_t)v->status;
    rec->hash = hash;
    rec->fetched = v->fetched;
    rec->keylen = (apr_uint32_t)klen;
    rec->hdrlen = (apr_uint32_t)v->hdrlen;
    rec->bodylen = (apr_uint32_t)v->bodylen;
    rec->altlen = (apr_uint32_t)v->altlen;
    rec->taglen = (apr_uint32_t)v->taglen;
    rec->born = v->born;
    rec->swr_until = v->swr_until;
    rec->sie_until = v->sie_until;
    w = (unsigned char *)(rec + 1);
    memcpy(w, key, klen);
    if (v->hdrlen) {
        memcpy(w + klen, v->headers, v->hdrlen);
    }
    if (v->bodylen) {
        memcpy(w + klen + v->hdrlen, v->body, v->bodylen);
    }
    if (v->altlen) {
        memcpy(w + klen + v->hdrlen + v->bodylen, v->alts, v->altlen);
    }
    if (v->taglen) {
        memcpy(w + klen + v->hdrlen + v->bodylen + v->altlen, v->tags,
               v->taglen);
    }
    /* Only now does the record become part of the ring. */
    isr_ring_commit(zone, need);

    slot_begin(s);
    if (!found) {
        /* A slot taken from another key must not keep that key's lease
         * (reset inside the section, see isr_store_claim_refresh) nor its
         * hits. */
        __atomic_exchange_n(&s->lease, (apr_uint64_t)0, __ATOMIC_ACQ_REL);
        STORE(&s->ref, 0u);
    }
    /* A new version of a key keeps the key's hits: it is the key that is
     * in use, not the version. */
    slot_set_hash(zone, s, hash);
    STORE(&s->state, ISR_SLOT_VALID);
    STORE(&s->rec_off, phys);
    STORE(&s->rec_len, (apr_uint32_t)need);
    STORE(&s->fresh_until, v->fresh_until);
    STORE(&s->until, v->stale_until);
    STORE(&s->fetched, v->fetched);
    slot_end(s);
    lease_drop(s, lease, 0);
    if (s != orig) {
        /* Published elsewhere: whatever our lease still holds on the slot
         * we were given (a slot repaired after a writer died keeps it) is
         * released too. */
        lease_drop(orig, lease, 0);
    }
    isr_store_unlock(zone, &sigs);
    return APR_SUCCESS;
}

static void mark(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t hash,
                 apr_uint64_t lease, apr_uint32_t state, apr_time_t until,
                 apr_time_t now)
{
    sigset_t sigs;
    isr_slot_t *s = &zone->slots[slot % zone->nslots];
    apr_uint64_t owner;
    apr_uint32_t cur;

    if (!isr_store_lock(zone, &sigs)) {
        lease_drop(s, lease, 0);
        return;
    }
    cur = LOAD(&s->state);
    owner = LOAD(&s->lease);
    /* Never clobber a usable entry someone else published meanwhile, nor
     * the claim of whoever took over a lease we held too long. */
    if (LOAD(&s->hash) == hash && !(LOAD(&s->seq) & 1u)
        && (owner == lease || !isr_store_lease_live(owner, now))
        && !(state == ISR_SLOT_PASS && cur == ISR_SLOT_VALID
             && owner != lease && now <= LOAD(&s->until))
        && !(state == ISR_SLOT_FAILED && cur == ISR_SLOT_VALID
             && now <= LOAD(&s->until))) {
        slot_begin(s);
        STORE(&s->state, state);
        STORE(&s->until, until);
        slot_end(s);
    }
    lease_drop(s, lease, 0);
    isr_store_unlock(zone, &sigs);
}

void isr_store_mark_pass(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t hash,
                         apr_uint64_t lease, apr_time_t until)
{
    mark(zone, slot, hash, lease, ISR_SLOT_PASS, until, apr_time_now());
}

void isr_store_mark_failed(isr_zone_t *zone, apr_uint32_t slot,
                           apr_uint64_t hash, apr_uint64_t lease,
                           apr_time_t now, apr_time_t until)
{
    mark(zone, slot, hash, lease, ISR_SLOT_FAILED, until, now);
}

void isr_store_backoff(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t lease,
                       apr_time_t until)
{
    lease_drop(&zone->slots[slot % zone->nslots], lease,
               ISR_LEASE_MAKE(sec_ceil(until), 0, 0));
}

void isr_store_remember_failure(isr_zone_t *zone, apr_uint32_t slot,
                                apr_uint64_t lease, apr_time_t until)
{
    lease_drop(&zone->slots[slot % zone->nslots], lease,
               ISR_LEASE_MAKE(sec_ceil(until), 0, 1));
}

void isr_store_release(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t lease)
{
    lease_drop(&zone->slots[slot % zone->nslots], lease, 0);
}

/* ---- invalidation ------------------------------------------------------- */

/* The record of a VALID slot is `key`'s (not another key's with the same
 * hash). Zone mutex held: no writer moves it meanwhile; every length is
 * checked against the ring as a reader would. */
static int slot_holds_key(isr_zone_t *zone, isr_slot_t *s, const char *key,
                          apr_size_t klen, apr_uint64_t hash)
{
    apr_uint64_t off = LOAD(&s->rec_off), ring_size = zone->hdr->ring_size;
    apr_uint32_t len = LOAD(&s->rec_len);
    isr_entry_t e;

    if (off > ring_size || len > ring_size - off
        || len < sizeof(isr_record_t)) {
        return 0;
    }
    return isr_store_record_parse(zone->ring + off, len, hash, key, klen, &e);
}

isr_inval_t isr_store_invalidate(isr_zone_t *zone, const char *key,
                                 apr_size_t klen, apr_uint64_t hash,
                                 apr_time_t now, apr_uint64_t *plive,
                                 apr_uint32_t *pslot, apr_uint32_t *pseq)
{
    sigset_t sigs;
    isr_inval_t res = ISR_INVAL_NONE;
    apr_uint64_t lease;
    apr_uint32_t b[2], k, state;
    isr_slot_t *s;
    int i;

    if (!isr_store_lock(zone, &sigs)) {
        return ISR_INVAL_NONE;
    }
    isr_store_buckets(zone, hash, b);
    for (k = 0; k < 2 && res == ISR_INVAL_NONE; k++) {
        for (i = 0; i < ISR_BUCKET_WAYS; i++) {
            s = &zone->slots[b[k] * ISR_BUCKET_WAYS + i];
            slot_repair(zone, s);
            slot_check(zone, s);
            state = LOAD(&s->state);
            if (LOAD(&s->hash) != hash || state == ISR_SLOT_EMPTY) {
                continue;
            }
            lease = LOAD(&s->lease);
            if (plive && isr_store_lease_live(lease, now)
                && (*plive == 0 || *plive == lease)) {
                /* A fetch that may have asked the backend before the change
                 * is under way, and nothing stops its publish: let it land
                 * first, then drop what it brought. */
                *plive = lease;
                *pslot = (apr_uint32_t)(s - zone->slots);
                *pseq = LOAD(&s->seq);
                res = ISR_INVAL_WAIT;
                break;
            }
            if (state == ISR_SLOT_VALID && slot_holds_key(zone, s, key, klen,
                                                          hash)) {
                /* PENDING while a later fetch runs (its waiters keep
                 * waiting for it), EMPTY otherwise; a queued refresh loses
                 * its lease with the slot and does not fetch. */
                slot_drop_record(zone, s, now);
                res = ISR_INVAL_DONE;
            }
            break;
        }
    }
    isr_store_unlock(zone, &sigs);
    return res;
}
