/* Compress once (see include/isr_compress.h). zlib and libbrotli do the
 * coding; this file decides what to make, bounds it, and lays out and
 * reads the alternates block. */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <zlib.h>
#include <brotli/encode.h>
#include <brotli/decode.h>

#include "isr_compress.h"

/* A copy is kept only when it saves at least 1/SAVE_DIV of the body. */
#define SAVE_DIV 20
#define ALT_MAX  (ISR_CODINGS - 1)

static const char *const coding_names[ISR_CODINGS] = {
    "identity", "gzip", "br"
};

static const char *const default_types[] = {
    "text/*", "application/json", "application/javascript",
    "application/xml", "image/svg+xml", NULL
};

int isr_compress_on(const isr_compress_conf_t *conf)
{
    return conf && (conf->level[ISR_CODING_GZIP] >= 0
                    || conf->level[ISR_CODING_BR] >= 0);
}

const char *isr_compress_name(int coding)
{
    return coding >= 0 && coding < ISR_CODINGS ? coding_names[coding]
                                               : "identity";
}

/* Whether the media type [t, t + n) matches pattern ("a/b" or "a/" "*"). */
static int type_match(const char *pattern, const char *t, apr_size_t n)
{
    apr_size_t pl = strlen(pattern);

    if (pl >= 2 && pattern[pl - 1] == '*' && pattern[pl - 2] == '/') {
        return n >= pl - 1 && !strncasecmp(t, pattern, pl - 1);
    }
    return n == pl && !strncasecmp(t, pattern, n);
}

int isr_compress_type(const isr_compress_conf_t *conf, const char *ctype)
{
    const char *t = ctype, *e;
    int i;

    while (*t == ' ' || *t == '\t') {
        t++;
    }
    for (e = t; *e && *e != ';' && *e != ' ' && *e != '\t'; e++) {
    }
    if (e == t) {
        return 0;
    }
    if (!conf->types) {
        for (i = 0; default_types[i]; i++) {
            if (type_match(default_types[i], t, e - t)) {
                return 1;
            }
        }
        return 0;
    }
    for (i = 0; i < conf->types->nelts; i++) {
        if (type_match(APR_ARRAY_IDX(conf->types, i, const char *), t,
                       e - t)) {
            return 1;
        }
    }
    return 0;
}

/* ---- coding ------------------------------------------------------------- */

/* gzip of [in, in + n) into at most `room` bytes: the length, or 0 when it
 * does not fit (it would not save enough) or zlib fails. */
static apr_size_t gzip_encode(const char *in, apr_size_t n, int level,
                              char *out, apr_size_t room)
{
    z_stream zs;
    apr_size_t len = 0;

    if (n > UINT_MAX || room > UINT_MAX) {
        return 0;
    }
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip wrapper; memLevel 8 as zlib's default. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        != Z_OK) {
        return 0;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)room;
    if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
        len = zs.total_out;
    }
    deflateEnd(&zs);
    return len;
}

static apr_size_t br_encode(const char *in, apr_size_t n, int level,
                            char *out, apr_size_t room)
{
    size_t len = room;
    int lgwin = BROTLI_MIN_WINDOW_BITS;

    /* The window no larger than the body: memory follows the body. */
    while (lgwin < BROTLI_DEFAULT_WINDOW && ((apr_size_t)1 << lgwin) < n) {
        lgwin++;
    }
    if (n > ISR_COMPRESS_BR_SLOW_MAX && level > 9) {
        level = 9;
    }
    if (!BrotliEncoderCompress(level, lgwin, BROTLI_MODE_TEXT, n,
                               (const uint8_t *)in, &len, (uint8_t *)out)
        || len > room) {
        return 0;
    }
    return len;
}

/* A decoder's output: it starts at a few times the input and doubles,
 * never past max + 1 (so that "more than max" can be told apart). */
typedef struct {
    char *buf;
    apr_size_t size;
} outbuf_t;

static void out_init(apr_pool_t *p, outbuf_t *o, apr_size_t n, apr_size_t max)
{
    o->size = n * 4 + 1024 > max + 1 ? max + 1 : n * 4 + 1024;
    o->buf = apr_palloc(p, o->size);
}

/* Twice the room, the first `used` bytes kept: 0 when the buffer holds
 * max + 1 bytes already (the body is larger than max). */
static int out_grow(apr_pool_t *p, outbuf_t *o, apr_size_t used,
                    apr_size_t max)
{
    apr_size_t nsize;
    char *nbuf;

    if (o->size > max) {
        return 0;
    }
    nsize = o->size * 2 > max + 1 ? max + 1 : o->size * 2;
    nbuf = apr_palloc(p, nsize);
    memcpy(nbuf, o->buf, used);
    o->buf = nbuf;
    o->size = nsize;
    return 1;
}

/* The body [in, in + n) decoded from gzip or br into *out (from p): 1, or
 * 0 when it is not one well-formed stream (trailing bytes included) or
 * decodes to more than max bytes. */
static int gzip_decode(apr_pool_t *p, const char *in, apr_size_t n,
                       apr_size_t max, char **out, apr_size_t *outlen)
{
    z_stream zs;
    outbuf_t o;
    apr_size_t used;
    int rc = Z_OK;

    if (n > UINT_MAX || max >= UINT_MAX) {
        return 0;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        return 0;
    }
    out_init(p, &o, n, max);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)o.buf;
    zs.avail_out = (uInt)o.size;
    for (;;) {
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END && zs.avail_in) {
            /* Another gzip member follows (RFC 1952 2.2): its bytes go on
             * after the first's; anything else there fails to decode.
             * (inflateReset clears total_out: lengths come from next_out.) */
            if (inflateReset(&zs) != Z_OK) {
                break;
            }
            rc = Z_OK;
            if (zs.avail_out) {
                continue;
            }
        }
        if (rc != Z_OK || zs.avail_out) {
            break;
        }
        used = (char *)zs.next_out - o.buf;
        if (!out_grow(p, &o, used, max)) {
            rc = Z_BUF_ERROR;       /* more than max */
            break;
        }
        zs.next_out = (Bytef *)o.buf + used;
        zs.avail_out = (uInt)(o.size - used);
    }
    used = (char *)zs.next_out - o.buf;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || zs.avail_in || used > max) {
        return 0;
    }
    *out = o.buf;
    *outlen = used;
    return 1;
}

static int br_decode(apr_pool_t *p, const char *in, apr_size_t n,
                     apr_size_t max, char **out, apr_size_t *outlen)
{
    BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    BrotliDecoderResult res = BROTLI_DECODER_RESULT_ERROR;
    const uint8_t *next_in = (const uint8_t *)in;
    size_t avail_in = n, avail_out, total = 0;
    uint8_t *next_out;
    outbuf_t o;

    if (!st) {
        return 0;
    }
    out_init(p, &o, n, max);
    next_out = (uint8_t *)o.buf;
    avail_out = o.size;
    for (;;) {
        res = BrotliDecoderDecompressStream(st, &avail_in, &next_in,
                                            &avail_out, &next_out, &total);
        if (res != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
            break;
        }
        if (!out_grow(p, &o, total, max)) {
            res = BROTLI_DECODER_RESULT_ERROR;
            break;
        }
        next_out = (uint8_t *)o.buf + total;
        avail_out = o.size - total;
    }
    BrotliDecoderDestroyInstance(st);
    if (res != BROTLI_DECODER_RESULT_SUCCESS || avail_in || total > max) {
        return 0;
    }
    *out = o.buf;
    *outlen = total;
    return 1;
}

/* ---- store time --------------------------------------------------------- */

/* The coding of a Content-Encoding value: ISR_CODING_GZIP or _BR, _IDENTITY
 * for "identity", -1 for anything else (another coding, or a list). */
static int coding_of(const char *v)
{
    const char *e;
    apr_size_t n;

    while (*v == ' ' || *v == '\t') {
        v++;
    }
    for (e = v; *e && *e != ' ' && *e != '\t' && *e != ','; e++) {
    }
    n = e - v;
    while (*e == ' ' || *e == '\t') {
        e++;
    }
    return *e ? -1 : isr_http_coding(v, n);
}

/* The head without its Content-Encoding field(s). */
static void drop_encoding(apr_pool_t *p, isr_value_t *v)
{
    isr_http_walk_t w = { v->headers, v->headers + v->hdrlen };
    const char *name, *value, *pair = v->headers;
    char *out = apr_palloc(p, v->hdrlen + 1), *o = out;

    while (isr_http_walk(&w, &name, &value)) {
        if (strcasecmp(name, "Content-Encoding")) {
            memcpy(o, pair, w.h - pair);
            o += w.h - pair;
        }
        pair = w.h;
    }
    v->headers = out;
    v->hdrlen = o - out;
}

static void put32(char *at, apr_uint32_t x)
{
    memcpy(at, &x, sizeof(x));
}

static apr_uint32_t get32(const char *at)
{
    apr_uint32_t x;

    memcpy(&x, at, sizeof(x));
    return x;
}

/* RFC 9110 7.7: Cache-Control no-transform forbids changing the content
 * coding. */
static int no_transform(const isr_value_t *v)
{
    isr_http_walk_t w = { v->headers, v->headers + v->hdrlen };
    const char *name, *value;

    while (isr_http_walk(&w, &name, &value)) {
        if (!strcasecmp(name, "Cache-Control")
            && isr_http_has_token(value, "no-transform")) {
            return 1;
        }
    }
    return 0;
}

/* The alternates block of n copies as v's. */
static void block_make(apr_pool_t *p, int n, const int *coding,
                       const char *const *body, const apr_size_t *len,
                       isr_value_t *v)
{
    apr_size_t total = 4 + 8 * (apr_size_t)n;
    char *block, *o;
    int i;

    for (i = 0; i < n; i++) {
        total += len[i];
    }
    o = block = apr_palloc(p, total);
    put32(o, (apr_uint32_t)n);
    o += 4;
    for (i = 0; i < n; i++, o += 8) {
        put32(o, (apr_uint32_t)coding[i]);
        put32(o + 4, (apr_uint32_t)len[i]);
    }
    for (i = 0; i < n; i++) {
        memcpy(o, body[i], len[i]);
        o += len[i];
    }
    v->alts = block;
    v->altlen = total;
}

isr_compress_result_t isr_compress_value(apr_pool_t *p,
                                         const isr_compress_conf_t *conf,
                                         apr_size_t max_body, isr_value_t *v)
{
    isr_http_walk_t w = { v->headers, v->headers + v->hdrlen };
    const char *name, *value, *ctype = NULL, *encoding = NULL;
    const char *body[ALT_MAX];
    apr_size_t len[ALT_MAX], room;
    int coding[ALT_MAX], n = 0, from = -1, c;
    char *buf;

    if (!isr_compress_on(conf) || v->status < 200 || v->status == 204
        || v->status == 206 || v->status == 304 || !v->bodylen) {
        return ISR_COMPRESS_NONE;
    }
    while (isr_http_walk(&w, &name, &value)) {
        if (!strcasecmp(name, "Content-Type")) {
            ctype = value;
        }
        else if (!strcasecmp(name, "Content-Encoding")) {
            /* Several fields are a list of codings: not one we decode. */
            encoding = encoding ? "," : value;
        }
    }
    if (!ctype || !isr_compress_type(conf, ctype) || no_transform(v)) {
        return ISR_COMPRESS_NONE;
    }
    if (max_body > ISR_COMPRESS_MAX_BODY) {
        max_body = ISR_COMPRESS_MAX_BODY;
    }
    if (encoding && (from = coding_of(encoding)) != ISR_CODING_IDENTITY) {
        char *dec;
        apr_size_t declen;

        if (from < 0
            || !(from == ISR_CODING_GZIP
                 ? gzip_decode(p, v->body, v->bodylen, max_body, &dec, &declen)
                 : br_decode(p, v->body, v->bodylen, max_body, &dec,
                             &declen))) {
            return ISR_COMPRESS_UNDECODED;
        }
        if (conf->level[from] >= 0) {
            /* The backend's bytes as they came: never compressed again. */
            coding[n] = from;
            body[n] = v->body;
            len[n++] = v->bodylen;
        }
        v->body = dec;
        v->bodylen = declen;
    }
    if (encoding) {
        drop_encoding(p, v);
    }
    for (c = ISR_CODING_GZIP; c < ISR_CODINGS; c++) {
        if (c == from || conf->level[c] < 0 || v->bodylen < conf->min_size
            || v->bodylen > ISR_COMPRESS_MAX_BODY) {
            continue;
        }
        room = v->bodylen - v->bodylen / SAVE_DIV - 1;
        buf = apr_palloc(p, room);
        len[n] = c == ISR_CODING_GZIP
            ? gzip_encode(v->body, v->bodylen, conf->level[c], buf, room)
            : br_encode(v->body, v->bodylen, conf->level[c], buf, room);
        if (len[n]) {
            coding[n] = c;
            body[n++] = buf;
        }
    }
    block_make(p, n, coding, body, len, v);
    return ISR_COMPRESS_DONE;
}

int isr_compress_trim(apr_pool_t *p, isr_value_t *v)
{
    const char *body[ALT_MAX];
    apr_size_t len[ALT_MAX];
    int coding[ALT_MAX], n = 0, c;

    if (!isr_compress_alts_valid(v->alts, v->altlen) || v->altlen == 4) {
        return 0;
    }
    for (c = ISR_CODING_GZIP; c < ISR_CODINGS; c++) {
        if (isr_compress_alt(v->alts, v->altlen, c, &body[n], &len[n])) {
            coding[n++] = c;
        }
    }
    if (n == 2) {
        /* The smaller copy stays. */
        if (len[1] < len[0]) {
            coding[0] = coding[1];
            body[0] = body[1];
            len[0] = len[1];
        }
        n = 1;
    }
    else {
        n = 0;
    }
    block_make(p, n, coding, body, len, v);
    return 1;
}

int isr_compress_renewed(isr_value_t *v)
{
    static const char empty[4] = { 0, 0, 0, 0 };

    if (!v->altlen || !no_transform(v)) {
        return 0;
    }
    v->alts = empty;
    v->altlen = sizeof(empty);
    return 1;
}

/* ---- hit time ----------------------------------------------------------- */

int isr_compress_alts_valid(const char *alts, apr_size_t altlen)
{
    apr_uint64_t need;
    apr_uint32_t n, i, c;

    if (!alts || altlen < 4) {
        return 0;
    }
    n = get32(alts);
    if (n > ALT_MAX || altlen < 4 + 8 * (apr_size_t)n) {
        return 0;
    }
    need = 4 + 8 * (apr_uint64_t)n;
    for (i = 0; i < n; i++) {
        c = get32(alts + 4 + 8 * i);
        if (c != ISR_CODING_GZIP && c != ISR_CODING_BR) {
            return 0;
        }
        need += get32(alts + 8 + 8 * i);
    }
    return need == altlen;
}

int isr_compress_alt(const char *alts, apr_size_t altlen, int coding,
                     const char **body, apr_size_t *len)
{
    apr_uint32_t n, i;
    apr_size_t off;

    if (!isr_compress_alts_valid(alts, altlen)) {
        return 0;
    }
    n = get32(alts);
    off = 4 + 8 * (apr_size_t)n;
    for (i = 0; i < n; i++) {
        apr_uint32_t l = get32(alts + 8 + 8 * i);

        if (get32(alts + 4 + 8 * i) == (apr_uint32_t)coding) {
            *body = alts + off;
            *len = l;
            return 1;
        }
        off += l;
    }
    return 0;
}

int isr_compress_varies(const isr_compress_conf_t *conf, const char *alts,
                        apr_size_t altlen)
{
    const char *b;
    apr_size_t l;
    int c;

    for (c = ISR_CODING_GZIP; c < ISR_CODINGS; c++) {
        if (conf->level[c] >= 0 && isr_compress_alt(alts, altlen, c, &b, &l)) {
            return 1;
        }
    }
    return 0;
}

int isr_compress_choose(const isr_compress_conf_t *conf, const char *alts,
                        apr_size_t altlen, const char *accept)
{
    int q[ISR_CODINGS], best = ISR_CODING_IDENTITY, c;
    const char *b;
    apr_size_t l;

    if (!accept || !isr_compress_on(conf)) {
        return ISR_CODING_IDENTITY;
    }
    isr_http_accept_codings(accept, q);
    /* br first: it wins ties. */
    for (c = ISR_CODINGS - 1; c > ISR_CODING_IDENTITY; c--) {
        if (conf->level[c] >= 0 && q[c] > 0 && q[c] >= q[best]
            && (best == ISR_CODING_IDENTITY || q[c] > q[best])
            && isr_compress_alt(alts, altlen, c, &b, &l)) {
            best = c;
        }
    }
    return best;
}

const char *isr_compress_etag(apr_pool_t *p, const char *etag, int coding)
{
    apr_size_t n = etag ? strlen(etag) : 0;
    const char *q = etag && !strncmp(etag, "W/", 2) ? etag + 2 : etag;

    if (coding == ISR_CODING_IDENTITY || !etag) {
        return etag;
    }
    if (n < 2 || *q != '"' || etag + n - 1 == q || etag[n - 1] != '"') {
        return NULL;   /* malformed: no validator at all for a copy */
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, etag, n - 1), ISR_COMPRESS_ETAG,
                       isr_compress_name(coding), "\"", NULL);
}
