/* Unit tests of the shared-memory store (src/isr_store.c, src/isr_key.c).
 * One APR pool and one fresh zone per case. Times are passed explicitly as
 * `now`, relative to the real clock at the start of the case.
 *
 *   test_store            run every case
 *   test_store NAME...    run the named cases only
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>

#include "unit.h"

#include "cases.h"

static int body_in_shm(tzone_t *t, const void *p)
{
    const char *c = p, *b = t->base;
    return c >= b && c < b + t->size;
}

/* ------------------------------------------------------------------------ */

static int case_format_attach(apr_pool_t *p)
{
    tzone_t t;
    isr_zone_t z2;
    isr_shm_header_t *h, saved;
    static unsigned char small[64 * 1024];

    CHECK_RV(tzone_make(p, 4 * MiB, 0x1234, &t));
    h = t.z.hdr;
    CHECK_EQ(h->magic, ISR_SHM_MAGIC);
    CHECK_EQ(h->layout, ISR_SHM_LAYOUT);
    CHECK_EQ(h->size, t.size);
    CHECK_EQ(h->seed[0], 0x1234);
    CHECK_EQ(h->seed[1], 0x1234 ^ 0x9e3779b97f4a7c15ULL);
    CHECK(h->nbuckets >= 8 && (h->nbuckets & (h->nbuckets - 1)) == 0);
    CHECK_EQ(h->slots_off % ISR_REC_ALIGN, 0);
    CHECK_EQ(h->ring_off % ISR_REC_ALIGN, 0);
    CHECK_EQ(h->ring_size % ISR_REC_ALIGN, 0);
    CHECK(h->slots_off >= sizeof(*h));
    CHECK(h->slots_off + (apr_uint64_t)h->nbuckets * ISR_BUCKET_WAYS * 64
          <= h->ring_off);
    CHECK(h->ring_off + h->ring_size <= t.size);
    CHECK(h->ring_size >= 64 * 1024);
    CHECK_EQ(h->head, 0);
    CHECK_EQ(h->tail, 0);
    CHECK_EQ(t.z.nslots, h->nbuckets * ISR_BUCKET_WAYS);
    CHECK((char *)t.z.slots == (char *)t.base + h->slots_off);
    CHECK(t.z.ring == (unsigned char *)t.base + h->ring_off);
    for (apr_uint32_t i = 0; i < t.z.nslots; i++) {
        CHECK(t.z.slots[i].state == ISR_SLOT_EMPTY && t.z.slots[i].hash == 0
              && t.z.slots[i].seq == 0 && t.z.slots[i].lease == 0);
    }
    CHECK_ZONE(&t.z);

    /* A second handle on the same segment (another child) sees the same. */
    memset(&z2, 0, sizeof(z2));
    CHECK_RV(isr_store_attach(&z2, t.base, t.size));
    CHECK(z2.hdr == t.z.hdr && z2.slots == t.z.slots && z2.ring == t.z.ring
          && z2.nslots == t.z.nslots);
    CHECK_EQ(isr_store_hash(&z2, "k", 1), isr_store_hash(&t.z, "k", 1));

    /* Not ours: wrong magic, layout, size. The handle is left alone. */
    saved = *h;
    memset(&z2, 0, sizeof(z2));
    h->magic = 0x12345678u;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    CHECK(z2.hdr == NULL);
    *h = saved;
    h->layout = ISR_SHM_LAYOUT + 1;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *h = saved;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size - 4096), APR_EINVAL);
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size + 4096), APR_EINVAL);
    CHECK_EQ(isr_store_attach(&z2, t.base, 16), APR_EINVAL);
    h->nbuckets = 3;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *h = saved;
    h->ring_size = t.size; /* ring past the end of the segment */
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *h = saved;
    h->ring_off = h->slots_off; /* slots overlap the ring */
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *h = saved;
    CHECK(z2.hdr == NULL);
    CHECK_RV(isr_store_attach(&z2, t.base, t.size));

    /* An all-zero segment (never formatted) is rejected. */
    memset(small, 0, sizeof(small));
    CHECK_EQ(isr_store_attach(&z2, small, sizeof(small)), APR_EINVAL);
    /* Too small for an index and a 64 KiB ring. */
    {
        const apr_uint64_t k[2] = {1, 2};
        CHECK(isr_store_format(small, sizeof(small), k, apr_time_now())
              != APR_SUCCESS);
    }
    return 0;
}

static int case_hash(apr_pool_t *p)
{
    tzone_t t;
    const int nkeys = 10000;
    apr_uint32_t nb, *count, max = 0, i, used = 0;
    static const apr_uint64_t seeds[][2] = {
        {0, 0}, {1, 0}, {0xdeadbeefcafef00dULL, 0x0123456789abcdefULL},
        {~0ULL, ~0ULL}};
    const apr_uint64_t k1[2] = {1, 7}, k2[2] = {2, 7}, k3[2] = {1, 8};
    char key[128];

    CHECK_RV(tzone_make(p, 16 * MiB, 42, &t));
    nb = t.z.hdr->nbuckets;
    count = apr_pcalloc(p, nb * sizeof(*count));
    for (i = 0; i < (apr_uint32_t)nkeys; i++) {
        apr_uint64_t h;
        snprintf(key, sizeof(key), "http://127.0.0.1/app/page%u?x=1", i);
        h = H(&t.z, key);
        CHECK(h != 0);
        count[h & (nb - 1)]++;
    }
    for (i = 0; i < nb; i++) {
        if (count[i] > max) {
            max = count[i];
        }
        used += count[i] != 0;
    }
    printf("    hash: %d keys over %u buckets: mean %.2f, max %u, %u used\n",
           nkeys, nb, (double)nkeys / nb, max, used);
    CHECKF((double)max <= 8.0 * nkeys / nb,
           "bucket with %u keys, mean %.2f", max, (double)nkeys / nb);

    /* Same with a small table, and with keys that differ only at the end. */
    for (unsigned s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        apr_uint32_t small_nb = 64, c64[64] = {0}, m = 0;
        for (i = 0; i < (apr_uint32_t)nkeys; i++) {
            apr_uint64_t h;
            int n = snprintf(key, sizeof(key),
                             "http://127.0.0.1/aaaaaaaaaaaaaaaaaaaaaaaaa%05u", i);
            h = isr_key_hash(seeds[s], key, (apr_size_t)n);
            CHECK(h != 0);
            c64[h & (small_nb - 1)]++;
        }
        for (i = 0; i < small_nb; i++) {
            m = c64[i] > m ? c64[i] : m;
        }
        CHECKF(m <= 2 * nkeys / small_nb, "seed %u: bucket with %u of %d keys",
               s, m, nkeys);
    }
    /* The empty key, and either half of the zone key changes the hash. */
    CHECK(isr_key_hash(seeds[0], "", 0) != 0);
    CHECK(isr_key_hash(k1, "http://127.0.0.1/", 17)
          != isr_key_hash(k2, "http://127.0.0.1/", 17));
    CHECK(isr_key_hash(k1, "http://127.0.0.1/", 17)
          != isr_key_hash(k3, "http://127.0.0.1/", 17));
    CHECK(isr_key_hash(k1, "http://127.0.0.1/a", 18)
          != isr_key_hash(k1, "http://127.0.0.1/b", 18));
    /* The zone hashes with the key in its header. */
    CHECK_EQ(H(&t.z, "http://127.0.0.1/x"),
             isr_key_hash(t.z.hdr->seed, "http://127.0.0.1/x", 18));
    return 0;
}

/* 18. Keys are hashed with SipHash-2-4 under the zone's 128-bit key: the
 * reference vectors of the SipHash paper and its reference implementation
 * (vectors_sip64: key 00 01 .. 0f, message 00 01 .. len-1, len 0..63). */
static const apr_uint64_t sip64_vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
    0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
    0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
    0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
    0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL, 0xbed65cf21aa2ee98ULL,
    0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL,
    0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL,
    0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL,
    0x9abfd8766a33735cULL, 0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL,
    0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL,
    0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL,
    0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL,
    0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL,
    0x958a324ceb064572ULL,
};

static int case_siphash_vectors(apr_pool_t *p)
{
    const apr_uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    unsigned char msg[64];
    apr_size_t len;
    (void)p;

    for (len = 0; len < sizeof(msg); len++) {
        msg[len] = (unsigned char)len;
    }
    for (len = 0; len < 64; len++) {
        apr_uint64_t h = isr_key_siphash(key, msg, len);
        CHECKF(h == sip64_vectors[len], "SipHash-2-4 of %zu bytes: %016llx, "
               "expected %016llx", (size_t)len, (unsigned long long)h,
               (unsigned long long)sip64_vectors[len]);
        /* isr_key_hash is the same function (none of these is 0). */
        CHECK_EQ(isr_key_hash(key, (const char *)msg, len), h);
    }
    /* The paper's worked example (appendix A): 15 bytes. */
    CHECK(isr_key_siphash(key, msg, 15) == 0xa129ca6149be45e5ULL);
    /* Unaligned input gives the same. */
    {
        unsigned char buf[80];
        memcpy(buf + 3, msg, 64);
        CHECK(isr_key_siphash(key, buf + 3, 63) == sip64_vectors[63]);
    }
    return 0;
}

static int case_fresh_roundtrip(apr_pool_t *p)
{
    tzone_t t;
    isr_zone_t z2;
    const char *key = "http://127.0.0.1/app/hello";
    static const char hdrs[] = "Content-Type\0text/plain\0X-Empty\0\0X-A\0b";
    apr_size_t hdrlen = sizeof(hdrs); /* includes the final NUL */
    unsigned char body[3000];
    apr_uint64_t hash, lease;
    apr_uint32_t slot, seq, seq2, slot2;
    apr_time_t now = apr_time_now();
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 2 * MiB, 7, &t));
    hash = H(&t.z, key);
    rng_fill(99, body, sizeof(body));
    body[0] = 0;
    body[100] = 0;

    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_ABSENT);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq,
                                  &lease), ISR_CLAIM_OWNED);
    CHECK(slot < t.z.nslots);
    {
        apr_uint32_t b[2];
        isr_store_buckets(&t.z, hash, b);
        CHECK(slot / ISR_BUCKET_WAYS == b[0] || slot / ISR_BUCKET_WAYS == b[1]);
    }
    CHECK_EQ(ISR_LEASE_PID(lease), getpid());
    CHECK(ISR_LEASE_DEADLINE(lease) >= (now + 10 * SEC) / SEC);
    CHECK(isr_store_lease_live(lease, now));
    CHECK(!isr_store_lease_live(lease, now + 12 * SEC)); /* late owner */

    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_PENDING);
    CHECK_EQ(e.slot, slot);
    CHECK_EQ(e.lease, lease);
    CHECK_EQ(e.seq % 2, 0);
    /* A second miss waits for the first (same pid: the lease is live). */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot2, &seq2,
                                  &lease), ISR_CLAIM_BUSY);
    CHECK_EQ(slot2, slot);
    CHECK_EQ(seq2, e.seq);
    CHECK_EQ(lease, e.lease);

    v = VAL(203, hdrs, hdrlen, body, sizeof(body), now, now + 10 * SEC,
            now + 60 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, lease, key, strlen(key), hash, &v));
    CHECK_ZONE(&t.z);

    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
    CHECK_EQ(e.slot, slot);
    CHECK_EQ(e.status, 203);
    CHECK_EQ(e.hdrlen, hdrlen);
    CHECK(memcmp(e.headers, hdrs, hdrlen) == 0);
    CHECK_EQ(e.bodylen, sizeof(body));
    CHECK(memcmp(e.body, body, sizeof(body)) == 0);
    CHECK(!body_in_shm(&t, e.body) && !body_in_shm(&t, e.headers));
    CHECK_EQ(e.fetched, now);
    CHECK_EQ(e.fresh_until, now + 10 * SEC);
    CHECK_EQ(e.until, now + 60 * SEC);
    CHECK_EQ(e.lease, 0);                 /* publish released the lease */
    CHECK(e.seq != seq && e.seq % 2 == 0);
    CHECK_EQ(t.z.slots[slot].ref, 1);     /* the hit set the CLOCK bit */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot2, &seq2,
                                  &lease), ISR_CLAIM_READY);

    /* Another handle on the segment (another process) sees the same. */
    memset(&z2, 0, sizeof(z2));
    CHECK_RV(isr_store_attach(&z2, t.base, t.size));
    CHECK_LOOK(isr_store_lookup(&z2, key, strlen(key), hash, now, p, &e),
               ISR_LOOK_FRESH);
    CHECK(e.bodylen == sizeof(body) && memcmp(e.body, body, sizeof(body)) == 0);

    /* A different key with the same 64-bit hash never gets this body. */
    {
        const char *other = "http://127.0.0.1/app/hellO";
        isr_look_t l = isr_store_lookup(&t.z, other, strlen(other), hash, now,
                                        p, &e);
        CHECKF(l != ISR_LOOK_FRESH && l != ISR_LOOK_STALE,
               "hash collision served another key's body (%s)", look_name(l));
        CHECK_LOOK(l, ISR_LOOK_PASS);
        /* A key that is a prefix of the stored one, same hash. */
        l = isr_store_lookup(&t.z, key, strlen(key) - 1, hash, now, p, &e);
        CHECK(l != ISR_LOOK_FRESH && l != ISR_LOOK_STALE);
    }
    /* Unrelated keys are absent. */
    CHECK_LOOK(LOOK(&t.z, "http://127.0.0.1/app/nope", now, p, &e),
               ISR_LOOK_ABSENT);

    /* Empty headers and empty body round trip too. */
    v = VAL(204, NULL, 0, NULL, 0, now, now + SEC, now + 2 * SEC);
    CHECK_RV(put(&t.z, "http://127.0.0.1/empty", &v, now, p));
    CHECK_LOOK(LOOK(&t.z, "http://127.0.0.1/empty", now, p, &e),
               ISR_LOOK_FRESH);
    CHECK(e.status == 204 && e.hdrlen == 0 && e.bodylen == 0);

    /* Replacing the value: the new version, never the old one. */
    body[5] ^= 0xff;
    v = VAL(200, hdrs, hdrlen, body, 1000, now, now + 10 * SEC, now + 60 * SEC);
    CHECK_RV(put(&t.z, key, &v, now, p));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.status == 200 && e.bodylen == 1000
          && memcmp(e.body, body, 1000) == 0);
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_stale_expired(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/ttl";
    apr_time_t now = apr_time_now();
    apr_uint64_t hash, lease, lease2;
    apr_uint32_t slot, seq;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 3, &t));
    hash = H(&t.z, key);
    v = VAL(200, "A\0b", 4, "version-1", 9, now, now + 10 * SEC,
            now + 20 * SEC);
    CHECK_RV(put(&t.z, key, &v, now, p));

    CHECK_LOOK(LOOK(&t.z, key, now + 5 * SEC, p, &e), ISR_LOOK_FRESH);
    CHECK_LOOK(LOOK(&t.z, key, now + 10 * SEC, p, &e), ISR_LOOK_FRESH);
    CHECK_LOOK(LOOK(&t.z, key, now + 10 * SEC + 1, p, &e), ISR_LOOK_STALE);
    CHECK(e.bodylen == 9 && memcmp(e.body, "version-1", 9) == 0);
    CHECK(e.hdrlen == 4 && memcmp(e.headers, "A\0b", 4) == 0);
    CHECK_LOOK(LOOK(&t.z, key, now + 20 * SEC, p, &e), ISR_LOOK_STALE);
    CHECK(e.bodylen == 9 && memcmp(e.body, "version-1", 9) == 0);
    CHECK_LOOK(LOOK(&t.z, key, now + 20 * SEC + 1, p, &e), ISR_LOOK_EXPIRED);
    CHECK(e.body == NULL && e.bodylen == 0);
    CHECK_EQ(e.until, now + 20 * SEC);

    /* An expired entry is refetched as a miss: one owner, others wait. */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now + 21 * SEC, 10 * SEC, &slot,
                                  &seq, &lease), ISR_CLAIM_OWNED);
    CHECK_EQ(slot, e.slot);
    CHECK_LOOK(LOOK(&t.z, key, now + 21 * SEC, p, &e), ISR_LOOK_EXPIRED);
    CHECK_EQ(e.lease, lease);
    CHECK(isr_store_lease_live(e.lease, now + 21 * SEC));
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now + 21 * SEC, 10 * SEC, &slot,
                                  &seq, &lease2), ISR_CLAIM_BUSY);
    v = VAL(200, NULL, 0, "version-2", 9, now + 21 * SEC, now + 31 * SEC,
            now + 41 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, lease, key, strlen(key), hash, &v));
    CHECK_LOOK(LOOK(&t.z, key, now + 21 * SEC, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 9 && memcmp(e.body, "version-2", 9) == 0);
    CHECK(e.hdrlen == 0 && e.lease == 0);
    CHECK_LOOK(LOOK(&t.z, key, now + 35 * SEC, p, &e), ISR_LOOK_STALE);
    CHECK_LOOK(LOOK(&t.z, key, now + 42 * SEC, p, &e), ISR_LOOK_EXPIRED);
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_claim_refresh(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/refresh";
    apr_time_t now = apr_time_now();
    apr_uint64_t l1 = 0, l2 = 0, hash;
    isr_entry_t e, e2, eold;
    isr_value_t v = { 0 };
    int round;

    CHECK_RV(tzone_make(p, 1 * MiB, 5, &t));
    hash = H(&t.z, key);
    v = VAL(200, NULL, 0, "v1", 2, now - 2 * SEC, now - SEC, now + 600 * SEC);
    CHECK_RV(put(&t.z, key, &v, now - 2 * SEC, p));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e2), ISR_LOOK_STALE);

    /* Two claimers of one stale entry: exactly one wins. */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l1), 1);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e2, now, 10 * SEC, &l2), 0);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l2), 0);
    CHECK_EQ(t.z.slots[e.slot].lease, l1);
    CHECK_EQ(ISR_LEASE_PID(l1), getpid());
    /* The entry is still served stale meanwhile. */
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e2), ISR_LOOK_STALE);
    CHECK(e2.bodylen == 2 && memcmp(e2.body, "v1", 2) == 0);
    CHECK_EQ(e2.lease, l1);

    /* Released: claimable again. */
    isr_store_release(&t.z, e.slot, l1);
    CHECK_EQ(t.z.slots[e.slot].lease, 0);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l1), 1);
    /* Releasing with someone else's lease does nothing. */
    isr_store_release(&t.z, e.slot, l1 + 1);
    CHECK_EQ(t.z.slots[e.slot].lease, l1);

    /* A late owner (deadline passed) can be taken over. */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 12 * SEC, 10 * SEC, &l2),
             1);
    CHECK(l2 != l1);
    /* The late owner's publish still lands (its body is a right body) but
     * does not release the new owner's lease. */
    v = VAL(200, NULL, 0, "v2", 2, now, now - 1, now + 600 * SEC);
    eold = e;
    CHECK_RV(isr_store_publish(&t.z, e.slot, l1, key, strlen(key), hash, &v));
    CHECK_EQ(t.z.slots[e.slot].lease, l2);
    isr_store_release(&t.z, e.slot, l2);

    /* After a publish, a claim made with the entry seen before fails (the
     * seq moved): the new version needs no refresh by that reader. */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &eold, now, 10 * SEC, &l1), 0);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
    CHECK(e.bodylen == 2 && memcmp(e.body, "v2", 2) == 0);

    /* Many processes race for the same stale entry: exactly one wins. */
    for (round = 0; round < 20; round++) {
        enum { N = 8 };
        pid_t pids[N], winner = 0;
        int go[2], i, wins = 0, status;
        apr_uint64_t cur;

        CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
        CHECK(pipe(go) == 0);
        for (i = 0; i < N; i++) {
            pids[i] = fork();
            CHECK(pids[i] >= 0);
            if (pids[i] == 0) {
                char c;
                apr_uint64_t mine;
                close(go[1]);
                if (read(go[0], &c, 1) < 0) {
                    _exit(3);
                }
                _exit(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &mine)
                      ? 10 : 20);
            }
        }
        close(go[0]);
        close(go[1]); /* go: every child's read returns at once */
        for (i = 0; i < N; i++) {
            CHECK(waitpid(pids[i], &status, 0) == pids[i]);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 20);
            if (WEXITSTATUS(status) == 10) {
                wins++;
                winner = pids[i];
            }
        }
        CHECKF(wins == 1, "round %d: %d of %d processes won the refresh claim",
               round, wins, N);
        cur = t.z.slots[e.slot].lease;
        CHECK_EQ(ISR_LEASE_PID(cur), winner);
        /* The winner is dead: its lease blocks refreshes until its deadline
         * only (claims need the deadline, not the pid)... */
        CHECK(!isr_store_lease_live(cur, now));
        CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l1), 0);
        CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 12 * SEC, 10 * SEC,
                                         &l1), 1);
        isr_store_release(&t.z, e.slot, l1);
    }
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_backoff(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/backoff";
    apr_time_t now = apr_time_now();
    apr_uint64_t l, l2;
    apr_uint32_t slot, seq;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 9, &t));
    v = VAL(200, NULL, 0, "old", 3, now - 2 * SEC, now - SEC, now + 600 * SEC);
    CHECK_RV(put(&t.z, key, &v, now - 2 * SEC, p));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l), 1);

    /* The refresh failed: retry not before now + 10 s. */
    isr_store_backoff(&t.z, e.slot, l + 1, now + 10 * SEC); /* not the owner */
    CHECK_EQ(t.z.slots[e.slot].lease, l);
    isr_store_backoff(&t.z, e.slot, l, now + 10 * SEC);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
    CHECK(e.bodylen == 3 && memcmp(e.body, "old", 3) == 0); /* entry kept */
    CHECK_EQ(ISR_LEASE_PID(e.lease), 0);
    CHECK(ISR_LEASE_DEADLINE(e.lease) >= (now + 10 * SEC) / SEC);
    CHECK(!isr_store_lease_live(e.lease, now)); /* nobody to wait for */

    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l2), 0);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 5 * SEC, 10 * SEC, &l2), 0);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 10 * SEC, 10 * SEC, &l2),
             0);
    /* A miss claim is not a refresh: the entry is usable, look it up. */
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, key), now, 10 * SEC, &slot,
                                  &seq, &l2),
             ISR_CLAIM_READY);
    /* After the deadline the next refresh may go. */
    CHECK_LOOK(LOOK(&t.z, key, now + 11 * SEC, p, &e), ISR_LOOK_STALE);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 11 * SEC, 10 * SEC, &l2),
             1);
    CHECK_EQ(ISR_LEASE_PID(l2), getpid());
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now + 11 * SEC, 10 * SEC, &l),
             0);
    isr_store_release(&t.z, e.slot, l2);
    return 0;
}

static int case_dead_owner(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/dead";
    apr_time_t now = apr_time_now();
    apr_uint64_t hash, l;
    apr_uint32_t slot, seq;
    int up[2], down[2], status;
    isr_entry_t e;
    isr_value_t v = { 0 };
    pid_t pid;
    char c;

    CHECK_RV(tzone_make(p, 1 * MiB, 11, &t));
    hash = H(&t.z, key);
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        apr_uint64_t cl;
        apr_uint32_t cs, cq;
        close(up[0]);
        close(down[1]);
        c = isr_store_claim_miss(&t.z, hash, now, 30 * SEC, &cs, &cq, &cl)
            == ISR_CLAIM_OWNED ? 'o' : 'x';
        if (write(up[1], &c, 1) != 1) {
            _exit(2);
        }
        /* Hold the claim until the parent closes the pipe, then die
         * without releasing anything. */
        (void)read(down[0], &c, 1);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    CHECK(read(up[0], &c, 1) == 1);
    CHECK_EQ(c, 'o');

    /* Owner alive and inside its deadline: wait for it. */
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_PENDING);
    CHECK_EQ(ISR_LEASE_PID(e.lease), pid);
    CHECK(isr_store_lease_live(e.lease, now));
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_BUSY);
    CHECK_EQ(slot, e.slot);

    /* The owner dies (and is reaped, as httpd's parent does). */
    close(down[1]);
    close(up[0]);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_PENDING);
    CHECK_EQ(ISR_LEASE_PID(e.lease), pid);
    CHECKF(!isr_store_lease_live(e.lease, now),
           "lease of dead pid %d is still live", (int)pid);

    /* Taken over, long before its deadline. */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    CHECK_EQ(slot, e.slot);
    CHECK_EQ(ISR_LEASE_PID(l), getpid());
    CHECK_EQ(t.z.slots[slot].lease, l);
    v = VAL(200, NULL, 0, "after", 5, now, now + SEC, now + 2 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, l, key, strlen(key), hash, &v));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 5 && memcmp(e.body, "after", 5) == 0);

    /* pid 0 is never live, nor the empty lease. */
    CHECK(!isr_store_lease_live(0, now));
    CHECK(!isr_store_lease_live(ISR_LEASE_MAKE((now / SEC) + 100, 0, 0), now));
    CHECK(isr_store_lease_live(ISR_LEASE_MAKE((now / SEC) + 100, getpid(), 1),
                               now));
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_mark_pass_failed(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/cookie";
    const char *keyb = "http://127.0.0.1/app/ok";
    apr_time_t now = apr_time_now(), until = now + 10 * SEC;
    apr_uint64_t hash, hb, l, l2;
    apr_uint32_t slot, seq, sb;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 13, &t));
    hash = H(&t.z, key);

    /* Uncacheable: PASS until `until`, the lease is gone. */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    isr_store_mark_pass(&t.z, slot, hash, l, until);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_PASS);
    CHECK_EQ(e.until, until);
    CHECK_EQ(e.lease, 0);
    CHECK(e.body == NULL);
    CHECK(e.seq != seq); /* waiters on (slot, seq) are woken */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l2),
             ISR_CLAIM_READY);
    CHECK_LOOK(LOOK(&t.z, key, until + 1, p, &e), ISR_LOOK_ABSENT);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, until + 1, 10 * SEC, &slot, &seq,
                                  &l), ISR_CLAIM_OWNED);
    CHECK_LOOK(LOOK(&t.z, key, until + 1, p, &e), ISR_LOOK_PENDING);
    CHECK_EQ(e.slot, slot);

    /* The miss fetch fails: FAILED at `now`, waiters get the error. */
    isr_store_mark_failed(&t.z, slot, hash, l, until + 1, until + 1);
    CHECK_LOOK(LOOK(&t.z, key, until + 1, p, &e), ISR_LOOK_FAILED);
    CHECK_EQ(e.until, until + 1);
    CHECK_EQ(e.lease, 0);
    /* The next request retries. */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, until + 2, 10 * SEC, &slot, &seq,
                                  &l), ISR_CLAIM_OWNED);
    CHECK_LOOK(LOOK(&t.z, key, until + 2, p, &e), ISR_LOOK_PENDING);
    v = VAL(200, NULL, 0, "now-ok", 6, until + 2, until + 2 + SEC,
            until + 2 + 2 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, l, key, strlen(key), hash, &v));
    CHECK_LOOK(LOOK(&t.z, key, until + 2, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 6 && memcmp(e.body, "now-ok", 6) == 0);

    /* mark_failed never clobbers a usable entry published meanwhile... */
    hb = H(&t.z, keyb);
    CHECK_EQ(isr_store_claim_miss(&t.z, hb, now, 10 * SEC, &sb, &seq, &l),
             ISR_CLAIM_OWNED);
    v = VAL(200, NULL, 0, "good", 4, now, now + 10 * SEC, now + 20 * SEC);
    CHECK_RV(isr_store_publish(&t.z, sb, l, keyb, strlen(keyb), hb, &v));
    isr_store_mark_failed(&t.z, sb, hb, l, now, now);
    CHECK_LOOK(LOOK(&t.z, keyb, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 4 && memcmp(e.body, "good", 4) == 0);
    /* ...and marks with another key's hash (slot reused) change nothing. */
    isr_store_mark_pass(&t.z, sb, hash, 0, now + 60 * SEC);
    isr_store_mark_failed(&t.z, sb, hash, 0, now + 30 * SEC, now + 30 * SEC);
    CHECK_LOOK(LOOK(&t.z, keyb, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 4 && memcmp(e.body, "good", 4) == 0);
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_bucket_full(apr_pool_t *p)
{
    tzone_t t;
    char *keys[CAND + 2];
    apr_time_t now = apr_time_now();
    apr_uint64_t l[CAND + 2];
    apr_uint32_t slot, seq;
    isr_entry_t e;
    isr_value_t v = { 0 };
    int i;

    CHECK_RV(tzone_make(p, 1 * MiB, 17, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, CAND + 2, keys), CAND + 2);

    /* Sixteen live miss fetches fill both buckets: the next cannot
     * coalesce. */
    for (i = 0; i < CAND; i++) {
        CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[i]), now, 10 * SEC,
                                      &slot, &seq, &l[i]), ISR_CLAIM_OWNED);
    }
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[CAND]), now, 10 * SEC, &slot,
                                  &seq, &l[CAND]), ISR_CLAIM_NOSLOT);
    /* Once their leases ran out, the slots may be reused. */
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[CAND]), now + 12 * SEC,
                                  10 * SEC, &slot, &seq, &l[CAND]),
             ISR_CLAIM_OWNED);
    isr_store_release(&t.z, slot, l[CAND]);

    /* CLOCK: fill both buckets with values; the victim is the oldest entry
     * with no hit. */
    CHECK_RV(tzone_make(p, 1 * MiB, 17, &t));
    for (i = 0; i < CAND; i++) {
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now + i, now + 60 * SEC,
                now + 120 * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
    }
    for (i = 0; i < CAND / 2; i++) { /* hits on keys 0..7 */
        CHECK_LOOK(LOOK(&t.z, keys[i], now, p, &e), ISR_LOOK_FRESH);
    }
    v = VAL(200, NULL, 0, keys[CAND], strlen(keys[CAND]), now + CAND,
            now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(put(&t.z, keys[CAND], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[CAND / 2], now, p, &e), ISR_LOOK_ABSENT);
    for (i = 0; i <= CAND; i++) {
        if (i == CAND / 2) {
            continue;
        }
        CHECKF(LOOK(&t.z, keys[i], now, p, &e) == ISR_LOOK_FRESH
               && e.bodylen == strlen(keys[i])
               && memcmp(e.body, keys[i], e.bodylen) == 0,
               "key %d lost or wrong after the CLOCK eviction", i);
    }
    /* Every slot was hit now: keys 0..7 twice, the others once. The least
     * hit go first, the oldest of them (key 9), not the oldest of all. */
    v = VAL(200, NULL, 0, keys[CAND + 1], strlen(keys[CAND + 1]),
            now + CAND + 1, now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(put(&t.z, keys[CAND + 1], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[CAND / 2 + 1], now, p, &e), ISR_LOOK_ABSENT);
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    CHECK_EQ(t.z.slots[e.slot].ref, 2); /* 2 hits, aged by 1, this hit */
    CHECK_LOOK(LOOK(&t.z, keys[CAND + 1], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == strlen(keys[CAND + 1])
          && memcmp(e.body, keys[CAND + 1], e.bodylen) == 0);
    /* Hits saturate at ISR_REF_MAX. */
    for (i = 0; i < 10; i++) {
        CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    }
    CHECK_EQ(t.z.slots[e.slot].ref, ISR_REF_MAX);
    CHECK_ZONE(&t.z);
    return 0;
}

/* A slot whose entry expired and is being refetched by a live miss owner
 * (claim_miss on an EXPIRED entry keeps the state VALID) must not be taken
 * by a miss for another key of a full bucket: the waiters would wake, find
 * the key ABSENT, and start a second fetch (invariant 3, single flight). */
static int case_expired_claim_not_evicted(apr_pool_t *p)
{
    tzone_t t;
    char *keys[CAND + 1];
    apr_time_t now = apr_time_now(), t1 = now + 20 * SEC;
    apr_uint64_t lo, l8, l2, h0;
    apr_uint32_t so, seqo, s8, seq8, s2, seq2;
    isr_entry_t e;
    isr_value_t v = { 0 };
    int i;

    CHECK_RV(tzone_make(p, 1 * MiB, 37, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, CAND + 1, keys), CAND + 1);
    h0 = H(&t.z, keys[0]);
    /* Key 0 expires at now + 10 s; keys 1..15 are usable for an hour. */
    for (i = 0; i < CAND; i++) {
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now + i,
                now + (i ? 3600 : 5) * SEC, now + (i ? 7200 : 10) * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
    }
    /* At t1 key 0 is EXPIRED: one process owns its refetch. */
    CHECK_LOOK(LOOK(&t.z, keys[0], t1, p, &e), ISR_LOOK_EXPIRED);
    CHECK_EQ(isr_store_claim_miss(&t.z, h0, t1, 10 * SEC, &so, &seqo, &lo),
             ISR_CLAIM_OWNED);
    CHECK_EQ(isr_store_claim_miss(&t.z, h0, t1, 10 * SEC, &s2, &seq2, &l2),
             ISR_CLAIM_BUSY); /* a waiter */
    /* Meanwhile a miss for key 16 of the same (full) buckets. */
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[CAND]), t1, 10 * SEC, &s8,
                                  &seq8, &l8), ISR_CLAIM_OWNED);
    CHECKF(s8 != so, "the miss for another key took slot %u, which a live "
           "fetch of key 0 owns (lease pid %u)", so, ISR_LEASE_PID(lo));
    /* The waiter of key 0 must still find the fetch under way... */
    CHECK(LOOK(&t.z, keys[0], t1, p, &e) != ISR_LOOK_ABSENT);
    CHECK_EQ(e.lease, lo);
    /* ...and a new miss claim for key 0 must wait, not fetch again. */
    CHECK_EQ(isr_store_claim_miss(&t.z, h0, t1, 10 * SEC, &s2, &seq2, &l2),
             ISR_CLAIM_BUSY);
    return 0;
}

/* Ring: a 1 MiB zone, many records of random sizes, keys replaced now and
 * then. Every lookup returns ABSENT or exactly the current version. */
static void ring_body(apr_uint32_t k, apr_uint32_t ver, unsigned char *buf,
                      apr_size_t len)
{
    rng_fill(((apr_uint64_t)k << 32) | ver, buf, len);
    if (len >= 8) {
        memcpy(buf, &k, 4);
        memcpy(buf + 4, &ver, 4);
    }
}

static int case_ring_wrap(apr_pool_t *p)
{
    enum { NPUB = 1500, NKEYS = 1200, MAXB = 100 * 1024 };
    tzone_t t;
    apr_time_t now = apr_time_now();
    apr_uint64_t rs = 0x5eed, need_of_max;
    apr_uint32_t *ver, *len, *order, nkeys = 0, i, j;
    apr_uint64_t *needs, *heads;
    unsigned char *want, *hdr;
    char key[64];
    isr_entry_t e;
    isr_value_t v = { 0 };
    unsigned long hits = 0, absent = 0, looks = 0;
    apr_uint64_t budget, sum;

    CHECK_RV(tzone_make(p, 1 * MiB, 19, &t));
    ver = apr_pcalloc(p, NKEYS * sizeof(*ver));
    len = apr_pcalloc(p, NKEYS * sizeof(*len));
    order = apr_pcalloc(p, NPUB * sizeof(*order));
    needs = apr_pcalloc(p, NPUB * sizeof(*needs));
    heads = apr_pcalloc(p, NPUB * sizeof(*heads));
    want = apr_palloc(p, MAXB);
    hdr = apr_palloc(p, 64);

    for (i = 0; i < NPUB; i++) {
        apr_uint32_t k;
        apr_uint64_t kl;
        int hl;
        if (nkeys > 0 && rng_next(&rs) % 4 == 0) {
            k = (apr_uint32_t)rng_range(&rs, nkeys > 30 ? nkeys - 30 : 0,
                                        nkeys - 1); /* replace a recent key */
        }
        else {
            k = nkeys++;
        }
        ver[k]++;
        len[k] = (apr_uint32_t)rng_range(&rs, 1, MAXB);
        ring_body(k, ver[k], want, len[k]);
        hl = snprintf((char *)hdr, 64, "X-Key%c%u%cX-Ver%c%u", 0, k, 0, 0,
                      ver[k]) + 1;
        kl = (apr_uint64_t)snprintf(key, sizeof(key), "http://127.0.0.1/r/%u", k);
        v = VAL(200 + (int)(ver[k] % 100), (char *)hdr, (apr_size_t)hl, want,
                len[k], now + i, now + 3600 * SEC, now + 7200 * SEC);
        CHECKF(put(&t.z, key, &v, now, p) == APR_SUCCESS,
               "publish %u (key %u version %u, %u bytes) failed", i, k, ver[k],
               len[k]);
        order[i] = k;
        needs[i] = (sizeof(isr_record_t) + kl + hl + len[k] + 63) / 64 * 64;
        heads[i] = t.z.hdr->head;

        /* The record just published is there, exactly. */
        CHECKF(LOOK(&t.z, key, now, p, &e) == ISR_LOOK_FRESH,
               "publish %u: key %u not found right after its publish", i, k);
        CHECK(e.bodylen == len[k] && memcmp(e.body, want, len[k]) == 0);
        /* Random earlier keys: absent or exactly their current version. */
        for (j = 0; j < 4; j++) {
            apr_uint32_t q = (apr_uint32_t)rng_range(&rs, 0, nkeys - 1);
            isr_look_t l;
            snprintf(key, sizeof(key), "http://127.0.0.1/r/%u", q);
            l = LOOK(&t.z, key, now, p, &e);
            looks++;
            if (l == ISR_LOOK_ABSENT) {
                absent++;
                continue;
            }
            CHECKF(l == ISR_LOOK_FRESH, "key %u: %s", q, look_name(l));
            ring_body(q, ver[q], want, len[q]);
            CHECKF(e.bodylen == len[q] && memcmp(e.body, want, len[q]) == 0
                   && e.status == 200 + (int)(ver[q] % 100),
                   "key %u: wrong body (len %zu, want %u, version %u, "
                   "status %d)", q, (size_t)e.bodylen, len[q], ver[q],
                   e.status);
            hits++;
        }
        if (i % 100 == 0) {
            CHECK_ZONE(&t.z);
        }
    }
    CHECK_ZONE(&t.z);
    printf("    ring: %u publishes of %u keys, ring %llu bytes wrapped %llu "
           "times; random lookups: %lu, %lu hits, %lu absent\n", NPUB, nkeys,
           (unsigned long long)t.z.hdr->ring_size,
           (unsigned long long)(t.z.hdr->head / t.z.hdr->ring_size), looks,
           hits, absent);
    CHECK(t.z.hdr->head / t.z.hdr->ring_size >= 20);
    CHECK(absent > 0 && hits > 0);

    /* The newest records are present: a record with less than ring_size
     * minus room for two fillers and one allocation written after its
     * start (publishes, and second-chance moves of hot records) cannot
     * have been evicted. */
    need_of_max = (sizeof(isr_record_t) + 64 + 64 + MAXB + 63) / 64 * 64;
    budget = t.z.hdr->ring_size - 3 * need_of_max;
    sum = 0;
    for (i = NPUB; i-- > 0;) {
        apr_uint32_t k = order[i];
        sum = t.z.hdr->head - (heads[i] - needs[i]);
        if (sum > budget) {
            break;
        }
        snprintf(key, sizeof(key), "http://127.0.0.1/r/%u", k);
        CHECKF(LOOK(&t.z, key, now, p, &e) == ISR_LOOK_FRESH,
               "publish %u (key %u) of the newest %llu bytes was evicted", i, k,
               (unsigned long long)sum);
        ring_body(k, ver[k], want, len[k]);
        CHECK(e.bodylen == len[k] && memcmp(e.body, want, len[k]) == 0);
    }
    /* Hot records moved to the head count against the newest too. */
    CHECKF(NPUB - 1 - i >= 1, "only %u newest publishes checked", NPUB - 1 - i);
    /* And a full sweep: every key absent or exact. */
    for (i = 0; i < nkeys; i++) {
        isr_look_t l;
        snprintf(key, sizeof(key), "http://127.0.0.1/r/%u", i);
        l = LOOK(&t.z, key, now, p, &e);
        if (l == ISR_LOOK_ABSENT) {
            continue;
        }
        CHECKF(l == ISR_LOOK_FRESH, "key %u: %s", i, look_name(l));
        ring_body(i, ver[i], want, len[i]);
        CHECKF(e.bodylen == len[i] && memcmp(e.body, want, len[i]) == 0,
               "key %u: wrong body", i);
    }
    return 0;
}

static int case_oversize(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/big";
    apr_size_t klen = strlen(key), rs, fit;
    apr_time_t now = apr_time_now();
    apr_uint64_t hash, l;
    apr_uint32_t slot, seq;
    unsigned char *body;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 23, &t));
    hash = H(&t.z, key);
    rs = t.z.hdr->ring_size;
    body = apr_palloc(p, rs + 1);
    rng_fill(5, body, rs + 1);

    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    v = VAL(200, NULL, 0, body, rs + 1, now, now + SEC, now + 2 * SEC);
    CHECK_EQ(isr_store_publish(&t.z, slot, l, key, klen, hash, &v),
             APR_ENOSPC);
    /* The caller keeps its lease, to mark the key uncacheable (which
     * releases the waiters) or to back off. */
    CHECK_EQ(t.z.slots[slot].lease, l);
    CHECK_EQ(t.z.hdr->head, 0);       /* nothing was written */
    isr_store_mark_pass(&t.z, slot, hash, l, now - 1);
    CHECK_EQ(t.z.slots[slot].lease, 0);
    CHECK_EQ(t.z.slots[slot].state, ISR_SLOT_PASS);

    /* The largest record the zone takes is half the ring (in whole
     * ISR_REC_ALIGN units)... */
    fit = rs / 2 / ISR_REC_ALIGN * ISR_REC_ALIGN - sizeof(isr_record_t) - klen;
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    v = VAL(200, NULL, 0, body, fit + 1, now, now + SEC, now + 2 * SEC);
    CHECK_EQ(isr_store_publish(&t.z, slot, l, key, klen, hash, &v),
             APR_ENOSPC);
    isr_store_release(&t.z, slot, l);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    v = VAL(200, NULL, 0, body, fit, now, now + SEC, now + 2 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, l, key, klen, hash, &v));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == fit && memcmp(e.body, body, fit) == 0);
    /* ...and two of them fit one after the other, wrapping. */
    for (int i = 0; i < 5; i++) {
        body[0] = (unsigned char)i;
        CHECK_RV(put(&t.z, key, &v, now, p));
        CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
        CHECK(e.bodylen == fit && memcmp(e.body, body, fit) == 0);
        CHECK_ZONE(&t.z);
    }
    return 0;
}

static int case_odd_seq_repair(apr_pool_t *p)
{
    tzone_t t;
    char *keys[3];
    apr_time_t now = apr_time_now();
    apr_uint64_t h0, l;
    apr_uint32_t slot, seq, s0;
    isr_entry_t e;
    isr_value_t v = { 0 };
    int i;

    CHECK_RV(tzone_make(p, 1 * MiB, 29, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, 3, keys), 3);
    for (i = 0; i < 2; i++) {
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now, now + 60 * SEC,
                now + 120 * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
    }
    h0 = H(&t.z, keys[0]);
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    s0 = e.slot;

    /* A writer died inside slot_begin/slot_end: seq odd, fields half
     * written (the record offset points anywhere). */
    t.z.slots[s0].seq |= 1u;
    t.z.slots[s0].rec_off = t.z.hdr->ring_size - 64;
    t.z.slots[s0].rec_len = 0x7fffffffu;

    /* Readers never copy from it and never hang on it. */
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_ABSENT);
    CHECK(e.body == NULL);
    /* The other key of the bucket is still served. */
    CHECK_LOOK(LOOK(&t.z, keys[1], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == strlen(keys[1])
          && memcmp(e.body, keys[1], e.bodylen) == 0);

    /* The next claim in that bucket (for another key) repairs it. */
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[2]), now, 10 * SEC, &slot,
                                  &seq, &l), ISR_CLAIM_OWNED);
    CHECK_EQ(t.z.slots[s0].seq % 2, 0);
    /* Repaired to EMPTY, or repaired and then taken by key 2 itself. */
    CHECK(t.z.slots[s0].state == ISR_SLOT_EMPTY
          || (slot == s0 && t.z.slots[s0].state == ISR_SLOT_PENDING));
    isr_store_release(&t.z, slot, l);
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_ABSENT);

    /* Same when the claim is for the key of the broken slot itself. */
    v = VAL(200, NULL, 0, "again", 5, now, now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(put(&t.z, keys[0], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    s0 = e.slot;
    t.z.slots[s0].seq |= 1u;
    CHECK_EQ(isr_store_claim_miss(&t.z, h0, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    CHECK_EQ(t.z.slots[s0].seq % 2, 0);
    v = VAL(200, NULL, 0, "fixed", 5, now, now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, l, keys[0], strlen(keys[0]), h0, &v));
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 5 && memcmp(e.body, "fixed", 5) == 0);
    CHECK_ZONE(&t.z);

    /* Odd seq left on a slot by a writer that died in a publish that
     * replaces the key: the publish path repairs too. */
    CHECK_RV(put(&t.z, keys[1], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[1], now, p, &e), ISR_LOOK_FRESH);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 10 * SEC, &l), 1);
    t.z.slots[e.slot].seq |= 1u;
    v = VAL(200, NULL, 0, "after-crash", 11, now, now + 60 * SEC,
            now + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, e.slot, l, keys[1], strlen(keys[1]),
                               H(&t.z, keys[1]), &v));
    CHECK_LOOK(LOOK(&t.z, keys[1], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 11 && memcmp(e.body, "after-crash", 11) == 0);
    for (apr_uint32_t k = 0; k < t.z.nslots; k++) {
        CHECKF(t.z.slots[k].seq % 2 == 0, "slot %u left odd", k);
    }
    CHECK_ZONE(&t.z);
    return 0;
}

static int case_wait_wake(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/wait";
    apr_time_t now = apr_time_now(), t0, dt;
    apr_uint64_t hash, l;
    apr_uint32_t slot, seq;
    isr_entry_t e;
    int status;
    pid_t pid;

    CHECK_RV(tzone_make(p, 1 * MiB, 31, &t));
    hash = H(&t.z, key);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, now, 10 * SEC, &slot, &seq, &l),
             ISR_CLAIM_OWNED);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_PENDING);

    /* A seq that already moved: no wait. */
    t0 = apr_time_now();
    isr_store_wait(&t.z, e.slot, e.seq + 2, 2 * SEC);
    CHECK(apr_time_now() - t0 < SEC);
    /* Nobody writes: the wait ends at max_wait. */
    t0 = apr_time_now();
    isr_store_wait(&t.z, e.slot, e.seq, 100 * 1000);
    dt = apr_time_now() - t0;
    CHECKF(dt >= 80 * 1000 && dt < 2 * SEC, "waited %lld us for 100 ms",
           (long long)dt);

    /* Another process publishes: the waiter wakes at once. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        isr_value_t v = VAL(200, NULL, 0, "woken", 5, now, now + 60 * SEC,
                            now + 120 * SEC);
        apr_sleep(150 * 1000);
        _exit(isr_store_publish(&t.z, slot, l, key, strlen(key), hash, &v)
              == APR_SUCCESS ? 0 : 1);
    }
    t0 = apr_time_now();
    isr_store_wait(&t.z, e.slot, e.seq, 5 * SEC);
    dt = apr_time_now() - t0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECKF(dt < 3 * SEC, "waiter slept %lld us, not woken by the publish",
           (long long)dt);
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 5 && memcmp(e.body, "woken", 5) == 0);
    return 0;
}

/* Two-choice buckets: a zone filled to half its slots keeps every key (one
 * choice of bucket loses about 1% of them to full buckets at this load). */
static int case_half_full_keeps_all(apr_pool_t *p)
{
    tzone_t t;
    apr_time_t now = apr_time_now();
    apr_uint32_t i, n, lost = 0;
    isr_entry_t e;
    isr_value_t v = { 0 };
    char key[64];

    CHECK_RV(tzone_make(p, 16 * MiB, 5, &t));
    n = t.z.nslots / 2;
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "http://127.0.0.1/app/k%u", i);
        v = VAL(200, NULL, 0, key, strlen(key), now, now + 60 * SEC,
                now + 120 * SEC);
        CHECK_RV(put(&t.z, key, &v, now, p));
    }
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "http://127.0.0.1/app/k%u", i);
        lost += LOOK(&t.z, key, now, p, &e) != ISR_LOOK_FRESH;
    }
    printf("    %u keys in %u slots: %u lost\n", n, t.z.nslots, lost);
    CHECK_EQ(lost, 0);
    CHECK_ZONE(&t.z);
    return 0;
}


/* The record codec on its own (fuzz/fuzz_record.c fuzzes it): a record
 * round-trips, and any length that does not fit is refused. */
static int case_record_parse(apr_pool_t *p)
{
    const char *key = "http://127.0.0.1/rec";
    apr_size_t klen = strlen(key), len;
    unsigned char *buf = apr_pcalloc(p, 512 + 1), *odd = buf + 1;
    isr_record_t rec;
    isr_entry_t e;

    memset(&rec, 0, sizeof(rec));
    rec.magic = ISR_REC_MAGIC;
    rec.status = 203;
    rec.hash = 42;
    rec.keylen = (apr_uint32_t)klen;
    rec.hdrlen = 4;
    rec.bodylen = 5;
    len = (sizeof(rec) + klen + 4 + 5 + 63) / 64 * 64;
    rec.total = (apr_uint32_t)len;
    /* At an odd address: the parser must not assume alignment. */
    memcpy(odd, &rec, sizeof(rec));
    memcpy(odd + sizeof(rec), key, klen);
    memcpy(odd + sizeof(rec) + klen, "A\0b\0hello", 9);
    memset(&e, 0, sizeof(e));
    CHECK_EQ(isr_store_record_parse(odd, len, 42, key, klen, &e), 1);
    CHECK(e.status == 203 && e.hdrlen == 4 && e.bodylen == 5);
    CHECK(memcmp(e.headers, "A\0b\0", 4) == 0
          && memcmp(e.body, "hello", 5) == 0);
    CHECK((const unsigned char *)e.body + e.bodylen <= odd + len);
    /* Wrong hash, key, prefix key, length, magic. */
    CHECK_EQ(isr_store_record_parse(odd, len, 43, key, klen, &e), 0);
    CHECK_EQ(isr_store_record_parse(odd, len, 42, "http://127.0.0.1/reX", klen,
                                    &e), 0);
    CHECK_EQ(isr_store_record_parse(odd, len, 42, key, klen - 1, &e), 0);
    CHECK_EQ(isr_store_record_parse(odd, len - 64, 42, key, klen, &e), 0);
    CHECK_EQ(isr_store_record_parse(odd, sizeof(rec) - 1, 42, key, klen, &e),
             0);
    CHECK_EQ(isr_store_record_parse(NULL, 0, 42, key, klen, &e), 0);
    /* Lengths that overflow the record, alone or summed (32-bit wrap). */
    {
        static const apr_uint32_t bad[][3] = {
            {0xffffffffu, 4, 5}, {20, 0xffffffffu, 5}, {20, 4, 0xffffffffu},
            {20, 0x80000000u, 0x80000000u}, {20, 4, 64}};
        unsigned i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            isr_record_t r = rec;
            r.keylen = bad[i][0] == 20 ? (apr_uint32_t)klen : bad[i][0];
            r.hdrlen = bad[i][1];
            r.bodylen = bad[i][2];
            memcpy(odd, &r, sizeof(r));
            memset(&e, 0, sizeof(e));
            CHECKF(isr_store_record_parse(odd, len, 42, key, klen, &e) == 0,
                   "lengths %u/%u/%u accepted", r.keylen, r.hdrlen, r.bodylen);
            CHECK(e.body == NULL && e.headers == NULL);
        }
    }
    return 0;
}

/* ---- regressions of issue 7 (findings 13-18 and 7) ---------------------- */

/* Fill the ring with `bytes` of one-hit records of other keys, `each` bytes
 * of body apiece, at time `now`. Between two of them, `between` (if set)
 * runs, e.g. a hit on a hot key. Returns 0, or the line of a failure. */
typedef int (*between_fn)(void *baton, int i);

static int flood(tzone_t *t, apr_pool_t *p, const char *prefix,
                 apr_uint64_t bytes, apr_size_t each, apr_time_t now,
                 between_fn between, void *baton)
{
    unsigned char *body = apr_palloc(p, each);
    apr_uint64_t done = 0;
    char key[96];
    isr_value_t v = { 0 };
    int i;

    rng_fill(77, body, each);
    for (i = 0; done < bytes; i++) {
        snprintf(key, sizeof(key), "http://127.0.0.1/%s/%d", prefix, i);
        v = VAL(200, NULL, 0, body, each, now, now + 3600 * SEC,
                now + 7200 * SEC);
        if (put(&t->z, key, &v, now, p) != APR_SUCCESS) {
            return __LINE__;
        }
        done += each;
        if (between && between(baton, i)) {
            return __LINE__;
        }
    }
    return 0;
}

/* 13. A ring eviction of an expired entry whose refetch is under way (a live
 * miss lease on the slot) keeps the key's hash and lease: its waiters keep
 * waiting for that fetch and no second owner fetches the key. */
static int case_ring_evict_keeps_live_lease(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/refetch";
    apr_time_t now = apr_time_now(), t1 = now + 20 * SEC;
    apr_uint64_t hash, lo, l2;
    apr_uint32_t so, seqo, s2, seq2;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 41, &t));
    hash = H(&t.z, key);
    v = VAL(200, NULL, 0, "old", 3, now, now + 5 * SEC, now + 10 * SEC);
    CHECK_RV(put(&t.z, key, &v, now, p));
    CHECK_LOOK(LOOK(&t.z, key, t1, p, &e), ISR_LOOK_EXPIRED);
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, t1, 30 * SEC, &so, &seqo, &lo),
             ISR_CLAIM_OWNED);
    /* Two rings' worth of other records: the expired record of the key
     * reaches the tail and is dropped. */
    CHECK_EQ(flood(&t, p, "f13", 2 * t.z.hdr->ring_size, 50 * 1024, t1, NULL,
                   NULL), 0);
    CHECK_ZONE(&t.z);
    /* The fetch is still under way: a waiter keeps waiting for it... */
    CHECKF(LOOK(&t.z, key, t1, p, &e) != ISR_LOOK_ABSENT,
           "the ring eviction dropped the key while its refetch is live");
    CHECK_EQ(e.slot, so);
    CHECK_EQ(e.lease, lo);
    CHECK(isr_store_lease_live(e.lease, t1));
    /* ...and nobody else may fetch it. */
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, t1, 30 * SEC, &s2, &seq2, &l2),
             ISR_CLAIM_BUSY);
    CHECK_EQ(s2, so);
    /* The owner's publish lands in the slot its waiters watch. */
    v = VAL(200, NULL, 0, "new", 3, t1, t1 + 60 * SEC, t1 + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, so, lo, key, strlen(key), hash, &v));
    CHECK_LOOK(LOOK(&t.z, key, t1, p, &e), ISR_LOOK_FRESH);
    CHECK_EQ(e.slot, so);
    CHECK(e.bodylen == 3 && memcmp(e.body, "new", 3) == 0 && e.lease == 0);
    CHECK_ZONE(&t.z);
    return 0;
}

/* 14a. isr_store_claim_refresh checks the slot, then CASes the lease. The
 * binary is linked with -Wl,--wrap=getpid: lease_make() calls getpid()
 * between the check and the CAS, so the hook below can re-key the slot in
 * that window, as another process would. */
pid_t __real_getpid(void);
pid_t __wrap_getpid(void);
static void (*getpid_hook)(void *);
static void *getpid_baton;

pid_t __wrap_getpid(void)
{
    void (*fn)(void *) = getpid_hook;

    if (fn) {
        getpid_hook = NULL; /* once, and not again from inside the hook */
        fn(getpid_baton);
    }
    return __real_getpid();
}

typedef struct {
    isr_zone_t *z;
    apr_pool_t *p;
    const char *key;
    apr_time_t when;
    apr_uint32_t slot;
    apr_uint64_t lease;
    int ok;
} rekey_t;

/* Another process: a miss for key y takes the slot (the old key has
 * expired at `when`) and publishes y there (lease released: 0). */
static void rekey_hook(void *baton)
{
    rekey_t *r = baton;
    apr_uint64_t hash = H(r->z, r->key);
    apr_uint32_t seq;
    isr_value_t v = { 0 };

    if (isr_store_claim_miss(r->z, hash, r->when, 10 * SEC, &r->slot, &seq,
                             &r->lease) != ISR_CLAIM_OWNED) {
        return;
    }
    v = VAL(200, NULL, 0, "Y", 1, r->when, r->when + 60 * SEC,
            r->when + 120 * SEC);
    r->ok = isr_store_publish(r->z, r->slot, r->lease, r->key, strlen(r->key),
                              hash, &v) == APR_SUCCESS;
}

static int case_claim_refresh_rekeyed(apr_pool_t *p)
{
    tzone_t t;
    char *keys[CAND + 1];
    apr_time_t now = apr_time_now();
    apr_uint64_t lease = 0, h0;
    isr_entry_t e;
    isr_value_t v = { 0 };
    rekey_t rk;
    int i, won;

    CHECK_RV(tzone_make(p, 1 * MiB, 43, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, CAND + 1, keys), CAND + 1);
    h0 = H(&t.z, keys[0]);
    /* Key 0 is stale from now + 1 s and expires at now + 10 s; the other 15
     * keys of its two buckets are fresh for an hour. */
    for (i = 0; i < CAND; i++) {
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now,
                now + (i ? 3600 : 1) * SEC, now + (i ? 7200 : 10) * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
    }
    CHECK_LOOK(LOOK(&t.z, keys[0], now + 5 * SEC, p, &e), ISR_LOOK_STALE);

    memset(&rk, 0, sizeof(rk));
    rk.z = &t.z;
    rk.p = p;
    rk.key = keys[CAND];
    rk.when = now + 20 * SEC;
    getpid_baton = &rk;
    getpid_hook = rekey_hook;
    won = isr_store_claim_refresh(&t.z, &e, now + 5 * SEC, 10 * SEC, &lease);
    getpid_hook = NULL;
    CHECKF(rk.ok && rk.slot == e.slot, "the hook did not re-key slot %u "
           "(ok %d, slot %u)", e.slot, rk.ok, rk.slot);
    /* The slot holds key 16 now: a claim for key 0 must not land there. */
    CHECKF(!won || t.z.slots[e.slot].hash == h0,
           "claim_refresh of key 0 won on slot %u, which holds another key "
           "now (lease %016llx there)", e.slot,
           (unsigned long long)t.z.slots[e.slot].lease);
    CHECK_EQ(t.z.slots[e.slot].lease, 0);
    CHECK_LOOK(LOOK(&t.z, keys[CAND], now + 20 * SEC, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 1 && e.body[0] == 'Y');
    CHECK_ZONE(&t.z);
    return 0;
}

/* 14b. A publish whose slot was lost meanwhile lands in another slot; the
 * lease it held on the original slot is dropped there too. */
static int case_publish_elsewhere_drops_lease(apr_pool_t *p)
{
    tzone_t t;
    char *keys[CAND];
    apr_time_t now = apr_time_now();
    apr_uint64_t h0, l0;
    apr_uint32_t s0, seq, b[2], other, i, odd = 0;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 47, &t));
    CHECK_EQ(same_bucket_keys(&t.z, p, CAND, keys), CAND);
    h0 = H(&t.z, keys[0]);
    CHECK_EQ(isr_store_claim_miss(&t.z, h0, now, 10 * SEC, &s0, &seq, &l0),
             ISR_CLAIM_OWNED);
    for (i = 1; i < CAND; i++) {
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now, now + 60 * SEC,
                now + 120 * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
    }
    /* Writers died on the key's slot and on two slots of the other bucket:
     * the publish repairs them and, the other bucket being emptier then,
     * stores the key there. */
    isr_store_buckets(&t.z, h0, b);
    other = b[0] == s0 / ISR_BUCKET_WAYS ? b[1] : b[0];
    t.z.slots[s0].seq |= 1u;
    for (i = 0; i < ISR_BUCKET_WAYS && odd < 2; i++) {
        isr_slot_t *s = &t.z.slots[other * ISR_BUCKET_WAYS + i];
        if (s->state == ISR_SLOT_VALID) {
            s->seq |= 1u;
            odd++;
        }
    }
    CHECK_EQ(odd, 2);
    v = VAL(200, NULL, 0, "k0", 2, now, now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, s0, l0, keys[0], strlen(keys[0]), h0,
                               &v));
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == 2 && memcmp(e.body, "k0", 2) == 0);
    CHECKF(e.slot != s0, "the publish stayed in slot %u", s0);
    CHECKF(t.z.slots[s0].lease != l0, "slot %u still holds the publisher's "
           "lease %016llx", s0, (unsigned long long)l0);
    CHECK_ZONE(&t.z);
    return 0;
}

/* 15. The slot's hash is read inside the seqlock section. A writer flips
 * one slot between key K (PENDING) and key Y (FAILED) as fast as it can,
 * following the writer protocol; a reader of K must never see Y's state. */
typedef struct {
    isr_slot_t *s;
    apr_uint64_t hk, hy;
    volatile int stop;
    unsigned long flips;
} flipper_t;

static void *flipper_run(void *arg)
{
    flipper_t *f = arg;
    isr_slot_t *s = f->s;

    while (!f->stop) {
        apr_uint32_t q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, q | 1u, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&s->hash, f->hy, __ATOMIC_RELAXED);
        __atomic_store_n(&s->state, ISR_SLOT_FAILED, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, (q | 1u) + 1, __ATOMIC_RELEASE);
        q = (q | 1u) + 1;
        __atomic_store_n(&s->seq, q | 1u, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&s->hash, f->hk, __ATOMIC_RELAXED);
        __atomic_store_n(&s->state, ISR_SLOT_PENDING, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, (q | 1u) + 1, __ATOMIC_RELEASE);
        f->flips++;
    }
    return NULL;
}

static int case_lookup_hash_in_section(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/k", *other = "http://127.0.0.1/y";
    apr_time_t now = apr_time_now(), end;
    apr_uint64_t l;
    apr_uint32_t slot, seq;
    unsigned long n = 0, seen[8] = {0};
    pthread_t th;
    flipper_t f;
    isr_entry_t e;

    CHECK_RV(tzone_make(p, 1 * MiB, 53, &t));
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, key), now, 60 * SEC, &slot,
                                  &seq, &l), ISR_CLAIM_OWNED);
    memset(&f, 0, sizeof(f));
    f.s = &t.z.slots[slot];
    f.hk = H(&t.z, key);
    f.hy = H(&t.z, other);
    CHECK(pthread_create(&th, NULL, flipper_run, &f) == 0);
    /* On the old code the first FAILED came after 1000 to 120000 lookups
     * (well under 0.1 s) in each of ten runs. */
    end = apr_time_now() + SEC;
    while (seen[ISR_LOOK_FAILED] == 0 && apr_time_now() < end) {
        int k;
        for (k = 0; k < 1000; k++) {
            seen[LOOK(&t.z, key, now, p, &e) & 7]++;
            n++;
        }
    }
    f.stop = 1;
    pthread_join(th, NULL);
    printf("    %lu lookups during %lu flips: %lu PENDING, %lu ABSENT, "
           "%lu FAILED\n", n, f.flips, seen[ISR_LOOK_PENDING],
           seen[ISR_LOOK_ABSENT], seen[ISR_LOOK_FAILED]);
    CHECKF(seen[ISR_LOOK_FAILED] == 0, "key K got the FAILED state of key Y "
           "%lu times", seen[ISR_LOOK_FAILED]);
    CHECK(seen[ISR_LOOK_PENDING] > 0);
    return 0;
}

/* 17. A refresh waiting in a queue holds a lease that keeps other refresh
 * claims off but is not live to misses or eviction; each claim's lease is a
 * new value even within one second (no ABA). */
static int case_queued_lease(apr_pool_t *p)
{
    tzone_t t;
    const char *key = "http://127.0.0.1/app/queued";
    apr_time_t now = apr_time_now(), late = now + 30 * SEC;
    apr_uint64_t hash, l1, l2, lm, lx;
    apr_uint32_t slot, seq;
    isr_entry_t e;
    isr_value_t v = { 0 };

    CHECK_RV(tzone_make(p, 1 * MiB, 59, &t));
    hash = H(&t.z, key);
    v = VAL(200, NULL, 0, "v1", 2, now - 2 * SEC, now - SEC, now + 20 * SEC);
    CHECK_RV(put(&t.z, key, &v, now - 2 * SEC, p));
    CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_STALE);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 60 * SEC, &l1), 1);
    /* Queued: one refresh per key still holds... */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, now, 60 * SEC, &lx), 0);
    /* ...but nobody waits for a job that has not started. */
    CHECKF(!isr_store_lease_live(l1, now), "a queued refresh lease is live");
    /* The entry expires before the job starts: a miss takes over. */
    CHECK_LOOK(LOOK(&t.z, key, late, p, &e), ISR_LOOK_EXPIRED);
    CHECK(!isr_store_lease_live(e.lease, late));
    CHECK_EQ(isr_store_claim_miss(&t.z, hash, late, 10 * SEC, &slot, &seq,
                                  &lm), ISR_CLAIM_OWNED);
    /* The queued job then starts: it must not fetch. */
    lx = l1;
    CHECK_EQ(isr_store_renew(&t.z, slot, hash, &lx, late, 10 * SEC), 0);
    v = VAL(200, NULL, 0, "v2", 2, late, late + 60 * SEC, late + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, lm, key, strlen(key), hash, &v));

    /* A job that starts in time renews its lease, which is then live. */
    CHECK_LOOK(LOOK(&t.z, key, late + 61 * SEC, p, &e), ISR_LOOK_STALE);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, late + 61 * SEC, 60 * SEC, &l1),
             1);
    CHECK(!isr_store_lease_live(l1, late + 61 * SEC));
    CHECK_EQ(isr_store_renew(&t.z, e.slot, hash, &l1, late + 61 * SEC, 60 * SEC), 1);
    CHECK(isr_store_lease_live(l1, late + 61 * SEC));
    CHECK_EQ(t.z.slots[e.slot].lease, l1);
    isr_store_release(&t.z, e.slot, l1);

    /* Two claims by one process in one second: two different leases, and
     * the first one's holder can no longer release or renew the second. */
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, late + 61 * SEC, 60 * SEC, &l1),
             1);
    isr_store_release(&t.z, e.slot, l1);
    CHECK_EQ(isr_store_claim_refresh(&t.z, &e, late + 61 * SEC, 60 * SEC, &l2),
             1);
    CHECKF(l1 != l2, "two claims in one second got the same lease %016llx",
           (unsigned long long)l1);
    isr_store_release(&t.z, e.slot, l1);
    CHECK_EQ(t.z.slots[e.slot].lease, l2);
    lx = l1;
    CHECK_EQ(isr_store_renew(&t.z, e.slot, hash, &lx, late + 61 * SEC, 60 * SEC), 0);
    CHECK_EQ(t.z.slots[e.slot].lease, l2);
    isr_store_release(&t.z, e.slot, l2);
    CHECK_EQ(t.z.slots[e.slot].lease, 0);

    /* The fields of the word (isr_shm.h) round-trip. */
    l1 = ISR_LEASE_MAKE(0xfedcba98u, 0x3fffff, 0x1ff);
    CHECK_EQ(ISR_LEASE_DEADLINE(l1), 0xfedcba98u);
    CHECK_EQ(ISR_LEASE_PID(l1), 0x3fffff);
    CHECK_EQ(ISR_LEASE_CTR(l1), 0x1ff);
    CHECK(!ISR_LEASE_IS_QUEUED(l1)
          && ISR_LEASE_IS_QUEUED(l1 | ISR_LEASE_QUEUED));
    CHECK_EQ(ISR_LEASE_PID(l1 | ISR_LEASE_QUEUED), 0x3fffff);
    CHECK_EQ(ISR_LEASE_CTR(l1 | ISR_LEASE_QUEUED), 0x1ff);
    l1 = ISR_LEASE_MAKE(now / SEC + 100, getpid(), 7);
    CHECK(isr_store_lease_live(l1, now));
    CHECK(!isr_store_lease_live(l1 | ISR_LEASE_QUEUED, now));
    return 0;
}

/* 16. Ring bytes are reused while readers copy them out without a lock.
 * A writer thread republishes a few keys with bodies of changing sizes in a
 * small ring, so every record overwrites bytes other keys' readers may be
 * copying; reader threads check every body they are given byte for byte.
 * (This holds on x86-64 with or without the release fence the C11 model
 * asks for: it guards the copy protocol, it cannot show the fence.) */
enum { REUSE_KEYS = 12, REUSE_MAXB = 24 * 1024 };

typedef struct {
    tzone_t *t;
    volatile int stop;
    volatile unsigned long checked, bad;
    char badmsg[256];
} reuse_t;

static void reuse_body(unsigned char *buf, apr_uint32_t k, apr_uint32_t ver,
                       apr_uint32_t len)
{
    rng_fill(((apr_uint64_t)k << 32) ^ ver, buf, len);
    memcpy(buf, &k, 4);
    memcpy(buf + 4, &ver, 4);
}

static apr_uint32_t reuse_len(apr_uint32_t k, apr_uint32_t ver)
{
    apr_uint64_t s = ((apr_uint64_t)k << 32) ^ ver;
    return (apr_uint32_t)rng_range(&s, 8, REUSE_MAXB);
}

static void *reuse_reader(void *arg)
{
    reuse_t *r = arg;
    unsigned char *want = malloc(REUSE_MAXB);
    apr_uint64_t rs = (apr_uint64_t)(uintptr_t)arg ^ 0x1234;
    apr_pool_t *p;
    char key[64];
    unsigned long n = 0;

    apr_pool_create(&p, NULL);
    while (!r->stop && !r->bad) {
        apr_uint32_t k = (apr_uint32_t)(rng_next(&rs) % REUSE_KEYS), ver;
        isr_entry_t e;
        snprintf(key, sizeof(key), "http://127.0.0.1/reuse/%u", k);
        if (LOOK(&r->t->z, key, apr_time_now(), p, &e) == ISR_LOOK_FRESH) {
            memcpy(&ver, e.body + 4, 4);
            reuse_body(want, k, ver, reuse_len(k, ver));
            if (e.bodylen != reuse_len(k, ver)
                || memcmp(e.body, want, e.bodylen) != 0) {
                snprintf(r->badmsg, sizeof(r->badmsg), "key %u version %u: "
                         "torn or wrong body (%zu bytes)", k, ver,
                         (size_t)e.bodylen);
                r->bad++;
            }
            __atomic_add_fetch(&r->checked, 1, __ATOMIC_RELAXED);
        }
        if ((++n & 255) == 0) {
            apr_pool_clear(p);
        }
    }
    apr_pool_destroy(p);
    free(want);
    return NULL;
}

static int case_ring_reuse_readers(apr_pool_t *p)
{
    tzone_t t;
    reuse_t r;
    pthread_t th[2];
    apr_uint32_t ver[REUSE_KEYS] = {0}, k;
    unsigned char *body = apr_palloc(p, REUSE_MAXB);
    apr_pool_t *wp;
    apr_time_t end;
    apr_uint64_t rs = 99, wraps;
    unsigned long pubs = 0;
    char key[64];
    int i;

    CHECK_RV(tzone_make(p, 256 * 1024, 67, &t));
    memset(&r, 0, sizeof(r));
    r.t = &t;
    for (i = 0; i < 2; i++) {
        CHECK(pthread_create(&th[i], NULL, reuse_reader, &r) == 0);
    }
    apr_pool_create(&wp, p); /* the lookups' copies; p holds the zone */
    end = apr_time_now() + SEC / 2;
    while (apr_time_now() < end && !r.bad) {
        apr_time_t now = apr_time_now();
        isr_value_t v = { 0 };
        k = (apr_uint32_t)(rng_next(&rs) % REUSE_KEYS);
        ver[k]++;
        reuse_body(body, k, ver[k], reuse_len(k, ver[k]));
        snprintf(key, sizeof(key), "http://127.0.0.1/reuse/%u", k);
        v = VAL(200, NULL, 0, body, reuse_len(k, ver[k]), now, now + 60 * SEC,
                now + 120 * SEC);
        if (put(&t.z, key, &v, now, wp) == APR_SUCCESS) {
            pubs++;
        }
        if ((pubs & 63) == 0) {
            apr_pool_clear(wp);
        }
    }
    r.stop = 1;
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    wraps = t.z.hdr->head / t.z.hdr->ring_size;
    printf("    %lu publishes (ring wrapped %llu times), %lu bodies checked\n",
           pubs, (unsigned long long)wraps, r.checked);
    CHECKF(!r.bad, "%s", r.badmsg);
    CHECK(wraps >= 10 && r.checked > 0);
    CHECK_ZONE(&t.z);
    return 0;
}

/* 7. Scan resistance: a hot key survives a flood of one-hit keys totalling
 * several times the ring, fresh or stale; a key inserted by a miss and hit
 * twice survives a ring's worth of flood without further hits; an expired
 * entry gets no second chance. */
typedef struct {
    tzone_t *t;
    apr_pool_t *p;
    const char *hot;
    apr_time_t now;
    int lost_at;
    apr_uint64_t hot_slot_seq;
} hot_t;

static int hit_hot(void *baton, int i)
{
    hot_t *h = baton;
    isr_entry_t e;
    isr_look_t l = LOOK(&h->t->z, h->hot, h->now, h->p, &e);

    if (l != ISR_LOOK_FRESH && l != ISR_LOOK_STALE) {
        h->lost_at = i;
        return 1;
    }
    if (e.bodylen != strlen(h->hot) || memcmp(e.body, h->hot, e.bodylen)) {
        h->lost_at = -2 - i;
        return 1;
    }
    return 0;
}

static int case_scan_resistance(apr_pool_t *p)
{
    tzone_t t;
    const char *hot = "http://127.0.0.1/app/hot";
    const char *stale = "http://127.0.0.1/app/stale-but-hot";
    const char *twice = "http://127.0.0.1/app/hit-twice";
    const char *gone = "http://127.0.0.1/app/expired";
    apr_time_t now = apr_time_now();
    apr_uint64_t rs;
    isr_entry_t e;
    isr_value_t v = { 0 };
    hot_t h;
    int r;

    CHECK_RV(tzone_make(p, 4 * MiB, 61, &t));
    rs = t.z.hdr->ring_size;
    /* The hot key: inserted by a miss, then hit between every flood record
     * (four rings' worth of 100 KiB one-hit records). */
    v = VAL(200, NULL, 0, hot, strlen(hot), now, now + 3600 * SEC,
            now + 7200 * SEC);
    CHECK_RV(put(&t.z, hot, &v, now, p));
    memset(&h, 0, sizeof(h));
    h.t = &t;
    h.p = p;
    h.hot = hot;
    h.now = now;
    r = flood(&t, p, "scan", 4 * rs, 100 * 1024, now, hit_hot, &h);
    CHECKF(r == 0, "hot key lost after %d flood records of 100 KiB (%llu "
           "KiB ring), flood line %d", h.lost_at,
           (unsigned long long)rs / 1024, r);
    CHECK_ZONE(&t.z);

    /* Same for a stale entry (served while its refresh runs). */
    v = VAL(200, NULL, 0, stale, strlen(stale), now - 20 * SEC, now - 10 * SEC,
            now + 3600 * SEC);
    CHECK_RV(put(&t.z, stale, &v, now - 20 * SEC, p));
    h.hot = stale;
    r = flood(&t, p, "scan2", 3 * rs, 64 * 1024, now, hit_hot, &h);
    CHECKF(r == 0, "stale hot key lost after %d flood records", h.lost_at);
    CHECK_LOOK(LOOK(&t.z, stale, now, p, &e), ISR_LOOK_STALE);

    /* Inserted, hit twice, then a ring's worth of flood with no hit. */
    v = VAL(200, NULL, 0, twice, strlen(twice), now, now + 3600 * SEC,
            now + 7200 * SEC);
    CHECK_RV(put(&t.z, twice, &v, now, p));
    CHECK_LOOK(LOOK(&t.z, twice, now, p, &e), ISR_LOOK_FRESH);
    CHECK_LOOK(LOOK(&t.z, twice, now, p, &e), ISR_LOOK_FRESH);
    CHECK_EQ(flood(&t, p, "scan3", rs, 100 * 1024, now, NULL, NULL), 0);
    CHECKF(LOOK(&t.z, twice, now, p, &e) == ISR_LOOK_FRESH,
           "a key hit twice did not survive one ring of one-hit keys");
    CHECK(e.bodylen == strlen(twice) && memcmp(e.body, twice, e.bodylen) == 0);

    /* An entry past its stale window is dropped however often it was hit.
     * (Publishes judge expiry by the clock: this one expired 10 s ago and
     * was hit at times before that.) */
    v = VAL(200, NULL, 0, gone, strlen(gone), now - 20 * SEC, now - 15 * SEC,
            now - 10 * SEC);
    CHECK_RV(put(&t.z, gone, &v, now - 20 * SEC, p));
    for (r = 0; r < 5; r++) {
        CHECK_LOOK(LOOK(&t.z, gone, now - 16 * SEC, p, &e), ISR_LOOK_FRESH);
    }
    CHECK_EQ(flood(&t, p, "scan4", 2 * rs, 100 * 1024, now, NULL, NULL), 0);
    CHECK_LOOK(LOOK(&t.z, gone, now - 16 * SEC, p, &e), ISR_LOOK_ABSENT);
    /* One-hit keys do not pile up: the oldest flood records are gone. */
    CHECK_LOOK(LOOK(&t.z, "http://127.0.0.1/scan4/0", now, p, &e),
               ISR_LOOK_ABSENT);
    CHECK_ZONE(&t.z);

    /* The moves are bounded: in a ring full of hot records, one publish
     * moves at most the credit the ring has earned (4 x what was written,
     * at most half the ring) plus one record, then evicts; once the credit
     * is spent, a publish moves about 4 x its own size. */
    {
        isr_store_info_t before, after;
        apr_uint64_t head0, moved, budget;
        char key[64];
        int n;

        static char blob[2000];
        CHECK_RV(tzone_make(p, 4 * MiB, 71, &t));
        rs = t.z.hdr->ring_size;
        /* Records of 2 KiB: half as many as there are slots. */
        for (n = 0; t.z.hdr->head + 2112 <= rs; n++) {
            snprintf(key, sizeof(key), "http://127.0.0.1/full/%d", n);
            v = VAL(200, NULL, 0, blob, sizeof(blob), now, now + 3600 * SEC,
                    now + 7200 * SEC);
            CHECK_RV(put(&t.z, key, &v, now, p));
        }
        for (r = 0; r < n; r++) { /* every record hit three times */
            snprintf(key, sizeof(key), "http://127.0.0.1/full/%d", r);
            CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
            CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
            CHECK_LOOK(LOOK(&t.z, key, now, p, &e), ISR_LOOK_FRESH);
        }
        isr_store_info(&t.z, &before);
        head0 = t.z.hdr->head;
        v = VAL(200, NULL, 0, blob, sizeof(blob), now, now + 3600 * SEC,
                now + 7200 * SEC);
        CHECK_RV(put(&t.z, "http://127.0.0.1/full/new", &v, now, p));
        isr_store_info(&t.z, &after);
        moved = t.z.hdr->head - head0;
        budget = rs / 2;
        printf("    %d hot records of 2 KiB: one publish moved %llu of "
               "them (%llu bytes, budget %llu)\n", n,
               (unsigned long long)(after.counts[ISR_STAT_SECOND_CHANCE]
                                    - before.counts[ISR_STAT_SECOND_CHANCE]),
               (unsigned long long)moved, (unsigned long long)budget);
        CHECK(after.counts[ISR_STAT_SECOND_CHANCE] > before.counts[ISR_STAT_SECOND_CHANCE]);
        CHECK((after.counts[ISR_STAT_SECOND_CHANCE] - before.counts[ISR_STAT_SECOND_CHANCE]) * 2048 <= budget + 2112);
        CHECK(moved <= budget + 3 * 2112);
        CHECK_ZONE(&t.z);
        /* The credit is spent: the next publish moves only its share. */
        for (r = 0; r < n; r++) {
            snprintf(key, sizeof(key), "http://127.0.0.1/full/%d", r);
            LOOK(&t.z, key, now, p, &e);
        }
        head0 = t.z.hdr->head;
        CHECK_RV(put(&t.z, "http://127.0.0.1/full/new2", &v, now, p));
        moved = t.z.hdr->head - head0;
        CHECK(moved <= 4 * 2112 + 3 * 2112);
        CHECK_ZONE(&t.z);
    }
    return 0;
}

/* An image read back from a file (isr_persist.h) is made safe before use:
 * what a dead run left (leases, odd slots, PENDING fetches) is cleared, and
 * a slot is kept only if its record is one of the ring's and agrees with
 * it; a ring that does not parse drops everything. The attach checks
 * every offset of a header that may come from a file. */
static int case_recover(apr_pool_t *p)
{
    tzone_t t;
    const char *keys[6] = {"k/lease", "k/odd", "k/wild", "k/plain",
                           "k/pending", "k/moved"};
    apr_uint32_t idx[6], slot, seq, free_off;
    apr_time_t now = apr_time_now();
    isr_shm_header_t saved;
    isr_zone_t z2;
    isr_value_t v;
    isr_entry_t e;
    apr_uint64_t l;
    int i;

    CHECK_RV(tzone_make(p, 1 * MiB, 31, &t));
    for (i = 0; i < 6; i++) {
        if (i == 4) {
            continue;
        }
        v = VAL(200, NULL, 0, keys[i], strlen(keys[i]), now, now + 60 * SEC,
                now + 120 * SEC);
        CHECK_RV(put(&t.z, keys[i], &v, now, p));
        CHECK_LOOK(LOOK(&t.z, keys[i], now, p, &e), ISR_LOOK_FRESH);
        idx[i] = e.slot;
    }
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[4]), now, 10 * SEC,
                                  &slot, &seq, &l), ISR_CLAIM_OWNED);
    idx[4] = slot;
    CHECK_EQ(t.z.slots[idx[4]].state, ISR_SLOT_PENDING);
    /* What the dead run left. */
    t.z.slots[idx[0]].lease = ISR_LEASE_MAKE(apr_time_sec(now) + 100,
                                             getpid(), 1);
    t.z.slots[idx[1]].seq |= 1u;
    t.z.slots[idx[2]].rec_off = t.z.hdr->ring_size + 4096;
    t.z.tags[idx[3]] = 0;   /* a stale hint: rebuilt */
    /* A copy of a sound record in free space, the slot pointing at it:
     * only the ring's own records count. */
    free_off = (apr_uint32_t)((t.z.hdr->head % t.z.hdr->ring_size) + 8192);
    CHECK(free_off + t.z.slots[idx[5]].rec_len < t.z.hdr->ring_size);
    memcpy(t.z.ring + free_off, t.z.ring + t.z.slots[idx[5]].rec_off,
           t.z.slots[idx[5]].rec_len);
    t.z.slots[idx[5]].rec_off = free_off;

    CHECK_EQ(isr_store_recover(&t.z), 2);
    for (apr_uint32_t k = 0; k < t.z.nslots; k++) {
        CHECKF(t.z.slots[k].seq % 2 == 0, "slot %u left odd", k);
        CHECKF(t.z.slots[k].lease == 0, "slot %u keeps a lease", k);
        CHECKF(t.z.tags[k] == t.z.slots[k].hash, "tag %u not rebuilt", k);
        CHECKF(t.z.slots[k].state != ISR_SLOT_PENDING, "slot %u pending", k);
    }
    CHECK_LOOK(LOOK(&t.z, keys[0], now, p, &e), ISR_LOOK_FRESH);
    CHECK(e.bodylen == strlen(keys[0]) && !memcmp(e.body, keys[0], e.bodylen));
    CHECK_LOOK(LOOK(&t.z, keys[3], now, p, &e), ISR_LOOK_FRESH);
    for (i = 1; i < 6; i++) {
        if (i != 3) {
            CHECK_LOOK(LOOK(&t.z, keys[i], now, p, &e), ISR_LOOK_ABSENT);
        }
    }
    /* The owner of the dead run's claim is gone: the key is free. */
    CHECK_EQ(isr_store_claim_miss(&t.z, H(&t.z, keys[4]), now, 10 * SEC,
                                  &slot, &seq, &l), ISR_CLAIM_OWNED);
    v = VAL(200, NULL, 0, "new", 3, now, now + 60 * SEC, now + 120 * SEC);
    CHECK_RV(isr_store_publish(&t.z, slot, l, keys[4], strlen(keys[4]),
                               H(&t.z, keys[4]), &v));
    CHECK_ZONE(&t.z);
    /* Recovering a sound image again changes nothing. */
    CHECK_EQ(isr_store_recover(&t.z), 3);
    CHECK_ZONE(&t.z);

    /* A ring that does not parse from its tail: nothing is kept. */
    memcpy(t.z.ring + t.z.hdr->tail % t.z.hdr->ring_size, "BAD!", 4);
    CHECK_EQ(isr_store_recover(&t.z), 0);
    CHECK_EQ(t.z.hdr->tail, t.z.hdr->head);
    CHECK_EQ(t.z.hdr->head, 0);
    for (i = 0; i < 6; i++) {
        CHECK_LOOK(LOOK(&t.z, keys[i], now, p, &e), ISR_LOOK_ABSENT);
    }
    CHECK_RV(put(&t.z, keys[3], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[3], now, p, &e), ISR_LOOK_FRESH);
    CHECK_ZONE(&t.z);
    /* head - tail larger than the ring, or a position not aligned (even
     * with nothing between them): dropped too, and positions aligned. */
    t.z.hdr->head += t.z.hdr->ring_size + 64;
    CHECK_EQ(isr_store_recover(&t.z), 0);
    CHECK_EQ(t.z.hdr->tail, t.z.hdr->head);
    CHECK_ZONE(&t.z);
    t.z.hdr->tail = t.z.hdr->head = 4096 + 2;
    CHECK_EQ(isr_store_recover(&t.z), 0);
    CHECK_EQ(t.z.hdr->head % ISR_REC_ALIGN, 0);
    CHECK_RV(put(&t.z, keys[3], &v, now, p));
    CHECK_LOOK(LOOK(&t.z, keys[3], now, p, &e), ISR_LOOK_FRESH);
    CHECK_ZONE(&t.z);

    /* Every offset of the header is checked against what format makes. */
    saved = *t.z.hdr;
    memset(&z2, 0, sizeof(z2));
    t.z.hdr->ring_size -= ISR_REC_ALIGN;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *t.z.hdr = saved;
    t.z.hdr->purge_buckets *= 2;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *t.z.hdr = saved;
    t.z.hdr->tags_off += ISR_REC_ALIGN;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *t.z.hdr = saved;
    t.z.hdr->stats_off += 8;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *t.z.hdr = saved;
    t.z.hdr->nbuckets /= 2;
    CHECK_EQ(isr_store_attach(&z2, t.base, t.size), APR_EINVAL);
    *t.z.hdr = saved;
    CHECK(z2.hdr == NULL);
    CHECK_RV(isr_store_attach(&z2, t.base, t.size));
    return 0;
}

/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*fn)(apr_pool_t *p);
} cases[] = {
    {"format_attach", case_format_attach},
    {"hash", case_hash},
    {"siphash_vectors", case_siphash_vectors},
    {"fresh_roundtrip", case_fresh_roundtrip},
    {"stale_expired", case_stale_expired},
    {"claim_refresh", case_claim_refresh},
    {"backoff", case_backoff},
    {"dead_owner", case_dead_owner},
    {"mark_pass_failed", case_mark_pass_failed},
    {"bucket_full", case_bucket_full},
    {"ring_wrap", case_ring_wrap},
    {"oversize", case_oversize},
    {"odd_seq_repair", case_odd_seq_repair},
    {"wait_wake", case_wait_wake},
    {"expired_claim_not_evicted", case_expired_claim_not_evicted},
    {"half_full_keeps_all", case_half_full_keeps_all},
    {"lookup_hash_in_section", case_lookup_hash_in_section},
    {"claim_refresh_rekeyed", case_claim_refresh_rekeyed},
    {"publish_elsewhere_drops_lease", case_publish_elsewhere_drops_lease},
    {"queued_lease", case_queued_lease},
    {"ring_reuse_readers", case_ring_reuse_readers},
    {"ring_evict_keeps_live_lease", case_ring_evict_keeps_live_lease},
    {"scan_resistance", case_scan_resistance},
    {"record_parse", case_record_parse},
    {"recover", case_recover},
};

/* Cases that show store bugs not fixed yet: they fail today. Run with
 * --known-bugs (tests/test_600_unit.py runs them as expected failures). */
static const struct {
    const char *name;
    int (*fn)(apr_pool_t *p);
} known_bugs[] = {
    {NULL, NULL},
};

int main(int argc, const char *const *argv)
{
    int failed = 0, ran = 0, i, a, bugs = 0, named = 0;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, "apr_app_initialize failed\n");
        return 2;
    }
    atexit(apr_terminate);
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--known-bugs") == 0) {
            bugs = 1;
        }
        else {
            named++;
        }
    }
    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        int want = !named && !bugs;
        for (a = 1; a < argc; a++) {
            want |= strcmp(argv[a], cases[i].name) == 0;
        }
        if (want) {
            failed += run_case(cases[i].name, cases[i].fn);
            ran++;
        }
    }
    for (i = 0; known_bugs[i].name; i++) {
        int want = bugs && !named;
        for (a = 1; a < argc; a++) {
            want |= strcmp(argv[a], known_bugs[i].name) == 0;
        }
        if (want) {
            failed += run_case(known_bugs[i].name, known_bugs[i].fn);
            ran++;
        }
    }
    printf("%d cases, %d failed\n", ran, failed);
    return failed || ran == 0 ? 1 : 0;
}
