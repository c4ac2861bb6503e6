/* libFuzzer target: a zone file (isr_persist.h) read back at start. The
 * file is as trusted as its directory, and a damaged one must be refused
 * or made safe, never followed outside the segment (invariant 6).
 *
 * Each input is   flags (1) | head (8, LE) | tail (8, LE) | split (2, LE)
 *                  | bytes
 * Flags: 0x01 the bytes are the whole file as is (the container checks);
 * otherwise a file with a valid header and checksums is built around an
 * image: a zone formatted in memory (0x02: with its ring head and tail
 * taken from the input) whose slots (0x04: purge table) are overwritten
 * with the first `split` bytes and whose ring with the rest. Then
 *   - isr_persist_load() reads the file into a segment of ZONE_SIZE bytes,
 *     exactly malloc'd, so AddressSanitizer sees any access past it;
 *   - on success isr_store_attach() and isr_store_recover() run, and the
 *     result is checked: no odd seq, no lease, tags equal hashes, every
 *     VALID slot's record inside the ring and between tail and head;
 *   - every slot is looked up by the key of its record and peeked, and the
 *     ring allocator makes room over what was kept (tail parser, second
 *     chance, eviction);
 *   - the zone is saved (isr_persist_save) and loaded again: same bytes.
 *
 *   make fuzz-build
 *   build/fuzz/fuzz_persist -max_total_time=30 fuzz/corpus/persist/
 */
#include "../src/isr_store.c"
#include "../src/isr_ring.c"
#include "../src/isr_key.c"
#include "../src/isr_purge.c"
#include "../src/isr_persist.c"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <apr_general.h>

#define ZONE_SIZE (1024 * 1024)
#define NAME      "fz"

static apr_pool_t *pool;
static unsigned char *seg, *seg2, *img;
static char path[256], path2[256];
static apr_time_t now;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_files(void)
{
    unlink(path);
    unlink(path2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        abort();
    }
    seg = aligned_alloc(ISR_REC_ALIGN, ZONE_SIZE);
    seg2 = aligned_alloc(ISR_REC_ALIGN, ZONE_SIZE);
    img = aligned_alloc(ISR_REC_ALIGN, ZONE_SIZE);
    if (!seg || !seg2 || !img) {
        abort();
    }
    snprintf(path, sizeof(path), "/tmp/isr-fuzz-persist-%d.zone",
             (int)getpid());
    snprintf(path2, sizeof(path2), "/tmp/isr-fuzz-persist-%d.out",
             (int)getpid());
    atexit(remove_files);
    now = apr_time_now();
    return 0;
}

static apr_uint64_t le64(const uint8_t *p)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void write_file(const void *a, size_t an, const void *b, size_t bn)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(a, 1, an, f) != an || (bn && fwrite(b, 1, bn, f) != bn)
        || fclose(f)) {
        abort();
    }
}

/* What recovery promises. */
static void check_recovered(isr_zone_t *z)
{
    isr_shm_header_t *h = z->hdr;
    apr_uint32_t i;

    if (h->tail > h->head || h->head - h->tail > h->ring_size) {
        abort();
    }
    for (i = 0; i < z->nslots; i++) {
        isr_slot_t *s = &z->slots[i];
        if ((s->seq & 1u) || s->lease || z->tags[i] != s->hash
            || s->state == ISR_SLOT_PENDING || s->state > ISR_SLOT_FAILED) {
            abort();
        }
        if (s->state == ISR_SLOT_VALID) {
            apr_uint64_t tp = h->tail % h->ring_size;
            apr_uint64_t rel = (s->rec_off + h->ring_size - tp) % h->ring_size;
            if (s->rec_off > h->ring_size
                || s->rec_len > h->ring_size - s->rec_off
                || s->rec_len < sizeof(isr_record_t)
                || rel + s->rec_len > h->head - h->tail) {
                abort();
            }
        }
    }
}

static void exercise(isr_zone_t *z)
{
    apr_pool_t *p;
    isr_entry_t e;
    const char *key;
    apr_size_t klen;
    apr_uint32_t i;
    int k;

    apr_pool_create(&p, pool);
    for (i = 0; i < z->nslots; i++) {
        isr_look_t l = isr_store_peek(z, i, now, p, &e, &key, &klen);
        if ((l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) && key) {
            char *kc = apr_pmemdup(p, key, klen ? klen : 1);
            unsigned char sum = 0;
            apr_size_t j;

            l = isr_store_lookup(z, kc, klen, z->slots[i].hash, now, p, &e);
            if (l == ISR_LOOK_FRESH || l == ISR_LOOK_STALE) {
                for (j = 0; j < e.bodylen; j++) {
                    sum ^= (unsigned char)e.body[j];
                }
                for (j = 0; j < e.hdrlen; j++) {
                    sum ^= (unsigned char)e.headers[j];
                }
                __asm__ volatile("" : : "r"(sum));
            }
        }
    }
    /* The allocator over the recovered ring: room for a few records. */
    for (k = 0; k < 4; k++) {
        apr_uint64_t need = 64 * 1024, off = isr_ring_alloc(z, need, now);
        if (off + need > z->hdr->ring_size) {
            abort();
        }
        memset(z->ring + off, 0, sizeof(isr_record_t));
        ((isr_record_t *)(z->ring + off))->magic = ISR_SKIP_MAGIC;
        ((isr_record_t *)(z->ring + off))->total = (apr_uint32_t)need;
        isr_ring_commit(z, need);
    }
    apr_pool_destroy(p);
}

static void round_trip(isr_zone_t *z)
{
    const char *why;
    apr_time_t saved;
    apr_status_t rv;

    z->name = NAME;
    if (isr_persist_save(z, path2, 0, pool, &why) != APR_SUCCESS) {
        abort();
    }
    rv = isr_persist_load(NAME, path2, seg2, ZONE_SIZE, pool, &saved, &why);
    if (rv != APR_SUCCESS || memcmp(seg, seg2, ZONE_SIZE)) {
        abort();
    }
    apr_file_remove(path2, pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const apr_uint64_t seed[2] = { 0x0706050403020100ULL,
                                   0x0f0e0d0c0b0a0908ULL };
    isr_persist_head_t h;
    isr_shm_header_t *ih = (isr_shm_header_t *)img;
    isr_zone_t z;
    const char *why;
    apr_time_t saved;
    apr_uint64_t from;
    size_t n, split;
    apr_status_t rv;

    if (size < 19) {
        return 0;
    }
    if (data[0] & 0x01) {
        write_file(data + 19, size - 19, NULL, 0);
    }
    else {
        if (isr_store_format(img, ZONE_SIZE, seed, now) != APR_SUCCESS) {
            abort();
        }
        if (data[0] & 0x02) {
            ih->head = le64(data + 1);
            ih->tail = le64(data + 9);
        }
        split = (size_t)data[17] | (size_t)data[18] << 8;
        if (split > size - 19) {
            split = size - 19;
        }
        from = (data[0] & 0x04) ? ih->purge_off : ih->slots_off;
        n = split < ih->ring_off - from ? split : ih->ring_off - from;
        memcpy(img + from, data + 19, n);
        n = size - 19 - split;
        if (n > ih->ring_size) {
            n = ih->ring_size;
        }
        memcpy(img + ih->ring_off, data + 19 + split, n);
        memset(&h, 0, sizeof(h));
        h.magic = ISR_PERSIST_MAGIC;
        h.version = ISR_PERSIST_VERSION;
        h.layout = ISR_SHM_LAYOUT;
        h.size = ZONE_SIZE;
        h.saved = now;
        memcpy(h.zone, NAME, sizeof(NAME));
        h.body_crc = (apr_uint32_t)crc32(0L, img, ZONE_SIZE);
        h.head_crc = head_crc(&h);
        write_file(&h, sizeof(h), img, ZONE_SIZE);
    }
    rv = isr_persist_load(NAME, path, seg, ZONE_SIZE, pool, &saved, &why);
    if (rv != APR_SUCCESS) {
        if (!why) {
            abort();   /* every refusal says why */
        }
    }
    else {
        memset(&z, 0, sizeof(z));
        if (isr_store_attach(&z, seg, ZONE_SIZE) == APR_SUCCESS) {
            isr_store_recover(&z);
            check_recovered(&z);
            exercise(&z);
            round_trip(&z);
        }
    }
    apr_pool_clear(pool);
    return 0;
}
