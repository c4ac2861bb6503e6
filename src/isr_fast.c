/* The event MPM fast path (see isr_fast.h). One connection input filter,
 * added to a connection the first time one of its requests is answered
 * from the cache. It acts on one read only: the speculative, non-blocking
 * one that httpd makes after every request to find pipelined data
 * (ap_check_pipeline). When that read finds nothing and the connection is
 * armed, the filter writes out what the core output filter still holds
 * (as the MPM would do next), waits up to the armed time for the socket to
 * become readable, and reads again. Data found there makes httpd treat
 * the next request as pipelined: the MPM processes it on this worker. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* ppoll */
#endif
#include "isr.h"
#include <http_connection.h>
#include <http_core.h>
#include <ap_mpm.h>
#include <scoreboard.h>
#include <util_filter.h>
#include <apr_portable.h>
#include <errno.h>
#include <poll.h>

#include "isr_fast.h"

#define FILTER_NAME "ISR_FAST_PATH"

typedef struct {
    apr_interval_time_t wait;   /* armed: how long to look; 0 disarmed */
} fast_conn_t;

static ap_filter_rec_t *fast_filter;
static int mpm_async;           /* the child's MPM answers asynchronously */
static apr_uint32_t max_waiters, waiters;

/* Wait up to `wait` for c's socket to become readable. The answer must be
 * on the wire first, or the client has nothing to answer: write what the
 * core output filter holds without blocking, as the MPM's write completion
 * does, and give up if any of it is still pending (the MPM then waits for
 * writability as usual). */
static int next_request_soon(conn_rec *c, apr_interval_time_t wait)
{
    ap_filter_t *of = c->output_filters;
    apr_socket_t *sock = ap_get_conn_socket(c);
    apr_os_sock_t fd;
    struct pollfd pfd;
    struct timespec ts;
    int mpm_state = AP_MPMQ_STOPPING, n;

    if (c->aborted || c->keepalive != AP_CONN_KEEPALIVE || !sock
        || ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) != APR_SUCCESS
        || mpm_state == AP_MPMQ_STOPPING
        || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return 0;
    }
    while (of->next) {
        of = of->next;
    }
    if (of->frec->filter_func.out_func(of, NULL) != APR_SUCCESS
        || c->aborted || c->data_in_output_filters) {
        return 0;
    }
    if (__atomic_add_fetch(&waiters, 1, __ATOMIC_RELAXED) > max_waiters) {
        __atomic_sub_fetch(&waiters, 1, __ATOMIC_RELAXED);
        return 0;
    }
    /* What mod_status shows while it waits: a worker in keep-alive. */
    ap_update_child_status(c->sbh, SERVER_BUSY_KEEPALIVE, NULL);
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    ts.tv_sec = (time_t)apr_time_sec(wait);
    ts.tv_nsec = (long)apr_time_usec(wait) * 1000;
    /* ppoll for a wait in microseconds. A signal (graceful stop) ends the
     * wait: the MPM looks at it next. */
    n = ppoll(&pfd, 1, &ts, NULL);
    __atomic_sub_fetch(&waiters, 1, __ATOMIC_RELAXED);
    return n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR));
}

/* Is bb the brigade of httpd's check for pipelined data (ap_check_pipeline,
 * called from ap_process_request_after_handler, keeps it in c->pool)? Any
 * other non-blocking speculative read goes by untouched. */
static int is_pipeline_check(conn_rec *c, apr_bucket_brigade *bb)
{
    void *ud = NULL;

    apr_pool_userdata_get(&ud, "ap_process_request_after_handler_brigade",
                          c->pool);
    return ud == bb;
}

static apr_status_t fast_in(ap_filter_t *f, apr_bucket_brigade *bb,
                            ap_input_mode_t mode, apr_read_type_e block,
                            apr_off_t readbytes)
{
    fast_conn_t *fc = f->ctx;
    apr_interval_time_t wait = fc->wait;
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, readbytes);

    if (!wait || mode != AP_MODE_SPECULATIVE || block != APR_NONBLOCK_READ
        || !is_pipeline_check(f->c, bb)) {
        return rv;
    }
    fc->wait = 0;   /* one look per answer */
    if (!(APR_STATUS_IS_EAGAIN(rv)
          || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)))) {
        return rv;  /* data already there (pipelined), or an error */
    }
    if (!next_request_soon(f->c, wait)) {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE2, 0, f->c, ISR_LOGNO(0050)
                      "fast path: no next request within %" APR_TIME_T_FMT
                      "us, back to the listener", wait);
        return rv;
    }
    apr_brigade_cleanup(bb);
    rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    if (rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(bb)) {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, f->c, ISR_LOGNO(0051)
                      "fast path: next request read on this worker");
    }
    else {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE2, rv, f->c, ISR_LOGNO(0052)
                      "fast path: the connection was readable but gave no "
                      "data (closed by the client, or an error)");
    }
    return rv;
}

void isr_fast_arm(request_rec *r, apr_interval_time_t wait)
{
    conn_rec *c = r->connection;
    fast_conn_t *fc;
    server_rec *ka;

    /* Not for HTTP/2 streams (c->master) or subrequests; under a
     * synchronous MPM the worker already waits on the connection itself. */
    if (!mpm_async || c->master || r->main || !c->cs) {
        return;
    }
    /* Never longer than the keep-alive time the event MPM applies next:
     * the request's virtual host's if it sets one, else the connection's
     * (event_post_read_request). */
    ka = r->server->keep_alive_timeout_set ? r->server : c->base_server;
    if (wait > ka->keep_alive_timeout) {
        wait = ka->keep_alive_timeout;
    }
    if (wait <= 0) {
        return;
    }
    if (!(fc = ap_get_module_config(c->conn_config, &isr_module))) {
        fc = apr_pcalloc(c->pool, sizeof(*fc));
        ap_set_module_config(c->conn_config, &isr_module, fc);
        ap_add_input_filter_handle(fast_filter, fc, NULL, c);
    }
    fc->wait = wait;
}

void isr_fast_child_init(apr_pool_t *pchild, server_rec *s)
{
    int async = 0, threads = 0;
    (void)pchild; (void)s;

    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    mpm_async = async;
    max_waiters = threads > 2 ? (apr_uint32_t)threads / 2 : 1;
}

void isr_fast_register_hooks(apr_pool_t *p)
{
    (void)p;
    /* Nearer the request than mod_ssl's filter (AP_FTYPE_CONNECTION + 5;
     * higher types sit nearer the network), so that it sees httpd's
     * speculative read and reads what mod_ssl decrypted. */
    fast_filter = ap_register_input_filter(FILTER_NAME, fast_in, NULL,
                                           AP_FTYPE_CONNECTION);
}
