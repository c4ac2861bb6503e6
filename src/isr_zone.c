/* Zone lifecycle. Segments and their mutexes live in the process pool, not
 * pconf: pconf is cleared on every restart, and children of the old and the
 * new generation must share one segment and one mutex while a graceful
 * restart overlaps them. */
#include "isr.h"
#include <stdlib.h>
#include <unistd.h>
#include <apr_hash.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_config.h>
#include <http_core.h>
#include <util_mutex.h>

#include "isr_zone.h"
#include "isr_persist.h"
#include "isr_tier.h"
#include "isr_refresh.h"

/* Versioned: a newer build loaded by a graceful restart must not read an
 * older build's isr_zone_rt_t. */
#define REGISTRY_KEY "mod_isr:zones:2"

/* What survives a restart, per zone name (allocated from the process pool). */
typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    apr_size_t size;
    const char *name;
    /* This generation's persist= and persist_every (copies in the
     * process pool, made again only when they change). */
    const char *persist;
    apr_interval_time_t persist_every;
    int soon;                   /* this child has a write after an
                                 * operation scheduled */
    int restored;               /* created from its persist= file at this
                                 * start (not kept) */
} isr_zone_rt_t;

static isr_zone_t *zones;   /* this generation's zones, from pconf */
static isr_zone_rt_t **zone_rts; /* and their records, zone_rts[i] */
static int nzones;
static pid_t parent_pid;    /* who set the zones up: writes them at stop */
static server_rec *main_server;

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

/* "3h 2m 5s" */
static const char *age_text(apr_pool_t *p, apr_interval_time_t t)
{
    apr_int64_t sec = t > 0 ? apr_time_sec(t) : 0;

    if (sec >= 86400) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "d %" APR_INT64_T_FMT "h",
                            sec / 86400, sec % 86400 / 3600);
    }
    if (sec >= 3600) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "h %" APR_INT64_T_FMT "m",
                            sec / 3600, sec % 3600 / 60);
    }
    if (sec >= 60) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "m %" APR_INT64_T_FMT "s",
                            sec / 60, sec % 60);
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT "s", sec);
}

/* A new segment of a zone with persist=: filled from the file when the file
 * passes every check (isr_persist.h), attached and made safe; 0 when the
 * caller must format the segment (no file, or one refused). */
static int zone_restore(isr_zone_rt_t *rt, const isr_zone_def_t *def,
                        server_rec *s, apr_pool_t *ptemp)
{
    void *base = apr_shm_baseaddr_get(rt->shm);
    apr_size_t size = apr_shm_size_get(rt->shm);
    apr_time_t saved = 0, now;
    const char *why = NULL;
    apr_uint32_t kept;
    isr_zone_t z;
    apr_status_t rv;

    if ((kept = (apr_uint32_t)isr_persist_sweep(def->persist, ptemp))) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0065)
                     "zone %s: removed %u unfinished %s" ISR_PERSIST_TMP
                     "XXXXXX (a writer was killed)", def->name, kept,
                     def->persist);
    }
    rv = isr_persist_load(def->name, def->persist, base, size, ptemp, &saved,
                          &why);
    if (APR_STATUS_IS_ENOENT(rv)) {
        const char *dir = ap_make_dirstr_parent(ptemp, def->persist);
        apr_finfo_t fi;

        if (apr_stat(&fi, dir, APR_FINFO_TYPE, ptemp) != APR_SUCCESS
            || fi.filetype != APR_DIR) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, ISR_LOGNO(0064)
                         "zone %s: %s is not a directory: %s cannot be "
                         "written (create it, writable by the User of the "
                         "children)", def->name, dir, def->persist);
            return 0;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0058)
                     "zone %s: no file yet at %s (written when the server "
                     "stops%s)", def->name, def->persist,
                     def->persist_every ? " and periodically" : "");
        return 0;
    }
    memset(&z, 0, sizeof(z));
    if (rv == APR_SUCCESS
        && isr_store_attach(&z, base, size) != APR_SUCCESS) {
        rv = APR_EINVAL;
        why = "its header does not describe a zone of this size";
    }
    if (rv != APR_SUCCESS) {
        /* A refusal is not an I/O error: no APR text for it. */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv == APR_EINVAL ? 0 : rv, s,
                     ISR_LOGNO(0059) "zone %s: ignoring %s: %s; the zone "
                     "starts empty", def->name, def->persist,
                     why ? why : "unreadable");
        return 0;
    }
    z.name = def->name;
    kept = isr_store_recover(&z);
    now = apr_time_now();
    z.hdr->persist_at = now;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, ISR_LOGNO(0060)
                 "zone %s: restored %u entries from %s (saved %s ago)",
                 def->name, kept, def->persist,
                 age_text(ptemp, now - saved));
    return 1;
}

static apr_status_t zone_create(isr_zone_rt_t *rt, const isr_zone_def_t *def,
                                server_rec *s, apr_pool_t *ptemp)
{
    apr_pool_t *pp = s->process->pool;
    apr_uint64_t seed[2];   /* the zone's SipHash key */
    apr_status_t rv;

    if (APR_SUCCESS != (rv = apr_shm_create(&rt->shm, def->size, NULL, pp))) {
        return rv;
    }
    rt->size = def->size;
    if (def->persist && zone_restore(rt, def, s, ptemp)) {
        rt->restored = 1;
        return APR_SUCCESS;
    }
    if (APR_SUCCESS != (rv = apr_generate_random_bytes((unsigned char *)seed,
                                                       sizeof(seed)))) {
        return rv;
    }
    rv = isr_store_format(apr_shm_baseaddr_get(rt->shm),
                          apr_shm_size_get(rt->shm), seed, apr_time_now());
    if (rv == APR_SUCCESS) {
        ((isr_shm_header_t *)apr_shm_baseaddr_get(rt->shm))->persist_at =
            apr_time_now();
    }
    return rv;
}

/* The settings of this generation, copied into the process pool only when
 * they changed (a graceful restart a day must not grow it for ever). */
static void zone_settings(isr_zone_rt_t *rt, const isr_zone_def_t *def,
                          apr_pool_t *pp)
{
    if (!def->persist) {
        rt->persist = NULL;
    }
    else if (!rt->persist || strcmp(rt->persist, def->persist)) {
        rt->persist = apr_pstrdup(pp, def->persist);
    }
    rt->persist_every = def->persist_every;
}

static apr_status_t zone_open(isr_zone_t *zone, isr_zone_rt_t **prt,
                              const isr_zone_def_t *def, server_rec *s,
                              apr_pool_t *ptemp)
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
            rt->name = apr_pstrdup(pp, def->name);
            apr_hash_set(reg, rt->name, APR_HASH_KEY_STRING, rt);
        }
        rt->shm = NULL;
        rt->size = 0;
        if (APR_SUCCESS != (rv = zone_create(rt, def, s, ptemp))
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
    zone_settings(rt, def, pp);

    *prt = rt;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0003)
                 "zone %s: %s %" APR_SIZE_T_FMT " bytes, %u slots, ring %"
                 APR_UINT64_T_FMT " bytes", def->name,
                 reused ? "kept" : "created", def->size, zone->nslots,
                 zone->hdr->ring_size);
    return APR_SUCCESS;
}

/* ---- writing the zones to their files ----------------------------------- */

static void zone_save(isr_zone_t *zone, const isr_zone_rt_t *rt, int lock,
                      const char *when, server_rec *s)
{
    apr_pool_t *p;
    const char *why = NULL;
    apr_time_t t0;
    apr_status_t rv;

    /* Unmanaged: at exit the process pool is being destroyed, and a
     * refresh thread must not allocate from pchild. */
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    t0 = apr_time_now();
    rv = isr_persist_save(zone, rt->persist, lock, p, &why);
    if (rv == APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, ISR_LOGNO(0061)
                     "zone %s: written to %s %s (%" APR_UINT64_T_FMT
                     " bytes in %" APR_TIME_T_FMT " ms)", zone->name,
                     rt->persist, when,
                     zone->hdr->size
                     + (apr_uint64_t)sizeof(isr_persist_head_t),
                     apr_time_as_msec(apr_time_now() - t0));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, ISR_LOGNO(0062)
                     "zone %s: not written to %s %s: %s", zone->name,
                     rt->persist, when, why ? why : "failed");
    }
    apr_pool_destroy(p);
}

/* A pre-cleanup of the process pool: it runs when httpd exits, while
 * pconf (this generation's zones), the log and the segments still exist.
 * Only in the parent (children inherit the cleanup) and only when httpd
 * stops: at restarts the segments are kept instead. The children are gone
 * by then (the MPM reaps them before it returns), so nobody writes and the
 * mutex is not needed; a child killed mid-write left at worst a slot that
 * isr_store_recover() repairs at the next start. */
static apr_status_t zones_save_at_exit(void *data)
{
    int i;
    (void)data;

    if (getpid() != parent_pid
        || ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING) {
        return APR_SUCCESS;
    }
    for (i = 0; i < nzones; i++) {
        if (zone_rts[i]->persist) {
            zone_save(&zones[i], zone_rts[i], 0, "at stop", main_server);
        }
    }
    return APR_SUCCESS;
}

/* With pconf: a restart unloads this module (mod_so) before loading it
 * again, maybe elsewhere, so the process pool must not keep a pointer to
 * zones_save_at_exit past this generation. The next one registers it
 * again. */
static apr_status_t zones_unregister(void *data)
{
    apr_pool_cleanup_kill((apr_pool_t *)data, NULL, zones_save_at_exit);
    return APR_SUCCESS;
}

apr_status_t isr_zones_setup(const apr_array_header_t *defs, server_rec *s,
                             apr_pool_t *pconf)
{
    const isr_zone_def_t *d = (const isr_zone_def_t *)defs->elts;
    apr_pool_t *pp = s->process->pool, *ptemp;
    apr_status_t rv = APR_SUCCESS;
    int i, n = defs->nelts ? defs->nelts : 1, persist = 0;

    zones = apr_pcalloc(pconf, sizeof(*zones) * n);
    zone_rts = apr_pcalloc(pconf, sizeof(*zone_rts) * n);
    nzones = 0;
    parent_pid = getpid();
    main_server = s;
    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, pconf))) {
        return rv;
    }
    for (i = 0; i < defs->nelts; i++) {
        if (APR_SUCCESS != (rv = zone_open(&zones[nzones], &zone_rts[nzones],
                                           &d[i], s, ptemp))) {
            break;
        }
        persist |= d[i].persist != NULL;
        if (d[i].tier && APR_SUCCESS != (rv = isr_tier_setup(
                                             &zones[nzones], d[i].tier,
                                             zone_rts[nzones]->restored, s,
                                             pconf))) {
            break;
        }
        nzones++;
    }
    apr_pool_destroy(ptemp);
    if (persist) {
        apr_pool_pre_cleanup_register(pp, NULL, zones_save_at_exit);
        apr_pool_cleanup_register(pconf, pp, zones_unregister,
                                  apr_pool_cleanup_null);
    }
    return rv;
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

/* ---- periodic writes (children, on a refresh thread) ------------------- */

typedef struct {
    isr_zone_t *zone;
    isr_zone_rt_t *rt;
    server_rec *s;
} persist_job_t;

/* The zone's persist_at is when the last write ended, or minus when the
 * one under way began: children compare-and-swap it, so that one writes at
 * a time (a write longer than the interval gets no second one beside it;
 * one whose child died frees the mark after an hour). */
#define PERSIST_WRITE_MAX apr_time_from_sec(3600)
/* A write after an operation comes at least this long after the last. */
#define PERSIST_SOON_GAP  apr_time_from_sec(5)

/* One write, if none is under way and the last ended `gap` or more ago:
 * 0 when written, else how long to wait before trying again. */
static apr_interval_time_t persist_try(persist_job_t *j,
                                       apr_interval_time_t gap,
                                       apr_interval_time_t busy,
                                       const char *when)
{
    apr_int64_t *at = &j->zone->hdr->persist_at;
    apr_time_t now = apr_time_now();
    apr_int64_t prev = __atomic_load_n(at, __ATOMIC_ACQUIRE);

    if (prev < 0 && now + prev < PERSIST_WRITE_MAX) {
        return busy;
    }
    if (prev >= 0 && prev <= now && now - prev < gap) {
        return prev + gap - now;
    }
    if (!__atomic_compare_exchange_n(at, &prev, -now, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        return busy;
    }
    zone_save(j->zone, j->rt, 1, when, j->s);
    prev = -now;
    /* The next interval starts when this write ended. */
    (void)__atomic_compare_exchange_n(at, &prev, apr_time_now(), 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return 0;
}

/* Every child checks each persist_every; one of them writes. */
static void persist_tick(void *baton)
{
    persist_job_t *j = baton;
    apr_interval_time_t every = j->rt->persist_every, next;

    if (*isr_refresh_stopping()) {
        free(j);
        return;
    }
    next = persist_try(j, every, every, "periodically");
    if (next < apr_time_from_sec(1)) {
        next = next ? apr_time_from_sec(1) : every;
    }
    if (isr_refresh_schedule(persist_tick, j, next) != APR_SUCCESS) {
        free(j);
    }
}

static void persist_soon_run(void *baton)
{
    persist_job_t *j = baton;
    apr_interval_time_t next;

    /* Cleared first: an operation from now on schedules a write of its
     * own unless this job, not done yet, takes it on again. */
    __atomic_store_n(&j->rt->soon, 0, __ATOMIC_RELEASE);
    if (!*isr_refresh_stopping()) {
        next = persist_try(j, PERSIST_SOON_GAP, apr_time_from_sec(1),
                           "after an operation");
        if (next && !__atomic_exchange_n(&j->rt->soon, 1, __ATOMIC_ACQ_REL)) {
            if (isr_refresh_schedule(persist_soon_run, j, next)
                == APR_SUCCESS) {
                return;
            }
            __atomic_store_n(&j->rt->soon, 0, __ATOMIC_RELEASE);
        }
    }
    free(j);
}

void isr_zone_persist_soon(isr_zone_t *zone, server_rec *s)
{
    long i = zone - zones;
    persist_job_t *j;
    isr_zone_rt_t *rt;

    if (!zones || i < 0 || i >= nzones || !zone_rts[i]->persist
        || !zone->mutex) {
        return;
    }
    rt = zone_rts[i];
    if (__atomic_exchange_n(&rt->soon, 1, __ATOMIC_ACQ_REL)) {
        return;     /* one is scheduled */
    }
    if (!(j = malloc(sizeof(*j)))) {
        __atomic_store_n(&rt->soon, 0, __ATOMIC_RELEASE);
        return;
    }
    j->zone = zone;
    j->rt = rt;
    j->s = s;
    if (isr_refresh_schedule(persist_soon_run, j, apr_time_from_sec(1))
        != APR_SUCCESS) {
        __atomic_store_n(&rt->soon, 0, __ATOMIC_RELEASE);
        free(j);
    }
}

void isr_zones_child_start(server_rec *s)
{
    persist_job_t *j;
    int i;

    for (i = 0; i < nzones; i++) {
        if (!zone_rts[i]->persist || !zone_rts[i]->persist_every
            || !zones[i].mutex) {
            continue;
        }
        if (!(j = malloc(sizeof(*j)))) {
            continue;
        }
        j->zone = &zones[i];
        j->rt = zone_rts[i];
        j->s = s;
        if (isr_refresh_schedule(persist_tick, j,
                                 zone_rts[i]->persist_every) != APR_SUCCESS) {
            free(j);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, ISR_LOGNO(0063)
                         "zone %s: no refresh threads in this child: it "
                         "does not write %s periodically", zones[i].name,
                         zone_rts[i]->persist);
        }
    }
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
