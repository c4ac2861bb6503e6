/* isr-admin's reports: GET <admin>/status (JSON) and GET <admin>/metrics
 * (Prometheus text format 0.0.4). One table of counters feeds both, as
 * mod_md's status_infos feeds its HTML and ?auto. Read without locks, like
 * the scoreboard: figures may be a moment old. */
#include "isr.h"
#include <apr_strings.h>
#include <http_protocol.h>

#include "isr_ctx.h"
#include "isr_purge.h"
#include "isr_report.h"
#include "isr_tier.h"
#include "isr_zone.h"

typedef struct {
    isr_stat_t stat;
    const char *name;       /* JSON field; the metric is isr_NAME_total */
    const char *help;
} counter_t;

static const counter_t counters[] = {
    { ISR_STAT_HIT, "hits", "Answers from a fresh entry." },
    { ISR_STAT_STALE, "stale_hits",
      "Answers from a stale entry (a background refresh runs)." },
    { ISR_STAT_MISS, "misses", "Answers fetched from the backend." },
    { ISR_STAT_WAIT, "waits",
      "Misses that waited for another request's fetch of the same key." },
    { ISR_STAT_ERROR, "errors", "Requests answered with an error." },
    { ISR_STAT_STORE, "stores", "Answers stored." },
    { ISR_STAT_PASS, "not_stored",
      "Answers not stored (uncacheable, too large, no room)." },
    { ISR_STAT_REFRESH, "refreshes_started", "Background refreshes started." },
    { ISR_STAT_REFRESH_OK, "refreshes_succeeded",
      "Background refreshes that stored an answer." },
    { ISR_STAT_REFRESH_304, "refreshes_not_modified",
      "Background refreshes answered 304 Not Modified (also succeeded)." },
    { ISR_STAT_REFRESH_FAIL, "refreshes_failed",
      "Refreshes that failed (the stale entry is kept)." },
    { ISR_STAT_EVICT, "evictions", "Entries evicted to make room." },
    { ISR_STAT_SECOND_CHANCE, "second_chances",
      "Entries that were hit, moved instead of evicted." },
    { ISR_STAT_PURGE_OPS, "purge_operations",
      "Purge and revalidate operations." },
    { ISR_STAT_PURGED, "purged", "Entries dropped by a purge." },
    { ISR_STAT_BODY_BYTES, "body_bytes", "Identity body bytes stored." },
    { ISR_STAT_GZIP_BYTES, "gzip_bytes", "gzip body bytes stored." },
    { ISR_STAT_BR_BYTES, "br_bytes", "br body bytes stored." },
};

#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

typedef struct {
    const isr_zone_t *zone;
    isr_store_info_t in;
    apr_uint64_t seq;
    apr_uint64_t evictions;     /* of the purge table */
} zone_report_t;

static apr_array_header_t *gather(request_rec *r, const char *only)
{
    apr_array_header_t *a = apr_array_make(r->pool, 4, sizeof(zone_report_t));
    int i;

    for (i = 0; i < isr_zones_count(); i++) {
        const isr_zone_t *z = isr_zone_at(i);
        zone_report_t *zr;

        if (only && strcmp(only, z->name)) {
            continue;
        }
        zr = apr_array_push(a);
        zr->zone = z;
        isr_store_info(z, &zr->in);
        zr->seq = isr_purge_seq(z);
        zr->evictions = z->purge->evictions;
    }
    return a;
}

static void set_type(request_rec *r, const char *type)
{
    ap_set_content_type(r, type);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
}

const char *isr_report_json_str(apr_pool_t *p, const char *s, apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *o = apr_palloc(p, len * 6 + 3), *w = o;
    apr_size_t i;

    *w++ = '"';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        }
        else if (c < 0x20 || c >= 0x7f) {
            /* Bytes, not text: keys and paths need not be UTF-8. */
            memcpy(w, "\\u00", 4);
            w[4] = hex[c >> 4];
            w[5] = hex[c & 15];
            w += 6;
        }
        else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    *w = '\0';
    return o;
}

int isr_report_status(request_rec *r, const char *only)
{
    apr_array_header_t *a = gather(r, only);
    apr_size_t k;
    int i;

    if (only && !a->nelts) {
        return HTTP_NOT_FOUND;
    }
    set_type(r, "application/json");
    ap_rprintf(r, "{\"time\":%" APR_TIME_T_FMT ",\"zones\":[",
               apr_time_sec(apr_time_now()));
    for (i = 0; i < a->nelts; i++) {
        const zone_report_t *zr = &APR_ARRAY_IDX(a, i, zone_report_t);
        const isr_store_info_t *in = &zr->in;

        ap_rprintf(r, "%s{\"zone\":%s,\"entries\":%u,\"slots\":%u,"
                   "\"bytes_used\":%" APR_UINT64_T_FMT ",\"bytes_free\":%"
                   APR_UINT64_T_FMT ",\"bytes_size\":%" APR_UINT64_T_FMT
                   ",\"last_seq\":%" APR_UINT64_T_FMT
                   ",\"purge_table_evictions\":%" APR_UINT64_T_FMT,
                   i ? "," : "",
                   isr_report_json_str(r->pool, zr->zone->name,
                                       strlen(zr->zone->name)),
                   in->slots_used, in->slots, in->ring_used,
                   in->ring_size > in->ring_used
                       ? in->ring_size - in->ring_used : 0,
                   in->ring_size, zr->seq, zr->evictions);
        for (k = 0; k < NCOUNTERS; k++) {
            ap_rprintf(r, ",\"%s\":%" APR_UINT64_T_FMT, counters[k].name,
                       in->counts[counters[k].stat]);
        }
        ap_rprintf(r, ",\"fetches\":%" APR_UINT64_T_FMT
                   ",\"fetch_seconds\":%.6f%s%s}",
                   in->counts[ISR_STAT_FETCHES],
                   (double)in->counts[ISR_STAT_FETCH_USEC] / 1e6,
                   isr_tier_on(zr->zone) ? ",\"redis\":" : "",
                   isr_tier_on(zr->zone)
                       ? isr_tier_json(zr->zone, r->pool) : "");
    }
    ap_rputs("]}\n", r);
    return OK;
}

/* A label value: \, " and newline escaped (zone names are tokens, but the
 * format is the format). */
static const char *label(apr_pool_t *p, const char *v)
{
    char *o = apr_palloc(p, 2 * strlen(v) + 1), *w = o;

    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            *w++ = '\\';
            *w++ = *v;
        }
        else if (*v == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        }
        else {
            *w++ = *v;
        }
    }
    *w = '\0';
    return o;
}

/* Gauges, per zone. */
typedef enum { G_ENTRIES, G_SLOTS, G_USED, G_SIZE, G_SEQ, G_PEVICT } gauge_t;

static const struct {
    gauge_t which;
    const char *name, *help;
} gauges[] = {
    { G_ENTRIES, "isr_entries", "Keys with an entry (or a fetch) now." },
    { G_SLOTS, "isr_slots", "Keys the zone's index can hold." },
    { G_USED, "isr_bytes_used", "Bytes of the zone's ring in use." },
    { G_SIZE, "isr_bytes_size", "Bytes of the zone's ring." },
    { G_SEQ, "isr_last_operation_seq",
      "Sequence number of the last purge or revalidate applied." },
    { G_PEVICT, "isr_purge_table_evictions",
      "Operations the purge table gave up into its floors (it is full)." },
};

static apr_uint64_t gauge_value(const zone_report_t *zr, gauge_t which)
{
    switch (which) {
    case G_ENTRIES: return zr->in.slots_used;
    case G_SLOTS:   return zr->in.slots;
    case G_USED:    return zr->in.ring_used;
    case G_SIZE:    return zr->in.ring_size;
    case G_PEVICT:  return zr->evictions;
    default:        return zr->seq;
    }
}

static void family(request_rec *r, const char *name, const char *type,
                   const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(request_rec *r, const zone_report_t *zr,
                      const char *lab)
{
    static const apr_interval_time_t bounds[ISR_FETCH_BUCKETS] =
        ISR_FETCH_BOUNDS_US;
    const char *m = "isr_backend_fetch_duration_seconds";
    apr_uint64_t cum = 0, count = zr->in.counts[ISR_STAT_FETCHES];
    int b;

    for (b = 0; b < ISR_FETCH_BUCKETS; b++) {
        cum += zr->in.counts[ISR_STAT_FETCH_LE + b];
        ap_rprintf(r, "%s_bucket{zone=\"%s\",le=\"%g\"} %" APR_UINT64_T_FMT
                   "\n", m, lab, (double)bounds[b] / 1e6, cum);
    }
    /* Counters are read one by one while fetches go on: +Inf (the count)
     * is never below a bucket. */
    if (count < cum) {
        count = cum;
    }
    ap_rprintf(r, "%s_bucket{zone=\"%s\",le=\"+Inf\"} %" APR_UINT64_T_FMT "\n"
               "%s_sum{zone=\"%s\"} %.6f\n"
               "%s_count{zone=\"%s\"} %" APR_UINT64_T_FMT "\n",
               m, lab, count, m, lab,
               (double)zr->in.counts[ISR_STAT_FETCH_USEC] / 1e6, m, lab,
               count);
}

int isr_report_metrics(request_rec *r)
{
    apr_array_header_t *a = gather(r, NULL);
    const char **lab = apr_palloc(r->pool, sizeof(char *) * (a->nelts + 1));
    apr_size_t k;
    int i, family_done = 0;

    set_type(r, "text/plain; version=0.0.4; charset=utf-8");
    for (i = 0; i < a->nelts; i++) {
        lab[i] = label(r->pool, APR_ARRAY_IDX(a, i, zone_report_t).zone->name);
    }
    for (k = 0; k < NCOUNTERS; k++) {
        const char *m = apr_pstrcat(r->pool, "isr_", counters[k].name,
                                    "_total", NULL);

        family(r, m, "counter", counters[k].help);
        for (i = 0; i < a->nelts; i++) {
            ap_rprintf(r, "%s{zone=\"%s\"} %" APR_UINT64_T_FMT "\n", m, lab[i],
                       APR_ARRAY_IDX(a, i, zone_report_t)
                           .in.counts[counters[k].stat]);
        }
    }
    for (k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
        family(r, gauges[k].name, "gauge", gauges[k].help);
        for (i = 0; i < a->nelts; i++) {
            ap_rprintf(r, "%s{zone=\"%s\"} %" APR_UINT64_T_FMT "\n",
                       gauges[k].name, lab[i],
                       gauge_value(&APR_ARRAY_IDX(a, i, zone_report_t),
                                   gauges[k].which));
        }
    }
    for (k = 0; k < ISR_TIER_METRICS; k++) {
        const char *name = NULL, *help, *m;
        apr_uint64_t v;
        int counter;

        for (i = 0; i < a->nelts; i++) {
            if (!isr_tier_metric(APR_ARRAY_IDX(a, i, zone_report_t).zone,
                                 (int)k, &name, &help, &counter, &v)) {
                continue;
            }
            m = apr_pstrcat(r->pool, "isr_redis_", name,
                            counter ? "_total" : "", NULL);
            if (!family_done) {
                family(r, m, counter ? "counter" : "gauge", help);
                family_done = 1;
            }
            ap_rprintf(r, "%s{zone=\"%s\"} %" APR_UINT64_T_FMT "\n", m, lab[i],
                       v);
        }
        family_done = 0;
    }
    family(r, "isr_backend_fetch_duration_seconds", "histogram",
           "Time of the backend fetches that fill and refresh the cache.");
    for (i = 0; i < a->nelts; i++) {
        histogram(r, &APR_ARRAY_IDX(a, i, zone_report_t), lab[i]);
    }
    return OK;
}

/* ---- entries ------------------------------------------------------------ */

static const char *const state_names[] = {
    "absent", "fresh", "stale", "expired", "pending", "pass", "failed"
};

int isr_report_state(const char *name)
{
    int i;

    for (i = 1; i < (int)(sizeof(state_names) / sizeof(state_names[0])); i++) {
        if (!strcmp(name, state_names[i])) {
            return i;
        }
    }
    return -1;
}

/* The path stored with the entry is `prefix` or below it. */
static int under(const char *path, const char *prefix, apr_size_t plen)
{
    return path && !strncmp(path, prefix, plen)
           && (path[plen] == '\0' || path[plen] == '/' || plen == 1);
}

static apr_int64_t secs(apr_time_t t)
{
    return (apr_int64_t)apr_time_sec(t);
}

/* How the key's last background refresh (or warm) ended, or "null". */
static const char *refresh_json(apr_pool_t *p, const isr_zone_t *z,
                                const isr_entry_t *e, apr_time_t now)
{
    static const char *const results[] = {
        NULL, "ok", "not-modified", "failed", "not-stored", "uncacheable"
    };
    static const char *const errors[] = {
        NULL, NULL, "timed out", "cannot connect", "fetch failed"
    };
    apr_int64_t ago;
    const char *err;
    isr_health_t h;

    if (!isr_store_health_get(z, e->slot, e->hash, &h)) {
        return "null";
    }
    ago = (apr_int64_t)apr_time_sec(now) - (apr_int64_t)h.at;
    err = h.error == ISR_HEALTH_ERR_STATUS
              ? apr_psprintf(p, "\"status %u\"", h.status)
          : h.error > ISR_HEALTH_ERR_STATUS && h.error <= ISR_HEALTH_ERR_OTHER
              ? apr_psprintf(p, "\"%s\"", errors[h.error])
              : "null";
    return apr_psprintf(p, "{\"ago\":%" APR_INT64_T_FMT ",\"result\":\"%s\","
                        "\"ok\":%s,\"status\":%u,\"error\":%s,"
                        "\"failures_in_a_row\":%u}", ago > 0 ? ago : 0,
                        results[h.result],
                        h.result == ISR_HEALTH_OK
                        || h.result == ISR_HEALTH_NOT_MODIFIED ? "true"
                                                               : "false",
                        h.status, err, (unsigned)h.failures);
}

static void entry_json(request_rec *r, const isr_zone_t *z,
                       const isr_entry_t *e, isr_look_t st, const char *key,
                       apr_size_t klen, const char *path,
                       const apr_array_header_t *tags, int overflow,
                       apr_time_t now, int first)
{
    apr_pool_t *p = r->pool;
    const char *url = NULL;
    isr_ctx_t ctx;
    int i;

    if (key && isr_ctx_parse(p, key, klen, &ctx) == APR_SUCCESS) {
        url = ctx.url;
    }
    ap_rprintf(r, "%s{\"zone\":%s,\"state\":\"%s\",\"key\":%s,\"url\":%s,"
               "\"path\":%s", first ? "" : ",",
               isr_report_json_str(p, z->name, strlen(z->name)),
               state_names[st],
               key ? isr_report_json_str(p, key, klen) : "null",
               url ? isr_report_json_str(p, url, strlen(url)) : "null",
               path ? isr_report_json_str(p, path, strlen(path)) : "null");
    if (e->record) {
        ap_rprintf(r, ",\"status\":%d,\"age\":%" APR_INT64_T_FMT
                   ",\"fresh_for\":%" APR_INT64_T_FMT
                   ",\"kept_for\":%" APR_INT64_T_FMT
                   ",\"body_bytes\":%" APR_SIZE_T_FMT
                   ",\"other_codings_bytes\":%" APR_SIZE_T_FMT
                   ",\"revalidated\":%s,\"tags\":[",
                   e->status, secs(now - e->fetched),
                   e->fresh_until > now ? secs(e->fresh_until - now) : 0,
                   e->until > now ? secs(e->until - now) : 0,
                   e->bodylen, e->altlen,
                   e->revalidated ? "true" : "false");
        for (i = 0; tags && i < tags->nelts; i++) {
            const char *t = APR_ARRAY_IDX(tags, i, const char *);

            ap_rprintf(r, "%s%s", i ? "," : "",
                       isr_report_json_str(p, t, strlen(t)));
        }
        ap_rprintf(r, "],\"more_tags\":%s,\"last_good_age\":%"
                   APR_INT64_T_FMT, overflow ? "true" : "false",
                   secs(now - e->fetched));
    }
    ap_rprintf(r, ",\"last_refresh\":%s}", refresh_json(p, z, e, now));
}

int isr_report_entries(request_rec *r, const char *only, const char *prefix,
                       int state, int limit)
{
    apr_time_t now = apr_time_now();
    apr_size_t plen = prefix ? strlen(prefix) : 0;
    apr_pool_t *sub;
    int i, n = 0, more = 0;
    apr_uint32_t k;

    if (only && !isr_zone_get(only)) {
        return HTTP_NOT_FOUND;
    }
    set_type(r, "application/json");
    ap_rputs("{\"entries\":[", r);
    apr_pool_create(&sub, r->pool);
    for (i = 0; i < isr_zones_count() && !more; i++) {
        const isr_zone_t *z = isr_zone_at(i);

        if (only && strcmp(only, z->name)) {
            continue;
        }
        for (k = 0; k < z->nslots && !more; k++) {
            const char *key, *path = NULL;
            apr_array_header_t *tags = NULL;
            apr_size_t klen;
            isr_entry_t e;
            isr_look_t st;
            int overflow = 0;

            apr_pool_clear(sub);
            st = isr_store_peek(z, k, now, sub, &e, &key, &klen);
            if (st == ISR_LOOK_ABSENT || (state > 0 && (int)st != state)) {
                continue;
            }
            if (e.record) {
                isr_purge_block_read(sub, e.tags, e.taglen, &path, &tags,
                                     &overflow);
            }
            if (prefix && !under(path, prefix, plen)) {
                continue;
            }
            if (n == limit) {
                more = 1;
                break;
            }
            entry_json(r, z, &e, st, key, klen, path, tags, overflow, now,
                       n == 0);
            n++;
        }
    }
    apr_pool_destroy(sub);
    ap_rprintf(r, "],\"count\":%d,\"truncated\":%s}\n", n,
               more ? "true" : "false");
    return OK;
}
