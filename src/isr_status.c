/* mod_isr's section of mod_status: per zone, the answers given (HIT, STALE,
 * MISS, ...), refreshes, evictions, and how full the index and the ring
 * are. Read without locks, like the scoreboard: figures may be a moment
 * old. */
#include "isr.h"
#include <apr_optional_hooks.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <mod_status.h>

#include "isr_status.h"
#include "isr_zone.h"

/* The counters shown: all but the fetch-duration histogram (isr-admin's
 * metrics has it). */
#define SHOWN ISR_STAT_FETCH_LE

static const char *const names[SHOWN] = {
    "Hits", "Stale", "Misses", "Waited", "Errors", "Stores", "NotStored",
    "Refreshes", "RefreshFailures", "Evictions", "SecondChances",
    "BodyBytes", "GzipSourceBytes", "GzipBytes", "BrSourceBytes", "BrBytes",
    "PurgeOps", "Purged", "RefreshesStored", "RefreshesNotModified",
    "Fetches", "FetchMicroseconds"
};

/* Compressed bytes per identity byte of the bodies compressed ("-" when
 * none was), e.g. "0.215". */
static const char *ratio(request_rec *r, apr_uint64_t out, apr_uint64_t in)
{
    return in ? apr_psprintf(r->pool, "%.3f", (double)out / (double)in) : "-";
}

static void zone_short(request_rec *r, const isr_zone_t *z,
                       const isr_store_info_t *in)
{
    int k;

    for (k = 0; k < SHOWN; k++) {
        ap_rprintf(r, "ISRZone %s %s: %" APR_UINT64_T_FMT "\n", z->name,
                   names[k], in->counts[k]);
    }
    ap_rprintf(r, "ISRZone %s Entries: %u\nISRZone %s Slots: %u\n"
               "ISRZone %s RingUsed: %" APR_UINT64_T_FMT "\n"
               "ISRZone %s RingSize: %" APR_UINT64_T_FMT "\n"
               "ISRZone %s GzipRatio: %s\nISRZone %s BrRatio: %s\n",
               z->name, in->slots_used, z->name, in->slots, z->name,
               in->ring_used, z->name, in->ring_size,
               z->name, ratio(r, in->counts[ISR_STAT_GZIP_BYTES],
                              in->counts[ISR_STAT_GZIP_SRC]),
               z->name, ratio(r, in->counts[ISR_STAT_BR_BYTES],
                              in->counts[ISR_STAT_BR_SRC]));
}

static void zone_row(request_rec *r, const isr_zone_t *z,
                     const isr_store_info_t *in)
{
    int k;

    ap_rprintf(r, "<tr><td>%s</td>", ap_escape_html(r->pool, z->name));
    for (k = 0; k < SHOWN; k++) {
        ap_rprintf(r, "<td>%" APR_UINT64_T_FMT "</td>", in->counts[k]);
    }
    ap_rprintf(r, "<td>%u / %u</td><td>%" APR_UINT64_T_FMT "K / %"
               APR_UINT64_T_FMT "K</td><td>%s</td><td>%s</td></tr>\n",
               in->slots_used, in->slots, in->ring_used / 1024,
               in->ring_size / 1024,
               ratio(r, in->counts[ISR_STAT_GZIP_BYTES],
                     in->counts[ISR_STAT_GZIP_SRC]),
               ratio(r, in->counts[ISR_STAT_BR_BYTES],
                     in->counts[ISR_STAT_BR_SRC]));
}

static int isr_status_hook(request_rec *r, int flags)
{
    isr_store_info_t info;
    int i, k, n = isr_zones_count();

    if (!n) {
        return OK;
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("<hr />\n<h2>mod_isr zones</h2>\n<table border=\"1\"><tr>"
                 "<th>zone</th>", r);
        for (k = 0; k < SHOWN; k++) {
            ap_rprintf(r, "<th>%s</th>", names[k]);
        }
        ap_rputs("<th>entries / slots</th><th>ring used / size</th>"
                 "<th>gzip ratio</th><th>br ratio</th></tr>\n", r);
    }
    for (i = 0; i < n; i++) {
        const isr_zone_t *z = isr_zone_at(i);
        isr_store_info(z, &info);
        if (flags & AP_STATUS_SHORT) {
            zone_short(r, z, &info);
        }
        else {
            zone_row(r, z, &info);
        }
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("</table>\n", r);
    }
    return OK;
}

void isr_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    APR_OPTIONAL_HOOK(ap, status_hook, isr_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
