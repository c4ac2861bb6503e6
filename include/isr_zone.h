/* Zone lifecycle: the shared-memory segments named by ISRCacheZone, created
 * in post_config and kept in the process pool so that they (and their
 * entries) survive graceful restarts when name and size do not change. */
#ifndef ISR_ZONE_H
#define ISR_ZONE_H

#include <httpd.h>
#include "isr_store.h"

#define ISR_ZONE_DEFAULT      "default"
#define ISR_ZONE_DEFAULT_SIZE (64 * 1024 * 1024)
#define ISR_ZONE_MIN_SIZE     (1024 * 1024)
#define ISR_MUTEX_TYPE        "isr-zone"

/* persist_every when persist= is given without it. */
#define ISR_ZONE_PERSIST_EVERY apr_time_from_sec(600)

typedef struct {
    const char *name;
    apr_size_t size;
    const char *where;   /* "file:line" of the directive, for messages */
    const char *persist; /* persist=PATH (absolute), or NULL */
    apr_interval_time_t persist_every; /* 0: only at stop (isr_persist.h) */
    struct isr_tier_conf_t *tier;      /* redis=URL (isr_tier.h), or NULL */
} isr_zone_def_t;

/* pre_config: register the mutex type so that `Mutex isr-zone ...` works. */
apr_status_t isr_zones_pre_config(apr_pool_t *pconf);

/* post_config: create or re-attach a segment for every definition. A zone
 * with persist= that is created (not kept across a graceful restart) is
 * restored from its file when the file passes every check, and written to
 * it when the server stops (not at restarts). */
apr_status_t isr_zones_setup(const apr_array_header_t *defs, server_rec *s,
                             apr_pool_t *pconf);

/* child_init: re-open the zone mutexes in the child. */
apr_status_t isr_zones_child_init(apr_pool_t *pchild, server_rec *s);

/* child_init, once the refresh threads run: schedule the periodic writes
 * of zones with persist= and a persist_every (one child writes each time). */
void isr_zones_child_start(server_rec *s);

/* After a purge or revalidate in a zone with persist=: its file is written
 * again soon (a second after, at least PERSIST_SOON_GAP after the last
 * write, by this child on a refresh thread), so that a crash does not
 * bring back what the operation removed. */
void isr_zone_persist_soon(isr_zone_t *zone, server_rec *s);

/* This generation's zones, for status pages: isr_zone_at(0 .. count-1). */
int isr_zones_count(void);
isr_zone_t *isr_zone_at(int i);

/* The zone called `name`, or NULL. Cheap: a scan of a handful of names. */
isr_zone_t *isr_zone_get(const char *name);

/* Headers budget a record keeps next to its body in isr_zone_max_body(). */
#define ISR_ZONE_HEAD_ROOM (16 * 1024)

/* The largest body a record with a key of klen bytes (and headers within
 * ISR_ZONE_HEAD_ROOM) can hold in this zone: a record may take at most half
 * the ring (isr_store_publish). A longer body can never be stored there. */
apr_size_t isr_zone_max_body(const isr_zone_t *zone, apr_size_t klen);

#endif /* ISR_ZONE_H */
