/* Crash injection at every instruction of one publish (review of the CLOCK
 * ring, src/isr_ring.c): a child process publishes one record into a zone
 * whose ring is full of hot and cold records (so the publish evicts, moves
 * hot records to the head, writes SKIP fillers); the parent single-steps it
 * with ptrace and, at every instruction boundary where the zone's metadata
 * changed (and every 64 instructions in between), takes a copy of the
 * segment, which is what a SIGKILL at that instruction would leave, and
 * checks on the copy:
 *   1. every reader gets the right body or none (no torn or wrong body);
 *   2. the ring between tail and head parses and every VALID slot with an
 *      even seq points inside it at a record of its own (zone_check);
 *   3. a later writer recovers: a ring's worth of publishes on the copy
 *      leaves a zone that checks, with every reader still right.
 *
 *   review_crash [scenarios [first-seed]]
 *       default: 3 directed scenarios (hot records moved with a SKIP filler,
 *       in place and overlapping), then 12 random ones from seed 1
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/user.h>

#include "unit.h"

#define SEC APR_USEC_PER_SEC
#define NKEYS 400
#define HOT 24
#define DIRECTED 1000000  /* seeds from here: directed scenarios */

static unsigned char *body_buf;

static apr_size_t body_make(apr_uint32_t id, apr_uint32_t ver,
                            apr_size_t len)
{
    rng_fill(((apr_uint64_t)id << 32) ^ ver ^ 0x5bd1e995u, body_buf, len);
    if (len >= 12) {
        memcpy(body_buf, &id, 4);
        memcpy(body_buf + 4, &ver, 4);
        memcpy(body_buf + 8, &len, 4);
    }
    return len;
}

static void key_of(apr_uint32_t id, char *buf, apr_size_t n)
{
    snprintf(buf, n, "http://127.0.0.1/c/%u", id);
}

typedef struct {
    apr_uint32_t ver[NKEYS];      /* latest published version, 0: none */
    apr_uint32_t len[NKEYS];
    apr_uint32_t alt_ver, alt_len;  /* the version in flight (key `alt`) */
    int alt;
} model_t;

static int body_ok(const isr_entry_t *e, apr_uint32_t id, apr_uint32_t ver,
                   apr_uint32_t len)
{
    if (e->bodylen != len) {
        return 0;
    }
    body_make(id, ver, len);
    return memcmp(e->body, body_buf, len) == 0;
}

/* 1: every key reads as its latest version, the in-flight one, or absent. */
static const char *check_readers(isr_zone_t *z, const model_t *m,
                                 apr_time_t now, apr_pool_t *p)
{
    static char msg[256];
    char key[64];
    isr_entry_t e;
    apr_uint32_t id;

    for (id = 0; id < NKEYS; id++) {
        isr_look_t l;
        key_of(id, key, sizeof(key));
        l = isr_store_lookup(z, key, strlen(key),
                             isr_store_hash(z, key, strlen(key)), now, p, &e);
        if (l != ISR_LOOK_FRESH && l != ISR_LOOK_STALE) {
            continue;
        }
        if ((m->ver[id] && body_ok(&e, id, m->ver[id], m->len[id]))
            || ((int)id == m->alt && body_ok(&e, id, m->alt_ver, m->alt_len))) {
            continue;
        }
        snprintf(msg, sizeof(msg), "key %u: a wrong body of %zu bytes "
                 "(latest version %u, %u bytes)", id, (size_t)e.bodylen,
                 m->ver[id], m->len[id]);
        return msg;
    }
    return NULL;
}

/* Publish body_buf as it is (make == 0) or made for (id, ver, len). */
static int publish_body(isr_zone_t *z, apr_uint32_t id, apr_uint32_t ver,
                        apr_uint32_t len, apr_time_t now, apr_time_t stale,
                        apr_pool_t *p, int make)
{
    char key[64];
    apr_uint64_t h, lease = 0;
    apr_uint32_t slot = 0, seq;
    isr_entry_t e;
    isr_value_t v = { 0 };
    isr_look_t l;

    key_of(id, key, sizeof(key));
    h = isr_store_hash(z, key, strlen(key));
    l = isr_store_lookup(z, key, strlen(key), h, now, p, &e);
    if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
        slot = e.slot;
    }
    else if (isr_store_claim_miss(z, h, now, 30 * SEC, &slot, &seq, &lease)
             != ISR_CLAIM_OWNED) {
        return -1;
    }
    memset(&v, 0, sizeof(v));
    v.status = 200;
    v.body = (const char *)body_buf;
    v.bodylen = make ? body_make(id, ver, len) : len;
    v.fetched = now;
    v.fresh_until = now + 3600 * SEC;
    v.stale_until = stale;
    return isr_store_publish(z, slot, lease, key, strlen(key), h, &v)
           == APR_SUCCESS ? 0 : -1;
}

static int publish(isr_zone_t *z, apr_uint32_t id, apr_uint32_t ver,
                   apr_uint32_t len, apr_time_t now, apr_time_t stale,
                   apr_pool_t *p)
{
    return publish_body(z, id, ver, len, now, stale, p, 1);
}

/* 3: a ring's worth of later publishes on the copy, then checks again. */
static const char *check_recovery(isr_zone_t *z, model_t *m, apr_time_t now,
                                  apr_pool_t *p)
{
    static char msg[320];
    apr_uint64_t done = 0, rs = z->hdr->ring_size;
    apr_uint32_t id = NKEYS - 1;
    const char *err;
    int i;

    for (i = 0; done < rs; i++) {
        if (publish(z, id, 1000000 + i, 3000, now, now + 3600 * SEC, p) == 0) {
            m->ver[id] = 1000000 + i;
            m->len[id] = 3000;
        }
        done += 3000;
        if ((err = zone_check(z))) {
            snprintf(msg, sizeof(msg), "after %d recovery publishes: %s", i,
                     err);
            return msg;
        }
    }
    if ((err = check_readers(z, m, now, p))) {
        snprintf(msg, sizeof(msg), "after recovery: %s", err);
        return msg;
    }
    return NULL;
}

static int scenario(apr_pool_t *p, apr_uint64_t seed, unsigned long *steps,
                    unsigned long *checks)
{
    tzone_t t;
    apr_global_mutex_t *mx2;
    apr_uint64_t rng = fnv64((const unsigned char *)&seed, sizeof(seed));
    apr_time_t now = apr_time_now();
    model_t m, m2;
    unsigned char *copy, *meta_prev;
    apr_size_t meta_len;
    apr_uint32_t id, ver = 1, len;
    isr_zone_t z2;
    isr_entry_t e;
    char key[64];
    pid_t pid;
    int i, st;
    apr_pool_t *cp;
    isr_store_info_t before, after;
    apr_uint64_t laps;

    if (tzone_make(p, 256 * 1024, seed, &t) != APR_SUCCESS
        || apr_global_mutex_create(&mx2, NULL, APR_LOCK_DEFAULT, p)
           != APR_SUCCESS) {
        fprintf(stderr, "zone setup failed\n");
        return 1;
    }
    memset(&m, 0, sizeof(m));
    m.alt = -1;
    if (seed >= DIRECTED) {
        /* A hot record at the tail, the head 512 bytes before the end of
         * the ring, the ring full: the publish moves the hot record with a
         * SKIP filler first (variant 0: onto itself at 0; 1: after a 2 KiB
         * cold record, overlapping; 2: two hot records). */
        int variant = (int)(seed - DIRECTED);
        apr_uint64_t rs = t.z.hdr->ring_size, freeb, want, rec;
        apr_uint32_t cold = HOT;
        if (variant == 1) {
            key_of(cold, key, sizeof(key));
            if (publish(&t.z, cold, ver, 2048 - (apr_uint32_t)sizeof(isr_record_t) - (apr_uint32_t)strlen(key),
                        now, now + 3600 * SEC, p) == 0) {
                m.ver[cold] = ver;
                m.len[cold] = 2048 - (apr_uint32_t)sizeof(isr_record_t) - (apr_uint32_t)strlen(key);
            }
            ver++;
            cold++;
        }
        for (id = 0; id < (variant == 2 ? 2u : 1u); id++) {
            if (publish(&t.z, id, ver, 8000, now, now + 3600 * SEC, p) == 0) {
                m.ver[id] = ver;
                m.len[id] = 8000;
            }
            ver++;
            key_of(id, key, sizeof(key));
            for (i = 0; i < 3; i++) {
                isr_store_lookup(&t.z, key, strlen(key),
                                 isr_store_hash(&t.z, key, strlen(key)), now,
                                 p, &e);
            }
        }
        for (;;) {
            freeb = rs - (t.z.hdr->head - t.z.hdr->tail);
            if (freeb <= 512 || cold >= NKEYS - 3) {
                break;
            }
            want = freeb - 512;
            rec = want >= 2048 + 128 ? 2048 : want;
            if (rec < 128) {
                break;
            }
            key_of(cold, key, sizeof(key));
            len = (apr_uint32_t)(rec - (apr_uint32_t)sizeof(isr_record_t) - strlen(key));
            if (publish(&t.z, cold, ver, len, now, now + 3600 * SEC, p) == 0) {
                m.ver[cold] = ver;
                m.len[cold] = len;
            }
            ver++;
            cold++;
        }
    }
    else {
        /* Random history: hot keys republished and hit, cold one-hit keys, some
         * entries near or past the end of their stale window. */
        for (i = 0; i < 600; i++) {
            apr_time_t stale;
            id = rng_next(&rng) % 3 ? HOT + rng_next(&rng) % (NKEYS - HOT - 1)
                                    : rng_next(&rng) % HOT;
            len = (apr_uint32_t)rng_range(&rng, 16, id < HOT ? 9000 : 6000);
            stale = now + (rng_next(&rng) % 8 ? 3600 : (apr_int64_t)
                           rng_range(&rng, 0, 4)) * SEC;
            if (publish(&t.z, id, ver, len, now, stale, p) == 0) {
                m.ver[id] = ver;
                m.len[id] = len;
            }
            ver++;
            if (id < HOT || rng_next(&rng) % 4 == 0) {
                int h = (int)rng_range(&rng, 0, 3);
                key_of(id, key, sizeof(key));
                while (h--) {
                    isr_store_lookup(&t.z, key, strlen(key),
                                     isr_store_hash(&t.z, key, strlen(key)), now,
                                     p, &e);
                }
            }
        }
    }
    if (zone_check(&t.z)) {
        fprintf(stderr, "seed %llu: zone bad before the traced publish: %s\n",
                (unsigned long long)seed, zone_check(&t.z));
        return 1;
    }
    /* Let some short stale windows run out. */
    if (seed < DIRECTED && rng_next(&rng) % 2) {
        apr_sleep(1200 * 1000);
    }
    now = apr_time_now();
    /* The traced publish: a hot key's new version or a new key, up to a
     * quarter of the ring. */
    id = rng_next(&rng) % 2 ? (apr_uint32_t)(rng_next(&rng) % HOT)
                            : NKEYS - 2;
    len = (apr_uint32_t)rng_range(&rng, 1000, t.z.hdr->ring_size / 4);
    if (seed >= DIRECTED) {
        id = NKEYS - 2;
        key_of(id, key, sizeof(key));
        len = 4096 - (apr_uint32_t)sizeof(isr_record_t) - (apr_uint32_t)strlen(key);
    }
    m.alt = (int)id;
    m.alt_ver = ver;
    m.alt_len = len;

    body_make(id, ver, len);   /* before the fork: not traced */
    isr_store_info(&t.z, &before);
    laps = t.z.hdr->head / t.z.hdr->ring_size;
    pid = fork();
    if (pid < 0) {
        return 1;
    }
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        _exit(publish_body(&t.z, id, ver, len, now, now + 3600 * SEC, p, 0)
              ? 7 : 0);
    }
    waitpid(pid, &st, 0);
    meta_len = t.z.hdr->ring_off;
    meta_prev = malloc(meta_len);
    copy = NULL;
    if (posix_memalign((void **)&copy, 4096, t.size) || !meta_prev) {
        return 1;
    }
    memcpy(meta_prev, t.base, meta_len);
    apr_pool_create(&cp, p);
    for (;;) {
        int changed;
        const char *err = NULL;

        if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) < 0) {
            perror("PTRACE_SINGLESTEP");
            return 1;
        }
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            break;
        }
        (*steps)++;
        changed = memcmp(meta_prev, t.base, meta_len) != 0;
        if (!changed && *steps % 64) {
            continue;
        }
        if (changed) {
            memcpy(meta_prev, t.base, meta_len);
        }
        (*checks)++;
        /* What a SIGKILL here leaves. */
        memcpy(copy, t.base, t.size);
        memset(&z2, 0, sizeof(z2));
        if (isr_store_attach(&z2, copy, t.size) != APR_SUCCESS) {
            err = "attach failed";
        }
        z2.mutex = mx2;
        z2.name = "copy";
        m2 = m;
        if (!err) {
            err = check_readers(&z2, &m2, now, cp);
        }
        if (!err) {
            err = zone_check(&z2);
        }
        if (!err) {
            err = check_recovery(&z2, &m2, now, cp);
        }
        apr_pool_clear(cp);
        if (err) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, pid, NULL, &regs);
            fprintf(stderr, "seed %llu: killed after %lu instructions of the "
                    "publish (rip %llx): %s\n", (unsigned long long)seed,
                    *steps, (unsigned long long)regs.rip, err);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 1;
        }
    }
    free(meta_prev);
    free(copy);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "seed %llu: the traced publish failed (%d)\n",
                (unsigned long long)seed, st);
        return 1;
    }
    m.ver[id] = ver;
    m.len[id] = len;
    isr_store_info(&t.z, &after);
    printf("  seed %llu: %u-byte publish moved %llu records, evicted %llu, "
           "%s the end of the ring\n", (unsigned long long)seed, len,
           (unsigned long long)(after.counts[ISR_STAT_SECOND_CHANCE]
                                - before.counts[ISR_STAT_SECOND_CHANCE]),
           (unsigned long long)(after.counts[ISR_STAT_EVICT]
                                - before.counts[ISR_STAT_EVICT]),
           t.z.hdr->head / t.z.hdr->ring_size != laps ? "crossed"
                                                      : "did not cross");
    if (zone_check(&t.z) || check_readers(&t.z, &m, now, p)) {
        fprintf(stderr, "seed %llu: bad after the publish\n",
                (unsigned long long)seed);
        return 1;
    }
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    int n = argc > 1 ? atoi(argv[1]) : 12, i, failed = 0;
    apr_uint64_t first = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    unsigned long steps = 0, checks = 0;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    atexit(apr_terminate);
    body_buf = malloc(256 * 1024);
    /* The directed scenarios first (a move with a SKIP filler), unless a
     * first seed is given. */
    for (i = 0; argc <= 2 && i < 3; i++) {
        apr_pool_create(&p, NULL);
        steps = checks = 0;
        failed += scenario(p, DIRECTED + i, &steps, &checks);
        printf("directed %d: %lu instructions, %lu crash points checked\n",
               i, steps, checks);
        apr_pool_destroy(p);
    }
    for (i = 0; i < n; i++) {
        steps = checks = 0;
        apr_pool_create(&p, NULL);
        if (scenario(p, first + i, &steps, &checks)) {
            failed++;
        }
        printf("scenario %llu: %lu instructions, %lu crash points checked\n",
               (unsigned long long)(first + i), steps, checks);
        apr_pool_destroy(p);
    }
    printf("crash: %d scenarios, %d failed\n", n, failed);
    return failed ? 1 : 0;
}
