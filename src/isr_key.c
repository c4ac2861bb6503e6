/* Key hashing: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012), keyed with the zone's random 128-bit key. A
 * keyed PRF, not a seeded FNV: clients choose the keys, and without the
 * key they cannot compute which bucket a key lands in, so they cannot aim
 * a flood of keys at one bucket (the kernel and most hash tables do the
 * same). The 64-bit output also spreads its low bits (the bucket index)
 * over every input byte. */
#include "isr_key.h"

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND do {                                                    \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);        \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                           \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                           \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);        \
    } while (0)

/* Little-endian whatever the host, as the reference defines it. */
static apr_uint64_t load_le64(const unsigned char *p)
{
    return (apr_uint64_t)p[0] | (apr_uint64_t)p[1] << 8
           | (apr_uint64_t)p[2] << 16 | (apr_uint64_t)p[3] << 24
           | (apr_uint64_t)p[4] << 32 | (apr_uint64_t)p[5] << 40
           | (apr_uint64_t)p[6] << 48 | (apr_uint64_t)p[7] << 56;
}

apr_uint64_t isr_key_siphash(const apr_uint64_t k[2], const void *data,
                             apr_size_t len)
{
    const unsigned char *p = data, *end = p + (len & ~(apr_size_t)7);
    apr_uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
    apr_uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
    apr_uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
    apr_uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
    apr_uint64_t m, b = (apr_uint64_t)len << 56;
    int i;

    for (; p != end; p += 8) {
        m = load_le64(p);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (i = (int)(len & 7) - 1; i >= 0; i--) {
        b |= (apr_uint64_t)p[i] << (8 * i);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

apr_uint64_t isr_key_hash(const apr_uint64_t k[2], const char *key,
                          apr_size_t len)
{
    apr_uint64_t h = isr_key_siphash(k, key, len);

    return h ? h : 1; /* 0 marks an empty slot */
}
