/* The second tier: a Redis server shared by every httpd of a cluster
 * (ISRCacheZone ... redis=URL). The shared-memory zone stays the first
 * tier: a hit never reaches this file. A local miss or expiry asks the
 * tier before the origin (isr_tier_claim), a stored answer is written to
 * it under a cross-server lease (isr_tier_put), and purges are sent to
 * every server (isr_tier_op). Every call has a timeout; a tier that does
 * not answer is skipped for a moment and the request goes on as if there
 * were none. Only isr_redis.c knows it is Redis. */
#ifndef ISR_TIER_H
#define ISR_TIER_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_network_io.h>
#include "isr_store.h"
#include "isr_purge.h"

typedef struct isr_tier_t isr_tier_t;

/* redis=URL and redis_timeout= of an ISRCacheZone. */
typedef struct isr_tier_conf_t {
    const char *url;            /* for messages (no password) */
    const char *host;
    apr_port_t port;
    int db;
    const char *password;       /* or NULL */
    apr_interval_time_t timeout;
    const char *timeout_arg;    /* redis_timeout= as given, or NULL */
} isr_tier_conf_t;

#define ISR_TIER_TIMEOUT apr_time_from_msec(200)

/* Parse redis://[:PASSWORD@]HOST:PORT[/DB] into c; NULL or why not. */
const char *isr_tier_parse_url(apr_pool_t *p, const char *url,
                               isr_tier_conf_t *c);

/* An entry as the tier keeps it: the value, and what a server that finds
 * it needs to rebuild the entry's tag block with its own hash keys. */
typedef struct {
    const char *key;
    apr_size_t klen;
    int status;
    const char *headers;
    apr_size_t hdrlen;
    const char *body;
    apr_size_t bodylen;
    const char *alts;
    apr_size_t altlen;
    const char *path;           /* or NULL */
    apr_array_header_t *tags;   /* const char *, never NULL after unpack */
    int overflow;               /* more tags than the block kept */
    apr_time_t fetched, fresh_until, stale_until, swr_until, sie_until;
} isr_tier_rec_t;

/* The bytes of rec, into p. */
void isr_tier_rec_pack(apr_pool_t *p, const isr_tier_rec_t *rec,
                       const char **buf, apr_size_t *len);

/* Read buf (len bytes, from the tier: not trusted) into rec, pointing into
 * buf (tags into p). 1 when it is well formed and holds `key`; every
 * length is checked against len. */
int isr_tier_rec_unpack(apr_pool_t *p, const char *buf, apr_size_t len,
                        const char *key, apr_size_t klen,
                        isr_tier_rec_t *rec);

/* ---- the server side ------------------------------------------------- */

/* post_config: the cluster state of every zone with redis= (kept across
 * graceful restarts like the zone). `restored`: the zone was just read from
 * its persist= file (its first contact with Redis makes it stale: it
 * cannot know what the cluster purged meanwhile). */
struct server_rec;
apr_status_t isr_tier_setup(isr_zone_t *zone, const isr_tier_conf_t *conf,
                            int restored, struct server_rec *s,
                            apr_pool_t *pconf);

/* child_init, once the zones are attached: connections and the bus thread
 * (stopped and joined by a pre-cleanup of pchild). */
void isr_tier_child_init(apr_pool_t *pchild, struct server_rec *s);

/* Whether the zone has a second tier. */
#define isr_tier_on(zone) ((zone)->tier != NULL)

typedef enum {
    ISR_TIER_DOWN,     /* no answer (or none configured): go on alone */
    ISR_TIER_FOUND,    /* the entry is in *rec */
    ISR_TIER_OWNED,    /* the caller holds the cluster lease: *lease */
    ISR_TIER_BUSY      /* another server fetches: wait, then claim again */
} isr_tier_claim_t;

/* A cluster lease: its fencing token, and the cluster's operation sequence
 * when it was taken (a write is refused if an operation came since). */
typedef struct {
    apr_uint64_t token;         /* 0: none */
    apr_uint64_t opseq;
} isr_tier_lease_t;

/* What a waiter saw of the bus before it asked: isr_tier_wait returns when
 * something lands for its key after that. */
typedef apr_uint32_t isr_tier_ticket_t;

isr_tier_ticket_t isr_tier_ticket(isr_zone_t *zone, const char *key,
                                  apr_size_t klen);

/* Look the key up and, unless it holds an entry fetched after `newer` (-1:
 * any), take its cluster lease for `hold`, in one step; `want` 0: the lease
 * only. Records into p. */
isr_tier_claim_t isr_tier_claim(isr_zone_t *zone, const char *key,
                                apr_size_t klen, int want, apr_time_t newer,
                                apr_interval_time_t hold, apr_pool_t *p,
                                isr_tier_rec_t *rec, isr_tier_lease_t *lease);

/* Sleep until something lands for the key after `t`, or `max` passes. */
void isr_tier_wait(isr_zone_t *zone, const char *key, apr_size_t klen,
                   isr_tier_ticket_t t, apr_interval_time_t max);

/* Write the value stored for key under the caller's lease (which it gives
 * back): refused when the lease is not the caller's any more or an
 * operation came since it was taken. Waiters on every server are woken. */
void isr_tier_put(isr_zone_t *zone, const char *key, apr_size_t klen,
                  isr_tier_lease_t *lease, const isr_value_t *v,
                  apr_pool_t *p);

/* Give the lease back without a value (waiters are woken: they fetch). */
void isr_tier_release(isr_zone_t *zone, const char *key, apr_size_t klen,
                      isr_tier_lease_t *lease);

/* An operation made here (isr_admin.c) for every server: kind 'k' key,
 * 'p' prefix, 't' tags (values), 'u' URL (values: socket or "", URL), 'a'
 * all. It is dropped from the tier and published; the cluster's sequence
 * number of it, or 0 when the tier did not take it. */
apr_uint64_t isr_tier_op(isr_zone_t *zone, int hard, char kind,
                         const apr_array_header_t *values, apr_pool_t *p);

/* Build the value of a record found in the tier, for the local store:
 * born as `born`, its tag block made with this zone's hash keys. 0 when the
 * record is of no use now (its stale window ended). */
int isr_tier_value(isr_zone_t *zone, const isr_tier_rec_t *rec,
                   const isr_purge_mark_t *born, apr_time_t now,
                   apr_pool_t *p, isr_value_t *v);

/* For status pages: JSON of the zone's tier, or NULL without one. */
const char *isr_tier_json(const isr_zone_t *zone, apr_pool_t *p);

/* Metric i (0 .. ISR_TIER_METRICS-1) of the zone's tier, for Prometheus:
 * its name (after isr_redis_; a counter gets _total), help, kind and
 * value. 0 when the zone has no tier. */
#define ISR_TIER_METRICS 15
int isr_tier_metric(const isr_zone_t *zone, int i, const char **name,
                    const char **help, int *counter, apr_uint64_t *value);

#endif /* ISR_TIER_H */
