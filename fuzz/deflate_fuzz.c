
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: permessage-deflate's message codec,
 * ngx_ws_relay_inflate() and ngx_ws_relay_deflate().  (The offer parser
 * needs an nginx request and stays out.)
 *
 * Input: one settings byte, then the payload of a compressed message (as a
 * client sends it: the final 00 00 ff ff removed).
 *
 *   settings bits 0-2   max, an index into fuzz_max_sizes
 *   settings bits 3-5   window bits of the round trip: 9 + value % 7
 *
 * Checks, every one aborting when broken:
 *
 *   1. ngx_ws_relay_inflate(payload, max) agrees with a plain zlib inflate
 *      of payload + 00 00 ff ff (RFC 7692, 7.2.2) written in 1000-byte
 *      pieces: the same bytes when that ends (stream end, or all input
 *      used) within max bytes; NGX_DECLINED when it passes max first;
 *      NGX_ERROR when zlib finds a data error first.  Never more than
 *      max bytes out.
 *   2. The same call again gives the same answer: the shared per-worker
 *      stream keeps nothing from one message to the next.
 *   3. ngx_ws_relay_deflate(bits, a level, payload as a plain message)
 *      (libdeflate's form when the message fits the window, zlib's
 *      otherwise) inflates back to it, with ngx_ws_relay_inflate and with a zlib inflate
 *      whose window is 2^bits and that gets one output byte per call, so
 *      a reference further back than the window fails it; and with max
 *      below its length, ngx_ws_relay_inflate declines it.
 *
 * The streams and buffers of the codec are static, shared by calls, as
 * they are by the connections of a worker: inputs run in any order.
 */


#include "fuzz.h"
#include <zlib.h>
#include "ngx_ws_relay_deflate.h"


/* what a plain zlib inflate makes of a message */
typedef struct {
    ngx_int_t     rc;           /* NGX_OK, NGX_DECLINED, NGX_ERROR */
    u_char       *data;
    size_t        len;
} fuzz_result_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_reference(const u_char *in, size_t len, size_t max,
    fuzz_result_t *res);
static ngx_uint_t fuzz_inflate_window(const u_char *in, size_t len,
    ngx_uint_t bits, const u_char *want, size_t want_len);
static void fuzz_check(const char *what, ngx_int_t rc, ngx_str_t *out,
    size_t max, fuzz_result_t *want);


static const size_t  fuzz_max_sizes[8] = {
    0, 1, 15, 100, 4096, 16384, 65536, 64 * 1024 * 1024
};

static ngx_log_t  fuzz_log;     /* log_level 0: nothing is logged */

static u_char     fuzz_trailer[] = { 0x00, 0x00, 0xff, 0xff };


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char         *in, *deflated;
    size_t          len, max;
    ngx_int_t       rc;
    ngx_str_t       out, packed;
    ngx_uint_t      bits;
    fuzz_result_t   want;

    if (size == 0) {
        return 0;
    }

    max = fuzz_max_sizes[data[0] & 7];
    bits = 9 + ((data[0] >> 3) & 7) % 7;

    /* the payload alone in a buffer of its size: ASan sees overreads */
    len = size - 1;
    in = malloc(len ? len : 1);
    fuzz_assert(in != NULL);
    ngx_memcpy(in, data + 1, len);

    /* 1, 2: the payload as a compressed message, twice */

    fuzz_reference(in, len, max, &want);

    rc = ngx_ws_relay_inflate(in, len, max, &out, &fuzz_log);
    fuzz_check("first", rc, &out, max, &want);

    rc = ngx_ws_relay_inflate(in, len, max, &out, &fuzz_log);
    fuzz_check("again", rc, &out, max, &want);

    free(want.data);

    /* 3: the payload as a plain message, compressed and back */

    rc = ngx_ws_relay_deflate(bits, 1 + len % 9, in, len, &packed,
                              &fuzz_log);
    fuzz_assert(rc == NGX_OK);
    fuzz_assert(packed.len > 0);

#if (NGX_WS_RELAY_HAVE_LIBDEFLATE)
    if (bits == 15 || len <= ((size_t) 1 << bits)) {
        /* libdeflate's: a block with BFINAL set, then one octet of 0 */
        fuzz_assert(packed.data[packed.len - 1] == 0x00);

    } else
#endif
    {
        /* zlib's: what was cut off is the 00 00 ff ff of the sync flush */
        fuzz_assert(ngx_memcmp(packed.data + packed.len, fuzz_trailer, 4)
                    == 0);
    }

    deflated = malloc(packed.len);
    fuzz_assert(deflated != NULL);
    ngx_memcpy(deflated, packed.data, packed.len);

    fuzz_assert(fuzz_inflate_window(deflated, packed.len, bits, in, len));

    rc = ngx_ws_relay_inflate(deflated, packed.len, len, &out, &fuzz_log);
    fuzz_assert(rc == NGX_OK);
    fuzz_assert(out.len == len);
    fuzz_assert(len == 0 || ngx_memcmp(out.data, in, len) == 0);

    if (len > 0) {
        rc = ngx_ws_relay_inflate(deflated, packed.len, len - 1, &out,
                                  &fuzz_log);
        fuzz_assert(rc == NGX_DECLINED);
    }

    free(deflated);
    free(in);

    return 0;
}


/*
 * zlib alone: payload, then 00 00 ff ff unless the stream ended, out in
 * 1000-byte pieces until the stream ends, the input is used up, zlib
 * finds an error or the output passes max.
 */

static void
fuzz_reference(const u_char *in, size_t len, size_t max, fuzz_result_t *res)
{
    int             zrc;
    size_t          size, total;
    z_stream        zs;
    ngx_uint_t      tail;

    ngx_memzero(&zs, sizeof(z_stream));
    fuzz_assert(inflateInit2(&zs, -15) == Z_OK);

    size = 0;
    total = 0;
    res->data = NULL;
    tail = 0;

    zs.next_in = (u_char *) in;
    zs.avail_in = len;

    for ( ;; ) {

        if (total == size) {
            size = size ? 2 * size : 1000;
            res->data = realloc(res->data, size);
            fuzz_assert(res->data != NULL);
        }

        zs.next_out = res->data + total;
        zs.avail_out = ngx_min(size - total, 1000);

        zrc = inflate(&zs, Z_SYNC_FLUSH);

        total = zs.next_out - res->data;

        if (total > max) {
            res->rc = NGX_DECLINED;
            break;
        }

        if (zrc == Z_STREAM_END) {
            res->rc = NGX_OK;
            break;
        }

        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            res->rc = NGX_ERROR;
            break;
        }

        if (zs.avail_out == 0) {
            continue;
        }

        /* zlib stops early only for lack of input or room */
        fuzz_assert(zs.avail_in == 0);

        if (tail) {
            res->rc = NGX_OK;
            break;
        }

        zs.next_in = fuzz_trailer;
        zs.avail_in = sizeof(fuzz_trailer);
        tail = 1;
    }

    res->len = total;

    inflateEnd(&zs);
}


static void
fuzz_check(const char *what, ngx_int_t rc, ngx_str_t *out, size_t max,
    fuzz_result_t *want)
{
    if (rc != want->rc) {
        fprintf(stderr, "%s: ngx_ws_relay_inflate() returned %d, zlib says "
                "%d after %zu bytes (max %zu)\n", what, (int) rc,
                (int) want->rc, want->len, max);
    }

    fuzz_assert(rc == want->rc);

    if (rc != NGX_OK) {
        return;
    }

    fuzz_assert(out->len <= max);
    fuzz_assert(out->len == want->len);
    fuzz_assert(out->len == 0 || ngx_memcmp(out->data, want->data, out->len)
                                 == 0);
}


/*
 * Inflates with a 2^bits window, one output byte per call: a byte can then
 * only be copied from the window, so a distance past it is a data error.
 * 1: the output is want.
 */

static ngx_uint_t
fuzz_inflate_window(const u_char *in, size_t len, ngx_uint_t bits,
    const u_char *want, size_t want_len)
{
    int             zrc;
    u_char          byte;
    size_t          got;
    z_stream        zs;
    ngx_uint_t      tail, ok;

    ngx_memzero(&zs, sizeof(z_stream));
    fuzz_assert(inflateInit2(&zs, -(int) bits) == Z_OK);

    zs.next_in = (u_char *) in;
    zs.avail_in = len;
    got = 0;
    tail = 0;
    ok = 0;

    for ( ;; ) {
        zs.next_out = &byte;
        zs.avail_out = 1;

        zrc = inflate(&zs, Z_SYNC_FLUSH);

        if (zs.avail_out == 0) {
            if (got == want_len || byte != want[got]) {
                break;
            }

            got++;
        }

        if (zrc == Z_STREAM_END) {
            /* libdeflate's final block: no more than its octet of 0 after */
            ok = (got == want_len && zs.avail_in <= 1);
            break;
        }

        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            fprintf(stderr, "inflate with 2^%d: %s after %zu bytes\n",
                    (int) bits, zs.msg ? zs.msg : "error", got);
            break;
        }

        if (zs.avail_out == 0) {
            continue;
        }

        if (zs.avail_in) {
            break;
        }

        if (tail) {
            ok = (got == want_len);
            break;
        }

        zs.next_in = fuzz_trailer;
        zs.avail_in = sizeof(fuzz_trailer);
        tail = 1;
    }

    inflateEnd(&zs);

    return ok;
}


/*
 * The nginx functions the codec calls: memory from malloc, a log that
 * takes nothing.  The offer parser's ones are never reached here.
 */

void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    (void) log;

    return malloc(size);
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    (void) level;
    (void) log;
    (void) err;
    (void) fmt;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    (void) pool;
    (void) size;

    abort();
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    (void) buf;
    (void) fmt;

    abort();
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    (void) s1;
    (void) s2;
    (void) n;

    abort();
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    (void) line;
    (void) n;

    abort();
}
