/* Background refreshes run on an apr_thread_pool owned by the child, so a
 * slow backend never holds a client connection (nginx's keep-alive stall)
 * and a refresh outlives the request that triggered it. */
#include "isr.h"
#include <apr_thread_pool.h>
#include <apr_allocator.h>
#include <apr_thread_mutex.h>

#include "isr_refresh.h"
#include "isr_signal.h"

#define QUEUE_PER_THREAD 256

typedef struct {
    isr_refresh_fn fn;
    void *baton;
} task_t;

static apr_thread_pool_t *pool;
static apr_size_t queue_max;
static volatile int stopping;

static void *APR_THREAD_FUNC run_task(apr_thread_t *t, void *data)
{
    task_t task = *(task_t *)data;
    (void)t;
    free(data);
    task.fn(task.baton);
    return NULL;
}

/* Runs before pchild's sub-pools die: abort fetches, then join. A fetch
 * notices the flag within about a second (libcurl's progress callback). */
static apr_status_t refresh_stop(void *data)
{
    server_rec *s = data;
    apr_status_t rv;

    stopping = 1;
    if (pool) {
        rv = apr_thread_pool_destroy(pool);
        ap_log_error(APLOG_MARK, rv ? APLOG_WARNING : APLOG_DEBUG, rv, s,
                     ISR_LOGNO(0010) "refresh threads stopped");
        pool = NULL;
    }
    return APR_SUCCESS;
}

/* The thread pool's own pool, with an allocator of its own guarded by a
 * mutex (as h2_workers_create does): the refresh threads allocate from it
 * (their thread structures, task bookkeeping) while the child's main thread
 * allocates from pchild, and under prefork pchild's allocator has no mutex:
 * sharing it corrupted its free lists (crashes at child exit). */
static apr_status_t pool_make(apr_pool_t **pp, apr_pool_t *pchild)
{
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mutex;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = apr_allocator_create(&alloc))) {
        return rv;
    }
    if (APR_SUCCESS != (rv = apr_thread_mutex_create(
                            &mutex, APR_THREAD_MUTEX_DEFAULT, pchild))
        || APR_SUCCESS != (rv = apr_pool_create_ex(pp, pchild, NULL, alloc))) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_mutex_set(alloc, mutex);
    apr_allocator_owner_set(alloc, *pp);
    apr_pool_tag(*pp, "isr_refresh");
    return APR_SUCCESS;
}

apr_status_t isr_refresh_start(apr_pool_t *pchild, int threads, server_rec *s)
{
    apr_pool_t *tpool;
    sigset_t saved;
    apr_status_t rv;

    stopping = 0;
    if (APR_SUCCESS == (rv = pool_make(&tpool, pchild))) {
        /* Threads are created here and by pushes: with the exit signals
         * blocked in the creator, they inherit the mask (isr_signal.h). */
        isr_signals_block(&saved);
        rv = apr_thread_pool_create(&pool, 0, (apr_size_t)threads, tpool);
        isr_signals_restore(&saved);
    }
    if (rv != APR_SUCCESS) {
        pool = NULL;
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, ISR_LOGNO(0011)
                     "cannot start %d refresh threads: stale entries will be "
                     "served but refreshed only by misses", threads);
        return rv;
    }
    /* Keep the threads once started: by default the pool keeps only as
     * many idle threads as it started with (none), and would create a
     * thread for every refresh. */
    apr_thread_pool_idle_max_set(pool, (apr_size_t)threads);
    queue_max = (apr_size_t)threads * QUEUE_PER_THREAD;
    apr_pool_pre_cleanup_register(pchild, s, refresh_stop);
    return APR_SUCCESS;
}

/* fn(baton) queued at `priority` while fewer than `max` tasks wait, or,
 * with delay >= 0, run once `delay` has passed (not counted in the queue).
 * The pool may start a thread for it: the exit signals stay blocked in
 * refresh threads (isr_signal.h). */
static apr_status_t submit(isr_refresh_fn fn, void *baton, apr_size_t max,
                           apr_byte_t priority, apr_interval_time_t delay)
{
    sigset_t saved;
    task_t *task;
    apr_status_t rv;

    if (!pool || stopping
        || (delay < 0 && apr_thread_pool_tasks_count(pool) >= max)) {
        return APR_EAGAIN;
    }
    if (!(task = malloc(sizeof(*task)))) {
        return APR_ENOMEM;
    }
    task->fn = fn;
    task->baton = baton;
    isr_signals_block(&saved);
    rv = delay < 0
         ? apr_thread_pool_push(pool, run_task, task, priority, NULL)
         : apr_thread_pool_schedule(pool, run_task, task, delay, NULL);
    isr_signals_restore(&saved);
    if (rv != APR_SUCCESS) {
        free(task);
    }
    return rv;
}

apr_status_t isr_refresh_submit(isr_refresh_fn fn, void *baton)
{
    return submit(fn, baton, queue_max, APR_THREAD_TASK_PRIORITY_NORMAL, -1);
}

apr_status_t isr_refresh_submit_bulk(isr_refresh_fn fn, void *baton)
{
    return submit(fn, baton, queue_max / 2, APR_THREAD_TASK_PRIORITY_LOWEST,
                  -1);
}

apr_status_t isr_refresh_schedule(isr_refresh_fn fn, void *baton,
                                  apr_interval_time_t delay)
{
    return submit(fn, baton, 0, APR_THREAD_TASK_PRIORITY_NORMAL,
                  delay > 0 ? delay : 0);
}

volatile int *isr_refresh_stopping(void)
{
    return &stopping;
}
