/* The event MPM fast path (ISRFastPath). Under the event MPM every
 * keep-alive request goes from the listener thread to a worker through a
 * queue: the listener's epoll wakes up, pushes the connection, a worker is
 * woken. The worker MPM skips that hop by blocking its thread on the
 * connection for the whole keep-alive time.
 *
 * After a worker has answered a request from the cache, this path looks
 * for the client's next request for a short, bounded time (ISRFastPath's
 * wait) before the connection goes back to the listener. When it comes in
 * time, httpd's own pipelining path takes it (the check for pipelined data
 * that follows every request, c->data_in_input_filters): the same worker
 * reads and answers it through the normal request cycle, with every hook,
 * filter, log and timeout as before. When it does not, nothing changed but
 * a worker that waited the wait: the connection is handed back as always
 * and idle keep-alive connections hold no thread. At most half of a
 * child's threads wait at once; none waits while the child is stopping,
 * while the answer is still being written, or under a synchronous MPM.
 *
 * Only HTTP/1.x connections; HTTP/2 streams never arm it. */
#ifndef ISR_FAST_H
#define ISR_FAST_H

#include <httpd.h>

/* ISRFastPath's default wait, and the longest one accepted. */
#define ISR_FAST_DEFAULT_WAIT  1000               /* 1 ms */
#define ISR_FAST_MAX_WAIT      (100 * 1000)       /* 100 ms */

/* register_hooks: the connection input filter. */
void isr_fast_register_hooks(apr_pool_t *p);

/* child_init: is the MPM asynchronous, how many threads may wait. */
void isr_fast_child_init(apr_pool_t *pchild, server_rec *s);

/* r is being answered from the cache: once the answer is written, look
 * for the next request on its connection for up to `wait` (0: do not). */
void isr_fast_arm(request_rec *r, apr_interval_time_t wait);

#endif /* ISR_FAST_H */
