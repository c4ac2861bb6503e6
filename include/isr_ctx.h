/* The backend request context: everything mod_isr tells the backend that
 * can change its answer (Unix socket, URL, forwarded headers), and the cache
 * key built from it. The key IS the serialised context (plus an optional
 * operator-chosen part that can only split entries, never merge them), so
 * whatever reaches the backend is in the key by construction, and a
 * background refresh replays the context parsed back out of the stored key,
 * never the headers of the request that triggered it.
 *
 * APR only (no httpd): unit-tested and fuzzed without a server. */
#ifndef ISR_CTX_H
#define ISR_CTX_H

#include <apr_pools.h>
#include <apr_tables.h>

/* First field of every key: bump when the format below changes. */
#define ISR_CTX_MAGIC "ISR1"

typedef struct {
    const char *unix_path;              /* connect to this socket, or NULL */
    const char *url;                    /* http(s) URL, never NULL */
    const apr_array_header_t *headers;  /* const char * "Name: value", or NULL */
    const char *extra;                  /* ISRCacheKey value, or NULL */
    const char *variant;                /* a Vary variant: the generation
                                         * of its URL's marker, or NULL */
    int strict;                         /* ISRCacheControl Strict: its own
                                         * keys, never shared with On/Off */
} isr_ctx_t;

/* The key for ctx, allocated from p:
 *
 *   "ISR1" NUL unix NUL url NUL header NUL ... header NUL NUL extra
 *
 * In Strict mode the first field is "ISR1S" (its answers depend on Vary and
 * on client headers an On-mode fetch never sends: the modes share no
 * entry); a variant's key (isr_vary.h) starts "ISR1V" GENERATION, and its
 * headers include the varied request headers, so that no variant key is
 * ever a URL's key and a refresh of a variant sends what it varies on.
 *
 * No field can contain NUL and no header is empty, so two contexts give
 * the same key only when they are equal. *klen gets the length (the key
 * holds NULs; it is also NUL-terminated for convenience). */
const char *isr_ctx_key(apr_pool_t *p, const isr_ctx_t *ctx, apr_size_t *klen);

/* Parse a key back into a context (pointing into a copy made in p).
 * APR_EINVAL when key[0..klen) is not a well-formed key. */
apr_status_t isr_ctx_parse(apr_pool_t *p, const char *key, apr_size_t klen,
                           isr_ctx_t *ctx);

/* Whether ctx has a header of this name (case-blind). */
int isr_ctx_has_header(const isr_ctx_t *ctx, const char *name);

/* Percent-encode every byte that may not appear literally in a URL sent to
 * the backend: controls, space, bytes >= 0x80, and " # < > \ ^ ` { | }.
 * Returns url itself when nothing needs encoding. */
const char *isr_ctx_url_clean(apr_pool_t *p, const char *url);

/* Percent-encode everything but A-Z a-z 0-9 - . _ ~ and / (ap_expr's
 * isr_urlencode: a value spliced into a query string stays one value). */
const char *isr_ctx_urlencode(apr_pool_t *p, const char *s);

/* The authority (host[:port], userinfo included) of an http(s) URL: its
 * length in *len and a pointer to it, or NULL when url has no
 * "http://" / "https://" scheme. The authority ends at '/', '?', '#' or at
 * the end of url (at `end` when that comes first). */
const char *isr_ctx_authority(const char *url, const char *end,
                              apr_size_t *len);

#endif /* ISR_CTX_H */
