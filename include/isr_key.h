/* Key hashing. Buckets are chosen from the hash, never from the key's first
 * bytes: every default key starts with "http://" (the shmcb trap). */
#ifndef ISR_KEY_H
#define ISR_KEY_H

#include <apr.h>

/* Seeded 64-bit hash of key[0..len). Never returns 0 (0 marks "no key"). */
apr_uint64_t isr_key_hash(apr_uint64_t seed, const char *key, apr_size_t len);

#endif /* ISR_KEY_H */
