/* The per-child pool of threads that run background refreshes. */
#ifndef ISR_REFRESH_H
#define ISR_REFRESH_H

#include <httpd.h>
#include <apr_thread_proc.h>

/* A refresh task. It owns its baton (allocate it from an unmanaged pool
 * and destroy that at the end): the request that started it is gone by the
 * time it runs. */
typedef void (*isr_refresh_fn)(void *baton);

/* child_init: start at most `threads` threads, stopped by a pre-cleanup of
 * pchild that aborts fetches in flight and joins the threads. */
apr_status_t isr_refresh_start(apr_pool_t *pchild, int threads, server_rec *s);

/* Queue fn(baton). APR_EAGAIN when the queue is full or the pool is not
 * running (the caller keeps ownership of the baton then). */
apr_status_t isr_refresh_submit(isr_refresh_fn fn, void *baton);

/* Work an operator asked for in bulk (POST <admin>/warm): at the lowest
 * priority, so that refreshes of stale entries go first, and only while
 * the queue is less than half full, so that it always has room for them.
 * APR_EAGAIN when it has not. */
apr_status_t isr_refresh_submit_bulk(isr_refresh_fn fn, void *baton);

/* Run fn(baton) on a refresh thread once `delay` has passed (periodic work:
 * the task schedules itself again). APR_EAGAIN when the pool is not
 * running (the caller keeps the baton). A task still waiting when the child
 * stops is dropped with the pool, its baton not freed (the child exits). */
apr_status_t isr_refresh_schedule(isr_refresh_fn fn, void *baton,
                                  apr_interval_time_t delay);

/* Non-zero once the child is stopping: fetches check it to abort early. */
volatile int *isr_refresh_stopping(void);

#endif /* ISR_REFRESH_H */
