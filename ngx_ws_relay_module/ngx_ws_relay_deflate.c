
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_deflate.h"
#include <zlib.h>
#if (NGX_WS_RELAY_HAVE_LIBDEFLATE)
#include <libdeflate.h>
#endif


/*
 * permessage-deflate (RFC 7692) without context takeover in either
 * direction: the response always asks for client_no_context_takeover and
 * promises server_no_context_takeover.  Every message is then compressed
 * on its own, so a worker needs one inflate stream and one deflate stream
 * per window size, shared by all its connections: an idle connection
 * costs no zlib memory, and a message fanned out to many connections is
 * compressed once.
 *
 * A message is compressed as one whole buffer: libdeflate, when it is
 * there, is built for that, where zlib must reset its stream (and clear
 * its hash table) for every message (bench/RESULTS.md, scenario 9, has
 * the figures of both).  libdeflate's window is always 32 KiB, but a
 * message no longer than the window it may use never refers further
 * back: zlib compresses only longer messages for a client that asked for
 * a smaller window.  Inflating stays zlib's: a client's message is
 * bounded as it grows (ngx_ws_relay_inflate()), which libdeflate's
 * one-call API cannot do without a buffer of the largest size for every
 * message.
 */


#define NGX_WS_RELAY_DEFLATE_MIN_BITS  9
#define NGX_WS_RELAY_DEFLATE_MAX_BITS  15


typedef struct {
    ngx_uint_t   server_no_context_takeover;
    ngx_uint_t   client_no_context_takeover;
    ngx_int_t    server_max_window_bits;
    ngx_int_t    client_max_window_bits;   /* 0: offered without value */
    ngx_uint_t   client_max_window_bits_set;
} ngx_ws_relay_deflate_params_t;


static u_char *ngx_ws_relay_deflate_offer(u_char *p, u_char *end,
    ngx_ws_relay_deflate_params_t *params, ngx_uint_t *valid);
static u_char *ngx_ws_relay_deflate_token(u_char *p, u_char *end,
    ngx_str_t *token, ngx_uint_t quoted);
static ngx_int_t ngx_ws_relay_deflate_bits(ngx_str_t *value);
static ngx_int_t ngx_ws_relay_deflate_grow(ngx_str_t *buf, size_t size,
    ngx_log_t *log);


static ngx_str_t  ngx_ws_relay_extensions =
    ngx_string("Sec-WebSocket-Extensions");

static z_stream   ngx_ws_relay_inflater;
static ngx_uint_t ngx_ws_relay_inflater_ready;
static z_stream   ngx_ws_relay_deflaters[NGX_WS_RELAY_DEFLATE_MAX_BITS + 1];
static ngx_int_t  ngx_ws_relay_deflater_levels[NGX_WS_RELAY_DEFLATE_MAX_BITS
                                               + 1];
static ngx_str_t  ngx_ws_relay_inflated;
static ngx_str_t  ngx_ws_relay_deflated;

#if (NGX_WS_RELAY_HAVE_LIBDEFLATE)
static ngx_int_t ngx_ws_relay_deflate_whole(ngx_int_t level, u_char *data,
    size_t len, ngx_str_t *out, ngx_log_t *log);

/* one compressor per level used: 0-9 */
static struct libdeflate_compressor  *ngx_ws_relay_compressors[10];
#endif


/*
 * Picks the first offer of permessage-deflate we can honour, across all
 * Sec-WebSocket-Extensions headers.  NGX_DECLINED: none; a bad offer is
 * skipped, never fatal.
 */

ngx_int_t
ngx_ws_relay_deflate_negotiate(ngx_http_request_t *r,
    ngx_ws_relay_deflate_offer_t *offer)
{
    u_char                         *p, *end, *last;
    ngx_uint_t                      i, valid, bits;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_ws_relay_deflate_params_t   params;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != ngx_ws_relay_extensions.len
            || ngx_strncasecmp(h[i].key.data, ngx_ws_relay_extensions.data,
                               ngx_ws_relay_extensions.len) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            p = ngx_ws_relay_deflate_offer(p, end, &params, &valid);

            if (!valid) {
                continue;
            }

            /* zlib cannot deflate with a 256-byte window */
            if (params.server_max_window_bits
                && params.server_max_window_bits
                   < NGX_WS_RELAY_DEFLATE_MIN_BITS)
            {
                continue;
            }

            bits = params.server_max_window_bits
                   ? (ngx_uint_t) params.server_max_window_bits
                   : NGX_WS_RELAY_DEFLATE_MAX_BITS;

            offer->server_window_bits = bits;

            offer->response.data = ngx_pnalloc(r->pool, 160);
            if (offer->response.data == NULL) {
                return NGX_ERROR;
            }

            last = ngx_sprintf(offer->response.data,
                               "permessage-deflate; "
                               "server_no_context_takeover; "
                               "client_no_context_takeover");

            if (params.server_max_window_bits) {
                last = ngx_sprintf(last, "; server_max_window_bits=%ui",
                                   bits);
            }

            if (params.client_max_window_bits) {
                last = ngx_sprintf(last, "; client_max_window_bits=%i",
                                   params.client_max_window_bits);
            }

            offer->response.len = last - offer->response.data;

            return NGX_OK;
        }
    }
}


/*
 * One offer: "name *( ; param[=value] )", up to the next comma.  *valid
 * says whether it is a permessage-deflate offer we understand.
 */

static u_char *
ngx_ws_relay_deflate_offer(u_char *p, u_char *end,
    ngx_ws_relay_deflate_params_t *params, ngx_uint_t *valid)
{
    ngx_str_t  name, value;

    ngx_memzero(params, sizeof(ngx_ws_relay_deflate_params_t));

    p = ngx_ws_relay_deflate_token(p, end, &name, 0);

    *valid = (name.len == 18
              && ngx_strncasecmp(name.data, (u_char *) "permessage-deflate",
                                 18) == 0);

    for ( ;; ) {

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == end) {
            return p;
        }

        if (*p == ',') {
            return p + 1;
        }

        if (*p != ';') {
            /* garbage: skip the rest of this offer */
            *valid = 0;

            while (p < end && *p != ',') {
                p++;
            }

            continue;
        }

        p = ngx_ws_relay_deflate_token(p + 1, end, &name, 0);
        ngx_str_null(&value);

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p < end && *p == '=') {
            p = ngx_ws_relay_deflate_token(p + 1, end, &value, 1);

            if (value.len == 0) {
                *valid = 0;
                continue;
            }
        }

        if (name.len == 26
            && ngx_strncasecmp(name.data,
                               (u_char *) "server_no_context_takeover", 26)
               == 0)
        {
            if (params->server_no_context_takeover || value.data) {
                *valid = 0;
            }

            params->server_no_context_takeover = 1;

        } else if (name.len == 26
                   && ngx_strncasecmp(name.data,
                                      (u_char *) "client_no_context_takeover",
                                      26) == 0)
        {
            if (params->client_no_context_takeover || value.data) {
                *valid = 0;
            }

            params->client_no_context_takeover = 1;

        } else if (name.len == 22
                   && ngx_strncasecmp(name.data,
                                      (u_char *) "server_max_window_bits", 22)
                      == 0)
        {
            if (params->server_max_window_bits || value.data == NULL) {
                *valid = 0;
            }

            params->server_max_window_bits =
                                        ngx_ws_relay_deflate_bits(&value);

            if (params->server_max_window_bits == NGX_ERROR) {
                *valid = 0;
            }

        } else if (name.len == 22
                   && ngx_strncasecmp(name.data,
                                      (u_char *) "client_max_window_bits", 22)
                      == 0)
        {
            if (params->client_max_window_bits_set) {
                *valid = 0;
            }

            params->client_max_window_bits_set = 1;

            if (value.data) {
                params->client_max_window_bits =
                                        ngx_ws_relay_deflate_bits(&value);

                if (params->client_max_window_bits == NGX_ERROR) {
                    *valid = 0;
                }
            }

        } else {
            *valid = 0;
        }
    }
}


/*
 * A token after optional spaces, or for a value also a quoted string
 * without escapes; an unterminated or misplaced quote gives an empty one.
 */

static u_char *
ngx_ws_relay_deflate_token(u_char *p, u_char *end, ngx_str_t *token,
    ngx_uint_t quoted)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < end && *p == '"') {

        /* a quoted string is a value (RFC 6455, 9.1), never a name */
        if (!quoted) {
            token->data = p;
            token->len = 0;
            return p;
        }

        token->data = ++p;

        while (p < end && *p != '"') {
            p++;
        }

        if (p == end) {
            /* no closing quote */
            token->len = 0;
            return p;
        }

        token->len = p - token->data;

        return p + 1;
    }

    token->data = p;

    while (p < end && *p != ';' && *p != ',' && *p != '=' && *p != ' '
           && *p != '\t')
    {
        p++;
    }

    token->len = p - token->data;

    return p;
}


static ngx_int_t
ngx_ws_relay_deflate_bits(ngx_str_t *value)
{
    ngx_int_t  bits;

    if (value->len == 0 || value->len > 2 || value->data[0] == '0') {
        return NGX_ERROR;
    }

    bits = ngx_atoi(value->data, value->len);

    if (bits < 8 || bits > NGX_WS_RELAY_DEFLATE_MAX_BITS) {
        return NGX_ERROR;
    }

    return bits;
}


/*
 * Inflates one whole message (RFC 7692, 7.2.2: the sender removed the
 * final 00 00 ff ff).  NGX_DECLINED: it would grow past max; NGX_ERROR:
 * not valid deflate data; NGX_ABORT: zlib or memory failed us.
 */

ngx_int_t
ngx_ws_relay_inflate(u_char *data, size_t len, size_t max, ngx_str_t *out,
    ngx_log_t *log)
{
    int             rc;
    size_t          size;
    z_stream       *zs;
    ngx_uint_t      tail;
    static u_char   trailer[] = { 0x00, 0x00, 0xff, 0xff };

    zs = &ngx_ws_relay_inflater;

    if (!ngx_ws_relay_inflater_ready) {
        rc = inflateInit2(zs, -NGX_WS_RELAY_DEFLATE_MAX_BITS);

        if (rc != Z_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ws relay: inflateInit2() failed: %d", rc);
            return NGX_ABORT;
        }

        ngx_ws_relay_inflater_ready = 1;

    } else if (inflateReset(zs) != Z_OK) {
        return NGX_ABORT;
    }

    if (ngx_ws_relay_inflated.data == NULL
        && ngx_ws_relay_deflate_grow(&ngx_ws_relay_inflated, 16384, log)
           != NGX_OK)
    {
        return NGX_ABORT;
    }

    zs->next_in = data;
    zs->avail_in = len;
    out->len = 0;
    tail = 0;

    for ( ;; ) {

        if (out->len == ngx_ws_relay_inflated.len) {

            /* one byte past max tells a message that is too big */
            size = ngx_min(2 * ngx_ws_relay_inflated.len, max + 1);

            if (out->len >= size
                || ngx_ws_relay_deflate_grow(&ngx_ws_relay_inflated, size,
                                             log)
                   != NGX_OK)
            {
                return (out->len >= size) ? NGX_DECLINED : NGX_ABORT;
            }
        }

        zs->next_out = ngx_ws_relay_inflated.data + out->len;
        zs->avail_out = ngx_ws_relay_inflated.len - out->len;

        rc = inflate(zs, Z_SYNC_FLUSH);

        out->len = zs->next_out - ngx_ws_relay_inflated.data;

        if (out->len > max) {
            return NGX_DECLINED;
        }

        if (rc == Z_STREAM_END) {
            break;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return NGX_ERROR;
        }

        if (zs->avail_out == 0) {
            continue;
        }

        if (zs->avail_in) {
            /* room and input, but no progress */
            return NGX_ERROR;
        }

        if (tail) {
            break;
        }

        zs->next_in = trailer;
        zs->avail_in = sizeof(trailer);
        tail = 1;
    }

    out->data = ngx_ws_relay_inflated.data;

    return NGX_OK;
}


/*
 * Compresses one message on its own, without the final 00 00 ff ff.  One
 * stream per window size serves every level: deflateParams() on a stream
 * just reset only sets the level.
 */

ngx_int_t
ngx_ws_relay_deflate(ngx_uint_t window_bits, ngx_int_t level, u_char *data,
    size_t len, ngx_str_t *out, ngx_log_t *log)
{
    int        rc;
    size_t     bound;
    z_stream  *zs;

#if (NGX_WS_RELAY_HAVE_LIBDEFLATE)
    if (window_bits == NGX_WS_RELAY_DEFLATE_MAX_BITS
        || len <= ((size_t) 1 << window_bits))
    {
        return ngx_ws_relay_deflate_whole(level, data, len, out, log);
    }
#endif

    zs = &ngx_ws_relay_deflaters[window_bits];

    if (zs->state == NULL) {
        rc = deflateInit2(zs, (int) level, Z_DEFLATED, -(int) window_bits, 8,
                          Z_DEFAULT_STRATEGY);

        if (rc != Z_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ws relay: deflateInit2() failed: %d", rc);
            return NGX_ERROR;
        }

        ngx_ws_relay_deflater_levels[window_bits] = level;

    } else if (deflateReset(zs) != Z_OK) {
        return NGX_ERROR;
    }

    if (ngx_ws_relay_deflater_levels[window_bits] != level) {
        if (deflateParams(zs, (int) level, Z_DEFAULT_STRATEGY) != Z_OK) {
            return NGX_ERROR;
        }

        ngx_ws_relay_deflater_levels[window_bits] = level;
    }

    /* a sync flush adds at most a few bytes to deflateBound() */
    bound = deflateBound(zs, len) + 16;

    if (bound > ngx_ws_relay_deflated.len
        && ngx_ws_relay_deflate_grow(&ngx_ws_relay_deflated,
                                     ngx_max(bound, 16384), log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    zs->next_in = data;
    zs->avail_in = len;
    zs->next_out = ngx_ws_relay_deflated.data;
    zs->avail_out = ngx_ws_relay_deflated.len;

    rc = deflate(zs, Z_SYNC_FLUSH);

    if (rc != Z_OK || zs->avail_in != 0) {
        return NGX_ERROR;
    }

    out->data = ngx_ws_relay_deflated.data;
    out->len = zs->next_out - out->data;

    if (out->len >= 4) {
        out->len -= 4;
    }

    return NGX_OK;
}


#if (NGX_WS_RELAY_HAVE_LIBDEFLATE)

/*
 * libdeflate ends the message with a block whose BFINAL bit is set
 * (RFC 7692, 7.2.3.3): the receiver's 00 00 ff ff comes after the end of
 * the stream, and the octet added here holds the header bits of the
 * empty block that those four octets complete, as the RFC's example does.
 */

static ngx_int_t
ngx_ws_relay_deflate_whole(ngx_int_t level, u_char *data, size_t len,
    ngx_str_t *out, ngx_log_t *log)
{
    size_t                          bound, n;
    struct libdeflate_compressor   *c;

    c = ngx_ws_relay_compressors[level];

    if (c == NULL) {
        c = libdeflate_alloc_compressor((int) level);

        if (c == NULL) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "ws relay: libdeflate_alloc_compressor(%i) failed",
                          level);
            return NGX_ERROR;
        }

        ngx_ws_relay_compressors[level] = c;
    }

    bound = libdeflate_deflate_compress_bound(c, len) + 1;

    if (bound > ngx_ws_relay_deflated.len
        && ngx_ws_relay_deflate_grow(&ngx_ws_relay_deflated,
                                     ngx_max(bound, 16384), log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = libdeflate_deflate_compress(c, data, len, ngx_ws_relay_deflated.data,
                                    ngx_ws_relay_deflated.len - 1);
    if (n == 0) {
        return NGX_ERROR;
    }

    ngx_ws_relay_deflated.data[n++] = 0x00;

    out->data = ngx_ws_relay_deflated.data;
    out->len = n;

    return NGX_OK;
}

#endif


static ngx_int_t
ngx_ws_relay_deflate_grow(ngx_str_t *buf, size_t size, ngx_log_t *log)
{
    u_char  *p;

    p = ngx_alloc(size, log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (buf->data) {
        ngx_memcpy(p, buf->data, buf->len);
        ngx_free(buf->data);
    }

    buf->data = p;
    buf->len = size;

    return NGX_OK;
}
