/* Stored heads for the policy cases (test_http.c, review_policy.c). */
#ifndef ISR_UNIT_HEADS_H
#define ISR_UNIT_HEADS_H

#include <string.h>
#include <apr_pools.h>
#include "isr_policy.h"

/* "Name: value\n" lines as a stored head ("name\0value\0" pairs). */
static apr_size_t blob(apr_pool_t *p, const char *lines, const char **out)
{
    char *b = apr_palloc(p, strlen(lines) + 1), *w = b;
    const char *s, *nl, *c;

    for (s = lines; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        c = strstr(s, ": ");
        memcpy(w, s, c - s);
        w += c - s;
        *w++ = '\0';
        memcpy(w, c + 2, nl - (c + 2));
        w += nl - (c + 2);
        *w++ = '\0';
    }
    *out = b;
    return w - b;
}

static void policy(apr_pool_t *p, const char *lines, isr_policy_t *pol)
{
    const char *b;
    apr_size_t n = blob(p, lines, &b);

    isr_policy_read(b, n, pol);
}

#endif /* ISR_UNIT_HEADS_H */
