/* Multi-process stress of the store for invariant 1 (a reader never sees a
 * torn or wrong entry) and invariant 2 (a SIGKILLed writer leaves nothing
 * stuck: no lock held, no key claimed for ever).
 *
 * One anonymous shm zone and one global mutex are created before fork.
 * W writer processes claim and publish K keys over and over; each value's
 * status, headers and body are a function of (key, version) and its body
 * (1..64 KiB) carries the key index, the version and a checksum of the
 * rest, so the zone (small: eviction and wrap-around all the time) is
 * rewritten constantly. R reader processes look up random keys and check
 * every FRESH/STALE entry byte for byte. A victim writer is SIGKILLed (and
 * reaped) several times during the run and respawned; the others must go
 * on. Everything is bounded in time; a watchdog reports a deadlock.
 *
 * With -H n (scan mode) n hot keys are published before the run, the
 * writers flood the zone with one-hit keys instead (each key written once,
 * never read), and reader 0 reads the hot keys over and over: they must
 * survive (invariant 8). A SIGKILLed writer may cost at most the entry it
 * was moving, so a hot key lost more often than the victim was killed is a
 * failure; a lost one is put back.
 *
 *   stress_store [-t secs] [-w writers] [-r readers] [-k keys] [-z zone_kib]
 *                [-b max_body] [-x kills] [-s seed] [-H hot_keys]
 * Exit status 0 when every check passed.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "unit.h"

#define SEC    APR_USEC_PER_SEC
#define MAXB   (64 * 1024) /* largest body; -b lowers it */
#define BHDR   24 /* key u32, len u32, version u64, checksum u64 */
#define MAXPROC 64

typedef struct {
    volatile int stop;
    volatile int bad;              /* first failure wins */
    char badmsg[4096];
    apr_uint64_t lookups, hits, verified, fresh, stale, absent, expired,
                 pending, pass, failed;
    apr_uint64_t publishes, enospc, ebusy, claims_miss, claims_refresh,
                 busy, noslot, marks, backoffs, releases, waits;
    apr_uint64_t hot_reads, hot_lost, hot_raced;
    apr_uint64_t victim_in_store;  /* the victim is inside a store call */
    apr_uint64_t victim_ops;
    int holder;                    /* pid holding the zone mutex, or 0 */
    apr_uint64_t locks, lock_errors;
} stats_t;

static stats_t *st;
static int mypid;
/* In a victim that kills itself: SIGKILL when taking (or releasing) the
 * zone mutex for the n-th time, i.e. while holding it. */
static int die_at_lock, die_at_unlock;
static int nkeys = 300;
static int nhot;                   /* -H: hot keys nkeys .. nkeys + nhot - 1 */
static apr_uint32_t maxb = MAXB;
static tzone_t tz;

#define ADD(f, n) __atomic_fetch_add(&st->f, (apr_uint64_t)(n), __ATOMIC_RELAXED)

static void report_bad(const char *fmt, ...)
{
    int expect = 0;
    va_list ap;

    if (!__atomic_compare_exchange_n(&st->bad, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(st->badmsg, sizeof(st->badmsg), fmt, ap);
    va_end(ap);
    st->stop = 1;
}

static int key_of(char *buf, apr_size_t n, apr_uint32_t k)
{
    return snprintf(buf, n, "http://127.0.0.1/stress/%u", k);
}

/* Everything about a value follows from (key, version). Hot keys (scan
 * mode) are small, as the pages a site serves most usually are. */
static apr_uint32_t val_len(apr_uint32_t k, apr_uint64_t ver)
{
    apr_uint64_t s = ((apr_uint64_t)k * 0x9e3779b97f4a7c15ULL) ^ ver;
    int hot = k >= (apr_uint32_t)nkeys && k < (apr_uint32_t)(nkeys + nhot);
    return (apr_uint32_t)rng_range(&s, 1, hot && maxb > 2048 ? 2048 : maxb);
}

static int val_status(apr_uint32_t k, apr_uint64_t ver)
{
    return 200 + (int)((ver * 7 + k) % 300);
}

static apr_size_t val_headers(char *buf, apr_uint32_t k, apr_uint64_t ver)
{
    return (apr_size_t)snprintf(buf, 128, "X-Key%c%u%cX-Version%c%llu%c"
                                "Content-Type%capplication/x-stress", 0, k, 0,
                                0, (unsigned long long)ver, 0, 0) + 1;
}

static void val_body(unsigned char *buf, apr_uint32_t k, apr_uint64_t ver,
                     apr_uint32_t len)
{
    unsigned char hdr[BHDR];
    apr_uint64_t sum;

    rng_fill(ver ^ ((apr_uint64_t)k << 48), buf, len);
    if (len >= BHDR) {
        sum = fnv64(buf + BHDR, len - BHDR);
        memcpy(hdr, &k, 4);
        memcpy(hdr + 4, &len, 4);
        memcpy(hdr + 8, &ver, 8);
        memcpy(hdr + 16, &sum, 8);
        memcpy(buf, hdr, BHDR);
    }
}

static void hexdump(char *out, apr_size_t n, const void *p, apr_size_t len)
{
    const unsigned char *c = p;
    apr_size_t i, o = 0;

    for (i = 0; i < len && o + 4 < n; i++) {
        o += (apr_size_t)snprintf(out + o, n - o, "%02x%s", c[i],
                                  i % 16 == 15 ? "\n      " : " ");
    }
    out[o < n ? o : n - 1] = 0;
}

/* Checks one FRESH/STALE entry of key k. */
static int verify(const char *who, apr_uint32_t k, const isr_entry_t *e,
                  unsigned char *want)
{
    char hbuf[128], dump[512];
    const char *h = e->headers, *end = e->headers + e->hdrlen;
    unsigned long long ver = 0;
    unsigned kk = ~0u;
    apr_uint32_t len;
    apr_size_t hl, i;
    apr_uint64_t sum;

    /* Parse X-Key and X-Version out of "name\0value\0..." first. */
    if (e->hdrlen < 6 || end[-1] != 0 || strcmp(h, "X-Key") != 0
        || sscanf(h + 6, "%u", &kk) != 1) {
        goto bad_headers;
    }
    h += 6 + strlen(h + 6) + 1;
    if (h >= end || strcmp(h, "X-Version") != 0 || h + 10 >= end
        || sscanf(h + 10, "%llu", &ver) != 1) {
        goto bad_headers;
    }
    if (kk != k) {
        report_bad("%s: key %u got the headers of key %u (version %llu), "
                   "slot %u seq %u", who, k, kk, ver, e->slot, e->seq);
        return 0;
    }
    hl = val_headers(hbuf, k, ver);
    if (hl != e->hdrlen || memcmp(hbuf, e->headers, hl) != 0) {
        goto bad_headers;
    }
    if (e->status != val_status(k, ver)) {
        report_bad("%s: key %u version %llu: status %d, expected %d (torn "
                   "entry), slot %u seq %u", who, k, ver, e->status,
                   val_status(k, ver), e->slot, e->seq);
        return 0;
    }
    if ((apr_uint64_t)(e->fresh_until - e->fetched) != ver % 997
        || e->until - e->fetched != 30 * SEC) {
        report_bad("%s: key %u version %llu: slot times do not belong to "
                   "this version (fetched %lld fresh_until %lld until %lld)",
                   who, k, ver, (long long)e->fetched,
                   (long long)e->fresh_until, (long long)e->until);
        return 0;
    }
    len = val_len(k, (apr_uint64_t)ver);
    if (e->bodylen != len) {
        report_bad("%s: key %u version %llu: body of %zu bytes, expected %u, "
                   "slot %u seq %u", who, k, ver, (size_t)e->bodylen, len,
                   e->slot, e->seq);
        return 0;
    }
    if (len >= BHDR) {
        apr_uint32_t bk, bl;
        apr_uint64_t bv, bs;
        memcpy(&bk, e->body, 4);
        memcpy(&bl, e->body + 4, 4);
        memcpy(&bv, e->body + 8, 8);
        memcpy(&bs, e->body + 16, 8);
        sum = fnv64((const unsigned char *)e->body + BHDR, len - BHDR);
        if (bk != k || bl != len || bv != ver || bs != sum) {
            hexdump(dump, sizeof(dump), e->body, len < 64 ? len : 64);
            report_bad("%s: key %u version %llu: body says key %u len %u "
                       "version %llu checksum %016llx, checksum of the body "
                       "%016llx; slot %u seq %u; body starts\n      %s", who,
                       k, ver, bk, bl, (unsigned long long)bv,
                       (unsigned long long)bs, (unsigned long long)sum,
                       e->slot, e->seq, dump);
            return 0;
        }
    }
    val_body(want, k, ver, len);
    if (memcmp(want, e->body, len) != 0) {
        for (i = 0; i < len && want[i] == (unsigned char)e->body[i]; i++) {
        }
        hexdump(dump, sizeof(dump), e->body + (i & ~15u),
                len - (i & ~15u) < 64 ? len - (i & ~15u) : 64);
        report_bad("%s: key %u version %llu (%u bytes): body differs from "
                   "byte %zu (0x%02x, expected 0x%02x); slot %u seq %u; "
                   "bytes from %zu:\n      %s", who, k, ver, len, (size_t)i,
                   (unsigned char)e->body[i], want[i], e->slot, e->seq,
                   (size_t)(i & ~15u), dump);
        return 0;
    }
    return 1;

bad_headers:
    hexdump(dump, sizeof(dump), e->headers, e->hdrlen < 96 ? e->hdrlen : 96);
    report_bad("%s: key %u: headers (%zu bytes) do not parse or do not belong "
               "to version %llu (status %d, body %zu bytes), slot %u seq %u:\n"
               "      %s", who, k, (size_t)e->hdrlen, ver, e->status,
               (size_t)e->bodylen, e->slot, e->seq, dump);
    return 0;
}

/* The store's calls of the zone mutex go through these (the binary is
 * linked with -Wl,--wrap=apr_global_mutex_lock,--wrap=...unlock): the parent
 * sees who holds the mutex, to SIGKILL the victim while it does. */
apr_status_t __real_apr_global_mutex_lock(apr_global_mutex_t *m);
apr_status_t __real_apr_global_mutex_unlock(apr_global_mutex_t *m);
apr_status_t __wrap_apr_global_mutex_lock(apr_global_mutex_t *m);
apr_status_t __wrap_apr_global_mutex_unlock(apr_global_mutex_t *m);

apr_status_t __wrap_apr_global_mutex_lock(apr_global_mutex_t *m)
{
    apr_status_t rv = __real_apr_global_mutex_lock(m);

    if (st) {
        if (rv == APR_SUCCESS) {
            __atomic_store_n(&st->holder, mypid, __ATOMIC_SEQ_CST);
            ADD(locks, 1);
            if (die_at_lock > 0 && --die_at_lock == 0) {
                kill(mypid, SIGKILL); /* holding it, before any change */
            }
        }
        else {
            char eb[120];
            ADD(lock_errors, 1);
            report_bad("pid %d: apr_global_mutex_lock: %s (the mutex is not "
                       "robust after a holder was killed?)", mypid,
                       apr_strerror(rv, eb, sizeof(eb)));
        }
    }
    return rv;
}

apr_status_t __wrap_apr_global_mutex_unlock(apr_global_mutex_t *m)
{
    if (die_at_unlock > 0 && --die_at_unlock == 0) {
        kill(mypid, SIGKILL); /* holding it, after all the changes */
    }
    if (st) {
        __atomic_store_n(&st->holder, 0, __ATOMIC_SEQ_CST);
    }
    return __real_apr_global_mutex_unlock(m);
}

static void count_look(isr_look_t l)
{
    switch (l) {
    case ISR_LOOK_FRESH:   ADD(fresh, 1); break;
    case ISR_LOOK_STALE:   ADD(stale, 1); break;
    case ISR_LOOK_ABSENT:  ADD(absent, 1); break;
    case ISR_LOOK_EXPIRED: ADD(expired, 1); break;
    case ISR_LOOK_PENDING: ADD(pending, 1); break;
    case ISR_LOOK_PASS:    ADD(pass, 1); break;
    case ISR_LOOK_FAILED:  ADD(failed, 1); break;
    }
}

static void child_init(void)
{
    /* The proc mutex is inherited; child_init is what httpd children do. */
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    apr_global_mutex_child_init(&tz.z.mutex, NULL, p);
}

/* Publish version ver of key k now, the way the module does a miss: claim,
 * then publish. Returns the claim's outcome (ISR_CLAIM_READY: the key is
 * there after all, e.g. a lookup raced a writer moving it). */
static isr_claim_t put_key(apr_uint32_t k, apr_uint64_t ver)
{
    static unsigned char body[MAXB];
    char key[64], hdrs[128];
    int klen = key_of(key, sizeof(key), k);
    apr_uint64_t hash = isr_store_hash(&tz.z, key, (apr_size_t)klen), lease;
    apr_uint32_t slot, seq, len = val_len(k, ver);
    apr_time_t now = apr_time_now();
    isr_claim_t c;
    isr_value_t v = { 0 };

    c = isr_store_claim_miss(&tz.z, hash, now, 5 * SEC, &slot, &seq, &lease);
    if (c != ISR_CLAIM_OWNED) {
        return c;
    }
    val_body(body, k, ver, len);
    v.status = val_status(k, ver);
    v.headers = hdrs;
    v.hdrlen = val_headers(hdrs, k, ver);
    v.body = (const char *)body;
    v.bodylen = len;
    v.fetched = now;
    v.fresh_until = now + (apr_time_t)(ver % 997);
    v.stale_until = now + 30 * SEC;
    if (isr_store_publish(&tz.z, slot, lease, key, (apr_size_t)klen, hash, &v)
        != APR_SUCCESS) {
        isr_store_release(&tz.z, slot, lease);
        return ISR_CLAIM_NOSLOT;
    }
    return c;
}

/* Scan mode, reader 0: the hot keys must stay while the writers flood. A
 * lookup that finds no usable entry does what the module does, a miss
 * claim: READY means the key was there (the lookup met a writer mid-way),
 * OWNED means it was really gone. */
static void hot_reader(apr_time_t deadline)
{
    unsigned char *want = malloc(MAXB);
    char who[32], key[64];
    apr_uint64_t ver = 1000;
    apr_pool_t *p;
    unsigned long n = 0;

    snprintf(who, sizeof(who), "hot reader (pid %d)", (int)getpid());
    child_init();
    apr_pool_create(&p, NULL);
    while (!st->stop && apr_time_now() < deadline) {
        apr_uint32_t k = (apr_uint32_t)(nkeys + (int)(n++ % (unsigned)nhot));
        int klen = key_of(key, sizeof(key), k);
        isr_entry_t e;
        isr_look_t l = isr_store_lookup(&tz.z, key, (apr_size_t)klen,
                                        isr_store_hash(&tz.z, key,
                                                       (apr_size_t)klen),
                                        apr_time_now(), p, &e);
        ADD(hot_reads, 1);
        if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
            if (!verify(who, k, &e, want)) {
                break;
            }
            ADD(verified, 1);
        }
        else if (l != ISR_LOOK_PENDING) {
            if (put_key(k, ++ver) == ISR_CLAIM_READY) {
                ADD(hot_raced, 1);
            }
            else {
                ADD(hot_lost, 1);
            }
        }
        if ((n & 255) == 0) {
            apr_pool_clear(p);
        }
    }
    _exit(0);
}

static void reader(int id, apr_time_t deadline, apr_uint64_t seed)
{
    apr_uint64_t rs = seed;
    unsigned char *want = malloc(MAXB);
    char who[32], key[64];
    apr_pool_t *p;
    unsigned long n = 0;

    snprintf(who, sizeof(who), "reader %d (pid %d)", id, (int)getpid());
    child_init();
    apr_pool_create(&p, NULL);
    while (!st->stop) {
        apr_uint32_t k = (apr_uint32_t)(rng_next(&rs) % (apr_uint64_t)nkeys);
        isr_entry_t e;
        isr_look_t l;
        int klen = key_of(key, sizeof(key), k);
        apr_time_t now = apr_time_now();

        if ((++n & 63) == 0 && now > deadline) {
            break;
        }
        l = isr_store_lookup(&tz.z, key, (apr_size_t)klen,
                             isr_store_hash(&tz.z, key, (apr_size_t)klen), now,
                             p, &e);
        ADD(lookups, 1);
        count_look(l);
        if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
            ADD(hits, 1);
            if (!verify(who, k, &e, want)) {
                break;
            }
            ADD(verified, 1);
        }
        if ((n & 255) == 0) {
            apr_pool_clear(p);
        }
    }
    _exit(0);
}

/* One writer step on a random key: look up, claim, then publish (mostly),
 * mark, back off or release. */
static void writer(int id, apr_time_t deadline, apr_uint64_t seed,
                   int victim)
{
    apr_uint64_t rs = seed, counter = 0;
    unsigned char *body = malloc(MAXB), *want = malloc(MAXB);
    char who[40], key[64], hdrs[128];
    apr_pool_t *p;
    unsigned long n = 0;

    snprintf(who, sizeof(who), "%s %d (pid %d)", victim ? "victim" : "writer",
             id, (int)getpid());
    child_init();
    apr_pool_create(&p, NULL);
    while (!st->stop) {
        /* Scan mode: a key nobody wrote before and nobody will read. */
        apr_uint32_t k = nhot
            ? (apr_uint32_t)(nkeys + nhot) + 1000000u * (apr_uint32_t)id
              + (apr_uint32_t)(n % 1000000u)
            : (apr_uint32_t)(rng_next(&rs) % (apr_uint64_t)nkeys);
        int klen = key_of(key, sizeof(key), k), refresh = 0;
        apr_uint64_t hash = isr_store_hash(&tz.z, key, (apr_size_t)klen);
        apr_uint64_t lease = 0, ver, r;
        apr_uint32_t slot = 0, seq = 0, len;
        apr_time_t now = apr_time_now();
        isr_claim_t c;
        isr_entry_t e;
        isr_look_t l;

        if (now > deadline) {
            break;
        }
        if ((++n & 127) == 0) {
            apr_pool_clear(p);
        }
        if (nhot) {
            /* A flood, not a firehose: a few thousand new keys a second
             * still turn the ring over many times a second, while a hot
             * reader that the scheduler leaves out for a few ms does not
             * miss three turns in a row (what CLOCK forgives). */
            apr_sleep(200);
        }
        if (victim) {
            __atomic_store_n(&st->victim_in_store, 1, __ATOMIC_SEQ_CST);
            ADD(victim_ops, 1);
        }
        l = isr_store_lookup(&tz.z, key, (apr_size_t)klen, hash, now, p, &e);
        ADD(lookups, 1);
        count_look(l);
        if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
            ADD(hits, 1);
            if (!verify(who, k, &e, want)) {
                break;
            }
            ADD(verified, 1);
            if (!isr_store_claim_refresh(&tz.z, &e, now, 5 * SEC, &lease)) {
                goto next;
            }
            ADD(claims_refresh, 1);
            slot = e.slot;
            refresh = 1;
        }
        else if (l == ISR_LOOK_PASS) {
            goto next;
        }
        else {
            c = isr_store_claim_miss(&tz.z, hash, now, 5 * SEC, &slot, &seq,
                                     &lease);
            if (c == ISR_CLAIM_BUSY) {
                ADD(busy, 1);
                if (rng_next(&rs) % 8 == 0) {
                    isr_store_wait(&tz.z, slot, seq, 1000);
                    ADD(waits, 1);
                }
                goto next;
            }
            if (c == ISR_CLAIM_NOSLOT) {
                ADD(noslot, 1);
                goto next;
            }
            if (c != ISR_CLAIM_OWNED) {
                goto next;
            }
            ADD(claims_miss, 1);
        }

        r = rng_next(&rs) % 100;
        now = apr_time_now();
        if (r < 92) {
            isr_value_t v = { 0 };
            apr_status_t rv;
            ver = ((apr_uint64_t)(id + 1) << 40) | ++counter;
            len = val_len(k, ver);
            val_body(body, k, ver, len);
            v.status = val_status(k, ver);
            v.headers = hdrs;
            v.hdrlen = val_headers(hdrs, k, ver);
            v.body = (const char *)body;
            v.bodylen = len;
            v.fetched = now;
            v.fresh_until = now + (apr_time_t)(ver % 997);
            v.stale_until = now + 30 * SEC;
            rv = isr_store_publish(&tz.z, slot, lease, key, (apr_size_t)klen,
                                   hash, &v);
            if (rv == APR_SUCCESS) {
                ADD(publishes, 1);
            }
            else if (rv == APR_ENOSPC) {
                ADD(enospc, 1);
            }
            else {
                ADD(ebusy, 1);
            }
        }
        else if (r < 94) {
            isr_store_mark_pass(&tz.z, slot, hash, lease, now + 2000);
            ADD(marks, 1);
        }
        else if (r < 96) {
            isr_store_mark_failed(&tz.z, slot, hash, lease, now, now);
            ADD(marks, 1);
        }
        else if (r < 98 && refresh) {
            isr_store_backoff(&tz.z, slot, lease, now + 5000);
            ADD(backoffs, 1);
        }
        else {
            isr_store_release(&tz.z, slot, lease);
            ADD(releases, 1);
        }
next:
        if (victim) {
            __atomic_store_n(&st->victim_in_store, 0, __ATOMIC_SEQ_CST);
        }
    }
    _exit(0);
}

typedef struct {
    pid_t pid;
    char kind;  /* 'r', 'w', 'v' */
    int id;
} proc_t;

static proc_t procs[MAXPROC];
static int nprocs;

/* mode (victims only): 'P' the parent kills it at some moment, 'L' it
 * kills itself on taking the mutex, 'U' on releasing it. */
static pid_t spawn(char kind, int id, apr_time_t deadline, apr_uint64_t seed,
                   char mode)
{
    pid_t pid = fork();

    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        mypid = (int)getpid();
        if (mode == 'L') {
            die_at_lock = 1 + (int)(seed % 40);
        }
        else if (mode == 'U') {
            die_at_unlock = 1 + (int)(seed % 40);
        }
        if (kind == 'r' && id == 0 && nhot) {
            hot_reader(deadline);
        }
        if (kind == 'r') {
            reader(id, deadline, seed);
        }
        writer(id, deadline, seed, kind == 'v');
    }
    return pid;
}

static void usage(void)
{
    fprintf(stderr, "usage: stress_store [-t secs] [-w writers] [-r readers] "
            "[-k keys] [-z zone_kib] [-b max_body] [-x kills] [-s seed] "
            "[-H hot_keys]\n");
    exit(2);
}

int main(int argc, const char *const *argv)
{
    double secs = 5;
    int writers = 3, readers = 3, kills = 12, zone_kib = 1024, i, status;
    int killed = 0, killed_inside = 0, killed_holding = 0, rc = 0, alive;
    int victim_idx = -1, self_killed = 0;
    char vmode = 'P';
    static const char modes[] = "PLU";
    apr_uint64_t seed = 0;
    apr_time_t start, deadline, next_kill, hard;
    apr_uint64_t pub_at_last_kill = 0;
    apr_pool_t *pool;
    const char *zc;

    setvbuf(stdout, NULL, _IONBF, 0);
    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc || argv[i][0] != '-') {
            usage();
        }
        switch (argv[i][1]) {
        case 't': secs = atof(argv[++i]); break;
        case 'w': writers = atoi(argv[++i]); break;
        case 'r': readers = atoi(argv[++i]); break;
        case 'k': nkeys = atoi(argv[++i]); break;
        case 'b': maxb = (apr_uint32_t)atoi(argv[++i]); break;
        case 'z': zone_kib = atoi(argv[++i]); break;
        case 'x': kills = atoi(argv[++i]); break;
        case 's': seed = strtoull(argv[++i], NULL, 0); break;
        case 'H': nhot = atoi(argv[++i]); break;
        default: usage();
        }
    }
    if (writers < 1 || readers < 0 || writers + readers + 1 > MAXPROC
        || nkeys < 1 || secs <= 0 || maxb < 1 || maxb > MAXB || nhot < 0
        || (nhot && readers < 1)) {
        usage();
    }
    if (seed == 0) {
        seed = (apr_uint64_t)apr_time_now() ^ ((apr_uint64_t)getpid() << 32);
    }
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    apr_pool_create(&pool, NULL);
    st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(st, 0, sizeof(*st));
    if (tzone_make(pool, (apr_size_t)zone_kib * 1024, seed, &tz)
        != APR_SUCCESS) {
        fprintf(stderr, "cannot make a %d KiB zone\n", zone_kib);
        return 2;
    }
    printf("stress: %.1f s, %d writers + 1 victim killed %d times, %d readers, "
           "%d keys, zone %d KiB (ring %llu bytes, %u slots), bodies 1..%d "
           "bytes, mutex %s, seed 0x%llx\n", secs, writers, kills, readers,
           nkeys, zone_kib, (unsigned long long)tz.z.hdr->ring_size,
           tz.z.nslots, maxb, apr_global_mutex_name(tz.z.mutex),
           (unsigned long long)seed);
    /* Last resort if the parent itself blocks on the mutex at the end. */
    alarm((unsigned)secs + 30);
    for (i = 0; i < nhot; i++) {
        char key[64];
        int klen = key_of(key, sizeof(key), (apr_uint32_t)(nkeys + i));
        isr_entry_t e;
        isr_look_t l = ISR_LOOK_ABSENT;
        if (put_key((apr_uint32_t)(nkeys + i), 1) == ISR_CLAIM_OWNED) {
            l = isr_store_lookup(&tz.z, key, (apr_size_t)klen,
                                 isr_store_hash(&tz.z, key, (apr_size_t)klen),
                                 apr_time_now(), pool, &e);
        }
        if (l != ISR_LOOK_FRESH && l != ISR_LOOK_STALE) {
            printf("FAIL: hot key %d not stored\n", i);
            return 1;
        }
    }

    start = apr_time_now();
    deadline = start + (apr_time_t)(secs * SEC);
    hard = deadline + 10 * SEC;
    for (i = 0; i < writers; i++) {
        procs[nprocs].kind = 'w';
        procs[nprocs].id = i;
        procs[nprocs].pid = spawn('w', i, deadline, seed * 31 + i, 0);
        nprocs++;
    }
    for (i = 0; i < readers; i++) {
        procs[nprocs].kind = 'r';
        procs[nprocs].id = i;
        procs[nprocs].pid = spawn('r', i, deadline, seed * 37 + i, 0);
        nprocs++;
    }
    if (kills > 0) {
        victim_idx = nprocs++;
        procs[victim_idx].kind = 'v';
        procs[victim_idx].id = writers;
        procs[victim_idx].pid = spawn('v', writers, deadline, seed * 41,
                                      vmode);
    }

    /* Kill the victim `kills` times during the first 70% of the run, each
     * time at a random moment, preferably while it is inside the store. */
    next_kill = start + (apr_time_t)(secs * 0.7 * SEC) / (kills + 1);
    for (;;) {
        apr_time_t now = apr_time_now();
        alive = 0;
        for (i = 0; i < nprocs; i++) {
            if (procs[i].pid > 0) {
                pid_t w = waitpid(procs[i].pid, &status, WNOHANG);
                if (w == procs[i].pid && i == victim_idx && vmode != 'P'
                    && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
                    /* Killed itself holding the zone mutex. */
                    killed++;
                    self_killed++;
                    killed_inside++;
                    killed_holding++;
                    pub_at_last_kill = st->publishes;
                    procs[i].pid = 0;
                    if (killed < kills && now < deadline - SEC / 2) {
                        vmode = modes[killed % 3];
                        procs[i].pid = spawn('v', writers, deadline,
                                             seed * 41 + (apr_uint64_t)killed,
                                             vmode);
                        alive++;
                    }
                    next_kill = now + (apr_time_t)(secs * 0.7 * SEC)
                                      / (kills + 1);
                }
                else if (w == procs[i].pid) {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        printf("child %c%d (pid %d) ended abnormally: "
                               "status 0x%x\n", procs[i].kind, procs[i].id,
                               (int)procs[i].pid, status);
                        rc = 1;
                    }
                    procs[i].pid = 0;
                }
                else {
                    alive++;
                }
            }
        }
        if (alive == 0 || st->bad) {
            break;
        }
        if (now > hard) {
            printf("DEADLOCK? children still running %.1f s after the end of "
                   "the run:", (double)(now - deadline) / SEC);
            for (i = 0; i < nprocs; i++) {
                if (procs[i].pid > 0) {
                    printf(" %c%d(pid %d)", procs[i].kind, procs[i].id,
                           (int)procs[i].pid);
                }
            }
            printf("\n");
            rc = 1;
            break;
        }
        if (victim_idx >= 0 && killed < kills && now >= next_kill
            && procs[victim_idx].pid > 0 && vmode == 'P') {
            /* Wait (up to 50 ms) for a moment the victim holds the zone
             * mutex, else kill it wherever it is. */
            int inside, holding;
            pid_t vp = procs[victim_idx].pid;
            apr_time_t until = apr_time_now() + 20 * 1000;
            while (__atomic_load_n(&st->holder, __ATOMIC_SEQ_CST) != (int)vp
                   && apr_time_now() < until) {
            }
            kill(vp, SIGKILL);
            holding = __atomic_load_n(&st->holder, __ATOMIC_SEQ_CST) == (int)vp;
            inside = (int)__atomic_load_n(&st->victim_in_store,
                                          __ATOMIC_SEQ_CST);
            /* Reap at once: a zombie still answers kill(pid, 0). */
            waitpid(procs[victim_idx].pid, &status, 0);
            killed++;
            killed_inside += inside;
            killed_holding += holding;
            pub_at_last_kill = st->publishes;
            vmode = modes[killed % 3];
            procs[victim_idx].pid = spawn('v', writers, deadline,
                                          seed * 41 + (apr_uint64_t)killed,
                                          vmode);
            next_kill = now + (apr_time_t)(secs * 0.7 * SEC) / (kills + 1);
        }
        apr_sleep(2000);
    }
    st->stop = 1;
    for (i = 0; i < nprocs; i++) {
        if (procs[i].pid > 0) {
            if (rc || st->bad) {
                kill(procs[i].pid, SIGKILL);
            }
            waitpid(procs[i].pid, &status, 0);
        }
    }

    printf("stress: %.2f s; lookups %llu, hits %llu, verified %llu "
           "(fresh %llu stale %llu absent %llu expired %llu pending %llu "
           "pass %llu failed %llu)\n",
           (double)(apr_time_now() - start) / SEC,
           (unsigned long long)st->lookups, (unsigned long long)st->hits,
           (unsigned long long)st->verified, (unsigned long long)st->fresh,
           (unsigned long long)st->stale, (unsigned long long)st->absent,
           (unsigned long long)st->expired, (unsigned long long)st->pending,
           (unsigned long long)st->pass, (unsigned long long)st->failed);
    printf("stress: publishes %llu (enospc %llu, ebusy %llu), claims miss "
           "%llu refresh %llu, busy %llu, waits %llu, noslot %llu, marks "
           "%llu, backoffs %llu, releases %llu; ring wrapped %llu times\n",
           (unsigned long long)st->publishes, (unsigned long long)st->enospc,
           (unsigned long long)st->ebusy,
           (unsigned long long)st->claims_miss,
           (unsigned long long)st->claims_refresh,
           (unsigned long long)st->busy, (unsigned long long)st->waits,
           (unsigned long long)st->noslot, (unsigned long long)st->marks,
           (unsigned long long)st->backoffs, (unsigned long long)st->releases,
           (unsigned long long)(tz.z.hdr->head / tz.z.hdr->ring_size));
    printf("stress: victim killed %d times (%d by itself; %d inside a store "
           "call, %d holding the zone mutex), %llu publishes after the last "
           "kill; mutex taken %llu times, %llu errors\n", killed, self_killed,
           killed_inside, killed_holding,
           (unsigned long long)(st->publishes - pub_at_last_kill),
           (unsigned long long)st->locks, (unsigned long long)st->lock_errors);

    if (nhot) {
        printf("stress: scan mode: %d hot keys read %llu times while the "
               "writers flooded the zone with one-hit keys; lost %llu times "
               "(victim killed %d times), %llu lookups met a writer and were "
               "answered after a miss claim\n", nhot,
               (unsigned long long)st->hot_reads,
               (unsigned long long)st->hot_lost, killed,
               (unsigned long long)st->hot_raced);
    }
    if (st->bad) {
        printf("FAIL: %s\n", st->badmsg);
        return 1;
    }
    if (nhot && (st->hot_lost > (apr_uint64_t)killed || st->hot_reads == 0)) {
        printf("FAIL: hot keys were lost %llu times under a flood of one-hit "
               "keys, more than the %d kills can explain\n",
               (unsigned long long)st->hot_lost, killed);
        return 1;
    }
    if (rc) {
        printf("FAIL: see above\n");
        return 1;
    }
    /* The mutex is usable after the kills (robust), and with every writer
     * gone the layout invariants hold. */
    if (apr_global_mutex_lock(tz.z.mutex) != APR_SUCCESS) {
        printf("FAIL: cannot take the zone mutex after the run\n");
        return 1;
    }
    zc = zone_check(&tz.z);
    apr_global_mutex_unlock(tz.z.mutex);
    if (zc) {
        printf("FAIL: zone_check after the run: %s\n", zc);
        return 1;
    }
    if (kills > 0 && killed < (kills + 1) / 2) {
        printf("FAIL: victim killed only %d of %d times\n", killed, kills);
        return 1;
    }
    if (kills >= 3 && killed_holding == 0) {
        printf("FAIL: the victim was never killed while holding the zone "
               "mutex: the robust-mutex path was not exercised\n");
        return 1;
    }
    if (st->verified == 0 || st->publishes == 0
        || (kills > 0 && st->publishes == pub_at_last_kill)) {
        printf("FAIL: no progress (verified %llu, publishes %llu)\n",
               (unsigned long long)st->verified,
               (unsigned long long)st->publishes);
        return 1;
    }
    /* Every key: absent or exactly right, and claimable in the end (no
     * lease stuck beyond its deadline). */
    {
        unsigned char *want = malloc(MAXB);
        apr_time_t late = apr_time_now() + 6 * SEC;
        char key[64];
        int stuck = 0;
        for (i = 0; i < nkeys; i++) {
            int klen = key_of(key, sizeof(key), (apr_uint32_t)i);
            apr_uint64_t hash = isr_store_hash(&tz.z, key, (apr_size_t)klen);
            apr_uint64_t lease;
            apr_uint32_t slot, seq;
            isr_entry_t e;
            isr_look_t l = isr_store_lookup(&tz.z, key, (apr_size_t)klen, hash,
                                            apr_time_now(), pool, &e);
            if ((l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE)
                && !verify("final sweep", (apr_uint32_t)i, &e, want)) {
                printf("FAIL: %s\n", st->badmsg);
                return 1;
            }
            if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
                if (!isr_store_claim_refresh(&tz.z, &e, late, SEC, &lease)) {
                    stuck++;
                }
                else {
                    isr_store_release(&tz.z, e.slot, lease);
                }
            }
            else {
                isr_claim_t c = isr_store_claim_miss(&tz.z, hash, late + 31 * SEC,
                                                     SEC, &slot, &seq, &lease);
                if (c == ISR_CLAIM_BUSY) {
                    stuck++;
                }
                else if (c == ISR_CLAIM_OWNED) {
                    isr_store_release(&tz.z, slot, lease);
                }
            }
        }
        free(want);
        if (stuck) {
            printf("FAIL: %d keys could not be claimed after every lease "
                   "deadline passed\n", stuck);
            return 1;
        }
    }
    printf("stress: ok\n");
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
