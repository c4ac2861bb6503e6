/* libFuzzer target: compress once (src/isr_compress.c). Two things come
 * from outside and are read here: a backend body that says it is gzip or
 * br (decoded at store time: a zip bomb must stop at the size limit, bad
 * data must be refused, never half used), and the alternates block of a
 * record in shared memory (every length bounds-checked before a hit uses
 * it).
 *
 * Each input is   mode (1) | limit (2, LE) | bytes
 *   mode & 3 == 0: bytes are a gzip body, 1: a br body (Content-Encoding
 *   set, decoded into at most `limit` bytes), 2: an identity text/html body
 *   (compressed, then its copies decoded and compared), 3: bytes are an
 *   alternates block, read with isr_compress_alt/choose/varies with the
 *   Accept-Encoding values below.
 * Checks: a DONE value has a well-formed block whose copies decode to the
 * identity body byte for byte; an UNDECODED one is left as it came.
 */
#include "../src/isr_compress.c"
#include "../src/isr_http.c"

#include <stdint.h>
#include <stdlib.h>
#include <apr_general.h>

static apr_pool_t *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        abort();
    }
    return 0;
}

static void check_copy(const isr_value_t *v, int coding)
{
    const char *b;
    apr_size_t l;
    char *out;

    if (!isr_compress_alt(v->alts, v->altlen, coding, &b, &l)) {
        return;
    }
    if (coding == ISR_CODING_GZIP) {
        if (!gzip_decode(pool, b, l, v->bodylen, &out, &l)) {
            abort();
        }
    }
    else if (!br_decode(pool, b, l, v->bodylen, &out, &l)) {
        abort();
    }
    if (l != v->bodylen || memcmp(out, v->body, l)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const accepts[] = {
        "gzip, br", "gzip", "br;q=0, gzip", "*", "*;q=0", "identity",
        "gzip;q=0.5, br;q=0.4, identity;q=0.6", ""
    };
    static const char ce_gzip[] = "Content-Type\0text/html\0"
                                  "Content-Encoding\0gzip";
    static const char ce_br[] = "Content-Type\0text/html\0"
                                "Content-Encoding\0br";
    static const char plain[] = "Content-Type\0text/html";
    isr_compress_conf_t conf;
    isr_value_t v;
    apr_size_t limit, n;
    const char *b;
    apr_size_t l;
    unsigned i;
    int mode;

    if (size < 3) {
        return 0;
    }
    mode = data[0] & 3;
    limit = (apr_size_t)data[1] | ((apr_size_t)data[2] << 8);
    data += 3;
    n = size - 3;
    memset(&conf, 0, sizeof(conf));
    conf.level[ISR_CODING_IDENTITY] = -1;
    conf.level[ISR_CODING_GZIP] = 1 + (data[-3] >> 4) % 9;
    conf.level[ISR_CODING_BR] = (data[-3] >> 2) & 3 ? 4 : -1;
    conf.min_size = 16;

    if (mode == 3) {
        for (i = 0; i < sizeof(accepts) / sizeof(accepts[0]); i++) {
            int c = isr_compress_choose(&conf, (const char *)data, n,
                                        accepts[i]);

            if (c != ISR_CODING_IDENTITY
                && !isr_compress_alt((const char *)data, n, c, &b, &l)) {
                abort();
            }
            if (c != ISR_CODING_IDENTITY
                && (b < (const char *)data || b + l > (const char *)data + n)) {
                abort();
            }
        }
        (void)isr_compress_varies(&conf, (const char *)data, n);
        return 0;
    }
    memset(&v, 0, sizeof(v));
    v.status = 200;
    v.headers = mode == 0 ? ce_gzip : mode == 1 ? ce_br : plain;
    v.hdrlen = mode == 0 ? sizeof(ce_gzip) : mode == 1 ? sizeof(ce_br)
                                                         : sizeof(plain);
    v.body = n ? apr_pmemdup(pool, data, n) : "";
    v.bodylen = n;
    switch (isr_compress_value(pool, &conf, limit, &v)) {
    case ISR_COMPRESS_UNDECODED:
        if (v.alts || v.bodylen != n || (n && memcmp(v.body, data, n))) {
            abort();
        }
        break;
    case ISR_COMPRESS_DONE:
        if (!isr_compress_alts_valid(v.alts, v.altlen)
            || (mode != 2 && v.bodylen > limit)) {
            abort();
        }
        check_copy(&v, ISR_CODING_GZIP);
        check_copy(&v, ISR_CODING_BR);
        break;
    default:
        if (n) {
            abort();    /* in scope: never NONE */
        }
        break;
    }
    apr_pool_clear(pool);
    return 0;
}
