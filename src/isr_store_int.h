/* Private to the store (src/isr_store.c, src/isr_ring.c): the atomics it
 * uses on the segment, the seqlock primitives writers use on a slot, and
 * the ring allocator. Writers hold the zone mutex; readers use none of
 * this. Layout and invariants: include/isr_shm.h. */
#ifndef ISR_STORE_INT_H
#define ISR_STORE_INT_H

#include <limits.h>
#include <signal.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "isr_store.h"

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) / (a) * (a))
#define LOAD_ACQ(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p)         __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CAS(p, e, d) \
    __atomic_compare_exchange_n((p), (e), (d), 0, __ATOMIC_ACQ_REL, \
                                __ATOMIC_RELAXED)

/* The zone mutex, held with prefork's exit signals blocked
 * (include/isr_signal.h): 0 when it cannot be taken. */
int isr_store_lock(isr_zone_t *zone, sigset_t *saved);
void isr_store_unlock(isr_zone_t *zone, const sigset_t *saved);

/* ---- slot writers (zone mutex held) ------------------------------------- */

static inline void slot_wake(isr_slot_t *s)
{
#if defined(__linux__)
    /* Not FUTEX_PRIVATE: waiters live in other processes. */
    syscall(SYS_futex, &s->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
    (void)s;
#endif
}

static inline void slot_begin(isr_slot_t *s)
{
    STORE(&s->seq, LOAD(&s->seq) | 1u);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void slot_end(isr_slot_t *s)
{
    STORE_REL(&s->seq, (LOAD(&s->seq) | 1u) + 1);
    /* The new seq must be visible before any later write reuses the
     * record this slot pointed to (a reader that copied the new bytes must
     * also see the new seq). */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    slot_wake(s);
}

static inline void slot_set_hash(isr_zone_t *zone, isr_slot_t *s,
                                 apr_uint64_t hash)
{
    STORE(&s->hash, hash);
    STORE(&zone->tags[s - zone->slots], hash);
}

/* A cleared slot keeps no lease: the next key must not inherit one. The
 * old owner's later release or publish finds the lease gone and the hash
 * changed, and does nothing to this slot. */
static inline void slot_clear(isr_zone_t *zone, isr_slot_t *s)
{
    slot_begin(s);
    STORE(&s->state, ISR_SLOT_EMPTY);
    slot_set_hash(zone, s, 0);
    __atomic_exchange_n(&s->lease, (apr_uint64_t)0, __ATOMIC_ACQ_REL);
    slot_end(s);
}

/* The record of a VALID slot leaves the ring. When a fetch of the key is
 * under way (a live lease: a miss refetching an expired entry, or a started
 * refresh), the slot keeps its hash and lease and turns PENDING: waiters go
 * on waiting for that fetch, whose publish lands here, instead of finding
 * the key absent and fetching it a second time. */
static inline void slot_drop_record(isr_zone_t *zone, isr_slot_t *s,
                                    apr_time_t now)
{
    if (!isr_store_lease_live(LOAD(&s->lease), now)) {
        slot_clear(zone, s);
        return;
    }
    slot_begin(s);
    STORE(&s->state, ISR_SLOT_PENDING);
    STORE(&s->ref, 0u);
    slot_end(s);
}

/* Only writers make a seq odd, and writers hold the mutex: an odd seq seen
 * under the mutex was left by a writer that died mid-update. */
static inline void slot_repair(isr_zone_t *zone, isr_slot_t *s)
{
    if (LOAD(&s->seq) & 1u) {
        STORE(&s->state, ISR_SLOT_EMPTY);
        slot_set_hash(zone, s, 0);
        slot_end(s);
    }
}

/* ---- the ring (src/isr_ring.c; zone mutex held) ------------------------- */

/* Reserve `need` (aligned, at most half the ring) contiguous bytes at the
 * head, evicting what must go and moving records that were hit to the head
 * (see src/isr_ring.c); returns their offset in the ring. The caller may
 * write them at once (the fence before reused bytes is done), then makes
 * them part of the ring with isr_ring_commit(). Slots may change state
 * meanwhile (evicted, moved, turned PENDING): choose the slot afterwards. */
apr_uint64_t isr_ring_alloc(isr_zone_t *zone, apr_uint64_t need,
                            apr_time_t now);

/* The `need` bytes reserved last are a complete record now. */
void isr_ring_commit(isr_zone_t *zone, apr_uint64_t need);

#endif /* ISR_STORE_INT_H */
