/* Parsers of configuration values (APR only: unit-tested and fuzzed
 * without a server). Each rejects trailing garbage. */
#ifndef ISR_PARSE_H
#define ISR_PARSE_H

#include <apr.h>
#include <apr_errno.h>
#include <apr_time.h>

#define ISR_PARSE_MAX_DURATION apr_time_from_sec((apr_int64_t)10 * 365 * 86400)
#define ISR_PARSE_MAX_SIZE     ((apr_off_t)64 * 1024 * 1024 * 1024)

/* Durations "90" (seconds), "1500ms", "2s", "5m", "1h", at most 10 years.
 * APR_EINVAL when malformed, APR_ERANGE when too large. */
apr_status_t isr_parse_duration(const char *arg, apr_interval_time_t *out);

/* Sizes "512" (bytes), "64K", "1M", "2G" (an optional "B" after the unit),
 * at most 64G. */
apr_status_t isr_parse_size(const char *arg, apr_off_t *out);

/* A whole decimal number from min to max, nothing after it: 1 when it is
 * one (stored in *out), else 0. */
int isr_parse_long(const char *arg, long min, long max, long *out);

#endif /* ISR_PARSE_H */
