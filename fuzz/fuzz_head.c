/* libFuzzer target: backend response heads (src/isr_http.c) as libcurl hands
 * them over, one header-callback line at a time. Whatever the bytes, the
 * parser must not crash, and a head it accepts must be one httpd would send:
 * header names are tokens, values hold no CR, LF, NUL or other control byte
 * but HTAB, and no hop-by-hop or Content-Length header is kept. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_general.h>
#include <apr_pools.h>

#include "../src/isr_http.c"

static apr_pool_t *root;

static void check_blob(const char *b, apr_size_t len)
{
    const char *end = b + len, *name, *value, *c;

    while (b < end) {
        name = b;
        value = memchr(name, '\0', end - name);
        if (!value || value == name) {
            abort();
        }
        value++;
        b = memchr(value, '\0', end - value);
        if (!b) {
            abort();
        }
        b++;
        for (c = name; *c; c++) {
            if (!is_tchar((unsigned char)*c)) {
                abort();
            }
        }
        for (c = value; *c; c++) {
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
                abort();
            }
        }
        if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Connection")
            || !strcasecmp(name, "Transfer-Encoding")) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    isr_http_head_t *h;
    isr_http_result_t res;
    const char *s = (const char *)data, *end = s + size, *nl;
    int storable;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    h = isr_http_head_make(p);
    /* Lines end at LF, as libcurl splits them. */
    while (s < end) {
        nl = memchr(s, '\n', end - s);
        nl = nl ? nl + 1 : end;
        isr_http_head_line(h, s, nl - s);
        s = nl;
    }
    if (isr_http_head_finish(h, p, &res) == APR_SUCCESS) {
        if (res.error || (res.hdrlen && !res.headers)) {
            abort();
        }
        check_blob(res.headers, res.hdrlen);
    }
    else if (!res.error) {
        abort();
    }
    storable = isr_http_storable(NULL, (int)(size % 700), res.explicit_fresh);
    if (storable && (size % 700 >= 500 && size % 700 != 501)) {
        abort();
    }
    apr_pool_destroy(p);
    return 0;
}
