/* Parsers of configuration values: APR only (no httpd), so that they can
 * be unit-tested and fuzzed without a server. */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "isr_parse.h"

apr_status_t isr_parse_duration(const char *arg, apr_interval_time_t *out)
{
    apr_int64_t n, unit = APR_USEC_PER_SEC;
    char *end;

    if (!apr_isdigit(*arg)) {
        return APR_EINVAL;
    }
    errno = 0;
    n = apr_strtoi64(arg, &end, 10);
    if (errno) {
        return APR_EINVAL;
    }
    if (!strcasecmp(end, "ms")) {
        unit = 1000;
    }
    else if (!*end || !strcasecmp(end, "s")) {
        unit = APR_USEC_PER_SEC;
    }
    else if (!strcasecmp(end, "m")) {
        unit = 60 * APR_USEC_PER_SEC;
    }
    else if (!strcasecmp(end, "h")) {
        unit = 3600 * APR_USEC_PER_SEC;
    }
    else {
        return APR_EINVAL;
    }
    if (n > ISR_PARSE_MAX_DURATION / unit) {
        return APR_ERANGE;
    }
    *out = n * unit;
    return APR_SUCCESS;
}

apr_status_t isr_parse_size(const char *arg, apr_off_t *out)
{
    apr_off_t n, unit = 1;
    char *end;

    if (!apr_isdigit(*arg) || apr_strtoff(&n, arg, &end, 10) != APR_SUCCESS) {
        return APR_EINVAL;
    }
    switch (apr_toupper(*end)) {
    case '\0': unit = 1; break;
    case 'K': unit = 1024; end++; break;
    case 'M': unit = 1024 * 1024; end++; break;
    case 'G': unit = 1024 * 1024 * 1024; end++; break;
    default: return APR_EINVAL;
    }
    if (apr_toupper(*end) == 'B') {
        end++;
    }
    if (*end) {
        return APR_EINVAL;
    }
    if (n > ISR_PARSE_MAX_SIZE / unit) {
        return APR_ERANGE;
    }
    *out = n * unit;
    return APR_SUCCESS;
}

int isr_parse_long(const char *arg, long min, long max, long *out)
{
    char *end;
    long n;

    if (!apr_isdigit(*arg)) {
        return 0;
    }
    errno = 0;
    n = strtol(arg, &end, 10);
    if (errno || *end || n < min || n > max) {
        return 0;
    }
    *out = n;
    return 1;
}
