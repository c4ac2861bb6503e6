/* libFuzzer target: an entry read from the second tier (src/isr_tier_rec.c).
 * Another server (or whoever can write to Redis) wrote those bytes, so
 * every length is checked against what arrived, the key against the one
 * asked for, the head, alternates and tags against what the local store
 * accepts.
 *
 * Each input is   klen (1) | key (klen bytes) | record bytes
 * Checks: an accepted record points inside the input, holds the key, and
 * packs back to the same bytes (what a server writes, another reads).
 *
 *   make fuzz-build
 *   build/fuzz/fuzz_tier -max_total_time=30 fuzz/corpus/tier/
 */
#include "../src/isr_tier_rec.c"
#include "../src/isr_compress.c"
#include "../src/isr_http.c"

#include <stdint.h>
#include <stdlib.h>
#include <apr_general.h>

static apr_pool_t *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        abort();
    }
    return 0;
}

static int inside(const char *p, apr_size_t n, const char *buf,
                  apr_size_t len)
{
    return !n || (p >= buf && p + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    isr_tier_rec_t rec;
    const char *key, *buf, *again;
    apr_size_t klen, len, alen;
    char *copy;

    if (size < 1 || (size_t)data[0] + 1 > size) {
        return 0;
    }
    klen = data[0];
    key = (const char *)data + 1;
    len = size - 1 - klen;
    /* An exact copy: AddressSanitizer sees a read past the end. */
    copy = malloc(len ? len : 1);
    memcpy(copy, data + 1 + klen, len);
    buf = copy;
    if (isr_tier_rec_unpack(pool, buf, len, key, klen, &rec)) {
        if (rec.klen != klen || memcmp(rec.key, key, klen)
            || !inside(rec.headers, rec.hdrlen, buf, len)
            || !inside(rec.body, rec.bodylen, buf, len)
            || !inside(rec.alts, rec.altlen, buf, len)
            || !rec.tags || rec.status < 100 || rec.status > 999) {
            abort();
        }
        isr_tier_rec_pack(pool, &rec, &again, &alen);
        if (alen != len || memcmp(again, buf, len)) {
            abort();
        }
    }
    free(copy);
    apr_pool_clear(pool);
    return 0;
}
