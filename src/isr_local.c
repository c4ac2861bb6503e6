/* Per-child record copies (see isr_local.h). A direct-mapped table indexed
 * by (zone, slot), guarded by striped mutexes held for a few instructions;
 * each copy carries an atomic reference count: one for the table, one per
 * request and bucket using it.
 *
 * A copy of ISR_LOCAL_FILE_MIN bytes or more lives in a memfd mapped into
 * the child (at most ISR_LOCAL_FILES of them), so that a hit can send its
 * body as a file bucket and httpd's sendfile path moves it to the socket
 * without a copy in user space. The kernel may still hold the file's pages
 * for a send after the last reference is gone: it keeps them alive itself,
 * and a copy is never written after it is published, only released. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* memfd_create */
#endif
#include "isr.h"
#include <http_main.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <apr_strings.h>

#include "isr_local.h"

#define TABLE_SIZE 8192          /* power of two */
#define STRIPES    64
#define SWEEP      32            /* entries dropped when over budget */

typedef struct {
    apr_uint32_t refs;
    apr_uint32_t slot;
    apr_uint32_t seq;
    apr_uint32_t len;
    const isr_zone_t *zone;      /* NULL until published in the table */
    int fd;                      /* the memfd this copy is mapped from, or
                                  * -1 (malloc) */
    apr_uint32_t pad;            /* keeps the record 16-byte aligned */
} blk_t;

typedef struct {
    apr_bucket_refcount refcount;
    blk_t *blk;
} blk_bucket_t;

static blk_t *table[TABLE_SIZE];
static pthread_mutex_t stripes[STRIPES];
static apr_size_t budget, used;
static apr_uint32_t sweep_hand, files;
static apr_uint32_t max_files;   /* ISRZeroCopy: how many memfds; 0 none */
static int file_failed;          /* a memfd could not be made (logged once) */
static int reopen_off;           /* /proc/self/fd cannot reopen a memfd */

#define BLK_OF(rec) ((blk_t *)(rec) - 1)

static apr_uint32_t index_of(const isr_zone_t *zone, apr_uint32_t slot)
{
    return (apr_uint32_t)(((uintptr_t)zone >> 6) ^ (slot * 0x9e3779b1u))
           & (TABLE_SIZE - 1);
}

static void blk_release(blk_t *b)
{
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        __atomic_sub_fetch(&used, (apr_size_t)b->len, __ATOMIC_RELAXED);
        if (b->fd >= 0) {
            int fd = b->fd;

            munmap(b, sizeof(*b) + b->len);
            close(fd);
            __atomic_sub_fetch(&files, 1, __ATOMIC_RELAXED);
        }
        else {
            free(b);
        }
    }
}

/* A copy in its own memfd, or NULL (too many files, or no memfd). */
static blk_t *file_blk(apr_uint32_t len)
{
    size_t size = sizeof(blk_t) + len;
    void *m = MAP_FAILED;
    int fd = -1;

    if (__atomic_add_fetch(&files, 1, __ATOMIC_RELAXED) > max_files) {
        __atomic_sub_fetch(&files, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if ((fd = memfd_create("isr-copy", MFD_CLOEXEC)) >= 0
        && ftruncate(fd, (off_t)size) == 0) {
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (m == MAP_FAILED) {
        int err = errno;

        if (fd >= 0) {
            close(fd);
        }
        __atomic_sub_fetch(&files, 1, __ATOMIC_RELAXED);
        if (!__atomic_exchange_n(&file_failed, 1, __ATOMIC_RELAXED)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, APR_FROM_OS_ERROR(err),
                         ap_server_conf, ISR_LOGNO(0053) "ISRZeroCopy: "
                         "cannot make a memfd copy of %u bytes; this child "
                         "keeps such copies in its heap when memfds fail "
                         "(logged once per child)", len);
        }
        return NULL;
    }
    ((blk_t *)m)->fd = fd;
    return m;
}

/* Swap the table entry at i for nb (which may be NULL). */
static void table_swap(apr_uint32_t i, blk_t *nb)
{
    pthread_mutex_t *m = &stripes[i % STRIPES];
    blk_t *old;

    if (nb) {
        __atomic_add_fetch(&nb->refs, 1, __ATOMIC_ACQ_REL);
    }
    pthread_mutex_lock(m);
    old = table[i];
    table[i] = nb;
    pthread_mutex_unlock(m);
    if (old) {
        blk_release(old);
    }
}

static apr_status_t local_cleanup(void *data)
{
    apr_uint32_t i;
    (void)data;

    for (i = 0; i < TABLE_SIZE; i++) {
        table_swap(i, NULL);
    }
    return APR_SUCCESS;
}

void isr_local_init(apr_pool_t *pchild, apr_size_t bytes, int zero_copy)
{
    struct rlimit nofile;
    int i;

    /* Each memfd is a descriptor for as long as its copy lives: at most a
     * quarter of what the child may open, the rest for its connections. */
    max_files = zero_copy ? ISR_LOCAL_FILES : 0;
    if (max_files && getrlimit(RLIMIT_NOFILE, &nofile) == 0
        && nofile.rlim_cur != RLIM_INFINITY
        && nofile.rlim_cur / 4 < max_files) {
        max_files = (apr_uint32_t)(nofile.rlim_cur / 4);
    }
    for (i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&stripes[i], NULL);
    }
    budget = bytes;
    apr_pool_cleanup_register(pchild, NULL, local_cleanup,
                              apr_pool_cleanup_null);
}

static apr_status_t release_cleanup(void *data)
{
    blk_release(data);
    return APR_SUCCESS;
}

static const void *local_find(void *baton, const isr_zone_t *zone,
                              apr_uint32_t slot, apr_uint32_t seq,
                              apr_uint32_t len)
{
    apr_uint32_t i = index_of(zone, slot);
    pthread_mutex_t *m = &stripes[i % STRIPES];
    blk_t *b, *outdated = NULL;
    (void)baton;

    if (!budget || len < ISR_LOCAL_MIN) {
        return NULL;
    }
    pthread_mutex_lock(m);
    b = table[i];
    if (b && b->zone == zone && b->slot == slot && b->seq == seq
        && b->len == len) {
        __atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
    }
    else {
        if (b && b->zone == zone && b->slot == slot) {
            /* An older version of this slot: nobody will ask for it. */
            outdated = b;
            table[i] = NULL;
        }
        b = NULL;
    }
    pthread_mutex_unlock(m);
    if (outdated) {
        blk_release(outdated);
    }
    return b ? (const void *)(b + 1) : NULL;
}

static int reserve(apr_size_t len)
{
    int i;

    if (__atomic_add_fetch(&used, len, __ATOMIC_RELAXED) <= budget) {
        return 1;
    }
    __atomic_sub_fetch(&used, len, __ATOMIC_RELAXED);
    /* Over budget: drop a few copies so that hot records get back in. */
    for (i = 0; i < SWEEP; i++) {
        table_swap(__atomic_fetch_add(&sweep_hand, 1, __ATOMIC_RELAXED)
                   & (TABLE_SIZE - 1), NULL);
    }
    return 0;
}

static void *local_alloc(void *baton, apr_uint32_t len)
{
    blk_t *b;
    (void)baton;

    if (!budget || len < ISR_LOCAL_MIN || !reserve(len)) {
        return NULL;
    }
    if (max_files && len >= ISR_LOCAL_FILE_MIN
        && (b = file_blk(len)) != NULL) {
        /* mapped from its memfd: b->fd set */
    }
    else if ((b = malloc(sizeof(*b) + len)) != NULL) {
        b->fd = -1;
    }
    else {
        __atomic_sub_fetch(&used, (apr_size_t)len, __ATOMIC_RELAXED);
        return NULL;
    }
    b->refs = 1;
    b->len = len;
    b->zone = NULL;
    return b + 1;
}

static void local_done(void *baton, const void *buf, int ok,
                       const isr_zone_t *zone, apr_uint32_t slot,
                       apr_uint32_t seq)
{
    isr_local_lookup_t *l = baton;
    blk_t *b = BLK_OF(buf);

    if (!ok) {
        blk_release(b);
        return;
    }
    if (!b->zone) {
        b->zone = zone;
        b->slot = slot;
        b->seq = seq;
        table_swap(index_of(zone, slot), b);
    }
    /* The request's reference lasts as long as its pool. */
    apr_pool_cleanup_register(l->pool, b, release_cleanup,
                              apr_pool_cleanup_null);
    l->kept = buf;
}

void isr_local_lookup_init(isr_local_lookup_t *l, apr_pool_t *p)
{
    l->ops.find = local_find;
    l->ops.alloc = local_alloc;
    l->ops.done = local_done;
    l->ops.baton = l;
    l->pool = p;
    l->kept = NULL;
}

/* ---- the bucket --------------------------------------------------------- */

static void blk_bucket_destroy(void *data)
{
    blk_bucket_t *d = data;

    if (apr_bucket_shared_destroy(d)) {
        blk_release(d->blk);
        apr_bucket_free(d);
    }
}

static apr_status_t blk_bucket_read(apr_bucket *b, const char **str,
                                    apr_size_t *len, apr_read_type_e block)
{
    blk_bucket_t *d = b->data;
    (void)block;

    *str = (const char *)(d->blk + 1) + b->start;
    *len = b->length;
    return APR_SUCCESS;
}

/* The bytes live as long as the bucket's reference: no setaside needed. */
static const apr_bucket_type_t blk_bucket_type = {
    "ISR-COPY", 5, APR_BUCKET_DATA,
    blk_bucket_destroy,
    blk_bucket_read,
    apr_bucket_setaside_noop,
    apr_bucket_shared_split,
    apr_bucket_shared_copy
};

apr_bucket *isr_local_bucket(const void *record, const char *data,
                             apr_size_t len, apr_bucket_alloc_t *list)
{
    blk_t *blk = BLK_OF(record);
    blk_bucket_t *d = apr_bucket_alloc(sizeof(*d), list);
    apr_bucket *b = apr_bucket_alloc(sizeof(*b), list);

    __atomic_add_fetch(&blk->refs, 1, __ATOMIC_ACQ_REL);
    d->blk = blk;
    APR_BUCKET_INIT(b);
    b->free = apr_bucket_free;
    b->list = list;
    b = apr_bucket_shared_make(b, d, data - (const char *)record, len);
    b->type = &blk_bucket_type;
    return b;
}

apr_bucket *isr_local_file_bucket(const void *record, const char *data,
                                  apr_size_t len, apr_pool_t *p,
                                  apr_bucket_alloc_t *list)
{
    blk_t *blk = BLK_OF(record);
    apr_bucket *b;
    apr_file_t *f;
    apr_status_t rv;
    char path[32];

    if (blk->fd < 0 || len < ISR_LOCAL_FILE_MIN / 2
        || __atomic_load_n(&reopen_off, __ATOMIC_RELAXED)) {
        return NULL;
    }
    /* A file of the request's own, opened afresh on the memfd: a file
     * bucket that is read rather than sent (a small range, a filter such
     * as mod_deflate) seeks and reads, and the copy's own descriptor
     * shares one file offset between every thread of the child. The new
     * descriptor also keeps the memfd's pages for as long as p lives,
     * whatever becomes of the copy; p's cleanup closes it. */
    apr_snprintf(path, sizeof(path), "/proc/self/fd/%d", blk->fd);
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_SENDFILE_ENABLED,
                       APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        /* No /proc (a chroot, a container) or not allowed: for good, and
         * said once. Out of descriptors: this response only. */
        if (!APR_STATUS_IS_EMFILE(rv) && !APR_STATUS_IS_ENFILE(rv)
            && !__atomic_exchange_n(&reopen_off, 1, __ATOMIC_RELAXED)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, ap_server_conf,
                         ISR_LOGNO(0054) "ISRZeroCopy: cannot open %s; this "
                         "child sends its copies from memory instead of "
                         "with sendfile", path);
        }
        return NULL;
    }
    b = apr_bucket_file_create(f, (apr_off_t)(data - (const char *)blk),
                               len, p, list);
    /* Read, the bytes are at hand already: no mmap at an unaligned offset. */
    apr_bucket_file_enable_mmap(b, 0);
    return b;
}
