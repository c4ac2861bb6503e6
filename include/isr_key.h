/* Key hashing. Buckets are chosen from the hash, never from the key's first
 * bytes: every default key starts with "http://" (the shmcb trap). */
#ifndef ISR_KEY_H
#define ISR_KEY_H

#include <apr.h>

/* SipHash-2-4 of data[0..len) with the 128-bit key k (k[0] = key bytes
 * 0..7, k[1] = bytes 8..15, little-endian: k0 and k1 of the paper). The
 * plain PRF, for tests against the reference vectors. */
apr_uint64_t isr_key_siphash(const apr_uint64_t k[2], const void *data,
                             apr_size_t len);

/* The hash of a cache key under the zone's key k: SipHash-2-4, except that
 * it never returns 0 (0 marks "no key"). */
apr_uint64_t isr_key_hash(const apr_uint64_t k[2], const char *key,
                          apr_size_t len);

#endif /* ISR_KEY_H */
