/* Review of 9ffdf90 (issue 8 part 1): failing cases of src/isr_policy.c.
 * Build and run: make -C tests/unit review_policy
 * Prints "N passed, M failed"; exits 1 on any failure. */
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "isr_policy.h"
#include "heads.h"

static int failed, passed;

#define CHECK(cond) do {                                                     \
    if (!(cond)) {                                                           \
        printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
        failed++;                                                            \
    }                                                                        \
    else {                                                                   \
        passed++;                                                            \
    }                                                                        \
} while (0)

/* RFC 9111 5.1: a list-based Age field: a cache SHOULD use the first member
 * (age_of() ignores the whole field, so the answer counts as brand new). */
static void case_age_list(apr_pool_t *p)
{
    isr_policy_t pol;

    policy(p, "Age: 100, 200\n", &pol);
    CHECK(pol.age == 100);
}

/* Only FIELD_LINES (16) lines of Cache-Control are read: a no-cache (or
 * must-revalidate, or a targeted no-store) on the 17th line was dropped.
 * Fixed: a Cache-Control of more lines is not stored at all, a targeted
 * field of more lines is ignored (Cache-Control decides). */
static void case_many_lines(apr_pool_t *p)
{
    isr_policy_t pol;
    char *lines = "";
    int i;

    for (i = 0; i < 16; i++) {
        lines = apr_pstrcat(p, lines, "Cache-Control: max-age=60\n", NULL);
    }
    policy(p, apr_pstrcat(p, lines, "Cache-Control: no-cache\n", NULL), &pol);
    CHECK(pol.no_store == 1);
    lines = "";
    for (i = 0; i < 16; i++) {
        lines = apr_pstrcat(p, lines, "CDN-Cache-Control: max-age=60\n", NULL);
    }
    policy(p, apr_pstrcat(p, lines, "CDN-Cache-Control: no-store\n"
                                     "Cache-Control: private\n", NULL), &pol);
    CHECK(!pol.targeted && pol.private_ == 1);
}

/* s-maxage carries proxy-revalidate (RFC 9111 5.2.2.10, 4.2.4): no stale
 * serving, as for "proxy-revalidate, stale-while-revalidate=30", in Strict
 * mode. On mode honours an explicit stale-while-revalidate with s-maxage
 * (what Next.js sends for ISR pages), by design. */
static void case_smaxage_swr(apr_pool_t *p)
{
    isr_policy_conf_t on = { ISR_CC_STRICT, apr_time_from_sec(60),
                             apr_time_from_sec(30) };
    isr_policy_conf_t on_mode = { ISR_CC_ON, apr_time_from_sec(60),
                                  apr_time_from_sec(30) };
    apr_time_t now = apr_time_from_sec(1800000000);
    isr_policy_t pol;
    isr_times_t t;

    policy(p, "Cache-Control: proxy-revalidate, max-age=1, "
              "stale-while-revalidate=30, stale-if-error=30\n", &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.swr_until == t.fresh_until && t.sie_until == t.fresh_until);
    policy(p, "Cache-Control: s-maxage=1, stale-while-revalidate=30, "
              "stale-if-error=30\n", &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.swr_until == t.fresh_until);
    CHECK(t.sie_until == t.fresh_until);
    isr_policy_times(&pol, &on_mode, now, now, &t);
    CHECK(t.swr_until == t.fresh_until + apr_time_from_sec(30));
}

/* A 304 straight from the origin (a current Date, no Age) renews an answer
 * that came through an upstream cache (Age: 30 > max-age=10): the merged
 * head keeps "Age: 30", so the renewed entry is born stale again. */
static void case_update_keeps_old_age(apr_pool_t *p)
{
    isr_policy_conf_t on = { ISR_CC_ON, apr_time_from_sec(60), 0 };
    apr_time_t now = apr_time_from_sec(1800000000);
    const char *s, *f, *m;
    apr_size_t sl, fl, ml;
    isr_policy_t pol;
    isr_times_t t;

    sl = blob(p, "Cache-Control: max-age=10, must-revalidate\nAge: 30\n"
                 "ETag: \"g\"\n", &s);
    fl = blob(p, "ETag: \"g\"\n", &f);
    isr_policy_update(p, s, sl, f, fl, &m, &ml);
    isr_policy_read(m, ml, &pol);
    isr_policy_times(&pol, &on, now, now, &t);
    CHECK(t.fresh_until > now);
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    printf("age_list\n");
    case_age_list(p);
    printf("many_lines\n");
    case_many_lines(p);
    printf("smaxage_swr\n");
    case_smaxage_swr(p);
    printf("update_keeps_old_age\n");
    case_update_keeps_old_age(p);
    printf("%d passed, %d failed\n", passed, failed);
    apr_pool_destroy(p);
    apr_terminate();
    return failed ? 1 : 0;
}
