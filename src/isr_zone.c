/* Zone lifecycle. Segments and their mutexes live in the process pool, not
 * pconf: pconf is cleared on every restart, and children of the old and the
 * new generation must share one segment and one mutex while a graceful
 * restart overlaps them. */
#include "isr.h"
#include <apr_hash.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_config.h>
#include <util_mutex.h>

#include "isr_zone.h"

/* Versioned: a newer build loaded by a graceful restart must not read an
 * older build's isr_zone_rt_t. */
#define REGISTRY_KEY "mod_isr:zones:1"

/* What survives a restart, per zone name (allocated from the process pool). */
typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    apr_size_t size;
} isr_zone_rt_t;

static isr_zone_t *zones;   /* this generation's zones, from pconf */
static int nzones;

apr_status_t isr_zones_pre_config(apr_pool_t *pconf)
{
    zones = NULL;
    nzones = 0;
    return ap_mutex_register(pconf, ISR_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

static apr_hash_t *registry(server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    void *data = NULL;

    apr_pool_userdata_get(&data, REGISTRY_KEY, pp);
    if (!data) {
        data = apr_hash_make(pp);
        apr_pool_userdata_set(data, REGISTRY_KEY, apr_pool_cleanup_null, pp);
    }
    return data;
}

static apr_status_t zone_create(isr_zone_rt_t *rt, const isr_zone_def_t *def,
                                server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    apr_uint64_t seed[2];   /* the zone's SipHash key */
    apr_status_t rv;

    if (APR_SUCCESS != (rv = apr_shm_create(&rt->shm, def->size, NULL, pp))) {
        return rv;
    }
    if (APR_SUCCESS != (rv = apr_generate_random_bytes((unsigned char *)seed,
                                                       sizeof(seed)))) {
        return rv;
    }
    rt->size = def->size;
    return isr_store_format(apr_shm_baseaddr_get(rt->shm),
                            apr_shm_size_get(rt->shm), seed, apr_time_now());
}

static apr_status_t zone_open(isr_zone_t *zone, const isr_zone_def_t *def,
                              server_rec *s)
{
    apr_hash_t *reg = registry(s);
    apr_pool_t *pp = s->process->pool;
    isr_zone_rt_t *rt = apr_hash_get(reg, def->name, APR_HASH_KEY_STRING);
    apr_status_t rv;
    int reused = 0;

    if (rt && rt->size == def->size
        && isr_store_attach(zone, apr_shm_baseaddr_get(rt->shm),
                            apr_shm_size_get(rt->shm)) == APR_SUCCESS) {
        reused = 1;
    }
    else {
        if (rt) {
            /* Old children keep their own mapping until they exit. */
            apr_shm_destroy(rt->shm);
        }
        else {
            rt = apr_pcalloc(pp, sizeof(*rt));
            apr_hash_set(reg, apr_pstrdup(pp, def->name), APR_HASH_KEY_STRING,
                         rt);
        }
        rt->shm = NULL;
        rt->size = 0;
        if (APR_SUCCESS != (rv = zone_create(rt, def, s))
            || APR_SUCCESS != (rv = isr_store_attach(
                                   zone, apr_shm_baseaddr_get(rt->shm),
                                   apr_shm_size_get(rt->shm)))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, ISR_LOGNO(0001)
                         "ISRCacheZone %s (%s): cannot create a %" APR_SIZE_T_FMT
                         "-byte shared memory segment", def->name, def->where,
                         def->size);
            return rv;
        }
    }
    if (!rt->mutex) {
        rv = ap_global_mutex_create(&rt->mutex, NULL, ISR_MUTEX_TYPE, def->name,
                                    s, pp, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, ISR_LOGNO(0002)
                         "ISRCacheZone %s: cannot create its mutex", def->name);
            return rv;
        }
    }
    zone->name = def->name;
    zone->mutex = rt->mutex;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0003)
                 "zone %s: %s %" APR_SIZE_T_FMT " bytes, %u slots, ring %"
                 APR_UINT64_T_FMT " bytes", def->name,
                 reused ? "kept" : "created", def->size, zone->nslots,
                 zone->hdr->ring_size);
    return APR_SUCCESS;
}

apr_status_t isr_zones_setup(const apr_array_header_t *defs, server_rec *s,
                             apr_pool_t *pconf)
{
    const isr_zone_def_t *d = (const isr_zone_def_t *)defs->elts;
    apr_status_t rv;
    int i;

    zones = apr_pcalloc(pconf, sizeof(*zones) * (defs->nelts ? defs->nelts : 1));
    nzones = 0;
    for (i = 0; i < defs->nelts; i++) {
        if (APR_SUCCESS != (rv = zone_open(&zones[nzones], &d[i], s))) {
            return rv;
        }
        nzones++;
    }
    return APR_SUCCESS;
}

apr_status_t isr_zones_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int i;

    for (i = 0; i < nzones; i++) {
        rv = apr_global_mutex_child_init(
            &zones[i].mutex, apr_global_mutex_lockfile(zones[i].mutex), pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, ISR_LOGNO(0004)
                         "zone %s: cannot attach its mutex in this child; "
                         "it will serve what is cached but store nothing",
                         zones[i].name);
            zones[i].mutex = NULL;
        }
    }
    return APR_SUCCESS;
}

int isr_zones_count(void)
{
    return nzones;
}

isr_zone_t *isr_zone_at(int i)
{
    return i >= 0 && i < nzones ? &zones[i] : NULL;
}

isr_zone_t *isr_zone_get(const char *name)
{
    int i;

    for (i = 0; i < nzones; i++) {
        if (!strcmp(zones[i].name, name)) {
            return &zones[i];
        }
    }
    return NULL;
}

apr_size_t isr_zone_max_body(const isr_zone_t *zone, apr_size_t klen)
{
    apr_uint64_t half = zone->hdr->ring_size / 2;
    apr_uint64_t fixed = sizeof(isr_record_t) + ISR_REC_ALIGN + klen
                         + ISR_ZONE_HEAD_ROOM;

    return half > fixed ? (apr_size_t)(half - fixed) : 0;
}
