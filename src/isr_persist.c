/* Persistence of a zone (format in include/isr_persist.h). The file is read
 * only into a segment nobody uses yet, and everything in it is checked
 * before the store trusts it: this file checks the container (magic,
 * version, layout, name, size, checksums), isr_store_attach() the header's
 * offsets and isr_store_recover() every slot and record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <apr_file_io.h>
#include <apr_file_info.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "isr_persist.h"
#include "isr_store_int.h"

typedef char isr_persist_head_is_128_bytes[sizeof(isr_persist_head_t) == 128
                                           ? 1 : -1];

static apr_uint32_t head_crc(const isr_persist_head_t *h)
{
    isr_persist_head_t c = *h;

    c.head_crc = 0;
    return (apr_uint32_t)crc32(0L, (const Bytef *)&c, sizeof(c));
}

/* The directory entry of the rename must reach the disk too; best effort
 * (an fsync of a directory is not portable, and the file itself is). */
static void sync_dir(const char *path, apr_pool_t *p)
{
#if defined(__linux__)
    const char *slash = strrchr(path, '/');
    const char *dir = slash && slash != path
                      ? apr_pstrndup(p, path, (apr_size_t)(slash - path))
                      : slash ? "/" : ".";
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
#else
    (void)path;
    (void)p;
#endif
}

/* The body, chunk by chunk: copied out of the mapping first, so that the
 * checksum is of the bytes written even while lock-free words (leases,
 * CLOCK hints, counters) change under the copy. */
static apr_status_t write_body(apr_file_t *f, const unsigned char *base,
                               apr_uint64_t size, unsigned char *buf,
                               apr_uint32_t *pcrc)
{
    apr_uint64_t off;
    apr_size_t n;
    uLong crc = crc32(0L, Z_NULL, 0);
    apr_status_t rv;

    for (off = 0; off < size; off += n) {
        n = size - off > ISR_PERSIST_CHUNK ? ISR_PERSIST_CHUNK
                                           : (apr_size_t)(size - off);
        memcpy(buf, base + off, n);
        crc = crc32(crc, buf, (uInt)n);
        if (APR_SUCCESS != (rv = apr_file_write_full(f, buf, n, NULL))) {
            return rv;
        }
    }
    *pcrc = (apr_uint32_t)crc;
    return APR_SUCCESS;
}

apr_status_t isr_persist_save(isr_zone_t *zone, const char *path, int lock,
                              apr_pool_t *p, const char **why)
{
    isr_persist_head_t h;
    apr_file_t *f = NULL;
    char *tmp = apr_pstrcat(p, path, ISR_PERSIST_TMP "XXXXXX", NULL);
    unsigned char *snap = NULL;
    unsigned char *buf = apr_palloc(p, ISR_PERSIST_CHUNK);
    apr_uint64_t size = zone->hdr->size;
    apr_off_t zero = 0;
    sigset_t sigs;
    int made = 0;
    apr_status_t rv;

    *why = NULL;
    memset(&h, 0, sizeof(h));
    h.magic = ISR_PERSIST_MAGIC;
    h.version = ISR_PERSIST_VERSION;
    h.layout = ISR_SHM_LAYOUT;
    h.size = size;
    apr_cpystrn(h.zone, zone->name ? zone->name : "", sizeof(h.zone));
    /* mkstemp(3): mode 0600, in the target's directory so that the
     * rename cannot cross file systems. */
    rv = apr_file_mktemp(&f, tmp, APR_FOPEN_CREATE | APR_FOPEN_READ
                         | APR_FOPEN_WRITE | APR_FOPEN_EXCL
                         | APR_FOPEN_BINARY, p);
    if (rv != APR_SUCCESS) {
        f = NULL;
        *why = apr_psprintf(p, "cannot create a temporary file %s", tmp);
        goto leave;
    }
    made = 1;
    /* A placeholder header: a file cut short here has no valid magic. */
    if (APR_SUCCESS != (rv = apr_file_write_full(f, &h, sizeof(h), NULL))) {
        *why = apr_psprintf(p, "cannot write %s", tmp);
        goto leave;
    }
    if (lock) {
        /* Children run: the image is copied to memory under the mutex (no
         * writer changes it meanwhile; hits only count), and written out
         * after, so that writers wait for a memcpy, not for the disk. */
        if (size > APR_SIZE_MAX || !(snap = malloc((apr_size_t)size))) {
            rv = APR_ENOMEM;
            *why = apr_psprintf(p, "no memory for a %" APR_UINT64_T_FMT
                                "-byte snapshot", size);
            goto leave;
        }
        if (!isr_store_lock(zone, &sigs)) {
            rv = APR_EGENERAL;
            *why = "the zone mutex cannot be taken";
            goto leave;
        }
        memcpy(snap, zone->hdr, (apr_size_t)size);
        h.saved = apr_time_now();
        isr_store_unlock(zone, &sigs);
        rv = write_body(f, snap, size, buf, &h.body_crc);
    }
    else {
        h.saved = apr_time_now();
        rv = write_body(f, (const unsigned char *)zone->hdr, size, buf,
                        &h.body_crc);
    }
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "cannot write %s", tmp);
        goto leave;
    }
    h.head_crc = head_crc(&h);
    if (APR_SUCCESS != (rv = apr_file_seek(f, APR_SET, &zero))
        || APR_SUCCESS != (rv = apr_file_write_full(f, &h, sizeof(h), NULL))
        || APR_SUCCESS != (rv = apr_file_sync(f))) {
        *why = apr_psprintf(p, "cannot write %s", tmp);
        goto leave;
    }
    rv = apr_file_close(f);
    f = NULL;
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "cannot write %s", tmp);
        goto leave;
    }
    if (APR_SUCCESS != (rv = apr_file_rename(tmp, path, p))) {
        *why = apr_psprintf(p, "cannot rename %s to %s", tmp, path);
        goto leave;
    }
    sync_dir(path, p);
leave:
    free(snap);
    if (rv != APR_SUCCESS) {
        if (f) {
            apr_file_close(f);
        }
        if (made) {
            apr_file_remove(tmp, p);
        }
    }
    return rv;
}

int isr_persist_sweep(const char *path, apr_pool_t *p)
{
    const char *slash = strrchr(path, '/');
    const char *dir = slash ? (slash == path ? "/"
                               : apr_pstrndup(p, path,
                                              (apr_size_t)(slash - path)))
                            : ".";
    const char *base = slash ? slash + 1 : path;
    const char *pre = apr_pstrcat(p, base, ISR_PERSIST_TMP, NULL);
    apr_size_t blen = strlen(pre);
    apr_dir_t *d;
    apr_finfo_t fi;
    int n = 0;

    if (apr_dir_open(&d, dir, p) != APR_SUCCESS) {
        return 0;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        /* Exactly what apr_file_mktemp makes of PATH ISR_PERSIST_TMP
         * "XXXXXX": a name no operator gives a file of their own. */
        if (fi.filetype == APR_REG && strlen(fi.name) == blen + 6
            && !strncmp(fi.name, pre, blen)
            && apr_file_remove(apr_pstrcat(p, dir, "/", fi.name, NULL), p)
               == APR_SUCCESS) {
            n++;
        }
    }
    apr_dir_close(d);
    return n;
}

apr_status_t isr_persist_load(const char *name, const char *path, void *base,
                              apr_size_t size, apr_pool_t *p,
                              apr_time_t *saved, const char **why)
{
    isr_persist_head_t h;
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_size_t got = 0, n;
    apr_uint64_t off;
    uLong crc = crc32(0L, Z_NULL, 0);
    struct stat st;
    char extra;
    int fd;
    apr_status_t rv;

    *why = NULL;
    /* The directory is the httpd User's to write, and this is root reading
     * at start: no symlink followed, no FIFO or device waited on. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        *why = "no file";
        return APR_ENOENT;
    }
    if (fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = errno == ELOOP ? "it is a symbolic link" : "cannot open it";
        return rv;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a regular file";
        return APR_EINVAL;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0
        || APR_SUCCESS != (rv = apr_os_file_put(&f, &fd, APR_FOPEN_READ
                                                | APR_FOPEN_BINARY, p))) {
        close(fd);
        *why = "cannot open it";
        return APR_EGENERAL;
    }
    if (APR_SUCCESS != (rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f))) {
        *why = "cannot stat it";
        goto leave;
    }
    rv = apr_file_read_full(f, &h, sizeof(h), &got);
    if (got < sizeof(h)) {
        *why = apr_psprintf(p, "short header (%" APR_SIZE_T_FMT " of %"
                            APR_SIZE_T_FMT " bytes)", got, sizeof(h));
        rv = APR_EINVAL;
        goto leave;
    }
    rv = APR_EINVAL;
    if (h.magic != ISR_PERSIST_MAGIC) {
        *why = "not a zone file (bad magic)";
        goto leave;
    }
    if (h.head_crc != head_crc(&h)) {
        *why = "header checksum mismatch";
        goto leave;
    }
    if (h.version != ISR_PERSIST_VERSION) {
        *why = apr_psprintf(p, "file format version %u, this build reads %u",
                            h.version, ISR_PERSIST_VERSION);
        goto leave;
    }
    if (h.layout != ISR_SHM_LAYOUT) {
        *why = apr_psprintf(p, "shared memory layout %u, this build uses %u",
                            h.layout, ISR_SHM_LAYOUT);
        goto leave;
    }
    if (!memchr(h.zone, '\0', sizeof(h.zone)) || strcmp(h.zone, name)) {
        *why = apr_psprintf(p, "file is for zone '%s'",
                            apr_pstrndup(p, h.zone, sizeof(h.zone) - 1));
        goto leave;
    }
    if (h.size != size) {
        *why = apr_psprintf(p, "file is for a %" APR_UINT64_T_FMT "-byte "
                            "zone, this one is %" APR_SIZE_T_FMT,
                            h.size, size);
        goto leave;
    }
    if (fi.size < 0 || (apr_uint64_t)fi.size != sizeof(h) + h.size) {
        *why = apr_psprintf(p, "%s: the file is %" APR_OFF_T_FMT " bytes, "
                            "expected %" APR_UINT64_T_FMT,
                            fi.size >= 0 && (apr_uint64_t)fi.size
                                            > sizeof(h) + h.size
                            ? "trailing bytes" : "truncated", fi.size,
                            (apr_uint64_t)sizeof(h) + h.size);
        goto leave;
    }
    for (off = 0; off < size; off += n) {
        n = size - off > ISR_PERSIST_CHUNK ? ISR_PERSIST_CHUNK
                                           : (apr_size_t)(size - off);
        got = 0;
        rv = apr_file_read_full(f, (char *)base + off, n, &got);
        if (got != n) {
            *why = apr_psprintf(p, "truncated at byte %" APR_UINT64_T_FMT,
                                (apr_uint64_t)sizeof(h) + off + got);
            rv = APR_EINVAL;
            goto leave;
        }
        crc = crc32(crc, (const Bytef *)base + off, (uInt)n);
    }
    /* The file may have grown since it was measured. */
    if (apr_file_read_full(f, &extra, 1, &got) == APR_SUCCESS && got) {
        *why = "trailing bytes";
        rv = APR_EINVAL;
        goto leave;
    }
    if ((apr_uint32_t)crc != h.body_crc) {
        *why = "checksum mismatch (the file is corrupt)";
        rv = APR_EINVAL;
        goto leave;
    }
    *saved = h.saved;
    rv = APR_SUCCESS;
leave:
    apr_file_close(f);
    return rv;
}
