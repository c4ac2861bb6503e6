/* One request through mod_isr: resolve the backend URL and key, find or
 * fetch the answer (isr_request.c), and apply it (isr_respond.c). */
#ifndef ISR_REQUEST_H
#define ISR_REQUEST_H

#include <httpd.h>
#include <apr_buckets.h>
#include "isr_config.h"
#include "isr_store.h"
#include "isr_ctx.h"
#include "isr_purge.h"
#include "isr_tier.h"

#define ISR_HANDLER "isr-response"
#define ISR_FILENAME_PREFIX "isr:"

typedef struct {
    const isr_dir_conf_t *conf;
    isr_zone_t *zone;
    isr_ctx_t ctx;              /* what the backend is told (and keyed) */
    const apr_array_header_t *send; /* the headers a fetch sends: ctx's, and
                                 * in Strict mode the client's too */
    int strict;                 /* ISRCacheControl Strict */
    int authorized;             /* Strict: Authorization or Cookie sent */
    isr_policy_req_t rcc;       /* Strict: the request's Cache-Control */
    const struct isr_fetch_resp_t *failure; /* a 5xx the backend answered */
    int error_status;           /* answer an error with this, not
                                 * ISROnError (only-if-cached: 504) */
    /* Vary: when the URL's key holds a marker, q is for its variant */
    int variant;
    isr_entry_t marker;         /* the URL's marker (slot, seq, until) */
    const char *marker_names, *marker_gen;
    const char *base_key;       /* the URL's key (the marker's) */
    apr_size_t base_klen;
    const char *url;            /* ctx.url, for messages */
    isr_purge_mark_t mark;      /* taken before the last lookup: the birth
                                 * of what a fetch after it stores */
    const char *key;            /* built from ctx (isr_ctx_key) */
    apr_size_t klen;
    apr_uint64_t hash;
    /* the answer */
    const char *label;          /* HIT, STALE, MISS */
    int status;
    const char *headers;        /* "name\0value\0" pairs */
    apr_size_t hdrlen;
    const char *body;
    apr_size_t bodylen;
    const char *alts;           /* the body in other codings (ISRCompress) */
    apr_size_t altlen;
    const void *kept;           /* the record, when it is a shared copy */
    apr_time_t fetched;         /* the answer's birth (Age); 0 on MISS */
    apr_time_t fresh_until;     /* of the entry answered; 0 on MISS */
    /* Cache-Status (RFC 9211): how the answer came about */
    const char *fwd;            /* "uri-miss", "stale", ... or NULL: hit */
    int fwd_status;             /* the backend's status, or 0 */
    int stored;                 /* the answer was stored (or updated) */
    int collapsed;              /* waited for another request's fetch */
    const char *detail;         /* or NULL */
    const char *error;          /* why there is no answer */
    int no_backend;             /* prepare found no acceptable backend URL:
                                 * the ISROnError action applies */
    const char *prev_handler;   /* r->handler before ISR_HANDLER */
    int can_relay;              /* may send a too-large body as it comes */
    int relayed;                /* the answer went out while fetched */
    int relay_failed;           /* ...and broke off */
    apr_bucket_brigade *relay_bb;
    /* The second tier (isr_tier.h): */
    isr_tier_lease_t tier_lease; /* the cluster lease of this miss, or 0 */
    int tier_tried;             /* asked it once already */
    int from_tier;              /* the answer came from it */
} isr_req_t;

/* Resolve the backend request context and the key for r. Returns OK, or
 * an HTTP status with q->error set: 431 for a forwarded header that is too
 * long, 500 for a configuration that cannot work, 502 with q->no_backend
 * set when no acceptable backend URL results (the caller applies
 * ISROnError). Logs nothing. */
int isr_request_prepare(request_rec *r, const isr_dir_conf_t *conf,
                        isr_req_t *q);

/* Find the answer: from the cache, by waiting for another fetch, or by
 * fetching. APR_SUCCESS with the answer in q, or an error with q->error. */
apr_status_t isr_request_obtain(request_rec *r, isr_req_t *q);

/* Hits only, never waits or fetches (the quick handler): APR_SUCCESS with
 * a FRESH or STALE answer in q (starting the refresh of a stale one), or
 * APR_NOTFOUND. */
apr_status_t isr_request_lookup(request_rec *r, isr_req_t *q);

/* POST <admin>/warm, one URL: q is prepared for a GET of it. Queues the
 * background fetch that stores its answer (at a low priority, within half
 * the refresh queue: isr_refresh_submit_bulk): an entry's under its lease
 * and with its validators, as a refresh; a key without one claimed as a
 * miss when the job starts. What is stored never replaces an answer newer
 * than the one fetched (isr_store_publish). Returns "queued", "busy" (a
 * fetch or refresh of the key is under way), "uncacheable" (stored as not
 * to be cached, for now), "varies" (a marker this request has no variant
 * of) or "queue full". */
const char *isr_request_warm(request_rec *r, isr_req_t *q);

/* Apply the answer for ISRApply env=/header= (fixups). */
void isr_respond_apply(request_rec *r, const isr_req_t *q);

/* The stored (or relayed) head as the response's: "name\0value\0" pairs,
 * each checked against the end; Content-Type set as the type (what
 * mod_mime guessed from the URL dropped first); ISR-/CDN-Cache-Control
 * not sent on. */
void isr_respond_set_headers(request_rec *r, const char *h, apr_size_t len);

/* Send the answer as the response (handler). */
int isr_respond_send(request_rec *r, const isr_req_t *q);

/* Relaying a body too large to store, as it arrives (handler only). */
void isr_respond_relay_head(request_rec *r, isr_req_t *q, int status,
                            const char *headers, apr_size_t hdrlen);
apr_status_t isr_respond_relay_data(request_rec *r, isr_req_t *q,
                                    const char *data, apr_size_t len);

/* A failed fetch: the ISROnError action as a hook return value. */
int isr_respond_error(request_rec *r, const isr_req_t *q, apr_status_t rv);

#endif /* ISR_REQUEST_H */
