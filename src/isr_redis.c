/* The second tier on Redis (isr_tier.h), with hiredis.
 *
 * Keys of zone NAME (one hash tag, so that a script touches one slot):
 *
 *   isr:{NAME}:GEN:e:KEY    an entry (isr_tier_rec.c), PX = until its stale
 *                           window ends
 *   isr:{NAME}:GEN:t:TAG    sets of the KEYs with a tag (t* those whose
 *   isr:{NAME}:GEN:p:PATH   tags overflowed), a path prefix, a URL; an
 *   isr:{NAME}:GEN:u:URL    operation deletes what they name
 *   isr:{NAME}:gen          GEN: purge-all increments it
 *   isr:{NAME}:GEN:x:KEY    the sequence of the last purge of KEY by key
 *                           (a key= purge, an invalidation after an unsafe
 *                           method), an hour long: a write under a lease
 *                           taken before it is refused
 *   isr:{NAME}:l:KEY        the lease: its owner's random token, SET NX PX
 *                           (the fetch's time limit and a margin)
 *   isr:{NAME}:opseq        the cluster's operation sequence
 *   isr:{NAME}:gseq         the sequence of the last operation by tag,
 *                           prefix, URL or all: a write under a lease taken
 *                           before it is refused
 *   isr:{NAME}:ops          a stream of the last operations (catch-up)
 *   isr:{NAME}:epoch        random, set once: a Redis that lost its data
 *                           has another one
 *   isr:{NAME}:bus:DB       the channel: "L"KEY when something landed for
 *                           KEY, "O"SEQ SERVER PAYLOAD for an operation
 *
 * Everything that must be atomic is a Lua script. Every call has a timeout
 * (redis_timeout=); after a failure the child skips the tier for a second.
 * A connection is taken from a per-child list by a request's miss path or
 * a refresh thread, never by a hit. One thread per child listens on the
 * bus: it wakes this child's waiters and applies operations made on other
 * servers to the zone (one child of the server does each, by a
 * compare-and-swap on the applied sequence in shared memory). */
#include "isr.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <hiredis/hiredis.h>
#include <apr_atomic.h>
#include <apr_reslist.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_hash.h>
#include <apr_lib.h>

#include "isr_ctx.h"
#include "isr_purge.h"
#include "isr_tier.h"
#include "isr_zone.h"

#define CONNS_MAX     32        /* connections a child keeps at most */
#define SKIP_AFTER_FAILURE 1u   /* s: no calls after one failed */
#define WAKE_BUCKETS  64
#define BUS_POLL_MS   250
#define OPS_KEEP      "10000"   /* stream entries kept for catch-up */
#define OPS_CATCH_MAX 1000      /* missed more: the local tier goes stale */
#define EVAL_ARGS_MAX 300       /* an operation names up to 256 tags */
#define ORPHANS_MAX   64        /* leases to give back, per child */
#define TOMB_PX       "3600000" /* ms an x:KEY mark is kept */
/* Larger entries stay on the server that fetched them: one call must fit
 * in redis_timeout, and a slow call makes the tier look down. */
#define PUT_MAX       (4 * 1024 * 1024)

typedef enum {
    T_GETS, T_FOUND, T_PUTS, T_PUT_REFUSED, T_LEASES, T_LEASE_BUSY, T_WAITS,
    T_ERRORS, T_SKIPPED, T_OPS_SENT, T_OPS_APPLIED, T_CATCH_UPS,
    T_MADE_STALE, T_COUNT
} tier_stat_t;

#define T_GAUGES 2      /* connected, applied_seq: before the counters */
typedef char metrics_match[(ISR_TIER_METRICS == T_GAUGES + T_COUNT) ? 1 : -1];

static const char *const stat_names[T_COUNT] = {
    "gets", "found", "puts", "put_refused", "leases", "lease_busy", "waits",
    "errors", "skipped", "ops_sent", "ops_applied", "catch_ups",
    "made_stale"
};

/* In shared memory: what every child of the server sees. */
typedef struct {
    apr_uint64_t applied;       /* the last cluster operation applied */
    apr_uint64_t epoch;         /* the tier's epoch it counts in, 0: none */
    apr_uint64_t server;        /* this server's id in operations */
    apr_uint32_t catching;      /* pid of the child catching up, or 0 */
    apr_uint32_t bus_seen;      /* when (s) a child last listened */
    apr_uint32_t restored;      /* the zone came from its persist= file */
    apr_int64_t floor;          /* entries fetched before it are not taken
                                 * from Redis: an operation made while it
                                 * did not answer may have matched them */
    apr_uint64_t counts[T_COUNT];
} tier_shared_t;

typedef struct {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    volatile apr_uint32_t gen;
} wake_t;

typedef struct {
    char *key;                  /* malloc'd */
    apr_size_t klen;
    apr_uint64_t token;
} orphan_t;

struct isr_tier_t {
    isr_tier_conf_t conf;
    isr_zone_t *zone;
    tier_shared_t *sh;
    const char *pre;            /* "isr:{NAME}:" */
    const char *bus;            /* the channel */
    server_rec *s;
    /* This child's: */
    apr_reslist_t *conns;
    volatile apr_uint32_t skip_until;   /* seconds: no calls before */
    volatile apr_uint32_t down;         /* logged as unreachable */
    volatile int stop;
    volatile int subscribed;            /* this child's bus listens */
    volatile int catch_pending;         /* a catch-up is still owed */
    apr_thread_mutex_t *orphan_mx;      /* leases to give back when Redis
                                         * answers again: a call that
                                         * failed may have taken them */
    orphan_t orphans[ORPHANS_MAX];
    volatile int norphans;
    apr_thread_t *thread;
    wake_t wake[WAKE_BUCKETS];
};

static isr_tier_t **tiers;      /* this generation's, for child_init */
static int ntiers;

/* ---- the scripts ---------------------------------------------------- */

/* ARGV: pre, key, want, px, newer, token. {2, entry} when want is 1 and
 * the entry was fetched after `newer` (its fetched field, isr_tier_rec.c:
 * bytes 17-24), else the lease for `token`: {1, opseq} | {0}; in one step,
 * so that an entry landing meanwhile is never fetched again. The token is
 * the caller's (random): a claim whose answer was lost can be given back
 * (isr_tier_release) once Redis answers again. */
static const char CLAIM[] =
    "local pre, key = ARGV[1], ARGV[2]\n"
    "if ARGV[3] == '1' then\n"
    "  local g = redis.call('get', pre..'gen') or '0'\n"
    "  local v = redis.call('get', pre..g..':e:'..key)\n"
    "  if v and #v >= 24 and string.sub(v, 1, 4) == 'ISRT'\n"
    "     and struct.unpack('>i8', v, 17) > tonumber(ARGV[5]) then\n"
    "    return {2, v}\n"
    "  end\n"
    "end\n"
    "if redis.call('set', pre..'l:'..key, ARGV[6], 'NX', 'PX', ARGV[4])"
    " then\n"
    "  return {1, tonumber(redis.call('get', pre..'opseq') or '0')}\n"
    "end\n"
    "return {0}\n";

/* ARGV: pre, bus, key, token, opseq, px, entry, n, tags..., n, prefixes...,
 * url index. 1 stored, 0 the lease is not the caller's, -1 an operation
 * that may match the entry came since the lease was taken (opseq). */
static const char PUT[] =
    "local pre, bus, key, tok = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local lk = pre..'l:'..key\n"
    "if redis.call('get', lk) ~= tok then return 0 end\n"
    "redis.call('del', lk)\n"
    "local r = -1\n"
    "local since = tonumber(ARGV[5])\n"
    "local g = pre..(redis.call('get', pre..'gen') or '0')..':'\n"
    "if tonumber(redis.call('get', pre..'gseq') or '0') <= since\n"
    "   and tonumber(redis.call('get', g..'x:'..key) or '0') <= since then\n"
    "  local px = tonumber(ARGV[6])\n"
    "  redis.call('set', g..'e:'..key, ARGV[7], 'PX', px)\n"
    "  local function idx(s)\n"
    "    redis.call('sadd', s, key)\n"
    "    if redis.call('pttl', s) < px then redis.call('pexpire', s, px) end\n"
    "  end\n"
    "  local i = 8\n"
    "  for _, kind in ipairs({'t:', 'p:'}) do\n"
    "    local n = tonumber(ARGV[i])\n"
    "    for j = 1, n do idx(g..kind..ARGV[i + j]) end\n"
    "    i = i + n + 1\n"
    "  end\n"
    "  idx(g..'u:'..ARGV[i])\n"
    "  r = 1\n"
    "end\n"
    "redis.call('publish', bus, 'L'..key)\n"
    "return r\n";

/* ARGV: pre, bus, key, token. */
static const char RELEASE[] =
    "local lk = ARGV[1]..'l:'..ARGV[3]\n"
    "if redis.call('get', lk) == ARGV[4] then redis.call('del', lk) end\n"
    "redis.call('publish', ARGV[2], 'L'..ARGV[3])\n"
    "return 1\n";

/* ARGV: pre, bus, kind, payload, server, names... The operation's seq. */
static const char OP[] =
    "local pre, bus, kind = ARGV[1], ARGV[2], ARGV[3]\n"
    "local seq = redis.call('incr', pre..'opseq')\n"
    "local g = pre..(redis.call('get', pre..'gen') or '0')..':'\n"
    "local function drop(s)\n"
    "  local m = redis.call('smembers', s)\n"
    "  for i = 1, #m do redis.call('del', g..'e:'..m[i]) end\n"
    "  redis.call('del', s)\n"
    "end\n"
    "if kind == 'k' then\n"
    "  for i = 6, #ARGV do\n"
    "    redis.call('del', g..'e:'..ARGV[i])\n"
    "    redis.call('set', g..'x:'..ARGV[i], seq, 'PX', " TOMB_PX ")\n"
    "  end\n"
    "else redis.call('set', pre..'gseq', seq) end\n"
    "if kind == 'a' then redis.call('incr', pre..'gen')\n"
    "elseif kind ~= 'k' then\n"
    "  for i = 6, #ARGV do drop(g..kind..':'..ARGV[i]) end\n"
    "  if kind == 't' then drop(g..'t:*') end\n"
    "end\n"
    "redis.call('xadd', pre..'ops', 'MAXLEN', '~', '" OPS_KEEP "',"
    " seq..'-0', 'o', ARGV[5], 'p', ARGV[4])\n"
    "redis.call('publish', bus, 'O'..seq..' '..ARGV[5]..' '..ARGV[4])\n"
    "return seq\n";

/* ARGV: pre, an epoch in case there is none yet. {epoch, opseq} */
static const char HELLO[] =
    "local e = redis.call('get', ARGV[1]..'epoch')\n"
    "if not e then e = ARGV[2]; redis.call('set', ARGV[1]..'epoch', e) end\n"
    "return {e, redis.call('get', ARGV[1]..'opseq') or '0'}\n";

/* ---- configuration -------------------------------------------------- */

const char *isr_tier_parse_url(apr_pool_t *p, const char *url,
                               isr_tier_conf_t *c)
{
    const char *rest, *at, *colon, *slash, *host;
    apr_int64_t port, db = 0;
    char *end;

    memset(c, 0, sizeof(*c));
    c->timeout = ISR_TIER_TIMEOUT;
    if (strncasecmp(url, "redis://", 8)) {
        return "is not a redis:// URL";
    }
    rest = url + 8;
    if ((at = strrchr(rest, '@'))) {
        const char *auth = apr_pstrmemdup(p, rest, at - rest);

        /* redis://:PASSWORD@ or redis://default:PASSWORD@ (Redis 6 ACL
         * user "default"); other users are not supported. */
        if ((colon = strchr(auth, ':'))
            && (colon == auth || !strncmp(auth, "default:", 8))) {
            c->password = colon[1] ? colon + 1 : NULL;
        }
        else {
            return "has credentials other than :PASSWORD@";
        }
        rest = at + 1;
    }
    slash = strchr(rest, '/');
    host = slash ? apr_pstrmemdup(p, rest, slash - rest) : rest;
    if (!(colon = strrchr(host, ':')) || colon == host) {
        return "needs HOST:PORT";
    }
    c->host = apr_pstrmemdup(p, host, colon - host);
    if (strchr(c->host, ':') || strchr(c->host, '/')) {
        return "has a bad host";
    }
    port = apr_strtoi64(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) {
        return "has a bad port (1-65535)";
    }
    c->port = (apr_port_t)port;
    if (slash && slash[1]) {
        db = apr_strtoi64(slash + 1, &end, 10);
        if (*end || db < 0 || db > 65535) {
            return "has a bad database number";
        }
    }
    c->db = (int)db;
    c->url = apr_psprintf(p, "redis://%s:%d/%d", c->host, (int)c->port, c->db);
    return NULL;
}

/* ---- counters and state --------------------------------------------- */

static void count(isr_tier_t *t, tier_stat_t w)
{
    __atomic_fetch_add(&t->sh->counts[w], 1, __ATOMIC_RELAXED);
}

static apr_uint32_t now_sec(void)
{
    return (apr_uint32_t)apr_time_sec(apr_time_now());
}

/* A call failed: say so once; with `skip`, skip the tier for a moment (a
 * lost subscription alone does not: calls may still work). */
static void went_down(isr_tier_t *t, const char *why, int skip)
{
    apr_uint32_t was = 0;

    count(t, T_ERRORS);
    if (skip) {
        __atomic_store_n(&t->skip_until, now_sec() + SKIP_AFTER_FAILURE,
                         __ATOMIC_RELAXED);
    }
    if (__atomic_compare_exchange_n(&t->down, &was, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, t->s, ISR_LOGNO(0068)
                     "zone %s: Redis %s does not answer (%s): serving "
                     "without the second tier, retrying every second",
                     t->zone->name, t->conf.url, why);
    }
}

static void came_up(isr_tier_t *t)
{
    apr_uint32_t was = 1;

    if (__atomic_load_n(&t->down, __ATOMIC_RELAXED)
        && __atomic_compare_exchange_n(&t->down, &was, 0, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, t->s, ISR_LOGNO(0069)
                     "zone %s: Redis %s answers again", t->zone->name,
                     t->conf.url);
    }
}

/* ---- connections ---------------------------------------------------- */

static struct timeval tv_of(apr_interval_time_t t)
{
    struct timeval tv;

    tv.tv_sec = (long)apr_time_sec(t);
    tv.tv_usec = (long)apr_time_usec(t);
    return tv;
}

/* A reply that is not an error. */
static int reply_ok(redisReply *r)
{
    return r && r->type != REDIS_REPLY_ERROR;
}

/* Connect, authenticate and select the database; NULL with *why. */
static redisContext *connect_to(const isr_tier_conf_t *c, const char **why)
{
    redisContext *ctx = redisConnectWithTimeout(c->host, c->port,
                                                tv_of(c->timeout));
    redisReply *r;

    if (!ctx || ctx->err) {
        *why = ctx ? "cannot connect" : "out of memory";
        if (ctx) {
            redisFree(ctx);
        }
        return NULL;
    }
    redisSetTimeout(ctx, tv_of(c->timeout));
    /* A peer that vanished (a failover, a cable) is noticed. */
    redisEnableKeepAlive(ctx);
    if (c->password) {
        r = redisCommand(ctx, "AUTH %s", c->password);
        if (!reply_ok(r)) {
            *why = r ? "AUTH refused" : "AUTH timed out";
            goto fail;
        }
        freeReplyObject(r);
    }
    if (c->db) {
        r = redisCommand(ctx, "SELECT %d", c->db);
        if (!reply_ok(r)) {
            *why = r ? "SELECT refused" : "SELECT timed out";
            goto fail;
        }
        freeReplyObject(r);
    }
    return ctx;
fail:
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return NULL;
}

static apr_status_t conn_make(void **res, void *params, apr_pool_t *p)
{
    isr_tier_t *t = params;
    const char *why = NULL;
    (void)p;

    if (!(*res = connect_to(&t->conf, &why))) {
        went_down(t, why, 1);
        return APR_ECONNREFUSED;
    }
    return APR_SUCCESS;
}

static apr_status_t conn_free(void *res, void *params, apr_pool_t *p)
{
    (void)params;
    (void)p;
    redisFree(res);
    return APR_SUCCESS;
}

/* Run a script: the reply (to be freed), or NULL when the tier is skipped
 * or failed (counted, logged once). */
static redisReply *eval(isr_tier_t *t, const char *script, int argc,
                        const char **argv, const size_t *lens)
{
    const char *a[EVAL_ARGS_MAX];
    size_t l[EVAL_ARGS_MAX];
    redisContext *ctx;
    redisReply *r;
    void *res;
    int i, tries, err, closed;

    if (!t->conns || argc + 3 > EVAL_ARGS_MAX) {
        return NULL;
    }
    if (now_sec() < __atomic_load_n(&t->skip_until, __ATOMIC_RELAXED)) {
        count(t, T_SKIPPED);
        return NULL;
    }
    a[0] = "EVAL";
    l[0] = 4;
    a[1] = script;
    l[1] = strlen(script);
    a[2] = "0";
    l[2] = 1;
    for (i = 0; i < argc; i++) {
        a[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    /* A connection Redis closed while it was idle in the list (its
     * `timeout`, a restart) fails at once: another one is tried. */
    for (tries = 0;; tries++) {
        if (apr_reslist_acquire(t->conns, &res) != APR_SUCCESS) {
            count(t, T_SKIPPED);
            return NULL;
        }
        ctx = res;
        r = redisCommandArgv(ctx, argc + 3, a, l);
        if (r) {
            break;
        }
        err = errno;
        closed = ctx->err == REDIS_ERR_EOF
                 || (ctx->err == REDIS_ERR_IO
                     && (err == ECONNRESET || err == EPIPE));
        if (!closed || tries >= 2) {
            went_down(t, ctx->errstr[0] ? ctx->errstr : "no answer", 1);
            apr_reslist_invalidate(t->conns, res);
            return NULL;
        }
        apr_reslist_invalidate(t->conns, res);
    }
    apr_reslist_release(t->conns, res);
    if (r->type == REDIS_REPLY_ERROR) {
        count(t, T_ERRORS);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, t->s, ISR_LOGNO(0070)
                     "zone %s: Redis %s refused a script: %.200s",
                     t->zone->name, t->conf.url, r->str);
        freeReplyObject(r);
        return NULL;
    }
    came_up(t);
    return r;
}

static apr_int64_t reply_int(const redisReply *r)
{
    if (!r) {
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        return (apr_int64_t)r->integer;
    }
    if (r->type == REDIS_REPLY_STRING) {
        return apr_strtoi64(r->str, NULL, 10);
    }
    return 0;
}

/* ---- claims, waits, puts -------------------------------------------- */

static const char *dec(apr_pool_t *p, apr_uint64_t v)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, v);
}

static apr_uint32_t key_bucket(const char *key, apr_size_t klen)
{
    apr_ssize_t l = (apr_ssize_t)klen;

    return apr_hashfunc_default(key, &l) % WAKE_BUCKETS;
}

isr_tier_ticket_t isr_tier_ticket(isr_zone_t *zone, const char *key,
                                  apr_size_t klen)
{
    isr_tier_t *t = zone->tier;

    return t ? __atomic_load_n(&t->wake[key_bucket(key, klen)].gen,
                               __ATOMIC_ACQUIRE)
             : 0;
}

void isr_tier_wait(isr_zone_t *zone, const char *key, apr_size_t klen,
                   isr_tier_ticket_t tk, apr_interval_time_t max)
{
    isr_tier_t *t = zone->tier;
    wake_t *w;
    apr_time_t until = apr_time_now() + max, now;

    if (!t) {
        return;
    }
    count(t, T_WAITS);
    w = &t->wake[key_bucket(key, klen)];
    if (!w->mutex || !t->subscribed) {
        /* Nobody listens to the bus: a short nap, then claim again. */
        apr_sleep(max < apr_time_from_msec(100) ? max
                                                : apr_time_from_msec(100));
        return;
    }
    apr_thread_mutex_lock(w->mutex);
    while (__atomic_load_n(&w->gen, __ATOMIC_ACQUIRE) == tk
           && (now = apr_time_now()) < until && !t->stop) {
        apr_thread_cond_timedwait(w->cond, w->mutex, until - now);
    }
    apr_thread_mutex_unlock(w->mutex);
}

/* ---- leases a failed call may have left ----------------------------- */

/* Remember a lease whose call failed (it may have been taken, or not
 * given back): released when Redis answers again, so that no server waits
 * for it until it expires. The oldest goes when the list is full. */
static void orphan_add(isr_tier_t *t, const char *key, apr_size_t klen,
                       apr_uint64_t token)
{
    orphan_t *o;
    char *k;

    if (!t->orphan_mx || !token || !(k = malloc(klen ? klen : 1))) {
        return;
    }
    memcpy(k, key, klen);
    apr_thread_mutex_lock(t->orphan_mx);
    if (t->norphans == ORPHANS_MAX) {
        free(t->orphans[0].key);
        memmove(&t->orphans[0], &t->orphans[1],
                sizeof(t->orphans[0]) * (ORPHANS_MAX - 1));
        t->norphans--;
    }
    o = &t->orphans[t->norphans++];
    o->key = k;
    o->klen = klen;
    o->token = token;
    apr_thread_mutex_unlock(t->orphan_mx);
}

static redisReply *release_call(isr_tier_t *t, const char *key,
                                apr_size_t klen, apr_uint64_t token)
{
    const char *argv[4];
    size_t lens[4];
    char tok[32];

    apr_snprintf(tok, sizeof(tok), "%" APR_UINT64_T_FMT, token);
    argv[0] = t->pre;
    argv[1] = t->bus;
    argv[2] = key;
    argv[3] = tok;
    lens[0] = strlen(t->pre);
    lens[1] = strlen(t->bus);
    lens[2] = klen;
    lens[3] = strlen(tok);
    return eval(t, RELEASE, 4, argv, lens);
}

/* The bus thread, while Redis answers: give the remembered leases back. */
static void orphans_release(isr_tier_t *t)
{
    orphan_t o;
    redisReply *r;

    while (__atomic_load_n(&t->norphans, __ATOMIC_RELAXED) && !t->stop) {
        apr_thread_mutex_lock(t->orphan_mx);
        if (!t->norphans) {
            apr_thread_mutex_unlock(t->orphan_mx);
            return;
        }
        o = t->orphans[--t->norphans];
        apr_thread_mutex_unlock(t->orphan_mx);
        r = release_call(t, o.key, o.klen, o.token);
        if (!r) {
            orphan_add(t, o.key, o.klen, o.token);
            free(o.key);
            return;
        }
        freeReplyObject(r);
        free(o.key);
    }
}

static apr_uint64_t token_make(void)
{
    apr_uint64_t tok = 0;

    apr_generate_random_bytes((unsigned char *)&tok, sizeof(tok));
    return (tok >> 1) | 1;  /* positive, never 0 */
}

isr_tier_claim_t isr_tier_claim(isr_zone_t *zone, const char *key,
                                apr_size_t klen, int want, apr_time_t newer,
                                apr_interval_time_t hold, apr_pool_t *p,
                                isr_tier_rec_t *rec, isr_tier_lease_t *lease)
{
    static apr_uint32_t bad_logged;
    isr_tier_t *t = zone->tier;
    const char *argv[6];
    size_t lens[6];
    redisReply *r;
    apr_uint64_t tok;
    isr_tier_claim_t st;
    int i;

    lease->token = lease->opseq = 0;
    if (!t) {
        return ISR_TIER_DOWN;
    }
    argv[0] = t->pre;
    argv[1] = key;
    argv[3] = dec(p, (apr_uint64_t)apr_time_as_msec(hold) + 1);
    argv[4] = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)newer);
    lens[0] = strlen(argv[0]);
    lens[1] = klen;
    lens[2] = 1;
    lens[3] = strlen(argv[3]);
    lens[4] = strlen(argv[4]);
    /* A malformed entry is claimed over (the lease only): the write of
     * whoever fetches replaces it. */
    for (i = 0;; i++) {
        tok = token_make();
        argv[2] = want ? "1" : "0";
        argv[5] = dec(p, tok);
        lens[5] = strlen(argv[5]);
        if (want) {
            count(t, T_GETS);
        }
        if (!(r = eval(t, CLAIM, 6, argv, lens))) {
            /* It may have been taken, its answer lost. */
            orphan_add(t, key, klen, tok);
            return ISR_TIER_DOWN;
        }
        st = ISR_TIER_DOWN;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
            count(t, T_ERRORS);
        }
        else if (reply_int(r->element[0]) == 2 && r->elements == 2
                 && r->element[1]->type == REDIS_REPLY_STRING) {
            char *copy = apr_pmemdup(p, r->element[1]->str,
                                     r->element[1]->len);

            if (isr_tier_rec_unpack(p, copy, r->element[1]->len, key, klen,
                                    rec)) {
                count(t, T_FOUND);
                st = ISR_TIER_FOUND;
            }
            else {
                count(t, T_ERRORS);
                if (now_sec() - __atomic_load_n(&bad_logged, __ATOMIC_RELAXED)
                    >= 60) {
                    __atomic_store_n(&bad_logged, now_sec(),
                                     __ATOMIC_RELAXED);
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, t->s,
                                 ISR_LOGNO(0071) "zone %s: an entry in Redis "
                                 "%s does not parse or is another key's: "
                                 "ignored, fetched again (logged once a "
                                 "minute)", zone->name, t->conf.url);
                }
                if (want && i == 0) {
                    freeReplyObject(r);
                    want = 0;
                    continue;
                }
            }
        }
        else if (reply_int(r->element[0]) == 1 && r->elements == 2) {
            lease->token = tok;
            lease->opseq = (apr_uint64_t)reply_int(r->element[1]);
            count(t, T_LEASES);
            st = ISR_TIER_OWNED;
        }
        else {
            count(t, T_LEASE_BUSY);
            st = ISR_TIER_BUSY;
        }
        freeReplyObject(r);
        return st;
    }
}

void isr_tier_release(isr_zone_t *zone, const char *key, apr_size_t klen,
                      isr_tier_lease_t *lease)
{
    isr_tier_t *t = zone->tier;
    apr_uint64_t tok;
    redisReply *r;

    if (!t || !lease->token) {
        return;
    }
    tok = lease->token;
    lease->token = 0;
    if ((r = release_call(t, key, klen, tok))) {
        freeReplyObject(r);
    }
    else {
        orphan_add(t, key, klen, tok);
    }
}

/* The name of a URL's index set (after "u:"): what isr_purge_url_hash
 * hashes. */
static const char *url_index(apr_pool_t *p, const char *unix_path,
                             const char *url, apr_size_t *len)
{
    const char *u = apr_psprintf(p, "%" APR_SIZE_T_FMT ":%s%s",
                                 unix_path ? strlen(unix_path) : 0,
                                 unix_path ? unix_path : "", url);

    *len = strlen(u);
    return u;
}

void isr_tier_put(isr_zone_t *zone, const char *key, apr_size_t klen,
                  isr_tier_lease_t *lease, const isr_value_t *v,
                  apr_pool_t *p)
{
    isr_tier_t *t = zone->tier;
    apr_size_t ends[ISR_PURGE_MAX_DEPTH];
    const char *argv[8 + ISR_PURGE_MAX_TAGS + 1 + ISR_PURGE_MAX_DEPTH + 2];
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    apr_array_header_t *tags = NULL;
    apr_time_t now = apr_time_now();
    const char *path = NULL, *blob;
    apr_size_t bl;
    isr_tier_rec_t rec;
    isr_ctx_t ctx;
    redisReply *r;
    apr_uint64_t tok;
    int n = 0, i, np, overflow = 0;

    if (!t || !lease->token) {
        return;
    }
    if (v->stale_until <= now + apr_time_from_msec(1)
        || isr_ctx_parse(p, key, klen, &ctx) != APR_SUCCESS
        || (v->taglen && !isr_purge_block_read(p, v->tags, v->taglen, &path,
                                               &tags, &overflow))) {
        isr_tier_release(zone, key, klen, lease);
        return;
    }
    memset(&rec, 0, sizeof(rec));
    rec.key = key;
    rec.klen = klen;
    rec.status = v->status;
    rec.headers = v->headers;
    rec.hdrlen = v->hdrlen;
    rec.body = v->body;
    rec.bodylen = v->bodylen;
    rec.alts = v->alts;
    rec.altlen = v->altlen;
    rec.path = path;
    rec.tags = tags;
    rec.overflow = overflow;
    rec.fetched = v->fetched;
    rec.fresh_until = v->fresh_until;
    rec.stale_until = v->stale_until;
    rec.swr_until = v->swr_until;
    rec.sie_until = v->sie_until;
    isr_tier_rec_pack(p, &rec, &blob, &bl);
    if (bl > PUT_MAX) {
        isr_tier_release(zone, key, klen, lease);
        return;
    }

#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
    ARG(t->pre, strlen(t->pre));
    ARG(t->bus, strlen(t->bus));
    ARG(key, klen);
    argv[n] = dec(p, lease->token);
    ARG(argv[n], strlen(argv[n]));
    argv[n] = dec(p, lease->opseq);
    ARG(argv[n], strlen(argv[n]));
    argv[n] = dec(p, (apr_uint64_t)apr_time_as_msec(v->stale_until - now) + 1);
    ARG(argv[n], strlen(argv[n]));
    ARG(blob, bl);
    /* Tags (or, when they overflowed, the set every tag purge drops). */
    if (overflow) {
        ARG("1", 1);
        ARG("*", 1);
    }
    else {
        int nt = tags ? tags->nelts : 0;

        if (nt > ISR_PURGE_MAX_TAGS) {
            nt = ISR_PURGE_MAX_TAGS;
        }
        argv[n] = dec(p, (apr_uint64_t)nt);
        ARG(argv[n], strlen(argv[n]));
        for (i = 0; i < nt; i++) {
            const char *tg = APR_ARRAY_IDX(tags, i, const char *);

            ARG(tg, strlen(tg));
        }
    }
    np = path ? isr_purge_prefixes(path, strlen(path), ends) : 0;
    argv[n] = dec(p, (apr_uint64_t)np);
    ARG(argv[n], strlen(argv[n]));
    for (i = 0; i < np; i++) {
        ARG(path, ends[i]);
    }
    argv[n] = url_index(p, ctx.unix_path, ctx.url, &bl);
    ARG(argv[n], bl);
#undef ARG
    tok = lease->token;
    lease->token = 0;
    if (!(r = eval(t, PUT, n, argv, lens))) {
        orphan_add(t, key, klen, tok);
        return;
    }
    if (reply_int(r) == 1) {
        count(t, T_PUTS);
    }
    else {
        count(t, T_PUT_REFUSED);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, t->s, ISR_LOGNO(0072)
                     "zone %s: not written to Redis: %s", zone->name,
                     reply_int(r) == 0 ? "the lease was lost (taken over)"
                                       : "an operation came since the fetch "
                                         "began");
    }
    freeReplyObject(r);
}

int isr_tier_value(isr_zone_t *zone, const isr_tier_rec_t *rec,
                   const isr_purge_mark_t *born, apr_time_t now,
                   apr_pool_t *p, isr_value_t *v)
{
    isr_ctx_t ctx;

    if (rec->stale_until <= now
        || rec->fetched < __atomic_load_n(&zone->tier->sh->floor,
                                          __ATOMIC_ACQUIRE)
        || isr_ctx_parse(p, rec->key, rec->klen, &ctx) != APR_SUCCESS) {
        return 0;
    }
    memset(v, 0, sizeof(*v));
    v->status = rec->status;
    v->headers = rec->headers;
    v->hdrlen = rec->hdrlen;
    v->body = rec->body;
    v->bodylen = rec->bodylen;
    v->alts = rec->alts;
    v->altlen = rec->altlen;
    v->born = born->seq;
    v->born_at = born->at;
    v->fetched = rec->fetched;
    v->fresh_until = rec->fresh_until;
    v->stale_until = rec->stale_until;
    v->swr_until = rec->swr_until;
    v->sie_until = rec->sie_until;
    isr_purge_block_from(p, zone, rec->path,
                         isr_purge_url_hash(zone, ctx.unix_path, ctx.url),
                         isr_store_hash(zone, rec->key, rec->klen), rec->tags,
                         rec->overflow, &v->tags, &v->taglen);
    return 1;
}

/* ---- operations ----------------------------------------------------- */

/* payload: hard ('0'/'1'), kind, then LEN ':' BYTES per value. */
static const char *payload_make(apr_pool_t *p, int hard, char kind,
                                const apr_array_header_t *values,
                                apr_size_t *plen)
{
    apr_size_t n = 2;
    char *b, *w;
    int i;

    for (i = 0; values && i < values->nelts; i++) {
        n += 21 + APR_ARRAY_IDX(values, i, isr_purge_val_t).len;
    }
    b = w = apr_palloc(p, n + 1);
    *w++ = hard ? '1' : '0';
    *w++ = kind;
    for (i = 0; values && i < values->nelts; i++) {
        const isr_purge_val_t *v = &APR_ARRAY_IDX(values, i, isr_purge_val_t);

        w += apr_snprintf(w, 22, "%" APR_SIZE_T_FMT ":", v->len);
        memcpy(w, v->v, v->len);
        w += v->len;
    }
    *plen = (apr_size_t)(w - b);
    return b;
}

/* The reverse; 0 when it does not parse. */
static int payload_read(apr_pool_t *p, const char *b, apr_size_t len,
                        int *hard, char *kind, apr_array_header_t **values)
{
    apr_size_t at = 2, l;

    if (len < 2 || (b[0] != '0' && b[0] != '1')
        || !strchr("kptua", b[1]) || !b[1]) {
        return 0;
    }
    *hard = b[0] == '1';
    *kind = b[1];
    *values = apr_array_make(p, 4, sizeof(isr_purge_val_t));
    while (at < len) {
        isr_purge_val_t *v;

        for (l = 0; at < len && apr_isdigit(b[at]) && l < 100000000; at++) {
            l = l * 10 + (apr_size_t)(b[at] - '0');
        }
        if (at >= len || b[at] != ':' || l > len - at - 1) {
            return 0;
        }
        at++;
        v = apr_array_push(*values);
        v->v = b + at;
        v->len = l;
        at += l;
    }
    return 1;
}

apr_uint64_t isr_tier_op(isr_zone_t *zone, int hard, char kind,
                         const apr_array_header_t *values, apr_pool_t *p)
{
    isr_tier_t *t = zone->tier;
    const char *argv[EVAL_ARGS_MAX];
    size_t lens[EVAL_ARGS_MAX];
    apr_size_t pl;
    redisReply *r;
    apr_uint64_t seq = 0;
    int n = 0, i;
    char skind = kind;

    if (!t || (values && values->nelts > EVAL_ARGS_MAX - 6)) {
        return 0;
    }
    if (kind == 'p' && (!values || !values->nelts
                        || APR_ARRAY_IDX(values, 0, isr_purge_val_t).len
                           <= 1)) {
        skind = 'a';    /* a prefix purge of "/": the zone */
    }
    argv[n] = t->pre;
    lens[n++] = strlen(t->pre);
    argv[n] = t->bus;
    lens[n++] = strlen(t->bus);
    argv[n] = apr_pstrndup(p, &skind, 1);
    lens[n++] = 1;
    argv[n] = payload_make(p, hard, kind, values, &pl);
    lens[n++] = pl;
    argv[n] = dec(p, t->sh->server);
    lens[n] = strlen(argv[n]);
    n++;
    for (i = 0; values && i < values->nelts; i++) {
        const isr_purge_val_t *v = &APR_ARRAY_IDX(values, i, isr_purge_val_t);

        if (kind == 'u') {
            /* Values: the socket ("" for none), the URL. */
            if (i == 1) {
                apr_size_t ul;
                const isr_purge_val_t *s =
                    &APR_ARRAY_IDX(values, 0, isr_purge_val_t);

                argv[n] = url_index(p, s->len ? apr_pstrmemdup(p, s->v,
                                                               s->len)
                                              : NULL,
                                    apr_pstrmemdup(p, v->v, v->len), &ul);
                lens[n++] = ul;
            }
            continue;
        }
        argv[n] = v->v;
        lens[n++] = v->len;
    }
    if ((r = eval(t, OP, n, argv, lens))) {
        seq = (apr_uint64_t)reply_int(r);
        freeReplyObject(r);
        count(t, T_OPS_SENT);
    }
    if (!seq) {
        /* What it matches may still be in Redis: nothing fetched before
         * now is taken from there any more (this server applies the
         * operation to its own zone after this call). */
        apr_int64_t now = apr_time_now(),
                    f = __atomic_load_n(&t->sh->floor, __ATOMIC_ACQUIRE);

        while (f < now
               && !__atomic_compare_exchange_n(&t->sh->floor, &f, now, 0,
                                               __ATOMIC_ACQ_REL,
                                               __ATOMIC_ACQUIRE)) {
        }
    }
    return seq;
}

/* Apply an operation made on another server to this zone. */
static void op_apply(isr_tier_t *t, const char *payload, apr_size_t len,
                     apr_pool_t *p)
{
    apr_array_header_t *values;
    apr_uint64_t seq;
    char kind;
    int hard;

    if (!payload_read(p, payload, len, &hard, &kind, &values)) {
        count(t, T_ERRORS);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, t->s, ISR_LOGNO(0073)
                     "zone %s: an operation on the Redis bus does not parse: "
                     "ignored", t->zone->name);
        return;
    }
    if (isr_purge_op(t->zone, hard, kind, values, p, &seq) == APR_SUCCESS) {
        count(t, T_OPS_APPLIED);
        isr_zone_persist_soon(t->zone, t->s);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, t->s, ISR_LOGNO(0074)
                     "zone %s: %s by %c from another server applied: "
                     "operation %" APR_UINT64_T_FMT, t->zone->name,
                     hard ? "purge" : "revalidate", kind, seq);
    }
}

/* Missed operations that cannot be read back: every entry goes stale
 * (served while one refresh each runs), the safe side of a lost purge. */
static void make_stale(isr_tier_t *t, const char *why)
{
    apr_uint64_t seq;

    count(t, T_MADE_STALE);
    if (isr_purge_apply(t->zone, 0, NULL, 0, &seq) == APR_SUCCESS) {
        isr_zone_persist_soon(t->zone, t->s);
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, t->s, ISR_LOGNO(0075)
                 "zone %s: %s: every entry of the zone is stale now "
                 "(revalidated) in case a purge was missed", t->zone->name,
                 why);
}

/* Apply op `seq` (from the bus or the stream) unless it is applied or this
 * server made it. 1 when it is applied now (or was), 0 when an earlier one
 * is missing. */
static int op_take(isr_tier_t *t, apr_uint64_t seq, apr_uint64_t origin,
                   const char *payload, apr_size_t len, apr_pool_t *p)
{
    apr_uint64_t a = __atomic_load_n(&t->sh->applied, __ATOMIC_ACQUIRE);

    for (;;) {
        if (seq <= a) {
            return 1;
        }
        if (seq != a + 1) {
            return 0;
        }
        if (__atomic_compare_exchange_n(&t->sh->applied, &a, seq, 0,
                                        __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            break;
        }
    }
    if (origin != t->sh->server) {
        op_apply(t, payload, len, p);
    }
    return 1;
}

/* One child at a time catches up (a dead one's turn is taken over). */
static int catch_begin(isr_tier_t *t)
{
    apr_uint32_t was = 0, me = (apr_uint32_t)getpid();

    while (!__atomic_compare_exchange_n(&t->sh->catching, &was, me, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (was == me || (kill((pid_t)was, 0) != 0 && errno == ESRCH)) {
            continue;   /* ours already, or its holder died: take it */
        }
        return 0;
    }
    return 1;
}

static void catch_end(isr_tier_t *t)
{
    __atomic_store_n(&t->sh->catching, 0, __ATOMIC_RELEASE);
}

/* Read the operations after `applied` back from the stream and apply them,
 * or make the zone stale when they are not all there. 1 when done (or
 * another child does it), 0 when Redis did not answer: try again. */
static int catch_up(isr_tier_t *t, apr_pool_t *p)
{
    const char *argv[2];
    apr_uint64_t epoch, opseq, a, rnd;
    redisReply *r, *x = NULL;
    redisContext *ctx;
    void *res;
    size_t i;

    if (!catch_begin(t)) {
        return 0;   /* another child is at it: look again soon */
    }
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    rnd = (rnd >> 1) | 1;
    argv[0] = t->pre;
    argv[1] = dec(p, rnd);
    r = eval(t, HELLO, 2, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r) {
            freeReplyObject(r);
        }
        catch_end(t);
        return 0;
    }
    epoch = (apr_uint64_t)reply_int(r->element[0]);
    opseq = (apr_uint64_t)reply_int(r->element[1]);
    freeReplyObject(r);
    a = __atomic_load_n(&t->sh->applied, __ATOMIC_ACQUIRE);
    if (!t->sh->epoch) {
        /* This server's first contact: it has missed nothing it knew of,
         * unless its zone was read from its file (the cluster may have
         * purged meanwhile). */
        if (t->sh->restored) {
            make_stale(t, "restored from its persist= file, it does not "
                       "know the operations made while this server was "
                       "down");
        }
        t->sh->restored = 0;
        t->sh->epoch = epoch;
        __atomic_store_n(&t->sh->applied, opseq, __ATOMIC_RELEASE);
    }
    else if (t->sh->epoch != epoch || opseq < a) {
        make_stale(t, "Redis lost its data (restarted empty or flushed)");
        t->sh->epoch = epoch;
        __atomic_store_n(&t->sh->applied, opseq, __ATOMIC_RELEASE);
    }
    else if (opseq > a) {
        count(t, T_CATCH_UPS);
        if (opseq - a > OPS_CATCH_MAX) {
            make_stale(t, "too many operations missed");
            __atomic_store_n(&t->sh->applied, opseq, __ATOMIC_RELEASE);
            catch_end(t);
            return 1;
        }
        if (apr_reslist_acquire(t->conns, &res) != APR_SUCCESS) {
            catch_end(t);
            return 0;
        }
        ctx = res;
        x = redisCommand(ctx, "XRANGE %s %s + COUNT %s",
                         apr_pstrcat(p, t->pre, "ops", NULL),
                         apr_psprintf(p, "%" APR_UINT64_T_FMT "-0", a + 1),
                         apr_itoa(p, OPS_CATCH_MAX));
        if (!x) {
            apr_reslist_invalidate(t->conns, res);
            catch_end(t);
            return 0;
        }
        apr_reslist_release(t->conns, res);
        for (i = 0; x && x->type == REDIS_REPLY_ARRAY && i < x->elements;
             i++) {
            redisReply *e = x->element[i], *f;
            apr_uint64_t seq, origin = 0;
            const char *pl = NULL;
            apr_size_t pll = 0, j;

            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
                || e->element[0]->type != REDIS_REPLY_STRING
                || (f = e->element[1])->type != REDIS_REPLY_ARRAY) {
                break;
            }
            seq = (apr_uint64_t)apr_strtoi64(e->element[0]->str, NULL, 10);
            for (j = 0; j + 1 < f->elements; j += 2) {
                if (f->element[j]->type != REDIS_REPLY_STRING
                    || f->element[j + 1]->type != REDIS_REPLY_STRING) {
                    continue;
                }
                if (!strcmp(f->element[j]->str, "o")) {
                    origin = (apr_uint64_t)apr_strtoi64(
                        f->element[j + 1]->str, NULL, 10);
                }
                else if (!strcmp(f->element[j]->str, "p")) {
                    pl = f->element[j + 1]->str;
                    pll = f->element[j + 1]->len;
                }
            }
            if (!pl || !op_take(t, seq, origin, pl, pll, p)) {
                break;
            }
        }
        if (x) {
            freeReplyObject(x);
        }
        if (__atomic_load_n(&t->sh->applied, __ATOMIC_ACQUIRE) < opseq) {
            make_stale(t, "the operations missed are no longer in Redis");
            __atomic_store_n(&t->sh->applied, opseq, __ATOMIC_RELEASE);
        }
    }
    catch_end(t);
    return 1;
}

/* ---- the bus -------------------------------------------------------- */

static void wake(isr_tier_t *t, const char *key, apr_size_t klen)
{
    wake_t *w = &t->wake[key_bucket(key, klen)];

    if (!w->mutex) {
        return;
    }
    apr_thread_mutex_lock(w->mutex);
    __atomic_fetch_add(&w->gen, 1, __ATOMIC_ACQ_REL);
    apr_thread_cond_broadcast(w->cond);
    apr_thread_mutex_unlock(w->mutex);
}

static void wake_all(isr_tier_t *t)
{
    int i;

    for (i = 0; i < WAKE_BUCKETS && t->wake[i].mutex; i++) {
        apr_thread_mutex_lock(t->wake[i].mutex);
        __atomic_fetch_add(&t->wake[i].gen, 1, __ATOMIC_ACQ_REL);
        apr_thread_cond_broadcast(t->wake[i].cond);
        apr_thread_mutex_unlock(t->wake[i].mutex);
    }
}

/* A message: "L"KEY or "O"SEQ SERVER PAYLOAD. */
static void message(isr_tier_t *t, const char *m, apr_size_t len,
                    apr_pool_t *p)
{
    const char *sp1, *sp2;
    apr_uint64_t seq, origin;

    if (len >= 1 && m[0] == 'L') {
        wake(t, m + 1, len - 1);
        return;
    }
    if (len < 2 || m[0] != 'O' || !(sp1 = memchr(m, ' ', len))
        || !(sp2 = memchr(sp1 + 1, ' ', len - (sp1 + 1 - m)))) {
        return;
    }
    seq = (apr_uint64_t)apr_strtoi64(apr_pstrmemdup(p, m + 1, sp1 - m - 1),
                                     NULL, 10);
    origin = (apr_uint64_t)apr_strtoi64(apr_pstrmemdup(p, sp1 + 1,
                                                       sp2 - sp1 - 1),
                                        NULL, 10);
    if (!op_take(t, seq, origin, sp2 + 1, len - (sp2 + 1 - m), p)) {
        /* One was missed: read them back (this one with them). */
        t->catch_pending = !catch_up(t, p);
    }
}

/* Sleep up to `ms` unless the child stops. */
static void nap(isr_tier_t *t, int ms)
{
    for (; ms > 0 && !t->stop; ms -= 100) {
        apr_sleep(apr_time_from_msec(ms < 100 ? ms : 100));
    }
}

static void *APR_THREAD_FUNC bus_run(apr_thread_t *thd, void *data)
{
    isr_tier_t *t = data;
    redisContext *ctx = NULL;
    redisReply *r;
    apr_pool_t *p;
    const char *why;
    struct pollfd pfd;
    (void)thd;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return NULL;
    }
    while (!t->stop) {
        apr_pool_clear(p);
        if (!ctx) {
            if (!(ctx = connect_to(&t->conf, &why))) {
                nap(t, 1000);
                continue;
            }
            r = redisCommand(ctx, "SUBSCRIBE %s", t->bus);
            if (!reply_ok(r)) {
                if (r) {
                    freeReplyObject(r);
                }
                redisFree(ctx);
                ctx = NULL;
                nap(t, 1000);
                continue;
            }
            freeReplyObject(r);
            t->subscribed = 1;
            /* Whatever landed while nobody listened. */
            wake_all(t);
            t->catch_pending = 1;
        }
        if (t->catch_pending) {
            t->catch_pending = !catch_up(t, p);
        }
        orphans_release(t);
        __atomic_store_n(&t->sh->bus_seen, now_sec(), __ATOMIC_RELAXED);
        r = NULL;
        if (redisGetReplyFromReader(ctx, (void **)&r) != REDIS_OK) {
            goto lost;
        }
        if (!r) {
            pfd.fd = ctx->fd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            if (poll(&pfd, 1, BUS_POLL_MS) <= 0) {
                continue;
            }
            if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
                goto lost;
            }
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
            && r->element[0]->type == REDIS_REPLY_STRING
            && !strcmp(r->element[0]->str, "message")
            && r->element[2]->type == REDIS_REPLY_STRING) {
            message(t, r->element[2]->str, r->element[2]->len, p);
        }
        freeReplyObject(r);
        continue;
    lost:
        t->subscribed = 0;
        if (!t->stop) {
            went_down(t, "the subscription was lost", 0);
        }
        redisFree(ctx);
        ctx = NULL;
        wake_all(t);
        nap(t, 1000);
    }
    t->subscribed = 0;
    if (ctx) {
        redisFree(ctx);
    }
    apr_pool_destroy(p);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------ */

#define REGISTRY_KEY "isr-tier-registry"

/* pconf cleanup: a new generation starts without the old one's tiers. */
static apr_status_t tiers_forget(void *data)
{
    (void)data;
    tiers = NULL;
    ntiers = 0;
    return APR_SUCCESS;
}

apr_status_t isr_tier_setup(isr_zone_t *zone, const isr_tier_conf_t *conf,
                            int restored, server_rec *s, apr_pool_t *pconf)
{
    apr_pool_t *pp = s->process->pool;
    apr_hash_t *reg;
    apr_shm_t *shm;
    isr_tier_t *t, **grown;
    void *data = NULL;
    apr_status_t rv;

    apr_pool_userdata_get(&data, REGISTRY_KEY, pp);
    if (!(reg = data)) {
        reg = apr_hash_make(pp);
        apr_pool_userdata_set(reg, REGISTRY_KEY, apr_pool_cleanup_null, pp);
    }
    if (!(shm = apr_hash_get(reg, zone->name, APR_HASH_KEY_STRING))) {
        if (APR_SUCCESS != (rv = apr_shm_create(&shm, sizeof(tier_shared_t),
                                                NULL, pp))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, ISR_LOGNO(0076)
                         "zone %s: cannot create the shared state of its "
                         "Redis tier", zone->name);
            return rv;
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(tier_shared_t));
        apr_hash_set(reg, apr_pstrdup(pp, zone->name), APR_HASH_KEY_STRING,
                     shm);
    }
    t = apr_pcalloc(pconf, sizeof(*t));
    t->conf = *conf;
    t->zone = zone;
    t->s = s;
    t->sh = apr_shm_baseaddr_get(shm);
    if (restored) {
        /* Counted anew: the zone is not the one `applied` was about. */
        t->sh->restored = 1;
        t->sh->epoch = 0;
    }
    if (!t->sh->server) {
        apr_generate_random_bytes((unsigned char *)&t->sh->server,
                                  sizeof(t->sh->server));
        t->sh->server = (t->sh->server >> 1) | 1;
    }
    t->pre = apr_psprintf(pconf, "isr:{%s}:", zone->name);
    t->bus = apr_psprintf(pconf, "isr:{%s}:bus:%d", zone->name, conf->db);
    zone->tier = t;
    if (!ntiers) {
        apr_pool_cleanup_register(pconf, NULL, tiers_forget,
                                  apr_pool_cleanup_null);
    }
    grown = apr_palloc(pconf, sizeof(*grown) * (ntiers + 1));
    if (ntiers) {
        memcpy(grown, tiers, sizeof(*grown) * ntiers);
    }
    grown[ntiers++] = t;
    tiers = grown;
    return APR_SUCCESS;
}

static apr_status_t tier_stop(void *data)
{
    isr_tier_t *t = data;
    apr_status_t trv;
    int i;

    t->stop = 1;
    for (i = 0; i < WAKE_BUCKETS; i++) {
        if (t->wake[i].mutex) {
            apr_thread_mutex_lock(t->wake[i].mutex);
            apr_thread_cond_broadcast(t->wake[i].cond);
            apr_thread_mutex_unlock(t->wake[i].mutex);
        }
    }
    if (t->thread) {
        apr_thread_join(&trv, t->thread);
        t->thread = NULL;
    }
    for (i = 0; i < t->norphans; i++) {
        free(t->orphans[i].key);
    }
    t->norphans = 0;
    return APR_SUCCESS;
}

void isr_tier_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int i, j;

    for (i = 0; i < ntiers; i++) {
        isr_tier_t *t = tiers[i];

        t->s = s;
        for (j = 0; j < WAKE_BUCKETS; j++) {
            if (apr_thread_mutex_create(&t->wake[j].mutex,
                                        APR_THREAD_MUTEX_DEFAULT, pchild)
                != APR_SUCCESS
                || apr_thread_cond_create(&t->wake[j].cond, pchild)
                   != APR_SUCCESS) {
                t->wake[j].mutex = NULL;
            }
        }
        if (apr_thread_mutex_create(&t->orphan_mx, APR_THREAD_MUTEX_DEFAULT,
                                    pchild) != APR_SUCCESS) {
            t->orphan_mx = NULL;
        }
        rv = apr_reslist_create(&t->conns, 0, 4, CONNS_MAX,
                                apr_time_from_sec(60), conn_make, conn_free,
                                t, pchild);
        if (rv != APR_SUCCESS) {
            t->conns = NULL;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, ISR_LOGNO(0077)
                         "zone %s: no Redis connections in this child",
                         t->zone->name);
            continue;
        }
        apr_reslist_timeout_set(t->conns, t->conf.timeout);
        /* Before the pool's own cleanups (the reslist's, the mutexes'). */
        apr_pool_pre_cleanup_register(pchild, t, tier_stop);
        rv = apr_thread_create(&t->thread, NULL, bus_run, t, pchild);
        if (rv != APR_SUCCESS) {
            t->thread = NULL;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, ISR_LOGNO(0080)
                         "zone %s: cannot start the Redis bus thread",
                         t->zone->name);
        }
    }
}

/* ---- reports -------------------------------------------------------- */

/* A child of this server listened to the bus in the last two seconds. */
static int connected(const isr_tier_t *t)
{
    apr_uint32_t seen = __atomic_load_n(&t->sh->bus_seen, __ATOMIC_RELAXED);

    return seen && now_sec() - seen <= 2;
}

const char *isr_tier_json(const isr_zone_t *zone, apr_pool_t *p)
{
    const isr_tier_t *t = zone->tier;
    const char *s;
    int i;

    if (!t) {
        return NULL;
    }
    s = apr_psprintf(p, "{\"server\":\"%s:%d/%d\",\"connected\":%s,"
                     "\"applied_seq\":%" APR_UINT64_T_FMT, t->conf.host,
                     (int)t->conf.port, t->conf.db,
                     connected(t) ? "true" : "false",
                     __atomic_load_n(&t->sh->applied, __ATOMIC_RELAXED));
    for (i = 0; i < T_COUNT; i++) {
        s = apr_psprintf(p, "%s,\"%s\":%" APR_UINT64_T_FMT, s, stat_names[i],
                         __atomic_load_n(&t->sh->counts[i],
                                         __ATOMIC_RELAXED));
    }
    return apr_pstrcat(p, s, "}", NULL);
}

static const char *const stat_help[T_COUNT] = {
    "Lookups in Redis (local misses and refreshes).",
    "Lookups that found an entry in Redis.",
    "Entries written to Redis.",
    "Writes Redis refused (lease lost, or an operation since the fetch).",
    "Cluster leases taken (this server fetches).",
    "Cluster leases another server held (this one waited).",
    "Waits for another server's fetch.",
    "Redis calls that failed or timed out, and bad entries.",
    "Calls not made: Redis failed a moment ago, or no connection free.",
    "Purges and revalidations sent to the other servers.",
    "Purges and revalidations of other servers applied here.",
    "Reconnections that read missed operations back.",
    "Times the whole zone was made stale (missed operations).",
};

int isr_tier_metric(const isr_zone_t *zone, int i, const char **name,
                    const char **help, int *counter, apr_uint64_t *value)
{
    const isr_tier_t *t = zone->tier;

    if (!t || i < 0 || i >= ISR_TIER_METRICS) {
        return 0;
    }
    if (i == 0) {
        *name = "connected";
        *help = "1 when a child of this server listens to the Redis bus.";
        *counter = 0;
        *value = (apr_uint64_t)connected(t);
    }
    else if (i == 1) {
        *name = "applied_seq";
        *help = "The last cluster operation applied to this server's zone.";
        *counter = 0;
        *value = __atomic_load_n(&t->sh->applied, __ATOMIC_RELAXED);
    }
    else {
        *name = stat_names[i - 2];
        *help = stat_help[i - 2];
        *counter = 1;
        *value = __atomic_load_n(&t->sh->counts[i - 2], __ATOMIC_RELAXED);
    }
    return 1;
}
