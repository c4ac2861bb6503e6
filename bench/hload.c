/*
 * hload.c - a small single-threaded epoll HTTP/1.1 load client that records the latency of
 * every request (wrk reports only a histogram and drops the requests in flight at the end;
 * S2 and S3 need every request, including the slowest one).
 *
 *   hload -p PORT -u PATH [-c CONNS] [-d SECONDS] [-n REQUESTS] [-k KEYS] [-m seq|rand|fixed]
 *         [-1] [-t TIMEOUT_S] [-s SEED]
 *
 *   -u PATH   request target; "{k}" in it is replaced by the key number
 *   -c N      connections (default 10), each keeps one request in flight (closed loop)
 *   -d S      run for S seconds (fractions allowed); requests still in flight at the deadline
 *             are waited for and counted
 *   -n N      stop after N requests (default with -m seq: KEYS)
 *   -k K      number of keys (default 1)
 *   -m MODE   seq: key i for the i-th request (0..K-1, then wraps); rand: uniform random;
 *             fixed: always 0
 *   -1        once: open all connections first, then send one request on each at the same
 *             instant (thundering-herd mode); -n and -d are ignored
 *   -t S      per-request timeout (default 30); a timeout counts as an error
 *   -o FILE   also write every request to FILE, one line each, sorted by latency:
 *             "LATENCY_US START_US" (START_US: when it was sent, from the start of the run)
 *
 * Output, one line:  requests=.. errors=.. non2xx=.. elapsed_s=.. rps=.. p50_ms=.. p90_ms=..
 *   p99_ms=.. max_ms=.. mean_ms=.. min_ms=.. isr_hit=.. isr_stale=.. isr_miss=.. origin_seqs=..
 * (isr_* count X-ISR-Status values seen; origin_seqs counts distinct X-Origin-Seq values.)
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o hload hload.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HBUF 16384
#define RBUF 65536

enum { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_READING, ST_DONE };

struct conn {
    int fd;
    int state;
    char req[2048];
    size_t reqlen, reqoff;
    double t_sent;
    /* response parsing */
    char hdr[HBUF];
    size_t hlen;
    int in_body;
    int chunked;
    int close_after;
    long long remaining;  /* content-length bytes left, or bytes of current chunk left */
    int chunk_state;      /* 0: size line, 1: data, 2: CRLF after data, 3: trailer */
    char line[64];
    size_t linelen;
    int status;
};

static int port;
static const char *path_tmpl = "/";
static int nconns = 10;
static double duration = 0;
static long long max_requests = -1;
static long long keys = 1;
static int mode_rand = 0, mode_fixed = 0, once = 0;
static double timeout_s = 30;
static const char *lat_file;
static uint64_t rng = 88172645463325252ull;

static long long issued, completed, errors, non2xx;
static long long isr_hit, isr_stale, isr_miss;
static uint32_t *lat_us;
static uint32_t *start_us; /* parallel to lat_us until sorted */
static size_t lat_n, lat_cap;
static double t_run0;
static unsigned long *seqs;
static size_t seqs_n, seqs_cap;
static int epfd;
static int stop_issuing;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void record_latency(double sec, double sent)
{
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 65536;
        lat_us = realloc(lat_us, lat_cap * sizeof(*lat_us));
        start_us = realloc(start_us, lat_cap * sizeof(*start_us));
        if (!lat_us || !start_us) { perror("realloc"); exit(1); }
    }
    double us = sec * 1e6;
    double st = (sent - t_run0) * 1e6;
    start_us[lat_n] = st < 0 ? 0 : (st > 4e9 ? 4000000000u : (uint32_t)st);
    lat_us[lat_n++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static void record_seq(unsigned long s)
{
    for (size_t i = seqs_n; i > 0 && i + 64 > seqs_n; i--) /* recent ones first */
        if (seqs[i - 1] == s) return;
    if (seqs_n == seqs_cap) {
        seqs_cap = seqs_cap ? seqs_cap * 2 : 1024;
        seqs = realloc(seqs, seqs_cap * sizeof(*seqs));
        if (!seqs) { perror("realloc"); exit(1); }
    }
    seqs[seqs_n++] = s;
}

static int open_conn(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = ST_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void close_conn(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = ST_IDLE;
}

static void build_request(struct conn *c)
{
    long long k = 0;
    if (mode_rand) k = (long long)(xorshift() % (uint64_t)keys);
    else if (!mode_fixed) k = issued % keys;
    char target[1536];
    const char *p = strstr(path_tmpl, "{k}");
    if (p)
        snprintf(target, sizeof(target), "%.*s%lld%s", (int)(p - path_tmpl), path_tmpl, k, p + 3);
    else
        snprintf(target, sizeof(target), "%s", path_tmpl);
    c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
                                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: hload\r\n\r\n",
                                 target, port);
    c->reqoff = 0;
    issued++;
}

static void reset_parse(struct conn *c)
{
    c->hlen = 0;
    c->in_body = 0;
    c->chunked = 0;
    c->close_after = 0;
    c->remaining = 0;
    c->chunk_state = 0;
    c->linelen = 0;
    c->status = 0;
}

/* try to send the pending request; returns -1 on error */
static int do_send(struct conn *c)
{
    while (c->reqoff < c->reqlen) {
        ssize_t n = write(c->fd, c->req + c->reqoff, c->reqlen - c->reqoff);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            return -1;
        }
        c->reqoff += (size_t)n;
    }
    c->state = ST_READING;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static int can_issue(void)
{
    if (stop_issuing) return 0;
    if (max_requests >= 0 && issued >= max_requests) return 0;
    return 1;
}

static void start_request(struct conn *c)
{
    if (!can_issue()) {
        if (c->fd >= 0) close_conn(c);
        c->state = ST_DONE;
        return;
    }
    if (c->fd < 0) {
        if (open_conn(c) < 0) {
            errors++;
            c->state = ST_DONE;
            return;
        }
    }
    build_request(c);
    reset_parse(c);
    c->t_sent = now_s();
    if (c->state != ST_CONNECTING) {
        c->state = ST_SENDING;
        if (do_send(c) < 0) {
            errors++;
            close_conn(c);
            start_request(c);
        }
    }
}

static void parse_headers(struct conn *c, size_t hend)
{
    /* status line */
    if (c->hlen > 12 && memcmp(c->hdr, "HTTP/1.", 7) == 0)
        c->status = atoi(c->hdr + 9);
    const char *h = c->hdr;
    const char *end = c->hdr + hend;
    int have_cl = 0;
    if (memcmp(c->hdr, "HTTP/1.0", 8) == 0) c->close_after = 1;
    while (h < end) {
        const char *e = memchr(h, '\r', (size_t)(end - h));
        if (!e) e = end;
        size_t l = (size_t)(e - h);
        if (l > 15 && strncasecmp(h, "content-length:", 15) == 0) {
            c->remaining = atoll(h + 15);
            have_cl = 1;
        } else if (l > 18 && strncasecmp(h, "transfer-encoding:", 18) == 0) {
            if (memmem(h, l, "chunked", 7)) c->chunked = 1;
        } else if (l > 11 && strncasecmp(h, "connection:", 11) == 0) {
            if (memmem(h, l, "close", 5)) c->close_after = 1;
            else if (memmem(h, l, "keep-alive", 10) || memmem(h, l, "Keep-Alive", 10)) c->close_after = 0;
        } else if (l > 13 && strncasecmp(h, "x-isr-status:", 13) == 0) {
            const char *v = h + 13;
            while (*v == ' ') v++;
            if (strncasecmp(v, "HIT", 3) == 0) isr_hit++;
            else if (strncasecmp(v, "STALE", 5) == 0) isr_stale++;
            else if (strncasecmp(v, "MISS", 4) == 0) isr_miss++;
        } else if (l > 13 && strncasecmp(h, "x-origin-seq:", 13) == 0) {
            record_seq(strtoul(h + 13, NULL, 10));
        }
        h = e + 2;
    }
    if (c->chunked) c->remaining = 0;
    else if (!have_cl) {
        if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) c->remaining = 0;
        else c->remaining = -1; /* until close */
    }
}

static void finish_response(struct conn *c)
{
    double t = now_s();
    record_latency(t - c->t_sent, c->t_sent);
    completed++;
    if (c->status < 200 || c->status > 299) non2xx++;
    if (c->close_after) close_conn(c);
    if (once) {
        if (c->fd >= 0) close_conn(c);
        c->state = ST_DONE;
        return;
    }
    start_request(c);
}

/* feed body bytes; returns 1 when the response is complete */
static int feed_body(struct conn *c, const char *p, size_t n)
{
    if (!c->chunked) {
        if (c->remaining < 0) return 0; /* read until close */
        c->remaining -= (long long)n;
        return c->remaining <= 0;
    }
    size_t i = 0;
    while (i < n) {
        if (c->chunk_state == 1) {
            size_t take = (size_t)c->remaining < n - i ? (size_t)c->remaining : n - i;
            c->remaining -= (long long)take;
            i += take;
            if (c->remaining == 0) c->chunk_state = 2;
            continue;
        }
        char ch = p[i++];
        if (ch != '\n') {
            if (c->linelen < sizeof(c->line) - 1) c->line[c->linelen++] = ch;
            continue;
        }
        c->line[c->linelen] = 0;
        size_t ll = c->linelen;
        c->linelen = 0;
        if (c->chunk_state == 0) {
            long long sz = strtoll(c->line, NULL, 16);
            if (sz == 0) c->chunk_state = 3;
            else { c->remaining = sz; c->chunk_state = 1; }
        } else if (c->chunk_state == 2) {
            c->chunk_state = 0;
        } else if (c->chunk_state == 3) {
            if (ll <= 1) return 1; /* empty line ends the trailer */
        }
    }
    return 0;
}

static void on_error(struct conn *c)
{
    errors++;
    close_conn(c);
    if (once) { c->state = ST_DONE; return; }
    start_request(c);
}

static void on_readable(struct conn *c)
{
    static char rbuf[RBUF];
    for (;;) {
        ssize_t n = read(c->fd, rbuf, sizeof(rbuf));
        if (n < 0) {
            if (errno == EAGAIN) return;
            on_error(c);
            return;
        }
        if (n == 0) {
            if (c->state == ST_READING && c->in_body && !c->chunked && c->remaining < 0) {
                finish_response(c); /* body delimited by close */
                return;
            }
            if (c->state == ST_READING && c->hlen == 0 && !c->in_body) {
                /* server closed an idle keep-alive connection just as we sent: retry once */
                close_conn(c);
                issued--;
                start_request(c);
                return;
            }
            on_error(c);
            return;
        }
        if (c->state != ST_READING) continue; /* unexpected data */
        size_t off = 0;
        if (!c->in_body) {
            size_t take = (size_t)n;
            if (c->hlen + take > HBUF) take = HBUF - c->hlen;
            memcpy(c->hdr + c->hlen, rbuf, take);
            size_t prev = c->hlen;
            c->hlen += take;
            char *e = memmem(c->hdr, c->hlen, "\r\n\r\n", 4);
            if (!e) {
                if (c->hlen == HBUF) { on_error(c); return; }
                continue;
            }
            size_t hend = (size_t)(e - c->hdr) + 4;
            parse_headers(c, hend);
            c->in_body = 1;
            off = hend - prev; /* bytes of rbuf consumed by the head */
            if (!c->chunked && c->remaining == 0) {
                finish_response(c);
                if (c->fd < 0 || c->state != ST_READING) return;
                continue;
            }
        }
        if (feed_body(c, rbuf + off, (size_t)n - off)) {
            finish_response(c);
            if (c->fd < 0 || c->state != ST_READING) return;
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!lat_n) return 0;
    size_t i = (size_t)(p * (double)(lat_n - 1) + 0.5);
    if (i >= lat_n) i = lat_n - 1;
    return lat_us[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: hload -p PORT -u PATH [-c N] [-d S] [-n N] [-k K] [-m seq|rand|fixed] [-1] [-t S] [-s SEED] [-o FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt;
    const char *mode = "seq";
    while ((opt = getopt(argc, argv, "p:u:c:d:n:k:m:1t:s:o:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'u': path_tmpl = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'n': max_requests = atoll(optarg); break;
        case 'k': keys = atoll(optarg); break;
        case 'm': mode = optarg; break;
        case '1': once = 1; break;
        case 't': timeout_s = atof(optarg); break;
        case 's': rng = strtoull(optarg, NULL, 10) | 1; break;
        case 'o': lat_file = optarg; break;
        default: usage();
        }
    }
    if (port <= 0 || nconns <= 0 || keys <= 0) usage();
    if (strcmp(mode, "rand") == 0) mode_rand = 1;
    else if (strcmp(mode, "fixed") == 0) mode_fixed = 1;
    else if (strcmp(mode, "seq") != 0) usage();
    if (!once && duration <= 0 && max_requests < 0) max_requests = keys;
    signal(SIGPIPE, SIG_IGN);

    epfd = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconns, sizeof(*cs));
    if (!cs) { perror("calloc"); return 1; }
    for (int i = 0; i < nconns; i++) { cs[i].fd = -1; cs[i].state = ST_IDLE; }

    double t0 = now_s();
    t_run0 = t0;
    if (once) {
        /* connect everybody first */
        int connected = 0;
        for (int i = 0; i < nconns; i++)
            if (open_conn(&cs[i]) < 0) { errors++; cs[i].state = ST_DONE; }
        struct epoll_event evs[256];
        double tc = now_s();
        while (connected + errors < nconns && now_s() - tc < timeout_s) {
            int ne = epoll_wait(epfd, evs, 256, 100);
            for (int j = 0; j < ne; j++) {
                struct conn *c = evs[j].data.ptr;
                if (c->state != ST_CONNECTING) continue;
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { errors++; close_conn(c); c->state = ST_DONE; continue; }
                c->state = ST_IDLE;
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                connected++;
            }
        }
        t0 = now_s();
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &cs[i];
            if (c->fd < 0 || c->state != ST_IDLE) continue;
            build_request(c);
            reset_parse(c);
            c->t_sent = now_s();
            c->state = ST_SENDING;
            if (do_send(c) < 0) { errors++; close_conn(c); c->state = ST_DONE; }
        }
    } else {
        for (int i = 0; i < nconns; i++) start_request(&cs[i]);
    }

    struct epoll_event evs[512];
    for (;;) {
        double t = now_s();
        if (!once && duration > 0 && t - t0 >= duration) stop_issuing = 1;
        int active = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &cs[i];
            if (c->state == ST_DONE || c->state == ST_IDLE) continue;
            if (t - c->t_sent > timeout_s) { /* timed out */
                errors++;
                close_conn(c);
                if (once) c->state = ST_DONE;
                else start_request(c);
                if (c->state == ST_DONE || c->state == ST_IDLE) continue;
            }
            active++;
        }
        if (!active) break;
        int ne = epoll_wait(epfd, evs, 512, 20);
        for (int j = 0; j < ne; j++) {
            struct conn *c = evs[j].data.ptr;
            if (c->fd < 0) continue;
            if (c->state == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { on_error(c); continue; }
                c->state = ST_SENDING;
                if (do_send(c) < 0) { on_error(c); continue; }
                continue;
            }
            if (c->state == ST_SENDING && (evs[j].events & EPOLLOUT)) {
                if (do_send(c) < 0) { on_error(c); continue; }
            }
            if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->state == ST_READING || c->state == ST_SENDING) on_readable(c);
                else if (c->fd >= 0 && (c->state == ST_IDLE || c->state == ST_DONE)) close_conn(c);
            }
        }
    }
    double elapsed = now_s() - t0;
    if (lat_file) {
        uint64_t *pairs = malloc((lat_n ? lat_n : 1) * sizeof(*pairs));
        if (!pairs) { perror("malloc"); return 1; }
        for (size_t i = 0; i < lat_n; i++) pairs[i] = ((uint64_t)lat_us[i] << 32) | start_us[i];
        qsort(pairs, lat_n, sizeof(*pairs), cmp_u64);
        FILE *f = fopen(lat_file, "w");
        if (!f) { perror(lat_file); return 1; }
        for (size_t i = 0; i < lat_n; i++)
            fprintf(f, "%u %u\n", (uint32_t)(pairs[i] >> 32), (uint32_t)(pairs[i] & 0xffffffffu));
        fclose(f);
        free(pairs);
    }
    qsort(lat_us, lat_n, sizeof(*lat_us), cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < lat_n; i++) sum += lat_us[i];
    printf("requests=%lld errors=%lld non2xx=%lld elapsed_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f mean_ms=%.3f min_ms=%.3f isr_hit=%lld isr_stale=%lld isr_miss=%lld "
           "origin_seqs=%zu\n",
           completed, errors, non2xx, elapsed, elapsed > 0 ? (double)completed / elapsed : 0.0,
           pct(0.50), pct(0.90), pct(0.99), lat_n ? lat_us[lat_n - 1] / 1000.0 : 0.0,
           lat_n ? sum / (double)lat_n / 1000.0 : 0.0, lat_n ? lat_us[0] / 1000.0 : 0.0,
           isr_hit, isr_stale, isr_miss, seqs_n);
    return 0;
}
