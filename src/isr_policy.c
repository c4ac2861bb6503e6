/* Freshness, stale windows, validators and 304 updates (see
 * include/isr_policy.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_date.h>

#include "isr_http.h"
#include "isr_policy.h"

/* Lines of one field considered (more are ignored). */
#define FIELD_LINES 16

typedef struct {
    const char *v[FIELD_LINES];
    int n;
    int over;                   /* more lines than that */
} lines_t;

static void lines_add(lines_t *l, const char *value)
{
    if (l->n < FIELD_LINES) {
        l->v[l->n++] = value;
    }
    else {
        l->over = 1;
    }
}

static int ows(int c)
{
    return c == ' ' || c == '\t';
}

#define tchar isr_http_is_tchar

/* One Cache-Control directive: name, and the value without quotes. */
typedef struct {
    const char *name, *val;
    apr_size_t nlen, vlen;
    int has_val, quoted;
} dir_t;

/* The next directive of a list from *s on: 1 with d set, 0 at the end, -1
 * on a syntax error (the caller may then ignore the whole field). */
static int dir_next(const char **ps, dir_t *d)
{
    const char *s = *ps;

    memset(d, 0, sizeof(*d));
    while (ows(*s) || *s == ',') {
        s++;
    }
    if (!*s) {
        return 0;
    }
    d->name = s;
    while (tchar((unsigned char)*s)) {
        s++;
    }
    d->nlen = s - d->name;
    if (!d->nlen) {
        return -1;
    }
    while (ows(*s)) {
        s++;
    }
    if (*s == '=') {
        s++;
        while (ows(*s)) {
            s++;
        }
        d->has_val = 1;
        if (*s == '"') {
            d->quoted = 1;
            d->val = ++s;
            while (*s && *s != '"') {
                s += (*s == '\\' && s[1]) ? 2 : 1;
            }
            d->vlen = s - d->val;
            if (*s != '"') {
                return -1;
            }
            s++;
        }
        else {
            d->val = s;
            while (tchar((unsigned char)*s)) {
                s++;
            }
            d->vlen = s - d->val;
        }
        while (ows(*s)) {
            s++;
        }
    }
    if (*s && *s != ',') {
        return -1;
    }
    *ps = s;
    return 1;
}

static int dir_is(const dir_t *d, const char *name)
{
    return strlen(name) == d->nlen && !strncasecmp(d->name, name, d->nlen);
}

/* delta-seconds: digits only; overflow counts as ISR_POLICY_DELTA_MAX;
 * anything else is invalid (-1). */
static apr_int64_t delta(const char *v, apr_size_t n)
{
    apr_int64_t x = 0;
    apr_size_t i;

    if (!n) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(v[i])) {
            return -1;
        }
        if (x < ISR_POLICY_DELTA_MAX) {
            x = x * 10 + (v[i] - '0');
        }
    }
    return x < ISR_POLICY_DELTA_MAX ? x : ISR_POLICY_DELTA_MAX;
}

/* Whether d is a valid member of a Structured Field dictionary (RFC 8941
 * 3.2) as RFC 9213 reads it: a lower-case key, and an integer where the
 * directive takes delta-seconds. */
static int sf_ok(const dir_t *d)
{
    static const char *const numeric[] = {
        "max-age", "s-maxage", "stale-while-revalidate", "stale-if-error",
        NULL
    };
    apr_size_t i;
    int j;

    if (!apr_islower(d->name[0]) && d->name[0] != '*') {
        return 0;
    }
    for (i = 1; i < d->nlen; i++) {
        if (!apr_islower(d->name[i]) && !apr_isdigit(d->name[i])
            && !strchr("_-.*", d->name[i])) {
            return 0;
        }
    }
    for (j = 0; numeric[j]; j++) {
        if (dir_is(d, numeric[j])) {
            return !d->has_val || (!d->quoted && delta(d->val, d->vlen) >= 0);
        }
    }
    return 1;
}

/* A field's lines as one policy: 1 when every line parsed (and, for a
 * targeted field, sf: is a valid Structured Field), 0 otherwise. */
static int read_cc(const lines_t *l, isr_policy_t *pol, int sf)
{
    apr_int64_t smax = -1, max = -1, n;
    const char *s;
    dir_t d;
    int i, r, any = 0, bad = l->over;

    for (i = 0; i < l->n; i++) {
        for (s = l->v[i]; (r = dir_next(&s, &d)) > 0; any = 1) {
            n = d.has_val ? delta(d.val, d.vlen) : -1;
            bad |= sf && !sf_ok(&d);
            if (dir_is(&d, "no-store")) {
                pol->no_store = 1;
            }
            else if (dir_is(&d, "private")) {
                pol->private_ = 1;
            }
            else if (dir_is(&d, "no-cache")) {
                pol->no_cache = 1;
            }
            else if (dir_is(&d, "must-revalidate")
                     || dir_is(&d, "proxy-revalidate")) {
                pol->must_revalidate = 1;
            }
            else if (dir_is(&d, "public")) {
                pol->public_ = 1;
            }
            else if (dir_is(&d, "s-maxage")) {
                /* The first occurrence counts; an invalid value makes the
                 * response stale (RFC 9111 4.2.1). */
                if (smax < 0) {
                    smax = n < 0 ? 0 : n;
                }
            }
            else if (dir_is(&d, "max-age")) {
                if (max < 0) {
                    max = n < 0 ? 0 : n;
                }
            }
            else if (dir_is(&d, "stale-while-revalidate")) {
                if (pol->swr < 0 && n >= 0) {
                    pol->swr = n;
                }
            }
            else if (dir_is(&d, "stale-if-error")) {
                if (pol->sie < 0 && n >= 0) {
                    pol->sie = n;
                }
            }
        }
        bad |= r < 0;
    }
    pol->smaxage = smax >= 0;
    pol->lifetime = smax >= 0 ? smax : max;
    return any && !bad;
}

int isr_policy_is_targeted(const char *name)
{
    return !strcasecmp(name, ISR_POLICY_TARGETED)
           || !strcasecmp(name, "CDN-Cache-Control");
}

/* Age: a non-negative integer, the first member when the line is a list;
 * anything else is ignored (0). */
static apr_int64_t age_of(const char *v)
{
    const char *t;
    apr_int64_t n;

    while (ows(*v)) {
        v++;
    }
    for (t = v; apr_isdigit(*t); t++) {
    }
    n = delta(v, t - v);
    while (ows(*t)) {
        t++;
    }
    return (*t && *t != ',') || n < 0 ? 0 : n;
}

/* An HTTP-date (RFC 9110 5.6.7) in one of its three forms, GMT only: a
 * date that is not one (a "UTC", a missing comma) is invalid, which for
 * Expires means already expired. 0 when invalid. */
static apr_time_t http_date(const char *v)
{
    const char *c;

    if (!apr_date_checkmask(v, "@$$, ## @$$ #### ##:##:## GMT")
        && !apr_date_checkmask(v, "@$$ @$$ ~# ##:##:## ####")
        && !((c = strchr(v, ',')) && c - v >= 6 && c - v <= 9
             && apr_date_checkmask(c, ", ##-@$$-## ##:##:## GMT"))) {
        return 0;
    }
    return apr_date_parse_http(v);
}

void isr_policy_read(const char *headers, apr_size_t hdrlen,
                     isr_policy_t *pol)
{
    lines_t cc = { { 0 }, 0, 0 }, isr = { { 0 }, 0, 0 }, cdn = { { 0 }, 0, 0 };
    const char *name, *value, *expires = NULL;
    int expires_seen = 0, age_seen = 0;
    isr_http_walk_t w = { headers, headers + hdrlen };
    isr_policy_t t;

    memset(pol, 0, sizeof(*pol));
    pol->lifetime = pol->swr = pol->sie = -1;
    while (isr_http_walk(&w, &name, &value)) {
        if (!strcasecmp(name, "Cache-Control")) {
            lines_add(&cc, value);
        }
        else if (!strcasecmp(name, ISR_POLICY_TARGETED)) {
            lines_add(&isr, value);
        }
        else if (!strcasecmp(name, "CDN-Cache-Control")) {
            lines_add(&cdn, value);
        }
        else if (!strcasecmp(name, "Expires")) {
            if (!expires_seen++) {
                expires = value;
            }
        }
        else if (!strcasecmp(name, "Date")) {
            if (!pol->date) {
                pol->date = http_date(value);
            }
        }
        else if (!strcasecmp(name, "Age")) {
            if (!age_seen++) {
                pol->age = age_of(value);
            }
        }
        else if (!strcasecmp(name, "Last-Modified")) {
            if (!pol->last_modified_str) {
                pol->last_modified_str = value;
                pol->last_modified = http_date(value);
            }
        }
        else if (!strcasecmp(name, "ETag")) {
            if (!pol->etag && *value) {
                pol->etag = value;
            }
        }
        else if (!strcasecmp(name, "Set-Cookie")
                 || !strcasecmp(name, "Set-Cookie2")) {
            pol->set_cookie = 1;
        }
    }
    /* RFC 9213: the first targeted field with a valid, non-empty value
     * decides, and Cache-Control and Expires are then ignored. */
    t = *pol;
    if (isr.n && read_cc(&isr, &t, 1)) {
        t.targeted = 1;
        *pol = t;
        return;
    }
    t = *pol;
    if (cdn.n && read_cc(&cdn, &t, 1)) {
        t.targeted = 1;
        *pol = t;
        return;
    }
    (void)read_cc(&cc, pol, 0);
    if (cc.over) {
        /* Not all of it was read: whatever it said, do not store. */
        pol->no_store = 1;
    }
    if (pol->lifetime < 0 && expires) {
        /* An invalid Expires (such as "0") means already expired; a valid
         * one counts from Date, or from the response time without one. */
        if (!(pol->expires = http_date(expires))) {
            pol->lifetime = 0;
        }
    }
}

int isr_policy_explicit(const isr_policy_t *pol)
{
    return pol->lifetime > 0 || pol->expires || pol->public_;
}

static apr_time_t later(apr_time_t a, apr_time_t b)
{
    return a > b ? a : b;
}

/* Heuristic freshness (RFC 9111 4.2.2): a tenth of the time since
 * Last-Modified, at most a day. */
static apr_int64_t heuristic(const isr_policy_t *pol, apr_time_t response_time)
{
    apr_time_t ref = pol->date ? pol->date : response_time;

    if (!pol->last_modified || pol->last_modified >= ref) {
        return 0;
    }
    return apr_time_sec(ref - pol->last_modified) / 10 < 86400
           ? apr_time_sec(ref - pol->last_modified) / 10 : 86400;
}

void isr_policy_times(const isr_policy_t *pol, const isr_policy_conf_t *pc,
                      apr_time_t request_time, apr_time_t response_time,
                      isr_times_t *t)
{
    apr_time_t apparent = 0, corrected, last;
    apr_interval_time_t delay = response_time - request_time;
    apr_int64_t life = pol->lifetime, swr, sie;
    int dflt;

    memset(t, 0, sizeof(*t));
    t->uncacheable = pol->no_store || pol->private_ || pol->set_cookie;
    if (pc->mode == ISR_CC_OFF) {
        t->born = response_time;
        t->fresh_until = response_time + pc->ttl;
        t->swr_until = t->sie_until = t->fresh_until + pc->stale_ttl;
        goto keep;
    }
    /* RFC 9111 4.2.3. Date has whole seconds: an apparent age of up to a
     * second is its rounding, not time spent elsewhere. */
    if (pol->date && response_time - pol->date > apr_time_from_sec(1)) {
        apparent = response_time - pol->date;
    }
    corrected = apr_time_from_sec(pol->age) + (delay > 0 ? delay : 0);
    t->born = response_time - later(apparent, corrected);
    if (life < 0 && pol->expires) {
        apr_time_t ref = pol->date ? pol->date : response_time;

        life = pol->expires > ref ? apr_time_sec(pol->expires - ref) : 0;
    }
    dflt = life < 0;
    if (dflt) {
        life = pc->mode == ISR_CC_ON ? apr_time_sec(pc->ttl)
                                     : heuristic(pol, response_time);
    }
    if (pol->no_cache) {
        life = 0;
    }
    t->fresh_until = (dflt && pc->mode == ISR_CC_ON && !pol->no_cache)
                     ? response_time + pc->ttl
                     : t->born + apr_time_from_sec(life);
    /* The stale windows: none when the origin asks for revalidation; the
     * origin's own where it gives them; otherwise ISRStaleTTL in On mode
     * (but after s-maxage, which implies proxy-revalidate) and none in
     * Strict mode. */
    if (pol->no_cache || pol->must_revalidate
        || (pol->smaxage && pc->mode == ISR_CC_STRICT)) {
        /* s-maxage implies proxy-revalidate (RFC 9111 5.2.2.10). On mode
         * still honours an explicit stale-while-revalidate with it, as
         * CDNs do: "s-maxage=N, stale-while-revalidate" is what Next.js
         * sends for ISR pages. */
        swr = sie = 0;
    }
    else {
        apr_int64_t def = pc->mode == ISR_CC_ON && !pol->smaxage
                          ? apr_time_sec(pc->stale_ttl) : 0;

        swr = pol->swr >= 0 ? pol->swr : def;
        sie = pol->sie >= 0 ? pol->sie : def;
    }
    t->swr_until = t->fresh_until + apr_time_from_sec(swr);
    t->sie_until = t->fresh_until + apr_time_from_sec(sie);
keep:
    /* Kept beyond its windows: with a validator, so that the next request
     * revalidates it instead of fetching it whole; in On and Strict modes
     * also for a request's max-stale (RFC 9111 5.2.1.2). */
    last = later(t->fresh_until, later(t->swr_until, t->sie_until));
    t->keep_until = (pol->etag || pol->last_modified_str
                     || pc->mode != ISR_CC_OFF) ? last + ISR_POLICY_KEEP : last;
}

/* Fields a 304 does not update: they describe the stored body's bytes. */
static int kept_in_304(const char *name)
{
    return !strcasecmp(name, "Content-Length")
           || !strcasecmp(name, "Content-Encoding");
}

void isr_policy_update(apr_pool_t *p, const char *stored, apr_size_t slen,
                       const char *fresh, apr_size_t flen,
                       const char **out, apr_size_t *olen)
{
    isr_http_walk_t w = { stored, stored + slen }, f;
    const char *name, *value, *fn, *fv;
    apr_size_t len = 0, nl, vl;
    char *blob, *o;
    int pass, replaced;

    /* Two passes: the length, then the copy. Stored lines whose name the
     * 304 carries go, and the stored Age (it was the age of the first
     * answer, not of this one); then every line of the 304 but
     * Content-Length and Content-Encoding. */
    for (pass = 0; pass < 2; pass++) {
        o = blob = pass ? apr_palloc(p, len + 1) : NULL;
        w.h = stored;
        while (isr_http_walk(&w, &name, &value)) {
            replaced = !strcasecmp(name, "Age");
            f.h = fresh;
            f.end = fresh + flen;
            while (!replaced && isr_http_walk(&f, &fn, &fv)) {
                replaced = !strcasecmp(fn, name) && !kept_in_304(fn);
            }
            if (replaced) {
                continue;
            }
            nl = strlen(name) + 1;
            vl = strlen(value) + 1;
            if (pass) {
                memcpy(o, name, nl);
                memcpy(o + nl, value, vl);
                o += nl + vl;
            }
            else {
                len += nl + vl;
            }
        }
        f.h = fresh;
        f.end = fresh + flen;
        while (isr_http_walk(&f, &fn, &fv)) {
            if (kept_in_304(fn)) {
                continue;
            }
            nl = strlen(fn) + 1;
            vl = strlen(fv) + 1;
            if (pass) {
                memcpy(o, fn, nl);
                memcpy(o + nl, fv, vl);
                o += nl + vl;
            }
            else {
                len += nl + vl;
            }
        }
    }
    *out = blob;
    *olen = len;
}

void isr_policy_request(const char *cc, const char *pragma,
                        isr_policy_req_t *out)
{
    const char *s = cc;
    apr_int64_t n;
    dir_t d;

    memset(out, 0, sizeof(*out));
    out->max_age = out->min_fresh = out->max_stale = -1;
    while (s && dir_next(&s, &d) > 0) {
        n = d.has_val ? delta(d.val, d.vlen) : -1;
        if (dir_is(&d, "no-cache")) {
            out->no_cache = 1;
        }
        else if (dir_is(&d, "no-store")) {
            out->no_store = 1;
        }
        else if (dir_is(&d, "only-if-cached")) {
            out->only_if_cached = 1;
        }
        else if (dir_is(&d, "max-age") && n >= 0 && out->max_age < 0) {
            out->max_age = n;
        }
        else if (dir_is(&d, "min-fresh") && n >= 0 && out->min_fresh < 0) {
            out->min_fresh = n;
        }
        else if (dir_is(&d, "max-stale") && out->max_stale < 0) {
            out->max_stale = d.has_val ? (n >= 0 ? n : 0)
                                       : ISR_POLICY_DELTA_MAX;
        }
    }
    /* RFC 9111 5.4: Pragma: no-cache counts only without Cache-Control. */
    if (!cc && pragma) {
        for (s = pragma; dir_next(&s, &d) > 0;) {
            out->no_cache |= dir_is(&d, "no-cache");
        }
    }
    out->any = out->no_cache || out->no_store || out->only_if_cached
               || out->max_age >= 0 || out->min_fresh >= 0
               || out->max_stale >= 0;
}
