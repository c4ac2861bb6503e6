/* The cache store: lookup, claim, publish and release on one shared-memory
 * zone (layout in isr_shm.h). No request_rec here, so the store can be
 * tested without a server. */
#ifndef ISR_STORE_H
#define ISR_STORE_H

#include <apr_pools.h>
#include <apr_global_mutex.h>
#include "isr_shm.h"

/* A process-local handle on a mapped zone. */
typedef struct isr_zone_t {
    const char *name;
    isr_shm_header_t *hdr;
    apr_uint64_t *tags;         /* one per slot: its hash (a hint) */
    isr_stats_t *stats;         /* ISR_STAT_STRIPES stripes */
    isr_slot_t *slots;
    isr_health_t *health;       /* one per slot */
    unsigned char *ring;
    isr_purge_head_t *purge;    /* the purge table (isr_purge.h) */
    isr_purge_bucket_t *pbuckets;
    apr_uint32_t npurge;        /* buckets, a power of two */
    apr_uint32_t nslots;
    apr_global_mutex_t *mutex;  /* guards writers; hits never take it */
    struct isr_tier_t *tier;    /* the second tier (isr_tier.h), or NULL */
} isr_zone_t;

typedef enum {
    ISR_LOOK_ABSENT,   /* no slot for this key (or a slot whose time ran out) */
    ISR_LOOK_FRESH,    /* record copied out, fresh */
    ISR_LOOK_STALE,    /* record copied out, inside the stale window */
    ISR_LOOK_EXPIRED,  /* a record exists but is past its stale window */
    ISR_LOOK_PENDING,  /* a miss fetch for this key is under way */
    ISR_LOOK_PASS,     /* uncacheable for now: fetch directly */
    ISR_LOOK_FAILED    /* the last miss fetch failed at entry.until */
} isr_look_t;

/* Where a lookup gets the bytes of a record, when the caller keeps its own
 * copies (isr_local.c); without it records are copied into the pool. */
typedef struct {
    /* A kept copy of version `seq` of the slot's record, or NULL. */
    const void *(*find)(void *baton, const isr_zone_t *zone, apr_uint32_t slot,
                        apr_uint32_t seq, apr_uint32_t len);
    /* A buffer of len bytes to copy the record into, or NULL (pool). */
    void *(*alloc)(void *baton, apr_uint32_t len);
    /* Every buffer find or alloc gave ends here: ok = 1 when the lookup
     * returns it as the record of (slot, seq), 0 when it was not used. */
    void (*done)(void *baton, const void *buf, int ok, const isr_zone_t *zone,
                 apr_uint32_t slot, apr_uint32_t seq);
    void *baton;
} isr_copy_t;

/* What a lookup found. Pointers point into a copy in the caller's pool. */
typedef struct {
    isr_look_t state;
    apr_uint32_t slot;
    apr_uint32_t seq;          /* slot seq seen: wait on it */
    apr_uint64_t hash;         /* the slot's hash at that seq (a claim checks
                                * that the slot still holds the key) */
    apr_uint64_t lease;
    apr_time_t fresh_until;
    apr_time_t until;          /* kept until (revalidated after swr_until) */
    apr_time_t fetched;        /* the answer's birth: Age is now - fetched */
    apr_time_t swr_until;      /* from the record: stale served at once */
    apr_time_t sie_until;      /* from the record: stale on errors */
    int status;
    const char *headers;       /* "name\0value\0" pairs */
    apr_size_t hdrlen;
    const char *body;
    apr_size_t bodylen;
    const char *alts;          /* alternates block (isr_compress.h), or NULL */
    apr_size_t altlen;
    const unsigned char *tags; /* tag block (isr_purge.h), or NULL */
    apr_size_t taglen;
    apr_uint64_t born;         /* operation sequence its fetch began at */
    int revalidated;           /* STALE because of a revalidate */
    const void *record;        /* the whole copied record */
} isr_entry_t;

/* What a fetch produced, to be stored. */
typedef struct {
    int status;
    const char *headers;
    apr_size_t hdrlen;
    const char *body;
    apr_size_t bodylen;
    const char *alts;          /* alternates block (isr_compress.h), or NULL */
    apr_size_t altlen;
    const unsigned char *tags; /* tag block (isr_purge.h), or NULL */
    apr_size_t taglen;
    apr_uint64_t born;         /* isr_purge_mark() before the fetch began: */
    apr_time_t born_at;        /* its sequence and time (0: now) */
    int no_span;               /* a Vary marker: its life does not bound
                                * the purge table's memory (reviving one
                                * revives no answer) */
    apr_time_t fetched;        /* birth (response time minus its age) */
    apr_time_t fresh_until;
    apr_time_t stale_until;    /* kept until */
    apr_time_t swr_until;      /* see isr_entry_t */
    apr_time_t sie_until;
} isr_value_t;

typedef enum {
    ISR_CLAIM_OWNED,   /* the caller owns the fetch (lease in *please) */
    ISR_CLAIM_BUSY,    /* someone else fetches: wait on (slot, seq) */
    ISR_CLAIM_READY,   /* a usable entry appeared meanwhile: look up again */
    ISR_CLAIM_NOSLOT,  /* every slot of the bucket is being fetched: fetch
                        * without coalescing and do not store */
    ISR_CLAIM_BACKOFF  /* the last fetch of the key failed a moment ago */
} isr_claim_t;

/* Map a freshly created segment: write the header and an empty index.
 * `seed` is the zone's 128-bit SipHash key (k0, k1 as in isr_key.h); the
 * caller makes it random. */
apr_status_t isr_store_format(void *base, apr_size_t size,
                              const apr_uint64_t seed[2], apr_time_t now);

/* Attach a handle to a formatted segment; APR_EINVAL if it is not one of
 * ours (wrong magic, layout or size). */
apr_status_t isr_store_attach(isr_zone_t *zone, void *base, apr_size_t size);

/* Make an attached image read from a file (isr_persist.h) safe, as if a
 * writer had died at the moment it was copied: the ring is walked from
 * tail to head (all of it dropped if it does not parse), every lease is
 * cleared (no process of that run exists), odd slots and PENDING ones
 * become EMPTY, a VALID slot stays only if its record is one of the ring's
 * and agrees with it (offset, length, magic, hash, slot, lengths), and the
 * tags are rebuilt from the slots. Returns the entries kept. Call it before
 * any other process maps the segment. */
apr_uint32_t isr_store_recover(isr_zone_t *zone);

/* The key's SipHash-2-4 under the zone's key; never 0. */
/* Note how a background refresh (or warm) of the key `hash` ended, for the
 * slot it was made for: result ISR_HEALTH_*, the backend's status (0:
 * none), rv the fetch's status (a failure's kind). */
void isr_store_health_note(isr_zone_t *zone, apr_uint32_t slot,
                           apr_uint64_t hash, unsigned result, int status,
                           apr_status_t rv, apr_time_t now);

/* The note of slot for key `hash`: 1 with *out, 0 when it has none. */
int isr_store_health_get(const isr_zone_t *zone, apr_uint32_t slot,
                         apr_uint64_t hash, isr_health_t *out);

apr_uint64_t isr_store_hash(const isr_zone_t *zone, const char *key,
                            apr_size_t len);

/* The two buckets a hash may live in (they differ). */
void isr_store_buckets(const isr_zone_t *zone, apr_uint64_t hash,
                       apr_uint32_t b[2]);

/* Lock-free lookup. For FRESH and STALE the record is copied into pool p
 * and its key compared with `key`. Never blocks. An entry purged since it
 * was fetched (isr_purge.h) is dropped (this takes the zone mutex, once
 * per such entry) and reported ABSENT; one revalidated since is STALE with
 * e->revalidated set. */
isr_look_t isr_store_lookup(isr_zone_t *zone, const char *key, apr_size_t klen,
                            apr_uint64_t hash, apr_time_t now, apr_pool_t *p,
                            isr_entry_t *e);

/* The same, taking record copies from `copy` when it has them. */
isr_look_t isr_store_lookup_with(isr_zone_t *zone, const char *key,
                                 apr_size_t klen, apr_uint64_t hash,
                                 apr_time_t now, apr_pool_t *p,
                                 const isr_copy_t *copy, isr_entry_t *e);

/* Decode a stored record (isr_record_t | key | headers | body | alts |
 * tags) of exactly len bytes, e.g. a copy out of the ring: 1 when it is
 * well formed, has this hash and this key; then e->status, headers, hdrlen,
 * body and bodylen (alts, altlen and tags, taglen: NULL and 0 when absent)
 * point into buf, and e->born is set. 0 and
 * e untouched otherwise. Every length is checked
 * against len; buf need not be aligned. */
int isr_store_record_parse(const unsigned char *buf, apr_size_t len,
                           apr_uint64_t hash, const char *key, apr_size_t klen,
                           isr_entry_t *e);

/* What slot idx holds, for listings: lock-free and read-only (a purged
 * entry is reported ABSENT and left for a lookup to drop). FRESH, STALE and
 * EXPIRED copy the record into p (e as for a lookup, *pkey and *pklen its
 * key); PENDING, PASS and FAILED have no record; ABSENT for an empty slot
 * or one being written. */
isr_look_t isr_store_peek(const isr_zone_t *zone, apr_uint32_t idx,
                          apr_time_t now, apr_pool_t *p, isr_entry_t *e,
                          const char **pkey, apr_size_t *pklen);

/* 1 when e's lease holds refresh claims off now: a refresh under way or
 * queued, or the backoff after a failed one (isr_store_claim_refresh would
 * refuse). */
int isr_store_refresh_held(const isr_entry_t *e, apr_time_t now);

/* Claim the right to refresh a STALE entry: lock-free CAS on the lease.
 * Returns 1 with *please set when the caller owns the refresh. The lease is
 * marked queued (ISR_LEASE_QUEUED): it holds other refresh claims off, but
 * misses do not wait for it until isr_store_renew() says the job started. */
int isr_store_claim_refresh(isr_zone_t *zone, const isr_entry_t *e,
                            apr_time_t now, apr_interval_time_t hold,
                            apr_uint64_t *please);

/* Claim a synchronous revalidation of a STALE entry that may not be served
 * stale now (past its stale-while-revalidate window): OWNED with *please
 * set (a live lease: other requests wait for it), BUSY when a fetch is
 * under way (wait on e->slot, e->seq), BACKOFF inside the backoff after a
 * failed fetch, READY when the slot changed (look up again). A queued
 * refresh's lease or a dead owner's is taken over. Lock-free. */
isr_claim_t isr_store_claim_stale(isr_zone_t *zone, const isr_entry_t *e,
                                  apr_time_t now, apr_interval_time_t hold,
                                  apr_uint64_t *please);

/* Extend a lease the caller still holds on key `hash` to now + hold (a
 * queued refresh starting; the lease is no longer marked queued). Returns
 * 0, leaving *lease alone, when the lease was taken over meanwhile or the
 * slot holds another key now (lease words may repeat: the counter in them
 * is narrow): the caller must not fetch then. */
int isr_store_renew(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t hash,
                    apr_uint64_t *lease, apr_time_t now,
                    apr_interval_time_t hold);

/* Claim a synchronous fetch for an ABSENT/EXPIRED/FAILED/PENDING key
 * (takes the zone mutex). `hold` bounds the lease. */
isr_claim_t isr_store_claim_miss(isr_zone_t *zone, apr_uint64_t hash,
                                 apr_time_t now, apr_interval_time_t hold,
                                 apr_uint32_t *pslot, apr_uint32_t *pseq,
                                 apr_uint64_t *please);

/* 1 when the lease was taken for a fetch that has started (not queued), by
 * a process that is still alive and inside its deadline (waiters keep
 * waiting), else 0. */
int isr_store_lease_live(apr_uint64_t lease, apr_time_t now);

/* Store a fetched value for `key`, replacing any older version, and release
 * the caller's lease. APR_ENOSPC when the record can never fit this zone,
 * APR_EBUSY when no slot may take it now or when its fetch began before an
 * operation the purge table no longer remembers (isr_shm.h, freed_at),
 * APR_EEXIST when the key holds an answer newer than this one already (its
 * backend answered after v->born_at: nothing to replace); on failure the
 * caller still holds its lease (mark the key, back off or release). */
apr_status_t isr_store_publish(isr_zone_t *zone, apr_uint32_t slot,
                               apr_uint64_t lease, const char *key,
                               apr_size_t klen, apr_uint64_t hash,
                               const isr_value_t *v);

/* Mark the key uncacheable until `until` (waiters fetch directly). */
void isr_store_mark_pass(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t hash,
                         apr_uint64_t lease, apr_time_t until);

/* Mark a failed synchronous fetch at `now`: waiters of that fetch, and
 * requests until `until` (ISRErrorTTL), get the error. */
void isr_store_mark_failed(isr_zone_t *zone, apr_uint32_t slot,
                           apr_uint64_t hash, apr_uint64_t lease,
                           apr_time_t now, apr_time_t until);

/* After a failed refresh: keep the entry, hold refreshes off until `until`. */
void isr_store_backoff(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t lease,
                       apr_time_t until);

/* After a failed synchronous revalidation of a stale entry: no request
 * revalidates it again (isr_store_claim_stale says BACKOFF) nor refreshes
 * it before `until` (whole seconds, rounded up). */
void isr_store_remember_failure(isr_zone_t *zone, apr_uint32_t slot,
                                apr_uint64_t lease, apr_time_t until);

/* Give a lease back without a result. */
void isr_store_release(isr_zone_t *zone, apr_uint32_t slot, apr_uint64_t lease);

typedef enum {
    ISR_INVAL_NONE,    /* nothing servable was stored for the key */
    ISR_INVAL_DONE,    /* the entry is gone: the next request fetches */
    ISR_INVAL_WAIT     /* a fetch of the key is under way: wait on
                        * (*pslot, *pseq) a little, then call again */
} isr_inval_t;

/* Invalidate `key` (RFC 9111 4.4; takes the zone mutex): its stored answer
 * is never served again, fresh or stale. A fetch already under way when
 * the invalidation was asked for may carry the old answer and will still
 * publish it, so with `plive` (*plive 0 on the first call) the call
 * returns ISR_INVAL_WAIT and that fetch's lease in *plive while it runs;
 * called again with the same *plive once it has landed (or its lease ran
 * out), it drops what that fetch stored. A fetch started after the first
 * call (another lease) is not waited for. plive NULL: never waits. */
isr_inval_t isr_store_invalidate(isr_zone_t *zone, const char *key,
                                 apr_size_t klen, apr_uint64_t hash,
                                 apr_time_t now, apr_uint64_t *plive,
                                 apr_uint32_t *pslot, apr_uint32_t *pseq);

/* Count one event in this thread's stripe. */
void isr_store_count(isr_zone_t *zone, isr_stat_t what);

/* Add n to a counter in this thread's stripe. */
void isr_store_add(isr_zone_t *zone, isr_stat_t what, apr_uint64_t n);

/* Count a backend fetch that took `took` (the duration histogram). */
void isr_store_fetched(isr_zone_t *zone, apr_interval_time_t took);

/* A snapshot of the zone for status pages (lock-free, slightly stale). */
typedef struct {
    apr_uint64_t counts[ISR_STAT_COUNT];
    apr_uint32_t slots, slots_used;
    apr_uint64_t ring_size, ring_used;
} isr_store_info_t;

void isr_store_info(const isr_zone_t *zone, isr_store_info_t *info);

/* Sleep until the slot's seq moves away from `seq` or `max_wait` passes. */
void isr_store_wait(isr_zone_t *zone, apr_uint32_t slot, apr_uint32_t seq,
                    apr_interval_time_t max_wait);

#endif /* ISR_STORE_H */
