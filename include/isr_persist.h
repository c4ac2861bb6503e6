/* Persistence of a zone: the whole segment written to a file (on stop and
 * every persist_every) and read back into a new segment at start
 * (ISRCacheZone ... persist=PATH). APR and zlib only, no httpd: the caller
 * logs.
 *
 *   offset 0     +-----------------------------------------------------+
 *                | isr_persist_head_t, 128 bytes: magic "ISRF", format |
 *                |   version, the segment's ISR_SHM_LAYOUT, crc32 of   |
 *                |   the image, its size, when it was saved, the zone  |
 *                |   name, crc32 of this header (head_crc taken as 0)  |
 *   128          +-----------------------------------------------------+
 *                | the segment, `size` bytes, as isr_shm.h lays it out |
 *   128 + size   +-----------------------------------------------------+
 *
 * Fields are in the byte order of the machine that wrote them; a file of
 * another order fails the magic check. A file that fails any check is
 * refused as a whole, never trusted in part; one that passes is still
 * checked again by isr_store_attach() and made safe by
 * isr_store_recover() before any child sees it. */
#ifndef ISR_PERSIST_H
#define ISR_PERSIST_H

#include <apr_pools.h>
#include <apr_time.h>
#include "isr_store.h"

#define ISR_PERSIST_MAGIC   0x46525349u /* "ISRF" */
#define ISR_PERSIST_VERSION 1u
#define ISR_PERSIST_NAME    64          /* zone name bytes incl. the NUL */
#define ISR_PERSIST_CHUNK   (1024 * 1024)
/* A write goes to PATH ISR_PERSIST_TMP "XXXXXX" (mkstemp), then is renamed. */
#define ISR_PERSIST_TMP     ".isr-tmp."

typedef struct {
    apr_uint32_t magic;       /* ISR_PERSIST_MAGIC */
    apr_uint32_t version;     /* ISR_PERSIST_VERSION */
    apr_uint32_t layout;      /* ISR_SHM_LAYOUT of the image */
    apr_uint32_t body_crc;    /* zlib crc32 of the `size` bytes after this */
    apr_uint64_t size;        /* bytes of the image (the segment's size) */
    apr_int64_t saved;        /* apr_time_t the copy was taken */
    char zone[ISR_PERSIST_NAME]; /* NUL-terminated, NUL-padded */
    apr_uint32_t head_crc;    /* crc32 of these 128 bytes with this 0 */
    apr_uint32_t pad[7];      /* 0 */
} isr_persist_head_t;         /* 128 bytes */

/* Write the zone's segment to `path`: a temporary file
 * PATH.isr-tmp.XXXXXX in the same directory (mode 0600), the header, the
 * segment in chunks of ISR_PERSIST_CHUNK (the checksum is of the bytes
 * written), fsync, then renamed over `path`, so a reader never sees a
 * half-written file. With `lock` the segment is first copied to memory
 * while the zone mutex is held (writers wait for the memcpy, never for the
 * disk; hits never wait), and the copy written; a failure if the memory or
 * the mutex cannot be had. Without it the caller must know that nobody
 * writes (the parent at stop, its children gone). On failure the temporary
 * file is removed, `path` is left as it was and *why says what failed. */
apr_status_t isr_persist_save(isr_zone_t *zone, const char *path, int lock,
                              apr_pool_t *p, const char **why);

/* Remove the temporary files PATH.isr-tmp.XXXXXX that writers killed in
 * the middle of a write left (call it before any writer of this run
 * exists). Returns how many. */
int isr_persist_sweep(const char *path, apr_pool_t *p);

/* Read `path` into the freshly created segment [base, base + size) of zone
 * `name`. APR_ENOENT when there is no file. Otherwise the file is refused
 * (an error, with *why saying which check failed) when its header is short,
 * its magic, header checksum, format version, layout, zone name or size
 * differ, the file is shorter or longer than header + size, or the image's
 * checksum differs. After a refusal the segment may hold part of the file:
 * the caller formats it again. On success *saved is when the file was
 * written; the caller still attaches (isr_store_attach) and recovers
 * (isr_store_recover) the image. */
apr_status_t isr_persist_load(const char *name, const char *path, void *base,
                              apr_size_t size, apr_pool_t *p,
                              apr_time_t *saved, const char **why);

#endif /* ISR_PERSIST_H */
