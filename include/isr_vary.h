/* Vary (RFC 9111 4.1) in ISRCacheControl Strict mode, where the client's
 * request headers reach the backend: which of them a response varies on,
 * the values a variant is keyed by, and the marker a URL's key holds when
 * its responses vary.
 *
 * A URL whose response names request headers in Vary is stored as a marker
 * record under the URL's key (status ISR_VARY_STATUS, the normalised names
 * and a generation) and one record per variant under a variant key: the
 * URL's context with the variant's header values and the generation
 * (isr_ctx_t.variant). A lookup finds the marker and then the variant:
 * two lookups, no scan. A new marker (the URL was invalidated, evicted or
 * changed its Vary) has a new generation, so older variants are never
 * reached again and age out.
 *
 * APR only: unit-tested and fuzzed without a server. */
#ifndef ISR_VARY_H
#define ISR_VARY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "isr_ctx.h"

/* The status of a marker record (no HTTP status is below 100). */
#define ISR_VARY_STATUS 1

/* At most this many names in one Vary (more: not stored). */
#define ISR_VARY_NAMES_MAX 16

typedef enum {
    ISR_VARY_NONE,    /* no Vary */
    ISR_VARY_SOME,    /* names */
    ISR_VARY_ANY,     /* Vary: * (never matches: not stored) */
    ISR_VARY_BAD      /* too many names, or one that is not a token */
} isr_vary_t;

/* The names in the Vary fields of a stored head, lower-cased, sorted and
 * unique, joined by "," into *names (NULL unless ISR_VARY_SOME). */
isr_vary_t isr_vary_names(apr_pool_t *p, const char *headers,
                          apr_size_t hdrlen, const char **names);

/* A request header's value as variants are keyed by it (and, in Strict
 * mode, as it is sent): whitespace around commas dropped, other runs of
 * whitespace made one space; Accept-Encoding reduced to what a cache
 * needs to tell apart: "br,gzip", "br", "gzip" or "identity" (by
 * q-values, RFC 9110 12.5.3). */
const char *isr_vary_value(apr_pool_t *p, const char *name,
                           const char *value);

/* The head of the marker record for names and generation gen. */
void isr_vary_marker(apr_pool_t *p, const char *names, const char *gen,
                     const char **headers, apr_size_t *hdrlen);

/* A marker's names and generation (pointing into headers): 1, or 0 when
 * the head is not a marker's. */
int isr_vary_marker_read(const char *headers, apr_size_t hdrlen,
                         const char **names, const char **gen);

/* The variant context: `base` (a URL's context) with generation gen and,
 * for each of the names, the value in `in` (all its lines, normalised);
 * a header absent from `in` adds nothing. */
void isr_vary_ctx(apr_pool_t *p, const isr_ctx_t *base, const char *names,
                  const char *gen, apr_table_t *in, isr_ctx_t *out);

#endif /* ISR_VARY_H */
