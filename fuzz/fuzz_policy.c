/* libFuzzer target: the caching policy of a stored head (src/isr_policy.c).
 * Whatever the bytes of two stored heads ("name\0value\0" pairs, possibly
 * malformed or unterminated), reading them never crashes or reads past
 * their end, the times come out ordered (born <= response time, fresh <=
 * the windows <= kept), and the head a 304 update builds is a well-formed
 * blob of whole pairs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>

#include "../src/isr_http.c"
#include "../src/isr_policy.c"

static apr_pool_t *root;

static void check_blob(const char *b, apr_size_t len)
{
    const char *end = b + len, *z;

    while (b < end) {
        z = memchr(b, '\0', end - b);          /* name */
        if (!z) {
            abort();
        }
        z = memchr(z + 1, '\0', end - (z + 1)); /* value */
        if (!z) {
            abort();
        }
        b = z + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    isr_policy_conf_t pc;
    isr_policy_t pol;
    isr_times_t t;
    apr_pool_t *p;
    const uint8_t *cut;
    const char *out;
    apr_size_t olen, alen, blen;
    char *a, *b;
    apr_time_t now = APR_INT64_C(1764633600) * APR_USEC_PER_SEC;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    if (size < 2) {
        return 0;
    }
    pc.mode = (isr_cc_mode_t)(data[0] % 3);
    pc.ttl = apr_time_from_sec(data[1]);
    pc.stale_ttl = apr_time_from_sec(data[1] / 2);
    data += 2;
    size -= 2;
    /* Two heads split at the first "\n\n" (or all in the first). */
    cut = memmem(data, size, "\n\n", 2);
    alen = cut ? (apr_size_t)(cut - data) : size;
    blen = cut ? size - alen - 2 : 0;
    apr_pool_create(&p, root);
    /* Exact-size copies, so that ASan sees any read past either end. */
    a = malloc(alen ? alen : 1);
    b = malloc(blen ? blen : 1);
    memcpy(a, data, alen);
    if (blen) {
        memcpy(b, cut + 2, blen);
    }
    isr_policy_read(a, alen, &pol);
    isr_policy_times(&pol, &pc, now - 1000, now, &t);
    if (t.born > now || t.fresh_until > t.keep_until
        || t.swr_until > t.keep_until || t.sie_until > t.keep_until
        || (pc.mode != ISR_CC_OFF && (t.swr_until < t.fresh_until
                                      || t.sie_until < t.fresh_until))) {
        abort();
    }
    (void)isr_policy_explicit(&pol);
    isr_policy_update(p, a, alen, b, blen, &out, &olen);
    check_blob(out, olen);
    isr_policy_read(out, olen, &pol);
    free(a);
    free(b);
    apr_pool_destroy(p);
    return 0;
}
