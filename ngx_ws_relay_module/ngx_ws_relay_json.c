
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <math.h>
#include "ngx_ws_relay_json.h"


/* a string value of a number, and the digits JavaScript prints of it */
#define NGX_WS_RELAY_JSON_NUMBER_LEN  32

/*
 * The longest member name a caller may ask for, and the longest JSON text
 * such a name can be written as (\uXXXX for each byte).
 */
#define NGX_WS_RELAY_JSON_NAME_LEN    32
#define NGX_WS_RELAY_JSON_NAME_TEXT   (6 * NGX_WS_RELAY_JSON_NAME_LEN)


static u_char *ngx_ws_relay_json_value(u_char *p, u_char *end,
    ngx_ws_relay_json_value_t *v, const char **error);
static ngx_inline u_char *ngx_ws_relay_json_scalar(u_char *p, u_char *end,
    ngx_ws_relay_json_value_t *v, const char **error);
static u_char *ngx_ws_relay_json_string_end(u_char *p, u_char *end,
    ngx_ws_relay_json_value_t *v);
static ngx_inline u_char *ngx_ws_relay_json_number_end(u_char *p, u_char *end);
static size_t ngx_ws_relay_json_utf8(u_char *p, u_char *end);
static ngx_inline u_char *ngx_ws_relay_json_space(u_char *p, u_char *end);
static ngx_int_t ngx_ws_relay_json_hex(u_char *p, uint32_t *cp);
static u_char *ngx_ws_relay_json_put_wtf8(u_char *p, uint32_t cp);
static double ngx_ws_relay_json_number(ngx_str_t *text);
static u_char *ngx_ws_relay_json_js_number(u_char *p, ngx_str_t *text);


static u_char  *ngx_ws_relay_json_buf;
static size_t   ngx_ws_relay_json_buf_size;


ngx_int_t
ngx_ws_relay_json_read(u_char *data, size_t len,
    ngx_ws_relay_json_field_t *fields, ngx_uint_t n, const char **error)
{
    u_char                     *p, *end;
    u_char                      name[NGX_WS_RELAY_JSON_NAME_TEXT];
    size_t                      name_len;
    ngx_uint_t                  i;
    ngx_ws_relay_json_value_t   key, value;

    for (i = 0; i < n; i++) {
        fields[i].value.type = NGX_WS_RELAY_JSON_NONE;
    }

    end = data + len;
    p = ngx_ws_relay_json_space(data, end);

    if (p == end || *p != '{') {
        p = ngx_ws_relay_json_value(p, end, &value, error);

        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ngx_ws_relay_json_space(p, end) != end) {
            *error = "characters after the value";
            return NGX_ERROR;
        }

        return NGX_DECLINED;
    }

    p = ngx_ws_relay_json_space(p + 1, end);

    if (p < end && *p == '}') {
        p++;
        goto done;
    }

    for ( ;; ) {

        if (p == end || *p != '"') {
            *error = "a member name expected";
            return NGX_ERROR;
        }

        key.type = NGX_WS_RELAY_JSON_STRING;
        key.text.data = p;
        key.escaped = 0;

        p = ngx_ws_relay_json_string_end(p, end, &key);
        if (p == NULL) {
            *error = "an invalid string";
            return NGX_ERROR;
        }

        key.text.len = p - key.text.data;

        p = ngx_ws_relay_json_space(p, end);

        if (p == end || *p != ':') {
            *error = "':' expected";
            return NGX_ERROR;
        }

        p = ngx_ws_relay_json_value(p + 1, end, &value, error);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /* the names asked for are short: a longer text is none of them */

        if (key.text.len - 2 <= sizeof(name)) {
            if (key.escaped) {
                name_len = ngx_ws_relay_json_unescape(name, &key);

            } else {
                name_len = key.text.len - 2;
                ngx_memcpy(name, key.text.data + 1, name_len);
            }

            for (i = 0; i < n; i++) {
                if (fields[i].name.len == name_len
                    && ngx_memcmp(fields[i].name.data, name, name_len) == 0)
                {
                    fields[i].value = value;
                    break;
                }
            }
        }

        p = ngx_ws_relay_json_space(p, end);

        if (p < end && *p == ',') {
            p = ngx_ws_relay_json_space(p + 1, end);
            continue;
        }

        if (p < end && *p == '}') {
            p++;
            break;
        }

        *error = "',' or '}' expected";
        return NGX_ERROR;
    }

done:

    if (ngx_ws_relay_json_space(p, end) != end) {
        *error = "characters after the object";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One value, however deep, without recursion: a stack of the brackets
 * that close the open arrays and objects.
 */

static u_char *
ngx_ws_relay_json_value(u_char *p, u_char *end, ngx_ws_relay_json_value_t *v,
    const char **error)
{
    u_char                     *start;
    ngx_uint_t                  top;
    ngx_ws_relay_json_value_t   item;
    u_char                      stack[NGX_WS_RELAY_JSON_MAX_DEPTH];

    p = ngx_ws_relay_json_space(p, end);
    start = p;
    top = 0;

    v->escaped = 0;

    if (p < end && (*p == '{' || *p == '[')) {
        v->type = (*p == '{') ? NGX_WS_RELAY_JSON_OBJECT
                              : NGX_WS_RELAY_JSON_ARRAY;
    }

    for ( ;; ) {

        /* a value starts at p */

        p = ngx_ws_relay_json_space(p, end);

        if (p < end && (*p == '{' || *p == '[')) {

            if (top == NGX_WS_RELAY_JSON_MAX_DEPTH) {
                *error = "nested too deeply";
                return NULL;
            }

            stack[top++] = (*p == '{') ? '}' : ']';
            p = ngx_ws_relay_json_space(p + 1, end);

            if (p < end && *p == stack[top - 1]) {
                p++;
                top--;

            } else if (stack[top - 1] == '}') {
                goto name;

            } else {
                continue;
            }

        } else {
            p = ngx_ws_relay_json_scalar(p, end, top ? &item : v, error);
            if (p == NULL) {
                return NULL;
            }
        }

        /* after a value: the end of its containers, or the next one */

        for ( ;; ) {

            if (top == 0) {
                v->text.data = start;
                v->text.len = p - start;
                return p;
            }

            p = ngx_ws_relay_json_space(p, end);

            if (p == end) {
                *error = "unexpected end";
                return NULL;
            }

            if (*p == stack[top - 1]) {
                p++;
                top--;
                continue;
            }

            if (*p != ',') {
                *error = "',' or a closing bracket expected";
                return NULL;
            }

            p = ngx_ws_relay_json_space(p + 1, end);

            if (stack[top - 1] == ']') {
                break;
            }

            goto name;
        }

        continue;

    name:

        if (p == end || *p != '"') {
            *error = "a member name expected";
            return NULL;
        }

        p = ngx_ws_relay_json_string_end(p, end, &item);
        if (p == NULL) {
            *error = "an invalid string";
            return NULL;
        }

        p = ngx_ws_relay_json_space(p, end);

        if (p == end || *p != ':') {
            *error = "':' expected";
            return NULL;
        }

        p++;
    }
}


/* inline: the reader's inner loop, once per value */

static ngx_inline u_char *
ngx_ws_relay_json_scalar(u_char *p, u_char *end, ngx_ws_relay_json_value_t *v,
    const char **error)
{
    u_char  *start;

    start = p;
    v->escaped = 0;

    if (p == end) {
        *error = "unexpected end";
        return NULL;
    }

    switch (*p) {

    case '"':
        v->type = NGX_WS_RELAY_JSON_STRING;
        p = ngx_ws_relay_json_string_end(p, end, v);

        if (p == NULL) {
            *error = "an invalid string";
            return NULL;
        }

        break;

    case 't':
        v->type = NGX_WS_RELAY_JSON_TRUE;

        if (end - p < 4 || ngx_strncmp(p, "true", 4) != 0) {
            goto invalid;
        }

        p += 4;
        break;

    case 'f':
        v->type = NGX_WS_RELAY_JSON_FALSE;

        if (end - p < 5 || ngx_strncmp(p, "false", 5) != 0) {
            goto invalid;
        }

        p += 5;
        break;

    case 'n':
        v->type = NGX_WS_RELAY_JSON_NULL;

        if (end - p < 4 || ngx_strncmp(p, "null", 4) != 0) {
            goto invalid;
        }

        p += 4;
        break;

    default:
        v->type = NGX_WS_RELAY_JSON_NUMBER;
        p = ngx_ws_relay_json_number_end(p, end);

        if (p == NULL) {
            goto invalid;
        }
    }

    v->text.data = start;
    v->text.len = p - start;

    return p;

invalid:

    *error = "an invalid token";
    return NULL;
}


/* p is at the opening quote: past the closing one, or NULL */

static u_char *
ngx_ws_relay_json_string_end(u_char *p, u_char *end,
    ngx_ws_relay_json_value_t *v)
{
    size_t    n;
    uint32_t  cp;

    v->escaped = 0;

    for (p++; p < end; /* void */) {

        if (*p == '"') {
            return p + 1;
        }

        if (*p == '\\') {
            v->escaped = 1;

            if (end - p < 2) {
                return NULL;
            }

            switch (p[1]) {

            case '"': case '\\': case '/':
            case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                /* any code unit: JSON.parse() takes lone surrogates too */
                if (end - p < 6 || ngx_ws_relay_json_hex(p + 2, &cp) != NGX_OK)
                {
                    return NULL;
                }

                p += 6;
                continue;

            default:
                return NULL;
            }
        }

        if (*p < 0x20) {
            return NULL;
        }

        if (*p < 0x80) {
            p++;
            continue;
        }

        n = ngx_ws_relay_json_utf8(p, end);
        if (n == 0) {
            return NULL;
        }

        p += n;
    }

    return NULL;
}


/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */

static ngx_inline u_char *
ngx_ws_relay_json_number_end(u_char *p, u_char *end)
{
    u_char  *start;

    if (p < end && *p == '-') {
        p++;
    }

    if (p == end) {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return NULL;
    }

    if (p < end && *p == '.') {
        start = ++p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        start = p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    return p;
}


/* the length of the UTF-8 sequence at p (RFC 3629), 0 if there is none */

static size_t
ngx_ws_relay_json_utf8(u_char *p, u_char *end)
{
    size_t  n, i;
    u_char  c, lo, hi;

    c = *p;
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            /* no surrogates */
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    return n;
}


/* JSON's white space, as JSON.parse() skips it */

static ngx_inline u_char *
ngx_ws_relay_json_space(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


static ngx_int_t
ngx_ws_relay_json_hex(u_char *p, uint32_t *cp)
{
    u_char      c;
    ngx_uint_t  i;

    *cp = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return NGX_ERROR;
        }

        *cp = (*cp << 4) | c;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_ws_relay_json_falsy(ngx_ws_relay_json_value_t *v)
{
    switch (v->type) {

    case NGX_WS_RELAY_JSON_NONE:
    case NGX_WS_RELAY_JSON_NULL:
    case NGX_WS_RELAY_JSON_FALSE:
        return 1;

    case NGX_WS_RELAY_JSON_STRING:
        return v->text.len == 2;

    case NGX_WS_RELAY_JSON_NUMBER:
        return ngx_ws_relay_json_number(&v->text) == 0;

    default:
        return 0;
    }
}


/* a valid JSON number's value, as JavaScript reads it */

static double
ngx_ws_relay_json_number(ngx_str_t *text)
{
    u_char  *p, *copy, buf[64];
    double   d;

    for (p = text->data; p < text->data + text->len; p++) {
        if (*p >= '1' && *p <= '9') {
            break;
        }

        if (*p == 'e' || *p == 'E') {
            /* no digit but zeros before the exponent */
            return 0;
        }
    }

    if (p == text->data + text->len) {
        return 0;
    }

    copy = (text->len < sizeof(buf)) ? buf : ngx_alloc(text->len + 1,
                                                       ngx_cycle->log);
    if (copy == NULL) {
        return 1;
    }

    ngx_memcpy(copy, text->data, text->len);
    copy[text->len] = '\0';

    d = strtod((char *) copy, NULL);

    if (copy != buf) {
        ngx_free(copy);
    }

    return d;
}


size_t
ngx_ws_relay_json_unescape(u_char *dst, ngx_ws_relay_json_value_t *v)
{
    u_char    *p, *end, *start;
    uint32_t   cp, lo;

    p = v->text.data + 1;
    end = v->text.data + v->text.len - 1;
    start = dst;

    if (!v->escaped) {
        return ngx_cpymem(dst, p, end - p) - start;
    }

    while (p < end) {

        if (*p != '\\') {
            *dst++ = *p++;
            continue;
        }

        switch (p[1]) {

        case 'b':
            *dst++ = '\b';
            break;

        case 'f':
            *dst++ = '\f';
            break;

        case 'n':
            *dst++ = '\n';
            break;

        case 'r':
            *dst++ = '\r';
            break;

        case 't':
            *dst++ = '\t';
            break;

        case 'u':
            (void) ngx_ws_relay_json_hex(p + 2, &cp);
            p += 6;

            /* a surrogate pair is one code point */

            if (cp >= 0xd800 && cp <= 0xdbff
                && end - p >= 6 && p[0] == '\\' && p[1] == 'u'
                && ngx_ws_relay_json_hex(p + 2, &lo) == NGX_OK
                && lo >= 0xdc00 && lo <= 0xdfff)
            {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }

            dst = ngx_ws_relay_json_put_wtf8(dst, cp);
            continue;

        default:
            /* '"', '\\', '/' */
            *dst++ = p[1];
        }

        p += 2;
    }

    return dst - start;
}


/* UTF-8, or the three bytes of a lone surrogate (WTF-8) */

static u_char *
ngx_ws_relay_json_put_wtf8(u_char *p, uint32_t cp)
{
    if (cp < 0x80) {
        *p++ = (u_char) cp;

    } else if (cp < 0x800) {
        *p++ = (u_char) (0xc0 | (cp >> 6));
        *p++ = (u_char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        *p++ = (u_char) (0xe0 | (cp >> 12));
        *p++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *p++ = (u_char) (0x80 | (cp & 0x3f));

    } else {
        *p++ = (u_char) (0xf0 | (cp >> 18));
        *p++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
        *p++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *p++ = (u_char) (0x80 | (cp & 0x3f));
    }

    return p;
}


u_char *
ngx_ws_relay_json_copy(u_char *p, ngx_str_t *text)
{
    u_char      *src, *end, *run;
    ngx_uint_t   in_string;

    src = text->data;
    end = src + text->len;
    run = src;
    in_string = 0;

    for ( /* void */ ; src < end; src++) {

        if (in_string) {
            if (*src == '\\') {
                src++;

            } else if (*src == '"') {
                in_string = 0;
            }

            continue;
        }

        if (*src == '"') {
            in_string = 1;
            continue;
        }

        if (*src == ' ' || *src == '\t' || *src == '\n' || *src == '\r') {
            p = ngx_cpymem(p, run, src - run);
            run = src + 1;
        }
    }

    return ngx_cpymem(p, run, end - run);
}


/*
 * String(value): strings as they are, numbers as JavaScript prints them,
 * arrays joined with commas (null inside them as nothing), objects as
 * "[object Object]", a missing value as "undefined".
 */

u_char *
ngx_ws_relay_json_js_string(u_char *p, ngx_ws_relay_json_value_t *v)
{
    u_char                     *src, *end;
    ngx_uint_t                  objects;
    ngx_ws_relay_json_value_t   item;
    const char                 *error;

    switch (v->type) {

    case NGX_WS_RELAY_JSON_NONE:
        return ngx_cpymem(p, "undefined", sizeof("undefined") - 1);

    case NGX_WS_RELAY_JSON_STRING:
        return p + ngx_ws_relay_json_unescape(p, v);

    case NGX_WS_RELAY_JSON_NUMBER:
        return ngx_ws_relay_json_js_number(p, &v->text);

    case NGX_WS_RELAY_JSON_OBJECT:
        return ngx_cpymem(p, "[object Object]",
                          sizeof("[object Object]") - 1);

    case NGX_WS_RELAY_JSON_ARRAY:
        break;

    default:
        /* null, true, false */
        return ngx_cpymem(p, v->text.data, v->text.len);
    }

    /* an array: its scalars, and a comma for each comma of an array */

    src = v->text.data;
    end = src + v->text.len;
    objects = 0;

    while (src < end) {

        switch (*src) {

        case '[': case ']': case ' ': case '\t': case '\n': case '\r':
        case ':':
            src++;
            continue;

        case '{':
            if (objects++ == 0) {
                p = ngx_cpymem(p, "[object Object]",
                               sizeof("[object Object]") - 1);
            }

            src++;
            continue;

        case '}':
            objects--;
            src++;
            continue;

        case ',':
            if (objects == 0) {
                *p++ = ',';
            }

            src++;
            continue;
        }

        /* a scalar: text that was read before, so it reads again */

        src = ngx_ws_relay_json_scalar(src, end, &item, &error);

        if (objects || item.type == NGX_WS_RELAY_JSON_NULL) {
            continue;
        }

        p = ngx_ws_relay_json_js_string(p, &item);
    }

    return p;
}


/*
 * ECMAScript's Number::toString(): the fewest digits that read back as
 * the same double, in plain notation from 1e-6 to 1e21.
 */

static u_char *
ngx_ws_relay_json_js_number(u_char *p, ngx_str_t *text)
{
    int         prec, exp, k, i;
    char        buf[NGX_WS_RELAY_JSON_NUMBER_LEN], digits[20];
    double      d;
    ngx_uint_t  plain;

    /* a short integer prints as it is written, but for "-0" */

    plain = (text->len <= 15);

    for (i = 0; plain && i < (int) text->len; i++) {
        if (text->data[i] == '.' || text->data[i] == 'e'
            || text->data[i] == 'E')
        {
            plain = 0;
        }
    }

    if (plain) {
        if (text->len == 2 && text->data[0] == '-' && text->data[1] == '0') {
            *p++ = '0';
            return p;
        }

        return ngx_cpymem(p, text->data, text->len);
    }

    d = ngx_ws_relay_json_number(text);

    if (d == 0) {
        *p++ = '0';
        return p;
    }

    if (isinf(d)) {
        return (d < 0) ? ngx_cpymem(p, "-Infinity", 9)
                       : ngx_cpymem(p, "Infinity", 8);
    }

    if (d < 0) {
        *p++ = '-';
        d = -d;
    }

    for (prec = 1; prec <= 17; prec++) {
        (void) snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);

        if (strtod(buf, NULL) == d) {
            break;
        }
    }

    /* "d.ddde[+-]xx": the digits, and n, the place of the point */

    k = 0;

    for (i = 0; buf[i] != 'e'; i++) {
        if (buf[i] != '.') {
            digits[k++] = buf[i];
        }
    }

    while (k > 1 && digits[k - 1] == '0') {
        k--;
    }

    exp = atoi(buf + i + 1) + 1;

    if (k <= exp && exp <= 21) {
        p = ngx_cpymem(p, digits, k);

        for (i = k; i < exp; i++) {
            *p++ = '0';
        }

    } else if (0 < exp && exp <= 21) {
        p = ngx_cpymem(p, digits, exp);
        *p++ = '.';
        p = ngx_cpymem(p, digits + exp, k - exp);

    } else if (-6 < exp && exp <= 0) {
        *p++ = '0';
        *p++ = '.';

        for (i = exp; i < 0; i++) {
            *p++ = '0';
        }

        p = ngx_cpymem(p, digits, k);

    } else {
        *p++ = digits[0];

        if (k > 1) {
            *p++ = '.';
            p = ngx_cpymem(p, digits + 1, k - 1);
        }

        p = ngx_sprintf(p, "e%c%d", exp - 1 < 0 ? '-' : '+',
                        exp - 1 < 0 ? 1 - exp : exp - 1);
    }

    return p;
}


u_char *
ngx_ws_relay_json_write_string(u_char *p, ngx_str_t *s)
{
    u_char  c, *src, *end;

    static u_char  hex[] = "0123456789abcdef";

    *p++ = '"';

    for (src = s->data, end = src + s->len; src < end; src++) {
        c = *src;

        /* WTF-8 of a lone surrogate: ED A0..BF xx */

        if (c == 0xed && end - src >= 3 && src[1] >= 0xa0) {
            p = ngx_sprintf(p, "\\ud%c%c%c",
                            hex[8 + ((src[1] >> 2) & 0x7)],
                            hex[((src[1] & 0x3) << 2) | ((src[2] >> 4) & 0x3)],
                            hex[src[2] & 0xf]);
            src += 2;
            continue;
        }

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


ngx_uint_t
ngx_ws_relay_json_wtf8(ngx_str_t *s)
{
    u_char  *p, *end;
    size_t   n;

    p = s->data;
    end = p + s->len;

    while (p < end) {

        if (*p < 0x80) {
            p++;
            continue;
        }

        /*
         * A lone surrogate, as ngx_ws_relay_json_unescape() writes it; a
         * high one followed by a low one would be a pair written apart.
         */

        if (*p == 0xed && end - p >= 3 && p[1] >= 0xa0 && p[1] <= 0xbf
            && (p[2] & 0xc0) == 0x80)
        {
            if (p[1] <= 0xaf && end - p >= 6 && p[3] == 0xed
                && p[4] >= 0xb0 && p[4] <= 0xbf)
            {
                return 0;
            }

            p += 3;
            continue;
        }

        n = ngx_ws_relay_json_utf8(p, end);
        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


json_t *
ngx_ws_relay_json_string(ngx_str_t *s)
{
    return json_stringn((char *) s->data, s->len);
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
