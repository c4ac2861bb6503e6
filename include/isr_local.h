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

/* With zero_copy (ISRZeroCopy On), copies this large live in a memfd each
 * (at most ISR_LOCAL_FILES per child, and at most a quarter of its
 * RLIMIT_NOFILE; the others in the heap), so their bodies can be sent with
 * sendfile (isr_local_file_bucket). */
#define ISR_LOCAL_FILE_MIN (32 * 1024)
#define ISR_LOCAL_FILES    512

/* child_init: keep at most `budget` bytes of copies (0 turns them off);
 * the copies are freed when pchild is cleaned up. */
void isr_local_init(apr_pool_t *pchild, apr_size_t budget, int zero_copy);

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

/* The same bytes as a file bucket, for httpd's sendfile path, on a
 * descriptor of its own opened on the copy's memfd in pool p (its own file
 * offset for readers that seek; closed with p); NULL when the copy has no
 * file, the body is small or the open fails. The memfd must still be open
 * when it is called: the caller holds the lookup's reference. */
apr_bucket *isr_local_file_bucket(const void *record, const char *data,
                                  apr_size_t len, apr_pool_t *p,
                                  apr_bucket_alloc_t *list);

#endif /* ISR_LOCAL_H */
