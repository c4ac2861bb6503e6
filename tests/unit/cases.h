/* What the store's C case programs (test_store.c, review_store.c) share:
 * the CHECK macros (a failing check returns 1 from the case), key hashing,
 * values and a put() that stores the way the module does. Include after
 * unit.h, once per program. */
#ifndef ISR_UNIT_CASES_H
#define ISR_UNIT_CASES_H

/* Slots a key may live in: 8 ways in each of its two buckets. */
#define CAND (2 * ISR_BUCKET_WAYS)

#define SEC APR_USEC_PER_SEC
#define MiB (1024 * 1024)

static const char *case_name;

#define FAILF(...) do { \
        fprintf(stderr, "  %s: %s:%d: ", case_name, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr); \
        return 1; \
    } while (0)
#define CHECK(c) do { if (!(c)) FAILF("CHECK(%s) failed", #c); } while (0)
#define CHECKF(c, ...) do { if (!(c)) FAILF(__VA_ARGS__); } while (0)
#define CHECK_EQ(a, b) do { \
        long long a_ = (long long)(a), b_ = (long long)(b); \
        if (a_ != b_) FAILF("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
    } while (0)
#define CHECK_RV(rv) do { \
        apr_status_t rv_ = (rv); char eb_[120]; \
        if (rv_ != APR_SUCCESS) \
            FAILF("%s: %s", #rv, apr_strerror(rv_, eb_, sizeof(eb_))); \
    } while (0)
#define CHECK_ZONE(z) do { \
        const char *zc_ = zone_check(z); \
        if (zc_) FAILF("zone_check: %s", zc_); \
    } while (0)

static inline const char *look_name(isr_look_t l)
{
    static const char *n[] = {"ABSENT", "FRESH", "STALE", "EXPIRED",
                              "PENDING", "PASS", "FAILED"};
    return (unsigned)l < sizeof(n) / sizeof(n[0]) ? n[l] : "?";
}

#define CHECK_LOOK(got, want) do { \
        isr_look_t g_ = (got), w_ = (want); \
        if (g_ != w_) FAILF("lookup: %s, expected %s", look_name(g_), \
                            look_name(w_)); \
    } while (0)

static inline apr_uint64_t H(isr_zone_t *z, const char *key)
{
    return isr_store_hash(z, key, strlen(key));
}

static isr_look_t LOOK(isr_zone_t *z, const char *key, apr_time_t now,
                       apr_pool_t *p, isr_entry_t *e)
{
    return isr_store_lookup(z, key, strlen(key), H(z, key), now, p, e);
}

static inline isr_value_t VAL(int status, const char *hdrs, apr_size_t hdrlen,
                       const void *body, apr_size_t bodylen, apr_time_t fetched,
                       apr_time_t fresh_until, apr_time_t stale_until)
{
    isr_value_t v;

    memset(&v, 0, sizeof(v));
    v.status = status;
    v.headers = hdrs;
    v.hdrlen = hdrlen;
    v.body = body;
    v.bodylen = bodylen;
    v.fetched = fetched;
    v.fresh_until = fresh_until;
    v.stale_until = stale_until;
    return v;
}

/* Store v for key the way the module does: a refresh claim on a usable
 * entry, a miss claim otherwise. Returns the publish status, or -1 when no
 * claim could be had. */
static inline apr_status_t put(isr_zone_t *z, const char *key, const isr_value_t *v,
                        apr_time_t now, apr_pool_t *p)
{
    apr_uint64_t hash = H(z, key), lease;
    apr_uint32_t slot, seq;
    isr_entry_t e;
    isr_look_t l = isr_store_lookup(z, key, strlen(key), hash, now, p, &e);

    if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
        if (!isr_store_claim_refresh(z, &e, now, 10 * SEC, &lease)) {
            return -1;
        }
        slot = e.slot;
    }
    else if (isr_store_claim_miss(z, hash, now, 10 * SEC, &slot, &seq, &lease)
             != ISR_CLAIM_OWNED) {
        return -1;
    }
    return isr_store_publish(z, slot, lease, key, strlen(key), hash, v);
}

/* Keys that all have the same two buckets. */
static inline int same_bucket_keys(isr_zone_t *z, apr_pool_t *p, int n, char **keys)
{
    apr_uint32_t want[2] = {0, 0}, b[2];
    int found = 0, i;

    for (i = 0; found < n && i < 50000000; i++) {
        char *k = apr_psprintf(p, "http://127.0.0.1/b/%d", i);
        isr_store_buckets(z, H(z, k), b);
        if (found == 0) {
            want[0] = b[0];
            want[1] = b[1];
        }
        if ((b[0] == want[0] && b[1] == want[1])
            || (b[0] == want[1] && b[1] == want[0])) {
            keys[found++] = k;
        }
    }
    return found;
}

/* Run one case in a pool of its own; 1 when it failed. */
static inline int run_case(const char *name, int (*fn)(apr_pool_t *p))
{
    apr_pool_t *p;
    apr_time_t t0;
    int r;

    case_name = name;
    apr_pool_create(&p, NULL);
    t0 = apr_time_now();
    r = fn(p);
    apr_pool_destroy(p);
    printf("%s %s (%.1f ms)\n", r ? "FAIL" : "ok  ", name,
           (double)(apr_time_now() - t0) / 1000);
    return r != 0;
}

#endif /* ISR_UNIT_CASES_H */
