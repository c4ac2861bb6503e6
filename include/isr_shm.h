/* The shared-memory layout of one cache zone. Everything any process reads
 * from the segment is defined here; offsets are relative to the segment
 * start (or to the ring), never pointers, because every child maps the
 * segment at its own address.
 *
 *   offset 0            +--------------------------------------------+
 *                       | isr_shm_header_t (magic, layout, sizes,    |
 *                       |   128-bit SipHash key, ring head/tail)     |
 *   stats_off (64-alig) +--------------------------------------------+
 *                       | isr_stats_t[ISR_STAT_STRIPES]: counters,   |
 *                       |   one stripe per group of threads so hits  |
 *                       |   do not all write one cache line          |
 *   purge_off (64-alig) +--------------------------------------------+
 *                       | isr_purge_head_t: the operation sequence,  |
 *                       |   purge-all and revalidate-all marks       |
 *                       | isr_purge_bucket_t[purge_buckets]: when    |
 *                       |   each tag, path prefix or URL was last    |
 *                       |   purged or revalidated (isr_purge.h)      |
 *   tags_off (64-align) +--------------------------------------------+
 *                       | apr_uint64_t tags[nbuckets * 8]: the hash  |
 *                       |   of each slot, one cache line per bucket, |
 *                       |   so a lookup reads one line per bucket    |
 *   slots_off (64-alig) +--------------------------------------------+
 *                       | isr_slot_t[nbuckets * ISR_BUCKET_WAYS]     |
 *                       |   64 bytes each; a key lives in one of the |
 *                       |   16 slots of its two buckets (two-choice  |
 *                       |   hashing: a new key goes to the emptier)  |
 *   ring_off (64-alig)  +--------------------------------------------+
 *                       | ring of records, ring_size bytes:          |
 *                       |   isr_record_t | key | headers | body |    |
 *                       |   alternates (ISRCompress, isr_compress.h) |
 *                       |   (each padded to ISR_REC_ALIGN; a record  |
 *                       |   never wraps: a SKIP filler covers the    |
 *                       |   end of the ring instead)                 |
 *   size                +--------------------------------------------+
 *
 * Who writes what:
 * - slot fields other than `lease` and `ref`, the tags, the records, and
 *   the ring head/tail are written only under the zone mutex. A tag is a
 *   hint for finding a slot; the slot's own `hash`, read under its seqlock,
 *   decides. A writer makes the
 *   slot's `seq` odd, changes the slot, and makes it even again (seqlock).
 * - `lease` is changed only by atomic read-modify-writes (claims need no
 *   lock). A writer that gives a slot to another key resets the lease
 *   inside the slot's seqlock section, so a claim whose compare-and-swap
 *   read that reset sees the new seq when it checks the slot again.
 * - the purge table is written only under the zone mutex, in the order
 *   that keeps lock-free readers conservative (see src/isr_purge.c).
 * - `ref` is a hint: hits raise it (plain relaxed store, only when it
 *   changes), the ring's tail and the bucket victim choice lower it.
 * Readers take no lock: they read `seq`, the slot's fields (its `hash`
 * included) and copy the record out, then check `seq` again. A record's
 * bytes are reused only after the slot pointing to it was unpublished or
 * moved (its seq bumped), with a release fence before the reuse, so a
 * reader never keeps a torn copy.
 *
 * The lease word (0 = none):
 *
 *   63            32 31              10   9   8       0
 *   +---------------+------------------+---+---------+
 *   | deadline, sec | owner pid        | Q | counter |
 *   +---------------+------------------+---+---------+
 *
 * The deadline is in whole seconds (rounded up). pid 0 is not an owner: it
 * marks the retry backoff after a failed refresh. Q is set while a refresh
 * waits in its child's queue: the lease holds other refresh claims off (one
 * refresh per key) but is not live to misses, waiters or eviction until the
 * job starts and renews it (Q cleared). The counter changes with every claim
 * of a process, so a lease given back and taken again within one second is a
 * new value (no ABA for an old holder's compare-and-swap). Linux pids are
 * below 2^22 (PID_MAX_LIMIT).
 *
 * Eviction is CLOCK on the ring, so that a flood of one-hit keys (a scan)
 * does not push out the keys in use: `ref` counts hits (saturating at
 * ISR_REF_MAX). When the ring needs room, a record at the tail whose slot is
 * VALID, points at it, is not past its stale window and has ref > 0 is moved
 * to the head with ref - 1 (second chance) instead of dropped; one-hit
 * records and expired entries go. Moves are bounded per allocation (then
 * the tail is evicted whatever it holds) and done in place: the slot's seq
 * is made odd, a SKIP filler is written at the head if the record would
 * wrap, the tail moves past the old copy first, then the bytes move
 * (memmove: the target overlaps only free space and the old copy), then
 * the head, then rec_off and seq.
 *
 * Crash safety: a record is written completely before `head` moves past
 * it, and a moving record leaves the ring before its new copy is written,
 * so the ring between tail and head always parses. A slot left odd by
 * a writer that died is repaired by the next writer that meets it. A
 * lease names its owner's pid and a deadline: a dead or late owner's claim
 * can be taken over.
 */
#ifndef ISR_SHM_H
#define ISR_SHM_H

#include <apr.h>

#define ISR_SHM_MAGIC   0x31525349u /* "ISR1" */
#define ISR_SHM_LAYOUT  9u          /* bump on any change to this file */
#define ISR_BUCKET_WAYS 8
#define ISR_REC_ALIGN   64
#define ISR_REC_MAGIC   0x43455249u /* "IREC" */
#define ISR_SKIP_MAGIC  0x50494b53u /* "SKIP" */
#define ISR_REF_MAX     3u          /* hits a slot's `ref` counts up to */

/* Slot states. */
#define ISR_SLOT_EMPTY   0u /* free */
#define ISR_SLOT_PENDING 1u /* a miss is being fetched; no record yet */
#define ISR_SLOT_VALID   2u /* rec_off/rec_len hold the current record */
#define ISR_SLOT_PASS    3u /* uncacheable until `until`: fetch directly */
#define ISR_SLOT_FAILED  4u /* the last miss fetch failed at `until` */

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint64_t size;        /* whole segment, bytes */
    apr_uint64_t seed[2];     /* SipHash-2-4 key, random per segment */
    apr_uint64_t stats_off;
    apr_uint64_t tags_off;
    apr_uint64_t slots_off;
    apr_uint64_t ring_off;
    apr_uint64_t ring_size;   /* multiple of ISR_REC_ALIGN */
    apr_uint32_t nbuckets;    /* power of two */
    apr_uint32_t purge_buckets; /* power of two */
    apr_uint64_t purge_off;
    /* Ring positions are logical and only grow; physical = pos % ring_size.
     * Written under the zone mutex only. */
    apr_uint64_t head;
    apr_uint64_t tail;
    apr_int64_t created;      /* apr_time_t */
    /* Bytes the ring may still move to its head as second chances: each
     * allocation adds 4x its size (capped at half the ring), each move
     * spends its size. Carried across allocations, so a run of hot records
     * longer than one allocation's share still gets moved, while the moving
     * stays a bounded multiple of what is written. Zone mutex only. */
    apr_uint64_t move_credit;
    /* When a child last began (then finished) writing the zone to its
     * persist= file (isr_persist.h): children compare-and-swap it, so that
     * one of them writes per persist_every. 0 until the first time. */
    apr_int64_t persist_at;
    apr_uint64_t health_off;  /* one isr_health_t per slot */
} isr_shm_header_t;

typedef struct {
    apr_uint32_t seq;         /* seqlock, odd while written; futex word */
    apr_uint32_t state;       /* ISR_SLOT_* */
    apr_uint64_t hash;        /* SipHash-2-4 of the key; 0 = none */
    apr_uint64_t lease;       /* ISR_LEASE_MAKE(...), see above; 0 = none */
    apr_uint64_t rec_off;     /* record offset inside the ring */
    apr_uint32_t rec_len;     /* record length incl. padding */
    apr_uint32_t ref;         /* CLOCK: hits since the record was last
                               * written or moved, 0..ISR_REF_MAX */
    apr_int64_t fresh_until;  /* apr_time_t */
    apr_int64_t until;        /* VALID: stale_until; PASS/FAILED: see above */
    apr_int64_t fetched;      /* apr_time_t the backend answered */
} isr_slot_t;

typedef struct {
    apr_uint32_t magic;       /* ISR_REC_MAGIC or ISR_SKIP_MAGIC */
    apr_uint32_t total;       /* bytes incl. this header and padding */
    apr_uint32_t slot;        /* index of the slot it was published to */
    apr_uint32_t status;      /* HTTP status */
    apr_uint64_t hash;
    apr_int64_t fetched;
    apr_uint32_t keylen;
    apr_uint32_t hdrlen;      /* "name\0value\0" pairs */
    apr_uint32_t bodylen;
    apr_uint32_t altlen;      /* the body in other codings (after it) */
    apr_int64_t swr_until;    /* served stale with a background refresh
                               * until then (the slot's fresh_until and
                               * until bound the whole life) */
    apr_int64_t sie_until;    /* served stale when revalidation fails */
    apr_uint64_t born;        /* the zone's operation sequence when the
                               * fetch that made it began (isr_purge.h) */
    apr_uint32_t taglen;      /* the tag block (isr_purge.h, after alts) */
    apr_uint32_t reserved;
} isr_record_t;

/* Per-key refresh health (GET <admin>/entries): how the key's last
 * background refresh or warm ended, next to the slot it was made for.
 * Plain 32-bit stores by the refreshing thread, read without a lock: a
 * reader may see a mix of two notes (it is a report, never a decision);
 * `key` tells whether the note is the slot's present key's. */
#define ISR_HEALTH_OK           1u /* stored */
#define ISR_HEALTH_NOT_MODIFIED 2u /* 304: the stored answer renewed */
#define ISR_HEALTH_FAILED       3u /* no answer to store: status or error */
#define ISR_HEALTH_NOT_STORED   4u /* fetched, not stored (zone, newer) */
#define ISR_HEALTH_UNCACHEABLE  5u /* the answer may not be stored */

#define ISR_HEALTH_ERR_STATUS   1u /* an answer of `status` */
#define ISR_HEALTH_ERR_TIMEOUT  2u
#define ISR_HEALTH_ERR_CONNECT  3u
#define ISR_HEALTH_ERR_OTHER    4u

typedef struct {
    apr_uint32_t key;         /* low 32 bits of the key's hash; 0: none */
    apr_uint32_t at;          /* when it ended (apr_time_sec) */
    apr_uint32_t status;      /* the backend's status, 0: none */
    apr_uint16_t result;      /* ISR_HEALTH_* */
    unsigned char error;      /* ISR_HEALTH_ERR_*, 0: none */
    unsigned char failures;   /* failures in a row, up to 255 */
} isr_health_t;               /* 16 bytes */

/* Counters (relaxed atomic adds; a reader sums the stripes and accepts
 * slightly stale values, as mod_status does with the scoreboard). */
typedef enum {
    ISR_STAT_HIT, ISR_STAT_STALE, ISR_STAT_MISS, ISR_STAT_WAIT,
    ISR_STAT_ERROR, ISR_STAT_STORE, ISR_STAT_PASS, ISR_STAT_REFRESH,
    ISR_STAT_REFRESH_FAIL, ISR_STAT_EVICT,
    ISR_STAT_SECOND_CHANCE,   /* records moved to the ring's head, not evicted */
    /* Bytes stored (ISRCompress): identity bodies, the identity bytes of
     * those that got a gzip (br) copy, and the copies. */
    ISR_STAT_BODY_BYTES, ISR_STAT_GZIP_SRC, ISR_STAT_GZIP_BYTES,
    ISR_STAT_BR_SRC, ISR_STAT_BR_BYTES,
    /* Purge and revalidate operations, and the entries a purge dropped
     * (counted when a lookup meets them). */
    ISR_STAT_PURGE_OPS, ISR_STAT_PURGED,
    /* Background refreshes stored (of them answered 304). */
    ISR_STAT_REFRESH_OK, ISR_STAT_REFRESH_304,
    /* Backend fetches: how many, their total time in microseconds, and
     * how many took at most each of ISR_FETCH_BOUNDS_US (not cumulative:
     * one bucket each; longer ones only in the count). */
    ISR_STAT_FETCHES, ISR_STAT_FETCH_USEC, ISR_STAT_FETCH_LE,
    ISR_STAT_COUNT = ISR_STAT_FETCH_LE + 11
} isr_stat_t;

#define ISR_STAT_STRIPES 16

#define ISR_FETCH_BUCKETS 11
#define ISR_FETCH_BOUNDS_US { 5000, 10000, 25000, 50000, 100000, 250000, \
                              500000, 1000000, 2500000, 5000000, 10000000 }

typedef struct {
    apr_uint64_t n[40];       /* ISR_STAT_COUNT used; five cache lines */
} isr_stats_t;

/* The purge table (isr_purge.h). An operation gets the next `seq`; a record
 * keeps the `seq` seen when its fetch began (`born`) and the hashes of its
 * tags, path prefixes and URL. It is purged (hard) or revalidated (soft)
 * when the zone, or one of its hashes, was since. A bucket keeps four
 * hashes; a way older than any live entry (max_span) is reused; a full
 * bucket of younger ways gives its oldest up into the floors, which then
 * stand for every hash of the bucket: over-invalidation, never a purge
 * forgotten. */
typedef struct {
    apr_uint64_t seq;         /* the last operation's number (release) */
    apr_uint64_t all_soft;    /* the last revalidate-all's (or purge-all's) */
    apr_uint64_t all_hard;    /* the last purge-all's */
    /* How long an entry can outlive the start of its fetch: the largest
     * stale_until - asked of any record published (zone mutex). A way whose
     * operation is older than that names no live entry any more: it is
     * reused without raising the floors. */
    apr_int64_t max_span;
    /* The newest operation time of a way so reused: a record whose fetch
     * began at or before it is not stored (it may predate a forgotten
     * operation). */
    apr_int64_t freed_at;
    apr_uint64_t evictions;   /* ways given up into the floors */
    apr_uint64_t pad[2];
} isr_purge_head_t;

#define ISR_PURGE_WAYS 4

typedef struct {
    apr_uint64_t hash;        /* 0: free */
    apr_uint64_t soft;        /* seq of its last revalidate or purge */
    apr_uint64_t hard;        /* seq of its last purge */
} isr_purge_way_t;

typedef struct {
    apr_uint64_t floor_soft;  /* the largest soft/hard of a way given up */
    apr_uint64_t floor_hard;
    isr_purge_way_t way[ISR_PURGE_WAYS];
    apr_uint32_t when[ISR_PURGE_WAYS]; /* each way's last operation, in
                                        * seconds (apr_time_sec) */
} isr_purge_bucket_t;         /* 128 bytes */

#define ISR_LEASE_PID_MASK 0x3fffffu               /* 22 bits */
#define ISR_LEASE_CTR_MASK 0x1ffu                  /* 9 bits */
#define ISR_LEASE_QUEUED   ((apr_uint64_t)1 << 9)

#define ISR_LEASE_MAKE(deadline_sec, pid, ctr) \
    (((apr_uint64_t)(apr_uint32_t)(deadline_sec) << 32) \
     | ((apr_uint64_t)((apr_uint32_t)(pid) & ISR_LEASE_PID_MASK) << 10) \
     | ((apr_uint64_t)(ctr) & ISR_LEASE_CTR_MASK))
#define ISR_LEASE_DEADLINE(l) ((apr_uint32_t)((l) >> 32))
#define ISR_LEASE_PID(l)      ((apr_uint32_t)((l) >> 10) & ISR_LEASE_PID_MASK)
#define ISR_LEASE_CTR(l)      ((apr_uint32_t)(l) & ISR_LEASE_CTR_MASK)
#define ISR_LEASE_IS_QUEUED(l) (((l) & ISR_LEASE_QUEUED) != 0)

#endif /* ISR_SHM_H */
