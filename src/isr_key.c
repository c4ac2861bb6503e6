/* Key hashing: FNV-1a over the bytes, seeded per zone so that keys chosen
 * by clients cannot be aimed at one bucket, then murmur3's fmix64 finaliser
 * so that the low bits used for the bucket depend on every input byte. */
#include "isr_key.h"

apr_uint64_t isr_key_hash(apr_uint64_t seed, const char *key, apr_size_t len)
{
    const unsigned char *p = (const unsigned char *)key;
    apr_uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}
