/*
 * origin.c - a fast, controllable HTTP/1.1 origin for the mod_isr benchmark.
 *
 *   origin -p PORT [-a 127.0.0.1] [-m MAX_BODY_BYTES] [-f FILE]
 *
 * One thread per connection (blocking sockets, keep-alive, pipelining tolerated). The path is
 * ignored except for the control endpoints; the query string controls the answer:
 *
 *   size=N      body of N bytes (default 1024, at most -m, default 16 MiB)
 *   delay=MS    sleep MS milliseconds before answering (default 0)
 *   status=N    HTTP status (default 200)
 *   cc=VALUE    Cache-Control header value, URL-encoded (default: none)
 *   etag=1      the answer carries a strong ETag derived from the path and the size (stable across
 *               requests: the content never changes); a request whose If-None-Match matches it
 *               (weak comparison, RFC 9110 13.1.2, or "*") gets 304 Not Modified without a body
 *   html=1      the body is `size` bytes of FILE (-f, read once at start) from offset `off`
 *               (default 0; both clamped to the file), with Content-Type text/html instead of
 *               text/plain (bench S6: realistic text for compression); without -f, html=1 is
 *               ignored. The default body is the letters a-z repeated, Content-Type text/plain
 *   off=N       offset into FILE for html=1
 *
 *   /__count    body: the number of fetches (requests other than /__*) since start or reset
 *   /__reset    sets the counter to 0 (body: 0)
 *   /__log?since=N   one line "SEQ MICROSECONDS" per fetch with SEQ > N (the last 65536 fetches;
 *               CLOCK_MONOTONIC arrival time), used to group fetches into expiries
 *   /__stats    one line of KEY=VALUE counters since start (never reset; read them before and
 *               after a step): fetches, s200 (2xx answers), s304, other (any other status),
 *               body_bytes (body bytes sent on fetches), head_bytes (head bytes of fetches),
 *               inm (fetches carrying If-None-Match), ims (carrying If-Modified-Since),
 *               inm_match (If-None-Match that matched an etag=1 answer's ETag)
 *
 * Every fetch is counted when its request has been read (before the delay). Each answer
 * carries X-Origin-Seq (the counter value of this fetch) and Date.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -pthread -o origin origin.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RBUF 16384

static _Atomic unsigned long fetches;
/* /__stats counters (fetches only, never reset) */
static _Atomic unsigned long long st_fetches, st_200, st_304, st_other, st_body, st_head, st_inm, st_ims,
    st_inm_match;
#define LOGN 65536
static _Atomic unsigned long long fetch_log[LOGN]; /* arrival time (us) of fetch seq, by seq % LOGN */

static unsigned long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}
static char *body;
static size_t max_body = 16u << 20;
static char *file_body; /* -f FILE, for html=1 */
static size_t file_len;

static int write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* URL-decode [s, s+len) into out (at most outsz-1 chars); CR/LF are dropped. */
static void urldecode(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outsz; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < len + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\r' || c == '\n')
            continue;
        out[o++] = (char)c;
    }
    out[o] = 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

struct req {
    int head;        /* HEAD request */
    int close;       /* close after answering */
    int control;     /* 0 fetch, 1 count, 2 reset, 3 log, 4 stats */
    int etag;        /* etag=1 */
    int html;        /* html=1: body from -f FILE, Content-Type text/html */
    long off;        /* off=N: offset into FILE */
    int has_ims;     /* If-Modified-Since present */
    long size, delay, status;
    unsigned long since;
    const char *path; /* request path (without the query), not NUL-terminated */
    size_t path_len;
    const char *inm;  /* If-None-Match value, not NUL-terminated; NULL when absent */
    size_t inm_len;
    char cc[512];
};

/* A strong ETag from the path and the size: "<fnv1a64 of path, hex>-<size>" */
static int make_etag(const struct req *rq, char *out, size_t sz)
{
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < rq->path_len; i++) {
        h ^= (unsigned char)rq->path[i];
        h *= 1099511628211ull;
    }
    return snprintf(out, sz, "\"%016llx-%ld\"", h, rq->size);
}

/* If-None-Match (a list of entity-tags, or "*") against etag: weak comparison (RFC 9110 13.1.2) */
static int inm_matches(const char *v, size_t vl, const char *etag)
{
    const char *e = v + vl;
    const char *tag = etag; /* "..." including the quotes */
    size_t tl = strlen(etag);
    while (v < e) {
        while (v < e && (*v == ' ' || *v == '\t' || *v == ',')) v++;
        if (v >= e) break;
        if (*v == '*') return 1;
        if (e - v >= 2 && v[0] == 'W' && v[1] == '/') v += 2;
        if (v >= e || *v != '"') return 0; /* malformed: no match */
        const char *q = memchr(v + 1, '"', (size_t)(e - v - 1));
        if (!q) return 0;
        if ((size_t)(q + 1 - v) == tl && memcmp(v, tag, tl) == 0) return 1;
        v = q + 1;
    }
    return 0;
}

/* Parse the request head in buf[0..len) (which ends with CRLFCRLF). */
static int parse_request(const char *buf, size_t len, struct req *rq)
{
    memset(rq, 0, sizeof(*rq));
    rq->size = 1024;
    rq->status = 200;
    const char *end = buf + len;
    const char *sp1 = memchr(buf, ' ', len);
    if (!sp1) return -1;
    rq->head = (sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0);
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (!sp2) return -1;
    const char *eol = memchr(sp2, '\r', (size_t)(end - sp2));
    if (!eol) return -1;
    int http10 = (eol - sp2 >= 9 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0);
    rq->close = http10; /* HTTP/1.0 closes unless it asks for keep-alive */

    /* path and query */
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    const char *pend = q ? q : sp2;
    size_t plen = (size_t)(pend - target);
    if (plen >= 3 && memcmp(target, "/__", 3) == 0) {
        if (plen == 8 && memcmp(target, "/__count", 8) == 0) rq->control = 1;
        else if (plen == 8 && memcmp(target, "/__reset", 8) == 0) rq->control = 2;
        else if (plen == 6 && memcmp(target, "/__log", 6) == 0) rq->control = 3;
        else if (plen == 8 && memcmp(target, "/__stats", 8) == 0) rq->control = 4;
    }
    rq->path = target;
    rq->path_len = plen;
    if (q) {
        const char *p = q + 1;
        while (p < sp2) {
            const char *amp = memchr(p, '&', (size_t)(sp2 - p));
            const char *pe = amp ? amp : sp2;
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            if (eq) {
                size_t kl = (size_t)(eq - p);
                const char *v = eq + 1;
                size_t vl = (size_t)(pe - v);
                if (kl == 4 && memcmp(p, "size", 4) == 0) rq->size = strtol(v, NULL, 10);
                else if (kl == 5 && memcmp(p, "delay", 5) == 0) rq->delay = strtol(v, NULL, 10);
                else if (kl == 6 && memcmp(p, "status", 6) == 0) rq->status = strtol(v, NULL, 10);
                else if (kl == 2 && memcmp(p, "cc", 2) == 0) urldecode(v, vl, rq->cc, sizeof(rq->cc));
                else if (kl == 5 && memcmp(p, "since", 5) == 0) rq->since = strtoul(v, NULL, 10);
                else if (kl == 4 && memcmp(p, "etag", 4) == 0) rq->etag = (vl == 1 && v[0] == '1');
                else if (kl == 4 && memcmp(p, "html", 4) == 0) rq->html = (vl == 1 && v[0] == '1');
                else if (kl == 3 && memcmp(p, "off", 3) == 0) rq->off = strtol(v, NULL, 10);
            }
            p = pe + 1;
        }
    }
    if (rq->size < 0) rq->size = 0;
    if ((size_t)rq->size > max_body) rq->size = (long)max_body;
    if (rq->status < 100 || rq->status > 999) rq->status = 200;
    if (rq->delay < 0) rq->delay = 0;
    if (rq->html && !file_body) rq->html = 0;
    if (rq->html) {
        if (rq->off < 0 || (size_t)rq->off > file_len) rq->off = rq->off < 0 ? 0 : (long)file_len;
        if ((size_t)rq->size > file_len - (size_t)rq->off) rq->size = (long)(file_len - (size_t)rq->off);
    }

    /* headers: Connection */
    const char *h = eol + 2;
    while (h < end) {
        const char *he = memchr(h, '\r', (size_t)(end - h));
        if (!he || he == h) break;
        if ((size_t)(he - h) > 11 && strncasecmp(h, "connection:", 11) == 0) {
            const char *v = h + 11;
            size_t vl = (size_t)(he - v);
            if (memmem(v, vl, "close", 5) || memmem(v, vl, "Close", 5)) rq->close = 1;
            else if (memmem(v, vl, "eep-alive", 9)) rq->close = 0;
        } else if ((size_t)(he - h) >= 14 && strncasecmp(h, "if-none-match:", 14) == 0) {
            rq->inm = h + 14;
            rq->inm_len = (size_t)(he - rq->inm);
        } else if ((size_t)(he - h) >= 18 && strncasecmp(h, "if-modified-since:", 18) == 0) {
            rq->has_ims = 1;
        }
        h = he + 2;
    }
    return 0;
}

static void http_date(char *out, size_t sz)
{
    static __thread time_t last;
    static __thread char cached[64];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    snprintf(out, sz, "%s", cached);
}

static void *conn_main(void *arg)
{
    int fd = (int)(long)arg;
    char *buf = malloc(RBUF);
    size_t have = 0;
    if (!buf) {
        close(fd);
        return NULL;
    }
    for (;;) {
        /* find the end of a request head */
        char *hend = have >= 4 ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (!hend) {
            if (have == RBUF) break; /* head too large */
            ssize_t n = read(fd, buf + have, RBUF - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            continue;
        }
        size_t hlen = (size_t)(hend - buf) + 4;
        struct req rq;
        if (parse_request(buf, hlen, &rq) < 0) break;
        memmove(buf, buf + hlen, have - hlen); /* GET/HEAD: no request body */
        have -= hlen;

        char cbody[64];
        char *lbody = NULL;
        const char *b = body;
        size_t blen = (size_t)rq.size;
        unsigned long seq = 0;
        if (rq.control == 1) {
            blen = (size_t)snprintf(cbody, sizeof(cbody), "%lu\n", atomic_load(&fetches));
            b = cbody;
            rq.status = 200;
            rq.cc[0] = 0;
            snprintf(rq.cc, sizeof(rq.cc), "no-store");
        } else if (rq.control == 2) {
            atomic_store(&fetches, 0);
            blen = 2;
            b = "0\n";
            rq.status = 200;
            snprintf(rq.cc, sizeof(rq.cc), "no-store");
        } else if (rq.control == 3) {
            unsigned long last = atomic_load(&fetches);
            unsigned long from = rq.since;
            if (last > LOGN && from < last - LOGN) from = last - LOGN;
            size_t cap = (size_t)(last > from ? last - from : 0) * 48 + 16;
            lbody = malloc(cap);
            size_t o = 0;
            if (lbody) {
                for (unsigned long i = from + 1; i <= last; i++)
                    o += (size_t)snprintf(lbody + o, cap - o, "%lu %llu\n", i,
                                          atomic_load(&fetch_log[i % LOGN]));
                b = lbody;
            } else {
                b = "";
            }
            blen = o;
            rq.status = 200;
            snprintf(rq.cc, sizeof(rq.cc), "no-store");
        } else if (rq.control == 4) {
            cbody[0] = 0;
            blen = 0;
            lbody = malloc(512);
            if (lbody) {
                blen = (size_t)snprintf(lbody, 512,
                                        "fetches=%llu s200=%llu s304=%llu other=%llu body_bytes=%llu "
                                        "head_bytes=%llu inm=%llu ims=%llu inm_match=%llu\n",
                                        atomic_load(&st_fetches), atomic_load(&st_200), atomic_load(&st_304),
                                        atomic_load(&st_other), atomic_load(&st_body), atomic_load(&st_head),
                                        atomic_load(&st_inm), atomic_load(&st_ims), atomic_load(&st_inm_match));
                b = lbody;
            } else {
                b = cbody;
            }
            rq.status = 200;
            snprintf(rq.cc, sizeof(rq.cc), "no-store");
        } else {
            if (rq.html)
                b = file_body + rq.off;
            seq = atomic_fetch_add(&fetches, 1) + 1;
            atomic_store(&fetch_log[seq % LOGN], mono_us());
            if (rq.delay > 0) {
                struct timespec ts = { rq.delay / 1000, (rq.delay % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
            }
        }
        char date[64];
        http_date(date, sizeof(date));
        char etag[64] = "";
        int not_modified = 0;
        if (rq.control == 0) {
            if (rq.inm) atomic_fetch_add(&st_inm, 1);
            if (rq.has_ims) atomic_fetch_add(&st_ims, 1);
            if (rq.etag) {
                make_etag(&rq, etag, sizeof(etag));
                if (rq.inm && rq.status == 200 && inm_matches(rq.inm, rq.inm_len, etag)) {
                    atomic_fetch_add(&st_inm_match, 1);
                    not_modified = 1;
                    rq.status = 304;
                }
            }
        }
        char clen[48];
        if (not_modified) /* a 304 has no body and no Content-Length of its own */
            clen[0] = 0;
        else
            snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", blen);
        char hdr[1024];
        int hl = snprintf(hdr, sizeof(hdr),
                          "HTTP/1.1 %ld %s\r\n"
                          "Date: %s\r\n"
                          "%s"
                          "%s"
                          "X-Origin-Seq: %lu\r\n"
                          "%s%s%s"
                          "%s%s%s"
                          "%s"
                          "\r\n",
                          rq.status, reason((int)rq.status), date,
                          not_modified ? "" : rq.html ? "Content-Type: text/html\r\n" : "Content-Type: text/plain\r\n",
                          clen, seq,
                          rq.cc[0] ? "Cache-Control: " : "", rq.cc, rq.cc[0] ? "\r\n" : "",
                          etag[0] ? "ETag: " : "", etag, etag[0] ? "\r\n" : "",
                          rq.close ? "Connection: close\r\n" : "");
        if (hl < 0 || hl >= (int)sizeof(hdr)) break;
        struct iovec iov[2] = { { hdr, (size_t)hl }, { (void *)b, blen } };
        int cnt = (rq.head || blen == 0 || rq.status == 204 || rq.status == 304) ? 1 : 2;
        if (rq.control == 0) {
            atomic_fetch_add(&st_fetches, 1);
            if (rq.status == 304) atomic_fetch_add(&st_304, 1);
            else if (rq.status >= 200 && rq.status < 300) atomic_fetch_add(&st_200, 1);
            else atomic_fetch_add(&st_other, 1);
            atomic_fetch_add(&st_head, (unsigned long long)hl);
            if (cnt == 2) atomic_fetch_add(&st_body, (unsigned long long)blen);
        }
        int wr = write_all(fd, iov, cnt);
        free(lbody);
        if (wr < 0) break;
        if (rq.close) break;
    }
    free(buf);
    close(fd);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: origin -p PORT [-a ADDR] [-m MAX_BODY] [-f FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *addr = "127.0.0.1";
    const char *file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:a:m:f:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': addr = optarg; break;
        case 'm': max_body = (size_t)strtoul(optarg, NULL, 10); break;
        case 'f': file = optarg; break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535) usage();
    signal(SIGPIPE, SIG_IGN);

    body = malloc(max_body + 1);
    if (!body) { perror("malloc"); return 1; }
    for (size_t i = 0; i < max_body; i++)
        body[i] = (char)('a' + (i % 26));
    if (max_body >= 1) body[max_body - 1] = '\n';
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) { perror(file); return 1; }
        if (fseek(f, 0, SEEK_END) != 0) { perror(file); return 1; }
        long fl = ftell(f);
        if (fl < 0 || fseek(f, 0, SEEK_SET) != 0) { perror(file); return 1; }
        file_len = (size_t)fl;
        if (file_len > max_body) file_len = max_body;
        file_body = malloc(file_len + 1);
        if (!file_body || fread(file_body, 1, file_len, f) != file_len) { perror(file); return 1; }
        fclose(f);
    }

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 1; }
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0) { perror("bind"); return 1; }
    if (listen(ls, 4096) < 0) { perror("listen"); return 1; }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 128 * 1024);

    fprintf(stdout, "origin: listening on %s:%d\n", addr, port);
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) { usleep(1000); continue; }
            perror("accept");
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, (void *)(long)fd) != 0)
            close(fd);
    }
}
