/* Purge and revalidate without scans: by tag, path prefix, URL key or the
 * whole zone (DESIGN-NOTES "Invalidation without scans").
 *
 * An operation takes the zone's next sequence number and writes it into
 * the purge table (isr_shm.h) under the zone mutex: against the zone, or
 * against the hashes it names. A record keeps `born`, the sequence seen
 * when the fetch that made it began, and a tag block with the hashes of
 * its tags, its path prefixes and its URL's key. A lookup compares: an
 * entry born before a purge of any of them is dropped (hard), before a
 * revalidate is served stale while one refresh runs (soft). A fetch under
 * way when an operation came was born before it, so its answer landing
 * cannot undo the operation. Operations cost O(hashes named); a hit costs
 * one load while nothing happened since its entry was fetched, and a few
 * cache lines per hash of the entry otherwise.
 *
 * APR only (no httpd): unit-tested and fuzzed without a server. */
#ifndef ISR_PURGE_H
#define ISR_PURGE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "isr_store.h"

typedef enum {
    ISR_PURGE_NONE,   /* not invalidated since it was fetched */
    ISR_PURGE_SOFT,   /* revalidated: serve stale, refresh */
    ISR_PURGE_HARD    /* purged: gone */
} isr_purge_t;

/* Per entry: explicit tags kept (more, or a longer one, and the entry
 * answers to every tag purge instead), and path prefixes ("/a", "/a/b"...)
 * hashed. A prefix purge deeper than ISR_PURGE_MAX_DEPTH is refused. */
#define ISR_PURGE_MAX_TAGS   64
#define ISR_PURGE_MAX_TAGLEN 256
#define ISR_PURGE_MAX_DEPTH  16

/* Hashes (SipHash under the zone's key, one namespace each; never 0). */
apr_uint64_t isr_purge_tag_hash(const isr_zone_t *zone, const char *tag,
                                apr_size_t len);
apr_uint64_t isr_purge_prefix_hash(const isr_zone_t *zone, const char *path,
                                   apr_size_t len);
apr_uint64_t isr_purge_key_hash(const isr_zone_t *zone, apr_uint64_t hash);
/* A URL's: what the backend is asked (its socket, or NULL, and URL),
 * whatever else is in the key (forwarded headers, ISRCacheKey, Vary). */
apr_uint64_t isr_purge_url_hash(const isr_zone_t *zone, const char *unix_path,
                                const char *url);
/* What an entry with too many (or too long) tags carries instead: every
 * tag operation names it too. */
apr_uint64_t isr_purge_overflow_hash(const isr_zone_t *zone);

/* The zone's operation sequence now. */
apr_uint64_t isr_purge_seq(const isr_zone_t *zone);

/* What a fetch records as its entry's birth (isr_value_t born, born_at):
 * the time, then the sequence. Take it before the entry the fetch may
 * revalidate is looked up, and before the fetch asks the backend. */
typedef struct {
    apr_uint64_t seq;
    apr_time_t at;
} isr_purge_mark_t;

void isr_purge_mark(const isr_zone_t *zone, isr_purge_mark_t *m);

/* Whether an entry born at `born` with this tag block (NULL, 0: none) was
 * purged or revalidated since. Lock-free; every length in blk is checked
 * against len. */
isr_purge_t isr_purge_check(const isr_zone_t *zone, apr_uint64_t born,
                            const unsigned char *blk, apr_size_t len);

/* Purge (hard) or revalidate (soft) the n hashes, or the whole zone when
 * n is 0. *pseq gets the operation's sequence number. Takes the zone
 * mutex; APR_EGENERAL when it cannot. */
apr_status_t isr_purge_apply(isr_zone_t *zone, int hard,
                             const apr_uint64_t *hashes, apr_size_t n,
                             apr_uint64_t *pseq);

/* A value an operation names (keys hold NUL bytes). */
typedef struct {
    const char *v;
    apr_size_t len;
} isr_purge_val_t;

/* An operation by what it names, as the admin API and the second tier
 * (isr_tier.h) carry it: kind 'k' the keys, 'p' a path prefix (normalized:
 * "/" or less is the zone), 't' the tags, 'u' a URL (values: its socket, or
 * "" for none, and its URL), 'a' the zone. The hashes are this zone's; as
 * isr_purge_apply. APR_EINVAL when the values do not fit the kind. */
apr_status_t isr_purge_op(isr_zone_t *zone, int hard, char kind,
                          const apr_array_header_t *values, apr_pool_t *p,
                          apr_uint64_t *pseq);

/* The path prefixes of an absolute path as a prefix purge names them:
 * "/a/b/" and "/a/b" are "/a/b", whose prefixes are "/a" and "/a/b" ("/"
 * is every entry's: a prefix purge of "/" is a purge of the zone). Their
 * lengths go to out[]; returns how many, at most ISR_PURGE_MAX_DEPTH (0 for
 * "/" or a relative path). */
int isr_purge_prefixes(const char *path, apr_size_t len, apr_size_t *out);

/* Split a tag list (space, tab or comma separated) into tags: an array of
 * const char *, duplicates removed. *overflow is set when there are more
 * than `max` tags or one is longer than ISR_PURGE_MAX_TAGLEN. */
apr_array_header_t *isr_purge_split_tags(apr_pool_t *p, const char *list,
                                         apr_size_t len, int max,
                                         int *overflow);

/* Whether `name` is one of the tag headers (const char *): ISRTagHeader's
 * list, NULL for the default (Surrogate-Key, Cache-Tag). */
int isr_purge_is_tag_header(const apr_array_header_t *tag_headers,
                            const char *name);

/* A record's tag block: its URL's hash (isr_purge_url_hash, or 0), its own
 * key's (key_hash: the key's store hash, or 0), the hash of each prefix of
 * its path (NULL: none), and of each tag in
 * the values of the response head's tag headers (isr_purge_is_tag_header).
 * Into p. */
void isr_purge_block_make(apr_pool_t *p, const isr_zone_t *zone,
                          const char *path, apr_uint64_t url_hash,
                          apr_uint64_t key_hash,
                          const apr_array_header_t *tag_headers,
                          const char *headers, apr_size_t hdrlen,
                          const unsigned char **blk, apr_size_t *len);

/* The same with the tags given (const char *, as isr_purge_split_tags
 * makes them; overflow: there were more), e.g. for an entry found in the
 * second tier (isr_tier.h), whose block is made anew with this zone's
 * keys. */
void isr_purge_block_from(apr_pool_t *p, const isr_zone_t *zone,
                          const char *path, apr_uint64_t url_hash,
                          apr_uint64_t key_hash,
                          const apr_array_header_t *tags, int overflow,
                          const unsigned char **blk, apr_size_t *len);

/* The same for a refreshed entry: the URL's, key's and path's hashes of the
 * old block (a refresh replays the entry, not the triggering request), the
 * tags of the new head. */
void isr_purge_block_renew(apr_pool_t *p, const isr_zone_t *zone,
                           const unsigned char *old, apr_size_t oldlen,
                           const apr_array_header_t *tag_headers,
                           const char *headers, apr_size_t hdrlen,
                           const unsigned char **blk, apr_size_t *len);

/* What a block says, for listings: its path (or NULL) and its tags (const
 * char *, into p). 0 when blk is not a well-formed block. */
int isr_purge_block_read(apr_pool_t *p, const unsigned char *blk,
                         apr_size_t len, const char **path,
                         apr_array_header_t **tags, int *overflow);

#endif /* ISR_PURGE_H */
