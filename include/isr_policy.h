/* What a stored response says about its own caching, and what the
 * location's ISRCacheControl mode makes of it: freshness (RFC 9111 4.2),
 * the stale windows (RFC 5861), targeted fields (RFC 9213), validators and
 * the update of a stored head by a 304 (RFC 9111 3.2, 4.3.4). Headers are
 * the stored "name\0value\0" pairs. APR only: unit-tested and fuzzed
 * without a server. */
#ifndef ISR_POLICY_H
#define ISR_POLICY_H

#include <apr_pools.h>
#include <apr_time.h>

/* ISRCacheControl */
typedef enum {
    ISR_CC_OFF,      /* ISRCacheTTL/ISRStaleTTL decide (ISRPlug) */
    ISR_CC_ON,       /* the origin's explicit freshness wins where given */
    ISR_CC_STRICT    /* an RFC 9111 shared cache: no default TTL */
} isr_cc_mode_t;

/* The field a response may target at mod_isr alone (RFC 9213 style); it
 * and CDN-Cache-Control take precedence over Cache-Control and are never
 * sent to clients. */
#define ISR_POLICY_TARGETED "ISR-Cache-Control"

/* A delta-seconds value that overflows counts as this (RFC 9111 1.2.2). */
#define ISR_POLICY_DELTA_MAX APR_INT64_C(2147483648)

typedef struct {
    int targeted;          /* ISR- or CDN-Cache-Control decided */
    int no_store, private_, no_cache, must_revalidate, public_;
    int smaxage;           /* s-maxage given (implies proxy-revalidate) */
    int set_cookie;
    apr_int64_t lifetime;  /* explicit freshness, seconds; -1: none */
    apr_int64_t swr, sie;  /* stale-while-revalidate, stale-if-error; -1 */
    apr_int64_t age;       /* the Age field, seconds; 0 absent or invalid */
    apr_time_t date;       /* 0: absent or invalid */
    apr_time_t expires;    /* a valid Expires when it decides, or 0 */
    apr_time_t last_modified;
    const char *etag;      /* validators as given, or NULL */
    const char *last_modified_str;
} isr_policy_t;

/* Read the caching fields of a stored head. */
void isr_policy_read(const char *headers, apr_size_t hdrlen,
                     isr_policy_t *pol);

/* Whether a header is one of the targeted cache fields (not sent on). */
int isr_policy_is_targeted(const char *name);

typedef struct {
    isr_cc_mode_t mode;
    apr_interval_time_t ttl;        /* ISRCacheTTL */
    apr_interval_time_t stale_ttl;  /* ISRStaleTTL */
} isr_policy_conf_t;

/* When a response may be used, all absolute times. */
typedef struct {
    apr_time_t born;       /* response time minus its corrected initial
                            * age: Age on a hit is now - born */
    apr_time_t fresh_until;
    apr_time_t swr_until;  /* served stale while a refresh runs */
    apr_time_t sie_until;  /* served stale when revalidation fails */
    apr_time_t keep_until; /* kept for revalidation (validators) */
    int uncacheable;       /* no-store, private or Set-Cookie as decided
                            * by the fields that count in this mode */
} isr_times_t;

/* How long a response is kept past its windows for revalidation (and, in
 * On and Strict modes, for max-stale). */
#define ISR_POLICY_KEEP apr_time_from_sec(3600)

/* The times of a response requested at request_time and received at
 * response_time. */
void isr_policy_times(const isr_policy_t *pol, const isr_policy_conf_t *pc,
                      apr_time_t request_time, apr_time_t response_time,
                      isr_times_t *t);

/* Whether a response with this policy and status may be stored in this
 * mode besides the status set (isr_http_storable): explicit freshness or
 * public make any final status but 206/304/5xx storable. */
int isr_policy_explicit(const isr_policy_t *pol);

/* A request's Cache-Control (RFC 9111 5.2.1), honoured in Strict mode. */
typedef struct {
    int any;               /* some directive below is present */
    int no_cache;          /* also Pragma: no-cache without Cache-Control */
    int no_store;
    int only_if_cached;
    apr_int64_t max_age;   /* seconds, -1: absent */
    apr_int64_t min_fresh; /* seconds, -1: absent */
    apr_int64_t max_stale; /* seconds, -1: absent, ISR_POLICY_DELTA_MAX:
                            * any staleness */
} isr_policy_req_t;

/* Read a request's Cache-Control and Pragma values (either may be NULL). */
void isr_policy_request(const char *cc, const char *pragma,
                        isr_policy_req_t *out);

/* The stored head updated by a 304's head (RFC 9111 3.2): every field the
 * 304 carries replaces all stored lines of that name, except
 * Content-Length and Content-Encoding (the stored body is what it is: it
 * may have been decoded, and a 304 cannot re-encode it); the others
 * stay. */
void isr_policy_update(apr_pool_t *p, const char *stored, apr_size_t slen,
                       const char *fresh, apr_size_t flen,
                       const char **out, apr_size_t *olen);

#endif /* ISR_POLICY_H */
