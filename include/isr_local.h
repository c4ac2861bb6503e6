/* Per-child copies of large records, shared by the child's threads. A hit
 * on a record this child has already copied sends that copy (reference
 * counted, freed when the last response using it is written) instead of
 * copying the record out of shared memory again. A copy holds one version
 * of a slot (its seq) and never changes, so no writer can tear it. */
#ifndef ISR_LOCAL_H
#define ISR_LOCAL_H

#include <apr_buckets.h>
#include "isr_store.h"

/* Smaller records are copied per request: cheaper than sharing. */
#define ISR_LOCAL_MIN (8 * 1024)

/* child_init: keep at most `budget` bytes of copies (0 turns them off);
 * the copies are freed when pchild is cleaned up. */
void isr_local_init(apr_pool_t *pchild, apr_size_t budget);

/* Copy operations for one lookup. References the lookup takes are released
 * when pool p (the request's) is cleaned up. */
typedef struct {
    isr_copy_t ops;
    apr_pool_t *pool;
    const void *kept;          /* the record the lookup returned, if ours */
} isr_local_lookup_t;

void isr_local_lookup_init(isr_local_lookup_t *l, apr_pool_t *p);

/* A bucket for len bytes at data inside `record`, a record that a lookup
 * with isr_local ops returned (isr_local_lookup_t.kept). */
apr_bucket *isr_local_bucket(const void *record, const char *data,
                             apr_size_t len, apr_bucket_alloc_t *list);

#endif /* ISR_LOCAL_H */
