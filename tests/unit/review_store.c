/* Review of the store changes 1e63cbc..8b2206c (CLOCK on the ring, lease
 * word with queued bit and counter, SipHash, SIGTERM/SIGHUP blocked around
 * the zone mutex): cases that FAIL on today's code, one per finding.
 *
 *   review_store            run every case (exit 1 while any finding stands)
 *   review_store NAME...    run the named cases only (big_record_truncated
 *                           runs only when named: 10 GiB zone)
 *
 * Built by tests/unit/Makefile like test_store, plus src/isr_refresh.c (the
 * per-child refresh thread pool) with httpd's headers and stubs for the two
 * httpd symbols it uses, for case sigterm_while_waiting_for_zone_lock. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "unit.h"
#include "isr.h"
#include "isr_refresh.h"

#include "cases.h"

#define KiB 1024

/* ---- what src/isr_refresh.c needs from httpd ----------------------------- */

module AP_MODULE_DECLARE_DATA isr_module;

void ap_log_error_(const char *file, int line, int module_index, int level,
                   apr_status_t status, const server_rec *s,
                   const char *fmt, ...)
{
    (void)file; (void)line; (void)module_index; (void)level; (void)status;
    (void)s; (void)fmt;
}

/* Values as test_store.c's VAL, always a 200 without headers. */
#define RVAL(body, len, fetched, fresh, stale) \
    VAL(200, NULL, 0, (body), (len), (fetched), (fresh), (stale))

/* ---- finding A: CLOCK's move budget evicts hot records ------------------ */

/* Hot keys, each hit every `every` flood records and checked byte for byte. */
typedef struct {
    tzone_t *t;
    apr_pool_t *p;
    int n;
    char **keys;
    unsigned char **bodies;
    apr_size_t *lens;
    int every;
    apr_time_t now;
    int lost_key, lost_at;
} hotset_t;

static int hotset_hit(hotset_t *h, int at)
{
    isr_entry_t e;
    int k;

    for (k = 0; k < h->n; k++) {
        isr_look_t l = LOOK(&h->t->z, h->keys[k], h->now, h->p, &e);
        if (l != ISR_LOOK_FRESH
            || e.bodylen != h->lens[k]
            || memcmp(e.body, h->bodies[k], e.bodylen) != 0) {
            h->lost_key = k;
            h->lost_at = at;
            return 1;
        }
    }
    return 0;
}

/* Publish the hot keys back to back (as a warm-up or a deploy does), hit
 * them, then flood the zone with `rings` rings' worth of one-hit records of
 * `each` bytes, hitting every hot key between every `every` flood records.
 * Returns 0 when every hot key survived; else 1 with lost_key/lost_at set. */
static int scan_with_hotset(hotset_t *h, apr_size_t each, int rings,
                            apr_pool_t *pool)
{
    unsigned char *body = apr_palloc(pool, each);
    apr_uint64_t done = 0, bytes = (apr_uint64_t)rings * h->t->z.hdr->ring_size;
    char key[96];
    isr_value_t v = { 0 };
    int i, k;

    for (k = 0; k < h->n; k++) {
        v = RVAL(h->bodies[k], h->lens[k], h->now, h->now + 3600 * SEC,
                h->now + 7200 * SEC);
        if (put(&h->t->z, h->keys[k], &v, h->now, pool) != APR_SUCCESS) {
            h->lost_key = k;
            h->lost_at = -1;
            return 1;
        }
    }
    for (k = 0; k < 3; k++) {
        if (hotset_hit(h, -1)) {
            return 1;
        }
    }
    rng_fill(99, body, each);
    for (i = 0; done < bytes; i++) {
        snprintf(key, sizeof(key), "http://127.0.0.1/scan/%d", i);
        v = RVAL(body, each, h->now, h->now + 3600 * SEC, h->now + 7200 * SEC);
        if (put(&h->t->z, key, &v, h->now, pool) != APR_SUCCESS) {
            h->lost_key = -1;
            h->lost_at = i;
            return 1;
        }
        done += each;
        if (i % h->every == h->every - 1 && hotset_hit(h, i)) {
            return 1;
        }
    }
    return 0;
}

static void hotset_init(hotset_t *h, tzone_t *t, apr_pool_t *p, int n,
                        apr_size_t len, int every, const char *tag)
{
    int k;

    memset(h, 0, sizeof(*h));
    h->t = t;
    h->p = p;
    h->n = n;
    h->every = every;
    h->now = apr_time_now();
    h->keys = apr_pcalloc(p, n * sizeof(char *));
    h->bodies = apr_pcalloc(p, n * sizeof(unsigned char *));
    h->lens = apr_pcalloc(p, n * sizeof(apr_size_t));
    for (k = 0; k < n; k++) {
        h->keys[k] = apr_psprintf(p, "http://127.0.0.1/%s/hot/%d", tag, k);
        h->lens[k] = len;
        h->bodies[k] = apr_palloc(p, len);
        rng_fill(1000 + k, h->bodies[k], len);
    }
}

/* A1. One hot key whose record is larger than the move budget, max(4 x the
 * allocating record, 1 MiB): it is never given a second chance and a flood
 * of small one-hit keys evicts it on the tail's first pass, hit or not. A
 * body of exactly the default ISRMaxObjectSize (1M) is such a record. A
 * 900 KiB hot body in the same zone survives (control). */
static int case_hot_record_over_move_budget(apr_pool_t *p)
{
    tzone_t t;
    hotset_t h;
    int r;

    /* Control: 900 KiB, under the budget. */
    CHECK_RV(tzone_make(p, 4 * MiB, 201, &t));
    hotset_init(&h, &t, p, 1, 900 * KiB, 16, "ctl");
    r = scan_with_hotset(&h, 16 * KiB, 3, p);
    CHECKF(r == 0, "control: the 900 KiB hot key was lost at flood record "
           "%d", h.lost_at);

    /* 1 MiB body, the default ISRMaxObjectSize: record > 1 MiB budget. */
    CHECK_RV(tzone_make(p, 4 * MiB, 202, &t));
    hotset_init(&h, &t, p, 1, 1 * MiB, 16, "big");
    r = scan_with_hotset(&h, 16 * KiB, 3, p);
    CHECKF(r == 0, "a hot key with a 1 MiB body (hit 3 times, then every 16 "
           "flood records) was evicted by a flood of 16 KiB one-hit keys at "
           "flood record %d (ring %llu KiB): its record is larger than the "
           "move budget, so it never gets a second chance", h.lost_at,
           (unsigned long long)t.z.hdr->ring_size / KiB);
    CHECK_ZONE(&t.z);
    return 0;
}

/* A2. A hot set published back to back that is larger than the budget (12
 * keys of 200 KiB, 2.4 MiB of an 8 MiB zone, each hit between every 8
 * flood records): the first allocation that meets the run at the tail moves
 * 1 MiB of it, then evicts the next hot record because the budget is spent. */
static int case_hot_run_over_move_budget(apr_pool_t *p)
{
    tzone_t t;
    hotset_t h;
    int r;

    CHECK_RV(tzone_make(p, 8 * MiB, 203, &t));
    hotset_init(&h, &t, p, 12, 200 * KiB, 8, "run");
    r = scan_with_hotset(&h, 16 * KiB, 2, p);
    CHECKF(r == 0, "hot key %d of 12 (200 KiB each, all hit between every 8 "
           "flood records) was evicted at flood record %d: a run of hot "
           "records longer than the 1 MiB move budget loses the record the "
           "budget runs out on", h.lost_key, h.lost_at);
    CHECK_ZONE(&t.z);
    return 0;
}

/* ---- finding B: the 9-bit lease counter wraps --------------------------- */

/* B. isr_shm.h: "the counter changes with every claim of a process, so a
 * lease given back and taken again within one second is a new value (no
 * ABA...)". It has 9 bits: the 512th claim of a process after a claim, with
 * the same deadline second, makes the same lease word again. A refresh job
 * still queued for key K on slot s (lease L1) then renews into the refresh
 * claim the same child made for key Y after s was given to Y: the job of K
 * takes Y's lease and Y's own job is refused and never refreshes Y.
 *
 * All at one `now` (one second of a busy event-MPM child): 512 claims per
 * second per child are a few hundred requests per second per thread pool. */
static int case_lease_counter_wraps(apr_pool_t *p)
{
    tzone_t t;
    char *keys[CAND + 1];
    apr_time_t base = apr_time_now() / SEC * SEC + 10 * SEC;
    apr_time_t now = base + 100 * 1000;      /* .100 s */
    apr_time_t later = base + 600 * 1000;    /* .600 s, same second */
    apr_uint64_t l1, l2, lm, lx, hy;
    apr_uint32_t slot, seq, b[2], mb[2];
    isr_entry_t e;
    isr_value_t v = { 0 };
    int i, k, others;

    CHECK_RV(tzone_make(p, 4 * MiB, 207, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, CAND + 1, keys), CAND + 1);
    /* Key 0 is stale now; keys 1..15 of its two buckets are fresh and hit
     * twice, so that key 0 (hit once, by the lookup that found it stale) is
     * the slot the next new key of these buckets takes. */
    for (i = 0; i < CAND; i++) {
        v = RVAL(keys[i], strlen(keys[i]), base - 20 * SEC,
                i ? base + 3600 * SEC : base - 10 * SEC, base + 3600 * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, base - 20 * SEC, p));
        if (i) {
            CHECK(LOOK(&t.z, keys[i], now, p, &e) == ISR_LOOK_FRESH);
            CHECK(LOOK(&t.z, keys[i], now, p, &e) == ISR_LOOK_FRESH);
        }
    }
    CHECK(LOOK(&t.z, keys[0], now, p, &e) == ISR_LOOK_STALE);
    slot = e.slot;
    /* A request finds key 0 stale: its refresh job is queued with l1. */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l1), 1);

    /* A miss for key Y (keys[16]) takes key 0's slot, fetches, publishes an
     * answer that is stale at once (max-age=0 with stale-while-revalidate). */
    hy = H(&t.z, keys[CAND]);
    CHECK_EQ(isr_store_claim_miss(&t.z, hy, now, 10 * SEC, &slot, &seq, &lm),
             ISR_CLAIM_OWNED);
    CHECKF(slot == e.slot, "key Y went to slot %u, not key 0's slot %u", slot,
           e.slot);
    v = RVAL("Y", 1, now, now, now + 3600 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, lm, keys[CAND], strlen(keys[CAND]),
                               hy, &v));

    /* Other misses of this child in the same second, on keys of other
     * buckets: 510 claims (key 0's refresh and Y's miss make 512). */
    isr_store_buckets(&t.z, H(&t.z, keys[0]), b);
    for (i = 0, others = 0; others < 510; i++) {
        char *k2 = apr_psprintf(p, "http://127.0.0.1/other/%d", i);
        apr_uint64_t h2 = H(&t.z, k2), l3;
        apr_uint32_t s3, q3;
        isr_store_buckets(&t.z, h2, mb);
        if (mb[0] == b[0] || mb[0] == b[1] || mb[1] == b[0] || mb[1] == b[1]) {
            continue;
        }
        CHECK_EQ(isr_store_claim_miss(&t.z, h2, now, 10 * SEC, &s3, &q3, &l3),
                 ISR_CLAIM_OWNED);
        isr_store_release(&t.z, s3, l3);
        others++;
    }

    /* Half a second later a request finds Y stale: Y's refresh is queued. */
    CHECK(LOOK(&t.z, keys[CAND], later, p, &e) == ISR_LOOK_STALE);
    CHECK_EQ(e.slot, slot);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, later, 10 * SEC, &l2), 1);
    printf("    key 0's queued lease %016llx, key Y's %016llx\n",
           (unsigned long long)l1, (unsigned long long)l2);

    /* Key 0's job starts first. Its slot is another key's now, and the
     * lease there is Y's job's: it must not get it. */
    lx = l1;
    k = isr_store_renew(&t.z, slot, H(&t.z, keys[0]), &lx, later, 10 * SEC);
    CHECKF(k == 0, "the queued job of key 0 renewed the lease of key Y's "
           "refresh on slot %u (both %016llx: 9-bit counter wrapped after "
           "512 claims in one second); Y's own job is now refused",
           slot, (unsigned long long)l1);
    lx = l2;
    CHECK_EQ(isr_store_renew(&t.z, slot, hy, &lx, later, 10 * SEC), 1);
    CHECK_ZONE(&t.z);
    return 0;
}

/* ---- finding C: SIGTERM lands on a refresh thread ------------------------ */

/* C. zone_lock() blocks SIGTERM and SIGHUP in the thread that takes the zone
 * mutex. Linux delivers a process-directed signal to any thread that does
 * not block it, so while a prefork child's main thread waits for (or holds)
 * the mutex, the parent's SIGTERM runs prefork's handler (just_die ->
 * clean_child_exit -> apr_pool_destroy(pchild)) on one of the child's
 * refresh threads (created by isr_refresh.c, signals unblocked). pchild's
 * pre-cleanup refresh_stop() then destroys the thread pool from inside one
 * of its own threads and waits for itself for ever: the child never exits
 * and is SIGKILLed by the parent later, the hang the change meant to remove.
 *
 * A forked "child" runs isr_refresh_start() (one refresh thread, idle after
 * one task), installs a handler that does what prefork's just_die does, and
 * calls isr_store_claim_miss() while the test holds the zone mutex. */
typedef struct {
    volatile pid_t handler_tid;   /* thread the SIGTERM handler ran on */
    volatile pid_t refresh_tid;   /* the refresh thread */
    volatile int ran;
} sigshared_t;

static sigshared_t *sig_sh;
static apr_pool_t *sig_pchild;

static void sig_task(void *baton)
{
    (void)baton;
    sig_sh->refresh_tid = (pid_t)syscall(SYS_gettid);
    __atomic_store_n(&sig_sh->ran, 1, __ATOMIC_RELEASE);
}

/* prefork.c: just_die() -> clean_child_exit(0). */
static void sig_just_die(int sig)
{
    (void)sig;
    sig_sh->handler_tid = (pid_t)syscall(SYS_gettid);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    apr_pool_destroy(sig_pchild);
    _exit(0);
}

static int case_sigterm_while_waiting_for_zone_lock(apr_pool_t *p)
{
    tzone_t t;
    apr_shm_t *shm;
    int go[2], ready[2], status = 0, i;
    pid_t pid;
    char c;

    CHECK_RV(tzone_make(p, 1 * MiB, 211, &t));
    CHECK_RV(apr_shm_create(&shm, sizeof(sigshared_t), NULL, p));
    sig_sh = apr_shm_baseaddr_get(shm);
    memset((void *)sig_sh, 0, sizeof(*sig_sh));
    CHECK(pipe(go) == 0 && pipe(ready) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        apr_uint64_t lease;
        apr_uint32_t slot, seq;

        apr_pool_create(&sig_pchild, NULL);
        if (isr_refresh_start(sig_pchild, 1, NULL) != APR_SUCCESS
            || isr_refresh_submit(sig_task, NULL) != APR_SUCCESS) {
            _exit(4);
        }
        while (!__atomic_load_n(&sig_sh->ran, __ATOMIC_ACQUIRE)) {
            usleep(1000);
        }
        signal(SIGHUP, sig_just_die);
        signal(SIGTERM, sig_just_die);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) {
            _exit(5);
        }
        /* The test holds the mutex: this waits in zone_lock(). */
        isr_store_claim_miss(&t.z, H(&t.z, "http://127.0.0.1/sig"),
                             apr_time_now(), 10 * SEC, &slot, &seq, &lease);
        /* Here only when the handler did not run on this thread: a prefork
         * child would go on serving. Pending signals were taken at the
         * unlock, so give them a moment. */
        sleep(5);
        _exit(3);
    }
    close(go[0]);
    close(ready[1]);
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(apr_global_mutex_lock(t.z.mutex) == APR_SUCCESS);
    CHECK(write(go[1], "g", 1) == 1);
    usleep(200 * 1000);          /* the child now waits for the mutex */
    kill(pid, SIGTERM);          /* httpd stop / restart */
    usleep(200 * 1000);
    apr_global_mutex_unlock(t.z.mutex);
    for (i = 0; i < 300; i++) {  /* up to 3 s */
        if (waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
        usleep(10 * 1000);
    }
    if (i == 300) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAILF("the child did not exit within 3 s of SIGTERM: prefork's "
              "handler ran on thread %d (main %d, refresh thread %d) and "
              "apr_pool_destroy(pchild) hung in refresh_stop()",
              (int)sig_sh->handler_tid, (int)pid, (int)sig_sh->refresh_tid);
    }
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "child status %d (3: main thread went on after SIGTERM)", status);
    CHECKF(sig_sh->handler_tid == pid, "SIGTERM ran on thread %d, not the "
           "main thread %d", (int)sig_sh->handler_tid, (int)pid);
    return 0;
}

/* ---- finding D: record sizes are 32-bit, the ring is not ---------------- */

/* D. A zone may be 64G (ISRCacheZone), so the ring, and half of it, which
 * isr_store_publish() accepts as a record, exceed 4 GiB; but the record's
 * `total`, `bodylen` and the slot's `rec_len` are 32-bit and publish casts
 * without a check. A body of 4 GiB + 64 KiB in a 10 GiB zone is accepted
 * (APR_SUCCESS) and then read back as a 64 KiB body: a wrong body served as
 * FRESH, and the ring's tail walk later lands inside the record. Not
 * reachable through the module today (a miss buffers at most 256M), but the
 * store's contract ("APR_ENOSPC when the record can never fit") is broken.
 * Needs 10 GiB of address space and about 5 GiB of memory for a few
 * seconds: run only when named (review_store big_record_truncated). */
static int case_big_record_truncated(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/huge";
    apr_size_t big = ((apr_size_t)4 << 30) + 64 * KiB;
    apr_uint64_t hash, lease;
    apr_uint32_t slot, seq;
    apr_time_t now = apr_time_now();
    isr_entry_t e;
    isr_value_t v = { 0 };
    apr_status_t rv;
    void *body;
    isr_look_t l;

    CHECK_RV(tzone_make(p, (apr_size_t)10 << 30, 213, &t));
    CHECK(t.z.hdr->ring_size / 2 >= big + 4096);
    /* Never written: every page is the zero page, no memory. */
    body = mmap(NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS
                | MAP_NORESERVE, -1, 0);
    CHECK(body != MAP_FAILED);
    hash = H(&t.z, key);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq,
                                  &lease), ISR_CLAIM_OWNED);
    v = RVAL(body, big, now, now + 3600 * SEC, now + 7200 * SEC);
    rv = isr_store_publish(&t.z, slot, lease, key, strlen(key), hash, &v);
    munmap(body, big);
    if (rv == APR_ENOSPC) {
        return 0;   /* refused: what the contract says */
    }
    CHECK_RV(rv);
    l = LOOK(&t.z, key, now, p, &e);
    CHECKF(l != ISR_LOOK_FRESH || e.bodylen == big,
           "a %zu-byte body was published and is served FRESH as %zu bytes "
           "(record total %u, slot rec_len %u)", (size_t)big,
           (size_t)e.bodylen, ((isr_record_t *)(t.z.ring
                                + t.z.slots[e.slot].rec_off))->total,
           t.z.slots[e.slot].rec_len);
    CHECK_ZONE(&t.z);
    return 0;
}

/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*fn)(apr_pool_t *p);
} cases[] = {
    {"hot_record_over_move_budget", case_hot_record_over_move_budget},
    {"hot_run_over_move_budget", case_hot_run_over_move_budget},
    {"lease_counter_wraps", case_lease_counter_wraps},
    {"sigterm_while_waiting_for_zone_lock",
     case_sigterm_while_waiting_for_zone_lock},
};

/* Run only when named (heavy). */
static const struct {
    const char *name;
    int (*fn)(apr_pool_t *p);
} named_only[] = {
    {"big_record_truncated", case_big_record_truncated},
};

int main(int argc, const char *const *argv)
{
    int failed = 0, ran = 0, i, a;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, "apr_app_initialize failed\n");
        return 2;
    }
    atexit(apr_terminate);
    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        int want = argc == 1;
        for (a = 1; a < argc; a++) {
            want |= strcmp(argv[a], cases[i].name) == 0;
        }
        if (want) {
            failed += run_case(cases[i].name, cases[i].fn);
            ran++;
        }
    }
    for (i = 0; i < (int)(sizeof(named_only) / sizeof(named_only[0])); i++) {
        for (a = 1; a < argc; a++) {
            if (strcmp(argv[a], named_only[i].name) == 0) {
                failed += run_case(named_only[i].name, named_only[i].fn);
                ran++;
            }
        }
    }
    printf("%d cases, %d failed\n", ran, failed);
    return failed || ran == 0 ? 1 : 0;
}
