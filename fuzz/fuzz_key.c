/* libFuzzer target: the cache key codec (src/isr_ctx.c). Arbitrary bytes
 * given to isr_ctx_parse must never crash it; a key that parses must
 * rebuild to the same bytes (the key is the context, both ways); contexts
 * built from the input round-trip, and the URL cleaners leave only safe
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>

#include "../src/isr_ctx.c"

static apr_pool_t *root;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    isr_ctx_t ctx, back;
    apr_array_header_t *h;
    const char *key, *key2, *clean, *s;
    apr_size_t klen, klen2, alen;
    char *text, *f, *save = NULL;
    int i;

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);

    /* 1. Parse anything; what parses rebuilds byte for byte. */
    if (isr_ctx_parse(p, (const char *)data, size, &ctx) == APR_SUCCESS) {
        key = isr_ctx_key(p, &ctx, &klen);
        if (klen != size || memcmp(key, data, size)) {
            abort();
        }
    }

    /* 2. Build a context from newline-separated fields, round-trip it. */
    text = apr_pstrmemdup(p, (const char *)data, size);
    for (s = text; s < text + size; s++) {
        if (!*s) {
            text[s - text] = 'x';      /* fields are C strings */
        }
    }
    h = apr_array_make(p, 4, sizeof(const char *));
    memset(&ctx, 0, sizeof(ctx));
    ctx.url = "http://h/";
    for (i = 0, f = apr_strtok(text, "\n", &save); f;
         i++, f = apr_strtok(NULL, "\n", &save)) {
        if (i == 0) {
            ctx.url = f;
        }
        else if (i == 1) {
            ctx.unix_path = *f ? f : NULL;
        }
        else if (i == 2 && *f == '=') {
            ctx.extra = f + 1;
        }
        else if (strchr(f, ':')) {
            APR_ARRAY_PUSH(h, const char *) = f;
        }
    }
    ctx.headers = h;
    key = isr_ctx_key(p, &ctx, &klen);
    if (isr_ctx_parse(p, key, klen, &back) != APR_SUCCESS) {
        abort();
    }
    key2 = isr_ctx_key(p, &back, &klen2);
    if (klen2 != klen || memcmp(key, key2, klen)) {
        abort();
    }

    /* 3. Cleaned URLs and encoded values hold only what may be sent. */
    clean = isr_ctx_url_clean(p, text);
    for (s = clean; *s; s++) {
        if (!url_safe((unsigned char)*s)) {
            abort();
        }
    }
    clean = isr_ctx_urlencode(p, text);
    for (s = clean; *s; s++) {
        if (!unreserved((unsigned char)*s) && *s != '%') {
            abort();
        }
    }
    if ((s = isr_ctx_authority(text, NULL, &alen)) != NULL
        && (s < text || s + alen > text + strlen(text))) {
        abort();
    }
    apr_pool_destroy(p);
    return 0;
}
