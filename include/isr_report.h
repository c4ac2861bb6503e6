/* isr-admin's reports (src/isr_report.c): per-zone counters, fill and the
 * last operation's sequence number as JSON (GET <admin>/status) and as
 * Prometheus text (GET <admin>/metrics), with a histogram of the backend
 * fetch durations. */
#ifndef ISR_REPORT_H
#define ISR_REPORT_H

#include <httpd.h>

/* The status JSON of every zone, or of zone `only` (HTTP_NOT_FOUND when
 * there is no such zone). */
int isr_report_status(request_rec *r, const char *only);

/* The metrics in Prometheus text format 0.0.4. */
int isr_report_metrics(request_rec *r);

/* A bounded listing of entries (every zone, or `only`): those with a path
 * stored at or below `prefix` (normalised, or NULL), in state `state`
 * (isr_report_state(), or 0: any), at most `limit`. A walk of the zone's
 * index, read-only and lock-free: the admin request's cost, never a
 * client's. HTTP_NOT_FOUND for an unknown zone (nothing sent then). */
int isr_report_entries(request_rec *r, const char *only, const char *prefix,
                       int state, int limit);

/* "fresh", "stale", "expired", "pending", "pass", "failed": the
 * isr_look_t; -1 for anything else. */
int isr_report_state(const char *name);

/* s[0..len) as a JSON string (quoted; controls and bytes >= 0x7f as
 * \u00XX: keys and paths are bytes), into p. */
const char *isr_report_json_str(apr_pool_t *p, const char *s, apr_size_t len);

#endif /* ISR_REPORT_H */
