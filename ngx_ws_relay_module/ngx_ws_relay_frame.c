
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ws_relay_frame.h"


enum {
    sw_start = 0,
    sw_length,
    sw_ext_length,
    sw_mask,
    sw_payload
};


static ngx_int_t ngx_ws_relay_frame_header_done(
    ngx_ws_relay_frame_parser_t *p);
static ngx_int_t ngx_ws_relay_frame_fail(ngx_ws_relay_frame_parser_t *p,
    ngx_uint_t code, const char *error);
static ngx_int_t ngx_ws_relay_frame_end(ngx_ws_relay_frame_parser_t *p,
    ngx_ws_relay_frame_event_t *ev);
static void ngx_ws_relay_frame_unmask(ngx_ws_relay_frame_parser_t *p,
    u_char *data, size_t len);


void
ngx_ws_relay_frame_parser_init(ngx_ws_relay_frame_parser_t *p,
    uint64_t max_message_size)
{
    ngx_memzero(p, sizeof(ngx_ws_relay_frame_parser_t));

    p->max_message_size = max_message_size;
}


/*
 * Returns NGX_OK with *ev filled, NGX_AGAIN when every byte up to "last"
 * was consumed without completing an event, NGX_ERROR on a protocol
 * violation (p->error_code and p->error say which).  Data payload is
 * unmasked in place and handed out as it arrives.
 */

ngx_int_t
ngx_ws_relay_frame_parse(ngx_ws_relay_frame_parser_t *p, u_char **pos,
    u_char *last, ngx_ws_relay_frame_event_t *ev)
{
    u_char     ch, *b;
    size_t     n;
    ngx_int_t  rc;

    b = *pos;

    while (b < last || (p->state == sw_payload && p->remaining == 0)) {

        switch (p->state) {

        case sw_start:
            ch = *b++;

            p->fin = (ch & NGX_WS_RELAY_FIN) ? 1 : 0;
            p->opcode = ch & 0x0f;

            if (ch & (NGX_WS_RELAY_RSV2|NGX_WS_RELAY_RSV3)) {
                return ngx_ws_relay_frame_fail(p, NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "reserved bits set");
            }

            if (p->opcode & 0x08) {

                if (p->opcode > NGX_WS_RELAY_OP_PONG) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "reserved opcode");
                }

                if (ch & NGX_WS_RELAY_RSV1) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "RSV1 on a control frame");
                }

                if (!p->fin) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "fragmented control frame");
                }

            } else if (p->opcode == NGX_WS_RELAY_OP_CONTINUATION) {

                if (p->message_opcode == 0) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "continuation without a "
                                               "message");
                }

                if (ch & NGX_WS_RELAY_RSV1) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "RSV1 on a continuation "
                                               "frame");
                }

            } else if (p->opcode > NGX_WS_RELAY_OP_BINARY) {
                return ngx_ws_relay_frame_fail(p, NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "reserved opcode");

            } else {

                if (p->message_opcode != 0) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "data frame inside a "
                                               "fragmented message");
                }

                if ((ch & NGX_WS_RELAY_RSV1) && !p->rsv1_allowed) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "reserved bits set");
                }

                p->message_opcode = p->opcode;
                p->message_first = 1;
                p->message_compressed = (ch & NGX_WS_RELAY_RSV1) ? 1 : 0;
                p->message_size = 0;
            }

            p->state = sw_length;
            break;

        case sw_length:
            ch = *b++;

            if (!(ch & 0x80)) {
                return ngx_ws_relay_frame_fail(p, NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "unmasked client frame");
            }

            ch &= 0x7f;

            if (ch < 126) {
                p->remaining = ch;
                p->need = 4;
                p->state = sw_mask;

                rc = ngx_ws_relay_frame_header_done(p);
                if (rc != NGX_OK) {
                    return rc;
                }

                break;
            }

            p->need = (ch == 126) ? 2 : 8;
            p->mask_index = 0;
            p->state = sw_ext_length;
            break;

        case sw_ext_length:
            p->ext[p->mask_index++] = *b++;

            if (p->mask_index < p->need) {
                break;
            }

            if (p->need == 2) {
                p->remaining = ((uint64_t) p->ext[0] << 8) | p->ext[1];

            } else {

                if (p->ext[0] & 0x80) {
                    return ngx_ws_relay_frame_fail(p,
                                               NGX_WS_RELAY_CLOSE_PROTOCOL,
                                               "64-bit length with the top "
                                               "bit set");
                }

                p->remaining = ((uint64_t) p->ext[0] << 56)
                               | ((uint64_t) p->ext[1] << 48)
                               | ((uint64_t) p->ext[2] << 40)
                               | ((uint64_t) p->ext[3] << 32)
                               | ((uint64_t) p->ext[4] << 24)
                               | ((uint64_t) p->ext[5] << 16)
                               | ((uint64_t) p->ext[6] << 8)
                               | (uint64_t) p->ext[7];
            }

            p->need = 4;
            p->state = sw_mask;

            rc = ngx_ws_relay_frame_header_done(p);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case sw_mask:
            p->mask[4 - p->need] = *b++;

            if (--p->need == 0) {
                p->mask_index = 0;
                p->control_len = 0;
                p->state = sw_payload;
            }

            break;

        case sw_payload:
            n = (size_t) ngx_min((uint64_t) (last - b), p->remaining);

            if (p->opcode & 0x08) {
                ngx_memcpy(p->control + p->control_len, b, n);
                ngx_ws_relay_frame_unmask(p, p->control + p->control_len, n);
                p->control_len += n;
                p->remaining -= n;
                b += n;

                if (p->remaining) {
                    break;
                }

                *pos = b;
                p->state = sw_start;

                ev->type = NGX_WS_RELAY_FRAME_CONTROL;
                ev->opcode = p->opcode;
                ev->data = p->control;
                ev->len = p->control_len;
                ev->first = 1;
                ev->last = 1;
                ev->compressed = 0;

                return NGX_OK;
            }

            ngx_ws_relay_frame_unmask(p, b, n);
            p->remaining -= n;

            ev->type = NGX_WS_RELAY_FRAME_DATA;
            ev->opcode = p->message_opcode;
            ev->data = b;
            ev->len = n;
            ev->first = p->message_first;
            ev->compressed = p->message_compressed;
            ev->last = 0;

            p->message_first = 0;
            b += n;
            *pos = b;

            if (p->remaining == 0) {
                return ngx_ws_relay_frame_end(p, ev);
            }

            return NGX_OK;
        }
    }

    *pos = b;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_ws_relay_frame_header_done(ngx_ws_relay_frame_parser_t *p)
{
    if (p->opcode & 0x08) {

        if (p->remaining > NGX_WS_RELAY_MAX_CONTROL) {
            return ngx_ws_relay_frame_fail(p, NGX_WS_RELAY_CLOSE_PROTOCOL,
                                           "control frame over 125 bytes");
        }

        return NGX_OK;
    }

    if (p->remaining > p->max_message_size - p->message_size) {
        return ngx_ws_relay_frame_fail(p, NGX_WS_RELAY_CLOSE_TOO_BIG,
                                       "message too big");
    }

    p->message_size += p->remaining;

    return NGX_OK;
}


static ngx_int_t
ngx_ws_relay_frame_end(ngx_ws_relay_frame_parser_t *p,
    ngx_ws_relay_frame_event_t *ev)
{
    p->state = sw_start;

    if (p->fin) {
        ev->last = 1;
        p->message_opcode = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ws_relay_frame_fail(ngx_ws_relay_frame_parser_t *p, ngx_uint_t code,
    const char *error)
{
    p->error_code = code;
    p->error = error;

    return NGX_ERROR;
}


static void
ngx_ws_relay_frame_unmask(ngx_ws_relay_frame_parser_t *p, u_char *data,
    size_t len)
{
    u_char      *end;
    uint64_t     mask8, v;
    ngx_uint_t   i;

    end = data + len;

    /* align to the mask, then unmask eight bytes at a time */

    while (data < end && (p->mask_index & 3)) {
        *data++ ^= p->mask[p->mask_index++ & 3];
    }

    p->mask_index &= 3;

    if (end - data >= 8) {
        for (i = 0; i < 8; i++) {
            ((u_char *) &mask8)[i] = p->mask[i & 3];
        }

        while (end - data >= 8) {
            ngx_memcpy(&v, data, 8);
            v ^= mask8;
            ngx_memcpy(data, &v, 8);
            data += 8;
        }
    }

    while (data < end) {
        *data++ ^= p->mask[p->mask_index++ & 3];
    }

    p->mask_index &= 3;
}


/*
 * A close frame's payload: nothing, or a 2-byte code and a UTF-8 reason.
 * Returns NGX_OK with the code (1005 for none) or NGX_ERROR with the
 * code to close with.
 */

ngx_int_t
ngx_ws_relay_frame_parse_close(u_char *data, size_t len, ngx_uint_t *code,
    ngx_uint_t *error_code, const char **error)
{
    uint32_t  state;

    if (len == 0) {
        *code = NGX_WS_RELAY_CLOSE_NO_STATUS;
        return NGX_OK;
    }

    if (len == 1) {
        *error_code = NGX_WS_RELAY_CLOSE_PROTOCOL;
        *error = "close frame with a 1-byte payload";
        return NGX_ERROR;
    }

    *code = (data[0] << 8) | data[1];

    if (!((*code >= 1000 && *code <= 1003)
          || (*code >= 1007 && *code <= 1014)
          || (*code >= 3000 && *code <= 4999)))
    {
        *error_code = NGX_WS_RELAY_CLOSE_PROTOCOL;
        *error = "invalid close code";
        return NGX_ERROR;
    }

    state = 0;

    if (ngx_ws_relay_utf8_check(&state, data + 2, len - 2) != NGX_OK
        || !ngx_ws_relay_utf8_complete(state))
    {
        *error_code = NGX_WS_RELAY_CLOSE_INVALID_DATA;
        *error = "invalid UTF-8 in close reason";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Incremental UTF-8 validation (RFC 3629): *state carries an incomplete
 * sequence across calls, 0 means "between characters".  The low byte
 * selects the range of the next continuation byte, the rest counts the
 * continuation bytes still expected.
 */

enum {
    utf8_any = 0,     /* 80..BF */
    utf8_e0,          /* A0..BF: no overlong 3-byte forms */
    utf8_ed,          /* 80..9F: no surrogates */
    utf8_f0,          /* 90..BF: no overlong 4-byte forms */
    utf8_f4           /* 80..8F: nothing above U+10FFFF */
};


ngx_int_t
ngx_ws_relay_utf8_check(uint32_t *state, u_char *p, size_t len)
{
    u_char      *end, b;
    uint64_t     word;
    ngx_uint_t   need, range;

    static const u_char  lo[] = { 0x80, 0xa0, 0x80, 0x90, 0x80 };
    static const u_char  hi[] = { 0xbf, 0xbf, 0x9f, 0xbf, 0x8f };

    need = *state >> 8;
    range = *state & 0xff;
    end = p + len;

    while (p < end) {

        if (need == 0) {

            /* ASCII, 8 bytes at a time: most text is */

            while (end - p >= 8) {
                ngx_memcpy(&word, p, 8);

                if (word & 0x8080808080808080ULL) {
                    break;
                }

                p += 8;
            }

            if (p == end) {
                break;
            }
        }

        b = *p++;

        if (need == 0) {

            if (b < 0x80) {
                continue;
            }

            if (b < 0xc2) {
                return NGX_ERROR;
            }

            if (b < 0xe0) {
                need = 1;
                range = utf8_any;

            } else if (b < 0xf0) {
                need = 2;
                range = (b == 0xe0) ? utf8_e0
                        : (b == 0xed) ? utf8_ed : utf8_any;

            } else if (b < 0xf5) {
                need = 3;
                range = (b == 0xf0) ? utf8_f0
                        : (b == 0xf4) ? utf8_f4 : utf8_any;

            } else {
                return NGX_ERROR;
            }

            continue;
        }

        if (b < lo[range] || b > hi[range]) {
            return NGX_ERROR;
        }

        range = utf8_any;
        need--;
    }

    *state = (uint32_t) ((need << 8) | range);

    return NGX_OK;
}


size_t
ngx_ws_relay_frame_header_size(size_t len)
{
    if (len < 126) {
        return 2;
    }

    if (len < 65536) {
        return 4;
    }

    return 10;
}


/* a server frame: never masked */

u_char *
ngx_ws_relay_frame_write_header(u_char *p, ngx_uint_t opcode,
    ngx_uint_t flags, size_t len)
{
    ngx_uint_t  i;

    *p++ = (u_char) (flags | opcode);

    if (len < 126) {
        *p++ = (u_char) len;
        return p;
    }

    if (len < 65536) {
        *p++ = 126;
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) len;
        return p;
    }

    *p++ = 127;

    for (i = 8; i > 0; i--) {
        *p++ = (u_char) ((uint64_t) len >> ((i - 1) * 8));
    }

    return p;
}
