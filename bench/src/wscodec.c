/*
 * RFC 6455 client-side codec.  See wscodec.h.
 */

#include <stdlib.h>
#include <string.h>

#include "wscodec.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static uint32_t
rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}


static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t  w[80], a, b, c, d, e, f, k, t;
    int       i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
               | (uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
    }

    for (i = 16; i < 80; i++) {
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }

    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];

    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;

        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;

        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;

        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }

        t = rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol32(b, 30); b = a; a = t;
    }

    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}


void
sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t        h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe,
                             0x10325476, 0xc3d2e1f0 };
    uint8_t         tail[128];
    const uint8_t  *p = data;
    uint64_t        bits = (uint64_t) len * 8;
    size_t          rest, tlen;
    int             i;

    while (len >= 64) {
        sha1_block(h, p);
        p += 64;
        len -= 64;
    }

    /* the remainder, 0x80, zero padding, then the bit length */
    rest = len;
    memcpy(tail, p, rest);
    tail[rest++] = 0x80;
    tlen = (rest + 8 <= 64) ? 64 : 128;
    memset(tail + rest, 0, tlen - rest);

    for (i = 0; i < 8; i++) {
        tail[tlen - 1 - i] = (uint8_t) (bits >> (8 * i));
    }

    sha1_block(h, tail);
    if (tlen == 128) {
        sha1_block(h, tail + 64);
    }

    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t) (h[i] >> 24);
        out[4 * i + 1] = (uint8_t) (h[i] >> 16);
        out[4 * i + 2] = (uint8_t) (h[i] >> 8);
        out[4 * i + 3] = (uint8_t) h[i];
    }
}


size_t
base64_encode(const uint8_t *src, size_t len, char *dst)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char              *d = dst;
    uint32_t           v;

    while (len >= 3) {
        v = (uint32_t) src[0] << 16 | (uint32_t) src[1] << 8 | src[2];
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = tab[(v >> 6) & 63];
        *d++ = tab[v & 63];
        src += 3;
        len -= 3;
    }

    if (len) {
        v = (uint32_t) src[0] << 16 | (len == 2 ? (uint32_t) src[1] << 8 : 0);
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = (len == 2) ? tab[(v >> 6) & 63] : '=';
        *d++ = '=';
    }

    *d = '\0';
    return (size_t) (d - dst);
}


void
ws_accept_for_key(const char *key, size_t key_len, char *out)
{
    char     buf[256];
    uint8_t  digest[20];
    size_t   glen = sizeof(WS_GUID) - 1;

    if (key_len > sizeof(buf) - glen) {
        key_len = sizeof(buf) - glen;
    }

    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, glen);
    sha1(buf, key_len + glen, digest);
    base64_encode(digest, 20, out);
}


size_t
ws_frame_size(size_t len)
{
    return len + 6 + (len < 126 ? 0 : (len < 65536 ? 2 : 8));
}


static void
ws_mask(uint8_t *dst, const uint8_t *src, size_t len, uint32_t mask)
{
    uint8_t   m[4];
    uint64_t  m8, v;
    size_t    i = 0;

    memcpy(m, &mask, 4);
    memcpy(&m8, m, 4);
    memcpy((uint8_t *) &m8 + 4, m, 4);

    for (; i + 8 <= len; i += 8) {
        memcpy(&v, src + i, 8);
        v ^= m8;
        memcpy(dst + i, &v, 8);
    }

    for (; i < len; i++) {
        dst[i] = src[i] ^ m[i & 3];
    }
}


size_t
ws_frame_encode(uint8_t *dst, int opcode, int fin, const void *payload,
    size_t len, uint32_t mask)
{
    uint8_t  *p = dst;
    int       i;

    *p++ = (uint8_t) ((fin ? 0x80 : 0) | (opcode & (WS_RSV1 | 0x0f)));

    if (len < 126) {
        *p++ = (uint8_t) (0x80 | len);

    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t) (len >> 8);
        *p++ = (uint8_t) len;

    } else {
        *p++ = 0x80 | 127;
        for (i = 7; i >= 0; i--) {
            *p++ = (uint8_t) ((uint64_t) len >> (8 * i));
        }
    }

    memcpy(p, &mask, 4);
    p += 4;
    ws_mask(p, payload, len, mask);

    return (size_t) (p - dst) + len;
}


ws_status_t
ws_frame_parse(uint8_t *buf, size_t avail, uint64_t max_len, ws_frame_t *f,
    size_t *used)
{
    uint64_t  len;
    size_t    hlen = 2;
    uint32_t  mask;
    int       i;

    if (avail < 2) {
        return WS_AGAIN;
    }

    /* no extension uses RSV2 or RSV3 */
    if (buf[0] & 0x30) {
        return WS_ERR_PROTOCOL;
    }

    f->fin = buf[0] >> 7;
    f->rsv1 = (buf[0] & WS_RSV1) != 0;
    f->opcode = buf[0] & 0x0f;
    f->masked = buf[1] >> 7;
    len = buf[1] & 0x7f;

    if ((f->opcode > WS_OP_BINARY && f->opcode < WS_OP_CLOSE)
        || f->opcode > WS_OP_PONG)
    {
        return WS_ERR_PROTOCOL;
    }

    if (f->opcode >= WS_OP_CLOSE && (!f->fin || len > 125)) {
        return WS_ERR_PROTOCOL;
    }

    if (len == 126) {
        if (avail < 4) {
            return WS_AGAIN;
        }
        len = (uint64_t) buf[2] << 8 | buf[3];
        hlen = 4;

    } else if (len == 127) {
        if (avail < 10) {
            return WS_AGAIN;
        }
        len = 0;
        for (i = 0; i < 8; i++) {
            len = len << 8 | buf[2 + i];
        }
        if (len >> 63) {
            return WS_ERR_PROTOCOL;
        }
        hlen = 10;
    }

    if (len > max_len) {
        return WS_ERR_TOO_BIG;
    }

    if (f->masked) {
        hlen += 4;
    }

    if (avail < hlen || avail - hlen < len) {
        return WS_AGAIN;
    }

    f->len = len;
    f->payload = buf + hlen;

    if (f->masked) {
        memcpy(&mask, buf + hlen - 4, 4);
        ws_mask(f->payload, f->payload, len, mask);
    }

    *used = hlen + len;
    return WS_OK;
}


void
ws_reasm_init(ws_reasm_t *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}


void
ws_reasm_free(ws_reasm_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
    r->active = 0;
}


static int
ws_reasm_append(ws_reasm_t *r, const uint8_t *data, size_t len)
{
    size_t    ncap;
    uint8_t  *nbuf;

    if (r->len + len > r->cap) {
        ncap = r->cap ? r->cap : 1024;
        while (ncap < r->len + len) {
            ncap *= 2;
        }
        nbuf = realloc(r->buf, ncap);
        if (nbuf == NULL) {
            return -1;
        }
        r->buf = nbuf;
        r->cap = ncap;
    }

    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}


ws_event_t
ws_reasm_feed(ws_reasm_t *r, const ws_frame_t *f, ws_msg_t *msg)
{
    msg->close_code = 0;
    msg->compressed = f->rsv1;

    if (f->rsv1 && (!r->deflate || f->opcode == WS_OP_CONT
                    || f->opcode >= WS_OP_CLOSE))
    {
        msg->close_code = 1002;
        return WS_EV_ERROR;
    }

    if (f->opcode >= WS_OP_CLOSE) {
        msg->opcode = f->opcode;
        msg->data = f->payload;
        msg->len = f->len;
        return WS_EV_CONTROL;
    }

    if (f->opcode == WS_OP_CONT) {
        if (!r->active) {
            msg->close_code = 1002;
            return WS_EV_ERROR;
        }

    } else if (r->active) {
        /* a new data frame inside a fragmented message */
        msg->close_code = 1002;
        return WS_EV_ERROR;

    } else if (f->fin) {
        msg->opcode = f->opcode;
        msg->data = f->payload;
        msg->len = f->len;
        return WS_EV_MESSAGE;

    } else {
        r->active = 1;
        r->opcode = f->opcode;
        r->compressed = f->rsv1;
        r->len = 0;
    }

    if (r->len + f->len > r->max) {
        msg->close_code = 1009;
        return WS_EV_ERROR;
    }

    if (ws_reasm_append(r, f->payload, f->len) != 0) {
        msg->close_code = 1011;
        return WS_EV_ERROR;
    }

    if (!f->fin) {
        return WS_EV_NONE;
    }

    r->active = 0;
    msg->opcode = r->opcode;
    msg->compressed = r->compressed;
    msg->data = r->buf;
    msg->len = r->len;
    return WS_EV_MESSAGE;
}


int
ws_close_code(const uint8_t *payload, size_t len)
{
    if (len == 0) {
        return 1005;
    }

    if (len == 1) {
        return -1;
    }

    return payload[0] << 8 | payload[1];
}


int
ws_utf8_valid(const uint8_t *s, size_t len)
{
    size_t    i = 0, n, k;
    uint32_t  cp, min;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 1; cp = s[i] & 0x1f; min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 2; cp = s[i] & 0x0f; min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 3; cp = s[i] & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if (len - i <= n) {
            return 0;
        }

        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }

        i += n + 1;
    }

    return 1;
}
