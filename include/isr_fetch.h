/* Backend fetches. The interface hides libcurl: only isr_fetch_curl.c
 * includes curl/curl.h. */
#ifndef ISR_FETCH_H
#define ISR_FETCH_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct isr_fetch_resp_t isr_fetch_resp_t;

/* Takes over a body that outgrew max_store (the first call gets the
 * response head and the bytes buffered so far, later calls the rest as it
 * arrives). APR_EOF ends the fetch successfully (nothing more wanted);
 * anything else but APR_SUCCESS aborts it. With a sink, `timeout` bounds
 * the fetch until the body is handed over, then each stall. */
typedef apr_status_t isr_fetch_sink_fn(void *baton, const isr_fetch_resp_t *head,
                                       const char *data, apr_size_t len);

/* Supplies the request body (a proxied request): at most *len bytes into
 * buf, blocking until there are some. APR_SUCCESS with *len > 0, APR_EOF
 * (and *len 0) at the end of the body; anything else aborts the fetch
 * (the reader keeps its own reason). Called in the thread of isr_fetch. */
typedef apr_status_t isr_fetch_read_fn(void *baton, char *buf, apr_size_t *len);

typedef struct {
    const char *url;
    const char *unix_path;       /* connect to this socket instead, or NULL */
    const char *ca_file;         /* CA bundle for https:, or NULL */
    const apr_array_header_t *headers; /* const char * "Name: value" */
    apr_interval_time_t timeout;         /* whole transfer */
    apr_interval_time_t connect_timeout;
    apr_interval_time_t relay_timeout;   /* whole transfer once handed to
                                          * the sink (a relay) */
    apr_size_t max_store;        /* bodies above this are flagged too_large */
    apr_size_t max_body;         /* bodies above this abort the fetch */
    volatile int *abort_flag;    /* set to non-zero to abort (shutdown) */
    isr_fetch_sink_fn *sink;     /* or NULL: buffer up to max_body */
    void *sink_baton;
    /* Called with each 1xx head as it arrives (102, 103 Early Hints), in
     * the fetching thread; or NULL. */
    void (*interim)(void *baton, int status, const char *headers,
                    apr_size_t hdrlen);
    void *interim_baton;
    /* A proxied request (isr_proxy.c) sets these; a cache fetch leaves
     * them 0: GET, no body, only `headers` and a constant User-Agent. */
    const char *method;          /* a token other than GET/HEAD, or NULL */
    isr_fetch_read_fn *read;     /* the request body, or NULL: none */
    void *read_baton;
    apr_off_t body_len;          /* with read: its length, or -1: chunked */
    int sink_all;                /* every body byte to the sink from the
                                  * first, whatever the status (5xx too) */
} isr_fetch_req_t;

struct isr_fetch_resp_t {
    int status;
    const char *headers;         /* end-to-end headers, "name\0value\0"... */
    apr_size_t hdrlen;
    char *body;
    apr_size_t bodylen;
    int too_large;               /* body above max_store */
    int streamed;                /* the body went to the sink, not `body` */
    int uncacheable;             /* Set-Cookie, Cache-Control private/no-store */
    int explicit_fresh;          /* max-age, s-maxage or Expires given */
    const char *error;           /* set when the fetch failed */
};

/* Whether a backend status is a failure (5xx, but 501 Not Implemented,
 * which is an answer a cache may store: RFC 9110 15.6.2). */
#define ISR_FETCH_FAILED_STATUS(s) ((s) >= 500 && (s) != 501)

/* Once per process, while still single-threaded (post_config). */
apr_status_t isr_fetch_global_init(void);

/* child_init: idle connection handles are closed when pchild is cleaned
 * up (after the refresh threads have stopped). */
void isr_fetch_child_init(apr_pool_t *pchild);

/* Fetch req->url. The response and everything in it live in pool p.
 * APR_SUCCESS means an HTTP response arrived (any status);
 * APR_TIMEUP, APR_ECONNREFUSED, APR_ENOSPC (too large), APR_EINVAL (a
 * response head that must not be stored or sent: see isr_http.h),
 * APR_ECONNABORTED (the sink or req->read failed, or shutdown) or
 * APR_EGENERAL otherwise, with resp->error set. The request carries
 * req->headers and a constant User-Agent (unless req->headers has one),
 * nothing else of the client. With req->method, `timeout` bounds each
 * stall of the exchange (nothing sent and nothing received: a slow upload
 * is not cut off while it moves) and `relay_timeout` the whole of it.
 * Thread-safe: each thread reuses its own connection handle. */
apr_status_t isr_fetch(isr_fetch_resp_t **presp, const isr_fetch_req_t *req,
                       apr_pool_t *p);

#endif /* ISR_FETCH_H */
