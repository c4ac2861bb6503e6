/* Configuration: per-directory and server structs, typed getters that
 * resolve defaults, and the directive table. */
#ifndef ISR_CONFIG_H
#define ISR_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <ap_expr.h>
#include "isr_parse.h"
#include "isr_http.h"
#include "isr_policy.h"
#include "isr_compress.h"

#define ISR_APPLY_RESPONSE 0
#define ISR_APPLY_ENV      1
#define ISR_APPLY_HEADER   2

#define ISR_ONERROR_PASS   0   /* otherwise an HTTP status */

typedef struct {
    int enabled;                    /* -1 unset, 0 ISR Off, 1 on */
    int quick;                      /* ISRQuickHandler: -1 unset, 0, 1 */
    const char *backend_url;        /* literal base URL, or NULL with expr */
    const char *unix_path;          /* unix: socket, or NULL */
    const char *ca_file;            /* ISRBackendCA, or NULL: system CAs */
    ap_expr_info_t *backend_expr;   /* ISRBackend "expr=..." */
    const char *backend_origin;     /* its literal "scheme://authority": the
                                     * only one an evaluated URL may have */
    const char *prefix;             /* <Location> path stripped, or NULL */
    ap_expr_info_t *key_expr;       /* ISRCacheKey, or NULL: the URL */
    const char *zone;               /* ISRCache, or NULL: default */
    apr_array_header_t *forward;    /* ISRForwardHeader names, or NULL */
    isr_status_set_t *cache_status; /* ISRCacheStatus, or NULL: default */
    apr_interval_time_t ttl, stale_ttl, timeout, connect_timeout, retry,
                        relay_timeout, error_ttl;
    int cc_mode;                    /* ISRCacheControl: isr_cc_mode_t */
    apr_off_t max_object;
    int apply;                      /* ISR_APPLY_* */
    const char *apply_name;
    int on_error;                   /* status, or ISR_ONERROR_PASS */
    int zlevel[ISR_CODINGS];        /* ISRCompress: level per coding, -1
                                     * not listed; [0] UNSET: unset */
    apr_array_header_t *ztypes;     /* ISRCompressTypes, or NULL: default */
    apr_off_t zmin;                 /* ISRCompressMinSize, UNSET: default */
    apr_interval_time_t fast_wait;  /* ISRFastPath: 0 Off, UNSET default */
    int refresh_ahead;              /* ISRRefreshAhead: percent, 0 Off,
                                     * UNSET default (Off) */
    apr_array_header_t *tag_headers; /* ISRTagHeader (empty: None), or
                                     * NULL: the default */
    unsigned int tag_none:1;        /* ISRTagHeader None given */
    unsigned int backend_set:1, ttl_set:1, stale_set:1, timeout_set:1,
                 connect_set:1, retry_set:1, max_set:1, apply_set:1,
                 on_error_set:1, key_set:1;
} isr_dir_conf_t;

typedef struct {
    apr_array_header_t *zones;      /* isr_zone_def_t, main server only */
    int refresh_threads;            /* -1 unset */
    apr_off_t local_copies;         /* ISRLocalCopySize, -1 unset */
    int zero_copy;                  /* ISRZeroCopy: -1 unset, 0, 1 */
} isr_srv_conf_t;

extern const command_rec isr_cmds[];

void *isr_conf_create_dir(apr_pool_t *p, char *dir);
void *isr_conf_merge_dir(apr_pool_t *p, void *basev, void *addv);
void *isr_conf_create_srv(apr_pool_t *p, server_rec *s);

/* pre_config: forget the previous generation's zone references. */
void isr_conf_pre_config(void);

/* check_config: every ISRCache names a defined zone; adds the implicit
 * default zone. Returns an error message or NULL. */
const char *isr_conf_check(apr_pool_t *p, server_rec *s);

/* post_config, once the zones exist: warn about ISRMaxObjectSize values
 * that their zone could never store. */
void isr_conf_check_zones(server_rec *s);

/* ap_expr functions for mod_isr's expressions: isr_urlencode. */
int isr_conf_expr_lookup(ap_expr_lookup_parms *parms);

/* Getters: defaults resolved here, not in callers. */
int isr_conf_enabled(const isr_dir_conf_t *c);
int isr_conf_quick(const isr_dir_conf_t *c);
int isr_conf_apply(const isr_dir_conf_t *c);   /* ISR_APPLY_* */

/* Non-zero when some scope has ISRQuickHandler On: only then does the
 * quick handler walk <Location> sections for every request. */
int isr_conf_quick_used(void);

/* A forwarded client header longer than this is refused (431). */
#define ISR_FORWARD_MAX 4096
const char *isr_conf_zone(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_ttl(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_stale_ttl(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_timeout(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_connect_timeout(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_retry(const isr_dir_conf_t *c);
apr_size_t isr_conf_max_object(const isr_dir_conf_t *c);
apr_interval_time_t isr_conf_error_ttl(const isr_dir_conf_t *c);
isr_cc_mode_t isr_conf_cc_mode(const isr_dir_conf_t *c);
/* The mode and TTLs that isr_policy_times() needs. */
void isr_conf_policy(const isr_dir_conf_t *c, isr_policy_conf_t *pc);
apr_interval_time_t isr_conf_relay_timeout(const isr_dir_conf_t *c);
int isr_conf_on_error(const isr_dir_conf_t *c);
/* ISRCompress, ISRCompressTypes, ISRCompressMinSize. */
void isr_conf_compress(const isr_dir_conf_t *c, isr_compress_conf_t *out);
/* ISRRefreshAhead: the last part of an entry's fresh time, in percent, in
 * which a hit starts the entry's refresh (0: Off). */
int isr_conf_refresh_ahead(const isr_dir_conf_t *c);
/* ISRFastPath: how long to look for the next request after a cached
 * answer under the event MPM (0: Off). */
apr_interval_time_t isr_conf_fast_wait(const isr_dir_conf_t *c);
/* ISRTagHeader: the headers whose values tag an entry (isr_purge.h):
 * NULL for the default (Surrogate-Key, Cache-Tag), empty for None. */
const apr_array_header_t *isr_conf_tag_headers(const isr_dir_conf_t *c);
int isr_conf_refresh_threads(const isr_srv_conf_t *sc);
apr_size_t isr_conf_local_copies(const isr_srv_conf_t *sc);
int isr_conf_zero_copy(const isr_srv_conf_t *sc);


#endif /* ISR_CONFIG_H */
