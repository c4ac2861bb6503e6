/* Compress once (ISRCompress): when an answer is stored, its body is
 * compressed into gzip and brotli copies kept in the same record as the
 * identity body (the record's "alternates"), so that a hit picks one by
 * the client's Accept-Encoding and never runs a compressor. A backend body
 * that came gzip- or br-encoded is kept as it came (never compressed
 * again) and decoded once into the identity body.
 *
 * The alternates block (after the body in the record, isr_shm.h), every
 * number little-endian as the machine writes it, read with memcpy:
 *
 *   u32 count | count x { u32 coding, u32 len } | the bodies, in order
 *
 * A block of count 0 says "mod_isr decided: nothing smaller to keep" (the
 * hit keeps mod_deflate away all the same); no block at all says the
 * answer was not in ISRCompress's scope.
 *
 * zlib, libbrotli and APR only: unit-tested and fuzzed without a server. */
#ifndef ISR_COMPRESS_H
#define ISR_COMPRESS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "isr_http.h"
#include "isr_store.h"

/* Defaults: the best levels whose cost suits a store (see README). */
#define ISR_COMPRESS_GZIP_LEVEL 9
#define ISR_COMPRESS_BR_LEVEL   10
/* Brotli levels 10 and 11 cost 0.3-1 us a byte: bodies above this are
 * compressed at level 9 at most (about 40 ms a MiB). */
#define ISR_COMPRESS_BR_SLOW_MAX (256 * 1024)
#define ISR_COMPRESS_MIN_SIZE   256
/* Larger bodies get no copies, and a backend's encoded body is decoded
 * into at most this much: compressing stays well inside a fetch's lease
 * (about 0.5 s at the default levels) and its memory a few times this. */
#define ISR_COMPRESS_MAX_BODY   (8 * 1024 * 1024)
/* What a copy's ETag adds before the coding's name: not mod_deflate's
 * "-gzip" nor mod_brotli's "-br", so that their bytes (another level)
 * never share a strong validator with mod_isr's. */
#define ISR_COMPRESS_ETAG       "-isr-"

typedef struct {
    int level[ISR_CODINGS];     /* -1: coding not listed ([identity]: -1) */
    /* const char *, lower case: "a/b", or a top-level wildcard "a/" "*";
     * NULL: the default types */
    const apr_array_header_t *types;
    apr_size_t min_size;
} isr_compress_conf_t;

/* Whether conf lists any coding. */
int isr_compress_on(const isr_compress_conf_t *conf);

/* "gzip", "br" (or "identity"). */
const char *isr_compress_name(int coding);

/* Whether a media type (a Content-Type value, parameters ignored) is one
 * conf compresses. */
int isr_compress_type(const isr_compress_conf_t *conf, const char *ctype);

/* What storing made of a value. */
typedef enum {
    ISR_COMPRESS_NONE,      /* not in scope: stored as it came */
    ISR_COMPRESS_DONE,      /* alternates made (or none worth keeping) */
    ISR_COMPRESS_UNDECODED  /* encoded by the backend, not decodable here
                             * (bad data, too large, another coding) */
} isr_compress_result_t;

/* At store time: v's body compressed into the listed codings (a copy
 * that does not save 5% is not kept), or, when the backend sent it
 * gzip/br-encoded, decoded into the identity body (at most max_body bytes)
 * with the original bytes kept as that coding's alternate. Sets v->alts,
 * v->altlen (and v->body, v->headers after a decode); all allocated from
 * p. Memory is bounded by the body sizes and brotli's window. */
isr_compress_result_t isr_compress_value(apr_pool_t *p,
                                         const isr_compress_conf_t *conf,
                                         apr_size_t max_body, isr_value_t *v);

/* A record with v's copies does not fit its zone: keep only the smaller
 * copy, or (with one) none, leaving a block of count 0 so that hits still
 * keep mod_deflate away. 0 when there is nothing left to drop. */
int isr_compress_trim(apr_pool_t *p, isr_value_t *v);

/* After a 304 renewed v (the stored copies kept): a head that now says
 * Cache-Control: no-transform drops them (a block of count 0). 1 when it
 * did. */
int isr_compress_renewed(isr_value_t *v);

/* Whether an alternates block is well formed (every length inside it). */
int isr_compress_alts_valid(const char *alts, apr_size_t altlen);

/* The body of coding in a well-formed block: 1 with *body, *len, else 0. */
int isr_compress_alt(const char *alts, apr_size_t altlen, int coding,
                     const char **body, apr_size_t *len);

/* Whether the block holds a copy in a coding conf lists (the answer then
 * varies on Accept-Encoding). */
int isr_compress_varies(const isr_compress_conf_t *conf, const char *alts,
                        apr_size_t altlen);

/* The coding a hit answers with: of identity and those in the block that
 * conf lists, the one the Accept-Encoding value (NULL: none) weighs most;
 * br, then gzip, win ties. */
int isr_compress_choose(const isr_compress_conf_t *conf, const char *alts,
                        apr_size_t altlen, const char *accept);

/* The ETag of coding's variant: the stored one with "-isr-gzip" /
 * "-isr-br" before its closing quote ("a" -> "a-isr-gzip", W/"a" ->
 * W/"a-isr-gzip"); the stored one for identity; NULL (send none) when the
 * stored one is not a quoted entity-tag. */
const char *isr_compress_etag(apr_pool_t *p, const char *etag, int coding);

#endif /* ISR_COMPRESS_H */
