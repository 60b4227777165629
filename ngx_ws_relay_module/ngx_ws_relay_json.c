
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_json.h"


static u_char *ngx_ws_relay_json_plain_string(u_char *p, u_char *end,
    ngx_str_t *s, ngx_uint_t *high);
static u_char *ngx_ws_relay_json_space(u_char *p, u_char *end);
static ngx_uint_t ngx_ws_relay_json_depth_ok(u_char *p, size_t len);


static u_char  *ngx_ws_relay_json_buf;
static size_t   ngx_ws_relay_json_buf_size;


ngx_int_t
ngx_ws_relay_json_read_flat(u_char *data, size_t len,
    ngx_ws_relay_json_member_t *members, ngx_uint_t *n)
{
    u_char      *p, *end;
    uint32_t     state;
    ngx_uint_t   i, j, k, high;

    end = data + len;
    high = 0;

    p = ngx_ws_relay_json_space(data, end);

    if (p == end || *p++ != '{') {
        return NGX_DECLINED;
    }

    for (k = 0; /* void */ ; k++) {

        if (k == NGX_WS_RELAY_JSON_FLAT_MAX) {
            return NGX_DECLINED;
        }

        p = ngx_ws_relay_json_plain_string(p, end, &members[k].name, &high);

        if (p == NULL || p == end || *p++ != ':') {
            return NGX_DECLINED;
        }

        p = ngx_ws_relay_json_plain_string(p, end, &members[k].value, &high);

        if (p == NULL || p == end) {
            return NGX_DECLINED;
        }

        if (*p == '}') {
            k++;
            break;
        }

        if (*p++ != ',') {
            return NGX_DECLINED;
        }
    }

    if (ngx_ws_relay_json_space(p + 1, end) != end) {
        return NGX_DECLINED;
    }

    /* what jansson refuses: not UTF-8 (binary frames), duplicate names */

    state = 0;

    if (high
        && (ngx_ws_relay_utf8_check(&state, data, len) != NGX_OK
            || !ngx_ws_relay_utf8_complete(state)))
    {
        return NGX_DECLINED;
    }

    for (i = 1; i < k; i++) {
        for (j = 0; j < i; j++) {
            if (members[i].name.len == members[j].name.len
                && ngx_memcmp(members[i].name.data, members[j].name.data,
                              members[i].name.len)
                   == 0)
            {
                return NGX_DECLINED;
            }
        }
    }

    *n = k;

    return NGX_OK;
}


/*
 * A string with nothing to unescape, and the white space around it;
 * high: it has non-ASCII bytes.
 */

static u_char *
ngx_ws_relay_json_plain_string(u_char *p, u_char *end, ngx_str_t *s,
    ngx_uint_t *high)
{
    p = ngx_ws_relay_json_space(p, end);

    if (p == end || *p++ != '"') {
        return NULL;
    }

    s->data = p;

    for ( /* void */ ; p < end; p++) {

        if (*p == '"') {
            s->len = p - s->data;
            return ngx_ws_relay_json_space(p + 1, end);
        }

        if (*p < 0x20 || *p == '\\') {
            return NULL;
        }

        if (*p >= 0x80) {
            *high = 1;
        }
    }

    return NULL;
}


/* JSON's white space, as jansson skips it */

static u_char *
ngx_ws_relay_json_space(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


ngx_str_t *
ngx_ws_relay_json_flat_get(ngx_ws_relay_json_member_t *members,
    ngx_uint_t n, const char *name)
{
    size_t      len;
    ngx_uint_t  i;

    len = ngx_strlen(name);

    for (i = 0; i < n; i++) {
        if (members[i].name.len == len
            && ngx_strncmp(members[i].name.data, name, len) == 0)
        {
            return &members[i].value;
        }
    }

    return NULL;
}


json_t *
ngx_ws_relay_json_load(u_char *data, size_t len, size_t flags,
    json_error_t *error)
{
    if (!ngx_ws_relay_json_depth_ok(data, len)) {
        ngx_cpystrn((u_char *) error->text, (u_char *) "nested too deeply",
                    JSON_ERROR_TEXT_LENGTH);
        return NULL;
    }

    return json_loadb((char *) data, len, flags|JSON_REJECT_DUPLICATES,
                      error);
}


/* jansson nests up to 2048 levels deep: clients get far fewer */

static ngx_uint_t
ngx_ws_relay_json_depth_ok(u_char *p, size_t len)
{
    u_char      *end;
    ngx_uint_t   depth, in_string;

    depth = 0;
    in_string = 0;

    for (end = p + len; p < end; p++) {

        if (in_string) {
            if (*p == '\\') {
                p++;

            } else if (*p == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > NGX_WS_RELAY_JSON_MAX_DEPTH) {
                return 0;
            }
            break;

        case ']':
        case '}':
            if (depth) {
                depth--;
            }
            break;
        }
    }

    return 1;
}


ngx_uint_t
ngx_ws_relay_json_falsy(json_t *value)
{
    return value == NULL
           || json_is_null(value)
           || json_is_false(value)
           || (json_is_string(value) && json_string_length(value) == 0)
           || (json_is_integer(value) && json_integer_value(value) == 0)
           || (json_is_real(value) && json_real_value(value) == 0);
}


json_t *
ngx_ws_relay_json_string(ngx_str_t *s)
{
    return json_stringn((char *) s->data, s->len);
}


u_char *
ngx_ws_relay_json_write_string(u_char *p, ngx_str_t *s)
{
    u_char  c, *src, *end;

    static u_char  hex[] = "0123456789ABCDEF";

    *p++ = '"';

    for (src = s->data, end = src + s->len; src < end; src++) {
        c = *src;

        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = c;
            continue;
        }

        *p++ = '\\';

        switch (c) {

        case '"':
        case '\\':
            *p++ = c;
            break;

        case '\b':
            *p++ = 'b';
            break;

        case '\f':
            *p++ = 'f';
            break;

        case '\n':
            *p++ = 'n';
            break;

        case '\r':
            *p++ = 'r';
            break;

        case '\t':
            *p++ = 't';
            break;

        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    *p++ = '"';

    return p;
}


u_char *
ngx_ws_relay_json_scratch(size_t size)
{
    u_char  *p;

    if (ngx_ws_relay_json_buf && size <= ngx_ws_relay_json_buf_size) {
        return ngx_ws_relay_json_buf;
    }

    size = ngx_max(4096, 2 * size);

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    if (ngx_ws_relay_json_buf) {
        ngx_free(ngx_ws_relay_json_buf);
    }

    ngx_ws_relay_json_buf = p;
    ngx_ws_relay_json_buf_size = size;

    return p;
}


ngx_int_t
ngx_ws_relay_json_dump(json_t *json, ngx_str_t *out)
{
    size_t  n;

    n = 0;

    do {
        if (ngx_ws_relay_json_scratch(n) == NULL) {
            return NGX_ERROR;
        }

        n = json_dumpb(json, (char *) ngx_ws_relay_json_buf,
                       ngx_ws_relay_json_buf_size,
                       JSON_COMPACT|JSON_PRESERVE_ORDER);

        if (n == 0) {
            return NGX_ERROR;
        }

    } while (n > ngx_ws_relay_json_buf_size);

    out->data = ngx_ws_relay_json_buf;
    out->len = n;

    return NGX_OK;
}
