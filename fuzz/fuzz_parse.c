/* libFuzzer target for src/isr_parse.c: the parsers of directive values
 * (ISRCacheTTL and friends, ISRCacheZone / ISRMaxObjectSize sizes,
 * ISRRefreshThreads counts).
 *
 * Each input is one argument string (NUL-terminated copy, so an embedded NUL
 * ends it as it would in httpd's config reader). Besides the sanitizers
 * catching bad memory use and undefined behaviour, every result is checked
 * against a small reference parser written from the documented grammar
 * (include/isr_parse.h): same accept/reject decision, same error code, same
 * value, and accepted values stay within ISR_PARSE_MAX_DURATION /
 * ISR_PARSE_MAX_SIZE. A mismatch aborts, so libFuzzer keeps the input.
 *
 *   make fuzz                         all targets, FUZZ_SECONDS each
 *   build/fuzz/fuzz_parse -max_total_time=600 build/fuzz/corpus/parse fuzz/corpus/parse
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/isr_parse.c"

#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz_parse: %s:%d: check failed: %s: ", \
                    __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            abort(); \
        } \
    } while (0)

/* Leading decimal digits of s as an unsigned value, saturated at UINT64_MAX;
 * *end is set past them. */
static uint64_t ref_digits(const char *s, const char **end)
{
    uint64_t n = 0;
    int over = 0;

    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10) {
            over = 1;
        }
        else {
            n = n * 10 + d;
        }
        s++;
    }
    *end = s;
    return over ? UINT64_MAX : n;
}

static int ieq(const char *a, const char *b)
{
    while (*a && *b) {
        char x = *a++, y = *b++;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == *b;
}

/* Durations: DIGITS [ms|s|m|h] (case-insensitive), at most 10 years. */
static apr_status_t ref_duration(const char *s, apr_interval_time_t *out)
{
    const char *end;
    uint64_t n, unit;

    if (!(*s >= '0' && *s <= '9')) {
        return APR_EINVAL;
    }
    n = ref_digits(s, &end);
    if (n > (uint64_t)INT64_MAX) {
        return APR_EINVAL;          /* does not fit the 64-bit parse */
    }
    if (ieq(end, "ms"))                  unit = 1000;
    else if (!*end || ieq(end, "s"))     unit = APR_USEC_PER_SEC;
    else if (ieq(end, "m"))              unit = 60 * APR_USEC_PER_SEC;
    else if (ieq(end, "h"))              unit = 3600 * APR_USEC_PER_SEC;
    else                                 return APR_EINVAL;
    if (n > (uint64_t)ISR_PARSE_MAX_DURATION / unit) {
        return APR_ERANGE;
    }
    *out = (apr_interval_time_t)(n * unit);
    return APR_SUCCESS;
}

/* Sizes: DIGITS [K|M|G [B]] or DIGITS alone (case-insensitive), at most 64G. */
static apr_status_t ref_size(const char *s, apr_off_t *out)
{
    const char *end;
    uint64_t n, unit = 1;

    if (!(*s >= '0' && *s <= '9')) {
        return APR_EINVAL;
    }
    n = ref_digits(s, &end);
    if (n > (uint64_t)INT64_MAX) {
        return APR_EINVAL;          /* apr_strtoff reports ERANGE */
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': unit = 1024; end++; break;
    case 'm': case 'M': unit = 1024 * 1024; end++; break;
    case 'g': case 'G': unit = 1024 * 1024 * 1024; end++; break;
    default: return APR_EINVAL;
    }
    if (*end == 'b' || *end == 'B') {
        end++;
    }
    if (*end) {
        return APR_EINVAL;
    }
    if (n > (uint64_t)ISR_PARSE_MAX_SIZE / unit) {
        return APR_ERANGE;
    }
    *out = (apr_off_t)(n * unit);
    return APR_SUCCESS;
}

/* Whole numbers: DIGITS only, within [min, max]. */
static int ref_long(const char *s, long min, long max, long *out)
{
    const char *end;
    uint64_t n;

    if (!(*s >= '0' && *s <= '9')) {
        return 0;
    }
    n = ref_digits(s, &end);
    if (*end || n > (uint64_t)LONG_MAX) {
        return 0;
    }
    if ((long)n < min || (long)n > max) {
        return 0;
    }
    *out = (long)n;
    return 1;
}

static void check_duration(const char *s)
{
    apr_interval_time_t got = -1, want = -1;
    apr_status_t rv = isr_parse_duration(s, &got);
    apr_status_t rr = ref_duration(s, &want);

    CHECK(rv == rr, "duration '%s': status %d, reference %d", s, rv, rr);
    if (rv == APR_SUCCESS) {
        CHECK(got == want, "duration '%s': %lld, reference %lld", s,
              (long long)got, (long long)want);
        CHECK(got >= 0 && got <= ISR_PARSE_MAX_DURATION, "duration '%s': %lld out of range",
              s, (long long)got);
    }
}

static void check_size(const char *s)
{
    apr_off_t got = -1, want = -1;
    apr_status_t rv = isr_parse_size(s, &got);
    apr_status_t rr = ref_size(s, &want);

    CHECK(rv == rr, "size '%s': status %d, reference %d", s, rv, rr);
    if (rv == APR_SUCCESS) {
        CHECK(got == want, "size '%s': %lld, reference %lld", s,
              (long long)got, (long long)want);
        CHECK(got >= 0 && got <= ISR_PARSE_MAX_SIZE, "size '%s': %lld out of range",
              s, (long long)got);
    }
}

static void check_long(const char *s, long min, long max)
{
    long got = LONG_MIN, want = LONG_MIN;
    int ok = isr_parse_long(s, min, max, &got);
    int rok = ref_long(s, min, max, &want);

    CHECK(ok == rok, "long '%s' in [%ld, %ld]: %d, reference %d", s, min, max, ok, rok);
    if (ok) {
        CHECK(got == want && got >= min && got <= max,
              "long '%s' in [%ld, %ld]: %ld, reference %ld", s, min, max, got, want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';

    check_duration(s);
    check_size(s);
    /* The ranges the config uses (ISRRefreshThreads 1-256, ISROnError
     * 400-599), the widest one, and a negative lower bound. */
    check_long(s, 1, 256);
    check_long(s, 400, 599);
    check_long(s, 0, LONG_MAX);
    check_long(s, -10, 10);

    free(s);
    return 0;
}
